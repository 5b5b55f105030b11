#!/usr/bin/perl
# smtp_diskfull.t - a full disk never loses or half-keeps a message:
# queue_minfree and a declared SIZE are checked at MAIL (452 4.3.1), and a
# message that fills the disk while it is received is answered 452 4.3.1
# with nothing of it left in the queue.  The queue lives on a 1 MiB tmpfs
# mounted by the test (root, as in CI).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use SluiceTest;

plan skip_all => 'mounting a small file system needs root' if $< != 0;

sub session {
	my ($t) = @_;
	my $c = $t->smtp;
	$c->read_reply;
	$c->cmd('EHLO client.example.test');
	return $c;
}

# ---- queue_minfree --------------------------------------------------------

{
	my $t = SluiceTest->new(main => { queue_minfree => '100000g' });
	my $c = session($t);
	my ($code, $text) = $c->cmd('MAIL FROM:<a@example.org>');
	is($text, '452 4.3.1 Insufficient system storage',
	   'queue_minfree larger than the free space: MAIL gets 452 4.3.1');
	$c->cmd('QUIT');
}

# ---- a 1 MiB queue file system --------------------------------------------

my $mnt = File::Temp::tempdir('sluice-full-XXXXXX', TMPDIR => 1, CLEANUP => 1);
system('mount', '-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', $mnt) == 0
	or BAIL_OUT("cannot mount a tmpfs on $mnt");
my $t = SluiceTest->new(main => { queue_directory => "$mnt/spool",
				  message_size_limit => 20000000 });
END { $t->stop if $t; system('umount', $mnt) if $mnt }

my $c = session($t);
my ($code, $text) = $c->cmd('MAIL FROM:<a@example.org> SIZE=900000');
is($text, '452 4.3.1 Insufficient system storage',
   'a declared SIZE that needs more than the free space (1.5 x SIZE): 452 4.3.1');

$c->cmd('MAIL FROM:<a@example.org>');
$c->cmd('RCPT TO:<b@example.net>');
($code) = $c->cmd('DATA');
is($code, 354, 'DATA without SIZE goes ahead');
my $line = ('x' x 998) . "\r\n";
$c->send_raw("Subject: too big for the disk\r\n\r\n" . ($line x 2200) . ".\r\n");
($code, $text) = $c->read_reply(30);
is($text, '452 4.3.1 Insufficient system storage',
   'the disk fills during DATA: 452 4.3.1');
is(scalar(my @f = $t->queue_files('incoming')), 0, 'nothing half-written is left in incoming/');

$c->cmd('MAIL FROM:<a@example.org>');
$c->cmd('RCPT TO:<b@example.net>');
$c->cmd('DATA');
($code, $text) = $c->cmd("Subject: small\r\n\r\nfits\r\n.");
like($text, qr/^250 2\.0\.0 Ok: queued as [0-9A-F]+$/, 'the session goes on: a small message is queued');
is(scalar(@f = $t->queue_files('incoming')), 1, '... and is the only file in incoming/');
$c->cmd('QUIT');

done_testing;
