/*
 * diag.c - collected configuration diagnostics (see diag.h).
 *
 * Each entry is one finished line, "file:line: problem; fix", owned by the
 * collection.  The promises:
 *   - an entry is never lost: when memory runs out the entry is replaced
 *     by a fixed "out of memory" text, and errors are still counted;
 *   - the same text at the same level is kept once, so a problem in
 *     main.cf that shows again in every listener's resolved copy is
 *     reported once;
 *   - entries print in the order they were added.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

static char oom_text[] = "out of memory while collecting diagnostics";

void diag_init(struct diag *d)
{
	d->v = NULL;
	d->n = d->cap = 0;
	d->errors = 0;
}

void diag_free(struct diag *d)
{
	for (int i = 0; i < d->n; i++)
		if (d->v[i].text != oom_text)
			free(d->v[i].text);
	free(d->v);
	diag_init(d);
}

static char *diag_format(const char *file, int line, const char *fmt,
			 va_list ap)
{
	char *msg, *text;
	int rc;

	if (vasprintf(&msg, fmt, ap) < 0)
		return NULL;
	if (file == NULL)
		return msg;
	if (line > 0)
		rc = asprintf(&text, "%s:%d: %s", file, line, msg);
	else
		rc = asprintf(&text, "%s: %s", file, msg);
	free(msg);
	return rc < 0 ? NULL : text;
}

static bool diag_seen(const struct diag *d, enum diag_level level,
		      const char *text)
{
	for (int i = 0; i < d->n; i++)
		if (d->v[i].level == level && strcmp(d->v[i].text, text) == 0)
			return true;
	return false;
}

static int diag_grow(struct diag *d)
{
	int cap = d->cap ? d->cap * 2 : 16;
	struct diag_entry *v = realloc(d->v, (size_t)cap * sizeof *v);

	if (v == NULL)
		return -1;
	d->v = v;
	d->cap = cap;
	return 0;
}

void diag_add(struct diag *d, enum diag_level level, const char *file,
	      int line, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = diag_format(file, line, fmt, ap);
	va_end(ap);
	if (text == NULL)
		text = oom_text;
	if (diag_seen(d, level, text)) {
		if (text != oom_text)
			free(text);
		return;
	}
	if (level == DIAG_ERROR)
		d->errors++;
	if (d->n == d->cap && diag_grow(d) < 0) {
		/* Keep the count; overwrite the last entry with the fact. */
		if (text != oom_text)
			free(text);
		if (d->n > 0 && d->v[d->n - 1].text != oom_text) {
			free(d->v[d->n - 1].text);
			d->v[d->n - 1].text = oom_text;
			d->v[d->n - 1].level = DIAG_ERROR;
		}
		return;
	}
	d->v[d->n].level = level;
	d->v[d->n].text = text;
	d->n++;
}

void diag_print(const struct diag *d, FILE *fp)
{
	for (int i = 0; i < d->n; i++)
		fprintf(fp, "%s%s\n",
			d->v[i].level == DIAG_WARNING ? "warning: " : "",
			d->v[i].text);
}
