#!/usr/bin/perl
# smtp_logging.t - the SMTP server's log lines in Postfix's shapes
# (docs/smtpd.md "Log lines"), so that pflogsumm and log exporters read
# them: connect from, ID: client=, ID: message-id=, disconnect from ...
# with the command counts (and the refused ones as ok/total), NOQUEUE: reject: RCPT from ... (and the
# queue ID instead of NOQUEUE once a queue file exists, and to=<> naming
# the refused recipient), lost connection after X; empty and over-long
# lines are no command and are counted nowhere.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest qw(wait_until);

# Names stay "unknown" (no DNS): the shapes below are Postfix's with
# smtpd_peername_lookup = no.
# Recipients with sender-specified routing, refused by an access table
# (the client, 127.0.0.1, is in mynetworks); the table sees Postfix's
# internal form (x@y@example.net for "x@y"@example.net).
my $ROUTING = '550 5.7.1 sender-specified routing is not allowed';
my $t = SluiceTest->new(main => { smtpd_peername_lookup => 'no',
	smtpd_recipient_restrictions => "check_recipient_access inline:{ { user%host\@example.net = $ROUTING },"
	    . " { user!host\@example.net = $ROUTING }, { x\@y\@example.net = $ROUTING } }" });
my $PFX = qr/^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ sluice\/smtpd\[\d+\]: /;

# The lines logged since `mark`, without the syslog prefix (checked).
sub lines_since {
	my ($mark) = @_;
	my @l = split /\n/, $t->log_text($mark);
	my @bad = grep { !/$PFX/ } grep { !/sluice\/master\[/ } @l;
	fail("log lines without the syslog-shaped prefix: @bad") if @bad;
	return map { s/$PFX//r } grep { /$PFX/ } @l;
}

# ---- one message, start to end -------------------------------------------------------------

{
	my $mark = $t->log_mark;
	my $c = $t->smtp;
	$c->hello('client.example');
	my ($code, $text) = $c->transaction(from => 'a@example.org', to => ['b@example.net'],
					    body => "Message-ID: <log.1\@client.example>\nSubject: log\n\nbody\n");
	my ($id) = ($text // '') =~ /queued as (\S+)/;
	ok($id, 'a message is queued');
	$c->cmd('QUIT');
	ok($t->wait_log(qr/disconnect from/, undef, from => $mark), 'the session ends');
	my @l = lines_since($mark);
	is_deeply(\@l, [
		'connect from unknown[127.0.0.1]',
		"$id: client=unknown[127.0.0.1]",
		"$id: message-id=<log.1\@client.example>",
		'disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5',
	], 'connect, client=, message-id=, disconnect with the counts (the queue manager logs from=/size=/nrcpt=)')
	    or diag(join "\n", @l);
}

# ---- rejects -----------------------------------------------------------------------------------

{
	my $mark = $t->log_mark;
	my $c = $t->smtp;
	$c->hello('client.example');
	my %before = map { $_ => 1 } $t->queue_files;
	$c->cmd('MAIL FROM:<a@example.org>');
	my ($code, $text) = $c->cmd('RCPT TO:<user%host@example.net>');
	like($text, qr/^550 5\.7\.1 /, 'a refused recipient');
	my $line = $t->wait_log(qr/NOQUEUE: reject:/, undef, from => $mark);
	like($line // '', qr/${PFX}NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 550 5\.7\.1 <user%host\@example\.net>: Recipient address rejected: sender-specified routing is not allowed; from=<a\@example\.org> to=<user%host\@example\.net> proto=ESMTP helo=<client\.example>$/,
	     'NOQUEUE: reject: RCPT from host[ip]: code dsn text; from=<> to=<> proto=ESMTP helo=<>');

	($code, $text) = $c->cmd('RCPT TO:<ok@example.net>');
	is($code, 250, 'an accepted recipient (the queue file now exists)');
	my ($id) = grep { !$before{$_} } $t->queue_files;
	$c->cmd('RCPT TO:<user!host@example.net>');
	$line = $t->wait_log(qr/\Q$id\E: reject:/, undef, from => $mark);
	like($line // '', qr/${PFX}\Q$id\E: reject: RCPT from unknown\[127\.0\.0\.1\]: 550 5\.7\.1 <user!host\@example\.net>: .*; from=<a\@example\.org> to=<user!host\@example\.net> proto=ESMTP helo=<client\.example>$/,
	     'once a queue file exists, the reject line carries its ID instead of NOQUEUE');
	$c->cmd('BOGUS');
	$c->cmd('QUIT');
	ok($t->wait_log(qr/${PFX}disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1\/3 quit=1 unknown=0\/1 commands=4\/7$/,
			undef, from => $mark),
	   'the disconnect line counts refused commands as ok/total: rcpt=1/3 unknown=0/1 commands=4/7');
}

{
	my $mark = $t->log_mark;
	my $c = $t->smtp;
	$c->hello('old.client.example', helo => 1);
	$c->cmd('MAIL FROM:<a@example.org>');
	$c->cmd('RCPT TO:<"x@y"@example.net>');
	ok($t->wait_log(qr/${PFX}NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 550 5\.7\.1 .*; from=<a\@example\.org> to=<x\@y\@example\.net> proto=SMTP helo=<old\.client\.example>$/,
			undef, from => $mark), 'after HELO the reject line says proto=SMTP');
	$c->close;
	ok($t->wait_log(qr/${PFX}lost connection after RCPT from unknown\[127\.0\.0\.1\]$/, undef, from => $mark),
	   'a client that goes away: lost connection after RCPT from ...');
	ok($t->wait_log(qr/${PFX}disconnect from unknown\[127\.0\.0\.1\] helo=1 mail=1 rcpt=0\/1 commands=2\/3$/,
			undef, from => $mark), '... then the disconnect line');
}

{
	# Lines that are no command (empty, too long) are counted nowhere.
	my $mark = $t->log_mark;
	my $c = $t->smtp;
	$c->hello('client.example');
	is(($c->cmd(''))[1], '500 5.5.2 Error: bad syntax', 'an empty line');
	is(($c->cmd('NOOP ' . ('x' x 3000)))[1], '500 5.5.0 Error: line too long', 'a line too long');
	is(($c->cmd('FOO'))[1], '500 5.5.2 Error: command not recognized', 'an unknown command');
	$c->cmd('QUIT');
	ok($t->wait_log(qr/${PFX}disconnect from unknown\[127\.0\.0\.1\] ehlo=1 quit=1 unknown=0\/1 commands=2\/3$/,
			undef, from => $mark),
	   'the disconnect line counts the unknown command, not the empty or too long lines');
}

done_testing;
