#!/usr/bin/perl
# sasl_client.t - SMTP AUTH in the SMTP client toward a relayhost that
# requires it: a second sluice (AUTH through Cyrus sasldb, relaying only
# for permit_sasl_authenticated, mechanisms PLAIN and LOGIN only) is the
# relayhost of the first, whose smtp_sasl_password_maps holds the login.
#  - by default (smtp_sasl_security_options = noplaintext, noanonymous)
#    no plaintext mechanism goes over the cleartext connection: the mail
#    is deferred, "no mechanism available";
#  - over TLS (smtp_tls_security_level = encrypt) the default options
#    allow PLAIN (nothing is plaintext under TLS, as libsasl2 has it);
#  - with smtp_sasl_security_options = noanonymous the client logs in and
#    the relayhost logs sasl_method/sasl_username and takes the mail;
#  - a wrong password defers with the relayhost's 535;
#  - without a password for the next hop no AUTH is tried and the
#    relayhost refuses to relay (the mail bounces);
#  - smtp_sasl_mechanism_filter = login makes the client use LOGIN;
#  - without an entry for the next hop, the one for the server name.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use QmgrTest qw(qmgr_sluice send_mail);
use SluiceTest qw(wait_until);

my $sasl = File::Temp::tempdir('sasl-client-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $sasl;
sub write_file { my ($p, $s) = @_; open my $fh, '>', $p or die "$p: $!"; print $fh $s; close $fh }
write_file("$sasl/smtpd.conf", "pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
	   . "sasldb_path: $sasl/sasldb2\nmech_list: PLAIN LOGIN\n");
open my $p, '|-', 'saslpasswd2', '-f', "$sasl/sasldb2", '-u', 'relay.example.test', '-p', '-c', 'alice'
    or die "saslpasswd2: $!";
print $p 'wonderland';
close $p or die "saslpasswd2 failed: $?";
chmod 0644, "$sasl/sasldb2";

# The relayhost: AUTH required to relay.
my $relay = SluiceTest->new(start => 0, main => {
	myhostname => 'relay.example.test',
	smtpd_tls_chain_files => 'server.pem',
	smtpd_tls_security_level => 'may',
	smtpd_peername_lookup => 'no',
	mynetworks => '192.0.2.0/24',
	smtpd_sasl_auth_enable => 'yes',
	cyrus_sasl_config_path => $sasl,
	smtpd_tls_auth_only => 'no',
	smtpd_relay_restrictions => 'permit_sasl_authenticated, reject_unauth_destination',
});
my $rdir = $relay->dir;
system("openssl req -x509 -newkey rsa:2048 -nodes -keyout $rdir/server.key -out $rdir/server.crt -days 30 "
       . "-subj /CN=relay.example.test >$rdir/openssl.log 2>&1") == 0 or die 'openssl req failed';
system("cat $rdir/server.key $rdir/server.crt > $rdir/server.pem") == 0 or die;
chmod 0600, "$rdir/server.pem";
$relay->start;
my $rport = $relay->port;

# A sender whose relayhost is $relay, with these client settings (and
# passwd: the text of smtp_sasl_password_maps, else alice's password for
# the relayhost).
sub sender {
	my (%main) = @_;
	my $passwd = delete $main{passwd}
	    // "[127.0.0.1]:$rport alice:wonderland\n[127.0.0.9]:25 nobody:x\n";
	return qmgr_sluice(main => {
		relayhost => "[127.0.0.1]:$rport",
		smtp_sasl_auth_enable => 'yes',
		smtp_sasl_password_maps => 'texthash:%DIR%/passwd',
		%main,
	}, files => { passwd => $passwd });
}

sub delivery_line {
	my ($t, $id) = @_;
	return $t->wait_log(qr/\Q$id\E: to=<[^>]*>, relay=.*status=\w+.*$/m, 20);
}

# ---- the default: no plaintext over cleartext ----------------------------------------
{
	my $s = sender();
	my $id = send_mail($s, from => 'alice@example.org', to => ['far@remote.example']);
	ok($id, 'queued at the sender');
	my $line = delivery_line($s, $id) // '';
	like($line, qr/status=deferred \(SASL authentication failed; cannot authenticate to server 127\.0\.0\.1\[127\.0\.0\.1\]: no mechanism available\)/,
	     'default security options: PLAIN/LOGIN refused over cleartext, the mail is deferred') or diag $s->log_text;
	$s->stop;
}

# ---- under TLS the default options allow PLAIN -------------------------------------------
{
	my $s = sender(smtp_tls_security_level => 'encrypt');
	my $mark = $relay->log_mark;
	my $id = send_mail($s, from => 'alice@example.org', to => ['far@remote.example']);
	like(delivery_line($s, $id) // '', qr/status=sent/,
	     'smtp_tls_security_level = encrypt: PLAIN over TLS with the default security options')
	    or diag $s->log_text;
	ok($relay->wait_log(qr/sasl_method=PLAIN, sasl_username=alice/, 10, from => $mark),
	   '... the relayhost saw the login');
	$s->stop;
}

# ---- plaintext allowed explicitly ----------------------------------------------------
{
	my $s = sender(smtp_sasl_security_options => 'noanonymous');
	my $mark = $relay->log_mark;
	my $id = send_mail($s, from => 'alice@example.org', to => ['far@remote.example']);
	my $line = delivery_line($s, $id) // '';
	like($line, qr/status=sent \(250 2\.0\.0 Ok: queued as \S+\)/,
	     'smtp_sasl_security_options = noanonymous: logged in and relayed') or diag $s->log_text;
	ok($relay->wait_log(qr/client=unknown\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=alice/, 10, from => $mark),
	   'the relayhost saw AUTH PLAIN as alice') or diag $relay->log_text;
	$s->stop;
}

# ---- smtp_sasl_mechanism_filter -------------------------------------------------------
{
	my $s = sender(smtp_sasl_security_options => 'noanonymous', smtp_sasl_mechanism_filter => 'login');
	my $mark = $relay->log_mark;
	my $id = send_mail($s, from => 'alice@example.org', to => ['far@remote.example']);
	like(delivery_line($s, $id) // '', qr/status=sent/, 'mechanism filter: relayed');
	ok($relay->wait_log(qr/sasl_method=LOGIN, sasl_username=alice/, 10, from => $mark),
	   'smtp_sasl_mechanism_filter = login: LOGIN was used');
	$s->stop;
}

# ---- the password found by the server's name ---------------------------------------------
{
	my $s = sender(smtp_sasl_security_options => 'noanonymous',
		       passwd => "127.0.0.1 alice:wonderland\n");
	my $mark = $relay->log_mark;
	my $id = send_mail($s, from => 'alice@example.org', to => ['far@remote.example']);
	like(delivery_line($s, $id) // '', qr/status=sent/,
	     'no entry for the next hop: the one for the server name is used');
	ok($relay->wait_log(qr/sasl_username=alice/, 10, from => $mark), '... and the relayhost saw the login');
	$s->stop;
}

# ---- a wrong password ----------------------------------------------------------------
{
	my $s = sender(smtp_sasl_security_options => 'noanonymous',
		       passwd => "[127.0.0.1]:$rport alice:wrong\n");
	my $id = send_mail($s, from => 'alice@example.org', to => ['far@remote.example']);
	like(delivery_line($s, $id) // '', qr/status=deferred \(SASL authentication failed; server 127\.0\.0\.1\[127\.0\.0\.1\] said: 535 5\.7\.8 Error: authentication failed: /,
	     'wrong password: deferred with the relayhost\'s 535');
	$s->stop;
}

# ---- no password for this next hop ---------------------------------------------------
{
	my $s = sender(smtp_sasl_security_options => 'noanonymous',
		       passwd => "[other.example]:25 alice:wonderland\n");
	my $id = send_mail($s, from => 'alice@example.org', to => ['far@remote.example']);
	like(delivery_line($s, $id) // '', qr/status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 554 5\.7\.1 <far\@remote\.example>: Relay access denied/,
	     'no credentials: no AUTH, and the relayhost refuses to relay');
	$s->stop;
}

$relay->stop;
done_testing;
