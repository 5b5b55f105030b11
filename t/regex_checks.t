#!/usr/bin/perl
# The bundled regex plugin: Postfix's header_checks, mime_header_checks,
# nested_header_checks and body_checks (header_checks(5)), with real
# pcre: and regexp: tables and real SMTP sessions.  For each action the
# test checks what a user would: the reply at the end of DATA, the log
# line in cleanup's shape, and the message as queued (headers, envelope
# recipients, hold/).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest;

my $t = SluiceTest->new(start => 0);
my $d = $t->dir;
$t->write_file('header_checks', <<'EOF');
# pcre: header_checks, as an admin writes them
/^Subject:.*viagra/		REJECT no pills here
/^Subject:.*4xx-test/		REJECT 4.7.0 try again later
/^Subject: hello\n\s+folded-spam/	REJECT folded header matched
/^X-Drop:/			IGNORE
/^X-Old: (.*)/			REPLACE X-New: was $1
/^X-Mark:/			PREPEND X-Marked: yes
/^X-Hold:/			HOLD held for review
/^X-Discard:/			DISCARD dropped quietly
/^X-Redirect:/			REDIRECT trap@example.net
/^X-Bcc:/			BCC archive@example.net
/^X-Filter:/			FILTER smtp:[127.0.0.1]:10025
/^X-Warn:/			WARN looked at
/^X-Info:/			INFO noted
/^X-Dunno:/			DUNNO
/^X-Ok:/			OK
/^X-Unknown:/			FROBNICATE
/^X-Bad-Prepend:/		PREPEND no colon here
/^Content-Type:.*name="?[^"]*\.exe/	REJECT executable attachment
EOF
$t->write_file('header_checks2', <<'EOF');
/^X-Second:/	REJECT second table
/^X-Drop:/	REJECT never: the first table matched first
EOF
$t->write_file('body_checks', <<'EOF');
/badword/	REJECT
/^warnline/	WARN body warning
EOF
$t->set_main(header_checks => "pcre:$d/header_checks, regexp:$d/header_checks2",
	     body_checks => "regexp:$d/body_checks",
	     body_checks_size_limit => 200,
	     smtpd_sender_restrictions =>
		 'check_sender_access inline:{ { prepend@example.org = PREPEND X-Pre: 1 } }');
$t->start;

my $TAIL = qr{ from localhost\[127\.0\.0\.1\]; from=<alice\@example\.org> to=<bob\@example\.net> proto=ESMTP helo=<client\.example>};

# Send one message; (code, text, id) and the log written meanwhile.
sub send_msg {
	my ($body) = @_;
	my $mark = $t->log_mark;
	my ($code, $text, $id) = $t->smtp->send_message($body);
	$t->wait_log(qr/disconnect from/, undef, from => $mark);
	return ($code, $text, $id, substr($t->log_text, $mark));
}

# The message as stored (its segments), and the envelope.
sub stored {
	my ($id, $sub) = @_;
	my $q = SluiceTest::read_queue_file($t->queue_path($id, $sub)) or return;
	my $msg = '';
	for my $seg (@{ $q->{rec}{seg} || [] }) {
		my ($o, $l) = split / /, $seg;
		$msg .= substr($q->{bytes}, $o, $l);
	}
	$q->{message} = $msg;
	($q->{headers}) = $msg =~ /\A(.*?\n)\n/s;
	return $q;
}

# ---- REJECT ---------------------------------------------------------------
my ($code, $text, $id, $log) = send_msg("Subject: cheap VIAGRA\n\nhello\n");
is($text, '550 5.7.1 no pills here', 'REJECT in header_checks: 550 5.7.1 and its text');
like($log, qr{: regex: reject: header Subject: cheap VIAGRA$TAIL: 5\.7\.1 no pills here\n},
     'cleanup-shaped reject log line');
is_deeply([$t->queue_files], [], 'nothing queued');

($code, $text) = send_msg("Subject: 4xx-test\n\nhello\n");
is($text, '451 4.7.0 try again later', 'REJECT with a 4.X.X code: 451');

($code, $text, $id, $log) = send_msg("Subject: hello\n\tfolded-spam\n\nbody\n");
is($text, '550 5.7.1 folded header matched',
   'a folded header is one logical line, the line break kept');

($code, $text, $id, $log) = send_msg("Subject: ok\n\nline one\nthis has a badword\n");
is($text, '550 5.7.1 message content rejected', 'REJECT in body_checks: the default text');
like($log, qr{: regex: reject: body this has a badword$TAIL: 5\.7\.1 message content rejected\n},
     'body reject log line');

($code, $text) = send_msg("Subject: ok\nX-Second: 1\n\nhello\n");
is($text, '550 5.7.1 second table', 'the second table of the list is searched');

# ---- edits: IGNORE, REPLACE, PREPEND ---------------------------------------
($code, $text, $id, $log) = send_msg("Subject: edits\nX-Drop: 1\nX-Old: abc\nX-Keep: k\nX-Mark: m\n\nhello\n");
like($text, qr/^250 2\.0\.0 Ok: queued as/, 'edited message accepted');
my $q = stored($id);
unlike($q->{headers}, qr/^X-Drop:/m, 'IGNORE deleted the header');
like($q->{headers}, qr/^X-Keep: k\nX-Marked: yes\nX-Mark: m\n\z/m,
     'PREPEND put its header just before the matched one');
like($q->{headers}, qr/^Subject: edits\nX-New: was abc\nX-Keep: k\n/m,
     'REPLACE replaced the header in place ($1 substituted)');
like($q->{message}, qr/\n\nhello\n\z/, 'body intact after the empty line');
like($log, qr{: regex: replace: header X-Old: abc$TAIL: X-New: was abc\n}, 'replace log line');
like($log, qr{: regex: prepend: header X-Mark: m$TAIL: X-Marked: yes\n}, 'prepend log line');

# A restriction's PREPEND header is above the edited ones: they still
# land at the right place.
{
	my $c = $t->smtp;
	$c->hello('client.example');
	($code, $text) = $c->transaction(from => 'prepend@example.org', to => ['bob@example.net'],
					 body => "Subject: p\nX-Old: abc\nX-Mark: m\n\nhello\n");
	($id) = $text =~ /queued as (\S+)/;
	# a second transaction in the same session starts afresh
	my ($code2, $text2) = $c->transaction(from => 'alice@example.org', to => ['bob@example.net'],
					      body => "Subject: second\nX-Keep: 1\n\nhello\n");
	my ($id2) = $text2 =~ /queued as (\S+)/;
	$c->cmd('QUIT');
	$q = stored($id);
	like($q->{headers}, qr/\AX-Pre: 1\nReceived: .*^Subject: p\nX-New: was abc\nX-Marked: yes\nX-Mark: m\n\z/ms,
	     'edits after a restriction PREPEND land on the right headers');
	like(stored($id2)->{headers}, qr/^Subject: second\nX-Keep: 1\n\z/m,
	     'the next transaction of the session is not edited');
}

# ---- HOLD, DISCARD -----------------------------------------------------------
($code, $text, $id, $log) = send_msg("Subject: x\nX-Hold: 1\n\nhello\n");
like($text, qr/^250 /, 'HOLD: accepted');
ok($id && -f $t->queue_path($id, 'hold'), 'HOLD: the message is in hold/');
like($log, qr{: regex: hold: header X-Hold: 1$TAIL: held for review\n}, 'hold log line');

($code, $text, $id, $log) = send_msg("Subject: x\nX-Discard: 1\nX-Drop: 1\n\nhello\n");
like($text, qr/^250 /, 'DISCARD: the client is told the message is queued');
ok(!grep({ $_ eq ($id // '') } $t->queue_files), 'DISCARD: no queue file');
like($log, qr{: regex: discard: header X-Discard: 1$TAIL: dropped quietly\n}, 'discard log line');

# ---- REDIRECT, BCC, FILTER ---------------------------------------------------
($code, $text, $id, $log) = send_msg("Subject: x\nX-Redirect: 1\n\nhello\n");
$q = stored($id);
is_deeply([map { $_->{addr} } @{ $q->{rcpt} }], ['trap@example.net'],
	  'REDIRECT: the one recipient is the target');
like($log, qr{: regex: redirect: header X-Redirect: 1$TAIL: trap\@example\.net\n}, 'redirect log line');

($code, $text, $id, $log) = send_msg("Subject: x\nX-Bcc: 1\n\nhello\n");
$q = stored($id);
is_deeply([sort map { $_->{addr} } @{ $q->{rcpt} }], ['archive@example.net', 'bob@example.net'],
	  'BCC: a recipient added');

($code, $text, $id, $log) = send_msg("Subject: x\nX-Filter: 1\n\nhello\n");
like($log, qr{: regex: filter: header X-Filter: 1$TAIL: smtp:\[127\.0\.0\.1\]:10025\n}, 'filter log line');
$q = stored($id);
is_deeply($q->{rec}{filter}, ['smtp:[127.0.0.1]:10025'], 'FILTER: the queued envelope names the content filter');
unlike($log, qr{not applied}, 'FILTER: applied, not refused');

# ---- WARN, INFO, DUNNO, OK, unknown ---------------------------------------------
($code, $text, $id, $log) = send_msg("Subject: x\nX-Warn: w\nX-Info: i\nX-Dunno: d\nX-Ok: o\nX-Unknown: u\nX-Bad-Prepend: b\n\nwarnline here\n");
like($text, qr/^250 /, 'WARN, INFO, DUNNO, OK: accepted');
like($log, qr{: regex: warning: header X-Warn: w$TAIL: looked at\n}, 'warning log line');
like($log, qr{: regex: info: header X-Info: i$TAIL: noted\n}, 'info log line');
like($log, qr{: regex: warning: body warnline here$TAIL: body warning\n}, 'body warning line');
like($log, qr{warning: .*regex: unknown command in header_checks map: FROBNICATE}, 'unknown command warned');
like($log, qr{bad PREPEND header text "no colon here" in header_checks map}, 'bad PREPEND warned');
$q = stored($id);
like($q->{headers}, qr/^X-Dunno: d\nX-Ok: o\nX-Unknown: u\nX-Bad-Prepend: b\n/m, 'those headers stay');

# ---- MIME: part headers, attached messages, size limit ------------------------
my $mime = <<'EOF';
Subject: with attachment
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

preamble
--b1
Content-Type: text/plain

see attached
--b1
Content-Type: application/octet-stream;
	name="setup.exe"
Content-Transfer-Encoding: base64

AAAA
--b1--
EOF
($code, $text, $id, $log) = send_msg($mime);
is($text, '550 5.7.1 executable attachment',
   'mime_header_checks (= $header_checks) sees a part header, folded');
like($log, qr{: regex: reject: header Content-Type: application/octet-stream;\?\?name="setup\.exe"$TAIL},
     'the part header in the log line');

my $nested = <<'EOF';
Subject: fwd
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain

see the forwarded message
--outer
Content-Type: message/rfc822

Subject: cheap viagra inside
From: x@example.com

the nested body
--outer--
EOF
($code, $text) = send_msg($nested);
is($text, '550 5.7.1 no pills here', 'nested_header_checks (= $header_checks) sees the attached message');

# body_checks_size_limit is per segment: 200 bytes here
my $filler = ('x' x 60 . "\n") x 4;
($code, $text) = send_msg("Subject: long\n\n${filler}badword after the limit\n");
like($text, qr/^250 /, 'a body line past body_checks_size_limit is not looked at');
($code, $text) = send_msg(<<"EOF");
Subject: parts
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="zz"

--zz
Content-Type: text/plain

$filler
--zz
Content-Type: text/plain

badword in the second part
--zz--
EOF
is($text, '550 5.7.1 message content rejected', 'the limit starts over in each MIME part');

# ---- config ---------------------------------------------------------------------
my ($rc, $out) = $t->sluice('conf', 'mime_header_checks', 'nested_header_checks', 'body_checks_size_limit');
like($out, qr/^mime_header_checks = \$header_checks$/m, 'mime_header_checks defaults to $header_checks');
($rc, $out) = $t->sluice('conf', '-d', 'body_checks_size_limit', 'header_checks');
like($out, qr/^body_checks_size_limit = 51200$/m, 'body_checks_size_limit default 51200');

done_testing;
