#!/usr/bin/perl
# tls_client_fallback.t - delivery over TLS when the handshake fails, and
# TLS connections and sessions used again (docs/tls.md, "Delivery over
# TLS").  The next hop is a second sluice that speaks only TLSv1.3;
# smtp_tls_policy_maps makes the sender offer only TLSv1.2 to one of its
# listeners, so that handshake fails:
#  - may: "SSL_connect error to host[ip]:port: ...", then the same server
#    again in plaintext (Postfix's fallback), and the mail is delivered
#    (the receiver sees a second session without STARTTLS);
#  - encrypt: deferred, "Cannot start TLS: handshake failure" (4.7.5);
#  - two messages in a row to one destination share one TLS connection
#    (the connection cache keeps it with its TLS state);
#  - without the connection cache, the second connection resumes the TLS
#    session of the first (smtp_tls_loglevel 2: "Reusing old session").
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
system("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
       . "-keyout $tmp/srv.key -out $tmp/srv.pem -days 2 -subj /CN=localhost "
       . "-addext subjectAltName=DNS:localhost >/dev/null 2>&1") == 0
    or die 'openssl req failed';
chmod 0600, "$tmp/srv.key";

my @names = qw(fallback encrypt cached resumed);
my $rx = SluiceTest->new(
	main => {
		myhostname => 'rx.example.test',
		smtpd_tls_security_level => 'may',
		smtpd_tls_cert_file => "$tmp/srv.pem",
		smtpd_tls_key_file => "$tmp/srv.key",
		smtpd_tls_protocols => 'TLSv1.3',
		smtpd_tls_loglevel => 1,
		# one worker: TLS sessions are resumed by the process that made them
		sluice_smtpd_workers => 1,
	},
	listeners => { map { ($_ => '') } @names });
my %hop = map { ($_ => "[localhost]:" . $rx->port($_)) } @names;

sub sender {
	my (%o) = @_;
	my $transport = join '', map { "$_.test smtp:$hop{$_}\n" } sort keys %hop;
	my $pol = join '', map { "$hop{$_} $o{policy}{$_}\n" } sort keys %{ $o{policy} };
	return qmgr_sluice(main => {
		myhostname => 'tx.example.test',
		inet_protocols => 'ipv4',
		transport_maps => 'texthash:%DIR%/transport',
		smtp_tls_policy_maps => 'texthash:%DIR%/tls_policy',
		smtp_tls_loglevel => 2,
		smtpd_reject_unlisted_recipient => 'no',
		%{ $o{main} || {} },
	}, files => { transport => $transport, tls_policy => $pol });
}

sub deliver {
	my ($t, $name, $n) = @_;
	my $mark = $t->log_mark;
	my $id = send_mail($t, from => 'alice@example.org', to => ["bob\@$name.test"],
			   body => "Subject: $name $n\n\nover $name\n");
	ok($id, "$name: message $n is queued") or return ('', '');
	my $line = $t->wait_log(qr/\Q$id\E: to=<bob\@\Q$name\E\.test>.*status=/, 20,
				from => $mark) // '';
	return ($line, $t->log_text($mark));
}

sub count { my ($re, $text) = @_; my @m = $text =~ /$re/g; return scalar @m }

my $tx = sender(policy => {
	fallback => 'may protocols=TLSv1.2',
	encrypt => 'encrypt protocols=TLSv1.2',
	cached => 'may',
}, main => { smtp_connection_cache_time_limit => '30s' });

# ---- a failed handshake ---------------------------------------------------------

my $port = $rx->port('fallback');
my $rxmark = $rx->log_mark;
my ($line, $log) = deliver($tx, 'fallback', 1);
like($log, qr{sluice/smtp\[\d+\]: SSL_connect error to localhost\[127\.0\.0\.1\]:$port: }m,
     'may: the failed handshake is logged ("SSL_connect error to ...")');
like($line, qr/relay=localhost\[127\.0\.0\.1\]:$port, .*status=sent \(250 /,
     'may: then delivered to the same server in plaintext');
unlike($log, qr/TLS connection established to/, '... without TLS');
ok($rx->wait_log(qr/disconnect from localhost\[127\.0\.0\.1\] ehlo=1 starttls=1 commands=2/,
		 10, from => $rxmark),
   'the receiver saw the failed STARTTLS session');
my ($rxid) = $line =~ /queued as (\S+?)\)/;
my $rxlog = $rx->log_text($rxmark);
like($rxlog, qr/ehlo=1 starttls=1 commands=2\n(?:(?!TLS connection established).*\n)*.*: \Q$rxid\E: client=localhost/,
     '... then took the message in a session without TLS');

$port = $rx->port('encrypt');
($line, $log) = deliver($tx, 'encrypt', 1);
like($line, qr/relay=localhost\[127\.0\.0\.1\]:$port, .*dsn=4\.7\.5, status=deferred \(Cannot start TLS: handshake failure\)/,
     'encrypt: deferred "Cannot start TLS: handshake failure"');

# ---- one TLS connection for two messages -------------------------------------------

$port = $rx->port('cached');
$rxmark = $rx->log_mark;
my $txmark = $tx->log_mark;
my ($l1) = deliver($tx, 'cached', 1);
my ($l2) = deliver($tx, 'cached', 2);
like($l1, qr/status=sent/, 'cached: message 1 delivered');
like($l2, qr/status=sent/, 'cached: message 2 delivered');
$log = $tx->log_text($txmark);
is(count(qr/TLS connection established to localhost\[127\.0\.0\.1\]:$port/, $log), 1,
   'one TLS handshake for both (the TLS connection was reused)');
is(count(qr/connect from localhost/, $rx->log_text($rxmark)), 1,
   '... the receiver saw one connection');
$tx->stop;

# ---- TLS session resumption ------------------------------------------------------

my $tx2 = sender(policy => { resumed => 'may' },
		 main => { smtp_connection_cache_on_demand => 'no' });
$port = $rx->port('resumed');
($line, $log) = deliver($tx2, 'resumed', 1);
like($line, qr/status=sent/, 'resumed: message 1 delivered');
unlike($log, qr/Reusing old session/, '... over a new TLS session');
($line, $log) = deliver($tx2, 'resumed', 2);
like($line, qr/status=sent/, 'resumed: message 2 delivered');
like($log, qr/localhost\[127\.0\.0\.1\]:$port: Reusing old session/,
     '... resuming the TLS session of the first (smtp_tls_session_cache_timeout)');
$tx2->stop;

done_testing;
