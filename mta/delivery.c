/*
 * delivery.c - setting and clearing the per-recipient results of a
 * delivery request (delivery.h), shared by every agent.
 *
 * A result text is bounded (DELIVERY_TEXT_MAX) and kept on one line: a
 * next hop's multi-line reply or a command's output arrives here, and it
 * ends up in log lines and bounces, where a newline would forge a line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "log.h"

#define DELIVERY_TEXT_MAX 1000

static char *one_line(const char *fmt, va_list ap)
{
	char buf[DELIVERY_TEXT_MAX];
	char *p;

	vsnprintf(buf, sizeof buf, fmt, ap);
	for (p = buf; *p; p++)
		if (*p == '\r' || *p == '\n' || *p == '\t')
			*p = ' ';
	if ((p = strdup(buf)) == NULL)
		msg_fatal("out of memory");
	return p;
}

static void set_result(struct delivery_rcpt *r, int status, const char *dsn,
		       const char *fmt, va_list ap)
{
	r->status = status;
	snprintf(r->dsn, sizeof r->dsn, "%s", dsn);
	free(r->text);
	r->text = one_line(fmt, ap);
}

void delivery_set(struct delivery_rcpt *r, int status, const char *dsn,
		  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_result(r, status, dsn, fmt, ap);
	va_end(ap);
}

void delivery_set_rest(struct delivery_request *req, int status,
		       const char *dsn, const char *fmt, ...)
{
	va_list ap;

	for (int i = 0; i < req->nrcpt; i++) {
		if (req->rcpt[i].status != 0)
			continue;
		va_start(ap, fmt);
		set_result(&req->rcpt[i], status, dsn, fmt, ap);
		va_end(ap);
	}
}

void delivery_clear(struct delivery_request *req)
{
	for (int i = 0; i < req->nrcpt; i++) {
		free(req->rcpt[i].text);
		req->rcpt[i].text = NULL;
		req->rcpt[i].status = 0;
	}
}
