/*
 * queue.h - the durable mail queue: one file per message.
 *
 * Layout under queue_directory: incoming/, active/, deferred/, hold/,
 * corrupt/ (created by the master, see queue_dirs_ensure()).  A file is
 * named by its queue ID.  The format is documented in docs/queue-format.md:
 * a fixed preamble that points at the envelope, the message content as
 * received (LF line endings, dot-unstuffed, our Received: first), then the
 * envelope records and an "end" record.
 *
 * The promise: queue_commit()'s done callback reports success only after
 * the file's data and its directory entry are on stable storage.  A file
 * still being written has mode 0600; a committed one 0700 (as Postfix marks
 * complete queue files), so anything 0600 in incoming/ at start-up is a
 * half-written leftover and is removed.  Commits of many sessions share
 * one directory flush (group commit, queue_commit.c).
 *
 * Queue IDs: 8 hex digits of seconds, 5 of microseconds, then the file's
 * inode number in hex: unique while the file exists (all queue directories
 * are on one file system and files move by rename), and sortable by arrival.
 */
#ifndef SLUICE_QUEUE_H
#define SLUICE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define QUEUE_ID_MAX 32

/* DSN */
enum { DSN_RET_NONE = 0, DSN_RET_FULL, DSN_RET_HDRS };
enum { DSN_NOTIFY_NONE = 0,     /* no NOTIFY given */
       DSN_NOTIFY_NEVER = 1, DSN_NOTIFY_SUCCESS = 2,
       DSN_NOTIFY_FAILURE = 4, DSN_NOTIFY_DELAY = 8 };
enum { BODY_7BIT = 0, BODY_8BITMIME, BODY_BINARYMIME };

struct queue_rcpt {
	char *addr;             /* without <> */
	char *orcpt;            /* DSN ORCPT (addr-type;xtext as given) or NULL */
	int notify;             /* DSN_NOTIFY_* bits */
	char status;            /* 'P' pending, 'D' done (delivered/bounced) */
};

struct queue_envelope {
	long long arrival_sec; long arrival_usec;
	char *sender;           /* "" for the null sender */
	struct queue_rcpt *rcpt; int nrcpt;
	char *envid;            /* DSN ENVID or NULL */
	int ret;                /* DSN_RET_* */
	int body;               /* BODY_* */
	bool smtputf8;
	long long size;         /* bytes of content */
	char *client_name, *client_addr, *helo, *proto, *listener;
	int client_port;
	char *sasl_method, *sasl_username;
	char *message_id;       /* from the Message-ID header, or NULL */
	char *filter;           /* content filter next hop "transport:destination"
				 * (FILTER action, content_filter) or NULL:
				 * the queue manager delivers every recipient
				 * there instead of routing it */
	bool hold;              /* goes to hold/ instead of incoming/ */
	char *hold_reason;
	/* Content segments (offset, length) that form the message in order;
	 * filled by queue_read_envelope, or set by the writer when headers
	 * were modified (queue_replace_headers). */
	struct { off_t off; off_t len; } *seg; int nseg;
};

void queue_envelope_free(struct queue_envelope *env);

/* ---- directories ---- */
/* Create queue_dir and its subdirectories (mode 0700, owner uid/gid when
 * uid != -1), remove half-written files in incoming/ and hold/.  0 or -1
 * with a message in err. */
int queue_dirs_ensure(const char *queue_dir, uid_t uid, gid_t gid,
		      char *err, size_t errlen);

/* ---- free space ---- */
/* True when the queue file system has room for a message of `size` bytes
 * and still queue_minfree bytes free (Postfix: also 1.5 x size). */
bool queue_space_ok(const char *queue_dir, long long size, long long minfree);

/* ---- writing a message ---- */
struct queue_file;

/* Create a new file in incoming/.  Returns NULL with errno set. */
struct queue_file *queue_create(const char *queue_dir);
const char *queue_file_id(const struct queue_file *qf);
/* Append message content (buffered).  0 or -1 with errno (ENOSPC...). */
int queue_write(struct queue_file *qf, const void *buf, size_t len);
/* Bytes of content written so far. */
long long queue_content_size(const struct queue_file *qf);
/* Offset, within the content, where the body starts (set by the writer
 * once it sees the end of the headers; lets eom modifications keep the
 * body and replace the header block). */
void queue_mark_body(struct queue_file *qf);
/* Offset of the body within the content (after queue_mark_body), or -1. */
long long queue_body_offset(const struct queue_file *qf);
/* Read back content already written (flushes the write buffer first). */
long queue_pread(struct queue_file *qf, void *buf, size_t len, long long off);
/* Before queue_replace_headers(): its text becomes the whole message
 * (headers, empty line, body) instead of the header block only (a
 * milter's body replacement).  0, or -1 (EINVAL). */
int queue_drop_body(struct queue_file *qf);
/* Replace the header block with `hdrs` (LF-terminated lines). */
int queue_replace_headers(struct queue_file *qf, const char *hdrs, size_t len);

typedef void (*queue_done_fn)(void *arg, int err);   /* err: 0 or errno */
/* Write the envelope, then make everything durable; done(arg, err) runs
 * in the event loop afterwards.  On error the file is removed.  The
 * queue_file is consumed either way. */
void queue_commit(struct queue_file *qf, const struct queue_envelope *env,
		  queue_done_fn done, void *arg);
/* Drop a message being written (client went away, RSET, rejected). */
void queue_abort(struct queue_file *qf);

/* Start/stop the group-commit thread of this process (after jobpool_start). */
int queue_committer_start(void);
void queue_committer_stop(void);

/* ---- reading ---- */
/* Parse a queue file's envelope.  0, or -1 with a reason in err (a
 * corrupt or incomplete file). */
int queue_read_envelope(const char *path, struct queue_envelope *env,
			char *err, size_t errlen);

/* ---- additions: layout, reading helpers, commit statistics ---- */

/* The subdirectories of queue_directory, all on its file system. */
#define QUEUE_INCOMING  "incoming"
#define QUEUE_ACTIVE    "active"
#define QUEUE_DEFERRED  "deferred"
#define QUEUE_HOLD      "hold"
#define QUEUE_CORRUPT   "corrupt"

/* Every queue file starts with this fixed-size line (docs/queue-format.md):
 * "sluice-queue 1 " then the envelope's file offset in 20 digits, "\n". */
#define QUEUE_PREAMBLE_LEN 36

/* Notes on the writing calls above (queue_file.c):
 * - queue_mark_body() is called at the empty line that ends the headers,
 *   before writing it: the body starts with that empty line.  The header
 *   block is content [0, body offset).
 * - queue_replace_headers() takes header lines only (each LF-terminated);
 *   an empty line at its end is dropped when the body already starts with
 *   one.  Without queue_mark_body() the whole content is the header block.
 *   It ends the content: queue_write() afterwards fails with EINVAL, and
 *   queue_pread() still reads the content as received.
 * - queue_commit() writes `size` and `seg` from the queue_file (what was
 *   written and replaced), not from env->size / env->seg; it writes
 *   arrival from env, or from the queue ID's time when env->arrival_sec
 *   is 0; a recipient whose status is 0 is written as 'P'.  If no
 *   committer thread runs (a command-line tool), the fsyncs are done in
 *   the caller; if no job pool runs either, done() is called before
 *   queue_commit() returns. */

/* Same as queue_read_envelope(), on an open file. */
int queue_read_envelope_fd(int fd, struct queue_envelope *env,
			   char *err, size_t errlen);
/* Read `len` bytes of the message (its segments in order, as listed in
 * `env` by queue_read_envelope) from message offset `off`.  Returns the
 * bytes read (less than len only at the end), or -1 with errno. */
long queue_message_pread(int fd, const struct queue_envelope *env,
			 void *buf, size_t len, long long off);
/* Overwrite, in place, the status byte of the file's recipient number
 * `index` (0-based, in envelope order) with `status` ('P' or 'D').  The
 * caller makes it durable (fdatasync) when it needs to.  0 or -1 (errno;
 * EINVAL for a bad index or a damaged record). */
int queue_rcpt_set_status(int fd, int index, char status);

/* Group commit counters of this process (for tests and `sluice status`). */
struct queue_commit_stats {
	unsigned long long batches;     /* flushes: batches with a file to sync */
	unsigned long long files;       /* files committed or failed */
	unsigned long long file_syncs;  /* fsync() of queue files */
	unsigned long long dir_syncs;   /* fsync() of directories */
	unsigned long long failures;    /* commits reported with an error */
};
void queue_commit_stats(struct queue_commit_stats *st);
/* Tests only: while held, the committer takes no new batch (commits
 * queue up), so a test can prove that one flush serves them all. */
void queue_committer_hold(bool hold);

#endif
