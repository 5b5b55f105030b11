#!/usr/bin/perl
# milterd_edits.t - sluice-milterd turns plugin verdicts and end-of-message
# edits into milter replies and modifications a real Postfix applies
# (t/lib/PostfixPeer.pm).  A test plugin (built here) does, by address:
#  - MAIL FROM <defer@...>: DEFER with 451 4.7.1 -> Postfix answers 451
#    with that text (SMFIS_TEMPFAIL);
#  - RCPT TO <job@...>: a thread-pool job, then REJECT 554 5.7.1 (the
#    pending path across threads) -> Postfix refuses that recipient;
#  - a message with X-Discard: DISCARD from the header hook -> Postfix
#    answers 250 and drops it (nothing queued);
#  - RCPT TO <slow@...>: a 1.5 s timer; meanwhile another connection
#    goes through a whole transaction (a waiting plugin holds its own
#    connection only), then the slow RCPT is accepted;
#  - RCPT TO <never@...>: PENDING without a resume; after
#    milterd_plugin_timeout (2s here) Postfix answers 451 4.3.0, the
#    warning is logged and the plugin's close hook has run;
#  - any other message, at end of message after a timer: Subject
#    changed, X-Drop deleted, X-Top inserted on top, X-Bottom appended,
#    recipient added@example.net added and removed@example.net removed
#    -> the message Postfix queued shows each of these.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use Test::More;
use PostfixPeer;
use SluiceTest;

my $why = PostfixPeer->unavailable;
BAIL_OUT($why) if $why;
my $MILTERD = $ENV{SLUICE_MILTERD} // "$SluiceTest::ROOT/build/bin/sluice-milterd";   # a wrapper (valgrind) may stand in
BAIL_OUT("$MILTERD not built (make)") unless -x $MILTERD;

my $t = SluiceTest->new(start => 0, main => {
	sluice_plugins => 'mdedit',
	milterd_plugin_timeout => '2s',
	plugin_directory => undef,      # set below: the test's own
});
my $pdir = $t->dir . '/plugins';
mkdir $pdir or die "$pdir: $!";
symlink($_, "$pdir/" . (m{([^/]+)$})[0]) for glob "$SluiceTest::ROOT/build/plugins/*.so";
$t->set_main(plugin_directory => $pdir);
open my $fh, '>', "$pdir/mdedit.c" or die;
print $fh <<'C';
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "sluice_plugin.h"

struct st { sluice_txn *t; sluice_timer *tm; int discard; };

static struct st *st_of(sluice_txn *t)
{
	struct st *s = sluice_get_data(t);
	if (s == NULL) { s = sluice_calloc(sizeof *s); sluice_set_data(t, s); }
	s->t = t;
	return s;
}

static int on_mail(sluice_txn *t, void *pd)
{
	if (strncmp(sluice_sender(t), "defer@", 6) == 0) {
		sluice_reply(t, 451, "4.7.1", "<%s>: Sender address rejected: try later",
			     sluice_sender(t));
		return SLUICE_DEFER;
	}
	return SLUICE_DUNNO;
}

static void job_work(void *arg) { (void)arg; }
static void job_done(void *arg)
{
	struct st *s = arg;
	sluice_reply(s->t, 554, "5.7.1", "<job@example.net>: Recipient address rejected: a job said no");
	sluice_resume(s->t, SLUICE_REJECT);
}

static void slow_done(void *arg)
{
	struct st *s = arg;
	s->tm = NULL;
	sluice_resume(s->t, SLUICE_DUNNO);
}

static int on_rcpt(sluice_txn *t, void *pd)
{
	if (strncmp(sluice_recipient(t), "never@", 6) == 0)
		return SLUICE_PENDING;          /* and never resumes */
	if (strncmp(sluice_recipient(t), "slow@", 5) == 0) {
		struct st *s = st_of(t);
		s->tm = sluice_timer_start(1500, slow_done, s);
		return s->tm ? SLUICE_PENDING : SLUICE_DEFER;
	}
	if (strncmp(sluice_recipient(t), "job@", 4) == 0) {
		if (sluice_job_submit(job_work, job_done, st_of(t)) < 0)
			return SLUICE_DEFER;
		return SLUICE_PENDING;
	}
	return SLUICE_DUNNO;
}

static int on_header(sluice_txn *t, const char *name, const char *value, void *pd)
{
	return strcasecmp(name, "X-Discard") == 0 ? SLUICE_DISCARD : SLUICE_DUNNO;
}

static void edit(void *arg)
{
	struct st *s = arg;
	sluice_txn *t = s->t;
	int bad = 0;

	s->tm = NULL;
	bad |= sluice_header_change(t, "Subject", 1, "changed by mdedit");
	bad |= sluice_header_change(t, "X-Drop", 1, NULL);
	bad |= sluice_header_insert(t, 0, "X-Top", "first");
	bad |= sluice_header_add(t, "X-Bottom", "last");
	bad |= sluice_rcpt_add(t, "<added@example.net>");
	(void)sluice_rcpt_delete(t, "removed@example.net");   /* -1 when absent */
	sluice_resume(t, bad ? SLUICE_DEFER : SLUICE_DUNNO);
}

static int on_eom(sluice_txn *t, void *pd)
{
	struct st *s = st_of(t);
	s->tm = sluice_timer_start(20, edit, s);
	return s->tm ? SLUICE_PENDING : SLUICE_DEFER;
}

static void on_close(sluice_txn *t, void *pd)
{
	struct st *s = sluice_get_data(t);
	sluice_txn_log(t, SLUICE_LOG_INFO, "close hook");
	if (s) { sluice_timer_cancel(s->tm); free(s); }
}

static const struct sluice_param params[] = { { NULL, 0, NULL, NULL } };

SLUICE_PLUGIN_DECLARE = {
	.abi = SLUICE_PLUGIN_ABI, .name = "mdedit", .version = "1",
	.description = "sluice-milterd edits test", .params = params,
	.mail = on_mail, .rcpt = on_rcpt, .header = on_header,
	.eom = on_eom, .close = on_close,
};
C
close $fh;
my $out = `cc -shared -fPIC -I$SluiceTest::ROOT/plugins -o $pdir/mdedit.so $pdir/mdedit.c 2>&1`;
is($?, 0, 'the test plugin builds') or diag($out);

my $mport = SluiceTest::free_port();
my $pid = SluiceTest::spawn_logged($t->dir . '/log', $MILTERD, '-c', $t->dir, '-p', "inet:$mport\@127.0.0.1");
END { kill 'TERM', $pid if $pid; }
ok($t->wait_log(qr/listening on inet:$mport\@/), 'sluice-milterd starts')
    or BAIL_OUT("sluice-milterd did not start:\n" . $t->log_text);

my $pf = PostfixPeer->new;
$pf->configure(main => { smtpd_milters => "inet:127.0.0.1:$mport",
			 milter_default_action => 'accept',
			 mynetworks => '127.0.0.0/8' });
$pf->start;

sub client {
	my $c = SluiceTest::Client->new(port => $pf->port) or die "connect: $!";
	$c->hello('client.example');
	return $c;
}

# ---- DEFER at MAIL -------------------------------------------------------
my $c = client();
my ($code, $text) = $c->cmd('MAIL FROM:<defer@example.org>');
is($code, 451, 'a DEFER at MAIL is a 451 from Postfix');
like($text, qr/^451 4\.7\.1 <defer\@example\.org>: Sender address rejected: try later/,
     "... with the plugin's text") or diag($text);

# ---- a job, then REJECT at RCPT ----------------------------------------------
($code, $text) = $c->cmd('MAIL FROM:<sender@example.org>');
is($code, 250, 'the next MAIL FROM is accepted') or diag($text);
($code, $text) = $c->cmd('RCPT TO:<job@example.net>');
is($code, 554, 'a REJECT given after a thread-pool job refuses the recipient');
like($text, qr/a job said no/, "... with the plugin's text") or diag($text);
$c->cmd('QUIT');

# ---- the edits -------------------------------------------------------------
$c = client();
($code, $text) = $c->transaction(from => 'sender@example.org',
	to => ['kept@example.net', 'removed@example.net'],
	body => "From: sender\@example.org\nTo: kept\@example.net\nSubject: original\n"
	      . "X-Drop: this goes\nX-Keep: this stays\n\nBody.\n");
$c->cmd('QUIT');
is($code, 250, 'the message is queued') or diag($text, $t->log_text);
my ($qid) = ($text // '') =~ /queued as (\w+)/;
my $hdrs = `$PostfixPeer::POSTCAT -c ${\ $pf->dir} -h -q $qid 2>&1`;
like($hdrs, qr/^Subject: changed by mdedit$/m, 'the Subject was changed') or diag($hdrs);
unlike($hdrs, qr/^Subject: original/m, '... the old one is gone') or diag($hdrs);
unlike($hdrs, qr/^X-Drop:/m, 'X-Drop was deleted') or diag($hdrs);
like($hdrs, qr/^X-Keep: this stays$/m, 'X-Keep stays') or diag($hdrs);
like($hdrs, qr/\AX-Top: first\n/, 'X-Top was inserted on top') or diag($hdrs);
like($hdrs, qr/^X-Bottom: last\n\z/m, 'X-Bottom was appended last') or diag($hdrs);
my $env = $pf->envelope($qid);
my %rcpt = map { $_ => 1 } @{ $env->{rcpt} };
ok($rcpt{'added@example.net'}, 'the added recipient is in the envelope') or diag($env->{text});
ok($rcpt{'kept@example.net'}, 'the kept one too') or diag($env->{text});
like($env->{text}, qr/removed\@example\.net/, 'postcat shows the removed recipient');
unlike($env->{text}, qr/^recipient: removed\@example\.net$/m,
       '... but no longer as a recipient to deliver to') or diag($env->{text});

# ---- a waiting plugin holds its own connection only ------------------------
my $slow = client();
$slow->cmd('MAIL FROM:<sender@example.org>');
$slow->send_line('RCPT TO:<slow@example.net>');
my $other = client();
($code, $text) = $other->transaction(from => 'sender@example.org', to => ['x@example.net'],
	body => "Subject: meanwhile\n\nBody.\n");
$other->cmd('QUIT');
is($code, 250, 'another connection is served while a plugin waits on a timer') or diag($code // 'undef', ' ', $text // 'undef');
ok(!IO::Select->new($slow->{sock})->can_read(0), '... and the slow RCPT is still waiting then');
($code, $text) = $slow->read_reply;
is($code, 250, 'the slow RCPT is accepted once its timer fired') or diag($text);
$slow->cmd('QUIT');

# ---- a plugin that never answers ----------------------------------------------
my $mark = $t->log_mark;
$c = client();
$c->cmd('MAIL FROM:<sender@example.org>');
($code, $text) = $c->cmd('RCPT TO:<never@example.net>');
is($code, 451, 'a plugin that never resumes: Postfix answers 451 after milterd_plugin_timeout');
like($text // '', qr/^451 4\.3\.0 Error: timeout waiting for a filter/, '... 4.3.0') or diag($text);
ok($t->wait_log(qr/sluice-milterd: no plugin verdict from \S+ within milterd_plugin_timeout \(2s\); closing the session/,
		10, from => $mark), '... the warning is logged') or diag($t->log_text($mark));
ok($t->wait_log(qr/: mdedit: close hook/, 10, from => $mark), "... the plugin's close hook ran");
$c->cmd('QUIT');

# ---- DISCARD from a header hook -----------------------------------------------
my @before = $pf->queue_files('incoming');
$c = client();
($code, $text) = $c->transaction(from => 'sender@example.org', to => ['x@example.net'],
	body => "Subject: drop me\nX-Discard: yes\n\nBody.\n");
$c->cmd('QUIT');
is($code, 250, 'a DISCARD from a header hook: Postfix says 250') or diag($text);
is_deeply([$pf->queue_files('incoming')], \@before, '... and queues nothing');

done_testing;
