/*
 * delivery_server.h - the delivery process, sluice/delivery: the one
 * process that keeps root to run the agents that need it (local,
 * virtual, pipe), on requests from the queue manager, which does not.
 * Shared by delivery_server.c and delivery_job.c only, and the master.
 *
 *   delivery_server.c  the process: start-up, the socket, connections,
 *                      reading requests and writing results, the stop
 *   delivery_job.c     one request: checked against the configuration
 *                      and the queue file, run by its agent, answered
 *
 * The master forks it, as root, only when it runs as root itself and
 * master.cf has a qmgr; it binds the socket (delivery_proto.h's
 * DP_SOCKET in queue_directory) before the fork and keeps it across
 * restarts and reloads, so the queue manager always finds someone
 * listening.  Only mail_owner's processes may connect (the socket is in
 * private/, mode 0700, and the peer's uid is checked); every request is
 * treated as coming from a process that may be compromised.
 */
#ifndef SLUICE_DELIVERY_SERVER_H
#define SLUICE_DELIVERY_SERVER_H

#include <stdbool.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "delivery_proto.h"

struct sluice_config;
struct event_base;
struct bufferevent;
struct transport;

/* ---- what the master hands the delivery process ---------------------- */

struct delivery_server_args {
	int listen_fd;                  /* DP_SOCKET, listening */
	int master_pipe;                /* EOF here: the master is gone */
	uid_t owner_uid;                /* mail_owner: the only client, and */
	gid_t owner_gid;                /* the owner of every queue file */
};

/* Serve requests until told to stop (SIGTERM, or the master gone), then
 * finish the ones in progress and exit(0).  Never returns. */
void delivery_server_main(struct sluice_config *sc,
			  const struct delivery_server_args *a)
	__attribute__((noreturn));

/* ---- inside the delivery process ------------------------------------- */

struct dserver_events;

/* One connection from the queue manager. */
struct dconn {
	struct dserver *s;
	struct bufferevent *bev;        /* NULL once closed */
	uid_t uid;                      /* the peer, for log lines */
	pid_t pid;
	struct dp_request rd;           /* the request being read */
	int jobs;                       /* its requests in progress */
	bool reading;                   /* inside its read callback */
	bool closing;                   /* closes once its output is out */
	TAILQ_ENTRY(dconn) link;
};
TAILQ_HEAD(dconn_list, dconn);

/* The process state: one, owned by delivery_server.c. */
struct dserver {
	struct event_base *base;
	const struct sluice_config *sc;
	uid_t owner_uid;
	gid_t owner_gid;
	struct transport *builtin;      /* local, virtual without master.cf */
	int nbuiltin;
	struct dconn_list conns;
	int nconns;
	int jobs;                       /* requests in progress, in all */
	bool stopping;
	struct dserver_events *ev;
};

/* delivery_server.c: answer a request of c (nothing is written when c
 * was closed meanwhile), and let go of it once it is finished. */
void dconn_reply_result(struct dconn *c, unsigned long long seq,
			const struct delivery_request *req);
void dconn_reply_error(struct dconn *c, unsigned long long seq,
		       const char *dsn, const char *text);
void dconn_job_done(struct dconn *c);

/* delivery_job.c: start request r of connection c (r's contents are
 * taken over; r is left empty).  A request that is refused is logged and
 * answered at once; else it is answered when its agent is done. */
void djob_start(struct dserver *s, struct dconn *c, struct dp_request *r);

#endif
