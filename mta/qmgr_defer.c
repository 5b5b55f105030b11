/*
 * qmgr_defer.c - the end of a visit that leaves recipients pending: the
 * message expires, or goes to deferred/ until its next retry.
 *
 * Retry times are Postfix's: the file's mtime in deferred/ is the time of
 * the next attempt, now + backoff, where backoff is the message's age
 * bounded by minimal_backoff_time and maximal_backoff_time.  So the time
 * between attempts doubles (300s, 300s, 600s, 1200s, 2400s, 4000s ...)
 * and survives restarts without any record of earlier attempts.
 *
 * A message older than maximal_queue_lifetime (bounce_queue_lifetime
 * for the null sender) when an attempt leaves recipients deferred
 * expires: "ID: from=<sender>, status=expired, returned to sender", and
 * the deferred recipients are bounced with their last reason (if that
 * bounce cannot be queued the message is deferred as usual, and expires
 * at the next attempt).  Once a message is older than delay_warning_time
 * its sender gets one delay notice (not for the null sender).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"

static long long backoff(const struct qmgr_params *p, long long age)
{
	if (age > p->max_backoff)
		age = p->max_backoff;
	if (age < p->min_backoff)
		age = p->min_backoff;
	return age;
}

/* Set the next retry time and move the file to deferred/.  A file that
 * cannot be moved stays in active/, to be tried at the next start. */
static void move_deferred(struct qmgr_msg *m, time_t now, long long delay)
{
	struct timespec ts[2] = { { now, 0 }, { now + (time_t)delay, 0 } };
	char to[QUEUE_ID_MAX + 16];

	if (futimens(m->fd, ts) < 0)
		msg_warn("%s: cannot set the retry time: %s", m->id,
			 strerror(errno));
	snprintf(to, sizeof to, "%s/%s", QUEUE_DEFERRED, m->id);
	if (rename(m->path, to) < 0)
		msg_warn("%s: cannot move %s to %s: %s", m->id, m->path, to,
			 strerror(errno));
}

/* The deferred recipients fail for good: the visit goes on to bounce
 * them (qmgr_msg.c). */
static void expire(struct qmgr_msg *m)
{
	m->expire_tried = true;
	for (int i = 0; i < m->naddrs; i++) {
		struct qmgr_addr *a = &m->addrs[i];

		if (a->state != QA_DEFERRED)
			continue;
		a->state = QA_FAILED;
		if (a->reason == NULL || *a->reason == 0)
			qmgr_addr_result(a, QA_FAILED, "4.4.7", "message is too old");
	}
	msg_info("%s: from=<%s>, status=expired, returned to sender", m->id,
		 m->env.sender);
	qmgr_msg_resume(m);
}

void qmgr_defer_msg(struct qmgr_msg *m)
{
	const struct qmgr_params *p = &m->q->p;
	time_t now = time(NULL);
	long long age = (long long)now - m->env.arrival_sec;
	long long lifetime = m->env.sender[0] ? p->max_lifetime
	    : p->bounce_lifetime;

	if (!m->expire_tried && !m->q->stopping && age >= lifetime) {
		expire(m);
		return;
	}
	if (p->delay_warning > 0 && age >= p->delay_warning && !m->warned &&
	    m->env.sender[0] != 0 && !m->q->stopping) {
		qmgr_notify_delay(m);
		m->warned = true;
	}
	qmgr_state_save(m);
	move_deferred(m, now, backoff(p, age));
	qmgr_msg_free(m);
}
