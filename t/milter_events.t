#!/usr/bin/perl
# milter_events.t - the milter events and replies that match Postfix
# 3.7's smtpd beyond the plain stages (build/t/test_milter, a libmilter
# milter): unknown commands (SMFIC_UNKNOWN), a reject or tempfail at
# connect or HELO that persists for the session, the client's ESMTP
# parameters of MAIL and RCPT, rejected recipients for milters that ask
# for them (SMFIP_RCPT_REJ), the queue ID macro at MAIL with
# smtpd_delay_open_until_valid_rcpt = no, and smfi_chgfrom's parameters.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/milter";
use Test::More;
use SluiceTest;
use MilterTest;

# A server with one milter answering per `script`.
sub setup { MilterTest->with_sluice(@_) }

sub ehlo_client {
	my ($t) = @_;
	my $c = $t->smtp;
	$c->read_reply;
	$c->cmd('EHLO client.example');
	return $c;
}

# ---- unknown commands --------------------------------------------------------

{
	my ($t, $m) = setup("reply unknown reject\n");
	my $c = ehlo_client($t);
	my ($code, $text) = $c->cmd('XYZZY plugh');
	is($text, '550 5.7.1 Command rejected', 'unknown command: the milter\'s reject replaces "command not recognized"');
	ok($m->saw(qr/^unknown XYZZY$/m), '... SMFIC_UNKNOWN carries the command word, as Postfix sends it');
	ok($t->wait_log(qr/NOQUEUE: milter-reject: UNKNOWN from localhost\[127\.0\.0\.1\]: 550 5\.7\.1 Command rejected; proto=ESMTP helo=<client\.example>/),
	   '... logged as milter-reject: UNKNOWN');
	($code) = $c->cmd('NOOP');
	is($code, 250, '... and the session goes on');
}

{
	my ($t, $m) = setup("reply unknown replycode 421 4.7.0 go away\n");
	my $c = ehlo_client($t);
	my ($code, $text) = $c->cmd('BOGUS');
	is($text, '421 4.7.0 go away', 'a 421 reply to an unknown command');
	ok($c->closed(5), '... closes the session');
}

{
	my ($t, $m) = setup("");
	my $c = ehlo_client($t);
	my ($code, $text) = $c->cmd('XYZZY');
	is($text, '500 5.5.2 Error: command not recognized', 'milter continues: the usual reply');
	ok($m->saw(qr/^unknown XYZZY$/m), '... after the milter saw it');
}

{
	my ($t, $m) = setup("steps NOUNKNOWN\nreply unknown reject\n");
	my $c = ehlo_client($t);
	my ($code, $text) = $c->cmd('XYZZY');
	is($text, '500 5.5.2 Error: command not recognized', 'SMFIP_NOUNKNOWN: the usual reply');
	$c->cmd('QUIT');
	ok($m->saw(qr/^close$/m), 'session over');
	unlike($m->log, qr/^unknown/m, '... and no unknown event');
}

# ---- connect and HELO rejects persist, as in Postfix -------------------------

{
	my ($t, $m) = setup("reply connect tempfail\n");
	my $c = $t->smtp;
	my ($code, $text) = $c->read_reply;
	is($code, 220, 'tempfail at connect: the usual 220 greeting');
	($code) = $c->cmd('EHLO client.example');
	is($code, 250, '... EHLO gets its 250');
	($code, $text) = $c->cmd('MAIL FROM:<a@example.org>');
	is($text, '451 4.7.1 Service unavailable - try again later', '... MAIL gets the milter\'s tempfail');
	($code, $text) = $c->cmd('STARTTLS');
	is($text, '454 4.3.0 Try again later', '... STARTTLS a 454, as Postfix maps a 4xx');
	($code, $text) = $c->cmd('XYZZY');
	is($text, '451 4.7.1 Service unavailable - try again later', '... an unknown command the tempfail');
	($code) = $c->cmd('QUIT');
	is($code, 221, '... QUIT works');
	ok($t->wait_log(qr/NOQUEUE: milter-reject: CONNECT from localhost\[127\.0\.0\.1\]: 451 4\.7\.1 Service unavailable - try again later; proto=SMTP/),
	   'logged as milter-reject: CONNECT');
	ok($t->wait_log(qr/NOQUEUE: milter-reject: MAIL from localhost\[127\.0\.0\.1\]: 451 4\.7\.1 Service unavailable - try again later; from=<a\@example\.org>/),
	   '... and at MAIL');
	unlike($m->log, qr/^(?:helo|mail)/m, 'the milter is not asked again');
}

{
	my ($t, $m) = setup("reply connect replycode 550 5.7.0 Not from you\n");
	my $c = $t->smtp;
	my ($code, $text) = $c->read_reply;
	is($text, '554 mx.example.test ESMTP not accepting connections', '5xx at connect: Postfix\'s 554 greeting');
	($code, $text) = $c->cmd('EHLO client.example');
	is($text, "250-mx.example.test\n250 ENHANCEDSTATUSCODES", '... EHLO gets its 250, announcing ENHANCEDSTATUSCODES only');
	($code, $text) = $c->cmd('MAIL FROM:<a@example.org>');
	is($text, '550 5.7.0 Not from you', '... MAIL the milter\'s reply');
	($code, $text) = $c->cmd('STARTTLS');
	is($text, '550 5.7.0 Not from you', '... STARTTLS too (a 5xx as it is)');
}

{
	my ($t, $m) = setup("reply connect replycode 421 4.7.0 busy\n");
	my $c = $t->smtp;
	my ($code, $text) = $c->read_reply;
	is($text, '421 mx.example.test Service unavailable - try again later', '421 at connect: Postfix\'s 421 greeting');
	ok($c->closed(5), '... and the session ends');
}

{
	my ($t, $m) = setup("reply helo reject\n");
	my $c = $t->smtp;
	$c->read_reply;
	my ($code) = $c->cmd('EHLO client.example');
	is($code, 250, 'reject at HELO: EHLO still gets its 250');
	my $text;
	($code, $text) = $c->cmd('MAIL FROM:<a@example.org>');
	is($text, '550 5.7.1 Command rejected', '... MAIL gets the reject');
	($code) = $c->cmd('EHLO again.example');
	is($code, 250, '... a second EHLO gets its 250 too');
	($code, $text) = $c->cmd('MAIL FROM:<a@example.org>');
	is($text, '550 5.7.1 Command rejected', '... and MAIL the reject still');
	ok($t->wait_log(qr/NOQUEUE: milter-reject: HELO from localhost\[127\.0\.0\.1\]: 550 5\.7\.1 Command rejected; proto=ESMTP helo=<client\.example>/),
	   'logged as milter-reject: HELO');
}

# ---- ESMTP parameters as the client sent them ----------------------------------

{
	my ($t, $m) = setup("");
	my $c = ehlo_client($t);
	my ($code) = $c->cmd('MAIL FROM:<a@example.org> size=1000 BODY=8BITMIME ret=hdrs ENVID=abc');
	is($code, 250, 'MAIL with parameters');
	($code) = $c->cmd('RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.net');
	is($code, 250, 'RCPT with parameters');
	$c->cmd('QUIT');
	ok($m->saw(qr/^close$/m), 'session over');
	like($m->log, qr/^mail <a\@example\.org> size=1000 BODY=8BITMIME ret=hdrs ENVID=abc$/m,
	     'SMFIC_MAIL: the parameters as the client wrote them');
	like($m->log, qr/^rcpt <b\@example\.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b\@example\.net$/m,
	     'SMFIC_RCPT: the RCPT parameters too');
}

# ---- rejected recipients (SMFIP_RCPT_REJ) ----------------------------------------

my %reject_bad = (smtpd_recipient_restrictions =>
		  'check_recipient_access inline:{ bad@example.net=REJECT }, permit');
{
	my ($t, $m) = setup("steps RCPT_REJ\nsymlist rcpt {rcpt_addr} {rcpt_host} {rcpt_mailer}\n",
			    %reject_bad);
	my $c = ehlo_client($t);
	$c->cmd('MAIL FROM:<a@example.org>');
	my ($code, $text) = $c->cmd('RCPT TO:<bad@example.net>');
	like($text, qr/^554 5\.7\.1 <bad\@example\.net>: Recipient address rejected: Access denied$/,
	     'a recipient the restrictions reject is still rejected');
	($code) = $c->cmd('RCPT TO:<good@example.net>');
	is($code, 250, '... the next is accepted');
	$c->cmd('QUIT');
	ok($m->saw(qr/^close$/m), 'session over');
	my $log = $m->log;
	like($log, qr/^rcpt <bad\@example\.net>$/m, 'SMFIP_RCPT_REJ: the milter hears of the rejected recipient');
	like($log, qr/^macro rcpt \{rcpt_mailer\}=error$/m, '... with {rcpt_mailer} error');
	like($log, qr/^macro rcpt \{rcpt_host\}=5\.7\.1$/m, '... {rcpt_host} the enhanced status code');
	like($log, qr/^macro rcpt \{rcpt_addr\}=Recipient address rejected: Access denied$/m,
	     '... {rcpt_addr} the reply text, as Postfix sets them');
	like($log, qr/^macro rcpt \{rcpt_mailer\}=smtp$/m, '... the accepted one has {rcpt_mailer} smtp');
}

{
	my ($t, $m) = setup("", %reject_bad);
	my $c = ehlo_client($t);
	$c->cmd('MAIL FROM:<a@example.org>');
	my ($code) = $c->cmd('RCPT TO:<bad@example.net>');
	is($code, 554, 'without SMFIP_RCPT_REJ the recipient is rejected');
	$c->cmd('QUIT');
	ok($m->saw(qr/^close$/m), 'session over');
	unlike($m->log, qr/^rcpt <bad/m, '... and the milter does not hear of it');
}

# ---- the queue ID at MAIL ------------------------------------------------------

{
	my ($t, $m) = setup("symlist mail i\n", smtpd_delay_open_until_valid_rcpt => 'no');
	my $c = ehlo_client($t);
	my ($code, $text) = $c->transaction(to => ['b@example.net']);
	is($code, 250, 'smtpd_delay_open_until_valid_rcpt = no: the message is queued');
	my ($id) = $text =~ /queued as (\S+)/;
	ok($m->saw(qr/^macro mail i=\Q$id\E$/m), '... and the milter had its queue ID (i) at MAIL');
	ok($t->wait_log(qr/\Q$id\E: client=localhost\[127\.0\.0\.1\]/), '... logged "client=" under it');
}

{
	my ($t, $m) = setup("reply mail reject\n", smtpd_delay_open_until_valid_rcpt => 'no');
	my $c = ehlo_client($t);
	my ($code) = $c->cmd('MAIL FROM:<a@example.org>');
	is($code, 550, 'a MAIL rejected with the queue file already open');
	ok($t->wait_log(qr/[0-9A-F]+: milter-reject: MAIL from localhost\[127\.0\.0\.1\]: 550 5\.7\.1 Command rejected/),
	   '... logged with its queue ID, as Postfix does then');
	is(scalar(my @q = $t->queue_files('incoming')), 0, '... and its queue file is gone');
}

{
	my ($t, $m) = setup("symlist mail i\n");
	my $c = ehlo_client($t);
	my ($code) = $c->transaction(to => ['b@example.net']);
	is($code, 250, 'by default (yes) the message is queued too');
	$c->cmd('QUIT');
	ok($m->saw(qr/^close$/m), 'session over');
	unlike($m->log, qr/^macro mail i=/m, '... and there is no queue ID at MAIL yet, as in Postfix');
}

# ---- smfi_chgfrom with ESMTP parameters ---------------------------------------

{
	my ($t, $m) = setup("chgfrom <new\@example.org> RET=HDRS ENVID=milter1 SIZE=5\n");
	my $c = ehlo_client($t);
	my ($code, $text) = $c->transaction;
	is($code, 250, 'chgfrom with parameters: queued');
	my ($id) = $text =~ /queued as (\S+)/;
	my (undef, $show) = $t->sluice('queue', 'show', $id);
	like($show, qr/^sender: new\@example\.org$/m, '... the new sender');
	like($show, qr/^dsn_ret: HDRS$/m, '... RET= kept');
	like($show, qr/^dsn_envid: milter1$/m, '... ENVID= kept');
	ok($t->wait_log(qr/\Q$id\E: milter \S+: ignoring ESMTP arguments "SIZE=5"/),
	   '... SIZE= ignored with a warning');
}

done_testing;
