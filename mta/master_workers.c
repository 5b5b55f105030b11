/*
 * master_workers.c - fork the smtpd workers and the queue manager, reap
 * them, restart them.
 *
 * Workers come in generations: start-up makes the first, every reload a
 * new one, and the previous generations are retired (SIGTERM: they stop
 * accepting and exit when their sessions end).  Each worker has a slot in
 * a fixed table; the slot number is also its region of the anvil table,
 * wiped when the worker is reaped.
 *
 * The promises:
 *  - every child is reaped (workers_reap() runs on every SIGCHLD);
 *  - a worker of the current generation that dies unexpectedly is
 *    replaced, at once when it had been running for WORKER_STABLE_SECS,
 *    else after a delay that doubles with each such quick death, up to
 *    THROTTLE_MAX_SECS, so a worker that cannot start (a broken plugin)
 *    does not make the master spin;
 *  - a worker that was told to stop is never restarted;
 *  - abnormal exits are logged as Postfix's master logs them: "process
 *    sluice/smtpd pid N exit status S" or "... killed by signal S";
 *  - the queue manager (one, when master.cf declares it) runs next to the
 *    workers as mail_owner, is restarted like them, and on reload is
 *    replaced only once the old one has exited (the delivery process,
 *    master_delivery.c, is reaped and restarted from here too).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "config.h"
#include "log.h"
#include "master.h"
#include "qmgr.h"

#define WORKER_STABLE_SECS	10
#define THROTTLE_MAX_SECS	60

static void run_worker(struct master *m, struct worker_slot *ws, int slot)
	__attribute__((noreturn));

/* In the child: become the worker of `slot`. */
static void run_worker(struct master *m, struct worker_slot *ws, int slot)
{
	struct worker_socket *socks;
	struct worker_args wa;

	master_child_setup(m);
	anvil_attach(slot);
	socks = calloc((size_t)m->sockets.n + 1, sizeof *socks);
	if (socks == NULL)
		msg_fatal("out of memory");
	for (int i = 0; i < m->sockets.n; i++)
		socks[i] = m->sockets.v[i].ws;
	memset(&wa, 0, sizeof wa);
	wa.index = ws->index;
	wa.sockets = socks;
	wa.nsockets = m->sockets.n;
	wa.master_pipe = m->alive_pipe[0];
	wa.accepting_fd = ws->accepting_fd;
	for (int i = 0; i < MASTER_MAX_WORKERS; i++)
		if (i != slot && m->workers.slot[i].accepting_open)
			close(m->workers.slot[i].accepting_fd);
	wa.drop_privileges = m->user.drop;
	wa.uid = m->user.uid;
	wa.gid = m->user.gid;
	wa.user = m->user.name;
	worker_main(m->sc, &wa);
}

void master_schedule_restart(struct worker_slot *ws, double now,
			     const char *what)
{
	int delay;

	if (now - ws->started < WORKER_STABLE_SECS)
		ws->quick_deaths++;
	else
		ws->quick_deaths = 0;
	if (ws->quick_deaths == 0) {
		ws->restart_at = now;
		return;
	}
	delay = ws->quick_deaths > 6 ? THROTTLE_MAX_SECS
	    : 1 << (ws->quick_deaths - 1);
	if (delay > THROTTLE_MAX_SECS)
		delay = THROTTLE_MAX_SECS;
	ws->restart_at = now + delay;
	msg_warn("%s died %d time%s within %d seconds of starting -- "
		 "throttling: next start in %d second%s", what,
		 ws->quick_deaths, ws->quick_deaths == 1 ? "" : "s",
		 WORKER_STABLE_SECS, delay, delay == 1 ? "" : "s");
}

static void schedule_restart(struct worker_slot *ws, double now)
{
	char what[64];

	snprintf(what, sizeof what, "sluice/smtpd worker %d", ws->index);
	master_schedule_restart(ws, now, what);
}

static void close_accepting(struct worker_slot *ws)
{
	if (ws->accepting_open)
		close(ws->accepting_fd);
	ws->accepting_open = false;
}

static void spawn(struct master *m, int slot)
{
	struct worker_slot *ws = &m->workers.slot[slot];
	int p[2] = { -1, -1 };
	pid_t pid;

	/* The worker holds the write end while it accepts connections. */
	if (pipe2(p, O_CLOEXEC) < 0)
		msg_fatal("pipe: %s", strerror(errno));
	ws->accepting_fd = p[1];
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		run_worker(m, ws, slot);
	}
	close(p[1]);
	ws->accepting_fd = p[0];
	ws->accepting_open = true;
	ws->started = mono_now();
	ws->restart_at = 0;
	ws->stopping = false;
	if (pid < 0) {
		msg_warn("fork: %s", strerror(errno));
		close_accepting(ws);
		ws->pid = 0;
		schedule_restart(ws, ws->started);
		return;
	}
	ws->pid = pid;
}

static bool slot_free(const struct worker_slot *ws)
{
	return ws->pid == 0 && ws->restart_at == 0;
}

int workers_free_slots(const struct master *m)
{
	int n = 0;

	for (int i = 0; i < MASTER_MAX_WORKERS; i++)
		n += slot_free(&m->workers.slot[i]);
	return n;
}

int workers_alive(const struct master *m)
{
	int n = 0;

	for (int i = 0; i < MASTER_MAX_WORKERS; i++)
		n += m->workers.slot[i].pid != 0;
	return n;
}

void workers_start_generation(struct master *m, int wanted)
{
	struct workers *w = &m->workers;
	int slot = 0;

	w->generation++;
	w->wanted = wanted;
	for (int index = 0; index < wanted; index++) {
		while (slot < MASTER_MAX_WORKERS && !slot_free(&w->slot[slot]))
			slot++;
		if (slot == MASTER_MAX_WORKERS) {
			msg_warn("no room for worker %d of %d: %d processes at most",
				 index, wanted, MASTER_MAX_WORKERS);
			return;
		}
		memset(&w->slot[slot], 0, sizeof w->slot[slot]);
		w->slot[slot].generation = w->generation;
		w->slot[slot].index = index;
		spawn(m, slot);
	}
}

void workers_retire_old(struct master *m)
{
	struct worker_slot *ws;

	for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
		ws = &m->workers.slot[i];
		if (ws->generation == m->workers.generation)
			continue;
		ws->restart_at = 0;
		if (ws->pid != 0 && !ws->stopping) {
			ws->stopping = true;
			kill(ws->pid, SIGTERM);
		}
	}
}

void workers_wait_retired(struct master *m, double secs)
{
	double deadline = mono_now() + secs;
	struct pollfd pfd[MASTER_MAX_WORKERS];
	int slot_of_pfd[MASTER_MAX_WORKERS];

	for (;;) {
		int n = 0;
		double left = deadline - mono_now();

		for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
			struct worker_slot *ws = &m->workers.slot[i];

			if (ws->generation == m->workers.generation
			    || !ws->accepting_open)
				continue;
			pfd[n].fd = ws->accepting_fd;
			pfd[n].events = POLLIN;
			slot_of_pfd[n++] = i;
		}
		if (n == 0)
			return;
		if (left <= 0) {
			msg_warn("%d retired worker%s still accepting after %.0f seconds",
				 n, n == 1 ? "" : "s", secs);
			return;
		}
		if (poll(pfd, n, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			return;
		for (int k = 0; k < n; k++)
			if (pfd[k].revents)
				close_accepting(&m->workers.slot[slot_of_pfd[k]]);
	}
}

void workers_signal_all(struct master *m, int sig)
{
	struct worker_slot *ws;

	for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
		ws = &m->workers.slot[i];
		ws->restart_at = 0;
		if (ws->pid != 0) {
			ws->stopping = true;
			kill(ws->pid, sig);
		}
	}
}

static int slot_of(const struct master *m, pid_t pid)
{
	for (int i = 0; i < MASTER_MAX_WORKERS; i++)
		if (m->workers.slot[i].pid == pid)
			return i;
	return -1;
}

void master_log_exit(const char *name, pid_t pid, int status, bool expected)
{
	if (WIFSIGNALED(status))
		msg_warn("process sluice/%s pid %ld killed by signal %d", name,
			 (long)pid, WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		msg_warn("process sluice/%s pid %ld exit status %d", name,
			 (long)pid, WEXITSTATUS(status));
	else if (!expected)
		msg_warn("process sluice/%s pid %ld exited unexpectedly", name,
			 (long)pid);
}

static void qmgr_reaped(struct master *m, int status);

void workers_reap(struct master *m)
{
	struct worker_slot *ws;
	pid_t pid;
	int status, slot;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == m->workers.qmgr.pid) {
			qmgr_reaped(m, status);
			continue;
		}
		if (delivery_proc_reaped(m, pid, status))
			continue;
		if ((slot = slot_of(m, pid)) < 0)
			continue;	/* not ours to supervise */
		ws = &m->workers.slot[slot];
		master_log_exit("smtpd", pid, status, ws->stopping || m->stopping);
		anvil_release(slot);
		close_accepting(ws);
		ws->pid = 0;
		if (ws->stopping || m->stopping
		    || ws->generation != m->workers.generation)
			memset(ws, 0, sizeof *ws);
		else
			schedule_restart(ws, mono_now());
	}
}

static void qmgr_spawn(struct master *m);

double workers_restart_due(struct master *m, double now)
{
	struct worker_slot *ws = &m->workers.qmgr;
	double next = delivery_proc_restart_due(m, now);

	if (ws->pid == 0 && ws->restart_at != 0) {
		if (ws->restart_at <= now)
			qmgr_spawn(m);
		else if (next == 0 || ws->restart_at < next)
			next = ws->restart_at;
	}

	for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
		ws = &m->workers.slot[i];
		if (ws->pid != 0 || ws->restart_at == 0)
			continue;
		if (ws->restart_at <= now)
			spawn(m, i);
		else if (next == 0 || ws->restart_at < next)
			next = ws->restart_at;
	}
	return next;
}

/* ---- the queue manager ------------------------------------------- */

static void run_qmgr(struct master *m) __attribute__((noreturn));

void workers_close_inherited(struct master *m)
{
	for (int i = 0; i < m->sockets.n; i++)
		close(m->sockets.v[i].ws.fd);
	for (int i = 0; i < MASTER_MAX_WORKERS; i++)
		if (m->workers.slot[i].accepting_open)
			close(m->workers.slot[i].accepting_fd);
}

/* In the child: no listening socket, no worker's pipe, then qmgr_main. */
static void run_qmgr(struct master *m)
{
	struct qmgr_args qa;

	master_child_setup(m);
	workers_close_inherited(m);
	memset(&qa, 0, sizeof qa);
	qa.master_pipe = m->alive_pipe[0];
	qa.drop_privileges = m->user.drop;
	qa.uid = m->user.uid;
	qa.gid = m->user.gid;
	qa.user = m->user.name;
	qa.delivery_socket = delivery_proc_socket(m);
	qmgr_main(m->sc, &qa);
}

static void qmgr_spawn(struct master *m)
{
	struct worker_slot *ws = &m->workers.qmgr;
	pid_t pid = fork();

	if (pid == 0)
		run_qmgr(m);
	ws->index = -1;
	ws->started = mono_now();
	ws->restart_at = 0;
	ws->stopping = ws->replace = false;
	ws->pid = pid < 0 ? 0 : pid;
	if (pid < 0) {
		msg_warn("fork: %s", strerror(errno));
		master_schedule_restart(ws, ws->started, "sluice/qmgr");
	}
}

void qmgr_proc_start(struct master *m)
{
	if (m->sc->qmgr && m->workers.qmgr.pid == 0 &&
	    m->workers.qmgr.restart_at == 0)
		qmgr_spawn(m);
}

void qmgr_proc_replace(struct master *m)
{
	struct worker_slot *ws = &m->workers.qmgr;

	if (ws->pid == 0) {
		ws->restart_at = 0;
		qmgr_proc_start(m);
		return;
	}
	ws->replace = true;
	ws->stopping = true;
	kill(ws->pid, SIGTERM);
}

void qmgr_proc_signal(struct master *m, int sig)
{
	struct worker_slot *ws = &m->workers.qmgr;

	ws->restart_at = 0;
	ws->replace = false;
	if (ws->pid != 0) {
		ws->stopping = true;
		kill(ws->pid, sig);
	}
}

bool qmgr_proc_alive(const struct master *m)
{
	return m->workers.qmgr.pid != 0;
}

static void qmgr_reaped(struct master *m, int status)
{
	struct worker_slot *ws = &m->workers.qmgr;
	bool replace = ws->replace;

	master_log_exit("qmgr", ws->pid, status, ws->stopping || m->stopping);
	ws->pid = 0;
	if (m->stopping || (ws->stopping && !replace)) {
		ws->stopping = ws->replace = false;
		return;
	}
	if (replace) {
		ws->replace = false;
		if (m->sc->qmgr)
			qmgr_spawn(m);
		return;
	}
	master_schedule_restart(ws, mono_now(), "sluice/qmgr");
}
