/*
 * worker.c - an smtpd worker process: one libevent loop that accepts
 * connections on the master's listening sockets and serves SMTP sessions.
 *
 * Start-up: log as sluice/smtpd, become mail_owner (when the master was
 * started as root), make the event loop, start the thread pool and the
 * queue committer, load the plugins, then accept on every socket the
 * master handed over.  Every worker accepts on every socket; the kernel
 * hands each connection to one of them.
 *
 * The promises:
 *  - SIGTERM, or EOF on the master's liveness pipe, starts a graceful
 *    stop: the worker closes its listening sockets at once (the other
 *    workers, and a new generation after a reload, go on accepting), lets
 *    its sessions run to their end, then exits 0;
 *  - running out of file descriptors (EMFILE, ENFILE) does not make the
 *    loop spin: accepting pauses for ACCEPT_PAUSE_MSECS, with a warning
 *    at most once a minute, while the sessions go on;
 *  - SIGINT and SIGHUP are ignored: only the master tells workers what to
 *    do (Ctrl-C under `sluice run` reaches the whole process group).
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "config.h"
#include "dns.h"
#include "filter_chain.h"
#include "jobpool.h"
#include "log.h"
#include "plugin_loader.h"
#include "plugin_names.h"
#include "privilege.h"
#include "queue.h"
#include "smtp_session.h"
#include "tls_server.h"
#include "worker.h"

#define JOB_THREADS		4
#define ACCEPT_PAUSE_MSECS	500
#define ACCEPT_WARN_SECS	60
#define DRAIN_CHECK_MSECS	100

struct worker;

struct worker_listener {
	struct worker *w;
	struct evconnlistener *evl;
	const struct listener *listener;
};

struct worker {
	struct event_base *base;
	struct worker_listener *wl;
	int nwl;
	struct event *term_ev;		/* SIGTERM */
	struct event *master_ev;	/* the master's liveness pipe */
	struct event *pause_ev;		/* accepting again after EMFILE */
	struct event *drain_ev;		/* stopping: are the sessions done? */
	bool stopping;
	time_t accept_warned;
	int accepting_fd;		/* closing it tells the master we stopped accepting */
};

static struct timeval msecs(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	return tv;
}

/* ---- start-up ------------------------------------------------------ */

/* As Postfix's daemons do: change into the queue directory while still
 * privileged, and reach the queue by relative paths from then on, so
 * mail_owner needs no search permission on the directories above it
 * (the tree under /root that `make run` uses, for one). */
static void enter_queue_directory(const struct sluice_config *sc)
{
	privilege_enter_queue_directory(sc->main);
	smtp_set_queue_dir(".");
}

static void libevent_log(int severity, const char *text)
{
	switch (severity) {
	case EVENT_LOG_DEBUG: msg_debug("libevent: %s", text); break;
	case EVENT_LOG_MSG: msg_info("libevent: %s", text); break;
	case EVENT_LOG_WARN: msg_warn("libevent: %s", text); break;
	default: msg_error("libevent: %s", text); break;
	}
}

static void start_resolver(struct event_base *base, const struct config *c)
{
	if (dns_start_config(base, c) < 0)
		msg_fatal("cannot start the DNS resolver");
}

static void start_services(struct worker *w, const struct sluice_config *sc)
{
	char **names;

	if (evthread_use_pthreads() < 0)
		msg_fatal("libevent: no thread support");
	event_set_log_callback(libevent_log);
	if ((w->base = event_base_new()) == NULL)
		msg_fatal("cannot create the event loop");
	if (jobpool_start(w->base, JOB_THREADS) < 0)
		msg_fatal("cannot start the thread pool: %s", strerror(errno));
	if (queue_committer_start() < 0)
		msg_fatal("cannot start the queue committer: %s", strerror(errno));
	filter_set_event_base(w->base);
	start_resolver(w->base, sc->main);
	names = plugin_names(sc->main);
	if (plugins_load(cfg_str(sc->main, "plugin_directory"), names) < 0)
		msg_fatal("cannot load the plugins named in sluice_plugins");
	cfg_list_free(names);
}

/* ---- accepting ----------------------------------------------------- */

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd,
		      struct sockaddr *peer, int peerlen, void *arg)
{
	struct worker_listener *wl = arg;

	smtp_session_start(wl->w->base, fd, peer, (socklen_t)peerlen,
			   wl->listener);
}

static void set_accepting(struct worker *w, bool on)
{
	for (int i = 0; i < w->nwl; i++) {
		if (w->wl[i].evl == NULL)
			continue;
		if (on)
			evconnlistener_enable(w->wl[i].evl);
		else
			evconnlistener_disable(w->wl[i].evl);
	}
}

/* accept() failed for another reason than a client giving up: most
 * likely out of descriptors.  Pause instead of spinning on it. */
static void on_accept_error(struct evconnlistener *evl, void *arg)
{
	struct worker_listener *wl = arg;
	struct worker *w = wl->w;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval pause = msecs(ACCEPT_PAUSE_MSECS);
	time_t now = time(NULL);

	if (now - w->accept_warned >= ACCEPT_WARN_SECS) {
		w->accept_warned = now;
		msg_warn("accept connection: %s; pausing new connections with %d "
			 "session%s open", strerror(err), smtp_session_count(),
			 smtp_session_count() == 1 ? "" : "s");
	}
	set_accepting(w, false);
	evtimer_add(w->pause_ev, &pause);
}

static void on_pause_over(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	if (!w->stopping)
		set_accepting(w, true);
}

static void listen_all(struct worker *w, const struct worker_args *wa)
{
	struct worker_listener *wl;
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;

	if ((w->wl = calloc((size_t)wa->nsockets + 1, sizeof *w->wl)) == NULL)
		msg_fatal("out of memory");
	for (int i = 0; i < wa->nsockets; i++) {
		wl = &w->wl[w->nwl++];
		wl->w = w;
		wl->listener = wa->sockets[i].listener;
		/* backlog 0: listening already (-1 would listen(fd, 128)) */
		wl->evl = evconnlistener_new(w->base, on_accept, wl, flags, 0,
					     wa->sockets[i].fd);
		if (wl->evl == NULL)
			msg_fatal("cannot accept on service %s",
				  wl->listener->service);
		evconnlistener_set_error_cb(wl->evl, on_accept_error);
	}
}

/* ---- stopping ------------------------------------------------------ */

static void check_drained(struct worker *w)
{
	struct timeval tv = msecs(DRAIN_CHECK_MSECS);

	if (smtp_session_count() == 0)
		event_base_loopexit(w->base, NULL);
	else
		evtimer_add(w->drain_ev, &tv);
}

static void on_drain_check(evutil_socket_t fd, short what, void *arg)
{
	check_drained(arg);
}

static void begin_stop(struct worker *w)
{
	if (w->stopping)
		return;
	w->stopping = true;
	for (int i = 0; i < w->nwl; i++) {
		if (w->wl[i].evl != NULL)
			evconnlistener_free(w->wl[i].evl);	/* closes our copy */
		w->wl[i].evl = NULL;
	}
	event_del(w->pause_ev);
	event_del(w->master_ev);
	if (w->accepting_fd >= 0)
		close(w->accepting_fd);
	w->accepting_fd = -1;
	check_drained(w);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	begin_stop(arg);
}

/* The master never writes to the pipe: readable means EOF, it is gone. */
static void on_master_gone(evutil_socket_t fd, short what, void *arg)
{
	msg_warn("the master process is gone: finishing %d session%s and "
		 "exiting", smtp_session_count(),
		 smtp_session_count() == 1 ? "" : "s");
	begin_stop(arg);
}

static void make_events(struct worker *w, const struct worker_args *wa)
{
	sigset_t none;

	w->term_ev = evsignal_new(w->base, SIGTERM, on_sigterm, w);
	w->pause_ev = evtimer_new(w->base, on_pause_over, w);
	w->drain_ev = evtimer_new(w->base, on_drain_check, w);
	w->master_ev = event_new(w->base, wa->master_pipe, EV_READ,
				 on_master_gone, w);
	if (w->term_ev == NULL || w->pause_ev == NULL || w->drain_ev == NULL
	    || w->master_ev == NULL || evsignal_add(w->term_ev, NULL) < 0)
		msg_fatal("cannot set up the worker's events");
	if (wa->master_pipe >= 0)
		event_add(w->master_ev, NULL);
	/* The master forks us with its signals blocked; SIGTERM has a
	 * handler now, so let them in. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static void worker_exit(struct worker *w) __attribute__((noreturn));

static void worker_exit(struct worker *w)
{
	queue_committer_stop();
	jobpool_stop();
	plugins_unload();
	event_free(w->term_ev);
	event_free(w->master_ev);
	event_free(w->pause_ev);
	event_free(w->drain_ev);
	event_base_free(w->base);
	free(w->wl);
	exit(0);
}

void worker_main(struct sluice_config *sc, const struct worker_args *wa)
{
	struct worker w;

	memset(&w, 0, sizeof w);
	w.accepting_fd = wa->accepting_fd;
	log_set_service("smtpd");
	sluice_conf = sc;
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	enter_queue_directory(sc);
	tls_server_init(sc);        /* keys are readable by root only */
	privilege_drop(wa->drop_privileges, wa->uid, wa->gid, wa->user);
	start_services(&w, sc);
	listen_all(&w, wa);
	make_events(&w, wa);
	event_base_dispatch(w.base);
	worker_exit(&w);
}
