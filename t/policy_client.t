#!/usr/bin/perl
# check_policy_service against a test policy server written here (the
# Postfix policy delegation protocol is plain "name=value" lines): the
# attributes sluice sends, in Postfix's order, with their values at RCPT
# and DATA; replies applied as access(5) actions (REJECT, PREPEND into the
# queued message, HOLD, REDIRECT, FILTER, DISCARD, DEFER_IF_PERMIT); the
# failure modes (server down, garbage, a too long reply, a server that
# closes mid-request, a slow one past the timeout), each logged and
# answered with the default action; try_limit with retry_delay; one connection reused across sessions; a
# session closing while it waits.
#
# The server answers by the recipient's local part: rec (record the
# request, DUNNO), reject, prepend, hold, redirect, filter, discard, dip,
# garbage, long, close, closeonce (close the first time, DUNNO after),
# slow (never answer).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use SluiceTest qw(free_port wait_until);

my $sdir = tempdir('policy-test-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my @servers;

# ---- the test policy server ---------------------------------------------------

sub append_file {
	my ($file, $text) = @_;
	open my $fh, '>>', $file or die "$file: $!";
	print $fh $text;
	close $fh;
}

sub read_file {
	my ($file) = @_;
	open my $fh, '<', $file or return '';
	local $/;
	return <$fh> // '';
}

sub count_accepts { scalar(() = read_file("$sdir/accepts") =~ /^accept$/mg) }

sub answer {
	my ($sock, $req) = @_;
	my ($rcpt) = $req =~ /^recipient=([^@\n]*)/m;
	$rcpt //= '';
	$rcpt = 'rec' if $rcpt eq '' && $req =~ /^protocol_state=(?:DATA|END-OF-MESSAGE)$/m;
	if ($rcpt eq 'rec' || $rcpt eq 'rec2') {
		append_file("$sdir/requests", "$req\n--\n");
		return print $sock "action=DUNNO\n\n";
	}
	return print $sock "action=REJECT go away\n\n" if $rcpt eq 'reject';
	return print $sock "action=PREPEND X-Policy: checked\n\n" if $rcpt eq 'prepend';
	return print $sock "action=HOLD policy says hold\n\n" if $rcpt eq 'hold';
	return print $sock "action=REDIRECT other\@example.com\n\n" if $rcpt eq 'redirect';
	return print $sock "action=FILTER smtp:[127.0.0.1]:10025\n\n" if $rcpt eq 'filter';
	return print $sock "action=DISCARD policy discards\n\n" if $rcpt eq 'discard';
	return print $sock "foo=bar\naction=DEFER_IF_PERMIT try later\n\n" if $rcpt eq 'dip';
	return print $sock "this is not a policy reply\n\n" if $rcpt eq 'garbage';
	return print $sock 'action=DUNNO ' . ('x' x 5000) . "\n\n" if $rcpt eq 'long';
	return 0 if $rcpt eq 'close';
	if ($rcpt eq 'closeonce') {
		unless (-e "$sdir/closed-once") {
			append_file("$sdir/closed-once", "x");
			return 0;
		}
		return print $sock "action=DUNNO\n\n";
	}
	if ($rcpt eq 'slow') {
		1 while sysread($sock, my $buf, 1024);   # until sluice gives up
		return 0;
	}
	return print $sock "action=DUNNO\n\n";
}

sub serve_connection {
	my ($sock) = @_;
	$sock->autoflush(1);
	my $req = '';
	while (defined(my $line = <$sock>)) {
		if ($line ne "\n") {
			$req .= $line;
			next;
		}
		answer($sock, $req) or last;
		$req = '';
	}
	close $sock;
}

# A forking policy server on a free port; counts connections in accepts.
sub start_policy_server {
	my $port = free_port();
	my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
				      Listen => 16, ReuseAddr => 1) or die "listen: $!";
	my $pid = fork // die;
	if ($pid == 0) {
		SluiceTest::die_with_parent();
		$SIG{CHLD} = 'IGNORE';
		while (1) {
			my $s = $l->accept or next;
			append_file("$sdir/accepts", "accept\n");
			my $h = fork;
			if (defined $h && $h == 0) {
				SluiceTest::die_with_parent();
				close $l;
				serve_connection($s);
				POSIX::_exit(0);
			}
			close $s;
		}
	}
	close $l;
	push @servers, $pid;
	return $port;
}

END { kill 'TERM', @servers if @servers }

my $pport = start_policy_server();
my $dead = free_port();

sub server {
	my ($spec, %main) = @_;
	return SluiceTest->new(main => {
		local_recipient_maps => '',
		mynetworks => '127.0.0.0/8',
		sluice_smtpd_workers => 1,
		smtpd_recipient_restrictions =>
		    "check_policy_service $spec, permit_mynetworks, reject_unauth_destination",
		%main });
}

sub rcpt {
	my ($c, $addr) = @_;
	my (undef, $text) = $c->cmd("RCPT TO:<$addr>");
	return $text;
}

sub session {
	my ($t) = @_;
	my $c = $t->smtp;
	$c->hello('client.example');
	return $c;
}

sub requests {
	return map { my %h; my @k;
		     for (split /\n/) { my ($k, $v) = /^([^=]*)=(.*)$/ or next;
					push @k, $k; $h{$k} = $v }
		     { keys => \@k, v => \%h } }
	    grep { /\S/ } split /^--\n/m, read_file("$sdir/requests");
}

# ---- the request ------------------------------------------------------------------

my @postfix_order = qw(request protocol_state protocol_name helo_name queue_id
	sender recipient recipient_count client_address client_name
	reverse_client_name instance sasl_method sasl_username sasl_sender size
	ccert_subject ccert_issuer ccert_fingerprint ccert_pubkey_fingerprint
	encryption_protocol encryption_cipher encryption_keysize etrn_domain
	stress client_port policy_context server_address server_port
	compatibility_level mail_version);

{
	my $t = server("{ inet:127.0.0.1:$pport, timeout=5s, policy_context=test-ctx }",
		       smtpd_data_restrictions => "check_policy_service inet:127.0.0.1:$pport");
	my $c = session($t);
	my $cport = $c->{sock}->sockport;
	is(($c->cmd('MAIL FROM:<s@example.org> SIZE=1234'))[0], 250, 'MAIL');
	is(rcpt($c, 'rec@example.net'), '250 2.1.5 Ok', 'DUNNO from the server: the list goes on');
	is(rcpt($c, 'rec2@example.net'), '250 2.1.5 Ok', 'second recipient');
	my ($code) = $c->cmd('DATA');
	is($code, 354, 'DATA passes smtpd_data_restrictions with the policy check');
	$c->send_raw("Subject: x\r\n\r\nhi\r\n.\r\n");
	like(($c->read_reply)[1], qr/^250 2\.0\.0 Ok: queued as/, 'queued');
	$c->cmd('MAIL FROM:<s2@example.org>');
	is(rcpt($c, 'rec@example.net'), '250 2.1.5 Ok', 'next transaction');
	$c->cmd('QUIT');
	my @r = requests();
	is(scalar @r, 4, 'four requests recorded (two RCPT, DATA, RCPT)');
	is_deeply($r[0]{keys}, \@postfix_order, "every attribute, in Postfix's order");
	my %v = %{ $r[0]{v} };
	my %want = (request => 'smtpd_access_policy', protocol_state => 'RCPT',
		    protocol_name => 'ESMTP', helo_name => 'client.example',
		    queue_id => '', sender => 's@example.org',
		    recipient => 'rec@example.net', recipient_count => 0,
		    client_address => '127.0.0.1', size => 1234,
		    sasl_method => '', sasl_username => '', sasl_sender => '',
		    ccert_subject => '', encryption_protocol => '', stress => '',
		    etrn_domain => '', client_port => $cport,
		    policy_context => 'test-ctx', server_address => '127.0.0.1',
		    server_port => $t->port, mail_version => '0.1.0');
	is($v{$_}, $want{$_}, "RCPT: $_=$want{$_}") for sort keys %want;
	like($v{client_name}, qr/^(localhost|unknown)$/, 'client_name');
	like($v{instance}, qr/^[0-9a-f]+\.[0-9a-f]+\.[0-9a-f]+$/, 'instance looks like pid.session.txn');
	my %v2 = %{ $r[1]{v} };
	is($v2{instance}, $v{instance}, 'instance is the same for the second recipient of the message');
	like($v2{queue_id}, qr/^\w+$/, 'queue_id is known once a recipient was accepted');
	my %vd = %{ $r[2]{v} };
	is($vd{protocol_state}, 'DATA', 'DATA: protocol_state');
	is($vd{recipient_count}, 2, 'DATA: recipient_count');
	is($vd{recipient}, '', 'DATA with two recipients: no recipient attribute');
	is($vd{policy_context}, '', 'DATA: the bare service has the default policy_context');
	is($vd{instance}, $v{instance}, 'DATA: same instance');
	isnt($r[3]{v}{instance}, $v{instance}, 'a new transaction has a new instance');
	is($r[3]{v}{sender}, 's2@example.org', 'and its sender');
}

# size= at END-OF-MESSAGE is the size of the message received, not SIZE=.
{
	my $t = server("inet:127.0.0.1:$pport",
		       smtpd_end_of_data_restrictions => "check_policy_service inet:127.0.0.1:$pport");
	my $before = scalar requests();
	my $c = session($t);
	is(($c->cmd('MAIL FROM:<s@example.org> SIZE=99999'))[0], 250, 'MAIL with SIZE=99999');
	is(rcpt($c, 'rec@example.net'), '250 2.1.5 Ok', 'RCPT');
	is(($c->cmd('DATA'))[0], 354, 'DATA');
	my $body = "Subject: sized\r\n\r\n" . ("x" x 70 . "\r\n") x 60;
	(my $lf = $body) =~ s/\r\n/\n/g;
	$c->send_raw("$body.\r\n");
	like(($c->read_reply)[1], qr/^250 2\.0\.0 Ok: queued as/, 'queued');
	$c->cmd('QUIT');
	my @r = (requests())[$before .. scalar(requests()) - 1];
	is(scalar @r, 2, 'RCPT and END-OF-MESSAGE asked the server');
	is($r[0]{v}{size}, 99999, 'RCPT: size is the declared SIZE=');
	is($r[1]{v}{protocol_state}, 'END-OF-MESSAGE', 'END-OF-MESSAGE request');
	my $size = $r[1]{v}{size};
	ok($size >= length($lf) && $size < length($lf) + 1000,
	   "END-OF-MESSAGE: size is the message received (" . length($lf)
	   . " bytes and our Received: header), not SIZE=") or diag "size=$size";
}

# ---- replies as access(5) actions -----------------------------------------------

{
	my $t = server("{ inet:127.0.0.1:$pport, timeout=2s, try_limit=1 }");
	my $c = session($t);
	$c->cmd('MAIL FROM:<s@example.org>');
	is(rcpt($c, 'reject@example.net'),
	   '554 5.7.1 <reject@example.net>: Recipient address rejected: go away',
	   'action=REJECT text: as from an access table');
	$c->cmd('RSET');
	$c->cmd('MAIL FROM:<s@example.org>');
	is(rcpt($c, 'dip@example.net'),
	   '450 4.7.1 <dip@example.net>: Recipient address rejected: try later',
	   'DEFER_IF_PERMIT (after an unknown attribute, ignored) defers when the rest permits');
	$c->cmd('QUIT');

	$c = session($t);
	my ($code, $text) = $c->transaction(to => ['prepend@example.net']);
	my ($id) = ($text // '') =~ /queued as (\S+)/;
	ok($id, 'PREPEND: accepted');
	my $q = $id && SluiceTest::read_queue_file($t->queue_path($id));
	like($q ? $q->{content} : '', qr/\AX-Policy: checked\r?\n/, 'PREPEND: the header tops the queued message');
	($code, $text) = $c->transaction(to => ['hold@example.net']);
	($id) = ($text // '') =~ /queued as (\S+)/;
	ok($id && -e $t->queue_path($id, 'hold'), 'HOLD: the message is in hold/');
	($code, $text) = $c->transaction(to => ['redirect@example.net']);
	($id) = ($text // '') =~ /queued as (\S+)/;
	$q = $id && SluiceTest::read_queue_file($t->queue_path($id));
	is_deeply($q ? [map { $_->{addr} } @{ $q->{rcpt} }] : [], ['other@example.com'],
		  'REDIRECT: the recipients are replaced');
	($code, $text) = $c->transaction(to => ['filter@example.net']);
	($id) = ($text // '') =~ /queued as (\S+)/;
	$q = $id && SluiceTest::read_queue_file($t->queue_path($id));
	is($q ? $q->{rec}{filter}[0] : undef, 'smtp:[127.0.0.1]:10025',
	   'FILTER: the content filter is in the envelope');
	my $before = () = $t->queue_files('incoming');
	my $dmark = $t->log_mark;
	($code, $text) = $c->transaction(to => ['discard@example.net']);
	like($text, qr/^250 /, 'DISCARD: the client is told it was queued');
	is(scalar(() = $t->queue_files('incoming')), $before, '... nothing is queued');
	ok($t->wait_log(qr/: discard: RCPT from \S+: <discard\@example\.net>: Recipient address policy discards/,
			5, from => $dmark), '... discard: is logged');
	$c->cmd('QUIT');

	# ---- failure modes, try_limit=1 ----
	for my $case (['garbage', qr/problem talking to server 127\.0\.0\.1:$pport: malformed reply/],
		      ['long', qr/problem talking to server 127\.0\.0\.1:$pport: reply too long/],
		      ['close', qr/problem talking to server 127\.0\.0\.1:$pport: unexpected end-of-input/],
		      ['slow', qr/problem talking to server 127\.0\.0\.1:$pport: Connection timed out/]) {
		my ($what, $re) = @$case;
		my $mark = $t->log_mark;
		$c = session($t);
		$c->cmd('MAIL FROM:<s@example.org>');
		is(rcpt($c, "$what\@example.net"),
		   "451 4.3.5 <$what\@example.net>: Recipient address rejected: Server configuration problem",
		   "$what: the default action");
		ok($t->wait_log($re, 5, from => $mark), "$what: logged");
		is(rcpt($c, 'rec@example.net'), '250 2.1.5 Ok', "$what: the next request works");
		$c->cmd('QUIT');
	}

	# a waiting session suspends only itself (one worker serves both)
	my $a = session($t);
	$a->cmd('MAIL FROM:<s@example.org>');
	$a->send_line('RCPT TO:<slow@example.net>');
	my $b = session($t);
	$b->cmd('MAIL FROM:<s@example.org>');
	is(rcpt($b, 'rec@example.net'), '250 2.1.5 Ok',
	   'another session is served while one waits for the policy server');
	is($a->read_line(0.1), undef, '... which is still waiting');
	like(($a->read_reply)[1] // '', qr/^451 4\.3\.5 <slow\@example\.net>/,
	     '... and gets the default action at its timeout');
	$_->cmd('QUIT') for $a, $b;

	# a session that goes away while it waits is not resumed
	my $mark = $t->log_mark;
	$c = session($t);
	$c->cmd('MAIL FROM:<s@example.org>');
	$c->send_line('RCPT TO:<slow@example.net>');
	$c->close;
	$c = session($t);
	$c->cmd('MAIL FROM:<s@example.org>');
	is(rcpt($c, 'rec@example.net'), '250 2.1.5 Ok', 'after a session closed while waiting, the worker serves the next');
	$c->cmd('QUIT');
	ok($t->wait_log(qr/disconnect from/, 5, from => $mark), 'the waiting session was disconnected');
	unlike($t->log_text($mark), qr/panic|fatal|Connection timed out/,
	       'no crash, and the cancelled request never timed out');
}

# ---- reuse, server down, retries ----------------------------------------------------

{
	my $t = server("inet:127.0.0.1:$pport");
	my $before = count_accepts();
	for my $n (1, 2) {
		my $c = session($t);
		$c->cmd('MAIL FROM:<s@example.org>');
		is(rcpt($c, 'any@example.net'), '250 2.1.5 Ok', "session $n: accepted");
		$c->cmd('QUIT');
		$c->closed;
	}
	is(count_accepts() - $before, 1, 'two sessions, one connection to the policy server');
}
{
	my $t = server("{ inet:127.0.0.1:$pport, request_limit=1 }");
	my $before = count_accepts();
	my $c = session($t);
	$c->cmd('MAIL FROM:<s@example.org>');
	rcpt($c, 'any@example.net') for 1 .. 2;
	$c->cmd('QUIT');
	is(count_accepts() - $before, 2, 'request_limit=1: a connection per request');
}
{
	my $t = server("inet:127.0.0.1:$dead",
		       smtpd_policy_service_retry_delay => '1s');
	my $mark = $t->log_mark;
	my $c = session($t);
	$c->cmd('MAIL FROM:<s@example.org>');
	is(rcpt($c, 'any@example.net'),
	   '451 4.3.5 <any@example.net>: Recipient address rejected: Server configuration problem',
	   'server down: smtpd_policy_service_default_action');
	my $log = $t->log_text($mark);
	is(scalar(() = $log =~ /warning: connect to 127\.0\.0\.1:$dead: Connection refused/g), 2,
	   'two attempts (smtpd_policy_service_try_limit = 2), each logged');
	like($log, qr/warning: problem talking to server 127\.0\.0\.1:$dead: Connection refused/,
	     'as Postfix logs it');
	$c->cmd('QUIT');
}
{
	my $t = server("{ inet:127.0.0.1:$dead, default_action=DUNNO }");
	my $c = session($t);
	$c->cmd('MAIL FROM:<s@example.org>');
	is(rcpt($c, 'any@example.net'), '250 2.1.5 Ok', 'default_action=DUNNO: the list goes on');
	$c->cmd('QUIT');
}
{
	my $t = server("{ inet:127.0.0.1:$pport, try_limit=2, retry_delay=1s, "
		       . "{ default_action = 450 4.7.0 policy trouble } }");
	my $mark = $t->log_mark;
	my $before = count_accepts();
	my $c = session($t);
	$c->cmd('MAIL FROM:<s@example.org>');
	is(rcpt($c, 'closeonce@example.net'), '250 2.1.5 Ok',
	   'a server closing mid-request: the second try answers');
	is(count_accepts() - $before, 2, '... on a new connection');
	is(scalar(() = $t->log_text($mark) =~ /problem talking to server/g), 1, '... the first is logged');
	is(rcpt($c, 'close@example.net'),
	   '450 4.7.0 <close@example.net>: Recipient address rejected: policy trouble',
	   'default_action with spaces in braces');
	$c->cmd('QUIT');
}
# An unknown service option is refused by `sluice check` and at start-up
# (t/policy_check.t), so it never reaches a session.

done_testing;
