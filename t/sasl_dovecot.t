#!/usr/bin/perl
# sasl_dovecot.t - SMTP AUTH through a real Dovecot auth socket
# (smtpd_sasl_type = dovecot): the test starts Dovecot with its own
# minimal configuration, a passwd-file and a unix_listener in a temp dir.
# The mechanisms come from Dovecot's handshake (filtered by
# smtpd_sasl_security_options); swaks logs in with PLAIN, LOGIN and
# CRAM-MD5; a wrong password is 535 with Dovecot's reason; an
# authenticated client relays, an unauthenticated one does not; when
# Dovecot goes away a session in progress gets 454 4.7.0, and `sluice
# check` says the socket cannot be reached.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use MIME::Base64 qw(encode_base64);
use POSIX qw(WNOHANG);
use SluiceTest qw(wait_until reply_like);

my $dir = File::Temp::tempdir('sasl-dovecot-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
sub write_file { my ($p, $s) = @_; open my $fh, '>', $p or die "$p: $!"; print $fh $s; close $fh }

write_file("$dir/passwd", "carol:{PLAIN}secret\ndave:{PLAIN}hunter2\n");
write_file("$dir/dovecot.conf", <<"EOF");
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
protocols =
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5
default_internal_user = nobody
default_login_user = nobody
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
service auth {
  unix_listener $dir/auth {
    mode = 0666
  }
}
EOF

my $dovecot;
sub start_dovecot {
	$dovecot = fork // die "fork: $!";
	if ($dovecot == 0) {
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', "$dir/dovecot.out";
		open STDERR, '>&', \*STDOUT;
		SluiceTest::die_with_parent();
		POSIX::setpgid(0, 0);     # its auth process goes with it
		exec('dovecot', '-F', '-c', "$dir/dovecot.conf") or POSIX::_exit(127);
	}
	wait_until(sub { -S "$dir/auth" }, 15) or die "Dovecot did not start: " . `cat $dir/dovecot.out $dir/dovecot.log 2>&1`;
}
sub stop_dovecot {
	return unless $dovecot;
	kill 'TERM', -$dovecot;
	wait_until(sub { waitpid($dovecot, WNOHANG) == $dovecot }, 15) or kill 'KILL', -$dovecot;
	undef $dovecot;
}
END { stop_dovecot() }

start_dovecot();

my $t = SluiceTest->new(main => {
	smtpd_peername_lookup => 'no',
	mynetworks => '192.0.2.0/24',
	smtpd_sasl_auth_enable => 'yes',
	smtpd_sasl_type => 'dovecot',
	smtpd_sasl_path => "$dir/auth",
	smtpd_tls_auth_only => 'no',
	smtpd_relay_restrictions => 'permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination',
	smtpd_soft_error_limit => 1000,
	smtpd_hard_error_limit => 1000,
}, listeners => {
	smtp => '',
	noplain => '-o smtpd_sasl_security_options=noanonymous,noplaintext',
});

sub b64 { encode_base64($_[0], '') }

{
	my ($rc, $out) = $t->sluice('check');
	unlike($out, qr/Dovecot/, 'sluice check: the Dovecot socket is reachable') or diag $out;
	like($out, qr/^warning: \S+master\.cf:\d+: listener \S+ offers AUTH \(smtpd_sasl_auth_enable = yes, \S+main\.cf:\d+\) without requiring TLS first/m,
	     'sluice check warns about AUTH without TLS');
	my $c = $t->smtp('smtp');
	my (undef, $text) = $c->hello;
	like($text, qr/^250-AUTH PLAIN LOGIN CRAM-MD5$/m, "EHLO offers Dovecot's mechanisms") or diag $t->log_text;
	$c = $t->smtp('noplain');
	(undef, $text) = $c->hello;
	like($text, qr/^250-AUTH CRAM-MD5$/m, 'noplaintext leaves only CRAM-MD5');
	reply_like($c, 'AUTH PLAIN ' . b64("\0carol\0secret"), 538, qr/^538 5\.7\.11 Encryption required for requested authentication mechanism/,
	       'PLAIN, excluded in cleartext but allowed under TLS: 538');
	reply_like($c, 'AUTH X-NONE', 504, qr/^504 5\.5\.4 Unrecognized authentication type/,
	       'a mechanism Dovecot does not have: 504');
}

for my $mech (qw(PLAIN LOGIN CRAM-MD5)) {
	my $mark = $t->log_mark;
	my $out = `swaks --server 127.0.0.1 --port ${\ $t->port('smtp')} --auth $mech --auth-user carol --auth-password secret --from carol\@example.org --to someone\@remote.example --helo client.example 2>&1`;
	is($? >> 8, 0, "swaks AUTH $mech through Dovecot: relayed") or diag $out;
	like($out, qr/<-\s+235 2\.7\.0 Authentication successful/, "AUTH $mech: 235 2.7.0");
	ok($t->wait_log(qr/client=unknown\[127\.0\.0\.1\], sasl_method=\Q$mech\E, sasl_username=carol$/m, 10, from => $mark),
	   "$mech: sasl_method and sasl_username logged");
}

{
	my $c = $t->smtp('smtp');
	$c->hello;
	my $mark = $t->log_mark;
	reply_like($c, 'AUTH PLAIN ' . b64("\0carol\0wrong"), 535, qr/^535 5\.7\.8 Error: authentication failed: \S/,
	       'wrong password: 535 5.7.8');
	ok($t->wait_log(qr/warning: unknown\[127\.0\.0\.1\]: SASL PLAIN authentication failed: .*sasl_username=carol/, 10, from => $mark),
	   'failure logged');
	reply_like($c, 'AUTH LOGIN', 334, qr/^334 VXNlcm5hbWU6$/, 'LOGIN challenge from Dovecot');
	reply_like($c, b64('dave'), 334, qr/^334 UGFzc3dvcmQ6$/, 'Password: challenge');
	reply_like($c, b64('hunter2'), 235, qr/^235 2\.7\.0/, 'LOGIN step by step: 235');
	$c->cmd('MAIL FROM:<dave@example.org>');
	reply_like($c, 'RCPT TO:<x@remote.example>', 250, qr/^250/, 'authenticated through Dovecot: may relay');
	$c->cmd('QUIT');

	$c = $t->smtp('smtp');
	$c->hello;
	$c->cmd('MAIL FROM:<dave@example.org>');
	reply_like($c, 'RCPT TO:<x@remote.example>', 554, qr/Relay access denied/, 'not authenticated: may not relay');
}

# Dovecot goes away: a temporary failure, and sluice check says why.
{
	my $c = $t->smtp('smtp');
	$c->hello;
	reply_like($c, 'AUTH LOGIN', 334, qr/^334/, 'an exchange in progress');
	stop_dovecot();
	my $mark = $t->log_mark;
	reply_like($c, b64('dave'), 454, qr/^454 4\.7\.0 Temporary authentication failure: /,
	       'Dovecot stopped mid-exchange: 454 4.7.0');
	my $c2 = $t->smtp('smtp');
	my (undef, $text) = $c2->hello;
	unlike($text // '', qr/AUTH/, 'no Dovecot: AUTH is not offered');
	reply_like($c2, 'AUTH PLAIN ' . b64("\0carol\0secret"), 454, qr/^454 4\.7\.0 Temporary authentication failure: cannot connect/,
	       'AUTH without Dovecot: 454 4.7.0');
	my ($rc, $out) = $t->sluice('check');
	like($out, qr/cannot connect to Dovecot auth socket \Q$dir\E\/auth: .*; start Dovecot/,
	     'sluice check: the socket cannot be reached, and what to do') or diag $out;
	isnt($rc, 0, 'sluice check fails');
}

# At start-up the unreachable socket is a warning, and sluice starts.
{
	$t->stop;
	my $mark = $t->log_mark;
	$t->start;
	ok($t->wait_log(qr/warning: .*cannot connect to Dovecot auth socket \Q$dir\E\/auth: /, 10, from => $mark),
	   'start-up: the unreachable Dovecot socket is a warning') or diag $t->log_text;
}

$t->stop;
done_testing;
