#!/usr/bin/perl
# restrict_client.t - Postfix's built-in client restrictions, without a
# DNS server (the DNS cases, temporary failures included: restrict_dns.t):
# permit_mynetworks with mynetworks as networks, addresses, "!" negation,
# a cidr: table, a /file and a host name, and its default (loopback plus
# mynetworks_style); permit_inet_interfaces; permit_sasl_authenticated
# (no AUTH yet: says nothing); reject_unknown_client_hostname and
# reject_unknown_reverse_client_hostname with their Postfix replies and
# unknown_client_reject_code.  The client is 127.0.0.1; with
# smtpd_peername_lookup = no it has no name, with it /etc/hosts names it
# localhost.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest;

my $RCPT = 'user@mx.example.test';
my $dir;
BEGIN { $dir = File::Temp::tempdir('restrict-client-XXXXXX', TMPDIR => 1, CLEANUP => 1) }
use File::Temp ();
chmod 0755, $dir;

sub write_file { my ($p, $s) = @_; open my $fh, '>', $p or die "$p: $!"; print $fh $s; close $fh }
write_file("$dir/nets.cidr", "192.0.2.0/24 OK\n127.0.0.0/8 OK\n");
write_file("$dir/nets.list", "# trusted\n192.0.2.0/24\n127.0.0.1 # this machine\n");

my $only = sub { "-o smtpd_client_restrictions=$_[0]" };
my %L = (
	net_in     => $only->('permit_mynetworks,reject') . ' -o mynetworks=127.0.0.0/8',
	net_out    => $only->('permit_mynetworks,reject') . ' -o mynetworks=192.0.2.0/24,[2001:db8::]/32',
	net_addr   => $only->('permit_mynetworks,reject') . ' -o mynetworks=192.0.2.7,127.0.0.1',
	net_neg    => $only->('permit_mynetworks,reject') . ' -o mynetworks=!127.0.0.1,127.0.0.0/8',
	net_cidr   => $only->('permit_mynetworks,reject') . " -o mynetworks=cidr:$dir/nets.cidr",
	net_file   => $only->('permit_mynetworks,reject') . " -o mynetworks=$dir/nets.list",
	net_name   => $only->('permit_mynetworks,reject') . ' -o mynetworks=localhost'
		      . ' -o smtpd_peername_lookup=yes',
	net_noname => $only->('permit_mynetworks,reject') . ' -o mynetworks=localhost',
	net_dflt   => $only->('permit_mynetworks,reject'),
	net_style  => $only->('permit_mynetworks,reject') . ' -o mynetworks_style=class',
	ifaces     => $only->('permit_inet_interfaces,reject'),
	ifaces_lo  => $only->('permit_inet_interfaces,reject') . ' -o inet_interfaces=192.0.2.1',
	sasl       => $only->('permit_sasl_authenticated,reject'),
	unk        => $only->('reject_unknown_client_hostname'),
	unk_old    => $only->('reject_unknown_client'),
	unk_550    => $only->('reject_unknown_client_hostname') . ' -o unknown_client_reject_code=550',
	unk_rev    => $only->('reject_unknown_reverse_client_hostname'),
	unk_rev550 => $only->('reject_unknown_reverse_client_hostname') . ' -o unknown_client_reject_code=550',
	known      => $only->('reject_unknown_client_hostname,reject_unknown_reverse_client_hostname')
		      . ' -o smtpd_peername_lookup=yes -o unknown_client_reject_code=550',
	nodelay    => $only->('reject_unknown_client_hostname') . ' -o smtpd_delay_reject=no',
);
my $t = SluiceTest->new(main => { smtpd_peername_lookup => 'no',
				  local_recipient_maps => '',
				  smtpd_soft_error_limit => 1000,
				  smtpd_hard_error_limit => 1000 },
			listeners => \%L);

# The reply to RCPT (or to the first step that fails before it).
sub rcpt_reply {
	my ($listener) = @_;
	my $c = $t->smtp($listener);
	my @r = $c->read_reply;
	for my $cmd ('EHLO client.example.org', 'MAIL FROM:<sender@example.org>',
		     "RCPT TO:<$RCPT>") {
		last unless defined $r[0] && $r[0] =~ /^2/;
		@r = $c->cmd($cmd);
	}
	$c->cmd('QUIT');
	$c->close;
	my $text = $r[1] // '';
	$text =~ s/\n.*//s;
	return $text;
}

sub rcpt_is {
	my ($listener, $want, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is(rcpt_reply($listener), $want, $name);
}

my $OK = '250 2.1.5 Ok';
my $DENIED = '554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied';

# ---- permit_mynetworks ----------------------------------------------------

rcpt_is('net_in', $OK, 'permit_mynetworks: 127.0.0.1 in 127.0.0.0/8 is permitted');
rcpt_is('net_out', $DENIED, 'permit_mynetworks: a client outside mynetworks goes on to reject');
rcpt_is('net_addr', $OK, 'permit_mynetworks: a bare address matches itself');
rcpt_is('net_neg', $DENIED, 'permit_mynetworks: "!127.0.0.1" before 127.0.0.0/8 excludes it');
rcpt_is('net_cidr', $OK, 'permit_mynetworks: a cidr: table in mynetworks');
rcpt_is('net_file', $OK, 'permit_mynetworks: a /file/name of networks, with comments');
rcpt_is('net_name', $OK, 'permit_mynetworks: a host name matches the verified client name');
rcpt_is('net_noname', $DENIED, 'permit_mynetworks: ... and never a client without one');
rcpt_is('net_dflt', $OK, 'permit_mynetworks: mynetworks unset: loopback is trusted');
rcpt_is('net_style', $OK, 'permit_mynetworks: mynetworks_style = class keeps loopback');

# ---- permit_inet_interfaces, permit_sasl_authenticated ----------------------

rcpt_is('ifaces', $OK, 'permit_inet_interfaces: 127.0.0.1 is one of this machine\'s addresses');
rcpt_is('ifaces_lo', $DENIED, 'permit_inet_interfaces: not when inet_interfaces names others');
rcpt_is('sasl', $DENIED, 'permit_sasl_authenticated: says nothing without AUTH');

# ---- unknown client names ---------------------------------------------------

rcpt_is('unk', '450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.1]',
	'reject_unknown_client_hostname: no name -> 450 4.7.25, Postfix text');
rcpt_is('unk_old', '450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.1]',
	'reject_unknown_client is its old name');
rcpt_is('unk_550', '550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.1]',
	'unknown_client_reject_code = 550 (no lookup at all: a permanent cause)');
rcpt_is('unk_rev', '450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.1]',
	'reject_unknown_reverse_client_hostname: 450 4.7.1');
rcpt_is('unk_rev550', '550 5.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.1]',
	'... with unknown_client_reject_code = 550');
rcpt_is('known', $OK, 'a client with a verified name (localhost) passes both');

{
	my $mark = $t->log_mark;
	my $c = $t->smtp('nodelay');
	my ($code, $text) = $c->read_reply;
	like($text, qr/^4\d\d 4\.7\.25 /,
	     'smtpd_delay_reject = no: the client restrictions answer at connect');
	ok($t->wait_log(qr/reject: CONNECT from unknown\[127\.0\.0\.1\]: 450 4\.7\.25 Client host rejected: cannot find your hostname, \[127\.0\.0\.1\]/,
			10, from => $mark),
	   '... with the restriction\'s reply in the log');
	$c->close;
}

like($t->log_text, qr/NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 450 4\.7\.25 Client host rejected: cannot find your hostname, \[127\.0\.0\.1\]; from=<sender\@example\.org> to=<user\@mx\.example\.test> proto=ESMTP helo=<client\.example\.org>/,
     'the reject is logged as Postfix does');

done_testing;
