/*
 * qmgr_sched.c - transports, destinations and the choice of the next
 * delivery, as Postfix's queue manager makes it.
 *
 * A destination is a (transport, next hop) pair: "smtp" + "example.com",
 * "relay" + "[192.0.2.1]:2525".  When the transport's recipient limit is
 * 1 (local's default), the recipient is the destination, as in Postfix,
 * so local_destination_concurrency_limit counts deliveries per mailbox.
 * Each destination has two lists of entries waiting, new mail (from
 * incoming/) and old mail (deferred/, or left by an earlier run), which
 * it serves in turn; the scheduler serves the destinations round-robin.
 *
 * Concurrency: a destination starts with
 * TRANSPORT_initial_destination_concurrency (initial_destination_
 * concurrency) parallel deliveries; every delivery that reached the site
 * widens the window by 1/window, up to TRANSPORT_destination_
 * concurrency_limit (default_destination_concurrency_limit).  A delivery
 * that could not reach the site at all (SMTP/LMTP: every recipient
 * deferred without a connection) narrows it by 1/window; a window's worth
 * of such failures in a row (Postfix's failed cohort) makes the
 * destination dead for minimal_backoff_time: its waiting mail is deferred
 * at once, "delivery temporarily suspended: REASON", without a try.  A
 * transport never runs more deliveries at once than its master.cf
 * maxproc column (default_process_limit for "-").
 *
 * Transports not declared in master.cf: smtp, relay, lmtp, local,
 * virtual, discard, error and retry are built in with their usual
 * commands and main.cf's parameters, so a master.cf with only listeners
 * still delivers; any other name defers its mail ("mail transport
 * unavailable").  defer_transports' mail is deferred unless flushed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "qmgr.h"

#define DEST_HASH_SIZE	4096

struct qmgr_tp {			/* a transport in use */
	char *name;
	const struct transport *def;	/* NULL: unknown */
	int conc_limit, rcpt_limit, initial;
	int maxproc, active;
	bool deferred;			/* in defer_transports */
	struct qmgr_tp *next;
};

struct qmgr_dest {
	char *transport, *nexthop;
	struct qmgr_tp *tp;
	struct qmgr_entry_list todo[2];	/* [0] new mail, [1] old mail */
	int ntodo;
	bool old_turn;
	int active;
	double window, fail_cohorts;
	time_t dead_until;
	char dead_dsn[16];
	char *dead_reason;
	bool ready;			/* on the ready list */
	struct qmgr_msg *open_msg;	/* the message being routed, and */
	struct qmgr_entry *open;	/* its entry still taking addresses */
	TAILQ_ENTRY(qmgr_dest) ready_link;
	struct qmgr_dest *hnext;
};

struct qmgr_sched {
	struct qmgr_dest *hash[DEST_HASH_SIZE];
	TAILQ_HEAD(, qmgr_dest) ready;
	struct qmgr_tp *tps;
	struct transport builtin[8];
	struct qmgr_dest **touched;	/* dests with an open entry */
	int ntouched, captouched;
	int busy;
};

static const char *const builtin_names[8][2] = {
	{ "smtp", "smtp" }, { "relay", "smtp" }, { "lmtp", "lmtp" },
	{ "local", "local" }, { "virtual", "virtual" },
	{ "discard", "discard" }, { "error", "error" }, { "retry", "error" },
};

int qmgr_sched_init(struct qmgr *q)
{
	struct qmgr_sched *s = calloc(1, sizeof *s);

	if (s == NULL)
		return -1;
	TAILQ_INIT(&s->ready);
	for (int i = 0; i < 8; i++) {
		s->builtin[i].name = (char *)builtin_names[i][0];
		s->builtin[i].command = (char *)builtin_names[i][1];
		s->builtin[i].cfg = (struct config *)q->cfg;
		s->builtin[i].file = (char *)"(built in)";
	}
	q->sched = s;
	return 0;
}

/* ---- transports ------------------------------------------------------ */

/* master.cf's definition, or the built-in one for the standard names;
 * NULL for an unknown transport. */
static const struct transport *transport_def(const struct qmgr *q,
					     const char *name)
{
	const struct transport *t = config_transport(q->sc, name);

	if (t != NULL)
		return t;
	for (int i = 0; i < 8; i++)
		if (strcmp(q->sched->builtin[i].name, name) == 0)
			return &q->sched->builtin[i];
	return NULL;
}

/* TRANSPORT_SUFFIX from main.cf, else the parameter `fallback`. */
static int tp_number(const struct qmgr *q, const char *tp, const char *suffix,
		     const char *fallback)
{
	char name[256];
	const char *v;
	char *end;
	long n;

	snprintf(name, sizeof name, "%s%s", tp, suffix);
	if ((v = cfg_lookup(q->cfg, name)) != NULL && *v) {
		n = strtol(v, &end, 10);
		if (*end == 0 && n >= 0 && n < 1000000)
			return (int)n;
		msg_warn("%s = %s: not a number; using %s", name, v, fallback);
	}
	return (int)cfg_int(q->cfg, fallback);
}

static bool listed(char **list, const char *name)
{
	for (int i = 0; list && list[i]; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

static struct qmgr_tp *tp_get(struct qmgr *q, const char *name)
{
	struct qmgr_sched *s = q->sched;
	struct qmgr_tp *tp;
	int cap;

	for (tp = s->tps; tp; tp = tp->next)
		if (strcmp(tp->name, name) == 0)
			return tp;
	if ((tp = calloc(1, sizeof *tp)) == NULL ||
	    (tp->name = strdup(name)) == NULL)
		msg_fatal("out of memory");
	tp->def = transport_def(q, name);
	tp->conc_limit = tp_number(q, name, "_destination_concurrency_limit",
				   "default_destination_concurrency_limit");
	tp->rcpt_limit = tp_number(q, name, "_destination_recipient_limit",
				   "default_destination_recipient_limit");
	tp->initial = tp_number(q, name, "_initial_destination_concurrency",
				"initial_destination_concurrency");
	tp->maxproc = tp->def && tp->def->maxproc > 0 ? tp->def->maxproc
	    : q->p.default_process_limit;
	cap = qmgr_deliver_rcpt_max(q, tp->def);
	if (cap > 0 && (tp->rcpt_limit == 0 || tp->rcpt_limit > cap))
		tp->rcpt_limit = cap;
	tp->deferred = listed(q->p.defer_transports, name);
	if (tp->conc_limit < 1)
		tp->conc_limit = 1;
	if (tp->initial < 1 || tp->initial > tp->conc_limit)
		tp->initial = tp->initial < 1 ? 1 : tp->conc_limit;
	tp->next = s->tps;
	s->tps = tp;
	return tp;
}

/* ---- destinations ---------------------------------------------------- */

static unsigned dest_hash(const char *t, const char *h)
{
	unsigned v = 5381;

	for (; *t; t++)
		v = v * 33 + (unsigned char)*t;
	for (v = v * 33; *h; h++)
		v = v * 33 + (unsigned char)*h;
	return v % DEST_HASH_SIZE;
}

static struct qmgr_dest *dest_get(struct qmgr *q, const char *transport,
				  const char *nexthop)
{
	struct qmgr_sched *s = q->sched;
	unsigned h = dest_hash(transport, nexthop);
	struct qmgr_dest *d;

	for (d = s->hash[h]; d; d = d->hnext)
		if (strcmp(d->transport, transport) == 0 &&
		    strcmp(d->nexthop, nexthop) == 0)
			return d;
	if ((d = calloc(1, sizeof *d)) == NULL ||
	    (d->transport = strdup(transport)) == NULL ||
	    (d->nexthop = strdup(nexthop)) == NULL)
		msg_fatal("out of memory");
	d->tp = tp_get(q, transport);
	d->window = d->tp->initial;
	TAILQ_INIT(&d->todo[0]);
	TAILQ_INIT(&d->todo[1]);
	d->hnext = s->hash[h];
	s->hash[h] = d;
	return d;
}

static void dest_free(struct qmgr *q, struct qmgr_dest *d)
{
	struct qmgr_dest **pp = &q->sched->hash[dest_hash(d->transport,
							  d->nexthop)];

	while (*pp != d)
		pp = &(*pp)->hnext;
	*pp = d->hnext;
	free(d->transport);
	free(d->nexthop);
	free(d->dead_reason);
	free(d);
}

static bool dest_dead(struct qmgr_dest *d, time_t now)
{
	if (d->dead_until == 0)
		return false;
	if (now < d->dead_until)
		return true;
	d->dead_until = 0;		/* try again, from the start */
	d->fail_cohorts = 0;
	d->window = d->tp->initial;
	return false;
}

/* Free a destination with nothing to do and nothing to remember (its
 * failures since the last success count until the queue run sweeps). */
static void dest_gc(struct qmgr *q, struct qmgr_dest *d)
{
	if (d->ntodo == 0 && d->active == 0 && !d->ready && d->open == NULL &&
	    d->fail_cohorts == 0 && !dest_dead(d, time(NULL)))
		dest_free(q, d);
}

static void make_ready(struct qmgr_sched *s, struct qmgr_dest *d)
{
	if (!d->ready) {
		d->ready = true;
		TAILQ_INSERT_TAIL(&s->ready, d, ready_link);
	}
}

/* ---- adding work ----------------------------------------------------- */

static void touched_add(struct qmgr_sched *s, struct qmgr_dest *d)
{
	if (s->ntouched == s->captouched) {
		int cap = s->captouched ? s->captouched * 2 : 16;
		struct qmgr_dest **v = realloc(s->touched, (size_t)cap * sizeof *v);

		if (v == NULL)
			msg_fatal("out of memory");
		s->touched = v;
		s->captouched = cap;
	}
	s->touched[s->ntouched++] = d;
}

static struct qmgr_entry *entry_new(struct qmgr_msg *m, struct qmgr_dest *d,
				    const char *nexthop)
{
	struct qmgr_entry *e = calloc(1, sizeof *e);

	if (e == NULL || (e->nexthop = strdup(nexthop)) == NULL)
		msg_fatal("out of memory");
	e->msg = m;
	e->dest = d;
	e->transport = d->transport;
	m->refs++;
	TAILQ_INSERT_TAIL(&d->todo[m->old ? 1 : 0], e, link);
	d->ntodo++;
	return e;
}

static void entry_add_addr(struct qmgr_entry *e, int a)
{
	int *v = realloc(e->addr, (size_t)(e->n + 1) * sizeof *v);

	if (v == NULL)
		msg_fatal("out of memory");
	e->addr = v;
	e->addr[e->n++] = a;
	e->msg->addrs[a].state = QA_BUSY;
}

void qmgr_sched_add(struct qmgr_msg *m, int a, const char *transport,
		    const char *nexthop)
{
	struct qmgr_sched *s = m->q->sched;
	struct qmgr_tp *tp = tp_get(m->q, transport);
	struct qmgr_dest *d;

	/* One recipient per delivery: the recipient is the destination. */
	d = dest_get(m->q, transport, tp->rcpt_limit == 1 ? m->addrs[a].addr
		     : nexthop);
	if (d->open_msg != m || d->open == NULL ||
	    (tp->rcpt_limit > 0 && d->open->n >= tp->rcpt_limit)) {
		if (d->open == NULL)
			touched_add(s, d);
		d->open_msg = m;
		d->open = entry_new(m, d, nexthop);
	}
	entry_add_addr(d->open, a);
	make_ready(s, d);
}

void qmgr_sched_seal(struct qmgr_msg *m)
{
	struct qmgr_sched *s = m->q->sched;

	for (int i = 0; i < s->ntouched; i++) {
		s->touched[i]->open = NULL;
		s->touched[i]->open_msg = NULL;
	}
	s->ntouched = 0;
}

/* ---- choosing the next delivery ------------------------------------- */

static struct qmgr_entry *dest_pop(struct qmgr_dest *d)
{
	int first = d->old_turn ? 1 : 0;
	struct qmgr_entry *e;

	for (int k = 0; k < 2; k++) {
		int i = (first + k) % 2;

		if ((e = TAILQ_FIRST(&d->todo[i])) != NULL) {
			TAILQ_REMOVE(&d->todo[i], e, link);
			d->ntodo--;
			d->old_turn = i == 0;
			return e;
		}
	}
	return NULL;
}

/* Finish every waiting entry of d without a try. */
static void dest_skip_all(struct qmgr_dest *d, bool only_unflushed,
			  int status, const char *dsn, const char *why)
{
	struct qmgr_entry_list keep;
	struct qmgr_entry *e;

	TAILQ_INIT(&keep);
	while ((e = dest_pop(d)) != NULL) {
		if (only_unflushed && e->msg->flush) {
			TAILQ_INSERT_TAIL(&keep, e, link);
			continue;
		}
		qmgr_deliver_skip(e, status, dsn, "%s", why);
	}
	while ((e = TAILQ_FIRST(&keep)) != NULL) {
		TAILQ_REMOVE(&keep, e, link);
		TAILQ_INSERT_TAIL(&d->todo[e->msg->old ? 1 : 0], e, link);
		d->ntodo++;
	}
}

/* Mail that must wait without a try: dead destination, unknown or
 * deferred transport.  True when d has nothing left to start now. */
static bool dest_hold_back(struct qmgr_dest *d, time_t now)
{
	char why[600];

	if (d->tp->def == NULL) {
		dest_skip_all(d, false, 4, "4.3.0", "mail transport unavailable");
		return true;
	}
	if (dest_dead(d, now)) {
		snprintf(why, sizeof why, "delivery temporarily suspended: %s",
			 d->dead_reason ? d->dead_reason : "destination is down");
		dest_skip_all(d, false, 4, d->dead_dsn, why);
		return true;
	}
	if (d->tp->deferred)
		dest_skip_all(d, true, 4, "4.3.2", "deferred transport");
	return d->ntodo == 0;
}

static bool dest_can_start(const struct qmgr_dest *d)
{
	return d->ntodo > 0 && d->active < (int)floor(d->window) &&
	       d->tp->active < d->tp->maxproc;
}

static bool start_one(struct qmgr *q, struct qmgr_dest *d)
{
	struct qmgr_entry *e = dest_pop(d);

	if (e == NULL)
		return false;
	d->active++;
	d->tp->active++;
	q->sched->busy++;
	qmgr_deliver(e, d->tp->def);
	return true;
}

/* One pass over the ready destinations: at most one start each. */
static bool run_pass(struct qmgr *q, time_t now)
{
	struct qmgr_sched *s = q->sched;
	struct qmgr_dest *d, *next;
	bool started = false;

	for (d = TAILQ_FIRST(&s->ready); d != NULL; d = next) {
		next = TAILQ_NEXT(d, ready_link);
		if (d->open != NULL)
			continue;	/* being filled */
		if (d->ntodo == 0 || dest_hold_back(d, now)) {
			TAILQ_REMOVE(&s->ready, d, ready_link);
			d->ready = false;
			dest_gc(q, d);
			continue;
		}
		if (dest_can_start(d))
			started |= start_one(q, d);
	}
	return started;
}

void qmgr_sched_run(struct qmgr *q)
{
	time_t now = time(NULL);

	if (q->stopping)
		return;
	while (run_pass(q, now))
		;
}

/* ---- results --------------------------------------------------------- */

static void dest_dies(struct qmgr *q, struct qmgr_dest *d, const char *dsn,
		      const char *reason)
{
	d->dead_until = time(NULL) + (time_t)q->p.min_backoff;
	snprintf(d->dead_dsn, sizeof d->dead_dsn, "%s", dsn && *dsn ? dsn : "4.4.1");
	free(d->dead_reason);
	d->dead_reason = strdup(reason ? reason : "destination is down");
	d->window = d->tp->initial;
	d->fail_cohorts = 0;
	make_ready(q->sched, d);	/* defer what waits */
}

void qmgr_sched_done(struct qmgr_entry *e, bool site_ok, bool site_failed,
		     const char *dsn, const char *reason)
{
	struct qmgr_dest *d = e->dest;
	struct qmgr *q = e->msg->q;
	double w = d->window < 1 ? 1 : d->window;

	e->dest = NULL;			/* it may go now */
	d->active--;
	d->tp->active--;
	q->sched->busy--;
	if (site_failed) {
		d->fail_cohorts += 1.0 / w;
		d->window = w - 1.0 / w < 1 ? 1 : w - 1.0 / w;
		if (d->fail_cohorts >= 1.0 - 1e-9)
			dest_dies(q, d, dsn, reason);
	} else if (site_ok) {
		d->fail_cohorts = 0;
		d->window = w + 1.0 / w;
		if (d->window > d->tp->conc_limit)
			d->window = d->tp->conc_limit;
	}
	if (d->ntodo > 0)
		make_ready(q->sched, d);
	if (!d->ready)
		dest_gc(q, d);
	qmgr_kick(q);
}

void qmgr_entry_free(struct qmgr_entry *e)
{
	struct qmgr_msg *m = e->msg;

	delivery_clear(&e->req);
	free(e->req.rcpt);
	free(e->addr);
	free(e->nexthop);
	free(e);
	qmgr_msg_unref(m);
}

void qmgr_sched_flush_dead(struct qmgr *q)
{
	for (int h = 0; h < DEST_HASH_SIZE; h++)
		for (struct qmgr_dest *d = q->sched->hash[h]; d; d = d->hnext)
			if (d->dead_until != 0) {
				d->dead_until = 1;	/* expired */
				make_ready(q->sched, d);
			}
	qmgr_kick(q);
}

int qmgr_sched_busy(const struct qmgr *q)
{
	return q->sched->busy;
}

/* Stopping: entries not started are forgotten; their addresses stay as
 * not tried (the file stays in active/ for the next start). */
void qmgr_sched_abandon(struct qmgr *q)
{
	struct qmgr_sched *s = q->sched;
	struct qmgr_dest *d;
	struct qmgr_entry *e;

	while ((d = TAILQ_FIRST(&s->ready)) != NULL) {
		TAILQ_REMOVE(&s->ready, d, ready_link);
		d->ready = false;
		while ((e = dest_pop(d)) != NULL) {
			for (int i = 0; i < e->n; i++)
				e->msg->addrs[e->addr[i]].state = QA_TODO;
			qmgr_entry_free(e);
		}
	}
}

/* Destinations remembered only for being dead or failing, once that is
 * over (every queue_run_delay). */
void qmgr_sched_sweep(struct qmgr *q)
{
	time_t now = time(NULL);

	for (int h = 0; h < DEST_HASH_SIZE; h++) {
		struct qmgr_dest *d = q->sched->hash[h], *next;

		for (; d != NULL; d = next) {
			next = d->hnext;
			if (!d->ready && d->ntodo == 0 && d->active == 0 &&
			    d->open == NULL && !dest_dead(d, now))
				dest_free(q, d);
		}
	}
}

void qmgr_sched_free(struct qmgr *q)
{
	struct qmgr_sched *s = q->sched;
	struct qmgr_tp *tp;

	if (s == NULL)
		return;
	qmgr_sched_abandon(q);
	for (int h = 0; h < DEST_HASH_SIZE; h++)
		while (s->hash[h] != NULL)
			dest_free(q, s->hash[h]);
	while ((tp = s->tps) != NULL) {
		s->tps = tp->next;
		free(tp->name);
		free(tp);
	}
	free(s->touched);
	free(s);
	q->sched = NULL;
}
