/*
 * delivery_proto.c - the wire format between the queue manager and the
 * delivery process (delivery_proto.h): values, writing, and readers that
 * take one line at a time and bound everything they keep.
 *
 * The reader of requests runs as root and reads what an unprivileged
 * process wrote: no field is used before it is decoded, checked and
 * found within its bounds, and a request that is wrong in any way is
 * refused as a whole, with the first reason found.
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "delivery.h"
#include "delivery_proto.h"
#include "log.h"

#define MAX_TOKENS	5
#define FRAME_LINES_MAX	(DP_RCPT_MAX + 8)
#define SEQ_MAX		(1ULL << 53)
#define INDEX_MAX	1000000

/* Request records, as bits of dp_request.have. */
enum { R_REQUEST = 1, R_QUEUE_ID = 2, R_TRANSPORT = 4, R_NEXTHOP = 8 };

/* ---- values ---------------------------------------------------------- */

static bool is_hex_upper(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

bool dp_queue_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n < 14 || n >= QUEUE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_hex_upper((unsigned char)id[i]))
			return false;
	return true;
}

static bool domain_ok(const char *d)
{
	size_t n = strlen(d);

	if (n == 0)
		return false;
	if (d[0] == '[')
		return n > 2 && d[n - 1] == ']'
		    && strcspn(d + 1, "[]") == n - 2;
	for (; *d; d++)
		if (!isalnum((unsigned char)*d) && *d != '-' && *d != '_'
		    && *d != '.' && (unsigned char)*d < 0x80)
			return false;
	return true;
}

static bool local_part_ok(const char *s, size_t n)
{
	bool quoted = n >= 2 && s[0] == '"' && s[n - 1] == '"';

	if (n == 0)
		return false;
	return quoted || memchr(s, ' ', n) == NULL;
}

bool dp_addr_ok(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t n = strlen(addr);

	if (n == 0 || n > DP_ADDR_MAX || strpbrk(addr, "<>") != NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)addr[i] < 0x20 || addr[i] == 0x7f)
			return false;
	if (at == NULL)
		return local_part_ok(addr, n);
	return local_part_ok(addr, (size_t)(at - addr)) && domain_ok(at + 1);
}

bool dp_transport_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > DP_TRANSPORT_MAX)
		return false;
	for (; *name; name++)
		if (!isalnum((unsigned char)*name)
		    && strchr("-_.+", *name) == NULL)
			return false;
	return true;
}

const char *dp_printable(const char *s, char *buf, size_t size)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size; i++)
		buf[i] = s[i] >= '!' && s[i] <= '~' ? s[i] : '?';
	buf[i] = 0;
	if (s[i] && size > 4)
		memcpy(buf + size - 4, "...", 4);
	return buf;
}

/* A DSN status as agents give them: "", or "2.0.0" and the like. */
static bool dsn_ok(const char *d)
{
	size_t n = strlen(d);

	if (n == 0)
		return true;
	if (n < 5 || n > 15 || (d[0] != '2' && d[0] != '4' && d[0] != '5')
	    || d[1] != '.' || strspn(d, "0123456789.") != n)
		return false;
	return strchr(d + 2, '.') != NULL && d[n - 1] != '.'
	    && strstr(d, "..") == NULL;
}

/* ---- writing --------------------------------------------------------- */

static bool needs_escape(unsigned char c)
{
	return c <= ' ' || c == 0x7f || c == '%';
}

static void put_token(struct evbuffer *out, const char *s)
{
	const char *run = s;

	evbuffer_add(out, " ", 1);
	if (*s == 0 || strcmp(s, "-") == 0) {
		evbuffer_add(out, *s ? "%2D" : "-", *s ? 3 : 1);
		return;
	}
	for (; *s; s++) {
		if (!needs_escape((unsigned char)*s))
			continue;
		evbuffer_add(out, run, (size_t)(s - run));
		evbuffer_add_printf(out, "%%%02X", (unsigned char)*s);
		run = s + 1;
	}
	evbuffer_add(out, run, (size_t)(s - run));
}

void dp_request_write(struct evbuffer *out, unsigned long long seq,
		      const struct delivery_request *req, int *n)
{
	*n = 0;
	for (int i = 0; i < req->nrcpt; i++)
		*n += req->rcpt[i].status == 0;
	if (*n == 0)
		return;
	evbuffer_add_printf(out, "request %llu\nqueue_id", seq);
	put_token(out, req->queue_id);
	evbuffer_add_printf(out, "\ntransport");
	put_token(out, req->transport);
	evbuffer_add_printf(out, "\nnexthop");
	put_token(out, req->nexthop ? req->nexthop : "");
	for (int i = 0; i < req->nrcpt; i++) {
		const struct delivery_rcpt *r = &req->rcpt[i];

		if (r->status != 0)
			continue;
		evbuffer_add_printf(out, "\nrcpt %d", r->queue_index);
		put_token(out, r->addr);
		put_token(out, r->orig_addr ? r->orig_addr : r->addr);
	}
	evbuffer_add_printf(out, "\nend\n");
}

static void put_rcpt_result(struct evbuffer *out, int i,
			    const struct delivery_rcpt *r)
{
	if (r->status != 2 && r->status != 4 && r->status != 5) {
		evbuffer_add_printf(out, "rcpt %d 4 4.3.0", i);
		put_token(out, "delivery agent gave no result");
	} else {
		evbuffer_add_printf(out, "rcpt %d %d", i, r->status);
		put_token(out, dsn_ok(r->dsn) ? r->dsn : "");
		put_token(out, r->text ? r->text : "");
	}
	evbuffer_add(out, "\n", 1);
}

void dp_result_write(struct evbuffer *out, unsigned long long seq,
		     const struct delivery_request *req)
{
	evbuffer_add_printf(out, "result %llu\nrelay", seq);
	put_token(out, req->relay);
	evbuffer_add_printf(out, "\ntimes %lld.%06ld %lld.%06ld\n",
			    (long long)req->t_conn.tv_sec,
			    (long)req->t_conn.tv_usec,
			    (long long)req->t_done.tv_sec,
			    (long)req->t_done.tv_usec);
	for (int i = 0; i < req->nrcpt; i++)
		put_rcpt_result(out, i, &req->rcpt[i]);
	evbuffer_add_printf(out, "end\n");
}

void dp_error_write(struct evbuffer *out, unsigned long long seq,
		    const char *dsn, const char *text)
{
	evbuffer_add_printf(out, "result %llu\nerror", seq);
	put_token(out, dsn);
	put_token(out, text);
	evbuffer_add_printf(out, "\nend\n");
}

/* ---- reading: tokens ------------------------------------------------- */

struct line {
	char buf[DP_LINE_MAX + 1];
	char *tok[MAX_TOKENS];
	int ntok;
};

/* Split at single spaces; -1 for a NUL, an empty token or too many. */
static int split(struct line *l, const char *text, size_t len)
{
	char *p;

	if (len > DP_LINE_MAX || memchr(text, 0, len) != NULL)
		return -1;
	memcpy(l->buf, text, len);
	l->buf[len] = 0;
	l->ntok = 0;
	for (p = l->buf; l->ntok < MAX_TOKENS; p++) {
		l->tok[l->ntok++] = p;
		if ((p = strchr(p, ' ')) == NULL)
			break;
		*p = 0;
	}
	for (int i = 0; i < l->ntok; i++)
		if (*l->tok[i] == 0)
			return -1;
	return p == NULL ? 0 : -1;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F'
	    ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A token's value into buf (size > max): NULL when it is not a token,
 * decodes to a NUL or a control character, or is longer than max. */
static char *decode(const char *tok, char *buf, size_t max)
{
	size_t n = 0;
	int hi, lo;

	if (strcmp(tok, "-") == 0) {
		buf[0] = 0;
		return buf;
	}
	for (; *tok; tok++) {
		unsigned char c = (unsigned char)*tok;

		if (c == '%') {
			if ((hi = hexval(tok[1])) < 0
			    || (lo = hexval(tok[2])) < 0)
				return NULL;
			c = (unsigned char)(hi * 16 + lo);
			tok += 2;
		}
		if (c < 0x20 || c == 0x7f || n >= max)
			return NULL;
		buf[n++] = (char)c;
	}
	buf[n] = 0;
	return buf;
}

static char *decode_dup(const char *tok, size_t max)
{
	char *buf = malloc(max + 1), *v;

	if (buf == NULL)
		msg_fatal("out of memory");
	if ((v = decode(tok, buf, max)) == NULL) {
		free(buf);
		return NULL;
	}
	return v;
}

/* A decimal number from 1 (0 with zero_ok) up to max. */
static bool number(const char *s, unsigned long long max, bool zero_ok,
		   unsigned long long *v)
{
	size_t n = strspn(s, "0123456789");

	if (n == 0 || n > 16 || s[n] != 0 || (n > 1 && s[0] == '0'))
		return false;
	*v = strtoull(s, NULL, 10);
	return *v <= max && (zero_ok || *v > 0);
}

static enum dp_feed broken(char *why, size_t whylen, const char *text)
{
	snprintf(why, whylen, "%s", text);
	return DP_BROKEN;
}

/* ---- reading: requests ----------------------------------------------- */

static void refuse(struct dp_request *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void refuse(struct dp_request *r, const char *fmt, ...)
{
	va_list ap;

	if (r->refused[0])
		return;
	va_start(ap, fmt);
	vsnprintf(r->refused, sizeof r->refused, fmt, ap);
	va_end(ap);
}

/* A record that may come once, with one value. */
static bool once(struct dp_request *r, const struct line *l, unsigned bit)
{
	if (r->have & bit) {
		refuse(r, "record \"%s\" repeated", l->tok[0]);
		return false;
	}
	r->have |= bit;
	if (l->ntok != 2) {
		refuse(r, "record \"%s\" takes one value", l->tok[0]);
		return false;
	}
	return true;
}

static void read_queue_id(struct dp_request *r, const struct line *l)
{
	char shown[64];

	if (!once(r, l, R_QUEUE_ID))
		return;
	if (decode(l->tok[1], r->queue_id, QUEUE_ID_MAX - 1) == NULL
	    || !dp_queue_id_ok(r->queue_id)) {
		r->queue_id[0] = 0;
		refuse(r, "bad queue ID \"%s\"",
		       dp_printable(l->tok[1], shown, sizeof shown));
	}
}

static void read_transport(struct dp_request *r, const struct line *l)
{
	if (!once(r, l, R_TRANSPORT))
		return;
	if (decode(l->tok[1], r->transport, DP_TRANSPORT_MAX) == NULL
	    || !dp_transport_ok(r->transport)) {
		r->transport[0] = 0;
		refuse(r, "bad transport name");
	}
}

static void read_nexthop(struct dp_request *r, const struct line *l)
{
	if (!once(r, l, R_NEXTHOP))
		return;
	if ((r->nexthop = decode_dup(l->tok[1], DP_NEXTHOP_MAX)) == NULL)
		refuse(r, "bad next hop");
}

static void add_rcpt(struct dp_request *r, int index, char *addr, char *orig)
{
	struct dp_rcpt *v;

	v = realloc(r->rcpt, (size_t)(r->nrcpt + 1) * sizeof *v);

	if (v == NULL)
		msg_fatal("out of memory");
	r->rcpt = v;
	v[r->nrcpt++] = (struct dp_rcpt){ index, addr, orig };
}

static void read_rcpt(struct dp_request *r, const struct line *l)
{
	unsigned long long index;
	char *addr, *orig;

	if (l->ntok != 4 || !number(l->tok[1], INDEX_MAX, true, &index)) {
		refuse(r, "bad rcpt record");
		return;
	}
	if (r->nrcpt >= DP_RCPT_MAX) {
		refuse(r, "more than %d recipients", DP_RCPT_MAX);
		return;
	}
	addr = decode_dup(l->tok[2], DP_ADDR_MAX);
	orig = decode_dup(l->tok[3], DP_ADDR_MAX);
	if (addr == NULL || orig == NULL || !dp_addr_ok(addr)
	    || !dp_addr_ok(orig)) {
		refuse(r, "bad address in recipient %d", r->nrcpt);
		free(addr);
		free(orig);
		return;
	}
	add_rcpt(r, (int)index, addr, orig);
}

static void read_end(struct dp_request *r, const struct line *l)
{
	unsigned all = R_QUEUE_ID | R_TRANSPORT | R_NEXTHOP;

	if (l->ntok != 1)
		refuse(r, "bad end record");
	if ((r->have & all) != all || (r->nrcpt == 0 && !r->refused[0]))
		refuse(r, "incomplete request");
}

static bool request_start(struct dp_request *r, const struct line *l)
{
	unsigned long long seq;

	if (l->ntok != 2 || strcmp(l->tok[0], "request") != 0
	    || !number(l->tok[1], SEQ_MAX, false, &seq))
		return false;
	r->seq = seq;
	r->have = R_REQUEST;
	return true;
}

enum dp_feed dp_request_feed(struct dp_request *r, const char *text,
			     size_t len, char *why, size_t whylen)
{
	static const struct {
		const char *key;
		void (*read)(struct dp_request *, const struct line *);
	} records[] = {
		{ "queue_id", read_queue_id }, { "transport", read_transport },
		{ "nexthop", read_nexthop }, { "rcpt", read_rcpt },
	};
	struct line l;

	if (split(&l, text, len) < 0)
		return broken(why, whylen, "malformed record");
	if (++r->lines > FRAME_LINES_MAX)
		return broken(why, whylen, "request too long");
	if (r->have == 0)
		return request_start(r, &l) ? DP_MORE
		    : broken(why, whylen, "expected \"request SEQ\"");
	if (strcmp(l.tok[0], "end") == 0) {
		read_end(r, &l);
		return DP_DONE;
	}
	for (size_t i = 0; i < sizeof records / sizeof records[0]; i++)
		if (strcmp(l.tok[0], records[i].key) == 0) {
			records[i].read(r, &l);
			return DP_MORE;
		}
	refuse(r, "unknown record");
	return DP_MORE;
}

void dp_request_free(struct dp_request *r)
{
	for (int i = 0; i < r->nrcpt; i++) {
		free(r->rcpt[i].addr);
		free(r->rcpt[i].orig);
	}
	free(r->rcpt);
	free(r->nexthop);
	memset(r, 0, sizeof *r);
}

/* ---- reading: results ------------------------------------------------ */

static bool read_time(const char *s, struct timeval *tv)
{
	unsigned long long sec, usec;
	const char *dot = strchr(s, '.');
	char buf[24];

	if (dot == NULL || (size_t)(dot - s) >= sizeof buf
	    || strlen(dot + 1) != 6)
		return false;
	snprintf(buf, sizeof buf, "%.*s", (int)(dot - s), s);
	if (!number(buf, 1ULL << 40, true, &sec)
	    || strspn(dot + 1, "0123456789") != 6)
		return false;
	usec = strtoull(dot + 1, NULL, 10);
	tv->tv_sec = (time_t)sec;
	tv->tv_usec = (suseconds_t)usec;
	return true;
}

/* status, dsn and text from three tokens. */
static bool read_outcome(struct dp_rcpt_result *o, const char *status,
			 const char *dsn, const char *text)
{
	if (strlen(status) != 1 || strchr("245", status[0]) == NULL
	    || decode(dsn, o->dsn, sizeof o->dsn - 1) == NULL || !dsn_ok(o->dsn)
	    || (o->text = decode_dup(text, DP_TEXT_MAX)) == NULL)
		return false;
	o->status = status[0] - '0';
	return true;
}

static bool result_rcpt(struct dp_result *r, const struct line *l)
{
	unsigned long long pos;
	struct dp_rcpt_result *v;

	if (l->ntok != 5 || !number(l->tok[1], DP_RCPT_MAX - 1, true, &pos))
		return false;
	if ((int)pos >= r->n) {
		if ((v = realloc(r->v, (pos + 1) * sizeof *v)) == NULL)
			msg_fatal("out of memory");
		memset(v + r->n, 0, (pos + 1 - (size_t)r->n) * sizeof *v);
		r->v = v;
		r->n = (int)pos + 1;
	}
	if (r->v[pos].status != 0)
		return false;
	return read_outcome(&r->v[pos], l->tok[2], l->tok[3], l->tok[4]);
}

static bool result_record(struct dp_result *r, const struct line *l)
{
	const char *k = l->tok[0];

	if (strcmp(k, "relay") == 0)
		return l->ntok == 2
		    && decode(l->tok[1], r->relay, DP_RELAY_MAX) != NULL;
	if (strcmp(k, "times") == 0)
		return l->ntok == 3 && read_time(l->tok[1], &r->t_conn)
		    && read_time(l->tok[2], &r->t_done);
	if (strcmp(k, "rcpt") == 0)
		return result_rcpt(r, l);
	if (strcmp(k, "error") == 0 && !r->error && l->ntok == 3) {
		r->error = true;	/* a deferral: "4.X.X" */
		return read_outcome(&r->all, "4", l->tok[1], l->tok[2])
		    && r->all.dsn[0] == '4';
	}
	return false;
}

enum dp_feed dp_result_feed(struct dp_result *r, const char *text,
			    size_t len, char *why, size_t whylen)
{
	struct line l;
	unsigned long long seq;

	if (split(&l, text, len) < 0)
		return broken(why, whylen, "malformed record");
	if (++r->lines > FRAME_LINES_MAX)
		return broken(why, whylen, "result too long");
	if (r->lines == 1) {
		if (l.ntok != 2 || strcmp(l.tok[0], "result") != 0
		    || !number(l.tok[1], SEQ_MAX, false, &seq))
			return broken(why, whylen, "expected \"result SEQ\"");
		r->seq = seq;
		return DP_MORE;
	}
	if (strcmp(l.tok[0], "end") == 0 && l.ntok == 1)
		return DP_DONE;
	if (!result_record(r, &l))
		return broken(why, whylen, "bad record in a result");
	return DP_MORE;
}

void dp_result_free(struct dp_result *r)
{
	for (int i = 0; i < r->n; i++)
		free(r->v[i].text);
	free(r->v);
	free(r->all.text);
	memset(r, 0, sizeof *r);
}
