/*
 * resolve.h - where a recipient goes: Postfix's address classes and
 * transport(5), the job of trivial-rewrite(8)'s "resolve".
 *
 * resolve_route() takes one rewritten recipient (after rewrite.h) and
 * gives its address class, the master.cf transport to hand it to, the
 * next hop, and the address as resolved.  The classes, in the order they
 * are tried (Postfix's):
 *
 *   local    domain in mydestination, or an [address literal] of
 *            inet_interfaces / proxy_interfaces: local_transport
 *            ("local:$myhostname"), next hop its ":nexthop" part
 *   alias    virtual_alias_domains (default $virtual_alias_maps): the
 *            address had no virtual alias, so it bounces: transport
 *            "error", "5.1.1 User unknown in virtual alias table"
 *   virtual  virtual_mailbox_domains (default $virtual_mailbox_maps):
 *            virtual_transport, next hop the recipient domain
 *   relay    relay_domains (subdomains too, per
 *            parent_domain_matches_subdomains): relay_transport
 *   default  everything else: default_transport
 *
 * For relay and default the next hop is relayhost when set, otherwise
 * the recipient domain (folded to lower case); a ":nexthop" in the
 * transport parameter overrides both.  "[host]:port" means no MX lookup
 * (the SMTP client's business; the next hop is passed as written).
 *
 * Then transport_maps (except for the alias class) may override both:
 * keys are the full address, the address without its extension, the
 * domain, its parents (".parent", or "parent" when transport_maps is in
 * parent_domain_matches_subdomains), then "*".  A value is
 * "transport:nexthop": an empty transport keeps the class's transport and
 * then an empty nexthop changes nothing (":" is a no-op); a transport
 * with an empty nexthop resets the next hop to the recipient domain.
 * "error:text" and "retry:text" make the next hop the reason, which may
 * start with a status ("error:5.1.1 no such user"); without text it is
 * "Address is undeliverable".  "smtp:[192.0.2.1]:2525",
 * "lmtp:unix:/run/dovecot/lmtp", "local:", "discard:" are ordinary values.
 *
 * Every function is pure apart from warnings in the log (table failures,
 * a domain listed in two classes); tables come through map.h and, like
 * them, are for one thread per process (the queue manager's loop).
 */
#ifndef SLUICE_RESOLVE_H
#define SLUICE_RESOLVE_H

#include <stddef.h>

struct config;

enum addr_class {
	ADDR_CLASS_LOCAL = 0,
	ADDR_CLASS_ALIAS,
	ADDR_CLASS_VIRTUAL,
	ADDR_CLASS_RELAY,
	ADDR_CLASS_DEFAULT,
};

#define ROUTE_ADDR_MAX		1024
#define ROUTE_TRANSPORT_MAX	64
#define ROUTE_NEXTHOP_MAX	1024

struct route {
	enum addr_class cls;
	/* 0: hand the recipient to `transport` for `nexthop`.
	 * 5 or 4: the route is the error or retry transport (a bounce or a
	 * deferral: virtual alias user unknown, "error:..." in
	 * transport_maps, bad address syntax, a table failure); dsn and
	 * reason say what to report.  The rest of the struct is filled in
	 * every case, so the caller may also give it to an error agent. */
	int status;
	char dsn[16];                           /* "5.1.1", status 4/5 only */
	char reason[512];                       /* text after the status */
	char addr[ROUTE_ADDR_MAX];              /* recipient as resolved */
	char transport[ROUTE_TRANSPORT_MAX];    /* master.cf service name */
	char nexthop[ROUTE_NEXTHOP_MAX];        /* domain, [host]:port, unix:/path, text */
};

/*
 * Resolve one recipient.  Returns r->status: 0, 5 or 4; `why` (may be
 * NULL) gets "D.S.N reason" when it is not 0.  The resolved address
 * differs from the input only in form: an unqualified address gets
 * "@$myhostname", an empty local part becomes MAILER-DAEMON, a trailing
 * dot of the domain goes.  A domain that is not a valid host name or
 * address literal, an address too long for r->addr, and (unless
 * allow_min_user) a local part starting with '-' give 5.1.3 "bad address
 * syntax"; a table that fails gives 4.3.0 "address resolver failure".
 */
int resolve_route(const struct config *c, const char *addr, struct route *r,
		  char *why, size_t whylen);

/*
 * The whole chain for one envelope recipient, as Postfix's cleanup then
 * queue manager do it: rewrite_recipient(), virtual_alias_expand(), then
 * resolve_route() on each result.  Returns 0 with *routes (free with
 * route_free) holding *n >= 1 routes, each with its own status; or 4 with
 * `why` when rewriting or expansion must be tried again later (nothing
 * allocated).
 */
int route_recipient(const struct config *c, const char *rcpt,
		    struct route **routes, int *n, char *why, size_t whylen);
void route_free(struct route *routes);

/*
 * The mailbox of a virtual mailbox domain recipient, for the agent that
 * delivers virtual_transport's mail: virtual_mailbox_maps (virtual(5)
 * order: user+ext@domain, user@domain, @domain) gives the path under
 * virtual_mailbox_base ("example.com/bob/" - a trailing '/' means
 * maildir).  0 with *path set to "$virtual_mailbox_base/value", 5 with
 * why "5.1.1 User unknown in virtual mailbox table", or 4 (4.3.0) when
 * the table fails.
 */
int resolve_virtual_mailbox(const struct config *c, const char *addr,
			    char *path, size_t pathlen, char *why,
			    size_t whylen);

/*
 * Another table of the virtual(8) agent, keyed like virtual_mailbox_maps
 * (user+ext@domain, user@domain, @domain): `param` is virtual_uid_maps
 * or virtual_gid_maps.  0 with *value (malloc'ed) set; 5 when no table
 * has the address (or the parameter is empty); 4 when a table fails (a
 * warning is logged).  *value is NULL unless 0 is returned.
 */
int resolve_virtual_lookup(const struct config *c, const char *param,
			   const char *addr, char **value);

/* "local", "virtual alias", "virtual mailbox", "relay", "default" */
const char *addr_class_name(enum addr_class cls);

/* The tables these functions use stay open from their first lookup (map.c
 * re-reads a table whose file changed).  After a reload, release them so
 * that tables no longer named in the configuration are closed. */
void route_tables_release(void);

#endif
