#!/usr/bin/perl
# t/map_patterns.t - the pattern tables cidr:, pcre:, regexp: (also in
# their inline form) and unix:passwd.byname / unix:group.byname, through
# `sluice map query` compared with Postfix's own `postmap -q` on the very
# same tables and keys: the same output and the same exit status.  Then
# what sluice does on purpose differently: a table with an error refuses
# to load, each error said as file:line (unterminated pattern, bad flag,
# bad regex, bad CIDR, host bits set, bad $n, if/endif mismatch); and a
# changed table picked up by a reader that keeps running.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use IPC::Open2;
use Test::More;
use SluiceConf qw(conf_dir run_sluice slurp spew $SLUICE);

BAIL_OUT("$SLUICE is not built") unless -x $SLUICE;

my $top = conf_dir();
my $POSTMAP = '/usr/sbin/postmap';

# Run a command in $top with stdin from a string; (rc, stdout, stderr).
sub run_cmd {
	my ($stdin, @cmd) = @_;
	spew("$top/.stdin", $stdin // '');
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		chdir $top or die "$top: $!";
		open STDIN, '<', "$top/.stdin" or die;
		open STDOUT, '>', "$top/.out" or die;
		open STDERR, '>', "$top/.err" or die;
		exec @cmd;
		exit 127;
	}
	waitpid $pid, 0;
	my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
	return ($rc, slurp("$top/.out") // '', slurp("$top/.err") // '');
}

sub sluice_query {
	my ($spec, $key, $stdin) = @_;
	return run_cmd($stdin, $SLUICE, '-c', 'conf', 'map', 'query', $spec, $key);
}

# ---- the types ------------------------------------------------------------

{
	my ($rc, $out, $err) = run_sluice($top, 'map', 'list');
	is("$rc|$out|$err", "0|cidr\nhash\ninline\npcre\nregexp\nstatic\ntexthash\nunix\n|",
	   'map list: the types of this build, one per line (as postconf -m)');
}

# ---- the tables, and the keys asked of each --------------------------------

spew("$top/client.cidr", <<'EOF');
# Rule order matters: specific entries first.
192.168.1.1             OK
192.168.0.0/16          REJECT
2001:db8::1             OK
2001:db8::/32           REJECT
[2001:db9::]/32         bracketed net
[10.9.9.9]              bracketed host
10.9.9.8/32             dollars $1 $$ are kept in cidr results
if 172.16.0.0/12
172.16.1.0/24           in 172.16.1
if !172.16.2.0/24
172.16.0.0/12           elsewhere in 172.16
endif
endif
::ffff:0:0/96           mapped
!10.0.0.0/8             550 5.7.1 not from ten,
   said on two lines
EOF
my @cidr_keys = qw(192.168.1.1 192.168.200.1 2001:db8::1 2001:0DB8:0::1
	2001:db8:ffff::1 2001:db9::7 10.9.9.9 10.9.9.8 172.16.1.5 172.16.2.5
	172.20.0.1 8.8.8.8 ::ffff:8.8.8.8 ::1 [192.168.1.1] 192.168.001.001
	not-an-address 1.2.3);

spew("$top/checks.pcre", <<'EOF');
# pcre_table(5)
if /\.test$/
/^www\./                        www of test
!/^mail\./                      not mail of test
endif
/^(\w+)@example\.com$/          user $1 at example
/^Admin@/i                      case-sensitive admin
/^postmaster@(.*)$/             ${1} postmaster
!/@/                            no at sign
/^(a)(b)?c@x$/                  got $1-$2-end
/^(\d+)\.(\d+)@swap$/           $2.$1 costs $$5
%^pct@(.*)$%                    percent delimiter $(1)
/^multi@/
    550 5.7.1 this text
    goes on, kept as written
/^d.t@dotall$/                  dot matches newline
/^d.t@nodot$/s                  dot does not match newline
/^ml$/m                         multi-line
/^ x  y @ext $/x                extended
/y@anch/A                       anchored
/^end@dollar$/E                 dollar end only
/^(u+)@lazy/U                   ungreedy $1
/^a\/b@slash$/                  escaped delimiter
|^a\|b@bar$|                    escaped bar is literal
EOF
my @pcre_keys = ('www.host.test', 'mail.host.test', 'smtp.host.test',
	'joe@example.com', 'JOE@EXAMPLE.COM', 'Admin@x', 'admin@x',
	'postmaster@here.org', 'plain', 'ac@x', 'abc@x', '12.34@swap',
	'pct@what', 'multi@x', "d\nt\@dotall", "d\nt\@nodot", "x\nml\nz",
	'xy@ext', 'y@anch', 'zy@anch', "end\@dollar\n", 'end@dollar',
	'uuu@lazy', 'a/b@slash', 'a|b@bar', 'a@bar', 'none@nowhere');

spew("$top/checks.regexp", <<'EOF');
# regexp_table(5): POSIX extended expressions, case-insensitive
if /\.test$/
/^www\./                        www of test
endif
/^([^@]+)@example\.com$/        user $1 at example
/^Admin@/i                      case-sensitive admin
!/@/                            no at sign
/^(a)(b)?c@x$/                  got $1-$2-end
/^a\(b\)c@basic$/x              basic $1
/^ml$/m                         multi-line
/^([^@]+)@(.+)$/
   user=$1
   domain=$2
EOF
my @regexp_keys = ('www.x.test', 'joe@example.com', 'JOE@Example.Com',
	'Admin@y', 'admin@y', 'plain', 'ac@x', 'abc@x', 'abc@basic',
	"x\nml", 'someone@somewhere', 'zzz.test');

my @unix = (['unix:passwd.byname', qw(root ROOT nobody no-such-user-here)],
	    ['unix:group.byname', qw(root mail no-such-group-here)]);

# ---- the same answers as postmap -q ---------------------------------------

{
	BAIL_OUT("no $POSTMAP (the postfix package): run scripts/install-deps") unless -x $POSTMAP;
	my $pfdir = "$top/postfix";
	mkdir $pfdir;
	spew("$pfdir/main.cf", "");	# postmap reads one; defaults are fine
	my ($prc, $types) = run_cmd(undef, '/usr/sbin/postconf', '-c', $pfdir, '-m');
	my %has = map { $_ => 1 } split /\n/, $types;

	my @cases;
	push @cases, map { ["cidr:$top/client.cidr", $_] } @cidr_keys;
	push @cases, map { ["regexp:$top/checks.regexp", $_] } @regexp_keys;
	push @cases, map { ["pcre:$top/checks.pcre", $_] } @pcre_keys if $has{pcre};
	push @cases, map { ["pcre:{ {/^a(.)/ got \$1}, {/^c/ d e} }", $_] } qw(ax c zz)
		if $has{pcre};
	push @cases, map { ['cidr:{ {10.0.0.0/8 ten}, {::/0 six} }', $_] } qw(10.1.2.3 ::1 9.9.9.9);
	for my $u (@unix) {
		my ($spec, @keys) = @$u;
		push @cases, map { [$spec, $_] } @keys;
	}
	diag('postmap has no pcre: type (install postfix-pcre); pcre: compared with fixed answers only')
		unless $has{pcre};

	for my $c (@cases) {
		my ($spec, $key) = @$c;
		my ($rc, $out, $err) = run_cmd(undef, $POSTMAP, '-c', $pfdir, '-q', $key, $spec);
		my ($src, $sout, $serr) = sluice_query($spec, $key);
		(my $shown = $key) =~ s/\n/\\n/g;
		is("$src|$sout", "$rc|$out", "same as postmap -q: $spec \"$shown\" -> "
		   . ($rc == 0 ? "found" : "not found"));
		is($serr, '', "... with nothing on stderr") if $serr ne '';
	}

	# Keys on stdin ("-"): "key<TAB>value" for each key found.
	my $keys = join('', map { "$_\n" } @cidr_keys);
	my ($rc, $out) = run_cmd($keys, $POSTMAP, '-c', $pfdir, '-q', '-', "cidr:$top/client.cidr");
	my ($src, $sout) = run_cmd($keys, $SLUICE, '-c', 'conf', 'map', 'query', "cidr:$top/client.cidr", '-');
	is("$src|$sout", "$rc|$out", 'same as postmap -q - : keys from stdin');
}

# A few answers spelled out, so a postmap-less machine still checks them.
{
	my @fixed = (
		["pcre:$top/checks.pcre", 'JOE@EXAMPLE.COM', "0|user JOE at example\n"],
		["pcre:$top/checks.pcre", 'admin@x', "1|"],
		["pcre:$top/checks.pcre", 'ac@x', "0|got a--end\n"],
		["pcre:$top/checks.pcre", '12.34@swap', "0|34.12 costs \$5\n"],
		["pcre:$top/checks.pcre", 'multi@x', "0|550 5.7.1 this text    goes on, kept as written\n"],
		["pcre:$top/checks.pcre", 'smtp.host.test', "0|not mail of test\n"],
		["pcre:$top/checks.pcre", 'mail.host.test', "0|no at sign\n"],
		["regexp:$top/checks.regexp", 'abc@basic', "0|basic b\n"],
		["cidr:$top/client.cidr", '172.16.2.5', "0|550 5.7.1 not from ten,   said on two lines\n"],
		["cidr:$top/client.cidr", '172.16.9.9', "0|elsewhere in 172.16\n"],
		["cidr:$top/client.cidr", '10.1.1.1', "1|"],
		["cidr:$top/client.cidr", '10.9.9.8', "0|dollars \$1 \$\$ are kept in cidr results\n"],
		["cidr:$top/client.cidr", '::1', "1|"],
		["cidr:$top/client.cidr", '8.8.8.8', "0|550 5.7.1 not from ten,   said on two lines\n"],
		['unix:passwd.byname', 'ROOT', "0|root:x:0:0:" . (getpwnam('root'))[6] . ":" . (getpwnam('root'))[7] . ":" . (getpwnam('root'))[8] . "\n"],
	);
	for my $f (@fixed) {
		my ($spec, $key, $want) = @$f;
		my ($rc, $out) = sluice_query($spec, $key);
		is("$rc|$out", $want, "query $spec \"$key\"");
	}
}

# ---- errors: file:line, and the table refuses to load ----------------------

my @errors = (
	['pcre', "/^ok/ fine\n/^unterminated  result\n",
	 '2: no closing regexp delimiter "/"; end the pattern with "/"'],
	['pcre', "/^ok/ fine\n\n/^x/q result\n",
	 '3: unknown regexp option "q"; the pcre options are i, m, s, x, A, E, U'],
	['regexp', "/^x/s result\n",
	 '1: unknown regexp option "s"; the regexp options are i, m, x'],
	['pcre', "/^(bad/ result\n",
	 '1: error in regex at offset 5: missing closing parenthesis; fix the pattern'],
	['regexp', "/^(bad/ result\n",
	 '1: error in regex "^(bad": Unmatched ( or \\(; fix the pattern'],
	['pcre', "/^(a)b/ \$2\n",
	 '1: out of range replacement index "2": the pattern has 1 group; refer to $1 only'],
	['pcre', "/^ab/ \$1\n",
	 '1: out of range replacement index "1": the pattern has no (group); add one, or write $$ for a "$"'],
	['pcre', "/^(a)b/ a\$b\n",
	 '1: non-numeric replacement index "b"; write $1, ${1} or $(1) for a group, $$ for a "$"'],
	['pcre', "/^(a)b/ x\${1\n",
	 '1: truncated macro reference "${1"; close it with "}"'],
	['pcre', "!/^(a)b/ \$1\n",
	 '1: $number in the result of a negated pattern (a pattern that did not match has no groups); remove it, or write $$ for a "$"'],
	['pcre', "/^nothing/\n",
	 '1: the pattern has no result; write it after the pattern, or remove the line'],
	['pcre', "if /^a/\n/^ab/ x\n",
	 '1: if without a matching endif; add the endif'],
	['regexp', "/^a/ x\nendif\n",
	 '2: endif without a matching if; remove it, or add the if'],
	['pcre', "a^b^ x\n",
	 '1: unrecognized request "a^b^ x"; write /pattern/flags result, if /pattern/ or endif'],
	['cidr', "1.2.3.4/24 x\n",
	 '1: non-null host address bits in "1.2.3.4/24", perhaps you should use "1.2.3.0/24" instead'],
	['cidr', "2001:db8::1/64 x\n",
	 '1: non-null host address bits in "2001:db8::1/64", perhaps you should use "2001:db8::/64" instead'],
	['cidr', "10.0.0.0/33 x\n",
	 '1: bad mask length in "10.0.0.0/33"; the prefix length is at most 32'],
	['cidr', "10.0.0.0/x x\n",
	 '1: bad mask value in "10.0.0.0/x"; write address/prefix with a prefix length in bits'],
	['cidr', "10.0.0 x\n",
	 '1: bad address pattern: "10.0.0"; write an IPv4 or IPv6 address, or address/prefix'],
	['cidr', "  10.0.0.0/8 x\n",
	 '1: line starts with whitespace but there is no rule before it to continue; remove the leading whitespace'],
);
my $n = 0;
for my $e (@errors) {
	my ($type, $text, $want) = @$e;
	my $file = "bad" . ++$n . ".$type";
	spew("$top/$file", $text);
	my ($rc, $out, $err) = sluice_query("$type:$file", 'a');
	(my $shown = $want) =~ s/^\d+: //;
	is("$rc|$out|$err", "2||$file:$want\n", "error refuses the table: $type: $shown");
}

# Several errors: all of them are said, each with its line.
{
	spew("$top/many.cidr", "10.0.0.0/8 ok\n1.2.3.4/24 x\n10.0.0.0/8 fine\n5.5.5.5/ y\n");
	my ($rc, $out, $err) = sluice_query('cidr:many.cidr', '10.1.1.1');
	is("$rc|$out|$err", "2||many.cidr:2: non-null host address bits in \"1.2.3.4/24\", perhaps you should use \"1.2.3.0/24\" instead\n"
	   . "many.cidr:4: bad mask value in \"5.5.5.5/\"; write address/prefix with a prefix length in bits\n",
	   'every error is listed; the good rules do not answer (exit 2)');
}

# pcre's X flag (PCRE1's EXTRA) is ignored with a warning, as Postfix does.
{
	spew("$top/x.pcre", "/^h/X xflag\n");
	my ($rc, $out, $err) = sluice_query('pcre:x.pcre', 'hello');
	is("$rc|$out|$err", "0|xflag\n|warning: x.pcre:1: ignoring obsolete regexp option \"X\" (PCRE2 has no EXTRA); remove it\n",
	   'pcre X flag: a warning, and the table loads');
}

{
	my ($rc, $out, $err) = sluice_query('pcre:no-such-file', 'a');
	is("$rc|$out|$err", "2||pcre:no-such-file: cannot read no-such-file: No such file or directory; check the file name and its permissions\n",
	   'a missing table file');
	($rc, $out, $err) = sluice_query('unix:shadow.byname', 'root');
	is("$rc|$out|$err", "2||unix:shadow.byname: unknown table; write unix:passwd.byname or unix:group.byname\n",
	   'unix: only passwd.byname and group.byname');
	($rc, $out, $err) = sluice_query('pcre:{ {/^a/ b}, {/^c', 'a');
	like("$rc|$err", qr/^2\|pcre:\{ \{\/\^a\/ b\}, \{\/\^c: the "\{" has no closing "\}"/,
	     'inline: a missing brace');
	($rc, $out, $err) = sluice_query('pcre:{ {/^a/ b}, {/^c/} }', 'a');
	is("$rc|$err", "2|pcre:{ {/^a/ b}, {/^c/} }:2: the pattern has no result; write it after the pattern, or remove the line\n",
	   'inline: errors name the rule by its position');
}

# ---- a running reader picks up a changed table ------------------------------

$SIG{PIPE} = 'IGNORE';
sub ask {
	my ($in, $out, $key) = @_;
	print $in "$key\n" or return undef;
	return scalar <$out>;
}

{
	spew("$top/live.pcre", "/^k(.)/ version one \$1\n");
	chdir $top or die;
	my $pid = open2(my $out, my $in, 'sh', '-c',
			'exec "$0" map query pcre:live.pcre - 2>reader.log', $SLUICE);
	$in->autoflush(1);
	is(ask($in, $out, 'kx'), "kx\tversion one x\n", 'running reader: the table as read');
	spew("$top/live.new", "/^k(.)/ version two \$1\n");
	rename "$top/live.new", "$top/live.pcre" or die;
	is(ask($in, $out, 'ky'), "ky\tversion two y\n", 'running reader: a replaced table answers the next query');
	spew("$top/live.new", "/^k(.)/ version three \$2\n");
	rename "$top/live.new", "$top/live.pcre" or die;
	is(ask($in, $out, 'kz'), "kz\tversion two z\n",
	   'running reader: a replaced table with an error: the old version keeps answering');
	close $in;
	waitpid $pid, 0;
	like(slurp("$top/reader.log"),
	     qr/re-read after a change on disk\n.*live\.pcre:1: out of range replacement index "2".*\n.*pcre:live\.pcre: changed on disk but does not load; still answering from the previous version/s,
	     'running reader: ... and says why in its log');
}

done_testing();
