/*
 * qmgr_notify.c - the notices a visit ends with, through bounce_send()
 * (bounce.h): one non-delivery notice for every recipient of the visit
 * that failed for good (or expired), a delivery report for those that
 * asked for one (NOTIFY=SUCCESS), a delay notice once the message has
 * waited delay_warning_time.  bounce_send() leaves out recipients whose
 * NOTIFY excludes the kind, and sends bounces of bounces to the
 * postmaster.
 *
 * A failed recipient is marked 'D' only once its bounce is on stable
 * storage; if the bounce cannot be queued it stays pending (deferred,
 * "cannot queue the bounce: ...") and fails again at the next attempt.
 * Delay and success notices are reported by bounce_send()'s log lines;
 * losing one to a full disk is logged and not retried.  A notice, once
 * committed, is a new message in incoming/: the queue manager scans for
 * it at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "log.h"
#include "qmgr.h"

struct bounce_job {
	struct qmgr_msg *m;
	int *addr;
	int n;
};

static void fill_rcpt(const struct qmgr_msg *m, const struct qmgr_addr *a,
		      enum bounce_action action, struct bounce_rcpt *r)
{
	const struct queue_rcpt *qr = &m->env.rcpt[a->index];

	memset(r, 0, sizeof *r);
	r->addr = a->addr;
	r->orig_addr = strcmp(qr->addr, a->addr) ? qr->addr : NULL;
	r->orcpt = qr->orcpt;
	r->notify = qr->notify;
	r->action = action;
	r->dsn = a->dsn[0] ? a->dsn : NULL;
	r->reason = a->reason;
	r->relay = a->relay;
}

/* Collect the addresses of m in state `st` (and `want` for success). */
static int collect(const struct qmgr_msg *m, enum qa_state st, bool success,
		   int *out)
{
	int n = 0;

	for (int i = 0; i < m->naddrs; i++)
		if (m->addrs[i].state == st && (!success || m->addrs[i].success))
			out[n++] = i;
	return n;
}

static struct bounce_rcpt *make_rcpts(const struct qmgr_msg *m,
				      const int *addr, int n,
				      enum bounce_action action)
{
	struct bounce_rcpt *r = calloc((size_t)n + 1, sizeof *r);

	if (r == NULL)
		msg_fatal("out of memory");
	for (int i = 0; i < n; i++)
		fill_rcpt(m, &m->addrs[addr[i]],
			  action == BOUNCE_ACTION_AUTO && m->addrs[addr[i]].relayed
			  ? BOUNCE_ACTION_RELAYED : action, &r[i]);
	return r;
}

/* ---- failures ----------------------------------------------------- */

static void bounce_failed(struct qmgr_msg *m, const int *addr, int n, int err)
{
	char text[300];

	snprintf(text, sizeof text, "cannot queue the bounce: %s",
		 strerror(err));
	msg_warn("%s: %s", m->id, text);
	for (int i = 0; i < n; i++)
		qmgr_addr_result(&m->addrs[addr[i]], QA_DEFERRED, "4.3.0", text);
}

static void on_bounced(void *arg, int err)
{
	struct bounce_job *job = arg;
	struct qmgr_msg *m = job->m;

	m->q->notices--;
	if (err != 0) {
		bounce_failed(m, job->addr, job->n, err);
	} else {
		for (int i = 0; i < job->n; i++)
			m->addrs[job->addr[i]].state = QA_DONE;
		qmgr_msg_commit_done(m, job->addr, job->n);
		qmgr_scan_request(m->q, QQ_INCOMING, false);
	}
	free(job->addr);
	free(job);
	qmgr_msg_unref(m);
}

bool qmgr_notify_failures(struct qmgr_msg *m)
{
	struct bounce_job *job = calloc(1, sizeof *job);
	struct bounce_rcpt *r;
	int rc;

	if (job == NULL || (job->addr = calloc((size_t)m->naddrs + 1,
					       sizeof *job->addr)) == NULL)
		msg_fatal("out of memory");
	job->m = m;
	if ((job->n = collect(m, QA_FAILED, false, job->addr)) == 0) {
		free(job->addr);
		free(job);
		return false;
	}
	r = make_rcpts(m, job->addr, job->n, BOUNCE_ACTION_FAILED);
	for (int i = 0; i < job->n; i++)
		m->addrs[job->addr[i]].state = QA_BUSY;
	m->refs++;
	m->q->notices++;
	rc = bounce_send(m->q->cfg, ".", BOUNCE_FAILURE, m->id, m->fd, &m->env,
			 r, job->n, on_bounced, job, NULL);
	free(r);
	if (rc < 0) {
		m->q->notices--;
		m->refs--;
		bounce_failed(m, job->addr, job->n, errno);
		free(job->addr);
		free(job);
		return false;
	}
	return true;
}

/* ---- reports that nothing waits for -------------------------------- */

static void on_report(void *arg, int err)
{
	struct qmgr *q = arg;

	q->notices--;
	if (err != 0)
		msg_warn("a delivery status notice could not be queued: %s",
			 strerror(err));
	else
		qmgr_scan_request(q, QQ_INCOMING, false);
}

static void report(struct qmgr_msg *m, enum bounce_kind kind, const int *addr,
		   int n, enum bounce_action action)
{
	struct bounce_rcpt *r = make_rcpts(m, addr, n, action);

	m->q->notices++;
	if (bounce_send(m->q->cfg, ".", kind, m->id, m->fd, &m->env, r, n,
			on_report, m->q, NULL) < 0) {
		m->q->notices--;
		msg_warn("%s: cannot queue a %s notice: %s", m->id,
			 kind == BOUNCE_DELAY ? "delay" : "delivery status",
			 strerror(errno));
	}
	free(r);
}

void qmgr_notify_success(struct qmgr_msg *m)
{
	int *addr = calloc((size_t)m->naddrs + 1, sizeof *addr);
	int n;

	if (addr == NULL)
		msg_fatal("out of memory");
	if ((n = collect(m, QA_DONE, true, addr)) > 0 && !m->q->stopping) {
		report(m, BOUNCE_SUCCESS, addr, n, BOUNCE_ACTION_AUTO);
		for (int i = 0; i < n; i++)
			m->addrs[addr[i]].success = false;
	}
	free(addr);
}

void qmgr_notify_delay(struct qmgr_msg *m)
{
	int *addr = calloc((size_t)m->naddrs + 1, sizeof *addr);
	int n;

	if (addr == NULL)
		msg_fatal("out of memory");
	if ((n = collect(m, QA_DEFERRED, false, addr)) > 0)
		report(m, BOUNCE_DELAY, addr, n, BOUNCE_ACTION_DELAYED);
	free(addr);
}
