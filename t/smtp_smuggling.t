#!/usr/bin/perl
# smtp_smuggling.t - SMTP smuggling and smtpd_forbid_bare_newline
# (docs/smtpd.md): inside DATA, "<LF>.<LF>", "<CR><LF>.<LF>" and any line
# ending in a bare LF end the session with "521 5.5.2 host Error: bare
# <LF> received" and nothing of the message is queued, so a second,
# smuggled message can never be accepted; a bare LF after a command does
# the same.  With smtpd_forbid_bare_newline = no such a message is
# accepted, and clients in smtpd_forbid_bare_newline_exclusions (default
# $mynetworks, which holds 127.0.0.1) are exempt.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest qw(wait_until);

my $HOST = 'mx.example.test';
my $BARE = "521 5.5.2 $HOST Error: bare <LF> received";

# 127.0.0.1 is not excluded here, except on the listener that says so.
my $t = SluiceTest->new(main => { smtpd_forbid_bare_newline_exclusions => '192.0.2.0/24',
				  smtpd_peername_lookup => 'no' },
			listeners => {
				smtp => '',
				off => '-o smtpd_forbid_bare_newline=no',
				excluded => '-o smtpd_forbid_bare_newline_exclusions=127.0.0.0/8',
			});

# The smuggling attempt: a message whose content hides a second message
# behind a non-standard end of data.
sub smuggle {
	my ($end) = @_;
	return "Subject: outer\r\n\r\nouter body$end"
	    . "MAIL FROM:<evil\@attacker.example>\r\nRCPT TO:<victim\@example.net>\r\nDATA\r\n"
	    . "Subject: smuggled\r\n\r\nsmuggled body\r\n.\r\n";
}

# A session up to the 354; the client.
sub in_data {
	my ($listener) = @_;
	my $c = $t->smtp($listener);
	$c->hello('client.example');
	$c->cmd('MAIL FROM:<a@example.org>');
	$c->cmd('RCPT TO:<b@example.net>');
	my ($code) = $c->cmd('DATA');
	return $code && $code == 354 ? $c : undef;
}

sub all_queued { my @f = $t->queue_files; return @f }

# ---- the default: bare LF refused ------------------------------------------------

for my $case (["\n.\n", '<LF>.<LF>'], ["\r\n.\n", '<CR><LF>.<LF>'], ["\n.\r\n", '<LF>.<CR><LF>']) {
	my ($end, $name) = @$case;
	my %before = map { $_ => 1 } all_queued();
	my $mark = $t->log_mark;
	my $c = in_data();
	ok($c, "in DATA ($name)");
	$c->send_raw(smuggle($end));
	my @r = $c->read_replies(5);
	is_deeply([map { $_->[1] } @r], [$BARE], "$name inside DATA: $BARE, and nothing else");
	ok($c->closed, '... the server disconnects');
	ok($t->wait_log(qr/: bare <LF> received in DATA from unknown\[127\.0\.0\.1\]: message not queued$/,
			undef, from => $mark), '... logs "bare <LF> received in DATA ... message not queued"');
	ok(wait_until(sub { !grep { !$before{$_} } all_queued() }, 5),
	   '... and neither the message nor the smuggled one is queued');
}

{
	my %before = map { $_ => 1 } all_queued();
	my $c = in_data();
	$c->send_raw("Subject: x\r\n\r\nline one\nline two\r\n.\r\n");
	my ($code, $text) = $c->read_reply;
	is($text, $BARE, 'a line ending in a bare LF inside DATA: 521 5.5.2');
	ok($c->closed, '... and a disconnect');
	ok(wait_until(sub { !grep { !$before{$_} } all_queued() }, 5), '... nothing queued');
}

{
	my $mark = $t->log_mark;
	my $c = $t->smtp;
	$c->hello('client.example');
	$c->send_raw("NOOP\n");
	my ($code, $text) = $c->read_reply;
	is($text, $BARE, 'a command ending in a bare LF: 521 5.5.2');
	ok($c->closed, '... and a disconnect');
	ok($t->wait_log(qr/bare <LF> received after EHLO from unknown\[127\.0\.0\.1\]$/, undef, from => $mark),
	   '... logged as "bare <LF> received after EHLO from ..."');
}

# ---- smtpd_forbid_bare_newline = no, and excluded clients -----------------------------

for my $listener ('off', 'excluded') {
	my $c = in_data($listener);
	$c->send_raw("Subject: bare\n\nline one\nline two\r\nline three\r\n.\r\n");
	my ($code, $text) = $c->read_reply;
	my ($id) = ($text // '') =~ /^250 2\.0\.0 Ok: queued as (\S+)$/;
	ok($id, ($listener eq 'off' ? 'smtpd_forbid_bare_newline = no' : 'a client in smtpd_forbid_bare_newline_exclusions')
	   . ": a message with bare LFs is accepted ($text)");
	my $q = SluiceTest::read_queue_file($t->queue_path($id // 'none'));
	like($q ? $q->{content} : '', qr/\nSubject: bare\n\nline one\nline two\nline three\n\z/,
	     '... stored with each bare LF as a line end');
	($code, $text) = $c->cmd("NOOP");
	is($text, '250 2.0.0 Ok', '... and the session goes on');
	$c->cmd('QUIT');
}

{
	# The default exclusions are $mynetworks, which holds 127.0.0.0/8.
	my $d = SluiceTest->new;
	my $c = $d->smtp;
	$c->hello('client.example');
	$c->cmd('MAIL FROM:<a@example.org>');
	$c->cmd('RCPT TO:<b@example.net>');
	$c->cmd('DATA');
	$c->send_raw("Subject: local\n\nbare LF from 127.0.0.1\n.\n");
	my ($code, $text) = $c->read_reply;
	like($text // '', qr/^250 2\.0\.0 Ok: queued as \S+$/,
	     'by default ($mynetworks) a loopback client is exempt: <LF>.<LF> ends its message');
	$c->cmd('QUIT');
}

done_testing;
