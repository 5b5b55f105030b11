/*
 * t/unit/route.c - unit tests of address rewriting and routing (TAP):
 * canonical form and canonical maps (rewrite.c), virtual alias expansion
 * (virtual_alias.c), address classes, relayhost and transport_maps
 * (resolve.c), and the search orders behind them (route_lookup.c).
 *
 * Each case writes main.cf, master.cf and texthash tables into a fresh
 * temporary directory and loads them with config_load(), as the daemon
 * does.  Warnings go to a log file the tests read back.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "resolve.h"
#include "rewrite.h"
#include "tap.h"
#include "config_fixture.h"

/* ---- fixtures ------------------------------------------------------------ */

static char logpath[300];
static int generation;          /* a fresh table directory per config */

/* A texthash table of this generation: "texthash:TMP/gN-name". */
static const char *table(const char *name, const char *text)
{
	static char spec[8][512];
	static int next;
	char file[128];
	char *s = spec[next++ % 8];

	snprintf(file, sizeof file, "g%d-%s", generation, name);
	write_file(file, text);
	snprintf(s, 512, "texthash:%s/%s", tmp, file);
	return s;
}

static const char *base_cf =
	"myhostname = mx.example.com\n"
	"mydomain = example.com\n"
	"myorigin = example.com\n"
	"mydestination = $myhostname, localhost.$mydomain, localhost, example.com\n"
	"inet_interfaces = 127.0.0.1\n"
	"queue_directory = spool\n";

/* Is "name =" set at the start of a line of text? */
static bool sets(const char *text, const char *name, size_t len)
{
	for (const char *p = text; *p; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] != 0))
		if (strncmp(p, name, len) == 0 && p[len] == ' ')
			return true;
	return false;
}

/* base's lines that extra does not set again, then extra. */
static void merge_settings(char *out, size_t size, const char *base,
			   const char *extra)
{
	*out = 0;
	for (const char *p = base; *p;) {
		size_t n = strcspn(p, "\n"), name = strcspn(p, " ");

		n += p[n] != 0;
		if (!sets(extra, p, name) && n < size - strlen(out))
			strncat(out, p, n);
		p += n;
	}
	strncat(out, extra, size - strlen(out) - 1);
}

/* Load base_cf plus `extra` (printf-style: table specs go in). */
static struct sluice_config *load(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static struct sluice_config *load(const char *fmt, ...)
{
	char extra[4096], text[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(extra, sizeof extra, fmt, ap);
	va_end(ap);
	merge_settings(text, sizeof text, base_cf, extra);
	route_tables_release();
	return load_config(text, NULL, true);
}

static void done(struct sluice_config *sc)
{
	config_free(sc);
	generation++;
}

static bool log_has(const char *text)
{
	char buf[65536];
	FILE *fp = fopen(logpath, "r");
	size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;

	if (fp)
		fclose(fp);
	buf[n] = 0;
	return strstr(buf, text) != NULL;
}

/* ---- helpers --------------------------------------------------------------- */

/* "STATUS CLASS TRANSPORT:NEXTHOP ADDR" */
static void route_is(const struct config *c, const char *addr,
		     const char *want)
{
	struct route r;
	char got[3000], name[600];
	int rc = resolve_route(c, addr, &r, NULL, 0);

	snprintf(got, sizeof got, "%d %s %s:%s %s", rc, addr_class_name(r.cls),
		 r.transport, r.nexthop, r.addr);
	snprintf(name, sizeof name, "route %s", addr);
	is_str(got, want, name);
}

/* The dsn and reason of an undeliverable route. */
static void route_fails(const struct config *c, const char *addr,
			const char *want)
{
	struct route r;
	char why[600], got[700], name[600];
	int rc = resolve_route(c, addr, &r, why, sizeof why);

	snprintf(got, sizeof got, "%d %s", rc, rc ? why : "(delivered)");
	snprintf(name, sizeof name, "route %s fails", addr);
	is_str(got, want, name);
}

static void recipient_is(const struct config *c, const char *addr,
			 const char *want)
{
	char *out = NULL, why[300] = "", name[600];
	int rc = rewrite_recipient(c, addr, &out, why, sizeof why);

	snprintf(name, sizeof name, "recipient %s", addr);
	is_str(rc == 0 ? out : why, want, name);
	free(out);
}

static void sender_is(const struct config *c, const char *addr,
		      const char *want)
{
	char *out = NULL, why[300] = "", name[600];
	int rc = rewrite_sender(c, addr, &out, why, sizeof why);

	snprintf(name, sizeof name, "sender <%s>", addr);
	is_str(rc == 0 ? out : why, want, name);
	free(out);
}

/* The expansion joined by ",", or "4 why". */
static void expands_to(const struct config *c, const char *addr,
		       const char *want)
{
	char **list = NULL, why[300], got[4096] = "", name[600];
	int n = 0, rc = virtual_alias_expand(c, addr, &list, &n, why, sizeof why);

	if (rc != 0)
		snprintf(got, sizeof got, "%d %s", rc, why);
	for (int i = 0; rc == 0 && i < n; i++) {
		strncat(got, i ? "," : "", sizeof got - strlen(got) - 1);
		strncat(got, list[i], sizeof got - strlen(got) - 1);
	}
	snprintf(name, sizeof name, "virtual alias %s", addr);
	is_str(got, want, name);
	virtual_alias_free(list);
}

/* ---- cases ------------------------------------------------------------------ */

static void test_canonical_form(void)
{
	struct sluice_config *sc = load("%s", "");
	const struct config *c = sc->main;

	recipient_is(c, "bob", "bob@example.com");
	recipient_is(c, "bob@host", "bob@host");
	recipient_is(c, "bob@example.net.", "bob@example.net");
	recipient_is(c, "bob@[192.0.2.1]", "bob@[192.0.2.1]");
	sender_is(c, "", "");
	sender_is(c, "alice", "alice@example.com");
	done(sc);

	sc = load("append_dot_mydomain = yes\nmyorigin = $myhostname\n"
		  "append_at_myorigin = yes\n");
	c = sc->main;
	recipient_is(c, "bob@host", "bob@host.example.com");
	recipient_is(c, "bob@host.example.net", "bob@host.example.net");
	recipient_is(c, "bob@[192.0.2.1]", "bob@[192.0.2.1]");
	recipient_is(c, "bob", "bob@mx.example.com");
	done(sc);

	sc = load("append_at_myorigin = no\n");
	recipient_is(sc->main, "bob", "bob");
	done(sc);
}

static void test_canonical_maps(void)
{
	const char *rc, *cm, *sc_;
	struct sluice_config *sc;
	const struct config *c;

	rc = table("rcanon", "joe@example.com joseph@example.com\n");
	cm = table("canon",
		   "joseph@example.com jos@example.org\n"
		   "info@example.com office\n"        /* unqualified result */
		   "carol carol.king@example.org\n"    /* bare user: local only */
		   "@example.net @example.org\n"       /* keeps the user */
		   "dave@example.com dave@example.org\n"
		   "dave+list@example.com lists@example.org\n"
		   "loop1@example.com loop2@example.com\n"
		   "loop2@example.com loop1@example.com\n"
		   "self@example.com self@example.com\n"
		   "many@example.com m1@example.org, m2@example.org\n");
	sc_ = table("scanon", "joe@example.com sender-joe@example.com\n");
	sc = load("recipient_canonical_maps = %s\ncanonical_maps = %s\n"
		  "sender_canonical_maps = %s\nrecipient_delimiter = +\n",
		  rc, cm, sc_);
	c = sc->main;
	recipient_is(c, "joe@example.com", "jos@example.org");
	sender_is(c, "joe@example.com", "sender-joe@example.com");
	recipient_is(c, "info@example.com", "office@example.com");
	recipient_is(c, "carol@example.com", "carol.king@example.org");
	recipient_is(c, "carol@mx.example.com", "carol.king@example.org");
	recipient_is(c, "carol@elsewhere.example", "carol@elsewhere.example");
	recipient_is(c, "carol", "carol.king@example.org");
	recipient_is(c, "x@example.net", "x@example.org");
	recipient_is(c, "x+tag@example.net", "x+tag@example.org");
	recipient_is(c, "dave+news@example.com", "dave+news@example.org");
	recipient_is(c, "dave+list@example.com", "lists@example.org");
	recipient_is(c, "self@example.com", "self@example.com");
	recipient_is(c, "many@example.com", "m1@example.org");
	ok(log_has("multi-valued canonical_maps entry for many@example.com"),
	   "a multi-valued canonical entry is logged");
	recipient_is(c, "loop1@example.com",
		     "4.6.0 unreasonable canonical_maps nesting");
	recipient_is(c, "nobody@example.com", "nobody@example.com");
	sender_is(c, "", "");
	done(sc);

	cm = table("canon", "dave@example.com dave@example.org\n");
	sc = load("canonical_maps = %s\nrecipient_delimiter = +\n"
		  "propagate_unmatched_extensions =\n", cm);
	recipient_is(sc->main, "dave+news@example.com", "dave@example.org");
	done(sc);

	sc = load("canonical_maps = texthash:%s/missing\n", tmp);
	recipient_is(sc->main, "a@example.com", "4.3.0 canonical_maps lookup failure");
	done(sc);
}

static void test_virtual_alias(void)
{
	struct sluice_config *sc;
	const struct config *c;
	const char *va = table("virtual",
		"valias.example anything\n"
		"sales@valias.example ann@example.org, bob@example.org\n"
		"team@valias.example sales@valias.example, carol@example.org\n"
		"keep@valias.example keep@valias.example, archive@example.org\n"
		"a@valias.example b@valias.example\n"
		"b@valias.example a@valias.example\n"
		"deep1@valias.example deep2@valias.example\n"
		"deep2@valias.example deep3@valias.example\n"
		"deep3@valias.example deep4@valias.example\n"
		"wide@valias.example w1@example.org, w2@example.org, w3@example.org\n"
		"dup@valias.example ann@example.org, sales@valias.example\n"
		"postmaster postmaster@example.org\n"
		"@catch.example catchall@example.org\n"
		"user@catch.example user@example.org\n"
		"ext@valias.example extuser@example.org\n"
		"nobody@valias.example nobody@valias.example\n");
	sc = load("virtual_alias_maps = %s\nrecipient_delimiter = +\n", va);
	c = sc->main;
	expands_to(c, "sales@valias.example", "ann@example.org,bob@example.org");
	expands_to(c, "team@valias.example",
		   "ann@example.org,carol@example.org,bob@example.org");
	expands_to(c, "keep@valias.example",
		   "keep@valias.example,archive@example.org");
	expands_to(c, "deep1@valias.example", "deep4@valias.example");
	expands_to(c, "dup@valias.example", "ann@example.org,bob@example.org");
	expands_to(c, "a@valias.example", "4 4.6.0 Alias expansion error");
	ok(log_has("virtual_alias_maps loop for a@valias.example"),
	   "the loop is logged");
	expands_to(c, "postmaster@example.com", "postmaster@example.org");
	expands_to(c, "postmaster@elsewhere.example", "postmaster@elsewhere.example");
	expands_to(c, "x@catch.example", "catchall@example.org");
	expands_to(c, "user@catch.example", "user@example.org");
	expands_to(c, "ext+foo@valias.example", "extuser+foo@example.org");
	expands_to(c, "unmapped@example.org", "unmapped@example.org");
	expands_to(c, "SALES@VALIAS.EXAMPLE", "ann@example.org,bob@example.org");
	route_fails(c, "nobody@valias.example",
		    "5 5.1.1 User unknown in virtual alias table");
	route_is(c, "nobody@valias.example", "5 virtual alias error:5.1.1 User "
		 "unknown in virtual alias table nobody@valias.example");
	done(sc);

	va = table("virtual",
		   "wide@x.example w1@example.org, w2@example.org, w3@example.org\n"
		   "deep1@x.example deep2@x.example\n"
		   "deep2@x.example deep3@x.example\n"
		   "deep3@x.example deep4@x.example\n");
	sc = load("virtual_alias_maps = %s\nvirtual_alias_expansion_limit = 2\n"
		  "virtual_alias_recursion_limit = 2\n", va);
	expands_to(sc->main, "wide@x.example", "4 4.6.0 Alias expansion error");
	ok(log_has("unreasonable virtual_alias_maps map expansion size for wide@x.example"),
	   "the expansion limit is logged");
	expands_to(sc->main, "deep1@x.example", "4 4.6.0 Alias expansion error");
	ok(log_has("unreasonable virtual_alias_maps map nesting for deep1@x.example"),
	   "the recursion limit is logged");
	done(sc);
}

static void test_classes(void)
{
	struct sluice_config *sc;
	const struct config *c;
	const char *vm = table("vmailbox",
			       "vmail.example x\n"
			       "bob@vmail.example vmail.example/bob/\n"
			       "evil@vmail.example ../../etc/\n"
			       "@catchall.example catchall/\n");
	const char *va = table("valias", "valias.example x\n");

	sc = load("virtual_mailbox_maps = %s\nvirtual_alias_maps = %s\n"
		  "virtual_mailbox_domains = vmail.example, catchall.example\n"
		  "virtual_mailbox_base = /var/vmail\n"
		  "relay_domains = relay.example, .dotted.example\n", vm, va);
	c = sc->main;
	route_is(c, "bob@example.com", "0 local local:mx.example.com bob@example.com");
	route_is(c, "Bob@MX.Example.COM", "0 local local:mx.example.com Bob@MX.Example.COM");
	route_is(c, "bob@localhost.", "0 local local:mx.example.com bob@localhost");
	route_is(c, "bob", "0 local local:mx.example.com bob@mx.example.com");
	route_is(c, "", "0 local local:mx.example.com MAILER-DAEMON@mx.example.com");
	route_is(c, "bob@[127.0.0.1]", "0 local local:mx.example.com bob@[127.0.0.1]");
	route_is(c, "bob@[192.0.2.9]", "0 default smtp:[192.0.2.9] bob@[192.0.2.9]");
	route_is(c, "x@valias.example", "5 virtual alias error:5.1.1 User unknown "
		 "in virtual alias table x@valias.example");
	route_is(c, "bob@vmail.example", "0 virtual mailbox virtual:vmail.example bob@vmail.example");
	route_is(c, "bob@relay.example", "0 relay relay:relay.example bob@relay.example");
	route_is(c, "bob@sub.relay.example",
		 "0 relay relay:sub.relay.example bob@sub.relay.example");
	route_is(c, "bob@a.dotted.example",
		 "0 relay relay:a.dotted.example bob@a.dotted.example");
	route_is(c, "bob@dotted.example",
		 "0 default smtp:dotted.example bob@dotted.example");
	route_is(c, "bob@Example.NET", "0 default smtp:example.net bob@Example.NET");
	route_fails(c, "bob@bad..example", "5 5.1.3 bad address syntax");
	route_fails(c, "bob@-bad.example", "5 5.1.3 bad address syntax");
	route_fails(c, "bob@192.0.2.1", "5 5.1.3 bad address syntax");
	route_fails(c, "bob@[300.1.1.1]", "5 5.1.3 bad address syntax");
	route_fails(c, "-oQ@example.net", "5 5.1.3 bad address syntax");
	route_is(c, "bob@[IPv6:::1]", "0 default smtp:[ipv6:::1] bob@[IPv6:::1]");

	{
		char path[512], why[300];

		ok(resolve_virtual_mailbox(c, "bob@vmail.example", path,
					   sizeof path, why, sizeof why) == 0 &&
		   strcmp(path, "/var/vmail/vmail.example/bob/") == 0,
		   "virtual mailbox path");
		ok(resolve_virtual_mailbox(c, "x@catchall.example", path,
					   sizeof path, why, sizeof why) == 0 &&
		   strcmp(path, "/var/vmail/catchall/") == 0,
		   "virtual mailbox catch-all");
		ok(resolve_virtual_mailbox(c, "evil@vmail.example", path,
					   sizeof path, why, sizeof why) == 4 &&
		   log_has("unsafe mailbox path \"../../etc/\""),
		   "virtual mailbox path with .. refused");
		ok(resolve_virtual_mailbox(c, "eve@vmail.example", path,
					   sizeof path, why, sizeof why) == 5 &&
		   strcmp(why, "5.1.1 User unknown in virtual mailbox table") == 0,
		   "virtual mailbox unknown user");
	}
	done(sc);

	/* The defaults: virtual_*_domains follow their maps. */
	sc = load("virtual_mailbox_maps = %s\nvirtual_alias_maps = %s\n"
		  "inet_interfaces = loopback-only\n", vm, va);
	c = sc->main;
	route_is(c, "bob@vmail.example", "0 virtual mailbox virtual:vmail.example bob@vmail.example");
	route_is(c, "bob@catchall.example", "0 default smtp:catchall.example bob@catchall.example");
	route_is(c, "x@valias.example", "5 virtual alias error:5.1.1 User unknown "
		 "in virtual alias table x@valias.example");
	route_is(c, "bob@[127.0.0.1]", "0 local local:mx.example.com bob@[127.0.0.1]");
	done(sc);

	/* Tables and negation in domain lists; parent style off. */
	sc = load("relay_domains = !no.relay.example, %s, /nonexistent/relay\n"
		  "parent_domain_matches_subdomains =\n",
		  table("relay", "relay.example ok\n.sub.example ok\n"));
	c = sc->main;
	route_is(c, "a@relay.example", "0 relay relay:relay.example a@relay.example");
	route_is(c, "a@x.sub.example", "0 relay relay:x.sub.example a@x.sub.example");
	route_is(c, "a@no.relay.example", "0 default smtp:no.relay.example a@no.relay.example");
	route_fails(c, "a@other.example", "4 4.3.0 address resolver failure");
	route_is(c, "a@x.relay.example", "4 default retry:4.3.0 address resolver failure a@x.relay.example");
	done(sc);
}

static void test_list_forms(void)
{
	struct sluice_config *sc;
	char path[400];

	snprintf(path, sizeof path, "%s/g%d-relayfile", tmp, generation);
	write_file(path + strlen(tmp) + 1,
		   "# relayed for customers\nfile.example, other.example\n"
		   "  .subs.example # and their subdomains\n");
	sc = load("relay_domains = %s\nvirtual_alias_domains = example.com\n", path);
	route_is(sc->main, "a@file.example", "0 relay relay:file.example a@file.example");
	route_is(sc->main, "a@x.subs.example", "0 relay relay:x.subs.example a@x.subs.example");
	route_is(sc->main, "a@relayed.example", "0 default smtp:relayed.example a@relayed.example");
	route_is(sc->main, "a@example.com", "0 local local:mx.example.com a@example.com");
	ok(log_has("do not list domain example.com in BOTH mydestination and virtual_alias_domains"),
	   "a domain in two classes is logged");
	done(sc);
}

static void test_relayhost(void)
{
	struct sluice_config *sc = load("relayhost = [smarthost.example]:2525\n"
					"relay_domains = relay.example\n");
	const struct config *c = sc->main;

	route_is(c, "a@example.net", "0 default smtp:[smarthost.example]:2525 a@example.net");
	route_is(c, "a@relay.example", "0 relay relay:[smarthost.example]:2525 a@relay.example");
	route_is(c, "a@example.com", "0 local local:mx.example.com a@example.com");
	done(sc);

	sc = load("relayhost = smarthost.example\nrelay_domains = relay.example\n"
		  "relay_transport = relay:[inbound.example]\n"
		  "default_transport = smtp\nlocal_transport = local\n");
	c = sc->main;
	route_is(c, "a@example.net", "0 default smtp:smarthost.example a@example.net");
	route_is(c, "a@relay.example", "0 relay relay:[inbound.example] a@relay.example");
	route_is(c, "a@example.com", "0 local local:example.com a@example.com");
	done(sc);

	sc = load("default_transport = error:5.7.1 outbound mail is disabled\n");
	route_fails(sc->main, "a@example.net", "5 5.7.1 outbound mail is disabled");
	done(sc);

	sc = load("default_transport = retry\n");
	route_fails(sc->main, "a@example.net", "4 4.0.0 Address is undeliverable");
	done(sc);
}

static void test_transport_maps(void)
{
	const char *tp = table("transport",
		"special@example.net smtp:[192.0.2.1]:2525\n"
		"user@example.org lmtp:unix:/run/dovecot/lmtp\n"
		"example.org smtp:[mx.example.org]\n"
		".example.org relay:[sub-gw.example]\n"
		"local.example local:\n"
		"black.example discard:\n"
		"gone.example error:5.1.2 this domain is gone\n"
		"nodsn.example error:mail is not accepted here\n"
		"bare.example error:\n"
		"later.example retry:4.4.1 try later\n"
		"keep.example :\n"
		"gw.example :[gateway.example]\n"
		"slow.example slow\n"
		"vmail.example lmtp:inet:127.0.0.1:24\n"
		"valias.example smtp:never\n"
		"* smtp:[fallback.example]\n");
	struct sluice_config *sc = load(
		"transport_maps = %s\nrecipient_delimiter = +\n"
		"relay_domains = keep.example, gw.example\n"
		"relay_transport = relay:[relay-gw.example]\n"
		"virtual_mailbox_domains = vmail.example\n"
		"virtual_alias_domains = valias.example\n", tp);
	const struct config *c = sc->main;

	route_is(c, "special@example.net", "0 default smtp:[192.0.2.1]:2525 special@example.net");
	route_is(c, "other@example.net", "0 default smtp:[fallback.example] other@example.net");
	route_is(c, "user+box@example.org", "0 default lmtp:unix:/run/dovecot/lmtp user+box@example.org");
	route_is(c, "someone@example.org", "0 default smtp:[mx.example.org] someone@example.org");
	route_is(c, "someone@a.b.example.org", "0 default relay:[sub-gw.example] someone@a.b.example.org");
	route_is(c, "someone@local.example", "0 default local:local.example someone@local.example");
	route_is(c, "someone@black.example", "0 default discard:black.example someone@black.example");
	route_fails(c, "someone@gone.example", "5 5.1.2 this domain is gone");
	route_fails(c, "someone@nodsn.example", "5 5.0.0 mail is not accepted here");
	route_fails(c, "someone@bare.example", "5 5.0.0 Address is undeliverable");
	route_fails(c, "someone@later.example", "4 4.4.1 try later");
	route_is(c, "someone@keep.example", "0 relay relay:[relay-gw.example] someone@keep.example");
	route_is(c, "someone@gw.example", "0 relay relay:[gateway.example] someone@gw.example");
	route_is(c, "someone@slow.example", "0 default slow:slow.example someone@slow.example");
	route_is(c, "someone@vmail.example", "0 virtual mailbox lmtp:inet:127.0.0.1:24 someone@vmail.example");
	route_is(c, "someone@valias.example", "5 virtual alias error:5.1.1 User unknown "
		 "in virtual alias table someone@valias.example");
	route_is(c, "Special@Example.NET", "0 default smtp:[192.0.2.1]:2525 Special@Example.NET");
	done(sc);

	/* Parent style: "example.org" also matches its subdomains. */
	tp = table("transport", "example.org smtp:[parent.example]\n");
	sc = load("transport_maps = %s\nparent_domain_matches_subdomains = "
		  "relay_domains, transport_maps\n", tp);
	route_is(sc->main, "a@x.y.example.org", "0 default smtp:[parent.example] a@x.y.example.org");
	route_is(sc->main, "a@notexample.org", "0 default smtp:notexample.org a@notexample.org");
	done(sc);

	sc = load("transport_maps = texthash:%s/missing\n", tmp);
	route_fails(sc->main, "a@example.net", "4 4.3.0 address resolver failure");
	ok(log_has("transport_maps: texthash:"), "the failed table is logged");
	done(sc);
}

static void test_chain(void)
{
	const char *cm = table("canon", "old@example.com new@example.com\n");
	const char *va = table("virtual",
			       "new@example.com new@example.com, copy@relay.example\n"
			       "valias.example x\n");
	struct sluice_config *sc = load("canonical_maps = %s\nvirtual_alias_maps = %s\n"
					"relay_domains = relay.example\n", cm, va);
	struct route *r = NULL;
	char why[300];
	int n = 0;

	ok(route_recipient(sc->main, "old", &r, &n, why, sizeof why) == 0 && n == 2,
	   "route_recipient: two routes");
	if (n == 2) {
		is_str(r[0].addr, "new@example.com", "route 1 address");
		is_str(r[0].transport, "local", "route 1 transport");
		is_str(r[1].addr, "copy@relay.example", "route 2 address");
		is_str(r[1].transport, "relay", "route 2 transport");
		is_str(r[1].nexthop, "relay.example", "route 2 next hop");
	}
	route_free(r);
	ok(route_recipient(sc->main, "zz@valias.example", &r, &n, why, sizeof why) == 0 &&
	   n == 1 && r[0].status == 5 && strcmp(r[0].dsn, "5.1.1") == 0 &&
	   strcmp(r[0].reason, "User unknown in virtual alias table") == 0,
	   "route_recipient: unknown virtual alias user bounces");
	route_free(r);
	done(sc);
}

int main(void)
{
	static const struct param_def delim = {
		"recipient_delimiter", PT_STRING, "",
		"(registered by the test when local delivery does not)", "t-route"
	};

	fixture_tmpdir("sluice-route-test");
	snprintf(logpath, sizeof logpath, "%s/log", tmp);
	log_open("route-test", LOG_DEST_FILE, logpath);
	if (param_find("recipient_delimiter") == NULL)
		param_register(&delim);

	test_canonical_form();
	test_canonical_maps();
	test_virtual_alias();
	test_classes();
	test_list_forms();
	test_relayhost();
	test_transport_maps();
	test_chain();
	route_tables_release();
	remove_tmp();
	return tap_done();
}
