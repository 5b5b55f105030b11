#!/usr/bin/perl
# milter_protocol.t - the milter client against a real libmilter milter
# (build/t/test_milter): every reply at every SMTP stage, as the client
# sees it and as the log says it (Postfix's "milter-reject: STAGE from
# host[ip]: ..." lines), the step flags (SMFIP_NO*) and no-reply flags
# (SMFIP_NR_*) the milter negotiates, SKIP, the macros, ABORT on RSET.
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
	my ($code) = $c->read_reply;
	$c->cmd('EHLO client.example');
	return ($c, $code);
}

# ---- reject / tempfail / replycode at each envelope stage ------------------

{
	# Postfix: "554 host ESMTP not accepting connections" instead of the
	# banner; the milter's reply then answers MAIL (t/milter_events.t
	# has the rest of the connect and HELO cases)
	my ($t, $m) = setup("reply connect reject\n");
	my $c = $t->smtp;
	my ($code, $text) = $c->read_reply;
	is($code, 554, 'reject at connect: a 554 greeting');
	like($text, qr/^554 \S+ ESMTP not accepting connections$/, '... with Postfix\'s text');
	($code, $text) = $c->cmd('MAIL FROM:<a@example.org>');
	like($text, qr/^550 5\.7\.1 Command rejected$/, '... and MAIL gets the milter\'s reject');
	ok($t->wait_log(qr/milter-reject: CONNECT from localhost\[127\.0\.0\.1\]: 550 5\.7\.1 Command rejected;/),
	   'logged as milter-reject at CONNECT');
}

{
	my ($t, $m) = setup("reply helo tempfail\n");
	my $c = $t->smtp;
	$c->read_reply;
	my ($code, $text) = $c->cmd('EHLO client.example');
	is($code, 250, 'tempfail at HELO: EHLO still gets its 250 (Postfix)');
	($code, $text) = $c->cmd('MAIL FROM:<a@example.org>');
	like($text, qr/^451 4\.7\.1 Service unavailable - try again later$/, '... MAIL gets the 451, Postfix\'s text');
	ok($t->wait_log(qr/milter-reject: HELO from localhost\[127\.0\.0\.1\]: 451 4\.7\.1 Service unavailable - try again later;/),
	   '... logged at HELO');
}

{
	my ($t, $m) = setup("reply mail replycode 553 5.1.8 Sender domain is not welcome\n");
	my ($c) = ehlo_client($t);
	my ($code, $text) = $c->cmd('MAIL FROM:<a@example.org>');
	is($code, 553, 'replycode at MAIL: the milter\'s code');
	like($text, qr/^553 5\.1\.8 Sender domain is not welcome$/, '... enhanced code and text');
	ok($t->wait_log(qr/NOQUEUE: milter-reject: MAIL from localhost\[127\.0\.0\.1\]: 553 5\.1\.8 Sender domain is not welcome; from=<a\@example\.org> proto=ESMTP helo=<client\.example>/),
	   'logged as Postfix does');
}

{
	my ($t, $m) = setup("reply rcpt:<bad\@example.net> replycode 550 5.7.1 first line|second line\n");
	my ($c) = ehlo_client($t);
	$c->cmd('MAIL FROM:<a@example.org>');
	my ($code, $text) = $c->cmd('RCPT TO:<bad@example.net>');
	is($code, 550, 'multi-line replycode at RCPT');
	is($text, "550-5.7.1 first line\n550 5.7.1 second line", '... both lines, continuation marked');
	($code) = $c->cmd('RCPT TO:<good@example.net>');
	is($code, 250, 'another recipient is still accepted');
	($code, $text) = $c->cmd('DATA');
	is($code, 354, 'DATA');
	$c->send_raw("Subject: x\r\n\r\nbody\r\n.\r\n");
	($code, $text) = $c->read_reply;
	is($code, 250, 'the message is queued');
	my ($id) = $text =~ /queued as (\S+)/;
	my (undef, $show) = $t->sluice('queue', 'show', $id);
	like($show, qr/^recipient: good\@example\.net$/m, '... for the accepted recipient');
	unlike($show, qr/bad\@example/, '... not the rejected one');
	ok($m->saw(qr/^rcpt <bad\@example\.net>$/m), 'the milter saw the rejected RCPT');
}

{
	my ($t, $m) = setup("reply data reject\n");
	my ($c) = ehlo_client($t);
	$c->cmd('MAIL FROM:<a@example.org>');
	$c->cmd('RCPT TO:<b@example.net>');
	my ($code, $text) = $c->cmd('DATA');
	is($code, 550, 'reject at DATA');
	ok($t->wait_log(qr/milter-reject: DATA from localhost\[127\.0\.0\.1\]: 550 5\.7\.1 Command rejected; from=<a\@example\.org> to=<b\@example\.net>/),
	   '... logged with from and to');
}

# ---- content stages -----------------------------------------------------------

for my $stage (qw(header eoh body eom)) {
	my ($t, $m) = setup("reply $stage reject\n");
	my ($c) = ehlo_client($t);
	my ($code, $text) = $c->transaction(to => ['b@example.net']);
	is($code, 550, "reject at $stage: end of data refused");
	ok($t->wait_log(qr/: milter-reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: 5\.7\.1 Command rejected; from=<sender\@example\.org> to=<b\@example\.net> proto=ESMTP helo=<client\.example>/),
	   "... logged as milter-reject at END-OF-MESSAGE (no reply code, as Postfix's cleanup)");
	is(scalar(my @q = $t->queue_files('incoming')), 0, '... nothing queued');
}

{
	my ($t, $m) = setup("reply eom tempfail\n");
	my ($c) = ehlo_client($t);
	my ($code, $text) = $c->transaction;
	is($code, 451, 'tempfail at end of message: 451');
}

{
	my ($t, $m) = setup("reply eom discard\n");
	my ($c) = ehlo_client($t);
	my ($code, $text) = $c->transaction(to => ['b@example.net']);
	is($code, 250, 'discard at end of message: the client sees success');
	is(scalar(my @q = $t->queue_files('incoming')), 0, '... but nothing is queued');
	ok($t->wait_log(qr/milter-discard: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: milter triggers DISCARD action; from=<sender\@example\.org> to=<b\@example\.net>/),
	   '... logged as milter-discard');
}

{
	my ($t, $m) = setup("reply rcpt discard\n");
	my ($c) = ehlo_client($t);
	my ($code, $text) = $c->transaction(to => ['b@example.net']);
	is($code, 250, 'discard at RCPT: the message is accepted');
	is(scalar(my @q = $t->queue_files('incoming')), 0, '... and dropped');
}

{
	my ($t, $m) = setup("quarantine suspicious content\n");
	my ($c) = ehlo_client($t);
	my ($code, $text) = $c->transaction(to => ['b@example.net']);
	is($code, 250, 'quarantine: accepted');
	my @held = $t->queue_files('hold');
	is(scalar @held, 1, '... into hold/');
	is(scalar(my @q = $t->queue_files('incoming')), 0, '... not incoming/');
	my (undef, $show) = $t->sluice('queue', 'show', $held[0]);
	like($show, qr/suspicious content/, '... with the milter\'s reason');
	ok($t->wait_log(qr/milter-hold: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: milter triggers HOLD action/),
	   '... logged as milter-hold');
}

{
	# Postfix: "DISCARD action is not allowed for connect or helo",
	# ignored: the mail flows and the milter goes on
	my ($t, $m) = setup("reply helo discard\n");
	my ($c) = ehlo_client($t);
	my ($code, $text) = $c->transaction;
	is($code, 250, 'discard at HELO: the message is accepted');
	my ($id) = $text =~ /queued as (\S+)/;
	my (undef, $show) = $t->sluice('queue', 'show', $id // 'none');
	like($show, qr/^recipient: rcpt\@example\.net$/m, '... and queued, not dropped');
	ok($t->wait_log(qr/warning: milter \S+: DISCARD action is not allowed for connect or helo/),
	   '... with Postfix\'s warning');
	ok($m->saw(qr/^eom$/m), '... and the milter still sees the message');
}

{
	# two milters: the first one's reject ends the stage, the second is not asked
	my $m1 = MilterTest->start("reply mail reject\n");
	my $m2 = MilterTest->start("");
	my $t = SluiceTest->new(main => { smtpd_milters => $m1->spec . ', ' . $m2->spec });
	my ($c) = ehlo_client($t);
	my ($code) = $c->cmd('MAIL FROM:<a@example.org>');
	is($code, 550, 'first of two milters rejects MAIL');
	$c->cmd('QUIT');
	ok($m2->saw(qr/^close$/m), 'the second milter\'s session ends');
	like($m2->log, qr/^helo /m, 'the second milter saw HELO');
	unlike($m2->log, qr/^mail /m, '... but not the rejected MAIL');
}

# ---- accept ends the milter's part ---------------------------------------

{
	my ($t, $m) = setup("reply connect accept\n");
	my ($c) = ehlo_client($t);
	my ($code) = $c->transaction;
	is($code, 250, 'accept at connect: mail flows');
	$c->cmd('QUIT');
	ok($m->saw(qr/^close$/m), 'the session ended for the milter');
	unlike($m->log, qr/^(?:helo|mail|rcpt|eom)/m, '... which saw nothing after connect');
}

{
	my ($t, $m) = setup("reply mail accept\n");
	my ($c) = ehlo_client($t);
	my ($code) = $c->transaction;
	is($code, 250, 'accept at MAIL: this message goes without the milter');
	($code) = $c->transaction(to => ['second@example.net']);
	is($code, 250, 'a second message');
	$c->cmd('QUIT');
	ok($m->saw(qr/^close$/m), 'session over');
	my $log = $m->log;
	is(scalar(() = $log =~ /^mail /mg), 2, 'the milter saw both MAIL commands');
	unlike($log, qr/^rcpt/m, '... and no RCPT of either (accepted at MAIL each time)');
}

# ---- step and no-reply flags ----------------------------------------------

{
	my ($t, $m) = setup("steps NOHELO NOMAIL NOHDRS NOEOH\nreply rcpt reject\n");
	my ($c) = ehlo_client($t);
	$c->cmd('MAIL FROM:<a@example.org>');
	my ($code) = $c->cmd('RCPT TO:<b@example.net>');
	is($code, 550, 'steps: RCPT still asked');
	$c->cmd('QUIT');
	ok($m->saw(qr/^close$/m), 'session over');
	my $log = $m->log;
	unlike($log, qr/^helo /m, 'SMFIP_NOHELO: no HELO event');
	unlike($log, qr/^mail /m, 'SMFIP_NOMAIL: no MAIL event');
}

{
	my ($t, $m) = setup("steps NOHDRS NOEOH\nreply body reject\n");
	my ($c) = ehlo_client($t);
	my ($code) = $c->transaction;
	is($code, 550, 'NOHDRS: the body still reaches the milter');
	$c->cmd('QUIT');
	ok($m->saw(qr/^close$/m), 'session over');
	unlike($m->log, qr/^(?:header|eoh)/m, '... and no header or EOH event');
}

{
	# no-reply flags: the milter answers nothing, sluice waits for nothing
	my ($t, $m) = setup("steps NR_CONN NR_HELO NR_MAIL NR_RCPT NR_DATA NR_HDR NR_EOH NR_BODY\n",
			    milter_command_timeout => '2s', milter_content_timeout => '2s');
	my ($c) = ehlo_client($t);
	my $t0 = time;
	my ($code) = $c->transaction;
	is($code, 250, 'no-reply flags: the message is accepted');
	cmp_ok(time - $t0, '<', 2, '... without waiting for replies that never come');
	unlike($t->log_text, qr/warning: milter/, '... and without a warning');
	ok($m->saw(qr/^eom$/m), 'the milter got the whole message');
}

{
	my $big = "Subject: big\r\n\r\n" . (("x" x 99 . "\r\n") x 1500);
	my ($t, $m) = setup("steps SKIP\nreply body skip\n");
	my ($c) = ehlo_client($t);
	my ($code) = $c->transaction(body => $big);
	is($code, 250, 'SKIP: accepted');
	ok($m->saw(qr/^eom$/m), 'the milter got the end of message');
	is(scalar(() = $m->log =~ /^body /mg), 1, '... after one body chunk of several');
}

{
	my $big = "Subject: big\r\n\r\n" . (("y" x 99 . "\r\n") x 1500);
	my ($t, $m) = setup("");
	my ($c) = ehlo_client($t);
	my ($code) = $c->transaction(body => $big);
	is($code, 250, 'a 150K body');
	ok($m->saw(qr/^eom$/m), 'reached the milter');
	my @chunks = $m->log =~ /^body (\d+)$/mg;
	cmp_ok(scalar @chunks, '>=', 3, '... in several chunks');
	ok(!grep({ $_ > 65535 } @chunks), '... none over 64K');
	my $total = 0;
	$total += $_ for @chunks;
	is($total, 1500 * 101, '... CRLF line ends, every byte');
}

# ---- macros and the envelope as the milter sees it --------------------------

{
	my ($t, $m) = setup("symlist connect {client_addr} {client_port}\n");
	my ($c) = ehlo_client($t);
	$c->transaction(from => 'a@example.org', to => ['b@example.net']);
	$c->cmd('QUIT');
	ok($m->saw(qr/^close$/m), 'session over');
	my $log = $m->log;
	like($log, qr/^connect localhost$/m, 'SMFIC_CONNECT with the client name');
	like($log, qr/^macro connect j=mx\.example\.test$/m, 'j at connect');
	like($log, qr/^macro connect \{daemon_name\}=mx\.example\.test$/m, '{daemon_name} ($myhostname)');
	like($log, qr/^macro connect v=sluice \S+$/m, 'v: $mail_name $mail_version');
	like($log, qr/^macro connect _=localhost \[127\.0\.0\.1\]$/m, '_');
	like($log, qr/^macro connect \{client_addr\}=127\.0\.0\.1$/m, '{client_addr}, asked for at negotiation');
	like($log, qr/^macro connect \{client_port\}=\d+$/m, '{client_port}, asked for at negotiation');
	like($log, qr/^helo client\.example$/m, 'SMFIC_HELO');
	like($log, qr/^mail <a\@example\.org>$/m, 'SMFIC_MAIL');
	like($log, qr/^macro mail \{mail_addr\}=a\@example\.org$/m, '{mail_addr}');
	like($log, qr/^rcpt <b\@example\.net>$/m, 'SMFIC_RCPT');
	like($log, qr/^macro rcpt \{rcpt_addr\}=b\@example\.net$/m, '{rcpt_addr}');
	like($log, qr/^macro eom i=[0-9A-F]+$/m, 'i (the queue ID) at end of message');
	like($log, qr/^header Received:from client\.example/m, 'the headers, ours first');
	like($log, qr/^header Subject:test$/m, 'header values without the leading space');
	like($log, qr/^bodyline hello$/m, 'the body');
}

{
	my ($t, $m) = setup("", milter_macro_daemon_name => 'ORIGINATING');
	my ($c) = ehlo_client($t);
	$c->cmd('QUIT');
	ok($m->saw(qr/^macro connect \{daemon_name\}=ORIGINATING$/m),
	   'milter_macro_daemon_name sets {daemon_name}');
}

{
	my ($t, $m) = setup("");
	my ($c) = ehlo_client($t);
	$c->cmd('MAIL FROM:<a@example.org> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=abc');
	$c->cmd('QUIT');
	ok($m->saw(qr/^close$/m), 'session over');
	like($m->log, qr/^mail <a\@example\.org> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=abc$/m,
	     'SMFIC_MAIL carries the ESMTP parameters');
}

{
	# milter_protocol = 2: no DATA event, no no-reply flags, edits still work
	my ($t, $m) = setup("steps NR_RCPT\naddheader X-Old-Protocol yes\n",
			    milter_protocol => 2);
	my ($c) = ehlo_client($t);
	my ($code, $text) = $c->transaction;
	is($code, 250, 'milter_protocol = 2: mail flows');
	$c->cmd('QUIT');
	ok($m->saw(qr/^close$/m), 'session over');
	unlike($m->log, qr/^data$/m, '... no SMFIC_DATA (a version 4 event)');
	my ($id) = $text =~ /queued as (\S+)/;
	my (undef, $show) = $t->sluice('queue', 'show', $id // 'none');
	like($show, qr/^X-Old-Protocol: yes$/m, '... and the header is added');
}

# ---- abort ------------------------------------------------------------------

{
	my ($t, $m) = setup("");
	my ($c) = ehlo_client($t);
	$c->cmd('MAIL FROM:<a@example.org>');
	$c->cmd('RCPT TO:<b@example.net>');
	$c->cmd('RSET');
	$c->cmd('QUIT');
	ok($m->saw(qr/^abort$/m), 'RSET in a transaction: SMFIC_ABORT');
	ok($m->saw(qr/^close$/m), 'QUIT: the milter\'s session closes');
}

done_testing;
