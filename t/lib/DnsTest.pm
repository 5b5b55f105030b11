# DnsTest - a real DNS server for the tests that make sluice ask DNS:
# dnsmasq on a free loopback port, given to sluice with dns_servers.
#
#   use DnsTest qw(start_dnsmasq silent_udp_port wire_name);
#   plan skip_all => 'dnsmasq is not installed' unless DnsTest::have_dnsmasq();
#   my $port = start_dnsmasq('--local=/test/',
#                            '--host-record=h.test,192.0.2.1');
#   ok($port, 'dnsmasq listens');
#   ... main.cf: dns_servers = 127.0.0.1:$port
#
# What it promises:
#  - start_dnsmasq(@options) runs dnsmasq in the foreground, answering
#    only from its own records (no resolv.conf, no /etc/hosts), on
#    127.0.0.1 and a free port, with the test's @options (--local=,
#    --host-record=, --mx-host=, --dns-rr=, --server=, ...); it returns
#    the port once dnsmasq has bound it (waiting on the bound socket, 10
#    seconds at the most), or undef when it never did;
#  - silent_udp_port() is the port of a bound UDP socket nobody reads,
#    open until the test ends: "--server=/slow.test/127.0.0.1#PORT" makes
#    the queries for a domain time out;
#  - wire_name('ns.example.test') is a domain name in DNS wire format, as
#    hex, for --dns-rr;
#  - every dnsmasq started here is stopped at END (by the process that
#    started it, never by a forked child), keeping the test's exit status.
package DnsTest;

use strict;
use warnings;

use Exporter qw(import);
use IO::Socket::INET;
use SluiceTest qw(wait_until free_port);

our @EXPORT_OK = qw(start_dnsmasq silent_udp_port wire_name have_dnsmasq);

our $DNSMASQ = '/usr/sbin/dnsmasq';

my %started;    # pid => the pid of the process that started it
my @silent;     # the silent sockets, open until the end

sub have_dnsmasq { -x $DNSMASQ }

sub start_dnsmasq {
	my (@options) = @_;
	my $port = free_port();
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open STDOUT, '>', '/dev/null';
		exec $DNSMASQ, '--keep-in-foreground', '--no-resolv', '--no-hosts',
		     '--bind-interfaces', '--listen-address=127.0.0.1',
		     "--port=$port", '--user=root', '--pid-file', @options;
		die "exec dnsmasq: $!";
	}
	$started{$pid} = $$;
	# dnsmasq is ready when its UDP port is bound: binding it fails then.
	my $up = wait_until(sub {
		!IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
				       Proto => 'udp') }, 10);
	return $up ? $port : undef;
}

sub silent_udp_port {
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
				      Proto => 'udp')
	    or die "silent UDP socket: $!";
	push @silent, $s;
	return $s->sockport;
}

sub wire_name {
	my ($name) = @_;
	return join('', map { sprintf('%02x', length $_) . unpack('H*', $_) }
		    split /\./, $name) . '00';
}

END {
	local $?;       # keep the test's exit status
	for my $pid (grep { $started{$_} == $$ } keys %started) {
		kill 'TERM', $pid;
		waitpid $pid, 0;
	}
}

1;
