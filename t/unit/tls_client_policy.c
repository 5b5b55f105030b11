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

__attribute__((weak)) int plugins_register_params(const char *dir, char **names,
						  struct diag *d, const char *file,
						  int line)
{
	return 0;
}

static char tmp[256];

static void write_file(const char *name, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s", tmp, name);
	if ((fp = fopen(path, "w")) == NULL || fputs(text, fp) < 0
	    || fclose(fp) != 0) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
}

static struct sluice_config *load(void)
{
	char main_cf[1024];
	struct sluice_config *sc;
	struct diag d;

	snprintf(main_cf, sizeof main_cf,
		 "myhostname = mx.example.com\n"
		 "queue_directory = spool\n"
		 "smtp_tls_security_level = may\n"
		 "smtp_tls_policy_maps = texthash:%s/tls_policy\n", tmp);
	write_file("main.cf", main_cf);
	write_file("master.cf", "smtp inet - - - - - smtpd\n");
	write_file("tls_policy",
		   "[mx.example.com]:587  encrypt protocols=!SSLv2:!SSLv3\n"
		   "example.com           secure match=nexthop:.example.net\n"
		   ".example.com          verify ciphers=high exclude=3DES:RC4\n"
		   "dane.example          dane\n"
		   "bogus.example         sometimes\n"
		   "attr.example          encrypt colour=blue\n"
		   "pinned.example        fingerprint match=AA:BB|CC:DD\n");
	diag_init(&d);
	if ((sc = config_load(tmp, &d)) == NULL || d.n != 0) {
		for (int i = 0; i < d.n; i++)
			printf("#   diag: %s\n", d.v[i].text);
		printf("Bail out! configuration does not load cleanly\n");
		exit(1);
	}
	diag_free(&d);
	return sc;
}

int main(void)
{
	struct sluice_config *sc;
	const struct config *c;
	struct tlsc_policy p;

	snprintf(tmp, sizeof tmp, "/tmp/tls-client-policy-XXXXXX");
	if (mkdtemp(tmp) == NULL) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
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
	for (const char *const *f = (const char *const[]){ "main.cf",
		"master.cf", "tls_policy", NULL }; *f; f++) {
		char path[512];

		snprintf(path, sizeof path, "%s/%s", tmp, *f);
		unlink(path);
	}
	rmdir(tmp);
	return tap_done();
}
