#!/usr/bin/perl
# qmgr_dsn_relayed.t - DSN success reports and the next hop
# (docs/bounces.md, "Success reports"), as Postfix's smtp(8) decides:
#  - a NOTIFY=SUCCESS recipient delivered to a next hop that does not
#    announce DSN (smtp-sink -N) gets a success report from here, an RFC
#    3464 report with "Action: relayed" for it, sent to the envelope
#    sender; the RCPT to that hop carries no NOTIFY;
#  - to a next hop that announces DSN (smtp-sink) the NOTIFY (and ORCPT)
#    is passed on and no report comes from here;
#  - a recipient without NOTIFY=SUCCESS gets no report either way.
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
my $port_plain = start_sink("$tmp/plain", opts => ['-N']);   # no DSN
my $port_dsn = start_sink("$tmp/dsn");

my $t = qmgr_sluice(main => {
	relayhost => "[127.0.0.1]:$port_plain",
	transport_maps => 'texthash:%DIR%/transport',
}, files => { transport => "dsn.example  smtp:[127.0.0.1]:$port_dsn\n" });

# One message; its queue ID.
sub send_notify {
	my ($msgid, @rcpt) = @_;
	my $c = $t->smtp;
	$c->hello('client.example');
	$c->cmd('MAIL FROM:<alice@example.org> ENVID=env-' . $msgid);
	$c->cmd("RCPT TO:<$_->[0]>$_->[1]") for @rcpt;
	$c->cmd('DATA');
	$c->send_raw("Message-ID: <$msgid\@client.example>\r\nSubject: $msgid\r\n\r\nhi\r\n.\r\n");
	my ($code, $text) = $c->read_reply;
	$c->cmd('QUIT');
	my ($id) = ($text // '') =~ /queued as (\S+)/;
	return $id;
}

# ---- a next hop without DSN: "relayed" ---------------------------------

my $mark = $t->log_mark;
my $id = send_notify('one', ['bob@example.net', ' NOTIFY=SUCCESS,FAILURE'],
		     ['dan@example.net', '']);
ok($id, 'a message with a NOTIFY=SUCCESS recipient is queued');
ok($t->wait_log(qr/\Q$id\E: removed$/, 20, from => $mark), '... delivered to the next hop without DSN');
my $log = $t->log_text($mark);
like($log, qr/\Q$id\E: to=<bob\@example\.net>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$port_plain, .*status=sent/,
     '... status=sent');
my ($nid) = $log =~ /\Q$id\E: sender delivery status notification: (\w+)/;
ok($nid, '... and a success report is queued');
my $got;
wait_until(sub { ($got) = grep { /^X-Rcpt-Args: <bob\@example\.net>$/m && /one\@client\.example/ } dumps("$tmp/plain") }, 15);
ok($got, 'the RCPT to the next hop carried no NOTIFY (it announced no DSN)');
my $report;
ok(wait_until(sub { ($report) = grep { /^X-Mail-Args: <>$/m && /^X-Rcpt-Args: <alice\@example\.org>$/m
				 && /^Original-Envelope-Id: env-one$/m } dumps("$tmp/plain") }, 15),
   'the report reaches the envelope sender, from the null sender');
$report //= '';
like($report, qr{^Content-Type: multipart/report; report-type=delivery-status;}m, '... an RFC 3464 report');
like($report, qr{^Final-Recipient: rfc822; ?bob\@example\.net\n(?:Original-Recipient: .*\n)?Action: relayed\nStatus: 2\.0\.0$}m,
     '... about bob: Action: relayed, Status: 2.0.0');
unlike($report, qr{^Action: delivered$}m, '... not delivered');
unlike($report, qr{dan\@example\.net}, '... and nothing about the recipient without NOTIFY=SUCCESS');
like($report, qr{^Remote-MTA: dns; ?127\.0\.0\.1$}m, '... naming the next hop');
like($report, qr{^Diagnostic-Code: smtp; 250 2\.0\.0 Ok$}m, '... and its reply, as Postfix: "smtp; 250 ..."');

# ---- a next hop with DSN: passed on, no report ------------------------------

$mark = $t->log_mark;
$id = send_notify('two', ['carol@dsn.example', ' NOTIFY=SUCCESS ORCPT=rfc822;carol@dsn.example']);
ok($t->wait_log(qr/\Q$id\E: removed$/, 20, from => $mark), 'to a next hop with DSN: delivered');
$log = $t->log_text($mark);
like($log, qr/\Q$id\E: to=<carol\@dsn\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$port_dsn, .*status=sent/,
     '... status=sent');
unlike($log, qr/\Q$id\E: sender delivery status notification/, '... and no report from here');
ok(wait_until(sub { grep { /two\@client\.example/
			     && /^X-Rcpt-Args: <carol\@dsn\.example> NOTIFY=SUCCESS ORCPT=rfc822;carol\@dsn\.example$/m
			     && /^X-Mail-Args: <alice\@example\.org> ENVID=env-two$/m } dumps("$tmp/dsn") }, 15),
   '... the NOTIFY, ORCPT and ENVID are passed on to it');
is(scalar(grep { /^X-Mail-Args: <>$/m && /env-two/ } dumps("$tmp/plain"), dumps("$tmp/dsn")), 0,
   '... and no report reached anyone');

my @warn = grep { /: (?:warning|error|fatal|panic): / } split /\n/, $t->log_text;
is_deeply(\@warn, [], 'no warning in the log');
$t->stop;
done_testing;
