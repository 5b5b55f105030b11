#!/usr/bin/perl
# header_checks and body_checks against a real Postfix (Debian's, private,
# in a temp dir: t/lib/PostfixPeer.pm): the same pcre: and regexp: table
# files on both, the same messages, and for each the same reply at the
# end of DATA, the same cleanup log line (after the queue id and the
# client's name, which differ by construction) and, when the message is
# accepted, the same headers in the queued message (REJECT, IGNORE,
# REPLACE, PREPEND, folded headers, MIME part headers, attached
# messages' headers, body lines, pcre's case-sensitivity toggle).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use PostfixPeer;
use SluiceTest;

my $why = PostfixPeer->unavailable;
plan skip_all => $why if $why;

my $pf = PostfixPeer->new;
my $tables = $pf->top . '/tables';
PostfixPeer::write_file("$tables/header_checks", <<'EOF');
/^Subject:.*viagra/		REJECT no pills here
/^Subject:.*CaseSensitive/i	REJECT case-sensitive match
/^Subject:.*default-reject/	REJECT
/^Subject:.*soft-reject/	REJECT 4.7.0 try again later
/^Subject: hello\n\s+folded-spam/	REJECT folded header matched
/^X-Drop:/			IGNORE
/^X-Old: (.*)/			REPLACE X-New: was $1
/^X-Mark:/			PREPEND X-Marked: yes
/^Content-Type:.*name="?[^"]*\.exe/	REJECT executable attachment
/^X-Hold:/			HOLD held for review
/^X-Discard:/			DISCARD dropped quietly
/^X-Redirect:/			REDIRECT trap@example.net
/^X-Bcc:/			BCC archive@example.net
/^X-Warn:/			WARN looked at
/^X-Info:/			INFO noted
EOF
PostfixPeer::write_file("$tables/body_checks", <<'EOF');
/badword/	REJECT bad word in body
EOF
chmod 0755, $tables;
my %main = (header_checks => "pcre:$tables/header_checks",
	    body_checks => "regexp:$tables/body_checks");

my $t = SluiceTest->new(main => { %main });
$pf->configure(main => { %main, mynetworks => '127.0.0.0/8' });
$pf->start;

my $HDRS = "From: alice\@example.org\nTo: bob\@example.net\nDate: Sat, 21 Nov 2026 10:00:00 +0000\nMessage-ID: <m1\@example.org>\n";

my @cases = (
	['REJECT with text', "Subject: cheap viagra\n${HDRS}\nhello\n"],
	['pcre /i makes the match case-sensitive', "Subject: casesensitive\n${HDRS}\nhello\n"],
	['pcre /i, exact case', "Subject: CaseSensitive\n${HDRS}\nhello\n"],
	['REJECT without text', "Subject: default-reject\n${HDRS}\nhello\n"],
	['REJECT with a 4.X.X code', "Subject: soft-reject\n${HDRS}\nhello\n"],
	['a folded header', "Subject: hello\n\tfolded-spam\n${HDRS}\nhello\n"],
	['IGNORE, REPLACE, PREPEND', "Subject: edits\n${HDRS}X-Drop: 1\nX-Old: abc\nX-Keep: k\nX-Mark: m\n\nhello\n"],
	['HOLD', "Subject: hold\n${HDRS}X-Hold: 1\n\nhello\n"],
	['DISCARD', "Subject: discard\n${HDRS}X-Discard: 1\n\nhello\n"],
	['REDIRECT', "Subject: redirect\n${HDRS}X-Redirect: 1\n\nhello\n"],
	['BCC', "Subject: bcc\n${HDRS}X-Bcc: 1\n\nhello\n"],
	['WARN', "Subject: warn\n${HDRS}X-Warn: 1\n\nhello\n"],
	['INFO', "Subject: info\n${HDRS}X-Info: 1\n\nhello\n"],
	['body_checks', "Subject: body\n${HDRS}\nline one\nthis has a badword\n"],
	['a MIME part header', <<"EOF"],
Subject: with attachment
${HDRS}MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain

see attached
--b1
Content-Type: application/octet-stream;
	name="setup.exe"

AAAA
--b1--
EOF
	['an attached message\'s header', <<"EOF"],
Subject: fwd
${HDRS}MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: message/rfc822

Subject: cheap viagra inside
From: x\@example.com

nested body
--outer--
EOF
);

my $ACTIONS = qr/(?:reject|replace|prepend|hold|discard|redirect|warning|info)/;

# reply, the cleanup log line (normalised), the headers without Received:
sub sluice_side {
	my ($body) = @_;
	my $mark = $t->log_mark;
	my (undef, $reply, $id) = $t->smtp->send_message($body);
	$t->wait_log(qr/disconnect from/, undef, from => $mark);
	my ($line) = substr($t->log_text, $mark) =~ /: regex: ($ACTIONS: .*)/;
	my $hdrs = '';
	$hdrs = "HELD\n" if $id && grep { $_ eq $id } $t->queue_files('hold');
	if ($id) {
		my (undef, $out) = $t->sluice('queue', 'show', $id);
		$hdrs .= ($out =~ /\*\*\* MESSAGE CONTENTS [^\n]*\n(.*?)\n(?:\n|hello)/s)[0] // '';
	}
	return ($reply, $line, $hdrs);
}

sub postfix_side {
	my ($body) = @_;
	my $mark = length(SluiceTest::slurp($pf->log_file) // '');
	my $c = SluiceTest::Client->new(port => $pf->port);
	my (undef, $reply, $id) = $c->send_message($body);
	my $line;
	SluiceTest::wait_until(sub {
		my $log = substr(SluiceTest::slurp($pf->log_file) // '', $mark);
		($line) = $log =~ /cleanup\[\d+\]: \w+: ($ACTIONS: .*)/;
		return defined $line || $log =~ /disconnect from/;
	}, 10);
	my $hdrs = '';
	$hdrs = "HELD\n" if $id && grep { $_ eq $id } $pf->queue_files('hold');
	$hdrs .= `$PostfixPeer::POSTCAT -c ${\ $pf->dir} -h -q $id 2>&1` if $id;
	$hdrs = '' if $hdrs =~ /fatal: open queue file/;   # discarded
	return ($reply, $line, $hdrs);
}

sub normalise_headers {
	my ($h) = @_;
	$h =~ s/^Received:.*\n(?:[ \t].*\n)*//mg;
	$h =~ s/\n+\z//;
	return $h;
}

for my $case (@cases) {
	my ($name, $body) = @$case;
	my ($sr, $sl, $sh) = sluice_side($body);
	my ($pr, $pl, $ph) = postfix_side($body);
	s/queued as \S+/queued as ID/ for grep { defined } $sr, $pr;
	s/ from \S+\[127\.0\.0\.1\];/ from CLIENT[127.0.0.1];/ for grep { defined } $sl, $pl;
	is($sr, $pr, "$name: the same reply as Postfix");
	is($sl, $pl, "$name: the same cleanup log line") if defined $pl || defined $sl;
	is(normalise_headers($sh), normalise_headers($ph), "$name: the same stored headers")
	    if $sr =~ /^250/;
}

done_testing;
