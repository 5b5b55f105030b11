#!/usr/bin/perl
# qmgr_delivery.t - the queue manager end to end (docs/queue-manager.md):
# mail in over SMTP, out to Postfix's smtp-sink as the next hop.
#  - the qmgr, not smtpd, logs "ID: from=<...>, size=N, nrcpt=N (queue
#    active)"; the delivery line has Postfix's shape and comes from
#    sluice/smtp; then "ID: removed", and the queue is empty;
#  - recipients per delivery are limited by
#    default_destination_recipient_limit;
#  - transport_maps to discard:, error: and retry:, and to a second
#    next hop; error: bounces, retry: defers;
#  - a next hop answering 5xx: status=bounced, and the bounce (null
#    sender, multipart/report, naming the recipient) arrives at the
#    sender's next hop;
#  - NOTIFY=SUCCESS to a next hop that announces DSN (smtp-sink does) is
#    passed on, and no report comes from here (t/qmgr_dsn_relayed.t has
#    the "relayed" report of a next hop without DSN);
#  - without a qmgr line in master.cf nothing is delivered (Postfix's rule).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use SluiceTest qw(wait_until);
use QmgrTest qw(start_sink dumps qmgr_sluice send_mail $SINK);

-x $SINK or BAIL_OUT('smtp-sink (the postfix package) is not installed' . ': run scripts/install-deps');

sub queue_empty {
	my ($t) = @_;
	return !grep { scalar($t->queue_files($_)) } qw(incoming active deferred);
}

# ---- plain delivery -------------------------------------------------------------

my $tmp = File::Temp::tempdir(CLEANUP => 1);
chmod 0755, $tmp;
my $port_a = start_sink("$tmp/a");
my $port_b = start_sink("$tmp/b");
my $port_5 = start_sink("$tmp/5", opts => ['-f', 'RCPT', '-B', '550 5.1.1 No such user here']);

my $t = qmgr_sluice(main => {
	relayhost => "[127.0.0.1]:$port_a",
	transport_maps => 'texthash:%DIR%/transport',
	default_destination_recipient_limit => 2,
	# smtpd refuses error: and retry: recipients at RCPT time, as
	# Postfix's reject_unlisted_recipient does; here they must reach
	# the queue manager's error and retry agents.
	smtpd_reject_unlisted_recipient => 'no',
}, files => { transport => <<"EOF" });
discard.example  discard:
error.example    error:5.1.2 no such domain here
retry.example    retry:4.4.4 try later
bounce.example   smtp:[127.0.0.1]:$port_5
other.example    smtp:[127.0.0.1]:$port_b
EOF

my $mark = $t->log_mark;
my $id = send_mail($t, from => 'alice@example.org', to => ['bob@example.net'],
		   body => "Message-ID: <one\@client.example>\nSubject: one\n\nhello\n");
ok($id, 'the message is queued');
ok($t->wait_log(qr/^.*\Q$id\E: removed$/, 15, from => $mark), '... delivered and removed');
my $log = $t->log_text($mark);
like($log, qr{ sluice/qmgr\[\d+\]: \Q$id\E: from=<alice\@example\.org>, size=\d+, nrcpt=1 \(queue active\)$}m,
     'the queue manager logs "(queue active)"');
unlike($log, qr{sluice/smtpd\[\d+\]: \Q$id\E: from=}, '... and smtpd no longer does');
like($log, qr{ sluice/smtp\[\d+\]: \Q$id\E: to=<bob\@example\.net>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$port_a, delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, status=sent \(250 [^)]*\)$}m,
     'the delivery line has Postfix\'s shape');
ok(index($log, 'status=sent') < index($log, "$id: removed"), '... and comes before "removed"');
my @got = grep { /Message-ID: <one\@client\.example>/i } dumps("$tmp/a");
is(scalar @got, 1, 'the next hop has the message');
like($got[0] // '', qr/^X-Mail-Args: <alice\@example\.org>$/m, '... from the sender');
like($got[0] // '', qr/^X-Rcpt-Args: <bob\@example\.net>$/m, '... to the recipient');
ok(queue_empty($t), 'the queue is empty');

# ---- recipient limit ----------------------------------------------------------------

$mark = $t->log_mark;
my @rcpts = map { "r$_\@example.net" } 1 .. 5;
$id = send_mail($t, from => 'alice@example.org', to => \@rcpts,
		body => "Message-ID: <five\@client.example>\nSubject: five\n\nhello\n");
ok($t->wait_log(qr/\Q$id\E: removed$/, 15, from => $mark), 'five recipients delivered');
$log = $t->log_text($mark);
is(scalar(() = $log =~ /\Q$id\E: to=<r\d\@example\.net>, .*status=sent/g), 5, '... five sent lines');
ok(wait_until(sub { (grep { /five\@client/ } dumps("$tmp/a")) == 3 }, 5),
   '... in three deliveries of at most two recipients');

# ---- transports from transport_maps ---------------------------------------------

$mark = $t->log_mark;
$id = send_mail($t, from => 'alice@example.org',
		to => ['x@discard.example', 'y@other.example'],
		body => "Message-ID: <two\@client.example>\nSubject: two\n\nhello\n");
ok($t->wait_log(qr/\Q$id\E: removed$/, 15, from => $mark), 'discard: and another next hop');
$log = $t->log_text($mark);
like($log, qr{sluice/discard\[\d+\]: \Q$id\E: to=<x\@discard\.example>, relay=none, .*dsn=2\.0\.0, status=sent \(}m,
     'discard: says sent');
like($log, qr{sluice/smtp\[\d+\]: \Q$id\E: to=<y\@other\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$port_b, .*status=sent}m,
     'smtp:[127.0.0.1]:port goes there');

# error: bounces; the bounce goes to the sender's next hop (sink a).
$mark = $t->log_mark;
$id = send_mail($t, from => 'alice@example.org', to => ['z@error.example'],
		body => "Message-ID: <three\@client.example>\nSubject: three\n\nhello\n");
ok($t->wait_log(qr/\Q$id\E: removed$/, 15, from => $mark), 'error: finishes the message');
$log = $t->log_text($mark);
like($log, qr{sluice/error\[\d+\]: \Q$id\E: to=<z\@error\.example>, relay=none, .*dsn=5\.1\.2, status=bounced \(no such domain here\)}m,
     'error:5.1.2 text bounces with that status and text');
like($log, qr{\Q$id\E: sender non-delivery notification: \w+}, '... and a bounce is queued');
ok(wait_until(sub { grep { /^X-Mail-Args: <>$/m && /three\@client\.example/ } dumps("$tmp/a") }, 15),
   '... and reaches the sender\'s next hop');

# A next hop that answers 5xx.
$mark = $t->log_mark;
$id = send_mail($t, from => 'alice@example.org', to => ['nobody@bounce.example'],
		body => "Message-ID: <four\@client.example>\nSubject: four\n\nhello\n");
ok($t->wait_log(qr/\Q$id\E: removed$/, 15, from => $mark), 'a 5xx next hop finishes the message');
$log = $t->log_text($mark);
like($log, qr{sluice/smtp\[\d+\]: \Q$id\E: to=<nobody\@bounce\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$port_5, .*dsn=5\.1\.1, status=bounced \(.*550 5\.1\.1 No such user here}m,
     'status=bounced with the server\'s reply');
my ($bounce) = grep { /^X-Mail-Args: <>$/m && /four\@client\.example/ } dumps("$tmp/a");
ok(wait_until(sub { ($bounce) = grep { /^X-Mail-Args: <>$/m && /four\@client\.example/ } dumps("$tmp/a") }, 15),
   'the bounce arrives at the sender\'s next hop');
like($bounce // '', qr/^X-Rcpt-Args: <alice\@example\.org>$/m, '... addressed to the envelope sender');
like($bounce // '', qr{multipart/report}i, '... as a multipart/report');
like($bounce // '', qr/nobody\@bounce\.example/, '... naming the recipient');

# retry: defers, and the file waits in deferred/ with its retry time.
$mark = $t->log_mark;
$id = send_mail($t, from => 'alice@example.org', to => ['w@retry.example'],
		body => "Message-ID: <six\@client.example>\nSubject: six\n\nhello\n");
ok($t->wait_log(qr/\Q$id\E: to=<w\@retry\.example>, .*status=deferred/, 15, from => $mark),
   'retry: defers');
$log = $t->log_text($mark);
like($log, qr{sluice/retry\[\d+\]: \Q$id\E: to=<w\@retry\.example>, relay=none, .*dsn=4\.4\.4, status=deferred \(try later\)}m,
     '... with its status and text');
ok(wait_until(sub { grep { $_ eq $id } $t->queue_files('deferred') }, 5), '... and the message is in deferred/');
my $mtime = (stat($t->queue_path($id, 'deferred')))[9];
cmp_ok($mtime, '>=', time + 250, '... its mtime is the next retry, minimal_backoff_time away');

# NOTIFY=SUCCESS
$mark = $t->log_mark;
{
	my $c = $t->smtp;
	$c->hello('client.example');
	$c->cmd('MAIL FROM:<alice@example.org>');
	$c->cmd('RCPT TO:<carol@other.example> NOTIFY=SUCCESS');
	$c->cmd('DATA');
	$c->send_raw("Message-ID: <seven\@client.example>\r\nSubject: seven\r\n\r\nhi\r\n.\r\n");
	my ($code, $text) = $c->read_reply;
	($id) = ($text // '') =~ /queued as (\S+)/;
	$c->cmd('QUIT');
}
ok($t->wait_log(qr/\Q$id\E: removed$/, 15, from => $mark), 'NOTIFY=SUCCESS: delivered');
unlike($t->log_text($mark), qr/\Q$id\E: sender delivery status notification/,
       '... to a next hop with DSN: no delivery report from here');
ok(wait_until(sub { grep { /seven\@client\.example/ && /^X-Rcpt-Args: <carol\@other\.example> NOTIFY=SUCCESS\b/m } dumps("$tmp/b") }, 15),
   '... the NOTIFY is passed on to it');

my @warn = grep { /: (?:warning|error|fatal|panic): / } split /\n/, $t->log_text;
is_deeply(\@warn, [], 'no warning in the log');
$t->stop;

# ---- no qmgr line, no delivery ---------------------------------------------------------

my $n = SluiceTest->new(main => { relayhost => "[127.0.0.1]:$port_a" });
$mark = $n->log_mark;
$id = send_mail($n, to => ['late@example.net']);
ok($id && wait_until(sub { grep { $_ eq $id } $n->queue_files('incoming') }, 5),
   'without a qmgr service the message stays in incoming/');
is(scalar(grep { m{sluice/qmgr} } split /\n/, $n->log_text), 0, '... and no queue manager runs');
$n->stop;

done_testing;
