#!/usr/bin/perl
# e2e_luser_relay.t - local(8) and users passwd does not know
# (docs/local-delivery.md, "Unknown users"), end to end: mail in over
# SMTP, the local agent, copies out to smtp-sink as relayhost.
#  - luser_relay with local(8)'s $name expansion ($user, $extension,
#    $domain, ${name?text} with a $name inside) sends the mail for an
#    unknown user on: "forwarded as ID", and the copy arrives at the
#    expanded address with Delivered-To: the original recipient;
#  - a user passwd knows (nobody) is delivered to its mailbox as before;
#  - without luser_relay (another local transport, -o luser_relay=):
#    an unknown user bounces 5.1.1 "unknown user", and postmaster
#    without an alias is discarded with "required alias not found", as
#    Postfix does;
#  - a luser_relay that points at an unknown local user comes back to
#    itself and bounces as a mail forwarding loop: it never loops.
# Runs as root (local delivery changes ids).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use SluiceTest qw(wait_until);
use QmgrTest qw(start_sink dumps qmgr_sluice send_mail $SINK);

$< == 0 or BAIL_OUT('e2e_luser_relay.t must run as root (local delivery changes ids)');
-x $SINK or BAIL_OUT('smtp-sink (the postfix package) is not installed' . ': run scripts/install-deps');

my $tmp = File::Temp::tempdir(CLEANUP => !$ENV{SLUICE_KEEP_TMP});
chmod 0755, $tmp;
mkdir "$tmp/spool", 0755;
my $port = start_sink("$tmp/sink");

my %main = (
	mydestination => 'localhost, example.test, $myhostname',
	recipient_delimiter => '+',
	mail_spool_directory => "$tmp/spool",
	alias_maps => 'texthash:%DIR%/aliases',
	transport_maps => 'texthash:%DIR%/transport',
	relayhost => "[127.0.0.1]:$port",
	luser_relay => 'lu-$user${extension?+$extension}-at-$domain@relay.example',
);
# Postfix's advice for luser_relay: no local_recipient_maps check in
# the SMTP server (when this build has one).
{
	my $probe = SluiceTest->new(start => 0);
	my ($rc) = $probe->sluice('conf', '-d', 'local_recipient_maps');
	$main{local_recipient_maps} = '' if $rc == 0;
}
my $t = qmgr_sluice(main => \%main,
	services => "plainlocal unix - n n - - local -o luser_relay=\n",
	files => {
		aliases => "someone: nobody\n",
		transport => "plain.test plainlocal:\n",
	});

sub deliver {
	my ($msgid, $to) = @_;
	my $mark = $t->log_mark;
	my $id = send_mail($t, from => 'alice@example.org', to => [$to],
			   body => "Message-ID: <$msgid>\nSubject: $msgid\n\nhello\n");
	ok($id, "<$msgid> to $to is queued");
	ok($t->wait_log(qr/\Q$id\E: removed$/, 20, from => $mark), '... and done with')
	    or diag($t->log_text($mark));
	return ($id, $t->log_text($mark));
}

sub at_sink {
	my ($rcpt, $msgid) = @_;
	my $got;
	wait_until(sub { ($got) = grep { /^X-Rcpt-Args: <\Q$rcpt\E>/m && /<\Q$msgid\E>/ } dumps("$tmp/sink") }, 20);
	return $got;
}

# ---- luser_relay -------------------------------------------------------------

my ($id, $log) = deliver('one@client.example', 'nosuch+box@example.test');
my ($fwd) = $log =~ m{ sluice/local\[\d+\]: \Q$id\E: to=<nosuch\+box\@example\.test>, relay=local, .*dsn=2\.0\.0, status=sent \(forwarded as (\w+)\)$}m;
ok($fwd, 'an unknown user with luser_relay: "forwarded as ID"');
my $copy = at_sink('lu-nosuch+box-at-example.test@relay.example', 'one@client.example');
ok($copy, '... the copy reaches the expanded address (lu-$user${extension?+$extension}-at-$domain)');
like($copy // '', qr/^Delivered-To: nosuch\+box\@example\.test$/m, '... with Delivered-To: the original recipient');
like($copy // '', qr/^X-Mail-Args: <alice\@example\.org>/m, '... from the original sender');

($id, $log) = deliver('two@client.example', 'Other@example.test');
ok(at_sink('lu-other-at-example.test@relay.example', 'two@client.example'),
   'without an extension: ${extension?...} is empty, $user is in lower case');

($id, $log) = deliver('three@client.example', 'someone@example.test');
like($log, qr{ sluice/local\[\d+\]: \Q$id\E: to=<someone\@example\.test>, relay=local, .*status=sent \(delivered to mailbox\)$}m,
     'a user passwd knows (an alias to nobody) is delivered to the mailbox, not to luser_relay');
ok(-s "$tmp/spool/nobody", '... the mbox in mail_spool_directory');

# ---- no luser_relay -------------------------------------------------------------

($id, $log) = deliver('four@client.example', 'nosuch@plain.test');
like($log, qr{ sluice/local\[\d+\]: \Q$id\E: to=<nosuch\@plain\.test>, relay=local, .*dsn=5\.1\.1, status=bounced \(unknown user: "nosuch"\)$}m,
     'without luser_relay an unknown user bounces 5.1.1');

($id, $log) = deliver('five@client.example', 'postmaster@plain.test');
like($log, qr{warning: required alias not found: postmaster$}m,
     'postmaster without an alias: "required alias not found"');
like($log, qr{ sluice/local\[\d+\]: \Q$id\E: to=<postmaster\@plain\.test>, relay=local, .*dsn=2\.0\.0, status=sent \(discarded\)$}m,
     '... and the mail is discarded (2.0.0), as Postfix does');

# ---- a luser_relay that comes back ------------------------------------------------

$t->set_main(luser_relay => 'ghost@example.test');
$t->reload;
my $mark = $t->log_mark;
$id = send_mail($t, from => 'alice@example.org', to => ['lost@example.test'],
		body => "Message-ID: <six\@client.example>\nSubject: six\n\nhello\n");
ok($id, 'luser_relay = an unknown local user: queued');
ok($t->wait_log(qr/status=bounced \(mail forwarding loop for ghost\@example\.test\)/, 30, from => $mark),
   '... the copies come back to ghost@example.test and bounce as a loop');
my $bounce;
ok(wait_until(sub { ($bounce) = grep { /^X-Mail-Args: <>$/m && /six\@client\.example/ } dumps("$tmp/sink") }, 20),
   '... the bounce reaches the sender');
like($bounce // '', qr/mail forwarding loop/, '... saying why');
my $n = () = $t->log_text($mark) =~ /status=sent \(forwarded as /g;
cmp_ok($n, '<=', 3, "... after a bounded number of copies ($n)");

my @warn = grep { /: (?:warning|error|fatal|panic): / && !/required alias not found/ } split /\n/, $t->log_text;
is_deeply(\@warn, [], 'no other warning in the log');
$t->stop;
done_testing;
