/*
 * worker.h - an smtpd worker process: one libevent loop serving sessions.
 *
 * Forked by the master with the listening sockets open (listener->fd).
 * It loads the plugins, starts the thread pool and the queue committer,
 * accepts connections on every listener and runs smtp_session_start() for
 * each.  SIGTERM starts a graceful stop: stop accepting, let sessions in
 * progress finish (this is how reload keeps sessions), then exit 0.
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

struct sluice_config;

/* Never returns. */
void worker_main(struct sluice_config *sc, int worker_index) __attribute__((noreturn));

#endif
