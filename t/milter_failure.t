#!/usr/bin/perl
# milter_failure.t - a milter that is down, slow, or closes mid-message
# gets its default action (milter_default_action, or default_action= in
# the per-milter braces form), with Postfix's warnings in the log; the
# next milters still run; SMFIR_PROGRESS keeps a slow milter alive; and
# the session never blocks its worker while a milter is slow.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/milter";
use Test::More;
use Time::HiRes qw(time);
use SluiceTest qw(free_port wait_until);
use MilterTest;

sub client {
	my ($t) = @_;
	my $c = $t->smtp;
	my ($code, $text) = $c->read_reply;
	return ($c, $code, $text);
}

# ---- a milter that is down ------------------------------------------------------

{
	my $port = free_port();
	my $t = SluiceTest->new(main => { smtpd_milters => "inet:127.0.0.1:$port" });
	my ($c, $code, $text) = client($t);
	# Postfix: the usual 220, then the default action's reply to MAIL
	is($code, 220, 'milter down, default tempfail: the usual greeting, as Postfix');
	($code) = $c->cmd('EHLO client.example');
	is($code, 250, '... EHLO its 250');
	($code, $text) = $c->cmd('MAIL FROM:<a@example.org>');
	like($text, qr/^451 4\.7\.1 Service unavailable - try again later$/,
	     '... and MAIL gets 451 with Postfix\'s text: no mail is taken');
	ok($t->wait_log(qr/warning: connect to Milter service inet:127\.0\.0\.1:$port: Connection refused/),
	   'warning: connect to Milter service ...: Connection refused');
}

{
	my $port = free_port();
	my $t = SluiceTest->new(main => { smtpd_milters => "inet:127.0.0.1:$port",
					  milter_default_action => 'accept' });
	my ($c, $code) = client($t);
	is($code, 220, 'milter down, default accept: the greeting');
	$c->cmd('EHLO client.example');
	($code) = $c->transaction;
	is($code, 250, '... and mail is accepted without it');
}

{
	my $port = free_port();
	my $t = SluiceTest->new(main => { smtpd_milters => "inet:127.0.0.1:$port",
					  milter_default_action => 'reject' });
	my ($c, $code, $text) = client($t);
	like($text, qr/^554 \S+ ESMTP not accepting connections$/,
	     'milter down, default reject: Postfix\'s 554 greeting');
	$c->cmd('EHLO client.example');
	($code, $text) = $c->cmd('MAIL FROM:<a@example.org>');
	like($text, qr/^550 5\.5\.0 Service unavailable$/, '... and MAIL gets 550 5.5.0');
}

{
	# the braces form: options for one milter, the next milter still runs
	my $port = free_port();
	my $m = MilterTest->start("addheader X-Second-Milter ran\n");
	my $t = SluiceTest->new(main => {
		smtpd_milters => "{ inet:127.0.0.1:$port, default_action = accept }, " . $m->spec });
	my ($c, $code) = client($t);
	is($code, 220, 'per-milter default_action=accept overrides the tempfail default');
	$c->cmd('EHLO client.example');
	my $text;
	($code, $text) = $c->transaction;
	is($code, 250, '... the message is accepted');
	my ($id) = $text =~ /queued as (\S+)/;
	my (undef, $show) = $t->sluice('queue', 'show', $id);
	like($show, qr/^X-Second-Milter: ran$/m, '... and the next milter did its work');
}

# ---- a slow milter ------------------------------------------------------------------

{
	my $m = MilterTest->start("delay rcpt 4\n");
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec,
					  milter_command_timeout => '1s' });
	my ($c) = client($t);
	$c->cmd('EHLO client.example');
	$c->cmd('MAIL FROM:<a@example.org>');
	my $t0 = time;
	my ($code, $text) = $c->cmd('RCPT TO:<b@example.net>');
	my $took = time - $t0;
	is($code, 451, 'slow at RCPT, command timeout 1s, default tempfail: 451');
	cmp_ok($took, '<', 3.5, '... after the timeout, not the milter\'s delay');
	ok($t->wait_log(qr/warning: milter inet:127\.0\.0\.1:\d+: can't read SMFIC_RCPT reply packet header: Connection timed out/),
	   'warning: milter ...: can\'t read SMFIC_RCPT reply packet header: Connection timed out');
	($code) = $c->cmd('RCPT TO:<c@example.net>');
	is($code, 451, 'the failed milter keeps answering with its default action');
}

{
	# while one session waits for a slow milter, another is served
	my $m = MilterTest->start("delay eom 3\n");
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec,
					  sluice_smtpd_workers => 1,
					  milter_content_timeout => '10s' });
	my ($slow) = client($t);
	$slow->cmd('EHLO slow.example');
	$slow->cmd('MAIL FROM:<a@example.org>');
	$slow->cmd('RCPT TO:<b@example.net>');
	$slow->cmd('DATA');
	$slow->send_raw("Subject: slow\r\n\r\nslow\r\n.\r\n");
	ok($m->saw(qr/^eom$/m), 'the slow milter has the end of message');
	my $t0 = time;
	my ($fast, $code) = client($t);
	is($code, 220, 'meanwhile another client gets its greeting from the one worker');
	my ($c2) = $fast->cmd('EHLO fast.example');
	is($c2, 250, '... and its EHLO answered');
	cmp_ok(time - $t0, '<', 2, '... without waiting for the slow milter');
	($code) = $slow->read_reply;
	is($code, 250, 'the slow message is accepted once the milter answers');
}

{
	my $m = MilterTest->start("delay eom 4\n");
	my $t = SluiceTest->new(main => { smtpd_milters => "{ " . $m->spec
					  . ", content_timeout=1s, default_action=accept }" });
	my ($c) = client($t);
	$c->cmd('EHLO client.example');
	my ($code) = $c->transaction;
	is($code, 250, 'slow at end of message, content_timeout=1s, default_action=accept: accepted');
	ok($t->wait_log(qr/can't read SMFIC_BODYEOB reply packet header: Connection timed out/),
	   '... after the timeout warning');
}

{
	my $m = MilterTest->start("delay eom 4\n");
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec,
					  milter_content_timeout => '1s',
					  milter_default_action => 'reject' });
	my ($c) = client($t);
	$c->cmd('EHLO client.example');
	my ($code, $text) = $c->transaction;
	is($code, 550, 'slow at end of message, default reject: 550');
	is(scalar(my @q = $t->queue_files('incoming')), 0, '... nothing queued');
}

{
	my $m = MilterTest->start("progress eom 4\naddheader X-Patient yes\n");
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec,
					  milter_content_timeout => '2s' });
	my ($c) = client($t);
	$c->cmd('EHLO client.example');
	my ($code, $text) = $c->transaction;
	is($code, 250, 'SMFIR_PROGRESS every second keeps a 4s milter within a 2s timeout');
	my ($id) = $text =~ /queued as (\S+)/;
	my (undef, $show) = $t->sluice('queue', 'show', $id // 'none');
	like($show, qr/^X-Patient: yes$/m, '... and its modification is applied');
	unlike($t->log_text, qr/warning: milter/, '... no warning');
}

{
	# the client goes away while the milter thinks: no crash; the message
	# was complete, so it is queued as Postfix's cleanup would queue it
	my $m = MilterTest->start("delay eom 2\n");
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec });
	my ($c) = client($t);
	$c->cmd('EHLO client.example');
	$c->cmd('MAIL FROM:<a@example.org>');
	$c->cmd('RCPT TO:<b@example.net>');
	$c->cmd('DATA');
	$c->send_raw("Subject: gone\r\n\r\nbye\r\n.\r\n");
	ok($m->saw(qr/^eom$/m), 'the milter has the message');
	$c->close;
	ok($t->wait_log(qr/disconnect from localhost/), 'the client is gone');
	ok($m->saw(qr/^(?:abort|close)$/m, 5), 'the milter is told');
	my ($c2, $code) = client($t);
	is($code, 220, 'the server is still there');
	ok(wait_until(sub { scalar(my @q = $t->queue_files('incoming')) == 1 }, 10),
	   'the complete message is queued once');
}

# ---- a milter that closes mid-message -----------------------------------------------

{
	my $m = MilterTest->start("crash body\n");
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec });
	my ($c) = client($t);
	$c->cmd('EHLO client.example');
	my ($code, $text) = $c->transaction;
	is($code, 451, 'milter closes mid-message, default tempfail: 451');
	is(scalar(my @q = $t->queue_files('incoming')), 0, '... nothing queued');
	ok($t->wait_log(qr/warning: milter inet:127\.0\.0\.1:\d+: can't read SMFIC_BODY reply packet header/),
	   '... logged');
	($code) = $c->cmd('RSET');
	is($code, 250, 'the session goes on');
}

{
	my $m = MilterTest->start("crash body\n");
	my $m2 = MilterTest->start("addheader X-Survivor yes\n");
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec . ' ' . $m2->spec,
					  milter_default_action => 'accept' });
	my ($c) = client($t);
	$c->cmd('EHLO client.example');
	my ($code, $text) = $c->transaction;
	is($code, 250, 'closes mid-message, default accept: accepted');
	my ($id) = $text =~ /queued as (\S+)/;
	my (undef, $show) = $t->sluice('queue', 'show', $id // 'none');
	like($show, qr/^X-Survivor: yes$/m, '... and the next milter still ran');
	($code) = $c->transaction;
	is($code, 250, 'the next message of the session goes without the dead milter');
}

{
	my $m = MilterTest->start("crash eom\n");
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec,
					  milter_default_action => 'quarantine' });
	my ($c) = client($t);
	$c->cmd('EHLO client.example');
	my ($code) = $c->transaction;
	is($code, 250, 'closes at end of message, default quarantine: accepted');
	is(scalar(my @h = $t->queue_files('hold')), 1, '... and held');
}

done_testing;
