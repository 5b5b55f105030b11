#!/usr/bin/perl
# smtp_commands.t - every SMTP command and its replies (docs/smtpd.md):
# the greeting from smtpd_banner, HELO/EHLO and the exact EHLO keyword
# list (smtpd_discard_ehlo_keywords, VRFY only when enabled), the
# MAIL/RCPT/DATA happy path down to the queue file on disk at the moment
# the 250 is read (mode 0700, our Received: first, body dot-unstuffed),
# a normal send with swaks, RSET, NOOP, QUIT, VRFY, HELP, unknown and
# empty commands, another protocol spoken to the port (an HTTP request,
# a header: 221 and hang up), out-of-sequence 503s and Postfix's 554 for DATA without
# an accepted recipient, syntax 501s (Postfix's domain checks: the domain
# an address resolves to must be a host name or an address literal, also
# behind a percent hack or a bang path), smtpd_helo_required,
# strict_rfc821_envelopes, sender-specified routing from a trusted client
# (accepted: the restrictions decide, as in Postfix; the untrusted side is
# t/restrict_open_relay.t), source routes and the null sender to
# postmaster (even when a filter rejects it).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest qw(wait_until reply_is);

my $HOST = 'mx.example.test';
my $DATE = qr/\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [-+]\d{4} \(\S+\)/;
# The EHLO reply with the default keywords, in order (no VRFY).
my $EHLO_REPLY = join("\n", "250-$HOST", '250-PIPELINING', '250-SIZE 10240000',
		      '250-ENHANCEDSTATUSCODES', '250-8BITMIME', '250-DSN',
		      '250-SMTPUTF8', '250 CHUNKING');

# Many error replies below: no tarpit, no hard limit here (smtp_limits.t).
my $t = SluiceTest->new(main => { smtpd_peername_lookup => 'no',
				  smtpd_banner => '$myhostname ESMTP custom banner, hello',
				  smtpd_soft_error_limit => 1000,
				  smtpd_hard_error_limit => 1000 });

# ---- greeting, HELO, EHLO ----------------------------------------------

{
	my $c = $t->smtp;
	my ($code, $text) = $c->read_reply;
	is($text, "220 $HOST ESMTP custom banner, hello",
	   'the greeting is smtpd_banner with $myhostname expanded');

	($code, $text) = $c->cmd('EHLO client.example');
	is($text, $EHLO_REPLY,
	   'EHLO: hostname, then exactly the default keywords in order (no VRFY)');

	reply_is($c, 'HELO client.example', "250 $HOST", 'HELO: 250 myhostname');
	reply_is($c, 'EHLO', '501 Syntax: EHLO hostname', 'EHLO without a name (no enhanced code, as Postfix)');
	reply_is($c, 'HELO   ', '501 Syntax: HELO hostname', 'HELO with only spaces');
	reply_is($c, 'NOOP', '250 2.0.0 Ok', 'NOOP');
	reply_is($c, 'NOOP anything at all', '250 2.0.0 Ok', 'NOOP with an argument');
	reply_is($c, 'RSET', '250 2.0.0 Ok', 'RSET');
	reply_is($c, 'RSET now', '501 5.5.4 Syntax: RSET', 'RSET with an argument');
	reply_is($c, 'VRFY postmaster', '502 5.5.1 VRFY command is disabled',
		 'VRFY is disabled by default');
	($code, $text) = $c->cmd('HELP');
	like($text, qr/^214 2\.0\.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP$/,
	     'HELP: 214 2.0.0 and the command list');
	reply_is($c, 'FOO bar', '500 5.5.2 Error: command not recognized', 'unknown command');
	reply_is($c, 'MAILX FROM:<a@example.org>', '500 5.5.2 Error: command not recognized',
		 'a verb that only starts like MAIL is unknown');
	reply_is($c, '', '500 5.5.2 Error: bad syntax', 'an empty line');
	reply_is($c, 'ehlo lower.example', $EHLO_REPLY, 'verbs are case-insensitive');

	# ---- out of sequence and syntax ----
	reply_is($c, 'RCPT TO:<rcpt@example.net>', '503 5.5.1 Error: need MAIL command',
		 'RCPT before MAIL');
	reply_is($c, 'DATA', '503 5.5.1 Error: need RCPT command',
		 'DATA before MAIL: Postfix\'s "need RCPT command"');
	reply_is($c, 'DATA now', '503 5.5.1 Error: need RCPT command',
		 'DATA with an argument before MAIL: the sequence comes first');
	reply_is($c, 'MAIL', '501 5.5.4 Syntax: MAIL FROM:<address>', 'MAIL without FROM:');
	reply_is($c, 'MAIL TO:<a@example.org>', '501 5.5.4 Syntax: MAIL FROM:<address>',
		 'MAIL TO: is a syntax error');
	reply_is($c, 'MAIL FROM:<a@example.org', '501 5.1.7 Bad sender address syntax',
		 'MAIL FROM without the closing bracket: the address is bad (Postfix)');
	reply_is($c, 'MAIL FROM:<a b@example.org>', '501 5.1.7 Bad sender address syntax',
		 'a sender with a space');
	reply_is($c, 'MAIL FROM:<a@example..org>', '501 5.1.7 Bad sender address syntax',
		 'a sender domain with an empty label');
	reply_is($c, 'MAIL FROM:<a@127.0.0.1>', '501 5.1.7 Bad sender address syntax',
		 'an all-numeric sender domain (not an address literal)');
	reply_is($c, 'MAIL FROM:<a@[999.0.0.1]>', '501 5.1.7 Bad sender address syntax',
		 'a sender address literal out of range');
	reply_is($c, 'MAIL FROM:<a@>', '501 5.1.7 Bad sender address syntax',
		 'a sender with an empty domain');
	reply_is($c, 'MAIL FROM:<a@example.org> FOO=bar', '555 5.5.4 Unsupported option: FOO=bar',
		 'an unknown MAIL parameter: the whole word');
	reply_is($c, 'MAIL FROM:<a b@example.org> FOO=bar', '501 5.1.7 Bad sender address syntax',
		 'the address is checked before the parameters');
	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', 'MAIL');
	reply_is($c, 'MAIL FROM:<b@example.org>', '503 5.5.1 Error: nested MAIL command',
		 'nested MAIL');
	reply_is($c, 'DATA', '554 5.5.1 Error: no valid recipients',
		 'DATA in a transaction without recipients: 554 5.5.1 no valid recipients');
	reply_is($c, 'RCPT', '501 5.5.4 Syntax: RCPT TO:<address>', 'RCPT without TO:');
	reply_is($c, 'RCPT FROM:<x@example.net>', '501 5.5.4 Syntax: RCPT TO:<address>',
		 'RCPT FROM: is a syntax error');
	reply_is($c, 'RCPT TO:<>', '501 5.1.3 Bad recipient address syntax',
		 'an empty recipient');
	reply_is($c, 'RCPT TO:<a,b@example.net>', '501 5.1.3 Bad recipient address syntax',
		 'a recipient with a comma');
	for my $addr ('user@exa%mple.net', 'user@exa!mple.net', 'user@-bad.example.net',
		      'user@[example.net]', 'user@[1.2.3]', 'user@123', 'user@@localhost',
		      'user%bad..name@localhost', 'bad..name!user@localhost', '@') {
		reply_is($c, "RCPT TO:<$addr>", '501 5.1.3 Bad recipient address syntax',
			 "a recipient domain that is no host name: $addr");
	}
	reply_is($c, 'DATA', '554 5.5.1 Error: no valid recipients',
		 'DATA after refused recipients: 554 5.5.1');
	reply_is($c, 'RCPT TO:<x@example.net> BAR=1', '555 5.5.4 Unsupported option: BAR=1',
		 'an unknown RCPT parameter');
	reply_is($c, 'RCPT TO:<x@example.net> <y@example.net>', '555 5.5.4 Unsupported option: <y@example.net>',
		 'a second address is an unsupported option (Postfix)');
	reply_is($c, 'RCPT TO:<x@example.net', '501 5.1.3 Bad recipient address syntax',
		 'RCPT TO without the closing bracket');
	reply_is($c, 'RCPT TO:<x@example.net>', '250 2.1.5 Ok', 'RCPT');
	reply_is($c, 'DATA now', '501 5.5.4 Syntax: DATA', 'DATA with an argument');
	reply_is($c, 'RSET', '250 2.0.0 Ok', 'RSET ends the transaction');
	reply_is($c, 'RCPT TO:<x@example.net>', '503 5.5.1 Error: need MAIL command',
		 '... so RCPT needs a new MAIL');
	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', '... which is accepted');
	reply_is($c, 'EHLO again.example', $EHLO_REPLY, 'EHLO in a transaction');
	reply_is($c, 'RCPT TO:<x@example.net>', '503 5.5.1 Error: need MAIL command',
		 '... resets it');

	reply_is($c, 'QUIT', '221 2.0.0 Bye', 'QUIT');
	ok($c->closed, '... and the server closes the connection');
}

# ---- the happy path, down to the queue file --------------------------------

{
	my $long = '.' . ('x' x 20000);   # longer than one read; starts with a dot
	my @body = ('Message-ID: <happy.1@client.example>',
		    'From: A <a@example.org>',
		    'Subject: the happy path',
		    '',
		    'line one',
		    '..leading dot, stuffed',
		    '...',
		    '..',
		    'trailing spaces   ',
		    "tab\there",
		    '',
		    $long,
		    'last line');
	my @unstuffed = map { s/^\.//r } @body;

	my $c = $t->smtp;
	my ($code, $text) = $c->hello('client.example');
	is($code, 250, 'EHLO');
	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', 'MAIL FROM:<a@example.org>');
	reply_is($c, 'RCPT TO:<b@example.net>', '250 2.1.5 Ok', 'RCPT TO:<b@example.net>');
	my @open = $t->queue_files;
	is(scalar @open, 1, 'the first accepted recipient creates a queue file');
	is(@open && (stat $t->queue_path($open[0]))[2] & 07777, 0600,
	   '... mode 0600 while it is written');
	reply_is($c, 'DATA', '354 End data with <CR><LF>.<CR><LF>', 'DATA: 354');
	$c->send_raw(join('', map { "$_\r\n" } @body) . ".\r\n");
	($code, $text) = $c->read_reply;
	my ($id) = ($text // '') =~ /^250 2\.0\.0 Ok: queued as ([0-9A-F]{14,29})$/;
	ok($id, "end of data: 250 2.0.0 Ok: queued as ID ($text)");
	# Right now, before anything else happens: the file is there and complete.
	my $path = $t->queue_path($id // 'none');
	my @st = stat $path;
	ok(@st, 'the queue file exists in incoming/ when the 250 is read');
	is(@st && ($st[2] & 07777), 0700, '... with mode 0700 (complete)');
	is($id, $open[0], '... and it is the file created at RCPT');

	my $q = SluiceTest::read_queue_file($path);
	ok($q && $q->{complete}, 'the queue file reads as complete')
	    or diag($q ? $q->{problem} : "cannot read $path");
	my @lines = split /\n/, $q->{content}, -1;
	like($lines[0], qr/^Received: from client\.example \(unknown \[127\.0\.0\.1\]\)$/,
	     'the first line is our Received: header');
	is($lines[1], "\tby $HOST (sluice) with ESMTP id $id", '... by myhostname, with the queue ID');
	like($lines[2], qr/^\tfor <b\@example\.net>; $DATE$/, '... for the recipient, and the date');
	is(join("\n", @lines[3 .. $#lines]), join("\n", @unstuffed, ''),
	   'then the message as sent: LF line ends, dot-stuffing removed');
	is($q->{rec}{sender}[0], 'a@example.org', 'envelope: sender');
	is_deeply($q->{rcpt}, [{ status => 'P', addr => 'b@example.net', notify => '-', orcpt => '-' }],
		  'envelope: one pending recipient, no DSN');
	is($q->{rec}{size}[0], length $q->{content}, 'envelope: size is the content length');
	is_deeply($q->{rec}{seg}, ['36 ' . length $q->{content}], 'envelope: one segment');
	is($q->{rec}{body}[0], '7BIT', 'envelope: body 7BIT');
	is($q->{rec}{helo}[0], 'client.example', 'envelope: helo');
	is($q->{rec}{proto}[0], 'ESMTP', 'envelope: proto ESMTP');
	is($q->{rec}{client_addr}[0], '127.0.0.1', 'envelope: client_addr');
	is($q->{rec}{message_id}[0], '<happy.1@client.example>', 'envelope: message_id');

	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', 'a second transaction on the session');
	reply_is($c, 'RCPT TO:<c@example.net>', '250 2.1.5 Ok', '... RCPT');
	my @two = grep { $_ ne $id } $t->queue_files;
	is(scalar @two, 1, '... has its own queue file');
	reply_is($c, 'RSET', '250 2.0.0 Ok', '... RSET');
	ok(wait_until(sub { !-e $t->queue_path($two[0] // 'none') }, 5),
	   '... which removes the unfinished queue file');
	reply_is($c, 'QUIT', '221 2.0.0 Bye', 'QUIT');
}

# ---- a nested MAIL leaves the transaction in progress alone ---------------

{
	my $c = $t->smtp;
	$c->hello;
	my %before = map { $_ => 1 } $t->queue_files;
	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', 'MAIL');
	reply_is($c, 'RCPT TO:<nested@example.net>', '250 2.1.5 Ok', 'RCPT');
	my @new = grep { !$before{$_} } $t->queue_files;
	reply_is($c, 'MAIL FROM:<other@example.org>', '503 5.5.1 Error: nested MAIL command',
		 'a nested MAIL is refused');
	my ($code, $text) = $c->cmd('DATA');
	is($text, '354 End data with <CR><LF>.<CR><LF>', '... and the transaction goes on: DATA');
	$c->send_raw("Subject: nested\r\n\r\nbody\r\n.\r\n");
	($code, $text) = $c->read_reply;
	is($text, "250 2.0.0 Ok: queued as " . ($new[0] // '?'),
	   '... the message is queued in the file opened at RCPT');
	my $q = SluiceTest::read_queue_file($t->queue_path($new[0] // 'none'));
	is($q && $q->{rec}{sender}[0], 'a@example.org', '... with the first sender');
	$c->cmd('QUIT');
	is_deeply([grep { !$before{$_} } $t->queue_files], \@new, 'no other queue file was left behind');
}

# ---- swaks, a normal client ---------------------------------------------

SKIP: {
	skip 'swaks is not installed', 4 unless -x '/usr/bin/swaks' || `which swaks 2>/dev/null`;
	my $port = $t->port;
	my $out = `swaks --server 127.0.0.1 --port $port --helo swaks.example --from alice\@example.org --to bob\@example.net --header 'Subject: via swaks' --body 'Hello from swaks.' 2>&1`;
	is($? >> 8, 0, 'swaks sends a message') or diag($out);
	my ($id) = $out =~ /<-  250 2\.0\.0 Ok: queued as (\S+)/;
	ok($id, 'swaks sees 250 2.0.0 Ok: queued as ID');
	my $q = SluiceTest::read_queue_file($t->queue_path($id // 'none'));
	ok($q && $q->{complete}, 'its queue file is complete');
	like($q ? $q->{content} : '', qr/\nSubject: via swaks\n.*\n\nHello from swaks\.\n+\z/s,
	     '... with the header and body swaks sent');
}

# ---- sender-specified routing, source routes, unbracketed addresses -------

{
	my $c = $t->smtp;
	$c->hello;
	reply_is($c, 'MAIL FROM: user@example.org', '250 2.1.0 Ok',
		 'MAIL FROM: user@host without brackets is accepted (strict_rfc821_envelopes = no)');
	reply_is($c, 'RCPT TO:plain@example.net', '250 2.1.5 Ok', '... and so is RCPT TO:user@host');
	# 127.0.0.1 is in mynetworks: as Postfix, the restrictions (here
	# permit_mynetworks) decide about routing in the local part
	my @routed = ('user%host@example.net', 'user!host@example.net', '"a@b"@example.net',
		      'user@host@example.net', '@example.net', '""@example.net', 'user@[IPv6:2001:db8::1]');
	for my $addr (@routed) {
		reply_is($c, "RCPT TO:<$addr>", '250 2.1.5 Ok',
			 "from a trusted client, accepted as Postfix does: $addr");
	}
	reply_is($c, 'RCPT TO:<@relay.example,@other.example:routed@example.net>', '250 2.1.5 Ok',
		 'a source route is stripped and the address accepted');
	reply_is($c, 'DATA', '354 End data with <CR><LF>.<CR><LF>', 'DATA');
	$c->send_raw("Subject: routed\r\n\r\nx\r\n.\r\n");
	my ($code, $text) = $c->read_reply;
	my ($id) = ($text // '') =~ /queued as (\S+)/;
	my $q = SluiceTest::read_queue_file($t->queue_path($id // 'none'));
	is_deeply([ map { $_->{addr} } @{ $q ? $q->{rcpt} : [] } ],
		  [ 'plain@example.net', @routed, 'routed@example.net' ],
		  'the recipients are queued as the client wrote them (quotes kept)');
	$c->cmd('QUIT');
}

{
	my $c = $t->smtp;
	$c->hello;
	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', 'MAIL');
	reply_is($c, 'RCPT TO:<@relay.example:routed@example.net>', '250 2.1.5 Ok', 'source-routed RCPT');
	reply_is($c, 'DATA', '354 End data with <CR><LF>.<CR><LF>', 'DATA');
	$c->send_raw("Subject: routed\r\n\r\nx\r\n.\r\n");
	my ($code, $text) = $c->read_reply;
	my ($id) = ($text // '') =~ /queued as (\S+)/;
	ok($id, 'queued');
	my $q = SluiceTest::read_queue_file($t->queue_path($id // 'none'));
	is($q && $q->{rcpt}[0]{addr}, 'routed@example.net', 'the stored recipient has no source route');
	$c->cmd('QUIT');
}

# ---- another protocol on the SMTP port ---------------------------------------

for my $line ('GET / HTTP/1.1', 'post /form HTTP/1.0', 'Subject: not a command') {
	my $c = $t->smtp;
	$c->hello;
	reply_is($c, $line, '221 2.7.0 Error: I can break rules, too. Goodbye.',
		 "a non-SMTP command ($line): 221 2.7.0, as Postfix");
	ok($c->closed, '... and the server hangs up');
	ok($t->wait_log(qr/warning: non-SMTP command from unknown\[127\.0\.0\.1\]: \Q$line\E$/m),
	   '... with a warning naming the line');
}

# ---- no HELO at all (smtpd_helo_required = no) ------------------------------

{
	my $c = $t->smtp;
	$c->read_reply;
	my ($code, $text) = $c->transaction(body => "Subject: no helo\n\nx\n");
	my ($id) = ($text // '') =~ /^250 2\.0\.0 Ok: queued as (\S+)$/;
	ok($id, 'a client that never says HELO/EHLO can send (smtpd_helo_required = no)');
	my $q = SluiceTest::read_queue_file($t->queue_path($id // 'none'));
	like($q ? $q->{content} : '', qr/\AReceived: from unknown \(unknown \[127\.0\.0\.1\]\)\n\tby \S+ \(sluice\) with SMTP id /,
	     '... Received: from unknown, with SMTP');
	ok($q && !exists $q->{rec}{helo}, '... no helo record');
	is($q && $q->{rec}{proto}[0], 'SMTP', '... proto SMTP');
	$c->cmd('QUIT');
}

# ---- the null sender to postmaster ----------------------------------------

{
	my $c = $t->smtp;
	$c->hello;
	my ($code, $text) = $c->transaction(from => '', to => ['postmaster'],
					    body => "Subject: bounce\n\nundeliverable\n");
	like($text, qr/^250 2\.0\.0 Ok: queued as \S+$/, 'MAIL FROM:<> to <postmaster> is queued');
	$c->cmd('QUIT');
}

# ---- VRFY enabled, keywords discarded -----------------------------------

{
	my $v = SluiceTest->new(main => { disable_vrfy_command => 'no',
					  smtpd_discard_ehlo_keywords => 'dsn, chunking SMTPUTF8' });
	my $c = $v->smtp;
	my ($code, $text) = $c->hello('client.example');
	is($text, join("\n", "250-$HOST", '250-PIPELINING', '250-SIZE 10240000', '250-VRFY',
		       '250-ENHANCEDSTATUSCODES', '250 8BITMIME'),
	   'disable_vrfy_command = no announces VRFY; smtpd_discard_ehlo_keywords hides DSN, CHUNKING, SMTPUTF8');
	reply_is($c, 'VRFY someone@example.net', '252 2.0.0 someone@example.net',
		 'VRFY enabled: 252 2.0.0 address');
	reply_is($c, 'VRFY', '501 5.5.4 Syntax: VRFY address [SMTPUTF8]', 'VRFY without an address');
	reply_is($c, 'VRFY <someone@example.net> SMTPUTF8', '252 2.0.0 <someone@example.net>',
		 'VRFY <address> SMTPUTF8: the address echoed');
	reply_is($c, 'VRFY some one@example.net', '501 5.1.3 Bad recipient address syntax',
		 'VRFY with two words: a bad address (Postfix)');
	reply_is($c, 'VRFY someone@exa%mple.net', '501 5.1.3 Bad recipient address syntax',
		 'VRFY with a domain that is no host name');
	$c->cmd('QUIT');

	my $d = SluiceTest->new(main => { smtpd_discard_ehlo_keywords => 'pipelining size enhancedstatuscodes 8bitmime dsn smtputf8 chunking' });
	$c = $d->smtp;
	($code, $text) = $c->hello('client.example');
	is($text, "250 $HOST", 'with every keyword discarded EHLO is a one-line reply');
	$c->cmd('QUIT');
}

# ---- smtpd_helo_required, strict_rfc821_envelopes ---------------------------

{
	my $s = SluiceTest->new(main => { smtpd_helo_required => 'yes',
					  strict_rfc821_envelopes => 'yes' });
	my $c = $s->smtp;
	$c->read_reply;
	reply_is($c, 'MAIL FROM:<a@example.org>', '503 5.5.1 Error: send HELO/EHLO first',
		 'smtpd_helo_required = yes: MAIL before HELO');
	reply_is($c, 'HELO client.example', "250 $HOST", 'HELO');
	reply_is($c, 'MAIL FROM: user@example.org', '501 5.1.7 Bad sender address syntax',
		 'strict_rfc821_envelopes = yes: MAIL FROM without brackets refused, as a bad address');
	reply_is($c, 'MAIL FROM:<user@example.org>', '250 2.1.0 Ok', '... with brackets accepted');
	reply_is($c, 'RCPT TO:plain@example.net', '501 5.1.3 Bad recipient address syntax',
		 '... and RCPT TO without brackets refused');
	reply_is($c, 'RCPT TO:<@example.net>', '501 5.1.3 Bad recipient address syntax',
		 '... and an empty local part (the address starts with @)');
	reply_is($c, 'RCPT TO:<@relay.example:user@example.net>', '250 2.1.5 Ok',
		 '... but not a source route');
	$c->cmd('QUIT');
}

# ---- a filter rejecting postmaster: the null sender still gets through ----

{
	my $p = SluiceTest->new(main => { sluice_plugins => 'example',
					  example_delay_ms => 0,
					  example_reject_recipient => "postmaster\@$HOST" });
	my $c = $p->smtp;
	$c->hello;
	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', 'MAIL');
	my ($code, $text) = $c->cmd("RCPT TO:<postmaster\@$HOST>");
	like($text, qr/^550 5\.1\.1 <postmaster\@\Q$HOST\E>: /, 'the example filter rejects postmaster for a normal sender');
	reply_is($c, 'RSET', '250 2.0.0 Ok', 'RSET');
	reply_is($c, 'MAIL FROM:<>', '250 2.1.0 Ok', 'MAIL FROM:<>');
	reply_is($c, "RCPT TO:<postmaster\@$HOST>", '250 2.1.5 Ok',
		 'the null sender to postmaster@myhostname is accepted despite the filter');
	reply_is($c, 'RCPT TO:<postmaster@elsewhere.example>', '250 2.1.5 Ok',
		 '(postmaster at a foreign domain is not the filter\'s target)');
	$c->cmd('QUIT');
	ok($p->wait_log(qr/null sender to <postmaster\@\Q$HOST\E> accepted despite a reject/),
	   'the bypass is logged');
}

done_testing;
