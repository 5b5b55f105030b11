#!/usr/bin/perl
# anvil_rates.t - smtpd_client_connection_rate_limit,
# smtpd_client_message_rate_limit and smtpd_client_recipient_rate_limit,
# counted in anvil across all workers (two here, with sessions on both),
# per service, with Postfix's replies and warnings:
#   421 4.7.0 HOST Error: too many connections from ADDR
#   452 4.3.2 Too much mail from ADDR
#   452 4.3.2 Too many recipients from ADDR
# smtpd_client_event_limit_exceptions exempts a client.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest;

my $CONN = 10;
my $t = SluiceTest->new(main => {
	smtpd_peername_lookup => 'no',
	mynetworks => '127.0.0.0/8',
	smtpd_client_event_limit_exceptions => '',
	anvil_rate_time_unit => '1h',
	sluice_smtpd_workers => 2,
}, listeners => {
	conn => "-o smtpd_client_connection_rate_limit=$CONN",
	mail => '-o smtpd_client_message_rate_limit=3',
	rcpt => '-o smtpd_client_recipient_rate_limit=3',
	exempt => '-o smtpd_client_message_rate_limit=1 -o smtpd_client_recipient_rate_limit=1 '
	    . '-o smtpd_client_event_limit_exceptions=127.0.0.0/8',
});

# Connect to `listener`; the session and the pid of the worker that
# logged its "connect from".
sub connect_to {
	my ($listener) = @_;
	my $mark = $t->log_mark;
	my $c = $t->smtp($listener);
	my ($code, $text) = $c->read_reply;
	my $line = $t->wait_log(qr/\[\d+\]: connect from /, 10, from => $mark) // '';
	my ($pid) = $line =~ /\[(\d+)\]: connect from /;
	return ($c, $pid // 0, $code // 0, $text // '');
}

# Two sessions of `listener` on two different workers.
sub two_workers {
	my ($listener) = @_;
	my %by;
	for (1 .. 30) {
		my ($c, $pid) = connect_to($listener);
		$by{$pid} //= $c;
		last if keys %by >= 2;
	}
	my @c = map { $by{$_} } sort keys %by;
	$_->cmd('EHLO client.example') for @c;
	return @c;
}

# ---- connection rate: the total of both workers counts ----
{
	my (@open, %pids);
	for my $i (1 .. $CONN) {
		my ($c, $pid, $code) = connect_to('conn');
		is($code, 220, "connection $i of $CONN: greeted") if $i == 1 || $i == $CONN;
		push @open, $c;
		$pids{$pid}++;
	}
	ok(keys %pids >= 2, "the $CONN connections landed on both workers") or diag join ' ', keys %pids;
	my $mark = $t->log_mark;
	my ($c, $pid, $code, $text) = connect_to('conn');
	is($text, '421 4.7.0 mx.example.test Error: too many connections from 127.0.0.1',
	   'one more connection, on whichever worker: 421 4.7.0 (connection rate)');
	ok($c->closed, '... and closed');
	ok($t->wait_log(qr/warning: Connection rate limit exceeded: ${\($CONN + 1)} from unknown\[127\.0\.0\.1\] for service \S+/, 5, from => $mark),
	   'the warning counts the connections of both workers') or diag $t->log_text($mark);
	$_->cmd('QUIT') for @open;
	my ($c2, undef, undef, $text2) = connect_to('mail');
	like($text2, qr/^220 /, 'another service counts apart');
}

# ---- message rate ----
{
	my ($a, $b) = two_workers('mail');
	ok($a && $b, 'two sessions on two workers');
	my $mark = $t->log_mark;
	my @got;
	for my $c ($a, $b, $a) {
		push @got, ($c->cmd('MAIL FROM:<s@example.org>'))[0];
		$c->cmd('RSET');
	}
	is_deeply(\@got, [250, 250, 250], 'three MAIL commands over two workers: accepted');
	my (undef, $text) = $b->cmd('MAIL FROM:<s@example.org>');
	is($text, '452 4.3.2 Too much mail from 127.0.0.1', 'the fourth: 452 4.3.2 Too much mail');
	ok($t->wait_log(qr/warning: Message delivery request rate limit exceeded: 4 from unknown\[127\.0\.0\.1\] for service \S+/, 5, from => $mark),
	   '... logged as Postfix does');
	my ($code) = $b->cmd('RCPT TO:<r@example.net>');
	is($code, 503, 'the refused MAIL started no transaction');
}

# ---- recipient rate ----
{
	my ($a, $b) = two_workers('rcpt');
	$_->cmd('MAIL FROM:<s@example.org>') for $a, $b;
	my $mark = $t->log_mark;
	my @got = map { ($_->cmd('RCPT TO:<r@example.net>'))[0] } $a, $b, $a;
	is_deeply(\@got, [250, 250, 250], 'three RCPT commands over two workers: accepted');
	my (undef, $text) = $b->cmd('RCPT TO:<r2@example.net>');
	is($text, '452 4.3.2 Too many recipients from 127.0.0.1', 'the fourth: 452 4.3.2 Too many recipients');
	ok($t->wait_log(qr/warning: Recipient address rate limit exceeded: 4 from unknown\[127\.0\.0\.1\] for service \S+/, 5, from => $mark),
	   '... logged as Postfix does');
}

# ---- exceptions ----
{
	my ($c) = connect_to('exempt');
	$c->cmd('EHLO client.example');
	my @got;
	for (1 .. 3) {
		push @got, ($c->cmd('MAIL FROM:<s@example.org>'))[0];
		push @got, ($c->cmd('RCPT TO:<r@example.net>'))[0];
		$c->cmd('RSET');
	}
	is_deeply(\@got, [(250) x 6], 'smtpd_client_event_limit_exceptions: not limited');
}

done_testing;
