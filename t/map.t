#!/usr/bin/perl
# t/map.t - `sluice map`, like postmap/postalias/postconf -m: list the
# types, query tables (exit 0 found, 1 not found, 2 trouble), build
# hash: tables (also from aliases(5) syntax), a rebuilt table picked up by
# a reader that keeps running, a reader never seeing half a table while
# builds replace it, and tables with errors refused with file:line.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use IPC::Open2;
use POSIX ();
use Test::More;
use SluiceConf qw(conf_dir run_sluice slurp spew $SLUICE);

BAIL_OUT("$SLUICE is not built") unless -x $SLUICE;

my $top = conf_dir();

# A sparse file of this size, made in no time.
sub truncate_file {
	my ($path, $size) = @_;
	open my $fh, '>', $path or die "$path: $!";
	truncate $fh, $size or die "$path: $!";
	close $fh;
}
sub map_cmd { return run_sluice($top, 'map', @_) }

# ---- list ----------------------------------------------------------------

{
	my ($rc, $out, $err) = map_cmd('list');
	is("$rc|$out|$err", "0|cidr\nhash\ninline\npcre\nregexp\nstatic\ntexthash\nunix\n|", 'map list: the types, one per line');
}

# ---- query ---------------------------------------------------------------

spew("$top/access", <<'EOF');
# access table
Example.COM    REJECT no thanks
10.1.2         OK
spammer@       554 5.7.1 go away,
    really
user: alias style
EOF

{
	my ($rc, $out, $err) = map_cmd('query', 'texthash:access', 'example.com');
	is("$rc|$out|$err", "0|REJECT no thanks\n|", 'query: found, value printed, exit 0');
	($rc, $out, $err) = map_cmd('query', 'texthash:access', 'EXAMPLE.com');
	is("$rc|$out", "0|REJECT no thanks\n", 'query: keys are case-insensitive');
	($rc, $out, $err) = map_cmd('query', 'texthash:access', 'spammer@');
	is($out, "554 5.7.1 go away, really\n", 'query: a continued value');
	($rc, $out, $err) = map_cmd('query', 'texthash:access', 'user');
	is($out, "alias style\n", 'query: "key: value" is read too');
	($rc, $out, $err) = map_cmd('query', 'texthash:access', 'sub.example.com');
	is("$rc|$out|$err", "1||", 'query: not found prints nothing, exit 1 (no access(5) search order)');
	($rc, $out, $err) = map_cmd('query', 'texthash:access', '10.1.2', 'nothere', 'example.com');
	is("$rc|$out", "0|10.1.2\tOK\nexample.com\tREJECT no thanks\n", 'query: several keys, key<TAB>value for those found');
	($rc, $out, $err) = map_cmd('query', 'inline:{ a=1, { b = two words } }', 'B');
	is("$rc|$out", "0|two words\n", 'query: inline:');
	($rc, $out, $err) = map_cmd('query', 'static:{ DUNNO }', 'anything');
	is("$rc|$out", "0|DUNNO\n", 'query: static:');
}

# ---- errors --------------------------------------------------------------

{
	spew("$top/broken", "good value\nnovalue\n  # comment\nalso fine\n\n  stray\n");
	my ($rc, $out, $err) = map_cmd('query', 'texthash:broken', 'good');
	is("$rc|$out|$err", qq{2||broken:2: "novalue" has no value; write "key value", or remove the line\n},
	   'query: a table with errors refuses to load, file:line, exit 2');

	($rc, $out, $err) = map_cmd('build', 'broken');
	is("$rc|$err", qq{1|broken:2: "novalue" has no value; write "key value", or remove the line\n},
	   'build: a source with errors is not built, exit 1');
	ok(!-e "$top/broken.lmdb", 'build: ... and no file is left');
	my @tmp = glob("$top/broken.lmdb.tmp*");
	is(scalar @tmp, 0, 'build: ... not even a temporary one');

	spew("$top/lead", "  stray\nk v\n");
	($rc, $out, $err) = map_cmd('query', 'texthash:lead', 'k');
	is("$rc|$err", "2|lead:1: line starts with whitespace but there is no setting before it to continue; remove the leading whitespace\n",
	   'query: a continuation line with nothing to continue');

	($rc, $out, $err) = map_cmd('query', 'hash:never', 'k');
	is("$rc|$err", qq{2|hash:never: cannot open never.lmdb: No such file or directory; run "sluice map build never"\n},
	   'query: a hash table never built');
	($rc, $out, $err) = map_cmd('query', 'texthash:nothere', 'k');
	is("$rc|$err", "2|texthash:nothere: cannot read nothere: No such file or directory; check the file name and its permissions\n",
	   'query: a missing file');
	($rc, $out, $err) = map_cmd('query', 'btree:/etc/x', 'k');
	is("$rc|$err", qq{2|btree:/etc/x: unknown table type "btree"; "sluice map list" shows the types this build knows\n},
	   'query: an unknown type');
	($rc, $out, $err) = map_cmd('query', 'inline:{ a=1, b }', 'a');
	is("$rc|$err", qq{2|inline:{ a=1, b }: "b" has no "="; write key=value, or {key = value} for a value with spaces\n},
	   'query: inline: syntax error');
	truncate_file("$top/huge", 65 * 1024 * 1024);
	($rc, $out, $err) = map_cmd('query', 'texthash:huge', 'k');
	is("$rc|$err", "2|texthash:huge: huge is larger than 67108864 bytes; split it, or use hash:huge (built by sluice map build)\n",
	   'query: a texthash file over the size limit');
	($rc, $out, $err) = map_cmd('build', 'texthash:access');
	is("$rc|$err", "1|sluice map: texthash:access: only hash: tables are built; texthash: tables are read as they are\n",
	   'build: only hash: is built');
	($rc, $out, $err) = map_cmd('query', 'texthash:access');
	is($rc, 2, 'query without a key: usage, exit 2');
	($rc, $out, $err) = map_cmd('frobnicate');
	is("$rc|$err", qq{2|sluice map: unknown command "frobnicate"; use query, build or list\n}, 'unknown subcommand');
}

# ---- build, rebuild -----------------------------------------------------

{
	spew("$top/dups", "a first\nb x\nA second\n");
	chmod 0640, "$top/dups";
	my ($rc, $out, $err) = map_cmd('build', 'dups');
	is("$rc|$out|$err", qq{0||warning: dups:3: duplicate key "a"; the first entry wins, remove this one or the other\n},
	   'build: a duplicate key is a warning, exit 0');
	($rc, $out) = map_cmd('query', 'hash:dups', 'a');
	is($out, "first\n", 'build: ... and the first entry wins (as postmap)');
	is(sprintf('%o', (stat "$top/dups.lmdb")[2] & 0777), '640', 'build: the table has the source\'s read permissions');

	($rc, $out, $err) = map_cmd('build', 'hash:access');
	is("$rc|$out|$err", '0||', 'build hash:FILE: silent, exit 0');
	($rc, $out) = map_cmd('query', 'hash:access', 'Example.com');
	is("$rc|$out", "0|REJECT no thanks\n", 'query hash: after build');
	spew("$top/access", "example.com OK changed\n");
	($rc, $out) = map_cmd('query', 'hash:access', 'example.com');
	is($out, "REJECT no thanks\n", 'query hash: the source edited but not built: the old table answers');
	($rc, $out, $err) = map_cmd('build', 'access');
	($rc, $out) = map_cmd('query', 'hash:access', 'example.com');
	is("$rc|$out", "0|OK changed\n", 'query hash: after a rebuild, the new table');
	my @tmp = glob("$top/access.lmdb.tmp*");
	is(scalar @tmp, 0, 'build: no temporary file is left behind');
	ok(!-e "$top/access.lmdb-lock", 'build: no LMDB lock file beside the table');
}

# ---- aliases -------------------------------------------------------------

{
	spew("$top/aliases", <<'EOF');
# /etc/aliases
MAILER-DAEMON: postmaster
postmaster:root
root: admin@example.com,
	ops@example.com
"odd name": odd
EOF
	my ($rc, $out, $err) = map_cmd('build', '-a', 'aliases');
	is("$rc|$err", '0|', 'build -a: an aliases file');
	($rc, $out) = map_cmd('query', 'hash:aliases', 'mailer-daemon', 'postmaster', 'root', 'odd name');
	is($out, "mailer-daemon\tpostmaster\npostmaster\troot\nroot\tadmin\@example.com, ops\@example.com\nodd name\todd\n",
	   'build -a: name: value, continuation lines, quoted names');
	spew("$top/aliases", "root admin\n");
	($rc, $out, $err) = map_cmd('build', '-a', 'aliases');
	is("$rc|$err", qq{1|aliases:1: "root admin" has no ":"; write "name: value"\n}, 'build -a: a line without a colon');
	($rc, $out) = map_cmd('query', 'hash:aliases', 'root');
	is($out, "admin\@example.com, ops\@example.com\n", 'build -a: ... the old table stays');
}

# ---- a running reader ----------------------------------------------------

# `sluice map query hash:FILE -` keeps its table open and answers keys
# from stdin, one by one: a rebuilt table must answer without a restart.
$SIG{PIPE} = 'IGNORE';	# a reader that died fails the test, not the script
sub ask {
	my ($in, $out, $key) = @_;
	print $in "$key\n" or return undef;
	my $line = <$out>;
	return $line;
}

{
	spew("$top/live", "key version one\n");
	map_cmd('build', 'live');
	chdir $top or die;
	my $pid = open2(my $out, my $in, 'sh', '-c',
			'exec "$0" map query hash:live - 2>reader.log', $SLUICE);
	$in->autoflush(1);
	is(ask($in, $out, 'key'), "key\tversion one\n", 'running reader: the table as built');
	spew("$top/live", "key version two\n");
	map_cmd('build', 'live');
	is(ask($in, $out, 'KEY'), "KEY\tversion two\n", 'running reader: a rebuilt table answers the next query, no restart');
	like(slurp("$top/reader.log"), qr/sluice\[\d+\]: hash:live: re-read after a change on disk\n\z/,
	     'running reader: ... and logs that it re-read it');

	# Builds replacing the table while the reader asks: every answer is
	# one complete version, never an error or a missing key.
	spew("$top/live", join('', map { "k$_ v0\n" } 1 .. 200));
	map_cmd('build', 'live');
	alarm 120;	# a reader that stopped answering fails, not hangs
	my $builder = fork // die "fork: $!";
	if ($builder == 0) {
		for my $i (1 .. 30) {
			spew("$top/live.src$i", join('', map { "k$_ v$i\n" } 1 .. 200));
			rename "$top/live.src$i", "$top/live";
			run_sluice($top, 'map', 'build', 'live');
		}
		exit 0;
	}
	my ($bad, $asked) = (0, 0);
	while (waitpid($builder, POSIX::WNOHANG()) == 0) {
		my $k = 'k' . (1 + $asked++ % 200);
		my $line = ask($in, $out, $k);
		$bad++ unless defined $line && $line =~ /^\Q$k\E\tv\d+\n\z/;
		last if $bad;
	}
	is($bad, 0, "running reader: $asked queries during 30 rebuilds all found a whole table");
	close $in;
	waitpid $pid, 0;
	is($? >> 8, 0, 'running reader: exits 0 at the end of its input');
	chdir '/';
}

done_testing();
