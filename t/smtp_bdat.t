#!/usr/bin/perl
# smtp_bdat.t - CHUNKING (RFC 3030, docs/smtpd.md): a message in several
# BDAT chunks, BDAT 0 LAST, a CRLF split across two chunks, content taken
# as is (no dot-unstuffing, no end marker), pipelined chunks, BDAT out of
# sequence with Postfix's replies once its chunk is consumed (503 5.5.1
# "need RCPT command" outside a transaction, 554 5.5.1 "no valid
# recipients" in one without recipients, then "551 5.0.0 Discarded N
# bytes after earlier error" for every further chunk, RCPT ("RCPT after
# BDAT") and MAIL ("nested MAIL command") refused until the LAST one ends
# the transaction), the size limit counted
# over chunks (552 5.3.4, nothing queued), DATA after BDAT (503), a BDAT
# syntax error (501 and disconnect), a chunk in the same packet as BDAT
# from a client not offered PIPELINING, and a DATA-stage filter refusing a
# BDAT transaction (the chunk is consumed, never parsed as commands, and a
# later chunk cannot slip the message through).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest qw(wait_until);

my $LIMIT = 3000;
my $t = SluiceTest->new(main => { message_size_limit => $LIMIT },
			listeners => { smtp => '', nopipe => '-o smtpd_discard_ehlo_keywords=pipelining' });

sub reply_is {
	my ($c, $line, $want, $name) = @_;
	my ($code, $text) = $c->cmd($line);
	is($text, $want, $name // "$line -> $want");
}

# Send "BDAT n[ LAST]" and the chunk in one write; the reply text.
sub bdat {
	my ($c, $chunk, $last) = @_;
	$c->send_raw('BDAT ' . length($chunk) . ($last ? ' LAST' : '') . "\r\n" . $chunk);
	my ($code, $text) = $c->read_reply;
	return $text // '';
}

sub envelope {
	my ($c, @rcpt) = @_;
	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', 'MAIL');
	reply_is($c, "RCPT TO:<$_>", '250 2.1.5 Ok', "RCPT $_") for @rcpt ? @rcpt : ('b@example.net');
}

sub queued_body {
	my ($text) = @_;
	my ($id) = $text =~ /^250 2\.0\.0 Ok: queued as (\S+)$/ or return;
	my $q = SluiceTest::read_queue_file($t->queue_path($id)) or return;
	return unless $q->{complete};
	(my $body = $q->{content}) =~ s/\AReceived: [^\n]*\n(?:\t[^\n]*\n)*//;
	return $body;
}

# ---- several chunks ------------------------------------------------------------

{
	my $c = $t->smtp;
	my ($code, $text) = $c->hello('client.example');
	like($text, qr/^250 CHUNKING$/m, 'EHLO announces CHUNKING');
	envelope($c);
	like(bdat($c, "Subject: chunks\r\n\r\nfirst "), qr/^250 2\.0\.0 Ok: \d+ bytes$/,
	     'a first chunk: 250 2.0.0 Ok: N bytes');
	like(bdat($c, "part\r\n..not unstuffed\r\n.\r\nafter the dot\r"), qr/^250 2\.0\.0 Ok: \d+ bytes$/,
	     'a second chunk, ending in the CR of a CRLF');
	like(bdat($c, "\nlast line\r\n"), qr/^250 2\.0\.0 Ok: \d+ bytes$/,
	     'a third chunk, starting with the LF of that CRLF');
	my $last = bdat($c, '', 1);
	like($last, qr/^250 2\.0\.0 Ok: queued as \S+$/, 'BDAT 0 LAST: 250 2.0.0 Ok: queued as ID');
	is(queued_body($last),
	   "Subject: chunks\n\nfirst part\n..not unstuffed\n.\nafter the dot\nlast line\n",
	   'the message is the chunks joined: CRLF to LF, the split CRLF one line end, dots kept');

	# One chunk, LAST, pipelined with the envelope.
	my $one = "Subject: one\r\n\r\nbody\r\n";
	$c->send_raw("MAIL FROM:<a\@example.org>\r\nRCPT TO:<b\@example.net>\r\nBDAT " . length($one) . " LAST\r\n$one");
	my @r = $c->read_replies(3);
	is_deeply([map { $_->[1] =~ s/queued as \S+/queued as ID/r } @r],
		  ['250 2.1.0 Ok', '250 2.1.5 Ok', '250 2.0.0 Ok: queued as ID'],
		  'MAIL, RCPT and BDAT LAST with its chunk in one write');
	is(queued_body($r[2][1] // ''), "Subject: one\n\nbody\n", '... queued intact');

	# Two chunks in one write.
	envelope($c);
	my ($p1, $p2) = ("Subject: t", "wo\r\n\r\nbody\r\n");
	$c->send_raw('BDAT ' . length($p1) . "\r\n$p1" . 'BDAT ' . length($p2) . " LAST\r\n$p2");
	@r = $c->read_replies(2);
	like($r[0][1] // '', qr/^250 2\.0\.0 Ok: \d+ bytes$/, 'two pipelined chunks: the first');
	is(queued_body($r[1][1] // ''), "Subject: two\n\nbody\n", '... the second ends the message');

	# Bare LF in BDAT content is a line end (no end marker to smuggle).
	envelope($c);
	is(queued_body(bdat($c, "Subject: lf\n\nbare\n.\nlines\r\n", 1)), "Subject: lf\n\nbare\n.\nlines\n",
	   'bare LFs in a chunk are line ends, and "." is content');

	# A message that is only BDAT 0 LAST.
	envelope($c);
	like(bdat($c, '', 1), qr/^250 2\.0\.0 Ok: queued as \S+$/, 'an empty message by BDAT 0 LAST');
	$c->cmd('QUIT');
}

# ---- out of sequence ------------------------------------------------------------

{
	my $c = $t->smtp;
	$c->hello;
	is(bdat($c, "RSET\r\nNOOP\r\n"), '503 5.5.1 Error: need RCPT command',
	   'BDAT before MAIL: Postfix\'s 503 after its chunk (which looks like commands) is consumed');
	reply_is($c, 'NOOP', '250 2.0.0 Ok', '... the session goes on');
	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', 'MAIL');
	is(bdat($c, "QUIT\r\n"), '554 5.5.1 Error: no valid recipients',
	   'BDAT in a transaction without recipients: 554 5.5.1 after its chunk is consumed');
	is(bdat($c, "RSET\r\n"), '551 5.0.0 Discarded 6 bytes after earlier error',
	   'a further chunk: 551 5.0.0 Discarded N bytes after earlier error');
	reply_is($c, 'RCPT TO:<b@example.net>', '503 5.5.1 Error: RCPT after BDAT',
		 'RCPT in the failed BDAT transaction: 503 5.5.1 RCPT after BDAT');
	reply_is($c, 'MAIL FROM:<a@example.org>', '503 5.5.1 Error: nested MAIL command',
		 'MAIL in it: 503 5.5.1 nested MAIL command (Postfix)');
	is(bdat($c, "DATA\r\n", 1), '551 5.0.0 Discarded 6 bytes after earlier error',
	   'BDAT LAST: 551 too');
	reply_is($c, 'RCPT TO:<b@example.net>', '503 5.5.1 Error: need MAIL command',
		 '... and it ended the transaction');
	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', 'a new MAIL');
	reply_is($c, 'RCPT TO:<b@example.net>', '250 2.1.5 Ok', 'RCPT');
	my $last = bdat($c, "Subject: late\r\n\r\nok\r\n", 1);
	is(queued_body($last), "Subject: late\n\nok\n", '... and BDAT LAST queues the message');

	envelope($c);
	like(bdat($c, "Subject: mixed\r\n\r\n"), qr/^250 2\.0\.0 Ok: \d+ bytes$/, 'a BDAT chunk');
	my @before = $t->queue_files;
	my ($code, $text) = $c->cmd('DATA');
	is($text, '503 5.5.1 Error: DATA after BDAT', 'DATA after BDAT in the same transaction: 503 5.5.1');
	$last = bdat($c, "more\r\n", 1);
	is(queued_body($last), "Subject: mixed\n\nmore\n",
	   '... and the BDAT message goes on, unharmed (one Received:, nothing of DATA)');
	$c->cmd('QUIT');
}

{
	my $c = $t->smtp;
	$c->hello;
	envelope($c);
	my ($code, $text) = $c->cmd('BDAT ten');
	is($text, '501 5.5.4 Syntax: BDAT count [LAST]', 'BDAT without a count: 501 5.5.4');
	ok($c->closed, '... and a disconnect (the stream cannot be resynchronised)');
	$c = $t->smtp;
	$c->hello;
	envelope($c);
	($code, $text) = $c->cmd('BDAT 5 FIRST');
	is($text, '501 5.5.4 Syntax: BDAT count [LAST]', 'BDAT with a bad keyword: 501 5.5.4');
	ok($c->closed, '... and a disconnect');
}

# ---- the size limit over chunks --------------------------------------------------------

{
	my $c = $t->smtp;
	$c->hello;
	my %before = map { $_ => 1 } $t->queue_files;
	envelope($c);
	my $chunk = ('x' x 998 . "\r\n") x 1;    # 1000 bytes
	like(bdat($c, "Subject: big\r\n\r\n"), qr/^250 /, 'chunk 1');
	like(bdat($c, $chunk), qr/^250 /, 'chunk 2 (under the limit so far)');
	like(bdat($c, $chunk), qr/^250 /, 'chunk 3 (under the limit so far)');
	is(bdat($c, $chunk), '552 5.3.4 Error: message file too big',
	   'the chunk that crosses message_size_limit: 552 5.3.4');
	is(bdat($c, $chunk), '551 5.0.0 Discarded 1000 bytes after earlier error',
	   'a further chunk: 551 5.0.0 Discarded N bytes after earlier error (Postfix)');
	is(bdat($c, 'end', 1), '551 5.0.0 Discarded 3 bytes after earlier error', 'BDAT LAST: 551 too');
	ok(wait_until(sub { !grep { !$before{$_} } $t->queue_files }, 5), '... and nothing is left in the queue');
	envelope($c);
	like(bdat($c, "Subject: small\r\n\r\nsmall\r\n", 1), qr/^250 2\.0\.0 Ok: queued as /,
	     'the next transaction is accepted');
	$c->cmd('QUIT');
}

# ---- BDAT and its chunk in one packet, PIPELINING not offered -------------------

{
	my $c = $t->smtp('nopipe');
	my ($code, $text) = $c->hello;
	unlike($text, qr/PIPELINING/, 'a listener without PIPELINING');
	envelope($c);
	my $last = bdat($c, "Subject: nopipe\r\n\r\nbody\r\n", 1);
	is(queued_body($last), "Subject: nopipe\n\nbody\n",
	   'BDAT with its chunk in the same packet is not "pipelining" (the chunk belongs to it)');
	$c->cmd('QUIT');
}

# ---- a DATA-stage filter refusing a BDAT transaction ----------------------------------

SKIP: {
	my $pdir = $t->dir . '/plugins';
	mkdir $pdir;
	my $src = $t->write_file("$pdir/datareject.c", <<'C');
#include <string.h>
#include "sluice_plugin.h"

static const struct sluice_param params[] = { { NULL, 0, NULL, NULL } };

static int dr_data(sluice_txn *t, void *pdata)
{
	const char *s = sluice_sender(t);

	(void)pdata;
	if (s && strncmp(s, "reject-data@", 12) == 0) {
		sluice_reply(t, 554, "5.7.1", "<DATA>: Data command rejected: test filter");
		return SLUICE_REJECT;
	}
	return SLUICE_DUNNO;
}

SLUICE_PLUGIN_DECLARE = {
	.abi = SLUICE_PLUGIN_ABI, .name = "datareject", .version = "1",
	.description = "rejects DATA/BDAT from reject-data@...", .params = params,
	.data = dr_data,
};
C
	my $out = `cc -shared -fPIC -I$SluiceTest::ROOT/plugins -o $pdir/datareject.so $src 2>&1`;
	skip "cannot build the test plugin: $out", 6 if $?;
	chmod 0755, $pdir, "$pdir/datareject.so";
	my $f = SluiceTest->new(main => { sluice_plugins => 'datareject', plugin_directory => $pdir });
	my $c = $f->smtp;
	$c->hello;
	reply_is($c, 'MAIL FROM:<reject-data@example.org>', '250 2.1.0 Ok', 'MAIL from a sender the filter refuses at DATA');
	reply_is($c, 'RCPT TO:<b@example.net>', '250 2.1.5 Ok', 'RCPT');
	is(bdat($c, "RSET\r\nMAIL FROM:<x\@example.org>\r\n"),
	   '554 5.7.1 <DATA>: Data command rejected: test filter',
	   'BDAT: the filter\'s reject comes after the chunk is consumed');
	is(bdat($c, "Subject: sneaky\r\n\r\nbody\r\n", 1), '551 5.0.0 Discarded 25 bytes after earlier error',
	   'a further BDAT LAST is refused too (Postfix\'s 551 for chunks after an error)');
	reply_is($c, 'NOOP', '250 2.0.0 Ok', 'the stream stays in step: NOOP');
	is(scalar(my @q = $f->queue_files), 0, 'nothing was queued');
	$c->cmd('QUIT');
}

done_testing;
