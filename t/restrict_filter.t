#!/usr/bin/perl
# restrict_filter.t - FILTER end to end: a message given a content filter
# by an access action (here through the example plugin's example_action
# restriction, which answers as an access table would) or by
# content_filter is delivered by the queue manager to the filter's
# transport and next hop (Postfix's smtp-sink standing in for the filter),
# for its original recipient, not along the normal route (relayhost here
# points elsewhere); a message without a filter takes the normal route.
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

my $t = qmgr_sluice(main => {
	relayhost => "[127.0.0.1]:$port_relay",
	local_recipient_maps => '',
	sluice_plugins => 'example',
	example_delay_ms => 0,
	example_action => "FILTER smtp:[127.0.0.1]:$port_filter",
	smtpd_sender_restrictions => 'check_sender_filter',
	smtpd_restriction_classes => 'check_sender_filter',
	check_sender_filter => 'example_action',
});

my $mark = $t->log_mark;
my $id = send_mail($t, from => 'alice@example.org', to => ['bob@example.net'],
		   body => "Message-ID: <filtered\@client.example>\nSubject: f\n\nhello\n");
ok($id, 'the message is queued');
ok($t->wait_log(qr/: filter: RCPT from localhost\[127\.0\.0\.1\]: <alice\@example\.org>: Sender address triggers FILTER smtp:\[127\.0\.0\.1\]:$port_filter; from=<alice\@example\.org> to=<bob\@example\.net>/,
		undef, from => $mark), 'the FILTER action is logged as Postfix logs it');
ok($t->wait_log(qr/\Q$id\E: removed$/, 15, from => $mark), 'delivered and removed');
like($t->log_text($mark),
     qr{\Q$id\E: to=<bob\@example\.net>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$port_filter, .*status=sent},
     'delivered to the filter\'s next hop');
my @got = grep { /Message-ID: <filtered\@client\.example>/i } dumps("$tmp/filter");
is(scalar @got, 1, 'the filter has the message');
like($got[0] // '', qr/^X-Rcpt-Args: <bob\@example\.net>$/m, '... for the original recipient');
is(scalar(grep { /filtered\@client/ } dumps("$tmp/relay")), 0, '... and the normal route got nothing');

# content_filter for every message; without it, the normal route
$t->set_main(example_action => 'DUNNO', content_filter => "smtp:[127.0.0.1]:$port_filter");
$t->reload;
$mark = $t->log_mark;
$id = send_mail($t, from => 'alice@example.org', to => ['carol@example.net'],
		body => "Message-ID: <cf\@client.example>\nSubject: cf\n\nhello\n");
ok($t->wait_log(qr/\Q$id\E: removed$/, 15, from => $mark), 'content_filter: delivered');
is(scalar(grep { /cf\@client\.example/ } dumps("$tmp/filter")), 1,
   'content_filter: the filter has the message');

$t->set_main(content_filter => undef);
$t->reload;
$mark = $t->log_mark;
$id = send_mail($t, from => 'alice@example.org', to => ['dave@example.net'],
		body => "Message-ID: <plain\@client.example>\nSubject: p\n\nhello\n");
ok($t->wait_log(qr/\Q$id\E: removed$/, 15, from => $mark), 'no filter: delivered');
is(scalar(grep { /plain\@client\.example/ } dumps("$tmp/relay")), 1,
   'no filter: the normal route has the message');

done_testing;
