/*
 * pickup_content.c - copy a maildrop file's message into a queue file:
 * our Received: header first, the message's headers, the headers a local
 * submission lacks (Message-ID:, Date:, From:, as Postfix's cleanup adds
 * them), then the body.
 *
 * Two passes over the maildrop file: the first finds where the header
 * block ends and which headers it has (reading only the start of each
 * line, so a huge line costs no memory); the second copies.  The header
 * block is the run of "Name: value" lines and their continuations at the
 * start; the first other line ends it.  When that line is not empty, an
 * empty line is inserted so the body stays a body.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "maildrop.h"
#include "pickup.h"
#include "pickup_internal.h"
#include "queue.h"

#define LINE_HEAD_MAX   1000    /* bytes of a line kept for classifying */
#define COPY_CHUNK      65536

/* What the first pass learns. */
struct header_scan {
	long long end;          /* content offset where the headers end */
	bool blank;             /* the line at `end` is an empty line */
	bool has_date, has_msgid, has_from;
	char *msgid;            /* the Message-ID: value, trimmed */
	/* line being classified */
	char head[LINE_HEAD_MAX + 1];
	size_t hlen;
	long long line_start;
	bool in_msgid;          /* collecting Message-ID: continuation */
	bool utf8;              /* a header byte over 127 */
	bool prev_header;       /* the previous line was a header */
	bool done;
};

/* "Name:" with a name of printable characters but ':' (RFC 5322). */
static size_t header_name_len(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && s[i] != ':'; i++)
		if ((unsigned char) s[i] <= ' ' || (unsigned char) s[i] >= 127)
			return 0;
	return i < len ? i : 0;
}

static void note_msgid(struct header_scan *hs, const char *v, size_t len,
		       bool append)
{
	char *old = append ? hs->msgid : NULL, *s;
	size_t i = 0;

	while (i < len && (v[i] == ' ' || v[i] == '\t'))
		i++;
	while (len > i && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (asprintf(&s, "%s%s%.*s", old ? old : "",
		     old && *old && len > i ? " " : "", (int) (len - i),
		     v + i) < 0)
		return;
	free(hs->msgid);
	hs->msgid = s;
}

static void note_header(struct header_scan *hs, size_t nlen)
{
	const char *h = hs->head;

	hs->in_msgid = false;
	if (nlen == 4 && strncasecmp(h, "Date", 4) == 0)
		hs->has_date = true;
	else if (nlen == 4 && strncasecmp(h, "From", 4) == 0)
		hs->has_from = true;
	else if (nlen == 10 && strncasecmp(h, "Message-ID", 10) == 0) {
		hs->has_msgid = hs->in_msgid = true;
		free(hs->msgid);
		hs->msgid = NULL;
		note_msgid(hs, h + nlen + 1, hs->hlen - nlen - 1, false);
	}
}

/* A whole line (its first hlen bytes in head) has been seen. */
static void classify_line(struct header_scan *hs)
{
	size_t nlen;

	if (hs->hlen > 0 && (hs->head[0] == ' ' || hs->head[0] == '\t')
	    && hs->prev_header) {
		if (hs->in_msgid)
			note_msgid(hs, hs->head, hs->hlen, true);
		return;
	}
	if ((nlen = header_name_len(hs->head, hs->hlen)) > 0) {
		hs->prev_header = true;
		note_header(hs, nlen);
		return;
	}
	hs->end = hs->line_start;
	hs->blank = hs->hlen == 0;
	hs->done = true;
}

static void scan_bytes(struct header_scan *hs, const char *p, size_t n,
		       long long off)
{
	size_t i;

	for (i = 0; i < n && !hs->done; i++) {
		if ((unsigned char) p[i] >= 0x80)
			hs->utf8 = true;
		if (p[i] == '\n') {
			classify_line(hs);
			hs->hlen = 0;
			hs->line_start = off + (long long) i + 1;
		} else if (hs->hlen < LINE_HEAD_MAX) {
			hs->head[hs->hlen++] = p[i];
		}
	}
}

static int scan_headers(int fd, const struct maildrop_msg *m,
			struct header_scan *hs)
{
	char buf[COPY_CHUNK];
	long long off = 0;
	ssize_t n;

	while (!hs->done && off < m->content_len) {
		size_t want = m->content_len - off < (long long) sizeof buf
			? (size_t) (m->content_len - off) : sizeof buf;

		if ((n = pread(fd, buf, want, m->content_off + off)) <= 0) {
			errno = n < 0 ? errno : EIO;
			return -1;
		}
		scan_bytes(hs, buf, (size_t) n, off);
		off += n;
	}
	if (!hs->done) {                /* the content is all headers */
		if (hs->hlen > 0)
			classify_line(hs);      /* a last line without LF */
		if (!hs->done)
			hs->end = m->content_len;
		hs->done = true;
	}
	return 0;
}

/* ==== writing ==== */

static int put(struct queue_file *qf, const char *s)
{
	return queue_write(qf, s, strlen(s));
}

static int putf(struct queue_file *qf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int putf(struct queue_file *qf, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n, rc;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		errno = ENOMEM;
		return -1;
	}
	rc = queue_write(qf, s, (size_t) n);
	free(s);
	return rc;
}

static void date_now(char *buf, size_t len, const char *fmt)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(buf, len, fmt, &tm);
}

/* The display name, quoted when it has RFC 5322 specials. */
static char *display_name(const char *name)
{
	size_t len = strlen(name), i;
	char *out = malloc(2 * len + 3), *o = out;

	if (out == NULL)
		return NULL;
	if (strpbrk(name, "()<>[]:;@\\,.\"") == NULL) {
		memcpy(out, name, len + 1);
		return out;
	}
	*o++ = '"';
	for (i = 0; i < len; i++) {
		if (name[i] == '"' || name[i] == '\\')
			*o++ = '\\';
		*o++ = name[i];
	}
	*o++ = '"';
	*o = 0;
	return out;
}

static int put_from(struct queue_file *qf, const struct pickup_content *pc)
{
	const char *name = pc->m->fullname;
	char *dn;
	int rc;

	if (*pc->sender == 0)
		return putf(qf, "From: MAILER-DAEMON@%s\n",
			    cfg_str(pc->cfg, "myhostname"));
	if (name == NULL || *name == 0)
		return putf(qf, "From: %s\n", pc->sender);
	if ((dn = display_name(name)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	rc = putf(qf, "From: %s <%s>\n", dn, pc->sender);
	free(dn);
	return rc;
}

static int put_missing(struct queue_file *qf, struct pickup_content *pc,
		       struct header_scan *hs)
{
	char stamp[32], date[80];

	if (!hs->has_msgid) {
		date_now(stamp, sizeof stamp, "%Y%m%d%H%M%S");
		if (asprintf(&hs->msgid, "<%s.%s@%s>", stamp, pc->queue_id,
			     cfg_str(pc->cfg, "myhostname")) < 0) {
			hs->msgid = NULL;
			errno = ENOMEM;
			return -1;
		}
		if (putf(qf, "Message-Id: %s\n", hs->msgid) < 0)
			return -1;
	}
	date_now(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z (%Z)");
	if (!hs->has_date && putf(qf, "Date: %s\n", date) < 0)
		return -1;
	if (!hs->has_from && put_from(qf, pc) < 0)
		return -1;
	return 0;
}

/* Copy content [from, to) of the maildrop file into the queue file. */
static int copy_range(struct queue_file *qf, struct pickup_content *pc,
		      long long from, long long to)
{
	char buf[COPY_CHUNK];
	ssize_t n, i;

	while (from < to) {
		size_t want = to - from < (long long) sizeof buf
			? (size_t) (to - from) : sizeof buf;

		n = pread(pc->fd, buf, want, pc->m->content_off + from);
		if (n <= 0) {
			errno = n < 0 ? errno : EIO;
			return -1;
		}
		for (i = 0; i < n && !pc->eightbit; i++)
			pc->eightbit = (unsigned char) buf[i] >= 0x80;
		if (queue_write(qf, buf, (size_t) n) < 0)
			return -1;
		from += n;
	}
	return 0;
}

static int put_received(struct queue_file *qf, const struct pickup_content *pc)
{
	char date[80];

	date_now(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z (%Z)");
	return putf(qf, "Received: by %s (%s, from userid %ld)\n\tid %s; %s\n",
		    cfg_str(pc->cfg, "myhostname"),
		    cfg_str(pc->cfg, "mail_name"), pc->uid, pc->queue_id, date);
}

/* The last byte of the content, or -1. */
static int last_byte(const struct pickup_content *pc)
{
	unsigned char c;

	off_t at = pc->m->content_off + pc->m->content_len - 1;

	if (pc->m->content_len == 0 || pread(pc->fd, &c, 1, at) != 1)
		return -1;
	return c;
}

static int copy_message(struct queue_file *qf, struct pickup_content *pc,
			struct header_scan *hs)
{
	long long len = pc->m->content_len;

	if (put_received(qf, pc) < 0 || copy_range(qf, pc, 0, hs->end) < 0)
		return -1;
	if (hs->end == len && len > 0 && last_byte(pc) != '\n'
	    && put(qf, "\n") < 0)
		return -1;
	if (put_missing(qf, pc, hs) < 0)
		return -1;
	if (hs->end == len)
		return 0;
	queue_mark_body(qf);
	if (!hs->blank && put(qf, "\n") < 0)
		return -1;
	if (copy_range(qf, pc, hs->end, len) < 0)
		return -1;
	return len > 0 && last_byte(pc) != '\n' ? put(qf, "\n") : 0;
}

int pickup_copy(struct queue_file *qf, struct pickup_content *pc)
{
	struct header_scan *hs = calloc(1, sizeof *hs);
	int rc;

	if (hs == NULL) {
		errno = ENOMEM;
		return -1;
	}
	rc = scan_headers(pc->fd, pc->m, hs);
	if (rc == 0)
		rc = copy_message(qf, pc, hs);
	pc->message_id = hs->msgid;
	pc->utf8_headers = hs->utf8;
	free(hs);
	return rc;
}
