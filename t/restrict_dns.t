#!/usr/bin/perl
# restrict_dns.t - the DNS-based built-in restrictions against a real DNS
# server (dnsmasq on a free loopback port, given to sluice through
# dns_servers), asynchronously through c-ares: reject_unknown_helo_
# hostname (A, AAAA or MX), reject_unknown_sender_domain and
# reject_unknown_recipient_domain (MX, then A/AAAA; null MX), and the
# client name checks from client addresses with and without PTR records.
# Two zones fail on purpose: servfail.test is forwarded to a stub that
# answers SERVFAIL, timeout.test to a port where nothing ever answers;
# both are temporary failures, which Postfix reports with 450 ("Host not
# found", "Domain not found") through *_tempfail_action, even where the
# permanent reply code is 550.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time);
use SluiceTest qw(wait_until);
use DnsTest qw(start_dnsmasq silent_udp_port);

# ---- the DNS side ----------------------------------------------------------

# SERVFAIL to every query: the question copied back with RCODE 2.
my $stub = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'udp')
	or die "stub socket: $!";
my $stub_port = $stub->sockport;
my $stub_pid = fork // die "fork: $!";
if ($stub_pid == 0) {
	while (1) {
		my $peer = $stub->recv(my $q, 4096) or next;
		next if length $q < 12;
		my ($id, $f1) = unpack('n C', $q);
		my $p = 12;
		while ($p < length $q) {
			my $l = ord substr($q, $p++, 1);
			last if $l == 0;
			$p += $l;
		}
		$stub->send(pack('n C C n n n n', $id, 0x80 | ($f1 & 0x79), 0x82, 1, 0, 0, 0)
			    . substr($q, 12, $p + 4 - 12), 0, $peer);
	}
}
close $stub;
# A bound UDP socket nobody reads: queries forwarded there never get an answer.
my $silent_port = silent_udp_port();

my $dns_port = start_dnsmasq(
	     '--local=/test/', '--local=/0.0.127.in-addr.arpa/',
	     "--server=/servfail.test/127.0.0.1#$stub_port",
	     "--server=/timeout.test/127.0.0.1#$silent_port",
	     "--server=/7.0.0.127.in-addr.arpa/127.0.0.1#$stub_port",
	     '--host-record=helo.example.test,192.0.2.10',
	     '--host-record=v6only.example.test,2001:db8::10',
	     '--mx-host=mxonly.example.test,mx.mxonly.example.test,10',
	     '--mx-host=mail.example.test,mx.mail.example.test,10',
	     '--host-record=aonly.example.test,192.0.2.20',
	     '--dns-rr=nullmx.example.test,15,000000',
	     '--ptr-record=3.0.0.127.in-addr.arpa,good.example.test',
	     '--host-record=good.example.test,127.0.0.3',
	     '--ptr-record=2.0.0.127.in-addr.arpa,liar.example.test',
	     '--ptr-record=9.0.0.127.in-addr.arpa,host.servfail.test',
	     '--host-record=liar.example.test,192.0.2.99');
END {
	local $?;       # keep the test's exit status
	kill 'TERM', $stub_pid if $stub_pid;
	waitpid $stub_pid, 0 if $stub_pid;
}
ok($dns_port, 'dnsmasq listens');

# ---- sluice -------------------------------------------------------------------

my %L = (
	helo     => '-o smtpd_helo_restrictions=reject_unknown_helo_hostname',
	helo550  => '-o smtpd_helo_restrictions=reject_unknown_helo_hostname -o unknown_hostname_reject_code=550',
	helodefer=> '-o smtpd_helo_restrictions=reject_unknown_helo_hostname'
		    . ' -o unknown_helo_hostname_tempfail_action=defer',
	sender   => '-o smtpd_sender_restrictions=reject_unknown_sender_domain',
	sender550=> '-o smtpd_sender_restrictions=reject_unknown_sender_domain -o unknown_address_reject_code=550',
	sdefer   => '-o smtpd_sender_restrictions=reject_unknown_sender_domain,reject'
		    . ' -o unknown_address_tempfail_action=defer',
	sdip     => '-o smtpd_sender_restrictions=reject_unknown_sender_domain,reject',
	rcpt     => '-o smtpd_recipient_restrictions=reject_unknown_recipient_domain',
	client   => '-o smtpd_client_restrictions=reject_unknown_client_hostname -o unknown_client_reject_code=550',
	reverse  => '-o smtpd_client_restrictions=reject_unknown_reverse_client_hostname -o unknown_client_reject_code=550',
);
my $t = SluiceTest->new(main => {
	dns_servers => "127.0.0.1:$dns_port",
	mynetworks => '127.0.0.0/8',
	local_recipient_maps => '',
	sluice_smtpd_dns_timeout => '3s',
	sluice_smtpd_workers => 1,      # the abandoned check and the next share a loop
	smtpd_soft_error_limit => 1000,
	smtpd_hard_error_limit => 1000 }, listeners => \%L);

# A session from `local` (127.0.0.1 unless told): EHLO, MAIL, RCPT; the
# reply of the first step that is not 250, or RCPT's, and the seconds it
# took.
sub exchange {
	my (%o) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port($o{listener}),
					 LocalAddr => $o{local} // '127.0.0.1', Timeout => 10)
		or die "connect: $!";
	my $c = bless { sock => $sock, buf => '', eof => 0, timeout => 20 }, 'SluiceTest::Client';
	my $start = time;
	my @r = $c->read_reply;
	for my $cmd ('EHLO ' . ($o{helo} // 'helo.example.test'),
		     'MAIL FROM:<' . ($o{from} // 'someone@mail.example.test') . '>',
		     'RCPT TO:<' . ($o{to} // 'user@mx.example.test') . '>') {
		last unless defined $r[0] && $r[0] =~ /^2/;
		@r = $c->cmd($cmd);
	}
	my $took = time - $start;
	$c->cmd('QUIT');
	$c->close;
	my $text = $r[1] // '';
	$text =~ s/\n.*//s;
	return wantarray ? ($text, $took) : $text;
}

my $OK = '250 2.1.5 Ok';

# ---- reject_unknown_helo_hostname ------------------------------------------------

is(exchange(listener => 'helo'), $OK, 'helo: a name with an A record');
is(exchange(listener => 'helo', helo => 'v6only.example.test'), $OK, 'helo: a name with only AAAA');
is(exchange(listener => 'helo', helo => 'mxonly.example.test'), $OK, 'helo: a name with only MX');
is(exchange(listener => 'helo', helo => 'nullmx.example.test'), $OK, 'helo: a null MX counts (MTA names may have one)');
is(exchange(listener => 'helo', helo => 'nosuch.example.test'),
   '450 4.7.1 <nosuch.example.test>: Helo command rejected: Host not found',
   'helo: no such name -> 450 4.7.1 Host not found');
is(exchange(listener => 'helo', helo => 'bad!name.example.test'),
   '450 4.7.1 <bad!name.example.test>: Helo command rejected: Host not found',
   'helo: a name that is no host name is not found (never asked)');
is(exchange(listener => 'helo', helo => 'helo.example.test.'), $OK, 'helo: a trailing dot is fine');
is(exchange(listener => 'helo550', helo => 'nosuch.example.test'),
   '550 5.7.1 <nosuch.example.test>: Helo command rejected: Host not found',
   'helo: unknown_hostname_reject_code = 550');
is(exchange(listener => 'helo550', helo => 'x.servfail.test'),
   '450 4.7.1 <x.servfail.test>: Helo command rejected: Host not found',
   'helo: SERVFAIL is temporary: 450 even with code 550 (defer_if_permit)');
{
	my ($text, $took) = exchange(listener => 'helo550', helo => 'x.timeout.test');
	is($text, '450 4.7.1 <x.timeout.test>: Helo command rejected: Host not found',
	   'helo: a server that never answers is a temporary failure');
	cmp_ok($took, '<', 12, '... after sluice_smtpd_dns_timeout, not c-ares\' retries');
}
{
	my $c = $t->smtp('helodefer');
	$c->read_reply;
	$c->cmd('EHLO x.servfail.test');
	my ($code, $text) = $c->cmd('MAIL FROM:<a@mail.example.test>');
	is($code, '250', 'helo: tempfail_action = defer ...');
	($code, $text) = $c->cmd('RCPT TO:<user@mx.example.test>');
	is($text, '450 4.7.1 <x.servfail.test>: Helo command rejected: Host not found',
	   '... defers at once');
	$c->close;
}

# ---- reject_unknown_sender_domain --------------------------------------------------

is(exchange(listener => 'sender'), $OK, 'sender: a domain with MX');
is(exchange(listener => 'sender', from => 'a@aonly.example.test'), $OK, 'sender: a domain with only A');
is(exchange(listener => 'sender', from => 'a@v6only.example.test'), $OK, 'sender: a domain with only AAAA');
is(exchange(listener => 'sender', from => 'a@nosuch.example.test'),
   '450 4.1.8 <a@nosuch.example.test>: Sender address rejected: Domain not found',
   'sender: no such domain -> 450 4.1.8 Domain not found');
is(exchange(listener => 'sender550', from => 'a@nosuch.example.test'),
   '550 5.1.8 <a@nosuch.example.test>: Sender address rejected: Domain not found',
   'sender: unknown_address_reject_code = 550 -> 5.1.8');
is(exchange(listener => 'sender', from => 'a@nullmx.example.test'),
   '550 5.7.27 <a@nullmx.example.test>: Sender address rejected: Domain nullmx.example.test does not accept mail (nullMX)',
   'sender: a null MX domain -> 550 5.7.27 (nullMX)');
is(exchange(listener => 'sender550', from => 'a@x.servfail.test'),
   '450 4.1.8 <a@x.servfail.test>: Sender address rejected: Domain not found',
   'sender: SERVFAIL -> 450 4.1.8 even with code 550');
is(exchange(listener => 'sdip', from => 'a@x.servfail.test'),
   '554 5.7.1 <a@x.servfail.test>: Sender address rejected: Access denied',
   'sender: defer_if_permit only turns a permit into 450: a later reject stays a reject');
is(exchange(listener => 'sdip', from => 'a@mail.example.test'),
   '554 5.7.1 <a@mail.example.test>: Sender address rejected: Access denied',
   '... as for a domain that exists');
is(exchange(listener => 'sdefer', from => 'a@x.servfail.test'),
   '450 4.1.8 <a@x.servfail.test>: Sender address rejected: Domain not found',
   'sender: unknown_address_tempfail_action = defer');
is(exchange(listener => 'sender', from => 'a@mx.example.test'), $OK,
   'sender: a local domain is not looked up');

# ---- reject_unknown_recipient_domain ----------------------------------------------

is(exchange(listener => 'rcpt', to => 'b@mail.example.test'), $OK, 'recipient: a domain with MX');
is(exchange(listener => 'rcpt', to => 'b@nosuch.example.test'),
   '450 4.1.2 <b@nosuch.example.test>: Recipient address rejected: Domain not found',
   'recipient: no such domain -> 450 4.1.2');
is(exchange(listener => 'rcpt', to => 'b@nullmx.example.test'),
   '556 5.1.10 <b@nullmx.example.test>: Recipient address rejected: Domain nullmx.example.test does not accept mail (nullMX)',
   'recipient: a null MX domain -> 556 5.1.10');
is(exchange(listener => 'rcpt', to => 'b@x.timeout.test'),
   '450 4.1.2 <b@x.timeout.test>: Recipient address rejected: Domain not found',
   'recipient: no answer -> 450 4.1.2');

# ---- the client's names -------------------------------------------------------------

is(exchange(listener => 'client', local => '127.0.0.3'), $OK,
   'client: a PTR name that leads back is verified');
is(exchange(listener => 'client', local => '127.0.0.2'),
   '550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.2]',
   'client: a PTR name that does not lead back -> unknown_client_reject_code');
is(exchange(listener => 'client', local => '127.0.0.8'),
   '550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.8]',
   'client: no PTR record -> unknown_client_reject_code');
is(exchange(listener => 'client', local => '127.0.0.7'),
   '450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.7]',
   'client: PTR lookup SERVFAIL -> 450 even with code 550');
is(exchange(listener => 'client', local => '127.0.0.9'),
   '450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.9]',
   'client: a PTR name whose A lookup fails (SERVFAIL) -> 450');
is(exchange(listener => 'reverse', local => '127.0.0.2'), $OK,
   'reverse: any PTR name will do');
is(exchange(listener => 'reverse', local => '127.0.0.8'),
   '550 5.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.8]',
   'reverse: no PTR record -> 550 5.7.1');
is(exchange(listener => 'reverse', local => '127.0.0.7'),
   '450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.7]',
   'reverse: PTR SERVFAIL -> 450 4.7.1');

# A client that leaves while its check waits on DNS: the lookup is
# cancelled, nothing is resumed on the freed session.
{
	my $mark = $t->log_mark;
	my $c = $t->smtp('rcpt');
	$c->read_reply;
	$c->cmd('EHLO helo.example.test');
	$c->cmd('MAIL FROM:<a@mail.example.test>');
	$c->send_line('RCPT TO:<b@y.timeout.test>');
	$c->close;
	ok($t->wait_log(qr/disconnect from \S+/, 10, from => $mark),
	   'a client leaves while its recipient domain is looked up');
	# a check that outlasts the abandoned one's timer
	my ($text, $took) = exchange(listener => 'rcpt', to => 'b@z.timeout.test');
	like($text, qr/^450 4\.1\.2 /, '... the server goes on answering');
}

unlike($t->log_text, qr/killed by signal|panic/, 'no worker crashed');

done_testing;
