/*
 * map_texthash.c - texthash:/path, a text table read into memory, and the
 * reader of table source text that hash: (map_hash.c) builds from.
 *
 * Source syntax, as postmap(1) reads it (the line rules are main.cf's,
 * cf_logical_lines() in config_parse.c):
 *   - "key value": the key ends at the first whitespace, the value is the
 *     rest of the logical line; "#" starts a comment only as the first
 *     non-blank character of a line; a line starting with whitespace
 *     continues the one before (joined with one space);
 *   - "key: value" (aliases style) is read as "key value" when the key has
 *     no other ":" (so IPv6 keys like "2001:db8::" keep theirs);
 *   - keys are folded to lower case (ASCII), at most MAP_KEY_MAX bytes;
 *   - a key given twice: a warning, and the first entry wins (Postfix's
 *     postmap and texthash do the same);
 *   - a key without a value, an over-long or NUL-carrying line: an error,
 *     and the table refuses to load (Postfix only warns and skips the
 *     line; sluice will not run with half a table).
 * With MAP_BUILD_ALIASES the lines are aliases(5) "name: value, value",
 * the name ending at the first ":" (or quoted: "a name": value).
 *
 * texthash keeps the whole table in memory in each process, so its file
 * is limited to TEXTHASH_MAX bytes; bigger tables belong in hash:.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "diag.h"
#include "map.h"

#define TEXTHASH_MAX	(64LL * 1024 * 1024)
#define SHOW_MAX	60	/* how much of a bad key a message quotes */

/* ---- reading table source text ---------------------------------------- */

struct text_reader {
	const struct map_text *t;
	struct diag *d;
	long long bytes;	/* of logical text seen: a growing file stops */
	bool stop;
};

static void fold(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* "key: value" written as in an aliases file: drop the colon. */
static void drop_alias_colon(char *key)
{
	size_t n = strlen(key);
	char *colon = strchr(key, ':');

	if (n > 1 && colon == key + n - 1)
		*colon = 0;
}

/* "key value": split in place; NULL, or what is wrong. */
static const char *split_plain(char *text, char **key, char **value)
{
	char *p = text + strcspn(text, " \t");

	*key = text;
	if (*p)
		*p++ = 0;
	*value = p + strspn(p, " \t");
	drop_alias_colon(*key);
	if (**value == 0)
		return "has no value; write \"key value\", or remove the line";
	return NULL;
}

/* A quoted alias name: unquote in place; *end is after the quote. */
static const char *unquote(char *text, char **end)
{
	char *in = text + 1, *out = text;

	for (; *in && *in != '"'; in++) {
		if (*in == '\\' && in[1])
			in++;
		*out++ = *in;
	}
	if (*in != '"')
		return "has no closing '\"'; close the quote";
	*out = 0;
	*end = in + 1;
	return NULL;
}

/* "name: value" of aliases(5): split in place; NULL, or what is wrong. */
static const char *split_alias(char *text, char **key, char **value)
{
	const char *why;
	char *p;

	*key = text;
	if (*text == '"') {
		if ((why = unquote(text, &p)) != NULL)
			return why;
		p += strspn(p, " \t");
		if (*p != ':')
			return "has no \":\" after the quoted name; write \"name: value\"";
	} else {
		if (*(p = text + strcspn(text, ":")) != ':')
			return "has no \":\"; write \"name: value\"";
		if (text[strcspn(text, " \t:")] != ':')
			return "has whitespace in the name; quote the name or remove the space";
	}
	*p++ = 0;
	*value = p + strspn(p, " \t");
	if (**key == 0)
		return "has an empty name before \":\"; write \"name: value\"";
	if (**value == 0)
		return "has no value; write \"name: address, ...\", or remove the line";
	return NULL;
}

static void entry_line(struct text_reader *r, char *text, int line)
{
	const struct map_text *t = r->t;
	const char *why;
	char *key, *value, shown[SHOW_MAX + 1];
	int rc;

	snprintf(shown, sizeof shown, "%s", text);	/* before splitting */
	why = t->flags & MAP_BUILD_ALIASES ? split_alias(text, &key, &value)
		: split_plain(text, &key, &value);
	if (why == NULL && strlen(key) > MAP_KEY_MAX)
		why = "starts with a key longer than 511 bytes; shorten it";
	if (why != NULL) {
		diag_add(r->d, DIAG_ERROR, t->path, line, "\"%s\" %s", shown, why);
		return;
	}
	fold(key);
	if ((rc = t->entry(key, value, line, t->arg)) == MAP_TEXT_DUPLICATE)
		diag_add(r->d, DIAG_WARNING, t->path, line,
			 "duplicate key \"%.*s\"; the first entry wins, remove this one or the other",
			 SHOW_MAX, key);
	else if (rc < 0)
		r->stop = true;
}

static void logical_line(const char *text, int first, int last, void *arg)
{
	struct text_reader *r = arg;
	size_t n = strlen(text);
	char *copy;

	if (r->stop)
		return;
	if ((r->bytes += (long long)n + 1) > r->t->max_size) {
		diag_add(r->d, DIAG_ERROR, r->t->path, first,
			 "the file grew past %lld bytes while it was read; keep tables under that size",
			 r->t->max_size);
		r->stop = true;
		return;
	}
	if ((copy = malloc(n + 1)) == NULL) {
		diag_add(r->d, DIAG_ERROR, r->t->path, first,
			 "out of memory reading this entry; free some memory and try again");
		r->stop = true;
		return;
	}
	memcpy(copy, text, n + 1);
	entry_line(r, copy, first);
	free(copy);
}

/* The file must be a regular file no larger than max_size. */
static int check_file(const struct map_text *t, struct stat *st,
		      struct diag *d)
{
	if (stat(t->path, st) < 0) {
		diag_add(d, DIAG_ERROR, t->label, 0,
			 "cannot read %s: %s; check the file name and its permissions",
			 t->path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		diag_add(d, DIAG_ERROR, t->label, 0,
			 "%s is not a regular file; name a text file", t->path);
		return -1;
	}
	if (st->st_size > t->max_size && strncmp(t->label, "texthash:", 9) == 0) {
		diag_add(d, DIAG_ERROR, t->label, 0,
			 "%s is larger than %lld bytes; split it, or use hash:%s (built by sluice map build)",
			 t->path, t->max_size, t->path);
		return -1;
	}
	if (st->st_size > t->max_size) {
		diag_add(d, DIAG_ERROR, t->label, 0,
			 "%s is larger than %lld bytes; split it", t->path, t->max_size);
		return -1;
	}
	return 0;
}

int map_text_read(const struct map_text *t, struct stat *st, struct diag *d)
{
	struct text_reader r = { .t = t, .d = d };
	struct cf_reader cr = { .logical = logical_line, .arg = &r };
	struct stat local;
	int errors = d->errors;

	if (st == NULL)
		st = &local;
	if (check_file(t, st, d) < 0)
		return -1;
	if (cf_logical_lines(t->path, d, &cr) < 0) {
		diag_add(d, DIAG_ERROR, t->label, 0,
			 "cannot read %s: %s; check the file name and its permissions",
			 t->path, strerror(errno));
		return -1;
	}
	return d->errors > errors || r.stop ? -1 : 0;
}

/* ---- texthash: the table in memory ------------------------------------ */

struct th_entry {
	struct th_entry *next;
	uint32_t hash;
	char *value;		/* points into the same allocation */
	char key[];
};

struct texthash {
	struct th_entry **bucket;
	size_t nbucket;		/* a power of two */
	size_t n;
};

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct th_entry *th_find(const struct texthash *th, const char *key,
				uint32_t h)
{
	struct th_entry *e = th->bucket[h & (th->nbucket - 1)];

	for (; e != NULL; e = e->next)
		if (e->hash == h && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static int th_grow(struct texthash *th)
{
	size_t n = th->nbucket ? th->nbucket * 2 : 64;
	struct th_entry **b = calloc(n, sizeof *b);

	if (b == NULL)
		return -1;
	for (size_t i = 0; i < th->nbucket; i++) {
		struct th_entry *e, *next;

		for (e = th->bucket[i]; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(th->bucket);
	th->bucket = b;
	th->nbucket = n;
	return 0;
}

static int th_add(struct texthash *th, const char *key, const char *value)
{
	uint32_t h = fnv1a(key);
	size_t klen = strlen(key), vlen = strlen(value);
	struct th_entry *e;

	if (th_find(th, key, h) != NULL)
		return MAP_TEXT_DUPLICATE;
	if (th->n >= th->nbucket && th_grow(th) < 0)
		return -1;
	if ((e = malloc(sizeof *e + klen + 1 + vlen + 1)) == NULL)
		return -1;
	e->hash = h;
	memcpy(e->key, key, klen + 1);
	e->value = e->key + klen + 1;
	memcpy(e->value, value, vlen + 1);
	e->next = th->bucket[h & (th->nbucket - 1)];
	th->bucket[h & (th->nbucket - 1)] = e;
	th->n++;
	return 0;
}

static void texthash_close(void *state)
{
	struct texthash *th = state;

	for (size_t i = 0; i < th->nbucket; i++) {
		struct th_entry *e, *next;

		for (e = th->bucket[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(th->bucket);
	free(th);
}

struct th_load {
	struct texthash *th;
	const char *path;
	struct diag *d;
};

static int th_entry_cb(const char *key, const char *value, int line, void *arg)
{
	struct th_load *l = arg;
	int rc = th_add(l->th, key, value);

	if (rc < 0)
		diag_add(l->d, DIAG_ERROR, l->path, line,
			 "out of memory storing this entry; free some memory, or use hash:%s",
			 l->path);
	return rc;
}

static void *texthash_open(const char *name, struct map_source *src,
			   struct diag *d)
{
	struct texthash *th = calloc(1, sizeof *th);
	char label[PATH_MAX + 16];
	struct th_load l = { .th = th, .path = name, .d = d };
	struct map_text t = {
		.path = name, .label = label, .max_size = TEXTHASH_MAX,
		.entry = th_entry_cb, .arg = &l,
	};

	snprintf(label, sizeof label, "texthash:%s", name);
	if (th == NULL || th_grow(th) < 0) {
		diag_add(d, DIAG_ERROR, name, 0, "out of memory opening this table; free some memory");
		free(th);
		return NULL;
	}
	if (map_text_read(&t, &src->st, d) < 0) {
		texthash_close(th);
		return NULL;
	}
	if ((src->path = strdup(name)) == NULL) {
		diag_add(d, DIAG_ERROR, name, 0, "out of memory opening this table; free some memory");
		texthash_close(th);
		return NULL;
	}
	return th;
}

static enum map_status texthash_lookup(void *state, const char *key,
				       const char **value)
{
	struct texthash *th = state;
	struct th_entry *e = th_find(th, key, fnv1a(key));

	if (e == NULL)
		return MAP_NOTFOUND;
	*value = e->value;
	return MAP_FOUND;
}

const struct map_type map_type_texthash = {
	.name = "texthash",
	.flags = MAP_TYPE_FOLD,
	.open = texthash_open,
	.lookup = texthash_lookup,
	.close = texthash_close,
};
