#!/usr/bin/perl
# qmgr_double_bounce.t - a bounce that cannot be delivered
# (docs/bounces.md, "Bounces of bounces"), as Postfix 3.7's bounce(8)
# (bounce_notify_service.c, bounce_one_service.c) handles it:
#  - with the default notify_classes (resource, software) an undeliverable
#    bounce (null sender) is dropped: no notice to anyone, the message is
#    removed;
#  - with notify_classes = 2bounce - or bounce, which implies it - it goes
#    to 2bounce_notice_recipient (postmaster), from
#    double-bounce@$myhostname, with the whole bounce returned;
#  - when that postmaster notice fails too, it is discarded with
#    "undeliverable postmaster notification discarded": nothing loops,
#    the queue empties.
# smtp-sink is the relayhost; the failing addresses go by transport_maps
# to a second smtp-sink that answers RCPT with 550, postmaster@$myhostname
# to the first.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use SluiceTest qw(wait_until);
use QmgrTest qw(start_sink dumps qmgr_sluice $SINK);

-x $SINK or BAIL_OUT('smtp-sink (the postfix package) is not installed' . ': run scripts/install-deps');

my $tmp = File::Temp::tempdir(CLEANUP => 1);
chmod 0755, $tmp;
my $port = start_sink("$tmp/sink");
my $port5 = start_sink("$tmp/dead", opts => ['-f', 'RCPT', '-B', '550 5.1.1 No such user here']);

my $t = qmgr_sluice(main => {
	relayhost => "[127.0.0.1]:$port",
	transport_maps => 'texthash:%DIR%/transport',
}, files => { transport => <<"EOF" });
postmaster\@mx.example.test  smtp:[127.0.0.1]:$port
dead.example                smtp:[127.0.0.1]:$port5
EOF

sub queue_empty {
	return !grep { scalar($t->queue_files($_)) } qw(incoming active deferred);
}

# A bounce (null sender) to an address that fails; its queue ID.
sub send_bounce {
	my ($msgid) = @_;
	my $c = $t->smtp;
	$c->hello('client.example');
	$c->cmd('MAIL FROM:<>');
	$c->cmd('RCPT TO:<someone@dead.example>');
	$c->cmd('DATA');
	$c->send_raw("From: MAILER-DAEMON\@elsewhere.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
		     . "Message-ID: <$msgid\@elsewhere.example>\r\n\r\nThe original bounce text.\r\n.\r\n");
	my ($code, $text) = $c->read_reply;
	$c->cmd('QUIT');
	my ($id) = ($text // '') =~ /queued as (\S+)/;
	return $id;
}

# ---- default notify_classes: dropped ------------------------------------------

my $mark = $t->log_mark;
my $id = send_bounce('b1');
ok($id, 'a bounce to a failing address is queued');
ok($t->wait_log(qr/\Q$id\E: removed$/, 20, from => $mark), '... fails and is removed');
my $log = $t->log_text($mark);
like($log, qr/\Q$id\E: to=<someone\@dead\.example>, .*dsn=5\.1\.1, status=bounced/, '... status=bounced');
unlike($log, qr/\Q$id\E: (?:sender|postmaster) non-delivery notification/,
       '... and with the default notify_classes no notice is sent (Postfix)');
ok(queue_empty(), '... nothing is left in the queue');

# ---- notify_classes = 2bounce: to postmaster -------------------------------------

for my $classes ('2bounce', 'bounce') {
	$t->set_main(notify_classes => $classes);
	$t->reload;
	$mark = $t->log_mark;
	my $msgid = "b-$classes";
	$id = send_bounce($msgid);
	ok($t->wait_log(qr/\Q$id\E: removed$/, 20, from => $mark), "notify_classes = $classes: the bounce fails");
	$log = $t->log_text($mark);
	my ($nid) = $log =~ /\Q$id\E: postmaster non-delivery notification: (\w+)/;
	ok($nid, '... a postmaster non-delivery notification is queued');
	ok($nid && $t->wait_log(qr/\Q$nid\E: removed$/, 20, from => $mark), '... and delivered');
	my $dbl;
	ok(wait_until(sub { ($dbl) = grep { /^X-Rcpt-Args: <postmaster\@mx\.example\.test>$/m && /\Q$msgid\E\@elsewhere/ } dumps("$tmp/sink") }, 15),
	   '... it reaches 2bounce_notice_recipient (postmaster)');
	like($dbl // '', qr/^X-Mail-Args: <double-bounce\@mx\.example\.test>$/m, '... from double-bounce@$myhostname');
	like($dbl // '', qr/^Final-Recipient: rfc822; ?someone\@dead\.example$/m, '... reporting the failed recipient');
	like($dbl // '', qr/^Remote-MTA: dns; ?127\.0\.0\.1\nDiagnostic-Code: smtp; 550 5\.1\.1 No such user here$/m,
	     '... with the next hop and its reply, as Postfix');
	like($dbl // '', qr/^The original bounce text\.$/m, '... with the whole undeliverable bounce');
	ok(queue_empty(), '... and the queue is empty');
}

# ---- the postmaster notice fails too: discarded, no loop ----------------------------

$t->set_main(notify_classes => '2bounce', '2bounce_notice_recipient' => 'pm@dead.example');
$t->reload;
$mark = $t->log_mark;
$id = send_bounce('b3');
ok($t->wait_log(qr/\Q$id\E: removed$/, 20, from => $mark), 'postmaster unreachable too: the bounce fails');
my ($nid) = $t->log_text($mark) =~ /\Q$id\E: postmaster non-delivery notification: (\w+)/;
ok($nid, '... a double bounce is queued');
ok($nid && $t->wait_log(qr/\Q$nid\E: removed$/, 20, from => $mark), '... fails in its turn and is removed');
$log = $t->log_text($mark);
like($log, qr/\Q$nid\E: to=<pm\@dead\.example>, .*status=bounced/, '... status=bounced');
like($log, qr/warning: \Q$nid\E: undeliverable postmaster notification discarded$/m,
     '... "undeliverable postmaster notification discarded"');
is(scalar(() = $log =~ /non-delivery notification: /g), 1, '... no notice about the notice: nothing loops');
ok(queue_empty(), '... and the queue is empty');

my @warn = grep { /: (?:warning|error|fatal|panic): / && !/undeliverable postmaster notification discarded/ }
	   split /\n/, $t->log_text;
is_deeply(\@warn, [], 'no other warning in the log');
$t->stop;
done_testing;
