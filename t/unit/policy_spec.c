/*
 * t/unit/policy_spec.c - the check_policy_service argument, parsed as
 * Postfix 3 parses it (policy/policy_client.c): inet: and unix:
 * endpoints, the braces form with per-service options (commas and
 * whitespace between items, a braced item for a value with spaces),
 * defaults from the smtpd_policy_service_* parameters, and refusals
 * (unknown option, missing '=', bad value, no transport, unbalanced
 * braces).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "policy/policy_client.h"
#include "tap.h"
#include "config_fixture.h"

static struct sluice_config *load(const char *extra)
{
	char text[2048];

	snprintf(text, sizeof text, "myhostname = mx.example.test\n"
		 "queue_directory = spool\n%s", extra);
	return load_config(text, "127.0.0.1:2525 inet n - n - - smtpd\n", false);
}

static void refused(const struct config *cfg, const char *spec,
		    const char *want_err)
{
	struct policy_service ps;
	char err[512] = "";
	int rc = policy_service_parse(spec, cfg, &ps, err, sizeof err);

	ok(rc < 0 && strstr(err, want_err) != NULL, "refused: %s (%s)", spec,
	   err);
}

int main(void)
{
	struct sluice_config *sc;
	struct policy_service ps;
	char err[512], cmd[600];

	fixture_tmpdir("policy-spec");
	sc = load("");

	ok(policy_service_parse("inet:127.0.0.1:10023", sc->main, &ps, err,
				sizeof err) == 0, "inet: endpoint");
	is_str(ps.host, "127.0.0.1", "host");
	is_str(ps.port, "10023", "port");
	is_str(ps.name, "127.0.0.1:10023", "logged name without the transport");
	is_int((int)ps.timeout, 100, "timeout default 100s");
	is_int((int)ps.max_idle, 300, "max_idle default 300s");
	is_int((int)ps.max_ttl, 1000, "max_ttl default 1000s");
	is_int((int)ps.try_limit, 2, "try_limit default 2");
	is_int((int)ps.retry_delay, 1, "retry_delay default 1s");
	is_int((int)ps.request_limit, 0, "request_limit default 0");
	is_str(ps.default_action, "451 4.3.5 Server configuration problem",
	       "default_action default");
	is_str(ps.policy_context, "", "policy_context default empty");
	policy_service_clear(&ps);

	ok(policy_service_parse("inet:[::1]:9998", sc->main, &ps, err,
				sizeof err) == 0, "inet: IPv6 in brackets");
	is_str(ps.host, "::1", "IPv6 host without brackets");
	policy_service_clear(&ps);

	ok(policy_service_parse("unix:private/policyd-spf", sc->main, &ps, err,
				sizeof err) == 0 && ps.is_unix, "unix: endpoint");
	is_str(ps.path, "private/policyd-spf", "unix path");
	policy_service_clear(&ps);

	ok(policy_service_parse("{ inet:localhost:9998, timeout=10s, "
				"max_idle=1m max_ttl=2h,try_limit=1, "
				"retry_delay=3, request_limit=5, "
				"{ default_action = 450 4.7.0 try again }, "
				"policy_context=submission }", sc->main, &ps,
				err, sizeof err) == 0, "braces form: %s", err);
	is_str(ps.endpoint, "inet:localhost:9998", "braces: endpoint");
	is_int((int)ps.timeout, 10, "timeout=10s");
	is_int((int)ps.max_idle, 60, "max_idle=1m");
	is_int((int)ps.max_ttl, 7200, "max_ttl=2h");
	is_int((int)ps.try_limit, 1, "try_limit=1");
	is_int((int)ps.retry_delay, 3, "retry_delay=3 (seconds)");
	is_int((int)ps.request_limit, 5, "request_limit=5");
	is_str(ps.default_action, "450 4.7.0 try again",
	       "default_action with spaces, in braces");
	is_str(ps.policy_context, "submission", "policy_context");
	policy_service_clear(&ps);

	config_free(sc);
	sc = load("smtpd_policy_service_timeout = 7s\n"
		  "smtpd_policy_service_default_action = DUNNO\n"
		  "smtpd_policy_service_policy_context = mx\n");
	ok(policy_service_parse("inet:127.0.0.1:1", sc->main, &ps, err,
				sizeof err) == 0, "with main.cf settings");
	is_int((int)ps.timeout, 7, "smtpd_policy_service_timeout is the default");
	is_str(ps.default_action, "DUNNO", "smtpd_policy_service_default_action");
	is_str(ps.policy_context, "mx", "smtpd_policy_service_policy_context");
	policy_service_clear(&ps);

	refused(sc->main, "{ inet:127.0.0.1:1, bogus=1 }", "unknown attribute name");
	refused(sc->main, "{ inet:127.0.0.1:1, timeout }", "missing '='");
	refused(sc->main, "{ inet:127.0.0.1:1, timeout=soon }", "bad value");
	refused(sc->main, "{ inet:127.0.0.1:1, try_limit=-1 }", "bad value");
	refused(sc->main, "127.0.0.1:10023", "need inet:host:port");
	refused(sc->main, "inet:127.0.0.1", "need inet:host:port");
	refused(sc->main, "{ inet:127.0.0.1:1, { default_action = x }",
		"unbalanced '{'");
	refused(sc->main, "{ inet:127.0.0.1:1, timeout=1s", "missing '}'");
	refused(sc->main, "{ }", "empty policy service");

	config_free(sc);
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
	if (system(cmd) != 0)
		diag("could not remove %s", tmp);
	return tap_done();
}
