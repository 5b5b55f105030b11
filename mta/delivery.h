/*
 * delivery.h - what the queue manager hands a delivery agent, and what
 * the agent hands back: Postfix's delivery request and per-recipient
 * status, as one small struct every agent (smtp, lmtp, local, pipe,
 * discard, error) shares.
 *
 * A request is one message, one transport and one next hop, with the
 * recipients that go there (at most the transport's recipient limit).  The
 * agent fills in each recipient's result - a Postfix DSN class (2, 4, 5),
 * an enhanced status code and a text - and the relay it talked to, then
 * calls the completion.  The queue manager alone decides what follows
 * (mark done, defer, bounce) and writes the log lines.
 *
 * The promise an agent keeps: it never reports 2 for a recipient the next
 * hop (or the mailbox) has not accepted for good, and it reports every
 * recipient it was given, exactly once, through one completion.
 */
#ifndef SLUICE_DELIVERY_H
#define SLUICE_DELIVERY_H

#include <stdbool.h>
#include <sys/time.h>
#include <sys/types.h>

#include "queue.h"

struct event_base;
struct config;

struct delivery_rcpt {
	const char *addr;           /* the address to deliver to (after rewriting) */
	const char *orig_addr;      /* as received (orig_to=), or NULL if the same */
	int queue_index;            /* its index in the queue file's envelope */
	/* result, filled by the agent */
	int status;                 /* 0 not tried, 2 delivered, 4 deferred, 5 bounced */
	char dsn[16];               /* "2.0.0", "4.4.1", "5.1.1" */
	char *text;                 /* "250 2.0.0 Ok: queued as X" or a reason (malloc'ed) */
	/* DSN success, set by the smtp/lmtp agent as Postfix's
	 * smtp_rcpt_done(): the next hop announced DSN and was given the
	 * NOTIFY, so no success notice comes from here (notify_passed); a
	 * success notice says Action: relayed, not delivered (relayed) */
	bool notify_passed;
	bool relayed;
};

struct delivery_request {
	const char *queue_id;
	const char *queue_path;     /* the file, in active/ */
	int queue_fd;               /* open read-only on it */
	const struct queue_envelope *env;
	const char *transport;      /* "smtp", "lmtp", "local", "virtual", "pipe", "discard", "error" */
	const char *nexthop;        /* "[192.0.2.1]:25", "example.com", "unix:/path", user... */
	const struct config *cfg;   /* the transport's configuration (main.cf + its -o) */
	char *const *agent_args;    /* master.cf arguments of the transport (pipe's
				     * flags=, user=, argv=...), NULL-terminated */
	/* set by a root caller (the delivery process): the file system ids
	 * new queue files (local's forwarded copies) are written with,
	 * mail_owner's; 0: the caller's own */
	uid_t queue_uid;
	gid_t queue_gid;
	struct delivery_rcpt *rcpt;
	int nrcpt;
	/* filled by the agent */
	char relay[300];            /* "mx.example.com[192.0.2.1]:25", "local", "none" */
	struct timeval t_conn;      /* when the connection was set up (delays= c) */
	struct timeval t_done;      /* when the transmission ended (delays= d) */
};

typedef void (*delivery_done_fn)(struct delivery_request *req, void *arg);

/* Set one recipient's result (text copied). */
void delivery_set(struct delivery_rcpt *r, int status, const char *dsn,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Set the result of every recipient not yet given one. */
void delivery_set_rest(struct delivery_request *req, int status,
		       const char *dsn, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Free the results' texts (the request itself belongs to the caller). */
void delivery_clear(struct delivery_request *req);

/* ---- the agents ------------------------------------------------------- */

/* Every agent has the same shape: start the delivery from the caller's
 * event loop, never block it, call done(req, arg) once, from the loop,
 * when every recipient has a result. */

/* SMTP and LMTP client, in the caller's event loop (smtp_client*.c). */
void smtp_deliver(struct event_base *base, struct delivery_request *req,
		  bool lmtp, delivery_done_fn done, void *arg);
/* Local delivery (maildir, mbox, aliases, .forward, |command, /file) in a
 * child process per recipient, run as the recipient (local_*.c). */
void local_deliver(struct event_base *base, struct delivery_request *req,
		   delivery_done_fn done, void *arg);
/* virtual(8): mailboxes of virtual mailbox domains (maildir or mbox
 * under virtual_mailbox_base, owned by virtual_uid_maps and
 * virtual_gid_maps; no aliases, no passwd), in a child process per
 * recipient, never as root (virtual_deliver.c). */
void virtual_deliver(struct event_base *base, struct delivery_request *req,
		     delivery_done_fn done, void *arg);
/* pipe(8): a command from master.cf's argv=, in a child process, never as
 * root (pipe_deliver.c). */
void pipe_deliver(struct event_base *base, struct delivery_request *req,
		  delivery_done_fn done, void *arg);

#endif
