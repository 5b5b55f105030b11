/*
 * local_copy.c - the message as a local or pipe delivery writes it: read
 * from the queue file, with what the destination expects around it.
 *
 * In Postfix's order: the mbox "From sender  date" line, Return-Path:,
 * X-Original-To:, the Delivered-To: lines, then the message with ">From "
 * quoting of lines that start with "From " (mbox), "." doubled at a line
 * start (dot stuffing), LF or CRLF line ends, a final line end when the
 * message lacks one, and an empty line after it (mbox).  The output is
 * produced in pieces of at most COPY_OUT bytes, so a command can be fed
 * while its output is read, and memory stays bounded whatever the size
 * of the message.
 *
 * Also here: the Delivered-To: values already in the message's header
 * (forwarding loop detection) and where its header ends.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "local_int.h"
#include "log.h"

#define COPY_IN		65536
#define COPY_OUT	(2 * COPY_IN + 16)

/* ---- reading the queued message ---- */

struct lread {
	const struct local_msg *m;
	char buf[COPY_IN];
	size_t pos, len;
	long long off;          /* message offset of buf + len */
	bool eof;
};

static void lread_init(struct lread *r, const struct local_msg *m)
{
	r->m = m;
	r->pos = r->len = 0;
	r->off = 0;
	r->eof = false;
}

/* Keep the unread bytes, read more after them.  Bytes added, 0 at the
 * end, -1 on error. */
static long lread_fill(struct lread *r)
{
	long n;

	if (r->pos > 0) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	if (r->eof || r->len == sizeof r->buf)
		return 0;
	n = queue_message_pread(r->m->fd, r->m->env, r->buf + r->len,
				sizeof r->buf - r->len, r->off);
	if (n < 0)
		return -1;
	if (n == 0)
		r->eof = true;
	r->len += (size_t)n;
	r->off += n;
	return n;
}

/* ---- the output ---- */

enum { PH_HEAD, PH_BODY, PH_TAIL, PH_DONE };

struct lcopy {
	struct lcopy_opts o;
	struct lread in;
	int phase;
	bool line_start;
	bool empty;             /* nothing of the message written yet */
	char *head;             /* From_ line and added headers */
	size_t head_len;
	char out[COPY_OUT];
	size_t out_len;
};

const char *lcopy_from_sender(const char *sender)
{
	return sender == NULL || *sender == 0 ? "MAILER-DAEMON" : sender;
}

static void head_add(struct lcopy *c, const char *fmt, const char *a,
		     const char *b)
{
	const char *eol = c->o.crlf ? "\r\n" : "\n";
	size_t need = strlen(fmt) + strlen(a) + strlen(b) + 3;
	char *p;

	if ((p = realloc(c->head, c->head_len + need)) == NULL)
		msg_fatal("out of memory");
	c->head = p;
	c->head_len += (size_t)snprintf(p + c->head_len, need, fmt, a, b);
	c->head_len += (size_t)snprintf(p + c->head_len, 3, "%s", eol);
}

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static void build_head(struct lcopy *c, const struct local_msg *m)
{
	time_t now = time(NULL);
	char date[64], low[1100];
	struct tm tm;

	if (c->o.from_line) {
		localtime_r(&now, &tm);
		strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
		head_add(c, "From %s  %s", lcopy_from_sender(m->env->sender),
			 date);
	}
	if (c->o.return_path)
		head_add(c, "Return-Path: <%s>%s", c->o.return_path, "");
	if (c->o.orig_to)
		head_add(c, "X-Original-To: %s%s", c->o.orig_to, "");
	for (int i = 0; c->o.delivered_to && c->o.delivered_to[i]; i++) {
		snprintf(low, sizeof low, "%s", c->o.delivered_to[i]);
		lower(low);
		head_add(c, "Delivered-To: %s%s", low, "");
	}
}

struct lcopy *lcopy_new(const struct local_msg *m, const struct lcopy_opts *o)
{
	struct lcopy *c = calloc(1, sizeof *c);

	if (c == NULL)
		msg_fatal("out of memory");
	c->o = *o;
	lread_init(&c->in, m);
	c->line_start = true;
	c->empty = true;
	build_head(c, m);
	c->phase = c->head_len ? PH_HEAD : PH_BODY;
	return c;
}

void lcopy_free(struct lcopy *c)
{
	if (c == NULL)
		return;
	free(c->head);
	free(c);
}

static void put(struct lcopy *c, const char *s, size_t n)
{
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
}

static void put_eol(struct lcopy *c)
{
	put(c, c->o.crlf ? "\r\n" : "\n", c->o.crlf ? 2 : 1);
}

/* At a line start: the quoting the options ask for. */
static void line_prefix(struct lcopy *c)
{
	const char *p = c->in.buf + c->in.pos;
	size_t avail = c->in.len - c->in.pos;

	if (c->o.quote_from && avail >= 5 && memcmp(p, "From ", 5) == 0)
		put(c, ">", 1);
	else if (c->o.dot_stuff && avail >= 1 && *p == '.')
		put(c, ".", 1);
}

/* Copy input up to the end of a line or the room left. */
static void copy_span(struct lcopy *c)
{
	const char *p = c->in.buf + c->in.pos;
	size_t room = sizeof c->out - c->out_len - 4;
	size_t n = c->in.len - c->in.pos;
	const char *nl;

	if (n > room)
		n = room;
	nl = memchr(p, '\n', n);
	if (nl != NULL)
		n = (size_t)(nl - p);
	put(c, p, n);
	c->in.pos += n;
	if (nl != NULL) {
		put_eol(c);
		c->in.pos++;
		c->line_start = true;
	}
}

/* A line start needs 5 bytes of look-ahead for "From ". */
static bool need_more(const struct lcopy *c)
{
	size_t avail = c->in.len - c->in.pos;

	return avail == 0 || (c->line_start && avail < 5 && !c->in.eof);
}

static int body_fill(struct lcopy *c)
{
	while (c->out_len + 8 < sizeof c->out) {
		if (need_more(c) && lread_fill(&c->in) < 0)
			return -1;
		if (c->in.pos == c->in.len) {
			c->phase = PH_TAIL;
			break;
		}
		c->empty = false;
		if (c->line_start) {
			line_prefix(c);
			c->line_start = false;
		}
		copy_span(c);
	}
	return 0;
}

static void tail_fill(struct lcopy *c)
{
	if (!c->empty && !c->line_start)
		put_eol(c);
	if (c->o.blank_end)
		put_eol(c);
	c->phase = PH_DONE;
}

int lcopy_next(struct lcopy *c, const char **buf, size_t *len)
{
	c->out_len = 0;
	switch (c->phase) {
	case PH_HEAD:
		c->phase = PH_BODY;
		*buf = c->head;
		*len = c->head_len;
		return 1;
	case PH_BODY:
		if (body_fill(c) < 0)
			return -1;
		if (c->phase == PH_TAIL)
			tail_fill(c);
		break;
	case PH_TAIL:
		tail_fill(c);
		break;
	default:
		return 0;
	}
	*buf = c->out;
	*len = c->out_len;
	return c->out_len > 0 || c->phase != PH_DONE ? 1 : 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int lcopy_to_fd(const struct local_msg *m, const struct lcopy_opts *o, int fd)
{
	struct lcopy *c = lcopy_new(m, o);
	const char *buf;
	size_t len;
	int rc, err = 0;

	while ((rc = lcopy_next(c, &buf, &len)) > 0)
		if (len > 0 && write_all(fd, buf, len) < 0) {
			rc = -1;
			break;
		}
	if (rc < 0)
		err = errno;
	lcopy_free(c);
	errno = err;
	return rc < 0 ? -1 : 0;
}

/* ---- the header as received ---- */

/* Calls fn for each header line (without its LF; lines longer than the
 * buffer are skipped).  Returns the offset of the empty line that ends
 * the header (or of the end), or -1 on a read error. */
static long long scan_header(const struct local_msg *m,
			     void (*fn)(const char *line, size_t len, void *),
			     void *arg)
{
	struct lread *r = malloc(sizeof *r);
	long long line_off = 0, result = -1;
	bool skipping = false;
	char *nl;

	if (r == NULL)
		msg_fatal("out of memory");
	lread_init(r, m);
	for (;;) {
		nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
		if (nl == NULL) {
			long n;

			if (r->len - r->pos == sizeof r->buf) {
				skipping = true;   /* an over-long line */
				r->pos = r->len;
			}
			if ((n = lread_fill(r)) < 0)
				break;
			if (n == 0) {
				result = r->off;
				break;
			}
			continue;
		}
		size_t len = (size_t)(nl - (r->buf + r->pos));

		if (!skipping && len == 0) {
			result = line_off;
			break;
		}
		if (!skipping && fn != NULL)
			fn(r->buf + r->pos, len, arg);
		skipping = false;
		r->pos += len + 1;
		line_off = r->off - (long long)(r->len - r->pos);
	}
	free(r);
	return result;
}

struct dt_list {
	char **v;
	int n, cap;
};

static void dt_line(const char *line, size_t len, void *arg)
{
	struct dt_list *l = arg;
	const char *v, *end = line + len;
	char *s;

	if (len < 13 || strncasecmp(line, "Delivered-To:", 13) != 0)
		return;
	for (v = line + 13; v < end && isspace((unsigned char)*v); v++)
		;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	if (l->n + 2 > l->cap) {
		l->cap = l->cap ? 2 * l->cap : 8;
		if ((l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v)) == NULL)
			msg_fatal("out of memory");
	}
	if ((s = strndup(v, (size_t)(end - v))) == NULL)
		msg_fatal("out of memory");
	lower(s);
	l->v[l->n++] = s;
	l->v[l->n] = NULL;
}

char **lcopy_delivered_to(const struct local_msg *m)
{
	struct dt_list l = { NULL, 0, 0 };

	if (scan_header(m, dt_line, &l) < 0) {
		int err = errno;

		cfg_list_free(l.v);
		errno = err;
		return NULL;
	}
	if (l.v == NULL && (l.v = calloc(1, sizeof *l.v)) == NULL)
		msg_fatal("out of memory");
	return l.v;
}

long long lcopy_header_end(const struct local_msg *m)
{
	return scan_header(m, NULL, NULL);
}
