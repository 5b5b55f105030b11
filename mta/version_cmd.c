/*
 * version_cmd.c - `sluice version`: the version and which optional
 * features this build has.  A feature is "yes" when the build found its
 * library (the Makefile defines HAVE_*), and says what it is for.
 */
#include <stdio.h>

#include "commands.h"
#include "version.h"
#include "plugins/sluice_plugin.h"

#ifdef HAVE_OPENSSL
#define F_TLS "yes"
#else
#define F_TLS "no"
#endif
#ifdef HAVE_SASL
#define F_SASL "yes"
#else
#define F_SASL "no"
#endif
#ifdef HAVE_PCRE2
#define F_PCRE2 "yes"
#else
#define F_PCRE2 "no"
#endif
#ifdef HAVE_CLAMAV
#define F_CLAMAV "yes"
#else
#define F_CLAMAV "no"
#endif
#ifdef HAVE_MILTER
#define F_MILTER "yes"
#else
#define F_MILTER "no"
#endif
#ifdef HAVE_HIREDIS
#define F_REDIS "yes"
#else
#define F_REDIS "no"
#endif
#ifdef HAVE_LMDB
#define F_LMDB "yes"
#else
#define F_LMDB "no"
#endif

int cmd_version(const char *config_dir, int argc, char **argv)
{
	(void)config_dir; (void)argc; (void)argv;
	printf("sluice %s (plugin ABI %d)\n", SLUICE_VERSION, SLUICE_PLUGIN_ABI);
	printf("features:\n");
	printf("  TLS (OpenSSL):       %s\n", F_TLS);
	printf("  SASL (Cyrus):        %s\n", F_SASL);
	printf("  PCRE2:               %s\n", F_PCRE2);
	printf("  ClamAV:              %s\n", F_CLAMAV);
	printf("  milter:              %s\n", F_MILTER);
	printf("  Redis (hiredis):     %s\n", F_REDIS);
	printf("  LMDB:                %s\n", F_LMDB);
	return 0;
}
