/*
 * restriction_builtin.h - what the built-in client, HELO, sender and
 * recipient restrictions share (restriction_client.c, restriction_helo.c,
 * restriction_sender.c, restriction_recipient.c, restriction_dns.c).
 * Not for other subsystems: they use restriction.h.
 *
 * Replies follow Postfix's smtpd_check.c: a reply code read from its
 * parameter (unknown_client_reject_code, ...), an enhanced status code
 * whose class digit is forced to the reply code's (450 with "5.7.1"
 * becomes "4.7.1"), and Postfix's text.  Address restrictions look the
 * address up through the delivery side's routing (resolve.h): the same
 * address classes decide what is local, relayed or unknown.
 */
#ifndef SLUICE_RESTRICTION_BUILTIN_H
#define SLUICE_RESTRICTION_BUILTIN_H

#include <stdbool.h>
#include <stddef.h>

#include "resolve.h"
#include "restriction.h"

/* The tables restriction_list.c registers (each ends with { NULL }). */
extern const struct restriction_def restrictions_client[];
extern const struct restriction_def restrictions_helo[];
extern const struct restriction_def restrictions_sender[];
extern const struct restriction_def restrictions_recipient[];
extern const struct restriction_def restrictions_tls[];	/* restriction_tls.c */

/* Postfix's reply classes, as in "<a@b>: Sender address rejected: ...". */
#define RB_CLIENT	"Client host"
#define RB_HELO		"Helo command"
#define RB_SENDER	"Sender address"
#define RB_RECIPIENT	"Recipient address"

/* ---- replies (restriction_sender.c) ---- */

/* Reject with the code in parameter `code_param` (or `code` when
 * code_param is NULL), `dsn`'s class digit forced to the code's.
 * Returns RV_REJECT for a 5XX code, RV_DEFER for a 4XX one. */
int rb_reject(struct rcheck *c, const char *code_param, int code,
	      const char *dsn, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* A temporary failure (DNS, a table) under a *_tempfail_action
 * parameter: "defer_if_permit" (Postfix's default) remembers the reply
 * and lets the list go on; "defer" answers it now. */
int rb_tempfail(struct rcheck *c, const char *action_param, int code,
		const char *dsn, const char *name, const char *reply_class,
		const char *text);
/* "451 4.3.0 <name>: Temporary lookup failure", Postfix's answer when a
 * table fails. */
int rb_lookup_failure(struct rcheck *c, const char *name);

/* ---- DNS (restriction_dns.c) ---- */

enum rb_dns_result {
	RB_DNS_FOUND,           /* the name has what was asked */
	RB_DNS_NOTFOUND,        /* it has none of it */
	RB_DNS_NULLMX,          /* RFC 7505: it accepts no mail */
	RB_DNS_TEMPFAIL         /* no answer, a server failure, a timeout */
};

/* Called once from the event loop, unless the check was cancelled. */
typedef int (*rb_dns_done_fn)(struct rcheck *c, enum rb_dns_result res,
			      void *arg);

/* Postfix's reject_unknown_hostname lookup: A/AAAA, then MX (a null MX
 * counts as found).  Postfix's reject_unknown_mailhost lookup: MX, then
 * A/AAAA; a null MX is RB_DNS_NULLMX.  The client's reverse name: PTR,
 * then (reverse_only false) the forward lookup that must lead back.
 * Each returns RV_PENDING; done's verdict goes to rcheck_resume(). */
int rb_dns_hostname(struct rcheck *c, const char *name, rb_dns_done_fn done,
		    void *arg);
int rb_dns_mailhost(struct rcheck *c, const char *name, rb_dns_done_fn done,
		    void *arg);
int rb_dns_client(struct rcheck *c, const char *addr, bool reverse_only,
		  rb_dns_done_fn done, void *arg);

/* ---- address checks shared by sender and recipient
 * (restriction_sender.c) ---- */

/* Postfix's reject_non_fqdn_address(): the domain must be a valid host
 * name with a dot (address literals pass). */
int rb_non_fqdn_address(struct rcheck *c, const char *addr,
			const char *reply_class);
/* Postfix's reject_unknown_address(): final and literal domains pass,
 * others are looked up (MX, then A/AAAA); done gets the answer, which
 * rb_mailhost_verdict() turns into the reply. */
int rb_unknown_address(struct rcheck *c, const char *addr,
		       rb_dns_done_fn done);
int rb_mailhost_verdict(struct rcheck *c, enum rb_dns_result res,
			const char *addr,
			bool sender);

/* ---- host names and addresses (restriction_helo.c) ---- */

/* Postfix's valid_hostname(): letters, digits, '-' and '_' in labels of
 * at most 63, at most 255 in all, not all numeric.  No trailing dot. */
bool rb_valid_hostname(const char *name);
/* Postfix's valid_hostaddr(): a bare IPv4 or IPv6 address. */
bool rb_valid_hostaddr(const char *addr);
/* The name without one trailing dot (not "..") in buf; false if too long. */
bool rb_strip_dot(const char *name, char *buf, size_t len);
/* The domain after the last '@' ("" without one), as Postfix's strrchr. */
const char *rb_domain(const char *addr);

/* ---- address classes (restriction_recipient.c) ---- */

/* An address as the routing sees it. */
struct rb_addr {
	struct route r;         /* class, resolved form, error status */
	bool routed;            /* sender-specified routing in the local part */
	bool failed;            /* a table failed: try again later */
};

/* Resolve `addr` (resolve_route(): classes, transport_maps). */
void rb_resolve(struct rcheck *c, const char *addr, struct rb_addr *a);
/* Postfix's final classes: local, virtual alias, virtual mailbox. */
bool rb_class_final(enum addr_class cls);
/* Postfix's check_rcpt_maps() for a sender (reply class Sender address)
 * or a recipient: reject_unlisted_sender / reject_unlisted_recipient. */
int rb_check_rcpt_maps(struct rcheck *c, const char *addr, bool sender);

#endif
