/*
 * map_pattern.c - the rule tables shared by pcre:, regexp: and cidr:
 * (map_pattern.h): reading, rule syntax, if..endif, $1 templates, lookup.
 *
 * Reading, as Postfix's readllines(): a line whose first non-blank
 * character is "#" and a blank line are skipped anywhere, also between a
 * rule and its continuation lines; a line starting with whitespace
 * continues the rule before it and is appended as it is (its leading
 * whitespace kept, no newline), so "/x/ a\n  b" gives "a  b"; trailing
 * whitespace and a CRLF's CR are dropped.  The line of a rule is its
 * first line.  The inline form "pcre:{ {rule-1}, {rule-2} }" (Postfix
 * 3.7) is read as a file of those lines, "line" N being the Nth rule.
 *
 * Rules, as Postfix's dict_pcre/dict_regexp/dict_cidr read them:
 *   - "if" and "endif" are words in any case, ended by a character that
 *     is not alphanumeric ("if/x/" is an if);
 *   - any number of "!" (each may be followed by whitespace) negates;
 *   - a delimited pattern starts with any character that is neither
 *     alphanumeric nor whitespace nor a backslash and ends with the same
 *     character; a backslash keeps the next character in the pattern
 *     (with its backslash), so "/a\/b/" is the pattern "a\/b";
 *   - flags are the characters right after the closing delimiter, up to
 *     whitespace; the result is the rest, outer whitespace trimmed;
 *   - for a cidr table the pattern is the first word, with no flags.
 * Errors (the table then refuses to load): no closing delimiter, a bad
 * flag or pattern (from the backend), a rule without a result, text after
 * an if pattern or after endif, an endif without an if, an if without an
 * endif (said at the if's line), a result with a bad $ reference
 * (Postfix's messages: "empty macro name", "non-numeric replacement
 * index", "out of range replacement index", "truncated macro
 * reference"), "$1" in the result of a negated rule, an unknown request.
 *
 * Lookups walk the rules in order; a false "if" jumps past its "endif";
 * a rule that does not apply to the key (a cidr rule of the other
 * address family) neither matches nor, negated, fails to match;
 * the first rule that matches (or, negated, does not) answers, with its
 * template expanded from the match's groups (a group that took no part
 * gives "").  The answer lives in the table's buffer until the next
 * lookup.  Global state: none.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "diag.h"
#include "map_pattern.h"

#define SHOW_MAX	60	/* how much of a pattern a message quotes */

enum rule_op { RULE_MATCH, RULE_IF, RULE_ENDIF };

struct rule {
	enum rule_op op;
	bool negate;
	int next_false;		/* RULE_IF: where to go when it is false */
	int ngroups;
	void *re;		/* NULL for RULE_ENDIF */
	char *result;		/* RULE_MATCH: the template */
	bool plain;		/* the result has no "$": used as it is */
	int line;
};

struct map_pattern {
	const struct map_pattern_ops *ops;
	struct rule *v;
	int n, cap;
	int maxgroups;
	size_t *ov;		/* 2 * (maxgroups + 1) */
	char *buf;		/* the last expanded result */
	size_t bufcap;
};

/* What reading one table needs. */
struct loader {
	struct map_pattern *mp;
	struct diag *d;
	const char *file;	/* for messages */
	int open_if[MAP_PATTERN_DEPTH_MAX];
	int depth;
	bool oom;
};

static void loader_error(struct loader *l, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void loader_error(struct loader *l, int line, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	diag_add(l->d, DIAG_ERROR, l->file, line, "%s",
		 text != NULL ? text : "out of memory; free some memory");
	free(text);
}

/* ---- result templates --------------------------------------------------- */

/* Walk a template: with out == NULL check it against ngroups (errors to
 * l); else append the expansion for key/ov to out (room is there: see
 * expanded_size).  Returns 0, or -1 on a bad template. */
struct expand {
	const char *key;
	const size_t *ov;
	char *out;
	size_t len;
};

static int group_ref(struct loader *l, int line, const char *name,
		     size_t n, int ngroups, struct expand *x)
{
	long idx;
	char *end;

	if (n == 0) {
		if (l != NULL)
			loader_error(l, line, "empty macro name after \"$\"; write $$ for a \"$\", or $1, ${1} for a group");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)name[i])) {
			if (l != NULL)
				loader_error(l, line, "non-numeric replacement index \"%.*s\"; write $1, ${1} or $(1) for a group, $$ for a \"$\"",
					     (int)n, name);
			return -1;
		}
	errno = 0;
	idx = strtol(name, &end, 10);
	if (idx < 1 || idx > ngroups || errno != 0) {
		if (l != NULL && ngroups == 0)
			loader_error(l, line, "out of range replacement index \"%.*s\": the pattern has no (group); add one, or write $$ for a \"$\"",
				     (int)n, name);
		else if (l != NULL) {
			char range[32];

			if (ngroups == 1)
				snprintf(range, sizeof range, "$1");
			else
				snprintf(range, sizeof range, "$1..$%d", ngroups);
			loader_error(l, line, "out of range replacement index \"%.*s\": the pattern has %d group%s; refer to %s only",
				     (int)n, name, ngroups, ngroups == 1 ? "" : "s", range);
		}
		return -1;
	}
	if (x != NULL && x->ov[2 * idx] != MAP_PATTERN_UNSET) {
		size_t len = x->ov[2 * idx + 1] - x->ov[2 * idx];

		memcpy(x->out + x->len, x->key + x->ov[2 * idx], len);
		x->len += len;
	}
	return 0;
}

static int walk_template(const char *t, int ngroups, struct loader *l,
			 int line, struct expand *x)
{
	for (const char *p = t; *p; p++) {
		const char *name;
		size_t n;

		if (*p != '$') {
			if (x != NULL)
				x->out[x->len++] = *p;
			continue;
		}
		p++;
		if (*p == '$') {
			if (x != NULL)
				x->out[x->len++] = '$';
			continue;
		}
		if (*p == '{' || *p == '(') {
			const char *close = strchr(p, *p == '{' ? '}' : ')');

			if (close == NULL) {
				if (l != NULL)
					loader_error(l, line, "truncated macro reference \"%.*s\"; close it with \"%c\"",
						     SHOW_MAX, p - 1, *p == '{' ? '}' : ')');
				return -1;
			}
			name = p + 1;
			n = (size_t)(close - name);
			p = close;
		} else {
			name = p;
			for (n = 0; isalnum((unsigned char)p[n]) || p[n] == '_'; n++)
				;
			if (n > 0)	/* the loop's p++ steps past the name */
				p += n - 1;
		}
		if (group_ref(l, line, name, n, ngroups, x) < 0)
			return -1;
	}
	if (x != NULL)
		x->out[x->len] = 0;
	return 0;
}

/* An upper bound of the expansion's length: every byte of the template
 * may at most become the whole key. */
static size_t expanded_size(const char *t, size_t keylen)
{
	size_t refs = 0, n = strlen(t);

	for (const char *p = t; *p; p++)
		if (*p == '$')
			refs++;
	return n + refs * keylen + 1;
}

/* ---- rules -------------------------------------------------------------- */

static struct rule *add_rule(struct loader *l, enum rule_op op, int line)
{
	struct map_pattern *mp = l->mp;

	if (mp->n == mp->cap) {
		int cap = mp->cap ? mp->cap * 2 : 64;
		struct rule *v = realloc(mp->v, (size_t)cap * sizeof *v);

		if (v == NULL) {
			l->oom = true;
			return NULL;
		}
		mp->v = v;
		mp->cap = cap;
	}
	memset(&mp->v[mp->n], 0, sizeof mp->v[0]);
	mp->v[mp->n].op = op;
	mp->v[mp->n].line = line;
	return &mp->v[mp->n++];
}

static bool is_word(const char *p, const char *word)
{
	size_t n = strlen(word);

	return strncasecmp(p, word, n) == 0 && !isalnum((unsigned char)p[n]);
}

/* Cut the pattern (and flags) at *pp; NULL after an error. */
static char *cut_pattern(struct loader *l, int line, char **pp, char **flags)
{
	char *p = *pp, *start, delim;

	*flags = p + strlen(p);		/* "" */
	if (!l->mp->ops->delimited) {
		start = p;
		p += strcspn(p, " \t");
		if (*p)
			*p++ = 0;
		*pp = p;
		return start;
	}
	delim = *p;
	if (delim == 0 || isalnum((unsigned char)delim) || isspace((unsigned char)delim)
	    || delim == '\\') {
		loader_error(l, line, "unrecognized request \"%.*s\"; write /pattern/flags result, if /pattern/ or endif",
			     SHOW_MAX, p);
		return NULL;
	}
	start = ++p;
	while (*p && *p != delim)
		p += (*p == '\\' && p[1]) ? 2 : 1;
	if (*p != delim) {
		loader_error(l, line, "no closing regexp delimiter \"%c\"; end the pattern with \"%c\"",
			     delim, delim);
		return NULL;
	}
	*p++ = 0;
	*flags = p;
	p += strcspn(p, " \t");
	if (*p)
		*p++ = 0;
	*pp = p;
	return start;
}

static char *skip_space(char *p)
{
	return p + strspn(p, " \t");
}

/* "!"s before a pattern, each maybe followed by whitespace. */
static bool negations(char **pp)
{
	bool neg = false;

	while (**pp == '!') {
		neg = !neg;
		*pp = skip_space(*pp + 1);
	}
	return neg;
}

static void compile_into(struct loader *l, struct rule *r, const char *re,
			 const char *flags)
{
	struct map_pattern_where w = { .d = l->d, .file = l->file, .line = r->line };

	r->re = l->mp->ops->compile(re, flags, &r->ngroups, &w);
	if (r->re != NULL && r->ngroups > l->mp->maxgroups)
		l->mp->maxgroups = r->ngroups;
}

static void parse_endif(struct loader *l, char *p, int line)
{
	p = skip_space(p + 5);
	if (*p)
		loader_error(l, line, "text after endif: \"%.*s\"; remove it", SHOW_MAX, p);
	if (l->depth == 0) {
		loader_error(l, line, "endif without a matching if; remove it, or add the if");
		return;
	}
	if (add_rule(l, RULE_ENDIF, line) != NULL)
		l->mp->v[l->open_if[--l->depth]].next_false = l->mp->n;
}

static void parse_if(struct loader *l, char *p, int line)
{
	char *re, *flags;
	struct rule *r;
	bool neg;

	p = skip_space(p + 2);
	neg = negations(&p);
	if ((re = cut_pattern(l, line, &p, &flags)) == NULL)
		return;
	p = skip_space(p);
	if (*p)		/* an error, but the if still counts for its endif */
		loader_error(l, line, "text after the if pattern: \"%.*s\"; remove it (an if line holds only the pattern)",
			     SHOW_MAX, p);
	if (l->depth == MAP_PATTERN_DEPTH_MAX) {
		loader_error(l, line, "if nested more than %d deep; flatten the table",
			     MAP_PATTERN_DEPTH_MAX);
		return;
	}
	if ((r = add_rule(l, RULE_IF, line)) == NULL)
		return;
	r->negate = neg;
	l->open_if[l->depth++] = l->mp->n - 1;
	compile_into(l, r, re, flags);
}

static void parse_match(struct loader *l, char *p, int line)
{
	char *re, *flags, *result;
	struct rule *r;
	bool neg;
	int errors = l->d->errors;

	neg = negations(&p);
	if ((re = cut_pattern(l, line, &p, &flags)) == NULL)
		return;
	result = skip_space(p);
	if (*result == 0) {
		loader_error(l, line, "the pattern has no result; write it after the pattern, or remove the line");
		return;
	}
	if ((r = add_rule(l, RULE_MATCH, line)) == NULL)
		return;
	r->negate = neg;
	compile_into(l, r, re, flags);
	if (r->re == NULL || l->d->errors > errors)
		return;
	r->plain = !l->mp->ops->substitute || strchr(result, '$') == NULL;
	if (!r->plain && neg) {
		for (const char *s = result; (s = strchr(s, '$')) != NULL; s += 2)
			if (s[1] != '$') {
				loader_error(l, line, "$number in the result of a negated pattern (a pattern that did not match has no groups); remove it, or write $$ for a \"$\"");
				return;
			}
	}
	if (!r->plain)
		walk_template(result, r->ngroups, l, line, NULL);
	if ((r->result = strdup(result)) == NULL)
		l->oom = true;
}

/* One logical line (trailing whitespace gone), modified in place. */
static void parse_rule(struct loader *l, char *text, int line)
{
	if (is_word(text, "if"))
		parse_if(l, text, line);
	else if (is_word(text, "endif"))
		parse_endif(l, text, line);
	else
		parse_match(l, text, line);
}

/* ---- reading ------------------------------------------------------------ */

struct logical {
	char *text;
	size_t len, cap;
	int first;		/* its first line; 0 when empty */
	bool too_long;		/* said so: the rest of it is dropped */
};

static void flush_logical(struct loader *l, struct logical *lg)
{
	if (lg->first == 0)
		return;
	if (lg->too_long) {
		lg->len = 0;
		lg->first = 0;
		lg->too_long = false;
		return;
	}
	while (lg->len > 0 && isspace((unsigned char)lg->text[lg->len - 1]))
		lg->text[--lg->len] = 0;
	parse_rule(l, lg->text, lg->first);
	lg->len = 0;
	lg->first = 0;
}

static void append_logical(struct loader *l, struct logical *lg,
			   const char *line, size_t n, int lineno)
{
	if (lg->len + n >= MAP_PATTERN_LINE_MAX) {
		if (!lg->too_long)
			loader_error(l, lg->first ? lg->first : lineno,
				     "this rule with its continuation lines is longer than %d bytes; shorten it",
				     MAP_PATTERN_LINE_MAX);
		lg->too_long = true;	/* its other lines are dropped quietly */
		return;
	}
	if (lg->len + n + 1 > lg->cap) {
		size_t cap = (lg->len + n + 1) * 2;
		char *t = realloc(lg->text, cap);

		if (t == NULL) {
			l->oom = true;
			return;
		}
		lg->text = t;
		lg->cap = cap;
	}
	memcpy(lg->text + lg->len, line, n);
	lg->len += n;
	lg->text[lg->len] = 0;
}

/* One physical line (no newline) of n bytes. */
static void physical_line(struct loader *l, struct logical *lg, char *line,
			  size_t n, int lineno)
{
	const char *p = line + strspn(line, " \t\r\f\v");

	if (n > 0 && line[n - 1] == '\r')
		line[--n] = 0;
	if (memchr(line, 0, n) != NULL) {
		loader_error(l, lineno, "line contains a NUL byte; is this a text file?");
		return;
	}
	if (*p == 0 || *p == '#')
		return;
	if (isspace((unsigned char)line[0])) {
		if (lg->first == 0) {
			loader_error(l, lineno, "line starts with whitespace but there is no rule before it to continue; remove the leading whitespace");
			return;
		}
		append_logical(l, lg, line, n, lineno);
		return;
	}
	flush_logical(l, lg);
	lg->first = lineno;
	append_logical(l, lg, line, n, lineno);
}

static int read_file(struct loader *l, const char *label, const char *path,
		     struct stat *st)
{
	FILE *fp = fopen(path, "r");
	struct logical lg = { 0 };
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0;

	if (fp == NULL || fstat(fileno(fp), st) < 0) {
		diag_add(l->d, DIAG_ERROR, label, 0,
			 "cannot read %s: %s; check the file name and its permissions",
			 path, strerror(errno));
		if (fp != NULL)
			fclose(fp);
		return -1;
	}
	if (!S_ISREG(st->st_mode) || st->st_size > MAP_PATTERN_FILE_MAX) {
		diag_add(l->d, DIAG_ERROR, label, 0,
			 S_ISREG(st->st_mode) ? "%s is larger than %lld bytes; split it"
			 : "%s is not a regular file; name a text file",
			 path, MAP_PATTERN_FILE_MAX);
		fclose(fp);
		return -1;
	}
	while (!l->oom && (n = getline(&line, &cap, fp)) >= 0) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = 0;
		physical_line(l, &lg, line, (size_t)n, lineno);
	}
	if (ferror(fp))
		diag_add(l->d, DIAG_ERROR, label, 0, "cannot read %s: %s; check the file",
			 path, strerror(errno));
	flush_logical(l, &lg);
	free(line);
	free(lg.text);
	fclose(fp);
	return 0;
}

/* "{ {rule-1}, {rule-2} }": each item a line. */
static int read_inline(struct loader *l, const char *name)
{
	size_t n = strlen(name);
	struct logical lg = { 0 };
	char *inner, **items;

	if (n < 2 || name[n - 1] != '}') {
		loader_error(l, 0, "the \"{\" has no closing \"}\"; write %s:{ {rule}, {rule} }",
			     l->mp->ops->type);
		return -1;
	}
	if ((inner = strndup(name + 1, n - 2)) == NULL
	    || (items = config_split_list(inner)) == NULL) {
		free(inner);
		l->oom = true;
		return -1;
	}
	free(inner);
	for (int i = 0; items[i] != NULL && !l->oom; i++) {
		char *it = items[i];
		size_t len = strlen(it);

		if (it[0] == '{' && len >= 2 && it[len - 1] == '}') {
			it[len - 1] = 0;
			it = skip_space(it + 1);
		}
		/* each item is a whole line: no continuation */
		flush_logical(l, &lg);
		lg.first = i + 1;
		append_logical(l, &lg, it, strlen(it), i + 1);
	}
	flush_logical(l, &lg);
	if (items[0] == NULL)
		loader_error(l, 0, "the table is empty; write %s:{ {rule}, {rule} }",
			     l->mp->ops->type);
	free(lg.text);
	cfg_list_free(items);
	return 0;
}

/* ---- the map_type functions -------------------------------------------- */

void map_pattern_close(void *state)
{
	struct map_pattern *mp = state;

	for (int i = 0; i < mp->n; i++) {
		if (mp->v[i].re != NULL)
			mp->ops->free(mp->v[i].re);
		free(mp->v[i].result);
	}
	free(mp->v);
	free(mp->ov);
	free(mp->buf);
	free(mp);
}

void *map_pattern_open(const struct map_pattern_ops *ops, const char *name,
		       struct map_source *src, struct diag *d)
{
	struct map_pattern *mp = calloc(1, sizeof *mp);
	struct loader l = { .mp = mp, .d = d, .file = name };
	char label[PATH_MAX + 32];
	int errors = d->errors;

	if (name[0] == '{')	/* an inline table is quoted, not all of it */
		snprintf(label, sizeof label, "%s:%.*s%s", ops->type, SHOW_MAX,
			 name, strlen(name) > SHOW_MAX ? "..." : "");
	else
		snprintf(label, sizeof label, "%s:%s", ops->type, name);
	if (mp == NULL) {
		diag_add(d, DIAG_ERROR, label, 0, "out of memory opening the table; free some memory");
		return NULL;
	}
	mp->ops = ops;
	if (name[0] == '{') {
		l.file = label;
		read_inline(&l, name);
	} else if (read_file(&l, label, name, &src->st) == 0
		   && (src->path = strdup(name)) == NULL)
		l.oom = true;
	for (int i = 0; i < l.depth; i++)
		loader_error(&l, mp->v[l.open_if[i]].line,
			     "if without a matching endif; add the endif");
	if (!l.oom && (mp->ov = calloc(2 * ((size_t)mp->maxgroups + 1), sizeof *mp->ov)) == NULL)
		l.oom = true;
	if (l.oom)
		diag_add(d, DIAG_ERROR, label, 0, "out of memory reading the table; free some memory");
	if (d->errors == errors)
		return mp;
	free(src->path);
	src->path = NULL;
	map_pattern_close(mp);
	return NULL;
}

/* The expanded result of rule r into mp->buf; NULL when out of memory. */
static const char *expand(struct map_pattern *mp, const struct rule *r,
			  const char *key, size_t keylen)
{
	size_t need = expanded_size(r->result, keylen);
	struct expand x = { .key = key, .ov = mp->ov };

	if (need > mp->bufcap) {
		char *b = realloc(mp->buf, need);

		if (b == NULL)
			return NULL;
		mp->buf = b;
		mp->bufcap = need;
	}
	x.out = mp->buf;
	walk_template(r->result, r->ngroups, NULL, 0, &x);
	return mp->buf;
}

enum map_status map_pattern_lookup(void *state, const char *key,
				   const char **value)
{
	struct map_pattern *mp = state;
	size_t len = strlen(key);
	int i = 0;

	while (i < mp->n) {
		const struct rule *r = &mp->v[i];
		bool want_groups = r->op == RULE_MATCH && !r->plain;
		int m;

		if (r->op == RULE_ENDIF) {
			i++;
			continue;
		}
		m = mp->ops->match(r->re, key, len, want_groups ? mp->ov : NULL,
				   r->ngroups);
		if (m < 0)
			return MAP_TEMPFAIL;
		if (r->op == RULE_IF) {
			i = m != MAP_PATTERN_NA && (m != 0) != r->negate
			    ? i + 1 : r->next_false;
			continue;
		}
		if (m != MAP_PATTERN_NA && (m != 0) != r->negate) {
			*value = r->plain ? r->result : expand(mp, r, key, len);
			return *value != NULL ? MAP_FOUND : MAP_TEMPFAIL;
		}
		i++;
	}
	return MAP_NOTFOUND;
}
