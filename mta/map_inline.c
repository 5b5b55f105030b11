/*
 * map_inline.c - inline:{ key=value, { key = value with spaces } }, a
 * table written out in the parameter itself (Postfix's inline: type).
 *
 * The table is the text between the outer braces: items separated by
 * commas or whitespace, each "key=value", or "{ key = value }" when the
 * value holds spaces or commas (whitespace around key and value inside
 * the braces is dropped).  Keys are folded to lower case; a key given
 * twice is a warning and the first wins, as in a texthash file.  An item
 * without "=", an empty key or value, a missing brace or an empty table
 * is an error.  Inline tables are small: lookups scan them in order.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "diag.h"
#include "map.h"

#define SHOW_MAX	60	/* how much of the table a message quotes */

struct inline_item {
	char *key;
	char *value;
};

struct inline_map {
	int n;
	struct inline_item v[];
};

/* Split "key=value" or "{ key = value }" in place; NULL, or what is
 * wrong with it. */
static const char *split_item(char *item, char **key, char **value)
{
	size_t n = strlen(item);
	char *eq;

	if (item[0] == '{') {
		if (item[n - 1] != '}')
			return "has no closing \"}\"; write {key = value}";
		item[n - 1] = 0;
		item++;
	}
	if ((eq = strchr(item, '=')) == NULL)
		return "has no \"=\"; write key=value, or {key = value} for a value with spaces";
	*eq = 0;
	*key = config_trim(item);
	*value = config_trim(eq + 1);
	if (**key == 0)
		return "has no key before \"=\"; write key=value";
	if (**value == 0)
		return "has no value after \"=\"; write key=value";
	if (strlen(*key) > MAP_KEY_MAX)
		return "has a key longer than 511 bytes; shorten it";
	return NULL;
}

static int find(const struct inline_map *im, const char *key)
{
	for (int i = 0; i < im->n; i++)
		if (strcmp(im->v[i].key, key) == 0)
			return i;
	return -1;
}

static void inline_close(void *state)
{
	struct inline_map *im = state;

	for (int i = 0; i < im->n; i++) {
		free(im->v[i].key);
		free(im->v[i].value);
	}
	free(im);
}

/* Add one item; 0, or -1 on an error (reported). */
static int add_item(struct inline_map *im, const char *name, char *item,
		    struct diag *d)
{
	const char *why;
	char *key, *value, shown[SHOW_MAX + 1];

	snprintf(shown, sizeof shown, "%s", item);
	if ((why = split_item(item, &key, &value)) != NULL) {
		diag_add(d, DIAG_ERROR, NULL, 0, "inline:%.*s: \"%s\" %s",
			 SHOW_MAX, name, shown, why);
		return -1;
	}
	for (char *p = key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (find(im, key) >= 0) {
		diag_add(d, DIAG_WARNING, NULL, 0,
			 "inline:%.*s: duplicate key \"%s\"; the first entry wins, remove this one or the other",
			 SHOW_MAX, name, key);
		return 0;
	}
	im->v[im->n].key = strdup(key);
	im->v[im->n].value = strdup(value);
	im->n++;
	if (im->v[im->n - 1].key == NULL || im->v[im->n - 1].value == NULL) {
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "inline:%.*s: out of memory; free some memory",
			 SHOW_MAX, name);
		return -1;
	}
	return 0;
}

/* The items between the outer braces; NULL with d told. */
static char **inline_items(const char *name, struct diag *d)
{
	size_t n = strlen(name);
	char *inner, **items;

	if (name[0] != '{' || n < 2 || name[n - 1] != '}') {
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "inline:%.*s: the table must be in braces; write inline:{ key=value, ... }",
			 SHOW_MAX, name);
		return NULL;
	}
	if ((inner = strndup(name + 1, n - 2)) == NULL)
		return NULL;
	items = config_split_list(inner);
	free(inner);
	if (items != NULL && items[0] == NULL) {
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "inline:%s: the table is empty; write inline:{ key=value, ... }",
			 name);
		cfg_list_free(items);
		return NULL;
	}
	return items;
}

static void *inline_open(const char *name, struct map_source *src,
			 struct diag *d)
{
	char **items;
	struct inline_map *im = NULL;
	int n = 0, errors = d->errors;

	if ((items = inline_items(name, d)) == NULL)
		goto fail;
	while (items[n])
		n++;
	if ((im = calloc(1, sizeof *im + (size_t)n * sizeof im->v[0])) == NULL)
		goto fail;
	for (int i = 0; i < n; i++)
		add_item(im, name, items[i], d);
	cfg_list_free(items);
	if (d->errors == errors)
		return im;
	inline_close(im);
	return NULL;
fail:
	if (d->errors == errors)
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "inline:%.*s: out of memory; free some memory",
			 SHOW_MAX, name);
	cfg_list_free(items);
	if (im != NULL)
		inline_close(im);
	return NULL;
}

static enum map_status inline_lookup(void *state, const char *key,
				     const char **value)
{
	struct inline_map *im = state;
	int i = find(im, key);

	if (i < 0)
		return MAP_NOTFOUND;
	*value = im->v[i].value;
	return MAP_FOUND;
}

const struct map_type map_type_inline = {
	.name = "inline",
	.flags = MAP_TYPE_FOLD,
	.open = inline_open,
	.lookup = inline_lookup,
	.close = inline_close,
};
