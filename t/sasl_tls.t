#!/usr/bin/perl
# sasl_tls.t - SMTP AUTH and TLS together (Cyrus sasldb users):
#  - smtpd_tls_auth_only = yes: no AUTH in the EHLO reply before
#    STARTTLS, AUTH there is "538 5.7.11 Encryption required for
#    requested authentication mechanism"; after STARTTLS AUTH is offered
#    and swaks logs in;
#  - smtpd_sasl_security_options = noanonymous, noplaintext with
#    smtpd_sasl_tls_security_options = noanonymous: in cleartext only
#    CRAM-MD5 is offered and PLAIN is a 538; under TLS PLAIN works;
#  - a login made before STARTTLS is forgotten after it (RFC 3207 4.2).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use MIME::Base64 qw(encode_base64);
use IO::Socket::SSL;
use SluiceTest qw(reply_like);

my $sasl = File::Temp::tempdir('sasl-tls-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $sasl;
sub write_file { my ($p, $s) = @_; open my $fh, '>', $p or die "$p: $!"; print $fh $s; close $fh }
write_file("$sasl/smtpd.conf", "pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
	   . "sasldb_path: $sasl/sasldb2\nmech_list: PLAIN LOGIN CRAM-MD5\n");
open my $p, '|-', 'saslpasswd2', '-f', "$sasl/sasldb2", '-u', 'mx.example.test', '-p', '-c', 'alice'
    or die "saslpasswd2: $!";
print $p 'wonderland';
close $p or die "saslpasswd2 failed: $?";
chmod 0644, "$sasl/sasldb2";

my $t = SluiceTest->new(start => 0, main => {
	smtpd_peername_lookup => 'no',
	mynetworks => '192.0.2.0/24',
	smtpd_tls_chain_files => 'server.pem',
	smtpd_tls_security_level => 'may',
	smtpd_sasl_auth_enable => 'yes',
	cyrus_sasl_config_path => $sasl,
	smtpd_relay_restrictions => 'permit_sasl_authenticated, reject_unauth_destination',
	smtpd_soft_error_limit => 1000,
}, listeners => {
	only => '-o smtpd_tls_auth_only=yes',
	plain => '-o smtpd_tls_auth_only=no',
	noplain => '-o smtpd_tls_auth_only=no -o smtpd_sasl_security_options=noanonymous,noplaintext '
	    . '-o smtpd_sasl_tls_security_options=noanonymous',
});
my $dir = $t->dir;
$t->make_certs;
$t->start;

sub swaks {
	my ($port, @args) = @_;
	my $out = `swaks --server 127.0.0.1 --port $port --from alice\@example.org --to far\@remote.example @args 2>&1`;
	return ($? >> 8, $out);
}
my $plain = encode_base64("\0alice\0wonderland", '');

# ---- smtpd_tls_auth_only ----------------------------------------------------------------
{
	my $c = $t->smtp('only');
	my (undef, $text) = $c->hello;
	like($text, qr/STARTTLS/, 'STARTTLS is offered');
	unlike($text, qr/AUTH/, 'smtpd_tls_auth_only: no AUTH before STARTTLS');
	reply_like($c, "AUTH PLAIN $plain", 538,
	       qr/^538 5\.7\.11 Encryption required for requested authentication mechanism$/,
	       'AUTH before STARTTLS: 538 5.7.11');
	my $mark = $t->log_mark;
	my ($rc, $out) = swaks($t->port('only'), '-tls', '--auth', 'PLAIN', '--auth-user', 'alice',
			       '--auth-password', 'wonderland');
	is($rc, 0, 'after STARTTLS: AUTH PLAIN succeeds and the mail is relayed') or diag $out;
	like($out, qr/<~\s+250-AUTH PLAIN LOGIN CRAM-MD5/, 'AUTH is offered after STARTTLS');
	ok($t->wait_log(qr/client=unknown\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=alice/, 10, from => $mark),
	   'logged with sasl_method and sasl_username');
}

# ---- security options: cleartext and TLS differ -------------------------------------------
{
	my $c = $t->smtp('noplain');
	my (undef, $text) = $c->hello;
	like($text, qr/^250-AUTH CRAM-MD5$/m, 'noplaintext in cleartext: only CRAM-MD5 offered');
	reply_like($c, "AUTH PLAIN $plain", 538, qr/^538 5\.7\.11 /,
	       'PLAIN in cleartext, allowed under TLS: 538 5.7.11');
	my ($rc, $out) = swaks($t->port('noplain'), '-tls', '--auth', 'PLAIN', '--auth-user', 'alice',
			       '--auth-password', 'wonderland');
	is($rc, 0, 'PLAIN under TLS (smtpd_sasl_tls_security_options): relayed') or diag $out;
	like($out, qr/<~\s+250-AUTH PLAIN LOGIN CRAM-MD5/, 'all mechanisms offered under TLS');
	($rc, $out) = swaks($t->port('noplain'), '--auth', 'CRAM-MD5', '--auth-user', 'alice',
			    '--auth-password', 'wonderland');
	is($rc, 0, 'CRAM-MD5 in cleartext: relayed') or diag $out;
}

# ---- STARTTLS forgets the login --------------------------------------------------------
{
	my $c = $t->smtp('plain');
	$c->hello;
	reply_like($c, "AUTH PLAIN $plain", 235, qr/^235/, 'logged in before STARTTLS');
	reply_like($c, 'STARTTLS', 220, qr/^220/, 'STARTTLS');
	IO::Socket::SSL->start_SSL($c->{sock}, SSL_verify_mode => 0)
	    or die "TLS handshake failed: $IO::Socket::SSL::SSL_ERROR";
	reply_like($c, 'EHLO client.example', 250, qr/AUTH PLAIN/, 'EHLO under TLS offers AUTH again');
	$c->cmd('MAIL FROM:<alice@example.org>');
	reply_like($c, 'RCPT TO:<far@remote.example>', 554, qr/Relay access denied/,
	       'the login from before STARTTLS no longer permits relaying');
	$c->cmd('RSET');
	reply_like($c, "AUTH PLAIN $plain", 235, qr/^235/, 'AUTH again under TLS');
	$c->cmd('MAIL FROM:<alice@example.org>');
	reply_like($c, 'RCPT TO:<far@remote.example>', 250, qr/^250/, 'now relaying is permitted');
}

$t->stop;
done_testing;
