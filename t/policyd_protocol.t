#!/usr/bin/perl
# policyd_protocol.t - sluice-policyd's side of the policy protocol,
# spoken directly, on a unix socket (-l unix:/path):
#  - a request whose restriction waits on DNS (reject_rbl_client against
#    a resolver that never answers) suspends that connection only: a
#    second client is answered meanwhile, the first still waits;
#  - the waiting client may hang up: the lookup is cancelled and the
#    server goes on serving;
#  - protocol_state picks the list's reply class (HELO: the helo table);
#  - a request longer than policyd_request_size_limit closes the
#    connection, with a warning;
#  - DEFER_IF_PERMIT and DEFER_IF_REJECT the list leaves open are passed
#    on as actions; DEFER_IF_PERMIT followed by a permit defers at once;
#  - an empty policyd_restrictions answers DUNNO (checked by a third
#    server on the default parameter).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::UNIX;
use SluiceTest qw(wait_until slurp);
use DnsTest qw(silent_udp_port);

my $root = "$FindBin::Bin/..";
my $policyd = "$root/build/bin/sluice-policyd";
BAIL_OUT("$policyd is not built: run make") unless -x $policyd;

my $dir = tempdir('policyd-proto-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{SLUICE_KEEP_TMP});
sub put { my ($f, $text) = @_; open my $fh, '>', $f or die "$f: $!"; print $fh $text; close $fh }
my $silent = silent_udp_port();
put("$dir/clients", "192.0.2.2 REJECT listed here\n");
put("$dir/helos", "bad.helo.example REJECT bad helo\n");

my @pids;
END { local $?; for (@pids) { kill 'TERM', $_; waitpid $_, 0 } }

# Start sluice-policyd on config dir $cd; returns the socket path.
sub start_policyd {
	my ($cd, %main) = @_;
	mkdir $cd;
	put("$cd/main.cf", join('', map { "$_ = $main{$_}\n" } sort keys %main)
	    . "queue_directory = $cd/queue\nplugin_directory = $root/build/plugins\n");
	put("$cd/master.cf", "");
	my $sock = "$cd/policy.sock";
	push @pids, SluiceTest::spawn_logged("$cd/log", $policyd, '-c', $cd, '-l', "unix:$sock");
	wait_until(sub { (slurp("$cd/log") // '') =~ /daemon started/ }, 20)
	    or BAIL_OUT("sluice-policyd did not start:\n" . (slurp("$cd/log") // ''));
	return $sock;
}

sub request {
	my (%a) = @_;
	my %base = (request => 'smtpd_access_policy', protocol_state => 'RCPT',
		    client_address => '192.0.2.1', client_name => 'unknown',
		    helo_name => 'client.example', sender => 'a@example.org',
		    recipient => 'b@example.net');
	%base = (%base, %a);
	return join('', map { "$_=$base{$_}\n" } sort keys %base) . "\n";
}

sub answer {
	my ($s) = @_;
	my ($line, $empty) = (scalar <$s>, scalar <$s>);
	return undef unless defined $line && defined $empty && $empty eq "\n";
	chomp $line;
	return $line;
}

my $sock = start_policyd("$dir/a",
	dns_servers => "127.0.0.1:$silent",
	policyd_request_size_limit => 2048,
	policyd_restrictions => "check_helo_access texthash:$dir/helos, "
	    . "check_client_access texthash:$dir/clients, reject_rbl_client bl.test");
ok(-S $sock, 'listening on the unix socket');

my $slow = IO::Socket::UNIX->new(Peer => $sock) or die "connect: $!";
print $slow request(client_address => '192.0.2.1');     # DNS never answers
my $fast = IO::Socket::UNIX->new(Peer => $sock) or die "connect: $!";
print $fast request(client_address => '192.0.2.2');
is(answer($fast), 'action=554 5.7.1 listed here',
   'a second client is answered while the first waits on DNS');
ok(!IO::Select->new($slow)->can_read(0), '... the first is still waiting');
close $slow;        # hang up while the lookup is pending
print $fast request(client_address => '192.0.2.2', protocol_state => 'HELO',
		    helo_name => 'bad.helo.example', sender => '', recipient => '');
is(answer($fast), 'action=554 5.7.1 bad helo',
   'the server goes on after a waiting client hung up (HELO state: the helo table)');

print $fast "request=smtpd_access_policy\n", ("x_filler=" . ('y' x 100) . "\n") x 30, "\n";
is(scalar <$fast>, undef, 'a request over policyd_request_size_limit closes the connection');
ok(wait_until(sub { (slurp("$dir/a/log") // '') =~ /warning: .*request longer than policyd_request_size_limit \(2048 bytes\)/ }, 10),
   '... with a warning');
close $fast;

# DEFER_IF_PERMIT / DEFER_IF_REJECT left open by the list go to the
# client's list as actions; a permit after DEFER_IF_PERMIT defers now
put("$dir/defers", "192.0.2.3 DEFER_IF_PERMIT try later\n"
    . "192.0.2.4 DEFER_IF_REJECT maybe later\n192.0.2.5 DEFER_IF_PERMIT not yet\n");
put("$dir/oks", "192.0.2.5 OK\n");
my $defers = start_policyd("$dir/b", policyd_restrictions =>
	"check_client_access texthash:$dir/defers, check_client_access texthash:$dir/oks");
my $d = IO::Socket::UNIX->new(Peer => $defers) or die "connect: $!";
print $d request(client_address => '192.0.2.3');
is(answer($d), 'action=DEFER_IF_PERMIT 4.7.1 try later',
   'DEFER_IF_PERMIT left open: passed on for the client to decide');
print $d request(client_address => '192.0.2.4');
is(answer($d), 'action=DEFER_IF_REJECT 4.7.1 maybe later', 'DEFER_IF_REJECT: passed on');
print $d request(client_address => '192.0.2.5');
is(answer($d), 'action=450 4.7.1 not yet', 'DEFER_IF_PERMIT, then a permit: deferred now');
close $d;

my $empty = start_policyd("$dir/c");
my $c = IO::Socket::UNIX->new(Peer => $empty) or die "connect: $!";
print $c request(), request(protocol_state => 'MAIL', recipient => '');
is(answer($c), 'action=DUNNO', 'empty policyd_restrictions: DUNNO');
is(answer($c), 'action=DUNNO', '... for each request sent in one go');
close $c;

done_testing;
