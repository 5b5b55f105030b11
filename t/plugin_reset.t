#!/usr/bin/perl
# The plugin ABI's reset hook (plugins/sluice_plugin.h): it runs when a
# transaction is over - at the end of every message, RSET and a new MAIL -
# so per-message plugin state never leaks into the next message of the
# same session.  A small test plugin, compiled here against
# plugins/sluice_plugin.h alone, counts the messages it has seen since its
# last reset and rejects a message when that count is not 1.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use SluiceTest;

my $dir = tempdir(CLEANUP => 1);
chmod 0755, $dir;
open my $src, '>', "$dir/counter.c" or die "$dir/counter.c: $!";
print $src <<'EOF';
#include "sluice_plugin.h"

static int since_reset;		/* messages since the last reset */

static int eom(sluice_txn *t, void *pdata)
{
	(void)pdata;
	if (++since_reset != 1) {
		sluice_reply(t, 550, "5.7.1", "%d messages since the last reset",
			     since_reset);
		return SLUICE_REJECT;
	}
	return SLUICE_DUNNO;
}

static void reset(sluice_txn *t, void *pdata)
{
	(void)t;
	(void)pdata;
	since_reset = 0;
	sluice_log(SLUICE_LOG_INFO, "reset");
}

SLUICE_PLUGIN_DECLARE = {
	.abi = SLUICE_PLUGIN_ABI,
	.name = "counter",
	.version = "1",
	.description = "test: counts messages between reset hooks",
	.eom = eom,
	.reset = reset,
};
EOF
close $src;
is(system('cc', '-shared', '-fPIC', '-Wall', '-Werror',
	  "-I$SluiceTest::ROOT/plugins", '-o', "$dir/counter.so", "$dir/counter.c"),
   0, 'the test plugin builds against sluice_plugin.h alone');

my $t = SluiceTest->new(main => { plugin_directory => $dir,
				  sluice_builtin_plugins => '',
				  sluice_plugins => 'counter' });
my $c = $t->smtp;
$c->hello('client.example');
for my $n (1 .. 3) {
	my ($code, $text) = $c->transaction(from => 'alice@example.org',
					    to => ['bob@example.net']);
	is($code, 250, "message $n of one session is accepted: the reset hook ran after the one before")
		or diag($text);
}
my ($code) = $c->cmd('MAIL FROM:<alice@example.org>');
$c->cmd('RSET');
($code, my $text) = $c->transaction(from => 'alice@example.org',
				    to => ['bob@example.net']);
is($code, 250, 'after RSET too') or diag($text);
$c->cmd('QUIT');
my @resets = $t->log_text =~ /counter: reset$/mg;
cmp_ok(scalar @resets, '>=', 4, 'the reset hook logged after each message and the RSET');
done_testing;
