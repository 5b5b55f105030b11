/*
 * delivery_server.c - the delivery process, sluice/delivery
 * (delivery_server.h): start-up, the socket, the queue manager's
 * connections, and the stop.
 *
 * Start-up: log as sluice/delivery, enter queue_directory (requests name
 * files relative to it), drop root's supplementary groups, start the
 * thread pool and the queue committer (local(8) queues forwarded copies),
 * and accept on the socket the master bound.  The process stays root:
 * its agents' children take each recipient's ids (local_priv.c).
 *
 * A connection is accepted only from mail_owner (SO_PEERCRED); any other
 * peer is logged and closed.  Requests are read a line at a time
 * (delivery_proto.c), never more than DP_LINE_MAX bytes waiting for an
 * end of line: a stream that breaks the format is logged and closed.
 * Each complete request becomes a job (delivery_job.c); many run at once
 * (the queue manager keeps the concurrency), each answered when done, in
 * any order.  At most DCONN_JOBS_MAX per connection: more are refused.
 * Results are small; a peer that stops reading them is dropped when they
 * pile up past DCONN_OUTPUT_MAX.
 *
 * Stop (SIGTERM from the master, or the master gone): no new connection
 * is accepted, connections are closed as soon as they are idle and their
 * results have gone out (never before: a result lost would make the
 * queue manager deliver again), and the process exits when the
 * deliveries in progress have finished and been answered.  A reload
 * starts a new delivery process at once; this one finishes its work on
 * the old configuration.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "config.h"
#include "delivery_server.h"
#include "jobpool.h"
#include "log.h"
#include "privilege.h"

#define DSERVER_THREADS		2       /* commits of forwarded copies */
#define DSERVER_CONNS_MAX	16
#define DCONN_JOBS_MAX		4096
#define DCONN_OUTPUT_MAX	(16 * 1024 * 1024)

struct dserver_events {
	struct evconnlistener *listener;
	struct event *master_ev;
	struct event *term_ev;
};

static void maybe_exit(struct dserver *s);

/* ---- connections ----------------------------------------------------- */

static void dconn_free_if_done(struct dconn *c)
{
	struct dserver *s = c->s;

	if (c->bev != NULL || c->jobs > 0 || c->reading)
		return;
	TAILQ_REMOVE(&s->conns, c, link);
	s->nconns--;
	free(c);
	maybe_exit(s);
}

static void dconn_close(struct dconn *c)
{
	if (c->bev == NULL)
		return;
	bufferevent_free(c->bev);
	c->bev = NULL;
	dp_request_free(&c->rd);
	dconn_free_if_done(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct dconn *c = arg;

	if (c->closing)
		dconn_close(c);         /* the last results are out */
}

/* Close once the results written so far have gone out. */
static void dconn_close_flushed(struct dconn *c)
{
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		dconn_close(c);
		return;
	}
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
}

static void dconn_broken(struct dconn *c, const char *why)
{
	msg_warn("connection from uid %ld pid %ld: %s; closed", (long)c->uid,
		 (long)c->pid, why);
	dconn_close(c);
}

static void check_output(struct dconn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (evbuffer_get_length(out) > DCONN_OUTPUT_MAX)
		dconn_broken(c, "the peer does not read its results");
}

void dconn_reply_result(struct dconn *c, unsigned long long seq,
			const struct delivery_request *req)
{
	if (c->bev == NULL)
		return;
	dp_result_write(bufferevent_get_output(c->bev), seq, req);
	check_output(c);
}

void dconn_reply_error(struct dconn *c, unsigned long long seq,
		       const char *dsn, const char *text)
{
	if (c->bev == NULL)
		return;
	dp_error_write(bufferevent_get_output(c->bev), seq, dsn, text);
	check_output(c);
}

void dconn_job_done(struct dconn *c)
{
	struct dserver *s = c->s;

	c->jobs--;
	s->jobs--;
	if (s->stopping && c->jobs == 0 && c->bev != NULL && !c->closing)
		dconn_close_flushed(c); /* idle now: let the peer reconnect */
	else
		dconn_free_if_done(c);
}

/* A complete request: a job, unless there are too many already. */
static void dconn_request(struct dconn *c)
{
	struct dserver *s = c->s;

	c->jobs++;
	s->jobs++;
	if (c->jobs > DCONN_JOBS_MAX && !c->rd.refused[0])
		snprintf(c->rd.refused, sizeof c->rd.refused,
			 "more than %d requests at once", DCONN_JOBS_MAX);
	djob_start(s, c, &c->rd);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct dconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char why[128], *line;
	enum dp_feed st;
	size_t len;

	c->reading = true;              /* c outlives a close in here */
	while (c->bev != NULL && !c->closing
	       && (line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
		st = dp_request_feed(&c->rd, line, len, why, sizeof why);
		free(line);
		if (st == DP_BROKEN)
			dconn_broken(c, why);
		else if (st == DP_DONE)
			dconn_request(c);
	}
	if (c->bev != NULL && !c->closing
	    && evbuffer_get_length(in) > DP_LINE_MAX)
		dconn_broken(c, "a record longer than the limit");
	c->reading = false;
	dconn_free_if_done(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct dconn *c = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		dconn_close(c);
}

/* ---- accepting ------------------------------------------------------- */

static bool peer_allowed(const struct dserver *s, int fd, struct ucred *cr)
{
	socklen_t len = sizeof *cr;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cr, &len) < 0) {
		msg_warn("connection refused: cannot tell who connected: %s",
			 strerror(errno));
		return false;
	}
	if (cr->uid != s->owner_uid) {
		msg_warn("connection from uid %ld pid %ld refused: only "
			 "mail_owner's queue manager may connect",
			 (long)cr->uid, (long)cr->pid);
		return false;
	}
	if (s->nconns >= DSERVER_CONNS_MAX) {
		msg_warn("connection from pid %ld refused: %d connections "
			 "already", (long)cr->pid, DSERVER_CONNS_MAX);
		return false;
	}
	return true;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct dserver *s = arg;
	struct ucred cr;
	struct dconn *c;

	if (s->stopping || !peer_allowed(s, fd, &cr)) {
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof *c)) == NULL)
		msg_fatal("out of memory");
	c->s = s;
	c->uid = cr.uid;
	c->pid = cr.pid;
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		msg_fatal("cannot set up a connection: out of memory");
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 2 * DP_LINE_MAX);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&s->conns, c, link);
	s->nconns++;
}

/* ---- stopping -------------------------------------------------------- */

static void maybe_exit(struct dserver *s)
{
	if (s->stopping && s->jobs == 0 && s->nconns == 0)
		event_base_loopexit(s->base, NULL);
}

static void begin_stop(struct dserver *s)
{
	struct dconn *c, *next;

	if (s->stopping)
		return;
	s->stopping = true;
	evconnlistener_free(s->ev->listener);
	s->ev->listener = NULL;
	event_del(s->ev->master_ev);
	for (c = TAILQ_FIRST(&s->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->jobs == 0 && c->bev != NULL && !c->closing)
			dconn_close_flushed(c);
	}
	maybe_exit(s);
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

/* ---- start-up -------------------------------------------------------- */

static void enter_queue_directory(const struct sluice_config *sc)
{
	privilege_enter_queue_directory(sc->main);
	if (geteuid() == 0 && setgroups(0, NULL) < 0)
		msg_fatal("cannot drop the supplementary groups: %s",
			  strerror(errno));
}

/* local and virtual work without a master.cf line, as in the queue
 * manager (qmgr_sched.c); pipe needs one (user=, argv=). */
static void make_builtins(struct dserver *s)
{
	static const char *const names[] = { "local", "virtual" };

	s->nbuiltin = 2;
	if ((s->builtin = calloc(2, sizeof *s->builtin)) == NULL)
		msg_fatal("out of memory");
	for (int i = 0; i < s->nbuiltin; i++) {
		s->builtin[i].name = (char *)names[i];
		s->builtin[i].command = (char *)names[i];
		s->builtin[i].cfg = s->sc->main;
		s->builtin[i].file = (char *)"(built in)";
	}
}

static void start_services(struct dserver *s)
{
	if (evthread_use_pthreads() < 0)
		msg_fatal("libevent: no thread support");
	if ((s->base = event_base_new()) == NULL)
		msg_fatal("cannot create the event loop");
	if (jobpool_start(s->base, DSERVER_THREADS) < 0)
		msg_fatal("cannot start the thread pool: %s", strerror(errno));
	if (queue_committer_start() < 0)
		msg_fatal("cannot start the queue committer: %s",
			  strerror(errno));
}

static void make_events(struct dserver *s, struct dserver_events *ev,
			const struct delivery_server_args *a)
{
	sigset_t none;

	s->ev = ev;
	evutil_make_socket_nonblocking(a->listen_fd);  /* accept() in a loop */
	ev->listener = evconnlistener_new(s->base, on_accept, s,
					  LEV_OPT_CLOSE_ON_FREE
					  | LEV_OPT_CLOSE_ON_EXEC, 0,
					  a->listen_fd);
	ev->master_ev = event_new(s->base, a->master_pipe, EV_READ,
				  on_master_gone, s);
	ev->term_ev = evsignal_new(s->base, SIGTERM, on_sigterm, s);
	if (ev->listener == NULL || ev->master_ev == NULL || ev->term_ev == NULL
	    || evsignal_add(ev->term_ev, NULL) < 0)
		msg_fatal("cannot set up the delivery process' events");
	if (a->master_pipe >= 0)
		event_add(ev->master_ev, NULL);
	/* Forked with the master's signals blocked; SIGTERM has a handler
	 * now, so let them in. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static void dserver_exit(struct dserver *s, struct dserver_events *ev)
	__attribute__((noreturn));

static void dserver_exit(struct dserver *s, struct dserver_events *ev)
{
	queue_committer_stop();
	jobpool_stop();
	event_free(ev->master_ev);
	event_free(ev->term_ev);
	free(s->builtin);
	event_base_free(s->base);
	exit(0);
}

void delivery_server_main(struct sluice_config *sc,
			  const struct delivery_server_args *a)
{
	struct dserver s;
	struct dserver_events ev;

	memset(&s, 0, sizeof s);
	memset(&ev, 0, sizeof ev);
	log_set_service("delivery");
	sluice_conf = sc;
	s.sc = sc;
	s.owner_uid = a->owner_uid;
	s.owner_gid = a->owner_gid;
	TAILQ_INIT(&s.conns);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	enter_queue_directory(sc);
	make_builtins(&s);
	start_services(&s);
	make_events(&s, &ev, a);
	event_base_dispatch(s.base);
	dserver_exit(&s, &ev);
}
