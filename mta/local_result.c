/*
 * local_result.c - the results of local and pipe deliveries: set in a
 * child, sent to the parent as text lines, read back and folded into the
 * recipient's delivery result.
 *
 * Lines: "R <status> <dsn> <text>", "F <address>", and "E" last.  Texts
 * are kept on one line and bounded here, so a command's output can never
 * forge a line.  The promise of lres_fold(): a recipient is reported as
 * delivered only when every destination it expanded to was delivered (or
 * forwarded); any temporary failure defers it, then any permanent one
 * bounces it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "local_int.h"
#include "log.h"

static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			*s = ' ';
}

static void lres_vset(struct local_result *r, int status, const char *dsn,
		      const char *fmt, va_list ap)
{
	r->status = status;
	snprintf(r->dsn, sizeof r->dsn, "%s", dsn);
	vsnprintf(r->text, sizeof r->text, fmt, ap);
	one_line(r->text);
}

void lres_set(struct local_result *r, int status, const char *dsn,
	      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lres_vset(r, status, dsn, fmt, ap);
	va_end(ap);
}

void lres_errno(struct local_result *r, int err, const char *fmt, ...)
{
	char what[LOCAL_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	switch (err) {
	case EFBIG:
		lres_set(r, 5, "5.2.2", "%s: mailbox full (over the size limit)",
			 what);
		break;
	case EDQUOT:
		lres_set(r, 4, "4.2.2", "%s: mailbox full: %s", what,
			 strerror(err));
		break;
	case ENOSPC:
		lres_set(r, 4, "4.3.0", "%s: mail system full: %s", what,
			 strerror(err));
		break;
	default:
		lres_set(r, 4, "4.2.0", "%s: %s", what, strerror(err));
		break;
	}
}

/* ---- the child's side ---- */

static void write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) < 0) {
			if (errno == EINTR)
				continue;
			return;         /* the parent is gone: nothing to tell */
		}
		buf += n;
		len -= (size_t)n;
	}
}

void lres_write(int fd, const struct local_result *r)
{
	char line[LOCAL_TEXT_MAX + 64];
	int n;

	n = snprintf(line, sizeof line, "R %d %s %s\n", r->status,
		     r->dsn[0] ? r->dsn : "4.3.0", r->text);
	if (n >= (int)sizeof line) {
		n = (int)sizeof line - 1;
		line[n - 1] = '\n';
	}
	write_all(fd, line, (size_t)n);
}

void lres_write_forward(int fd, const char *addr)
{
	char line[1100];
	int n;

	n = snprintf(line, sizeof line, "F %s\n", addr);
	if (n >= (int)sizeof line || strpbrk(addr, "\r\n") != NULL)
		return;         /* cannot happen: the parser refuses these */
	write_all(fd, line, (size_t)n);
}

void lres_write_end(int fd)
{
	write_all(fd, "E\n", 2);
}

/* ---- the parent's side ---- */

static void *grow(void *v, int *cap, size_t size)
{
	int n = *cap ? 2 * *cap : 4;

	if ((v = realloc(v, (size_t)n * size)) == NULL)
		msg_fatal("out of memory");
	*cap = n;
	return v;
}

void lres_add(struct lres_list *l, const struct local_result *r)
{
	if (l->n == l->cap)
		l->v = grow(l->v, &l->cap, sizeof *l->v);
	l->v[l->n++] = *r;
}

void lres_add_forward(struct lres_list *l, const char *addr)
{
	for (int i = 0; i < l->nfwd; i++)
		if (strcasecmp(l->fwd[i], addr) == 0)
			return;
	if (l->nfwd == l->capfwd)
		l->fwd = grow(l->fwd, &l->capfwd, sizeof *l->fwd);
	if ((l->fwd[l->nfwd++] = strdup(addr)) == NULL)
		msg_fatal("out of memory");
}

static void parse_result(struct lres_list *l, const char *s)
{
	struct local_result r;
	char dsn[16];
	int status, off = 0;

	if (sscanf(s, "%d %15s %n", &status, dsn, &off) < 2 || off == 0
	    || (status != 2 && status != 4 && status != 5))
		return;
	lres_set(&r, status, dsn, "%s", s + off);
	lres_add(l, &r);
}

void lres_parse(struct lres_list *l, const char *buf, size_t len)
{
	const char *end = buf + len, *nl;
	char line[LOCAL_TEXT_MAX + 1100];

	for (; buf < end; buf = nl + 1) {
		if ((nl = memchr(buf, '\n', (size_t)(end - buf))) == NULL)
			break;          /* a cut last line: the child died */
		snprintf(line, sizeof line, "%.*s", (int)(nl - buf), buf);
		if (line[0] == 'R' && line[1] == ' ')
			parse_result(l, line + 2);
		else if (line[0] == 'F' && line[1] == ' ' && line[2])
			lres_add_forward(l, line + 2);
		else if (strcmp(line, "E") == 0)
			l->complete = true;
	}
}

void lres_list_free(struct lres_list *l)
{
	for (int i = 0; i < l->nfwd; i++)
		free(l->fwd[i]);
	free(l->fwd);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* The first result of class `status`, or NULL. */
static const struct local_result *first(const struct lres_list *l, int status)
{
	for (int i = 0; i < l->n; i++)
		if (l->v[i].status == status)
			return &l->v[i];
	return NULL;
}

/* "delivered to N destinations: a; b; ..." (bounded) */
static void fold_success(const struct lres_list *l, struct delivery_rcpt *r)
{
	char text[LOCAL_TEXT_MAX];
	size_t len;

	if (l->n == 1) {
		delivery_set(r, 2, l->v[0].dsn, "%s", l->v[0].text);
		return;
	}
	len = (size_t)snprintf(text, sizeof text, "%d destinations:", l->n);
	for (int i = 0; i < l->n && len < sizeof text; i++)
		len += (size_t)snprintf(text + len, sizeof text - len, "%s %s",
					i ? ";" : "", l->v[i].text);
	delivery_set(r, 2, "2.0.0", "%s", text);
}

void lres_fold(const struct lres_list *l, struct delivery_rcpt *r)
{
	const struct local_result *x;

	if ((x = first(l, 4)) != NULL)
		delivery_set(r, 4, x->dsn, "%s", x->text);
	else if ((x = first(l, 5)) != NULL)
		delivery_set(r, 5, x->dsn, "%s", x->text);
	else if (l->n > 0)
		fold_success(l, r);
	else
		delivery_set(r, 2, "2.0.0",
			     "discarded: the alias expands to nothing");
}
