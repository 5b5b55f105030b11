/*
 * queue_reason.h - why a message's recipients were deferred, for
 * `sluice queue list` (mailq shows it in parentheses above them).
 *
 * The queue manager records the reason of each deferred recipient; the
 * reasons of a message live beside the queue, in queue_directory/defer/ID
 * (Postfix keeps them in defer/ too), never in the queue file, whose
 * only byte ever changed after the commit is a recipient's status.  The
 * file is informational: it is replaced whole (written under a temporary
 * name, then renamed), never synced, and a missing or damaged one just
 * shows no reasons.
 *
 * Format (docs/queue-tools.md): one line per recipient that has a
 * reason, "INDEX<TAB>REASON\n", INDEX the recipient's 0-based position in
 * the queue file's envelope, REASON encoded as envelope values are
 * (control bytes, DEL and '%' as %XX).
 *
 * Who calls what: the queue manager calls queue_reason_update() after a
 * delivery attempt with the recipients it deferred, and
 * queue_reason_remove() when it removes the queue file; `sluice queue`
 * reads them (queue_reason_load) and removes them with the message
 * (delete, requeue).
 */
#ifndef SLUICE_QUEUE_REASON_H
#define SLUICE_QUEUE_REASON_H

#define QUEUE_DEFER     "defer"         /* under queue_directory */

struct queue_reason {
	int index;              /* recipient index in the envelope */
	const char *text;       /* "connect to mx.example.net[...]:25: ...";
				 * NULL: forget this recipient's reason */
};

/* Set the reasons of these recipients, keeping the others' (the file
 * goes when none is left).  0, or -1 with errno. */
int queue_reason_update(const char *queue_dir, const char *id,
			const struct queue_reason *r, int n);
/* The reasons of message `id` as an array of nrcpt strings (NULL where a
 * recipient has none), or NULL when there are none at all. */
char **queue_reason_load(const char *queue_dir, const char *id, int nrcpt);
void queue_reason_free(char **reasons, int nrcpt);
/* Forget the reasons of message `id`.  0 (also when there were none),
 * or -1 with errno. */
int queue_reason_remove(const char *queue_dir, const char *id);

#endif
