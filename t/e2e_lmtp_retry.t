#!/usr/bin/perl
# e2e_lmtp_retry.t - LMTP gives one reply per recipient after the data;
# only the recipients that failed are tried again.  The LMTP server here
# is scripted (Dovecot's LMTP, in e2e_lmtp.t, cannot be told to fail one
# recipient temporarily): its first transaction answers 250 for a@ and
# 451 for b@ after the dot, later ones 250 for everyone; it records every
# RCPT it is given.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use File::Temp ();
use POSIX ();
use SluiceTest qw(wait_until free_port);
use QmgrTest qw(qmgr_sluice send_mail);

my $tmp = File::Temp::tempdir(CLEANUP => 1);
my $rcpt_log = "$tmp/rcpts";
my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
				   Listen => 5, ReuseAddr => 1) or die "listen: $!";
my $port = $listen->sockport;

my $server = fork // die "fork: $!";
if ($server == 0) {
	my $transaction = 0;
	while (my $c = $listen->accept) {
		$c->autoflush(1);
		print $c "220 lmtp.example.test LMTP ready\r\n";
		my @rcpts;
		while (my $line = <$c>) {
			$line =~ s/\r?\n$//;
			if ($line =~ /^LHLO/i) {
				print $c "250-lmtp.example.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n";
			} elsif ($line =~ /^MAIL/i) {
				@rcpts = ();
				print $c "250 2.1.0 OK\r\n";
			} elsif ($line =~ /^RCPT TO:<([^>]*)>/i) {
				push @rcpts, $1;
				open my $l, '>>', $rcpt_log; print $l "$transaction $1\n"; close $l;
				print $c "250 2.1.5 OK\r\n";
			} elsif ($line =~ /^DATA/i) {
				print $c "354 go ahead\r\n";
				while (my $d = <$c>) { last if $d =~ /^\.\r?\n$/ }
				for my $r (@rcpts) {
					if ($transaction == 0 && $r =~ /^b\@/) {
						print $c "451 4.2.0 <$r> mailbox busy, try later\r\n";
					} else {
						print $c "250 2.0.0 <$r> saved\r\n";
					}
				}
				$transaction++;
			} elsif ($line =~ /^QUIT/i) {
				print $c "221 2.0.0 bye\r\n";
				last;
			} else {
				print $c "250 2.0.0 OK\r\n";
			}
		}
		close $c;
	}
	POSIX::_exit(0);
}
END { local $?; if ($server) { kill "KILL", $server; waitpid $server, 0 } }
close $listen;

my $t = qmgr_sluice(main => {
	transport_maps => "inline:{ example.test=lmtp:inet:127.0.0.1:$port }",
	smtpd_peername_lookup => 'no',
});
my $id = send_mail($t, from => 'sender@example.org',
		   to => ['a@example.test', 'b@example.test']);
ok($id, "queued as $id");

ok($t->wait_log(qr/\Q$id\E: to=<a\@example\.test>, relay=\S+, .*dsn=2\.0\.0, status=sent/, 30),
   'a@ is delivered in the first transaction');
ok($t->wait_log(qr/\Q$id\E: to=<b\@example\.test>, relay=\S+, .*dsn=4\.2\.0, status=deferred \(.*mailbox busy/, 30),
   'b@ is deferred with the server\'s per-recipient reply after the data');

my ($rc) = $t->sluice('queue', 'flush');
is($rc, 0, 'sluice queue flush');
ok($t->wait_log(qr/\Q$id\E: to=<b\@example\.test>, relay=\S+, .*status=sent/, 30),
   'after the flush b@ is delivered');
ok($t->wait_log(qr/\Q$id\E: removed/, 30), 'and the message is removed');

open my $l, '<', $rcpt_log or die "$rcpt_log: $!";
my @seen = map { chomp; $_ } <$l>;
is_deeply(\@seen, ['0 a@example.test', '0 b@example.test', '1 b@example.test'],
	   'the second transaction names only the recipient that failed');

done_testing;
