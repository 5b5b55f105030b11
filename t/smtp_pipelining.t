#!/usr/bin/perl
# smtp_pipelining.t - PIPELINING (RFC 2920) and Postfix's
# smtpd_forbid_unauth_pipelining: a MAIL/RCPT/RCPT/DATA group in one write
# gets every reply, in order and together; message content sent in the
# same packet as DATA (before the 354) gets "554 5.5.0 Error: SMTP protocol
# synchronization", a disconnect and the "improper command pipelining after
# DATA" log line, and nothing is queued; with
# smtpd_forbid_unauth_pipelining = no the same stream is accepted; a client
# that was not offered PIPELINING (HELO, or PIPELINING discarded) may not
# pipeline; a command after EHLO in the same packet is refused.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use SluiceTest qw(wait_until);

# user%host@example.net: refused by an access table (127.0.0.1 is in
# mynetworks, so routing in the local part alone is no reason to refuse)
my $t = SluiceTest->new(main => { smtpd_peername_lookup => 'no',
	smtpd_recipient_restrictions => 'check_recipient_access inline:{ { user%host@example.net = 550 5.7.1 sender-specified routing is not allowed } }' }, listeners => {
	smtp => '',
	lenient => '-o smtpd_forbid_unauth_pipelining=no',
	nopipe => '-o smtpd_discard_ehlo_keywords=pipelining',
});

my $SYNC = '554 5.5.0 Error: SMTP protocol synchronization';

# Everything the server sends within `timeout` seconds of the first byte
# and until it is quiet for `quiet` seconds: for "did all replies arrive".
sub first_read {
	my ($c, $timeout) = @_;
	my $sel = IO::Select->new($c->{sock});
	return '' unless $sel->can_read($timeout // 10);
	my $n = sysread($c->{sock}, my $buf, 65536);
	return $buf // '';
}

# ---- a pipelined group ---------------------------------------------------------

{
	my $c = $t->smtp;
	my ($code, $text) = $c->hello('client.example');
	like($text, qr/^250-PIPELINING$/m, 'EHLO announces PIPELINING');
	$c->send_group('MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.net>',
		       'RCPT TO:<c@example.net>', 'DATA');
	my $got = first_read($c);
	is($got, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
	   'MAIL/RCPT/RCPT/DATA in one write: the four replies, in order, in one read');
	$c->send_raw("Subject: pipelined\r\n\r\nbody\r\n.\r\n");
	($code, $text) = $c->read_reply;
	my ($id) = ($text // '') =~ /^250 2\.0\.0 Ok: queued as (\S+)$/;
	ok($id, "the message is queued ($text)");
	my $q = SluiceTest::read_queue_file($t->queue_path($id // 'none'));
	is_deeply([map { $_->{addr} } @{ $q ? $q->{rcpt} : [] }], ['b@example.net', 'c@example.net'],
		  '... for both recipients');

	# A group with a refused command in the middle, and RSET/QUIT at the end.
	$c->send_group('MAIL FROM:<a@example.org>', 'RCPT TO:<user%host@example.net>',
		       'RCPT TO:<d@example.net>', 'NOSUCH', 'RSET', 'QUIT');
	my @r = $c->read_replies(6);
	is_deeply([map { $_->[1] } @r],
		  ['250 2.1.0 Ok',
		   '550 5.7.1 <user%host@example.net>: Recipient address rejected: sender-specified routing is not allowed',
		   '250 2.1.5 Ok', '500 5.5.2 Error: command not recognized', '250 2.0.0 Ok', '221 2.0.0 Bye'],
		  'a group with errors in it: one reply per command, in order');
	ok($c->closed, 'QUIT at the end of a group closes');
}

# ---- the end of data with the next commands in the same packet ---------------------

{
	my $c = $t->smtp;
	$c->hello('client.example');
	$c->send_group('MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.net>', 'DATA');
	my @r = $c->read_replies(3);
	is($r[2][0], 354, 'a group up to DATA');
	$c->send_raw("Subject: one\r\n\r\none\r\n.\r\nMAIL FROM:<a\@example.org>\r\nRCPT TO:<c\@example.net>\r\nDATA\r\n");
	@r = $c->read_replies(4);
	is_deeply([map { $_->[1] =~ s/queued as \S+/queued as ID/r } @r],
		  ['250 2.0.0 Ok: queued as ID', '250 2.1.0 Ok', '250 2.1.5 Ok', '354 End data with <CR><LF>.<CR><LF>'],
		  'the final dot, then the next MAIL/RCPT/DATA in the same packet: every reply, in order');
	$c->send_raw("Subject: two\r\n\r\ntwo\r\n.\r\nQUIT\r\n");
	@r = $c->read_replies(2);
	is_deeply([map { $_->[1] =~ s/queued as \S+/queued as ID/r } @r],
		  ['250 2.0.0 Ok: queued as ID', '221 2.0.0 Bye'], 'the final dot and QUIT in one packet');
	ok($c->closed, '... and the session ends');
}

# ---- content in the same packet as DATA -------------------------------------------

my $early = "Subject: smuggled early\r\n\r\nbody\r\n.\r\n";
{
	my $mark = $t->log_mark;
	my $c = $t->smtp;
	$c->hello('client.example');
	my @before = $t->queue_files;
	$c->send_raw("MAIL FROM:<a\@example.org>\r\nRCPT TO:<b\@example.net>\r\nDATA\r\n$early");
	my @r = $c->read_replies(4);
	is_deeply([map { $_->[1] } @r], ['250 2.1.0 Ok', '250 2.1.5 Ok', $SYNC],
		  'content sent with DATA, before the 354: 554 5.5.0 Error: SMTP protocol synchronization');
	ok($c->closed, '... and the server disconnects');
	my $line = $t->wait_log(qr/improper command pipelining after DATA from unknown\[127\.0\.0\.1\]: /,
				undef, from => $mark);
	ok($line, 'the log says "improper command pipelining after DATA from unknown[127.0.0.1]: ..."');
	like($line // '', qr/: Subject: smuggled early/, '... followed by what the client sent ahead');
	ok(wait_until(sub { my @now = $t->queue_files; @now == @before }, 5),
	   '... and nothing was queued');
	ok($t->wait_log(qr/disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 /,
			undef, from => $mark), '... the session ends: disconnect from ...');
}

{
	my $c = $t->smtp('lenient');
	$c->hello('client.example');
	$c->send_raw("MAIL FROM:<a\@example.org>\r\nRCPT TO:<b\@example.net>\r\nDATA\r\n$early");
	my @r = $c->read_replies(4);
	is_deeply([map { $_->[1] =~ s/queued as \S+/queued as ID/r } @r],
		  ['250 2.1.0 Ok', '250 2.1.5 Ok', '354 End data with <CR><LF>.<CR><LF>',
		   '250 2.0.0 Ok: queued as ID'],
		  'smtpd_forbid_unauth_pipelining = no: the same stream is accepted');
	my ($id) = ($r[3][1] // '') =~ /queued as (\S+)/;
	my $q = SluiceTest::read_queue_file($t->queue_path($id // 'none'));
	like($q ? $q->{content} : '', qr/\nSubject: smuggled early\n\nbody\n\z/, '... and queued intact');
	$c->cmd('QUIT');
}

# ---- no PIPELINING offered ------------------------------------------------------------

{
	my $mark = $t->log_mark;
	my $c = $t->smtp;
	my ($code, $text) = $c->hello('client.example', helo => 1);
	is($text, '250 mx.example.test', 'HELO');
	$c->send_group('MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.net>');
	($code, $text) = $c->read_reply;
	is($text, $SYNC, 'a HELO client that pipelines MAIL and RCPT: 554 5.5.0');
	ok($c->closed, '... and is disconnected');
	ok($t->wait_log(qr/improper command pipelining after MAIL from unknown\[127\.0\.0\.1\]: RCPT TO:<b\@example\.net>/,
			undef, from => $mark), '... logged as improper pipelining after MAIL');

	$c = $t->smtp;
	$c->hello('client.example', helo => 1);
	my @r;
	push @r, ($c->cmd('MAIL FROM:<a@example.org>'))[1], ($c->cmd('RCPT TO:<b@example.net>'))[1];
	is_deeply(\@r, ['250 2.1.0 Ok', '250 2.1.5 Ok'], '... while one command at a time is fine');
	$c->cmd('QUIT');
}

{
	my $c = $t->smtp('nopipe');
	my ($code, $text) = $c->hello('client.example');
	unlike($text, qr/PIPELINING/, 'PIPELINING discarded from EHLO');
	$c->send_group('MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.net>');
	($code, $text) = $c->read_reply;
	is($text, $SYNC, '... so pipelining MAIL and RCPT gets 554 5.5.0');
	ok($c->closed, '... and a disconnect');
}

{
	my $c = $t->smtp;
	$c->read_reply;
	$c->send_group('EHLO client.example', 'MAIL FROM:<a@example.org>');
	my ($code, $text) = $c->read_reply;
	is($text, $SYNC, 'a command in the same packet as EHLO: 554 5.5.0');
	ok($c->closed, '... and a disconnect');
}

done_testing;
