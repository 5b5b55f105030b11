/*
 * t/unit/check_warnings.c - `sluice check`'s warning about a listener that
 * offers AUTH without requiring TLS first.
 *
 * The AUTH and TLS parameters (smtpd_sasl_auth_enable, smtpd_tls_auth_only,
 * smtpd_tls_security_level, smtpd_tls_wrappermode) belong to the TLS/AUTH
 * work and may not be registered in this build; check_warnings looks them
 * up by name.  This test registers them itself (as a plugin would), so it
 * checks the warning whether or not the core has them yet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_warnings.h"
#include "config.h"
#include "diag.h"
#include "tap.h"
#include "config_fixture.h"

/* Register name unless the core has it already. */
static void need_param(const char *name, enum param_type type,
		       const char *dflt)
{
	struct param_def def = { name, type, dflt, "test", "test" };

	if (param_find(name) == NULL && param_register(&def) < 0) {
		printf("Bail out! cannot register %s\n", name);
		exit(2);
	}
}

/* The warnings for main.cf + master.cf, one per line. */
static char *warnings(const char *main_cf, const char *master_cf)
{
	static char out[8192];
	struct sluice_config *sc;
	struct diag d;
	size_t n = 0;

	write_file("main.cf", main_cf);
	write_file("master.cf", master_cf);
	diag_init(&d);
	out[0] = 0;
	if ((sc = config_load_flags(tmp, &d, 0)) == NULL) {
		for (int i = 0; i < d.n; i++)
			printf("#   load: %s\n", d.v[i].text);
		diag_free(&d);
		return strcpy(out, "(does not load)");
	}
	check_warnings(&d, sc, "main.cf");
	for (int i = 0; i < d.n && n < sizeof out; i++)
		n += (size_t)snprintf(out + n, sizeof out - n, "%s\n", d.v[i].text);
	config_free(sc);
	diag_free(&d);
	return out;
}

/* Replace every TMP in text with the directory. */
static const char *at_tmp(const char *text)
{
	static char out[8192];
	size_t n = 0;

	for (const char *p = text; *p && n + strlen(tmp) + 1 < sizeof out; p++)
		if (strncmp(p, "TMP", 3) == 0) {
			n += (size_t)snprintf(out + n, sizeof out - n, "%s", tmp);
			p += 2;
		} else {
			out[n++] = *p;
		}
	out[n] = 0;
	return out;
}

int main(void)
{
	const char *m = "queue_directory = /tmp\nmail_owner = nobody\n";
	char main_cf[1024];

	fixture_tmpdir("sluice-check-warnings");
	need_param("smtpd_sasl_auth_enable", PT_BOOL, "no");
	need_param("smtpd_tls_auth_only", PT_BOOL, "no");
	need_param("smtpd_tls_security_level", PT_STRING, "");
	need_param("smtpd_tls_wrappermode", PT_BOOL, "no");

	is_str(warnings(m, "127.0.0.1:2525 inet - - - - - smtpd\n"), "",
	       "no AUTH: no warning");

	is_str(warnings(m, "127.0.0.1:2525 inet - - - - - smtpd\n"
			"127.0.0.1:2587 inet - - - - - smtpd\n"
			"  -o smtpd_sasl_auth_enable=yes\n"),
	       at_tmp("TMP/master.cf:2: listener 127.0.0.1:2587 offers AUTH "
		      "(smtpd_sasl_auth_enable = yes, TMP/master.cf:2) without "
		      "requiring TLS first, so passwords can cross the network in "
		      "clear text; add -o smtpd_tls_auth_only=yes (or -o "
		      "smtpd_tls_security_level=encrypt) to it\n"),
	       "AUTH on a listener without TLS");

	snprintf(main_cf, sizeof main_cf, "%ssmtpd_sasl_auth_enable = yes\n", m);
	is_str(warnings(main_cf, "127.0.0.1:2525 inet - - - - - smtpd\n"
			"127.0.0.1:2587 inet - - - - - smtpd\n"
			"  -o smtpd_tls_auth_only=yes\n"
			"127.0.0.1:2465 inet - - - - - smtpd\n"
			"  -o smtpd_tls_wrappermode=yes\n"
			"127.0.0.1:2588 inet - - - - - smtpd\n"
			"  -o smtpd_tls_security_level=encrypt\n"),
	       at_tmp("TMP/master.cf:1: listener 127.0.0.1:2525 offers AUTH "
		      "(smtpd_sasl_auth_enable = yes, TMP/main.cf:3) without "
		      "requiring TLS first, so passwords can cross the network in "
		      "clear text; add -o smtpd_tls_auth_only=yes (or -o "
		      "smtpd_tls_security_level=encrypt) to it\n"),
	       "AUTH from main.cf: only the listener without TLS required");

	snprintf(main_cf, sizeof main_cf, "%ssmtpd_sasl_auth_enable = yes\n"
		 "smtpd_tls_auth_only = yes\n", m);
	is_str(warnings(main_cf, "127.0.0.1:2525 inet - - - - - smtpd\n"), "",
	       "smtpd_tls_auth_only in main.cf");

	remove_tmp();
	return tap_done();
}
