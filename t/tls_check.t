#!/usr/bin/perl
# tls_check.t - TLS in `sluice check` and at start-up, and `sluice tls
# selfsigned`: TLS without a certificate, a key readable by others, a key
# that does not match its certificate, an expired certificate, a missing
# key file and a bad protocol list are errors as "file:line: problem;
# fix" (and `sluice run` refuses to start); a certificate that does not
# name $myhostname is a warning.  `sluice tls selfsigned` writes a key
# and a certificate for $myhostname where smtpd_tls_chain_files points
# (mode 0600), after which check is silent, and a client that trusts the
# printed certificate verifies the server by name.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest;

my $t = SluiceTest->new(start => 0, main => { sluice_smtpd_workers => 1 });
my $dir = $t->dir;
sub sh { system("@_ >>$dir/openssl.log 2>&1") == 0 or die "failed: @_" }

# certificates: good (mx.example.test), other name, expired, a foreign key
sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout $dir/good.key -out $dir/good.crt -days 30 "
   . "-subj /CN=mx.example.test -addext subjectAltName=DNS:mx.example.test");
sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout $dir/other.key -out $dir/other.crt -days 30 "
   . "-subj /CN=other.example -addext subjectAltName=DNS:other.example");
$t->write_file('ca.cnf', "[ca]\ndefault_ca=d\n[d]\ndatabase=$dir/index.txt\nnew_certs_dir=$dir\n"
	       . "serial=$dir/serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n");
$t->write_file('index.txt', '');
$t->write_file('serial', "01\n");
sh("openssl req -new -newkey rsa:2048 -nodes -keyout $dir/old.key -out $dir/old.csr -subj /CN=mx.example.test");
sh("openssl ca -batch -config $dir/ca.cnf -selfsign -keyfile $dir/old.key -in $dir/old.csr "
   . "-out $dir/old.crt -startdate 20200101000000Z -enddate 20210101000000Z");
chmod 0600, map { "$dir/$_.key" } qw(good other old);

sub check_with {
	my (%main) = @_;
	$t->set_main(smtpd_tls_security_level => 'may', smtpd_tls_cert_file => undef,
		     smtpd_tls_key_file => undef, smtpd_tls_chain_files => undef,
		     smtpd_tls_protocols => undef, %main);
	return $t->sluice('check');
}
sub line_of {
	my ($name) = @_;
	open my $fh, '<', "$dir/main.cf" or die;
	while (<$fh>) { return $. if /^\Q$name\E\s*=/ }
	return 0;
}
my $main = "$dir/main.cf";

my ($rc, $out) = check_with(smtpd_tls_security_level => undef);
is($out, '', 'no TLS configured: check is silent');

($rc, $out) = check_with();
is($rc, 1, 'level may without a certificate: exit 1');
like($out, qr/^\Q$main\E:\d+: listener \S+ uses TLS but has no certificate; set smtpd_tls_chain_files .*sluice tls selfsigned/m,
     '... "uses TLS but has no certificate; set smtpd_tls_chain_files ... sluice tls selfsigned"');

($rc, $out) = check_with(smtpd_tls_cert_file => "$dir/good.crt", smtpd_tls_key_file => "$dir/good.key");
is($out, '', 'a good certificate and key: silent');
is($rc, 0, '... exit 0');

chmod 0644, "$dir/good.key";
($rc, $out) = check_with(smtpd_tls_cert_file => "$dir/good.crt", smtpd_tls_key_file => "$dir/good.key");
my $l = line_of('smtpd_tls_key_file');
like($out, qr/^\Q$main\E:$l: smtpd_tls_key_file: the private key \Q$dir\E\/good\.key is readable by everyone \(mode 0644\); chmod 600 /m,
     'a world-readable key: error at smtpd_tls_key_file\'s line, "chmod 600"');
is($rc, 1, '... exit 1');
chmod 0640, "$dir/good.key";
($rc, $out) = check_with(smtpd_tls_cert_file => "$dir/good.crt", smtpd_tls_key_file => "$dir/good.key");
like($out, qr/is readable by its group \(mode 0640\)/, 'a group-readable key: error too');
chmod 0600, "$dir/good.key";

($rc, $out) = check_with(smtpd_tls_cert_file => "$dir/good.crt", smtpd_tls_key_file => "$dir/other.key");
$l = line_of('smtpd_tls_cert_file');
like($out, qr/^\Q$main\E:$l: smtpd_tls_cert_file: the private key in \S+ does not match its certificate; /m,
     'a key that does not match its certificate: error');
is($rc, 1, '... exit 1');

($rc, $out) = check_with(smtpd_tls_cert_file => "$dir/old.crt", smtpd_tls_key_file => "$dir/old.key");
like($out, qr/^\Q$main\E:\d+: smtpd_tls_cert_file: the certificate in \S+old\.crt has expired .*; renew it/m,
     'an expired certificate: error');

($rc, $out) = check_with(smtpd_tls_cert_file => "$dir/other.crt", smtpd_tls_key_file => "$dir/other.key");
like($out, qr/^warning: \Q$main\E:\d+: smtpd_tls_cert_file: the certificate in \S+ does not name myhostname \(mx\.example\.test\); .*add mx\.example\.test to its subjectAltName/m,
     'a certificate for another name: warning');
is($rc, 0, '... only a warning: exit 0');

($rc, $out) = check_with(smtpd_tls_cert_file => "$dir/good.crt", smtpd_tls_key_file => "$dir/missing.key");
like($out, qr/^\Q$main\E:\d+: smtpd_tls_key_file: cannot read \S+missing\.key: No such file or directory; /m,
     'a missing key file: error');

($rc, $out) = check_with(smtpd_tls_cert_file => "$dir/good.crt", smtpd_tls_key_file => "$dir/good.key",
			 smtpd_tls_protocols => '>=TLSv9');
like($out, qr/^\Q$main\E:\d+: smtpd_tls_protocols = >=TLSv9: unknown TLS protocol "TLSv9"/m,
     'an unknown protocol: error');

# start-up refuses what check refuses
check_with(smtpd_tls_cert_file => "$dir/good.crt", smtpd_tls_key_file => "$dir/other.key");
($rc, $out) = $t->sluice('run');
isnt($rc, 0, 'sluice run with a key that does not match: refuses to start');
like($out, qr/does not match its certificate.*\n.*not starting/s, '... saying why');

# ---- sluice tls selfsigned -------------------------------------------------------

check_with(smtpd_tls_chain_files => 'server.pem');
($rc, $out) = $t->sluice('tls', 'selfsigned');
is($rc, 0, 'sluice tls selfsigned: exit 0');
my @st = stat "$dir/server.pem";
is(@st ? $st[2] & 07777 : -1, 0600, '... wrote smtpd_tls_chain_files (relative to the config directory), mode 0600');
like($out, qr/^certificate fingerprint \(sha256\): ([0-9A-F]{2}:){31}[0-9A-F]{2}$/m, '... prints the fingerprint');
my ($pem) = $out =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n)/s;
ok($pem, '... and the certificate, for clients to trust');
my $san = `openssl x509 -in $dir/server.pem -noout -ext subjectAltName 2>&1`;
like($san, qr/DNS:mx\.example\.test/, '... whose subjectAltName is $myhostname');
($rc, $out) = $t->sluice('tls', 'selfsigned');
isnt($rc, 0, 'a second run does not overwrite the key');
like($out, qr/use -f to replace it/, '... and says -f replaces it');

($rc, $out) = $t->sluice('check');
is($out, '', 'check is silent with the new certificate');

$t->write_file('trusted.pem', $pem // '');
$t->start;
my $port = $t->port;
$out = `echo QUIT | timeout 30 openssl s_client -starttls smtp -crlf -ign_eof -connect 127.0.0.1:$port -CAfile $dir/trusted.pem -verify_hostname mx.example.test -verify_return_error -brief 2>&1`;
like($out, qr/^Verification: OK$/m, 'a client trusting the printed certificate verifies the server by name');
$t->stop;

done_testing;
