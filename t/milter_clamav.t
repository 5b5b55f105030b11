#!/usr/bin/perl
# milter_clamav.t - sluice through a real clamav-milter and clamd (issue
# 6, "Tests with real peers"): clamd loads a signature database the test
# makes (EICAR and one custom signature; no download, no freshclam) and
# listens on a unix socket in a temp dir; clamav-milter (OnInfected
# Reject, RejectMsg "Virus found: %v", AddHeader Replace) talks to it and
# sluice talks to clamav-milter (smtpd_milters = inet:127.0.0.1:PORT).
#  - a clean message is queued, with clamav-milter's X-Virus-Status: Clean
#    header in the queued message;
#  - EICAR in the body, the custom signature in a base64 attachment, and
#    a zip (made here) holding the EICAR file are each rejected at the
#    end of data with 550 5.7.1 and the virus name, logged as Postfix
#    does (milter-reject: END-OF-MESSAGE ...), and nothing is queued;
#  - with clamd down, clamav-milter (OnFail Defer) makes sluice answer
#    451 4.7.1 and nothing is queued;
#  - a private Postfix with the same clamav-milter gives the same replies
#    (code, enhanced code and text) and the same milter-reject log line,
#    when Postfix can run here.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Compress::Zip qw(zip $ZipError);
use MIME::Base64 qw(encode_base64);
use Test::More;
use MilterPeers;
use PostfixPeer;
use SluiceTest;

my $why = MilterPeers::Clamd->unavailable || MilterPeers::ClamavMilter->unavailable;
plan skip_all => $why if $why;

my $clamd = MilterPeers::Clamd->new->start;
my $clamav = MilterPeers::ClamavMilter->new(clamd => $clamd)->start;

my $t = SluiceTest->new(main => { smtpd_milters => $clamav->spec,
				  milter_default_action => 'tempfail',
				  smtpd_peername_lookup => 'no' });

# A MIME message with one attachment (its bytes, base64-encoded).
sub with_attachment {
	my ($subject, $name, $type, $bytes) = @_;
	return join "\n", 'From: sender@example.org', 'To: rcpt@example.net',
		"Subject: $subject", 'MIME-Version: 1.0',
		'Content-Type: multipart/mixed; boundary="b-sluice"', '',
		'--b-sluice', 'Content-Type: text/plain; charset=us-ascii', '',
		'See the attachment.', '', '--b-sluice',
		"Content-Type: $type; name=\"$name\"", 'Content-Transfer-Encoding: base64',
		"Content-Disposition: attachment; filename=\"$name\"", '',
		encode_base64($bytes) . '--b-sluice--', '';
}

my $zipped;
zip(\MilterPeers::eicar() => \$zipped, Name => 'eicar.com') or die "zip: $ZipError";

my %msg = (
	clean => "From: sender\@example.org\nTo: rcpt\@example.net\nSubject: clean\n\nNothing to see here.\n",
	eicar => "From: sender\@example.org\nTo: rcpt\@example.net\nSubject: eicar\n\n"
		 . MilterPeers::eicar() . "\n",
	custom => with_attachment('custom', 'note.txt', 'text/plain',
				  "a file with $MilterPeers::Clamd::CUSTOM_STRING inside\n"),
	zip => with_attachment('zip', 'archive.zip', 'application/zip', $zipped),
);

# Send message `name` to port; (code, reply text) of the end of data.
sub send_msg {
	my ($port, $name) = @_;
	my $c = SluiceTest::Client->new(port => $port) or return (undef, "connect: $!");
	my ($code, $text) = $c->hello('client.example');
	return ($code, $text) unless defined $code && $code eq '250';
	($code, $text) = $c->transaction(body => $msg{$name});
	$c->cmd('QUIT');
	return ($code, $text // '');
}

# ---- clean --------------------------------------------------------------

my ($code, $text) = send_msg($t->port, 'clean');
is($code, 250, 'a clean message is accepted') or diag($text, $clamav->log_text);
my ($id) = ($text // '') =~ /queued as (\S+)/;
my $queued = MilterPeers::sluice_message($t, $id);
like($queued, qr/^X-Virus-Status: Clean$/m,
     "clamav-milter's X-Virus-Status: Clean reaches the queued message");
like($queued, qr/^X-Virus-Scanned: clamav-milter \S+ at /m,
     'and its X-Virus-Scanned header');

# ---- infected -----------------------------------------------------------

my %virus = (eicar => 'Eicar-Test-Signature', custom => $MilterPeers::Clamd::CUSTOM_NAME,
	     zip => 'Eicar-Test-Signature');
my %what = (eicar => 'EICAR in the body', custom => 'the custom signature in an attachment',
	    zip => 'a zip holding the EICAR file');
my %sluice_reply;
for my $name (qw(eicar custom zip)) {
	my @before = $t->queue_files;
	my $mark = $t->log_mark;
	($code, $text) = send_msg($t->port, $name);
	$sluice_reply{$name} = $text;
	like($text // '', qr/^550 5\.7\.1 Virus found: \Q$virus{$name}\E\b/,
	     "$what{$name}: 550 5.7.1 with the virus name") or diag($clamav->log_text);
	ok($t->wait_log(qr/milter-reject: END-OF-MESSAGE from \S+\[127\.0\.0\.1\]: 5\.7\.1 Virus found: \Q$virus{$name}\E.*; from=<sender\@example\.org> to=<rcpt\@example\.net>/,
			10, from => $mark),
	   "$what{$name}: logged as milter-reject: END-OF-MESSAGE with the virus")
	    or diag($t->log_text($mark));
	is_deeply([$t->queue_files], \@before, "$what{$name}: nothing is queued");
}
like($clamav->log_text, qr/infected by Eicar-Test-Signature/,
     "clamav-milter's log names the virus it found");

# ---- the same through Postfix -------------------------------------------

SKIP: {
	my $pwhy = PostfixPeer->unavailable;
	skip($pwhy, 5) if $pwhy;
	my $pf = PostfixPeer->new;
	$pf->configure(main => { smtpd_milters => $clamav->spec,
				 milter_default_action => 'tempfail' });
	$pf->start;
	($code, $text) = send_msg($pf->port, 'clean');
	is($code, 250, 'Postfix: the clean message is accepted');
	for my $name (qw(eicar custom zip)) {
		($code, $text) = send_msg($pf->port, $name);
		is($sluice_reply{$name}, $text, "$what{$name}: the same reply as Postfix");
	}
	# The log lines agree too, from "milter-reject:" to the envelope.
	my $shape = sub {
		my ($log) = @_;
		my ($l) = $log =~ /(milter-reject: END-OF-MESSAGE from [^;]*Eicar[^;]*; from=<[^>]*> to=<[^>]*>)/;
		return $l;
	};
	my $pf_log = PostfixPeer::slurp($pf->log_file) // '';
	is($shape->($t->log_text), $shape->($pf_log) // 'no Postfix line',
	   'the milter-reject log line has the shape of Postfix\'s');
}

# ---- clamd down ---------------------------------------------------------

# clamav-milter cannot scan: OnFail Defer answers tempfail, the client is
# told to come back later, and nothing is queued.
$clamd->stop;
my @before = $t->queue_files;
($code, $text) = send_msg($t->port, 'clean');
like($text // '', qr/^451 4\.7\.1 /, 'clamd down: clamav-milter defers (451 4.7.1)')
    or diag($clamav->log_text);
is_deeply([$t->queue_files], \@before, 'clamd down: nothing is queued');

done_testing;
