/*
 * rbl.c - the rbl plugin: Postfix's DNSBL, RHSBL and DNSWL restrictions,
 * built on the public plugin ABI like any other plugin.  docs/rbl.md is
 * the admin's page.
 *
 * It provides (each takes the list's domain, optionally "=pattern"):
 *   reject_rbl_client (and its old name reject_rbl), permit_dnswl_client
 *     - the client address, reversed (IPv4 octets, IPv6 nibbles);
 *   reject_rhsbl_client, permit_rhswl_client - the verified client name;
 *   reject_rhsbl_reverse_client - the unverified reverse client name;
 *   reject_rhsbl_helo, reject_rhsbl_sender, reject_rhsbl_recipient -
 *     the helo name, the sender's and the recipient's domain.
 *
 * The promises, each Postfix's (smtpd_check.c):
 *   - the query is the reversed address (or the name) followed by the
 *     list's domain; the target is listed when it has an A record, and
 *     with "=pattern" (ip_match syntax, rbl_match.c) when one of its A
 *     records matches; the TXT records are the reason ($rbl_reason);
 *   - a name that is no valid host name, whose last label is numeric, an
 *     [address literal], an "unknown" client name, no HELO or the null
 *     sender is not looked up: no opinion;
 *   - a listed target is rejected with rbl_reply_maps' or
 *     default_rbl_reply's reply (rbl_reply.c);
 *   - permit_dnswl_client / permit_rhswl_client permit a listed client
 *     (OK); at RCPT they permit only a recipient that
 *     permit_auth_destination permits (Postfix's safety: a DNSWL never
 *     opens a relay);
 *   - a lookup that fails or gets no answer within
 *     sluice_smtpd_dns_timeout is logged ("QUERY: RBL lookup error:
 *     ...") and the restriction has no opinion; for the permit_* ones it
 *     is DEFER_IF_REJECT "Service unavailable" (450 4.7.1 if the
 *     transaction would be rejected later);
 *   - each query is asked once per session, whatever the restrictions
 *     and lists asking it (the answer, negative or failed too, is
 *     remembered until the session ends).
 *
 * Every lookup is asynchronous: the restriction answers SLUICE_PENDING
 * and resumes the session when the A (and TXT) answers are in.  The
 * check in flight hangs off the session's plugin data, so the close hook
 * cancels its lookup and its timer.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rbl.h"

#define RBL_TXT_LIMIT   500     /* Postfix's limit on the joined TXT text */

/* What a restriction looks up. */
enum rbl_target { RT_CLIENT_ADDR, RT_CLIENT_NAME, RT_REVERSE_NAME, RT_HELO,
		  RT_SENDER, RT_RECIPIENT };

enum rbl_state { RS_NOTFOUND, RS_SOFT, RS_FOUND };

/* One query's answer, remembered for the session. */
struct rbl_entry {
	struct rbl_entry *next;
	char *query;
	enum rbl_state state;
	char **addrs;
	int naddrs;
	char *txt;              /* NULL: no TXT record */
};

/* One restriction waiting for DNS. */
struct rbl_check {
	sluice_txn *t;
	const char *restriction;
	bool permit;
	char *arg;              /* as written */
	char *domain;           /* arg without "=pattern" */
	char *pattern;          /* or NULL */
	char what[512];
	const char *reply_class;
	struct rbl_entry *e;    /* being filled */
	sluice_dns *q;
	sluice_timer *tm;
};

struct rbl_session {
	struct rbl_entry *cache;
	struct rbl_check *pending;
};

static struct rbl_session *session(sluice_txn *t)
{
	struct rbl_session *ss = sluice_get_data(t);

	if (ss == NULL) {
		ss = sluice_calloc(sizeof *ss);
		sluice_set_data(t, ss);
	}
	return ss;
}

/* ---- what is looked up ------------------------------------------------- */

/* The reversed client address, with a trailing dot; false when it is no
 * address. */
static bool reversed_addr(const char *addr, char *out, size_t len)
{
	unsigned char b[16];

	if (inet_pton(AF_INET, addr, b) == 1) {
		snprintf(out, len, "%u.%u.%u.%u.", b[3], b[2], b[1], b[0]);
		return true;
	}
	if (inet_pton(AF_INET6, addr, b) != 1 || len < 65)
		return false;
	for (int i = 15, k = 0; i >= 0; i--, k += 4)
		snprintf(out + k, len - (size_t)k, "%x.%x.", b[i] & 0xf, b[i] >> 4);
	return true;
}

/* Postfix's valid_hostname(), the part RHSBL queries need: labels of
 * letters, digits, '-' and '_', not starting or ending with '-'. */
static bool valid_hostname(const char *name)
{
	size_t label = 0, len = strlen(name);

	if (len == 0 || len > 255)
		return false;
	for (const char *p = name; *p; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
		} else if (isalnum((unsigned char)*p) || *p == '_'
			   || (*p == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 && name[len - 1] != '-';
}

/* The domain of an RHSBL target (the part after '@' for addresses), or
 * NULL when it is not looked up (Postfix's find_dnsxl_domain). */
static const char *rhs_domain(const char *what)
{
	const char *d = strrchr(what, '@') ? strrchr(what, '@') + 1 : what;
	const char *last;

	if (*d == 0 || *d == '[' || !valid_hostname(d))
		return NULL;
	last = strrchr(d, '.') ? strrchr(d, '.') + 1 : d;
	if (last[strspn(last, "0123456789")] == 0)
		return NULL;    /* "No IP queries", as Spamhaus says */
	return d;
}

/* The thing looked up and its reply class; false when there is none. */
static bool target_of(sluice_txn *t, enum rbl_target w, const char **what,
		      const char **reply_class)
{
	const char *v = NULL;

	*reply_class = "Client host";
	switch (w) {
	case RT_CLIENT_ADDR:
		v = sluice_client_addr(t);
		break;
	case RT_CLIENT_NAME:
		v = sluice_client_name(t);
		break;
	case RT_REVERSE_NAME:
		v = sluice_attr(t, "{client_ptr}");
		*reply_class = "Unverified Client host";
		break;
	case RT_HELO:
		v = sluice_helo_name(t);
		*reply_class = "Helo command";
		break;
	case RT_SENDER:
		v = sluice_sender(t);
		*reply_class = "Sender address";
		break;
	case RT_RECIPIENT:
		v = sluice_recipient(t);
		*reply_class = "Recipient address";
		break;
	}
	if (v == NULL || *v == 0)
		return false;
	if ((w == RT_CLIENT_NAME || w == RT_REVERSE_NAME)
	    && strcasecmp(v, "unknown") == 0)
		return false;
	*what = v;
	return true;
}

/* ---- the answer ---------------------------------------------------------- */

static struct rbl_entry *cached(struct rbl_session *ss, const char *query)
{
	for (struct rbl_entry *e = ss->cache; e; e = e->next)
		if (strcasecmp(e->query, query) == 0)
			return e;
	return NULL;
}

static void entry_free(struct rbl_entry *e)
{
	for (int i = 0; i < e->naddrs; i++)
		free(e->addrs[i]);
	free(e->addrs);
	free(e->txt);
	free(e->query);
	free(e);
}

/* Does the entry list the target, given the "=pattern" filter? */
static bool listed(sluice_txn *t, const struct rbl_check *c,
		   const struct rbl_entry *e)
{
	if (e->state != RS_FOUND)
		return false;
	if (c->pattern == NULL)
		return true;
	for (int i = 0; i < e->naddrs; i++)
		if (rbl_pattern_match(c->pattern, e->addrs[i]))
			return true;
	sluice_explain(t, "%s: listed, but no answer matches =%s", e->query,
		       c->pattern);
	return false;
}

static void explain_entry(sluice_txn *t, const struct rbl_entry *e)
{
	char list[512] = "";
	size_t len = 0;

	if (e->state != RS_FOUND) {
		sluice_explain(t, "query %s: %s", e->query,
			       e->state == RS_SOFT ? "lookup error (no answer)"
			       : "not listed");
		return;
	}
	for (int i = 0; i < e->naddrs && len < sizeof list; i++)
		len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
					i ? " " : "", e->addrs[i]);
	sluice_explain(t, "query %s: A %s%s%s%s", e->query, list,
		       e->txt ? "; TXT \"" : "", e->txt ? e->txt : "",
		       e->txt ? "\"" : "");
}

/* The restriction's verdict from a complete entry. */
static int decide(sluice_txn *t, const struct rbl_check *c,
		  const struct rbl_entry *e)
{
	struct rbl_listing l = { .arg = c->arg, .domain = c->domain,
				 .what = c->what,
				 .reply_class = c->reply_class, .txt = e->txt };
	const char *stage;

	explain_entry(t, e);
	if (c->permit && e->state == RS_SOFT)
		return sluice_action(t, "DEFER_IF_REJECT Service unavailable",
				     c->what, c->reply_class);
	if (!listed(t, c, e))
		return SLUICE_DUNNO;
	if (!c->permit)
		return rbl_reply(t, &l);
	stage = sluice_stage(t);
	sluice_txn_log(t, SLUICE_LOG_INFO, "%s: %s [%s] listed by %s",
		       c->restriction, c->reply_class, c->what, c->domain);
	/* Postfix's safety: a DNSWL does not permit relaying. */
	if (strcmp(stage, "RCPT") == 0 && sluice_recipient(t) != NULL)
		return sluice_action(t, "permit_auth_destination", NULL, NULL);
	return SLUICE_OK;
}

static void check_free(struct rbl_check *c)
{
	free(c->arg);
	free(c->domain);
	free(c->pattern);
	free(c);
}

/* The end of a lookup: cache the entry, answer, resume (last). */
static void finish(struct rbl_check *c)
{
	sluice_txn *t = c->t;
	struct rbl_session *ss = session(t);
	int verdict;

	sluice_timer_cancel(c->tm);
	c->tm = NULL;
	c->e->next = ss->cache;
	ss->cache = c->e;
	ss->pending = NULL;
	verdict = decide(t, c, c->e);
	check_free(c);
	sluice_resume(t, verdict);
}

static void lookup_error(struct rbl_check *c, const char *type,
			 const char *why)
{
	sluice_txn_log(c->t, SLUICE_LOG_WARN, "%s: RBL lookup error: Host or "
		       "domain name not found. Name service error for name=%s "
		       "type=%s: %s", c->e->query, c->e->query, type, why);
}

static void on_txt(void *arg, int status, char **txt, int n)
{
	struct rbl_check *c = arg;
	char buf[RBL_TXT_LIMIT + 1] = "";
	size_t len = 0;

	c->q = NULL;
	for (int i = 0; status == 0 && i < n && len < RBL_TXT_LIMIT; i++)
		len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s",
					i ? " / " : "", txt[i]);
	if (status == 0 && n > 0)
		c->e->txt = sluice_strdup(buf);
	finish(c);
}

static void on_a(void *arg, int status, char **addrs, int n)
{
	struct rbl_check *c = arg;
	sluice_dns *q;

	c->q = NULL;
	if (status < 0) {
		lookup_error(c, "A", "Host not found, try again");
		c->e->state = RS_SOFT;
	} else if (status == 0 && n > 0) {
		c->e->state = RS_FOUND;
		c->e->addrs = sluice_calloc((size_t)n * sizeof *c->e->addrs);
		for (int i = 0; i < n; i++)
			c->e->addrs[i] = sluice_strdup(addrs[i]);
		c->e->naddrs = n;
		/* c may be gone when q is NULL: the answer came at once. */
		if ((q = sluice_dns_lookup(c->e->query, SLUICE_DNS_TXT, on_txt,
					   c)) != NULL)
			c->q = q;
		return;
	}
	finish(c);
}

/* No answer within sluice_smtpd_dns_timeout. */
static void on_timeout(void *arg)
{
	struct rbl_check *c = arg;

	c->tm = NULL;
	sluice_dns_cancel(c->q);
	c->q = NULL;
	if (c->e->state != RS_FOUND) {     /* a TXT timeout keeps the A */
		lookup_error(c, "A", "Host not found, try again");
		c->e->state = RS_SOFT;
	}
	finish(c);
}

/* ---- the restrictions ---------------------------------------------------- */

static int rbl_check(sluice_txn *t, const char *restriction, const char *arg,
		     enum rbl_target w, bool permit)
{
	struct rbl_session *ss;
	struct rbl_check *c;
	struct rbl_entry *e;
	const char *what, *reply_class, *eq, *d;
	char prefix[300], query[1024], err[256];
	long long secs;
	sluice_dns *q;

	if (arg == NULL || *arg == 0) {
		sluice_txn_log(t, SLUICE_LOG_WARN, "restriction %s requires "
			       "domain name argument", restriction);
		return SLUICE_DUNNO;
	}
	if (!target_of(t, w, &what, &reply_class))
		return SLUICE_DUNNO;
	if (w == RT_CLIENT_ADDR) {
		if (!reversed_addr(what, prefix, sizeof prefix))
			return SLUICE_DUNNO;
	} else if ((d = rhs_domain(what)) == NULL) {
		return SLUICE_DUNNO;
	} else {
		snprintf(prefix, sizeof prefix, "%s.", d);
	}
	eq = strchr(arg, '=');
	if (eq && !rbl_pattern_ok(eq + 1, err, sizeof err)) {
		sluice_txn_log(t, SLUICE_LOG_WARN, "%s %s: %s", restriction, arg,
			       err);
		sluice_reply(t, 451, "4.3.5", "Server configuration error");
		return SLUICE_DEFER;
	}
	snprintf(query, sizeof query, "%s%.*s", prefix,
		 (int)(eq ? (size_t)(eq - arg) : strlen(arg)), arg);
	c = sluice_calloc(sizeof *c);
	c->t = t;
	c->restriction = restriction;
	c->permit = permit;
	c->arg = sluice_strdup(arg);
	c->domain = sluice_strdup(arg);
	c->domain[eq ? (size_t)(eq - arg) : strlen(arg)] = 0;
	c->pattern = eq ? sluice_strdup(eq + 1) : NULL;
	snprintf(c->what, sizeof c->what, "%s", what);
	c->reply_class = reply_class;
	ss = session(t);
	if ((e = cached(ss, query)) != NULL) {
		int v = decide(t, c, e);

		sluice_explain(t, "(answer remembered from earlier in the session)");
		check_free(c);
		return v;
	}
	c->e = sluice_calloc(sizeof *c->e);
	c->e->query = sluice_strdup(query);
	c->e->state = RS_NOTFOUND;
	ss->pending = c;
	secs = sluice_txn_conf_int(t, "sluice_smtpd_dns_timeout");
	c->tm = sluice_timer_start((unsigned)(secs > 0 ? secs : 10) * 1000,
				   on_timeout, c);
	if ((q = sluice_dns_lookup(query, SLUICE_DNS_A, on_a, c)) != NULL)
		c->q = q;       /* otherwise answered already: c may be gone */
	return SLUICE_PENDING;
}

/* One function per restriction: the ABI passes no name to check(). */
#define RBL_RESTRICTION(fn, name, target, permit) \
	static int fn(sluice_txn *t, const char *arg, void *pd) \
	{ \
		(void)pd; \
		return rbl_check(t, name, arg, target, permit); \
	}

RBL_RESTRICTION(rbl_client, "reject_rbl_client", RT_CLIENT_ADDR, false)
RBL_RESTRICTION(rbl_old, "reject_rbl", RT_CLIENT_ADDR, false)
RBL_RESTRICTION(dnswl_client, "permit_dnswl_client", RT_CLIENT_ADDR, true)
RBL_RESTRICTION(rhsbl_client, "reject_rhsbl_client", RT_CLIENT_NAME, false)
RBL_RESTRICTION(rhswl_client, "permit_rhswl_client", RT_CLIENT_NAME, true)
RBL_RESTRICTION(rhsbl_reverse, "reject_rhsbl_reverse_client", RT_REVERSE_NAME,
		false)
RBL_RESTRICTION(rhsbl_helo, "reject_rhsbl_helo", RT_HELO, false)
RBL_RESTRICTION(rhsbl_sender, "reject_rhsbl_sender", RT_SENDER, false)
RBL_RESTRICTION(rhsbl_rcpt, "reject_rhsbl_recipient", RT_RECIPIENT, false)

/* ---- the descriptor -------------------------------------------------------- */

#define WORD_ARG 1      /* the list's domain[=pattern] */

static const struct sluice_restriction rbl_restrictions[] = {
	{ "reject_rbl_client", WORD_ARG, rbl_client },
	{ "reject_rbl", WORD_ARG, rbl_old },
	{ "permit_dnswl_client", WORD_ARG, dnswl_client },
	{ "reject_rhsbl_client", WORD_ARG, rhsbl_client },
	{ "permit_rhswl_client", WORD_ARG, rhswl_client },
	{ "reject_rhsbl_reverse_client", WORD_ARG, rhsbl_reverse },
	{ "reject_rhsbl_helo", WORD_ARG, rhsbl_helo },
	{ "reject_rhsbl_sender", WORD_ARG, rhsbl_sender },
	{ "reject_rhsbl_recipient", WORD_ARG, rhsbl_rcpt },
	{ NULL, 0, NULL }
};

static const struct sluice_param rbl_params[] = {
	{ "default_rbl_reply", SLUICE_PARAM_STRING,
	  "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using "
	  "$rbl_domain${rbl_reason?; $rbl_reason}",
	  "The reply template of reject_rbl_client and the reject_rhsbl_* "
	  "restrictions when rbl_reply_maps has none for the list (Postfix's)." },
	{ "rbl_reply_maps", SLUICE_PARAM_MAP, "",
	  "Tables with a reply template per list, looked up by the restriction's "
	  "argument as written (\"zen.example\" or \"zen.example=127.0.0.2\")." },
	{ "maps_rbl_reject_code", SLUICE_PARAM_INT, "554",
	  "The SMTP code of a DNSBL/RHSBL reject: $rbl_code in the reply "
	  "templates." },
	{ NULL, 0, NULL, NULL }
};

static void rbl_close(sluice_txn *t, void *pdata)
{
	struct rbl_session *ss = sluice_get_data(t);
	struct rbl_entry *e, *next;

	(void)pdata;
	if (ss == NULL)
		return;
	if (ss->pending) {
		sluice_dns_cancel(ss->pending->q);
		sluice_timer_cancel(ss->pending->tm);
		entry_free(ss->pending->e);
		check_free(ss->pending);
	}
	for (e = ss->cache; e; e = next) {
		next = e->next;
		entry_free(e);
	}
	free(ss);
	sluice_set_data(t, NULL);
}

SLUICE_PLUGIN_DECLARE = {
	.abi = SLUICE_PLUGIN_ABI,
	.name = "rbl",
	.version = "1.0",
	.description = "Postfix's DNSBL, RHSBL and DNSWL restrictions "
		       "(reject_rbl_client, reject_rhsbl_*, permit_dnswl_client)",
	.params = rbl_params,
	.close = rbl_close,
	.restrictions = rbl_restrictions,
};
