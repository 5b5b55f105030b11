/*
 * qmgr_route.c - each pending recipient of a message to the addresses it
 * is delivered to, and each address to a transport and next hop.
 *
 * route_recipient() (resolve.h) does Postfix's chain: canonical
 * rewriting, virtual alias expansion (one to many), then the address
 * class and transport_maps.  Each address that comes out is queued with
 * the scheduler for its (transport, next hop), also when the route says
 * it cannot be delivered (an unknown virtual alias, error: or retry: in
 * transport_maps, a bad address, a table failure): then the transport is
 * error or retry and the next hop the status and reason, and the error
 * agent bounces or defers it, as Postfix's does.  When rewriting or
 * expansion fails, the recipient is deferred at once.
 * An expansion delivered in an earlier visit (qmgr_state.c) is not
 * delivered again; a recipient whose expansions were all delivered is
 * marked done at once.  A message with a content filter (env.filter)
 * goes to the filter instead, every recipient as it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "qmgr.h"
#include "resolve.h"

/* Rewriting or expansion failed: try again next time (relay=none). */
static void defer_now(struct qmgr_msg *m, int a, const char *dsn,
		      const char *text)
{
	qmgr_addr_result(&m->addrs[a], QA_DEFERRED, dsn, text);
	qmgr_log_skip(m, &m->addrs[a], "deferred", dsn, text);
}

/* "4.3.0 text" -> dsn and text. */
static void split_why(const char *why, char *dsn, size_t dlen,
		      const char **text)
{
	size_t n = strspn(why, "0123456789.");

	if (n > 0 && n < dlen && why[n] == ' ') {
		memcpy(dsn, why, n);
		dsn[n] = 0;
		*text = why + n + 1;
	} else {
		snprintf(dsn, dlen, "4.3.0");
		*text = why;
	}
}

static void route_addresses(struct qmgr_msg *m, int index,
			    const struct route *r, int n)
{
	int added = 0, a;

	for (int k = 0; k < n; k++) {
		if (qmgr_state_was_done(m, index, r[k].addr))
			continue;
		a = qmgr_msg_add_addr(m, index, r[k].addr);
		added++;
		qmgr_sched_add(m, a, r[k].transport, r[k].nexthop);
	}
	if (added == 0) {
		/* Every expansion was done earlier: only the mark is missing. */
		a = qmgr_msg_add_addr(m, index, m->env.rcpt[index].addr);
		m->addrs[a].state = QA_DONE;
		qmgr_msg_commit_done(m, &a, 1);
	}
}

static void route_one(struct qmgr_msg *m, int index)
{
	const char *rcpt = m->env.rcpt[index].addr, *text;
	struct route *r = NULL;
	char why[512], dsn[16];
	int n = 0, a;

	if (route_recipient(m->q->cfg, rcpt, &r, &n, why, sizeof why) != 0) {
		split_why(why, dsn, sizeof dsn, &text);
		a = qmgr_msg_add_addr(m, index, rcpt);
		defer_now(m, a, dsn, text);
		return;
	}
	route_addresses(m, index, r, n);
	route_free(r);
}

/*
 * A message with a content filter (a FILTER action, content_filter): as
 * Postfix's queue manager, every recipient goes to the filter's
 * transport and next hop as it is, without routing; an empty next hop
 * means the recipient's domain.  The filter re-injects what it passes.
 */
static void route_filtered(struct qmgr_msg *m, int index)
{
	const char *rcpt = m->env.rcpt[index].addr;
	const char *colon = strchr(m->env.filter, ':');
	const char *at = strrchr(rcpt, '@');
	char transport[ROUTE_TRANSPORT_MAX];
	int a;

	snprintf(transport, sizeof transport, "%.*s",
		 (int)(colon ? colon - m->env.filter : (long)strlen(m->env.filter)),
		 m->env.filter);
	if (qmgr_state_was_done(m, index, rcpt)) {
		a = qmgr_msg_add_addr(m, index, rcpt);
		m->addrs[a].state = QA_DONE;
		qmgr_msg_commit_done(m, &a, 1);
		return;
	}
	a = qmgr_msg_add_addr(m, index, rcpt);
	qmgr_sched_add(m, a, transport, colon && colon[1] ? colon + 1
		       : at ? at + 1 : "");
}

void qmgr_route_msg(struct qmgr_msg *m)
{
	for (int i = 0; i < m->env.nrcpt; i++)
		if (m->env.rcpt[i].status != 'D') {
			if (m->env.filter && *m->env.filter)
				route_filtered(m, i);
			else
				route_one(m, i);
		}
}
