/*
 * t/unit/tls_client_policy.c - the SMTP client's TLS policy lookup
 * (tls_client.c: tlsc_policy_get), as Postfix's smtp_tls_policy_maps
 * answer: the next hop as written, then a bare domain's parent domains;
 * smtp_tls_security_level without an entry; dane as may; attributes
 * (match=, protocols=, ciphers=, exclude=); a bad entry is invalid,
 * never weaker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "tls_client.h"
#include "tap.h"
#include "config_fixture.h"

static struct sluice_config *load(void)
{
	char main_cf[1024];

	snprintf(main_cf, sizeof main_cf,
		 "myhostname = mx.example.com\n"
		 "queue_directory = spool\n"
		 "smtp_tls_security_level = may\n"
		 "smtp_tls_policy_maps = texthash:%s/tls_policy\n", tmp);
	write_file("tls_policy",
		   "[mx.example.com]:587  encrypt protocols=!SSLv2:!SSLv3\n"
		   "example.com           secure match=nexthop:.example.net\n"
		   ".example.com          verify ciphers=high exclude=3DES:RC4\n"
		   "dane.example          dane\n"
		   "bogus.example         sometimes\n"
		   "attr.example          encrypt colour=blue\n"
		   "pinned.example        fingerprint match=AA:BB|CC:DD\n");
	return load_config(main_cf, NULL, true);
}

int main(void)
{
	struct sluice_config *sc;
	const struct config *c;
	struct tlsc_policy p;

	fixture_tmpdir("tls-client-policy");
	sc = load();
	c = sc->main;

	tlsc_policy_get(&p, c, "[mx.example.com]:587", false);
	is_int(p.level, TLS_LEV_ENCRYPT, "[host]:port is looked up as written");
	is_str(p.protocols, "!SSLv2 !SSLv3", "... protocols= with its ':' as spaces");
	tlsc_policy_free(&p);

	tlsc_policy_get(&p, c, "[mx.example.com]", false);
	is_int(p.level, TLS_LEV_MAY, "[host] without the port: no entry, the default level");
	tlsc_policy_get(&p, c, "example.com", true);
	is_int(p.level, TLS_LEV_SECURE, "a domain: its own entry");
	ok(p.match[0] && p.match[1] && !p.match[2]
	   && strcmp(p.match[0], "nexthop") == 0
	   && strcmp(p.match[1], ".example.net") == 0,
	   "... match= split at ':'");
	tlsc_policy_free(&p);

	tlsc_policy_get(&p, c, "a.b.example.com", true);
	is_int(p.level, TLS_LEV_VERIFY, "a subdomain: the parent's .example.com entry");
	is_str(p.grade, "high", "... ciphers=");
	is_str(p.exclude, "3DES RC4", "... exclude=");
	tlsc_policy_free(&p);

	tlsc_policy_get(&p, c, "[a.example.com]", false);
	is_int(p.level, TLS_LEV_MAY, "[host]: no parent domain lookup");
	tlsc_policy_get(&p, c, "other.org", true);
	is_int(p.level, TLS_LEV_MAY, "no entry: smtp_tls_security_level");
	is_str(p.source, "smtp_tls_security_level", "... and says so");

	tlsc_policy_get(&p, c, "dane.example", true);
	is_int(p.level, TLS_LEV_MAY, "dane: may (no DNSSEC here)");
	ok(!p.invalid, "... not invalid");

	tlsc_policy_get(&p, c, "bogus.example", true);
	ok(p.invalid, "an unknown level: invalid");
	ok(strstr(p.why, "unknown TLS security level \"sometimes\"") != NULL,
	   "... saying why: %s", p.why);
	tlsc_policy_get(&p, c, "attr.example", true);
	ok(p.invalid, "an unknown attribute: invalid");

	tlsc_policy_get(&p, c, "pinned.example", true);
	is_int(p.level, TLS_LEV_FINGERPRINT, "fingerprint");
	ok(p.match[0] && p.match[1] && strcmp(p.match[0], "AA:BB") == 0
	   && strcmp(p.match[1], "CC:DD") == 0,
	   "... fingerprints split at '|'");
	tlsc_policy_free(&p);

	is_str(tlsc_level_name(TLS_LEV_SECURE), "secure", "level names");
	tlsc_shutdown();
	config_free(sc);
	remove_tmp();
	return tap_done();
}
