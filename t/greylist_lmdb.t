#!/usr/bin/perl
# greylist_lmdb.t - the bundled greylist plugin (filters/greylist),
# loaded without being named (sluice_builtin_plugins), with its embedded
# store: one LMDB file shared by the two workers.  check_greylist sits
# after reject_unauth_destination, where admins put postgrey.
#
# Asserted, as a postgrey user would check them, with greylist_delay = 2s:
# the first attempt gets 450 4.2.0 with postgrey's reply text and the
# NOQUEUE reject line; a retry before the delay is greylisted again; a
# retry after it is accepted and the queued message carries
# "X-Greylist: delayed N seconds"; the next message of the triplet passes
# at once without the header; a first retry after delay + retry window
# is greylisted anew; after greylist_auto_whitelist_clients passes the
# client network is no longer greylisted; the recipient and client
# whitelists (inline, cidr tables) let a new triplet through at once.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use SluiceTest qw(wait_until);

my ($delay, $window) = (2, 3);
my $t = SluiceTest->new(start => 0);
my $d = $t->dir;
mkdir "$d/gl";
chmod 0777, "$d/gl";            # the workers run as nobody under root
$t->set_main(
	relay_domains => 'example.net',
	mynetworks => '127.0.0.2/32',
	smtpd_recipient_restrictions => 'reject_unauth_destination, check_greylist, permit',
	greylist_store => "lmdb:$d/gl/greylist.lmdb",
	greylist_delay => "${delay}s",
	greylist_retry_window => "${window}s",
	greylist_auto_whitelist_clients => 3,
);
$t->start;

my $c = $t->smtp;
$c->hello('client.example');

sub try_rcpt {
	my ($from, $rcpt) = @_;
	$c->cmd('RSET');
	$c->cmd("MAIL FROM:<$from>");
	my (undef, $text) = $c->cmd("RCPT TO:<$rcpt>");
	return $text // '';
}

# Retry every 0.25s until accepted or `limit` seconds pass; (time
# accepted or undef, how many were greylisted meanwhile).
sub retry_until_accepted {
	my ($from, $rcpt, $limit) = @_;
	my ($t0, $refused) = (time, 0);
	while (time - $t0 < $limit) {
		my $text = try_rcpt($from, $rcpt);
		return (time, $refused) if $text =~ /^250 /;
		$refused++ if $text =~ /^450 4\.2\.0 .*Greylisted/;
		sleep 0.25;
	}
	return (undef, $refused);
}

# Send a message in the accepted transaction; the queued content.
sub send_data {
	my ($subject) = @_;
	my ($code) = $c->cmd('DATA');
	return '' unless ($code // 0) == 354;
	$c->send_raw("Subject: $subject\r\n\r\nhello\r\n.\r\n");
	my (undef, $reply) = $c->read_reply;
	my ($id) = ($reply // '') =~ /queued as (\S+)/ or return '';
	my $q = SluiceTest::read_queue_file($t->queue_path($id));
	return $q ? $q->{content} : '';
}

# ---- first attempt, early retry, retry after the delay ---------------------

my $mark = $t->log_mark;
my $t0 = time;
like(try_rcpt('sender@example.org', 'user@example.net'),
     qr{^450 4\.2\.0 <user\@example\.net>: Recipient address rejected: Greylisted, see http://postgrey\.schweikert\.ch/help/example\.net\.html$},
     'first attempt: 450 4.2.0 with postgrey\'s text');
ok($t->wait_log(qr{NOQUEUE: reject: RCPT from \S+: 450 4\.2\.0 <user\@example\.net>: Recipient address rejected: Greylisted}, undef, from => $mark),
   'logged as a Postfix reject line');
ok($t->wait_log(qr{greylist: action=greylist, reason=new, client_name=\S+, client_address=127\.0\.0\.1, sender=sender\@example\.org, recipient=user\@example\.net}, undef, from => $mark),
   'the decision is logged with the triplet');
like(try_rcpt('sender@example.org', 'user@example.net'), qr/^450 4\.2\.0 .*Greylisted/,
     'a retry before the delay is greylisted again');
my ($accepted, $refused) = retry_until_accepted('sender@example.org', 'user@example.net', $delay + 10);
ok($accepted, 'a retry after the delay is accepted');
cmp_ok($accepted - $t0, '>=', $delay - 1, "... not before greylist_delay = ${delay}s")
    if $accepted;
like(send_data('first'), qr/^X-Greylist: delayed \d+ seconds by sluice-greylist at mx\.example\.test; \w{3}, /m,
     'the message that passed after the delay carries X-Greylist (PREPEND)');

# ---- the retry window ----------------------------------------------------------

$t0 = time;
like(try_rcpt('late@example.org', 'user@example.net'), qr/^450 4\.2\.0 /,
     'another sender: a new triplet, greylisted');
# waiting out delay + window is what is tested here
sleep 0.1 while time - $t0 < $delay + $window + 1.2;
$mark = $t->log_mark;
like(try_rcpt('late@example.org', 'user@example.net'), qr/^450 4\.2\.0 .*Greylisted/,
     'a first retry after greylist_delay + greylist_retry_window is greylisted anew');
ok($t->wait_log(qr{greylist: action=greylist, reason=retry after the retry window}, undef, from => $mark),
   '... and logged so');

# ---- later mail of a known triplet; auto-whitelisting ------------------------

like(try_rcpt('sender@example.org', 'user@example.net'), qr/^250 /,
     'the next message of a triplet that passed is accepted at once');
unlike(send_data('second'), qr/^X-Greylist:/m, '... without X-Greylist');
like(try_rcpt('sender@example.org', 'user@example.net'), qr/^250 /,
     'a third message (the client network\'s third pass)');
$c->cmd('RSET');
$mark = $t->log_mark;
like(try_rcpt('new@example.org', 'someone@example.net'), qr/^250 /,
     'after greylist_auto_whitelist_clients = 3 passes a new triplet of the client is accepted');
ok($t->wait_log(qr{greylist: action=pass, reason=client AWL}, undef, from => $mark), '... as client AWL');
$c->cmd('QUIT');

# ---- whitelists -------------------------------------------------------------------

$t->write_file('gl_clients.cidr', "127.0.0.0/8 OK\n");
$t->set_main(greylist_auto_whitelist_clients => 0,
	     greylist_recipient_whitelist_maps => 'inline:{ white@example.net=OK, whitedomain.example.net=OK }');
$t->reload;
$c = $t->smtp;
$c->hello('client.example');
like(try_rcpt('w@example.org', 'white@example.net'), qr/^250 /,
     'a recipient in greylist_recipient_whitelist_maps is accepted at the first attempt');
like(try_rcpt('w@example.org', 'other@example.net'), qr/^450 4\.2\.0 /,
     '... another recipient is greylisted (auto-whitelisting off)');
$c->cmd('QUIT');

$t->set_main(greylist_client_whitelist_maps => "cidr:$d/gl_clients.cidr");
$t->reload;
$c = $t->smtp;
$c->hello('client.example');
$mark = $t->log_mark;
like(try_rcpt('w2@example.org', 'other2@example.net'), qr/^250 /,
     'a client in greylist_client_whitelist_maps (cidr) is accepted at the first attempt');
ok($t->wait_log(qr{greylist: action=pass, reason=client whitelist}, undef, from => $mark), '... logged as whitelisted');
$c->cmd('QUIT');

ok(-s "$d/gl/greylist.lmdb", 'the triplets are in the LMDB file greylist_store names');

# ---- the default store -----------------------------------------------------------

my $t2 = SluiceTest->new(main => {
	relay_domains => 'example.net',
	smtpd_recipient_restrictions => 'reject_unauth_destination, check_greylist, permit',
});
$c = $t2->smtp;
$c->hello('client.example');
$c->cmd('MAIL FROM:<d@example.org>');
my (undef, $text) = $c->cmd('RCPT TO:<user@example.net>');
like($text // '', qr/^450 4\.2\.0 /, 'the default store (lmdb:$queue_directory/private/greylist.lmdb) works');
$c->cmd('QUIT');
ok(-s $t2->config('queue_directory') . '/private/greylist.lmdb', '... in $queue_directory/private/greylist.lmdb');
unlike($t2->log_text, qr/greylist store .* failed/, '... without a store failure');

done_testing;
