#!/usr/bin/perl
# tls_server.t - server-side TLS with real peers: openssl s_client
# -starttls smtp shows the protocol and our certificate; swaks delivers
# over STARTTLS and in wrapper mode (smtps); TLS 1.0/1.1 are refused; the
# Received: header and the log say what Postfix says; a listener with
# security level encrypt (submission) answers 530 before STARTTLS;
# STARTTLS twice is 554; EHLO after TLS offers no STARTTLS and HELO is
# needed again; plaintext pipelined behind STARTTLS is discarded
# (CVE-2011-0411); a stalled handshake times out and a broken one leaves
# the worker serving; sessions resume; many TLS sessions share one
# worker; permit_tls_clientcerts lets a listed client certificate relay.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::SSL;
use SluiceTest qw(wait_until);

my $t = SluiceTest->new(
	start => 0,
	main => {
		sluice_smtpd_workers => 1,
		smtpd_tls_chain_files => 'server.pem',
		smtpd_tls_security_level => 'may',
		smtpd_tls_loglevel => 1,
		smtpd_tls_received_header => 'yes',
		smtpd_helo_required => 'yes',
		mynetworks => '192.0.2.1/32',
		smtpd_client_connection_count_limit => 1000,
	},
	listeners => {
		smtp => '-o smtpd_forbid_unauth_pipelining=no',
		submission => '-o smtpd_tls_security_level=encrypt',
		smtps => '-o smtpd_tls_wrappermode=yes',
		slow => '-o smtpd_starttls_timeout=2s',
		reqcert => '-o smtpd_tls_security_level=encrypt -o smtpd_tls_req_ccert=yes -o smtpd_tls_CAfile=ca.pem',
		ccert => '-o smtpd_tls_ask_ccert=yes -o smtpd_tls_CAfile=ca.pem '
		    . '-o smtpd_relay_restrictions=permit_tls_clientcerts,reject_unauth_destination',
	});
my $dir = $t->dir;

# A CA, the server's key and certificate (in one chain file, mode 0600),
# and a client certificate signed by the CA.
my $fp = $t->make_certs;
$t->write_file('relay_clientcerts', "$fp client.example\n");
$t->set_main(relay_clientcerts => "texthash:$dir/relay_clientcerts");
$t->start;

my $port = $t->port('smtp');

# ---- openssl s_client -starttls smtp --------------------------------------

my $mark = $t->log_mark;
my $out = `echo QUIT | timeout 30 openssl s_client -starttls smtp -crlf -ign_eof -connect 127.0.0.1:$port -brief 2>&1`;
like($out, qr/^Protocol version: TLSv1\.3$/m, 's_client -starttls smtp: TLSv1.3 negotiated');
like($out, qr/^Peer certificate: CN ?= ?mx\.example\.test$/m, '... with our certificate');
my $line = $t->wait_log(qr/TLS connection established from/, 10, from => $mark);
like($line // '', qr/: Anonymous TLS connection established from \S+\[127\.0\.0\.1\]: TLSv1\.3 with cipher TLS_\w+ \(\d+\/\d+ bits\) key-exchange \S+ server-signature RSA-PSS \(2048 bits\) server-digest SHA256$/,
     'logged as Postfix: "Anonymous TLS connection established from ..."');
ok($t->wait_log(qr/disconnect from \S+\[127\.0\.0\.1\] ehlo=1 starttls=1 quit=1 commands=3/, 10, from => $mark),
   'the disconnect line counts starttls=1');

# ---- TLS 1.0 and 1.1 refused ------------------------------------------------

for my $v (qw(tls1 tls1_1)) {
	$mark = $t->log_mark;
	$out = `echo QUIT | timeout 30 openssl s_client -starttls smtp -crlf -ign_eof -connect 127.0.0.1:$port -$v -cipher DEFAULT:\@SECLEVEL=0 -brief 2>&1`;
	unlike($out, qr/^Protocol version:/m, "openssl s_client -$v: no TLS session");
	like($t->wait_log(qr/TLS library problem|SSL_accept error/, 10, from => $mark) // '',
	     qr/SSL_accept error|unsupported protocol/, "... the server refused it (SSL_accept error)");
}

# ---- swaks: STARTTLS and wrapper mode --------------------------------------

sub swaks {
	my ($p, @opt) = @_;
	return scalar `swaks --server 127.0.0.1:$p --from a\@example.org --to postmaster\@mx.example.test --ehlo client.example @opt 2>&1`;
}

$out = swaks($port, '--tls');
my ($id) = $out =~ /<~\s+250 2\.0\.0 Ok: queued as (\S+)/;
ok($id, 'swaks --tls: queued over STARTTLS') or diag $out;
my $q = SluiceTest::read_queue_file($t->queue_path($id // 'none'));
like($q ? $q->{content} : '', qr/^Received: from client\.example \(\S+ \[127\.0\.0\.1\]\)\n\t\(using TLSv1\.3 with cipher TLS_\w+ \(\d+\/\d+ bits\)\n\t key-exchange \S+ server-signature RSA-PSS \(2048 bits\) server-digest SHA256\)\n\t\(No client certificate requested\)\n\tby mx\.example\.test \(sluice\) with ESMTPS id /m,
     '... Received: has the TLS clause (smtpd_tls_received_header) and ESMTPS');

$out = swaks($t->port('smtps'), '--tlsc');
like($out, qr/<~\s+250 2\.0\.0 Ok: queued as/, 'swaks --tlsc: queued in wrapper mode (smtps)') or diag $out;
$out = swaks($t->port('smtps'));
unlike($out, qr/queued as/, 'the smtps port does not speak plaintext');

# ---- the STARTTLS command ---------------------------------------------------

sub starttls {
	my ($c, %opt) = @_;
	my ($code) = $c->cmd('STARTTLS');
	return 0 unless ($code // 0) == 220;
	return IO::Socket::SSL->start_SSL($c->{sock}, SSL_verify_mode => SSL_VERIFY_NONE,
					  SSL_hostname => 'mx.example.test', %opt) ? 1 : 0;
}

my $c = $t->smtp('smtp');
$c->read_reply;
my ($code, $text) = $c->cmd('EHLO client.example');
like($text, qr/^250-STARTTLS$/m, 'EHLO offers STARTTLS (level may)');
is(($c->cmd('STARTTLS now'))[1], '501 5.5.4 Syntax: STARTTLS', 'STARTTLS with an argument: 501');
ok(starttls($c), 'STARTTLS: 220, then a TLS handshake');
is(($c->cmd('MAIL FROM:<a@example.org>'))[1], '503 5.5.1 Error: send HELO/EHLO first',
   'after TLS the session starts over: HELO needed again');
($code, $text) = $c->cmd('EHLO client.example');
unlike($text, qr/STARTTLS/, 'EHLO inside TLS does not offer STARTTLS again');
is(($c->cmd('STARTTLS'))[1], '554 5.5.1 Error: TLS already active', 'STARTTLS twice: 554 5.5.1');
$c->cmd('QUIT');

# submission-like listener: level encrypt
$c = $t->smtp('submission');
$c->read_reply;
($code, $text) = $c->cmd('EHLO client.example');
like($text, qr/^250-STARTTLS$/m, 'encrypt: EHLO offers STARTTLS');
is(($c->cmd('MAIL FROM:<a@example.org>'))[1], '530 5.7.0 Must issue a STARTTLS command first',
   'encrypt: MAIL before STARTTLS is refused with 530 5.7.0');
is(($c->cmd('NOOP'))[0], 250, '... NOOP is allowed');
ok(starttls($c), '... STARTTLS');
$c->cmd('EHLO client.example');
is(($c->cmd('MAIL FROM:<a@example.org>'))[1], '250 2.1.0 Ok', '... MAIL accepted inside TLS');
$c->cmd('QUIT');

# ---- CVE-2011-0411: plaintext pipelined behind STARTTLS -----------------------

$c = $t->smtp('smtp');
$c->read_reply;
$c->cmd('EHLO client.example');
$c->send_raw("STARTTLS\r\nHELP\r\n");
is(($c->read_reply)[0], 220, 'injection: "STARTTLS\r\nHELP\r\n" in one packet: 220');
ok(IO::Socket::SSL->start_SSL($c->{sock}, SSL_verify_mode => SSL_VERIFY_NONE), '... handshake');
($code, $text) = $c->cmd('NOOP');
is($text, '250 2.0.0 Ok', '... the first reply inside TLS is the NOOP\'s: the injected HELP was discarded');
$c->cmd('QUIT');

# ---- handshake timeout and broken handshakes ---------------------------------

my @workers = $t->worker_pids;
$mark = $t->log_mark;
$c = $t->smtp('slow');
$c->read_reply;
is(($c->cmd('STARTTLS'))[0], 220, 'stalled handshake: 220 then silence');
ok($t->wait_log(qr/SSL_accept error from \S+\[127\.0\.0\.1\]: Connection timed out/, 15, from => $mark),
   '... "SSL_accept error ...: Connection timed out" after smtpd_starttls_timeout');
ok($t->wait_log(qr/lost connection after STARTTLS from \S+\[127\.0\.0\.1\]/, 5, from => $mark),
   '... and "lost connection after STARTTLS"');
ok(!defined $c->read_line(5), '... the connection is closed');

$mark = $t->log_mark;
$c = $t->smtp('smtp');
$c->read_reply;
$c->cmd('STARTTLS');
$c->send_raw("GET / HTTP/1.0\r\n\r\n" . ("\x16\x03\x01\xff\xff" x 20));
ok($t->wait_log(qr/SSL_accept error from \S+\[127\.0\.0\.1\]/, 10, from => $mark),
   'garbage instead of a ClientHello: SSL_accept error logged');
$c = $t->smtp('smtp');
is(($c->read_reply)[0], 220, '... and the worker still serves');
is_deeply([$t->worker_pids], \@workers, '... the same worker process');
$c->cmd('QUIT');

# ---- session resumption -------------------------------------------------------------

my $sess = "$dir/session.pem";
`echo QUIT | timeout 30 openssl s_client -starttls smtp -crlf -ign_eof -connect 127.0.0.1:$port -sess_out $sess 2>&1`;
$out = `echo QUIT | timeout 30 openssl s_client -starttls smtp -crlf -ign_eof -connect 127.0.0.1:$port -sess_in $sess 2>&1`;
like($out, qr/^Reused, TLSv1\.3/m, 'openssl s_client -sess_in: the session is resumed ("Reused")');

# ---- client certificates ----------------------------------------------------------

my $cport = $t->port('ccert');
$out = swaks($cport, '--tls', '--to', 'someone@remote.example');
like($out, qr/<~\*\s+554 5\.7\.1 <someone\@remote\.example>: Relay access denied/,
     'without a client certificate: Relay access denied') or diag $out;
$mark = $t->log_mark;
$out = swaks($cport, '--tls', '--tls-cert', "$dir/client.pem", '--tls-key', "$dir/client.key",
	     '--to', 'someone@remote.example');
like($out, qr/<~\s+250 2\.0\.0 Ok: queued as/, 'with the listed client certificate: relaying permitted (permit_tls_clientcerts)')
    or diag $out;
like($t->wait_log(qr/TLS connection established from/, 10, from => $mark) // '',
     qr/Trusted TLS connection established from \S+\[127\.0\.0\.1\]: TLSv1\.3 .* client-signature ECDSA \(P-256\)/,
     '... logged as a "Trusted TLS connection" (the CA signed it)');
ok($t->wait_log(qr/relay_clientcerts: \S+\[127\.0\.0\.1\]: accepted by fingerprint \Q$fp\E/, 5, from => $mark),
   '... by its fingerprint');

# smtpd_tls_req_ccert: a verified certificate or nothing
$c = $t->smtp('reqcert');
$c->read_reply;
$c->cmd('EHLO client.example');
ok(starttls($c), 'req_ccert: a client without a certificate completes the handshake');
is(($c->read_reply)[1], '421 4.7.1 mx.example.test Error: No client certificate presented',
   '... then 421 4.7.1 No client certificate presented');
$c = $t->smtp('reqcert');
$c->read_reply;
$c->cmd('EHLO client.example');
ok(starttls($c, SSL_cert_file => "$dir/client.pem", SSL_key_file => "$dir/client.key"),
   '... with the CA-signed certificate');
is(($c->cmd('EHLO client.example'))[0], 250, '... the session goes on');
$c->cmd('QUIT');

# ---- many TLS sessions on one worker ---------------------------------------------

my $n = 200;
my @open;
for my $i (1 .. $n) {
	my $s = $t->smtp('smtp');
	last unless $s && ($s->read_reply)[0] == 220;
	$s->cmd('EHLO c' . $i);
	last unless starttls($s);
	push @open, $s;
}
is(scalar @open, $n, "$n TLS sessions open at once on one worker");
my $ok = grep { (($_->cmd('EHLO again'))[0] // 0) == 250 } @open;
is($ok, $n, '... and every one of them answers');
$_->cmd('QUIT') for @open;
is(scalar $t->worker_pids, 1, '... one worker process');

done_testing;
