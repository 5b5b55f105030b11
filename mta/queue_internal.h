/*
 * queue_internal.h - internal interfaces of the queue files, shared by
 * queue_id.c (queue IDs), queue_file.c (creating, writing, sealing a
 * file, reading content back) and queue_envelope.c (the envelope records,
 * written and read), and queue_commit.c.  Nothing else includes it; the public
 * interface is queue.h.
 */
#ifndef SLUICE_QUEUE_INTERNAL_H
#define SLUICE_QUEUE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/time.h>
#include <sys/types.h>

#include "queue.h"

/* The preamble (QUEUE_PREAMBLE_LEN bytes): QF_MAGIC, then the envelope's
 * file offset in QF_OFF_DIGITS digits (0 while the file is being
 * written), then LF. */
#define QF_MAGIC        "sluice-queue 1 "
#define QF_OFF_DIGITS   20

/* A run of message bytes in the file: the message is its segments in
 * order. */
struct queue_seg { off_t off, len; };

/* ---- queue IDs (queue_id.c) ---- */
/* The time for a new ID: now, but always later than the last one this
 * process handed out.  Safe from any thread. */
void queue_id_stamp(struct timeval *tv);
/* Format an ID (QUEUE_ID_MAX bytes) from its time and the file's inode. */
void queue_id_format(char *id, const struct timeval *tv, ino_t ino);

/* ---- the file (queue_file.c) ---- */
/* Append to the file through its buffer.  0, or -1 with errno; a failure
 * is sticky (every later call fails the same way). */
int queue_file_append(struct queue_file *qf, const void *data, size_t len);
/* pread() all of len unless the file ends first: the bytes read, or -1. */
ssize_t queue_pread_full(int fd, void *buf, size_t len, off_t off);

/* ---- envelope records (queue_envelope.c) ---- */
/* Can queue_envelope_put() write env (counts, ranges, statuses)? */
bool queue_envelope_writable(const struct queue_envelope *env);
/* Append the envelope records of a message made of seg[0..nseg), then the
 * "end" record.  The arrival is env's, or `stamp` when env has none. */
int queue_envelope_put(struct queue_file *qf, const struct queue_envelope *env,
		       const struct timeval *stamp,
		       const struct queue_seg *seg, int nseg);

/* Internal, between queue_file.c and queue_commit.c.  queue_file_seal()
 * appends the envelope, points the preamble at it, moves a held message
 * to hold/ and marks the file complete (0700); page-cache writes only,
 * nothing durable yet.  -1 with errno leaves qf to queue_abort(). */
int queue_file_seal(struct queue_file *qf, const struct queue_envelope *env);
int queue_file_fd(const struct queue_file *qf);
/* The directory holding the file now (incoming/ or hold/). */
const char *queue_file_dir(const struct queue_file *qf);
/* Close and free a committed file, leaving it in place. */
void queue_file_close(struct queue_file *qf);

#endif
