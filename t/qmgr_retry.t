#!/usr/bin/perl
# qmgr_retry.t - deferral and retries (docs/queue-manager.md "Retries"):
#  - a next hop answering 4xx: status=deferred, the file waits in
#    deferred/ with its next retry time as mtime and its reason in
#    defer/ID; once the next hop answers 2xx (smtp-sink restarted), the
#    retry delivers it, once;
#  - a virtual alias with two members, one deferred: the retry delivers
#    only that one (orig_to= names the alias);
#  - `sluice queue flush` retries at once, whatever the retry time;
#  - a dead destination: after a failed cohort of connections, its other
#    mail is deferred without a try, "delivery temporarily suspended";
#  - maximal_queue_lifetime: "status=expired, returned to sender", and
#    the bounce reaches the sender;
#  - delay_warning_time: one delay notice, not one per retry.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use SluiceTest qw(wait_until free_port);
use QmgrTest qw(start_sink stop_sink dumps qmgr_sluice send_mail $SINK);

-x $SINK or BAIL_OUT('smtp-sink (the postfix package) is not installed' . ': run scripts/install-deps');

my $tmp = File::Temp::tempdir(CLEANUP => 1);
chmod 0755, $tmp;
my $home = start_sink("$tmp/home");	# the senders' next hop

sub in_queue {
	my ($t, $id, $q) = @_;
	return grep { $_ eq $id } $t->queue_files($q);
}

# ---- 4xx, then 2xx ----------------------------------------------------------------------

my $soft_port = free_port();
start_sink("$tmp/soft", port => $soft_port, opts => ['-r', 'RCPT']);
my $t = qmgr_sluice(main => {
	relayhost => "[127.0.0.1]:$home",
	transport_maps => 'texthash:%DIR%/transport',
	virtual_alias_maps => 'texthash:%DIR%/virtual',
	minimal_backoff_time => '2s',
	maximal_backoff_time => '4s',
	queue_run_delay => '1s',
}, files => { transport => "soft.example smtp:[127.0.0.1]:$soft_port\n",
	      virtual => "team\@example.com ann\@example.net, ben\@soft.example\n" });

my $mark = $t->log_mark;
my $id = send_mail($t, from => 'alice@example.org', to => ['bob@soft.example'],
		   body => "Message-ID: <soft\@client.example>\nSubject: soft\n\nhello\n");
ok($t->wait_log(qr/\Q$id\E: to=<bob\@soft\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$soft_port, .*dsn=4\.3\.0, status=deferred \(.*450 4\.3\.0/,
		10, from => $mark), 'a 4xx reply defers the recipient');
ok(wait_until(sub { in_queue($t, $id, 'deferred') }, 5), '... the message waits in deferred/');
my $mtime = (stat $t->queue_path($id, 'deferred'))[9] // 0;
cmp_ok(abs($mtime - (time + 2)), '<=', 2, '... until now + minimal_backoff_time (its mtime)');
my $reasons = do { local (@ARGV, $/) = ($t->config('queue_directory') . "/defer/$id"); <> } // '';
like($reasons, qr/^0\t.*450 4\.3\.0/m, '... and defer/ID has the reason for sluice queue list');
my ($rc, $out) = $t->sluice('queue', 'list');
like($out, qr/\Q$id\E.*\n.*450 4\.3\.0.*\n.*bob\@soft\.example/, '... which shows it');
my $team = send_mail($t, from => 'alice@example.org', to => ['team@example.com'],
		     body => "Message-ID: <team\@client.example>\nSubject: team\n\nhello\n");
ok($t->wait_log(qr/\Q$team\E: to=<ann\@example\.net>, orig_to=<team\@example\.com>, .*status=sent/, 10, from => $mark),
   'a virtual alias: one member delivered (orig_to= the alias)');
ok($t->wait_log(qr/\Q$team\E: to=<ben\@soft\.example>, orig_to=<team\@example\.com>, .*status=deferred/, 10, from => $mark),
   '... the other deferred');

stop_sink($soft_port);
start_sink("$tmp/soft", port => $soft_port);
ok($t->wait_log(qr/\Q$id\E: removed$/, 15, from => $mark), 'the next hop now takes it: delivered on retry');
my $log = $t->log_text($mark);
cmp_ok(scalar(() = $log =~ /\Q$id\E: from=<alice\@example\.org>, size=\d+, nrcpt=1 \(queue active\)/g), '>=', 2,
   '... on a later visit to active/');
like($log, qr/\Q$id\E: to=<bob\@soft\.example>, .*status=sent/, '... status=sent');
is(scalar(grep { /soft\@client\.example/ } dumps("$tmp/soft")), 1, '... exactly once');
ok(!-e $t->config('queue_directory') . "/defer/$id", '... and its reasons are gone');
ok($t->wait_log(qr/\Q$team\E: removed$/, 15, from => $mark), 'the alias\'s other member is delivered on retry');
is(scalar(grep { /team\@client\.example/ } dumps("$tmp/soft")), 1, '... once');
is(scalar(grep { /team\@client\.example/ } dumps("$tmp/home")), 1, '... and the first member was not delivered again');
ok(!-e $t->config('queue_directory') . "/defer/$team.qmgr", '... and the state file is gone');

# ---- flush --------------------------------------------------------------------------

$t->set_main(minimal_backoff_time => '300s', maximal_backoff_time => '4000s',
	     queue_run_delay => '300s');
$t->reload;
wait_until(sub { $t->log_text($mark) =~ /process sluice\/qmgr|reload --/ }, 5);
stop_sink($soft_port);
start_sink("$tmp/soft", port => $soft_port, opts => ['-r', 'RCPT']);
$mark = $t->log_mark;
$id = send_mail($t, from => 'alice@example.org', to => ['carol@soft.example'],
		body => "Message-ID: <flush\@client.example>\nSubject: flush\n\nhello\n");
ok(wait_until(sub { in_queue($t, $id, 'deferred') }, 10), 'deferred again, now for 300 seconds');
stop_sink($soft_port);
start_sink("$tmp/soft", port => $soft_port);
($rc, $out) = $t->sluice('queue', 'flush');
is($rc, 0, 'sluice queue flush') or diag($out);
ok($t->wait_log(qr/\Q$id\E: removed$/, 10, from => $mark), '... delivers it at once');
$t->stop;

# ---- a dead destination ------------------------------------------------------------

my $closed = free_port();	# nothing listens: connection refused
$t = qmgr_sluice(main => {
	relayhost => "[127.0.0.1]:$home",
	transport_maps => 'texthash:%DIR%/transport',
	deadhop_initial_destination_concurrency => 2,
	minimal_backoff_time => '60s',
}, services => "deadhop unix - - n - - smtp\n",
   files => { transport => "dead.example deadhop:[127.0.0.1]:$closed\n" });
$mark = $t->log_mark;
my @ids;
{
	my $c = $t->smtp;
	$c->hello('client.example');
	for my $i (1 .. 6) {
		my ($code, $text) = $c->transaction(from => 'alice@example.org',
						    to => ["u$i\@dead.example"]);
		push @ids, ($text // '') =~ /queued as (\S+)/;
	}
	$c->cmd('QUIT');
}
ok(wait_until(sub { my @d = $t->queue_files('deferred'); @d == 6 }, 15),
   'six messages to a dead destination are all deferred');
$log = $t->log_text($mark);
my $tried = () = $log =~ /to=<u\d\@dead\.example>, relay=.*status=deferred \(connect to [^)]*refused/g;
my $suspended = () = $log =~ /to=<u\d\@dead\.example>, relay=none, .*status=deferred \(delivery temporarily suspended: connect to [^)]*refused/g;
cmp_ok($tried, '<=', 2, "only a cohort was tried ($tried)");
cmp_ok($suspended, '>=', 4, "... the others were suspended without a try ($suspended)");
$t->stop;

# ---- lifetime and delay warnings ------------------------------------------------

stop_sink($soft_port);
start_sink("$tmp/soft", port => $soft_port, opts => ['-r', 'RCPT']);
$t = qmgr_sluice(main => {
	relayhost => "[127.0.0.1]:$home",
	transport_maps => 'texthash:%DIR%/transport',
	minimal_backoff_time => '1s',
	maximal_backoff_time => '1s',
	queue_run_delay => '1s',
	delay_warning_time => '2s',
	maximal_queue_lifetime => '6s',
}, files => { transport => "soft.example smtp:[127.0.0.1]:$soft_port\n" });
$mark = $t->log_mark;
$id = send_mail($t, from => 'dave@example.org', to => ['erin@soft.example'],
		body => "Message-ID: <old\@client.example>\nSubject: old\n\nhello\n");
ok($t->wait_log(qr/\Q$id\E: sender delay notification: \w+/, 15, from => $mark),
   'after delay_warning_time: a delay notice');
ok(wait_until(sub { grep { /^X-Mail-Args: <>$/m && /^X-Rcpt-Args: <dave\@example\.org>$/m
			   && /old\@client\.example/ && /delayed/i } dumps("$tmp/home") }, 10),
   '... which reaches the sender');
ok($t->wait_log(qr/\Q$id\E: from=<dave\@example\.org>, status=expired, returned to sender$/, 20, from => $mark),
   'after maximal_queue_lifetime: expired');
ok($t->wait_log(qr/\Q$id\E: removed$/, 10, from => $mark), '... and removed');
$log = $t->log_text($mark);
my $deferrals = () = $log =~ /\Q$id\E: to=<erin\@soft\.example>, .*status=deferred/g;
cmp_ok($deferrals, '>=', 3, "it was retried ($deferrals attempts)");
is(scalar(() = $log =~ /\Q$id\E: sender delay notification/g), 1, '... with one delay notice only');
like($log, qr/\Q$id\E: sender non-delivery notification: \w+/, 'the expiry bounces');
ok(wait_until(sub { grep { /^X-Mail-Args: <>$/m && /old\@client\.example/ && /erin\@soft\.example/
			   && /multipart\/report/i && !/delayed mail/i } dumps("$tmp/home") }, 10),
   '... and the bounce reaches the sender');
$t->stop;

done_testing;
