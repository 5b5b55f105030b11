/*
 * qmgr.h - the queue manager process, sluice/qmgr (qmgr*.c).
 *
 * The master forks one queue manager when master.cf declares a qmgr
 * service ("qmgr unix n - n 300 1 qmgr", as Postfix), supervises it, and
 * replaces it on reload.  It takes messages from incoming/ (and from
 * deferred/ when their retry time has come) into active/, routes each
 * pending recipient to a transport and next hop, delivers through the
 * agents of delivery.h with per-destination concurrency, and afterwards
 * removes the message, bounces, or moves it to deferred/ with its next
 * retry time as the file's mtime.  docs/queue-manager.md tells the whole.
 *
 * The pieces:
 *   qmgr.c          the process: privileges, event loop, triggers, timers,
 *                   graceful stop
 *   qmgr_scan.c     listing incoming/, deferred/ and active/, moving files
 *                   into active/ (new and old mail alternate)
 *   qmgr_msg.c      a message in active/: envelope, recipients, the end of
 *                   its visit (bounces, removed)
 *   qmgr_defer.c    ... or deferred with backoff, or expired
 *   qmgr_state.c    what survives a visit beside the queue file: deferral
 *                   reasons (queue_reason.h) and qmgr state (defer/ID.qmgr)
 *   qmgr_route.c    recipients to (transport, next hop, address)
 *   qmgr_sched.c    transports, destinations, concurrency, dead sites,
 *                   choosing the next delivery
 *   qmgr_deliver.c  delivery requests to the agents, and their results
 *                   (local, virtual and pipe through the delivery process,
 *                   delivery_client.h, when started as root)
 *   qmgr_notify.c   bounces, delay and success notices (bounce.h)
 *   qmgr_log.c      the delivery log lines in Postfix's shape
 * (qmgr_trigger.c, the wake-up FIFO, belongs to the queue tools.)
 *
 * Everything runs in one thread, in the event loop; it blocks only on
 * the queue file system (rename, open, a few writes).  The fdatasync()
 * after a delivery runs on the job pool's threads.
 */
#ifndef SLUICE_QMGR_H
#define SLUICE_QMGR_H

#include <stdbool.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <sys/types.h>

#include "delivery.h"
#include "queue.h"

struct sluice_config;
struct config;
struct transport;
struct event;
struct event_base;

/* ---- what the master hands the queue manager (qmgr.c) ---- */

struct qmgr_args {
	int master_pipe;		/* EOF here: the master is gone; -1 none */
	bool drop_privileges;		/* started as root: become `user` */
	uid_t uid;
	gid_t gid;
	const char *user;
	const char *delivery_socket;	/* the delivery process' socket
					 * (relative to queue_directory), or
					 * NULL: run local, virtual and pipe
					 * here (not started as root) */
};

/* Run until told to stop, then exit(0).  Never returns.  Started as
 * root, it becomes mail_owner for good (real, effective and saved user
 * IDs) and hands local, virtual and pipe deliveries to the delivery
 * process (delivery_client.h), the only one that keeps root. */
void qmgr_main(struct sluice_config *sc, const struct qmgr_args *a)
	__attribute__((noreturn));

/* ---- inside the queue manager ------------------------------------ */

struct qmgr;
struct qmgr_msg;
struct qmgr_dest;

/* Parameters, read once at start. */
struct qmgr_params {
	long long queue_run_delay, min_backoff, max_backoff;
	long long max_lifetime, bounce_lifetime, delay_warning;
	int active_limit;		/* qmgr_message_active_limit */
	int delay_digits;		/* delay_logging_resolution_limit */
	int default_process_limit;
	char **defer_transports;
};

/* One address a queue recipient is delivered to: the recipient itself,
 * or one of its virtual alias expansions. */
enum qa_state {
	QA_TODO = 0,		/* not tried in this visit */
	QA_BUSY,		/* with a delivery agent or the bounce writer */
	QA_DONE,		/* delivered, or bounced and the bounce queued */
	QA_DEFERRED,		/* failed softly in this visit */
	QA_FAILED		/* failed for good: to be bounced */
};

struct qmgr_addr {
	char *addr;
	int index;			/* its recipient in the envelope */
	enum qa_state state;
	char dsn[16];			/* the last result */
	char *reason;
	char *relay;			/* delivered: where to */
	bool relayed;			/* ... to an SMTP server, not a mailbox */
	bool success;			/* a NOTIFY=SUCCESS report is due */
};

struct qmgr_msg {
	struct qmgr *q;
	char id[QUEUE_ID_MAX];
	char path[QUEUE_ID_MAX + 16];	/* "active/ID" */
	int fd;				/* read-write, on active/ID */
	struct queue_envelope env;
	struct timeval t_active;	/* entered active/ */
	bool old;			/* came from deferred/ or a restart */
	bool flush;			/* flushed: defer_transports deliver too */
	bool warned;			/* a delay notice was sent (state file) */
	bool expire_tried;		/* expired in this visit already */
	struct qmgr_addr *addrs;
	int naddrs;
	int refs;			/* entries and notices not finished */
	char **done_addrs;		/* expansions done in earlier visits */
	int *done_index;
	int ndone;
	TAILQ_ENTRY(qmgr_msg) link;
};
TAILQ_HEAD(qmgr_msg_list, qmgr_msg);

/* A piece of work: some addresses of one message for one destination. */
struct qmgr_entry {
	struct qmgr_msg *msg;
	struct qmgr_dest *dest;
	const char *transport;		/* the destination's */
	char *nexthop;
	int *addr;			/* indexes into msg->addrs */
	int n;
	const struct transport *tdef;	/* with an agent: its transport */
	int agent;			/* qmgr_deliver.c's enum */
	struct delivery_request req;	/* while with the agent */
	struct timeval t_start;		/* handed to the agent */
	TAILQ_ENTRY(qmgr_entry) link;
};
TAILQ_HEAD(qmgr_entry_list, qmgr_entry);

/* The process state: one, owned by qmgr.c, passed to every piece. */
struct qmgr {
	struct event_base *base;
	const struct sluice_config *sc;
	const struct config *cfg;	/* main.cf */
	struct qmgr_params p;
	struct qmgr_msg_list msgs;	/* in active/, in memory */
	int nmsgs;
	struct qmgr_scans *scans;	/* qmgr_scan.c */
	struct qmgr_sched *sched;	/* qmgr_sched.c */
	struct qmgr_events *events;	/* qmgr.c */
	struct event *feed_ev;		/* take more messages in, soon */
	struct delivery_client *dclient; /* local, virtual, pipe go there;
					 * NULL: their agents run here */
	int notices;			/* being written by bounce_send() */
	bool stopping;
};

/* qmgr.c: ask for a pass of the feeder and the scheduler soon (not from
 * inside the caller: results often arrive while dispatching). */
void qmgr_kick(struct qmgr *q);

/* ---- qmgr_scan.c ---- */
enum qmgr_queue { QQ_INCOMING, QQ_DEFERRED, QQ_ACTIVE };
int qmgr_scan_init(struct qmgr *q);
void qmgr_scan_free(struct qmgr *q);
/* Ask for a scan of a queue directory; `all` takes every deferred file,
 * whatever its retry time (a flush). */
void qmgr_scan_request(struct qmgr *q, enum qmgr_queue which, bool all);
/* Bring messages into active/ while there is room: incoming and
 * deferred mail take turns. */
void qmgr_scan_feed(struct qmgr *q);

/* ---- qmgr_msg.c ---- */
/* A file now in active/ as `id`: read it, route it, queue its work.
 * A damaged file goes to corrupt/. */
void qmgr_msg_activate(struct qmgr *q, const char *id, bool old, bool flush);
/* A new address of recipient `index`; its number in m->addrs. */
int qmgr_msg_add_addr(struct qmgr_msg *m, int index, const char *addr);
/* Set an address' state and its last result (text copied). */
void qmgr_addr_result(struct qmgr_addr *a, enum qa_state state,
		      const char *dsn, const char *text);
/* Drop one reference; at zero the visit ends: failures are bounced,
 * then the file is removed, deferred or expired. */
void qmgr_msg_unref(struct qmgr_msg *m);
/* Go on with the end of the visit (after an expiry turned deferred
 * recipients into failed ones). */
void qmgr_msg_resume(struct qmgr_msg *m);
/* Mark the recipients of these (done) addresses 'D' when all their
 * addresses are done (one pwrite() each); true when a byte changed, and
 * the file must be synced (qmgr_msg_sync) before the caller logs them.
 * Addresses done while their recipient is not go to the state file at
 * the end of the visit.  A write or sync that fails is logged: the
 * recipient may then be delivered again, never lost. */
bool qmgr_msg_mark_done(struct qmgr_msg *m, const int *addr, int n);
void qmgr_msg_sync(struct qmgr_msg *m);
/* Both, at once. */
void qmgr_msg_commit_done(struct qmgr_msg *m, const int *addr, int n);
void qmgr_msg_free(struct qmgr_msg *m);

/* ---- qmgr_defer.c ---- */
/* The visit ends with recipients pending: expire, or to deferred/. */
void qmgr_defer_msg(struct qmgr_msg *m);

/* ---- qmgr_state.c ---- */
/* Read defer/ID.qmgr into m (warned, done expansions). */
void qmgr_state_load(struct qmgr_msg *m);
/* Write (or remove when empty) defer/ID.qmgr, and the deferral reasons
 * of the recipients still pending (defer/ID). */
void qmgr_state_save(struct qmgr_msg *m);
/* The message is gone: remove both. */
void qmgr_state_remove(const char *id);
/* Was this expansion of recipient `index` done in an earlier visit? */
bool qmgr_state_was_done(const struct qmgr_msg *m, int index, const char *addr);

/* ---- qmgr_route.c ---- */
/* Route every pending recipient of m (rewriting, virtual aliases,
 * transport and next hop) and hand the addresses to the scheduler.
 * Recipients that cannot be routed now are deferred; for good, bounced. */
void qmgr_route_msg(struct qmgr_msg *m);

/* ---- qmgr_sched.c ---- */
int qmgr_sched_init(struct qmgr *q);
void qmgr_sched_free(struct qmgr *q);
/* Queue address `a` of m for (transport, nexthop); entries fill up to
 * the transport's recipient limit. */
void qmgr_sched_add(struct qmgr_msg *m, int a, const char *transport,
		    const char *nexthop);
/* Close m's open entries (no more addresses come for them). */
void qmgr_sched_seal(struct qmgr_msg *m);
/* Start deliveries while destinations and transports have room. */
void qmgr_sched_run(struct qmgr *q);
/* An entry came back from its agent: its destination's slot is free,
 * and the entry no longer points at it (the caller frees the entry).
 * `site_failed` when the agent could not reach the destination at all,
 * with the reason. */
void qmgr_sched_done(struct qmgr_entry *e, bool site_ok, bool site_failed,
		     const char *dsn, const char *reason);
/* Forget dead destinations (a flush). */
void qmgr_sched_flush_dead(struct qmgr *q);
/* Deliveries with the agents now. */
int qmgr_sched_busy(const struct qmgr *q);
/* Stopping: drop every entry not started. */
void qmgr_sched_abandon(struct qmgr *q);
/* Forget destinations that are idle and no longer dead. */
void qmgr_sched_sweep(struct qmgr *q);
void qmgr_entry_free(struct qmgr_entry *e);

/* ---- qmgr_deliver.c ---- */
/* Hand entry e to its transport's agent. */
void qmgr_deliver(struct qmgr_entry *e, const struct transport *t);
/* The most recipients one delivery of transport t may carry, whatever
 * its recipient limit says (the delivery process' requests are bounded);
 * 0: no such bound. */
int qmgr_deliver_rcpt_max(const struct qmgr *q, const struct transport *t);
/* Finish e's addresses without a delivery: all with this result
 * (a dead destination, defer_transports, an unknown transport). */
void qmgr_deliver_skip(struct qmgr_entry *e, int status, const char *dsn,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- qmgr_notify.c ---- */
/* One bounce for the failed addresses of m.  True when it is being
 * queued (they become done when it is on disk, and the visit goes on);
 * false when there were none, or it could not be written (they are
 * deferred). */
bool qmgr_notify_failures(struct qmgr_msg *m);
/* NOTIFY=SUCCESS: one report for the delivered addresses that asked. */
void qmgr_notify_success(struct qmgr_msg *m);
/* One delay notice for the deferred addresses of m. */
void qmgr_notify_delay(struct qmgr_msg *m);

/* ---- qmgr_log.c ---- */
struct qmgr_log_times {
	struct timeval arrival, active, start, conn, done;
};
/* "ID: to=<a>, orig_to=<o>, relay=R, delay=D, delays=a/b/c/d, dsn=X,
 * status=S (TEXT)", as PROGRAM/SERVICE: the transport's syslog_name (NULL:
 * main.cf's) and its agent ("smtp", "local"; NULL: "qmgr"). */
void qmgr_log_delivery(const struct qmgr *q, const char *program,
		       const char *service, const char *id, const char *to,
		       const char *orig_to, const char *relay,
		       const struct qmgr_log_times *t, const char *dsn,
		       const char *status, const char *text);
/* The same, for a recipient finished without a delivery attempt. */
void qmgr_log_skip(const struct qmgr_msg *m, const struct qmgr_addr *a,
		   const char *status, const char *dsn, const char *text);
void qmgr_log_queue_active(const struct qmgr_msg *m);
#endif
