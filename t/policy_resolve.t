#!/usr/bin/perl
# policy_resolve.t - check_policy_service inet:NAME:PORT resolves NAME
# with the worker's asynchronous resolver (dns_servers, c-ares), not a
# blocking getaddrinfo: a name only the test's own DNS server (dnsmasq
# on a free loopback port) knows reaches the policy server; a name with
# an unreachable address first falls over to the next one; a name that
# does not exist gives the default action, logged as Postfix does
# ("connect to NAME:PORT: ..."); while one session waits for the
# resolver, another session of the same single worker is served.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use SluiceTest qw(wait_until free_port);
use DnsTest qw(start_dnsmasq silent_udp_port);

BAIL_OUT('dnsmasq is not installed: run scripts/install-deps') unless -x '/usr/sbin/dnsmasq';

# ---- dnsmasq: policy.test -> 127.0.0.1; two.test -> 127.0.0.2 (nobody
# listens there) and 127.0.0.1, in an order dnsmasq rotates; slow.test is
# forwarded to a "server" that never answers (a UDP socket of this
# test) ----
my $dns_port = start_dnsmasq(
	     '--local=/test/', '--server=/slow.test/127.0.0.1#' . silent_udp_port(),
	     '--host-record=policy.test,127.0.0.1',
	     '--host-record=two.test,127.0.0.2', '--host-record=two.test,127.0.0.1');
ok($dns_port, 'dnsmasq listens');

# ---- a policy server answering REJECT with a marker ----
my $pport = free_port();
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $pport,
			      Listen => 16, ReuseAddr => 1) or die "listen: $!";
my $ppid = fork // die;
if ($ppid == 0) {
	SluiceTest::die_with_parent();
	$SIG{CHLD} = 'IGNORE';
	while (1) {
		my $s = $l->accept or next;
		next if fork;
		$s->autoflush(1);
		while (defined(my $line = <$s>)) {
			print $s "action=REJECT asked the policy server\n\n" if $line eq "\n";
		}
		POSIX::_exit(0);
	}
}
close $l;
END { kill 'TERM', $ppid if $ppid }

my $t = SluiceTest->new(main => {
	dns_servers => "127.0.0.1:$dns_port",
	smtpd_peername_lookup => 'no',
	sluice_smtpd_workers => 1,
	mynetworks => '127.0.0.0/8',
	smtpd_policy_service_try_limit => 1,
	smtpd_restriction_classes => 'pol_named, pol_two, pol_nosuch, pol_slow',
	pol_named => "check_policy_service inet:policy.test:$pport",
	pol_two => "check_policy_service { inet:two.test:$pport, max_idle=0 }",
	pol_nosuch => "check_policy_service { inet:nosuch.test:$pport, { default_action = 450 4.7.0 no policy } }",
	pol_slow => "check_policy_service { inet:slow.test:$pport, timeout=3s, { default_action = 451 4.3.5 resolver too slow } }",
}, listeners => {
	named => '-o smtpd_recipient_restrictions=pol_named',
	two => '-o smtpd_recipient_restrictions=pol_two',
	nosuch => '-o smtpd_recipient_restrictions=pol_nosuch',
	slow => '-o smtpd_recipient_restrictions=pol_slow',
});

sub rcpt_reply {
	my ($c, $addr) = @_;
	$c->cmd('MAIL FROM:<s@example.org>');
	return ($c->cmd("RCPT TO:<$addr>"))[1] // 'no reply';
}

{
	my $c = $t->smtp('named');
	$c->hello('client.example');
	is(rcpt_reply($c, 'a@example.net'),
	   '554 5.7.1 <a@example.net>: Recipient address rejected: asked the policy server',
	   'a host name known only to dns_servers reaches the policy server (the async resolver)');
}
{
	# max_idle=0: each request opens (and resolves) anew; dnsmasq rotates
	# the two addresses, so about half of them start with the dead one
	my $c = $t->smtp('two');
	$c->hello('client.example');
	my @got = map { rcpt_reply($c, "a$_\@example.net") =~ /asked the policy server/ ? 1 : 0 } 1 .. 8;
	is_deeply(\@got, [(1) x 8],
	   'a name whose first address refuses: the next address answers (8 of 8)');
}
{
	my $mark = $t->log_mark;
	my $c = $t->smtp('nosuch');
	$c->hello('client.example');
	is(rcpt_reply($c, 'a@example.net'),
	   '450 4.7.0 <a@example.net>: Recipient address rejected: no policy',
	   'a name that does not resolve: the default action');
	ok($t->wait_log(qr/warning: connect to nosuch\.test:$pport: Name or service not known/, 5, from => $mark),
	   '... logged as a failed connect') or diag $t->log_text($mark);
}
{
	use Time::HiRes qw(time);
	my $a = $t->smtp('slow');
	$a->hello('client.example');
	$a->cmd('MAIL FROM:<s@example.org>');
	my $t0 = time;
	$a->send_line('RCPT TO:<a@example.net>');	# waits for the resolver
	my $b = $t->smtp('named');
	$b->hello('client.example');
	is(rcpt_reply($b, 'b@example.net'),
	   '554 5.7.1 <b@example.net>: Recipient address rejected: asked the policy server',
	   'while one session waits for the resolver, the worker serves another');
	ok(time - $t0 < 2.5, '... at once') or diag time - $t0;
	my (undef, $text) = $a->read_reply(10);
	is($text, '451 4.3.5 <a@example.net>: Recipient address rejected: resolver too slow',
	   'the waiting session gets the default action after the timeout');
	ok(time - $t0 >= 2.5, '... after the service timeout (3s)');
}

done_testing;
