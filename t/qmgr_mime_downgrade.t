#!/usr/bin/perl
# qmgr_mime_downgrade.t - 8-bit mail to a next hop without 8BITMIME
# (docs/queue-manager.md, "8BITMIME and 7-bit servers"), with Postfix's
# smtp-sink as the next hop: `smtp-sink -8` does not announce 8BITMIME.
#  - an 8-bit MIME message (BODY=8BITMIME; a multipart with an 8bit text
#    part, a base64 part and a message/rfc822 part) arrives at the 7-bit
#    sink as 7-bit data: no BODY= on MAIL FROM, the 8bit text parts as
#    quoted-printable with their Content-Transfer-Encoding headers saying
#    so, the multipart and message/rfc822 declared 7bit, no line over 76
#    columns; decoded, every text part is the original text; the base64
#    part is unchanged;
#  - the same message to a sink that announces 8BITMIME goes unchanged,
#    with BODY=8BITMIME;
#  - a part declared 8bit, sent without BODY= (the client did not say),
#    is converted too;
#  - disable_mime_output_conversion = yes (here on one transport, with
#    -o in master.cf) sends the 8-bit content as it is, as Postfix does.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use MIME::QuotedPrint qw(decode_qp);
use SluiceTest qw(wait_until);
use QmgrTest qw(start_sink dumps qmgr_sluice $SINK);

-x $SINK or BAIL_OUT('smtp-sink (the postfix package) is not installed' . ': run scripts/install-deps');

my $tmp = File::Temp::tempdir(CLEANUP => 1);
chmod 0755, $tmp;
my $port7 = start_sink("$tmp/seven", opts => ['-8']);
my $port8 = start_sink("$tmp/eight");

my $t = qmgr_sluice(main => {
	relayhost => "[127.0.0.1]:$port7",
	transport_maps => 'texthash:%DIR%/transport',
}, services => "rawsmtp unix - - n - - smtp -o disable_mime_output_conversion=yes\n",
   files => { transport => <<"EOF" });
eight.example  smtp:[127.0.0.1]:$port8
raw.example    rawsmtp:[127.0.0.1]:$port7
EOF

my $text1 = "Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln: caf\xc3\xa9 = 3 \xe2\x82\xac.\n"
	. "Trailing space here \n"
	. ".A line that starts with a dot\n"
	. "From the beginning of a line\n"
	. ("\xc3\xa4\xc3\xb6\xc3\xbc" x 40) . "\n";
my $text2 = "M\xc3\xbcnchen, \xc3\x85lesund, Z\xc3\xbcrich\n";

sub message {
	my ($id) = @_;
	return "From: alice\@example.org\n"
	     . "To: bob\@example.net\n"
	     . "Subject: 8-bit test\n"
	     . "Message-ID: <$id\@client.example>\n"
	     . "MIME-Version: 1.0\n"
	     . "Content-Type: multipart/mixed; boundary=\"=_b1\"\n"
	     . "Content-Transfer-Encoding: 8bit\n"
	     . "\n"
	     . "This is a multi-part message in MIME format.\n"
	     . "--=_b1\n"
	     . "Content-Type: text/plain; charset=utf-8\n"
	     . "Content-Transfer-Encoding: 8bit\n"
	     . "\n"
	     . $text1
	     . "--=_b1\n"
	     . "Content-Type: application/octet-stream\n"
	     . "Content-Transfer-Encoding: base64\n"
	     . "\n"
	     . "AAECAwQFBgcICQ==\n"
	     . "--=_b1\n"
	     . "Content-Type: message/rfc822\n"
	     . "Content-Transfer-Encoding: 8bit\n"
	     . "\n"
	     . "Subject: inner\n"
	     . "Content-Type: text/plain; charset=utf-8\n"
	     . "Content-Transfer-Encoding: 8bit\n"
	     . "\n"
	     . $text2
	     . "--=_b1--\n";
}

# Send one message over SMTP; the queue ID.
sub send_8bit {
	my ($to, $id, %o) = @_;
	my $c = $t->smtp;
	$c->hello('client.example');
	$c->cmd('MAIL FROM:<alice@example.org>' . ($o{body} // ' BODY=8BITMIME'));
	$c->cmd("RCPT TO:<$to>");
	$c->cmd('DATA');
	(my $data = message($id)) =~ s/\n/\r\n/g;
	$data =~ s/^\./../mg;
	$c->send_raw("$data.\r\n");
	my ($code, $text) = $c->read_reply;
	$c->cmd('QUIT');
	my ($qid) = ($text // '') =~ /queued as (\S+)/;
	return $qid;
}

sub arrived {
	my ($dir, $id) = @_;
	my $got;
	wait_until(sub { ($got) = grep { /Message-ID: <\Q$id\E\@client\.example>/ } dumps($dir) }, 20);
	return $got;
}

# The message in a dump: after smtp-sink's X- lines, without the
# Received: header sluice added.
sub content {
	my ($dump) = @_;
	$dump =~ s/\A(?:X-[\w-]+: .*\n)*//;
	$dump =~ s/\A(?:Received: .*\n(?:[ \t].*\n)*)+//;
	$dump =~ s/\n\n\z/\n/;        # smtp-sink ends a dump with an empty line
	return $dump;
}

# The parts of a dumped message: [headers, body] after the boundary.
sub part {
	my ($msg, $n) = @_;
	my @parts = split /^--=_b1(?:--)?\n/m, $msg;
	my ($h, $b) = split /\n\n/, $parts[$n] // '', 2;
	return ($h // '', $b // '');
}

# ---- to a 7-bit server ------------------------------------------------------

my $mark = $t->log_mark;
my $qid = send_8bit('bob@example.net', 'seven');
ok($qid, 'an 8-bit message is queued');
ok($t->wait_log(qr/\Q$qid\E: to=<bob\@example\.net>, .*status=sent/, 20, from => $mark),
   '... and sent to the next hop without 8BITMIME');
my $got = arrived("$tmp/seven", 'seven') // '';
like($got, qr/^X-Mail-Args: <alice\@example\.org>$/m, 'MAIL FROM has no BODY=8BITMIME');
my $msg = content($got);
unlike($msg, qr/[\x80-\xff]/, 'the message that arrived is 7-bit');
my $longest = 0;
for (split /\n/, $msg) { $longest = length if length > $longest }
cmp_ok($longest, '<=', 76, "... no line is longer than 76 columns (longest $longest)");
like($msg, qr/^Content-Type: multipart\/mixed; boundary="=_b1"\nContent-Transfer-Encoding: 7bit\n\n/m,
     '... the multipart is declared 7bit');
unlike($msg, qr/^Content-Transfer-Encoding: 8bit/mi, '... no part still says 8bit');

my ($h1, $b1) = part($msg, 1);
like($h1, qr/^Content-Transfer-Encoding: quoted-printable$/m,
     'the 8bit text part says quoted-printable');
is(decode_qp($b1), $text1, '... and decodes back to the original text');
my ($h2, $b2) = part($msg, 2);
is($b2, "AAECAwQFBgcICQ==\n", 'the base64 part is unchanged');
my ($h3, $b3) = part($msg, 3);
like($h3, qr/^Content-Type: message\/rfc822\nContent-Transfer-Encoding: 7bit$/m,
     'the message/rfc822 part is declared 7bit');
my ($ih, $ib) = split /\n\n/, $b3, 2;
like($ih, qr/^Content-Transfer-Encoding: quoted-printable$/m,
     '... the text inside it says quoted-printable');
is(decode_qp($ib // ''), $text2, '... and decodes back to the original text');

# Without BODY=8BITMIME the 8bit parts are still 8-bit mail.
$mark = $t->log_mark;
$qid = send_8bit('carol@example.net', 'nobody', body => '');
ok($t->wait_log(qr/\Q$qid\E: to=<carol\@example\.net>, .*status=sent/, 20, from => $mark),
   'the same message without BODY= is sent');
$got = arrived("$tmp/seven", 'nobody') // '';
$msg = content($got);
unlike($msg // '', qr/[\x80-\xff]/, '... also as 7-bit data');
($h1, $b1) = part($msg // '', 1);
is(decode_qp($b1), $text1, '... that decodes back to the original text');

# ---- to an 8BITMIME server: as it is ------------------------------------

$mark = $t->log_mark;
$qid = send_8bit('dave@eight.example', 'eight');
ok($t->wait_log(qr/\Q$qid\E: to=<dave\@eight\.example>, .*status=sent/, 20, from => $mark),
   'to a next hop with 8BITMIME: sent');
$got = arrived("$tmp/eight", 'eight') // '';
like($got, qr/^X-Mail-Args: <alice\@example\.org> BODY=8BITMIME$/m, '... with BODY=8BITMIME');
$msg = content($got);
is($msg, message('eight'), '... and the message unchanged, 8-bit');

# ---- disable_mime_output_conversion = yes ---------------------------------

$mark = $t->log_mark;
$qid = send_8bit('erin@raw.example', 'raw');
ok($t->wait_log(qr/\Q$qid\E: to=<erin\@raw\.example>, .*status=sent/, 20, from => $mark),
   'disable_mime_output_conversion = yes: sent to the 7-bit next hop');
$got = arrived("$tmp/seven", 'raw') // '';
$msg = content($got);
is($msg, message('raw'), '... as it is, 8-bit (as Postfix)');

my @warn = grep { /: (?:warning|error|fatal|panic): / } split /\n/, $t->log_text;
is_deeply(\@warn, [], 'no warning in the log');
$t->stop;
done_testing;
