/*
 * milterd_loop.c - sluice-milterd's event loop thread and the hand-over
 * between libmilter's callback threads and it (see milterd.h).
 *
 * A callback thread sets c->step, posts it to the loop with
 * event_base_once (libevent is made thread-safe with
 * evthread_use_pthreads before the base exists), then waits on c->cv.
 * The step runs in the loop thread; the filter chain's completion, which
 * may come at once or later from a plugin's sluice_resume (a timer, a
 * DNS answer, a thread-pool job), records the verdict and signals.
 *
 * Promises: the loop thread never blocks on a callback thread; a step
 * is posted only while its callback thread waits, so the session is
 * never touched by two threads at once.  A step that does not complete
 * within milterd_plugin_timeout (a plugin that never resumes) is
 * abandoned: the session is closed (close hooks run), the call answers
 * DEFER with 451 4.3.0, and so does every later call on the connection.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "filter_chain.h"
#include "log.h"
#include "milterd.h"
#include "sluice_plugin.h"

static struct event_base *loop_base;    /* set once before any connection */
static long long hook_timeout;          /* milterd_plugin_timeout, seconds */

static void *loop_main(void *arg)
{
	event_base_loop(loop_base, EVLOOP_NO_EXIT_ON_EMPTY);
	msg_warn("sluice-milterd: event loop ended");
	return NULL;
}

int milterd_loop_start(struct event_base *base, long long timeout)
{
	pthread_t tid;

	loop_base = base;
	hook_timeout = timeout > 0 ? timeout : 1;
	if (pthread_create(&tid, NULL, loop_main, NULL) != 0)
		return -1;
	pthread_detach(tid);
	return 0;
}

static void run_step(evutil_socket_t fd, short what, void *arg)
{
	struct md_conn *c = arg;

	c->step(c);
}

/* In the loop, when a step did not complete in time: unless it did
 * meanwhile, close the session (the plugins' close hooks cancel their
 * work; the abandoned chain never completes) and answer DEFER. */
static void run_abandon(evutil_socket_t fd, short what, void *arg)
{
	struct md_conn *c = arg;
	bool done;

	pthread_mutex_lock(&c->mu);
	done = c->done;
	pthread_mutex_unlock(&c->mu);
	if (done)
		return;
	msg_warn("%s: sluice-milterd: no plugin verdict from %s within "
		 "milterd_plugin_timeout (%llds); closing the session",
		 c->s.queue_id[0] ? c->s.queue_id : "NOQUEUE", c->s.client_id,
		 hook_timeout);
	filter_close(&c->s);
	c->closed = true;
	c->reply_code = 451;
	snprintf(c->reply_dsn, sizeof c->reply_dsn, "4.3.0");
	snprintf(c->reply_text, sizeof c->reply_text,
		 "Error: timeout waiting for a filter");
	milterd_complete(c, SLUICE_DEFER);
}

static bool post(struct md_conn *c, event_callback_fn fn)
{
	if (event_base_once(loop_base, -1, EV_TIMEOUT, fn, c, NULL) == 0)
		return true;
	msg_error("sluice-milterd: cannot hand work to the event loop");
	return false;
}

int milterd_call(struct md_conn *c, void (*step)(struct md_conn *c))
{
	struct timespec deadline;
	int v, rc = 0;

	if (c->closed)                  /* abandoned after a timeout */
		return SLUICE_DEFER;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += (time_t)hook_timeout;
	pthread_mutex_lock(&c->mu);
	c->done = false;
	c->step = step;
	if (!post(c, run_step)) {
		pthread_mutex_unlock(&c->mu);
		return SLUICE_DEFER;
	}
	while (!c->done && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&c->cv, &c->mu, &deadline);
	if (!c->done && post(c, run_abandon))
		while (!c->done)
			pthread_cond_wait(&c->cv, &c->mu);
	v = c->done ? c->verdict : SLUICE_DEFER;
	pthread_mutex_unlock(&c->mu);
	return v;
}

void milterd_complete(struct md_conn *c, int verdict)
{
	pthread_mutex_lock(&c->mu);
	c->verdict = verdict;
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* The chain's completion: keep the reply for the callback thread. */
static void stage_done(struct smtp_session *s, int verdict)
{
	struct md_conn *c = (struct md_conn *)s;

	c->reply_code = s->reply_code;
	snprintf(c->reply_dsn, sizeof c->reply_dsn, "%s", s->reply_dsn);
	snprintf(c->reply_text, sizeof c->reply_text, "%s",
		 s->reply_text ? s->reply_text : "");
	/* HOLD or DISCARD before MAIL apply to every message of the
	 * connection, as a milter's do */
	if (c->stage <= FS_HELO && verdict == SLUICE_HOLD && !s->hold_all) {
		s->hold_all = true;
		s->hold_all_reason = s->txn.hold_reason ?
			strdup(s->txn.hold_reason) : NULL;
	}
	if (c->stage <= FS_HELO && verdict == SLUICE_DISCARD)
		s->discard_all = true;
	c->hold = s->txn.hold || s->hold_all;
	snprintf(c->hold_reason, sizeof c->hold_reason, "%s",
		 s->txn.hold_reason ? s->txn.hold_reason :
		 s->hold_all_reason ? s->hold_all_reason : "held by sluice-milterd");
	milterd_complete(c, verdict);
}

void milterd_run_stage(struct md_conn *c, int stage)
{
	c->reply_code = 0;
	c->reply_dsn[0] = c->reply_text[0] = 0;
	c->stage = stage;
	filter_run_stage(&c->s, (enum filter_stage)stage, stage_done);
}
