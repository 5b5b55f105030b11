#!/usr/bin/perl
# sendmail.t - build/bin/sendmail (and mailq, newaliases) while sluice is
# down: messages land in queue_directory/maildrop/ in the maildrop format
# (docs/queue-tools.md), with -t, -f, -F, -i/-oi, -bs and the refusals;
# pickup_run() itself is tested by t/unit/pickup.c.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Basename qw(dirname);
use File::Temp qw(tempfile);
use POSIX qw(WNOHANG);
use SluiceTest qw(wait_until);

my $BIN = dirname($SluiceTest::SLUICE);       # sendmail sits beside sluice
my $t = SluiceTest->new(start => 0, main => { myorigin => 'example.test' });
my $q = $t->config('queue_directory');

# Run a program with `stdin` and SLUICE_CONFIG_DIR set; (exit code,
# stdout, stderr).  `as` runs it as another user (root only).
sub run {
	my (%o) = @_;
	my ($in, $inname) = tempfile(UNLINK => 1);
	print $in $o{stdin} // '';
	close $in;
	chmod 0644, $inname;
	my ($o1, $out) = tempfile(UNLINK => 1);
	my ($e1, $err) = tempfile(UNLINK => 1);
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open STDIN, '<', $inname;
		open STDOUT, '>', $out;
		open STDERR, '>', $err;
		$ENV{SLUICE_CONFIG_DIR} = $t->dir;
		delete $ENV{MAIL_CONFIG};
		$ENV{NAME} = $o{name} if defined $o{name};
		if (defined $o{as}) {
			my ($uid, $gid) = (getpwnam $o{as})[2, 3];
			$( = $) = "$gid $gid";
			$< = $> = $uid;
		}
		exec(@{ $o{cmd} }) or POSIX::_exit(127);
	}
	waitpid($pid, 0);
	my $rc = $? >> 8;
	local $/;
	open my $a, '<', $out; my $stdout = <$a> // '';
	open my $b, '<', $err; my $stderr = <$b> // '';
	return ($rc, $stdout, $stderr);
}

sub sendmail {
	my ($stdin, @args) = @_;
	return run(stdin => $stdin, cmd => ["$BIN/sendmail", @args]);
}

sub drops { return grep { !/^\./ } do { opendir my $d, "$q/maildrop" or return (); readdir $d } }

# Read a maildrop file the way docs/queue-tools.md describes it.
sub read_drop {
	my ($name) = @_;
	my $path = "$q/maildrop/$name";
	my @st = stat $path or return;
	open my $fh, '<:raw', $path or return;
	local $/;
	my $bytes = <$fh>;
	my %d = (mode => $st[2] & 07777, uid => $st[4], rcpt => []);
	$bytes =~ /\Asluice-maildrop 1 (\d{20})\n/ or return { %d, problem => 'preamble' };
	$d{content} = substr($bytes, 39, $1);
	my $records = substr($bytes, 39 + $1);
	$d{problem} = 'no end' unless $records =~ /\nend\n\z/;
	for my $line (split /\n/, $records) {
		my ($name2, $value) = $line =~ /^([a-z]+)(?: (.*))?$/ or next;
		if ($name2 eq 'rcpt') { push @{ $d{rcpt} }, $value }
		else { $d{$name2} = $value // '' }
	}
	return \%d;
}

# Exactly one new file in maildrop/: its name (and it is taken away).
my %seen;
sub new_drop {
	my @new = grep { !$seen{$_}++ } drops();
	return @new == 1 ? $new[0] : undef;
}

# ---- before the queue exists ----
my ($rc, $out, $err) = sendmail("Subject: x\n\nx\n", 'bob@example.net');
is($rc, 75, 'no maildrop/ yet: EX_TEMPFAIL');
like($err, qr/^sendmail: fatal: cannot create a file in .*maildrop/m, '... saying why');

# Starting sluice once makes the directories; then it is stopped again.
$t->start;
$t->stop;
is(sprintf('%04o', (stat "$q/maildrop")[2] & 07777), '1733', 'maildrop/ has mode 1733');
is(sprintf('%04o', (stat "$q/public")[2] & 07777), '0711', 'public/ has mode 0711');
is(sprintf('%04o', (stat "$q/defer")[2] & 07777), '0700', 'defer/ has mode 0700');
ok(((stat $q)[2] & 0011) == 0011, 'queue_directory can be searched by every user');

# ---- a plain submission, the daemon down ----
($rc, $out, $err) = sendmail("Subject: hi\n\nline one\n.\nnot this\n", '-f', 'alice@example.org',
			     'bob@example.net');
is($rc, 0, 'sendmail exits 0 while sluice is down');
is($err, '', '... quietly');
my $name = new_drop();
ok(defined $name, 'one file in maildrop/') or BAIL_OUT('nothing dropped');
like($name, qr/^[0-9A-F]{29}$/, 'named by time and random digits');
my $d = read_drop($name);
is(sprintf('%04o', $d->{mode}), '0744', 'complete: mode 0744 (owner x bit)');
is($d->{problem}, undef, 'a well-formed maildrop file');
is($d->{content}, "Subject: hi\n\nline one\n", 'without -i a lone "." ends the message');
is($d->{sender}, 'alice@example.org', '-f sets the sender');
is_deeply($d->{rcpt}, ['bob@example.net'], 'the recipient from the command line');
is($d->{uid}, $<, 'the file belongs to the user who ran sendmail');

($rc) = sendmail("From me Sat Nov 21 00:00:00 2026\r\nSubject: dots\r\n\r\n.\r\n..two\r\nlast line", '-oi',
		 '-F', "Al\tIce", 'bob@example.net, carol@example.net');
$d = read_drop(new_drop());
is($d->{content}, "Subject: dots\n\n.\n..two\nlast line\n",
   '-oi keeps "." lines; CR LF becomes LF; the From_ line goes; a last LF is added');
is_deeply($d->{rcpt}, ['bob@example.net', 'carol@example.net'], 'an address list as one argument');
is($d->{fullname}, 'Al Ice', '-F sets the full name (control characters become spaces)');
like($d->{sender}, qr/^\S+$/, 'without -f, the sender is the login name');

($rc) = sendmail("Subject: x\n\nx\n", '-i', '-f', '<>', 'bob@example.net');
$d = read_drop(new_drop());
is($d->{sender}, '', '-f <> is the null sender');
($rc) = run(stdin => "Subject: x\n\nx\n", name => 'Name From Env',
	    cmd => ["$BIN/sendmail", 'bob@example.net']);
is(read_drop(new_drop())->{fullname}, 'Name From Env', 'without -F, $NAME is the full name');

# ---- -t ----
my $msg = "To: Ann <ann\@x.example>, bob\@y.example\nCc: (a comment) carol\@z.example,\n"
    . "\tteam: dan\@w.example, \"e v\"\@w.example;\nBcc: hidden\@v.example\nSubject: t\n\nbody\n";
($rc, $out, $err) = sendmail($msg, '-t', '-i', 'extra@u.example');
is($rc, 0, '-t exits 0');
$d = read_drop(new_drop());
is_deeply($d->{rcpt}, ['extra@u.example', 'ann@x.example', 'bob@y.example', 'carol@z.example',
		       'dan@w.example', '"e v"@w.example', 'hidden@v.example'],
	  '-t: To:, Cc: (folded, a group), Bcc: added to the command line\'s');
unlike($d->{content}, qr/^Bcc:/mi, '-t removes Bcc:');
like($d->{content}, qr/^Cc: \(a comment\) carol\@z\.example,\n\tteam:/m, '-t keeps To: and Cc: as they were');

($rc) = sendmail("To: old\@x.example\nResent-To: new\@x.example\nResent-Bcc: secret\@x.example\n\nb\n", '-t');
$d = read_drop(new_drop());
is_deeply($d->{rcpt}, ['new@x.example', 'secret@x.example'], '-t with Resent- headers uses only those');
unlike($d->{content}, qr/secret/, '-t removes Resent-Bcc:');

($rc, $out, $err) = sendmail("Subject: none\n\nx\n", '-t');
is($rc, 65, '-t without any recipient: EX_DATAERR');
like($err, qr/no recipient addresses found in the message header/, '... saying why');
($rc, $out, $err) = sendmail("Subject: none\n\nx\n");
is($rc, 64, 'no recipients and no -t: EX_USAGE');
is(new_drop(), undef, 'refused messages leave no file');

# ---- limits ----
$t->set_main(message_size_limit => 1000);
($rc, $out, $err) = sendmail("Subject: big\n\n" . ("x" x 70 . "\n") x 20, 'bob@example.net');
is($rc, 65, 'a message over message_size_limit: EX_DATAERR');
like($err, qr/message file too big/, '... saying so');
is(new_drop(), undef, '... and leaves no file');
$t->set_main(message_size_limit => undef);

# ---- another user ----
SKIP: {
	skip 'running sendmail as another user needs root', 3 if $< != 0;
	($rc, $out, $err) = run(stdin => "Subject: nobody\n\nx\n", as => 'nobody',
				cmd => ["$BIN/sendmail", 'bob@example.net']);
	is($rc, 0, 'an unprivileged user can submit') or diag $err;
	my $n = new_drop();
	$d = read_drop($n);
	is($d->{uid}, scalar getpwnam('nobody'), 'the file belongs to that user');
	is($d->{sender}, 'nobody', 'the sender is that user\'s login name');
}

# ---- -bs ----
my $dialogue = "EHLO client.example\r\nMAIL FROM:<alice\@example.org> SIZE=100\r\n"
    . "RCPT TO:<bob\@example.net>\r\nRCPT TO:<carol\@example.net>\r\nDATA\r\n"
    . "Subject: smtp\r\n\r\n..dot\r\n.\r\nRCPT TO:<x\@y>\r\nVRFY bob\r\nQUIT\r\n";
($rc, $out) = sendmail($dialogue, '-bs');
is($rc, 0, '-bs exits 0');
my @replies = map { /^(\d{3}[ -]\S+)/ ? $1 : $_ } split /\r\n/, $out;
is_deeply(\@replies, ['220 mx.example.test', '250-mx.example.test', '250-PIPELINING',
		      '250-SIZE', '250-8BITMIME', '250 ENHANCEDSTATUSCODES', '250 2.1.0',
		      '250 2.1.5', '250 2.1.5', '354 End', '250 2.0.0', '503 5.5.1',
		      '502 5.5.1', '221 2.0.0'], '-bs: an SMTP dialogue on stdin and stdout');
my ($queued) = $out =~ /queued as ([0-9A-F]+)/;
$name = new_drop();
is($queued, $name, '-bs: "queued as" names the maildrop file');
$d = read_drop($name);
is($d->{content}, "Subject: smtp\n\n.dot\n", '-bs: dot-unstuffed content, LF line ends');
is($d->{sender}, 'alice@example.org', '-bs: the sender of MAIL FROM');
is_deeply($d->{rcpt}, ['bob@example.net', 'carol@example.net'], '-bs: the recipients of RCPT TO');

# ---- mailq, -bp, -q ----
my ($mrc, $mailq) = run(cmd => ["$BIN/mailq"]);
my ($brc, $bp) = run(cmd => ["$BIN/sendmail", '-bp']);
my ($qrc, $list) = $t->sluice('queue', 'list');
is($mrc, 0, 'mailq exits 0');
is($mailq, $list, 'mailq prints what sluice queue list prints');
is($bp, $list, 'sendmail -bp too');
like($mailq, qr/^\Q$name\E\s+\d+ .* \(maildrop queue, sender UID $<\)$/m,
     'files waiting in maildrop/ are listed with their sender UID');
($rc, $out, $err) = run(cmd => ["$BIN/sendmail", '-q']);
is($rc, 69, 'sendmail -q while sluice is down: EX_UNAVAILABLE');

# ---- picked up when sluice starts (with a queue manager) ----
{
	my @waiting = drops();
	$t->set_main(defer_transports => 'smtp');      # no delivery attempts
	$t->write_master;
	open my $m, '>>', $t->dir . '/master.cf' or die;
	print $m "qmgr unix n - n 300 1 qmgr\n";
	close $m;
	$t->start;
	ok(wait_until(sub { !drops() }, 10), 'sluice starts: pickup empties maildrop/');
	ok($t->wait_log(qr/: uid=$< from=<alice\@example\.org>$/),
	   'pickup logs "ID: uid=N from=<sender>"');
	my ($lc, $listing) = $t->sluice('queue', 'list');
	like($listing, qr/-- \d+ Kbytes in \Q${\ scalar @waiting}\E Requests\./,
	     'every waiting message is queued');
	ok(wait_until(sub { (($t->sluice('queue', 'list'))[1]) =~ /^ +\(.+\)\n +\S+\@/m }, 10),
	   'a deferral reason written by the queue manager shows in the list');
	$t->stop;
}

# ---- newaliases ----
{
	$t->write_file('aliases', "postmaster: root\nabuse: root\n");
	$t->set_main(alias_database => 'hash:' . $t->dir . '/aliases');
	($rc, $out, $err) = run(cmd => ["$BIN/newaliases"]);
	is($rc, 0, 'newaliases exits 0') or diag $err;
	ok(-e $t->dir . '/aliases.lmdb', 'newaliases builds alias_database');
}

done_testing;
