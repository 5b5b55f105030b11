/*
 * map_pattern.h - the rule tables behind pcre:, regexp: and cidr:, with
 * Postfix's syntax (pcre_table(5), regexp_table(5), cidr_table(5)).
 *
 * map_pattern.c owns everything the three types share: reading the file
 * (or the inline form "pcre:{ {rule}, {rule} }") into logical lines with
 * Postfix's continuation rules, the rule shapes
 *
 *	PATTERN result		!PATTERN result
 *	if PATTERN		if !PATTERN		endif
 *
 * with if..endif nesting, the result templates with $1, ${1}, $(1) and
 * $$ (checked against the pattern's groups when the table is read), the
 * first-match-wins lookup, and every message as "FILE:LINE: what; fix".
 * A backend only compiles one pattern and matches one key against it.
 *
 * A table with any error refuses to load (Postfix warns and skips the
 * rule; sluice will not run with part of a table).  Patterns are compiled
 * once per load; a lookup walks the rules in order, as Postfix does.
 */
#ifndef SLUICE_MAP_PATTERN_H
#define SLUICE_MAP_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

#include "map.h"

struct diag;

/* Where a pattern came from, for the backend's messages. */
struct map_pattern_where {
	struct diag *d;
	const char *file;	/* "/etc/x.pcre", or "pcre:{...}" inline */
	int line;
};

/* A group of a match: [so, eo) in the key; so == MAP_PATTERN_UNSET when
 * the group took no part in the match. */
#define MAP_PATTERN_UNSET	((size_t)-1)
#define MAP_PATTERN_NA		2

struct map_pattern_ops {
	const char *type;	/* "pcre", for messages */
	/* true: "/re/flags" with any non-alphanumeric delimiter (pcre,
	 * regexp); false: the pattern is one word (cidr), no flags. */
	bool delimited;
	/* true: results are templates with $1 (pcre, regexp); false: the
	 * result is taken as it is (cidr). */
	bool substitute;
	/* Compile `pattern` with `flags` (the text after the closing
	 * delimiter; "" for cidr).  Returns the compiled pattern with its
	 * number of capture groups in *ngroups, or NULL after adding the
	 * error to w->d (warnings may be added either way). */
	void *(*compile)(const char *pattern, const char *flags, int *ngroups,
			 const struct map_pattern_where *w);
	/* Match `key` (len bytes).  With ov != NULL, fill ov[2*i], ov[2*i+1]
	 * for groups 0..ngroups (ov has room for them).  Returns 1 on a
	 * match, 0 on none, MAP_PATTERN_NA when the rule does not apply to
	 * the key at all (a cidr rule of the other address family: neither
	 * the rule nor its negation matches, and an if skips its block), -1
	 * when the match itself failed (a resource limit: the lookup is a
	 * temporary failure). */
	int (*match)(void *re, const char *key, size_t len, size_t *ov,
		     int ngroups);
	void (*free)(void *re);
};

/* The map_type open/lookup/close of a pattern type: `name` is the file,
 * or "{ {rule}, ... }" for the inline form. */
void *map_pattern_open(const struct map_pattern_ops *ops, const char *name,
		       struct map_source *src, struct diag *d);
enum map_status map_pattern_lookup(void *state, const char *key,
				   const char **value);
void map_pattern_close(void *state);

/* Longest logical line (a rule with its continuation lines). */
#define MAP_PATTERN_LINE_MAX	(1024 * 1024)
/* Largest table file: pattern tables are read into memory. */
#define MAP_PATTERN_FILE_MAX	(64LL * 1024 * 1024)
/* Deepest if..endif nesting. */
#define MAP_PATTERN_DEPTH_MAX	100

#endif
