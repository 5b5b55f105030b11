#!/usr/bin/perl
# sasl_cyrus.t - SMTP AUTH through Cyrus SASL (smtpd_sasl_type = cyrus)
# with sasldb users made by saslpasswd2 in a temporary
# cyrus_sasl_config_path (smtpd.conf: pwcheck_method auxprop, sasldb):
# swaks logs in with PLAIN, LOGIN and CRAM-MD5; Postfix's replies (235,
# 535 5.7.8, 504 5.5.4, 501 5.7.0 on "*", 503 5.5.1 twice or in a
# transaction, 501 5.5.2 bad base64); the EHLO keyword (AUTH, AUTH= with
# broken_sasl_auth_clients, none for smtpd_sasl_exceptions_networks); the
# log lines ("client=..., sasl_method=PLAIN, sasl_username=alice", the
# failure warning, the case hint for "Alice"); permit_sasl_authenticated
# lets a logged-in client relay and nobody else; the Received: header with
# smtpd_sasl_authenticated_header and protocol ESMTPA; MAIL AUTH=;
# smtpd_client_auth_rate_limit.  Over plaintext (smtpd_tls_auth_only =
# no; the TLS cases are in sasl_tls.t when TLS is there).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use MIME::Base64 qw(encode_base64);
use SluiceTest qw(reply_like);

my $sasl = File::Temp::tempdir('sasl-cyrus-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $sasl;
sub write_file { my ($p, $s) = @_; open my $fh, '>', $p or die "$p: $!"; print $fh $s; close $fh }

write_file("$sasl/smtpd.conf", "pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
	   . "sasldb_path: $sasl/sasldb2\nmech_list: PLAIN LOGIN CRAM-MD5\n");
for my $u (['alice', 'wonderland'], ['bob', 'builder']) {
	open my $p, '|-', 'saslpasswd2', '-f', "$sasl/sasldb2", '-u', 'mx.example.test',
	    '-p', '-c', $u->[0] or die "saslpasswd2: $!";
	print $p $u->[1];
	close $p or die "saslpasswd2 $u->[0] failed: $?";
}
chmod 0644, "$sasl/sasldb2";
write_file("$sasl/logins", "alice\@example.org alice\nbob\@example.org bob\n");

my $t = SluiceTest->new(main => {
	smtpd_peername_lookup => 'no',
	mynetworks => '192.0.2.0/24',
	smtpd_sasl_auth_enable => 'yes',
	smtpd_sasl_type => 'cyrus',
	smtpd_sasl_path => 'smtpd',
	cyrus_sasl_config_path => $sasl,
	smtpd_tls_auth_only => 'no',
	smtpd_relay_restrictions => 'permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination',
	smtpd_sasl_authenticated_header => 'yes',
	smtpd_soft_error_limit => 1000,
	smtpd_hard_error_limit => 1000,
	sluice_smtpd_workers => 1,
}, listeners => {
	smtp => '',
	broken => '-o broken_sasl_auth_clients=yes',
	except => '-o smtpd_sasl_exceptions_networks=127.0.0.0/8',
	limited => '-o smtpd_client_auth_rate_limit=3 -o smtpd_client_event_limit_exceptions=',
	off => '-o smtpd_sasl_auth_enable=no',
	slow => '-o smtpd_soft_error_limit=2 -o smtpd_error_sleep_time=2s',
	owner => "-o smtpd_sender_restrictions=reject_sender_login_mismatch "
	    . "-o smtpd_sender_login_maps=texthash:$sasl/logins",
});

sub b64 { encode_base64($_[0], '') }
my $plain_alice = b64("\0alice\0wonderland");

# ---- EHLO ------------------------------------------------------------------------------
{
	my $c = $t->smtp('smtp');
	my ($code, $text) = $c->hello;
	like($text, qr/^250-AUTH PLAIN LOGIN CRAM-MD5$/m, 'EHLO offers AUTH with the mech_list of smtpd.conf')
	    or diag $t->log_text;
	unlike($text, qr/AUTH=/, 'no AUTH= without broken_sasl_auth_clients');
	$c = $t->smtp('broken');
	($code, $text) = $c->hello;
	like($text, qr/^250-AUTH=PLAIN LOGIN CRAM-MD5$/m, 'broken_sasl_auth_clients: AUTH= as well');
	$c = $t->smtp('except');
	($code, $text) = $c->hello;
	unlike($text, qr/AUTH/, 'smtpd_sasl_exceptions_networks: not offered');
	$c = $t->smtp('off');
	($code, $text) = $c->hello;
	unlike($text, qr/AUTH/, 'smtpd_sasl_auth_enable = no: not offered');
	reply_like($c, "AUTH PLAIN $plain_alice", 503, qr/5\.5\.1 Error: authentication not enabled/,
		 'AUTH while disabled: 503');
}

# ---- swaks: PLAIN, LOGIN, CRAM-MD5 -----------------------------------------------------
for my $mech (qw(PLAIN LOGIN CRAM-MD5)) {
	my $mark = $t->log_mark;
	my $out = `swaks --server 127.0.0.1 --port ${\ $t->port('smtp')} --auth $mech --auth-user alice --auth-password wonderland --from alice\@example.org --to someone\@remote.example --helo client.example 2>&1`;
	is($? >> 8, 0, "swaks AUTH $mech: message relayed by an authenticated client") or diag $out;
	like($out, qr/<-\s+235 2\.7\.0 Authentication successful/, "swaks AUTH $mech: 235 2.7.0");
	ok($t->wait_log(qr/: client=unknown\[127\.0\.0\.1\], sasl_method=\Q$mech\E, sasl_username=alice$/m, 10, from => $mark),
	   "$mech: the client= line carries sasl_method and sasl_username");
}
{
	my $out = `swaks --server 127.0.0.1 --port ${\ $t->port('smtp')} --auth CRAM-MD5 --auth-user alice --auth-password wrong --from a\@example.org --to b\@remote.example 2>&1`;
	isnt($? >> 8, 0, 'swaks CRAM-MD5 with a wrong password fails');
	like($out, qr/535 5\.7\.8 Error: authentication failed: /, 'wrong CRAM-MD5 password: 535 5.7.8');
}

# ---- the exchange, step by step --------------------------------------------------------
{
	my $c = $t->smtp('smtp');
	$c->hello;
	my $mark = $t->log_mark;
	reply_like($c, 'AUTH PLAIN ' . b64("\0alice\0nope"), 535,
		 qr/^535 5\.7\.8 Error: authentication failed: \S/, 'bad password: 535 5.7.8 with a reason');
	ok($t->wait_log(qr/warning: unknown\[127\.0\.0\.1\]: SASL PLAIN authentication failed: .*sasl_username=alice/, 10, from => $mark),
	   'the failure is logged as Postfix logs it');
	reply_like($c, 'AUTH X-UNKNOWN', 504, qr/^504 5\.5\.4 Unrecognized authentication type/,
		 'unknown mechanism: 504 5.5.4');
	reply_like($c, 'AUTH', 501, qr/^501 5\.5\.4 Syntax: AUTH mechanism/, 'AUTH without a mechanism: 501');
	reply_like($c, 'AUTH PLAIN !!notbase64', 501, qr/^501 5\.5\.2 /, 'bad base64: 501 5.5.2');
	reply_like($c, 'AUTH LOGIN', 334, qr/^334 VXNlcm5hbWU6$/, 'LOGIN: 334 Username:');
	reply_like($c, '*', 501, qr/^501 5\.7\.0 Authentication aborted/, '"*" cancels: 501 5.7.0');
	reply_like($c, 'AUTH PLAIN', 334, qr/^334 ?$/, 'PLAIN without initial response: empty 334');
	reply_like($c, $plain_alice, 235, qr/^235 2\.7\.0 Authentication successful$/,
		 'the response after 334: 235');
	reply_like($c, "AUTH PLAIN $plain_alice", 503, qr/^503 5\.5\.1 Error: already authenticated/,
		 'a second AUTH: 503 5.5.1');
	reply_like($c, 'MAIL FROM:<alice@example.org> AUTH=alice@example.org', 250, qr/^250/,
		 'MAIL with AUTH=');
	reply_like($c, 'AUTH LOGIN', 503, qr/^503 5\.5\.1 Error: (already authenticated|MAIL transaction in progress)/,
		 'AUTH in a transaction: 503');
	reply_like($c, 'RCPT TO:<far@remote.example>', 250, qr/^250/, 'authenticated: relaying permitted');
	$mark = $t->log_mark;
	reply_like($c, 'DATA', 354, qr/^354/, 'DATA');
	$c->send_raw("Subject: auth\r\n\r\nhi\r\n.\r\n");
	my ($code, $text) = $c->read_reply;
	is($code, 250, 'message accepted');
	my ($id) = $text =~ /queued as (\S+)/;
	$c->cmd('QUIT');
	ok($t->wait_log(qr/client=unknown\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=alice, sasl_sender=alice\@example\.org/, 10),
	   'MAIL AUTH= shows as sasl_sender in the client= line');
	my $q = $id ? SluiceTest::read_queue_file($t->queue_path($id)) : undef;
	my $content = $q ? ($q->{content} // '') : '';
	like($content, qr/\(Authenticated sender: alice\)/, 'smtpd_sasl_authenticated_header: Received: names the login')
	    or diag explain $q;
	like($content, qr/with ESMTPA id/, 'protocol ESMTPA after AUTH');
	is(($q->{rec}{sasl_username} || [])->[0], 'alice', 'the envelope records the login');
	is(($q->{rec}{sasl_method} || [])->[0], 'PLAIN', 'and the mechanism');
}

# ---- without a login no relaying -------------------------------------------------------
{
	my $c = $t->smtp('smtp');
	$c->hello;
	$c->cmd('MAIL FROM:<x@example.org>');
	reply_like($c, 'RCPT TO:<far@remote.example>', 554, qr/Relay access denied/,
		 'not authenticated: relaying refused');
}

# ---- the case hint -----------------------------------------------------------------------
{
	my $c = $t->smtp('smtp');
	$c->hello;
	my $mark = $t->log_mark;
	reply_like($c, 'AUTH PLAIN ' . b64("\0Alice\0wonderland"), 535, qr/^535 5\.7\.8/,
		 '"Alice" is not "alice": 535');
	ok($t->wait_log(qr/SASL PLAIN authentication failed: no user "Alice", but there is a user "alice"/, 10, from => $mark),
	   'the log says a user differing only in case exists') or diag $t->log_text;
}

# ---- smtpd_client_auth_rate_limit -------------------------------------------------------
{
	my $c = $t->smtp('limited');
	$c->hello;
	my $mark = $t->log_mark;
	for my $i (1 .. 3) {
		reply_like($c, 'AUTH PLAIN ' . b64("\0alice\0bad$i"), 535, qr/^535/, "attempt $i within the limit: 535");
	}
	reply_like($c, "AUTH PLAIN $plain_alice", 450,
		 qr/^450 4\.7\.1 Error: too many AUTH commands from 127\.0\.0\.1$/, 'over the limit: 450 4.7.1, even with the right password');
	ok($t->wait_log(qr/warning: AUTH command rate limit exceeded: 4 from unknown\[127\.0\.0\.1\] for service /, 10, from => $mark),
	   'the rate warning is logged');
}

# ---- failed attempts slow the client down ------------------------------------------------
{
	use Time::HiRes qw(time);
	my $c = $t->smtp('slow');
	$c->hello;
	my $t0 = time;
	reply_like($c, 'AUTH PLAIN ' . b64("\0alice\0bad$_"), 535, qr/^535/, "failure $_ (within smtpd_soft_error_limit)") for 1 .. 2;
	ok(time - $t0 < 1.5, 'the first failures are answered at once');
	$t0 = time;
	reply_like($c, 'AUTH PLAIN ' . b64("\0alice\0bad3"), 535, qr/^535/, 'a third failure');
	ok(time - $t0 >= 1.5, 'past smtpd_soft_error_limit each reply waits smtpd_error_sleep_time');
}

# ---- reject_sender_login_mismatch with smtpd_sender_login_maps ----------------------------
{
	my $c = $t->smtp('owner');
	$c->hello;
	reply_like($c, "AUTH PLAIN $plain_alice", 235, qr/^235/, 'alice logs in');
	$c->cmd('MAIL FROM:<alice@example.org>');
	reply_like($c, 'RCPT TO:<far@remote.example>', 250, qr/^250/, 'alice sends as her own address');
	$c->cmd('RSET');
	$c->cmd('MAIL FROM:<bob@example.org>');
	reply_like($c, 'RCPT TO:<far@remote.example>', 553,
	       qr/^553 5\.7\.1 <bob\@example\.org>: Sender address rejected: not owned by user alice/,
	       "alice may not send as bob's address: 553 5.7.1 not owned by user alice");
	$c = $t->smtp('owner');
	$c->hello;
	$c->cmd('MAIL FROM:<alice@example.org>');
	reply_like($c, 'RCPT TO:<far@remote.example>', 553,
	       qr/^553 5\.7\.1 <alice\@example\.org>: Sender address rejected: not logged in/,
	       'an owned address without login: 553 5.7.1 not logged in');
}

{
	my ($rc, $out) = $t->sluice('conf', '-d', 'smtpd_sasl_auth_enable');
	like($out, qr/^smtpd_sasl_auth_enable = no$/m, 'smtpd_sasl_auth_enable is registered (default no)');
}

# ---- sluice check: an smtpd.conf or sasldb out of reach --------------------------------
{
	my $bad = SluiceTest->new(start => 0, main => {
		smtpd_sasl_auth_enable => 'yes',
		cyrus_sasl_config_path => "$sasl/nonexistent",
	});
	my ($rc, $out) = $bad->sluice('check');
	like($out, qr/main\.cf:\d+: cannot read the Cyrus SASL application file \Q$sasl\E\/nonexistent\/smtpd\.conf: No such file or directory; create it/,
	     'sluice check: smtpd.conf that cannot be read, at cyrus_sasl_config_path\'s line') or diag $out;
	isnt($rc, 0, '... is an error');
	mkdir "$sasl/nodb";
	write_file("$sasl/nodb/smtpd.conf", "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: $sasl/nodb/sasldb2\n");
	$bad->set_main(cyrus_sasl_config_path => "$sasl/nodb");
	($rc, $out) = $bad->sluice('check');
	like($out, qr/\Q$sasl\E\/nodb\/smtpd\.conf:3: sasldb \Q$sasl\E\/nodb\/sasldb2 cannot be read: No such file or directory; create it with saslpasswd2/,
	     'sluice check: a missing sasldb, at its smtpd.conf line') or diag $out;
	$bad->set_main(smtpd_sasl_security_options => 'noanonymous, noplain', cyrus_sasl_config_path => $sasl);
	($rc, $out) = $bad->sluice('check');
	like($out, qr/main\.cf:\d+: unknown SASL security option "noplain"/, 'sluice check: a bad security option') or diag $out;
}

$t->stop;
done_testing;
