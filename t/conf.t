#!/usr/bin/perl
# t/conf.t - `sluice conf`, like postconf: show parameters (all, -n, -d,
# named, -h, -x), edit main.cf in place (-e, -X) and print the reference
# (--docs).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceConf qw(conf_dir run_sluice slurp spew $SLUICE);

plan skip_all => "$SLUICE is not built" unless -x $SLUICE;

my $MAIN = <<'EOF';
# main.cf for t/conf.t
queue_directory = ../spool

# trusted networks
mynetworks = 127.0.0.0/8,
    # a comment between continuation lines
    10.0.0.0/8
myhostname = mx.example.com
smtpd_banner = $myhostname ESMTP ${mail_name}
my_custom = $mail_name
syslog_name = $my_custom
mynetworks = 192.0.2.0/24
# end
EOF

# ---- showing -------------------------------------------------------------

{
	my $top = conf_dir(main => $MAIN);
	my ($rc, $out, $err) = run_sluice($top, 'conf', '-n');
	is($out, <<'EOF', 'conf -n: what main.cf sets, sorted, last setting');
my_custom = $mail_name
myhostname = mx.example.com
mynetworks = 192.0.2.0/24
queue_directory = ../spool
smtpd_banner = $myhostname ESMTP ${mail_name}
syslog_name = $my_custom
EOF
	is("$rc$err", '0', 'conf -n: exit 0, no complaint');

	($rc, $out) = run_sluice($top, 'conf', 'smtpd_banner', 'smtpd_timeout');
	is($out, "smtpd_banner = \$myhostname ESMTP \${mail_name}\nsmtpd_timeout = 300s\n",
	   'conf NAME: values as written, defaults for the rest');

	($rc, $out) = run_sluice($top, 'conf', '-x', 'smtpd_banner', 'syslog_name',
				 'queue_directory', 'mydomain');
	is($out, "smtpd_banner = mx.example.com ESMTP sluice\nsyslog_name = sluice\n"
		 . "queue_directory = $top/spool\nmydomain = example.com\n",
	   'conf -x: expanded, paths made absolute, mydomain follows myhostname');

	($rc, $out) = run_sluice($top, 'conf', '-h', 'myhostname', 'message_size_limit');
	is($out, "mx.example.com\n10240000\n", 'conf -h: values only');

	($rc, $out) = run_sluice($top, 'conf', '-d', 'mynetworks', 'smtpd_banner',
				 'disable_vrfy_command', 'maillog_file');
	is($out, "mynetworks = 127.0.0.0/8 [::1]/128\nsmtpd_banner = \$myhostname ESMTP \$mail_name\n"
		 . "disable_vrfy_command = yes\nmaillog_file =\n",
	   'conf -d: defaults, empty ones as "name ="');

	($rc, $out) = run_sluice($top, 'conf');
	like($out, qr/^mynetworks = 192\.0\.2\.0\/24$/m, 'conf: all, with main.cf values');
	like($out, qr/^smtpd_timeout = 300s$/m, 'conf: all, with defaults');
	my @names = map { /^(\S+) =/ ? $1 : () } split /\n/, $out;
	is_deeply(\@names, [sort @names], 'conf: sorted by name');
	cmp_ok(scalar @names, '>=', 40, 'conf: every parameter');

	($rc, $out, $err) = run_sluice($top, 'conf', 'mynetwork');
	is($err, qq{sluice conf: unknown parameter "mynetwork"; did you mean "mynetworks"?\n},
	   'conf: unknown name, with a suggestion');
	is($rc, 1, 'conf: unknown name: exit 1');

	($rc, $out, $err) = run_sluice($top, 'conf', '-q');
	is($rc, 2, 'conf: unknown option: exit 2');
}

# A main.cf with mistakes can still be shown (and then fixed with -e).
{
	my $top = conf_dir(main => "Mynetworks = 1\nsmtpd_timeout = soon\n");
	my ($rc, $out, $err) = run_sluice($top, 'conf', '-n');
	is($out, "Mynetworks = 1\nsmtpd_timeout = soon\n", 'conf -n on a broken main.cf');
	is("$rc$err", '0', 'conf -n on a broken main.cf: no complaint');
}

# -d needs no main.cf; the others do.
{
	my $top = conf_dir(main => undef);
	my ($rc, $out, $err) = run_sluice($top, 'conf', '-d', 'smtpd_timeout');
	is("$rc:$out", "0:smtpd_timeout = 300s\n", 'conf -d without main.cf');
	($rc, $out, $err) = run_sluice($top, 'conf', '-n');
	is($err, "sluice conf: cannot read conf/main.cf: No such file or directory\n",
	   'conf -n without main.cf: says so');
	is($rc, 1, 'conf -n without main.cf: exit 1');
}

# ---- editing ------------------------------------------------------------

{
	my $top = conf_dir(main => $MAIN);
	chmod 0640, "$top/conf/main.cf";
	my ($rc, $out, $err) = run_sluice($top, 'conf', '-e', 'mynetworks = 10.1.0.0/16',
					  'message_size_limit=20480000', 'smtpd_banner=');
	is("$rc$err", '0', 'conf -e: exit 0');
	is(slurp("$top/conf/main.cf"), <<'EOF', 'conf -e: first setting replaced with its continuation lines, later one removed, new one appended, comments kept');
# main.cf for t/conf.t
queue_directory = ../spool

# trusted networks
mynetworks = 10.1.0.0/16
    # a comment between continuation lines
myhostname = mx.example.com
smtpd_banner =
my_custom = $mail_name
syslog_name = $my_custom
# end
message_size_limit = 20480000
EOF
	is((stat "$top/conf/main.cf")[2] & 07777, 0640, 'conf -e: file mode kept');
	opendir my $dh, "$top/conf";
	is_deeply([sort grep { !/^\.\.?$/ } readdir $dh], ['main.cf', 'master.cf'],
		  'conf -e: no temporary file left');

	($rc, $out) = run_sluice($top, 'conf', '-h', 'message_size_limit');
	is($out, "20480000\n", 'conf -e: the new value is read back');

	($rc, $out, $err) = run_sluice($top, 'conf', '-X', 'my_custom', 'syslog_name');
	is("$rc$err", '0', 'conf -X: exit 0');
	unlike(slurp("$top/conf/main.cf"), qr/my_custom|syslog_name/, 'conf -X: removed');
	like(slurp("$top/conf/main.cf"), qr/^# end$/m, 'conf -X: comments kept');
}

# -e refuses what it cannot stand behind, and changes nothing then.
{
	my $top = conf_dir(main => $MAIN);
	my ($rc, $out, $err) = run_sluice($top, 'conf', '-e', 'mynetwork=10.0.0.0/8');
	is($err, qq{sluice conf: unknown parameter "mynetwork"; did you mean "mynetworks"?\n},
	   'conf -e: unknown name refused');
	is($rc, 1, 'conf -e: unknown name: exit 1');
	($rc, $out, $err) = run_sluice($top, 'conf', '-e', 'message_size_limit=big',
				       'mynetworks=10.0.0.0/8');
	is($err, qq{sluice conf: bad value "big" for "message_size_limit"; expected a size in bytes, e.g. "10240000" (k, m and g suffixes are also understood)\n},
	   'conf -e: bad value refused');
	is($rc, 1, 'conf -e: bad value: exit 1');
	($rc, $out, $err) = run_sluice($top, 'conf', '-e', 'mynetworks');
	is($rc, 1, 'conf -e: no "=" refused');
	is(slurp("$top/conf/main.cf"), $MAIN, 'conf -e: nothing changed after a refusal');

	($rc, $out, $err) = run_sluice($top, 'conf', '-e', 'my_custom=other');
	is("$rc$err", '0', 'conf -e: a user-defined parameter main.cf has may be edited');
}

# -e on a main.cf without a final newline, and on no main.cf at all.
{
	my $top = conf_dir(main => "myhostname = a.example");
	run_sluice($top, 'conf', '-e', 'mydomain=example');
	is(slurp("$top/conf/main.cf"), "myhostname = a.example\nmydomain = example\n",
	   'conf -e: appends after a last line without newline');
	$top = conf_dir(main => undef);
	my ($rc) = run_sluice($top, 'conf', '-e', 'mynetworks=127.0.0.0/8');
	is($rc, 0, 'conf -e: creates main.cf');
	is(slurp("$top/conf/main.cf"), "mynetworks = 127.0.0.0/8\n", 'conf -e: created main.cf');
}

# ---- the reference ------------------------------------------------------

{
	my $top = conf_dir();
	my ($rc, $out) = run_sluice($top, 'conf', '--docs');
	is($rc, 0, 'conf --docs: exit 0');
	like($out, qr/^\| `smtpd_timeout` \| time \| `300s` \| .+ \|$/m, 'conf --docs: a row');
	like($out, qr/^\| `myhostname` \| string \| the machine's fully qualified host name \|/m,
	     'conf --docs: a computed default reads as a phrase');
	my $doc = slurp("$SluiceConf::ROOT/docs/parameters.md");
	SKIP: {
		skip 'docs/parameters.md is generated for the default install paths', 1
		    unless $out =~ m{`/etc/sluice`} && $out =~ m{`/usr/local/lib/sluice/plugins`};
		is($out, $doc, 'docs/parameters.md is up to date (make it with build/bin/sluice conf --docs)');
	}
}

done_testing();
