/*
 * diag.h - collected configuration diagnostics.
 *
 * Parsers never print: they add "file:line: problem; fix" entries here, and
 * the caller decides (sluice check prints all and exits 1 on any error;
 * sluice run prints them and refuses to start on errors; reload keeps the
 * old configuration).
 */
#ifndef SLUICE_DIAG_H
#define SLUICE_DIAG_H

#include <stdio.h>

enum diag_level { DIAG_ERROR, DIAG_WARNING };

struct diag_entry {
	enum diag_level level;
	char *text;            /* "main.cf:12: unknown parameter ...; ..." */
};

struct diag {
	struct diag_entry *v;
	int n, cap;
	int errors;
};

void diag_init(struct diag *d);
void diag_free(struct diag *d);
/* file may be NULL (no location); line 0 means "no line". */
void diag_add(struct diag *d, enum diag_level level, const char *file,
	      int line, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Print every entry, one per line ("warning: " before warnings). */
void diag_print(const struct diag *d, FILE *fp);

#endif
