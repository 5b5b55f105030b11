#!/usr/bin/perl
# process.t - the process model: start, workers, status/stop, reload
# (new sessions get the new configuration, old sessions finish on the
# old one, a broken configuration is refused), the connection limit
# across workers, privileges, and supervision of workers.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest qw(wait_until);

my $WORKERS = 2;

sub banner_of {
	my ($t) = @_;
	my $c = $t->smtp or return '';
	my ($code, $text) = $c->read_reply;
	$c->cmd('QUIT');
	return $text // '';
}

# ---- start-up ------------------------------------------------------------

my $t = SluiceTest->new(main => { smtpd_banner => '$myhostname ESMTP first' });
my $master = $t->pid;

like($t->log_text,
     qr/^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ sluice\/master\[$master\]: daemon started -- version \S+, configuration \S+$/m,
     'logs "daemon started" in the syslog line shape');

my @workers = $t->worker_pids;
is(scalar @workers, $WORKERS, "sluice_smtpd_workers=$WORKERS workers run");

{
	my ($rc, $out) = $t->sluice('status');
	is($rc, 0, 'status exits 0 while running');
	like($out, qr/^sluice is running \(pid $master\)$/m, 'status names the master');
}

{
	my ($rc, $out) = $t->sluice('run');
	isnt($rc, 0, 'a second master on the same configuration refuses to start');
	like($out, qr/already running \(pid $master\)/, '... saying who runs');
}

like(banner_of($t), qr/^220 mx\.example\.test ESMTP first$/, 'the banner');

# ---- privileges ----------------------------------------------------------

SKIP: {
	skip 'privilege tests need root', 2 unless $< == 0;
	my $nobody = getpwnam('nobody');
	is(SluiceTest::proc_uid($master), 0, 'the master keeps root');
	ok(!grep({ SluiceTest::proc_uid($_) != $nobody } @workers),
	   'the workers run as mail_owner');
}

SKIP: {
	skip 'mail_owner lookup needs root', 2 unless $< == 0;
	my $bad = SluiceTest->new(main => { mail_owner => 'no-such-user-here' },
				  start => 0);
	my ($rc, $out) = $bad->sluice('run');
	isnt($rc, 0, 'an unknown mail_owner refuses to start');
	like($out, qr/mail_owner = no-such-user-here: no such user/, '... saying why');
}

# ---- reload --------------------------------------------------------------

{
	my $old = $t->smtp;
	my ($code) = $old->read_reply;
	is($code, 220, 'a session opened before the reload');
	($code) = $old->cmd('EHLO client.example');
	is($code, 250, '... says EHLO');

	$t->set_main(smtpd_banner => '$myhostname ESMTP second');
	ok($t->reload, 'reload logs "reload --"');
	is($t->pid, $master, 'the master is the same process');
	like(banner_of($t), qr/^220 mx\.example\.test ESMTP second$/,
	     'a new session sees the new banner');

	my ($tcode, $ttext) = $old->transaction(to => ['someone@example.net']);
	is($tcode, 250, 'the session opened before the reload completes a transaction');
	like($ttext, qr/queued as/, '... and it is queued');
	($code) = $old->cmd('QUIT');
	is($code, 221, '... and quits');

	ok(wait_until(sub {
		my @now = $t->worker_pids;
		@now == $WORKERS && !grep { my $p = $_; grep { $_ == $p } @workers } @now;
	}), 'the old generation exits once its sessions end; a new one serves');
	is(scalar($t->zombies), 0, 'no zombies');
	@workers = $t->worker_pids;
}

{
	$t->set_main(sluice_smtpd_workers => 'many');
	my ($rc, $out) = $t->sluice('reload');
	is($rc, 1, '`sluice reload` refuses a broken configuration');
	like($out, qr/main\.cf:\d+: .*sluice_smtpd_workers/, '... printing file:line');

	ok($t->reload(expect => qr/reload refused: .*main\.cf:\d+: /),
	   'SIGHUP with a broken configuration logs "reload refused"');
	ok($t->alive, 'the master keeps running');
	like(banner_of($t), qr/ESMTP second$/, 'the old configuration keeps serving');
	is_deeply([$t->worker_pids], \@workers, 'the workers are the same');
	$t->set_main(sluice_smtpd_workers => $WORKERS);
}

# ---- supervision ---------------------------------------------------------

{
	my $victim = $workers[0];
	my $mark = $t->log_mark;
	kill 'KILL', $victim;
	ok($t->wait_log(qr/process sluice\/smtpd pid $victim killed by signal 9/,
			undef, from => $mark),
	   'a killed worker is logged');
	ok(wait_until(sub {
		my @now = $t->worker_pids;
		@now == $WORKERS && !grep { $_ == $victim } @now;
	}), 'and replaced');
	is(scalar($t->zombies), 0, 'no zombies');
	like(banner_of($t), qr/^220 /, 'sessions are served');
	@workers = $t->worker_pids;
}

# ---- stop ----------------------------------------------------------------

{
	my $mark = $t->log_mark;
	my ($rc, $out) = $t->sluice('stop');
	is($rc, 0, '`sluice stop` exits 0');
	ok(defined $t->wait_exit, 'the master exits');
	like($t->log_text($mark), qr/sluice\/master\[$master\]: terminating on signal 15/,
	     'logs "terminating on signal 15"');
	ok(wait_until(sub { !grep { !SluiceTest::gone($_) } @workers }),
	   'no worker is left');
	($rc, $out) = $t->sluice('status');
	is($rc, 1, 'status exits 1 when stopped');
	like($out, qr/^sluice is not running$/m, '... and says so');
	($rc, $out) = $t->sluice('stop');
	is($rc, 1, 'stop when not running exits 1');
}

# ---- connection limit across workers --------------------------------------

{
	my $limit = 3;
	my $l = SluiceTest->new(main => { smtpd_client_connection_count_limit => $limit,
					  smtpd_client_event_limit_exceptions => '' });
	my (@open, @codes, $refusal);
	for (1 .. $limit + 2) {
		my $c = $l->smtp;
		my ($code, $text) = $c->read_reply;
		push @codes, $code // 'none';
		push @open, $c;
		$refusal //= $text if defined $code && $code eq '421';
	}
	is(scalar(grep { $_ eq '220' } @codes), $limit, "$limit connections are served");
	is(scalar(grep { $_ eq '421' } @codes), 2, 'the others are refused');
	like($refusal // '', qr/^421 4\.7\.0 mx\.example\.test Error: too many connections from 127\.0\.0\.1$/,
	     "with Postfix's reply");
	my %pids = map { $_ => 1 } ($l->log_text =~ /sluice\/smtpd\[(\d+)\]: connect from/g);
	note(scalar(keys %pids) . ' worker(s) took the connections');
	$_->cmd('QUIT') for @open;
	ok(wait_until(sub { banner_of($l) =~ /^220 / }), 'once they leave, new ones are served');

	# A worker killed with a session open never disconnects it: its
	# counts must go with it, or the client stays locked out.
	$l->set_main(smtpd_client_connection_count_limit => 1);
	$l->reload;
	my $mark = $l->log_mark;
	my $held = $l->smtp;
	is(scalar $held->read_reply, 220, 'limit 1: one session');
	my $line = $l->wait_log(qr/sluice\/smtpd\[\d+\]: connect from/, undef, from => $mark);
	my ($victim) = ($line // '') =~ /smtpd\[(\d+)\]/;
	is(scalar(() = banner_of($l) =~ /^421 /), 1, 'a second one is refused');
	kill 'KILL', $victim if $victim;
	ok($l->wait_log(qr/pid $victim killed by signal 9/, undef, from => $mark),
	   'the worker holding it is killed');
	ok(wait_until(sub { banner_of($l) =~ /^220 / }),
	   "the dead worker's connection no longer counts");
	$l->stop;
}

# ---- the daemon: start, log file, stop -------------------------------------

{
	my $d = SluiceTest->new(start => 0);
	$d->set_main(maillog_file => $d->dir . '/maillog');
	my ($rc, $out) = $d->start_daemon;
	is($rc, 0, '`sluice start` exits 0') or diag($out);
	my $pid = $d->pidfile_pid;
	ok($d->wait_log(qr/sluice\/master\[$pid\]: daemon started/), 'the daemon logs to maillog_file');
	($rc, $out) = $d->sluice('status');
	like($out, qr/sluice is running \(pid $pid\)/, 'status finds the daemon');
	like(banner_of($d), qr/^220 mx\.example\.test /, 'the daemon serves');
	like($d->log_text, qr/^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ sluice\/smtpd\[\d+\]: connect from /m,
	     'workers log to the same file');
	($rc, $out) = $d->sluice('stop');
	is($rc, 0, '`sluice stop` stops the daemon');
	ok(wait_until(sub { SluiceTest::gone($pid) }), 'the daemon is gone');
}

# ---- a broken configuration at start ----------------------------------------

{
	my $b = SluiceTest->new(main => { sluice_smtpd_workers => 'many' }, start => 0);
	my ($rc, $out) = $b->sluice('run');
	isnt($rc, 0, 'a broken configuration refuses to start');
	like($out, qr/main\.cf:\d+: .*sluice_smtpd_workers/, '... with file:line');
	like($out, qr/not starting/, '... and says it does not start');
}

done_testing;
