/*
 * queue_tools.h - between the pieces of `sluice queue`: queue_cmd.c
 * (dispatch, hold, release, requeue, delete, flush), queue_list.c (list,
 * mailq's format), queue_show.c (show, postcat's) and queue_tools.c (the
 * helpers below).  Nothing else
 * includes it; the command is cmd_queue() in commands.h.
 *
 * The tools read the queue directories directly, so they need the
 * rights of mail_owner (or root).  They only ever look at complete
 * queue files (owner x bit, docs/queue-format.md): a file being written
 * belongs to the process writing it.
 */
#ifndef SLUICE_QUEUE_TOOLS_H
#define SLUICE_QUEUE_TOOLS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

struct queue_envelope;

/* The queues, in the order `list` and `show` look at them. */
struct qt_queue {
	const char *name;       /* "incoming", ... */
	char mark;              /* after the ID in `list`: ' ', '*', '!' */
};
extern const struct qt_queue qt_queues[];      /* NULL name ends it */

/* Is `id` shaped like a queue ID (so it is safe in a path)? */
bool qt_id_ok(const char *id);
/* Is `name` one of the queues above (incoming ... hold, corrupt)? */
bool qt_queue_ok(const char *name);
/* Open the complete queue file qdir/sub/id read-only, without following
 * links; -1 (errno) when it is missing, not regular or not complete. */
int qt_open(const char *qdir, const char *sub, const char *id,
	    struct stat *st);
/* The complete queue files of qdir/sub, sorted (arrival order); NULL
 * with errno when the directory cannot be read. *n gets the count. */
char **qt_list_ids(const char *qdir, const char *sub, int *n);
void qt_free_ids(char **ids, int n);
/* Print s with control characters shown as '?': envelope values come
 * from SMTP clients and must not reach a terminal raw. */
void qt_put_safe(FILE *fp, const char *s);
/* "Sat Nov 21 05:38:36 " as mailq and postcat show times (20 chars). */
void qt_time(char *buf, size_t size, long long secs);

/* The commands' bodies: queue_list.c and queue_show.c. */
int queue_list(const char *qdir, int argc, char **argv);
int queue_show(const char *qdir, int argc, char **argv);

#endif
