#!/usr/bin/perl
# regex_filter.t - header_checks FILTER end to end: a header that matches
# a "FILTER transport:destination" rule gives the message its content
# filter (the regex plugin calls sluice_action() at end of message); the
# filter lands in the queued envelope and the queue manager delivers the
# message to that transport and next hop (Postfix's smtp-sink standing in
# for the filter) for its original recipient, not along the normal route.
# A message whose headers do not match takes the normal route.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use QmgrTest qw(start_sink dumps qmgr_sluice send_mail $SINK);

-x $SINK or BAIL_OUT('smtp-sink (the postfix package) is not installed' . ': run scripts/install-deps');

my $tmp = File::Temp::tempdir(CLEANUP => 1);
chmod 0755, $tmp;
my $port_relay = start_sink("$tmp/relay");
my $port_filter = start_sink("$tmp/filter");

my $t = qmgr_sluice(
	files => { header_checks => "/^X-Scan:\\s*yes/\tFILTER smtp:[127.0.0.1]:$port_filter\n" },
	main => {
		relayhost => "[127.0.0.1]:$port_relay",
		local_recipient_maps => '',
		header_checks => 'pcre:%DIR%/header_checks',
	});

my $mark = $t->log_mark;
my $id = send_mail($t, from => 'alice@example.org', to => ['bob@example.net'],
		   body => "Message-ID: <scanned\@client.example>\nSubject: f\nX-Scan: yes\n\nhello\n");
ok($id, 'the message is queued');
ok($t->wait_log(qr/: regex: filter: header X-Scan: yes from localhost\[127\.0\.0\.1\]; from=<alice\@example\.org> to=<bob\@example\.net> proto=ESMTP helo=<client\.example>: smtp:\[127\.0\.0\.1\]:$port_filter$/m,
		undef, from => $mark), 'the FILTER action is logged as Postfix\'s cleanup logs it');
ok($t->wait_log(qr/\Q$id\E: removed$/m, 15, from => $mark), 'delivered and removed');
like($t->log_text($mark),
     qr{\Q$id\E: to=<bob\@example\.net>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$port_filter, .*status=sent},
     'delivered to the filter\'s next hop');
unlike($t->log_text($mark), qr/not applied|outside a restriction/, 'no warning about the action');
my @got = grep { /Message-ID: <scanned\@client\.example>/i } dumps("$tmp/filter");
is(scalar @got, 1, 'the filter has the message');
like($got[0] // '', qr/^X-Rcpt-Args: <bob\@example\.net>$/m, '... for the original recipient');
is(scalar(grep { /scanned\@client/ } dumps("$tmp/relay")), 0, '... and the normal route got nothing');

$mark = $t->log_mark;
$id = send_mail($t, from => 'alice@example.org', to => ['dave@example.net'],
		body => "Message-ID: <plain\@client.example>\nSubject: p\nX-Scan: no\n\nhello\n");
ok($t->wait_log(qr/\Q$id\E: removed$/m, 15, from => $mark), 'no match: delivered');
is(scalar(grep { /plain\@client\.example/ } dumps("$tmp/relay")), 1,
   'no match: the normal route has the message');
is(scalar(grep { /plain\@client\.example/ } dumps("$tmp/filter")), 0,
   'no match: the filter got nothing');

done_testing;
