#!/usr/bin/perl
# greylist_redis.t - the greylist plugin's shared store: a real
# redis-server started here on a free loopback port, and two sluice
# instances (two "nodes") with greylist_store = redis:127.0.0.1:PORT/3.
#
# Asserted: a triplet greylisted by the first node is known to the
# second (its retry there passes after the delay, with X-Greylist); the
# record is one Redis key in the database named, with a TTL of
# greylist_max_age; with Redis down the recipient passes (fail open,
# greylist_store_failure_action = dunno) and a warning is logged; with
# greylist_store_failure_action = defer it gets 451 4.3.0; Redis back,
# greylisting resumes without a reload.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use File::Temp ();
use SluiceTest qw(wait_until free_port);

my $REDIS = '/usr/bin/redis-server';
my $CLI = '/usr/bin/redis-cli';
BAIL_OUT('redis-server is not installed (scripts/install-deps)')
    unless -x $REDIS && -x $CLI;

my $delay = 2;
my $rport = free_port();
my $rdir = File::Temp::tempdir('sluice-redis-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $rpid;

sub start_redis {
	$rpid = fork // die "fork: $!";
	if ($rpid == 0) {
		SluiceTest::die_with_parent();
		open STDOUT, '>>', "$rdir/redis.log";
		open STDERR, '>&', \*STDOUT;
		exec($REDIS, '--port', $rport, '--bind', '127.0.0.1',
		     '--save', '', '--appendonly', 'no', '--dir', $rdir)
		    or POSIX::_exit(127);
	}
	return wait_until(sub { SluiceTest::tcp_answers($rport) }, 20);
}
sub stop_redis {
	return unless $rpid;
	kill 'TERM', $rpid;
	waitpid $rpid, 0;
	$rpid = undef;
}
END { stop_redis() }
sub cli { my $out = `$CLI -p $rport -n 3 @_ 2>&1`; chomp $out; $out }

ok(start_redis(), 'redis-server listens') or BAIL_OUT(`cat $rdir/redis.log`);

my %main = (
	relay_domains => 'example.net',
	mynetworks => '127.0.0.2/32',
	smtpd_recipient_restrictions => 'reject_unauth_destination, check_greylist, permit',
	greylist_store => "redis:127.0.0.1:$rport/3",
	greylist_delay => "${delay}s",
	greylist_max_age => '10d',
	greylist_auto_whitelist_clients => 0,
);
my $a = SluiceTest->new(main => { %main });
my $b = SluiceTest->new(main => { %main });

sub try_rcpt {
	my ($t, $from, $rcpt, $keep) = @_;
	my $c = $t->smtp or return '';
	$c->hello('client.example');
	$c->cmd("MAIL FROM:<$from>");
	my (undef, $text) = $c->cmd("RCPT TO:<$rcpt>");
	return ($text // '', $c) if $keep;
	$c->cmd('QUIT');
	return $text // '';
}

# ---- two nodes, one Redis ---------------------------------------------------------

my $t0 = time;
like(try_rcpt($a, 'sender@example.org', 'user@example.net'),
     qr{^450 4\.2\.0 <user\@example\.net>: Recipient address rejected: Greylisted},
     'node A: the first attempt is greylisted');
like(try_rcpt($b, 'sender@example.org', 'user@example.net'), qr/^450 4\.2\.0 /,
     'node B: an early retry is greylisted too (same triplet, same store)');
my ($text, $c);
while (time - $t0 < $delay + 10) {
	($text, $c) = try_rcpt($b, 'sender@example.org', 'user@example.net', 1);
	last if $text =~ /^250 /;
	$c->cmd('QUIT') if $c;
	sleep 0.25;
}
like($text, qr/^250 /, 'node B: the retry after the delay is accepted');
cmp_ok(time - $t0, '>=', $delay - 1, '... not before the delay');
if ($c && $text =~ /^250 /) {
	$c->cmd('DATA');
	$c->send_raw("Subject: shared\r\n\r\nhello\r\n.\r\n");
	my (undef, $reply) = $c->read_reply;
	my ($id) = ($reply // '') =~ /queued as (\S+)/;
	my $q = $id && SluiceTest::read_queue_file($b->queue_path($id));
	like($q ? $q->{content} : '', qr/^X-Greylist: delayed \d+ seconds by sluice-greylist/m,
	     '... and the message carries X-Greylist');
	$c->cmd('QUIT');
}
my $key = 'sluice:gl:t:127.0.0.0/24/sender@example.org/user@example.net';
like(cli('GET', "'$key'"), qr/^\d+ \d+ 1$/, 'one Redis key per triplet, in database 3: "first last count"');
my $ttl = cli('TTL', "'$key'");
ok($ttl > 9 * 86400 && $ttl <= 10 * 86400, "its TTL is greylist_max_age ($ttl s)");

# ---- Redis down ---------------------------------------------------------------------

stop_redis();
my $mark = $a->log_mark;
like(try_rcpt($a, 'down@example.org', 'user@example.net'), qr/^250 /,
     'Redis down: the recipient passes (greylist_store_failure_action = dunno)');
ok($a->wait_log(qr{warning: .*greylist: greylist store redis failed: redis 127\.0\.0\.1:$rport: .*passing}, undef, from => $mark),
   '... with a warning');

$b->set_main(greylist_store_failure_action => 'defer');
$b->reload;
like(try_rcpt($b, 'down@example.org', 'user@example.net'),
     qr{^451 4\.3\.0 <user\@example\.net>: Recipient address rejected: Temporary lookup failure},
     'greylist_store_failure_action = defer: 451 4.3.0');

ok(start_redis(), 'redis-server back');
like(try_rcpt($a, 'back@example.org', 'user@example.net'), qr/^450 4\.2\.0 /,
     'Redis back: greylisting resumes without a reload');

done_testing;
