#!/usr/bin/perl
# smtp_peername.t - the client's host name, as Postfix determines it: a
# PTR lookup, then a forward lookup that must lead back to the address
# (c-ares, asynchronous, /etc/hosts first).  A real DNS server (dnsmasq,
# on a free loopback port, given to sluice through dns_servers) serves a
# confirmed name for 127.0.0.3 and an unconfirmed one for 127.0.0.2.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use SluiceTest qw(wait_until);
use DnsTest qw(start_dnsmasq);

my $dns_port = start_dnsmasq(
	     '--ptr-record=2.0.0.127.in-addr.arpa,liar.example.test',
	     '--ptr-record=3.0.0.127.in-addr.arpa,good.example.test',
	     '--host-record=good.example.test,127.0.0.3',
	     '--host-record=liar.example.test,192.0.2.99');
ok($dns_port, 'dnsmasq listens');

my $t = SluiceTest->new(main => { dns_servers => "127.0.0.1:$dns_port" });

sub banner_from {
	my ($local) = @_;
	my $mark = $t->log_mark;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port,
				      LocalAddr => $local, Timeout => 10)
		or die "connect from $local: $!";
	my $banner = <$s>;
	print $s "QUIT\r\n";
	<$s>;
	close $s;
	return ($banner, $mark);
}

my ($banner, $mark) = banner_from('127.0.0.1');
like($banner, qr/^220 /, 'greeted');
ok($t->wait_log(qr/connect from localhost\[127\.0\.0\.1\]/, 10, from => $mark),
   '127.0.0.1 is localhost[127.0.0.1], from /etc/hosts');

($banner, $mark) = banner_from('127.0.0.3');
ok($t->wait_log(qr/connect from good\.example\.test\[127\.0\.0\.3\]/, 10, from => $mark),
   'a PTR name whose A record leads back is the client name');

($banner, $mark) = banner_from('127.0.0.2');
ok($t->wait_log(qr/warning: hostname liar\.example\.test does not resolve to address 127\.0\.0\.2/,
		10, from => $mark),
   'a PTR name that does not lead back is logged as Postfix does');
ok($t->wait_log(qr/connect from unknown\[127\.0\.0\.2\]/, 10, from => $mark),
   '... and the client is unknown');

$t->set_main(smtpd_peername_lookup => 'no');
$t->reload;
($banner, $mark) = banner_from('127.0.0.3');
ok($t->wait_log(qr/connect from unknown\[127\.0\.0\.3\]/, 10, from => $mark),
   'smtpd_peername_lookup = no: no lookup, unknown');

done_testing;
