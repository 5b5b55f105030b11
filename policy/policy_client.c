/*
 * policy_client.c - the check_policy_service restriction: Postfix's
 * policy delegation (SMTPD_POLICY_README) in the restriction engine.
 *
 * The argument is parsed as Postfix 3 parses it (policy_client_register
 * and attr_override): either a bare "inet:host:port" / "unix:pathname",
 * or "{ endpoint, name=value, ... }" where items are separated by commas
 * or whitespace and an item holding whitespace is written in braces
 * ("{ default_action = 451 4.3.5 Server configuration problem }").  The
 * names are timeout, max_idle, max_ttl, try_limit, retry_delay,
 * default_action, request_limit and policy_context; the matching
 * smtpd_policy_service_* parameter gives what is not set.  A spec that
 * does not parse is refused when the restriction lists are compiled
 * (check_policy_arg, registered in restriction_list.c: `sluice check`
 * and start-up say "main.cf:LINE: ..." with the fix); one that still
 * reaches a session (an access table's action) is a server configuration
 * problem (451 4.3.5, logged).
 *
 * The evaluation builds the request (policy_request.c), hands it to the
 * pool (policy_conn.c) and answers RV_PENDING; the reply's action (or the
 * default action when the server failed) goes to rcheck_action() with the
 * reply name and class of the list being evaluated, so that
 * "action=DEFER_IF_PERMIT Greylisted" gives "450 4.7.1 <rcpt>: Recipient
 * address rejected: Greylisted" exactly as an access table would, and
 * PREPEND, HOLD, DISCARD, FILTER, REDIRECT, BCC have a table's effects.
 * A session that ends while waiting cancels its query: nothing resumes.
 *
 * Under `sluice explain` the server is not asked (a greylisting server
 * would record the replayed triplet): the restriction says so in the
 * trace and answers DUNNO.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "mymalloc.h"
#include "policy_int.h"
#include "restriction.h"
#include "restriction_int.h"
#include "smtp_session.h"

#define ORIGIN_MAX 600

/* ---- the argument ------------------------------------------------------ */

/* The next item of a braces list: separated by commas and whitespace, a
 * "{ ... }" item (nested braces allowed) with its braces removed.  NULL
 * at the end; *bad on an unbalanced brace. */
static char *next_item(char **cp, bool *bad)
{
	char *p = *cp, *start;
	int depth = 0;

	while (*p == ',' || isspace((unsigned char)*p))
		p++;
	if (*p == 0)
		return NULL;
	if (*p == '{') {
		start = ++p;
		for (depth = 1; *p && depth > 0; p++)
			depth += *p == '{' ? 1 : *p == '}' ? -1 : 0;
		if (depth > 0) {
			*bad = true;
			return NULL;
		}
		p[-1] = 0;
		*cp = p;
		return config_trim(start);
	}
	start = p;
	while (*p && *p != ',' && !isspace((unsigned char)*p))
		p++;
	if (*p)
		*p++ = 0;
	*cp = p;
	return start;
}

static bool set_time(const char *v, long long *out)
{
	return parse_time(v, 's', out) == 0 && *out >= 0;
}

static bool set_int(const char *v, long long *out)
{
	char *end;

	*out = strtoll(v, &end, 10);
	return *v && *end == 0 && *out >= 0;
}

/* One "name=value" override; false with err set. */
static bool set_option(struct policy_service *ps, char *item, char *err,
		       size_t errlen)
{
	char *eq = strchr(item, '='), *name, *value;
	bool ok;

	if (eq == NULL) {
		snprintf(err, errlen, "missing '=' after attribute name \"%s\"",
			 item);
		return false;
	}
	*eq = 0;
	name = config_trim(item);
	value = config_trim(eq + 1);
	if (strcmp(name, "timeout") == 0)
		ok = set_time(value, &ps->timeout);
	else if (strcmp(name, "max_idle") == 0)
		ok = set_time(value, &ps->max_idle);
	else if (strcmp(name, "max_ttl") == 0)
		ok = set_time(value, &ps->max_ttl);
	else if (strcmp(name, "retry_delay") == 0)
		ok = set_time(value, &ps->retry_delay);
	else if (strcmp(name, "try_limit") == 0)
		ok = set_int(value, &ps->try_limit);
	else if (strcmp(name, "request_limit") == 0)
		ok = set_int(value, &ps->request_limit);
	else if (strcmp(name, "default_action") == 0) {
		free(ps->default_action);
		ps->default_action = mystrdup(value);
		ok = *value != 0;
	} else if (strcmp(name, "policy_context") == 0) {
		free(ps->policy_context);
		ps->policy_context = mystrdup(value);
		ok = true;
	} else {
		snprintf(err, errlen, "unknown attribute name: \"%s\"", name);
		return false;
	}
	if (!ok)
		snprintf(err, errlen, "bad value for attribute %s: \"%s\"", name,
			 value);
	return ok;
}

/* "inet:host:port" or "unix:path" into ps. */
static bool set_endpoint(struct policy_service *ps, const char *ep, char *err,
			 size_t errlen)
{
	const char *colon;

	ps->endpoint = mystrdup(ep);
	if (strncmp(ep, "unix:", 5) == 0 && ep[5]) {
		ps->is_unix = true;
		ps->path = mystrdup(ep + 5);
		ps->name = mystrdup(ep + 5);
		return true;
	}
	if (strncmp(ep, "inet:", 5) == 0 && (colon = strrchr(ep + 5, ':'))
	    && colon > ep + 5 && colon[1]) {
		const char *h = ep + 5;
		size_t hl = (size_t)(colon - h);

		if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']')
			h++, hl -= 2;
		ps->host = strndup(h, hl);
		ps->port = mystrdup(colon + 1);
		ps->name = mystrdup(ep + 5);
		return ps->host != NULL;
	}
	snprintf(err, errlen, "need inet:host:port or unix:pathname, not \"%s\"",
		 ep);
	return false;
}

static void defaults(struct policy_service *ps, const struct config *cfg)
{
	const char *v;

#define NUM(param, field, dflt) \
	if (cfg_lookup_number(cfg, param, &ps->field) < 0) ps->field = dflt
	NUM("smtpd_policy_service_timeout", timeout, 100);
	NUM("smtpd_policy_service_max_idle", max_idle, 300);
	NUM("smtpd_policy_service_max_ttl", max_ttl, 1000);
	NUM("smtpd_policy_service_try_limit", try_limit, 2);
	NUM("smtpd_policy_service_retry_delay", retry_delay, 1);
	NUM("smtpd_policy_service_request_limit", request_limit, 0);
#undef NUM
	v = cfg_lookup(cfg, "smtpd_policy_service_default_action");
	ps->default_action = mystrdup(v && *v ? v
				     : "451 4.3.5 Server configuration problem");
	v = cfg_lookup(cfg, "smtpd_policy_service_policy_context");
	ps->policy_context = mystrdup(v);
}

static void make_key(struct policy_service *ps)
{
	char key[2048];

	snprintf(key, sizeof key, "%s|%lld|%lld|%lld|%lld|%lld|%lld|%s|%s",
		 ps->endpoint, ps->timeout, ps->max_idle, ps->max_ttl,
		 ps->try_limit, ps->retry_delay, ps->request_limit,
		 ps->default_action, ps->policy_context);
	ps->key = mystrdup(key);
}

int policy_service_parse(const char *spec, const struct config *cfg,
			 struct policy_service *ps, char *err, size_t errlen)
{
	char *copy = mystrdup(spec), *cp = config_trim(copy), *item;
	size_t n = strlen(cp);
	bool bad = false, ok = true;

	memset(ps, 0, sizeof *ps);
	defaults(ps, cfg);
	if (*cp != '{') {
		ok = set_endpoint(ps, cp, err, errlen);
	} else if (n < 2 || cp[n - 1] != '}') {
		snprintf(err, errlen, "missing '}' in \"%s\"", spec);
		ok = false;
	} else {
		cp[n - 1] = 0;
		cp++;
		if ((item = next_item(&cp, &bad)) == NULL) {
			snprintf(err, errlen, "empty policy service: \"%s\"", spec);
			ok = false;
		} else {
			ok = set_endpoint(ps, item, err, errlen);
		}
		while (ok && (item = next_item(&cp, &bad)) != NULL)
			ok = set_option(ps, item, err, errlen);
		if (ok && bad) {
			snprintf(err, errlen, "unbalanced '{' in \"%s\"", spec);
			ok = false;
		}
	}
	free(copy);
	if (ps->try_limit < 1)
		ps->try_limit = 1;
	if (!ok) {
		policy_service_clear(ps);
		return -1;
	}
	make_key(ps);
	return 0;
}

void policy_service_clear(struct policy_service *ps)
{
	free(ps->endpoint);
	free(ps->name);
	free(ps->host);
	free(ps->port);
	free(ps->path);
	free(ps->default_action);
	free(ps->policy_context);
	free(ps->key);
	memset(ps, 0, sizeof *ps);
}

/* ---- the restriction ------------------------------------------------------ */

struct policy_wait {
	struct rcheck *c;
	struct policy_query *q;
	char *default_action;
	char origin[ORIGIN_MAX];
};

static void replied(void *arg, const char *action)
{
	struct policy_wait *w = arg;
	struct rcheck *c = w->c;
	int v;

	if (action == NULL)
		rcheck_trace(c, "    %s: no answer: default action", w->origin);
	v = rcheck_action(c, action ? action : w->default_action,
			  rcheck_reply_name(c), rcheck_reply_class(c), w->origin);
	free(w->default_action);
	free(w);
	rcheck_resume(c, v);
}

static void cancelled(void *arg)
{
	struct policy_wait *w = arg;

	policy_query_cancel(w->q);
	free(w->default_action);
	free(w);
}

static int eval_policy(struct rcheck *c, const char *arg, void *data)
{
	struct smtp_session *s = rcheck_session(c);
	struct policy_service ps;
	struct policy_wait *w;
	long long line_limit = 2048;
	char err[512], *req;
	size_t len;

	(void)data;
	if (policy_service_parse(arg, rcheck_config(c), &ps, err,
				 sizeof err) < 0) {
		msg_warn("check_policy_service %s: %s", arg, err);
		return rcheck_server_error(c);
	}
	if (s->base == NULL || rcheck_explaining(c)) {
		rcheck_trace(c, "    %s: policy server not asked by explain "
			     "(DUNNO)", ps.name);
		policy_service_clear(&ps);
		return RV_DUNNO;
	}
	(void)cfg_lookup_number(rcheck_config(c), "line_length_limit",
				&line_limit);
	if ((w = calloc(1, sizeof *w)) == NULL)
		msg_fatal("policy: out of memory");
	w->c = c;
	w->default_action = mystrdup(ps.default_action);
	snprintf(w->origin, sizeof w->origin, "check_policy_service %s",
		 ps.endpoint);
	req = policy_request_build(c, ps.policy_context, &len);
	w->q = policy_query_start(s->base, &ps, req, len, line_limit,
				  replied, w);
	free(req);
	policy_service_clear(&ps);
	rcheck_on_cancel(c, cancelled, w);
	return RV_PENDING;
}

/* At list compile time: the spec must parse (the server itself is not
 * asked: it may start after sluice). */
static int check_policy_arg(const char *arg, const struct config *cfg,
			    char *err, size_t errlen)
{
	struct policy_service ps;
	char why[512];

	if (policy_service_parse(arg, cfg, &ps, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s; write inet:host:port, unix:pathname "
			 "or { endpoint, name=value, ... } with the names "
			 "timeout, max_idle, max_ttl, try_limit, retry_delay, "
			 "default_action, request_limit, policy_context "
			 "(docs/policy.md)", why);
		return -1;
	}
	policy_service_clear(&ps);
	return 0;
}

const struct restriction_arg_check restriction_arg_checks_policy[] = {
	{ "check_policy_service", check_policy_arg },
	{ NULL, NULL }
};

const struct restriction_def restrictions_policy[] = {
	{ "check_policy_service", RF_ARG, eval_policy, NULL },
	{ NULL, 0, NULL, NULL }
};
