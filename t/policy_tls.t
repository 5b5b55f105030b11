#!/usr/bin/perl
# policy_tls.t - the TLS attributes of a policy request, as Postfix sends
# them: encryption_protocol, encryption_cipher and encryption_keysize of
# the session's TLS; ccert_subject and ccert_issuer (the CommonNames) of
# a client certificate that verified against smtpd_tls_CAfile;
# ccert_fingerprint (smtpd_tls_fingerprint_digest, sha256) and
# ccert_pubkey_fingerprint; all empty (keysize 0) in plaintext.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use IO::Socket::SSL;
use SluiceTest qw(free_port wait_until);

my $pport = free_port();
my $t = SluiceTest->new(start => 0, main => {
	sluice_smtpd_workers => 1,
	smtpd_tls_chain_files => 'server.pem',
	smtpd_tls_security_level => 'may',
	smtpd_tls_ask_ccert => 'yes',
	smtpd_tls_CAfile => 'ca.pem',
	mynetworks => '127.0.0.0/8',
	smtpd_recipient_restrictions => "check_policy_service inet:127.0.0.1:$pport, permit_mynetworks, reject",
});
my $dir = $t->dir;
my $fp = $t->make_certs;

# The policy server: records each request, answers DUNNO.
my $reqfile = "$dir/requests";
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $pport,
			      Listen => 8, ReuseAddr => 1) or die "listen: $!";
my $ppid = fork // die;
if ($ppid == 0) {
	SluiceTest::die_with_parent();
	while (my $s = $l->accept) {
		$s->autoflush(1);
		my $req = '';
		while (defined(my $line = <$s>)) {
			if ($line ne "\n") { $req .= $line; next }
			open my $fh, '>>', $reqfile or die;
			print $fh "$req--\n";
			close $fh;
			$req = '';
			print $s "action=DUNNO\n\n";
		}
	}
	POSIX::_exit(0);
}
close $l;
END { kill 'TERM', $ppid if $ppid }
$t->start;

sub requests {
	open my $fh, '<', $reqfile or return ();
	local $/;
	my $all = <$fh>;
	return map { my %h = /^([^=\n]*)=(.*)$/mg; \%h } split /^--\n/m, $all;
}

sub session {
	my (%ssl) = @_;
	my $c = $t->smtp;
	$c->read_reply;
	$c->cmd('EHLO client.example');
	if (%ssl) {
		my ($code) = $c->cmd('STARTTLS');
		is($code, 220, 'STARTTLS');
		ok(IO::Socket::SSL->start_SSL($c->{sock}, SSL_verify_mode => SSL_VERIFY_NONE,
					      SSL_hostname => 'mx.example.test', %ssl),
		   '... handshake');
		$c->cmd('EHLO client.example');
	}
	$c->cmd('MAIL FROM:<s@example.org>');
	my (undef, $text) = $c->cmd('RCPT TO:<r@example.net>');
	is($text, '250 2.1.5 Ok', 'the recipient passes the policy check (DUNNO)');
	$c->cmd('QUIT');
	my @r = requests();
	return $r[-1] // {};
}

{
	my $r = session();
	is($r->{encryption_protocol}, '', 'plaintext: encryption_protocol empty');
	is($r->{encryption_cipher}, '', '... encryption_cipher empty');
	is($r->{encryption_keysize}, '0', '... encryption_keysize 0');
	is($r->{ccert_subject}, '', '... ccert_subject empty');
	is($r->{ccert_fingerprint}, '', '... ccert_fingerprint empty');
}
{
	my $r = session(SSL_cert_file => "$dir/client.pem", SSL_key_file => "$dir/client.key");
	like($r->{encryption_protocol}, qr/^TLSv1\.[23]$/, "TLS: encryption_protocol=$r->{encryption_protocol}");
	like($r->{encryption_cipher}, qr/^[A-Z0-9_-]+$/, "... encryption_cipher=$r->{encryption_cipher}");
	cmp_ok($r->{encryption_keysize}, '>=', 128, "... encryption_keysize=$r->{encryption_keysize}");
	is($r->{ccert_subject}, 'client.example', '... ccert_subject: the verified certificate\'s CN');
	is($r->{ccert_issuer}, 'Test CA', '... ccert_issuer: its issuer\'s CN');
	is($r->{ccert_fingerprint}, $fp, '... ccert_fingerprint: sha256, as relay_clientcerts writes it');
	like($r->{ccert_pubkey_fingerprint}, qr/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/, '... ccert_pubkey_fingerprint');
}
{
	my $r = session(SSL_cert_file => undef);	# TLS, no client certificate
	like($r->{encryption_protocol}, qr/^TLSv1\.[23]$/, 'TLS without a client certificate: encryption_protocol');
	is($r->{ccert_subject}, '', '... ccert_subject empty');
	is($r->{ccert_fingerprint}, '', '... ccert_fingerprint empty');
}

done_testing;
