/*
 * map_pcre.c - pcre:/path, Postfix's pcre_table(5) on PCRE2.
 *
 * The table syntax (rules, if..endif, "!", $1 results, continuation
 * lines) is map_pattern.c's; this file compiles and matches one pattern.
 * Flags toggle Postfix's defaults: i (case-insensitive, on), m
 * (MULTILINE, off), s (DOTALL, on), x (EXTENDED, off), A (ANCHORED, off),
 * E (DOLLAR_ENDONLY, off), U (UNGREEDY, off); X (PCRE1's EXTRA) is
 * accepted with a warning and ignored, as Postfix does with PCRE2.
 * Another flag is an error.  Patterns and keys are bytes, not UTF-8
 * characters (no PCRE2_UTF), as in Postfix 3.7 whatever smtputf8_enable
 * says: "." matches one byte, so "/^.$/" does not match "é"; write
 * (*UTF) at the start of a pattern to match characters.  Each pattern is JIT-compiled when the library can; without
 * JIT the interpreter is used, silently.  A match that hits PCRE2's
 * limits is a temporary failure of the lookup.
 *
 * Global state: one match data block per process, sized for the largest
 * group count seen (the tables are used by one thread, map.h).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "map_pattern.h"

#define PCRE_DEFAULT	(PCRE2_CASELESS | PCRE2_DOTALL)

static pcre2_match_data *match_data;	/* shared by every pcre table */
static uint32_t match_pairs;		/* its ovector pairs */

/* The options for `flags`, or -1 after an error in w. */
static long pcre_options(const char *flags, const struct map_pattern_where *w)
{
	uint32_t opt = PCRE_DEFAULT;

	for (const char *f = flags; *f; f++) {
		switch (*f) {
		case 'i': opt ^= PCRE2_CASELESS; break;
		case 'm': opt ^= PCRE2_MULTILINE; break;
		case 's': opt ^= PCRE2_DOTALL; break;
		case 'x': opt ^= PCRE2_EXTENDED; break;
		case 'A': opt ^= PCRE2_ANCHORED; break;
		case 'E': opt ^= PCRE2_DOLLAR_ENDONLY; break;
		case 'U': opt ^= PCRE2_UNGREEDY; break;
		case 'X':
			diag_add(w->d, DIAG_WARNING, w->file, w->line,
				 "ignoring obsolete regexp option \"X\" (PCRE2 has no EXTRA); remove it");
			break;
		default:
			diag_add(w->d, DIAG_ERROR, w->file, w->line,
				 "unknown regexp option \"%c\"; the pcre options are i, m, s, x, A, E, U",
				 *f);
			return -1;
		}
	}
	return (long)opt;
}

static void *pcre_compile_one(const char *pattern, const char *flags,
			      int *ngroups, const struct map_pattern_where *w)
{
	long opt = pcre_options(flags, w);
	pcre2_code *re;
	int err;
	PCRE2_SIZE off;
	uint32_t count;

	if (opt < 0)
		return NULL;
	re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
			   (uint32_t)opt,
			   &err, &off, NULL);
	if (re == NULL) {
		PCRE2_UCHAR msg[256];

		pcre2_get_error_message(err, msg, sizeof msg);
		diag_add(w->d, DIAG_ERROR, w->file, w->line,
			 "error in regex at offset %zu: %s; fix the pattern",
			 (size_t)off, (const char *)msg);
		return NULL;
	}
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);	/* optional */
	pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &count);
	*ngroups = (int)count;
	return re;
}

/* The shared match data, with room for ngroups groups; NULL when out
 * of memory. */
static pcre2_match_data *data_for(int ngroups)
{
	uint32_t pairs = (uint32_t)ngroups + 1;

	if (match_data != NULL && match_pairs >= pairs)
		return match_data;
	if (pairs < 16)
		pairs = 16;
	pcre2_match_data_free(match_data);
	match_data = pcre2_match_data_create(pairs, NULL);
	match_pairs = match_data != NULL ? pairs : 0;
	return match_data;
}

static int pcre_match_one(void *re, const char *key, size_t len, size_t *ov,
			  int ngroups)
{
	pcre2_match_data *md = data_for(ngroups);
	PCRE2_SIZE *v;
	int rc;

	if (md == NULL)
		return -1;
	rc = pcre2_match(re, (PCRE2_SPTR)key, len, 0, 0, md, NULL);
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	if (rc < 0 && rc != PCRE2_ERROR_PARTIAL)
		return rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21 ? 0 : -1;
	if (ov == NULL)
		return 1;
	v = pcre2_get_ovector_pointer(md);
	for (int i = 0; i <= ngroups; i++) {
		bool unset = i >= rc || v[2 * i] == PCRE2_UNSET;

		ov[2 * i] = unset ? MAP_PATTERN_UNSET : v[2 * i];
		ov[2 * i + 1] = unset ? MAP_PATTERN_UNSET : v[2 * i + 1];
	}
	return 1;
}

static void pcre_free_one(void *re)
{
	pcre2_code_free(re);
}

static const struct map_pattern_ops pcre_ops = {
	.type = "pcre",
	.delimited = true,
	.substitute = true,
	.compile = pcre_compile_one,
	.match = pcre_match_one,
	.free = pcre_free_one,
};

static void *pcre_open(const char *name, struct map_source *src,
		       struct diag *d)
{
	return map_pattern_open(&pcre_ops, name, src, d);
}

const struct map_type map_type_pcre = {
	.name = "pcre",
	.flags = MAP_TYPE_PATTERN,
	.open = pcre_open,
	.lookup = map_pattern_lookup,
	.close = map_pattern_close,
};
