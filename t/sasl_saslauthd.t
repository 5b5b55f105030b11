#!/usr/bin/perl
# sasl_saslauthd.t - SMTP AUTH through Cyrus SASL with pwcheck_method:
# saslauthd: the test creates a system user with a password, starts a
# real saslauthd (-a shadow) with its mux socket in a temp dir, checks it
# with testsaslauthd, and logs in with swaks (PLAIN and LOGIN).  A wrong
# password is 535; with saslauthd stopped `sluice check` names the socket
# that cannot be reached, at its smtpd.conf line.  Needs root (shadow).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use MIME::Base64 qw(encode_base64);
use POSIX qw(WNOHANG);
use SluiceTest qw(wait_until);

plan skip_all => 'saslauthd -a shadow needs root' if $< != 0;   # CI runs as root

my $dir = File::Temp::tempdir('sasl-authd-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
mkdir "$dir/mux";
chmod 0755, "$dir/mux";
sub write_file { my ($p, $s) = @_; open my $fh, '>', $p or die "$p: $!"; print $fh $s; close $fh }

# A system user for the test, removed at the end.
my $user = "sluicet$$";
my $pass = "pw-$$-x";
system('useradd', '--no-create-home', '--shell', '/usr/sbin/nologin', $user) == 0
    or BAIL_OUT("useradd $user failed");
END { system('userdel', $user) if $user; }
open my $cp, '|-', 'chpasswd' or die "chpasswd: $!";
print $cp "$user:$pass\n";
close $cp or die "chpasswd failed";

my $authd;
sub start_saslauthd {
	$authd = fork // die "fork: $!";
	if ($authd == 0) {
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', "$dir/saslauthd.log";
		open STDERR, '>&', \*STDOUT;
		SluiceTest::die_with_parent();
		POSIX::setpgid(0, 0);     # saslauthd signals its whole group on exit
		exec('saslauthd', '-d', '-a', 'shadow', '-n', '1', '-m', "$dir/mux") or POSIX::_exit(127);
	}
	wait_until(sub { -S "$dir/mux/mux" }, 15) or die "saslauthd did not start: " . `cat $dir/saslauthd.log`;
}
sub stop_saslauthd {
	return unless $authd;
	kill 'TERM', -$authd;
	wait_until(sub { waitpid($authd, WNOHANG) == $authd }, 15) or kill 'KILL', -$authd;
	undef $authd;
	unlink "$dir/mux/mux";
}
END { stop_saslauthd() }

start_saslauthd();
my $check = `testsaslauthd -u $user -p '$pass' -s smtp -f $dir/mux/mux 2>&1`;
like($check, qr/0: OK "Success\."/, 'testsaslauthd: the saslauthd works') or diag $check;

write_file("$dir/smtpd.conf", "pwcheck_method: saslauthd\nsaslauthd_path: $dir/mux/mux\nmech_list: PLAIN LOGIN\n");
my $t = SluiceTest->new(main => {
	smtpd_peername_lookup => 'no',
	mynetworks => '192.0.2.0/24',
	smtpd_sasl_auth_enable => 'yes',
	cyrus_sasl_config_path => $dir,
	smtpd_tls_auth_only => 'no',
	smtpd_relay_restrictions => 'permit_sasl_authenticated, reject_unauth_destination',
	smtpd_soft_error_limit => 1000,
});

{
	my ($rc, $out) = $t->sluice('check');
	unlike($out, qr/saslauthd/, 'sluice check: the saslauthd socket is reachable') or diag $out;
}
for my $mech (qw(PLAIN LOGIN)) {
	my $mark = $t->log_mark;
	my $out = `swaks --server 127.0.0.1 --port ${\ $t->port} --auth $mech --auth-user $user --auth-password '$pass' --from a\@example.org --to far\@remote.example 2>&1`;
	is($? >> 8, 0, "swaks AUTH $mech through saslauthd: relayed") or diag $out;
	ok($t->wait_log(qr/sasl_method=\Q$mech\E, sasl_username=\Q$user\E$/m, 10, from => $mark),
	   "$mech: the login is logged");
}
{
	my $c = $t->smtp;
	$c->hello;
	my ($code, $text) = $c->cmd('AUTH PLAIN ' . encode_base64("\0$user\0wrong", ''));
	is($code, 535, 'wrong password through saslauthd: 535') or diag $text;
	like($text, qr/^535 5\.7\.8 Error: authentication failed: /, '... 5.7.8');
}
stop_saslauthd();
{
	my ($rc, $out) = $t->sluice('check');
	like($out, qr/\Q$dir\E\/smtpd\.conf:2: saslauthd socket \Q$dir\E\/mux\/mux cannot be reached: .*; start saslauthd/,
	     'sluice check: the saslauthd socket cannot be reached, at its smtpd.conf line') or diag $out;
	isnt($rc, 0, 'sluice check fails');
	my $c = $t->smtp;
	$c->hello;
	my ($code, $text) = $c->cmd('AUTH PLAIN ' . encode_base64("\0$user\0$pass", ''));
	like($code // '', qr/^(454|535)$/, 'saslauthd down: AUTH fails') or diag $text;
}

$t->stop;
done_testing;
