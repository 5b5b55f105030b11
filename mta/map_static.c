/*
 * map_static.c - static:value, the table that answers every key with the
 * same value (Postfix's static: type).
 *
 * "static:{text with spaces}" gives a value with spaces, as in Postfix
 * 3: the braces and the whitespace just inside them are dropped.  An
 * empty value is an error.  Nothing is read from disk, so the table
 * never changes.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "map.h"

/* The value of "{ text }" or "text", malloc'ed; NULL with d told. */
static char *static_value(const char *name, struct diag *d)
{
	const char *p = name;
	size_t len = strlen(name);
	char *v;

	if (p[0] == '{') {
		if (len < 2 || p[len - 1] != '}') {
			diag_add(d, DIAG_ERROR, NULL, 0,
				 "static:%s: the \"{\" has no closing \"}\"; write static:{text}",
				 name);
			return NULL;
		}
		for (p++, len -= 2; len > 0 && isspace((unsigned char)*p); len--)
			p++;
		while (len > 0 && isspace((unsigned char)p[len - 1]))
			len--;
	}
	if (len == 0) {
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "static:%s has no value; write static:VALUE or static:{text with spaces}",
			 name);
		return NULL;
	}
	if ((v = strndup(p, len)) == NULL)
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "static:%s: out of memory; free some memory", name);
	return v;
}

static void *static_open(const char *name, struct map_source *src,
			 struct diag *d)
{
	return static_value(name, d);
}

static enum map_status static_lookup(void *state, const char *key,
				     const char **value)
{
	*value = state;
	return MAP_FOUND;
}

static void static_close(void *state)
{
	free(state);
}

const struct map_type map_type_static = {
	.name = "static",
	.flags = 0,
	.open = static_open,
	.lookup = static_lookup,
	.close = static_close,
};
