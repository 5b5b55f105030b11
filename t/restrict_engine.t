#!/usr/bin/perl
# The restriction engine against a real sluice: the secure default (no
# relaying for an untrusted client), list compilation errors in `sluice
# check`, restriction classes, smtpd_delay_reject yes/no timing, OK ending
# one list only, warn_if_reject, defer_if_permit / defer_if_reject,
# soft_bounce, the DATA and END-OF-DATA lists, a restriction that waits
# (sleep), and every access(5) action's effect in the queue (through the
# example plugin's example_action restriction, which answers with the
# action in its parameter exactly as an access table would).
#
# The test client always comes from 127.0.0.1; "untrusted" means mynetworks
# does not contain it.  local_recipient_maps is emptied so that the
# implicit reject_unlisted_recipient does not depend on the host's users.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use SluiceTest qw(reply_is);

my %base = (local_recipient_maps => '');

sub server {
	my (%main) = @_;
	return SluiceTest->new(main => { %base, %main });
}

# EHLO, MAIL; then the reply to RCPT TO:<rcpt>.
sub rcpt_reply {
	my ($t, $rcpt, %opt) = @_;
	my $c = $t->smtp;
	$c->hello($opt{helo} // 'client.example');
	my ($code, $text) = $c->cmd('MAIL FROM:<' . ($opt{from} // 'a@example.org') . '>');
	return ($code, $text) unless $code eq '250';
	return $c->cmd("RCPT TO:<$rcpt>");
}

# ---- the secure default ----------------------------------------------------

{
	my $t = server(mynetworks => '127.0.0.2/32');
	my $mark = $t->log_mark;
	my (undef, $text) = rcpt_reply($t, 'x@remote.example');
	is($text, '454 4.7.1 <x@remote.example>: Relay access denied',
	   'untrusted client cannot relay by default (defer_unauth_destination)');
	ok($t->wait_log(qr/NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 454 4\.7\.1 <x\@remote\.example>: Relay access denied; from=<a\@example\.org> to=<x\@remote\.example> proto=ESMTP helo=<client\.example>$/,
			undef, from => $mark), 'the reject is logged as Postfix logs it');
	(undef, $text) = rcpt_reply($t, 'someone@mx.example.test');
	is($text, '250 2.1.5 Ok', 'a local recipient is accepted from anyone');
	(undef, $text) = rcpt_reply($t, 'postmaster');
	is($text, '250 2.1.5 Ok', 'unqualified postmaster is always accepted');
}
{
	my $t = server();
	my (undef, $text) = rcpt_reply($t, 'x@remote.example');
	is($text, '250 2.1.5 Ok', 'a client in mynetworks relays (permit_mynetworks)');
}

# ---- compile errors ----------------------------------------------------------

{
	my $t = SluiceTest->new(start => 0, main => {
		%base,
		smtpd_client_restrictions => 'permit_mynetworks, rejectt',
		smtpd_restriction_classes => 'strict',
		strict => 'reject_nothing_known',
		smtpd_helo_restrictions => 'sleep',
	});
	my ($rc, $out) = $t->sluice('check');
	isnt($rc, 0, 'sluice check fails on unknown restriction names');
	like($out, qr{main\.cf:\d+: unknown restriction rejectt in smtpd_client_restrictions; did you mean reject\?},
	     'unknown name: file:line and a suggestion');
	like($out, qr{main\.cf:\d+: unknown restriction reject_nothing_known in restriction class strict},
	     'an unknown name inside a class is reported at the class');
	like($out, qr{main\.cf:\d+: restriction sleep in smtpd_helo_restrictions needs an argument},
	     'a missing argument is reported');
	($rc, $out) = $t->sluice('run');
	isnt($rc, 0, 'sluice run refuses to start with such a list');
}
{
	my $t = SluiceTest->new(start => 0, main => {
		%base, smtpd_relay_restrictions => 'permit_mynetworks',
	});
	my ($rc, $out) = $t->sluice('check');
	isnt($rc, 0, 'a configuration that cannot refuse relaying is refused');
	like($out, qr/specify at least one working instance of: reject_unauth_destination/,
	     '... with Postfix\'s reason');
}

{
	my $t = SluiceTest->new(start => 0, main => {
		%base, smtpd_client_restrictions => 'permit, reject_unknown_client_hostname',
	});
	my ($rc, $out) = $t->sluice('check');
	is($rc, 0, 'a restriction after permit is only a warning');
	like($out, qr{warning: .*main\.cf:\d+: restriction reject_unknown_client_hostname after permit in smtpd_client_restrictions is never evaluated},
	     '... which says so');
}

# ---- classes and delay_reject ---------------------------------------------------

{
	my $t = server(smtpd_restriction_classes => 'no_client',
		       no_client => 'reject',
		       smtpd_client_restrictions => 'no_client');
	my $c = $t->smtp;
	my ($code, $text) = $c->hello('client.example');
	is($code, '250', 'delay_reject=yes: greeting and EHLO pass a rejected client');
	reply_is($c, 'MAIL FROM:<a@example.org>', '250 2.1.0 Ok', '... and MAIL');
	reply_is($c, 'RCPT TO:<r@mx.example.test>',
		 '554 5.7.1 <localhost[127.0.0.1]>: Client host rejected: Access denied',
		 'the client list (a class) rejects at RCPT');
}
{
	my $t = server(smtpd_delay_reject => 'no', smtpd_client_restrictions => 'reject');
	my $c = $t->smtp;
	my ($code, $text) = $c->read_reply;
	is($text, '554 5.7.1 <localhost[127.0.0.1]>: Client host rejected: Access denied',
	   'delay_reject=no: the client is rejected instead of the greeting');
	reply_is($c, 'EHLO client.example',
		 '503 5.7.0 Error: access denied for localhost[127.0.0.1]',
		 '... and every command after it is refused');
}
{
	my $t = server(smtpd_delay_reject => 'no', smtpd_helo_restrictions => 'reject',
		       smtpd_sender_restrictions => 'reject');
	my $c = $t->smtp;
	$c->read_reply;
	reply_is($c, 'EHLO client.example',
		 '554 5.7.1 <client.example>: Helo command rejected: Access denied',
		 'delay_reject=no: the helo list rejects at EHLO');
	reply_is($c, 'MAIL FROM:<a@example.org>',
		 '554 5.7.1 <a@example.org>: Sender address rejected: Access denied',
		 'delay_reject=no: the sender list rejects at MAIL');
}
{
	my $t = server(smtpd_helo_restrictions => 'reject');
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '554 5.7.1 <client.example>: Helo command rejected: Access denied',
	   'delay_reject=yes: the helo list rejects at RCPT');
}

# ---- list semantics ---------------------------------------------------------------

{
	my $t = server(smtpd_client_restrictions => 'permit',
		       smtpd_relay_restrictions => 'permit',
		       smtpd_recipient_restrictions => 'reject');
	my (undef, $text) = rcpt_reply($t, 'r@remote.example');
	is($text, '554 5.7.1 <r@remote.example>: Recipient address rejected: Access denied',
	   'permit ends its own list only: the recipient list still runs');
}
{
	my $t = server(smtpd_recipient_restrictions =>
		       'warn_if_reject reject, warn_if_reject defer, reject');
	my $mark = $t->log_mark;
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '554 5.7.1 <r@mx.example.test>: Recipient address rejected: Access denied',
	   'warn_if_reject covers only the next restriction');
	ok($t->wait_log(qr/NOQUEUE: reject_warning: RCPT from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 <r\@mx\.example\.test>: Recipient address rejected: Access denied; from=<a\@example\.org> to=<r\@mx\.example\.test>/,
			undef, from => $mark), 'a warned reject is logged as reject_warning');
	ok($t->wait_log(qr/reject_warning: RCPT .*: 450 4\.3\.2 <r\@mx\.example\.test>: Recipient address rejected: Try again later/,
			undef, from => $mark), '... so is a warned defer');
}
{
	my $t = server(smtpd_recipient_restrictions => 'warn_if_reject reject, permit');
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '250 2.1.5 Ok', 'warn_if_reject reject, permit: accepted');
}
{
	my $t = server(smtpd_recipient_restrictions => 'defer_if_permit, permit');
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '450 4.7.0 <r@mx.example.test>: Recipient address rejected: defer_if_permit requested',
	   'defer_if_permit turns a later permit into a deferral');
}
{
	my $t = server(smtpd_recipient_restrictions => 'defer_if_permit, reject');
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '554 5.7.1 <r@mx.example.test>: Recipient address rejected: Access denied',
	   'defer_if_permit does not soften a reject');
}
{
	my $t = server(smtpd_client_restrictions => 'defer_if_permit');
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '450 4.7.0 <localhost[127.0.0.1]>: Client host rejected: defer_if_permit requested',
	   'a client-list defer_if_permit takes effect at RCPT');
}
{
	my $t = server(smtpd_recipient_restrictions => 'defer_if_reject, reject');
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '450 4.7.0 <r@mx.example.test>: Recipient address rejected: defer_if_reject requested',
	   'defer_if_reject turns a later reject into a deferral');
}
{
	my $t = server(soft_bounce => 'yes', smtpd_recipient_restrictions => 'reject');
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '454 4.7.1 <r@mx.example.test>: Recipient address rejected: Access denied',
	   'soft_bounce turns 554 5.7.1 into 454 4.7.1');
}
{
	my $t = server(reject_code => 550, smtpd_recipient_restrictions => 'reject');
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '550 5.7.1 <r@mx.example.test>: Recipient address rejected: Access denied',
	   'reject_code sets the reject restriction\'s code');
}
{
	my $t = server(smtpd_recipient_restrictions => 'sleep 1, permit');
	my $start = time;
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '250 2.1.5 Ok', 'sleep: the session waits on a timer, then goes on');
	cmp_ok(time - $start, '>=', 0.9, '... for the time asked');
}

{
	# a waiting restriction suspends its session only: with one worker,
	# another client is served while the first one waits
	my $t = server(sluice_smtpd_workers => 1,
		       smtpd_recipient_restrictions => 'sleep 3, permit');
	my $a = $t->smtp;
	$a->hello('client.example');
	$a->cmd('MAIL FROM:<a@example.org>');
	my $start = time;
	$a->send_line('RCPT TO:<r@mx.example.test>');
	my $b = $t->smtp;
	my ($code) = $b->hello('other.example');
	is($code, '250', 'another session is served while one waits');
	cmp_ok(time - $start, '<', 2.5, '... before the wait is over');
	my (undef, $text) = $a->read_reply;
	is($text, '250 2.1.5 Ok', 'the waiting session then gets its answer');
}
{
	# pipelined commands behind a waiting restriction are answered in order
	my $t = action_server('REJECT no', wait => 200,
			      smtpd_recipient_restrictions => 'example_action_after 200');
	my $c = $t->smtp;
	$c->hello('client.example');
	$c->send_group('MAIL FROM:<a@example.org>', 'RCPT TO:<r1@mx.example.test>',
		       'RCPT TO:<r2@mx.example.test>', 'RSET');
	my @r = map { $_->[1] } $c->read_replies(4);
	is_deeply(\@r, ['250 2.1.0 Ok',
			'554 5.7.1 <r1@mx.example.test>: Recipient address rejected: no',
			'554 5.7.1 <r2@mx.example.test>: Recipient address rejected: no',
			'250 2.0.0 Ok'], 'pipelined RCPTs wait their turn');
}
{
	my $t = server(smtpd_delay_reject => 'no', smtpd_client_restrictions => 'defer');
	my $c = $t->smtp;
	my (undef, $text) = $c->read_reply;
	is($text, '450 4.3.2 <localhost[127.0.0.1]>: Client host rejected: Try again later',
	   'delay_reject=no: a deferred client gets the deferral instead of the greeting');
}

# ---- DATA and END-OF-DATA -----------------------------------------------------

{
	my $t = server(smtpd_data_restrictions => 'reject');
	my $c = $t->smtp;
	$c->hello('client.example');
	my ($code, $text) = $c->transaction(to => ['r@mx.example.test']);
	is($text, '554 5.7.1 <DATA>: Data command rejected: Access denied',
	   'smtpd_data_restrictions rejects DATA');
}
{
	my $t = server(smtpd_end_of_data_restrictions => 'reject');
	my $c = $t->smtp;
	$c->hello('client.example');
	my ($code, $text) = $c->transaction(to => ['r@mx.example.test']);
	is($text, '554 5.7.1 <END-OF-MESSAGE>: End-of-data rejected: Access denied',
	   'smtpd_end_of_data_restrictions rejects the message');
	is(scalar(() = $t->queue_files('incoming')), 0, '... and nothing is queued');
}

{
	my $t = server(smtpd_data_restrictions => 'reject_unauth_pipelining',
		       smtpd_forbid_unauth_pipelining => 'no');
	my $c = $t->smtp;
	$c->hello('client.example');
	$c->cmd('MAIL FROM:<a@example.org>');
	$c->cmd('RCPT TO:<r@mx.example.test>');
	$c->send_raw("DATA\r\nSubject: too early\r\n");
	my (undef, $text) = $c->read_reply;
	is($text, '503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining',
	   'reject_unauth_pipelining: content sent before the 354');
	my $d = $t->smtp;
	$d->hello('client.example');
	my ($code) = $d->transaction(to => ['r@mx.example.test']);
	is($code, '250', '... a client that waits is accepted');
}

# ---- ETRN ---------------------------------------------------------------------

{
	my $t = server(smtpd_etrn_restrictions => 'permit_mynetworks, reject',
		       relay_domains => 'example.com');
	my $c = $t->smtp;
	$c->hello('client.example');
	reply_is($c, 'ETRN example.com', '250 Queuing started',
		 'ETRN from a trusted client for a fast_flush_domains domain');
	reply_is($c, 'ETRN example.org', '459 <example.org>: service unavailable',
		 'ETRN for a domain fast_flush_domains does not list');
	# Postfix's ETRN replies carry no enhanced status codes
	reply_is($c, 'ETRN', '500 Syntax: ETRN domain', 'ETRN without a domain');
	reply_is($c, 'ETRN bad/domain', '501 Error: invalid parameter syntax',
		 'ETRN with a bad domain');
	reply_is($c, 'ETRN @bad..domain', '501 Error: invalid parameter syntax',
		 'ETRN with an empty label');
	$c->cmd('MAIL FROM:<a@example.org>');
	reply_is($c, 'ETRN example.com', '503 Error: MAIL transaction in progress',
		 'ETRN inside a transaction');
}
{
	my $t = server(mynetworks => '127.0.0.2/32',
		       smtpd_etrn_restrictions => 'permit_mynetworks, reject');
	my $c = $t->smtp;
	$c->hello('client.example');
	reply_is($c, 'ETRN @example.com',
		 '554 5.7.1 <example.com>: Etrn command rejected: Access denied',
		 'smtpd_etrn_restrictions rejects ETRN from an untrusted client');
}

# ---- access(5) actions and where they land ----------------------------------

# A server whose recipient list answers with `action` (example_action),
# after `wait` milliseconds when given.
sub action_server {
	my ($action, %more) = @_;
	my $r = defined $more{wait} ? "example_action_after $more{wait}" : 'example_action';
	delete $more{wait};
	return server(sluice_plugins => 'example', example_delay_ms => 0,
		      example_action => $action,
		      smtpd_recipient_restrictions => $r, %more);
}

# Send one message to @rcpt; (final reply text, queue id).
sub send_message {
	my ($t, @rcpt) = @_;
	my $c = $t->smtp;
	$c->hello('client.example');
	my ($code, $text) = $c->transaction(to => \@rcpt);
	my ($id) = ($text // '') =~ /queued as (\S+)/;
	return ($text, $id);
}

sub queued {
	my ($t, $id, $dir) = @_;
	return SluiceTest::read_queue_file($t->queue_path($id, $dir // 'incoming'));
}

{
	my $t = action_server('REJECT go away');
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '554 5.7.1 <r@mx.example.test>: Recipient address rejected: go away',
	   'REJECT text');
}
{
	my $t = action_server('450 4.7.2 come back later');
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '450 4.7.2 <r@mx.example.test>: Recipient address rejected: come back later',
	   'NNN d.d.d text');
}
{
	my $t = action_server('DEFER_IF_PERMIT busy');
	my (undef, $text) = rcpt_reply($t, 'r@remote.example');
	is($text, '450 4.7.1 <r@remote.example>: Recipient address rejected: busy',
	   'DEFER_IF_PERMIT with access_map_defer_code');
}
{
	my $t = action_server('strict', smtpd_restriction_classes => 'strict',
			      strict => 'reject');
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '554 5.7.1 <r@mx.example.test>: Recipient address rejected: Access denied',
	   'a restriction class named by an action is evaluated');
}
{
	my $t = action_server('REJECT later', wait => 100);
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '554 5.7.1 <r@mx.example.test>: Recipient address rejected: later',
	   'a plugin restriction that waits (PENDING, then sluice_resume) answers the same');
}
{
	my $t = action_server('WARN looked at it');
	my $mark = $t->log_mark;
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '250 2.1.5 Ok', 'WARN accepts');
	ok($t->wait_log(qr/NOQUEUE: warn: RCPT from localhost\[127\.0\.0\.1\]: looked at it; from=<a\@example\.org> to=<r\@mx\.example\.test>/,
			undef, from => $mark), '... and logs warn:');
}
{
	my $t = action_server('HOLD for review');
	my ($text, $id) = send_message($t, 'r@mx.example.test');
	like($text, qr/^250 2\.0\.0 Ok: queued as /, 'HOLD: the message is accepted');
	my $q = queued($t, $id, 'hold');
	ok($q && $q->{complete}, 'HOLD: the message is in hold/');
	like($q->{rec}{hold}[0] // '', qr/for review/, '... with the reason');
}
{
	my $t = action_server('HOLD', wait => 50);
	my ($text, $id) = send_message($t, 'r@mx.example.test');
	ok($id && queued($t, $id, 'hold'), 'HOLD from a waiting restriction: in hold/');
}
{
	my $t = action_server('PREPEND X-Checked: by the engine');
	my ($text, $id) = send_message($t, 'r@mx.example.test');
	my $q = queued($t, $id);
	like($q->{content} // '', qr/\AX-Checked: by the engine\nReceived: /,
	     'PREPEND: the header is on top of the stored message, above Received:');
}
{
	my $t = action_server('REDIRECT other@example.net');
	my ($text, $id) = send_message($t, 'r@mx.example.test', 's@mx.example.test');
	my $q = queued($t, $id);
	is_deeply([map { $_->{addr} } @{ $q->{rcpt} }], ['other@example.net'],
		  'REDIRECT: the recipients are replaced');
}
{
	my $t = action_server('BCC copy@example.net');
	my ($text, $id) = send_message($t, 'r@mx.example.test');
	my $q = queued($t, $id);
	is_deeply([map { $_->{addr} } @{ $q->{rcpt} }],
		  ['r@mx.example.test', 'copy@example.net'], 'BCC: a recipient is added');
}
{
	my $t = action_server('FILTER smtp:[127.0.0.1]:10025');
	my ($text, $id) = send_message($t, 'r@mx.example.test');
	my $q = queued($t, $id);
	is($q->{rec}{filter}[0], 'smtp:[127.0.0.1]:10025',
	   'FILTER: the content filter is stored in the envelope');
	my ($rc, $out) = $t->sluice('queue', 'show', $id);
	is($rc, 0, 'sluice queue show reads the message');
}
{
	my $t = action_server('DISCARD');
	my $mark = $t->log_mark;
	my ($text, $id) = send_message($t, 'r@mx.example.test');
	like($text, qr/^250 2\.0\.0 Ok: queued as /, 'DISCARD: the client is told it was queued');
	is(scalar(() = $t->queue_files('incoming')), 0, '... but nothing is queued');
	ok($t->wait_log(qr/: discard: RCPT from localhost\[127\.0\.0\.1\]: <r\@mx\.example\.test>: Recipient address triggers DISCARD action/,
			undef, from => $mark), '... and discard: is logged');
}
{
	my $t = server(content_filter => 'smtp:[127.0.0.1]:10026');
	my ($text, $id) = send_message($t, 'r@mx.example.test');
	is(queued($t, $id)->{rec}{filter}[0], 'smtp:[127.0.0.1]:10026',
	   'content_filter is stored as the message\'s filter');
}

{
	# a session that goes away while a plugin restriction waits: the
	# plugin's close hook cancels its timer, nothing resumes a freed
	# session, and the worker goes on serving
	my $t = action_server('REJECT late', wait => 1500);
	my $c = $t->smtp;
	$c->hello('client.example');
	$c->cmd('MAIL FROM:<a@example.org>');
	$c->send_line('RCPT TO:<r@mx.example.test>');
	$c->close;
	ok($t->wait_log(qr/disconnect from localhost/), 'client left while the restriction waited');
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '554 5.7.1 <r@mx.example.test>: Recipient address rejected: late',
	   '... and the next session is served normally');
	unlike($t->log_text, qr/panic|fatal|sluice_resume\(\) for a session that has closed/,
	       '... without a late resume');
}
{
	# a reload that drops the plugin a list still names is refused, and
	# the running configuration goes on
	my $t = action_server('REJECT still here');
	$t->set_main(sluice_plugins => undef);
	ok($t->reload(expect => qr/unknown restriction example_action/),
	   'reload without the plugin that provides a listed restriction is refused');
	my (undef, $text) = rcpt_reply($t, 'r@mx.example.test');
	is($text, '554 5.7.1 <r@mx.example.test>: Recipient address rejected: still here',
	   '... and the old configuration still answers');
}
{
	my $t = SluiceTest->new(start => 0, main => {
		%base, sluice_plugins => 'example',
		smtpd_recipient_restrictions => 'example_action_after 10, example_action',
	});
	my ($rc, $out) = $t->sluice('check');
	is($rc, 0, 'sluice check knows a plugin\'s restriction names') or diag $out;
}

done_testing;
