#!/usr/bin/perl
# milter_sendmail.t - non_smtpd_milters: mail submitted with
# build/bin/sendmail goes through the milters when pickup takes it (as
# Postfix's cleanup does), seen as a session from localhost; the
# modifications reach the queued message; a milter reject bounces it to
# the sender as Postfix's cleanup does (logged as milter-reject, then
# status=bounced), a tempfail leaves it in maildrop/, and smtpd_milters
# are not asked for it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/milter";
use Test::More;
use File::Basename qw(dirname);
use SluiceTest qw(wait_until);
use MilterTest;

my $BIN = dirname($SluiceTest::SLUICE);

sub server {
	my (%main) = @_;
	my $t = SluiceTest->new(start => 0, main => { myorigin => 'example.test',
						    defer_transports => 'smtp', %main });
	open my $m, '>>', $t->dir . '/master.cf' or die;
	print $m "qmgr unix n - n 300 1 qmgr\n";
	close $m;
	$t->start;
	return $t;
}

sub sendmail {
	my ($t, $msg, @args) = @_;
	local $ENV{SLUICE_CONFIG_DIR} = $t->dir;
	open my $p, '|-', "$BIN/sendmail", @args or die "sendmail: $!";
	print $p $msg;
	close $p;
	return $? >> 8;
}

sub maildrop {
	my ($t) = @_;
	opendir my $d, $t->config('queue_directory') . '/maildrop' or return;
	return grep { !/^\./ } readdir $d;
}

# Messages in the queue proper (not maildrop/).
sub queued_ids {
	my ($t) = @_;
	return map { $t->queue_files($_) } qw(incoming active deferred hold);
}

{
	my $m = MilterTest->start("addheader X-Local-Milter seen\n");
	my $other = MilterTest->start("reply connect reject\n");
	my $t = server(non_smtpd_milters => $m->spec, smtpd_milters => $other->spec);
	is(sendmail($t, "Subject: local\n\nfrom the command line\n", 'someone@example.net'), 0,
	   'sendmail accepts the message');
	ok(wait_until(sub { !maildrop($t) && queued_ids($t) }, 15),
	   'pickup queues it (and removes the maildrop file after the commit)');
	my ($id) = queued_ids($t);
	my (undef, $show) = $t->sluice('queue', 'show', $id);
	like($show, qr/^X-Local-Milter: seen$/m, 'the non_smtpd milter\'s header is in the queued message');
	like($show, qr/^recipient: someone\@example\.net$/m, '... for the recipient');
	my $log = $m->log;
	like($log, qr/^connect localhost$/m, 'the milter saw a connection from localhost');
	like($log, qr/^helo localhost$/m, '... HELO localhost');
	like($log, qr/^mail <\S+\@example\.test>$/m, '... MAIL with the local sender');
	like($log, qr/^rcpt <someone\@example\.net>$/m, '... RCPT');
	like($log, qr/^header Subject:local$/m, '... the headers');
	like($log, qr/^bodyline from the command line$/m, '... the body');
	unlike($other->log, qr/^connect/m, 'smtpd_milters are not asked for local mail');
}

{
	my $m = MilterTest->start("reply eom replycode 550 5.7.1 no local spam\n");
	my $t = server(non_smtpd_milters => $m->spec);
	is(sendmail($t, "Subject: spam\n\nspam\n", 'someone@example.net'), 0, 'sendmail takes it');
	ok($t->wait_log(qr/milter-reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: 5\.7\.1 no local spam; from=<\S+> to=<someone\@example\.net>/, 15),
	   'the milter\'s reject is logged as milter-reject');
	ok(wait_until(sub { !maildrop($t) }, 10), 'the maildrop file is gone');
	# Postfix's cleanup bounces it: the submission was already accepted
	ok($t->wait_log(qr/(\w+): to=<someone\@example\.net>, relay=none, delay=[\d.e-]+, delays=[\d.e\/-]+, dsn=5\.7\.1, status=bounced \(no local spam\)/, 15),
	   'logged as bounced, in Postfix\'s shape');
	ok($t->wait_log(qr/: sender non-delivery notification: \w+/, 15), 'a non-delivery notice is queued');
	my ($orig, $notice) = $t->log_text =~ /(\w+): sender non-delivery notification: (\w+)/;
	ok($t->wait_log(qr/\Q$orig\E: removed/, 15), '... and the rejected message removed');
	is_deeply([grep { $_ ne $notice } queued_ids($t)], [], '... nothing else is queued');
	my (undef, $show) = $t->sluice('queue', 'show', $notice);
	like($show, qr/^sender: $/m, 'the notice has the null sender');
	like($show, qr/^recipient: \S+\@example\.test$/m, '... goes to the local sender');
	like($show, qr/no local spam/, '... says why');
	like($show, qr/^Subject: spam$/m, '... and returns the message');
}

{
	my $m = MilterTest->start("reply eom tempfail\n");
	my $t = server(non_smtpd_milters => $m->spec);
	is(sendmail($t, "Subject: later\n\nlater\n", 'someone@example.net'), 0, 'sendmail takes it');
	ok($t->wait_log(qr/milter said try again later; it stays for another try/, 15),
	   'a tempfail leaves it in maildrop/');
	ok(scalar(maildrop($t)), '... where it still is');
	is(scalar(queued_ids($t)), 0, '... and nothing is queued or bounced');
}

done_testing;
