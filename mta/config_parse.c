/*
 * config_parse.c - read files in Postfix's configuration syntax.
 *
 * Postfix's rules (readlline(3)), which main.cf and master.cf share:
 *   - blank lines, and lines whose first non-blank character is "#", are
 *     ignored wherever they are (so a comment may sit between a setting
 *     and its continuation lines); "#" elsewhere is part of the value;
 *   - a line starting with whitespace continues the previous logical
 *     line; sluice joins the pieces with one space;
 *   - trailing whitespace (and a CR of a CRLF file) is dropped.
 *
 * cf_read_main() then splits each logical line of main.cf into
 * "name = value" and keeps where it came from, duplicates included, so
 * that `sluice check` can say which setting wins.  It also spots an
 * indented "name = value" line: by the rules above it continues the
 * setting before it, which is almost never what the writer meant.
 *
 * Input limits: a physical line of at most CF_LINE_MAX bytes, a logical
 * line of at most CF_LOGICAL_MAX bytes; longer ones are reported and
 * skipped, never truncated silently.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define CF_LINE_MAX	(64 * 1024)
#define CF_LOGICAL_MAX	(1024 * 1024)
#define CF_SHOW_MAX	60		/* how much of a bad name to quote */

struct logical {
	char *buf;
	size_t len, cap;
	int first, last;
	bool active;
};

enum cf_line_kind cf_classify_line(const char *line)
{
	const char *p = line;

	while (*p && isspace((unsigned char)*p))
		p++;
	if (*p == 0)
		return CFL_BLANK;
	if (*p == '#')
		return CFL_COMMENT;
	return p == line ? CFL_START : CFL_CONT;
}

static void chomp(char *line)
{
	size_t n = strlen(line);

	while (n > 0 && isspace((unsigned char)line[n - 1]))
		line[--n] = 0;
}

static const char *skip_space(const char *p)
{
	while (*p && isspace((unsigned char)*p))
		p++;
	return p;
}

static int logical_append(struct logical *lb, const char *text, bool space)
{
	size_t add = strlen(text) + (space ? 1 : 0);

	if (lb->len + add + 1 > CF_LOGICAL_MAX)
		return -1;
	if (lb->len + add + 1 > lb->cap) {
		size_t cap = lb->cap ? lb->cap : 256;
		char *buf;

		while (cap < lb->len + add + 1)
			cap *= 2;
		if ((buf = realloc(lb->buf, cap)) == NULL)
			return -1;
		lb->buf = buf;
		lb->cap = cap;
	}
	if (space)
		lb->buf[lb->len++] = ' ';
	memcpy(lb->buf + lb->len, text, strlen(text) + 1);
	lb->len += strlen(text);
	return 0;
}

static void logical_flush(struct logical *lb, const struct cf_reader *r)
{
	if (lb->active)
		r->logical(lb->buf, lb->first, lb->last, r->arg);
	lb->active = false;
	lb->len = 0;
}

static void logical_start(struct logical *lb, const char *path, int lineno,
			  const char *text, struct diag *d)
{
	lb->len = 0;
	lb->first = lb->last = lineno;
	lb->active = logical_append(lb, text, false) == 0;
	if (!lb->active)
		diag_add(d, DIAG_ERROR, path, lineno,
			 "out of memory reading this line; free some memory and try again");
}

/* One physical line that is neither blank nor a comment.  *skip is set
 * while the continuation lines of a dropped logical line go by. */
static void physical_line(struct logical *lb, const char *path, int lineno,
			  char *line, bool *skip, struct diag *d,
			  const struct cf_reader *r)
{
	if (cf_classify_line(line) == CFL_START) {
		logical_flush(lb, r);
		*skip = false;
		logical_start(lb, path, lineno, line, d);
		return;
	}
	if (*skip)
		return;
	if (!lb->active) {
		diag_add(d, DIAG_ERROR, path, lineno,
			 "line starts with whitespace but there is no setting before it to continue; remove the leading whitespace");
		*skip = true;
		return;
	}
	if (r->continued)
		r->continued(line, lineno, lb->buf, lb->first, r->arg);
	if (logical_append(lb, skip_space(line), true) < 0) {
		diag_add(d, DIAG_ERROR, path, lb->first,
			 "this setting with its continuation lines is longer than %d bytes; shorten it (it is ignored)",
			 CF_LOGICAL_MAX);
		lb->active = false;
		*skip = true;
		return;
	}
	lb->last = lineno;
}

/* An over-long line or one with a NUL byte: report it, and drop the
 * logical line it starts or continues. */
static bool bad_line(struct logical *lb, const char *path, int lineno,
		     const char *line, size_t n, bool *skip, struct diag *d,
		     const struct cf_reader *r)
{
	const char *why;

	if (n > CF_LINE_MAX)
		why = "line is longer than 65536 bytes; shorten it (it is ignored)";
	else if (memchr(line, 0, n) != NULL)
		why = "line contains a NUL byte; is this a text file? (the line is ignored)";
	else
		return false;
	diag_add(d, DIAG_ERROR, path, lineno, "%s", why);
	switch (cf_classify_line(line)) {
	case CFL_START:
		logical_flush(lb, r);
		*skip = true;
		break;
	case CFL_CONT:
		lb->active = false;
		*skip = true;
		break;
	default:
		break;
	}
	return true;
}

int cf_logical_lines(const char *path, struct diag *d,
		     const struct cf_reader *r)
{
	struct logical lb = { 0 };
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0, err = 0;
	bool skip = false;
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		return -1;
	while ((n = getline(&line, &cap, fp)) >= 0) {
		lineno++;
		if (bad_line(&lb, path, lineno, line, (size_t)n, &skip, d, r))
			continue;
		chomp(line);
		switch (cf_classify_line(line)) {
		case CFL_BLANK:
		case CFL_COMMENT:
			break;
		default:
			physical_line(&lb, path, lineno, line, &skip, d, r);
		}
	}
	if (ferror(fp))
		err = errno ? errno : EIO;
	else
		logical_flush(&lb, r);
	free(line);
	free(lb.buf);
	fclose(fp);
	errno = err;
	return err ? -1 : 0;
}

/* ---- main.cf --------------------------------------------------------- */

struct main_reader {
	struct cf_file *f;
	struct diag *d;
	enum diag_level lint;
};

static bool name_char(int c)
{
	return isalnum(c) || c == '_';
}

/* The length of a leading "name" followed by optional blanks and "=",
 * or 0. */
static size_t assignment_name(const char *p)
{
	size_t n = 0;

	while (name_char((unsigned char)p[n]))
		n++;
	if (n == 0)
		return 0;
	return *skip_space(p + n) == '=' ? n : 0;
}

static void main_continued(const char *line, int lineno, const char *start,
			   int start_line, void *arg)
{
	struct main_reader *mr = arg;
	const char *p = skip_space(line);
	size_t n = assignment_name(p);
	size_t sn = strcspn(start, " \t=");

	if (n == 0)
		return;
	diag_add(mr->d, mr->lint, mr->f->path, lineno,
		 "this line starts with whitespace, so it continues \"%.*s\" from line %d instead of setting \"%.*s\"; remove the leading whitespace if it is a new setting",
		 (int)(sn > CF_SHOW_MAX ? CF_SHOW_MAX : sn), start, start_line,
		 (int)n, p);
}

static int add_setting(struct cf_file *f, const char *name, size_t nlen,
		       const char *value, int first, int last)
{
	struct cf_setting *s;

	if (f->n == f->cap) {
		int cap = f->cap ? f->cap * 2 : 32;
		struct cf_setting *v = realloc(f->v, (size_t)cap * sizeof *v);

		if (v == NULL)
			return -1;
		f->v = v;
		f->cap = cap;
	}
	s = &f->v[f->n];
	s->name = strndup(name, nlen);
	s->value = strdup(value);
	if (s->name == NULL || s->value == NULL) {
		free(s->name);
		free(s->value);
		return -1;
	}
	s->line = first;
	s->last_line = last;
	f->n++;
	return 0;
}

/* Letters, digits and "_"; a name may start with a digit, as Postfix's
 * 2bounce_notice_recipient does. */
static bool valid_name(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!name_char((unsigned char)p[i]))
			return false;
	return n > 0;
}

static void main_logical(const char *text, int first, int last, void *arg)
{
	struct main_reader *mr = arg;
	const char *path = mr->f->path;
	size_t n = strcspn(text, " \t=");
	const char *p = skip_space(text + n);
	int show = (int)(n > CF_SHOW_MAX ? CF_SHOW_MAX : n);

	if (n == 0) {
		diag_add(mr->d, DIAG_ERROR, path, first,
			 "missing parameter name before \"=\"; write \"name = value\"");
	} else if (*p != '=') {
		diag_add(mr->d, DIAG_ERROR, path, first,
			 "missing \"=\" after \"%.*s\"; write \"name = value\"",
			 show, text);
	} else if (!valid_name(text, n)) {
		diag_add(mr->d, DIAG_ERROR, path, first,
			 "\"%.*s\" is not a parameter name; names are letters, digits and \"_\"",
			 show, text);
	} else if (add_setting(mr->f, text, n, skip_space(p + 1), first,
			       last) < 0) {
		diag_add(mr->d, DIAG_ERROR, path, first,
			 "out of memory reading this setting; free some memory and try again");
	}
}

int cf_read_main(const char *path, struct cf_file *f, struct diag *d,
		 enum diag_level lint)
{
	struct main_reader mr = { f, d, lint };
	struct cf_reader r = { main_logical, main_continued, &mr };

	memset(f, 0, sizeof *f);
	if ((f->path = strdup(path)) == NULL)
		return -1;
	if (cf_logical_lines(path, d, &r) < 0) {
		f->unreadable = true;
		return -1;
	}
	return 0;
}

void cf_file_free(struct cf_file *f)
{
	for (int i = 0; i < f->n; i++) {
		free(f->v[i].name);
		free(f->v[i].value);
	}
	free(f->v);
	free(f->path);
	memset(f, 0, sizeof *f);
}

const struct cf_setting *cf_last(const struct cf_file *f, const char *name)
{
	for (int i = f->n - 1; i >= 0; i--)
		if (strcmp(f->v[i].name, name) == 0)
			return &f->v[i];
	return NULL;
}
