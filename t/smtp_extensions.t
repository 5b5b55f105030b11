#!/usr/bin/perl
# smtp_extensions.t - the ESMTP extensions (docs/smtpd.md): SIZE (declared
# and actual size over message_size_limit: 552 5.3.4, nothing left in the
# queue), 8BITMIME (BODY= stored), SMTPUTF8 (553 5.6.7 without it, the
# addresses stored with it, 555 when smtputf8_enable = no), DSN (RET,
# ENVID, NOTIFY, ORCPT stored in the queue file's envelope records, and
# their syntax errors), ENHANCEDSTATUSCODES on every reply, and unknown
# MAIL/RCPT parameters (555 5.5.4).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest qw(wait_until reply_is);

my $LIMIT = 4000;
my $t = SluiceTest->new(main => { message_size_limit => $LIMIT,
				  smtpd_soft_error_limit => 1000,
				  smtpd_hard_error_limit => 1000 },
			listeners => { smtp => '', noutf8 => '-o smtputf8_enable=no' });

# DATA with `body` (LF line ends; CRLF and dot-stuffing added); the queue
# ID from the 250, or undef (and the reply text second).
sub send_data {
	my ($c, $body) = @_;
	my ($code, $text) = $c->cmd('DATA');
	return (undef, $text) unless defined $code && $code == 354;
	$body =~ s/\n/\r\n/g;
	$body =~ s/^\./../mg;
	$c->send_raw("$body.\r\n");
	($code, $text) = $c->read_reply;
	my ($id) = ($text // '') =~ /^250 2\.0\.0 Ok: queued as (\S+)$/;
	return ($id, $text);
}

sub queue_file {
	my ($id) = @_;
	return SluiceTest::read_queue_file($t->queue_path($id // 'none')) || {};
}

# ---- SIZE -------------------------------------------------------------------

{
	my $c = $t->smtp;
	my ($code, $text) = $c->hello('client.example');
	like($text, qr/^250-SIZE $LIMIT$/m, "EHLO announces SIZE $LIMIT (message_size_limit)");
	like($text, qr/^250-ENHANCEDSTATUSCODES$/m, 'EHLO announces ENHANCEDSTATUSCODES');
	like($text, qr/^250-8BITMIME$/m, 'EHLO announces 8BITMIME');
	like($text, qr/^250-DSN$/m, 'EHLO announces DSN');
	like($text, qr/^250-SMTPUTF8$/m, 'EHLO announces SMTPUTF8');

	reply_is($c, 'MAIL FROM:<a@example.org> SIZE=' . ($LIMIT + 1),
		 '552 5.3.4 Message size exceeds fixed limit', 'declared SIZE over the limit');
	reply_is($c, 'MAIL FROM:<a@example.org> SIZE=12x', '501 5.5.4 Bad message size syntax',
		 'SIZE that is not a number');
	reply_is($c, 'MAIL FROM:<a@example.org> SIZE', '555 5.5.4 Unsupported option: SIZE',
		 'SIZE without a value (Postfix: an unsupported option)');
	reply_is($c, "MAIL FROM:<a\@example.org> SIZE=$LIMIT", '250 2.1.0 Ok',
		 'declared SIZE at the limit is accepted');
	reply_is($c, 'RSET', '250 2.0.0 Ok', 'RSET');

	# Actual size over the limit, without a SIZE declaration.
	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', 'MAIL without SIZE');
	reply_is($c, 'RCPT TO:<b@example.net>', '250 2.1.5 Ok', 'RCPT');
	is(scalar(() = $t->queue_files), 1, 'a queue file is being written');
	my $big = "Subject: big\n\n" . ("0123456789" x 79 . "\n") x 8;   # 6.4 kB
	my ($id, $reply) = send_data($c, $big);
	is($reply, '552 5.3.4 Error: message file too big',
	   'actual size over message_size_limit: 552 5.3.4 after the final dot');
	ok(wait_until(sub { my @f = $t->queue_files; !@f }, 5), '... and nothing is left in the queue');
	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', 'the session goes on: MAIL');
	reply_is($c, 'RCPT TO:<b@example.net>', '250 2.1.5 Ok', '... RCPT');
	($id, $reply) = send_data($c, "Subject: small\n\nsmall\n");
	ok($id, "... and a small message is queued ($reply)");
	$c->cmd('QUIT');
}

# ---- 8BITMIME ----------------------------------------------------------------

{
	my $c = $t->smtp;
	$c->hello;
	reply_is($c, 'MAIL FROM:<a@example.org> BODY=8BITMIME', '250 2.1.0 Ok', 'BODY=8BITMIME');
	reply_is($c, 'RCPT TO:<b@example.net>', '250 2.1.5 Ok', 'RCPT');
	my $body = "Subject: =?utf-8?q?caf=C3=A9?=\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\ncaf\xc3\xa9 cr\xc3\xa8me \xff\xfe\n";
	my ($id, $reply) = send_data($c, $body);
	ok($id, 'an 8-bit message is queued');
	my $q = queue_file($id);
	is($q->{rec}{body}[0], '8BITMIME', 'the envelope says body 8BITMIME');
	like($q->{content} // '', qr/\n\ncaf\xc3\xa9 cr\xc3\xa8me \xff\xfe\n\z/,
	     '8-bit bytes are stored unchanged');

	reply_is($c, 'MAIL FROM:<a@example.org> BODY=7BIT', '250 2.1.0 Ok', 'BODY=7BIT');
	reply_is($c, 'RCPT TO:<b@example.net>', '250 2.1.5 Ok', 'RCPT');
	($id) = send_data($c, "Subject: 7bit\n\nplain\n");
	is(queue_file($id)->{rec}{body}[0], '7BIT', 'the envelope says body 7BIT');

	reply_is($c, 'MAIL FROM:<a@example.org> BODY=BINARYMIME', '555 5.5.4 Unsupported option: BODY=BINARYMIME',
		 'BODY=BINARYMIME is not offered');
	reply_is($c, 'MAIL FROM:<a@example.org> BODY', '555 5.5.4 Unsupported option: BODY',
		 'BODY without a value');
	$c->cmd('QUIT');
}

# ---- SMTPUTF8 ------------------------------------------------------------------

{
	my $u_from = "j\xc3\xb6rg\@example.org";        # jörg, UTF-8 bytes
	my $u_to = "\xc3\xbcser\@b\xc3\xbccher.example";  # üser@bücher.example
	my $c = $t->smtp;
	$c->hello;
	reply_is($c, "MAIL FROM:<$u_from>", '553 5.6.7 Must declare SMTPUTF8 to send unicode address',
		 'a non-ASCII sender without SMTPUTF8');
	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', 'an ASCII sender without SMTPUTF8');
	reply_is($c, "RCPT TO:<$u_to>", '553 5.6.7 Must declare SMTPUTF8 to send unicode address',
		 'a non-ASCII recipient without SMTPUTF8');
	reply_is($c, 'RSET', '250 2.0.0 Ok', 'RSET');
	reply_is($c, 'MAIL FROM:<a@example.org> SMTPUTF8=yes', '555 5.5.4 Unsupported option: SMTPUTF8=yes',
		 'SMTPUTF8 takes no value (Postfix: an unsupported option)');
	reply_is($c, "MAIL FROM:<$u_from> SMTPUTF8", '250 2.1.0 Ok', 'a non-ASCII sender with SMTPUTF8');
	reply_is($c, "RCPT TO:<$u_to>", '250 2.1.5 Ok', '... and a non-ASCII recipient');
	my ($id, $reply) = send_data($c, "Subject: utf8\n\nhej\n");
	ok($id, "queued ($reply)");
	my $q = queue_file($id);
	ok(exists $q->{rec}{smtputf8}, 'the envelope has the smtputf8 record');
	is($q->{rec}{sender}[0], $u_from, 'the sender is stored as UTF-8');
	is($q->{rcpt}[0]{addr}, $u_to, 'the recipient is stored as UTF-8');
	like($q->{content} // '', qr/^Received: .*\n\tby \S+ \(sluice\) with UTF8SMTP id /,
	     'Received: says with UTF8SMTP');
	$c->cmd('QUIT');

	my $n = $t->smtp('noutf8');
	my ($code, $text) = $n->hello;
	unlike($text, qr/SMTPUTF8/, 'smtputf8_enable = no: SMTPUTF8 is not announced');
	reply_is($n, 'MAIL FROM:<a@example.org> SMTPUTF8', '555 5.5.4 Unsupported option: SMTPUTF8',
		 '... and the parameter is refused');
	reply_is($n, "MAIL FROM:<$u_from>", '553 5.6.7 Must declare SMTPUTF8 to send unicode address',
		 '... as is a non-ASCII sender');
	$n->cmd('QUIT');
}

# ---- DSN -------------------------------------------------------------------------

{
	my $c = $t->smtp;
	$c->hello;
	reply_is($c, 'MAIL FROM:<a@example.org> RET=HDRS ENVID=QQ+2B314159.2@client',
		 '250 2.1.0 Ok', 'MAIL with RET=HDRS and ENVID');
	reply_is($c, 'RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40example.net',
		 '250 2.1.5 Ok', 'RCPT with NOTIFY and ORCPT');
	reply_is($c, 'RCPT TO:<c@example.net> NOTIFY=never', '250 2.1.5 Ok', 'RCPT with NOTIFY=NEVER');
	reply_is($c, 'RCPT TO:<d@example.net> ORCPT=utf-8;d@example.net NOTIFY=DELAY',
		 '250 2.1.5 Ok', 'RCPT with ORCPT, then NOTIFY=DELAY');
	reply_is($c, 'RCPT TO:<e@example.net>', '250 2.1.5 Ok', 'RCPT without DSN parameters');
	my ($id, $reply) = send_data($c, "Subject: dsn\n\ndsn\n");
	ok($id, "queued ($reply)");
	my $q = queue_file($id);
	ok($q->{complete}, 'the queue file is complete') or diag($q->{problem});
	is($q->{rec}{ret}[0], 'HDRS', 'envelope: ret HDRS');
	is($q->{rec}{envid}[0], 'QQ+2B314159.2@client', 'envelope: envid as given (xtext)');
	is_deeply($q->{rcpt}, [
		{ status => 'P', addr => 'b@example.net', notify => 'SUCCESS,FAILURE', orcpt => 'rfc822;b+40example.net' },
		{ status => 'P', addr => 'c@example.net', notify => 'NEVER', orcpt => '-' },
		{ status => 'P', addr => 'd@example.net', notify => 'DELAY', orcpt => 'utf-8;d@example.net' },
		{ status => 'P', addr => 'e@example.net', notify => '-', orcpt => '-' },
	], 'envelope: the rcpt records carry NOTIFY and ORCPT, in order');
	like($q->{bytes}, qr/\nrcpt P\tb\@example\.net\tSUCCESS,FAILURE\trfc822;b\+40example\.net\n/,
	     'the rcpt record as docs/queue-format.md shows it (TAB-separated)');

	reply_is($c, 'MAIL FROM:<a@example.org> RET=FULL', '250 2.1.0 Ok', 'RET=FULL');
	reply_is($c, 'RCPT TO:<b@example.net>', '250 2.1.5 Ok', 'RCPT');
	($id) = send_data($c, "Subject: full\n\nfull\n");
	$q = queue_file($id);
	is($q->{rec}{ret}[0], 'FULL', 'envelope: ret FULL');
	ok(!exists $q->{rec}{envid}, 'no envid record without ENVID');

	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', 'MAIL without DSN');
	reply_is($c, 'RCPT TO:<b@example.net>', '250 2.1.5 Ok', 'RCPT');
	($id) = send_data($c, "Subject: none\n\nnone\n");
	$q = queue_file($id);
	ok(!exists $q->{rec}{ret} && !exists $q->{rec}{envid}, 'no ret/envid records without DSN parameters');

	reply_is($c, 'MAIL FROM:<a@example.org> RET=ALL', '501 5.5.4 Bad RET parameter syntax', 'RET=ALL');
	reply_is($c, 'MAIL FROM:<a@example.org> RET=FULL RET=HDRS', '501 5.5.4 Bad RET parameter syntax',
		 'RET twice (Postfix: bad syntax)');
	reply_is($c, 'MAIL FROM:<a@example.org> ENVID=a=b', '501 5.5.4 Bad ENVID parameter syntax',
		 'ENVID that is not xtext');
	reply_is($c, 'MAIL FROM:<a@example.org> ENVID=x ENVID=y', '501 5.5.4 Bad ENVID parameter syntax',
		 'ENVID twice (Postfix: bad syntax)');
	reply_is($c, 'MAIL FROM:<a@example.org> AUTH=<>', '250 2.1.0 Ok', 'AUTH=<> is accepted (and ignored)');
	reply_is($c, 'RCPT TO:<b@example.net> NOTIFY=NEVER,SUCCESS', '501 5.5.4 Error: Bad NOTIFY parameter syntax',
		 'NOTIFY=NEVER with something else');
	reply_is($c, 'RCPT TO:<b@example.net> NOTIFY=SOMETIMES', '501 5.5.4 Error: Bad NOTIFY parameter syntax',
		 'NOTIFY with an unknown keyword');
	reply_is($c, 'RCPT TO:<b@example.net> ORCPT=b@example.net', '501 5.5.4 Error: Bad ORCPT parameter syntax',
		 'ORCPT without an address type');
	reply_is($c, 'RCPT TO:<b@example.net> XYZZY=1', '555 5.5.4 Unsupported option: XYZZY=1',
		 'an unknown RCPT parameter: the whole word');
	reply_is($c, 'RCPT TO:<b@example.net> NOTIFY=SUCCESS NOTIFY=FAILURE', '501 5.5.4 Error: Bad NOTIFY parameter syntax',
		 'NOTIFY twice');
	reply_is($c, 'RSET', '250 2.0.0 Ok', 'RSET');
	reply_is($c, 'MAIL FROM:<a@example.org> XYZZY=1', '555 5.5.4 Unsupported option: XYZZY=1',
		 'an unknown MAIL parameter: 555 5.5.4 and the whole word');
	reply_is($c, 'MAIL FROM:<a@example.org> SIZE=10 FOO', '555 5.5.4 Unsupported option: FOO',
		 'an unknown MAIL parameter without a value');
	$c->cmd('QUIT');
}

# ---- ENHANCEDSTATUSCODES: every reply but the greeting, EHLO/HELO and 354 ----

{
	my $c = $t->smtp;
	$c->hello;
	my @replies;
	for my $line ('NOOP', 'RSET', 'VRFY x', 'HELP', 'BOGUS', '', 'RCPT TO:<x@example.net>',
		      'MAIL FROM:<bad address@x>', 'MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.net>',
		      'MAIL FROM:<a@example.org>', 'QUIT') {
		my ($code, $text) = $c->cmd($line);
		push @replies, [$line, $text // '(none)'];
	}
	my @bad = grep { $_->[1] !~ /^\d{3} [245]\.\d{1,3}\.\d{1,3} / } @replies;
	is_deeply(\@bad, [], 'every reply carries an enhanced status code')
	    or diag(join "\n", map { "$_->[0] -> $_->[1]" } @bad);
}

done_testing;
