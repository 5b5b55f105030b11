/*
 * policy_client.h - the Postfix policy delegation client: the
 * check_policy_service restriction (SMTPD_POLICY_README).
 *
 * `check_policy_service inet:host:port`, `unix:/path` or Postfix 3's
 * `{ inet:host:port, timeout=10s, default_action=DUNNO, ... }` in any
 * smtpd_*_restrictions list sends the session's attributes to a policy
 * server over a persistent connection in the worker's event loop, and
 * applies the server's `action=` as an access(5) action (rcheck_action()):
 * the same effects as a table's.  A server that cannot be reached, is
 * too slow or answers garbage is logged and gives the service's
 * default_action.  The session waits (RV_PENDING), never the worker.
 *
 * restriction_list.c registers restrictions_policy[] with its built-in
 * tables, and restriction_arg_checks_policy[] so that a spec that does
 * not parse is refused when the lists are compiled (`sluice check`,
 * start-up) rather than when mail arrives.
 */
#ifndef SLUICE_POLICY_CLIENT_H
#define SLUICE_POLICY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "restriction.h"

/* check_policy_service, terminated by { NULL }. */
extern const struct restriction_def restrictions_policy[];
/* Its argument check (the spec parses), terminated by { NULL }. */
extern const struct restriction_arg_check restriction_arg_checks_policy[];

/* One service as configured: the endpoint and its options, the
 * smtpd_policy_service_* parameters filling in what the braces form does
 * not set. */
struct policy_service {
	char *endpoint;         /* "inet:127.0.0.1:10023", "unix:/path" */
	char *name;             /* as Postfix logs it: "127.0.0.1:10023" */
	bool is_unix;
	char *host, *port;      /* inet */
	char *path;             /* unix (relative: to the queue directory) */
	long long timeout, max_idle, max_ttl, retry_delay;   /* seconds */
	long long try_limit, request_limit;
	char *default_action;
	char *policy_context;
	char *key;              /* all of the above: equal keys share
				 * connections */
};

/* Parse a check_policy_service argument with the defaults of cfg.
 * 0, or -1 with the reason in err ("unknown attribute name: x").
 * policy_service_clear() frees what a successful parse allocated. */
struct config;
int policy_service_parse(const char *spec, const struct config *cfg,
			 struct policy_service *ps, char *err, size_t errlen);
void policy_service_clear(struct policy_service *ps);

#endif
