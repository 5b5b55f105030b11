/*
 * qmgr_msg.c - one message's visit to active/: read it, route it, and
 * when its last delivery has come back, end the visit.
 *
 * A visit starts when qmgr_scan.c has moved the file into active/: the
 * envelope is read (a damaged file goes to corrupt/), the sender is
 * rewritten, "ID: from=<...>, size=N, nrcpt=N (queue active)" is logged,
 * and every recipient still 'P' is routed into the scheduler's entries.
 * Each entry, and each notice being written, holds a reference; when the
 * last one is dropped, the visit ends, in this order:
 *   1. recipients that failed for good get one bounce for all of them;
 *      they are marked 'D' once it is on disk (qmgr_notify.c);
 *   2. NOTIFY=SUCCESS reports for what was delivered;
 *   3. every recipient 'D': the file is removed ("ID: removed");
 *      else it expires, or goes to deferred/ (qmgr_defer.c).
 * A stop in the middle leaves the file in active/: the next queue
 * manager schedules it again.
 *
 * The promise: a recipient's status byte becomes 'D' only after its
 * delivery succeeded or its bounce was committed, and that byte is on
 * stable storage (fdatasync) before the log says so.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "qmgr.h"
#include "rewrite.h"

static void msg_finish(struct qmgr_msg *m);

/* ---- addresses ------------------------------------------------------- */

int qmgr_msg_add_addr(struct qmgr_msg *m, int index, const char *addr)
{
	struct qmgr_addr *v = realloc(m->addrs, (size_t)(m->naddrs + 1) * sizeof *v);

	if (v == NULL)
		msg_fatal("out of memory");
	m->addrs = v;
	memset(&v[m->naddrs], 0, sizeof *v);
	if ((v[m->naddrs].addr = strdup(addr)) == NULL)
		msg_fatal("out of memory");
	v[m->naddrs].index = index;
	return m->naddrs++;
}

void qmgr_addr_result(struct qmgr_addr *a, enum qa_state state,
		      const char *dsn, const char *text)
{
	a->state = state;
	snprintf(a->dsn, sizeof a->dsn, "%s", dsn ? dsn : "");
	free(a->reason);
	if ((a->reason = strdup(text ? text : "")) == NULL)
		msg_fatal("out of memory");
}

/* Has every address of recipient `index` been done?  Then its status
 * byte may become 'D'. */
static bool index_done(const struct qmgr_msg *m, int index)
{
	for (int i = 0; i < m->naddrs; i++)
		if (m->addrs[i].index == index && m->addrs[i].state != QA_DONE)
			return false;
	return true;
}

bool qmgr_msg_mark_done(struct qmgr_msg *m, const int *addr, int n)
{
	bool changed = false;

	for (int k = 0; k < n; k++) {
		int idx = m->addrs[addr[k]].index;

		if (m->env.rcpt[idx].status == 'D' || !index_done(m, idx))
			continue;	/* one expansion of several: state file */
		if (queue_rcpt_set_status(m->fd, idx, 'D') < 0) {
			msg_warn("%s: cannot mark recipient %d done (it may be "
				 "delivered again): %s", m->id, idx, strerror(errno));
			continue;
		}
		m->env.rcpt[idx].status = 'D';
		changed = true;
	}
	return changed;
}

void qmgr_msg_sync(struct qmgr_msg *m)
{
	if (fdatasync(m->fd) < 0)
		msg_warn("%s: cannot sync the queue file (recipients may be "
			 "delivered again): %s", m->id, strerror(errno));
}

void qmgr_msg_commit_done(struct qmgr_msg *m, const int *addr, int n)
{
	if (qmgr_msg_mark_done(m, addr, n))
		qmgr_msg_sync(m);
}

/* ---- the start of a visit ------------------------------------------- */

static void to_corrupt(struct qmgr *q, const char *id, const char *why)
{
	char from[QUEUE_ID_MAX + 16], to[QUEUE_ID_MAX + 16];

	snprintf(from, sizeof from, "%s/%s", QUEUE_ACTIVE, id);
	snprintf(to, sizeof to, "%s/%s", QUEUE_CORRUPT, id);
	if (rename(from, to) < 0)
		msg_warn("%s: damaged queue file (%s), and it cannot be moved "
			 "to corrupt/: %s", id, why, strerror(errno));
	else
		msg_warn("%s: damaged queue file: %s; moved to corrupt/", id, why);
}

/* The sender as rewriting makes it (sender_canonical_maps...); false
 * when a table failed: the message waits for the next try. */
static bool rewrite_envelope_sender(struct qmgr_msg *m, char *why, size_t len)
{
	char *out = NULL;

	if (rewrite_sender(m->q->cfg, m->env.sender, &out, why, len) != 0)
		return false;
	free(m->env.sender);
	m->env.sender = out;
	return true;
}

/* A table failed while rewriting the sender: every pending recipient
 * waits for the next try. */
static void defer_everything(struct qmgr_msg *m, const char *why)
{
	const char *text = why;
	char dsn[16] = "4.3.0";

	if (sscanf(why, "%15[0-9.] ", dsn) == 1 && strchr(why, ' '))
		text = strchr(why, ' ') + 1;
	for (int i = 0; i < m->env.nrcpt; i++) {
		int a;

		if (m->env.rcpt[i].status == 'D')
			continue;
		a = qmgr_msg_add_addr(m, i, m->env.rcpt[i].addr);
		qmgr_addr_result(&m->addrs[a], QA_DEFERRED, dsn, text);
		qmgr_log_skip(m, &m->addrs[a], "deferred", dsn, text);
	}
}

/* Out of descriptors: back to incoming/, for a later scan; anything
 * else (permissions) waits in active/ for a human and the next start. */
static void cannot_open(const char *id, const char *path)
{
	char to[QUEUE_ID_MAX + 16];
	int err = errno;

	msg_warn("%s: cannot open %s: %s", id, path, strerror(err));
	snprintf(to, sizeof to, "%s/%s", QUEUE_INCOMING, id);
	if ((err == EMFILE || err == ENFILE) && rename(path, to) < 0)
		msg_warn("%s: cannot move %s to %s: %s", id, path, to,
			 strerror(errno));
}

static struct qmgr_msg *msg_open(struct qmgr *q, const char *id)
{
	struct qmgr_msg *m = calloc(1, sizeof *m);
	char err[256];

	if (m == NULL)
		msg_fatal("out of memory");
	m->q = q;
	snprintf(m->id, sizeof m->id, "%s", id);
	snprintf(m->path, sizeof m->path, "%s/%s", QUEUE_ACTIVE, id);
	if ((m->fd = open(m->path, O_RDWR | O_CLOEXEC)) < 0) {
		if (errno != ENOENT)
			cannot_open(id, m->path);
		free(m);
		return NULL;
	}
	if (queue_read_envelope_fd(m->fd, &m->env, err, sizeof err) < 0) {
		close(m->fd);
		free(m);
		to_corrupt(q, id, err);
		return NULL;
	}
	gettimeofday(&m->t_active, NULL);
	return m;
}

void qmgr_msg_activate(struct qmgr *q, const char *id, bool old, bool flush)
{
	struct qmgr_msg *m = msg_open(q, id);
	char why[512];

	if (m == NULL)
		return;
	m->old = old;
	m->flush = flush;
	TAILQ_INSERT_TAIL(&q->msgs, m, link);
	q->nmsgs++;
	m->refs = 1;			/* while routing */
	qmgr_state_load(m);
	if (!rewrite_envelope_sender(m, why, sizeof why)) {
		qmgr_log_queue_active(m);
		defer_everything(m, why);
	} else {
		qmgr_log_queue_active(m);	/* with the rewritten sender */
		qmgr_route_msg(m);
		qmgr_sched_seal(m);
	}
	qmgr_msg_unref(m);
	qmgr_kick(q);
}

/* ---- the end of a visit ---------------------------------------------- */

void qmgr_msg_unref(struct qmgr_msg *m)
{
	if (--m->refs == 0)
		msg_finish(m);
}

void qmgr_msg_free(struct qmgr_msg *m)
{
	struct qmgr *q = m->q;

	TAILQ_REMOVE(&q->msgs, m, link);
	q->nmsgs--;
	if (m->fd >= 0)
		close(m->fd);
	queue_envelope_free(&m->env);
	for (int i = 0; i < m->naddrs; i++) {
		free(m->addrs[i].addr);
		free(m->addrs[i].reason);
		free(m->addrs[i].relay);
	}
	free(m->addrs);
	for (int i = 0; i < m->ndone; i++)
		free(m->done_addrs[i]);
	free(m->done_addrs);
	free(m->done_index);
	free(m);
	qmgr_kick(q);
}

static bool all_done(const struct qmgr_msg *m)
{
	for (int i = 0; i < m->env.nrcpt; i++)
		if (m->env.rcpt[i].status != 'D')
			return false;
	return true;
}

static bool any_state(const struct qmgr_msg *m, enum qa_state st)
{
	for (int i = 0; i < m->naddrs; i++)
		if (m->addrs[i].state == st)
			return true;
	return false;
}

static void msg_remove(struct qmgr_msg *m)
{
	if (unlink(m->path) < 0 && errno != ENOENT) {
		msg_warn("%s: cannot remove %s: %s", m->id, m->path,
			 strerror(errno));
		qmgr_msg_free(m);
		return;
	}
	qmgr_state_remove(m->id);
	msg_info("%s: removed", m->id);
	qmgr_msg_free(m);
}

/* Stopping: what was not tried stays in active/ for the next start. */
static void msg_leave(struct qmgr_msg *m)
{
	qmgr_state_save(m);
	qmgr_msg_free(m);
}

static void msg_finish(struct qmgr_msg *m)
{
	if (!m->q->stopping && qmgr_notify_failures(m))
		return;			/* visit goes on when it is queued */
	qmgr_notify_success(m);
	if (all_done(m))
		msg_remove(m);
	else if (m->q->stopping && (any_state(m, QA_TODO) ||
				    any_state(m, QA_FAILED)))
		msg_leave(m);
	else
		qmgr_defer_msg(m);
}

/* Call again what msg_finish() waited for. */
void qmgr_msg_resume(struct qmgr_msg *m)
{
	m->refs++;
	qmgr_msg_unref(m);
}
