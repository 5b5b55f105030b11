/*
 * map.c - lookup tables: the type registry, the cache of open tables, the
 * re-reading of tables that changed on disk, and lists of tables.
 *
 * The promises:
 *   - one open table per spec and process: map_open() of a spec already
 *     open returns the same table with one more reference, and
 *     map_close() of the last reference frees it;
 *   - a table read from a file (texthash:/x reads /x, hash:/x maps
 *     /x.lmdb) is stat()ed before every lookup, and read again when the
 *     file's device, inode, size, mtime or ctime changed, so a rebuilt
 *     table answers the very next lookup without a restart or reload.
 *     One stat(2) per lookup is the whole cost;
 *   - a changed file that no longer loads (a syntax error, a half-copied
 *     file) is reported to the log once, and the table keeps answering
 *     from what it read before, until the file changes again; every
 *     later map_open_diag() of the table hears of it as a warning, so a
 *     reload or a check that opens it learns what is on disk now;
 *   - keys are folded to lower case here for the types that fold, and a
 *     key longer than any such table can hold is simply not found.
 *
 * Global state: the registry (constant) and the cache of open tables,
 * owned by this file.  Like the tables themselves it is meant for one
 * thread per process (the worker's event loop).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "diag.h"
#include "log.h"
#include "map.h"

/* The registry: one line per type; map_type_NAME lives in map_NAME.c. */
#define MAP_REGISTRY(X) \
	X(cidr) \
	X(hash) \
	X(inline) \
	X(pcre) \
	X(regexp) \
	X(static) \
	X(texthash) \
	X(unix)

#define MAP_DECLARE(n) extern const struct map_type map_type_##n;
#define MAP_ENTRY(n) &map_type_##n,
MAP_REGISTRY(MAP_DECLARE)
static const struct map_type *const registry[] = { MAP_REGISTRY(MAP_ENTRY) };
#define NTYPES	(sizeof registry / sizeof registry[0])

struct map {
	char *spec;		/* "hash:/etc/x", without a "proxy:" */
	const char *name;	/* in spec, after "type:" */
	const struct map_type *type;
	void *state;		/* the backend's */
	struct map_source src;	/* the file the state was read from */
	struct stat failed;	/* a version of it that did not load */
	bool have_failed;
	int stat_errno;		/* last stat() failure reported, or 0 */
	int refs;
	struct map *next;
	char key[MAP_KEY_MAX + 1];	/* the folded key */
};

struct map_list {
	int n;
	int found;		/* index of the last table that answered; -1 */
	struct map *v[];
};

static struct map *open_maps;	/* the cache */

/* ---- the registry ------------------------------------------------------ */

const char *const *map_types(void)
{
	static const char *names[NTYPES + 1];

	for (size_t i = 0; i < NTYPES; i++)
		names[i] = registry[i]->name;
	return names;
}

static const struct map_type *find_type(const char *spec, size_t len)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (strlen(registry[i]->name) == len
		    && strncmp(registry[i]->name, spec, len) == 0)
			return registry[i];
	return NULL;
}

/* The type of "type:name", or NULL with the problem in d. */
static const struct map_type *spec_type(const char *spec, struct diag *d)
{
	size_t len = strcspn(spec, ":");
	const struct map_type *t;

	if (spec[len] != ':' || len == 0) {
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "\"%s\" is not a lookup table; write type:name, e.g. hash:/etc/sluice/access",
			 spec);
		return NULL;
	}
	if ((t = find_type(spec, len)) == NULL) {
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "%s: unknown table type \"%.*s\"; \"sluice map list\" shows the types this build knows",
			 spec, (int)len, spec);
		return NULL;
	}
	if (spec[len + 1] == 0) {
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "\"%s\" names no table; write %s:NAME, e.g. %s:/etc/sluice/access",
			 spec, t->name, t->name);
		return NULL;
	}
	return t;
}

/* ---- opening and the cache --------------------------------------------- */

static void refresh(struct map *m, struct diag *to);

static const char *strip_proxy(const char *spec)
{
	while (strncmp(spec, "proxy:", 6) == 0)
		spec += 6;
	return spec;
}

static struct map *cache_find(const char *spec)
{
	for (struct map *m = open_maps; m != NULL; m = m->next)
		if (strcmp(m->spec, spec) == 0)
			return m;
	return NULL;
}

static void map_free(struct map *m)
{
	if (m->state != NULL)
		m->type->close(m->state);
	free(m->src.path);
	free(m->spec);
	free(m);
}

static struct map *map_new(const char *spec, const struct map_type *t,
			   struct diag *d)
{
	struct map *m = calloc(1, sizeof *m);

	if (m == NULL || (m->spec = strdup(spec)) == NULL) {
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "%s: out of memory opening the table; free some memory", spec);
		free(m);
		return NULL;
	}
	m->type = t;
	m->name = m->spec + strlen(t->name) + 1;
	m->refs = 1;
	return m;
}

struct map *map_open_diag(const char *spec, struct diag *d)
{
	const struct map_type *t;
	struct map *m;

	spec = strip_proxy(spec);
	if ((m = cache_find(spec)) != NULL) {
		refresh(m, d);	/* what is on disk now, said to this caller */
		m->refs++;
		return m;
	}
	if ((t = spec_type(spec, d)) == NULL || (m = map_new(spec, t, d)) == NULL)
		return NULL;
	if ((m->state = t->open(m->name, &m->src, d)) == NULL) {
		map_free(m);
		return NULL;
	}
	m->next = open_maps;
	open_maps = m;
	return m;
}

/* The first error of d into err (with how many more there are), the
 * warnings to the log. */
static void diag_to_err(const struct diag *d, char *err, size_t errlen)
{
	const char *first = NULL;

	for (int i = 0; i < d->n; i++) {
		if (d->v[i].level == DIAG_WARNING)
			msg_warn("%s", d->v[i].text);
		else if (first == NULL)
			first = d->v[i].text;
	}
	if (first == NULL || errlen == 0)
		return;
	if (d->errors > 1)
		snprintf(err, errlen, "%s (and %d more error%s)", first,
			 d->errors - 1, d->errors > 2 ? "s" : "");
	else
		snprintf(err, errlen, "%s", first);
}

struct map *map_open(const char *spec, char *err, size_t errlen)
{
	struct diag d;
	struct map *m;

	diag_init(&d);
	m = map_open_diag(spec, &d);
	diag_to_err(&d, err, errlen);
	diag_free(&d);
	return m;
}

void map_close(struct map *m)
{
	struct map **pp;

	if (m == NULL || --m->refs > 0)
		return;
	for (pp = &open_maps; *pp != NULL; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	map_free(m);
}

const char *map_spec(const struct map *m)
{
	return m->spec;
}

bool map_is_pattern(const struct map *m)
{
	return (m->type->flags & MAP_TYPE_PATTERN) != 0;
}

uid_t map_owner(const struct map *m)
{
	return m->src.path != NULL ? m->src.st.st_uid : 0;
}

/* ---- picking up a changed file ----------------------------------------- */

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino
	    && a->st_size == b->st_size
	    && a->st_mtim.tv_sec == b->st_mtim.tv_sec
	    && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec
	    && a->st_ctim.tv_sec == b->st_ctim.tv_sec
	    && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Problems found while re-reading go to `to` as warnings (the table
 * still answers), or to the log when `to` is NULL. */
static void report(struct diag *to, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void report(struct diag *to, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	if (text == NULL)
		return;
	if (to != NULL)
		diag_add(to, DIAG_WARNING, NULL, 0, "%s", text);
	else
		msg_warn("%s", text);
	free(text);
}

static void still_old(struct map *m, struct diag *to)
{
	report(to, "%s: changed on disk but does not load; still answering from the previous version until it is fixed",
	       m->spec);
}

/* Read the table again; on failure keep the old state and remember the
 * version that failed, so it is not tried (and logged) again. */
static void reopen(struct map *m, const struct stat *now, struct diag *to)
{
	struct map_source src = { 0 };
	struct diag d;
	void *state;

	diag_init(&d);
	state = m->type->open(m->name, &src, &d);
	for (int i = 0; i < d.n; i++)
		report(to, "%s", d.v[i].text);
	diag_free(&d);
	if (state == NULL) {
		still_old(m, to);
		m->failed = *now;
		m->have_failed = true;
		return;
	}
	m->type->close(m->state);
	free(m->src.path);
	m->state = state;
	m->src = src;
	m->have_failed = false;
	msg_info("%s: re-read after a change on disk", m->spec);
}

static void refresh(struct map *m, struct diag *to)
{
	struct stat st;

	if (m->src.path == NULL)
		return;
	if (stat(m->src.path, &st) < 0) {
		if (errno != m->stat_errno || to != NULL)
			report(to, "%s: cannot check %s for changes: %s; still answering from the version read before",
			       m->spec, m->src.path, strerror(errno));
		m->stat_errno = errno;
		return;
	}
	m->stat_errno = 0;
	if (same_file(&st, &m->src.st))
		return;
	/* A version that failed is not tried again by lookups; a caller
	 * that asks (to != NULL) hears the problems again. */
	if (to != NULL || !m->have_failed || !same_file(&st, &m->failed))
		reopen(m, &st, to);
}

/* ---- lookups ----------------------------------------------------------- */

/* The key folded into m->key; NULL when it is too long for the table. */
static const char *fold_key(struct map *m, const char *key)
{
	size_t i;

	for (i = 0; key[i] && i < MAP_KEY_MAX; i++)
		m->key[i] = (char)tolower((unsigned char)key[i]);
	if (key[i])
		return NULL;
	m->key[i] = 0;
	return m->key;
}

enum map_status map_lookup(struct map *m, const char *key, const char **value)
{
	refresh(m, NULL);
	if ((m->type->flags & MAP_TYPE_FOLD) && (key = fold_key(m, key)) == NULL)
		return MAP_NOTFOUND;
	return m->type->lookup(m->state, key, value);
}

/* ---- lists of tables --------------------------------------------------- */

struct map_list *map_list_open_diag(const char *value, struct diag *d)
{
	char **items = config_split_list(value);
	struct map_list *ml;
	int n = 0, errors = d->errors;

	if (items == NULL)
		goto oom;
	while (items[n])
		n++;
	if ((ml = calloc(1, sizeof *ml + (size_t)n * sizeof ml->v[0])) == NULL) {
		cfg_list_free(items);
		goto oom;
	}
	ml->found = -1;
	for (int i = 0; i < n; i++)
		if ((ml->v[ml->n] = map_open_diag(items[i], d)) != NULL)
			ml->n++;
	cfg_list_free(items);
	if (d->errors == errors)
		return ml;
	map_list_free(ml);
	return NULL;
oom:
	diag_add(d, DIAG_ERROR, NULL, 0,
		 "out of memory opening the tables \"%.60s\"; free some memory", value);
	return NULL;
}

struct map_list *map_list_open(const char *value, char *err, size_t errlen)
{
	struct diag d;
	struct map_list *ml;

	diag_init(&d);
	ml = map_list_open_diag(value, &d);
	diag_to_err(&d, err, errlen);
	diag_free(&d);
	return ml;
}

enum map_status map_list_lookup_flags(struct map_list *ml, const char *key,
				      int flags, const char **value)
{
	ml->found = -1;
	for (int i = 0; i < ml->n; i++) {
		enum map_status st;

		if ((flags & MAP_LOOKUP_FIXED) && map_is_pattern(ml->v[i]))
			continue;
		if ((st = map_lookup(ml->v[i], key, value)) != MAP_NOTFOUND) {
			ml->found = i;
			return st;
		}
	}
	return MAP_NOTFOUND;
}

struct map *map_list_found(const struct map_list *ml)
{
	return ml->found >= 0 ? ml->v[ml->found] : NULL;
}

enum map_status map_list_lookup(struct map_list *ml, const char *key,
				const char **value)
{
	return map_list_lookup_flags(ml, key, 0, value);
}

void map_list_free(struct map_list *ml)
{
	if (ml == NULL)
		return;
	for (int i = 0; i < ml->n; i++)
		map_close(ml->v[i]);
	free(ml);
}
