/*
 * queue_fs.c - queue files on disk: create, write, read back, envelope.
 *
 * A message file is created in incoming/ under a temporary name (O_EXCL,
 * mode 0600) and renamed at once to its queue ID, which needs the file's
 * inode.  Content goes through a 64 KiB buffer and reaches the kernel with
 * one pwrite(2) per full buffer.  queue_file_seal() appends the envelope,
 * points the preamble at it and marks the file complete (0700);
 * queue_commit.c then makes it durable.  queue_read_envelope() parses a
 * file and checks it.  docs/queue-format.md describes the format.
 *
 * Promises:
 * - a file gets mode 0700 only after its content, envelope and "end"
 *   record are written; before that it is 0600, and queue_dirs_ensure()
 *   removes such leftovers at start-up;
 * - no envelope value ever holds a raw control character, whatever the
 *   client sent: control bytes, DEL and '%' are written as %XX;
 * - the reader accepts a file only when its preamble, its records, its
 *   segments and its "end" record at the very end of the file agree;
 * - errors are sticky: after a failed write every later call fails with
 *   the same errno, and the caller aborts.
 * IDs grow strictly within a process (a clock step back never repeats
 * one); queue_create() is safe from any thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"

#define QF_BUF_SIZE     (64 * 1024)
#define QF_MODE_WRITING 0600            /* being written: not a message yet */
#define QF_MODE_DONE    0700            /* complete (owner x bit = ready) */
#define QF_DIR_MODE     0700
#define QF_ENV_MAX      (16 * 1024 * 1024)      /* sanity cap when reading */
#define QF_MAGIC        "sluice-queue 1 "
#define QF_OFF_DIGITS   20

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
	off_t hdr_off, hdr_len;
	bool sealed;
};

struct qf_seg { off_t off, len; };

static int qf_fail(struct queue_file *qf, int err)
{
	qf->err = err;
	errno = err;
	return -1;
}

static off_t qf_end(const struct queue_file *qf)
{
	return qf->buf_off + (off_t) qf->buf_len;
}

/* ==== queue IDs and creation ==== */

static pthread_mutex_t stamp_lock = PTHREAD_MUTEX_INITIALIZER;
static struct timeval last_stamp;       /* newest ID time of this process */
static unsigned long temp_seq;          /* temporary name counter */

/* The time for a new ID: now, but always later than the last one. */
static void next_stamp(struct timeval *tv)
{
	pthread_mutex_lock(&stamp_lock);
	gettimeofday(tv, NULL);
	if (!timercmp(tv, &last_stamp, >)) {
		*tv = last_stamp;
		if (++tv->tv_usec >= 1000000) {
			tv->tv_sec++;
			tv->tv_usec = 0;
		}
	}
	last_stamp = *tv;
	pthread_mutex_unlock(&stamp_lock);
}

static void format_id(char *id, const struct timeval *tv, ino_t ino)
{
	snprintf(id, QUEUE_ID_MAX, "%08llX%05lX%llX",
		 (unsigned long long) tv->tv_sec & 0xffffffffULL,
		 (unsigned long) tv->tv_usec, (unsigned long long) ino);
}

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
	unsigned long seq;
	int fd;

	for (;;) {
		pthread_mutex_lock(&stamp_lock);
		seq = temp_seq++;
		pthread_mutex_unlock(&stamp_lock);
		if (asprintf(tmp_path, "%s/tmp.%ld.%lu", dir,
			     (long) getpid(), seq) < 0) {
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
		int e = errno;

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
		next_stamp(&qf->stamp);
		format_id(qf->id, &qf->stamp, st.st_ino);
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

static void put_preamble(struct queue_file *qf, off_t env_off, char *out)
{
	snprintf(out, QUEUE_PREAMBLE_LEN + 1, "%s%0*lld\n", QF_MAGIC,
		 QF_OFF_DIGITS, (long long) env_off);
}

struct queue_file *queue_create(const char *queue_dir)
{
	struct queue_file *qf;
	char *tmp_path = NULL;
	int e;

	if ((qf = calloc(1, sizeof(*qf))) == NULL)
		return NULL;
	qf->fd = -1;
	qf->body_off = -1;
	if (asprintf(&qf->dir, "%s/%s", queue_dir, QUEUE_INCOMING) < 0)
		qf->dir = NULL;
	if (qf->dir == NULL || (qf->queue_dir = strdup(queue_dir)) == NULL
	    || (qf->buf = malloc(QF_BUF_SIZE)) == NULL) {
		e = ENOMEM;
		goto fail;
	}
	if ((qf->fd = open_temp(qf->dir, &tmp_path)) < 0
	    || name_by_id(qf, tmp_path) < 0) {
		e = errno;
		if (tmp_path != NULL)
			(void) unlink(tmp_path);
		goto fail;
	}
	free(tmp_path);
	put_preamble(qf, 0, qf->buf);   /* offset 0: no envelope yet */
	qf->buf_len = QUEUE_PREAMBLE_LEN;
	return qf;

fail:
	free(tmp_path);
	qf_free(qf);
	errno = e;
	return NULL;
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

static int qf_append(struct queue_file *qf, const void *data, size_t len)
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

static int qf_puts(struct queue_file *qf, const char *s)
{
	return qf_append(qf, s, strlen(s));
}

/* A misuse fails the call but leaves the file usable. */
static int misuse(void)
{
	errno = EINVAL;
	return -1;
}

int queue_write(struct queue_file *qf, const void *buf, size_t len)
{
	if (qf->content_closed)
		return misuse();
	if (qf_append(qf, buf, len) < 0)
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

/* pread() all of len unless the file ends first. */
static ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
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
	return (long) pread_full(qf->fd, buf, len,
				 QUEUE_PREAMBLE_LEN + (off_t) off);
}

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
	if (qf_append(qf, hdrs, len) < 0)
		return -1;
	if (len > 0 && hdrs[len - 1] != '\n') {
		if (qf_append(qf, "\n", 1) < 0)
			return -1;
		len++;
	}
	/* One empty line between headers and body, not two. */
	if (body_empty_line && len > 0
	    && (len == 1 || hdrs[len - 2] == '\n'))
		len--;
	qf->content_closed = true;
	qf->replaced = true;
	qf->hdr_off = start;
	qf->hdr_len = (off_t) len;
	return 0;
}

/* The message as stored: the content, or new headers + original body. */
static int qf_segments(const struct queue_file *qf, struct qf_seg *seg)
{
	off_t body;

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

/* ==== envelope records: writing ==== */

/* String records written when not NULL, read back into the same field. */
static const struct env_text_field {
	const char *key;
	size_t off;
} env_text_fields[] = {
	{ "envid", offsetof(struct queue_envelope, envid) },
	{ "client_name", offsetof(struct queue_envelope, client_name) },
	{ "client_addr", offsetof(struct queue_envelope, client_addr) },
	{ "helo", offsetof(struct queue_envelope, helo) },
	{ "proto", offsetof(struct queue_envelope, proto) },
	{ "listener", offsetof(struct queue_envelope, listener) },
	{ "sasl_method", offsetof(struct queue_envelope, sasl_method) },
	{ "sasl_username", offsetof(struct queue_envelope, sasl_username) },
	{ "message_id", offsetof(struct queue_envelope, message_id) },
};
#define N_TEXT_FIELDS (sizeof(env_text_fields) / sizeof(env_text_fields[0]))

static char **env_text_slot(struct queue_envelope *env, size_t i)
{
	return (char **) ((char *) env + env_text_fields[i].off);
}

static const char *env_text_value(const struct queue_envelope *env, size_t i)
{
	return *(char *const *) ((const char *) env + env_text_fields[i].off);
}

static const char *const body_names[] = { "7BIT", "8BITMIME", "BINARYMIME" };

static const struct { const char *name; int bit; } notify_names[] = {
	{ "NEVER", DSN_NOTIFY_NEVER }, { "SUCCESS", DSN_NOTIFY_SUCCESS },
	{ "FAILURE", DSN_NOTIFY_FAILURE }, { "DELAY", DSN_NOTIFY_DELAY },
};

static bool value_byte_needs_escape(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == '%';
}

/* A value, with control bytes, DEL and '%' as %XX: never a raw LF or TAB. */
static int put_value(struct queue_file *qf, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *run = s;
	char esc[3];

	for (; *s != '\0'; s++) {
		if (!value_byte_needs_escape((unsigned char) *s))
			continue;
		esc[0] = '%';
		esc[1] = hex[(unsigned char) *s >> 4];
		esc[2] = hex[(unsigned char) *s & 15];
		if (qf_append(qf, run, (size_t) (s - run)) < 0
		    || qf_append(qf, esc, 3) < 0)
			return -1;
		run = s + 1;
	}
	return qf_append(qf, run, (size_t) (s - run));
}

/* "key value\n", or "key\n" for an empty value. */
static int put_record(struct queue_file *qf, const char *key, const char *value)
{
	if (qf_puts(qf, key) < 0)
		return -1;
	if (value != NULL && *value != '\0'
	    && (qf_puts(qf, " ") < 0 || put_value(qf, value) < 0))
		return -1;
	return qf_puts(qf, "\n");
}

static int put_number_record(struct queue_file *qf, const char *key,
			     long long n)
{
	char line[64];

	snprintf(line, sizeof(line), "%s %lld\n", key, n);
	return qf_puts(qf, line);
}

static int put_seg(struct queue_file *qf, const struct qf_seg *seg)
{
	char line[64];

	snprintf(line, sizeof(line), "seg %lld %lld\n", (long long) seg->off,
		 (long long) seg->len);
	return qf_puts(qf, line);
}

static int put_notify(struct queue_file *qf, int notify)
{
	const char *sep = "";
	size_t i;

	if (notify == DSN_NOTIFY_NONE)
		return qf_puts(qf, "-");
	for (i = 0; i < sizeof(notify_names) / sizeof(notify_names[0]); i++) {
		if (!(notify & notify_names[i].bit))
			continue;
		if (qf_puts(qf, sep) < 0 || qf_puts(qf, notify_names[i].name) < 0)
			return -1;
		sep = ",";
	}
	return 0;
}

/* "rcpt S<TAB>addr<TAB>notify<TAB>orcpt": S is at a fixed place, so the
 * queue manager can overwrite it in place. */
static int put_rcpt(struct queue_file *qf, const struct queue_rcpt *r)
{
	char head[8];

	snprintf(head, sizeof(head), "rcpt %c\t", r->status ? r->status : 'P');
	if (qf_puts(qf, head) < 0 || put_value(qf, r->addr) < 0
	    || qf_puts(qf, "\t") < 0 || put_notify(qf, r->notify) < 0
	    || qf_puts(qf, "\t") < 0
	    || (r->orcpt != NULL ? put_value(qf, r->orcpt) : qf_puts(qf, "-")) < 0)
		return -1;
	return qf_puts(qf, "\n");
}

static bool env_writable(const struct queue_envelope *env)
{
	int i;

	if (env->nrcpt < 0 || (env->nrcpt > 0 && env->rcpt == NULL)
	    || env->arrival_sec < 0 || env->arrival_usec < 0
	    || env->arrival_usec > 999999 || env->client_port > 65535
	    || env->body < BODY_7BIT || env->body > BODY_BINARYMIME
	    || env->ret < DSN_RET_NONE || env->ret > DSN_RET_HDRS)
		return false;
	for (i = 0; i < env->nrcpt; i++) {
		char s = env->rcpt[i].status;

		if (env->rcpt[i].addr == NULL
		    || (s != 0 && (s < 'A' || s > 'Z')))
			return false;
	}
	return true;
}

static int put_header_records(struct queue_file *qf,
			      const struct queue_envelope *env, long long size)
{
	char line[64];
	size_t i;

	if (env->arrival_sec != 0)
		snprintf(line, sizeof(line), "arrival %lld.%06ld\n",
			 env->arrival_sec, env->arrival_usec);
	else
		snprintf(line, sizeof(line), "arrival %lld.%06ld\n",
			 (long long) qf->stamp.tv_sec, (long) qf->stamp.tv_usec);
	if (qf_puts(qf, line) < 0
	    || put_number_record(qf, "size", size) < 0
	    || put_record(qf, "sender", env->sender ? env->sender : "") < 0
	    || put_record(qf, "body", body_names[env->body]) < 0)
		return -1;
	if (env->ret != DSN_RET_NONE
	    && put_record(qf, "ret", env->ret == DSN_RET_FULL ? "FULL" : "HDRS") < 0)
		return -1;
	if (env->smtputf8 && put_record(qf, "smtputf8", NULL) < 0)
		return -1;
	for (i = 0; i < N_TEXT_FIELDS; i++) {
		const char *v = env_text_value(env, i);

		if (v != NULL && put_record(qf, env_text_fields[i].key, v) < 0)
			return -1;
	}
	if (env->client_port > 0
	    && put_number_record(qf, "client_port", env->client_port) < 0)
		return -1;
	if (env->hold && put_record(qf, "hold", env->hold_reason) < 0)
		return -1;
	return 0;
}

static int put_envelope(struct queue_file *qf, const struct queue_envelope *env)
{
	struct qf_seg seg[2];
	long long size = 0;
	int nseg, i;

	nseg = qf_segments(qf, seg);
	for (i = 0; i < nseg; i++)
		size += seg[i].len;
	if (put_header_records(qf, env, size) < 0)
		return -1;
	for (i = 0; i < env->nrcpt; i++)
		if (put_rcpt(qf, &env->rcpt[i]) < 0)
			return -1;
	for (i = 0; i < nseg; i++)
		if (put_seg(qf, &seg[i]) < 0)
			return -1;
	return qf_puts(qf, "end\n");
}

static int write_preamble(struct queue_file *qf, off_t env_off)
{
	char line[QUEUE_PREAMBLE_LEN + 1];
	ssize_t n;

	put_preamble(qf, env_off, line);
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

	if (asprintf(&dir, "%s/%s", qf->queue_dir, QUEUE_HOLD) < 0
	    || asprintf(&path, "%s/%s", dir, qf->id) < 0) {
		free(dir);
		return qf_fail(qf, ENOMEM);
	}
	if (rename_noreplace(qf->path, path) < 0) {
		int e = errno;

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
	off_t env_off;

	if (qf->sealed || !env_writable(env))
		return misuse();
	if (qf->err)
		return qf_fail(qf, qf->err);
	env_off = qf_end(qf);
	if (put_envelope(qf, env) < 0 || qf_flush(qf) < 0
	    || write_preamble(qf, env_off) < 0)
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

/* ==== envelope records: reading ==== */

struct env_reader {
	struct queue_envelope *env;
	off_t env_off;          /* segments must end before this */
	off_t line_off;         /* file offset of the record read, or -1 */
	int rcpt_alloc, seg_alloc;
	bool have_arrival, have_size, have_sender, have_body, have_end;
	char *err;
	size_t errlen;
};

static int bad(struct env_reader *rd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The reason, after the damaged record's offset when there is one. */
static int bad(struct env_reader *rd, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (rd->line_off >= 0)
		n = snprintf(rd->err, rd->errlen, "record at offset %lld: ",
			     (long long) rd->line_off);
	if (n < 0 || (size_t) n >= rd->errlen)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(rd->err + n, rd->errlen - (size_t) n, fmt, ap);
	va_end(ap);
	return -1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode a value's %XX escapes into a new string; NULL when damaged. */
static char *decode_value(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;
	size_t i;
	int hi, lo;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char) s[i];

		if (c < 0x20 || c == 0x7f)
			goto bad;
		if (c != '%') {
			*o++ = (char) c;
			continue;
		}
		if (i + 2 >= len)
			goto bad;
		if ((hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0
		    || (hi == 0 && lo == 0))
			goto bad;
		*o++ = (char) (hi << 4 | lo);
		i += 2;
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* Strict decimal: digits only (leading zeros allowed), no sign, no
 * overflow. */
static bool parse_number(const char *s, size_t len, long long *val)
{
	long long v = 0;
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9'
		    || __builtin_mul_overflow(v, 10, &v)
		    || __builtin_add_overflow(v, s[i] - '0', &v))
			return false;
	}
	*val = v;
	return true;
}

static int set_text(struct env_reader *rd, char **slot, const char *key,
		    const char *v, size_t len)
{
	char *s = decode_value(v, len);

	if (s == NULL)
		return bad(rd, "damaged value in the %s record", key);
	free(*slot);
	*slot = s;
	return 0;
}

static int read_arrival(struct env_reader *rd, const char *v, size_t len)
{
	const char *dot = memchr(v, '.', len);
	long long sec, usec;

	if (dot == NULL || !parse_number(v, (size_t) (dot - v), &sec)
	    || (size_t) (v + len - dot - 1) != 6
	    || !parse_number(dot + 1, 6, &usec))
		return bad(rd, "bad arrival record");
	rd->env->arrival_sec = sec;
	rd->env->arrival_usec = (long) usec;
	rd->have_arrival = true;
	return 0;
}

static int read_notify(struct env_reader *rd, const char *v, size_t len,
		       int *notify)
{
	size_t i, n;

	*notify = DSN_NOTIFY_NONE;
	if (len == 1 && *v == '-')
		return 0;
	while (len > 0) {
		const char *comma = memchr(v, ',', len);
		size_t word = comma ? (size_t) (comma - v) : len;

		for (i = 0, n = sizeof(notify_names) / sizeof(notify_names[0]);
		     i < n; i++)
			if (strlen(notify_names[i].name) == word
			    && memcmp(notify_names[i].name, v, word) == 0)
				break;
		if (i == n)
			return bad(rd, "bad NOTIFY in a rcpt record");
		*notify |= notify_names[i].bit;
		v += word + (comma != NULL);
		len -= word + (comma != NULL);
	}
	return 0;
}

static struct queue_rcpt *new_rcpt(struct env_reader *rd)
{
	struct queue_envelope *env = rd->env;
	struct queue_rcpt *r;

	if (env->nrcpt == rd->rcpt_alloc) {
		int n = rd->rcpt_alloc ? 2 * rd->rcpt_alloc : 8;

		r = realloc(env->rcpt, (size_t) n * sizeof(*r));
		if (r == NULL)
			return NULL;
		env->rcpt = r;
		rd->rcpt_alloc = n;
	}
	r = &env->rcpt[env->nrcpt++];
	memset(r, 0, sizeof(*r));
	return r;
}

/* "S<TAB>addr<TAB>notify<TAB>orcpt" */
static int read_rcpt(struct env_reader *rd, const char *v, size_t len)
{
	const char *f[3], *end = v + len, *p;
	size_t flen[3];
	struct queue_rcpt *r;
	int i;

	if (len < 2 || *v < 'A' || *v > 'Z' || v[1] != '\t')
		return bad(rd, "bad status in a rcpt record");
	for (i = 0, p = v + 2; i < 3; i++) {
		const char *tab = memchr(p, '\t', (size_t) (end - p));

		if ((tab == NULL) != (i == 2))
			return bad(rd, "bad field count in a rcpt record");
		f[i] = p;
		flen[i] = (size_t) ((tab ? tab : end) - p);
		p = tab ? tab + 1 : end;
	}
	if ((r = new_rcpt(rd)) == NULL)
		return bad(rd, "out of memory");
	r->status = *v;
	if ((r->addr = decode_value(f[0], flen[0])) == NULL || flen[0] == 0)
		return bad(rd, "bad address in a rcpt record");
	if (read_notify(rd, f[1], flen[1], &r->notify) < 0)
		return -1;
	if (!(flen[2] == 1 && *f[2] == '-')
	    && (r->orcpt = decode_value(f[2], flen[2])) == NULL)
		return bad(rd, "bad ORCPT in a rcpt record");
	return 0;
}

static int read_seg(struct env_reader *rd, const char *v, size_t len)
{
	struct queue_envelope *env = rd->env;
	const char *sp = memchr(v, ' ', len);
	long long off, slen, end;

	if (sp == NULL || !parse_number(v, (size_t) (sp - v), &off)
	    || !parse_number(sp + 1, (size_t) (v + len - sp - 1), &slen))
		return bad(rd, "bad seg record");
	if (off < QUEUE_PREAMBLE_LEN || __builtin_add_overflow(off, slen, &end)
	    || end > rd->env_off)
		return bad(rd, "seg record %lld %lld outside the content "
			   "(%d..%lld)", off, slen, QUEUE_PREAMBLE_LEN,
			   (long long) rd->env_off);
	if (env->nseg == rd->seg_alloc) {
		int n = rd->seg_alloc ? 2 * rd->seg_alloc : 4;
		void *s = realloc(env->seg, (size_t) n * sizeof(*env->seg));

		if (s == NULL)
			return bad(rd, "out of memory");
		env->seg = s;
		rd->seg_alloc = n;
	}
	env->seg[env->nseg].off = (off_t) off;
	env->seg[env->nseg].len = (off_t) slen;
	env->nseg++;
	return 0;
}

static int read_keyword(struct env_reader *rd, const char *key,
			const char *v, size_t len,
			const char *const *names, int nnames, int *out)
{
	int i;

	for (i = 0; i < nnames; i++)
		if (names[i] && strlen(names[i]) == len
		    && memcmp(names[i], v, len) == 0) {
			*out = i;
			return 0;
		}
	return bad(rd, "bad %s record", key);
}

static int read_number_field(struct env_reader *rd, const char *key,
			     const char *v, size_t len, long long max,
			     long long *out)
{
	if (!parse_number(v, len, out) || *out > max)
		return bad(rd, "bad %s record", key);
	return 0;
}

static int read_record(struct env_reader *rd, const char *key,
		       const char *v, size_t len)
{
	static const char *const ret_names[] = { NULL, "FULL", "HDRS" };
	struct queue_envelope *env = rd->env;
	long long n = 0;
	size_t i;

	if (strcmp(key, "rcpt") == 0)
		return read_rcpt(rd, v, len);
	if (strcmp(key, "seg") == 0)
		return read_seg(rd, v, len);
	if (strcmp(key, "arrival") == 0)
		return read_arrival(rd, v, len);
	if (strcmp(key, "sender") == 0) {
		rd->have_sender = true;
		return set_text(rd, &env->sender, key, v, len);
	}
	if (strcmp(key, "size") == 0) {
		rd->have_size = true;
		return read_number_field(rd, key, v, len, INT64_MAX, &env->size);
	}
	if (strcmp(key, "client_port") == 0) {
		if (read_number_field(rd, key, v, len, 65535, &n) < 0)
			return -1;
		env->client_port = (int) n;
		return 0;
	}
	if (strcmp(key, "body") == 0) {
		rd->have_body = true;
		return read_keyword(rd, key, v, len, body_names, 3, &env->body);
	}
	if (strcmp(key, "ret") == 0)
		return read_keyword(rd, key, v, len, ret_names, 3, &env->ret);
	if (strcmp(key, "smtputf8") == 0) {
		env->smtputf8 = true;
		return len == 0 ? 0 : bad(rd, "bad %s record", key);
	}
	if (strcmp(key, "hold") == 0) {
		env->hold = true;
		return len == 0 ? 0 : set_text(rd, &env->hold_reason, key, v, len);
	}
	for (i = 0; i < N_TEXT_FIELDS; i++)
		if (strcmp(key, env_text_fields[i].key) == 0)
			return set_text(rd, env_text_slot(env, i), key, v, len);
	return 0;       /* unknown record: a later minor addition; skip it */
}

/* One "key[ value]" line, without its LF. */
static int read_line(struct env_reader *rd, const char *line, size_t len)
{
	char key[32];
	const char *sp = memchr(line, ' ', len);
	size_t klen = sp ? (size_t) (sp - line) : len;
	size_t i;

	if (klen == 0 || klen >= sizeof(key))
		return bad(rd, "bad record name");
	for (i = 0; i < klen; i++)
		if (!((line[i] >= 'a' && line[i] <= 'z') || line[i] == '_'
		      || (line[i] >= '0' && line[i] <= '9')))
			return bad(rd, "bad record name");
	memcpy(key, line, klen);
	key[klen] = '\0';
	if (strcmp(key, "end") == 0) {
		rd->have_end = true;
		return sp == NULL ? 0 : bad(rd, "bad %s record", key);
	}
	if (sp == NULL)
		return read_record(rd, key, line + len, 0);
	return read_record(rd, key, sp + 1, len - klen - 1);
}

static int check_envelope(struct env_reader *rd)
{
	const struct queue_envelope *env = rd->env;
	long long total = 0;
	int i;

	if (!rd->have_end)
		return bad(rd, "no end record: the file is incomplete");
	if (!rd->have_arrival || !rd->have_size || !rd->have_sender
	    || !rd->have_body || env->nseg == 0)
		return bad(rd, "a required record is missing (arrival, size, "
			   "sender, body, seg)");
	for (i = 0; i < env->nseg; i++)
		total += env->seg[i].len;
	if (total != env->size)
		return bad(rd, "segments add up to %lld bytes, size says %lld",
			   total, env->size);
	return 0;
}

static int parse_envelope(struct env_reader *rd, const char *text, size_t len)
{
	const char *p = text, *end = text + len, *nl;

	while (p < end) {
		rd->line_off = rd->env_off + (off_t) (p - text);
		if (rd->have_end)
			return bad(rd, "data after the end record");
		if ((nl = memchr(p, '\n', (size_t) (end - p))) == NULL)
			return bad(rd, "last record cut short: the file is "
				   "incomplete");
		if (read_line(rd, p, (size_t) (nl - p)) < 0)
			return -1;
		p = nl + 1;
	}
	rd->line_off = -1;
	return check_envelope(rd);
}

static int parse_preamble(const char *pre, off_t *env_off)
{
	long long off;

	if (memcmp(pre, QF_MAGIC, sizeof(QF_MAGIC) - 1) != 0
	    || pre[QUEUE_PREAMBLE_LEN - 1] != '\n'
	    || !parse_number(pre + sizeof(QF_MAGIC) - 1, QF_OFF_DIGITS, &off))
		return -1;
	*env_off = (off_t) off;
	return 0;
}

/* Read the preamble and the envelope text (NUL-terminated, caller frees). */
static int load_envelope(int fd, char **text, size_t *len, off_t *env_off,
			 char *err, size_t errlen)
{
	char pre[QUEUE_PREAMBLE_LEN];
	struct stat st;
	ssize_t n;

	*text = NULL;
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "fstat: %s", strerror(errno));
		return -1;
	}
	n = pread_full(fd, pre, sizeof(pre), 0);
	if (n < 0) {
		snprintf(err, errlen, "read: %s", strerror(errno));
		return -1;
	}
	if (n != (ssize_t) sizeof(pre) || parse_preamble(pre, env_off) < 0) {
		snprintf(err, errlen, "not a sluice queue file (bad preamble)");
		return -1;
	}
	if (*env_off == 0) {
		snprintf(err, errlen, "no envelope: the file was never completed");
		return -1;
	}
	if (*env_off < QUEUE_PREAMBLE_LEN || *env_off >= st.st_size
	    || st.st_size - *env_off > QF_ENV_MAX) {
		snprintf(err, errlen, "envelope offset %lld does not fit a "
			 "file of %lld bytes", (long long) *env_off,
			 (long long) st.st_size);
		return -1;
	}
	*len = (size_t) (st.st_size - *env_off);
	if ((*text = malloc(*len + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = pread_full(fd, *text, *len, *env_off);
	if (n != (ssize_t) *len) {
		snprintf(err, errlen, "cannot read the envelope: %s",
			 n < 0 ? strerror(errno) : "the file shrank");
		free(*text);
		*text = NULL;
		return -1;
	}
	(*text)[*len] = '\0';
	return 0;
}

int queue_read_envelope_fd(int fd, struct queue_envelope *env,
			   char *err, size_t errlen)
{
	struct env_reader rd = { .env = env, .line_off = -1, .err = err,
				 .errlen = errlen };
	char *text;
	size_t len;
	int rc;

	memset(env, 0, sizeof(*env));
	if (load_envelope(fd, &text, &len, &rd.env_off, err, errlen) < 0)
		return -1;
	rc = parse_envelope(&rd, text, len);
	free(text);
	if (rc < 0)
		queue_envelope_free(env);
	return rc;
}

int queue_read_envelope(const char *path, struct queue_envelope *env,
			char *err, size_t errlen)
{
	int fd, rc;

	memset(env, 0, sizeof(*env));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return -1;
	}
	rc = queue_read_envelope_fd(fd, env, err, errlen);
	close(fd);
	return rc;
}

void queue_envelope_free(struct queue_envelope *env)
{
	size_t i;
	int r;

	if (env == NULL)
		return;
	for (r = 0; r < env->nrcpt; r++) {
		free(env->rcpt[r].addr);
		free(env->rcpt[r].orcpt);
	}
	free(env->rcpt);
	free(env->sender);
	for (i = 0; i < N_TEXT_FIELDS; i++)
		free(*env_text_slot(env, i));
	free(env->hold_reason);
	free(env->seg);
	memset(env, 0, sizeof(*env));
}

/* ==== reading a stored message, updating recipients ==== */

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
		n = pread_full(fd, out + done, (size_t) want,
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

int queue_rcpt_set_status(int fd, int index, char status)
{
	char err[128], *text, *p, *nl;
	off_t env_off;
	size_t len;
	int seen = 0;
	ssize_t n;

	if (status < 'A' || status > 'Z' || index < 0) {
		errno = EINVAL;
		return -1;
	}
	if (load_envelope(fd, &text, &len, &env_off, err, sizeof(err)) < 0) {
		errno = EINVAL;
		return -1;
	}
	for (p = text; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		if (strncmp(p, "rcpt ", 5) != 0 || seen++ != index)
			continue;
		if (nl - p < 7 || p[5] < 'A' || p[5] > 'Z' || p[6] != '\t')
			break;
		n = pwrite(fd, &status, 1, env_off + (off_t) (p + 5 - text));
		free(text);
		if (n == 1)
			return 0;
		if (n == 0)
			errno = EIO;
		return -1;
	}
	free(text);
	errno = EINVAL;
	return -1;
}

/* ==== directories ==== */

static const char *const queue_subdirs[] = {
	QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT,
};

/* mkdir -p for the directories above `path` (0755, like mkdir -p). */
static int make_parents(const char *path, char *err, size_t errlen)
{
	char *copy = strdup(path), *p;

	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (p = copy + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", copy,
				 strerror(errno));
			free(copy);
			return -1;
		}
		*p = '/';
	}
	free(copy);
	return 0;
}

/* Can uid/gid search (and with `write`, also write) directory `st`? */
static bool dir_usable_by(const struct stat *st, uid_t uid, gid_t gid,
			  bool write)
{
	mode_t need = write ? 07 : 01;  /* rwx or x, in the class' bits */

	if (uid == 0)
		return true;
	if (st->st_uid == uid)
		return ((st->st_mode >> 6) & need) == need;
	if (st->st_gid == gid)
		return ((st->st_mode >> 3) & need) == need;
	return (st->st_mode & need) == need;
}

static int create_dir(const char *path, uid_t uid, gid_t gid,
		      char *err, size_t errlen)
{
	if (mkdir(path, QF_DIR_MODE) < 0)
		return -1;
	if (chmod(path, QF_DIR_MODE) < 0
	    || (uid != (uid_t) -1 && chown(path, uid, gid) < 0)) {
		snprintf(err, errlen, "cannot set owner %ld:%ld and mode 0700 "
			 "on %s: %s", (long) uid, (long) gid, path,
			 strerror(errno));
		return -2;
	}
	return 0;
}

/* Make `path` a directory usable by uid (the current user when -1);
 * subdirectories must be owned by it and sit on the queue's file system. */
static int ensure_dir(const char *path, bool subdir, dev_t queue_dev,
		      uid_t uid, gid_t gid, char *err, size_t errlen)
{
	struct stat st;
	int rc = create_dir(path, uid, gid, err, errlen);

	if (rc == -2)
		return -1;
	if (rc < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory; fix: remove or "
			 "rename it, or change queue_directory", path);
		return -1;
	}
	if (subdir && st.st_dev != queue_dev) {
		snprintf(err, errlen, "%s is on another file system than "
			 "queue_directory; queue files move by rename(2), so "
			 "all queue directories must be on one file system",
			 path);
		return -1;
	}
	if (uid == (uid_t) -1) {
		if (access(path, subdir ? (R_OK | W_OK | X_OK) : X_OK) == 0)
			return 0;
		snprintf(err, errlen, "%s: %s; fix: chown the queue to the "
			 "user running sluice", path, strerror(errno));
		return -1;
	}
	if (subdir && st.st_uid != uid) {
		snprintf(err, errlen, "%s is owned by uid %ld, not by "
			 "mail_owner (uid %ld); fix: chown -R %ld:%ld %s", path,
			 (long) st.st_uid, (long) uid, (long) uid, (long) gid,
			 path);
		return -1;
	}
	if (subdir && !dir_usable_by(&st, uid, gid, true)) {
		snprintf(err, errlen, "%s has mode %04o; fix: chmod 0700 %s",
			 path, (unsigned) st.st_mode & 07777, path);
		return -1;
	}
	if (!subdir && !dir_usable_by(&st, uid, gid, false)) {
		snprintf(err, errlen, "%s (uid %ld, mode %04o) cannot be "
			 "searched by mail_owner (uid %ld); fix: chown -R "
			 "%ld:%ld %s", path, (long) st.st_uid,
			 (unsigned) st.st_mode & 07777, (long) uid, (long) uid,
			 (long) gid, path);
		return -1;
	}
	return 0;
}

/* Remove files not marked complete (no owner x bit): half-written ones. */
static void remove_unfinished(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.'
		    && (de->d_name[1] == '\0' || strcmp(de->d_name, "..") == 0))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0
		    || !S_ISREG(st.st_mode) || (st.st_mode & S_IXUSR))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			msg_warn("%s/%s: removed a half-written queue file",
				 dir, de->d_name);
		else
			msg_warn("%s/%s: cannot remove half-written queue "
				 "file: %m", dir, de->d_name);
	}
	closedir(d);
}

int queue_dirs_ensure(const char *queue_dir, uid_t uid, gid_t gid,
		      char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	size_t i;

	if (queue_dir == NULL || *queue_dir == '\0') {
		snprintf(err, errlen, "queue_directory is empty");
		return -1;
	}
	if (make_parents(queue_dir, err, errlen) < 0
	    || ensure_dir(queue_dir, false, 0, uid, gid, err, errlen) < 0)
		return -1;
	if (stat(queue_dir, &st) < 0) {
		snprintf(err, errlen, "%s: %s", queue_dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(queue_subdirs) / sizeof(queue_subdirs[0]); i++) {
		if ((size_t) snprintf(path, sizeof(path), "%s/%s", queue_dir,
				      queue_subdirs[i]) >= sizeof(path)) {
			snprintf(err, errlen, "queue_directory is too long");
			return -1;
		}
		if (ensure_dir(path, true, st.st_dev, uid, gid, err, errlen) < 0)
			return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", queue_dir, QUEUE_INCOMING);
	remove_unfinished(path);
	snprintf(path, sizeof(path), "%s/%s", queue_dir, QUEUE_HOLD);
	remove_unfinished(path);
	return 0;
}

/* ==== free space ==== */

bool queue_space_ok(const char *queue_dir, long long size, long long minfree)
{
	struct statvfs fs;
	unsigned long long avail, need;

	if (statvfs(queue_dir, &fs) < 0)
		return false;
	if (size < 0)
		size = 0;
	if (minfree < 0)
		minfree = 0;
	if (__builtin_mul_overflow((unsigned long long) fs.f_bavail,
				   (unsigned long long) fs.f_frsize, &avail))
		avail = ~0ULL;
	if (__builtin_add_overflow((unsigned long long) minfree,
				   (unsigned long long) size
				   + (unsigned long long) size / 2, &need))
		return false;
	return avail > need;
}
