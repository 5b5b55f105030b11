/*
 * config_expand.c - $name expansion of parameter values, as Postfix does.
 *
 *   $name, ${name}, $(name)   the (expanded) value of parameter name
 *   $$                        a literal "$"
 *   ${name?text}, $(name?text)  text (itself expanded) when $name is not
 *                             empty, else nothing
 *   ${name:text}, $(name:text)  text when $name is empty, else nothing
 *   ${name?{text}}, ${name:{text}}, ${name?{text1}:{text2}}
 *                             Postfix 3's braced forms: text1 when $name
 *                             is not empty, else text2
 *
 * Every variable of a set is expanded once and remembered.  The
 * promises: a reference to an
 * undefined name, a syntax error, and a chain of references that comes
 * back to where it started are each reported once, at the file:line of
 * the setting that holds them; a value with such a problem is marked
 * broken (it reads as empty and is not judged again by its type).
 * References or conditionals nested deeper than EXPAND_DEPTH_MAX, or a
 * value growing past EXPAND_VALUE_MAX, stop with a message instead of
 * exhausting the stack or memory.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define EXPAND_DEPTH_MAX	100
#define EXPAND_VALUE_MAX	(1024 * 1024)

/* cf_var.state: where the expansion is, plus a mark for loop members. */
enum { ST_TODO = 0, ST_BUSY = 1, ST_DONE = 2, ST_MASK = 3, ST_IN_LOOP = 4 };

/* ---- the syntax ------------------------------------------------------ */

enum dref_kind { DREF_DOLLAR, DREF_NAME, DREF_COND };

struct dref {
	enum dref_kind kind;
	const char *name;
	size_t nlen;
	char op;                /* '?' or ':' for DREF_COND */
	const char *text;
	size_t tlen;
	const char *err;        /* set when the syntax is bad ... */
	const char *fix;        /* ... with what to do about it */
};

static bool name_char(int c)
{
	return isalnum(c) || c == '_';
}

/* A "$..." construct at p (p[0] == '$'); returns the first byte after
 * it, or NULL with r->err set. */
static const char *parse_dollar(const char *p, const char *end,
				struct dref *r)
{
	const char *q;
	char open, close;
	int depth;

	memset(r, 0, sizeof *r);
	if (p + 1 >= end || (p[1] != '$' && p[1] != '{' && p[1] != '(' &&
			     !name_char((unsigned char)p[1]))) {
		r->err = "a \"$\" that is not followed by a parameter name";
		r->fix = "write \"$$\" for a literal \"$\"";
		return NULL;
	}
	if (p[1] == '$') {
		r->kind = DREF_DOLLAR;
		return p + 2;
	}
	if (p[1] != '{' && p[1] != '(') {
		for (q = p + 1; q < end && name_char((unsigned char)*q); q++)
			;
		r->kind = DREF_NAME;
		r->name = p + 1;
		r->nlen = (size_t)(q - r->name);
		return q;
	}
	open = p[1];
	close = open == '{' ? '}' : ')';
	for (q = p + 2; q < end && name_char((unsigned char)*q); q++)
		;
	r->name = p + 2;
	r->nlen = (size_t)(q - r->name);
	if (r->nlen == 0) {
		r->err = open == '{' ? "a \"${\" that is not followed by a parameter name"
				     : "a \"$(\" that is not followed by a parameter name";
		r->fix = "write \"$$\" for a literal \"$\"";
		return NULL;
	}
	if (q < end && *q == close) {
		r->kind = DREF_NAME;
		return q + 1;
	}
	if (q >= end || (*q != '?' && *q != ':')) {
		r->err = open == '{' ? "a \"${name\" without its closing \"}\""
				     : "a \"$(name\" without its closing \")\"";
		r->fix = open == '{' ? "add the \"}\"" : "add the \")\"";
		return NULL;
	}
	r->kind = DREF_COND;
	r->op = *q;
	r->text = ++q;
	for (depth = 1; q < end; q++) {
		if (*q == open)
			depth++;
		else if (*q == close && --depth == 0)
			break;
	}
	if (q >= end) {
		r->err = open == '{' ? "a \"${name?...\" or \"${name:...\" without its closing \"}\""
				     : "a \"$(name?...\" or \"$(name:...\" without its closing \")\"";
		r->fix = open == '{' ? "add the \"}\"" : "add the \")\"";
		return NULL;
	}
	r->tlen = (size_t)(q - r->text);
	return q + 1;
}

static void refs_in(const char *s, const char *end,
		    void (*fn)(const char *, size_t, void *), void *arg)
{
	struct dref r;
	const char *next;

	while ((s = memchr(s, '$', (size_t)(end - s))) != NULL) {
		if ((next = parse_dollar(s, end, &r)) == NULL) {
			s++;
			continue;
		}
		if (r.kind != DREF_DOLLAR)
			fn(r.name, r.nlen, arg);
		if (r.kind == DREF_COND)
			refs_in(r.text, r.text + r.tlen, fn, arg);
		s = next;
	}
}

void cf_references(const char *s, void (*fn)(const char *name, size_t len,
					      void *arg), void *arg)
{
	refs_in(s, s + strlen(s), fn, arg);
}

/* ---- a growing string ------------------------------------------------ */

struct sbuf {
	char *s;
	size_t len, cap;
	bool too_long;          /* EXPAND_VALUE_MAX reached */
	bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->too_long || b->oom)
		return;
	if (b->len + n + 1 > EXPAND_VALUE_MAX) {
		b->too_long = true;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->s, cap)) == NULL) {
			b->oom = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
}

static char *sb_finish(struct sbuf *b)
{
	if (b->s == NULL)
		return strdup("");
	return b->s;
}

/* ---- expansion ------------------------------------------------------- */

struct expander {
	struct cf_vars *vs;
	struct diag *d;
	int stack[EXPAND_DEPTH_MAX];
	int depth;
	int cond_depth;         /* conditionals inside conditionals */
	int problems;
};

static int var_cmp(const void *key, const void *elem)
{
	const struct cf_var *v = elem;
	const char *k = key;

	return strcmp(k, v->name);
}

static int var_index(const struct cf_vars *vs, const char *name, size_t n)
{
	char key[256];
	const struct cf_var *v;

	if (n >= sizeof key)
		return -1;
	memcpy(key, name, n);
	key[n] = 0;
	v = bsearch(key, vs->v, (size_t)vs->n, sizeof *vs->v, var_cmp);
	return v ? (int)(v - vs->v) : -1;
}

static void report(struct expander *ex, const struct cf_var *v,
		   const char *fmt, const char *a, const char *b)
{
	ex->problems++;
	diag_add(ex->d, DIAG_ERROR, v->file, v->line, fmt, a, b);
}

static const char *expand_var(struct expander *ex, int i);

static void undefined(struct expander *ex, const struct cf_var *v,
		      const char *name, size_t n)
{
	char nm[128];
	const char *sug;

	snprintf(nm, sizeof nm, "%.*s", (int)(n < 100 ? n : 100), name);
	sug = param_suggest(nm);
	ex->problems++;
	if (sug)
		diag_add(ex->d, DIAG_ERROR, v->file, v->line,
			 "undefined parameter \"$%s\" in the value of \"%s\"; did you mean \"$%s\"?",
			 nm, v->name, sug);
	else
		diag_add(ex->d, DIAG_ERROR, v->file, v->line,
			 "undefined parameter \"$%s\" in the value of \"%s\"; define it, or write \"$$\" for a literal \"$\"",
			 nm, v->name);
}

/* A "{...}" group at p, ending before end, blanks around it allowed:
 * its inside in *in and *inlen; returns the first byte after it, or NULL. */
static const char *braced(const char *p, const char *end, const char **in,
			  size_t *inlen)
{
	int depth = 0;

	while (p < end && isspace((unsigned char)*p))
		p++;
	if (p == end || *p != '{')
		return NULL;
	for (const char *q = p; q < end; q++) {
		if (*q == '{')
			depth++;
		else if (*q == '}' && --depth == 0) {
			*in = p + 1;
			*inlen = (size_t)(q - p - 1);
			for (q++; q < end && isspace((unsigned char)*q); q++)
				;
			return q;
		}
	}
	return NULL;
}

/* The text a conditional expands to, Postfix 3's braced forms included:
 * *text and *tlen, or false when it expands to nothing. */
static bool cond_choice(const struct dref *r, bool nonempty,
			const char **text, size_t *tlen)
{
	const char *end = r->text + r->tlen, *after;
	const char *a, *b;
	size_t alen, blen;

	after = braced(r->text, end, &a, &alen);
	if (after == end) {                     /* ${name?{a}} ${name:{a}} */
		*text = a;
		*tlen = alen;
		return nonempty == (r->op == '?');
	}
	if (r->op == '?' && after && *after == ':' &&
	    braced(after + 1, end, &b, &blen) == end) {
		*text = nonempty ? a : b;       /* ${name?{a}:{b}} */
		*tlen = nonempty ? alen : blen;
		return true;
	}
	*text = r->text;                        /* ${name?a} ${name:a} */
	*tlen = r->tlen;
	return nonempty == (r->op == '?');
}

static void expand_text(struct expander *ex, int owner, const char *s,
			const char *end, struct sbuf *out);

static void expand_cond(struct expander *ex, int owner, const struct dref *r,
			const char *val, struct sbuf *out)
{
	struct cf_var *v = &ex->vs->v[owner];
	const char *text;
	size_t tlen;

	if (!cond_choice(r, *val != 0, &text, &tlen))
		return;
	if (ex->cond_depth == EXPAND_DEPTH_MAX) {
		report(ex, v, "the value of \"%s\" nests ${name?...} deeper than %s levels; simplify it",
		       v->name, "100");
		v->broken = true;
		return;
	}
	ex->cond_depth++;
	expand_text(ex, owner, text, text + tlen, out);
	ex->cond_depth--;
}

static void expand_text(struct expander *ex, int owner, const char *s,
			const char *end, struct sbuf *out)
{
	struct cf_var *v = &ex->vs->v[owner];
	const char *next, *val;
	struct dref r;
	int j;

	while (s < end) {
		const char *dollar = memchr(s, '$', (size_t)(end - s));

		if (dollar == NULL)
			dollar = end;
		sb_add(out, s, (size_t)(dollar - s));
		if (dollar == end)
			break;
		if ((next = parse_dollar(dollar, end, &r)) == NULL) {
			ex->problems++;
			diag_add(ex->d, DIAG_ERROR, v->file, v->line,
				 "the value of \"%s\" has %s; %s",
				 v->name, r.err, r.fix);
			v->broken = true;
			return;
		}
		s = next;
		if (r.kind == DREF_DOLLAR) {
			sb_add(out, "$", 1);
			continue;
		}
		if ((j = var_index(ex->vs, r.name, r.nlen)) < 0) {
			undefined(ex, v, r.name, r.nlen);
			v->broken = true;
			continue;
		}
		val = expand_var(ex, j);
		if (r.kind == DREF_NAME)
			sb_add(out, val, strlen(val));
		else
			expand_cond(ex, owner, &r, val, out);
	}
}

static const char *quoted_names(struct expander *ex, const int *cyc, int n,
				char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = 0;
	for (int k = 1; k < n && len < size; k++)
		len += (size_t)snprintf(buf + len, size - len, "%s\"%s\"",
					k == 1 ? "" : k == n - 1 ? " and " : ", ",
					ex->vs->v[cyc[k]].name);
	return buf;
}

/* The stack from position `from` up is a cycle back to stack[from].
 * Report it once, at the member set earliest in the file, and mark every
 * member broken so it is not reported again. */
static void report_loop(struct expander *ex, int from)
{
	int cyc[EXPAND_DEPTH_MAX] = { 0 }, n = 0, start = 0;
	char names[1024];
	struct cf_var *v;

	for (int k = from; k < ex->depth; k++) {
		cyc[n] = ex->stack[k];
		v = &ex->vs->v[cyc[n]];
		v->broken = true;
		v->state |= ST_IN_LOOP;
		if (v->file && (ex->vs->v[cyc[start]].file == NULL ||
				v->line < ex->vs->v[cyc[start]].line))
			start = n;
		n++;
	}
	/* rotate so the reported parameter comes first */
	for (int k = 0; k < start; k++) {
		int first = cyc[0];

		memmove(cyc, cyc + 1, (size_t)(n - 1) * sizeof *cyc);
		cyc[n - 1] = first;
	}
	v = &ex->vs->v[cyc[0]];
	ex->problems++;
	if (n == 1)
		diag_add(ex->d, DIAG_ERROR, v->file, v->line,
			 "parameter \"%s\" refers to itself; remove \"$%s\" from its value",
			 v->name, v->name);
	else
		diag_add(ex->d, DIAG_ERROR, v->file, v->line,
			 "parameter \"%s\" refers to itself through %s; change one of them so that the chain of references ends",
			 v->name, quoted_names(ex, cyc, n, names, sizeof names));
}

static void finish_var(struct expander *ex, struct cf_var *v, struct sbuf *b)
{
	if (b->too_long)
		report(ex, v, "the value of \"%s\" grows past %s bytes when its $names are expanded; simplify it",
		       v->name, "1048576");
	else if (b->oom)
		report(ex, v, "out of memory expanding \"%s\"%s; free some memory and try again",
		       v->name, "");
	free(v->value);
	if (v->broken || b->too_long || b->oom) {
		free(b->s);
		v->value = strdup("");
	} else if (v->path && b->s && b->s[0] && b->s[0] != '/') {
		v->value = cf_path_join(ex->vs->base_dir, b->s);
		free(b->s);
	} else {
		v->value = sb_finish(b);
	}
	if (v->value == NULL)
		abort();        /* a few bytes: nothing sensible is left */
	v->state = ST_DONE | (v->state & ST_IN_LOOP);
}

/* Postfix's "raw" parameters: their $names are the agent's, expanded at
 * delivery ($user, $recipient... in luser_relay) or at reply time
 * ($rbl_code, $rbl_domain... in the rbl plugin's default_rbl_reply), so
 * the value is kept as written. */
static bool raw_param(const char *name)
{
	static const char *const raw[] = { "luser_relay", "default_rbl_reply",
					   NULL };

	for (int i = 0; raw[i]; i++)
		if (strcmp(name, raw[i]) == 0)
			return true;
	return false;
}

static const char *expand_var(struct expander *ex, int i)
{
	struct cf_var *v = &ex->vs->v[i];
	struct sbuf b = { 0 };

	if ((v->state & ST_MASK) == ST_DONE)
		return v->value;
	if ((v->state & ST_MASK) == ST_BUSY) {
		for (int k = ex->depth - 1; k >= 0; k--)
			if (ex->stack[k] == i && !(v->state & ST_IN_LOOP))
				report_loop(ex, k);
		return "";
	}
	if (ex->depth == EXPAND_DEPTH_MAX) {
		report(ex, v, "parameter \"%s\" is at the end of a chain of more than %s $name references; shorten the chain",
		       v->name, "100");
		return "";
	}
	v->state = ST_BUSY;
	ex->stack[ex->depth++] = i;
	if (raw_param(v->name))
		sb_add(&b, v->raw, strlen(v->raw));
	else
		expand_text(ex, i, v->raw, v->raw + strlen(v->raw), &b);
	ex->depth--;
	finish_var(ex, v, &b);
	return v->value;
}

int cf_expand_all(struct cf_vars *vs, struct diag *d)
{
	struct expander ex = { .vs = vs, .d = d };

	for (int i = 0; i < vs->n; i++) {
		vs->v[i].state = ST_TODO;
		vs->v[i].broken = false;
	}
	for (int i = 0; i < vs->n; i++)
		expand_var(&ex, i);
	return ex.problems;
}
