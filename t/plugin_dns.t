#!/usr/bin/perl
# The plugin ABI's DNS service (sluice_dns_lookup, mta/plugin_api_maps.c)
# as a plugin sees it.  A small test plugin, compiled here against
# plugins/sluice_plugin.h alone, looks up what each RCPT TO names -
# <TYPE@NAME> - and rejects the recipient with what came back, so the
# reply shows the status and the answers of every record type: A, AAAA,
# ADDRS, MX (by preference; null MX as "."; no MX), NS, PTR and TXT, from
# a real DNS server (dnsmasq on a free loopback port, via dns_servers),
# including names that do not exist and a server that refuses.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use SluiceTest qw(wait_until);
use DnsTest qw(start_dnsmasq wire_name);

my $ns_wire = wire_name('ns.nsdom.test');
my $dns_port = start_dnsmasq(
	     '--local=/test/', '--server=/refused.test/#',
	     '--host-record=h.test,192.0.2.1,2001:db8::1',
	     '--mx-host=mx.test,b.mx.test,20', '--mx-host=mx.test,a.mx.test,10',
	     '--dns-rr=nullmx.test,15,000000',
	     "--dns-rr=nsdom.test,2,$ns_wire",
	     '--ptr-record=10.2.0.192.in-addr.arpa,named.test',
	     '--txt-record=txt.test,v=spf1 -all');
ok($dns_port, 'dnsmasq listens');

# ---- the test plugin ---------------------------------------------------------

my $t = SluiceTest->new(start => 0);
my $dir = $t->dir;
$t->write_file('dnsprobe.c', <<'EOF');
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "sluice_plugin.h"

struct probe { sluice_txn *t; sluice_dns *q; };

static void answered(void *arg, int status, char **v, int n)
{
	struct probe *p = arg;
	sluice_txn *t = p->t;
	char list[400] = "";
	size_t len = 0;

	for (int i = 0; i < n && len < sizeof list; i++)
		len += snprintf(list + len, sizeof list - len, " %s", v[i]);
	sluice_set_data(t, NULL);
	free(p);
	sluice_reply(t, 550, "5.0.0", "status %d n %d:%s", status, n, list);
	sluice_resume(t, SLUICE_REJECT);      /* last */
}

static void closed(sluice_txn *t, void *pd)
{
	struct probe *p = sluice_get_data(t);

	if (p) {
		sluice_dns_cancel(p->q);
		free(p);
	}
}

static int rcpt(sluice_txn *t, void *pd)
{
	static const struct { const char *name; int type; } types[] = {
		{ "a", SLUICE_DNS_A }, { "aaaa", SLUICE_DNS_AAAA },
		{ "addrs", SLUICE_DNS_ADDRS }, { "mx", SLUICE_DNS_MX },
		{ "ns", SLUICE_DNS_NS }, { "ptr", SLUICE_DNS_PTR },
		{ "txt", SLUICE_DNS_TXT },
	};
	const char *r = sluice_recipient(t), *at = strchr(r, '@');
	struct probe *p;
	char name[256];
	sluice_dns *q;

	if (at == NULL)
		return SLUICE_DUNNO;
	snprintf(name, sizeof name, "%s", at + 1);
	if (name[0] == '[') {
		memmove(name, name + 1, strlen(name));
		name[strcspn(name, "]")] = 0;
	}
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		if (strncasecmp(r, types[i].name, (size_t)(at - r)) != 0
		    || strlen(types[i].name) != (size_t)(at - r))
			continue;
		if ((p = calloc(1, sizeof *p)) == NULL)
			return SLUICE_DEFER;
		p->t = t;
		sluice_set_data(t, p);
		/* NULL: answered already, and p is gone */
		if ((q = sluice_dns_lookup(name, types[i].type, answered, p)))
			p->q = q;
		return SLUICE_PENDING;
	}
	return SLUICE_DUNNO;
}

SLUICE_PLUGIN_DECLARE = {
	.abi = SLUICE_PLUGIN_ABI,
	.name = "dnsprobe",
	.version = "1",
	.description = "test: DNS answers as replies",
	.rcpt = rcpt,
	.close = closed,
};
EOF
my $cc = system('cc', '-shared', '-fPIC', '-Wall', '-Werror',
		"-I$SluiceTest::ROOT/plugins", '-o', "$dir/dnsprobe.so",
		"$dir/dnsprobe.c");
is($cc, 0, 'the test plugin builds against sluice_plugin.h alone');
$t->set_main(dns_servers => "127.0.0.1:$dns_port", plugin_directory => $dir,
	     mynetworks => '127.0.0.0/8',
	     sluice_builtin_plugins => '', sluice_plugins => 'dnsprobe');
$t->start;

my $c = $t->smtp;
$c->hello('client.test');
$c->cmd('MAIL FROM:<sender@ok.test>');
sub answer_is {
	my ($rcpt, $want, $name) = @_;
	my ($code, $text) = $c->cmd("RCPT TO:<$rcpt>");
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return ref $want ? like($text, $want, $name)
			 : is($text, "550 5.0.0 $want", $name);
}
answer_is('a@h.test', 'status 0 n 1: 192.0.2.1', 'A: IPv4 only');
answer_is('aaaa@h.test', 'status 0 n 1: 2001:db8::1', 'AAAA: IPv6 only');
answer_is('addrs@h.test', qr/^550 5\.0\.0 status 0 n 2: (192\.0\.2\.1 2001:db8::1|2001:db8::1 192\.0\.2\.1)$/,
	  'ADDRS: both families');
answer_is('mx@mx.test', 'status 0 n 2: a.mx.test b.mx.test',
	  'MX: host names by preference, without the trailing dot');
answer_is('mx@nullmx.test', 'status 0 n 1: .', 'MX: a null MX is "."');
answer_is('mx@h.test', 'status 1 n 0:', 'MX: a name without MX records: 1');
answer_is('a@nothing.test', 'status 1 n 0:', 'A: a name that does not exist: 1');
answer_is('ns@nsdom.test', 'status 0 n 1: ns.nsdom.test', 'NS');
answer_is('ptr@[192.0.2.10]', 'status 0 n 1: named.test', 'PTR of an address');
answer_is('txt@txt.test', 'status 0 n 1: v=spf1 -all', 'TXT');
answer_is('mx@refused.test', 'status -1 n 0:', 'a refusing server: -1 (temporary)');
$c->cmd('QUIT');
$t->stop;

done_testing;
