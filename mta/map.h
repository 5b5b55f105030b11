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

#endif
