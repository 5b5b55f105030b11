/*
 * restriction_recipient.c - Postfix's built-in recipient restrictions,
 * its recipient table check, and the address classes they share with the
 * sender restrictions (restriction_builtin.h).
 *
 *   permit_auth_destination         OK for a final (local, virtual alias,
 *                                   virtual mailbox) or relay_domains
 *                                   destination
 *   reject_unauth_destination       554 5.7.1 "<r>: Relay access denied"
 *                                   otherwise (relay_domains_reject_code)
 *   defer_unauth_destination        the same, 454 4.7.1 (the code - 100)
 *   reject_non_fqdn_recipient       504 5.5.2 "... need fully-qualified address"
 *   reject_unknown_recipient_domain 450 4.1.2 "<r>: Recipient address
 *                                   rejected: Domain not found"
 *                                   (unknown_address_reject_code; null MX:
 *                                   556 5.1.10)
 *   reject_unlisted_recipient       (also check_recipient_maps) the
 *                                   recipient tables of the address class:
 *                                   550 5.1.1 "User unknown in local
 *                                   recipient table" (local_recipient_maps),
 *                                   "... in relay recipient table"
 *                                   (relay_recipient_maps), "... in virtual
 *                                   mailbox table" (virtual_mailbox_maps),
 *                                   "... in virtual alias table"
 *                                   (virtual_alias_domains without a
 *                                   virtual_alias_maps entry); each with its
 *                                   unknown_*_reject_code
 *   reject_multi_recipient_bounce   550 5.5.3 "<name>: <class> rejected:
 *                                   Multi-recipient bounce" for MAIL FROM:<>
 *                                   with more than one recipient (at RCPT:
 *                                   a second one; at DATA: more than one)
 *
 * Secure routing, as Postfix with allow_untrusted_routing = no: an
 * address whose local part holds sender-specified routing (user%host,
 * host!user, a quoted "user@host") is never an authorized destination,
 * whatever its domain, so it cannot be relayed through a local or
 * relay_domains domain.  Source routes (@a:user@b) are stripped by the
 * SMTP server before the restrictions see the address.
 *
 * A table that fails answers "451 4.3.0 <r>: Temporary lookup failure".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "access_action.h"
#include "config.h"
#include "restriction_builtin.h"
#include "route_internal.h"
#include "smtp_session.h"

/* resolve.c's reason when a table failed ("4.3.0 address resolver failure"). */
#define RESOLVER_FAILURE	"address resolver failure"
#define ROUTING_CHARS		"@%!"

/* ---- address classes ------------------------------------------------------ */

/* Sender-specified routing: '@', '%' or '!' in the local part, quoted or
 * not (Postfix's resolve_dequoted_address = yes view). */
static bool local_part_routes(const char *addr)
{
	const char *at = route_at(addr);
	size_t n = at ? (size_t)(at - addr) : strlen(addr);

	for (size_t i = 0; i < n; i++)
		if (strchr(ROUTING_CHARS, addr[i]) != NULL)
			return true;
	return false;
}

void rb_resolve(struct rcheck *c, const char *addr, struct rb_addr *a)
{
	resolve_route(rcheck_config(c), addr, &a->r, NULL, 0);
	a->failed = a->r.status == 4 && strcmp(a->r.reason, RESOLVER_FAILURE) == 0;
	a->routed = local_part_routes(addr);
}

bool rb_class_final(enum addr_class cls)
{
	return cls == ADDR_CLASS_LOCAL || cls == ADDR_CLASS_ALIAS ||
	       cls == ADDR_CLASS_VIRTUAL;
}

static bool untrusted_routing_allowed(struct rcheck *c)
{
	long long on = 0;

	return cfg_lookup_number(rcheck_config(c), "allow_untrusted_routing",
				 &on) == 0 && on != 0;
}

/* ---- relay control ------------------------------------------------------ */

static const char *rcpt_of(struct rcheck *c)
{
	return rcheck_session(c)->txn.cur_rcpt;
}

/* Postfix's permit_auth_destination(): RV_OK, RV_DUNNO, or the
 * temporary failure of a table. */
static int auth_destination(struct rcheck *c, const char *rcpt)
{
	struct rb_addr a;

	rb_resolve(c, rcpt, &a);
	if (a.failed)
		return rb_lookup_failure(c, rcpt);
	if (a.routed && !untrusted_routing_allowed(c)) {
		rcheck_trace(c, "%s: sender-specified routing: not an authorized destination",
			     rcpt);
		return RV_DUNNO;
	}
	rcheck_trace(c, "%s: %s domain", a.r.addr, addr_class_name(a.r.cls));
	if (rb_class_final(a.r.cls) || a.r.cls == ADDR_CLASS_RELAY)
		return RV_OK;
	return RV_DUNNO;
}

static int permit_auth_destination(struct rcheck *c, const char *arg, void *data)
{
	const char *rcpt = rcpt_of(c);

	(void)arg, (void)data;
	return rcpt ? auth_destination(c, rcpt) : RV_DUNNO;
}

static int unauth_destination(struct rcheck *c, bool defer)
{
	const char *rcpt = rcpt_of(c);
	long long code = 554;
	int verdict;

	if (rcpt == NULL)
		return RV_DUNNO;
	verdict = auth_destination(c, rcpt);
	if (verdict == RV_OK)
		return RV_DUNNO;
	if (verdict != RV_DUNNO)
		return verdict;
	if (cfg_lookup_number(rcheck_config(c), "relay_domains_reject_code",
			      &code) != 0)
		code = 554;
	return rb_reject(c, NULL, (int)(defer ? code - 100 : code),
			 defer ? "4.7.1" : "5.7.1",
			 "<%s>: Relay access denied", rcpt);
}

static int reject_unauth_destination(struct rcheck *c, const char *arg, void *data)
{
	(void)arg, (void)data;
	return unauth_destination(c, false);
}

static int defer_unauth_destination(struct rcheck *c, const char *arg, void *data)
{
	(void)arg, (void)data;
	return unauth_destination(c, true);
}

/* ---- address syntax and DNS ------------------------------------------------ */

static int non_fqdn_recipient(struct rcheck *c, const char *arg, void *data)
{
	const char *rcpt = rcpt_of(c);

	(void)arg, (void)data;
	return rcpt ? rb_non_fqdn_address(c, rcpt, RB_RECIPIENT) : RV_DUNNO;
}

static int rcpt_domain_done(struct rcheck *c, enum rb_dns_result res, void *arg)
{
	const char *rcpt = rcpt_of(c);

	(void)arg;
	return rcpt ? rb_mailhost_verdict(c, res, rcpt, false) : RV_DUNNO;
}

static int unknown_recipient_domain(struct rcheck *c, const char *arg, void *data)
{
	const char *rcpt = rcpt_of(c);

	(void)arg, (void)data;
	return rcpt ? rb_unknown_address(c, rcpt, rcpt_domain_done) : RV_DUNNO;
}

/* ---- recipient tables -------------------------------------------------------- */

/* Is addr a key of the tables of map parameter `param`?  ROUTE_*. */
static int listed(struct rcheck *c, const char *param, const char *addr)
{
	char *value = NULL;
	int rc;

	if (*cfg_str(rcheck_config(c), param) == 0)
		return ROUTE_NOTFOUND;
	rc = route_addr_find(rcheck_config(c), param, addr, &value, NULL);
	free(value);
	rcheck_trace(c, "%s: %s: %s", param, addr, rc == ROUTE_FOUND ? "found"
		     : rc == ROUTE_NOTFOUND ? "not found" : "lookup failure");
	return rc;
}

/* Postfix: an address a canonical or virtual alias table maps is valid. */
static int mapped(struct rcheck *c, const char *addr, bool sender)
{
	static const char *const rcpt_maps[] = { "recipient_canonical_maps",
		"canonical_maps", "virtual_alias_maps", NULL };
	static const char *const snd_maps[] = { "recipient_canonical_maps",
		"sender_canonical_maps", "canonical_maps", "virtual_alias_maps",
		NULL };
	const char *const *maps = sender ? snd_maps : rcpt_maps;
	int rc = ROUTE_NOTFOUND;

	for (int i = 0; maps[i] && rc == ROUTE_NOTFOUND; i++)
		rc = listed(c, maps[i], addr);
	return rc;
}

/* "user@..." where user is one of the addresses the queue absorbs. */
static bool match_left(const char *local, const char *addr)
{
	size_t n = strlen(local);

	return strncasecmp(local, addr, n) == 0 && addr[n] == '@';
}

static bool always_local(struct rcheck *c, const char *addr)
{
	const char *dbl = cfg_lookup(rcheck_config(c), "double_bounce_sender");

	return match_left(dbl ? dbl : "double-bounce", addr) ||
	       match_left("postmaster", addr) || match_left("MAILER-DAEMON", addr);
}

struct class_table {
	enum addr_class cls;
	const char *maps;           /* the recipient tables of the class */
	const char *code_param;     /* its reply code */
	const char *table_name;     /* "local recipient table" */
};

static const struct class_table class_tables[] = {
	{ ADDR_CLASS_LOCAL, "local_recipient_maps",
	  "unknown_local_recipient_reject_code", "local recipient table" },
	{ ADDR_CLASS_VIRTUAL, "virtual_mailbox_maps",
	  "unknown_virtual_mailbox_reject_code", "virtual mailbox table" },
	{ ADDR_CLASS_RELAY, "relay_recipient_maps",
	  "unknown_relay_recipient_reject_code", "relay recipient table" },
};

static bool show_table(struct rcheck *c)
{
	long long on = 1;

	return cfg_lookup_number(rcheck_config(c), "show_user_unknown_table_name",
				 &on) != 0 || on != 0;
}

/* The resolver's own answer: the error transport (virtual alias domain
 * without a mapping, "error:" in transport_maps) or retry. */
static int route_error(struct rcheck *c, const struct rb_addr *a,
		       const char *addr, bool sender)
{
	const char *reply_class = sender ? RB_SENDER : RB_RECIPIENT;
	char dsn[16];

	snprintf(dsn, sizeof dsn, "%s", a->r.dsn);
	access_dsn_fix(dsn, reply_class);
	rcheck_trace(c, "%s: resolves to the %s transport: %s %s", addr,
		     a->r.transport, a->r.dsn, a->r.reason);
	if (a->r.status == 4)
		return rb_reject(c, NULL, 450, dsn, "<%s>: %s rejected: %s",
				 addr, reply_class, a->r.reason);
	return rb_reject(c, a->r.cls == ADDR_CLASS_ALIAS
			 ? "unknown_virtual_alias_reject_code" : NULL, 550, dsn,
			 "<%s>: %s rejected: %s", addr, reply_class, a->r.reason);
}

static int class_check(struct rcheck *c, const struct rb_addr *a,
		       const char *addr, bool sender)
{
	const struct class_table *t = NULL;
	int rc;

	for (size_t i = 0; i < sizeof class_tables / sizeof class_tables[0]; i++)
		if (class_tables[i].cls == a->r.cls)
			t = &class_tables[i];
	if (t == NULL || *cfg_str(rcheck_config(c), t->maps) == 0) {
		rcheck_trace(c, "%s: %s domain: no recipient table to check",
			     a->r.addr, addr_class_name(a->r.cls));
		return RV_DUNNO;
	}
	if (t->cls == ADDR_CLASS_LOCAL && always_local(c, a->r.addr)) {
		rcheck_trace(c, "%s: always accepted", a->r.addr);
		return RV_DUNNO;
	}
	if ((rc = listed(c, t->maps, a->r.addr)) == ROUTE_FAIL)
		return rb_lookup_failure(c, addr);
	if (rc == ROUTE_FOUND)
		return RV_DUNNO;
	/* Postfix says 5.1.0 for an unknown sender, except in a virtual
	 * alias domain, where its fixed 5.1.1 becomes the sender's 5.1.7 */
	return rb_reject(c, t->code_param, 550, !sender ? "5.1.1"
			 : t->cls == ADDR_CLASS_ALIAS ? "5.1.7" : "5.1.0",
			 "<%s>: %s rejected: User unknown%s%s", addr,
			 sender ? RB_SENDER : RB_RECIPIENT,
			 show_table(c) ? " in " : "", show_table(c) ? t->table_name : "");
}

int rb_check_rcpt_maps(struct rcheck *c, const char *addr, bool sender)
{
	struct rb_addr a;
	int rc;

	rb_resolve(c, addr, &a);
	if (a.failed)
		return rb_lookup_failure(c, addr);
	if ((rc = mapped(c, a.r.addr, sender)) == ROUTE_FAIL)
		return rb_lookup_failure(c, addr);
	if (rc == ROUTE_FOUND)
		return RV_DUNNO;
	if (a.r.status != 0)
		return route_error(c, &a, addr, sender);
	return class_check(c, &a, addr, sender);
}

static int unlisted_recipient(struct rcheck *c, const char *arg, void *data)
{
	const char *rcpt = rcpt_of(c);

	(void)arg, (void)data;
	if (rcpt == NULL || *rcpt == 0)
		return RV_DUNNO;
	if (!rcheck_warn_if_reject(c))
		rcheck_unlisted_checked(c, true);
	return rb_check_rcpt_maps(c, rcpt, false);
}

int restriction_implicit_unlisted(struct rcheck *c, bool recipient)
{
	struct smtp_session *s = rcheck_session(c);
	const char *param = recipient ? "smtpd_reject_unlisted_recipient"
				      : "smtpd_reject_unlisted_sender";
	const char *addr = recipient ? s->txn.cur_rcpt : s->txn.env.sender;
	long long on = recipient;

	(void)cfg_lookup_number(rcheck_config(c), param, &on);
	if (!on || addr == NULL || *addr == 0)
		return RV_DUNNO;
	rcheck_trace(c, "%s = yes: checking the %s tables", param,
		     recipient ? "recipient" : "sender");
	return rb_check_rcpt_maps(c, addr, !recipient);
}

/* ---- multi-recipient bounces --------------------------------------------------- */

static int multi_recipient_bounce(struct rcheck *c, const char *arg, void *data)
{
	struct smtp_session *s = rcheck_session(c);
	enum rstage stage = rcheck_list_stage(c);
	int after = stage == RS_DATA || stage == RS_END_OF_DATA;
	(void)arg, (void)data;
	if (!s->txn.active || s->txn.env.sender == NULL ||
	    *s->txn.env.sender != 0 || s->txn.env.nrcpt <= after) {
		rcheck_trace(c, "not a bounce to more than one recipient");
		return RV_DUNNO;
	}
	rcheck_trace(c, "MAIL FROM:<> with %d recipients", s->txn.env.nrcpt + !after);
	return rb_reject(c, "multi_recipient_bounce_reject_code", 550, "5.5.3",
			 "<%s>: %s rejected: Multi-recipient bounce",
			 rcheck_reply_name(c), rcheck_reply_class(c));
}

const struct restriction_def restrictions_recipient[] = {
	{ "permit_auth_destination", RF_NEEDS_RCPT, permit_auth_destination, NULL },
	{ "reject_unauth_destination", RF_NEEDS_RCPT, reject_unauth_destination, NULL },
	{ "defer_unauth_destination", RF_NEEDS_RCPT, defer_unauth_destination, NULL },
	{ "reject_non_fqdn_recipient", RF_NEEDS_RCPT, non_fqdn_recipient, NULL },
	{ "reject_unknown_recipient_domain", RF_NEEDS_RCPT, unknown_recipient_domain, NULL },
	{ "reject_unlisted_recipient", RF_NEEDS_RCPT, unlisted_recipient, NULL },
	{ "check_recipient_maps", RF_NEEDS_RCPT, unlisted_recipient, NULL },
	{ "reject_multi_recipient_bounce", 0, multi_recipient_bounce, NULL },
	{ NULL, 0, NULL, NULL }
};
