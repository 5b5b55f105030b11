#!/usr/bin/perl
# rbl_dnsbl.t - the bundled rbl plugin (filters/rbl), loaded without
# being named (sluice_builtin_plugins), against a real DNSBL server:
# rbldnsd on a free loopback port, serving an ip4set zone (test.rbl, a
# DNSWL dnswl.test) and a dnset zone (dbl.test) with TXT reasons, given to
# sluice as its only DNS server (dns_servers = 127.0.0.1:PORT).  Clients
# connect from 127.0.0.X, outside mynetworks = 127.0.0.1/32.
#
# Asserted, as a user of Postfix would check them: the exact reply and
# the NOQUEUE reject log line of a listed client; an unlisted client
# accepted; a listing without TXT; the "=" filter on the answer address
# (ip_match syntax); reject_rhsbl_sender, reject_rhsbl_helo and
# reject_rhsbl_client (the client's verified name, through dnsmasq in
# front of rbldnsd); permit_dnswl_client permitting, and never opening a
# relay; rbl_reply_maps and maps_rbl_reject_code; one query per session
# (rbldnsd's query log); a DNS server that never answers (the session
# goes on after sluice_smtpd_dns_timeout, with Postfix's warning); and
# `sluice explain` showing the query and its answer.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time);
use SluiceTest qw(wait_until free_port);
use DnsTest qw(start_dnsmasq silent_udp_port);

my $RBLDNSD = '/usr/sbin/rbldnsd';
BAIL_OUT('rbldnsd is not installed (scripts/install-deps)') unless -x $RBLDNSD;

# ---- rbldnsd ------------------------------------------------------------------

my $t = SluiceTest->new(start => 0);
my $d = $t->dir;
mkdir "$d/rbl";
chmod 0777, "$d/rbl";          # rbldnsd runs as nobody and writes its log here
sub zone {
	my ($name, $text) = @_;
	open my $fh, '>', "$d/rbl/$name" or die "$name: $!";
	print $fh $text;
	close $fh;
	chmod 0644, "$d/rbl/$name";
}
zone('test.rbl', <<'EOF');
:127.0.0.2:Listed in test.rbl, see http://test.rbl/?$
127.0.0.2
127.0.0.3 :127.0.0.3:
127.0.0.5 :127.0.0.10:Code ten for $
127.0.0.6
EOF
zone('test6.rbl', <<'EOF');
:127.0.0.2:IPv6 listed
2001:db8::1/128
EOF
zone('dnswl.test', <<'EOF');
:127.0.0.2:whitelisted
127.0.0.6
EOF
zone('dbl.test', <<'EOF');
:127.0.0.2:Domain is listed
evil.test
.spam.test
EOF

my %rbldnsd;    # pid => starter's pid
sub start_rbldnsd {
	my $port = free_port();
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open STDOUT, '>>', "$d/rbl/rbldnsd.out";
		open STDERR, '>&', \*STDOUT;
		exec $RBLDNSD, '-n', '-u', 'nobody', '-b', "127.0.0.1/$port",
		     '-w', "$d/rbl", '-l', "+$d/rbl/queries", '-t', '1',
		     'test.rbl:ip4set:test.rbl', 'test.rbl:ip6trie:test6.rbl',
		     'dnswl.test:ip4set:dnswl.test',
		     'dbl.test:dnset:dbl.test';
		die "exec rbldnsd: $!";
	}
	$rbldnsd{$pid} = $$;
	my $up = wait_until(sub {
		!IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
				       Proto => 'udp') }, 10);
	return $up ? $port : undef;
}
END {
	local $?;
	for my $pid (grep { $rbldnsd{$_} == $$ } keys %rbldnsd) {
		kill 'TERM', $pid;
		waitpid $pid, 0;
	}
}
my $rbl_port = start_rbldnsd();
ok($rbl_port, 'rbldnsd listens') or BAIL_OUT('no rbldnsd: ' . (SluiceTest::slurp("$d/rbl/rbldnsd.out") // ''));

# How many times rbldnsd was asked for `name` (type A).
sub queries {
	my ($name) = @_;
	my $log = SluiceTest::slurp("$d/rbl/queries") // '';
	return scalar(() = $log =~ /^\S+ \S+ \Q$name\E A IN:/mg);
}

# ---- sluice -------------------------------------------------------------------

$t->write_file('rbl_reply', <<'EOF');
test.rbl	550 5.7.2 Go away, $client_address (${rbl_reason?$rbl_reason}${rbl_reason:no reason})
EOF
my %L = (
	rbl    => '-o smtpd_client_restrictions=reject_rbl_client,test.rbl',
	eq     => '-o smtpd_client_restrictions=reject_rbl_client,test.rbl=127.0.0.[3..11]',
	eqone  => '-o smtpd_client_restrictions=reject_rbl_client,test.rbl=127.0.0.10',
	eqlist => '-o smtpd_client_restrictions=reject_rbl_client,test.rbl=127.0.[0;1].[3;10..11]',
	eqbad  => '-o smtpd_client_restrictions=reject_rbl_client,test.rbl=127.0.0',
	sender => '-o smtpd_sender_restrictions=reject_rhsbl_sender,dbl.test',
	helo   => '-o smtpd_helo_restrictions=reject_rhsbl_helo,dbl.test',
	wl     => '-o smtpd_client_restrictions=permit_dnswl_client,dnswl.test,reject_rbl_client,test.rbl',
	wlrcpt => '-o smtpd_client_restrictions= -o smtpd_relay_restrictions= -o smtpd_recipient_restrictions=permit_dnswl_client,dnswl.test,reject_unauth_destination',
	maps   => "-o smtpd_client_restrictions=reject_rbl_client,test.rbl -o rbl_reply_maps=texthash:$d/rbl_reply",
	code   => '-o smtpd_client_restrictions=reject_rbl_client,test.rbl -o maps_rbl_reject_code=450',
	warn   => '-o smtpd_client_restrictions=warn_if_reject,reject_rbl_client,test.rbl',
);
$t->{listeners} = \%L;
$t->{ports}{$_} //= free_port() for keys %L;
$t->write_master;
$t->set_main(dns_servers => "127.0.0.1:$rbl_port",
	     mynetworks => '127.0.0.1/32',
	     local_recipient_maps => '',
	     sluice_smtpd_dns_timeout => '3s',
	     smtpd_soft_error_limit => 1000,
	     smtpd_hard_error_limit => 1000,
	     smtpd_client_restrictions => 'reject_rbl_client test.rbl',
	     smtpd_sender_restrictions => 'reject_rhsbl_sender dbl.test');
$t->start;

# A session from `local` to a listener: EHLO, MAIL, each RCPT.  Returns
# the replies' texts (first line), from the first that is not 2xx or all.
sub session {
	my (%o) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
					 PeerPort => $o{port} // $t->port($o{listener}),
					 LocalAddr => $o{local}, Proto => 'tcp', Timeout => 10)
		or die "connect from $o{local}: $!";
	my $c = bless { sock => $sock, buf => '', eof => 0, timeout => 20 },
		      'SluiceTest::Client';
	my @out;
	my @r = $c->read_reply;
	for my $cmd ('EHLO ' . ($o{helo} // 'client.example.org'),
		     'MAIL FROM:<' . ($o{from} // 'someone@example.org') . '>',
		     map { "RCPT TO:<$_>" } @{ $o{to} // ['user@mx.example.test'] }) {
		last unless defined $r[0] && $r[0] =~ /^2/;
		@r = $c->cmd($cmd);
		my $text = $r[1] // '';
		$text =~ s/\n.*//s;
		push @out, $text if $cmd =~ /^RCPT/ || $r[0] !~ /^2/;
	}
	$c->cmd('QUIT');
	$c->close;
	return wantarray ? @out : $out[-1];
}

my $OK = '250 2.1.5 Ok';

# ---- reject_rbl_client --------------------------------------------------------

my $mark = $t->log_mark;
is(session(listener => 'rbl', local => '127.0.0.2'),
   '554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using test.rbl; Listed in test.rbl, see http://test.rbl/?127.0.0.2',
   'a listed client: Postfix\'s reply, with the TXT record as the reason');
like($t->wait_log(qr/NOQUEUE: reject: RCPT from/, 10, from => $mark) // '',
     qr/NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.2\]: 554 5\.7\.1 Service unavailable; Client host \[127\.0\.0\.2\] blocked using test\.rbl; Listed in test\.rbl, see http:\/\/test\.rbl\/\?127\.0\.0\.2; from=<someone\@example\.org> to=<user\@mx\.example\.test> proto=ESMTP helo=<client\.example\.org>/,
     '... and Postfix\'s NOQUEUE reject log line');
is(session(listener => 'rbl', local => '127.0.0.4'), $OK, 'an unlisted client is accepted');
is(session(listener => 'rbl', local => '127.0.0.3'),
   '554 5.7.1 Service unavailable; Client host [127.0.0.3] blocked using test.rbl',
   'a listing without TXT record: no "; reason"');

# ---- the = filter ---------------------------------------------------------------

is(session(listener => 'eq', local => '127.0.0.2'), $OK,
   '=127.0.0.[3..11]: an answer 127.0.0.2 does not count');
is(session(listener => 'eq', local => '127.0.0.5'),
   '554 5.7.1 Service unavailable; Client host [127.0.0.5] blocked using test.rbl; Code ten for 127.0.0.5',
   '... an answer 127.0.0.10 does ($rbl_domain without the filter)');
is(session(listener => 'eqone', local => '127.0.0.3'), $OK, '=127.0.0.10: 127.0.0.3 does not match');
like(session(listener => 'eqone', local => '127.0.0.5'), qr/^554 5\.7\.1 .*blocked using test\.rbl;/,
     '... 127.0.0.10 does');

is(session(listener => 'eqlist', local => '127.0.0.2'), $OK, '=127.0.[0;1].[3;10..11]: 127.0.0.2 does not match');
like(session(listener => 'eqlist', local => '127.0.0.5'), qr/^554 5\.7\.1 /, '... 127.0.0.10 does');
like(session(listener => 'eqlist', local => '127.0.0.3'), qr/^554 5\.7\.1 /, '... 127.0.0.3 does');
$mark = $t->log_mark;
is(session(listener => 'eqbad', local => '127.0.0.2'), '451 4.3.5 Server configuration error',
   'a malformed pattern: 451 4.3.5 Server configuration error ...');
like($t->wait_log(qr/bad address pattern/, 10, from => $mark) // '',
     qr/warning: .*reject_rbl_client test\.rbl=127\.0\.0: bad address pattern "127\.0\.0"/,
     '... and a warning saying why');

# ---- RHSBL ---------------------------------------------------------------------

is(session(listener => 'sender', local => '127.0.0.4', from => 'a@evil.test'),
   '554 5.7.1 Service unavailable; Sender address [a@evil.test] blocked using dbl.test; Domain is listed',
   'reject_rhsbl_sender: the sender\'s domain is listed');
like(session(listener => 'sender', local => '127.0.0.4', from => 'b@host.spam.test'),
     qr/^554 5\.7\.1 Service unavailable; Sender address \[b\@host\.spam\.test\] blocked using dbl\.test/,
     '... a wildcard (.spam.test) listing');
is(session(listener => 'sender', local => '127.0.0.4', from => 'a@good.test'), $OK,
   '... an unlisted domain is accepted');
is(session(listener => 'sender', local => '127.0.0.4', from => ''), $OK,
   '... the null sender is not looked up');
is(session(listener => 'helo', local => '127.0.0.4', helo => 'mail.spam.test'),
   '554 5.7.1 Service unavailable; Helo command [mail.spam.test] blocked using dbl.test; Domain is listed',
   'reject_rhsbl_helo');
is(session(listener => 'helo', local => '127.0.0.4', helo => '[127.0.0.4]'), $OK,
   '... an address literal is not looked up');

# ---- permit_dnswl_client ----------------------------------------------------------

$mark = $t->log_mark;
is(session(listener => 'wl', local => '127.0.0.6'), $OK,
   'permit_dnswl_client: a client on the DNSWL passes a later reject_rbl_client');
like($t->wait_log(qr/listed by dnswl/, 10, from => $mark) // '',
     qr/NOQUEUE: rbl: permit_dnswl_client: Client host \[127\.0\.0\.6\] listed by dnswl\.test$/,
     '... logged at info level');
like(session(listener => 'wl', local => '127.0.0.2'), qr/^554 5\.7\.1 Service unavailable; Client host \[127\.0\.0\.2\]/,
     '... one that is not is still rejected');
is(session(listener => 'wlrcpt', local => '127.0.0.6', to => ['b@example.net']),
   '554 5.7.1 <b@example.net>: Relay access denied',
   '... and a DNSWL never opens a relay (permit_auth_destination safety)');
is(session(listener => 'wlrcpt', local => '127.0.0.6'), $OK,
   '... while it permits a local recipient');

# ---- replies ---------------------------------------------------------------------

is(session(listener => 'maps', local => '127.0.0.2'),
   '550 5.7.2 Go away, 127.0.0.2 (Listed in test.rbl, see http://test.rbl/?127.0.0.2)',
   'rbl_reply_maps: the template for the list, with $client_address');
is(session(listener => 'maps', local => '127.0.0.3'),
   '550 5.7.2 Go away, 127.0.0.3 (no reason)',
   '... ${rbl_reason?...}${rbl_reason:text}: the text when there is no TXT record');
is(session(listener => 'code', local => '127.0.0.2'),
   '450 4.7.1 Service unavailable; Client host [127.0.0.2] blocked using test.rbl; Listed in test.rbl, see http://test.rbl/?127.0.0.2',
   'maps_rbl_reject_code = 450: a temporary reply, 4.7.1');
$mark = $t->log_mark;
is(session(listener => 'warn', local => '127.0.0.2'), $OK, 'warn_if_reject: accepted ...');
like($t->wait_log(qr/reject_warning:/, 10, from => $mark) // '',
     qr/NOQUEUE: reject_warning: RCPT from unknown\[127\.0\.0\.2\]: 554 5\.7\.1 Service unavailable; Client host \[127\.0\.0\.2\] blocked using test\.rbl/,
     '... with the reject_warning log line');

# ---- one query per session ---------------------------------------------------------

{
	my $before = queries('4.0.0.127.test.rbl');
	my @r = session(listener => 'rbl', local => '127.0.0.4',
			to => ['a@mx.example.test', 'b@mx.example.test', 'c@mx.example.test']);
	is_deeply(\@r, [$OK, $OK, $OK], 'three recipients from an unlisted client');
	wait_until(sub { queries('4.0.0.127.test.rbl') > $before }, 5);
	is(queries('4.0.0.127.test.rbl') - $before, 1, '... asked rbldnsd once (the answer is remembered for the session)');
}

# ---- sluice explain ------------------------------------------------------------------

{
	my @svc = ('--service', '127.0.0.1:' . $t->port('rbl'));
	my ($rc, $out) = $t->sluice('explain', @svc, '--client', '127.0.0.2', '--helo', 'client.example.org',
				    '--sender', 'a@example.org', '--recipient', 'user@mx.example.test');
	is($rc, 0, 'sluice explain runs');
	like($out, qr/reject_rbl_client test\.rbl\n\s+query 2\.0\.0\.127\.test\.rbl: A 127\.0\.0\.2; TXT "Listed in test\.rbl, see http:\/\/test\.rbl\/\?127\.0\.0\.2"\n\s+-> REJECT/,
	     '... shows the query, its answer and the verdict');
	like($out, qr/^RCPT: 554 5\.7\.1 Service unavailable; Client host \[127\.0\.0\.2\] blocked using test\.rbl; Listed in test\.rbl/m,
	     '... and the reply');
	($rc, $out) = $t->sluice('explain', @svc, '--client', '127.0.0.4', '--sender', 'a@good.test',
				 '--recipient', 'user@mx.example.test');
	like($out, qr/query 4\.0\.0\.127\.test\.rbl: not listed/, '... an unlisted client: not listed');
	like($out, qr/query good\.test\.dbl\.test: not listed/, '... and the sender\'s domain');
	($rc, $out) = $t->sluice('explain', @svc, '--client', '2001:db8::1',
				 '--recipient', 'user@mx.example.test');
	like($out, qr/query 1\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.8\.b\.d\.0\.1\.0\.0\.2\.test\.rbl: A 127\.0\.0\.2; TXT "IPv6 listed"/,
	     '... an IPv6 client: the address as 32 reversed nibbles (rbldnsd ip6trie)');
	like($out, qr/^RCPT: 554 5\.7\.1 Service unavailable; Client host \[2001:db8::1\] blocked using test\.rbl; IPv6 listed$/m,
	     '... rejected');
}

$t->stop;

# ---- loading ----------------------------------------------------------------------

{
	my ($rc, $out) = $t->sluice('check');
	is($rc, 0, 'sluice check: the rbl restrictions and default_rbl_reply\'s $names are fine unasked')
	    or diag $out;
	$t->set_main(sluice_builtin_plugins => 'access');
	($rc, $out) = $t->sluice('check');
	isnt($rc, 0, 'without the rbl plugin, reject_rbl_client is unknown ...');
	like($out, qr/unknown restriction reject_rbl_client in smtpd_client_restrictions; .*"rbl" plugin/,
	     '... and sluice check names the plugin that provides it');
	$t->set_main(sluice_builtin_plugins => undef);
}

# ---- a resolver in front: client names, and a DNSBL that never answers -------------

my $silent = silent_udp_port();
my $dns_port = start_dnsmasq('--local=/test/', '--local=/0.0.127.in-addr.arpa/',
			     "--server=/test.rbl/127.0.0.1#$rbl_port",
			     "--server=/dbl.test/127.0.0.1#$rbl_port",
			     "--server=/slow.rbl/127.0.0.1#$silent",
			     '--ptr-record=7.0.0.127.in-addr.arpa,host.spam.test',
			     '--host-record=host.spam.test,127.0.0.7',
			     '--ptr-record=8.0.0.127.in-addr.arpa,host.good.test',
			     '--host-record=host.good.test,127.0.0.8');
ok($dns_port, 'dnsmasq listens, forwarding the DNSBL zones to rbldnsd');
my $t2 = SluiceTest->new(main => {
	dns_servers => "127.0.0.1:$dns_port",
	mynetworks => '127.0.0.1/32',
	local_recipient_maps => '',
	sluice_smtpd_dns_timeout => '2s',
	sluice_smtpd_workers => 1 },
	listeners => {
		name => '-o smtpd_client_restrictions=reject_rhsbl_client,dbl.test',
		slow => '-o smtpd_client_restrictions=reject_rbl_client,slow.rbl,reject_rbl_client,test.rbl',
		slowwl => '-o smtpd_client_restrictions=permit_dnswl_client,slow.rbl,reject_rbl_client,test.rbl',
	});

is(session(port => $t2->port('name'), local => '127.0.0.7'),
   '554 5.7.1 Service unavailable; Client host [host.spam.test] blocked using dbl.test; Domain is listed',
   'reject_rhsbl_client: the verified client name is listed');
is(session(port => $t2->port('name'), local => '127.0.0.8'), $OK, '... a name that is not');
is(session(port => $t2->port('name'), local => '127.0.0.9'), $OK, '... an unknown client name is not looked up');

{
	my $mark2 = $t2->log_mark;
	my $start = time;
	my $r = session(port => $t2->port('slow'), local => '127.0.0.4');
	my $took = time - $start;
	is($r, $OK, 'a DNSBL that never answers: no opinion, the next restriction decides');
	cmp_ok($took, '<', 8, '... after sluice_smtpd_dns_timeout, the session is not stuck');
	like($t2->wait_log(qr/RBL lookup error/, 5, from => $mark2) // '',
	     qr/warning: .*4\.0\.0\.127\.slow\.rbl: RBL lookup error: Host or domain name not found\. Name service error for name=4\.0\.0\.127\.slow\.rbl type=A: Host not found, try again/,
	     '... logged as Postfix does');
	like(session(port => $t2->port('slow'), local => '127.0.0.2'),
	     qr/^554 5\.7\.1 Service unavailable; Client host \[127\.0\.0\.2\] blocked using test\.rbl/,
	     '... and the next list still rejects');
	like(session(port => $t2->port('slowwl'), local => '127.0.0.2'),
	     qr/^450 4\.7\.1 <127\.0\.0\.2>: Client host rejected: Service unavailable/,
	     'permit_dnswl_client without an answer: DEFER_IF_REJECT, so a later reject is 450');
}

done_testing;
