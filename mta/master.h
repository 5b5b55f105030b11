/*
 * master.h - the pieces of the master process, shared by master*.c only.
 *
 *   master.c          run/start, the signal loop, reload and stop
 *   master_listen.c   binding the listeners' sockets, keeping them across
 *                     reloads
 *   master_workers.c  forking, supervising and restarting smtpd workers,
 *                     and the queue manager
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
	bool stopping;
	bool qmgr_stopping;		/* stop: the workers are gone, now the qmgr */
	double stop_deadline;
};

double mono_now(void);
/* In a child right after fork: drop what only the master may hold. */
void master_child_setup(struct master *m);

#endif
