/*
 * qmgr.c - the queue manager process, sluice/qmgr: start-up, the event
 * loop's triggers and timers, and the graceful stop.
 *
 * Start-up: log as sluice/qmgr, enter queue_directory, become mail_owner
 * for good when the master was started as root (real, effective and
 * saved user IDs; setuid(0) must fail afterwards, or the process stops:
 * it parses what remote SMTP servers send, and a bug there must never
 * lead back to root), start the thread pool and the queue committer
 * (bounces and pickup write queue files), the DNS resolver (the SMTP
 * client), the client of the delivery process (delivery_client.h: local,
 * virtual and pipe deliveries need root, so they run there), and open
 * the trigger FIFO, public/qmgr (qmgr_trigger.h).
 *
 * Then: everything left in active/ by an earlier run, everything in
 * incoming/, and whatever in deferred/ is due comes in; maildrop/ is
 * picked up.  What wakes the queue manager later:
 *   - the FIFO: smtpd after each committed message, pickup, sendmail and
 *     `sluice queue flush` ('I' scan incoming/, 'W' pickup then scan,
 *     'A' scan deferred/ too, ignoring retry times, 'F' forget dead
 *     destinations);
 *   - every queue_run_delay: deferred/ (what is due), incoming/ (in case
 *     a wake-up was lost), maildrop/;
 *   - results from the agents.
 *
 * Stop (SIGTERM from the master, or the master gone): no new message
 * comes in and no new delivery starts; deliveries in progress and
 * notices being written may finish for QMGR_STOP_SECS, then the process
 * exits.  Whatever was not finished stays in active/ and is scheduled
 * again by the next queue manager (a delivery cut off in flight may be
 * repeated, never lost).
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "config.h"
#include "delivery_client.h"
#include "dns.h"
#include "filter_chain.h"
#include "jobpool.h"
#include "log.h"
#include "maildrop.h"
#include "pickup.h"
#include "privilege.h"
#include "qmgr.h"
#include "qmgr_trigger.h"
#include "queue_reason.h"
#include "smtp_client.h"

#define QMGR_THREADS		4	/* fdatasync()s, bounces, pickup */
#define QMGR_STOP_SECS		8
#define DRAIN_CHECK_MSECS	50

struct qmgr_events {
	struct event *trigger_ev;	/* the FIFO */
	struct event *master_ev;	/* the master's liveness pipe */
	struct event *term_ev;		/* SIGTERM */
	struct event *run_ev;		/* every queue_run_delay */
	struct event *pickup_ev;	/* pickup again (a full batch) */
	struct event *drain_ev;		/* stopping: done yet? */
	int trigger_fd;
	double stop_deadline;
};

static struct timeval secs(double s)
{
	struct timeval tv = { (time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6) };

	return tv;
}

static double now_secs(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

void qmgr_kick(struct qmgr *q)
{
	event_active(q->feed_ev, EV_TIMEOUT, 0);
}

/* ---- start-up ------------------------------------------------------ */

static void read_params(struct qmgr *q)
{
	const struct config *c = q->cfg;
	struct qmgr_params *p = &q->p;
	struct rlimit rl;

	p->queue_run_delay = cfg_time(c, "queue_run_delay");
	p->min_backoff = cfg_time(c, "minimal_backoff_time");
	p->max_backoff = cfg_time(c, "maximal_backoff_time");
	p->max_lifetime = cfg_time(c, "maximal_queue_lifetime");
	p->bounce_lifetime = cfg_time(c, "bounce_queue_lifetime");
	p->delay_warning = cfg_time(c, "delay_warning_time");
	p->active_limit = (int)cfg_int(c, "qmgr_message_active_limit");
	p->delay_digits = (int)cfg_int(c, "delay_logging_resolution_limit");
	p->default_process_limit = (int)cfg_int(c, "default_process_limit");
	p->defer_transports = cfg_list(c, "defer_transports");
	if (p->queue_run_delay < 1)
		p->queue_run_delay = 1;
	if (p->max_backoff < p->min_backoff)
		p->max_backoff = p->min_backoff;
	if (p->active_limit < 1)
		p->active_limit = 1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)p->active_limit > rl.rlim_cur / 2)
		p->active_limit = (int)(rl.rlim_cur / 2);	/* one file each */
	if (p->delay_digits > 6)
		p->delay_digits = 6;
	if (p->default_process_limit < 1)
		p->default_process_limit = 1;
}

static void start_resolver(struct qmgr *q)
{
	if (dns_start_config(q->base, q->cfg) < 0)
		msg_fatal("cannot start the DNS resolver");
}

static void start_services(struct qmgr *q, const struct qmgr_args *a)
{
	if (evthread_use_pthreads() < 0)
		msg_fatal("libevent: no thread support");
	if ((q->base = event_base_new()) == NULL)
		msg_fatal("cannot create the event loop");
	filter_set_event_base(q->base);     /* non_smtpd_milters (pickup) */
	if (jobpool_start(q->base, QMGR_THREADS) < 0)
		msg_fatal("cannot start the thread pool: %s", strerror(errno));
	if (queue_committer_start() < 0)
		msg_fatal("cannot start the queue committer: %s", strerror(errno));
	start_resolver(q);
	if (a->delivery_socket != NULL)
		q->dclient = delivery_client_new(q->base, a->delivery_socket);
	if (mkdir(QUEUE_DEFER, 0700) < 0 && errno != EEXIST)
		msg_warn("cannot create %s/: %s", QUEUE_DEFER, strerror(errno));
	if (qmgr_scan_init(q) < 0 || qmgr_sched_init(q) < 0)
		msg_fatal("out of memory");
}

/* ---- wake-ups ------------------------------------------------------- */

static void run_pickup(struct qmgr *q, struct qmgr_events *ev)
{
	struct timeval soon = { 0, 0 };
	int n;

	if (q->stopping)
		return;
	n = pickup_run(q->cfg, ".");
	if (n < 0 && errno != ENOENT)
		msg_warn("pickup: cannot read %s/: %s", MAILDROP_DIR,
			 strerror(errno));
	else if (n >= PICKUP_BATCH_MAX)
		evtimer_add(ev->pickup_ev, &soon);
}

static void on_pickup(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;

	run_pickup(q, q->events);
}

static void on_trigger(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;
	unsigned want = qmgr_trigger_read((int)fd);

	if (q->stopping)
		return;
	if (want & QMGR_WANT_FLUSH_DEAD)
		qmgr_sched_flush_dead(q);
	if (want & QMGR_WANT_WAKEUP)
		run_pickup(q, q->events);
	if (want & QMGR_WANT_SCAN_ALL)
		qmgr_scan_request(q, QQ_DEFERRED, true);
	if (want & (QMGR_WANT_WAKEUP | QMGR_WANT_SCAN_INCOMING |
		    QMGR_WANT_SCAN_ALL))
		qmgr_scan_request(q, QQ_INCOMING, false);
}

static void on_run_timer(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;

	if (q->stopping)
		return;
	qmgr_sched_sweep(q);
	run_pickup(q, q->events);
	qmgr_scan_request(q, QQ_DEFERRED, false);
	qmgr_scan_request(q, QQ_INCOMING, false);
}

static void on_feed(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;

	if (q->stopping)
		return;
	qmgr_scan_feed(q);
	qmgr_sched_run(q);
}

/* ---- stopping ------------------------------------------------------- */

static bool drained(const struct qmgr *q)
{
	return qmgr_sched_busy(q) == 0 && q->notices == 0 && q->nmsgs == 0;
}

static void check_drained(struct qmgr *q)
{
	struct qmgr_events *ev = q->events;
	struct timeval tv = secs(DRAIN_CHECK_MSECS / 1000.0);

	if (drained(q)) {
		event_base_loopexit(q->base, NULL);
		return;
	}
	if (now_secs() >= ev->stop_deadline) {
		msg_warn("stopping with %d deliver%s still in progress; they "
			 "will be tried again", qmgr_sched_busy(q),
			 qmgr_sched_busy(q) == 1 ? "y" : "ies");
		event_base_loopexit(q->base, NULL);
		return;
	}
	evtimer_add(ev->drain_ev, &tv);
}

static void on_drain_check(evutil_socket_t fd, short what, void *arg)
{
	check_drained(arg);
}

static void begin_stop(struct qmgr *q)
{
	struct qmgr_events *ev = q->events;

	if (q->stopping)
		return;
	q->stopping = true;
	ev->stop_deadline = now_secs() + QMGR_STOP_SECS;
	event_del(ev->trigger_ev);
	event_del(ev->master_ev);
	event_del(ev->run_ev);
	event_del(ev->pickup_ev);
	qmgr_sched_abandon(q);
	check_drained(q);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	begin_stop(arg);
}

/* The master never writes to the pipe: readable means EOF, it is gone. */
static void on_master_gone(evutil_socket_t fd, short what, void *arg)
{
	msg_warn("the master process is gone: stopping");
	begin_stop(arg);
}

/* ---- the events ----------------------------------------------------- */

static void make_events(struct qmgr *q, struct qmgr_events *ev,
			const struct qmgr_args *a)
{
	struct timeval run = secs((double)q->p.queue_run_delay);
	sigset_t none;

	q->events = ev;
	if ((ev->trigger_fd = qmgr_trigger_open(".")) < 0)
		msg_fatal("cannot open the trigger FIFO %s: %s",
			  QMGR_TRIGGER_FIFO, strerror(errno));
	q->feed_ev = event_new(q->base, -1, 0, on_feed, q);
	ev->trigger_ev = event_new(q->base, ev->trigger_fd, EV_READ | EV_PERSIST,
				   on_trigger, q);
	ev->master_ev = event_new(q->base, a->master_pipe, EV_READ,
				  on_master_gone, q);
	ev->term_ev = evsignal_new(q->base, SIGTERM, on_sigterm, q);
	ev->run_ev = event_new(q->base, -1, EV_PERSIST, on_run_timer, q);
	ev->pickup_ev = evtimer_new(q->base, on_pickup, q);
	ev->drain_ev = evtimer_new(q->base, on_drain_check, q);
	if (!q->feed_ev || !ev->trigger_ev || !ev->master_ev || !ev->term_ev ||
	    !ev->run_ev || !ev->pickup_ev || !ev->drain_ev ||
	    event_add(ev->trigger_ev, NULL) < 0 || evsignal_add(ev->term_ev, NULL) < 0 ||
	    event_add(ev->run_ev, &run) < 0)
		msg_fatal("cannot set up the queue manager's events");
	if (a->master_pipe >= 0)
		event_add(ev->master_ev, NULL);
	/* Forked with the master's signals blocked; SIGTERM has a handler
	 * now, so let them in. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static void free_events(struct qmgr *q, struct qmgr_events *ev)
{
	event_free(q->feed_ev);
	event_free(ev->trigger_ev);
	event_free(ev->master_ev);
	event_free(ev->term_ev);
	event_free(ev->run_ev);
	event_free(ev->pickup_ev);
	event_free(ev->drain_ev);
	close(ev->trigger_fd);
}

static void qmgr_exit(struct qmgr *q, struct qmgr_events *ev)
	__attribute__((noreturn));

/* Deliveries cut off by the deadline still point at their messages:
 * then only the connections are closed before exit. */
static void qmgr_exit(struct qmgr *q, struct qmgr_events *ev)
{
	smtp_client_shutdown();
	queue_committer_stop();
	jobpool_stop();
	if (!drained(q))
		exit(0);
	qmgr_sched_free(q);
	qmgr_scan_free(q);
	delivery_client_free(q->dclient);
	dns_stop();
	free_events(q, ev);
	cfg_list_free(q->p.defer_transports);
	event_base_free(q->base);
	exit(0);
}

void qmgr_main(struct sluice_config *sc, const struct qmgr_args *a)
{
	struct qmgr q;
	struct qmgr_events ev;

	memset(&q, 0, sizeof q);
	memset(&ev, 0, sizeof ev);
	log_set_service("qmgr");
	sluice_conf = sc;
	q.sc = sc;
	q.cfg = sc->main;
	TAILQ_INIT(&q.msgs);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	privilege_enter_queue_directory(sc->main);
	privilege_drop(a->drop_privileges, a->uid, a->gid, a->user);
	read_params(&q);
	start_services(&q, a);
	make_events(&q, &ev, a);
	qmgr_scan_request(&q, QQ_ACTIVE, false);
	qmgr_scan_request(&q, QQ_INCOMING, false);
	qmgr_scan_request(&q, QQ_DEFERRED, false);
	run_pickup(&q, &ev);
	event_base_dispatch(q.base);
	qmgr_exit(&q, &ev);
}
