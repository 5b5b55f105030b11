#!/usr/bin/perl
# milter_opendkim.t - the compatibility check of issue 6: the same
# message, signed by the same opendkim through a private Postfix and
# through sluice, gives a signature that verifies in both.
#
# One opendkim (sign and verify, MacroList daemon_name=ORIGINATING) serves
# both MTAs.  Each has a port-25 listener and a submission listener with
# -o milter_macro_daemon_name=ORIGINATING (Postfix also needs a cleanup
# service with the same -o: its cleanup, not smtpd, sends the header and
# body stages and evaluates {daemon_name} itself; sluice has one process
# for the whole session, so the listener's -o is enough).  Then:
#  - each MTA signs the message submitted to it; both signatures name the
#    same domain, selector, algorithm and signed header fields, and the
#    same body hash (the same canonical body);
#  - each signature verifies with a second opendkim (verify mode, -t) and
#    with opendkim-testmsg (asking DNS, answered by dnsmasq in a private
#    network namespace); a tampered copy fails both;
#  - each MTA's port 25, through the same opendkim, says dkim=pass in
#    Authentication-Results for both signed messages: Postfix's signature
#    on sluice's and sluice's on Postfix's.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use MilterPeers;
use PostfixPeer;
use SluiceTest;

my $why = PostfixPeer->unavailable || MilterPeers::OpenDKIM->unavailable;
plan skip_all => $why if $why;

my $MSG = join "\n", 'From: Alice <alice@example.org>', 'To: Bob <bob@example.net>',
	'Subject: compatibility of signatures', 'Date: Sat, 21 Nov 2026 08:00:00 +0000',
	'Message-ID: <compat-1@example.org>', 'MIME-Version: 1.0',
	'Content-Type: text/plain; charset=us-ascii', '',
	'The same message through Postfix and through sluice.',
	'  A line with  spaces  and a trailing tab	', '', '.. a dot-stuffed line', '';

my $dkim = MilterPeers::OpenDKIM->new(domain => 'example.org', selector => 'compat')->start;

# ---- Postfix ------------------------------------------------------------

my $pf = PostfixPeer->new;
$pf->configure(main => { smtpd_milters => $dkim->spec, milter_default_action => 'tempfail',
			 mynetworks => '127.0.0.0/8' });
my $pf_sub = PostfixPeer::free_port();
{
	my $mcf = $pf->dir . '/master.cf';
	open my $fh, '>>', $mcf or die "$mcf: $!";
	print $fh "127.0.0.1:$pf_sub inet n - n - - smtpd -o milter_macro_daemon_name=ORIGINATING"
	    . " -o cleanup_service_name=cleanup-orig\n"
	    . "cleanup-orig unix n - n - 0 cleanup -o milter_macro_daemon_name=ORIGINATING\n";
	close $fh;
	PostfixPeer::backdate($mcf);
}
$pf->start;

# Send `text` to 127.0.0.1:port; the (code, text) of the final reply.
sub send_to {
	my ($port, $text) = @_;
	my $c = SluiceTest::Client->new(port => $port) or return (undef, "connect: $!");
	return ($c->send_message($text))[0, 1];
}

sub queued_id { $_[0] =~ /queued as (\S+)/ ? $1 : undef }

# A message queued by Postfix: its header and body (postcat -bh).
sub pf_message {
	my ($id) = @_;
	return `$PostfixPeer::POSTCAT -c ${\ $pf->dir} -bh -q $id 2>&1`;
}

sub sig_tags {
	my ($msg) = @_;
	my ($sig) = $msg =~ /^DKIM-Signature:((?:.*\n)(?:[ \t].*\n)*)/mi or return {};
	$sig =~ s/\s+//g;
	return { map { /^(\w+)=(.*)$/ ? ($1 => $2) : () } split /;/, $sig };
}

sub auth_results {
	my ($msg) = @_;
	my @ar = $msg =~ /^(Authentication-Results:.*\n(?:[ \t].*\n)*)/mig;
	return join '', @ar;
}

my ($code, $reply) = send_to($pf_sub, $MSG);
is($code, 250, 'Postfix submission: the message is queued') or diag($reply);
my $pf_signed = pf_message(queued_id($reply) // 'none');
my $pf_sig = sig_tags($pf_signed);
is($pf_sig->{d}, 'example.org', 'Postfix + opendkim: DKIM-Signature d=example.org')
    or diag($pf_signed, $dkim->log_text);
my ($ok, $res) = $dkim->verify($pf_signed);
ok($ok, "Postfix's signature verifies (opendkim -t)") or diag($res);
my ($rc, $out) = $dkim->testmsg($pf_signed);
SKIP: {
	skip($out, 2) unless defined $rc;
	is($rc, 0, "Postfix's signature verifies (opendkim-testmsg, key from DNS)") or diag($out);
	(my $tampered = $pf_signed) =~ s/same message/same massage/;
	($rc, $out) = $dkim->testmsg($tampered);
	isnt($rc, 0, 'a tampered copy does not verify (opendkim-testmsg)');
}

($code, $reply) = send_to($pf->port, $MSG);
is($code, 250, 'Postfix port 25: an unsigned message from example.org is queued');
unlike(pf_message(queued_id($reply) // 'none'), qr/^DKIM-Signature:/mi,
       'Postfix port 25: opendkim does not sign it (not ORIGINATING)');

# ---- sluice -------------------------------------------------------------

my $sl = SluiceTest->new(
	main => { smtpd_milters => $dkim->spec, milter_default_action => 'tempfail',
		  smtpd_peername_lookup => 'no', mynetworks => '127.0.0.0/8' },
	listeners => { smtp => '', submission => '-o milter_macro_daemon_name=ORIGINATING' });

# The message sluice queued: its content (our Received: first).
sub sl_message {
	my ($id) = @_;
	return MilterPeers::sluice_message($sl, $id);
}

($code, $reply) = send_to($sl->port('submission'), $MSG);
is($code, 250, 'sluice submission: the message is queued') or diag($reply, $sl->log_text);
my $sl_signed = sl_message(queued_id($reply));
my $sl_sig = sig_tags($sl_signed);
is($sl_sig->{d}, 'example.org', 'sluice + opendkim: DKIM-Signature d=example.org')
    or diag($sl_signed, $dkim->log_text, $sl->log_text);
like($pf_signed, qr/^DKIM-Signature: v=1;/m, 'Postfix writes "DKIM-Signature: v=1;"');
like($sl_signed, qr/^DKIM-Signature: v=1;/m,
     'sluice writes the added header as Postfix does (opendkim negotiates SMFIP_HDR_LEADSPC and sends the space itself)')
    or diag(($sl_signed =~ /^(DKIM-Signature:.*)$/m)[0] // '(no signature)');
for my $tag (qw(v a c d s h bh)) {
	ok(defined $sl_sig->{$tag} && defined $pf_sig->{$tag}
	   && $sl_sig->{$tag} eq $pf_sig->{$tag}, "the signatures agree on $tag=")
	    or diag("Postfix: $tag=" . ($pf_sig->{$tag} // '(none)')
		    . ", sluice: $tag=" . ($sl_sig->{$tag} // '(none)'));
}
($ok, $res) = $dkim->verify($sl_signed);
ok($ok, "sluice's signature verifies (opendkim -t)") or diag($res);
($rc, $out) = $dkim->testmsg($sl_signed);
SKIP: {
	skip($out, 1) unless defined $rc;
	is($rc, 0, "sluice's signature verifies (opendkim-testmsg, key from DNS)") or diag($out);
}

($code, $reply) = send_to($sl->port('smtp'), $MSG);
is($code, 250, 'sluice port 25: an unsigned message from example.org is queued');
unlike(sl_message(queued_id($reply)), qr/^DKIM-Signature:/mi,
       'sluice port 25: opendkim does not sign it (not ORIGINATING)');

# ---- each verifies the other's ----------------------------------------

# A signed message as a client relays it: without the MTA's Received:.
sub strip_received {
	my ($m) = @_;
	$m =~ s/^Received:.*\n(?:[ \t].*\n)*//m;
	return $m;
}

($code, $reply) = send_to($pf->port, strip_received($sl_signed));
my $pf_got = pf_message(queued_id($reply // '') // 'none');
my $ar = auth_results($pf_got);
like($ar, qr/^Authentication-Results: mx\.example\.test;.*\bdkim=pass\b.*header\.d=example\.org/s,
     "Postfix port 25 + opendkim: sluice's signature passes") or diag($reply, $pf_got);

($code, $reply) = send_to($sl->port('smtp'), strip_received($pf_signed));
$ar = auth_results(sl_message(queued_id($reply // '')));
like($ar, qr/^Authentication-Results: mx\.example\.test;.*\bdkim=pass\b.*header\.d=example\.org/s,
     "sluice port 25 + opendkim: Postfix's signature passes") or diag($reply, $ar);

($code, $reply) = send_to($sl->port('smtp'), strip_received($sl_signed));
$ar = auth_results(sl_message(queued_id($reply // '')));
like($ar, qr/\bdkim=pass\b/, "sluice port 25 + opendkim: sluice's own signature passes")
    or diag($reply, $ar);

done_testing;
