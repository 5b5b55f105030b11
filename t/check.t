#!/usr/bin/perl
# t/check.t - `sluice check` on a clean configuration and on broken ones:
# the exact "file:line: problem; fix" messages and the exit status.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceConf qw(conf_dir run_sluice spew $SLUICE $CLEAN_MAIN);

plan skip_all => "$SLUICE is not built" unless -x $SLUICE;

my $M = $CLEAN_MAIN;    # two lines: queue_directory, mail_owner

# name, main.cf, master.cf (undef: the clean one), expected stderr, status
my @cases = (
	['clean configuration', $M, undef, '', 0],

	['clean, with comments, continuations and expansion',
	 "# sluice\n$M\nmynetworks = 127.0.0.0/8,\n    # loopback only\n    [::1]/128\n"
	 . "smtpd_banner = \$myhostname ESMTP \${mail_name}\n",
	 "# listeners\n127.0.0.1:2525 inet - - - - - smtpd\n"
	 . "127.0.0.1:2587 inet - - - - - smtpd\n  -o smtpd_timeout=60s\n"
	 . "  -o { smtpd_banner = \$myhostname submission }\n"
	 . "pickup unix n - y 60 1 pickup\n",
	 '', 0],

	['unknown parameter, case-insensitive did-you-mean',
	 "$M" . "Mynetworks = 127.0.0.0/8\n", undef,
	 qq{conf/main.cf:3: unknown parameter "Mynetworks"; did you mean "mynetworks"?\n}, 1],

	['unknown parameter, misspelt',
	 "$M" . "smtpd_recipent_limit = 10\n", undef,
	 qq{conf/main.cf:3: unknown parameter "smtpd_recipent_limit"; did you mean "smtpd_recipient_limit"?\n}, 1],

	['unknown parameter, nothing close',
	 "$M" . "frobnicate_everything = yes\n", undef,
	 qq{conf/main.cf:3: unknown parameter "frobnicate_everything"; check the name ("sluice conf -d" lists them all) or remove it\n}, 1],

	['a user-defined parameter that is referred to is fine',
	 "$M" . "my_banner = hello\nsmtpd_banner = \$myhostname \$my_banner\n", undef, '', 0],

	['set twice: the last wins',
	 "$M" . "message_size_limit = 1000\nmyorigin = example.com\nmessage_size_limit = 2000\n", undef,
	 qq{conf/main.cf:5: "message_size_limit" is also set at line 3; this last setting wins, delete the other\n}, 1],

	['set three times',
	 "$M" . "mynetworks = a\nmynetworks = b\nmynetworks = 127.0.0.0/8\n", undef,
	 qq{conf/main.cf:5: "mynetworks" is also set at lines 3 and 4; this last setting wins, delete the others\n}, 1],

	['indented name = value continues the previous line',
	 "$M" . "myhostname = mx.example.com\n  mynetworks = 127.0.0.0/8\n", undef,
	 qq{conf/main.cf:4: this line starts with whitespace, so it continues "myhostname" from line 3 instead of setting "mynetworks"; remove the leading whitespace if it is a new setting\n}, 1],

	['continuation line with nothing to continue',
	 "  mynetworks = 127.0.0.0/8\n$M", undef,
	 qq{conf/main.cf:1: line starts with whitespace but there is no setting before it to continue; remove the leading whitespace\n}, 1],

	['missing =',
	 "$M" . "mynetworks 127.0.0.0/8\n", undef,
	 qq{conf/main.cf:3: missing "=" after "mynetworks"; write "name = value"\n}, 1],

	['undefined $name, with a suggestion',
	 "$M" . "smtpd_banner = \$myhostnam ESMTP\n", undef,
	 qq{conf/main.cf:3: undefined parameter "\$myhostnam" in the value of "smtpd_banner"; did you mean "\$myhostname"?\n}, 1],

	['undefined $name, no suggestion',
	 "$M" . "smtpd_banner = \${nothing_like_this} ESMTP\n", undef,
	 qq{conf/main.cf:3: undefined parameter "\$nothing_like_this" in the value of "smtpd_banner"; define it, or write "\$\$" for a literal "\$"\n}, 1],

	['a lone $',
	 "$M" . "smtpd_reject_footer = costs \$ 5\n", undef,
	 qq{conf/main.cf:3: the value of "smtpd_reject_footer" has a "\$" that is not followed by a parameter name; write "\$\$" for a literal "\$"\n}, 1],

	['unclosed ${',
	 "$M" . "smtpd_banner = \${myhostname ESMTP\n", undef,
	 qq!conf/main.cf:3: the value of "smtpd_banner" has a "\${name" without its closing "}"; add the "}"\n!, 1],

	['loop through another parameter',
	 "$M" . "mail_name = \$syslog_name\nsyslog_name = \$mail_name\n", undef,
	 qq{conf/main.cf:3: parameter "mail_name" refers to itself through "syslog_name"; change one of them so that the chain of references ends\n}, 1],

	['loop through a default',
	 "$M" . "myhostname = mx.\$myorigin\n", undef,
	 qq{conf/main.cf:3: parameter "myhostname" refers to itself through "myorigin"; change one of them so that the chain of references ends\n}, 1],

	['direct self-reference',
	 "$M" . "mail_name = x \$mail_name\n", undef,
	 qq{conf/main.cf:3: parameter "mail_name" refers to itself; remove "\$mail_name" from its value\n}, 1],

	['bad time',
	 "$M" . "smtpd_timeout = 5x\n", undef,
	 qq{conf/main.cf:3: bad value "5x" for "smtpd_timeout"; expected a time: a number with an optional unit s, m, h, d or w, e.g. "300s" or "5m"\n}, 1],

	['bad size',
	 "$M" . "message_size_limit = 10MB\n", undef,
	 qq{conf/main.cf:3: bad value "10MB" for "message_size_limit"; expected a size in bytes, e.g. "10240000" (k, m and g suffixes are also understood)\n}, 1],

	['bad boolean',
	 "$M" . "disable_vrfy_command = maybe\n", undef,
	 qq{conf/main.cf:3: bad value "maybe" for "disable_vrfy_command"; expected yes or no\n}, 1],

	['bad integer',
	 "$M" . "smtpd_recipient_limit = lots\n", undef,
	 qq{conf/main.cf:3: bad value "lots" for "smtpd_recipient_limit"; expected a whole number, e.g. "100"\n}, 1],

	['a Postfix-only parameter is a warning',
	 "$M" . "biff = no\n", undef,
	 qq{warning: conf/main.cf:3: "biff" is a Postfix parameter with no meaning in sluice; it is ignored, remove it to silence this warning\n}, 0],

	['several problems, in file and line order',
	 "$M" . "smtpd_timeout = never\nMyhostname = x\n",
	 "127.0.0.1:2525 inet - - - - - smtpd -o smtpd_timout=10s\n",
	 qq{conf/main.cf:3: bad value "never" for "smtpd_timeout"; expected a time: a number with an optional unit s, m, h, d or w, e.g. "300s" or "5m"\n}
	 . qq{conf/main.cf:4: unknown parameter "Myhostname"; did you mean "myhostname"?\n}
	 . qq{conf/master.cf:1: unknown parameter "smtpd_timout" in -o; did you mean "smtpd_timeout"?\n}, 1],

	# ---- master.cf ----
	['-o with an unknown parameter',
	 $M, "127.0.0.1:2525 inet - - - - - smtpd\n  -o smtpd_banner=x\n  -o Smtpd_Timeout=10s\n",
	 qq{conf/master.cf:1: unknown parameter "Smtpd_Timeout" in -o; did you mean "smtpd_timeout"?\n}, 1],

	['-o with a bad value',
	 $M, "127.0.0.1:2525 inet - - - - - smtpd -o smtpd_hard_error_limit=x\n",
	 qq{conf/master.cf:1: bad value "x" for "smtpd_hard_error_limit"; expected a whole number, e.g. "100"\n}, 1],

	['-o without =',
	 $M, "127.0.0.1:2525 inet - - - - - smtpd -o smtpd_timeout\n",
	 qq{conf/master.cf:1: -o "smtpd_timeout" has no "="; write -o name=value\n}, 1],

	['columns with no meaning in sluice are a warning',
	 $M, "127.0.0.1:2525 inet n - y - - smtpd\n",
	 qq{warning: conf/master.cf:1: the private (n) and chroot (y) columns have no meaning in sluice and are ignored; write "-" there to silence this warning\n}, 0],

	['one ignored column',
	 $M, "127.0.0.1:2525 inet - - - 60 - smtpd\n",
	 qq{warning: conf/master.cf:1: the wakeup (60) column has no meaning in sluice and is ignored; write "-" there to silence this warning\n}, 0],

	['too few fields',
	 $M, "127.0.0.1:2525 inet - - - smtpd\n",
	 qq{conf/master.cf:1: the line has 6 fields but a service needs 8; write "service type private unpriv chroot wakeup maxproc command [args]", e.g. "smtp inet n - n - - smtpd"\n}, 1],

	['unknown service type',
	 $M, "127.0.0.1:2525 tcp - - - - - smtpd\n",
	 qq{conf/master.cf:1: unknown service type "tcp"; use inet, unix, unix-dgram, fifo or pass (sluice listens on inet services)\n}, 1],

	['unknown port name',
	 $M, "127.0.0.1:nosuchport inet - - - - - smtpd\n",
	 qq{conf/master.cf:1: service "127.0.0.1:nosuchport" has an unknown port; use a number from 1 to 65535, or a service name from /etc/services\n}, 1],

	['IPv6 without brackets',
	 $M, "::1:2525 inet - - - - - smtpd\n",
	 qq{conf/master.cf:1: service "::1:2525" has an IPv6 address without brackets; write e.g. "[::1]:25"\n}, 1],

	['two listeners on one address',
	 $M, "127.0.0.1:2525 inet - - - - - smtpd\n127.0.0.1:2525 inet - - - - - smtpd -o smtpd_timeout=1s\n",
	 qq{conf/master.cf:2: service "127.0.0.1:2525" listens on the same address and port as "127.0.0.1:2525" at line 1; remove one of them or change its address\n}, 1],

	['postscreen is not there',
	 $M, "127.0.0.1:2525 inet - - - - - smtpd\n127.0.0.1:2626 inet - - - - - postscreen\n",
	 qq{warning: conf/master.cf:2: service "127.0.0.1:2626" runs "postscreen", which sluice does not have, so nothing listens there; run smtpd instead\n}, 0],

	# ---- files and directories ----
	['missing main.cf',
	 undef, undef,
	 qq{conf/main.cf: cannot read: No such file or directory; create it (an empty main.cf means every default)\n}, 1],

	['missing master.cf',
	 $M, undef,
	 qq{conf/master.cf: cannot read: No such file or directory; create it with a listener, e.g. "smtp inet n - n - - smtpd"\n}, 1,
	 sub { unlink "$_[0]/conf/master.cf" }],

	['queue_directory is a file',
	 "queue_directory = ../spool\nmail_owner = nobody\n", undef,
	 qq{conf/main.cf:1: queue_directory "TOP/spool" is not a directory; point queue_directory at a directory (sluice creates it when missing)\n}, 1,
	 sub { spew("$_[0]/spool", "") }],

	['queue_directory parent missing',
	 "queue_directory = ../no/such/spool\nmail_owner = nobody\n", undef,
	 qq{conf/main.cf:1: queue_directory "TOP/no/such/spool" cannot be created: its parent TOP/no/such: No such file or directory; create the parent, or point queue_directory elsewhere\n}, 1],

	['maillog_file directory missing',
	 "$M" . "maillog_file = ../logs/sluice.log\n", undef,
	 qq{conf/main.cf:3: maillog_file "TOP/logs/sluice.log" cannot be created: its directory TOP/logs: No such file or directory; create the directory, or choose another file\n}, 1],

	['maillog_file is a directory',
	 "$M" . "maillog_file = ..\n", undef,
	 qq{conf/main.cf:3: maillog_file "TOP" is a directory; name a file in it, e.g. "TOP/sluice.log"\n}, 1],
);

for my $c (@cases) {
	my ($name, $main, $master, $want, $status, $setup) = @$c;
	my $top = conf_dir(main => $main,
			   defined $master ? (master => $master) : ());
	$setup->($top) if $setup;
	my ($rc, $out, $err) = run_sluice($top, 'check');
	$want =~ s/TOP/$top/g;
	is($err, $want, "$name: message");
	is($rc, $status, "$name: exit $status");
	is($out, '', "$name: nothing on stdout");
}

# A relative path is resolved against the configuration directory.
{
	my $top = conf_dir(main => "queue_directory = ../spool\nmail_owner = nobody\n");
	mkdir "$top/spool";
	my ($rc, $out, $err) = run_sluice($top, 'check');
	is("$rc:$err", '0:', 'queue_directory relative to the config directory');
}

# The configuration directory itself.
{
	my $top = conf_dir();
	my $pid = fork // die;
	if (!$pid) {
		chdir $top;
		open STDERR, '>', "$top/.err";
		exec $SLUICE, '-c', 'nowhere', 'check';
		exit 127;
	}
	waitpid $pid, 0;
	open my $fh, '<', "$top/.err";
	my $err = do { local $/; <$fh> };
	is($err, "nowhere: cannot open the configuration directory: No such file or directory; check sluice -c, or create it with main.cf and master.cf\n",
	   'missing configuration directory');
	is($? >> 8, 1, 'missing configuration directory: exit 1');
}

# Permissions mean nothing to root: only as another user.
SKIP: {
	skip 'root reads every file', 2 if $< == 0;
	my $top = conf_dir();
	chmod 0, "$top/conf/main.cf";
	my ($rc, $out, $err) = run_sluice($top, 'check');
	is($err, qq{conf/main.cf: cannot read: Permission denied; make it readable by the user running sluice\n},
	   'unreadable main.cf');
	is($rc, 1, 'unreadable main.cf: exit 1');
}

# mail_owner matters when sluice starts as root.
SKIP: {
	skip 'mail_owner is only checked as root', 2 if $< != 0;
	my $top = conf_dir(main => "queue_directory = ../spool\nmail_owner = no_such_user_here\n");
	my ($rc, $out, $err) = run_sluice($top, 'check');
	is($err, qq{conf/main.cf:2: mail_owner "no_such_user_here" is not a user on this system; create it (useradd --system no_such_user_here) or set mail_owner to an unprivileged user\n},
	   'mail_owner that does not exist');
	$top = conf_dir(main => "queue_directory = ../spool\nmail_owner = root\n");
	($rc, $out, $err) = run_sluice($top, 'check');
	is($err, qq{conf/main.cf:2: mail_owner "root" is the super-user; set mail_owner to an unprivileged user, the workers run as it\n},
	   'mail_owner root');
}

# A plugin list needs a readable plugin_directory.
{
	my $top = conf_dir(main => "$M" . "plugin_directory = ../no-plugins\nsluice_plugins = example\n");
	my ($rc, $out, $err) = run_sluice($top, 'check');
	like($err, qr{^conf/main\.cf:3: plugin_directory "\Q$top\E/no-plugins": No such file or directory; point plugin_directory at the directory holding the plugins \(NAME\.so\)$}m,
	     'missing plugin_directory');
	is($rc, 1, 'missing plugin_directory: exit 1');
}

done_testing();
