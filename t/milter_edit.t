#!/usr/bin/perl
# milter_edit.t - every modification a milter can make at end of message
# reaches the queued message (as `sluice queue show` prints it): add,
# insert, change and delete headers, replace the body, add recipients
# (with ESMTP arguments too), delete recipients, change the sender.
# Two milters apply in order, the second seeing the first one's changes.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/milter";
use Test::More;
use SluiceTest;
use MilterTest;

my $MSG = "From: a\@example.org\r\nSubject: original\r\nX-Old: one\r\n"
    . "X-Old: two\r\n\r\noriginal body\r\nsecond line\r\n";

# Send one message through `t`; returns the queue show output.
sub send_and_show {
	my ($t, %m) = @_;
	my $c = $t->smtp;
	$c->read_reply;
	$c->cmd('EHLO client.example');
	my ($code, $text) = $c->transaction(from => 'a@example.org',
					    to => $m{to} || ['b@example.net'],
					    body => $MSG);
	$c->cmd('QUIT');
	is($code, 250, 'the message is accepted') or diag($text);
	my ($id) = ($text // '') =~ /queued as (\S+)/;
	return '' unless $id;
	my ($rc, $out) = $t->sluice('queue', 'show', $id);
	return $out;
}

# The header block and the body of a `queue show` output.
sub content {
	my ($show) = @_;
	my ($msg) = $show =~ /\*\*\* MESSAGE CONTENTS [^\n]*\n(.*?)\*\*\* MESSAGE FILE END/s;
	$msg //= '';
	my ($h, $b) = split /\n\n/, $msg, 2;
	return ($h // '', $b // '');
}

{
	my $m = MilterTest->start(<<'S');
addheader X-Added first added
addheader X-Folded line one\n	line two
insheader 0 X-Top on top
insheader 2 X-Third at index two
chgheader Subject 1 changed subject
delheader X-Old 2
chgheader X-Old 1 renewed
S
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec });
	my ($h, $b) = content(send_and_show($t));
	my @names = $h =~ /^([\w-]+):/mg;
	is($names[0], 'X-Top', 'insert at 0: on top, above our Received:');
	is($names[1], 'Received', '... then Received:');
	is($names[2], 'X-Third', 'insert at 2: third');
	is($names[-1], 'X-Folded', 'add: at the end');
	is($names[-2], 'X-Added', '... in order');
	like($h, qr/^X-Added: first added$/m, 'added header value');
	like($h, qr/^X-Folded: line one\n\tline two$/m, 'a folded value stays one header');
	like($h, qr/^Subject: changed subject$/m, 'change by index');
	unlike($h, qr/original/, '... the old value is gone');
	like($h, qr/^X-Old: renewed$/m, 'X-Old 1 changed');
	unlike($h, qr/^X-Old: two$/m, 'X-Old 2 deleted');
	is(scalar(() = $h =~ /^X-Old:/mg), 1, '... one X-Old left');
	like($b, qr/^original body\nsecond line\n?$/, 'the body is untouched');
}

{
	my $m = MilterTest->start(<<'S');
replbody new body line 1\nnew body line 2\n
S
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec });
	my $show = send_and_show($t);
	my ($h, $b) = content($show);
	is($b, "new body line 1\nnew body line 2\n", 'replace body: the queued body is the new one');
	like($h, qr/^Subject: original$/m, '... the headers as they were');
	my ($size) = $show =~ /^message_size: (\d+)$/m;
	my ($msg) = $show =~ /\*\*\* MESSAGE CONTENTS [^\n]*\n(.*?)\*\*\* MESSAGE FILE END/s;
	is($size, length $msg, '... and the size is the new message\'s');
}

{
	# a body replaced in one message is not the next message's body: the
	# milter replaces every body but accepts mail for keep@ at RCPT
	my $m = MilterTest->start("replbody first only\\n\nreply rcpt:<keep\@example.net> accept\n");
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec });
	my $c = $t->smtp;
	$c->read_reply;
	$c->cmd('EHLO client.example');
	my ($code, $text) = $c->transaction(from => 'a@example.org', body => $MSG);
	my ($id1) = $text =~ /queued as (\S+)/;
	($code, $text) = $c->transaction(from => 'a@example.org', to => ['keep@example.net'],
					 body => $MSG);
	my ($id2) = $text =~ /queued as (\S+)/;
	my (undef, $b1) = content(($t->sluice('queue', 'show', $id1 // 'none'))[1]);
	my (undef, $b2) = content(($t->sluice('queue', 'show', $id2 // 'none'))[1]);
	is($b1, "first only\n", 'first message: the milter\'s body');
	like($b2, qr/^original body\nsecond line\n?$/,
	     'second message of the session (milter accepted at RCPT): its own body');
}

{
	my $m = MilterTest->start(<<'S');
replbody replaced\n
addheader X-With-Body yes
S
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec });
	my ($h, $b) = content(send_and_show($t));
	is($b, "replaced\n", 'replace body and add a header together: the body');
	like($h, qr/^X-With-Body: yes$/m, '... and the header');
}

{
	my $m = MilterTest->start(<<'S');
addrcpt <added@example.net>
addrcpt_par <withargs@example.net> NOTIFY=NEVER
delrcpt <gone@example.net>
chgfrom <new-sender@example.org>
S
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec });
	my $show = send_and_show($t, to => ['b@example.net', 'gone@example.net']);
	my @r = $show =~ /^recipient: (\S+)$/mg;
	is_deeply([sort @r], [qw(added@example.net b@example.net withargs@example.net)],
		  'add recipient, add with ESMTP args, delete recipient');
	like($show, qr/^sender: new-sender\@example\.org$/m, 'change sender');
	like($show, qr/^dsn_notify_flags: NEVER\nrecipient: withargs\@example\.net$/m,
	     'the NOTIFY parameter of SMFIR_ADDRCPT_PAR is kept');
}

{
	my $m = MilterTest->start("delrcpt <b\@example.net>\n");
	my $t = SluiceTest->new(main => { smtpd_milters => $m->spec });
	my $c = $t->smtp;
	$c->read_reply;
	$c->cmd('EHLO client.example');
	my ($code) = $c->transaction(to => ['b@example.net']);
	is($code, 250, 'deleting the only recipient: accepted');
	is(scalar(my @q = $t->queue_files('incoming')), 0, '... and nothing is queued');
}

# ---- two milters, in order ----------------------------------------------------

{
	my $m1 = MilterTest->start(<<'S');
addheader X-First from milter one
chgheader Subject 1 by milter one
replbody body from one\n
S
	my $m2 = MilterTest->start(<<'S');
addheader X-Second from milter two
replbody body from two, after one\n
S
	my $t = SluiceTest->new(main => {
		smtpd_milters => $m1->spec . ', { ' . $m2->spec . ', command_timeout=10s }' });
	my ($h, $b) = content(send_and_show($t));
	like($m2->log, qr/^header X-First:from milter one$/m,
	     'the second milter sees the first one\'s header');
	like($m2->log, qr/^header Subject:by milter one$/m, '... and its change');
	like($m2->log, qr/^bodyline body from one$/m, '... and its body');
	unlike($m1->log, qr/X-Second/, 'the first milter never sees the second\'s');
	like($h, qr/^X-First: from milter one$/m, 'the queued message has both milters\' headers');
	like($h, qr/^X-Second: from milter two$/m, '...');
	like($h, qr/^X-First:.*\nX-Second:/m, '... in order');
	is($b, "body from two, after one\n", '... and the last body');
}

done_testing;
