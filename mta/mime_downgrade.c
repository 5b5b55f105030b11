/*
 * mime_downgrade.c - 8-bit to 7-bit MIME conversion (mime_downgrade.h),
 * a one-pass state machine after Postfix's mime_state(3) with
 * MIME_OPT_DOWNGRADE: the same states, the same decisions, the same
 * quoted-printable output; written afresh.
 *
 * Input is cut into records: a line with its LF, or a piece of
 * MIME_DG_LINE_MAX bytes of a longer line (a "continued" record, as
 * Postfix's REC_TYPE_CONT).  In a header block a header is gathered
 * (continuation lines included, byte for byte) until the next line shows
 * where it ends; then Content-Type and Content-Transfer-Encoding are
 * read, and the header goes out unchanged - unless it is a
 * Content-Transfer-Encoding that declares 8bit or binary, which is held
 * back and replaced at the end of the block.  In a body, a line that
 * starts with "--" and one of the open boundaries changes the state;
 * other lines go out as they are, or quoted-printable in a part that
 * is converted.
 *
 * The promise: only the parts Postfix would convert change; every other
 * byte passes as it came, and memory stays bounded whatever the input.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "mime_downgrade.h"

#define MIME_DG_LINE_MAX        4096    /* a record: longer lines are cut */
#define MIME_DG_QP_COLUMNS      72      /* soft break past this many */

enum { ST_PRIMARY, ST_MULTIPART, ST_NESTED, ST_BODY };
enum { CT_OTHER, CT_TEXT, CT_MESSAGE, CT_MULTIPART };
enum { STY_OTHER, STY_PLAIN, STY_RFC822, STY_PARTIAL, STY_EXTERNAL };
enum { ENC_7BIT, ENC_8BIT, ENC_BINARY, ENC_QP, ENC_BASE64 };

struct frame {
	char *boundary;
	size_t blen;
	int def_ctype, def_stype;
};

struct mime_dg {
	mime_dg_out_fn out;
	void *arg;
	int state, ctype, stype, domain;
	char line[MIME_DG_LINE_MAX];    /* the record being gathered */
	size_t llen;
	bool prev_cont;                 /* the last record did not end a line */
	char *hdr;                      /* the header being gathered */
	size_t hlen, hcap;
	bool spill;                     /* header too long: passed on raw */
	char qp[96];                    /* quoted-printable output line */
	size_t qlen;
	struct frame *stack;
	int depth, cap;
	bool changed;
	bool at_bol;                    /* the output so far ends a line */
};

/* ---- output ---------------------------------------------------------- */

static void emit(struct mime_dg *m, const char *p, size_t n)
{
	if (n > 0) {
		m->out(m->arg, p, n);
		m->at_bol = p[n - 1] == '\n';
	}
}

static void qp_flush(struct mime_dg *m, bool eol)
{
	emit(m, m->qp, m->qlen);
	if (eol)
		emit(m, "\n", 1);
	m->qlen = 0;
}

static void qp_byte(struct mime_dg *m, unsigned char ch)
{
	static const char hex[] = "0123456789ABCDEF";

	m->qp[m->qlen++] = '=';
	m->qp[m->qlen++] = hex[ch >> 4];
	m->qp[m->qlen++] = hex[ch & 15];
}

/* One record of a converted part, as quoted-printable. */
static void qp_record(struct mime_dg *m, const char *p, size_t n, bool eol)
{
	m->changed = true;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (m->qlen > MIME_DG_QP_COLUMNS) {
			emit(m, m->qp, m->qlen);
			emit(m, "=\n", 2);
			m->qlen = 0;
		}
		if ((ch < 32 && ch != '\t') || ch == '=' || ch > 126)
			qp_byte(m, ch);
		else
			m->qp[m->qlen++] = (char)ch;
	}
	if (!eol)
		return;
	if (m->qlen > 0 && (m->qp[m->qlen - 1] == ' ' || m->qp[m->qlen - 1] == '\t')) {
		unsigned char ch = (unsigned char)m->qp[--m->qlen];

		qp_byte(m, ch);
	}
	qp_flush(m, true);
}

/* ---- the boundary stack ---------------------------------------------- */

static void push(struct mime_dg *m, const char *b, size_t blen, int ctype,
		 int stype)
{
	if (m->depth >= MIME_DG_DEPTH_MAX)
		return;
	if (m->depth == m->cap) {
		int cap = m->cap ? m->cap * 2 : 4;
		struct frame *s = realloc(m->stack, (size_t)cap * sizeof *s);

		if (s == NULL)
			msg_fatal("mime: out of memory");
		m->stack = s;
		m->cap = cap;
	}
	if (blen > MIME_DG_BOUNDARY_MAX)
		blen = MIME_DG_BOUNDARY_MAX;
	struct frame *f = &m->stack[m->depth];

	if ((f->boundary = malloc(blen + 1)) == NULL)
		msg_fatal("mime: out of memory");
	memcpy(f->boundary, b, blen);
	f->boundary[blen] = 0;
	f->blen = blen;
	f->def_ctype = ctype;
	f->def_stype = stype;
	m->depth++;
}

static void pop(struct mime_dg *m)
{
	free(m->stack[--m->depth].boundary);
}

static void set_state(struct mime_dg *m, int state, int ctype, int stype,
		      int domain)
{
	m->state = state;
	m->ctype = ctype;
	m->stype = stype;
	m->domain = domain;
}

/* ---- header values (RFC 2045 tokens) --------------------------------- */

#define TSPECIALS "()<>@,;:\\\"/[]?="

struct tok {
	char kind;                      /* 'w' word (token or quoted), else
					 * the special itself, 0 at the end */
	char val[MIME_DG_BOUNDARY_MAX + 1];
	size_t len;
};

static const char *skip_cfws(const char *p, const char *end)
{
	int depth = 0;

	for (; p < end; p++) {
		if (depth > 0) {
			if (*p == '\\' && p + 1 < end)
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')')
				depth--;
		} else if (*p == '(') {
			depth = 1;
		} else if (!isspace((unsigned char)*p)) {
			break;
		}
	}
	return p;
}

static void tok_add(struct tok *t, char c)
{
	if (t->len < sizeof t->val - 1)
		t->val[t->len++] = c;
	t->val[t->len] = 0;
}

/* The next token of a header value at *pp. */
static void next_tok(const char **pp, const char *end, struct tok *t)
{
	const char *p = skip_cfws(*pp, end);

	t->len = 0;
	t->val[0] = 0;
	t->kind = 0;
	if (p >= end) {
		*pp = p;
		return;
	}
	if (*p == '"') {
		t->kind = 'w';
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\' && p + 1 < end)
				p++;
			if (*p != '\n' && *p != '\r')
				tok_add(t, *p);
		}
		*pp = p < end ? p + 1 : p;
		return;
	}
	if (strchr(TSPECIALS, *p)) {
		t->kind = *p;
		*pp = p + 1;
		return;
	}
	t->kind = 'w';
	for (; p < end && (unsigned char)*p > 32 && *p != 127
	     && !strchr(TSPECIALS, *p); p++)
		tok_add(t, *p);
	*pp = p;
}

static bool word_is(const struct tok *t, const char *w)
{
	return t->kind == 'w' && strcasecmp(t->val, w) == 0;
}

/* The parameters after type/subtype: every boundary= is pushed. */
static void content_params(struct mime_dg *m, const char *p, const char *end,
			   int def_ctype, int def_stype)
{
	struct tok *attr = malloc(sizeof *attr), *t = malloc(sizeof *t);

	if (attr == NULL || t == NULL)
		msg_fatal("mime: out of memory");
	for (;;) {
		do
			next_tok(&p, end, t);
		while (t->kind != 0 && t->kind != ';');
		if (t->kind == 0)
			break;
		next_tok(&p, end, attr);
		if (attr->kind != 'w')
			continue;
		next_tok(&p, end, t);
		if (t->kind != '=')
			continue;
		next_tok(&p, end, t);
		if (t->kind == 'w' && strcasecmp(attr->val, "boundary") == 0
		    && t->len > 0)
			push(m, t->val, t->len, def_ctype, def_stype);
	}
	free(attr);
	free(t);
}

static void content_type(struct mime_dg *m, const char *p, const char *end)
{
	struct tok *t = malloc(sizeof *t), *sub = malloc(sizeof *sub);
	bool has_sub;

	if (t == NULL || sub == NULL)
		msg_fatal("mime: out of memory");
	next_tok(&p, end, t);
	if (t->kind != 'w') {
		free(t);
		free(sub);
		return;                 /* no type: nothing changes (Postfix) */
	}
	next_tok(&p, end, sub);
	has_sub = sub->kind == '/';
	if (has_sub)
		next_tok(&p, end, sub);
	if (word_is(t, "text")) {
		m->ctype = CT_TEXT;
		m->stype = has_sub && word_is(sub, "plain") ? STY_PLAIN : STY_OTHER;
	} else if (word_is(t, "message")) {
		m->ctype = CT_MESSAGE;
		m->stype = !has_sub ? STY_OTHER
			: word_is(sub, "rfc822") ? STY_RFC822
			: word_is(sub, "partial") ? STY_PARTIAL
			: word_is(sub, "external-body") ? STY_EXTERNAL : STY_OTHER;
	} else if (word_is(t, "multipart")) {
		bool digest = has_sub && word_is(sub, "digest");

		m->ctype = CT_MULTIPART;
		content_params(m, p, end, digest ? CT_MESSAGE : CT_TEXT,
			       digest ? STY_RFC822 : STY_PLAIN);
	} else {
		m->ctype = CT_OTHER;
	}
	free(t);
	free(sub);
}

static void content_encoding(struct mime_dg *m, const char *p, const char *end)
{
	static const struct { const char *name; int domain; } enc[] = {
		{ "7bit", ENC_7BIT }, { "8bit", ENC_8BIT },
		{ "binary", ENC_BINARY }, { "base64", ENC_7BIT },
		{ "quoted-printable", ENC_7BIT },
	};
	struct tok *t = malloc(sizeof *t);

	if (t == NULL)
		msg_fatal("mime: out of memory");
	next_tok(&p, end, t);
	for (size_t i = 0; t->kind == 'w' && i < sizeof enc / sizeof enc[0]; i++)
		if (strcasecmp(t->val, enc[i].name) == 0) {
			m->domain = enc[i].domain;
			break;
		}
	free(t);
}

/* ---- headers --------------------------------------------------------- */

/* The length of "name:" (spaces before the colon allowed) at the start
 * of a header line, or 0 when the line is not a header. */
static size_t header_name(const char *p, size_t n, size_t *name_len)
{
	size_t i = 0, nl;

	while (i < n && (unsigned char)p[i] > 32 && (unsigned char)p[i] < 127
	       && p[i] != ':')
		i++;
	nl = i;
	if (nl == 0)
		return 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i >= n || p[i] != ':')
		return 0;
	*name_len = nl;
	return i + 1;
}

static void hdr_append(struct mime_dg *m, const char *p, size_t n, bool eol)
{
	size_t need = m->hlen + n + 2;

	if (m->spill || need > MIME_DG_HEADER_MAX) {
		emit(m, m->hdr, m->hlen);       /* too long to parse: as it is */
		m->hlen = 0;
		m->spill = true;
		emit(m, p, n);
		if (eol)
			emit(m, "\n", 1);
		return;
	}
	if (need > m->hcap) {
		size_t cap = m->hcap ? m->hcap : 256;
		char *h;

		while (cap < need)
			cap *= 2;
		if ((h = realloc(m->hdr, cap)) == NULL)
			msg_fatal("mime: out of memory");
		m->hdr = h;
		m->hcap = cap;
	}
	memcpy(m->hdr + m->hlen, p, n);
	m->hlen += n;
	if (eol)
		m->hdr[m->hlen++] = '\n';
}

/* The gathered header is complete: read it, and pass it on unless it is
 * a Content-Transfer-Encoding to be replaced. */
static void hdr_done(struct mime_dg *m)
{
	const char *end = m->hdr + m->hlen;
	size_t name_len = 0, skip;
	bool cte = false;

	if (m->hlen == 0)
		return;
	skip = header_name(m->hdr, m->hlen, &name_len);
	if (skip > 0 && name_len == 12 && strncasecmp(m->hdr, "Content-Type", 12) == 0) {
		content_type(m, m->hdr + skip, end);
	} else if (skip > 0 && name_len == 25
		   && strncasecmp(m->hdr, "Content-Transfer-Encoding", 25) == 0) {
		content_encoding(m, m->hdr + skip, end);
		cte = true;
	}
	if (!cte || m->domain == ENC_7BIT)
		emit(m, m->hdr, m->hlen);
	m->hlen = 0;
}

/* The end of a header block: the replacement header, if one is due. */
static void block_done(struct mime_dg *m)
{
	hdr_done(m);
	m->spill = false;
	if (m->domain == ENC_7BIT)
		return;
	if (!m->at_bol)
		emit(m, "\n", 1);       /* a last header without LF (at the end) */
	if (m->ctype == CT_MESSAGE || m->ctype == CT_MULTIPART)
		emit(m, "Content-Transfer-Encoding: 7bit\n", 32);
	else
		emit(m, "Content-Transfer-Encoding: quoted-printable\n", 44);
	m->changed = true;
}

static void body_record(struct mime_dg *m, const char *p, size_t n, bool eol);

static void header_record(struct mime_dg *m, const char *p, size_t n, bool eol)
{
	size_t name_len;

	if (m->prev_cont) {             /* the rest of a line begun before */
		if (m->hlen > 0 || m->spill)
			hdr_append(m, p, n, eol);
		else
			body_record(m, p, n, eol);
		return;
	}
	if ((m->hlen > 0 || m->spill) && n > 0 && (p[0] == ' ' || p[0] == '\t')) {
		hdr_append(m, p, n, eol);
		return;
	}
	hdr_done(m);
	m->spill = false;
	if (header_name(p, n, &name_len) > 0) {
		hdr_append(m, p, n, eol);
		return;
	}
	block_done(m);
	if (n == 0 && eol) {
		emit(m, "\n", 1);
		if (m->ctype == CT_MESSAGE && m->stype == STY_RFC822)
			set_state(m, ST_NESTED, CT_TEXT, STY_PLAIN, ENC_7BIT);
		else if (m->ctype == CT_MULTIPART)
			set_state(m, ST_BODY, CT_OTHER, STY_OTHER, ENC_7BIT);
		else
			m->state = ST_BODY;
		return;
	}
	m->state = ST_BODY;             /* no empty line: Postfix adds one */
	emit(m, "\n", 1);
	body_record(m, p, n, eol);
}

/* ---- bodies ---------------------------------------------------------- */

/* A boundary line of an open multipart: the new state. */
static void boundary(struct mime_dg *m, const char *p, size_t n)
{
	for (int i = m->depth - 1; i >= 0; i--) {
		struct frame *f = &m->stack[i];

		if (n < 2 + f->blen || memcmp(p + 2, f->boundary, f->blen) != 0)
			continue;
		while (m->depth - 1 > i)
			pop(m);
		if (n >= 4 + f->blen && p[2 + f->blen] == '-' && p[3 + f->blen] == '-') {
			pop(m);
			set_state(m, ST_BODY, CT_OTHER, STY_OTHER, ENC_7BIT);
		} else {
			set_state(m, ST_MULTIPART, f->def_ctype, f->def_stype,
				  ENC_7BIT);
		}
		return;
	}
}

static void body_record(struct mime_dg *m, const char *p, size_t n, bool eol)
{
	if (!m->prev_cont && m->depth > 0 && n >= 2 && p[0] == '-' && p[1] == '-')
		boundary(m, p, n);
	if (m->domain != ENC_7BIT) {
		qp_record(m, p, n, eol);
		return;
	}
	emit(m, p, n);
	if (eol)
		emit(m, "\n", 1);
}

/* ---- records --------------------------------------------------------- */

static void record(struct mime_dg *m, const char *p, size_t n, bool eol)
{
	if (m->state == ST_BODY)
		body_record(m, p, n, eol);
	else
		header_record(m, p, n, eol);
	m->prev_cont = !eol;
}

struct mime_dg *mime_dg_new(mime_dg_out_fn out, void *arg)
{
	struct mime_dg *m = calloc(1, sizeof *m);

	if (m == NULL)
		msg_fatal("mime: out of memory");
	m->out = out;
	m->arg = arg;
	set_state(m, ST_PRIMARY, CT_TEXT, STY_PLAIN, ENC_7BIT);
	m->at_bol = true;
	return m;
}

void mime_dg_update(struct mime_dg *m, const char *p, size_t n)
{
	while (n > 0) {
		const char *lf = memchr(p, '\n', n);
		size_t take = lf ? (size_t)(lf - p) : n;

		if (take > sizeof m->line - m->llen)
			take = sizeof m->line - m->llen;
		memcpy(m->line + m->llen, p, take);
		m->llen += take;
		p += take;
		n -= take;
		if (n > 0 && *p == '\n') {
			record(m, m->line, m->llen, true);
			m->llen = 0;
			p++;
			n--;
		} else if (m->llen == sizeof m->line) {
			record(m, m->line, m->llen, false);
			m->llen = 0;
		}
	}
}

void mime_dg_finish(struct mime_dg *m)
{
	if (m->llen > 0) {
		record(m, m->line, m->llen, false);
		m->llen = 0;
	}
	if (m->state != ST_BODY)
		block_done(m);  /* headers only: their end is the message's */
	if (m->qlen > 0)
		qp_flush(m, false);
}

bool mime_dg_changed(const struct mime_dg *m)
{
	return m->changed;
}

void mime_dg_free(struct mime_dg *m)
{
	if (m == NULL)
		return;
	while (m->depth > 0)
		pop(m);
	free(m->stack);
	free(m->hdr);
	free(m);
}
