#!/usr/bin/perl
# smtp_concurrency.t - many sessions at once (DESIGN.md "Process model":
# thousands of sessions per worker, one event loop each):
#  - 500 simultaneous sessions against ONE worker, driven by our own
#    IO::Select client: all 500 are connected and greeted before any goes
#    on (the worker holds 500 client sockets at that moment), then each
#    completes a pipelined transaction; all 500 are acknowledged, all 500
#    files are in the queue and complete, the log has 500 "client="
#    lines and no warning;
#  - Postfix's smtp-source with 500 parallel sessions, 500 messages.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);
use SluiceTest qw(wait_until);

my $N = 500;

my $t = SluiceTest->new(main => { sluice_smtpd_workers => 1,
				  smtpd_client_connection_count_limit => 0 },
			timeout => 30);
my @workers = $t->worker_pids;
is(scalar @workers, 1, 'one smtpd worker');

# ---- our own driver: 500 sessions in lock step up to the greeting -------------------

my $mark = $t->log_mark;
my $port = $t->port;
my (@sess, %by_fd);
for my $i (0 .. $N - 1) {
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
					 Proto => 'tcp', Timeout => 10);
	last unless $sock;
	my $s = { i => $i, sock => $sock, buf => '', state => 'greet', replies => [] };
	push @sess, $s;
	$by_fd{fileno $sock} = $s;
}
is(scalar @sess, $N, "$N connections open");

my $sel = IO::Select->new(map { $_->{sock} } @sess);
my @errors;

sub send_s {
	my ($s, $data) = @_;
	local $SIG{PIPE} = 'IGNORE';
	while (length $data) {
		my $n = syswrite($s->{sock}, $data);
		if (!defined $n) { push @errors, "session $s->{i}: write: $!"; return finish($s) }
		substr($data, 0, $n) = '';
	}
}

sub finish {
	my ($s) = @_;
	$sel->remove($s->{sock});
	close $s->{sock};
	$s->{closed} = 1;
}

my $greeted = 0;
my $body = "Subject: concurrent\r\n\r\n" . ("0123456789abcdef" x 4 . "\r\n") x 16;

# Advance one session on a complete reply.
sub on_reply {
	my ($s, $code, $text) = @_;
	my $st = $s->{state};
	my $bad = sub { push @errors, "session $s->{i} in $st: $text"; finish($s) };
	if ($st eq 'greet') {
		return $bad->() unless $code == 220;
		$s->{state} = 'barrier';
		$greeted++;
	} elsif ($st eq 'ehlo') {
		return $bad->() unless $code == 250;
		$s->{state} = 'env';
		send_s($s, "MAIL FROM:<s$s->{i}\@example.org>\r\nRCPT TO:<r$s->{i}\@example.net>\r\nDATA\r\n");
	} elsif ($st eq 'env') {
		push @{ $s->{replies} }, $code;
		return if @{ $s->{replies} } < 3;
		return $bad->() unless "@{ $s->{replies} }" eq '250 250 354';
		$s->{state} = 'data';
		send_s($s, "Message-ID: <c$s->{i}\@client.example>\r\n$body.\r\n");
	} elsif ($st eq 'data') {
		return $bad->() unless $text =~ /^250 2\.0\.0 Ok: queued as (\S+)$/;
		$s->{id} = $1;
		$s->{state} = 'quit';
		send_s($s, "QUIT\r\n");
	} elsif ($st eq 'quit') {
		return $bad->() unless $code == 221;
		$s->{state} = 'done';
		finish($s);
	} else {
		$bad->();
	}
}

# Read what is there; hand complete replies to on_reply.
sub pump {
	my ($timeout) = @_;
	for my $fh ($sel->can_read($timeout)) {
		my $s = $by_fd{fileno $fh};
		my $n = sysread($fh, my $chunk, 65536);
		if (!$n) {
			push @errors, "session $s->{i}: connection closed in state $s->{state}"
			    unless $s->{state} eq 'done';
			finish($s);
			next;
		}
		$s->{buf} .= $chunk;
		while ($s->{buf} =~ s/^((?:\d{3}-[^\n]*\n)*(\d{3})(?: [^\n]*)?\r?\n)//) {
			my ($all, $code) = ($1, $2);
			my ($last) = $all =~ /([^\r\n]*)\r?\n\z/;
			on_reply($s, $code, $last);
			last if $s->{closed};
		}
	}
}

my $deadline = time + 60;
pump(1) while $greeted + @errors < $N && time < $deadline;
is($greeted, $N, "all $N sessions are greeted while none has gone further");

my $sockets = 0;
if (opendir my $dh, "/proc/$workers[0]/fd") {
	for (readdir $dh) {
		my $l = readlink "/proc/$workers[0]/fd/$_" // '';
		$sockets++ if $l =~ /^socket:/;
	}
}
SKIP: {
	skip 'cannot read the worker\'s file descriptors', 1 unless $sockets;
	cmp_ok($sockets, '>=', $N, "the one worker holds $N client sockets at once ($sockets sockets)");
}

my $t0 = time;
for my $s (grep { !$_->{closed} } @sess) {
	$s->{state} = 'ehlo';
	send_s($s, "EHLO c$s->{i}.client.example\r\n");
}
pump(1) while $sel->count && time < $deadline;
my $took = time - $t0;
is_deeply(\@errors, [], 'no session saw an error') or diag(join "\n", @errors[0 .. ($#errors < 9 ? $#errors : 9)]);
my @ids = grep { defined } map { $_->{id} } @sess;
is(scalar @ids, $N, "all $N transactions were acknowledged (in ${\ sprintf '%.1f', $took} s)");
my %uniq = map { $_ => 1 } @ids;
is(scalar keys %uniq, $N, '... each with its own queue ID');

my @files = $t->queue_files;
is(scalar @files, $N, "$N files in incoming/");
my @incomplete = grep { my $q = SluiceTest::read_queue_file($t->queue_path($_)); !$q || !$q->{complete} } @files;
is_deeply(\@incomplete, [], '... every one of them complete');
my $log = $t->log_text($mark);
my $logged = () = $log =~ /: client=\S+$/mg;
is($logged, $N, "$N \"client=\" log lines");
my %pids = map { $_ => 1 } $log =~ /sluice\/smtpd\[(\d+)\]: /g;
is_deeply([keys %pids], [$workers[0]], '... all written by the one worker');
my @warn = $log =~ /^(.*(?:warning|fatal|panic|error).*)$/mig;
is_deeply(\@warn, [], 'no warning or error in the log');

# ---- smtp-source: 500 parallel sessions ---------------------------------------------

SKIP: {
	my $src = -x '/usr/sbin/smtp-source' ? '/usr/sbin/smtp-source' : `which smtp-source 2>/dev/null`;
	chomp $src;
	skip 'smtp-source (the postfix package) is not installed', 4 unless $src && -x $src;
	my $mark2 = $t->log_mark;
	my $t1 = time;
	my $out = `timeout 120 $src -s $N -m $N -l 2000 -M client.example -f sender\@example.org -t rcpt\@example.net 127.0.0.1:$port 2>&1`;
	my $rc = $? >> 8;
	is($rc, 0, "smtp-source -s $N -m $N exits 0 (${\ sprintf '%.1f', time - $t1} s)") or diag($out);
	unlike($out, qr/warning|fatal|error/i, '... and reports no error') or diag($out);
	ok(wait_until(sub { my @f = $t->queue_files; @f == 2 * $N }, 30), "... and $N more files are queued");
	my $log2 = $t->log_text($mark2);
	my $n2 = () = $log2 =~ /: client=\S+$/mg;
	is($n2, $N, "... with $N \"client=\" log lines");
}

done_testing;
