/*
 * t/unit/smtp_envelope.c - unit tests (TAP) of the SMTP server's address
 * checks (mta/smtp_envelope.c), the edges the SMTP dialogues in
 * t/smtp_commands.t and t/compat/cases/commands.cases do not reach one by
 * one:
 *   - smtp_parse_path(): command syntax (-1) against a bad address
 *     (SMTP_PATH_ADDRESS: "<addr" without '>', no <> when strict), any
 *     word after the path a parameter;
 *   - smtp_address_valid(): specials, quotes, several '@', UTF-8;
 *   - smtp_domain_valid(): Postfix's valid_hostname() and
 *     valid_mailhost_literal();
 *   - smtp_address_resolvable(): the domain Postfix's trivial-rewrite
 *     resolves to, through local domains, percent hacks, bang paths and
 *     quoted local parts;
 *   - smtp_address_internal(): Postfix's internal form, and the external
 *     form kept where a quote or backslash would remain.
 * The configuration is written to a temporary directory and loaded with
 * config_load(), as the daemon does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "smtp_proto.h"
#include "tap.h"
#include "config_fixture.h"

static int parse(const char *line, bool strict, char *addr, size_t alen,
		 int *nparams)
{
	struct esmtp_param params[4];
	char buf[256], *a = NULL;
	int rc;

	snprintf(buf, sizeof buf, "%s", line);
	rc = smtp_parse_path(buf, "TO", strict, &a, params, nparams, 4);
	snprintf(addr, alen, "%s", rc == 0 && a ? a : "");
	return rc;
}

static void test_parse_path(void)
{
	char addr[256];
	int n = 0;

	is_int(parse("TO:<a@example.test>", false, addr, sizeof addr, &n), 0, "TO:<a@x>");
	is_str(addr, "a@example.test", "... the address without <>");
	is_int(parse("TO:<@hop1,@hop2:a@example.test>", false, addr, sizeof addr, &n), 0,
	       "a source route");
	is_str(addr, "a@example.test", "... is stripped");
	is_int(parse("TO:<@example.test>", false, addr, sizeof addr, &n), 0,
	       "an empty local part is no source route");
	is_str(addr, "@example.test", "... and stays");
	is_int(parse("TO:", false, addr, sizeof addr, &n), -1, "nothing after TO: is command syntax");
	is_int(parse("FROM:<a@example.test>", false, addr, sizeof addr, &n), -1,
	       "the wrong keyword is command syntax");
	is_int(parse("TO:<a@example.test", false, addr, sizeof addr, &n), SMTP_PATH_ADDRESS,
	       "no closing '>' is a bad address");
	is_int(parse("TO:<\"a>\"@example.test", false, addr, sizeof addr, &n), SMTP_PATH_ADDRESS,
	       "a '>' in quotes does not close the path");
	is_int(parse("TO:a@example.test", true, addr, sizeof addr, &n), SMTP_PATH_ADDRESS,
	       "strict_rfc821_envelopes: no <> is a bad address");
	is_int(parse("TO:a@example.test", false, addr, sizeof addr, &n), 0,
	       "without strict, no <> is fine");
	is_int(parse("TO:<a@example.test> <b@example.test> X=1", false, addr, sizeof addr, &n), 0,
	       "any word after the path is a parameter");
	is_int(n, 2, "... two of them (the caller refuses what it does not know)");
}

static void test_address_valid(void)
{
	static const struct { const char *addr; bool want; } t[] = {
		{ "user@example.test", true },
		{ "user@remote.example@example.test", true },  /* Postfix parses it */
		{ "@example.test", true },
		{ "\"\"@example.test", true },
		{ "\"a b\"@example.test", true },
		{ "a\\ b@example.test", true },
		{ "a b@example.test", false },
		{ "a,b@example.test", false },
		{ "a;b@example.test", false },
		{ "a<b@example.test", false },
		{ "\"open@example.test", false },
		{ "a\tb@example.test", false },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		ok(smtp_address_valid(t[i].addr, false) == t[i].want, "address syntax: %s %s",
		   t[i].addr, t[i].want ? "passes" : "is refused");
	ok(!smtp_address_valid("j\xc3\xb6rg@example.test", false), "UTF-8 without SMTPUTF8 is refused");
	ok(smtp_address_valid("j\xc3\xb6rg@example.test", true), "... and passes with it");
}

static void test_domain_valid(void)
{
	static const struct { const char *d; bool want; } t[] = {
		{ "example.test", true }, { "bad_name.example", true },
		{ "1.2.3.4.example", true }, { "x", true },
		{ "example..test", false }, { ".example.test", false },
		{ "-bad.example", false }, { "bad-.example", false },
		{ "exa%mple.test", false }, { "exa!mple.test", false },
		{ "127.0.0.1", false }, { "123", false }, { "", false },
		{ "[192.0.2.1]", true }, { "[IPv6:2001:db8::1]", true },
		{ "[ipv6:::1]", true }, { "[999.0.0.1]", false },
		{ "[1.2.3]", false }, { "[example.test]", false },
		{ "[2001:db8::1]", false }, { "[192.0.2.1", false },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		ok(smtp_domain_valid(t[i].d, false) == t[i].want, "domain \"%s\" %s", t[i].d,
		   t[i].want ? "is valid" : "is not");
	ok(!smtp_domain_valid("b\xc3\xbc" "cher.example", false), "a UTF-8 domain without SMTPUTF8");
	ok(smtp_domain_valid("b\xc3\xbc" "cher.example", true), "... with SMTPUTF8");
}

static void test_resolvable(const struct config *c)
{
	static const struct { const char *addr; bool want; } t[] = {
		{ "user@example.test", true },
		{ "user@example.test.", true },
		{ "user", true },
		{ "@example.test", true },
		{ "user@remote.example", true },
		{ "user@remote.example@example.test", true },
		{ "user%remote.example@example.test", true },
		{ "remote.example!user@example.test", true },
		{ "\"user@remote.example\"@example.test", true },
		{ "user@[127.0.0.1]", true },
		{ "user@exa%mple.test", false },
		{ "user@example..test", false },
		{ "user@example.test..", false },
		{ "user@", false },
		{ "user@.", false },
		{ "user@@example.test", false },
		{ "user@127.0.0.1", false },
		{ "user%bad..name@example.test", false },
		{ "user%bad..name@localhost", false },
		{ "bad..name!user@example.test", false },
		{ "bad..name!user", false },
		{ "user%bad..name", false },
		{ "\"user@bad..name\"@example.test", false },
		{ "\"user%bad..name\"@example.test", false },
		{ "user%ok.example%bad..name@example.test", false },
		{ "user%bad..name%mx.example.test@example.test", false },
		/* a remote domain: what is in front of it is not looked at */
		{ "user%bad..name@remote.example", true },
		{ "user@bad..name@remote.example", true },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		ok(smtp_address_resolvable(c, t[i].addr, false) == t[i].want,
		   "resolves to %s: %s", t[i].want ? "a valid domain" : "no valid domain",
		   t[i].addr);
}

static void test_internal(void)
{
	static const struct { const char *addr, *want; bool ok; } t[] = {
		{ "user@example.test", "user@example.test", true },
		{ "\"user\"@example.test", "user@example.test", true },
		{ "\"user@remote\"@example.test", "user@remote@example.test", true },
		{ "\"a b\"@example.test", "a b@example.test", true },
		{ "user\\@remote@example.test", "user@remote@example.test", true },
		{ "nosuch\\user@example.test", "nosuchuser@example.test", true },
		{ "\"\"@example.test", "@example.test", true },
		{ "user", "user", true },
		{ "\"user@remote\"", "user@remote", true },
		/* a quote or backslash would remain: the external form stands */
		{ "\"a\\\"b\"@remote.example", NULL, false },
		{ "\"a\\\\b\"@remote.example", NULL, false },
	};
	char buf[256];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		bool got = smtp_address_internal(t[i].addr, buf, sizeof buf);

		ok(got == t[i].ok, "internal form of %s %s", t[i].addr,
		   t[i].ok ? "exists" : "is not used");
		if (t[i].ok)
			is_str(buf, t[i].want, "... is the unquoted form");
	}
	ok(!smtp_address_internal("user@example.test", buf, 5), "a buffer too small: not used");
}

int main(void)
{
	struct sluice_config *sc;

	fixture_tmpdir("sluice-envelope");
	sc = load_config("myhostname = mx.example.test\n"
			 "mydestination = $myhostname, localhost, example.test\n"
			 "inet_interfaces = 127.0.0.1\n"
			 "local_recipient_maps =\n"
			 "queue_directory = spool\n",
			 "127.0.0.1:2525 inet n - n - - smtpd\n", false);
	test_parse_path();
	test_address_valid();
	test_domain_valid();
	test_resolvable(sc->main);
	test_internal();
	config_free(sc);
	remove_file("main.cf");
	remove_file("master.cf");
	rmdir(tmp);
	return tap_done();
}
