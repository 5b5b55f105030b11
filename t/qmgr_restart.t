#!/usr/bin/perl
# qmgr_restart.t - the queue manager as a process (docs/queue-manager.md
# "The process"), and the queue it finds when it starts:
#  - messages left in active/ (a crash in the middle of a delivery), in
#    incoming/ and due in deferred/ are all scheduled again at start; a
#    damaged file in active/ goes to corrupt/ with a warning;
#  - it runs as mail_owner, with no root left even as its saved user ID
#    (local, virtual and pipe run in the delivery process:
#    delivery_privsep.t), next to the smtpd workers;
#  - killed, it is restarted by the master; on reload it is replaced by a
#    new one; on stop it goes too.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Copy qw(move);
use File::Temp ();
use SluiceTest qw(wait_until free_port);
use QmgrTest qw(start_sink stop_sink dumps qmgr_sluice send_mail $SINK);

-x $SINK or BAIL_OUT('smtp-sink (the postfix package) is not installed' . ': run scripts/install-deps');

my $tmp = File::Temp::tempdir(CLEANUP => 1);
chmod 0755, $tmp;

# The pid of the running queue manager: the last one that logged.
sub qmgr_pid {
	my ($t) = @_;
	my @pids = $t->log_text =~ m{ sluice/qmgr\[(\d+)\]: }g;
	return $pids[-1];
}

# ---- the queue at start -----------------------------------------------------------

my $port = free_port();
start_sink("$tmp/sink", port => $port, opts => ['-r', 'RCPT']);
my $t = qmgr_sluice(main => { relayhost => "[127.0.0.1]:$port" });
my @ids = map { send_mail($t, from => 'alice@example.org', to => ["r$_\@example.net"],
			  body => "Message-ID: <restart.$_\@client.example>\nSubject: $_\n\nhello\n") } 1 .. 3;
is(scalar(grep { defined } @ids), 3, 'three messages queued');
ok(wait_until(sub { my @d = $t->queue_files('deferred'); @d == 3 }, 10), '... and deferred by a 4xx next hop');
$t->stop;

my $q = $t->config('queue_directory');
move("$q/deferred/$ids[0]", "$q/active/$ids[0]") or die;
move("$q/deferred/$ids[1]", "$q/incoming/$ids[1]") or die;
utime(time - 10, time - 10, "$q/deferred/$ids[2]") or die;
my $bad = '6B0000000000000DEAD';
$t->write_file("$q/active/$bad", "sluice-queue 1 00000000000000000099\ngarbage\n");
chmod 0700, "$q/active/$bad";
chown((getpwnam($t->config('mail_owner')))[2, 3], "$q/active/$bad") if $< == 0;
ok(-e "$q/active/$ids[0]" && -e "$q/incoming/$ids[1]" && -e "$q/deferred/$ids[2]",
   'stopped with one message in active/, one in incoming/, one due in deferred/');

stop_sink($port);
start_sink("$tmp/sink", port => $port);
my $mark = $t->log_mark;
$t->start;
for my $i (0 .. 2) {
	ok($t->wait_log(qr/\Q$ids[$i]\E: removed$/, 15, from => $mark),
	   ('the one in active/', 'the one in incoming/', 'the due one in deferred/')[$i]
	   . ' is delivered after the start');
}
for my $i (1 .. 3) {
	is(scalar(grep { /restart\.$i\@client\.example/ } dumps("$tmp/sink")), 1, "message $i arrived once");
}
like($t->log_text($mark), qr/warning: \Q$bad\E: damaged queue file: .*; moved to corrupt\//,
     'a damaged file in active/ is reported');
ok(-e "$q/corrupt/$bad" && !-e "$q/active/$bad", '... and moved to corrupt/');

# ---- the process ----------------------------------------------------------------------

my $pid = qmgr_pid($t);
ok($pid && !SluiceTest::gone($pid), 'the queue manager runs');
is((SluiceTest::proc_stat($pid))[0], $t->pid, '... as a child of the master');
my $owner = $t->config('mail_owner');
my $uid = getpwnam($owner);
open my $fh, '<', "/proc/$pid/status" or die;
my ($uids) = grep { /^Uid:/ } <$fh>;
close $fh;
my @u = split ' ', $uids;
is_deeply([@u[1 .. 4]], [$uid, $uid, $uid, $uid],
	  "... as mail_owner ($owner): real, effective, saved and file system user IDs");

$mark = $t->log_mark;
kill 'KILL', $pid;
ok($t->wait_log(qr/process sluice\/qmgr pid $pid killed by signal 9/, 10, from => $mark),
   'killed, the master says so');
my $id = send_mail($t, from => 'alice@example.org', to => ['after.kill@example.net']);
ok($t->wait_log(qr/\Q$id\E: removed$/, 15, from => $mark), '... and a new one delivers');
my $pid2 = qmgr_pid($t);
isnt($pid2, $pid, '... in a new process');

$mark = $t->log_mark;
ok($t->reload, 'reload');
ok(wait_until(sub { SluiceTest::gone($pid2) }, 15), '... the queue manager is replaced');
$id = send_mail($t, from => 'alice@example.org', to => ['after.reload@example.net']);
ok($t->wait_log(qr/\Q$id\E: removed$/, 15, from => $mark), '... and the new one delivers');
my $pid3 = qmgr_pid($t);
ok($pid3 != $pid2 && !SluiceTest::gone($pid3), '... in a new process');
my @q = grep { m{ sluice/qmgr\[\d+\]: } } split /\n/, $t->log_text($mark);
is_deeply([grep { /warning|error/ } @q], [], '... without a warning');

is($t->stop, 0, 'stop');
ok(SluiceTest::gone($pid3), '... the queue manager is gone too');

done_testing;
