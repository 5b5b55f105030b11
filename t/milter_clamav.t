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
use Test::More;
use MilterPeers;
use PostfixPeer;
use SluiceTest;

my $why = MilterPeers::Clamd->unavailable || MilterPeers::ClamavMilter->unavailable;
BAIL_OUT($why) if $why;

my $clamd = MilterPeers::Clamd->new->start;
my $clamav = MilterPeers::ClamavMilter->new(clamd => $clamd)->start;

my $t = SluiceTest->new(main => { smtpd_milters => $clamav->spec,
				  milter_default_action => 'tempfail',
				  smtpd_peername_lookup => 'no' });

my %msg = (
	MilterPeers::virus_messages(),
	custom => MilterPeers::with_attachment('custom', 'note.txt', 'text/plain',
					       "a file with $MilterPeers::Clamd::CUSTOM_STRING inside\n"),
);

# Send message `name` to port; (code, reply text) of the end of data.
sub send_msg {
	my ($port, $name) = @_;
	my $c = SluiceTest::Client->new(port => $port) or return (undef, "connect: $!");
	return $c->send_message($msg{$name}, from => 'sender@example.org', to => ['rcpt@example.net']);
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

{
	my $pwhy = PostfixPeer->unavailable;
	BAIL_OUT($pwhy) if $pwhy;
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
