#!/usr/bin/perl
# milter_opendkim.t - sluice through a real opendkim (issue 6, "Tests with
# real peers"): opendkim (Mode sv, a key made by opendkim-genkey in a
# temp dir, MacroList daemon_name=ORIGINATING, no loopback InternalHosts)
# is sluice's smtpd_milters; the submission listener has
# -o milter_macro_daemon_name=ORIGINATING; the queue manager delivers to
# Postfix's smtp-sink, which dumps each message.
#  - mail submitted on the submission listener is signed, and the
#    signature in the delivered message verifies with a second opendkim
#    (verify mode, -t) and with opendkim-testmsg (key from DNS: dnsmasq
#    in a private network namespace); opendkim logs sluice's queue ID
#    (the i macro);
#  - mail from example.org arriving on port 25 is not signed;
#  - a signed message arriving on port 25 is verified: the delivered copy
#    has opendkim's Authentication-Results: mx.example.test; dkim=pass,
#    and a tampered one dkim=fail;
#  - with clamav-milter, spamass-milter (tagging, body replaced) and
#    opendkim in a row, opendkim signs what the two before it left, and
#    the delivered signature verifies;
#  - with opendkim down, milter_default_action = tempfail gives 451 4.7.1
#    and nothing is queued.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use MilterPeers;
use QmgrTest qw(start_sink dumps qmgr_sluice);
use SluiceTest qw(wait_until);

my $why = MilterPeers::OpenDKIM->unavailable;
BAIL_OUT($why) if $why;
BAIL_OUT("$QmgrTest::SINK missing: install postfix") unless -x $QmgrTest::SINK;

my $tmp = tempdir('milter-dkim-t-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{SLUICE_KEEP_TMP});
chmod 0755, $tmp;

my $dkim = MilterPeers::OpenDKIM->new(domain => 'example.org', selector => 'sluice')->start;
my $sink = start_sink("$tmp/sink");
my $t = qmgr_sluice(
	main => { relayhost => "[127.0.0.1]:$sink", smtpd_milters => $dkim->spec,
		  milter_default_action => 'tempfail', smtpd_peername_lookup => 'no',
		  mynetworks => '127.0.0.0/8' },
	listeners => { smtp => '', submission => '-o milter_macro_daemon_name=ORIGINATING' });

sub message {
	my ($subject, $body) = @_;
	return join "\n", 'From: Alice <alice@example.org>', 'To: Bob <bob@example.net>',
		"Subject: $subject", 'Date: Sat, 21 Nov 2026 08:00:00 +0000',
		"Message-ID: <$subject\@example.org>", '', $body // 'Hello Bob.', '';
}

# Send on a listener; (code, reply, queue id).
sub send_on {
	my ($listener, $text) = @_;
	my $c = $t->smtp($listener) or return (undef, "connect: $!");
	return $c->send_message($text);
}

# The delivered message whose Subject is `subject`, as the sink dumped it
# (without smtp-sink's own X-Client-*/X-*-Args lines, LF line ends).
sub delivered {
	my ($subject) = @_;
	my $m = wait_until(sub { (grep { /^Subject: \Q$subject\E\r?$/m } dumps("$tmp/sink"))[0] }, 20)
	    // return '';
	$m =~ s/\r\n/\n/g;
	$m =~ s/^X-(?:Client-Addr|Client-Proto|Helo-Args|Mail-Args|Rcpt-Args): .*\n//mg;
	return $m;
}

sub auth_results {
	my ($msg) = @_;
	return join '', $msg =~ /^(Authentication-Results:.*\n(?:[ \t].*\n)*)/mig;
}

# ---- signing on submission ---------------------------------------------

my ($code, $reply, $id) = send_on('submission', message('submitted'));
is($code, 250, 'submission: queued') or diag($reply, $t->log_text);
my $signed = delivered('submitted');
like($signed, qr/^DKIM-Signature:\s*v=1;.*\bd=example\.org;.*\bs=sluice;/ms,
     'the delivered message carries the DKIM-Signature opendkim added')
    or diag($signed, $dkim->log_text);
my ($ok, $res) = $dkim->verify($signed);
ok($ok, 'the delivered signature verifies (a second opendkim, -t)') or diag($res);
my ($rc, $out) = $dkim->testmsg($signed);
BAIL_OUT($out) unless defined $rc;
is($rc, 0, 'the delivered signature verifies (opendkim-testmsg, key from DNS)') or diag($out);
like($dkim->log_text, qr/\Q$id\E: DKIM-Signature field added \(s=sluice, d=example\.org\)/,
     "opendkim logs the signature under sluice's queue ID (macro i)")
    if defined $id;

# ---- port 25 ------------------------------------------------------------

($code, $reply) = send_on('smtp', message('inbound-unsigned'));
is($code, 250, 'port 25: an unsigned message from example.org is queued');
unlike(delivered('inbound-unsigned'), qr/^DKIM-Signature:/mi,
       'port 25: it is delivered unsigned ({daemon_name} is not ORIGINATING)');

# The signed message, relayed to port 25 as another MTA would.
($code, $reply) = send_on('smtp', $signed =~ s/^Received:.*\n(?:[ \t].*\n)*//mgr);
is($code, 250, 'port 25: the signed message is queued');
my @dumps = wait_until(sub { my @d = grep { /^Subject: submitted\r?$/m } dumps("$tmp/sink");
			     @d >= 2 ? \@d : undef }, 20);
my ($verified) = grep { /^Authentication-Results:/m } map { s/\r\n/\n/gr } @{ $dumps[0] || [] };
like(auth_results($verified // ''),
     qr/^Authentication-Results: mx\.example\.test;\s+dkim=pass \(2048-bit key\) header\.d=example\.org header\.i=\@example\.org header\.a=rsa-sha256 header\.s=sluice/,
     'port 25: the delivered copy has Authentication-Results: mx.example.test; dkim=pass')
    or diag($verified // 'no copy with Authentication-Results', $dkim->log_text);

(my $tampered = $signed) =~ s/^Hello Bob\.$/Hello Eve./m;
$tampered =~ s/^Received:.*\n(?:[ \t].*\n)*//mg;
($code, $reply) = send_on('smtp', $tampered);
is($code, 250, 'port 25: a tampered signed message is queued (opendkim only reports)');
@dumps = wait_until(sub { my @d = grep { /^Hello Eve\.\r?$/m } dumps("$tmp/sink");
			  @d ? \@d : undef }, 20);
my $tampered_copy = ($dumps[0] || [])->[0] // '';
$tampered_copy =~ s/\r\n/\n/g;
like(auth_results($tampered_copy),
     qr/\bdkim=fail\b/, 'port 25: the tampered copy has dkim=fail');

# ---- three milters in a row ---------------------------------------------

# clamav-milter, spamass-milter (tagging: it replaces the body with its
# report) and opendkim last, as docs/milter.md's recipe says: opendkim
# sees the headers and the body the two before it left, so what it signs
# is what is delivered, and the signature verifies.
{
	my $cwhy = MilterPeers::Clamd->unavailable || MilterPeers::ClamavMilter->unavailable
	    || MilterPeers::Spamd->unavailable || MilterPeers::SpamassMilter->unavailable;
	BAIL_OUT($cwhy) if $cwhy;
	my $clamd = MilterPeers::Clamd->new->start;
	my $clamav = MilterPeers::ClamavMilter->new(clamd => $clamd)->start;
	my $spamd = MilterPeers::Spamd->new->start;
	my $sa = MilterPeers::SpamassMilter->new(spamd => $spamd)->start;
	my $chain = qmgr_sluice(
		main => { relayhost => "[127.0.0.1]:$sink",
			  smtpd_milters => join(', ', $clamav->spec, $sa->spec, $dkim->spec),
			  milter_default_action => 'tempfail', smtpd_peername_lookup => 'no',
			  mynetworks => '127.0.0.0/8' },
		listeners => { submission => '-o milter_macro_daemon_name=ORIGINATING' });
	my $c = $chain->smtp('submission');
	$c->hello('client.example');
	($code, $reply) = $c->transaction(from => 'alice@example.org', to => ['bob@example.net'],
					  body => message('chained', MilterPeers::gtube()));
	is($code, 250, 'three milters: the message is queued') or diag($reply, $chain->log_text);
	my $m = delivered('chained');
	like($m, qr/^X-Virus-Status: Clean$/m, 'clamav-milter added X-Virus-Status');
	like($m, qr/^X-Spam-Flag: YES$/m, 'spamass-milter added X-Spam-Flag');
	like($m, qr/^Spam detection software/m, "spamass-milter's report replaced the body");
	like($m, qr/^DKIM-Signature:\s*v=1;/m, 'opendkim signed it') or diag($m);
	($ok, $res) = $dkim->verify($m);
	ok($ok, "the signature covers what the milters before opendkim made, and verifies")
	    or diag($res, $m);
}

# ---- opendkim down ------------------------------------------------------

$dkim->stop;
my @before = $t->queue_files;
my $mark = $t->log_mark;
($code, $reply) = send_on('submission', message('while-down'));
like($reply, qr/^451 4\.7\.1 /, 'opendkim down: milter_default_action = tempfail gives 451 4.7.1');
ok($t->wait_log(qr/warning: connect to Milter service inet:127\.0\.0\.1:\d+: Connection refused/, 10, from => $mark),
   "and sluice logs Postfix's warning: connect to Milter service ...: Connection refused") or diag($t->log_text($mark));
is_deeply([$t->queue_files], \@before, 'nothing is queued');

done_testing;
