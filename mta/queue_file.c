/*
 * queue_file.c - a queue file: create it, write the content, read it back,
 * replace the headers, seal it.
 *
 * A message file is created in incoming/ under a temporary name (O_EXCL,
 * mode 0600) and renamed at once to its queue ID, which needs the file's
 * inode (queue_id.c).  Content goes through a 64 KiB buffer and reaches the
 * kernel with one pwrite(2) per full buffer.  New headers from eom filters
 * are appended after the content, and the message becomes two segments:
 * the new header block, then the original body.  queue_file_seal() appends
 * the envelope (queue_envelope.c), points the preamble at it and marks the
 * file complete (0700); queue_commit.c then makes it durable.
 * docs/queue-format.md describes the format.
 *
 * Promises:
 * - a file gets mode 0700 only after its content, envelope and "end"
 *   record are written; before that it is 0600, and queue_dirs_ensure()
 *   removes such leftovers at start-up;
 * - a file never takes the name of another: the rename to the ID does not
 *   replace, and a held message moves to hold/ the same way;
 * - errors are sticky: after a failed write every later call fails with
 *   the same errno, and the caller aborts;
 * - queue_create() is safe from any thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "queue_internal.h"

#define QF_BUF_SIZE     (64 * 1024)
#define QF_MODE_WRITING 0600            /* being written: not a message yet */
#define QF_MODE_DONE    0700            /* complete (owner x bit = ready) */

struct queue_file {
	int fd;
	int err;                /* sticky errno after a failure, or 0 */
	char id[QUEUE_ID_MAX];
	char *dir;              /* directory holding the file */
	char *path;             /* dir/id */
	char *queue_dir;
	struct timeval stamp;   /* the time in the ID */
	char *buf;              /* QF_BUF_SIZE bytes, NULL once sealed */
	size_t buf_len;         /* bytes waiting in buf */
	off_t buf_off;          /* file offset of buf[0] */
	long long content_size; /* content bytes appended */
	long long body_off;     /* content offset of the body, or -1 */
	bool content_closed;    /* headers replaced or sealed */
	bool replaced;          /* hdr_off/hdr_len hold the header block */
	bool body_dropped;      /* ... and the body (a milter replaced it) */
	off_t hdr_off, hdr_len;
	bool sealed;
};

static int qf_fail(struct queue_file *qf, int err)
{
	qf->err = err;
	errno = err;
	return -1;
}

/* A misuse fails the call but leaves the file usable. */
static int misuse(void)
{
	errno = EINVAL;
	return -1;
}

static off_t qf_end(const struct queue_file *qf)
{
	return qf->buf_off + (off_t) qf->buf_len;
}

/* ==== creation ==== */

/* Rename without replacing; link+unlink where the file system lacks
 * RENAME_NOREPLACE.  Fails with EEXIST when `to` exists. */
static int rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (link(from, to) < 0)
		return -1;
	(void) unlink(from);
	return 0;
}

static int open_temp(const char *dir, char **tmp_path)
{
	static atomic_ulong temp_seq;   /* temporary name counter */
	int fd, e;

	for (;;) {
		if (asprintf(tmp_path, "%s/tmp.%ld.%lu", dir, (long) getpid(),
			     atomic_fetch_add(&temp_seq, 1)) < 0) {
			*tmp_path = NULL;
			errno = ENOMEM;
			return -1;
		}
		fd = open(*tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			  QF_MODE_WRITING);
		if (fd >= 0 || errno != EEXIST)
			break;
		free(*tmp_path);        /* a dead process' leftover: next */
	}
	if (fd < 0) {
		e = errno;
		free(*tmp_path);
		*tmp_path = NULL;
		errno = e;
	}
	return fd;
}

/* Give the open temporary file its ID name. */
static int name_by_id(struct queue_file *qf, const char *tmp_path)
{
	struct stat st;
	int tries;

	if (fstat(qf->fd, &st) < 0)
		return -1;
	for (tries = 0; tries < 16; tries++) {
		queue_id_stamp(&qf->stamp);
		queue_id_format(qf->id, &qf->stamp, st.st_ino);
		free(qf->path);
		if (asprintf(&qf->path, "%s/%s", qf->dir, qf->id) < 0) {
			qf->path = NULL;
			errno = ENOMEM;
			return -1;
		}
		if (rename_noreplace(tmp_path, qf->path) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

static void qf_free(struct queue_file *qf)
{
	if (qf->fd >= 0)
		close(qf->fd);
	free(qf->buf);
	free(qf->path);
	free(qf->dir);
	free(qf->queue_dir);
	free(qf);
}

static void put_preamble(off_t env_off, char *out)
{
	snprintf(out, QUEUE_PREAMBLE_LEN + 1, "%s%0*lld\n", QF_MAGIC,
		 QF_OFF_DIGITS, (long long) env_off);
}

static struct queue_file *qf_new(const char *queue_dir)
{
	struct queue_file *qf;

	if ((qf = calloc(1, sizeof(*qf))) == NULL)
		return NULL;
	qf->fd = -1;
	qf->body_off = -1;
	if (asprintf(&qf->dir, "%s/%s", queue_dir, QUEUE_INCOMING) < 0)
		qf->dir = NULL;
	if (qf->dir == NULL || (qf->queue_dir = strdup(queue_dir)) == NULL
	    || (qf->buf = malloc(QF_BUF_SIZE)) == NULL) {
		qf_free(qf);
		errno = ENOMEM;
		return NULL;
	}
	return qf;
}

struct queue_file *queue_create(const char *queue_dir)
{
	struct queue_file *qf;
	char *tmp_path = NULL;
	int e;

	if ((qf = qf_new(queue_dir)) == NULL)
		return NULL;
	if ((qf->fd = open_temp(qf->dir, &tmp_path)) < 0
	    || name_by_id(qf, tmp_path) < 0) {
		e = errno;
		if (tmp_path != NULL)
			(void) unlink(tmp_path);
		free(tmp_path);
		qf_free(qf);
		errno = e;
		return NULL;
	}
	free(tmp_path);
	put_preamble(0, qf->buf);       /* offset 0: no envelope yet */
	qf->buf_len = QUEUE_PREAMBLE_LEN;
	return qf;
}

const char *queue_file_id(const struct queue_file *qf)
{
	return qf->id;
}

int queue_file_fd(const struct queue_file *qf)
{
	return qf->fd;
}

const char *queue_file_dir(const struct queue_file *qf)
{
	return qf->dir;
}

void queue_file_close(struct queue_file *qf)
{
	qf_free(qf);
}

void queue_abort(struct queue_file *qf)
{
	if (qf == NULL)
		return;
	if (unlink(qf->path) < 0 && errno != ENOENT)
		msg_warn("%s: cannot remove %s: %m", qf->id, qf->path);
	qf_free(qf);
}

/* ==== buffered writing ==== */

static int qf_flush(struct queue_file *qf)
{
	const char *p = qf->buf;
	size_t left = qf->buf_len;
	ssize_t n;

	if (qf->err)
		return qf_fail(qf, qf->err);
	while (left > 0) {
		n = pwrite(qf->fd, p, left, qf->buf_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return qf_fail(qf, n < 0 ? errno : EIO);
		p += n;
		left -= (size_t) n;
		qf->buf_off += n;
	}
	qf->buf_len = 0;
	return 0;
}

int queue_file_append(struct queue_file *qf, const void *data, size_t len)
{
	const char *p = data;
	size_t n;

	if (qf->err)
		return qf_fail(qf, qf->err);
	while (len > 0) {
		if (qf->buf_len == QF_BUF_SIZE && qf_flush(qf) < 0)
			return -1;
		n = QF_BUF_SIZE - qf->buf_len;
		if (n > len)
			n = len;
		memcpy(qf->buf + qf->buf_len, p, n);
		qf->buf_len += n;
		p += n;
		len -= n;
	}
	return 0;
}

int queue_write(struct queue_file *qf, const void *buf, size_t len)
{
	if (qf->content_closed)
		return misuse();
	if (queue_file_append(qf, buf, len) < 0)
		return -1;
	qf->content_size += (long long) len;
	return 0;
}

long long queue_content_size(const struct queue_file *qf)
{
	return qf->content_size;
}

void queue_mark_body(struct queue_file *qf)
{
	qf->body_off = qf->content_size;
}

long long queue_body_offset(const struct queue_file *qf)
{
	return qf->body_off;
}

/* ==== reading content back ==== */

ssize_t queue_pread_full(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = pread(fd, p + got, len - got, off + (off_t) got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t) n;
	}
	return (ssize_t) got;
}

long queue_pread(struct queue_file *qf, void *buf, size_t len, long long off)
{
	if (off < 0 || off > qf->content_size) {
		errno = EINVAL;
		return -1;
	}
	if ((long long) len > qf->content_size - off)
		len = (size_t) (qf->content_size - off);
	if (qf->buf_len > 0 && qf_flush(qf) < 0)
		return -1;
	return (long) queue_pread_full(qf->fd, buf, len,
				       QUEUE_PREAMBLE_LEN + (off_t) off);
}

long queue_message_pread(int fd, const struct queue_envelope *env,
			 void *buf, size_t len, long long off)
{
	char *out = buf;
	size_t done = 0;
	long long seg_start = 0;
	int i;

	if (off < 0) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < env->nseg && done < len; i++) {
		long long seg_len = env->seg[i].len, in, want;
		ssize_t n;

		if (off + (long long) done >= seg_start + seg_len) {
			seg_start += seg_len;
			continue;
		}
		in = off + (long long) done - seg_start;
		want = seg_len - in;
		if (want > (long long) (len - done))
			want = (long long) (len - done);
		n = queue_pread_full(fd, out + done, (size_t) want,
				     env->seg[i].off + (off_t) in);
		if (n < 0)
			return -1;
		done += (size_t) n;
		if (n < want)
			break;          /* the file is shorter than it says */
		seg_start += seg_len;
	}
	return (long) done;
}

/* ==== replacing the header block ==== */

static long long header_block_end(const struct queue_file *qf)
{
	return qf->body_off >= 0 ? qf->body_off : qf->content_size;
}

/* Does the body start with the empty line that ends the headers? */
static int body_starts_empty(struct queue_file *qf, bool *empty)
{
	char c;
	long n;

	n = queue_pread(qf, &c, 1, header_block_end(qf));
	if (n < 0)
		return -1;
	*empty = (n == 1 && c == '\n');
	return 0;
}

int queue_replace_headers(struct queue_file *qf, const char *hdrs, size_t len)
{
	bool body_empty_line;
	off_t start;

	if (qf->sealed)
		return misuse();
	if (body_starts_empty(qf, &body_empty_line) < 0)
		return -1;
	start = qf_end(qf);
	if (queue_file_append(qf, hdrs, len) < 0)
		return -1;
	if (len > 0 && hdrs[len - 1] != '\n') {
		if (queue_file_append(qf, "\n", 1) < 0)
			return -1;
		len++;
	}
	/* One empty line between headers and body, not two. */
	if (body_empty_line && !qf->body_dropped && len > 0
	    && (len == 1 || hdrs[len - 2] == '\n'))
		len--;
	qf->content_closed = true;
	qf->replaced = true;
	qf->hdr_off = start;
	qf->hdr_len = (off_t) len;
	return 0;
}

int queue_drop_body(struct queue_file *qf)
{
	if (qf->sealed || qf->replaced)
		return misuse();
	qf->body_dropped = true;
	return 0;
}

/* The message as stored: the content, or new headers + original body. */
static int qf_segments(const struct queue_file *qf, struct queue_seg *seg)
{
	off_t body;

	if (qf->replaced && qf->body_dropped) {
		seg[0].off = qf->hdr_off;
		seg[0].len = qf->hdr_len;
		return 1;
	}
	if (!qf->replaced) {
		seg[0].off = QUEUE_PREAMBLE_LEN;
		seg[0].len = (off_t) qf->content_size;
		return 1;
	}
	body = (off_t) header_block_end(qf);
	seg[0].off = qf->hdr_off;
	seg[0].len = qf->hdr_len;
	seg[1].off = QUEUE_PREAMBLE_LEN + body;
	seg[1].len = (off_t) qf->content_size - body;
	return 2;
}

/* ==== sealing ==== */

static int write_preamble(struct queue_file *qf, off_t env_off)
{
	char line[QUEUE_PREAMBLE_LEN + 1];
	ssize_t n;

	put_preamble(env_off, line);
	do
		n = pwrite(qf->fd, line, QUEUE_PREAMBLE_LEN, 0);
	while (n < 0 && errno == EINTR);
	if (n != QUEUE_PREAMBLE_LEN)
		return qf_fail(qf, n < 0 ? errno : EIO);
	return 0;
}

/* A held message lives in hold/ before it is marked complete. */
static int move_to_hold(struct queue_file *qf)
{
	char *dir = NULL, *path = NULL;
	int e;

	if (asprintf(&dir, "%s/%s", qf->queue_dir, QUEUE_HOLD) < 0
	    || asprintf(&path, "%s/%s", dir, qf->id) < 0) {
		free(dir);
		return qf_fail(qf, ENOMEM);
	}
	if (rename_noreplace(qf->path, path) < 0) {
		e = errno;
		free(dir);
		free(path);
		return qf_fail(qf, e);
	}
	free(qf->dir);
	free(qf->path);
	qf->dir = dir;
	qf->path = path;
	return 0;
}

int queue_file_seal(struct queue_file *qf, const struct queue_envelope *env)
{
	struct queue_seg seg[2];
	off_t env_off;
	int nseg;

	if (qf->sealed || !queue_envelope_writable(env))
		return misuse();
	if (qf->err)
		return qf_fail(qf, qf->err);
	env_off = qf_end(qf);
	nseg = qf_segments(qf, seg);
	if (queue_envelope_put(qf, env, &qf->stamp, seg, nseg) < 0
	    || qf_flush(qf) < 0 || write_preamble(qf, env_off) < 0)
		return -1;
	if (env->hold && move_to_hold(qf) < 0)
		return -1;
	if (fchmod(qf->fd, QF_MODE_DONE) < 0)
		return qf_fail(qf, errno);
	qf->sealed = true;
	qf->content_closed = true;
	free(qf->buf);
	qf->buf = NULL;
	return 0;
}
