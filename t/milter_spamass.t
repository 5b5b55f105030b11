#!/usr/bin/perl
# milter_spamass.t - sluice through a real spamass-milter and spamd (issue
# 6, "Tests with real peers"): spamd runs Debian's SpamAssassin rules
# (/usr/share/spamassassin; sa-update never runs), local tests only
# (-L), no Bayes, on a loopback port, started once (it is slow); two
# spamass-milters talk to it through spamc:
#  - rejecting (spamass-milter -r 15): a GTUBE message is rejected at the
#    end of data with 550 5.7.1 Blocked by SpamAssassin, logged as
#    Postfix does (milter-reject: END-OF-MESSAGE ...), nothing is queued;
#    a normal message is queued with the X-Spam-Status and
#    X-Spam-Checker-Version headers spamass-milter adds;
#  - tagging (no -r): the GTUBE message is queued with X-Spam-Flag: YES,
#    X-Spam-Status: Yes and X-Spam-Level, and SpamAssassin's report in
#    place of the body (report_safe: spamass-milter replaces the body and
#    Content-Type; the original rides along as message/rfc822);
#  - a private Postfix with the same milters gives the same reject reply
#    and the same X-Spam-Flag, when Postfix can run here.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MilterPeers;
use PostfixPeer;
use SluiceTest;

my $why = MilterPeers::Spamd->unavailable || MilterPeers::SpamassMilter->unavailable;
BAIL_OUT($why) if $why;

my $spamd = MilterPeers::Spamd->new->start;
my $reject = MilterPeers::SpamassMilter->new(spamd => $spamd, reject => 15)->start;
my $tag = MilterPeers::SpamassMilter->new(spamd => $spamd)->start;

my $HAM = join "\n", 'From: Alice <alice@example.org>', 'To: Bob <bob@example.net>',
	'Subject: lunch on friday', 'Date: Sat, 21 Nov 2026 08:00:00 +0000',
	'Message-ID: <lunch-1@example.org>', '',
	'Hi Bob, are we still on for lunch on Friday?', 'Alice', '';
my $SPAM = join "\n", 'From: Mallory <mallory@example.org>', 'To: Bob <bob@example.net>',
	'Subject: you have won', 'Date: Sat, 21 Nov 2026 08:00:00 +0000',
	'Message-ID: <gtube-1@example.org>', '',
	'This is the GTUBE, the generic test for unsolicited bulk email:', '',
	MilterPeers::gtube(), '';

sub sluice_with {
	my ($milter) = @_;
	return SluiceTest->new(main => { smtpd_milters => $milter->spec,
					 milter_default_action => 'tempfail',
					 smtpd_peername_lookup => 'no' });
}

# Send a message to port; (code, reply, queue id).
sub send_msg {
	my ($port, $text) = @_;
	my $c = SluiceTest::Client->new(port => $port) or return (undef, "connect: $!");
	return $c->send_message($text);
}

sub header_block { ($_[0] =~ /\A(.*?)\n\n/s)[0] // '' }

# ---- rejecting ----------------------------------------------------------

my $t = sluice_with($reject);
my @before = $t->queue_files;
my $mark = $t->log_mark;
my ($code, $reply, $id) = send_msg($t->port, $SPAM);
my $sluice_reject = $reply;
is($reply, '550 5.7.1 Blocked by SpamAssassin', 'reject mode: GTUBE gets 550 5.7.1 Blocked by SpamAssassin')
    or diag($spamd->log_text, $reject->log_text);
ok($t->wait_log(qr/milter-reject: END-OF-MESSAGE from unknown\[127\.0\.0\.1\]: 5\.7\.1 Blocked by SpamAssassin; from=<alice\@example\.org> to=<bob\@example\.net>/,
		10, from => $mark), 'logged as milter-reject: END-OF-MESSAGE, as Postfix does')
    or diag($t->log_text($mark));
is_deeply([$t->queue_files], \@before, 'reject mode: nothing is queued');

($code, $reply, $id) = send_msg($t->port, $HAM);
is($code, 250, 'reject mode: a normal message is queued') or diag($reply);
my $hdrs = header_block(MilterPeers::sluice_message($t, $id));
like($hdrs, qr/^X-Spam-Status: No, score=-?\d+\.\d required=5\.0 tests=/m,
     'the queued message has X-Spam-Status: No, score=...') or diag($hdrs);
like($hdrs, qr/^X-Spam-Checker-Version: SpamAssassin \d/m, 'and X-Spam-Checker-Version');
like($spamd->log_text, qr/spamd: clean message \(/, "spamd's log: it checked a clean message");
$t->stop;

# ---- tagging ------------------------------------------------------------

$t = sluice_with($tag);
($code, $reply, $id) = send_msg($t->port, $SPAM);
is($code, 250, 'tag mode: the GTUBE message is queued') or diag($reply);
my $queued = MilterPeers::sluice_message($t, $id);
$hdrs = header_block($queued);
like($hdrs, qr/^X-Spam-Flag: YES$/m, 'tag mode: X-Spam-Flag: YES') or diag($queued);
like($hdrs, qr/^X-Spam-Status: Yes, score=\d+\.\d required=5\.0 tests=.*GTUBE/ms,
     'X-Spam-Status: Yes, with the GTUBE test');
like($hdrs, qr/^X-Spam-Level: \*{50}/m, 'X-Spam-Level: a row of stars');
like($hdrs, qr/^Content-Type: multipart\/mixed; boundary=/m,
     "the Content-Type spamass-milter put in place of the message's");
like($queued, qr/^Content-Type: message\/rfc822;/m, 'the body is the report with the original attached');
like($queued, qr/^Spam detection software, running on the system/m,
     "SpamAssassin's report is in the body");
like($queued, qr/^\Q${\ MilterPeers::gtube()}\E$/m, 'the original message is inside, intact');
like($hdrs, qr/^Subject: you have won$/m, 'the Subject is as sent (no rewrite_header configured)');
my $sluice_flag = ($hdrs =~ /^(X-Spam-Flag: .*)$/m)[0];
$t->stop;

# ---- the same through Postfix -------------------------------------------

{
	my $pwhy = PostfixPeer->unavailable;
	BAIL_OUT($pwhy) if $pwhy;
	my $pf = PostfixPeer->new;
	$pf->configure(main => { smtpd_milters => $reject->spec, milter_default_action => 'tempfail' });
	$pf->start;
	($code, $reply) = send_msg($pf->port, $SPAM);
	is($sluice_reject, $reply, 'reject mode: the same reply as Postfix');
	$pf->configure(main => { smtpd_milters => $tag->spec, milter_default_action => 'tempfail' });
	$pf->start;
	($code, $reply, $id) = send_msg($pf->port, $SPAM);
	my $pf_msg = `$PostfixPeer::POSTCAT -c ${\ $pf->dir} -h -q ${\ ($id // 'none')} 2>&1`;
	is($sluice_flag, ($pf_msg =~ /^(X-Spam-Flag: .*)$/m)[0], 'tag mode: the same X-Spam-Flag as Postfix');
}

done_testing;
