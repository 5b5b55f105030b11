#!/usr/bin/perl
# e2e_lmtp.t - Dovecot's LMTP server as sluice's next hop, end to end:
# mail in over SMTP, transport_maps sends a domain to
# lmtp:unix:/path, and the messages are read back from the maildirs
# Dovecot writes.
#  - Dovecot (the dovecot-lmtpd package) is started here with a minimal
#    configuration of its own: protocols = lmtp, a unix_listener in a
#    temporary directory, mail_location = maildir:DIR/%u, a passwd-file
#    userdb (and passdb) listing the two known users;
#  - one message to both users and to an unknown one: the two are
#    delivered (sluice/lmtp "status=sent", the per-recipient 250 after
#    DATA), only the unknown one bounces (Dovecot's 550 5.1.1 at RCPT),
#    and the bounce to the sender names that one alone;
#  - each maildir holds the message once, with sluice's envelope sender
#    as Return-Path:; a message to one recipient also gets Dovecot's
#    Delivered-To:.
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

my $DOVECOT = '/usr/sbin/dovecot';
-x $DOVECOT && -x '/usr/lib/dovecot/lmtp'
    or BAIL_OUT('Dovecot\'s LMTP server (dovecot-lmtpd) is not installed: run scripts/install-deps');
-x $SINK or BAIL_OUT('smtp-sink (the postfix package) is not installed: run scripts/install-deps');
$< == 0 or BAIL_OUT('e2e_lmtp.t must run as root (Dovecot\'s master does)');

my $tmp = File::Temp::tempdir(CLEANUP => !$ENV{SLUICE_KEEP_TMP});
chmod 0755, $tmp;

# ---- Dovecot --------------------------------------------------------------------

my ($uid, $gid) = (getpwnam 'nobody')[2, 3];
my $socket = "$tmp/lmtp";
mkdir "$tmp/$_", 0755 for qw(run state mail);
chown $uid, $gid, "$tmp/mail";

sub write_file {
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh or die "$path: $!";
}

write_file("$tmp/users", join '', map { "$_\@lmtp.test::${uid}:${gid}::$tmp/mail/$_\@lmtp.test::\n" } qw(bob carol));
write_file("$tmp/dovecot.conf", <<"EOF");
base_dir = $tmp/run
state_dir = $tmp/state
log_path = $tmp/dovecot.log
protocols = lmtp
ssl = no
mail_location = maildir:$tmp/mail/%u
passdb {
  driver = passwd-file
  args = $tmp/users
}
userdb {
  driver = passwd-file
  args = $tmp/users
}
service lmtp {
  unix_listener $socket {
    mode = 0666
  }
}
EOF

my $dovecot = fork // die "fork: $!";
if ($dovecot == 0) {
	open STDIN, '<', '/dev/null';
	open STDOUT, '>>', "$tmp/dovecot.out" or POSIX::_exit(126);
	open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
	SluiceTest::die_with_parent();
	exec($DOVECOT, '-F', '-c', "$tmp/dovecot.conf") or POSIX::_exit(127);
}
# A signal (a harness' timeout) must still run the END blocks.
$SIG{$_} = sub { exit 1 } for qw(INT TERM HUP);
END {
	if ($dovecot) {
		local ($?, $!);
		kill 'TERM', $dovecot;
		waitpid $dovecot, 0;
	}
}
ok(wait_until(sub { IO::Socket::UNIX->new(Peer => $socket) }, 20), 'Dovecot\'s LMTP socket answers')
    or BAIL_OUT("Dovecot did not start:\n" . (`cat $tmp/dovecot.out $tmp/dovecot.log 2>&1` // ''));

# ---- sluice -------------------------------------------------------------------------

my $home = start_sink("$tmp/home");	# the sender's next hop, for the bounce
my $t = qmgr_sluice(main => {
	relayhost => "[127.0.0.1]:$home",
	transport_maps => 'texthash:%DIR%/transport',
}, files => { transport => "lmtp.test lmtp:unix:$socket\n" });

sub maildir_text {
	my ($user, $msgid) = @_;
	my $dir = "$tmp/mail/$user/new";
	opendir my $dh, $dir or return ();
	my @texts;
	for my $f (sort grep { !/^\./ } readdir $dh) {
		open my $fh, '<', "$dir/$f" or next;
		local $/;
		my $text = <$fh> // '';
		push @texts, $text if $text =~ /^Message-ID: <\Q$msgid\E>\r?$/mi;
	}
	return @texts;
}

my $mark = $t->log_mark;
my $id = send_mail($t, from => 'alice@example.org',
		   to => ['bob@lmtp.test', 'nosuch@lmtp.test', 'carol@lmtp.test'],
		   body => "Message-ID: <one\@client.example>\nSubject: over LMTP\n\nhello\n");
ok($id, 'a message for two known users and an unknown one is queued');
ok($t->wait_log(qr/\Q$id\E: removed$/, 20, from => $mark), '... and finished')
    or diag($t->log_text($mark));
my $log = $t->log_text($mark);
for my $u (qw(bob carol)) {
	like($log, qr{ sluice/lmtp\[\d+\]: \Q$id\E: to=<$u\@lmtp\.test>, relay=[^,]+, delay=[\d.]+, delays=[\d./]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 <$u\@lmtp\.test> [^)]*Saved\)$}m,
	     "$u: status=sent with Dovecot's own reply after DATA");
	my @got = maildir_text("$u\@lmtp.test", 'one@client.example');
	is(scalar @got, 1, "$u\'s maildir (written by Dovecot) has the message once");
	like($got[0] // '', qr/^\s+by \S+ with LMTP\r?$/m, '... with Dovecot\'s "Received: ... with LMTP"');
	like($got[0] // '', qr/^Return-Path: <alice\@example\.org>\r?$/m, '... Return-Path: the envelope sender');
	like($got[0] // '', qr/^Subject: over LMTP\r?$/m, '... and the message');
}
like($log, qr{ sluice/lmtp\[\d+\]: \Q$id\E: to=<nosuch\@lmtp\.test>, relay=[^,]+, .*dsn=5\.1\.1, status=bounced \(.*550 5\.1\.1 .*nosuch\@lmtp\.test}m,
     'the unknown user bounces with Dovecot\'s 550 5.1.1');
is(scalar(() = $log =~ /status=bounced/g), 1, '... and only that recipient');
ok(!-e "$tmp/mail/nosuch\@lmtp.test", '... nothing was written for it');
my $bounce;
ok(wait_until(sub { ($bounce) = grep { /^X-Mail-Args: <>$/m && /one\@client\.example/ } dumps("$tmp/home") }, 20),
   'the bounce reaches the sender');
like($bounce // '', qr/^X-Rcpt-Args: <alice\@example\.org>$/m, '... addressed to the envelope sender');
like($bounce // '', qr/nosuch\@lmtp\.test/, '... naming the unknown user');
unlike($bounce // '', qr/Final-Recipient: rfc822;\s*(?:bob|carol)\@/i, '... and not the delivered ones');

# ---- a second delivery --------------------------------------------------------------------

$mark = $t->log_mark;
$id = send_mail($t, from => 'alice@example.org', to => ['carol@lmtp.test'],
		body => "Message-ID: <two\@client.example>\nSubject: again\n\nhello again\n");
ok($t->wait_log(qr/\Q$id\E: removed$/, 20, from => $mark), 'a second message is delivered');
my @got = maildir_text('carol@lmtp.test', 'two@client.example');
is(scalar @got, 1, '... into carol\'s maildir');
like($got[0] // '', qr/^Delivered-To: carol\@lmtp\.test\r?$/m,
     '... with Delivered-To: (Dovecot adds it when a transaction has one recipient)');
is(scalar(maildir_text('carol@lmtp.test', 'one@client.example')), 1, '... next to the first');

my @warn = grep { /: (?:warning|error|fatal|panic): / } split /\n/, $t->log_text;
is_deeply(\@warn, [], 'no warning in sluice\'s log');
$t->stop;

done_testing;
