/*
 * regex_mime.c - the message body as Postfix's MIME state machine sees
 * it (mime_state.c), for mime_header_checks, nested_header_checks and
 * body_checks.
 *
 * Promises:
 *   - the body is cut into lines at LF (a line longer than
 *     REGEX_LINE_MAX is looked at in pieces, as Postfix's
 *     line_length_limit does);
 *   - a multipart (type multipart/...) body, top level or in a part, nested up to
 *     REGEX_DEPTH_MAX deep) is followed by its boundaries: after
 *     "--boundary" come the part's headers, which go to
 *     mime_header_checks as logical headers (continuation lines joined
 *     with "\n"); "--boundary--" ends the multipart;
 *   - after the headers of a message/rfc822 part (the default type of a
 *     multipart/digest part), or under a top-level message/rfc822, come
 *     the attached message's headers: its MIME headers go to
 *     mime_header_checks, the others to nested_header_checks;
 *   - every other line, boundaries included, goes to body_checks until
 *     body_checks_size_limit bytes of the current segment (the text
 *     between two boundaries) have been looked at.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "regex.h"

#define REGEX_LINE_MAX   2048        /* Postfix's line_length_limit */
#define REGEX_HEADER_MAX 102400      /* Postfix's header_size_limit */
#define REGEX_DEPTH_MAX  20          /* Postfix's mime_nesting_limit */

struct regex_mime {
	char line[REGEX_LINE_MAX + 1];
	size_t len;
	bool in_headers;                /* reading part / nested headers */
	enum regex_class hdr_class;     /* RC_MIME (part) or RC_NESTED */
	char *hdr; size_t hdr_len;      /* the logical header being joined */
	char *ctype;                    /* Content-Type of these headers */
	bool default_rfc822;            /* a multipart/digest part */
	char *bnd[REGEX_DEPTH_MAX];     /* open multiparts, outermost first */
	bool digest[REGEX_DEPTH_MAX];
	int depth;
	long long seg_bytes, limit;
};

bool regex_is_mime_header(const char *name, size_t len)
{
	static const char *mime[] = {
		"Content-Description", "Content-Disposition", "Content-ID",
		"Content-Transfer-Encoding", "Content-Type", "MIME-Version", NULL
	};

	for (int i = 0; mime[i]; i++)
		if (strlen(mime[i]) == len && strncasecmp(mime[i], name, len) == 0)
			return true;
	return false;
}

static bool type_is(const char *ctype, const char *prefix)
{
	if (ctype == NULL)
		return false;
	ctype += strspn(ctype, " \t\n");
	return strncasecmp(ctype, prefix, strlen(prefix)) == 0;
}

char *regex_boundary(const char *ctype)
{
	const char *p = ctype;
	size_t n;

	while ((p = strchr(p, ';')) != NULL) {
		p++;
		p += strspn(p, " \t\n");
		if (strncasecmp(p, "boundary", 8) != 0)
			continue;
		p += 8;
		p += strspn(p, " \t");
		if (*p++ != '=')
			continue;
		p += strspn(p, " \t");
		if (*p == '"') {
			p++;
			n = strcspn(p, "\"");
		} else {
			n = strcspn(p, " \t\n;");
		}
		if (n == 0)
			return NULL;
		char *b = malloc(n + 1);
		if (b == NULL)
			abort();
		memcpy(b, p, n);
		b[n] = 0;
		return b;
	}
	return NULL;
}

/* Where the body of an entity with this Content-Type goes. */
static void enter_body(struct regex_mime *m, const char *ctype,
		       bool default_rfc822)
{
	char *b;

	m->in_headers = false;
	m->seg_bytes = 0;
	if (ctype == NULL && default_rfc822)
		ctype = "message/rfc822";
	if (type_is(ctype, "multipart/") && m->depth < REGEX_DEPTH_MAX
	    && (b = regex_boundary(ctype)) != NULL) {
		m->digest[m->depth] = type_is(ctype, "multipart/digest");
		m->bnd[m->depth++] = b;
	} else if (type_is(ctype, "message/rfc822")) {
		m->in_headers = true;
		m->hdr_class = RC_NESTED;
		m->default_rfc822 = false;
	}
}

struct regex_mime *regex_mime_new(const char *top_content_type)
{
	struct regex_mime *m = sluice_calloc(sizeof *m);

	m->limit = sluice_conf_int("body_checks_size_limit");
	enter_body(m, top_content_type, false);
	return m;
}

void regex_mime_free(struct regex_mime *m)
{
	if (m == NULL)
		return;
	for (int i = 0; i < m->depth; i++)
		free(m->bnd[i]);
	free(m->hdr);
	free(m->ctype);
	free(m);
}

/* Which open multipart's boundary is this line ("--b" or "--b--")?
 * Returns its level, or -1; *close says "--b--". */
static int boundary_level(const struct regex_mime *m, const char *line,
			  size_t len, bool *close)
{
	if (len < 3 || line[0] != '-' || line[1] != '-')
		return -1;
	for (int k = m->depth - 1; k >= 0; k--) {
		size_t bl = strlen(m->bnd[k]);

		if (len < bl + 2 || strncmp(line + 2, m->bnd[k], bl) != 0)
			continue;
		*close = len >= bl + 4 && line[bl + 2] == '-' && line[bl + 3] == '-';
		return k;
	}
	return -1;
}

/* ---- headers of parts and attached messages ---------------------------- */

static int flush_header(sluice_txn *t, struct regex_state *st,
			struct regex_mime *m)
{
	size_t n;
	int v;

	if (m->hdr == NULL)
		return SLUICE_DUNNO;
	n = strcspn(m->hdr, ":");
	if (n == 12 && strncasecmp(m->hdr, "Content-Type", 12) == 0) {
		free(m->ctype);
		m->ctype = sluice_strdup(m->hdr + 13);
	}
	v = regex_check(t, st, regex_is_mime_header(m->hdr, n) ? RC_MIME
			: m->hdr_class, m->hdr, -1, NULL);
	free(m->hdr);
	m->hdr = NULL;
	m->hdr_len = 0;
	return v;
}

static void join_header(struct regex_mime *m, const char *line, size_t len)
{
	size_t add = len + (m->hdr ? 1 : 0);
	char *h;

	if (m->hdr_len + add > REGEX_HEADER_MAX)
		return;                 /* the rest is cut, as Postfix does */
	if ((h = realloc(m->hdr, m->hdr_len + add + 1)) == NULL)
		abort();
	if (m->hdr)
		h[m->hdr_len++] = '\n';
	memcpy(h + m->hdr_len, line, len);
	m->hdr_len += len;
	h[m->hdr_len] = 0;
	m->hdr = h;
}

static int end_headers(sluice_txn *t, struct regex_state *st,
		       struct regex_mime *m)
{
	int v = flush_header(t, st, m);
	char *ctype = m->ctype;

	m->ctype = NULL;
	enter_body(m, ctype, m->default_rfc822);
	free(ctype);
	return v;
}

static bool header_start(const char *line, size_t len)
{
	size_t i = 0;

	while (i < len && line[i] != ':' && (unsigned char)line[i] > ' '
	       && line[i] != 0x7f)
		i++;
	return i > 0 && i < len && line[i] == ':';
}

/* ---- lines ------------------------------------------------------------- */

static int body_line(sluice_txn *t, struct regex_state *st,
		     struct regex_mime *m, const char *line, size_t len)
{
	if (m->seg_bytes >= m->limit)
		return SLUICE_DUNNO;
	m->seg_bytes += (long long)len + 1;
	return regex_check(t, st, RC_BODY, line, -1, NULL);
}

/* A boundary line: it is body text, then the next part's headers
 * follow (or, for the closing one, the epilogue). */
static int boundary_line(sluice_txn *t, struct regex_state *st,
			 struct regex_mime *m, int k, bool close,
			 const char *line, size_t len)
{
	int v;

	if (m->in_headers && (v = flush_header(t, st, m)) != SLUICE_DUNNO)
		return v;
	free(m->ctype);
	m->ctype = NULL;
	for (int i = k + 1; i < m->depth; i++)
		free(m->bnd[i]);
	m->depth = k + 1;
	m->seg_bytes = 0;
	v = body_line(t, st, m, line, len);
	m->seg_bytes = 0;
	if (close) {
		m->in_headers = false;
		free(m->bnd[k]);
		m->depth = k;
	} else {
		m->in_headers = true;
		m->hdr_class = RC_MIME;
		m->default_rfc822 = m->digest[k];
	}
	return v;
}

static int one_line(sluice_txn *t, struct regex_state *st,
		    struct regex_mime *m, const char *line, size_t len)
{
	bool close = false;
	int k = boundary_level(m, line, len, &close), v;

	if (k >= 0)
		return boundary_line(t, st, m, k, close, line, len);
	if (!m->in_headers)
		return body_line(t, st, m, line, len);
	if (len == 0)
		return end_headers(t, st, m);
	if ((*line == ' ' || *line == '\t') && m->hdr) {
		join_header(m, line, len);
		return SLUICE_DUNNO;
	}
	if ((v = flush_header(t, st, m)) != SLUICE_DUNNO)
		return v;
	if (header_start(line, len)) {
		join_header(m, line, len);
		return SLUICE_DUNNO;
	}
	/* Not a header: the headers ended without their empty line. */
	if ((v = end_headers(t, st, m)) != SLUICE_DUNNO)
		return v;
	return one_line(t, st, m, line, len);
}

int regex_mime_feed(sluice_txn *t, struct regex_state *st,
		    const unsigned char *p, size_t len)
{
	struct regex_mime *m = st->mime;
	int v;

	for (size_t i = 0; i < len && !st->stop; i++) {
		if (p[i] != '\n') {
			m->line[m->len++] = (char)p[i];
			if (m->len < REGEX_LINE_MAX)
				continue;
		}
		if (m->len > 0 && m->line[m->len - 1] == '\r')
			m->len--;
		m->line[m->len] = 0;
		v = one_line(t, st, m, m->line, m->len);
		m->len = 0;
		if (v != SLUICE_DUNNO)
			return v;
	}
	return SLUICE_DUNNO;
}

int regex_mime_end(sluice_txn *t, struct regex_state *st)
{
	struct regex_mime *m = st->mime;
	int v = SLUICE_DUNNO;

	if (st->stop)
		return SLUICE_DUNNO;
	if (m->len > 0) {
		m->line[m->len] = 0;
		v = one_line(t, st, m, m->line, m->len);
		m->len = 0;
	}
	if (v == SLUICE_DUNNO && m->in_headers)
		v = flush_header(t, st, m);
	return v;
}
