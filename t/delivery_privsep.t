#!/usr/bin/perl
# delivery_privsep.t - privilege separation (docs/process-model.md):
# started as root, the queue manager keeps no root at all, and the
# agents that need root (local, virtual, pipe) run in the delivery
# process, sluice/delivery, which takes requests on
# queue_directory/private/delivery (mta/delivery_proto.h).
#  - the queue manager's real, effective, saved and file system user IDs
#    are all mail_owner's, and root is not among its groups;
#  - the delivery process is a child of the master and runs as root;
#  - a local delivery to a user made for the test (useradd; userdel at
#    the end): SMTP in, queue manager, delivery process, a maildir file
#    owned by the user;
#  - an alias to a remote address: the forwarded copy, queued by the
#    delivery process, belongs to mail_owner and is relayed (smtp-sink);
#  - requests written to the socket by a process running as mail_owner
#    (not root): a queue ID with "../", a file not in active/, a recipient
#    the file lacks, an original address that is not the file's, a
#    transport that is not local/virtual/pipe, a symbolic link and a file
#    with two links in active/ are refused and logged; a stream that
#    breaks the format is closed; a well-formed request is served; the
#    delivery process is the same one all along and still delivers;
#  - killed, it is restarted and delivery goes on; reload replaces it;
#    stop ends it.
# Runs as root only (it creates a user; without root there is no
# delivery process).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use IO::Socket::UNIX;
use POSIX ();
use SluiceTest qw(wait_until);
use QmgrTest qw(start_sink dumps qmgr_sluice send_mail $SINK);

BAIL_OUT('privilege separation needs root (the tests run as root in CI)')
    unless $< == 0;
-x $SINK or BAIL_OUT('smtp-sink (the postfix package) is not installed: run scripts/install-deps');

# ---- a user ------------------------------------------------------------------

my $tmp = File::Temp::tempdir(CLEANUP => 1);
chmod 0755, $tmp;
my $user = 'sluicepv' . ($$ % 100000);
my $home = "$tmp/home/$user";
END {
	local ($?, $!);
	system('userdel', $user) if defined $user && defined getpwnam $user;
}
mkdir "$tmp/home", 0755;
system('useradd', '-M', '-U', '-d', $home, '-s', '/bin/sh', $user) == 0
    or BAIL_OUT("useradd $user failed");
my ($uid, $gid) = (getpwnam $user)[2, 3];
mkdir $home, 0700;
chown $uid, $gid, $home;

sub maildir_files {
	opendir my $dh, "$home/Maildir/new" or return ();
	return map { "$home/Maildir/new/$_" } sort grep { !/^\./ } readdir $dh;
}

sub slurp {
	my ($path) = @_;
	open my $fh, '<', $path or return '';
	local $/;
	return scalar <$fh> // '';
}

# ---- the server --------------------------------------------------------------

my $sink = start_sink("$tmp/sink");
my $t = qmgr_sluice(main => {
	mydestination => 'localhost, example.test',
	home_mailbox => 'Maildir/',
	# parked@ and the other test recipients are not local users: this
	# test is about the delivery agents, not the SMTP recipient check
	smtpd_reject_unlisted_recipient => 'no',
	alias_maps => 'texthash:%DIR%/aliases',
	transport_maps => 'texthash:%DIR%/transport',
	relayhost => "[127.0.0.1]:$sink",
}, services => "mysmtp unix - - n - - smtp\n",
   files => {
	aliases => "fwd: far\@example.net\n",
	transport => "parked\@example.test retry:4.0.0 parked for the test\n",
});
my $q = $t->config('queue_directory');
my $owner = $t->config('mail_owner');
my ($owner_uid, $owner_gid) = (getpwnam $owner)[2, 3];

sub status_of {
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/status" or return {};
	my %s = map { /^(\w+):\s*(.*)$/ ? ($1 => $2) : () } <$fh>;
	return \%s;
}

# The master's live children running as root: the delivery process(es).
sub delivery_pids {
	return grep { (split ' ', status_of($_)->{Uid} // '')[0] eq '0' }
	    $t->worker_pids;
}

sub qmgr_pid {
	my @pids = $t->log_text =~ m{ sluice/qmgr\[(\d+)\]: }g;
	return $pids[-1];
}

sub deliver {
	my ($to, $name) = @_;
	my $mark = $t->log_mark;
	my $id = send_mail($t, from => 'alice@example.org', to => [$to],
			   body => "Subject: $name\n\n$name\n");
	my $ok = $id && $t->wait_log(qr/\Q$id\E: removed$/, 20, from => $mark);
	ok($ok, "$name: to $to, delivered") or diag($t->log_text($mark));
	return ($id, $t->log_text($mark));
}

# ---- who runs as whom ----------------------------------------------------------

send_mail($t, to => ['nobody-in-particular@example.net']);	# the qmgr logs
ok(wait_until(sub { qmgr_pid() }), 'the queue manager runs');
my $st = status_of(qmgr_pid());
is_deeply([split ' ', $st->{Uid}], [($owner_uid) x 4],
	  "the queue manager's real, effective, saved and file system uids are mail_owner's ($owner)");
is_deeply([split ' ', $st->{Gid}], [($owner_gid) x 4], '... and its gids');
ok(!grep({ $_ == 0 } split ' ', $st->{Groups} // ''), '... and root is not one of its groups');

my @dpids = delivery_pids();
is(scalar @dpids, 1, 'one delivery process, a child of the master');
my $dpid = $dpids[0];
is_deeply([split ' ', status_of($dpid)->{Uid}], [0, 0, 0, 0], '... running as root');
ok(-S "$q/private/delivery", 'its socket is queue_directory/private/delivery');
my @pst = stat "$q/private";
is_deeply([$pst[4], $pst[2] & 07777], [$owner_uid, 0700], '... in private/, mode 0700, owned by mail_owner');

# ---- a local delivery ------------------------------------------------------------

my ($id, $log) = deliver("$user\@example.test", 'first');
like($log, qr/ sluice\/local\[\d+\]: \Q$id\E: to=<\Q$user\E\@example\.test>, relay=local, .*status=sent \(delivered to maildir\)$/m,
     '... sluice/local logs "delivered to maildir"');
my @files = maildir_files();
is(scalar @files, 1, "... the message is in ~$user/Maildir/new/");
my $text = slurp($files[0] // '');
like($text, qr/^Delivered-To: \Q$user\E\@example\.test$/m, '... with Delivered-To:');
like($text, qr/\n\nfirst\n\z/, '... and the body');
is((stat($files[0] // '/'))[4], $uid, '... owned by the user');

# ---- forwarding: the copy belongs to mail_owner ------------------------------------

($id, $log) = deliver('fwd@example.test', 'forwarded');
my ($copy) = $log =~ /\Q$id\E: to=<fwd\@example\.test>, .*status=sent \(forwarded as (\w+)\)/;
ok($copy, '... the alias forwards: "forwarded as ID"') or diag($log);
ok($copy && $t->wait_log(qr/\Q$copy\E: to=<far\@example\.net>, relay=127\.0\.0\.1.*status=sent/, 20),
   '... the copy, queued by the delivery process, is relayed by the queue manager');
ok(wait_until(sub { grep { /^Subject: forwarded$/m } dumps("$tmp/sink") }), '... and arrives');
unlike($t->log_text, qr/cannot open|Permission denied/, '... the queue manager could open it');

# ---- requests from a process that is not root ---------------------------------

# A message to park in deferred/, then planted in active/ under another
# ID, where the queue manager will not look (it reads active/ at start).
my $mark = $t->log_mark;
my $parked = send_mail($t, from => 'alice@example.org', to => ['parked@example.test'],
		       body => "Subject: parked\n\nparked\n");
ok($t->wait_log(qr/\Q$parked\E: to=<parked\@example\.test>.*status=deferred/, 20, from => $mark),
   'a message waits in deferred/');
wait_until(sub { -e "$q/deferred/$parked" });
my $plant = '0000000100000A1';
system('cp', '-p', "$q/deferred/$parked", "$q/active/$plant") == 0 or die 'cp';
my $link = '0000000100000A2';
symlink $plant, "$q/active/$link" or die "symlink: $!";
lchown($owner_uid, $owner_gid, "$q/active/$link");

sub lchown {
	my ($u, $g, $path) = @_;
	system('chown', '-h', "$u:$g", $path);
}

sub token {
	my ($v) = @_;
	return '-' if $v eq '';
	return '%2D' if $v eq '-';
	(my $e = $v) =~ s/([\x00-\x20\x7f%])/sprintf('%%%02X', ord $1)/ge;
	return $e;
}

sub request {
	my ($seq, %r) = @_;
	my $text = "request $seq\n";
	$text .= "queue_id " . token($r{queue_id} // $plant) . "\n";
	$text .= "transport " . token($r{transport} // 'local') . "\n";
	$text .= "nexthop " . token($r{nexthop} // 'example.test') . "\n";
	for my $rc (@{ $r{rcpt} || [[0, "$user\@example.test", 'parked@example.test']] }) {
		$text .= join(' ', 'rcpt', $rc->[0], token($rc->[1]), token($rc->[2])) . "\n";
	}
	return $text . "end\n";
}

# Send each text on one connection as mail_owner, in a child that gives up
# root for good first; the answer to each (up to "end"), or "EOF".
sub as_mail_owner {
	my (@texts) = @_;
	pipe my $rd, my $wr or die "pipe: $!";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		close $rd;
		POSIX::setgid($owner_gid);
		$) = "$owner_gid $owner_gid";
		POSIX::setuid($owner_uid);
		$> = 0;		# must fail now
		POSIX::_exit(3) if $< == 0 || $> == 0;
		alarm 20;
		my $s = IO::Socket::UNIX->new(Peer => "$q/private/delivery", Type => SOCK_STREAM)
		    or POSIX::_exit(4);
		my @answers;
		for my $text (@texts) {
			print $s $text;
			$s->flush;
			my $a = '';
			while (defined(my $line = <$s>)) {
				$a .= $line;
				last if $line eq "end\n";
			}
			push @answers, $a eq '' ? 'EOF' : $a;
		}
		print $wr join("\0", @answers);
		close $wr;
		POSIX::_exit(0);
	}
	close $wr;
	my $all = do { local $/; <$rd> } // '';
	waitpid $pid, 0;
	is($?, 0, 'a client running as mail_owner, not root, talks to the socket');
	return split /\0/, $all;
}

$mark = $t->log_mark;
my @answers = as_mail_owner(
	request(1, queue_id => '../../../../etc/passwd'),
	request(2, queue_id => '00000001000FFF'),
	request(3, rcpt => [[7, "$user\@example.test", 'parked@example.test']]),
	request(4, rcpt => [[0, "$user\@example.test", 'someone.else@example.test']]),
	request(5, transport => 'mysmtp'),
	request(6, queue_id => $link),
	request(7, rcpt => [[0, "bad\naddress", 'parked@example.test']]),
	request(8, transport => '../pipe'),
	request(9),
	"hello there\n");
my $refusal = qr/\Aresult (\d+)\nerror 4\.3\.0 delivery%20request%20refused:%20\S+\nend\n\z/;
my @why = (
	[1, qr/request 1 from uid $owner_uid refused: bad queue ID "..\/..\/..\/..\/etc\/passwd"/, 'a queue ID with "../"'],
	[2, qr/00000001000FFF: request 2 from uid $owner_uid refused: cannot open active\/00000001000FFF: No such file/, 'a file not in active/'],
	[3, qr/$plant: request 3 from uid $owner_uid refused: recipient 0: the queue file has no recipient 7/, 'a recipient index the file lacks'],
	[4, qr/$plant: request 4 from uid $owner_uid refused: recipient 0: not recipient 0 of the queue file/, 'an original address that is not the file\'s'],
	[5, qr/$plant: request 5 from uid $owner_uid refused: transport "mysmtp" \(smtp\) is not delivered here/, 'a transport not delivered there (smtp)'],
	[6, qr/$link: request 6 from uid $owner_uid refused: cannot open active\/$link: Too many levels of symbolic links/, 'a symbolic link in active/'],
	[7, qr/$plant: request 7 from uid $owner_uid refused: bad address in recipient 0/, 'an address with a control character'],
	[8, qr/$plant: request 8 from uid $owner_uid refused: bad transport name/, 'a transport name with "/"'],
);
for my $w (@why) {
	my ($n, $re, $what) = @$w;
	like($answers[$n - 1] // '', qr/\Aresult $n\n/, "refused: $what");
	like($answers[$n - 1] // '', $refusal, '... answered "error 4.3.0 delivery request refused: ..."');
	ok($t->wait_log(qr/warning: $re/, 10, from => $mark), '... and logged');
}
like($answers[8] // '', qr/\Aresult 9\nrelay local\ntimes \d+\.\d{6} \d+\.\d{6}\nrcpt 0 2 2\.0\.0 delivered%20to%20maildir\nend\n\z/,
     'a well-formed request is served (rewritten address, original from the file)');
is($answers[9], 'EOF', 'a line that is not "request SEQ" closes the connection');
ok($t->wait_log(qr/warning: connection from uid $owner_uid pid \d+: expected "request SEQ"; closed/, 10, from => $mark),
   '... and is logged');

# Two links to the file: refused too.
link "$q/active/$plant", "$q/active/0000000100000A3" or die "link: $!";
@answers = as_mail_owner(request(10));
like($answers[0] // '', $refusal, 'a queue file with two links is refused');
like($t->log_text($mark), qr/$plant: request 10 from uid $owner_uid refused: not a regular file with one link/, '... and logged');
unlink "$q/active/0000000100000A3", "$q/active/$link", "$q/active/$plant";

is_deeply([delivery_pids()], [$dpid], 'the delivery process is the same one all along');
unlike($t->log_text($mark), qr/sluice\/delivery.*(killed|exit status)|panic|fatal/, '... it never died');
($id) = deliver("$user\@example.test", 'after the refusals');

# ---- restart, reload, stop -----------------------------------------------------------

$mark = $t->log_mark;
kill 'KILL', $dpid;
ok($t->wait_log(qr/warning: process sluice\/delivery pid $dpid killed by signal 9/, 10, from => $mark),
   'the delivery process killed: the master says so');
ok(wait_until(sub { my @p = delivery_pids(); @p == 1 && $p[0] != $dpid }, 15), '... and starts another');
deliver("$user\@example.test", 'after a restart');
my $dpid2 = (delivery_pids())[0];

ok($t->reload, 'reload');
ok(wait_until(sub { SluiceTest::gone($dpid2) }, 15), '... the delivery process is replaced');
ok(wait_until(sub { delivery_pids() == 1 }, 15), '... by a new one');
my $dpid3 = (delivery_pids())[0];
deliver("$user\@example.test", 'after a reload');
is(scalar(maildir_files()), 5, "five messages in ~$user/Maildir/new/ (one from the well-formed request)");

is($t->stop, 0, 'stop');
ok(SluiceTest::gone($dpid3), '... the delivery process is gone too');
unlike($t->log_text, qr/sluice\/(qmgr|delivery)\[\d+\]: (fatal|panic)/, 'no fatal error');

done_testing;
