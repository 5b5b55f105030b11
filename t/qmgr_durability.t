#!/usr/bin/perl
# qmgr_durability.t - the queue promise from end to end (DESIGN.md
# "Queue", docs/queue-manager.md): a client streams messages while every
# sluice process (master, workers, queue manager) is SIGKILLed at random
# moments and started again, several times; afterwards every message that
# got a 250 has reached the next hop (counted by Message-ID), intact;
# duplicates are allowed only for deliveries cut off in flight.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use POSIX ();
use Time::HiRes qw(sleep time);
use SluiceTest qw(wait_until);
use QmgrTest qw(start_sink dumps qmgr_sluice $SINK);

-x $SINK or BAIL_OUT('smtp-sink (the postfix package) is not installed' . ': run scripts/install-deps');

my $ROUNDS = 4;
my $LINES = 30;

my $tmp = File::Temp::tempdir(CLEANUP => 1);
chmod 0755, $tmp;
my $sink = start_sink("$tmp/sink");
my $t = qmgr_sluice(main => { relayhost => "[127.0.0.1]:$sink",
			      smtpd_peername_lookup => 'no' }, start => 0);
$t->start_group;

sub body_of {
	my ($n) = @_;
	return "Message-ID: <stream.$n\@client.example>\nSubject: stream $n\n\n"
	    . join('', map { "line $_ of message $n\n" } 1 .. $LINES);
}

# The sender: one message per session, forever; each 250 is written to
# the acks file.  Sessions that fail (the server is down) are retried.
my $acks = "$tmp/acks";
my $sender = fork // die "fork: $!";
if ($sender == 0) {
	open my $out, '>>', $acks or POSIX::_exit(1);
	$out->autoflush(1);
	my $n = 0;
	while (1) {
		my $c = SluiceTest::Client->new(port => $t->port, timeout => 5);
		if (!$c) {
			sleep 0.05;
			next;
		}
		$n++;
		$c->hello('client.example');
		my ($code) = $c->transaction(from => 'alice@example.org',
					     to => ['bob@example.net'], body => body_of($n));
		print $out "$n\n" if defined $code && $code eq '250';
		$c->close;
	}
}

for my $round (1 .. $ROUNDS) {
	sleep 0.3 + rand 0.7;
	ok($t->kill_group('KILL'), "round $round: every process SIGKILLed");
	$t->start_group;
}
# the last start must take mail again: wait for one more 250 (not a sleep)
sub acked { open my $fh, '<', $acks or return (); return map { chomp; $_ } <$fh> }
my $acks_then = () = acked();
ok(wait_until(sub { acked() > $acks_then }, 30), 'the sender gets a 250 after the last restart');
kill 'KILL', $sender;
waitpid $sender, 0;

my @acked = acked();
cmp_ok(scalar @acked, '>=', 10, scalar(@acked) . ' messages were acknowledged');

my %got;
ok(wait_until(sub {
	%got = ();
	for my $d (dumps("$tmp/sink")) {
		my ($n) = $d =~ /^Message-ID: <stream\.(\d+)\@client\.example>$/mi or next;
		push @{ $got{$n} }, $d;
	}
	return !grep { !$got{$_} } @acked;
}, 60), 'every acknowledged message reached the next hop');
my @missing = grep { !$got{$_} } @acked;
is_deeply(\@missing, [], '... none is missing');
my @bad;
for my $n (keys %got) {
	for my $d (@{ $got{$n} }) {
		my $lines = () = $d =~ /^line \d+ of message \Q$n\E$/mg;
		push @bad, $n if $lines != $LINES;
	}
}
is_deeply(\@bad, [], '... none is damaged');
my $dups = grep { @{ $got{$_} } > 1 } keys %got;
diag("$dups duplicate(s) from deliveries cut off in flight") if $dups;
ok(wait_until(sub { !grep { scalar $t->queue_files($_) } qw(incoming active deferred) }, 30),
   'the queue drains');
$t->stop;

done_testing;
