#!/usr/bin/perl
# qmgr_mastercf.t - master.cf's transports and queue manager, as `sluice
# check` reads them (docs/queue-manager.md "master.cf"):
#  - Postfix's standard services (qmgr, pickup, cleanup, smtp, relay with
#    -o syslog_name=postfix/$service_name, lmtp, local, virtual, discard,
#    error, retry, pipe services ...) are accepted without a word;
#  - per-transport parameters (maildrop_destination_recipient_limit) are
#    known for the transports master.cf declares, and the built-in ones;
#  - a pipe service without argv= or user=, or running as root, and a
#    transport declared twice, are errors with the fix;
#  - sluice's own conf/master.cf checks clean.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceConf qw(conf_dir run_sluice $SLUICE $CLEAN_MAIN);

-x $SLUICE or BAIL_OUT("$SLUICE is not built: run make");

my $LISTENER = "127.0.0.1:2525 inet - - - - - smtpd\n";
my $POSTFIX = <<'EOF';
pickup    unix  n       -       y       60      1       pickup
cleanup   unix  n       -       y       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       y       1000?   1       tlsmgr
rewrite   unix  -       -       y       -       -       trivial-rewrite
bounce    unix  -       -       y       -       0       bounce
defer     unix  -       -       y       -       0       bounce
trace     unix  -       -       y       -       0       bounce
verify    unix  -       -       y       -       1       verify
flush     unix  n       -       y       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       y       -       -       smtp
relay     unix  -       -       y       -       -       smtp
        -o syslog_name=postfix/$service_name
showq     unix  n       -       y       -       -       showq
error     unix  -       -       y       -       -       error
retry     unix  -       -       y       -       -       error
discard   unix  -       -       y       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       y       -       -       lmtp
anvil     unix  -       -       y       -       1       anvil
scache    unix  -       -       y       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
maildrop  unix  -       n       n       -       -       pipe
  flags=DRXhu user=vmail argv=/usr/bin/maildrop -d ${recipient}
uucp      unix  -       n       n       -       -       pipe
  flags=Fqhu user=uucp argv=uux -r -n -z -a$sender - $nexthop!rmail ($recipient)
EOF

# name, main.cf additions, master.cf, expected stderr, status
my @cases = (
	["Postfix's standard master.cf", '', $LISTENER . $POSTFIX, '', 0],
	['per-transport parameters of declared and built-in transports',
	 "maildrop_destination_recipient_limit = 1\nsmtp_destination_concurrency_limit = 4\n"
	 . "relay_initial_destination_concurrency = 2\n",
	 $LISTENER . $POSTFIX, '', 0],
	['a per-transport parameter of an undeclared transport',
	 "nosuch_destination_recipient_limit = 1\n", $LISTENER,
	 qq{conf/main.cf:3: unknown parameter "nosuch_destination_recipient_limit"; check the name ("sluice conf -d" lists them all) or remove it\n}, 1],
	['pipe without argv=',
	 '', $LISTENER . "cmd unix - n n - - pipe flags=R user=nobody\n",
	 qq{conf/master.cf:2: pipe service "cmd" has no argv=; end the line with argv=/path/to/command and its arguments\n}, 1],
	['pipe without user=',
	 '', $LISTENER . "cmd unix - n n - - pipe argv=/bin/cat\n",
	 qq{conf/master.cf:2: pipe service "cmd" has no user=; add user=NAME, the unprivileged user that runs the command\n}, 1],
	['pipe as root',
	 '', $LISTENER . "cmd unix - n n - - pipe user=root:wheel argv=/bin/cat\n",
	 qq{conf/master.cf:2: pipe service "cmd" runs its command as root; name an unprivileged user in user=\n}, 1],
	['a transport twice',
	 '', $LISTENER . "smtp unix - - n - - smtp\nsmtp unix - - n - - smtp\n",
	 qq{conf/master.cf:3: transport "smtp" is already declared at line 2; remove one of them or rename it\n}, 1],
	['an unknown -o name on a transport',
	 '', $LISTENER . "relay unix - - n - - smtp -o no_such_thing=1\n",
	 qq{conf/master.cf:2: unknown parameter "no_such_thing" in -o; check the name ("sluice conf -d" lists them all) or remove it\n}, 1],
	['arguments of an agent that takes none',
	 '', $LISTENER . "smtp unix - - n - - smtp -v\n",
	 qq{warning: conf/master.cf:2: smtp argument "-v" has no meaning in sluice and is ignored; only -o name=value is used\n}, 0],
);

for my $c (@cases) {
	my ($name, $main, $master, $want, $status) = @$c;
	my $top = conf_dir(main => $CLEAN_MAIN . $main, master => $master);
	my ($rc, $out, $err) = run_sluice($top, 'check');
	is($err, $want, "$name: messages");
	is($rc, $status, "$name: exit status $status");
}

# sluice's own master.cf, with a queue directory of the test's.
{
	open my $fh, '<', "$SluiceConf::ROOT/conf/master.cf" or die;
	local $/;
	my $own = <$fh>;
	my $top = conf_dir(master => $own);
	my ($rc, $out, $err) = run_sluice($top, 'check');
	is($err, '', 'conf/master.cf checks clean');
	like($own, qr/^qmgr\s+unix\s.*\sqmgr$/m, '... and declares the queue manager');
}

done_testing;
