#!/usr/bin/perl
# smtp_limits.t - the defensive limits (docs/smtpd.md "Limits and the
# error tarpit"): the error tarpit (smtpd_soft_error_limit,
# smtpd_error_sleep_time: every reply once past the soft limit is
# delayed), smtpd_hard_error_limit (421 4.7.0 ... Error: too many errors,
# disconnect), smtpd_junk_command_limit, both counters starting over once
# a message is delivered (as in Postfix), smtpd_timeout (421 4.4.2 ...
# Error: timeout exceeded and "timeout after X from" in the log),
# smtpd_recipient_limit (452 4.5.3), line_length_limit (500 5.5.0),
# header_size_limit (the rest of the headers is taken as body, the message
# still queues), smtpd_client_connection_count_limit (421 4.7.0 ... too
# many connections), and a client that pipelines without reading its
# replies (no longer read, then dropped after smtpd_timeout; one that
# reads along the way gets every reply).
#
# Timing: a delay the server must produce is checked as a minimum
# (>= 0.9 s for smtpd_error_sleep_time = 1s), a reply it must not delay
# as under 0.9 s; every wait is on a reply, a log line or a socket state
# with a deadline - nothing here sleeps to synchronise.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use POSIX qw(EAGAIN EWOULDBLOCK);
use Time::HiRes qw(time);
use SluiceTest qw(wait_until);

my $HOST = 'mx.example.test';
my $TOO_MANY = "421 4.7.0 $HOST Error: too many errors";

my $t = SluiceTest->new(
	main => { smtpd_peername_lookup => 'no', smtpd_recipient_limit => 3, line_length_limit => 1000,
		  header_size_limit => 1000 },
	listeners => {
		smtp => '',
		tarpit => '-o smtpd_soft_error_limit=2 -o smtpd_error_sleep_time=1s -o smtpd_hard_error_limit=5',
		junk => '-o smtpd_junk_command_limit=2 -o smtpd_hard_error_limit=3',
		reset => '-o smtpd_hard_error_limit=3 -o smtpd_junk_command_limit=2',
		slow => '-o smtpd_timeout=2s',
		backlog => '-o smtpd_timeout=3s',
	});

# (reply text, seconds it took) for one command.
sub timed {
	my ($c, $line) = @_;
	my $t0 = time;
	my ($code, $text) = $c->cmd($line);
	return ($text // '(no reply)', time - $t0);
}

sub deliver {
	my ($c) = @_;
	my ($code, $text) = $c->transaction(body => "Subject: limits\n\nbody\n");
	return $text // '';
}

# ---- the error tarpit and the hard limit ------------------------------------------

{
	my $mark = $t->log_mark;
	my $c = $t->smtp('tarpit');
	$c->hello('client.example');
	my ($text, $s) = timed($c, 'BOGUS1');
	is($text, '500 5.5.2 Error: command not recognized', 'error 1');
	cmp_ok($s, '<', 0.9, '... is answered at once');
	($text, $s) = timed($c, 'BOGUS2');
	cmp_ok($s, '<', 0.9, 'error 2 (= smtpd_soft_error_limit) is answered at once');
	($text, $s) = timed($c, 'BOGUS3');
	is($text, '500 5.5.2 Error: command not recognized', 'error 3');
	cmp_ok($s, '>=', 0.9, "... past the soft limit: delayed by smtpd_error_sleep_time (${\ sprintf '%.2f', $s} s)");
	($text, $s) = timed($c, 'NOOP');
	is($text, '250 2.0.0 Ok', 'a good command past the soft limit');
	cmp_ok($s, '>=', 0.9, "... is delayed too (${\ sprintf '%.2f', $s} s)");
	($text, $s) = timed($c, 'BOGUS4');
	cmp_ok($s, '>=', 0.9, 'error 4: delayed');
	$c->send_line('BOGUS5');
	my @r = $c->read_replies(2);
	is_deeply([map { $_->[1] } @r], ['500 5.5.2 Error: command not recognized', $TOO_MANY],
		  "error 5 (= smtpd_hard_error_limit): its reply, then $TOO_MANY");
	ok($c->closed, '... and the server disconnects');
	ok($t->wait_log(qr/too many errors after UNKNOWN from unknown\[127\.0\.0\.1\]$/, undef, from => $mark),
	   'the log says "too many errors after UNKNOWN from unknown[127.0.0.1]"');
	ok($t->wait_log(qr/disconnect from unknown\[127\.0\.0\.1\] ehlo=1 noop=1 unknown=0\/5 commands=2\/7$/,
			undef, from => $mark), '... and counts the refused commands on the disconnect line');
}

# ---- junk commands ---------------------------------------------------------------------

{
	my $c = $t->smtp('junk');
	$c->hello('client.example');
	my @replies = map { ($c->cmd($_))[1] } ('NOOP', 'RSET', 'NOOP', 'NOOP');
	is_deeply(\@replies, [('250 2.0.0 Ok') x 4],
		  'junk commands are answered normally (2 within smtpd_junk_command_limit, 2 counted as errors)');
	$c->send_line('VRFY x');
	my ($code, $text) = $c->read_reply;
	is($text, '502 5.5.1 VRFY command is disabled', 'the 3rd error (a junk VRFY, refused)');
	($code, $text) = $c->read_reply;
	is($text, $TOO_MANY, "... reaches smtpd_hard_error_limit = 3: $TOO_MANY");
	ok($c->closed, '... and a disconnect');

	$c = $t->smtp('junk');
	$c->hello('client.example');
	$c->cmd($_) for 'NOOP', 'NOOP', 'NOOP', 'NOOP';
	$c->send_line('NOOP');
	my @r = $c->read_replies(2);
	is_deeply([map { $_->[1] } @r], ['250 2.0.0 Ok', $TOO_MANY],
		  'junk commands alone: the one that makes the 3rd error is answered, then 421 4.7.0');
	ok($c->closed, '... and a disconnect');
}

# ---- a delivered message starts both counts over -----------------------------------

{
	my $c = $t->smtp('reset');
	$c->hello('client.example');
	is(($c->cmd('BOGUS'))[1], '500 5.5.2 Error: command not recognized', 'error 1');
	is(($c->cmd('BOGUS'))[1], '500 5.5.2 Error: command not recognized', 'error 2');
	is(($c->cmd('RSET'))[1], '250 2.0.0 Ok', 'junk 1');
	is(($c->cmd('RSET'))[1], '250 2.0.0 Ok', 'junk 2');
	like(deliver($c), qr/^250 2\.0\.0 Ok: queued as /, 'a message is delivered');
	is(($c->cmd('BOGUS'))[1], '500 5.5.2 Error: command not recognized', 'error 1 again');
	is(($c->cmd('BOGUS'))[1], '500 5.5.2 Error: command not recognized',
	   'error 2 again: no disconnect (the delivery reset the error count)');
	is(($c->cmd('RSET'))[1], '250 2.0.0 Ok', 'junk 1 again');
	is(($c->cmd('RSET'))[1], '250 2.0.0 Ok', 'junk 2 again: still within the limit');
	like(deliver($c), qr/^250 2\.0\.0 Ok: queued as /, 'another message');
	is(($c->cmd('QUIT'))[1], '221 2.0.0 Bye', 'the session ends normally');
}

# ---- smtpd_timeout ----------------------------------------------------------------------

{
	my $mark = $t->log_mark;
	my %before = map { $_ => 1 } $t->queue_files;
	my $idle = $t->smtp('slow');
	$idle->hello('client.example');
	my $data = $t->smtp('slow');
	$data->hello('client.example');
	$data->cmd('MAIL FROM:<a@example.org>');
	$data->cmd('RCPT TO:<b@example.net>');
	$data->cmd('DATA');
	$data->send_raw("Subject: unfinished\r\n");
	my $t0 = time;
	my ($code, $text) = $idle->read_reply(10);
	my $s = time - $t0;
	is($text, "421 4.4.2 $HOST Error: timeout exceeded", 'an idle client: 421 4.4.2 ... Error: timeout exceeded');
	cmp_ok($s, '>=', 1.5, "... after smtpd_timeout = 2s (${\ sprintf '%.2f', $s} s)");
	ok($idle->closed, '... and the server disconnects');
	($code, $text) = $data->read_reply(10);
	is($text, "421 4.4.2 $HOST Error: timeout exceeded", 'a client silent in DATA: the same');
	ok($data->closed, '... and a disconnect');
	ok($t->wait_log(qr/timeout after EHLO from unknown\[127\.0\.0\.1\]$/, undef, from => $mark),
	   'the log says "timeout after EHLO from unknown[127.0.0.1]"');
	ok($t->wait_log(qr/timeout after DATA from unknown\[127\.0\.0\.1\]$/, undef, from => $mark),
	   '... and "timeout after DATA from unknown[127.0.0.1]"');
	ok(wait_until(sub { !grep { !$before{$_} } $t->queue_files }, 5), 'the unfinished message is not queued');
}

# ---- replies the client does not read -----------------------------------------------------

{
	# A client that reads while it pipelines gets every reply: the
	# server's pause on a reply backlog resumes as the replies drain.
	my $c = $t->smtp;
	$c->hello('client.example');
	my $n = 20000;
	my $sock = $c->{sock};
	$sock->blocking(0);
	my $out = "HELP\r\n" x $n;
	my ($got, $buf) = (0, '');
	my $sel = IO::Select->new($sock);
	my $deadline = time + 30;
	while (($got < $n) && time < $deadline) {
		if (length $out && $sel->can_write(0)) {
			my $w = syswrite($sock, $out, 65536);
			substr($out, 0, $w) = '' if $w;
		}
		if ($sel->can_read(0.05)) {
			my $r = sysread($sock, my $chunk, 1 << 20);
			last unless $r;
			$buf .= $chunk;
			$got += () = $buf =~ /^214 [^\n]*\n/mg;
			$buf =~ s/.*\n//s;
		}
	}
	is($got, $n, "$n pipelined commands, replies read along the way: $n replies");
	$sock->blocking(1);
	is(($c->cmd('NOOP'))[1], '250 2.0.0 Ok', '... and the session goes on');
	$c->cmd('QUIT');
}

{
	# A client that pipelines and never reads: the server stops reading
	# it (its replies are not buffered without bound) and, once its
	# replies cannot be delivered for smtpd_timeout, drops it.
	my $mark = $t->log_mark;
	my $c = $t->smtp('backlog');
	$c->hello('client.example');
	my $sock = $c->{sock};
	$sock->blocking(0);
	my $sel = IO::Select->new($sock);
	my $chunk = "HELP\r\n" x 10000;
	my ($sent, $blocked) = (0, 0);
	my $deadline = time + 20;
	while (time < $deadline) {
		my $w = syswrite($sock, $chunk);
		if ($w) { $sent += $w; next }
		last unless $! == EAGAIN || $! == EWOULDBLOCK;
		# Blocked: does the server read again within a second and a half?
		if (!$sel->can_write(1.5)) { $blocked = 1; last }
	}
	ok($blocked, sprintf 'a client that never reads its replies is no longer read (after %.1f MB)', $sent / 1e6);
	ok($t->wait_log(qr/disconnect from unknown\[127\.0\.0\.1\] ehlo=1 help=\d+ commands=\d+$/, 15, from => $mark),
	   '... and is disconnected once its replies stay undelivered for smtpd_timeout');
	$c->close;
}

# ---- smtpd_recipient_limit ---------------------------------------------------------------

{
	my $c = $t->smtp;
	$c->hello('client.example');
	$c->cmd('MAIL FROM:<a@example.org>');
	my @r = map { ($c->cmd("RCPT TO:<r$_\@example.net>"))[1] } 1 .. 4;
	is_deeply(\@r, [('250 2.1.5 Ok') x 3, '452 4.5.3 Error: too many recipients'],
		  'smtpd_recipient_limit = 3: the 4th RCPT gets 452 4.5.3 Error: too many recipients');
	my ($code, $text) = $c->cmd('DATA');
	$c->send_raw("Subject: three\r\n\r\nx\r\n.\r\n");
	($code, $text) = $c->read_reply;
	my ($id) = ($text // '') =~ /queued as (\S+)/;
	my $q = SluiceTest::read_queue_file($t->queue_path($id // 'none'));
	is(scalar @{ $q ? $q->{rcpt} : [] }, 3, '... and the message is queued for the first three');
	$c->cmd('QUIT');
}

# ---- line_length_limit --------------------------------------------------------------------

{
	my $c = $t->smtp;
	$c->hello('client.example');
	my ($code, $text) = $c->cmd('NOOP ' . ('x' x 1200));
	is($text, '500 5.5.0 Error: line too long', 'a command line over line_length_limit: 500 5.5.0');
	is(($c->cmd('NOOP'))[1], '250 2.0.0 Ok', '... the session goes on');
	is(($c->cmd('NOOP ' . ('x' x 900)))[1], '250 2.0.0 Ok', 'a line within the limit is fine');
	$c->send_raw('MAIL FROM:<' . ('y' x 3000));
	($code, $text) = $c->read_reply;
	is($text, '500 5.5.0 Error: line too long',
	   'more than line_length_limit without a line end: 500 5.5.0 ...');
	ok($c->closed, '... and a disconnect (the rest of the line is not buffered)');
}

# ---- header_size_limit ------------------------------------------------------------------------

{
	my $mark = $t->log_mark;
	my $c = $t->smtp;
	$c->hello('client.example');
	my @hdr = map { sprintf 'X-Filler-%02d: %s', $_, 'h' x 80 } 1 .. 20;   # ~1900 bytes
	my $msg = join("\n", 'Subject: big header', @hdr, 'Message-ID: <late@client.example>', '', 'body', '');
	my ($code, $text) = $c->transaction(body => $msg);
	my ($id) = ($text // '') =~ /^250 2\.0\.0 Ok: queued as (\S+)$/;
	ok($id, "headers over header_size_limit: the message is still queued ($text)");
	ok($t->wait_log(qr/\Q$id\E: message header size exceeds 1000 bytes: rest taken as body$/, undef, from => $mark),
	   '... the log says the rest is taken as body');
	my $q = SluiceTest::read_queue_file($t->queue_path($id // 'none'));
	like($q ? $q->{content} : '', qr/\n\Q$msg\E\z/, '... and every byte of it is in the queue file');
	ok($q && !exists $q->{rec}{message_id},
	   '... but a Message-ID past the limit is body, not a header');
	$c->cmd('QUIT');
}

# ---- smtpd_client_connection_count_limit ----------------------------------------------------

{
	my $l = SluiceTest->new(main => { smtpd_peername_lookup => 'no',
					  smtpd_client_event_limit_exceptions => '',
					  smtpd_client_connection_count_limit => 2 });
	my $mark = $l->log_mark;
	my @open = map { $l->smtp } 1 .. 2;
	is_deeply([map { ($_->read_reply)[0] } @open], [220, 220], 'two connections from 127.0.0.1');
	my $third = $l->smtp;
	my ($code, $text) = $third->read_reply;
	is($text, "421 4.7.0 $HOST Error: too many connections from 127.0.0.1",
	   'smtpd_client_connection_count_limit = 2: the 3rd gets 421 4.7.0 ... too many connections');
	ok($third->closed, '... and is disconnected');
	ok($l->wait_log(qr/Connection concurrency limit exceeded: 3 from unknown\[127\.0\.0\.1\]/, undef, from => $mark),
	   '... and the log says so');
	$open[0]->cmd('QUIT');
	$open[0]->closed;
	my $again = wait_until(sub {
		my $c = $l->smtp or return;
		my ($code) = $c->read_reply;
		$c->cmd('QUIT') if $code && $code == 220;
		return $code && $code == 220;
	}, 10);
	ok($again, 'once one of them quits, a new connection is accepted');
	$_->close for @open;
	$l->set_main(smtpd_client_event_limit_exceptions => undef);   # default: $mynetworks
	$l->reload;
	my @many = map { $l->smtp } 1 .. 4;
	is_deeply([map { ($_->read_reply)[0] } @many], [220, 220, 220, 220],
		  'smtpd_client_event_limit_exceptions (default $mynetworks): 127.0.0.1 is not limited');
	$_->close for @many;
}

done_testing;
