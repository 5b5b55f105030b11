#!/usr/bin/perl
# SPF with the real postfix-policyd-spf-python behind check_policy_service,
# run the way Postfix runs it - one policyd-spf process per connection on
# a unix socket (Postfix's spawn(8); here socat's fork, as an admin
# without Postfix's master would run it; docs/policy.md) - against a
# local DNS server (dnsmasq) publishing the SPF records:
#   pass.test  v=spf1 ip4:127.0.0.1 -all   -> accepted, Received-SPF: Pass
#   fail.test  v=spf1 ip4:192.0.2.1 -all   -> 550 5.7.23 rejected
#   soft.test  v=spf1 ip4:192.0.2.1 ~all   -> accepted, Received-SPF: Softfail
# policyd-spf reads /etc/resolv.conf (pydns, port 53): it runs in a mount
# namespace of its own where a resolv.conf written by the test names the
# dnsmasq, which listens on port 53 of a loopback address of its own, so
# neither the host's resolver nor other tests are touched.  Needs root
# (port 53, the mount namespace), as the test suite runs.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use IO::Socket::UNIX;
use SluiceTest qw(wait_until);

my $spf = '/usr/bin/policyd-spf';
BAIL_OUT("policyd-spf is not installed: run scripts/install-deps") unless -x $spf;
BAIL_OUT("socat is not installed: run scripts/install-deps") unless -x '/usr/bin/socat';
BAIL_OUT("this test needs root (DNS on port 53, a mount namespace)") unless $< == 0;

my $dir = tempdir('spf-test-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{SLUICE_KEEP_TMP});
chmod 0755, $dir;
my $dns_ip = sprintf '127.53.%d.%d', $$ % 250 + 1, int(rand 250) + 1;
my @pids;
END {
	local $?;
	kill 'TERM', @pids if @pids;
	waitpid $_, 0 for @pids;
}

sub spawn {
	my (@cmd) = @_;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		SluiceTest::die_with_parent();
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', "$dir/peers.log";
		open STDERR, '>&', \*STDOUT;
		exec @cmd or POSIX::_exit(127);
	}
	push @pids, $pid;
	return $pid;
}

sub write_file {
	my ($name, $text) = @_;
	open my $fh, '>', "$dir/$name" or die "$dir/$name: $!";
	print $fh $text;
	close $fh;
	return "$dir/$name";
}

# ---- DNS -------------------------------------------------------------------------

spawn('/usr/sbin/dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts',
      '--bind-interfaces', "--listen-address=$dns_ip", '--port=53',
      '--user=root', '--pid-file', '--local=/test/',
      '--local=/in-addr.arpa/',
      '--txt-record=pass.test,v=spf1 ip4:127.0.0.1 -all',
      '--txt-record=fail.test,v=spf1 ip4:192.0.2.1 -all',
      '--txt-record=soft.test,v=spf1 ip4:192.0.2.1 ~all');
ok(wait_until(sub { !IO::Socket::INET->new(LocalAddr => $dns_ip, LocalPort => 53,
					   Proto => 'udp') }, 10),
   "dnsmasq listens on $dns_ip:53") or BAIL_OUT(`cat $dir/peers.log`);

# ---- policyd-spf, one process per connection on a unix socket ---------------------

my $resolv = write_file('resolv.conf', "nameserver $dns_ip\n");
my $conf = write_file('policyd-spf.conf', <<'EOF');
debugLevel = 1
TestOnly = 1
HELO_reject = Fail
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = False
skip_addresses = 192.0.2.255/32
EOF
# ---- sluice, with Postfix's recipe: unix:private/policyd-spf --------------------------

my $t = SluiceTest->new(main => {
	local_recipient_maps => '',
	mynetworks => '192.0.2.0/32',
	smtpd_recipient_restrictions =>
	    "reject_unauth_destination, check_policy_service unix:private/policyd-spf",
});

# the socket where Postfix's spawn(8) would have it: private/ of the queue
# directory, which sluice created when it started
my $private = $t->config('queue_directory') . '/private';
-d $private or mkdir $private, 0700 or die "$private: $!";
my $sock = "$private/policyd-spf";
spawn('unshare', '-m', 'sh', '-c',
      'mount --bind "$1" /etc/resolv.conf && exec socat '
      . 'UNIX-LISTEN:"$2",fork,mode=0666 EXEC:"/usr/bin/policyd-spf $3"',
      'sh', $resolv, $sock, $conf);
ok(wait_until(sub { -S $sock && IO::Socket::UNIX->new(Peer => $sock) }, 10),
   'policyd-spf socket (socat, one process per connection)')
    or BAIL_OUT(`cat $dir/peers.log`);

# One message from `from`; (final or failing reply, queued content).
sub send_from {
	my ($from) = @_;
	my $c = $t->smtp;
	$c->hello('client.test');
	my ($code, $text) = $c->transaction(from => $from, to => ['user@mx.example.test']);
	$c->cmd('QUIT');
	my ($id) = ($text // '') =~ /queued as (\S+)/;
	my $q = $id && SluiceTest::read_queue_file($t->queue_path($id));
	return ($text // '', $q ? $q->{content} : '');
}

my ($text, $content) = send_from('a@pass.test');
like($text, qr/^250 2\.0\.0 Ok: queued as/, 'SPF pass: accepted');
like($content, qr/\AReceived-SPF: Pass \(mailfrom\) identity=mailfrom; client-ip=127\.0\.0\.1;[^\n]*envelope-from=<?a\@pass\.test>?/m,
     'SPF pass: Received-SPF: Pass is prepended to the queued message')
    or diag $content, `cat $dir/peers.log`;

my $mark = $t->log_mark;
($text) = send_from('a@fail.test');
like($text, qr{^550 5\.7\.23 <user\@mx\.example\.test>: Recipient address rejected: Message rejected due to: SPF fail - not authorized\. Please see http\S+},
     'SPF fail: rejected with 550 5.7.23 as under Postfix');
ok($t->wait_log(qr/NOQUEUE: reject: RCPT from \S+: 550 5\.7\.23 <user\@mx\.example\.test>: Recipient address rejected: Message rejected due to: SPF fail/,
		5, from => $mark), 'SPF fail: logged');

($text, $content) = send_from('a@soft.test');
like($text, qr/^250 2\.0\.0 Ok: queued as/, 'SPF softfail: accepted');
like($content, qr/\AReceived-SPF: Softfail \(mailfrom\) identity=mailfrom; client-ip=127\.0\.0\.1;/m,
     'SPF softfail: Received-SPF: Softfail is prepended');

($text, $content) = send_from('a@none.test');
like($text, qr/^250 2\.0\.0 Ok: queued as/, 'no SPF record: accepted');
like($content, qr/\AReceived-SPF: None /m, '... Received-SPF: None');

done_testing;
