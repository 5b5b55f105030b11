#!/usr/bin/perl
# qmgr_pflogsumm.t - the log in Postfix's shape, as a log reader sees it:
# pflogsumm (the Debian package) over a test's log counts what happened.
# Three messages delivered, one bounced by error: (its bounce is delivered
# too), one deferred by retry:.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use SluiceTest qw(wait_until);
use QmgrTest qw(start_sink dumps qmgr_sluice send_mail $SINK);

my $PFLOGSUMM = '/usr/sbin/pflogsumm';
-x $PFLOGSUMM or BAIL_OUT('pflogsumm is not installed' . ': run scripts/install-deps');
-x $SINK or BAIL_OUT('smtp-sink (the postfix package) is not installed' . ': run scripts/install-deps');

my $tmp = File::Temp::tempdir(CLEANUP => 1);
chmod 0755, $tmp;
my $port = start_sink("$tmp/sink");
my $t = qmgr_sluice(main => {
	relayhost => "[127.0.0.1]:$port",
	transport_maps => 'texthash:%DIR%/transport',
	# error: and retry: recipients must reach the queue manager (smtpd
	# refuses them at RCPT time otherwise, as Postfix does)
	smtpd_reject_unlisted_recipient => 'no',
}, files => { transport => "error.example error:5.1.1 no such user\n"
			   . "retry.example retry:4.4.1 try later\n" });

my @ids = map { send_mail($t, from => 'alice@example.org', to => ["r$_\@example.net"]) } 1 .. 3;
push @ids, send_mail($t, from => 'alice@example.org', to => ['x@error.example']);
my $deferred = send_mail($t, from => 'alice@example.org', to => ['y@retry.example']);
ok($t->wait_log(qr/\Q$_\E: removed$/, 15), "$_ is done") for @ids;
ok($t->wait_log(qr/\Q$deferred\E: to=<y\@retry\.example>, .*status=deferred/, 15), 'one deferral');
ok(wait_until(sub { (grep { /^X-Mail-Args: <>$/m } dumps("$tmp/sink")) == 1 }, 15),
   'the bounce is delivered');
ok($t->wait_log(qr/sluice\/smtp\[\d+\]: \w+: to=<alice\@example\.org>, .*status=sent/, 15),
   '... and logged');
$t->stop;

my $report = `$PFLOGSUMM --syslog-name=sluice ${\ $t->log_file} 2>&1`;
my %n = map { $_->[1] => $_->[0] } map { [/^\s*(\d+)\s+(received|delivered|deferred|bounced|rejected)\b/] }
    grep { /^\s*\d+\s+(received|delivered|deferred|bounced|rejected)\b/ } split /\n/, $report;
is($n{received}, 5, 'pflogsumm: 5 received');
is($n{delivered}, 4, 'pflogsumm: 4 delivered (3 and the bounce)');
is($n{deferred}, 1, 'pflogsumm: 1 deferred');
is($n{bounced}, 1, 'pflogsumm: 1 bounced');
is($n{rejected}, 0, 'pflogsumm: 0 rejected') or diag($report);

done_testing;
