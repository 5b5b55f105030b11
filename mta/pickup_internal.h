/*
 * pickup_internal.h - between pickup.c (the maildrop scan, the checks,
 * the commit) and pickup_content.c (copying the message into the queue
 * file).  Nothing else includes it; the interface is pickup.h.
 */
#ifndef SLUICE_PICKUP_INTERNAL_H
#define SLUICE_PICKUP_INTERNAL_H

#include <stdbool.h>

struct config;
struct maildrop_msg;
struct queue_file;

struct pickup_content {
	const struct config *cfg;
	int fd;                         /* the maildrop file */
	const struct maildrop_msg *m;   /* its checked records */
	const char *sender;             /* qualified */
	long uid;                       /* the file's owner */
	const char *queue_id;
	/* filled by pickup_copy() */
	char *message_id;               /* found or made; malloc'ed or NULL */
	bool eightbit;                  /* a byte >= 0x80 was copied */
	bool utf8_headers;              /* ... in the header block */
};

/* Write the message into qf: Received:, headers, the missing ones, body.
 * 0, or -1 with errno. */
int pickup_copy(struct queue_file *qf, struct pickup_content *pc);

/* non_smtpd_milters (pickup_milter.c).  When the list is set (and the
 * process has an event loop), the message in qf goes through the milters
 * and `done` gets qf and the envelope back (both its to commit or abort,
 * the envelope to free) with SLUICE_DUNNO (commit), SLUICE_REJECT or
 * SLUICE_DISCARD (drop) or SLUICE_DEFER (try again later); returns 0.
 * Returns -1, taking nothing, when there are no milters to ask. */
struct queue_envelope;
typedef void (*pickup_milter_fn)(void *ctx, struct queue_file *qf,
				 struct queue_envelope *env, int verdict);
int pickup_milter_run(const struct config *c, struct queue_file *qf,
		      struct queue_envelope *env, pickup_milter_fn done,
		      void *ctx);

#endif
