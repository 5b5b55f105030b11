/*
 * map_regexp.c - regexp:/path, Postfix's regexp_table(5): the pcre table
 * syntax with POSIX regular expressions (regcomp(3)).
 *
 * The table syntax is map_pattern.c's; this file compiles and matches one
 * pattern.  Flags toggle Postfix's defaults: i (REG_ICASE, on), x
 * (REG_EXTENDED, on: "x" gives basic regular expressions), m
 * (REG_NEWLINE, off); any other flag is an error.  A key holding a NUL
 * cannot reach here (keys are C strings).  Global state: none.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "map_pattern.h"

#define REGEXP_DEFAULT	(REG_ICASE | REG_EXTENDED)

struct regexp_one {
	regex_t re;
	regmatch_t *m;		/* nsub + 1 */
};

static int regexp_options(const char *flags, const struct map_pattern_where *w)
{
	int opt = REGEXP_DEFAULT;

	for (const char *f = flags; *f; f++) {
		switch (*f) {
		case 'i': opt ^= REG_ICASE; break;
		case 'x': opt ^= REG_EXTENDED; break;
		case 'm': opt ^= REG_NEWLINE; break;
		default:
			diag_add(w->d, DIAG_ERROR, w->file, w->line,
				 "unknown regexp option \"%c\"; the regexp options are i, m, x",
				 *f);
			return -1;
		}
	}
	return opt;
}

static void *regexp_compile_one(const char *pattern, const char *flags,
				int *ngroups, const struct map_pattern_where *w)
{
	int opt = regexp_options(flags, w), err;
	struct regexp_one *r;

	if (opt < 0)
		return NULL;
	if ((r = calloc(1, sizeof *r)) == NULL) {
		diag_add(w->d, DIAG_ERROR, w->file, w->line, "out of memory; free some memory");
		return NULL;
	}
	if ((err = regcomp(&r->re, pattern, opt)) != 0) {
		char msg[256];

		regerror(err, &r->re, msg, sizeof msg);
		diag_add(w->d, DIAG_ERROR, w->file, w->line,
			 "error in regex \"%.60s\": %s; fix the pattern", pattern, msg);
		free(r);
		return NULL;
	}
	if ((r->m = calloc(r->re.re_nsub + 1, sizeof *r->m)) == NULL) {
		diag_add(w->d, DIAG_ERROR, w->file, w->line, "out of memory; free some memory");
		regfree(&r->re);
		free(r);
		return NULL;
	}
	*ngroups = (int)r->re.re_nsub;
	return r;
}

static int regexp_match_one(void *state, const char *key, size_t len,
			    size_t *ov, int ngroups)
{
	struct regexp_one *r = state;
	size_t n = ov != NULL ? (size_t)ngroups + 1 : 0;
	int rc = regexec(&r->re, key, n, n ? r->m : NULL, 0);

	if (rc == REG_NOMATCH)
		return 0;
	if (rc != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		bool unset = r->m[i].rm_so < 0;

		ov[2 * i] = unset ? MAP_PATTERN_UNSET : (size_t)r->m[i].rm_so;
		ov[2 * i + 1] = unset ? MAP_PATTERN_UNSET : (size_t)r->m[i].rm_eo;
	}
	return 1;
}

static void regexp_free_one(void *state)
{
	struct regexp_one *r = state;

	regfree(&r->re);
	free(r->m);
	free(r);
}

static const struct map_pattern_ops regexp_ops = {
	.type = "regexp",
	.delimited = true,
	.substitute = true,
	.compile = regexp_compile_one,
	.match = regexp_match_one,
	.free = regexp_free_one,
};

static void *regexp_open(const char *name, struct map_source *src,
			 struct diag *d)
{
	return map_pattern_open(&regexp_ops, name, src, d);
}

const struct map_type map_type_regexp = {
	.name = "regexp",
	.flags = MAP_TYPE_PATTERN,
	.open = regexp_open,
	.lookup = map_pattern_lookup,
	.close = map_pattern_close,
};
