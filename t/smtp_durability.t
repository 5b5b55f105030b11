#!/usr/bin/perl
# smtp_durability.t - the queue promise seen from a client (DESIGN.md
# "Queue", docs/queue-format.md): SIGKILL of the whole process group
# (master and workers at once) right after a "250 2.0.0 Ok: queued as ID"
# leaves that file intact - mode 0700, the preamble pointing at the
# envelope, the "end" record last, the content equal to what was sent -
# and it survives the next start; a queue file half-written at the SIGKILL
# (mode 0600, never acknowledged) is removed at the next start.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest qw(wait_until);

my $t = SluiceTest->new(main => { smtpd_peername_lookup => 'no' }, start => 0);
$t->start_group;

my $N = 8;      # sessions acknowledged just before the kill

sub body_of {
	my ($i) = @_;
	return "Message-ID: <durable.$i\@client.example>\nSubject: durable $i\n\n"
	    . join('', map { "line $_ of message $i\n" } 1 .. 50)
	    . ".starts with a dot\n";
}

# A new session, through EHLO, MAIL and RCPT TO:<rcpt> to DATA: the client
# and the code of the reply to DATA.
sub in_data {
	my ($rcpt) = @_;
	my $c = $t->smtp;
	$c->hello('client.example');
	$c->cmd('MAIL FROM:<a@example.org>');
	$c->cmd("RCPT TO:<$rcpt>");
	my ($code) = $c->cmd('DATA');
	return ($c, $code);
}

# ---- SIGKILL right after the 250 ----------------------------------------------------

my (%sent, @clients);
for my $i (1 .. $N) {
	my ($c) = in_data("r$i\@example.net");
	push @clients, $c;
}
# Every message ends at about the same time; the kill follows the last 250.
for my $i (1 .. $N) {
	(my $wire = body_of($i)) =~ s/\n/\r\n/g;
	$wire =~ s/^\./../mg;
	$clients[$i - 1]->send_raw("$wire.\r\n");
}
my @ids;
for my $i (1 .. $N) {
	my ($code, $text) = $clients[$i - 1]->read_reply;
	my ($id) = ($text // '') =~ /^250 2\.0\.0 Ok: queued as (\S+)$/;
	push @ids, $id;
	$sent{$id // "none$i"} = body_of($i);
}
ok(!grep({ !defined } @ids), "$N messages acknowledged with 250 2.0.0 Ok: queued as ID");
my @group = ($t->pid, $t->worker_pids);
ok($t->kill_group('KILL'), 'SIGKILL to the process group: master and workers are gone at once');
ok(!grep({ !SluiceTest::gone($_) } @group), '... every one of them');

sub check_files {
	my ($when) = @_;
	for my $id (grep { defined } @ids) {
		my $q = SluiceTest::read_queue_file($t->queue_path($id));
		ok($q, "$when: $id exists in incoming/") or next;
		is(sprintf('%04o', $q->{mode}), '0700', "$when: $id has mode 0700");
		ok($q->{complete}, "$when: $id is a complete queue file (preamble, records, end last)")
		    or diag($q->{problem});
		like($q->{bytes}, qr/\nend\n\z/, "$when: $id ends with the end record");
		(my $content = $q->{content} // '') =~ s/\AReceived: [^\n]*\n(?:\t[^\n]*\n)*//;
		is($content, $sent{$id}, "$when: $id holds exactly the message sent");
	}
}
check_files('after SIGKILL');

# ---- a half-written file at the SIGKILL ------------------------------------------------

$t->start_group;
check_files('after the restart');

my %before = map { $_ => 1 } $t->queue_files;
my ($c, $code) = in_data('half@example.net');
is($code, 354, 'a message in the middle of DATA');
$c->send_raw("Subject: half\r\n\r\n" . ("half a message\r\n" x 10000));   # 160 kB, no end
my @half = grep { !$before{$_} } $t->queue_files;
is(scalar @half, 1, 'its queue file exists');
my $hpath = $t->queue_path($half[0] // 'none');
ok(wait_until(sub { ((stat $hpath)[7] // 0) > 65536 }, 10), '... and content is reaching it');
is(sprintf('%04o', (stat $hpath)[2] & 07777), '0600', '... with mode 0600 (not committed)');
ok($t->kill_group('KILL'), 'SIGKILL to the process group mid-DATA');
ok(-e $hpath, 'the half-written file is still there after the kill');
$c->close;

my $mark = $t->log_mark;
$t->start_group;
ok(!-e $hpath, 'the next start removes the half-written (0600) file');
ok($t->wait_log(qr/\Q$half[0]\E: removed a half-written queue file/, 5, from => $mark),
   '... and logs that it did');
check_files('after the second restart');
is_deeply([sort $t->queue_files], [sort grep { defined } @ids], 'only the acknowledged messages remain');

# ---- a client that goes away mid-DATA -------------------------------------------------

%before = map { $_ => 1 } $t->queue_files;
$mark = $t->log_mark;
($c) = in_data('gone@example.net');
$c->send_raw("Subject: gone\r\n\r\nthe client goes away\r\n");
my @gone = grep { !$before{$_} } $t->queue_files;
is(scalar @gone, 1, 'a client in the middle of DATA has a queue file');
$c->close;
ok($t->wait_log(qr/lost connection after DATA from unknown\[127\.0\.0\.1\]$/, undef, from => $mark),
   '... it goes away: lost connection after DATA');
ok(wait_until(sub { !-e $t->queue_path($gone[0] // 'none') }, 5), '... and its queue file is removed at once');

# ---- a client that goes away right after the final dot -----------------------------

%before = map { $_ => 1 } $t->queue_files;
$mark = $t->log_mark;
($c) = in_data('dot@example.net');
$c->send_raw("Subject: dot\r\n\r\nthe client does not wait for the 250\r\n.\r\n");
$c->close;
my @dot;
ok(wait_until(sub {
	@dot = grep { !$before{$_} } $t->queue_files;
	my $q = @dot && SluiceTest::read_queue_file($t->queue_path($dot[0]));
	return $q && $q->{complete};
}), 'a client that closes right after the final dot: the message is still committed');
my $dq = SluiceTest::read_queue_file($t->queue_path($dot[0] // 'none'));
ok($dq && $dq->{complete}, '... and its queue file is complete');

$t->stop;
done_testing;
