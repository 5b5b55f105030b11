#!/usr/bin/perl
# queue_tools.t - `sluice queue list|show|hold|release|requeue|delete|flush`
# on mail sent to a running sluice (no queue manager is declared in
# master.cf here, so accepted mail stays in incoming/ for the tools to
# work on): mailq's format, the effect of each action on the files, the
# log lines, postcat's shape, and the flush trigger.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Fcntl qw(O_RDWR O_NONBLOCK);
use File::Temp qw(tempfile);
use POSIX qw(mkfifo strftime);
use SluiceTest;

my $t = SluiceTest->new(start => 0);
$t->set_main(maillog_file => $t->dir . '/maillog');
$t->start;
my $q = $t->config('queue_directory');

# Run `sluice -c DIR @args` with `stdin`: (exit code, stdout, stderr).
sub tool {
	my ($stdin, @args) = @_;
	my ($in, $inname) = tempfile(UNLINK => 1);
	print $in $stdin // '';
	close $in;
	my ($outfh, $out) = tempfile(UNLINK => 1);
	my ($errfh, $err) = tempfile(UNLINK => 1);
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open STDIN, '<', $inname;
		open STDOUT, '>', $out;
		open STDERR, '>', $err;
		exec($SluiceTest::SLUICE, '-c', $t->dir, @args) or POSIX::_exit(127);
	}
	waitpid($pid, 0);
	my $rc = $? >> 8;
	local $/;
	open my $o, '<', $out; my $stdout = <$o> // '';
	open my $e, '<', $err; my $stderr = <$e> // '';
	return ($rc, $stdout, $stderr);
}

sub queue { tool(undef, 'queue', @_) }

sub send_mail {
	my (%m) = @_;
	my $c = $t->smtp;
	$c->hello('client.example.test');
	my ($code, $text) = $c->transaction(%m);
	$c->cmd('QUIT');
	$text =~ /queued as ([0-9A-F]+)/ or die "not queued: $text";
	return $1;
}

sub where {
	my ($id) = @_;
	return join ',', grep { -e "$q/$_/$id" } qw(incoming active deferred hold corrupt);
}

my ($rc, $out, $err) = queue('list');
is($rc, 0, 'list on an empty queue exits 0');
is($out, "Mail queue is empty\n", 'an empty queue says so');

my $id1 = send_mail(from => 'alice@example.org',
		    to => ['bob@example.net', 'carol@example.net'],
		    body => "Subject: first\r\n\r\nbody one\r\n");
my $id2 = send_mail(from => '', to => ['dave@example.net'],
		    body => "Subject: bounce\r\n\r\nbody two\r\n");
my $id3 = send_mail(from => 'erin@example.org', to => ['frank@example.net'],
		    body => "Subject: third\r\nX-Test: yes\r\n\r\nbody three\r\n");
is(where($_), 'incoming', "$_ waits in incoming/") for $id1, $id2, $id3;

# ---- list: mailq's format ----
sub entry {
	my ($id, $mark, $sender, @rcpt) = @_;
	my $f = SluiceTest::read_queue_file($t->queue_path($id, where($id)));
	my ($secs) = $f->{rec}{arrival}[0] =~ /^(\d+)/;
	my $when = substr(strftime('%a %b %e %H:%M:%S %Y', localtime $secs), 0, 20);
	my $text = sprintf "%-11s %7d %20.20s %s\n", "$id$mark", $f->{rec}{size}[0], $when, $sender;
	$text .= ' ' x 41 . "$_\n" for @rcpt;
	return ($text . "\n", $f->{rec}{size}[0]);
}
my $title = "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n";

sub expected_list {
	my (@entries) = @_;
	my ($text, $bytes) = ($title, 0);
	for my $e (@entries) {
		my ($s, $size) = entry(@$e);
		$text .= $s;
		$bytes += $size;
	}
	return $text . sprintf "-- %d Kbytes in %d Request%s.\n", $bytes / 1024,
	    scalar @entries, @entries == 1 ? '' : 's';
}

($rc, $out) = queue('list');
is($rc, 0, 'list exits 0');
is($out, expected_list([$id1, ' ', 'alice@example.org', 'bob@example.net', 'carol@example.net'],
		       [$id2, ' ', 'MAILER-DAEMON', 'dave@example.net'],
		       [$id3, ' ', 'erin@example.org', 'frank@example.net']),
   "list: mailq's columns, arrival order, MAILER-DAEMON for <>, the trailer");
like($out, qr/^\Q$id1\E      ?\d+ \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d  alice\@example\.org$/m,
     'list: ID, size, arrival time, two spaces, sender');

# ---- hold and release ----
my $mark = $t->log_mark;
($rc, $out, $err) = queue('hold', $id1);
is($rc, 0, 'hold ID exits 0');
is(where($id1), 'hold', 'hold moves the file to hold/');
like($err, qr/^sluice: Placed on hold: 1 message$/m, 'hold tells the count');
ok($t->wait_log(qr/sluice\/queue\[\d+\]: \Q$id1\E: placed on hold$/, 5, from => $mark),
   'hold is logged as postsuper logs it');
($rc, $out) = queue('list');
like($out, qr/^\Q$id1\E!\s/m, "list: '!' after a held message's ID");
my $f = SluiceTest::read_queue_file($t->queue_path($id1, 'hold'));
ok($f->{complete}, 'the held file is intact (mode 0700, complete)');

($rc, $out, $err) = queue('release', 'ALL');
is($rc, 0, 'release ALL exits 0');
is(where($id1), 'incoming', 'release moves it back to incoming/');
like($err, qr/Released from hold: 1 message/, 'release tells the count');
ok($t->wait_log(qr/\Q$id1\E: released from hold$/, 5, from => $mark), 'release is logged');

# ---- what the queue manager leaves: active, deferred, reasons ----
rename "$q/incoming/$id2", "$q/deferred/$id2" or die;
rename "$q/incoming/$id3", "$q/active/$id3" or die;
my $reason = 'connect to mx.example.net[192.0.2.1]:25: Connection refused';
$t->write_file("$q/defer/$id2", "0\t$reason\n");
($rc, $out) = queue('list');
my ($e2) = entry($id2, ' ', 'MAILER-DAEMON', 'dave@example.net');
my $with_reason = $e2;
$with_reason =~ s/^( +dave)/' ' x (76 - length $reason) . "($reason)\n$1"/me;
like($out, qr/^\Q$with_reason\E/m,
     'list: a deferral reason in parentheses, right-aligned, above its recipient');
like($out, qr/^\Q$id3\E\*\s/m, "list: '*' after an active message's ID");

# A recipient already delivered is not listed (status byte 'D').
my $path1 = $t->queue_path($id1);
$f = SluiceTest::read_queue_file($path1);
my $at = index($f->{bytes}, "rcpt P\tcarol\@example.net");
open my $fh, '+<', $path1 or die; seek $fh, $at + 5, 0; print $fh 'D'; close $fh;
($rc, $out) = queue('list');
my ($e1) = entry($id1, ' ', 'alice@example.org', 'bob@example.net');
like($out, qr/^\Q$e1\E/m, 'list: done recipients are left out');

# ---- show: postcat's shape ----
($rc, $out) = queue('show', $id1);
is($rc, 0, 'show exits 0');
like($out, qr/\A\*\*\* ENVELOPE RECORDS incoming\/\Q$id1\E \*\*\*\n/, 'show: envelope first');
like($out, qr/^message_size: \d+$/m, 'show: message_size');
like($out, qr/^message_arrival_time: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/m,
     'show: message_arrival_time');
like($out, qr/^sender: alice\@example\.org$/m, 'show: sender');
like($out, qr/^client_address: 127\.0\.0\.1$/m, 'show: client address');
like($out, qr/^helo_name: client\.example\.test$/m, 'show: HELO name');
like($out, qr/^recipient: bob\@example\.net\ndone_recipient: carol\@example\.net$/m,
     'show: recipients, done ones marked');
like($out, qr/^\*\*\* MESSAGE CONTENTS incoming\/\Q$id1\E \*\*\*\nReceived: from client\.example\.test /m,
     'show: then the message, our Received: first');
like($out, qr/^Subject: first\n\nbody one\n\*\*\* MESSAGE FILE END incoming\/\Q$id1\E \*\*\*\n\z/m,
     'show: headers, body, end marker');
($rc, $out) = queue('show', '-h', $id3);
like($out, qr/\AReceived: .*^X-Test: yes\n\z/ms, 'show -h: the header block only');
($rc, $out) = queue('show', '-b', $id3);
is($out, "body three\n", 'show -b: the body only');
($rc, $out) = queue('show', '-e', $id2);
like($out, qr/^sender: \n/m, 'show -e: the null sender');
like($out, qr/^defer_reason: \Q$reason\E$/m, 'show -e: the deferral reason');
unlike($out, qr/MESSAGE CONTENTS/, 'show -e: no content');
($rc, $out, $err) = queue('show', '0123456789ABCDEF');
is($rc, 1, 'show of an unknown ID exits 1');
like($err, qr/0123456789ABCDEF: no such message/, '... and says so');

# ---- requeue ----
$mark = $t->log_mark;
($rc, $out, $err) = queue('requeue', 'ALL');
is($rc, 0, 'requeue ALL exits 0');
is(where($id2), 'incoming', 'requeue takes deferred mail to incoming/');
is(where($id3), 'incoming', 'requeue takes active mail to incoming/');
ok(!-e "$q/defer/$id2", 'requeue forgets the deferral reasons');
like($err, qr/Requeued: 2 messages/, 'requeue tells the count');
ok($t->wait_log(qr/\Q$id3\E: requeued$/, 5, from => $mark), 'requeue is logged');

# ---- selections: -s, -r, -, queue names; half-written files ----
($rc, $out, $err) = queue('hold', 'ALL', 'deferred');
like($err, qr/Placed on hold: 0 messages/, 'naming a queue limits the action to it');
($rc) = queue('hold', '-r', 'FRANK@example.net');
is(where($id3), 'hold', 'hold -r RECIPIENT (any case) selects by recipient');
is(where($id1), 'incoming', '... and nothing else');
($rc, $out, $err) = tool("$id1*    123 whatever\n", 'queue', 'hold', '-');
is(where($id1), 'hold', 'IDs read from stdin (mailq lines) with -');
queue('release', 'ALL');

my $half = '6B0000000000012345';
$t->write_file("$q/incoming/$half", "sluice-queue 1 00000000000000000000\n");
chmod 0600, "$q/incoming/$half";
($rc, $out) = queue('list');
unlike($out, qr/\Q$half\E/, 'list skips a file still being written (mode 0600)');
queue('delete', 'ALL', 'incoming');
ok(-e "$q/incoming/$half", 'delete ALL leaves a file being written alone');
unlink "$q/incoming/$half";

# Everything was deleted by ALL above; send again for -s and -r.
is_deeply([ map { $t->queue_files($_) } qw(incoming hold) ], [], 'delete ALL emptied the queue');
$id1 = send_mail(from => 'alice@example.org', to => ['bob@example.net']);
$id2 = send_mail(from => '', to => ['dave@example.net']);
$id3 = send_mail(from => 'erin@example.org', to => ['frank@example.net']);
$t->write_file("$q/defer/$id3", "0\tx\n");
$t->write_file("$q/defer/$id3.qmgr", "state\n");
$mark = $t->log_mark;
($rc, $out, $err) = queue('delete', '-s', '<>');
is(where($id2), '', 'delete -s <> removes the null sender\'s mail');
is(where($id1), 'incoming', '... only that');
($rc) = queue('delete', '-r', '<frank@example.net>');
is(where($id3), '', 'delete -r RECIPIENT');
ok(!-e "$q/defer/$id3" && !-e "$q/defer/$id3.qmgr",
   "delete removes the queue manager's files for the message too");
($rc, $out, $err) = queue('delete', $id1);
is($rc, 0, 'delete ID exits 0');
is(where($id1), '', 'delete ID removes the file');
like($err, qr/Deleted: 1 message$/m, 'delete tells the count');
ok($t->wait_log(qr/\Q$id1\E: removed$/, 5, from => $mark), 'delete is logged as "ID: removed"');
($rc, $out, $err) = queue('delete', $id1);
is($rc, 1, 'deleting a message that is not there exits 1');
like($err, qr/\Q$id1\E: no such message/, '... naming it');
($rc, $out, $err) = queue('delete', '../../etc/passwd');
is($rc, 2, 'something that is not an ID is a usage error');
($rc, $out, $err) = queue('delete');
is($rc, 2, 'delete without a selection is a usage error');
($rc, $out) = queue('list');
is($out, "Mail queue is empty\n", 'the queue is empty again');

# ---- flush ----
($rc, $out, $err) = queue('flush');
is($rc, 1, 'flush without a queue manager exits 1');
like($err, qr/queue manager is not running/, '... and says why');
mkdir "$q/public";
mkfifo("$q/public/qmgr", 0622) or die "mkfifo: $!";
sysopen(my $fifo, "$q/public/qmgr", O_RDWR | O_NONBLOCK) or die "fifo: $!";
($rc, $out, $err) = queue('flush');
is($rc, 0, 'flush with a queue manager listening exits 0');
my $got = '';
sysread($fifo, $got, 64);
is($got, 'FA', 'flush asks to forget dead destinations, then to try everything (F, A)');
close $fifo;

done_testing;
