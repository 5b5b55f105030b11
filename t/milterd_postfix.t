#!/usr/bin/perl
# milterd_postfix.t - sluice-milterd: sluice's plugins hosted as a milter
# for a real Postfix (t/lib/PostfixPeer.pm, smtpd_milters =
# inet:127.0.0.1:PORT).  sluice-milterd reads a sluice main.cf loading the
# example plugin (rejects example_reject_recipient, adds
# X-Sluice-Example at end of message after a timer) and the regex plugin
# (header_checks):
#  - the recipient the example plugin refuses is refused by Postfix with
#    the plugin's reply (550 5.1.1 and its text), another one is taken;
#  - a message is queued by Postfix with the header the example plugin
#    added at end of message (after its timer: the pending path);
#  - a header_checks REJECT rule refuses the message at end of data with
#    the rule's text, and nothing is queued;
#  - a body_checks REJECT rule refuses a message whose matching line
#    comes after 40 KB of body (within body_checks_size_limit; the body is kept in
#    milterd_spool_directory for the body hooks, then removed);
#  - a header_checks HOLD rule puts the message in Postfix's hold queue
#    (smfi_quarantine);
#  - sluice-milterd logs its start-up line and stops on SIGTERM.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use POSIX ();
use Test::More;
use PostfixPeer;
use SluiceTest;

my $why = PostfixPeer->unavailable;
BAIL_OUT($why) if $why;
my $MILTERD = $ENV{SLUICE_MILTERD} // "$FindBin::Bin/../build/bin/sluice-milterd";   # a wrapper (valgrind) may stand in
BAIL_OUT("$MILTERD not built (make)") unless -x $MILTERD;

my $t = SluiceTest->new(start => 0, main => {
	sluice_plugins => 'example regex',
	example_reject_recipient => 'nobody@example.net',
	example_delay_ms => 30,
	header_checks => 'regexp:$config_directory/header_checks',
	body_checks => 'regexp:$config_directory/body_checks',
});
$t->write_file('body_checks', <<'EOF2');
/^this line is not welcome$/   REJECT bodies like that are refused
EOF2
$t->write_file('header_checks', <<'EOF2');
/^Subject: .*forbidden/   REJECT forbidden subjects are not wanted here
/^Subject: .*suspect/     HOLD suspect subject
EOF2

# sluice-milterd in the background, its output in the test dir's log.
my $mport = SluiceTest::free_port();
my $pid = SluiceTest::spawn_logged($t->dir . '/log', $MILTERD, '-c', $t->dir, '-p', "inet:$mport\@127.0.0.1");
END { kill 'TERM', $pid if $pid; }
my $line = $t->wait_log(qr/milterd\[\d+\]: listening on inet:$mport\@127\.0\.0\.1, \d+ plugins/);
ok($line, 'sluice-milterd starts and says where it listens')
    or BAIL_OUT("sluice-milterd did not start:\n" . $t->log_text);

my $pf = PostfixPeer->new;
$pf->configure(main => { smtpd_milters => "inet:127.0.0.1:$mport",
			 milter_default_action => 'tempfail',
			 mynetworks => '127.0.0.0/8' });
$pf->start;

sub client {
	my $c = SluiceTest::Client->new(port => $pf->port) or die "connect: $!";
	my ($code, $text) = $c->hello('client.example');
	is($code, 250, 'Postfix greets and answers EHLO') or diag($text);
	return $c;
}

# ---- the recipient the example plugin refuses ----------------------------
my $c = client();
my ($code, $text) = $c->cmd('MAIL FROM:<sender@example.org>');
is($code, 250, 'MAIL FROM is accepted') or diag($text);
($code, $text) = $c->cmd('RCPT TO:<nobody@example.net>');
is($code, 550, "the plugin's recipient is refused with its code");
like($text, qr/^550 5\.1\.1 <nobody\@example\.net>: Recipient address rejected: example plugin says no/,
     "... with the plugin's enhanced code and text") or diag($text);
($code, $text) = $c->cmd('RCPT TO:<somebody@example.net>');
is($code, 250, 'another recipient is accepted') or diag($text);
($code, $text) = $c->cmd('DATA');
is($code, 354, 'DATA goes ahead') or diag($text);
$c->send_raw("From: sender\@example.org\r\nTo: somebody\@example.net\r\n"
	     . "Subject: hello\r\n\r\nA plain message.\r\n.\r\n");
($code, $text) = $c->read_reply;
is($code, 250, 'the message is queued by Postfix') or diag($text, $t->log_text);
my ($qid) = $text =~ /queued as (\w+)/;
$c->cmd('QUIT');

ok($qid, 'Postfix names the queue id') or diag($text);
my $content = `$PostfixPeer::POSTCAT -c ${\ $pf->dir} -h -q $qid 2>&1`;
like($content, qr/^X-Sluice-Example: checked by example plugin$/m,
     "the queued message carries the plugin's header (added after its timer)")
    or diag($content);
like($content, qr/^Subject: hello$/m, 'and its own headers') or diag($content);
my $env = $pf->envelope($qid);
is_deeply($env->{rcpt}, ['somebody@example.net'], 'only the accepted recipient is queued')
    or diag($env->{text});

# ---- header_checks through the regex plugin -------------------------------
sub send_subject {
	my ($subject) = @_;
	my $c = client();
	my @r = $c->transaction(from => 'sender@example.org', to => ['rcpt@example.net'],
				body => "From: sender\@example.org\nTo: rcpt\@example.net\n"
				      . "Subject: $subject\n\nBody.\n");
	$c->cmd('QUIT');
	return @r;
}

my @before = $pf->queue_files('incoming');
($code, $text) = send_subject('something forbidden');
is($code, 550, 'a header_checks REJECT refuses the message at end of data');
like($text, qr/^550 5\.7\.1 forbidden subjects are not wanted here/,
     "... with the rule's text") or diag($text);
is_deeply([$pf->queue_files('incoming')], \@before, '... and nothing is queued');

($code, $text) = send_subject('a suspect one');
is($code, 250, 'a header_checks HOLD accepts the message') or diag($text);
($qid) = ($text // '') =~ /queued as (\w+)/;
ok($qid && grep({ $_ eq $qid } $pf->queue_files('hold')),
   '... and Postfix puts it in the hold queue (smfi_quarantine)')
    or diag($text, $pf->log_file && PostfixPeer::slurp($pf->log_file));

# ---- body_checks through the regex plugin ---------------------------------
sub send_body {
	my ($body) = @_;
	my $c = client();
	my @r = $c->transaction(from => 'sender@example.org', to => ['rcpt@example.net'],
				body => "Subject: body\n\n$body");
	$c->cmd('QUIT');
	return @r;
}
@before = $pf->queue_files('incoming');
my $filler = ("x" x 70 . "\n") x 560;
($code, $text) = send_body($filler . "this line is not welcome\nend\n");
is($code, 550, 'a body_checks REJECT refuses the message (line past 40 KB)') or diag($text);
like($text // '', qr/^550 5\.7\.1 bodies like that are refused/, "... with the rule's text");
is_deeply([$pf->queue_files('incoming')], \@before, '... and nothing is queued');
($code, $text) = send_body($filler . "this line is welcome\n");
is($code, 250, 'a body without the line is accepted') or diag($text);
my @left = glob($t->dir . '/spool/milterd/incoming/*');
is(scalar @left, 0, 'no message is left in milterd_spool_directory') or diag("@left");

# ---- stop ---------------------------------------------------------------
$pf->stop;
kill 'TERM', $pid;
my $deadline = time + 20;
my $gone;
while (time < $deadline) {
	last if ($gone = waitpid($pid, POSIX::WNOHANG()) == $pid);
	select(undef, undef, undef, 0.05);
}
ok($gone, 'sluice-milterd stops on SIGTERM');
is($?, 0, '... with exit status 0') if $gone;
$pid = undef if $gone;
like($t->log_text, qr/milterd\[\d+\]: stopped$/m, '... and says so');

done_testing;
