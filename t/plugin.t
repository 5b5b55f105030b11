#!/usr/bin/perl
# plugin.t - the example plugin through real SMTP sessions.
#
# sluice runs with `sluice_plugins = example` and ONE worker, so that the
# asynchronous end of message is proven for real: while one session waits
# on the plugin's timer (example_delay_ms = 300), a second session on the
# same worker gets its banner and its NOOP answered.  Also: the configured
# recipient is refused with the plugin's exact reply and logged in
# Postfix's shape, a master.cf -o override changes the plugin's parameter
# for one listener, the header is in the queued message, and a client
# that leaves during the wait leaves a healthy server behind.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);

use SluiceTest;

plan skip_all => 'build/plugins/example.so is not built'
    unless -e "$SluiceTest::ROOT/build/plugins/example.so";

my $DELAY = 0.3;
my $t = SluiceTest->new(
	main => {
		sluice_plugins => 'example',
		example_reject_recipient => 'nobody@example.net',
		example_delay_ms => $DELAY * 1000,
		sluice_smtpd_workers => 1,
	},
	listeners => {
		smtp => '',
		other => '-o example_reject_recipient=other@example.net',
	},
);

sub session {
	my ($listener) = @_;
	my $c = $t->smtp($listener);
	ok($c, "connected to $listener") or return;
	is(scalar $c->read_reply, 220, 'banner');
	is(scalar $c->cmd('EHLO client.example'), 250, 'EHLO');
	return $c;
}

# A queued message by ID, from any queue directory: the message as it
# will be delivered, i.e. its `seg` byte ranges joined in order
# (docs/queue-format.md).  undef if not found.
sub queued_message {
	my ($id) = @_;
	for my $sub (qw(incoming active deferred hold)) {
		my $path = $t->config('queue_directory') . "/$sub/$id";
		next unless -f $path;
		open my $fh, '<', $path or next;
		local $/;
		my $file = <$fh>;
		my ($envelope) = $file =~ /^sluice-queue 1 (\d+)\n/ or return undef;
		my $message = '';
		for (split /\n/, substr($file, $envelope)) {
			$message .= substr($file, $1, $2) if /^seg (\d+) (\d+)$/;
		}
		return $message;
	}
	return undef;
}

# ---- the configured recipient is refused ------------------------------------

{
	my $c = session('smtp');
	is(scalar $c->cmd('MAIL FROM:<sender@example.org>'), 250, 'MAIL');
	my ($code, $text) = $c->cmd('RCPT TO:<nobody@example.net>');
	is($text, '550 5.1.1 <nobody@example.net>: Recipient address rejected: '
	   . 'example plugin says no', 'the configured recipient gets the '
	   . "plugin's exact reply");
	ok($t->wait_log(qr/NOQUEUE: reject: RCPT from \S+: 550 5\.1\.1 <nobody\@example\.net>: Recipient address rejected: example plugin says no; from=<sender\@example\.org> to=<nobody\@example\.net>/),
	   'the reject is logged in Postfix shape');
	($code, $text) = $c->cmd('RCPT TO:<NoBody@Example.NET>');
	is($code, 550, 'the comparison ignores case');
	is(scalar $c->cmd('RCPT TO:<other@example.net>'), 250,
	   'other recipients pass');
	is(scalar $c->cmd('QUIT'), 221, 'QUIT');
}

# ---- a master.cf -o override applies to its listener only ------------------

{
	my $c = session('other');
	is(scalar $c->cmd('MAIL FROM:<sender@example.org>'), 250, 'MAIL');
	is(scalar $c->cmd('RCPT TO:<nobody@example.net>'), 250,
	   'on the overriding listener the main.cf recipient passes');
	my ($code, $text) = $c->cmd('RCPT TO:<other@example.net>');
	is($code, 550, '... and the -o recipient is refused');
	like($text, qr/^550 5\.1\.1 <other\@example\.net>: Recipient address rejected: example plugin says no$/,
	     '... with the same reply');
	$c->cmd('QUIT');
}

# ---- the asynchronous end of message ----------------------------------------

{
	my $c = session('smtp');
	is(scalar $c->cmd('MAIL FROM:<sender@example.org>'), 250, 'MAIL');
	is(scalar $c->cmd('RCPT TO:<rcpt@example.net>'), 250, 'RCPT');
	is(scalar $c->cmd('DATA'), 354, 'DATA');
	my $sent = time;
	$c->send_raw("Subject: async\r\nMessage-ID: <async\@example.org>\r\n"
		     . "\r\nthe body\r\n.\r\n");

	# While the first session waits, the same (only) worker serves another.
	my $c2 = $t->smtp('smtp');
	my ($code2) = $c2->read_reply;
	is($code2, 220, 'a second session gets its banner during the wait');
	is(scalar $c2->cmd('NOOP'), 250, '... and its NOOP answered');
	my $served = time;

	my ($code, $text) = $c->read_reply(10);
	my $answered = time;
	is($code, 250, 'the message is accepted after the wait');
	like($text, qr/^250 2\.0\.0 Ok: queued as (\S+)$/, '... with its queue ID');
	my ($id) = ($text // '') =~ /queued as (\S+)/;
	cmp_ok($answered - $sent, '>=', $DELAY - 0.01,
	       "the 250 comes after example_delay_ms ($DELAY s)");
	cmp_ok($served, '<', $answered,
	       'the other session was served before the waiting one was answered');
	$c2->cmd('QUIT');

	my $msg = defined $id ? queued_message($id) : undef;
	ok(defined $msg, 'the message is in the queue');
	my ($headers, $body) = split /\n\n/, $msg // '', 2;
	like($headers // '', qr/^X-Sluice-Example: checked by example plugin$/m,
	     'the header added by the plugin is in the queued header block');
	like($headers // '', qr/\AReceived: .*\nSubject: async\nMessage-ID: <async\@example\.org>\nX-Sluice-Example: [^\n]*\z/s,
	     '... last, after the original headers, which stay in order');
	is($body, "the body\n", 'the body stays as it was');
	is(scalar $c->cmd('QUIT'), 221, 'QUIT');
}

# ---- the client leaves during the wait ----------------------------------------

{
	my $mark = $t->log_mark;
	my $c = session('smtp');
	$c->cmd('MAIL FROM:<sender@example.org>');
	$c->cmd('RCPT TO:<rcpt@example.net>');
	is(scalar $c->cmd('DATA'), 354, 'DATA');
	$c->send_raw("Subject: gone\r\n\r\nbye\r\n.\r\n");
	$c->close;      # the plugin's timer is running
	ok($t->wait_log(qr/disconnect from/, undef, from => $mark),
	   'the session ends while the plugin waits');
	# A whole transaction now ends after the cancelled timer's deadline
	# (its own wait started later): an event to wait on, not a sleep.
	my $c2 = session('smtp');
	my ($code) = $c2->transaction(to => ['rcpt@example.net']);
	is($code, 250, 'the worker still serves a message after that');
	$c2->cmd('QUIT');
	unlike($t->log_text($mark), qr/panic:|fatal:|sluice_resume\(\) for a session/,
	       'no panic, and no late resume: close cancelled the timer');
}

is($t->stop, 0, 'sluice stops cleanly');
done_testing;
