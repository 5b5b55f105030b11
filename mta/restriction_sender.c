/*
 * restriction_sender.c - Postfix's built-in sender restrictions, and the
 * reply helpers every built-in restriction shares (restriction_builtin.h).
 *
 *   reject_non_fqdn_sender          504 5.5.2 "<s>: Sender address
 *                                   rejected: need fully-qualified address"
 *                                   (non_fqdn_reject_code)
 *   reject_unknown_sender_domain    450 4.1.8 "... Domain not found"
 *                                   (unknown_address_reject_code; DNS MX,
 *                                   then A/AAAA; null MX: 550 5.7.27
 *                                   "Domain d does not accept mail
 *                                   (nullMX)"; no answer:
 *                                   unknown_address_tempfail_action)
 *   reject_unlisted_sender          the recipient tables of the sender's
 *                                   address class ("User unknown in local
 *                                   recipient table", 5.1.0)
 *   reject_authenticated_sender_login_mismatch, reject_known_sender_
 *   login_mismatch, reject_unauthenticated_sender_login_mismatch,
 *   reject_sender_login_mismatch   553 5.7.1 "not owned by user u" /
 *                                   "not logged in" (smtpd_sender_login_maps)
 *
 * As in Postfix, a sender restriction says nothing (DUNNO) before MAIL
 * FROM and for the null sender <>.  The login mismatch restrictions need
 * SASL: with smtpd_sasl_auth_enable = no (Postfix's default, and what an
 * unregistered parameter reads as until AUTH exists) they are ignored
 * with Postfix's warning.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "restriction_builtin.h"
#include "route_internal.h"
#include "smtp_session.h"

#define RB_TEXT_MAX	1024

/* ---- reply helpers ------------------------------------------------------ */

static int reply_code(const struct config *cfg, const char *param, int code)
{
	long long v;

	if (param != NULL && cfg_lookup_number(cfg, param, &v) == 0 &&
	    v >= 400 && v <= 599)
		return (int)v;
	return code;
}

int rb_reject(struct rcheck *c, const char *code_param, int code,
	      const char *dsn, const char *fmt, ...)
{
	int rc = reply_code(rcheck_config(c), code_param, code);
	char text[RB_TEXT_MAX], fixed[16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	snprintf(fixed, sizeof fixed, "%s", dsn);
	fixed[0] = (char)('0' + rc / 100);
	rcheck_reply(c, rc, fixed, "%s", text);
	return rc >= 500 ? RV_REJECT : RV_DEFER;
}

int rb_tempfail(struct rcheck *c, const char *action_param, int code,
		const char *dsn, const char *name, const char *reply_class,
		const char *text)
{
	const char *action = cfg_lookup(rcheck_config(c), action_param);

	if (action != NULL && strcasecmp(action, "defer") == 0)
		return rb_reject(c, NULL, code, dsn, "<%s>: %s rejected: %s",
				 name, reply_class, text);
	return rcheck_defer_if_permit(c, code, dsn, "<%s>: %s rejected: %s",
				      name, reply_class, text);
}

int rb_lookup_failure(struct rcheck *c, const char *name)
{
	return rb_reject(c, NULL, 451, "4.3.0",
			 "<%s>: Temporary lookup failure", name);
}

/* ---- the sender ------------------------------------------------------------ */

/* The sender, or NULL before MAIL FROM and for the null sender. */
static const char *sender_of(struct rcheck *c)
{
	struct smtp_session *s = rcheck_session(c);
	const char *sender = s->txn.active ? s->txn.env.sender : NULL;

	return sender != NULL && *sender != 0 ? sender : NULL;
}

int rb_non_fqdn_address(struct rcheck *c, const char *addr,
			const char *reply_class)
{
	const char *domain = rb_domain(addr);
	char name[512];

	if (domain[0] == '[' && domain[strlen(domain) - 1] == ']') {
		rcheck_trace(c, "%s: address literal: not checked", domain);
		return RV_DUNNO;
	}
	if (rb_strip_dot(domain, name, sizeof name) && name[0] != 0 &&
	    rb_valid_hostname(name) && strchr(name, '.') != NULL) {
		rcheck_trace(c, "domain \"%s\" is fully qualified", name);
		return RV_DUNNO;
	}
	rcheck_trace(c, "domain \"%s\" is not a fully-qualified host name", domain);
	return rb_reject(c, "non_fqdn_reject_code", 504, "4.5.2",
			 "<%s>: %s rejected: need fully-qualified address",
			 addr, reply_class);
}

static int non_fqdn_sender(struct rcheck *c, const char *arg, void *data)
{
	const char *sender = sender_of(c);

	(void)arg, (void)data;
	return sender ? rb_non_fqdn_address(c, sender, RB_SENDER) : RV_DUNNO;
}

int rb_unknown_address(struct rcheck *c, const char *addr,
		       rb_dns_done_fn done)
{
	struct rb_addr a;
	const char *domain;
	char name[512];

	rb_resolve(c, addr, &a);
	if (a.failed)
		return rb_lookup_failure(c, addr);
	domain = rb_domain(a.r.addr);
	if (rb_class_final(a.r.cls)) {
		rcheck_trace(c, "%s: %s domain: not looked up", domain,
			     addr_class_name(a.r.cls));
		return RV_DUNNO;
	}
	if (domain[0] == '[' || !rb_strip_dot(domain, name, sizeof name) ||
	    name[0] == 0) {
		rcheck_trace(c, "%s: not a DNS name: not looked up", domain);
		return RV_DUNNO;
	}
	rcheck_trace(c, "%s: looking up MX, then A/AAAA", name);
	return rb_dns_mailhost(c, name, done, NULL);
}

int rb_mailhost_verdict(struct rcheck *c, enum rb_dns_result res,
			const char *addr, bool sender)
{
	const char *reply_class = sender ? RB_SENDER : RB_RECIPIENT;
	const char *dsn = sender ? "4.1.8" : "4.1.2";
	const char *domain = rb_domain(addr);

	switch (res) {
	case RB_DNS_FOUND:
		rcheck_trace(c, "%s: found", domain);
		return RV_DUNNO;
	case RB_DNS_NULLMX:
		rcheck_trace(c, "%s: null MX", domain);
		return rb_reject(c, NULL, sender ? 550 : 556,
				 sender ? "4.7.27" : "4.1.10",
				 "<%s>: %s rejected: Domain %s does not accept mail (nullMX)",
				 addr, reply_class, domain);
	case RB_DNS_TEMPFAIL:
		rcheck_trace(c, "%s: temporary DNS failure", domain);
		return rb_tempfail(c, "unknown_address_tempfail_action", 450,
				   dsn, addr, reply_class, "Domain not found");
	default:
		rcheck_trace(c, "%s: no MX, A or AAAA record", domain);
		return rb_reject(c, "unknown_address_reject_code", 450, dsn,
				 "<%s>: %s rejected: Domain not found",
				 addr, reply_class);
	}
}

static int sender_domain_done(struct rcheck *c, enum rb_dns_result res,
			      void *arg)
{
	const char *sender = sender_of(c);

	(void)arg;
	return sender ? rb_mailhost_verdict(c, res, sender, true) : RV_DUNNO;
}

static int unknown_sender_domain(struct rcheck *c, const char *arg, void *data)
{
	const char *sender = sender_of(c);

	(void)arg, (void)data;
	if (sender == NULL)
		return RV_DUNNO;
	return rb_unknown_address(c, sender, sender_domain_done);
}

static int unlisted_sender(struct rcheck *c, const char *arg, void *data)
{
	const char *sender = sender_of(c);

	(void)arg, (void)data;
	if (sender == NULL)
		return RV_DUNNO;
	if (!rcheck_warn_if_reject(c))
		rcheck_unlisted_checked(c, false);
	return rb_check_rcpt_maps(c, sender, true);
}

/* ---- smtpd_sender_login_maps ------------------------------------------------ */

#define LOGIN_MAPS	"smtpd_sender_login_maps"

/* Without SASL Postfix ignores these restrictions, with a warning.
 * Until AUTH registers smtpd_sasl_auth_enable it reads as Postfix's
 * default, no. */
static bool sasl_enabled(struct rcheck *c, const char *restriction)
{
	long long on = 0;

	if (cfg_lookup_number(rcheck_config(c), "smtpd_sasl_auth_enable", &on) != 0
	    || on == 0) {
		msg_warn("restriction `%s' ignored: no SASL support", restriction);
		rcheck_trace(c, "smtpd_sasl_auth_enable = no: ignored");
		return false;
	}
	return true;
}

/* The owners of the sender in smtpd_sender_login_maps (ROUTE_FOUND with
 * *owners), ROUTE_NOTFOUND, or ROUTE_FAIL. */
static int sender_owners(struct rcheck *c, const char *sender, char **owners)
{
	const struct config *cfg = rcheck_config(c);
	struct rb_addr a;
	int rc;

	*owners = NULL;
	if (*cfg_str(cfg, LOGIN_MAPS) == 0)
		return ROUTE_NOTFOUND;
	rb_resolve(c, sender, &a);
	if (a.failed)
		return ROUTE_FAIL;
	rc = route_addr_find(cfg, LOGIN_MAPS, a.r.addr, owners, NULL);
	rcheck_trace(c, "%s: %s: %s", LOGIN_MAPS, a.r.addr,
		     rc == ROUTE_FOUND ? *owners : rc == ROUTE_NOTFOUND
		     ? "not found" : "lookup failure");
	return rc;
}

static bool owner_listed(const char *owners, const char *user)
{
	char **v = config_split_list(owners);
	bool hit = false;

	for (int i = 0; v && v[i] && !hit; i++)
		hit = strcasecmp(v[i], user) == 0;
	cfg_list_free(v);
	return hit;
}

/* Postfix's reject_auth_sender_login_mismatch(). */
static int auth_mismatch(struct rcheck *c, const char *sender,
			 bool allow_unknown)
{
	const char *user = rcheck_session(c)->sasl_username;
	char *owners = NULL;
	int rc, verdict = RV_DUNNO;

	if (user == NULL || *cfg_str(rcheck_config(c), LOGIN_MAPS) == 0)
		return RV_DUNNO;
	rc = sender_owners(c, sender, &owners);
	if (rc == ROUTE_FAIL)
		verdict = rb_lookup_failure(c, sender);
	else if ((rc == ROUTE_FOUND && !owner_listed(owners, user)) ||
		 (rc == ROUTE_NOTFOUND && !allow_unknown))
		verdict = rb_reject(c, NULL, 553, "5.7.1",
				    "<%s>: Sender address rejected: not owned by user %s",
				    sender, user);
	free(owners);
	return verdict;
}

/* Postfix's reject_unauth_sender_login_mismatch(). */
static int unauth_mismatch(struct rcheck *c, const char *sender)
{
	char *owners = NULL;
	int rc, verdict = RV_DUNNO;

	if (rcheck_session(c)->sasl_username != NULL)
		return RV_DUNNO;
	rc = sender_owners(c, sender, &owners);
	if (rc == ROUTE_FAIL)
		verdict = rb_lookup_failure(c, sender);
	else if (rc == ROUTE_FOUND)
		verdict = rb_reject(c, NULL, 553, "5.7.1",
				    "<%s>: Sender address rejected: not logged in",
				    sender);
	free(owners);
	return verdict;
}

enum login_kind { LOGIN_AUTH, LOGIN_KNOWN, LOGIN_UNAUTH, LOGIN_BOTH };

static int login_mismatch(struct rcheck *c, enum login_kind kind,
			  const char *name)
{
	const char *sender = sender_of(c);
	int verdict;

	if (sender == NULL || !sasl_enabled(c, name))
		return RV_DUNNO;
	switch (kind) {
	case LOGIN_AUTH:
		return auth_mismatch(c, sender, false);
	case LOGIN_UNAUTH:
		return unauth_mismatch(c, sender);
	case LOGIN_KNOWN:
		if (rcheck_session(c)->sasl_username != NULL)
			return auth_mismatch(c, sender, true);
		return unauth_mismatch(c, sender);
	default:
		verdict = auth_mismatch(c, sender, false);
		return verdict != RV_DUNNO ? verdict : unauth_mismatch(c, sender);
	}
}

static int auth_login_mismatch(struct rcheck *c, const char *arg, void *data)
{
	(void)arg, (void)data;
	return login_mismatch(c, LOGIN_AUTH, "reject_authenticated_sender_login_mismatch");
}

static int known_login_mismatch(struct rcheck *c, const char *arg, void *data)
{
	(void)arg, (void)data;
	return login_mismatch(c, LOGIN_KNOWN, "reject_known_sender_login_mismatch");
}

static int unauth_login_mismatch(struct rcheck *c, const char *arg, void *data)
{
	(void)arg, (void)data;
	return login_mismatch(c, LOGIN_UNAUTH, "reject_unauthenticated_sender_login_mismatch");
}

static int sender_login_mismatch(struct rcheck *c, const char *arg, void *data)
{
	(void)arg, (void)data;
	return login_mismatch(c, LOGIN_BOTH, "reject_sender_login_mismatch");
}

const struct restriction_def restrictions_sender[] = {
	{ "reject_non_fqdn_sender", RF_NEEDS_SENDER, non_fqdn_sender, NULL },
	{ "reject_unknown_sender_domain", RF_NEEDS_SENDER, unknown_sender_domain, NULL },
	{ "reject_unlisted_sender", RF_NEEDS_SENDER, unlisted_sender, NULL },
	{ "reject_authenticated_sender_login_mismatch", RF_NEEDS_SENDER,
	  auth_login_mismatch, NULL },
	{ "reject_known_sender_login_mismatch", RF_NEEDS_SENDER,
	  known_login_mismatch, NULL },
	{ "reject_unauthenticated_sender_login_mismatch", RF_NEEDS_SENDER,
	  unauth_login_mismatch, NULL },
	{ "reject_sender_login_mismatch", RF_NEEDS_SENDER,
	  sender_login_mismatch, NULL },
	{ NULL, 0, NULL, NULL }
};
