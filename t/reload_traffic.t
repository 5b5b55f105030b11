#!/usr/bin/perl
# reload_traffic.t - reload during traffic drops no session: Postfix's
# smtp-source keeps 20 sessions busy sending 400 messages while the
# configuration is reloaded again and again; every message must be
# queued, and no session may be lost or refused.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest qw(wait_until);

my $MESSAGES = 400;
my $SESSIONS = 20;
my $RELOADS = 5;

my $t = SluiceTest->new(main => { smtpd_banner => '$myhostname ESMTP gen0' });
my $port = $t->port;

my $src = fork // die "fork: $!";
if ($src == 0) {
	open STDOUT, '>', $t->dir . '/smtp-source.out';
	open STDERR, '>&', \*STDOUT;
	exec '/usr/sbin/smtp-source', '-s', $SESSIONS, '-m', $MESSAGES,
	     '-l', 2048, '-f', 'sender@example.test', '-t', 'rcpt@example.test',
	     "127.0.0.1:$port";
	die "exec smtp-source: $!";
}

# Reload while the load runs: each reload waits for the master's
# "reload --" line, so reloads happen while smtp-source is mid-stream.
# smtp-source's exit status, whichever waitpid() reaps it.
my ($status, $reaped);
sub source_done {
	return 1 if $reaped;
	return 0 if waitpid($src, 1) != $src;   # WNOHANG
	($status, $reaped) = ($?, 1);
	return 1;
}
my $reloaded = 0;
for my $i (1 .. $RELOADS) {
	last if source_done();
	$t->set_main(smtpd_banner => "\$myhostname ESMTP gen$i");
	$reloaded++ if $t->reload;
}
ok($reloaded >= 1, "reloaded $reloaded times during the traffic");

wait_until(\&source_done, 120)
	or do { kill 'KILL', $src; waitpid $src, 0; };
is($status, 0, 'smtp-source finished without an error')
	or diag(do { local (@ARGV, $/) = ($t->dir . '/smtp-source.out'); <> });

sub queued { my @f = $t->queue_files('incoming'); return scalar @f }
ok(wait_until(sub { queued() >= $MESSAGES }, 30),
   "all $MESSAGES messages are queued");
is(queued(), $MESSAGES, 'no more, no less');

my $log = $t->log_text;
unlike($log, qr/lost connection|too many connections|fatal|panic/,
       'no session lost or refused, no fatal error');
like($log, qr/reload -- version/, 'the log shows the reloads');

done_testing;
