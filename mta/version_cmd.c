/*
 * version_cmd.c - `sluice version`: the version, the plugin ABI, and which
 * features this build has, with the version of the library behind each.
 *
 * A feature is listed as "yes" only when its code is in this binary; the
 * others say "no" until the work that brings them lands (TLS, SASL, ...),
 * so an admin never trusts a feature that is not there.
 */
#include <stdio.h>

#include <ares.h>
#include <clamav-version.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <lmdb.h>
#include <openssl/crypto.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "commands.h"
#include "plugins/sluice_plugin.h"
#include "version.h"
#include "sasl_server.h"

static void feature(const char *name, const char *state)
{
	printf("  %-22s %s\n", name, state);
}

int cmd_version(const char *config_dir, int argc, char **argv)
{
	char buf[64];

	printf("sluice %s\n", SLUICE_VERSION);
	printf("plugin ABI %d\n", SLUICE_PLUGIN_ABI);
	printf("features:\n");
	snprintf(buf, sizeof buf, "yes (libevent %s)", event_get_version());
	feature("event loop", buf);
	snprintf(buf, sizeof buf, "yes (c-ares %s)", ares_version(NULL));
	feature("async DNS", buf);
	feature("plugins (dlopen)", "yes");
	snprintf(buf, sizeof buf, "yes (%s; server STARTTLS and smtps)",
		 OpenSSL_version(OPENSSL_VERSION));
	feature("TLS (OpenSSL)", buf);
	snprintf(buf, sizeof buf, "yes (%s; server: cyrus, dovecot; client: cyrus)",
		 sasl_library_version());
	feature("SASL (Cyrus)", buf);
	{
		char pv[32] = "";

		pcre2_config(PCRE2_CONFIG_VERSION, pv);
		snprintf(buf, sizeof buf, "yes (PCRE2 %s)", pv);
		feature("PCRE2", buf);
	}
	/* libclamav is linked into the clamav plugin only, never the core:
	 * the version is the one the plugin was built with (a macro). */
	snprintf(buf, sizeof buf, "yes (ClamAV %s; clamav plugin: libclamav or clamd)",
		 CLAMAV_VERSION);
	feature("ClamAV", buf);
	feature("milter", "yes (client, protocol 6, down to 2)");
	/* hiredis is linked into the greylist plugin (its Redis store), not
	 * the core: the version is the one the plugins were built with. */
	snprintf(buf, sizeof buf, "yes (hiredis %d.%d.%d; greylist store)",
		 HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
	feature("Redis (hiredis)", buf);
	snprintf(buf, sizeof buf, "yes (%s)", mdb_version(NULL, NULL, NULL));
	feature("LMDB", buf);
	return 0;
}
