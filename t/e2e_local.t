#!/usr/bin/perl
# e2e_local.t - local, pipe and virtual delivery end to end: mail in over
# SMTP, through the queue manager, into real mailboxes read back here
# (docs/local-delivery.md).
#  - two users made for the test (useradd; userdel at the end): one gets
#    mail in $HOME/Maildir/ (home_mailbox = Maildir/), the other, through
#    a local transport with -o home_mailbox= chosen by transport_maps, in
#    an mbox in mail_spool_directory (a temp dir only root may write):
#    From_ line, ">From " quoting, Return-Path:, Delivered-To:, owner and
#    mode of the files;
#  - an alias (alias_maps = texthash:) to both users and to a |command
#    that writes its stdin to a file (run as default_privs, nobody);
#  - a pipe(8) transport from master.cf (flags=FR user=nobody
#    argv=/bin/sh -c { cat > DIR/${recipient} }) chosen by transport_maps;
#  - a virtual mailbox domain: virtual_mailbox_base, virtual_mailbox_maps
#    (a maildir and an mbox), virtual_uid_maps / virtual_gid_maps
#    (static:, an id without an account);
#  - the delivery lines: sluice/local, sluice/pipe, sluice/virtual with
#    their relay= and status=sent texts.
# Runs as root (the agents change ids, useradd); refuses to run otherwise.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use SluiceTest qw(wait_until);
use QmgrTest qw(qmgr_sluice send_mail);

$< == 0 or BAIL_OUT('e2e_local.t must run as root (it creates users, and delivery changes ids)');

my $VUID = 54321;		# virtual mailboxes: an id without an account

# ---- users -------------------------------------------------------------------

my $tmp = File::Temp::tempdir(CLEANUP => !$ENV{SLUICE_KEEP_TMP});
chmod 0755, $tmp;
my @users;
END {
	local ($?, $!);
	system('userdel', $_) for @users;
}
# A signal (a harness' timeout) must still run the END blocks.
$SIG{$_} = sub { exit 1 } for qw(INT TERM HUP);

# Users left by a run that was killed (its process gone) go first.
sub drop_stale_users {
	my @stale;
	setpwent();
	while (my @pw = getpwent()) {
		push @stale, $pw[0] if $pw[0] =~ /^sluicee[ab](\d+)$/ && $1 != $$ && !kill(0, $1);
	}
	endpwent();
	system('userdel', $_) for @stale;
}
drop_stale_users();

sub make_user {
	my ($name) = @_;
	mkdir "$tmp/home";
	chmod 0755, "$tmp/home";
	system('useradd', '-M', '-U', '-d', "$tmp/home/$name", '-s', '/bin/sh', $name) == 0
	    or BAIL_OUT("useradd $name failed");
	push @users, $name;
	my ($uid, $gid) = (getpwnam $name)[2, 3];
	mkdir "$tmp/home/$name", 0700;
	chown $uid, $gid, "$tmp/home/$name";
	return $uid;
}

my $tag = $$;			# the names say whose they are: drop_stale_users()
my ($ua, $ub) = ("sluiceea$tag", "sluiceeb$tag");
my $uid_a = make_user($ua);
my $uid_b = make_user($ub);
my $nobody = (getpwnam 'nobody')[2];

# ---- files -------------------------------------------------------------------

sub slurp {
	my ($path) = @_;
	open my $fh, '<', $path or return undef;
	local $/;
	return scalar <$fh>;
}

# The files in a maildir's new/, oldest first.
sub maildir_files {
	my ($dir) = @_;
	opendir my $dh, "$dir/new" or return ();
	return map { "$dir/new/$_" } sort grep { !/^\./ } readdir $dh;
}

sub find_message {
	my ($dir, $msgid) = @_;
	for my $f (maildir_files($dir)) {
		my $text = slurp($f) // next;
		return ($f, $text) if $text =~ /^Message-ID: <\Q$msgid\E>$/mi;
	}
	return;
}

mkdir "$tmp/spool", 0755;		# like /var/mail: only root may write
mkdir "$tmp/out", 0777;
chmod 01777, "$tmp/out";
mkdir "$tmp/pipe", 0777;
chmod 01777, "$tmp/pipe";
mkdir "$tmp/vmail", 0755;
mkdir "$tmp/vmail/virt.test", 0755;
chown $VUID, $VUID, "$tmp/vmail", "$tmp/vmail/virt.test";

# ---- the server --------------------------------------------------------------

my $t = qmgr_sluice(main => {
	mydestination => 'localhost, example.test, $myhostname',
	recipient_delimiter => '+',
	home_mailbox => 'Maildir/',
	mail_spool_directory => "$tmp/spool",
	alias_maps => 'texthash:%DIR%/aliases',
	transport_maps => 'texthash:%DIR%/transport',
	mypipe_destination_recipient_limit => 1,
	virtual_mailbox_domains => 'virt.test',
	virtual_mailbox_maps => 'texthash:%DIR%/vmailbox',
	virtual_mailbox_base => "$tmp/vmail",
	virtual_uid_maps => "static:$VUID",
	virtual_gid_maps => "static:$VUID",
}, services => "mboxlocal unix - n n - - local -o home_mailbox=\n"
    . "mypipe unix - n n - - pipe flags=FR user=nobody argv=/bin/sh -c { cat > $tmp/pipe/\${recipient} }\n",
   files => {
	aliases => "team: $ua, $ub, \"|cat > $tmp/out/team.out\"\n",
	transport => "$ub\@example.test mboxlocal:\nroot\@example.test mboxlocal:\npipe.test mypipe:\n",
	vmailbox => "vic\@virt.test virt.test/vic/\nvera\@virt.test virt.test/vera\n",
});

my $body_n = 0;
sub body {
	my ($msgid) = @_;
	$body_n++;
	return "Message-ID: <$msgid>\nSubject: test $body_n\nFrom: alice\@example.org\n\n"
	    . "first line\nFrom the start of a line\n>From already quoted\nlast line\n";
}

sub deliver {
	my ($msgid, @to) = @_;
	my $mark = $t->log_mark;
	my $id = send_mail($t, from => 'alice@example.org', to => \@to, body => body($msgid));
	ok($id, "<$msgid> to @to is queued");
	ok($t->wait_log(qr/\Q$id\E: removed$/, 20, from => $mark), '... delivered and removed')
	    or diag($t->log_text($mark));
	return ($id, $t->log_text($mark));
}

# ---- a user's maildir -----------------------------------------------------------

my ($id, $log) = deliver('one@client.example', "$ua\@example.test");
like($log, qr{ sluice/local\[\d+\]: \Q$id\E: to=<\Q$ua\E\@example\.test>, relay=local, delay=[\d.]+, delays=[\d./]+, dsn=2\.0\.0, status=sent \(delivered to maildir\)$}m,
     'sluice/local logs "delivered to maildir"');
my ($file, $text) = find_message("$tmp/home/$ua/Maildir", 'one@client.example');
ok($file, "the message is in ~$ua/Maildir/new/");
like($text // '', qr/\AReturn-Path: <alice\@example\.org>\n/, '... Return-Path: first');
like($text // '', qr/^Delivered-To: \Q$ua\E\@example\.test$/m, '... Delivered-To: the recipient');
like($text // '', qr/^From the start of a line$/m, '... no From quoting in a maildir');
is((stat($file // '/'))[4], $uid_a, '... the file belongs to the user');
is((stat("$tmp/home/$ua/Maildir"))[2] & 07777, 0700, '... Maildir/ made with mode 0700');

# ---- a user's mbox, through a second local transport --------------------------------

($id, $log) = deliver('two@client.example', "$ub\@example.test");
like($log, qr{ sluice/local\[\d+\]: \Q$id\E: to=<\Q$ub\E\@example\.test>, relay=local, .*status=sent \(delivered to mailbox\)$}m,
     'transport_maps to "mboxlocal" (-o home_mailbox=): delivered to mailbox');
my $mbox = "$tmp/spool/$ub";
$text = slurp($mbox) // '';
like($text, qr/\AFrom alice\@example\.org  \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n/,
     "the mbox in mail_spool_directory starts with the From_ line");
like($text, qr/^Return-Path: <alice\@example\.org>$/m, '... Return-Path:');
like($text, qr/^Delivered-To: \Q$ub\E\@example\.test$/m, '... Delivered-To:');
like($text, qr/^Message-ID: <two\@client\.example>$/m, '... the message');
like($text, qr/^>From the start of a line$/m, '... a body line "From " is quoted');
like($text, qr/^>From already quoted$/m, '... ">From " is left as it is');
like($text, qr/\nlast line\n\n\z/, '... and it ends with an empty line');
my @st = stat $mbox;
is($st[4], $uid_b, '... the new mailbox is given to the user');
is($st[2] & 07777, 0600, '... mode 0600');
ok(!-e "$mbox.lock", '... the dot-lock is gone');
ok(!-d "$tmp/home/$ub/Maildir", '... and nothing went to a maildir');

# ---- mail for root ----------------------------------------------------------------
# root's home is closed to default_privs: its .forward is looked for as
# root (as Postfix's open_as() does), the mailbox is written as default_privs.

{
	my $root_home = (getpwnam 'root')[7];
	($id, $log) = deliver('root@client.example', 'root@example.test');
	like($log, qr{ sluice/local\[\d+\]: \Q$id\E: to=<root\@example\.test>, relay=local, .*status=sent \(delivered to mailbox\)$}m,
	     "mail for root is delivered (root's home $root_home is not readable by default_privs)");
	like(slurp("$tmp/spool/root") // '', qr/^Message-ID: <root\@client\.example>$/m,
	     '... into the mbox in mail_spool_directory');
}

# ---- an alias to two users and a command ------------------------------------------

($id, $log) = deliver('three@client.example', 'team@example.test');
like($log, qr{ sluice/local\[\d+\]: \Q$id\E: to=<team\@example\.test>, relay=local, .*status=sent \(3 destinations: }m,
     'the alias is delivered to its 3 destinations');
ok(scalar find_message("$tmp/home/$ua/Maildir", 'three@client.example'), "$ua has it");
ok(scalar find_message("$tmp/home/$ub/Maildir", 'three@client.example'),
   "$ub has it (the alias went through the local transport: a maildir)");
$text = slurp("$tmp/out/team.out") // '';
like($text, qr/^Message-ID: <three\@client\.example>$/m, 'the |command got the message on stdin');
like($text, qr/^Delivered-To: team\@example\.test$/m, '... with Delivered-To: the alias');
is((stat("$tmp/out/team.out"))[4], $nobody, '... and ran as default_privs (nobody)');

# ---- pipe(8) from master.cf ---------------------------------------------------------

($id, $log) = deliver('four@client.example', 'x@pipe.test', 'y@pipe.test');
for my $r (qw(x y)) {
	like($log, qr{ sluice/pipe\[\d+\]: \Q$id\E: to=<$r\@pipe\.test>, relay=mypipe, .*status=sent \(delivered via mypipe service\)$}m,
	     "$r\@pipe.test: sluice/pipe logs relay=mypipe, delivered via mypipe service");
	$text = slurp("$tmp/pipe/$r\@pipe.test") // '';
	like($text, qr/\AFrom alice\@example\.org  /, "... the command wrote the From_ line (flag F)");
	like($text, qr/^Return-Path: <alice\@example\.org>$/m, '... Return-Path: (flag R)');
	unlike($text, qr/^Delivered-To:/m, '... no Delivered-To: without flag D');
	like($text, qr/^Message-ID: <four\@client\.example>$/m, '... the message');
	is((stat("$tmp/pipe/$r\@pipe.test"))[4], $nobody, '... written as user= (nobody)');
}

# ---- a virtual mailbox domain -------------------------------------------------------------

($id, $log) = deliver('five@client.example', 'vic@virt.test', 'vera@virt.test');
like($log, qr{ sluice/virtual\[\d+\]: \Q$id\E: to=<vic\@virt\.test>, relay=virtual, .*dsn=2\.0\.0, status=sent \(delivered to maildir\)$}m,
     'sluice/virtual: vic@virt.test delivered to maildir');
like($log, qr{ sluice/virtual\[\d+\]: \Q$id\E: to=<vera\@virt\.test>, relay=virtual, .*dsn=2\.0\.0, status=sent \(delivered to mailbox\)$}m,
     '... vera@virt.test delivered to mailbox');
($file, $text) = find_message("$tmp/vmail/virt.test/vic", 'five@client.example');
ok($file, 'the message is in virtual_mailbox_base/virt.test/vic/new/');
like($text // '', qr/^Delivered-To: vic\@virt\.test$/m, '... Delivered-To: the recipient');
like($text // '', qr/\AReturn-Path: <alice\@example\.org>\n/, '... Return-Path: first');
is((stat($file // '/'))[4], $VUID, '... owned by virtual_uid_maps\' uid');
is((stat($file // '/'))[5], $VUID, '... and virtual_gid_maps\' gid');
$text = slurp("$tmp/vmail/virt.test/vera") // '';
like($text, qr/\AFrom alice\@example\.org  /, 'the virtual mbox starts with the From_ line');
like($text, qr/^Delivered-To: vera\@virt\.test$/m, '... Delivered-To:');
like($text, qr/^>From the start of a line$/m, '... From quoting');
is((stat("$tmp/vmail/virt.test/vera"))[4], $VUID, '... owned by the virtual uid');

my @warn = grep { /: (?:warning|error|fatal|panic): / } split /\n/, $t->log_text;
is_deeply(\@warn, [], 'no warning in the log');
$t->stop;

done_testing;
