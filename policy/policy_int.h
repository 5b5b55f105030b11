/*
 * policy_int.h - what the policy client's files share: the connection
 * pool (policy_conn.c) and the request attributes (policy_request.c).
 * policy_client.c is the restriction that uses both.
 */
#ifndef SLUICE_POLICY_INT_H
#define SLUICE_POLICY_INT_H

#include <stddef.h>

#include "policy_client.h"

struct event_base;
struct rcheck;

/* ---- one query over the pool (policy_conn.c) ---- */

/* Called once from the event loop with the server's action, or with NULL
 * when every attempt failed (each failure was logged). */
typedef void (*policy_reply_fn)(void *arg, const char *action);
struct policy_query;

/* Send `request` (the attribute lines and the empty line) to the service:
 * an idle connection of the same service is reused, else one is opened;
 * try_limit attempts, retry_delay apart, each bounded by timeout.  A reply
 * line longer than line_limit, or a reply longer than four of them, is
 * garbage.  Never answers before this returns. */
struct policy_query *policy_query_start(struct event_base *base,
					const struct policy_service *ps,
					const char *request, size_t len,
					long long line_limit,
					policy_reply_fn fn, void *arg);
/* Forget the query (its session went away): fn is never called. */
void policy_query_cancel(struct policy_query *q);

/* ---- the request (policy_request.c) ---- */

/* The attributes Postfix 3.8 sends, in its order, for the session and
 * stage being evaluated, ending with the empty line.  Malloc'ed; *len
 * is its length. */
char *policy_request_build(struct rcheck *c, const char *policy_context,
			   size_t *len);

#endif
