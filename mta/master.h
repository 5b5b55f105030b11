/*
 * master.h - the pieces of the master process, shared by master*.c only.
 *
 *   master.c          run/start, the signal loop, reload and stop
 *   master_listen.c   binding the listeners' sockets, keeping them across
 *                     reloads
 *   master_workers.c  forking, supervising and restarting smtpd workers,
 *                     and the queue manager
 *   master_delivery.c the delivery process (root, when the master is) and
 *                     its socket
 *   master_control.c  the pid file, and `sluice stop|reload|status`
 *
 * The master is one thread that waits for signals with sigtimedwait():
 * SIGCHLD (reap and restart), SIGHUP (reload), SIGTERM/SIGINT (stop).
 */
#ifndef SLUICE_MASTER_H
#define SLUICE_MASTER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "anvil.h"
#include "worker.h"

struct sluice_config;

/* ---- listening sockets (master_listen.c) ---- */

struct master_socket {
	struct worker_socket ws;	/* fd and the listener it serves */
	char key[96];			/* "127.0.0.1:25", "[::1]:25" */
	bool kept;			/* carried from/to another set */
};

struct socket_set {
	struct master_socket *v;
	int n, cap;
};

/* Open a socket for every address of every listener of sc into `next`
 * (empty).  Sockets of `prev` (may be NULL) with the same address are
 * carried over instead of bound again, so no connection is lost.  Sets
 * each listener's fd.  Returns 0, or -1 with the reason in err; then
 * nothing changed (prev is intact, next is empty). */
int listen_open(struct socket_set *next, struct sluice_config *sc,
		struct socket_set *prev, char *err, size_t errlen);
/* Close the sockets of `set` that were not carried over, and free it. */
void listen_close_unused(struct socket_set *set);

/* ---- who the workers run as ---- */

struct run_as {
	bool drop;			/* started as root: become this user */
	uid_t uid;
	gid_t gid;
	char name[64];
};

/* ---- workers (master_workers.c) ---- */

#define MASTER_MAX_WORKERS ANVIL_MAX_OWNERS	/* all generations together */
#define MASTER_GENERATION_MAX (MASTER_MAX_WORKERS / 2)

struct worker_slot {			/* index = the worker's anvil region */
	pid_t pid;			/* 0: no process */
	int generation;
	int index;			/* within its generation */
	bool stopping;			/* told to stop: its exit is expected */
	double started;			/* monotonic seconds */
	int quick_deaths;		/* in a row, soon after starting */
	double restart_at;		/* pending restart; 0 = none */
	int accepting_fd;		/* EOF here: it stopped accepting */
	bool accepting_open;		/* accepting_fd is ours to close */
	bool replace;			/* qmgr: start anew when it exits */
};

struct workers {
	struct worker_slot slot[MASTER_MAX_WORKERS];
	int generation;			/* the current one */
	int wanted;			/* workers per generation */
	struct worker_slot qmgr;	/* the queue manager, if master.cf has one */
};

struct master;

/* Fork a new generation of `wanted` workers. */
void workers_start_generation(struct master *m, int wanted);
/* SIGTERM every worker of generations before the current one. */
void workers_retire_old(struct master *m);
/* Wait (at most `secs`) until every retired worker has closed its
 * listening sockets, so that new connections meet the new generation. */
void workers_wait_retired(struct master *m, double secs);
/* Send sig to every worker, and expect them to exit. */
void workers_signal_all(struct master *m, int sig);
/* Reap exited workers; schedule restarts unless stopping. */
void workers_reap(struct master *m);
/* Start workers whose restart is due; return the next due time or 0. */
double workers_restart_due(struct master *m, double now);
int workers_alive(const struct master *m);
int workers_free_slots(const struct master *m);
/* In a child that is no worker (after master_child_setup): close the
 * listening sockets and the workers' accepting pipes. */
void workers_close_inherited(struct master *m);

/* ---- the queue manager (master_workers.c) ----
 * One process, started when master.cf declares a qmgr service, restarted
 * (throttled as workers are) when it dies.  Two must never work on the
 * queue at once: on reload the running one is told to stop, and its
 * successor, on the new configuration, starts when it has exited. */
void qmgr_proc_start(struct master *m);
void qmgr_proc_replace(struct master *m);
/* Send sig; it is not restarted. */
void qmgr_proc_signal(struct master *m, int sig);
bool qmgr_proc_alive(const struct master *m);

/* Shared by the supervisors (master_workers.c): log an exit as Postfix's
 * master does ("process sluice/NAME pid N exit status S", "... killed by
 * signal S", or "exited unexpectedly" when not `expected`), and schedule
 * the restart of a process that died, throttled when it keeps dying
 * soon after it starts (`what` names it in the warning). */
void master_log_exit(const char *name, pid_t pid, int status, bool expected);
void master_schedule_restart(struct worker_slot *ws, double now,
			     const char *what);

/* ---- the delivery process (master_delivery.c) ----
 * Started as root with a qmgr, the master runs sluice/delivery as root:
 * the agents that need root (local, virtual, pipe) run there, on the
 * queue manager's requests, so that the queue manager has no root at
 * all.  The master binds its socket (DP_SOCKET under queue_directory)
 * once, before forking it and the queue manager, and keeps it; the
 * process is restarted like the queue manager when it dies, replaced on
 * reload (the old one finishes what it started, on its configuration),
 * and stopped after the queue manager. */
#define DELIVERY_RETIRED_MAX	8

struct delivery_proc {
	struct worker_slot slot;	/* the current one */
	pid_t retired[DELIVERY_RETIRED_MAX];	/* replaced, finishing */
	int listen_fd;			/* -1: none (yet) */
};

/* Is there one to run for this configuration (root, and a qmgr)? */
bool delivery_proc_wanted(const struct master *m);
/* Bind the socket, if wanted and not done yet.  0, or -1 with err. */
int delivery_proc_prepare(struct master *m, char *err, size_t len);
/* Start the process, if wanted, bound and not running. */
void delivery_proc_start(struct master *m);
/* Reload: retire the running one (SIGTERM), start one on the new
 * configuration, if wanted. */
void delivery_proc_replace(struct master *m);
/* Send sig to it and the retired ones; none is restarted. */
void delivery_proc_signal(struct master *m, int sig);
bool delivery_proc_alive(const struct master *m);
/* Was pid one of them?  Then it has been dealt with. */
bool delivery_proc_reaped(struct master *m, pid_t pid, int status);
/* Start it if its restart is due; the next due time or 0. */
double delivery_proc_restart_due(struct master *m, double now);
/* What the queue manager connects to (relative to queue_directory), or
 * NULL when local, virtual and pipe run in the queue manager itself. */
const char *delivery_proc_socket(const struct master *m);
/* Close and remove the socket (the master is leaving). */
void delivery_proc_close(struct master *m);

/* ---- pid file (master_control.c) ---- */

/* queue_directory/pid/master.pid, malloc'ed. */
char *pidfile_path(const struct sluice_config *sc);
/* Create the pid directory, open and lock the pid file.  Returns the
 * descriptor, or -1: with *holder set when another master holds it. */
int pidfile_acquire(const char *path, pid_t *holder, char *err, size_t errlen);
void pidfile_write(int fd, pid_t pid);

/* ---- the master itself (master.c) ---- */

struct master {
	char *config_dir;		/* absolute */
	bool daemon;			/* `start` rather than `run` */
	struct sluice_config *sc;	/* the running configuration */
	struct socket_set sockets;	/* bound for sc */
	struct run_as user;
	char *pidfile;
	int pidfile_fd;
	int alive_pipe[2];		/* workers see EOF on [0] when we die */
	struct workers workers;
	struct delivery_proc delivery;
	bool stopping;
	bool qmgr_stopping;		/* stop: the workers are gone, now the qmgr */
	bool delivery_stopping;		/* ... and then the delivery process */
	double stop_deadline;
};

double mono_now(void);
/* In a child right after fork: drop what only the master may hold. */
void master_child_setup(struct master *m);

#endif
