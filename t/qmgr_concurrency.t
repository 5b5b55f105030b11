#!/usr/bin/perl
# qmgr_concurrency.t - scheduling (docs/queue-manager.md "Scheduling"),
# seen from the next hop: an smtp-sink that takes a second over each
# DATA, whose open connections are counted while the queue drains.
#  - per-destination concurrency starts at
#    TRANSPORT_initial_destination_concurrency and grows with successes
#    up to TRANSPORT_destination_concurrency_limit, never beyond;
#  - a transport's master.cf maxproc bounds its parallel deliveries;
#  - fairness: with active/ full of a deferred backlog for a slow
#    destination, a new message still goes out at once.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use Time::HiRes qw(sleep time);
use SluiceTest qw(wait_until);
use QmgrTest qw(start_sink dumps qmgr_sluice send_mail established $SINK);

-x $SINK or BAIL_OUT('smtp-sink (the postfix package) is not installed' . ': run scripts/install-deps');

my $tmp = File::Temp::tempdir(CLEANUP => 1);
chmod 0755, $tmp;

# Send `n` messages to `rcpt` in one session.
sub send_many {
	my ($t, $n, $rcpt, $tag) = @_;
	my $c = $t->smtp;
	$c->hello('client.example');
	my $ok = 0;
	for my $i (1 .. $n) {
		my ($code) = $c->transaction(from => 'alice@example.org', to => [$rcpt],
					     body => "Subject: $tag $i\n\nhello\n");
		$ok++ if defined $code && $code eq '250';
	}
	$c->cmd('QUIT');
	return $ok;
}

# Watch the sink's connections until `done` is true: the counts that
# held for at least 0.1s (a delivery holds its connection a second; a
# connection being closed is gone in a moment), in order, without repeats.
sub watch {
	my ($port, $done, $timeout) = @_;
	my (@seen, $cur, $since);
	my $deadline = time + $timeout;
	while (!$done->() && time < $deadline) {
		my $n = established($port);
		($cur, $since) = ($n, time) if !defined $cur || $n != $cur;
		push @seen, $n if time - $since >= 0.1 && !(@seen && $seen[-1] == $n);
		sleep 0.02;
	}
	return @seen;
}

# ---- growth to the limit, and not beyond ----------------------------------------------

my $slow = start_sink("$tmp/slow", opts => ['-w', '1']);
my $t = qmgr_sluice(main => {
	relayhost => "[127.0.0.1]:$slow",
	smtp_connection_cache_on_demand => 'no',	# a connection per delivery
	smtp_initial_destination_concurrency => 1,
	smtp_destination_concurrency_limit => 3,
	transport_maps => 'texthash:%DIR%/transport',
}, services => "narrow unix - - n - 2 smtp\n",
   files => { transport => "narrow.example narrow:[127.0.0.1]:$slow\n" });

my $N = 16;
is(send_many($t, $N, 'bob@example.net', 'grow'), $N, "$N messages queued for one destination");
my @seen = watch($slow, sub { (grep { /Subject: grow/ } dumps("$tmp/slow")) >= $N }, 40);
my ($max) = sort { $b <=> $a } @seen;
is((grep { $_ > 0 } @seen)[0], 1, 'deliveries start one at a time (initial concurrency 1)') or diag("@seen");
is($max, 3, '... and grow to the limit of 3, never more') or diag("@seen");
is(scalar(grep { /Subject: grow/ } dumps("$tmp/slow")), $N, "all $N arrive");

# maxproc 2 on the transport, with a concurrency window of 20.
$t->stop;
$t = qmgr_sluice(main => {
	relayhost => "[127.0.0.1]:$slow",
	smtp_connection_cache_on_demand => 'no',
	transport_maps => 'texthash:%DIR%/transport',
}, services => "narrow unix - - n - 2 smtp\n",
   files => { transport => "narrow.example narrow:[127.0.0.1]:$slow\n" });
$N = 8;
send_many($t, $N, 'carol@narrow.example', 'narrow');
@seen = watch($slow, sub { (grep { /Subject: narrow/ } dumps("$tmp/slow")) >= $N }, 30);
($max) = sort { $b <=> $a } @seen;
cmp_ok($max, '<=', 2, "a transport with maxproc 2 keeps at most 2 connections ($max)") or diag("@seen");
is(scalar(grep { /Subject: narrow/ } dumps("$tmp/slow")), $N, "... and delivers all $N");
$t->stop;

# ---- fairness: new mail against a deferred backlog -------------------------------------

my $fast = start_sink("$tmp/fast");
$t = qmgr_sluice(main => {
	relayhost => "[127.0.0.1]:$fast",
	transport_maps => 'texthash:%DIR%/transport',
	qmgr_message_active_limit => 2,
	smtp_destination_concurrency_limit => 1,
	smtp_initial_destination_concurrency => 1,
	# retry: recipients must reach the queue manager (smtpd refuses
	# them at RCPT time otherwise, as Postfix's reject_unlisted_recipient)
	smtpd_reject_unlisted_recipient => 'no',
}, files => { transport => "backlog.example retry:4.0.0 not yet\n" });
my $B = 20;
is(send_many($t, $B, 'dave@backlog.example', 'backlog'), $B, "a backlog of $B messages");
ok(wait_until(sub { my @d = $t->queue_files('deferred'); @d == $B }, 20), '... all deferred');
$t->write_file('transport', "backlog.example smtp:[127.0.0.1]:$slow\n");
my $mark = $t->log_mark;
my ($rc, $out) = $t->sluice('queue', 'flush');
is($rc, 0, 'sluice queue flush: the backlog comes back, two at a time') or diag($out);
ok($t->wait_log(qr/to=<dave\@backlog\.example>, .*status=sent/, 10, from => $mark),
   '... and goes out to its slow next hop');
my $id = send_mail($t, from => 'alice@example.org', to => ['erin@example.net'],
		   body => "Subject: new mail\n\nhello\n");
ok($t->wait_log(qr/\Q$id\E: removed/, 10, from => $mark), 'new mail is delivered meanwhile');
my $sent = () = $t->log_text($mark) =~ /to=<dave\@backlog\.example>, .*status=sent/g;
cmp_ok($sent, '<=', 5, "... after $sent of the $B backlog messages, not after all of them");
$t->stop;

done_testing;
