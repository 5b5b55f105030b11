/*
 * t/unit/map_access.c - Postfix's access(5) search order (map_access.c),
 * tested (TAP).
 *
 * Each case loads main.cf from a fresh temporary directory (config_load,
 * as the daemon does), opens texthash/inline tables and checks both the
 * answer and the exact keys tried, in order, against access(5) and
 * smtpd_check.c: host names and their parents with
 * parent_domain_matches_subdomains on and off, numeric names without
 * parents, IPv4 and IPv6 prefixes, mail addresses with and without
 * recipient_delimiter (MAILER-DAEMON, owner-*, several delimiters), the null
 * sender, unqualified addresses, case folding, first key wins (DUNNO
 * stops the search), key order before table order across a table list,
 * and - when a pattern table type (regexp, pcre, cidr) is built in -
 * pattern tables seeing the full key only.  Then the plugin API over it
 * (plugin_api_maps.c): one handle per spec, lookups, the access order
 * without a session, errors.
 */
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "map.h"
#include "map_access.h"
#include "sluice_plugin.h"
#include "tap.h"
#include "config_fixture.h"

static const char *base_cf =
	"myhostname = mx.example.com\n"
	"mydomain = example.com\n"
	"myorigin = example.com\n"
	"inet_interfaces = 127.0.0.1\n"
	"queue_directory = spool\n";

static struct sluice_config *load(const char *extra)
{
	char text[4096];

	snprintf(text, sizeof text, "%s%s", base_cf, extra);
	return load_config(text, NULL, true);
}

/* A texthash table with this text, as a spec. */
static const char *table(const char *name, const char *text)
{
	static char spec[4][512];
	static int next;
	char *s = spec[next++ % 4];

	write_file(name, text);
	snprintf(s, 512, "texthash:%s/%s", tmp, name);
	return s;
}

static struct map_list *open_list(const char *spec)
{
	char err[512] = "";
	struct map_list *ml = map_list_open(spec, err, sizeof err);

	if (ml == NULL) {
		printf("Bail out! cannot open %s: %s\n", spec, err);
		exit(1);
	}
	return ml;
}

/* ---- the trace: "key key key" ------------------------------------------- */

static char keys[2048];

static void trace(void *arg, const char *tbl, const char *key,
		  enum map_status st, const char *value)
{
	size_t n = strlen(keys);

	snprintf(keys + n, sizeof keys - n, "%s%s", n ? " " : "", key);
}

/* Look value up; check the answer ("-" for not found) and the keys tried. */
static void search_is(const struct config *c, struct map_list *ml,
		      enum map_key_kind kind, const char *value,
		      const char *want, const char *want_keys, const char *name)
{
	const char *result = NULL;
	enum map_status st;
	char label[300];

	keys[0] = 0;
	st = map_access_lookup(c, ml, kind, value, &result, trace, NULL);
	is_str(st == MAP_FOUND ? result : st == MAP_NOTFOUND ? "-" : "TEMPFAIL",
	       want, name);
	snprintf(label, sizeof label, "%s: keys tried", name);
	is_str(keys, want_keys, label);
}

/* ---- cases --------------------------------------------------------------- */

static void host_names(void)
{
	struct sluice_config *sc = load("");
	struct map_list *ml = open_list(table("hosts", "nothing here\n"));
	const struct config *c = sc->main;

	search_is(c, ml, MAP_KEY_HOSTNAME, "a.b.example.com", "-",
		  "a.b.example.com b.example.com example.com com",
		  "host name and parents (parent style, Postfix's default)");
	search_is(c, ml, MAP_KEY_DOMAIN, "example.com", "-", "example.com com",
		  "domain and parents");
	search_is(c, ml, MAP_KEY_HOSTNAME, "x.", "-", "x.",
		  "helo name with a trailing dot: no empty key");
	search_is(c, ml, MAP_KEY_HOSTNAME, "192.0.2.1", "-", "192.0.2.1",
		  "numeric host name: no parent domains");
	search_is(c, ml, MAP_KEY_HOSTNAME, "unknown", "-", "unknown",
		  "the client name \"unknown\" is a key like any other");
	map_list_free(ml);
	config_free(sc);

	sc = load("parent_domain_matches_subdomains = relay_domains\n");
	ml = open_list(table("hosts2", "nothing here\n"));
	search_is(sc->main, ml, MAP_KEY_HOSTNAME, "a.b.example.com", "-",
		  "a.b.example.com .b.example.com .example.com .com",
		  "host name and .parents (smtpd_access_maps not listed)");
	search_is(sc->main, ml, MAP_KEY_HOSTNAME, "x.", "-", "x. .",
		  "helo name with a trailing dot, dot style");
	map_list_free(ml);
	config_free(sc);
}

static void parents_match(void)
{
	struct sluice_config *sc = load("");
	struct map_list *ml = open_list(table("dom",
		"example.com\tREJECT parent\n"
		".example.org\tREJECT dot parent\n"
		"ok.example.com\tDUNNO\n"
		"COM\tOK\n"));
	const struct config *c = sc->main;

	search_is(c, ml, MAP_KEY_HOSTNAME, "mail.example.com", "REJECT parent",
		  "mail.example.com example.com", "parent entry matches a subdomain");
	search_is(c, ml, MAP_KEY_HOSTNAME, "ok.example.com", "DUNNO",
		  "ok.example.com", "DUNNO at a longer key stops the search");
	search_is(c, ml, MAP_KEY_HOSTNAME, "mail.example.org", "-",
		  "mail.example.org example.org org",
		  "\".example.org\" is not tried in parent style");
	search_is(c, ml, MAP_KEY_HOSTNAME, "Mail.Example.COM", "REJECT parent",
		  "Mail.Example.COM Example.COM", "keys are folded by the table");
	map_list_free(ml);
	config_free(sc);

	sc = load("parent_domain_matches_subdomains =\n");
	ml = open_list(table("dom2",
		"example.com\tREJECT exact\n"
		".example.com\tREJECT subdomain\n"));
	search_is(sc->main, ml, MAP_KEY_HOSTNAME, "example.com", "REJECT exact",
		  "example.com", "dot style: the domain itself");
	search_is(sc->main, ml, MAP_KEY_HOSTNAME, "a.example.com",
		  "REJECT subdomain", "a.example.com .example.com",
		  "dot style: \".example.com\" matches a subdomain");
	map_list_free(ml);
	config_free(sc);
}

static void addresses(void)
{
	struct sluice_config *sc = load("");
	struct map_list *ml = open_list(table("addrs",
		"192.0.2\tREJECT net\n"
		"2001:db8\tREJECT v6 net\n"
		"10.1.2.3\tOK\n"));
	const struct config *c = sc->main;

	search_is(c, ml, MAP_KEY_ADDR, "198.51.100.7", "-",
		  "198.51.100.7 198.51.100 198.51 198", "IPv4 octet prefixes");
	search_is(c, ml, MAP_KEY_ADDR, "192.0.2.44", "REJECT net",
		  "192.0.2.44 192.0.2", "IPv4 network entry");
	search_is(c, ml, MAP_KEY_ADDR, "10.1.2.3", "OK", "10.1.2.3", "IPv4 host entry");
	search_is(c, ml, MAP_KEY_ADDR, "2001:db9::1", "-",
		  "2001:db9::1 2001:db9: 2001:db9 2001",
		  "IPv6 prefixes at each ':' as written (Postfix)");
	search_is(c, ml, MAP_KEY_ADDR, "2001:db8:0:1::25", "REJECT v6 net",
		  "2001:db8:0:1::25 2001:db8:0:1: 2001:db8:0:1 2001:db8:0 2001:db8",
		  "IPv6 network entry");
	map_list_free(ml);
	config_free(sc);
}

static void mail_addresses(void)
{
	struct sluice_config *sc = load("recipient_delimiter = +\n");
	struct map_list *ml = open_list(table("mail", "nothing here\n"));
	const struct config *c = sc->main;

	search_is(c, ml, MAP_KEY_ADDRESS, "user+foo@sub.example.com", "-",
		  "user+foo@sub.example.com user@sub.example.com sub.example.com "
		  "example.com com user+foo@ user@",
		  "address with extension: access(5) order");
	search_is(c, ml, MAP_KEY_ADDRESS, "user@example.net", "-",
		  "user@example.net example.net net user@",
		  "address without extension");
	search_is(c, ml, MAP_KEY_ADDRESS, "+foo@example.net", "-",
		  "+foo@example.net example.net net +foo@",
		  "no split that leaves an empty local part");
	search_is(c, ml, MAP_KEY_ADDRESS, "user", "-",
		  "user@example.com example.com com user@",
		  "unqualified address gets @$myorigin");
	search_is(c, ml, MAP_KEY_ADDRESS, "user@[192.0.2.1]", "-",
		  "user@[192.0.2.1] [192.0.2.1] 0.2.1] 2.1] 1] user@",
		  "address literal domain: parents as Postfix tries them");
	search_is(c, ml, MAP_KEY_ADDRESS, "", "-", "<>",
		  "null sender: smtpd_null_access_lookup_key's default <>");
	map_list_free(ml);
	config_free(sc);

	sc = load("recipient_delimiter = +-\n");
	ml = open_list(table("mail2",
		"user@\tREJECT bare local part\n"
		"owner-list@example.com\tOK\n"));
	search_is(sc->main, ml, MAP_KEY_ADDRESS, "user-x+y@example.org",
		  "REJECT bare local part",
		  "user-x+y@example.org user@example.org example.org org "
		  "user-x+y@ user@",
		  "several delimiters: cut at the first; \"user@\" last");
	search_is(sc->main, ml, MAP_KEY_ADDRESS, "MAILER-DAEMON@example.org", "-",
		  "MAILER-DAEMON@example.org example.org org MAILER-DAEMON@",
		  "MAILER-DAEMON is never split");
	search_is(sc->main, ml, MAP_KEY_ADDRESS, "owner-list@example.com", "OK",
		  "owner-list@example.com", "owner-* is not split with '-'");
	search_is(sc->main, ml, MAP_KEY_ADDRESS, "Owner-List@EXAMPLE.com", "OK",
		  "Owner-List@EXAMPLE.com", "address keys are folded");
	map_list_free(ml);
	config_free(sc);

	sc = load("");
	ml = open_list(table("mail3", "user+foo@example.com\tREJECT exact\n"
			     "user@example.com\tREJECT bare\n"));
	search_is(sc->main, ml, MAP_KEY_ADDRESS, "user+foo@example.com",
		  "REJECT exact", "user+foo@example.com",
		  "no recipient_delimiter: the full address");
	search_is(sc->main, ml, MAP_KEY_ADDRESS, "user+bar@example.com", "-",
		  "user+bar@example.com example.com com user+bar@",
		  "no recipient_delimiter: no address without extension");
	map_list_free(ml);
	config_free(sc);
}

static void null_key(void)
{
	struct sluice_config *sc = load("smtpd_null_access_lookup_key = <nobody>\n");
	struct map_list *ml = open_list("inline:{ {<nobody> = REJECT null sender} }");
	search_is(sc->main, ml, MAP_KEY_ADDRESS, "", "REJECT null sender",
		  "<nobody>", "null sender: smtpd_null_access_lookup_key");
	map_list_free(ml);
	config_free(sc);
}

static void table_lists(void)
{
	struct sluice_config *sc = load("");
	char spec[1200];
	struct map_list *ml;

	snprintf(spec, sizeof spec, "%s, %s",
		 table("first", "example.com\tREJECT from the first table\n"),
		 table("second", "a.example.com\tREJECT from the second table\n"
		       "example.com\tOK\n"));
	ml = open_list(spec);
	search_is(sc->main, ml, MAP_KEY_HOSTNAME, "a.example.com",
		  "REJECT from the second table", "a.example.com",
		  "every table is asked a key before the next key");
	search_is(sc->main, ml, MAP_KEY_HOSTNAME, "b.example.com",
		  "REJECT from the first table", "b.example.com example.com",
		  "the first table that has the key wins");
	map_list_free(ml);
	config_free(sc);
}

/* regexp: the pattern table type every build has (mta/map.c). */
static void pattern_tables(void)
{
	struct sluice_config *sc;
	struct map_list *ml;
	char spec[600];

	sc = load("recipient_delimiter = +\n");
	write_file("pat", "/^example\\.com$/\tREJECT domain\n"
		   "/^user@$/\tREJECT local part\n"
		   "/^192\\.0\\.2$/\tREJECT net\n"
		   "/^spammer@/\tREJECT full\n");
	snprintf(spec, sizeof spec, "regexp:%s/pat", tmp);
	ml = open_list(spec);
	search_is(sc->main, ml, MAP_KEY_ADDRESS, "user+x@example.com", "-",
		  "user+x@example.com user@example.com example.com com user+x@ user@",
		  "pattern table: partial keys are not asked");
	search_is(sc->main, ml, MAP_KEY_ADDR, "192.0.2.1", "-",
		  "192.0.2.1 192.0.2 192.0 192", "pattern table: no address prefixes");
	search_is(sc->main, ml, MAP_KEY_ADDRESS, "spammer@example.com",
		  "REJECT full", "spammer@example.com",
		  "pattern table: the full address is asked");
	map_list_free(ml);
	config_free(sc);
}

static void plugin_api(void)
{
	const char *spec = table("api", "example.com\tREJECT domain\n"
				 "192.0.2\tREJECT net\n");
	char err[512] = "";
	const char *value = NULL;
	sluice_map *m = sluice_map_open(spec, err, sizeof err);

	ok(m != NULL, "sluice_map_open opens %s", spec);
	ok(m != NULL && sluice_map_open(spec, err, sizeof err) == m,
	   "the same spec gives the same handle");
	is_int(sluice_map_lookup(m, "example.com", &value), 1, "exact lookup: found");
	is_str(value, "REJECT domain", "... with its value");
	is_int(sluice_map_lookup(m, "mail.example.com", &value), 0,
	       "exact lookup: no parent domains");
	is_int(sluice_access_lookup(NULL, m, SLUICE_KEY_HOSTNAME,
				    "mail.example.com", &value), 1,
	       "access lookup: a parent domain (Postfix's default style)");
	is_int(sluice_access_lookup(NULL, m, SLUICE_KEY_ADDR, "192.0.2.9", &value),
	       1, "access lookup: an address prefix");
	is_str(value, "REJECT net", "... with its value");
	is_int(sluice_access_lookup(NULL, m, SLUICE_KEY_ADDRESS, "u@example.org",
				    &value), 0, "access lookup: not found");
	ok(sluice_map_open("nosuchtype:/x", err, sizeof err) == NULL && *err,
	   "a bad spec: NULL and a reason (%s)", err);
}

int main(void)
{
	fixture_tmpdir("sluice-map-access");
	host_names();
	parents_match();
	addresses();
	mail_addresses();
	null_key();
	table_lists();
	pattern_tables();
	plugin_api();
	remove_tmp();
	return tap_done();
}
