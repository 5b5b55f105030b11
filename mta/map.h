/*
 * map.h - lookup tables, Postfix's "type:name", behind one interface.
 *
 * Every table type is a backend in its own file (map_texthash.c,
 * map_hash.c, ...) with the same small vtable; map.c picks the backend by
 * type and caches open tables.  A table whose file changed on disk is
 * re-read on the next lookup, so rebuilt tables are picked up without a
 * restart.
 *
 * Keys are looked up exactly as given (after the case folding the type
 * does: Postfix folds keys to lower case for the file-based types).  The
 * search orders of access(5), virtual(5), transport(5), aliases(5) belong
 * to the callers (map_search.c offers the common ones).
 */
#ifndef SLUICE_MAP_H
#define SLUICE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

struct map;

enum map_status { MAP_FOUND = 0, MAP_NOTFOUND, MAP_TEMPFAIL };

/* Open (or find already open) "type:name".  NULL with a message in err
 * ("hash:/etc/x: cannot open /etc/x.lmdb: ...; run sluice map build"). */
struct map *map_open(const char *spec, char *err, size_t errlen);
/* Look `key` up.  On MAP_FOUND *value points at the result, valid until
 * the next lookup in this table. */
enum map_status map_lookup(struct map *m, const char *key, const char **value);
const char *map_spec(const struct map *m);

/* A list of tables, as parameters give them ("hash:/etc/aliases,
 * texthash:/etc/more"): the first table that has the key answers. */
struct map_list;
struct map_list *map_list_open(const char *value, char *err, size_t errlen);
enum map_status map_list_lookup(struct map_list *ml, const char *key,
				const char **value);
void map_list_free(struct map_list *ml);

/* The types this build knows ("texthash", "hash", ...), NULL-terminated. */
const char *const *map_types(void);

/* ---- additions (map.c, map_hash.c) ----
 *
 * Tables are opened once per process and shared: map_open() of a spec
 * already open returns the same table with one more reference.  Tables
 * are meant for one thread (the worker's event loop); a value returned by
 * a lookup is only valid until the next lookup in that table, and a
 * lookup may re-read a table that changed on disk.  A "proxy:" in front
 * of the spec is accepted and ignored (sluice has no proxymap), so
 * Postfix's "proxy:unix:passwd.byname" reads as "unix:passwd.byname".
 */
struct diag;

/* Drop the reference map_open() gave; the last one closes the table. */
void map_close(struct map *m);
/* As map_open(), but every problem - errors and warnings such as
 * "/etc/x:7: duplicate key ..." - goes to d (map_open() puts the first
 * error in err and logs the warnings).  NULL when there is an error.
 * A table already open is checked against its file first: when the file
 * changed and no longer loads, its problems come as warnings (the table
 * keeps answering from the version it read before). */
struct map *map_open_diag(const char *spec, struct diag *d);
struct map_list *map_list_open_diag(const char *value, struct diag *d);

/* Fixed-string tables (texthash, hash, inline, static, ...) against
 * pattern tables (regexp, pcre, cidr).  Postfix looks partial keys
 * (parent domains, "user@") up in fixed-string tables only; such a
 * lookup passes MAP_LOOKUP_FIXED, and pattern tables then answer
 * MAP_NOTFOUND without being asked. */
bool map_is_pattern(const struct map *m);
#define MAP_LOOKUP_FIXED	0x1
enum map_status map_list_lookup_flags(struct map_list *ml, const char *key,
				      int flags, const char **value);

/* The table of a list that gave the last answer other than MAP_NOTFOUND
 * (for `sluice explain`, and for alias_maps, whose owner matters); NULL
 * after a lookup that found nothing. */
struct map *map_list_found(const struct map_list *ml);
/* The owner of the file the table was read from (for hash:, of the .lmdb
 * file), as when it was last read; 0 for tables without a file.  Postfix
 * runs the "|command" and "/file" deliveries of an alias table that root
 * does not own with the rights of its owner. */
uid_t map_owner(const struct map *m);

/* `sluice map build`: read the source text PATH (Postfix table syntax, or
 * aliases(5) syntax "name: value, value" with MAP_BUILD_ALIASES) and
 * replace PATH.lmdb, the file behind hash:PATH, atomically (a temporary
 * file renamed over it).  Problems go to d as "PATH:LINE: ...".  Returns
 * 0, or -1 when nothing was replaced (the old PATH.lmdb stays). */
#define MAP_BUILD_ALIASES	0x1
int map_build(const char *path, int flags, struct diag *d);

/* The longest key a file-based table holds: LMDB's limit, applied to
 * texthash too so that a table means the same under either type. */
#define MAP_KEY_MAX		511

/* ---- for the backends (map_*.c) ----
 *
 * A type is one file defining a `const struct map_type map_type_NAME`
 * and one line in map.c's registry.  Backends use designated
 * initializers, so members added later (an asynchronous lookup for
 * network tables) default to NULL for the types that do not need them.
 * A table's state is inherited across fork(); a backend holding a
 * connection (redis) notices the new pid itself and reconnects.
 */
/* The file a table was read from: map.c stats it before each lookup and
 * opens the table again when its identity (device, inode, size, mtime,
 * ctime) differs from `st`. */
struct map_source {
	char *path;		/* malloc'ed; NULL for tables without a file */
	struct stat st;		/* the file as it was before it was read */
};

struct map_type {
	const char *name;	/* "texthash": the part of the spec before ':' */
	unsigned flags;		/* MAP_TYPE_* */
	/* Open `name` (the spec after "type:").  On success return the
	 * table's state (not NULL) and fill src when it comes from a file;
	 * on failure return NULL with at least one error in d.  Warnings
	 * may go to d either way. */
	void *(*open)(const char *name, struct map_source *src,
		      struct diag *d);
	/* The key is folded already when the type has MAP_TYPE_FOLD. */
	enum map_status (*lookup)(void *state, const char *key,
				  const char **value);
	void (*close)(void *state);
};

#define MAP_TYPE_FOLD		0x1	/* keys are lower case (Postfix's fold) */
#define MAP_TYPE_PATTERN	0x2	/* keys are patterns, not strings */

/* Shared by texthash and hash: read a table source in Postfix syntax
 * (or aliases(5) syntax with MAP_BUILD_ALIASES), calling entry() with
 * each key (folded to lower case), its value and its first line.
 * entry() returns 0; MAP_TEXT_DUPLICATE when the key is there already
 * (the reader warns; the first entry wins); or -1 to stop, after saying
 * why in d.  Fills *st (may be NULL) from the file before it is read.
 * Returns 0 when the whole file was read and every line was good, else
 * -1 with the problems in d: file-level ones are prefixed with `label`
 * ("texthash:/etc/x: cannot read /etc/x: ..."), line-level ones read
 * "PATH:LINE: ...". */
#define MAP_TEXT_DUPLICATE	1
typedef int (*map_text_entry_fn)(const char *key, const char *value,
				 int line, void *arg);
struct map_text {
	const char *path;
	const char *label;	/* "texthash:/etc/x", "hash:/etc/x" */
	int flags;		/* MAP_BUILD_ALIASES */
	long long max_size;	/* a larger file is refused */
	map_text_entry_fn entry;
	void *arg;
};
int map_text_read(const struct map_text *t, struct stat *st, struct diag *d);

#endif
