/*
 * worker.h - an smtpd worker process: one libevent loop serving sessions.
 *
 * Forked by the master with the listening sockets open (listener->fd).
 * It loads the plugins, starts the thread pool and the queue committer,
 * accepts connections on every listener and runs smtp_session_start() for
 * each.  SIGTERM starts a graceful stop: stop accepting, let sessions in
 * progress finish (this is how reload keeps sessions), then exit 0.
 * EOF on the master's liveness pipe (the master died) does the same, so
 * no worker outlives its master for longer than its sessions.  SIGINT and
 * SIGHUP are ignored: the master alone decides (Ctrl-C under `sluice run`
 * reaches the whole process group).
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <stdbool.h>
#include <sys/types.h>

struct sluice_config;
struct listener;

/* One listening socket: a listener can have several (one per address of
 * inet_interfaces). */
struct worker_socket {
	int fd;
	const struct listener *listener;
};

/* What the master hands a new worker. */
struct worker_args {
	int index;			/* 0 .. n-1 within its generation */
	const struct worker_socket *sockets;
	int nsockets;
	int master_pipe;		/* EOF here: the master is gone; -1 none */
	int accepting_fd;		/* closed once we stop accepting; -1 none */
	bool drop_privileges;		/* started as root: become `user` */
	uid_t uid;
	gid_t gid;
	const char *user;
};

/* Serve until told to stop, then exit(0).  Never returns. */
void worker_main(struct sluice_config *sc, const struct worker_args *wa)
	__attribute__((noreturn));

#endif
