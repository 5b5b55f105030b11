/*
 * smtp_client_reply.c - reading an SMTP/LMTP server's replies, and the
 * small text helpers of the client (EHLO keywords, xtext).
 *
 * A reply is read line by line out of the connection's input buffer; a
 * reply split across reads is simply continued at the next call.  What
 * the server controls is bounded: a line longer than SMTPC_LINE_MAX is
 * cut (the rest is read and dropped), a reply of more than
 * SMTPC_REPLY_LINES_MAX lines, or of more bytes than that many full
 * lines, is refused, at most SMTPC_REPLY_TEXT_MAX bytes of text are kept.  A line that does not start with three digits
 * and a space, a dash or its end is refused too: with pipelining, a
 * client that skipped garbage could pair replies with the wrong commands.
 *
 * The enhanced status code (RFC 3463) is taken from the reply when it is
 * well formed and of the reply's class, else it is "X.0.0" (Postfix).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "smtp_client.h"

void smtpc_reply_reset(struct smtpc_reply *r)
{
	r->code = 0;
	r->dsn[0] = 0;
	r->text[0] = 0;
	r->len = 0;
	r->nlines = 0;
	r->cut = false;
	r->line_len = 0;
	r->bytes = 0;
}

/* Add n bytes to the line being read, dropping what is over the limit. */
static void line_add(struct smtpc_reply *r, const char *p, size_t n)
{
	size_t room = SMTPC_LINE_MAX - r->line_len;

	if (n > room) {
		n = room;
		r->cut = true;
	}
	memcpy(r->line + r->line_len, p, n);
	r->line_len += n;
}

/* "X.Y.Z" at s, X the reply's class: its length, or 0. */
static size_t dsn_len(const char *s, int code)
{
	const char *p = s;
	int digits;

	if (*p != '0' + code / 100 || p[1] != '.')
		return 0;
	p += 2;
	for (int part = 0; part < 2; part++) {
		for (digits = 0; isdigit((unsigned char)*p) && digits < 4; digits++)
			p++;
		if (digits == 0 || digits > 3)
			return 0;
		if (part == 0 && *p++ != '.')
			return 0;
	}
	if (*p != 0 && *p != ' ' && *p != '\n')
		return 0;
	return (size_t)(p - s);
}

static void set_dsn(struct smtpc_reply *r)
{
	const char *s = r->text + 4;
	size_t n = r->len > 4 ? dsn_len(s, r->code) : 0;

	if (n > 0 && n < sizeof r->dsn) {
		memcpy(r->dsn, s, n);
		r->dsn[n] = 0;
	} else {
		snprintf(r->dsn, sizeof r->dsn, "%d.0.0", r->code / 100);
	}
}

static bool line_ok(const char *l, size_t n)
{
	return n >= 3 && isdigit((unsigned char)l[0])
		&& isdigit((unsigned char)l[1]) && isdigit((unsigned char)l[2])
		&& l[0] >= '2' && l[0] <= '5'
		&& (n == 3 || l[3] == ' ' || l[3] == '-');
}

static void text_add(struct smtpc_reply *r, const char *l, size_t n)
{
	size_t room = sizeof r->text - 1 - r->len;

	if (r->len > 0 && room > 0) {
		r->text[r->len++] = '\n';
		room--;
	}
	if (n > room)
		n = room;
	memcpy(r->text + r->len, l, n);
	r->len += n;
	r->text[r->len] = 0;
}

/* One complete line: DONE when it ends the reply, MORE, or BAD. */
static int line_done(struct smtpc_reply *r)
{
	char *l = r->line;
	size_t n = r->line_len;

	if (n > 0 && l[n - 1] == '\r')
		n--;
	l[n] = 0;
	r->line_len = 0;
	r->cut = false;
	if (!line_ok(l, n)) {
		char what[120];

		for (char *p = l; *p; p++)
			if (!isprint((unsigned char)*p))
				*p = '?';
		r->len = 0;
		text_add(r, what, (size_t)snprintf(what, sizeof what,
			 "malformed reply: %.80s", l));
		return SMTPC_REPLY_BAD;
	}
	if (++r->nlines > SMTPC_REPLY_LINES_MAX) {
		r->len = 0;
		text_add(r, "reply of too many lines", 23);
		return SMTPC_REPLY_BAD;
	}
	text_add(r, l, n);
	if (n > 3 && l[3] == '-')
		return SMTPC_REPLY_MORE;
	r->code = atoi(l);
	/* the enhanced code is the first line's */
	set_dsn(r);
	return SMTPC_REPLY_DONE;
}

int smtpc_reply_read(struct evbuffer *in, struct smtpc_reply *r)
{
	for (;;) {
		size_t eol_len, avail = evbuffer_get_length(in);
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len,
							      EVBUFFER_EOL_LF);
		size_t take = eol.pos < 0 ? avail : (size_t)eol.pos;
		int rc;

		r->bytes += take;
		if (r->bytes > (size_t)SMTPC_REPLY_LINES_MAX * SMTPC_LINE_MAX) {
			r->len = 0;
			text_add(r, "reply too long", 14);
			return SMTPC_REPLY_BAD;
		}
		if (take > 0) {
			size_t keep = take < SMTPC_LINE_MAX ? take : SMTPC_LINE_MAX;

			line_add(r, (const char *)evbuffer_pullup(in, (ssize_t)keep),
				 keep);
			if (take > keep)
				r->cut = true;
			evbuffer_drain(in, take);
		}
		if (eol.pos < 0)
			return SMTPC_REPLY_MORE;
		evbuffer_drain(in, eol_len);
		if ((rc = line_done(r)) != SMTPC_REPLY_MORE)
			return rc;
	}
}

const char *smtpc_reply_oneline(const struct smtpc_reply *r, char *buf,
				size_t len)
{
	snprintf(buf, len, "%s", r->text);
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	return buf;
}

const char *smtpc_reply_first_word(const struct smtpc_reply *r, char *buf,
				   size_t len)
{
	const char *s = r->len > 4 ? r->text + 4 : "";
	size_t n = strcspn(s, " \n");

	if (n >= len)
		n = len - 1;
	memcpy(buf, s, n);
	buf[n] = 0;
	return buf;
}

/* One EHLO line's keyword (after "250-"), with SIZE's argument. */
static unsigned ehlo_keyword(const char *s, size_t n, long long *size)
{
	static const struct { const char *word; unsigned flag; } kw[] = {
		{ "PIPELINING", SMTPC_F_PIPELINING }, { "SIZE", SMTPC_F_SIZE },
		{ "8BITMIME", SMTPC_F_8BITMIME }, { "DSN", SMTPC_F_DSN },
		{ "SMTPUTF8", SMTPC_F_SMTPUTF8 },
		{ "ENHANCEDSTATUSCODES", SMTPC_F_ENHANCED },
	};
	size_t wl = strcspn(s, " =");

	if (wl > n)
		wl = n;
	for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++) {
		if (strlen(kw[i].word) != wl || strncasecmp(s, kw[i].word, wl) != 0)
			continue;
		if (kw[i].flag == SMTPC_F_SIZE && wl < n)
			*size = strtoll(s + wl + 1, NULL, 10);
		return kw[i].flag;
	}
	return 0;
}

unsigned smtpc_ehlo_features(const struct smtpc_reply *r, long long *size)
{
	unsigned f = SMTPC_F_ESMTP;
	const char *p = strchr(r->text, '\n');

	*size = 0;
	while (p != NULL) {
		const char *line = p + 1, *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);

		if (n > 4)
			f |= ehlo_keyword(line + 4, n - 4, size);
		p = end;
	}
	if (*size < 0)
		*size = 0;
	return f;
}

bool smtpc_xtext(char *buf, size_t len, const char *value)
{
	size_t n = strlen(buf);

	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (*p > 32 && *p < 127 && *p != '=') {
			if (n + 1 >= len)
				return false;
			buf[n++] = (char)*p;
		} else {
			if (n + 3 >= len)
				return false;
			snprintf(buf + n, 4, "+%02X", *p);
			n += 3;
		}
	}
	buf[n] = 0;
	return true;
}
