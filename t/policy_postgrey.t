#!/usr/bin/perl
# Greylisting with the real postgrey as sluice's policy server, configured
# as a Postfix admin would (check_policy_service inet:127.0.0.1:PORT before
# permit_mynetworks): the first attempt of a triplet is greylisted with
# Postfix's reply, the same triplet is still refused before --delay, is
# accepted once the delay has passed (the retry loop waits by retrying,
# bounded), and the accepted message carries postgrey's X-Greylist
# header (its PREPEND action); a recipient in --whitelist-recipients
# passes at once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SluiceTest qw(free_port wait_until);

my $postgrey = '/usr/sbin/postgrey';
BAIL_OUT("postgrey is not installed: run scripts/install-deps") unless -x $postgrey;

my $dir = tempdir('postgrey-test-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{SLUICE_KEEP_TMP});
chmod 0755, $dir;
my $db = "$dir/db";
mkdir $db or die "$db: $!";
my ($user, $group) = $< == 0 ? ('nobody', 'nogroup') : (scalar getpwuid($<), scalar getgrgid($());
chown scalar(getpwnam($user)), scalar(getgrnam($group)), $db if $< == 0;

open my $fh, '>', "$dir/whitelist_recipients" or die;
print $fh "white\@example.net\n";
close $fh;
open $fh, '>', "$dir/whitelist_clients" or die;
close $fh;

my $port = free_port();
my $delay = 3;
my $pid = fork // die "fork: $!";
if ($pid == 0) {
	SluiceTest::die_with_parent();
	open STDOUT, '>>', "$dir/postgrey.log";
	open STDERR, '>&', \*STDOUT;
	exec($postgrey, "--inet=127.0.0.1:$port", "--delay=$delay", "--dbdir=$db",
	     "--user=$user", "--group=$group", '--auto-whitelist-clients=0', '-v',
	     "--whitelist-recipients=$dir/whitelist_recipients",
	     "--whitelist-clients=$dir/whitelist_clients") or POSIX::_exit(127);
}
END { if ($pid) { kill 'TERM', $pid; waitpid $pid, 0 } }

ok(wait_until(sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1',
					   PeerPort => $port) }, 20),
   'postgrey listens') or BAIL_OUT("postgrey did not start:\n" . `cat $dir/postgrey.log`);

my $t = SluiceTest->new(main => {
	local_recipient_maps => '',
	mynetworks => '127.0.0.0/8',
	smtpd_recipient_restrictions =>
	    "check_policy_service inet:127.0.0.1:$port, permit_mynetworks, reject_unauth_destination",
});

my $c = $t->smtp;
$c->hello('client.example');

sub try_rcpt {
	my ($from, $rcpt) = @_;
	$c->cmd('RSET');
	$c->cmd("MAIL FROM:<$from>");
	my (undef, $text) = $c->cmd("RCPT TO:<$rcpt>");
	return $text;
}

my $t0 = time;
my $text = try_rcpt('sender@example.org', 'user@example.net');
my $first = time;
like($text, qr{^450 4\.2\.0 <user\@example\.net>: Recipient address rejected: Greylisted, see http://postgrey\.schweikert\.ch/help/example\.net\.html$},
     'first attempt: greylisted, with the reply Postfix gives (postgrey adds 4.2.0)');
diag sprintf 'first policy answer after %.2fs', $first - $t0;
ok($t->wait_log(qr{NOQUEUE: reject: RCPT from \S+: 450 4\.2\.0 <user\@example\.net>: Recipient address rejected: Greylisted}),
   'logged as a Postfix reject line');

# retry until accepted (bounded), DATA in the accepted transaction
my ($accepted, $refused) = (undef, 0);
while (time - $first < $delay + 10) {
	$text = try_rcpt('sender@example.org', 'user@example.net');
	if ($text =~ /^250 /) {
		$accepted = time;
		last;
	}
	$refused++ if $text =~ /^450 4\.2\.0 .*Greylisted/;
	sleep 0.25;
}
ok($accepted, 'a retry after the delay is accepted') or diag $text;
cmp_ok($refused, '>=', 1, "retries before --delay=$delay are greylisted ($refused were)");
cmp_ok($accepted - $t0, '>=', $delay - 1, "... none accepted before the delay (postgrey counts whole seconds)")
    if $accepted;

# the accepted message carries postgrey's PREPEND
my ($code) = $c->cmd('DATA');
is($code, 354, 'DATA');
$c->send_raw("Subject: greylisting\r\n\r\nhello\r\n.\r\n");
my (undef, $reply) = $c->read_reply;
my ($id) = ($reply // '') =~ /queued as (\S+)/;
ok($id, 'queued');
my $q = $id && SluiceTest::read_queue_file($t->queue_path($id));
# postgrey adds X-Greylist when the triplet passes for the first time
like($q ? $q->{content} : '', qr/^X-Greylist: delayed \d+ seconds by postgrey/m,
     "postgrey's X-Greylist header (PREPEND) is in the queued message");

# the recipient whitelist
like(try_rcpt('other@example.org', 'white@example.net'), qr/^250 /,
     'a whitelisted recipient is accepted at the first attempt');
like(try_rcpt('other@example.org', 'notwhite@example.net'), qr/^450 .*Greylisted/,
     '... another recipient of the same sender is greylisted');
$c->cmd('QUIT');

done_testing;
