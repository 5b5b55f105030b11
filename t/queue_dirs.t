#!/usr/bin/perl
# queue_dirs.t - the master creates queue_directory and its subdirectories
# with mail_owner as owner and mode 0700 when they are missing (as
# `postfix check` does), and refuses to start, saying why, when it cannot.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest;

my $t = SluiceTest->new;
my $q = $t->config('queue_directory');
my $owner = getpwnam(SluiceTest::run_user());
for my $sub (qw(incoming active deferred hold corrupt)) {
	my @st = stat "$q/$sub";
	ok(@st, "$sub/ was created");
	is(sprintf('%04o', $st[2] & 07777), '0700', "$sub/ has mode 0700");
	is($st[4], $owner, "$sub/ belongs to mail_owner");
}
$t->stop;

# mail_owner needs no search permission above the queue: the workers
# enter queue_directory before they drop privileges, as Postfix's daemons
# do (`make run` as root keeps its queue in a tree under /root).
SKIP: {
	skip 'privilege separation needs root', 2 if $< != 0;
	my $p = SluiceTest->new(start => 0);
	chmod 0700, $p->dir;
	$p->start;
	my $c = $p->smtp;
	$c->read_reply;
	$c->cmd('EHLO client.example.test');
	$c->cmd('MAIL FROM:<a@example.org>');
	$c->cmd('RCPT TO:<b@example.net>');
	$c->cmd('DATA');
	my ($code, $text) = $c->cmd("Subject: x\r\n\r\nbody\r\n.");
	like($text, qr/^250 2\.0\.0 Ok: queued as /,
	     'queue_directory below a directory mail_owner cannot search: mail is queued');
	is(scalar(my @f = $p->queue_files('incoming')), 1, '... into incoming/');
	$c->cmd('QUIT');
}

# A path that cannot be a directory: its parent is a regular file.
my $b = SluiceTest->new(start => 0);
$b->write_file('afile', "not a directory\n");
$b->set_main(queue_directory => $b->dir . '/afile/spool');
my ($rc, $out) = $b->sluice('run');
isnt($rc, 0, 'a queue_directory that cannot be created refuses to start');
like($out, qr/queue_directory .*afile\/spool/, '... naming the path');
like($out, qr/Not a directory; fix queue_directory in main.cf/, '... saying why and what to do');

done_testing;
