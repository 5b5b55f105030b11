#!/usr/bin/perl
# rbl_reply_inline.t - rbl_reply_maps given as a list whose first table
# is an inline:{ ... } table of two entries (one of them a braced entry
# whose text holds a comma and spaces), followed by a texthash table:
# the list is split as the core splits lists (braces respected), so each
# DNSBL gets its own template, and a list not in the inline table is
# found in the next table.  A real rbldnsd serves the zones (test.rbl,
# other.rbl as ip4set, dbl.test as dnset); clients connect from
# 127.0.0.X, outside mynetworks = 127.0.0.1/32.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use SluiceTest qw(wait_until free_port);

my $RBLDNSD = '/usr/sbin/rbldnsd';
plan skip_all => 'rbldnsd is not installed (scripts/install-deps)' unless -x $RBLDNSD;

my $t = SluiceTest->new(start => 0);
my $d = $t->dir;
mkdir "$d/rbl";
chmod 0777, "$d/rbl";          # rbldnsd runs as nobody
sub zone {
	my ($name, $text) = @_;
	open my $fh, '>', "$d/rbl/$name" or die "$name: $!";
	print $fh $text;
	close $fh;
	chmod 0644, "$d/rbl/$name";
}
zone('test.rbl', ":127.0.0.2:Listed in test.rbl\n127.0.0.2\n");
zone('other.rbl', ":127.0.0.2:Listed in other.rbl\n127.0.0.3\n");
zone('dbl.test', ":127.0.0.2:Domain is listed\nevil.test\n");

my $rbl_port = free_port();
my $rbl_pid = fork // die "fork: $!";
if ($rbl_pid == 0) {
	open STDOUT, '>>', "$d/rbl/rbldnsd.out";
	open STDERR, '>&', \*STDOUT;
	exec $RBLDNSD, '-n', '-u', 'nobody', '-b', "127.0.0.1/$rbl_port",
	     '-w', "$d/rbl", '-t', '1',
	     'test.rbl:ip4set:test.rbl', 'other.rbl:ip4set:other.rbl',
	     'dbl.test:dnset:dbl.test';
	die "exec rbldnsd: $!";
}
my $parent = $$;
END {
	if ($$ == $parent && $rbl_pid) {
		local $?;
		kill 'TERM', $rbl_pid;
		waitpid $rbl_pid, 0;
	}
}
ok(wait_until(sub {
	!IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $rbl_port,
			       Proto => 'udp') }, 10), 'rbldnsd listens')
	or BAIL_OUT('no rbldnsd: ' . (SluiceTest::slurp("$d/rbl/rbldnsd.out") // ''));

$t->write_file('rbl_reply2', "other.rbl\t550 5.7.4 From the second table\n");
my $maps = 'inline:{ { test.rbl = 550 5.7.2 Go away, you are listed }, '
	 . '{ dbl.test = 554 5.7.3 Bad domain } }, '
	 . "texthash:$d/rbl_reply2";
$t->set_main(dns_servers => "127.0.0.1:$rbl_port",
	     mynetworks => '127.0.0.1/32',
	     local_recipient_maps => '',
	     sluice_smtpd_dns_timeout => '3s',
	     rbl_reply_maps => $maps,
	     smtpd_client_restrictions => 'reject_rbl_client test.rbl, reject_rbl_client other.rbl',
	     smtpd_sender_restrictions => 'reject_rhsbl_sender dbl.test');
$t->start;

my ($rc, $out) = $t->sluice('check');
is($rc, 0, 'sluice check accepts the inline rbl_reply_maps') or diag $out;

# EHLO, MAIL, RCPT from `local`; the first reply that is not 2xx, or the
# RCPT's.
sub session {
	my (%o) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port,
					 LocalAddr => $o{local}, Proto => 'tcp', Timeout => 10)
		or die "connect from $o{local}: $!";
	my $c = bless { sock => $sock, buf => '', eof => 0, timeout => 20 },
		      'SluiceTest::Client';
	my @r = $c->read_reply;
	my $text;
	for my $cmd ('EHLO client.example.org',
		     'MAIL FROM:<' . ($o{from} // 'someone@example.org') . '>',
		     'RCPT TO:<user@mx.example.test>') {
		last unless defined $r[0] && $r[0] =~ /^2/;
		@r = $c->cmd($cmd);
		($text = $r[1] // '') =~ s/\n.*//s;
	}
	$c->cmd('QUIT');
	$c->close;
	return $text;
}

is(session(local => '127.0.0.2'), '550 5.7.2 Go away, you are listed',
   'the inline table\'s first entry (a braced one with a comma) is test.rbl\'s template');
is(session(local => '127.0.0.4', from => 'a@evil.test'), '554 5.7.3 Bad domain',
   '... its second entry is dbl.test\'s');
is(session(local => '127.0.0.3'), '550 5.7.4 From the second table',
   'a list not in the inline table: the next table of the list answers');
is(session(local => '127.0.0.4'), '250 2.1.5 Ok', 'an unlisted client is accepted');
unlike($t->log_text, qr/rbl_reply_maps .*(?:unsupported|bad|syntax|error)/i,
       'no table in the list failed to open');

done_testing;
