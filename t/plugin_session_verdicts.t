#!/usr/bin/perl
# plugin_session_verdicts.t - DISCARD or HOLD decided by a filter at
# connect or HELO applies to every message of the session (as a milter's
# does), not only to the transaction that happened to be open.  The
# filter is a real plugin built here, whose verdict per stage comes from
# its main.cf parameters.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use SluiceTest;

my $pdir = File::Temp::tempdir('sluice-plug-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $pdir;
open my $fh, '>', "$pdir/stageverdict.c" or die $!;
print $fh <<'C';
#include <string.h>
#include "sluice_plugin.h"

static const struct sluice_param params[] = {
	{ "stageverdict_connect", SLUICE_PARAM_STRING, "dunno", "verdict at connect" },
	{ "stageverdict_helo", SLUICE_PARAM_STRING, "dunno", "verdict at HELO" },
	{ NULL, 0, NULL, NULL }
};

static int verdict_of(sluice_txn *t, const char *param)
{
	const char *v = sluice_txn_conf_str(t, param);

	if (v && strcmp(v, "discard") == 0)
		return SLUICE_DISCARD;
	if (v && strcmp(v, "hold") == 0) {
		sluice_reply(t, 0, NULL, "held by stageverdict");
		return SLUICE_HOLD;
	}
	return SLUICE_DUNNO;
}

static int on_connect(sluice_txn *t, void *pd) { return verdict_of(t, "stageverdict_connect"); }
static int on_helo(sluice_txn *t, void *pd) { return verdict_of(t, "stageverdict_helo"); }

SLUICE_PLUGIN_DECLARE = {
	.abi = SLUICE_PLUGIN_ABI, .name = "stageverdict", .version = "1",
	.description = "session-wide verdicts for tests", .params = params,
	.connect = on_connect, .helo = on_helo,
};
C
close $fh;
my $out = `cc -shared -fPIC -I$SluiceTest::ROOT/plugins -o $pdir/stageverdict.so $pdir/stageverdict.c 2>&1`;
is($?, 0, 'the test plugin builds') or diag($out);
chmod 0755, "$pdir/stageverdict.so";

sub send_two {
	my ($t) = @_;
	my $c = $t->smtp;
	$c->read_reply;
	$c->cmd('EHLO client.example.test');
	my @ids;
	for my $n (1, 2) {
		$c->cmd('MAIL FROM:<a@example.org>');
		$c->cmd('RCPT TO:<b@example.net>');
		$c->cmd('DATA');
		my ($code, $text) = $c->cmd("Subject: $n\r\n\r\nbody $n\r\n.");
		push @ids, $text =~ /queued as (\S+)/ ? $1 : $text;
	}
	$c->cmd('QUIT');
	return @ids;
}

{
	my $t = SluiceTest->new(main => { sluice_plugins => 'stageverdict',
					  plugin_directory => $pdir,
					  stageverdict_connect => 'discard' });
	my @ids = send_two($t);
	like($_, qr/^[0-9A-F]+$/, "message answered 250 queued as $_") for @ids;
	is(scalar(my @q = $t->queue_files('incoming')), 0,
	   'DISCARD at connect: neither message of the session is queued');
	ok($t->wait_log(qr/\Q$ids[1]\E: discard: END-OF-MESSAGE from /, 10),
	   'the second message is logged as discarded too');
}

{
	my $t = SluiceTest->new(main => { sluice_plugins => 'stageverdict',
					  plugin_directory => $pdir,
					  stageverdict_helo => 'hold' });
	my @ids = send_two($t);
	is_deeply([$t->queue_files('hold')], [sort @ids],
		  'HOLD at HELO: both messages of the session wait in hold/');
	ok($t->wait_log(qr/\Q$ids[1]\E: hold: END-OF-MESSAGE from .*held by stageverdict/, 10),
	   'logged as held, with the reason');
}

done_testing;
