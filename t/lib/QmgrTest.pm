# QmgrTest - helpers for the queue manager's end-to-end tests (t/qmgr_*.t):
# a sluice that delivers, and Postfix's smtp-sink as its next hop.
#
#   use FindBin; use lib "$FindBin::Bin/lib";
#   use SluiceTest qw(wait_until);
#   use QmgrTest qw(start_sink stop_sink dumps qmgr_sluice send_mail);
#   my $port = start_sink("$tmp/sink");   # opts => ['-r', 'RCPT'], port => N
#   my $t = qmgr_sluice(main => { relayhost => "[127.0.0.1]:$port" });
#   my $id = send_mail($t, to => ['bob@example.net']);
#   wait_until(sub { grep { /bob/ } dumps("$tmp/sink") });
#
# What it promises:
#  - qmgr_sluice() is SluiceTest->new() plus "qmgr unix n - n 300 1 qmgr"
#    and the test's own master.cf lines (services => "..."), files written
#    into the server's directory before it starts (files => { name =>
#    text }), and "%DIR%" in a main.cf value replaced by that directory;
#  - start_sink() runs /usr/sbin/smtp-sink on a free loopback port (as
#    nobody when the tests run as root), dumping each transaction into
#    its own file, and returns once the port answers; every sink is
#    stopped at END, or by stop_sink();
#  - dumps() returns only complete transactions (smtp-sink writes the
#    file while the message arrives);
#  - established() counts the TCP connections to a port right now
#    (/proc/net/tcp), e.g. the sessions a sink is holding.
package QmgrTest;

use strict;
use warnings;

use Exporter qw(import);
use IO::Socket::INET;
use POSIX ();
use SluiceTest qw(wait_until free_port tcp_answers);

our @EXPORT_OK = qw(start_sink stop_sink dumps qmgr_sluice send_mail
		    established $SINK);

our $SINK = '/usr/sbin/smtp-sink';

my %sinks;	# port => pid

sub start_sink {
	my ($dir, %o) = @_;
	my $port = $o{port} // free_port();
	my @opts = @{ $o{opts} || [] };
	mkdir $dir;
	chmod 0777, $dir;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open STDIN, '<', '/dev/null';
		open STDOUT, '>', '/dev/null';
		exec($SINK, ($< == 0 ? ('-u', 'nobody') : ()), @opts, '-d',
		     "$dir/%M.", "127.0.0.1:$port", 100) or POSIX::_exit(127);
	}
	$sinks{$port} = $pid;
	wait_until(sub { tcp_answers($port) }, 10)
	    or die "smtp-sink did not start on port $port";
	return $port;
}

# Stop the sink on `port`; the port is free again when this returns.
sub stop_sink {
	my ($port) = @_;
	my $pid = delete $sinks{$port} or return;
	kill 'TERM', $pid;
	waitpid $pid, 0;
}

END {
	local ($?, $!);
	kill 'TERM', values %sinks;
	waitpid $_, 0 for values %sinks;
}

sub dumps {
	my ($dir) = @_;
	opendir my $dh, $dir or return ();
	my @t;
	for my $f (sort grep { !/^\./ } readdir $dh) {
		open my $fh, '<', "$dir/$f" or next;
		local $/;
		my $text = <$fh> // '';
		push @t, $text if $text =~ /\n\n.*\n\z/s;
	}
	return @t;
}

sub qmgr_sluice {
	my (%opt) = @_;
	my $t = SluiceTest->new(%opt, start => 0);
	my $dir = $t->dir;
	open my $fh, '>>', "$dir/master.cf" or die "$dir/master.cf: $!";
	print $fh "qmgr unix n - n 300 1 qmgr\n", $opt{services} // '';
	close $fh;
	$t->write_file($_, $opt{files}{$_}) for keys %{ $opt{files} || {} };
	$t->set_main(map { (my $v = $opt{main}{$_}) =~ s/%DIR%/$dir/g; ($_ => $v) }
		     keys %{ $opt{main} || {} });
	$t->start unless exists $opt{start} && !$opt{start};
	return $t;
}

# One message in its own session; its queue ID (undef if refused).
sub send_mail {
	my ($t, %m) = @_;
	my $c = $t->smtp or return undef;
	$c->hello('client.example');
	my ($code, $text) = $c->transaction(%m);
	$c->cmd('QUIT');
	my ($id) = ($text // '') =~ /queued as (\S+)/;
	return $id;
}

sub established {
	my ($port) = @_;
	my $n = 0;
	open my $fh, '<', '/proc/net/tcp' or return 0;
	<$fh>;
	while (my $line = <$fh>) {
		my @f = split ' ', $line;
		next unless $f[3] eq '01';		# ESTABLISHED
		my ($lport) = $f[1] =~ /:([0-9A-F]{4})$/;
		$n++ if hex $lport == $port;
	}
	return $n;
}

1;
