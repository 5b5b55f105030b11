#!/usr/bin/perl
# anvil_auth_rate.t - smtpd_client_auth_rate_limit is counted in anvil,
# shared by all workers, as Postfix's anvil counts it for all its smtpd
# processes: with two workers and connections spread over both, a client
# gets the limit in total, not once per worker.  Also: the count is per
# service (another listener starts at 0), smtpd_client_event_limit_exceptions
# exempts a client, and the rate warning has Postfix's shape.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use MIME::Base64 qw(encode_base64);
use SluiceTest;

my $sasl = File::Temp::tempdir('anvil-auth-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $sasl;
sub write_file { my ($p, $s) = @_; open my $fh, '>', $p or die "$p: $!"; print $fh $s; close $fh }

write_file("$sasl/smtpd.conf", "pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
	   . "sasldb_path: $sasl/sasldb2\nmech_list: PLAIN LOGIN\n");
open my $pw, '|-', 'saslpasswd2', '-f', "$sasl/sasldb2", '-u', 'mx.example.test', '-p', '-c', 'alice'
    or die "saslpasswd2: $!";
print $pw 'wonderland';
close $pw or die "saslpasswd2 failed: $?";
chmod 0644, "$sasl/sasldb2";

my $LIMIT = 4;
my $t = SluiceTest->new(main => {
	smtpd_peername_lookup => 'no',
	smtpd_sasl_auth_enable => 'yes',
	smtpd_sasl_type => 'cyrus',
	smtpd_sasl_path => 'smtpd',
	cyrus_sasl_config_path => $sasl,
	smtpd_tls_auth_only => 'no',
	smtpd_soft_error_limit => 1000,
	smtpd_hard_error_limit => 1000,
	smtpd_client_auth_rate_limit => $LIMIT,
	smtpd_client_event_limit_exceptions => '',
	anvil_rate_time_unit => '1h',
	sluice_smtpd_workers => 2,
}, listeners => {
	smtp => '',
	other => '',
	exempt => '-o smtpd_client_event_limit_exceptions=127.0.0.0/8',
});

sub b64 { encode_base64($_[0], '') }

# Open connections (kept open) until two different workers have
# answered: each worker logs "connect from" under its own pid.
my (@conns, %pid_of);
for my $i (1 .. 40) {
	my $mark = $t->log_mark;
	my $c = $t->smtp('smtp');
	$c->hello;
	my $line = $t->wait_log(qr/\[\d+\]: connect from /, 10, from => $mark);
	my ($pid) = ($line // '') =~ /\[(\d+)\]: connect from /;
	push @conns, [$c, $pid // 0];
	$pid_of{$pid // 0}++;
	last if keys %pid_of >= 2 && @conns >= $LIMIT + 2;
}
my @pids = grep { $_ } keys %pid_of;
ok(@pids >= 2, 'the connections were spread over two workers')
    or diag "workers: @pids";

# One AUTH per connection, alternating workers: the limit holds in total.
my %by;
push @{ $by{$_->[1]} }, $_->[0] for @conns;
my @rr;
while (grep { @$_ } values %by) {
	push @rr, shift @{ $by{$_} } for grep { @{ $by{$_} } } sort keys %by;
}
my $mark = $t->log_mark;
for my $i (0 .. $LIMIT + 1) {
	my ($code, $text) = $rr[$i]->cmd('AUTH PLAIN ' . b64("\0alice\0bad$i"));
	if ($i < $LIMIT) {
		is($code, 535, "AUTH " . ($i + 1) . " of $LIMIT (on any worker) is answered by the backend: 535");
	} else {
		is($text, "450 4.7.1 Error: too many AUTH commands from 127.0.0.1",
		   "AUTH " . ($i + 1) . ": over the limit across workers: 450 4.7.1");
	}
}
ok($t->wait_log(qr/warning: AUTH command rate limit exceeded: ${\($LIMIT + 1)} from unknown\[127\.0\.0\.1\] for service \S+/, 10, from => $mark),
   'the warning counts the AUTH commands of both workers') or diag $t->log_text($mark);

{
	my $c = $t->smtp('smtp');
	$c->hello;
	my ($code, $text) = $c->cmd('AUTH PLAIN ' . b64("\0alice\0wonderland"));
	is($code, 450, 'a new connection is still over the limit, even with the right password');
}
{
	my $c = $t->smtp('other');
	$c->hello;
	my ($code, $text) = $c->cmd('AUTH PLAIN ' . b64("\0alice\0wonderland"));
	is($code, 235, 'another service counts apart (Postfix counts per service)') or diag $text;
}
{
	my $c = $t->smtp('exempt');
	$c->hello;
	my @got = map { ($c->cmd('AUTH PLAIN ' . b64("\0alice\0bad$_")))[0] } 1 .. $LIMIT + 2;
	is_deeply(\@got, [(535) x ($LIMIT + 2)], 'smtpd_client_event_limit_exceptions is not limited');
}

done_testing;
