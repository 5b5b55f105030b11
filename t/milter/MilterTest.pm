# MilterTest - start the libmilter test milter (build/t/test_milter) for a
# test, with a script saying how it answers (see t/milter/test_milter.c),
# on a free loopback port; read what it saw from its log.
#
#   my $m = MilterTest->start("reply rcpt reject\n");
#   ... smtpd_milters => $m->spec ...
#   ok($m->saw(qr/^rcpt <x\@y>$/m));
#   my ($t, $m) = MilterTest->with_sluice("reply rcpt reject\n", %main);
#
# The milter is killed when the object goes away; waiting is on its log
# ("ready" once it listens), never a fixed sleep.
package MilterTest;

use strict;
use warnings;

use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use SluiceTest qw(free_port wait_until);

my $BIN = "$SluiceTest::ROOT/build/t/test_milter";

sub start {
	my ($class, $script) = @_;
	my $dir = tempdir('sluice-milter-XXXXXX', TMPDIR => 1, CLEANUP => 1);
	chmod 0755, $dir;
	my $port = free_port();
	open my $fh, '>', "$dir/script" or die $!;
	print $fh $script;
	close $fh;
	my $self = bless { dir => $dir, port => $port, log => "$dir/log" }, $class;
	$self->{pid} = fork // die "fork: $!";
	if ($self->{pid} == 0) {
		open STDOUT, '>>', "$dir/stderr";
		open STDERR, '>&', \*STDOUT;
		exec($BIN, '-p', "inet:$port\@127.0.0.1", '-c', "$dir/script",
		     '-l', "$dir/log") or POSIX::_exit(127);
	}
	wait_until(sub { $self->log =~ /^ready$/m }, 10)
	    or die "test milter did not start: " . $self->stderr;
	return $self;
}

# The test milter with `script`, and a sluice (SluiceTest) using it as
# smtpd_milters, with these other main.cf settings: (sluice, milter).
sub with_sluice {
	my ($class, $script, %main) = @_;
	my $m = $class->start($script);
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec, %main });
	return ($t, $m);
}

sub spec { "inet:127.0.0.1:$_[0]{port}" }
sub port { $_[0]{port} }

sub log {
	my ($self) = @_;
	open my $fh, '<', $self->{log} or return '';
	local $/;
	return <$fh> // '';
}

sub stderr {
	my ($self) = @_;
	open my $fh, '<', "$self->{dir}/stderr" or return '';
	local $/;
	return <$fh> // '';
}

# Wait until the log matches re (default 10 s); true if it did.
sub saw {
	my ($self, $re, $timeout) = @_;
	return wait_until(sub { $self->log =~ $re }, $timeout // 10);
}

sub alive {
	my ($self) = @_;
	return 0 unless $self->{pid};
	return waitpid($self->{pid}, WNOHANG) == 0;
}

sub stop {
	my ($self) = @_;
	return unless $self->{pid};
	kill 'KILL', $self->{pid};
	waitpid($self->{pid}, 0);
	delete $self->{pid};
}

sub DESTROY { local ($?, $!, $@); $_[0]->stop }

1;
