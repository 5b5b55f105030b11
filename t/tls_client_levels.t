#!/usr/bin/perl
# tls_client_levels.t - delivery over TLS (docs/tls.md, "Delivery over
# TLS"): a sending sluice delivers to second sluice instances (the next
# hops, started here with certificates made here with openssl) at
# Postfix's smtp_tls_security_level levels, chosen per destination by
# smtp_tls_policy_maps keyed by the next hop as written ([host]:port):
#  - may: STARTTLS, "Trusted TLS connection established to ..." (the CA
#    is known), the mail arrives encrypted (the receiver logs TLS);
#  - encrypt: TLS and delivery;
#  - verify with the right CA: "Verified TLS connection established";
#  - secure (nexthop matches the certificate's name): Verified;
#  - secure with match= a name the certificate does not have: deferred,
#    "Server certificate not verified" (dsn=4.7.5);
#  - a next hop without STARTTLS: may delivers in plaintext, encrypt
#    defers with "TLS is required, but was not offered by host ...";
#  - fingerprint with match= the certificate's sha256 fingerprint:
#    delivered ("Verified"); with another fingerprint: deferred;
#  - smtp_tls_cert_file: a server that asks for a client certificate
#    gets it, and verifies it ("Trusted TLS connection established from");
#  - no policy entry and smtp_tls_security_level = none: no STARTTLS, and
#    smtp_tls_note_starttls_offer logs "Host offered STARTTLS: [host]";
#  - a second sender that trusts another CA: verify defers with "server
#    certificate verification failed for host[ip]:port: untrusted issuer
#    ..." and "Server certificate not trusted"; may still delivers and
#    logs "Untrusted TLS connection established";
#  - sessions end with QUIT inside TLS, also those given up after the
#    handshake, and no process crashes.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use SluiceTest qw(wait_until);
use QmgrTest qw(qmgr_sluice send_mail);

system('openssl version >/dev/null 2>&1') == 0
    or BAIL_OUT('openssl is not installed: run scripts/install-deps');

my $tmp = File::Temp::tempdir(CLEANUP => 1);
chmod 0755, $tmp;

# ---- certificates: two CAs, a server certificate for "localhost" ------------

sub ossl {
	my $cmd = join ' ', @_;
	system("openssl $cmd >/dev/null 2>&1") == 0 or die "openssl $cmd failed";
}

sub make_ca {
	my ($name, $cn) = @_;
	ossl("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes",
	     "-keyout $tmp/$name.key -out $tmp/$name.pem -days 2 -subj '/CN=$cn'");
}

make_ca('ca', 'Sluice Test CA');
make_ca('otherca', 'Other Test CA');
open my $ext, '>', "$tmp/srv.ext" or die;
print $ext "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n";
close $ext;
ossl("req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes",
     "-keyout $tmp/srv.key -out $tmp/srv.csr -subj '/CN=localhost'");
ossl("x509 -req -in $tmp/srv.csr -CA $tmp/ca.pem -CAkey $tmp/ca.key",
     "-CAcreateserial -out $tmp/srv.pem -days 2 -extfile $tmp/srv.ext");
chmod 0600, "$tmp/srv.key";
# A client certificate from the same CA, for smtp_tls_cert_file; the
# queue manager (mail_owner) reads it.
ossl("req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes",
     "-keyout $tmp/client.key -out $tmp/client.csr -subj '/CN=tx.example.test'");
ossl("x509 -req -in $tmp/client.csr -CA $tmp/ca.pem -CAkey $tmp/ca.key",
     "-CAcreateserial -out $tmp/client.pem -days 2");
chmod 0600, "$tmp/client.key";
chown scalar(getpwnam('nobody')), -1, "$tmp/client.key" if $< == 0;
chmod 0644, "$tmp/ca.pem", "$tmp/otherca.pem";

# ---- the next hops -------------------------------------------------------------

# A receiver with STARTTLS, one listener per scenario (distinct next hops).
my @tls_names = qw(may encrypt verify secure mismatch none wrongca wrongmay
		   fpr badfpr ccert);
my $rx = SluiceTest->new(
	main => {
		myhostname => 'rx.example.test',
		smtpd_tls_security_level => 'may',
		smtpd_tls_cert_file => "$tmp/srv.pem",
		smtpd_tls_key_file => "$tmp/srv.key",
		smtpd_tls_loglevel => 1,
		smtpd_tls_CAfile => "$tmp/ca.pem",
	},
	listeners => { (map { ($_ => '') } @tls_names),
		       ccert => '-o smtpd_tls_ask_ccert=yes' });
# A receiver without TLS.
my $plain = SluiceTest->new(main => { myhostname => 'plain.example.test' },
			    listeners => { pmay => '', pencrypt => '' });

my %hop = map { ($_ => "[localhost]:" . $rx->port($_)) } @tls_names;
$hop{$_} = "[localhost]:" . $plain->port($_) for qw(pmay pencrypt);

# ---- the sender -------------------------------------------------------------------

sub sender {
	my ($cafile, %policy) = @_;
	my %client = $cafile =~ /otherca/ ? ()
	    : (smtp_tls_cert_file => "$tmp/client.pem",
	       smtp_tls_key_file => "$tmp/client.key");
	my $transport = join '', map { "$_.test smtp:$hop{$_}\n" } sort keys %hop;
	my $pol = join '', map { "$hop{$_} $policy{$_}\n" } sort keys %policy;
	return qmgr_sluice(main => {
		myhostname => 'tx.example.test',
		inet_protocols => 'ipv4',
		transport_maps => 'texthash:%DIR%/transport',
		smtp_tls_policy_maps => 'texthash:%DIR%/tls_policy',
		smtp_tls_CAfile => $cafile,
		smtp_tls_loglevel => 1,
		smtp_tls_note_starttls_offer => 'yes',
		# idle connections say QUIT soon (checked below)
		smtp_connection_cache_time_limit => '1s',
		smtpd_reject_unlisted_recipient => 'no',
		%client,
	}, files => { transport => $transport, tls_policy => $pol });
}

# Send to user@NAME.test; the sender's delivery line for it.
sub deliver {
	my ($t, $name) = @_;
	my $mark = $t->log_mark;
	my $id = send_mail($t, from => 'alice@example.org', to => ["bob\@$name.test"],
			   body => "Subject: $name\n\nover $name\n");
	ok($id, "$name: the message is queued") or return ('', '');
	my $line = $t->wait_log(qr/\Q$id\E: to=<bob\@\Q$name\E\.test>.*status=/, 20,
				from => $mark) // '';
	return ($line, $t->log_text($mark));
}

my $fpr = `openssl x509 -in $tmp/srv.pem -noout -fingerprint -sha256`;
$fpr =~ s/^.*=//s;
chomp $fpr;
like($fpr, qr/^[0-9A-F]{2}(?::[0-9A-F]{2}){31}$/, 'the server certificate\'s fingerprint');
(my $badfpr = $fpr) =~ tr/0-9A-F/1-9A-F0/;

my $tx = sender("$tmp/ca.pem",
	fpr => "fingerprint match=$badfpr|$fpr", badfpr => "fingerprint match=$badfpr",
	ccert => 'encrypt',
	may => 'may', encrypt => 'encrypt', verify => 'verify',
	secure => 'secure', mismatch => 'secure match=mx.other.test',
	pmay => 'may', pencrypt => 'encrypt');

my ($line, $log);
my $rxport;
my $rxmark;

# may
($line, $log) = deliver($tx, 'may');
$rxport = $rx->port('may');
like($line, qr/relay=localhost\[127\.0\.0\.1\]:$rxport, .*dsn=2\.0\.0, status=sent \(250 /,
     'may: delivered');
like($log, qr/sluice\/smtp\[\d+\]: Trusted TLS connection established to localhost\[127\.0\.0\.1\]:$rxport: TLSv1\.[23] with cipher \S+ \(\d+\/\d+ bits\)/,
     'may: "Trusted TLS connection established to ..." (the CA is known)');
my ($rxid) = $line =~ /queued as (\S+?)\)/;
ok($rxid && $rx->wait_log(qr/TLS connection established from localhost\[127\.0\.0\.1\]/, 10),
   'may: the receiver saw a TLS session');

# encrypt
($line, $log) = deliver($tx, 'encrypt');
like($line, qr/status=sent \(250 /, 'encrypt: delivered');
like($log, qr/TLS connection established to localhost\[127\.0\.0\.1\]:\d+: TLSv1\.[23]/,
     'encrypt: over TLS');

# verify with the right CA
($line, $log) = deliver($tx, 'verify');
like($line, qr/status=sent \(250 /, 'verify (right CA): delivered');
like($log, qr/Verified TLS connection established to localhost\[127\.0\.0\.1\]:\d+: TLSv1/,
     'verify: "Verified TLS connection established"');

# secure, the nexthop is the certificate's name
($line, $log) = deliver($tx, 'secure');
like($line, qr/status=sent \(250 /, 'secure (name matches): delivered');
like($log, qr/Verified TLS connection established to localhost/, 'secure: Verified');

# secure with a name the certificate does not have
($line, $log) = deliver($tx, 'mismatch');
like($line, qr/dsn=4\.7\.5, status=deferred \(Server certificate not verified\)/,
     'secure, name mismatch: deferred "Server certificate not verified"');
like($log, qr/Trusted TLS connection established to localhost/,
     '... after a trusted (but not matched) handshake');

# fingerprint
($line, $log) = deliver($tx, 'fpr');
like($line, qr/status=sent \(250 /, 'fingerprint (matching): delivered');
like($log, qr/Verified TLS connection established to localhost/, 'fingerprint: Verified');
($line, $log) = deliver($tx, 'badfpr');
like($line, qr/dsn=4\.7\.5, status=deferred \(Server certificate not verified\)/,
     'fingerprint (another one): deferred "Server certificate not verified"');

# a server that asks for a client certificate gets smtp_tls_cert_file's
$rxmark = $rx->log_mark;
($line, $log) = deliver($tx, 'ccert');
like($line, qr/status=sent \(250 /, 'client certificate: delivered');
ok($rx->wait_log(qr/Trusted TLS connection established from localhost\[127\.0\.0\.1\]/,
		 10, from => $rxmark),
   '... the receiver verified the client certificate (smtp_tls_cert_file)');

# a next hop without STARTTLS
($line, $log) = deliver($tx, 'pmay');
like($line, qr/status=sent \(250 /, 'no STARTTLS, may: delivered in plaintext');
unlike($log, qr/TLS connection established/, '... without TLS');

($line, $log) = deliver($tx, 'pencrypt');
my $pport = $plain->port('pencrypt');
like($line, qr/dsn=4\.7\.4, status=deferred \(TLS is required, but was not offered by host localhost\[127\.0\.0\.1\]\)/,
     'no STARTTLS, encrypt: deferred "TLS is required, but was not offered by host ..."');

# no policy entry: smtp_tls_security_level (none)
($line, $log) = deliver($tx, 'none');
like($line, qr/status=sent \(250 /, 'level none: delivered');
unlike($log, qr/TLS connection established/, '... in plaintext');
like($log, qr/Host offered STARTTLS: \[localhost\]/,
     'smtp_tls_note_starttls_offer: "Host offered STARTTLS: [localhost]"');

# The sessions ended with QUIT over TLS (also those given up after the
# handshake), and nothing crashed on the way.
ok($rx->wait_log(qr/disconnect from localhost\[127\.0\.0\.1\] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7/, 10),
   'the receiver got QUIT inside TLS');
ok($rx->wait_log(qr/disconnect from localhost\[127\.0\.0\.1\] ehlo=1 starttls=1 quit=1 commands=3/, 10),
   '... also from a session given up after the handshake (name mismatch)');
unlike($tx->log_text, qr/killed by signal|panic/, 'no process of the sender crashed');
$tx->stop;

# ---- a sender that trusts another CA ---------------------------------------------

my $tx2 = sender("$tmp/otherca.pem", wrongca => 'verify', wrongmay => 'may');
($line, $log) = deliver($tx2, 'wrongca');
$rxport = $rx->port('wrongca');
like($line, qr/dsn=4\.7\.5, status=deferred \(Server certificate not trusted\)/,
     'verify, wrong CA: deferred "Server certificate not trusted"');
like($log, qr/server certificate verification failed for localhost\[127\.0\.0\.1\]:$rxport: untrusted issuer \/CN=Sluice Test CA/,
     '... "server certificate verification failed for host[ip]:port: untrusted issuer ..."');
like($log, qr/Untrusted TLS connection established to localhost\[127\.0\.0\.1\]:$rxport/,
     '... after an untrusted handshake');

($line, $log) = deliver($tx2, 'wrongmay');
like($line, qr/status=sent \(250 /, 'may, unknown CA: delivered anyway');
like($log, qr/Untrusted TLS connection established to localhost/,
     '... logged "Untrusted TLS connection established"');
unlike($tx2->log_text, qr/killed by signal|panic/, 'no process of the second sender crashed');
$tx2->stop;

done_testing;
