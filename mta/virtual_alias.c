/*
 * virtual_alias.c - virtual_alias_maps expansion of a recipient, as
 * Postfix's cleanup(8) does it (cleanup_map1n): recursive, one-to-many.
 * Interface: rewrite.h.
 *
 * The address list is rewritten in place: a table result replaces its
 * address with the first result and appends the others; the replaced
 * slot is looked up again until it has no mapping.  Postfix's rules:
 *   - search order of virtual(5): user@domain, user (when domain is
 *     $myorigin or local), @domain, with recipient_delimiter extensions
 *     (route_addr_find), results in canonical form, unmatched extensions
 *     propagated when propagate_unmatched_extensions names "virtual";
 *   - an address whose result includes itself is kept and never
 *     expanded again ("user@x -> user@x, archive@y");
 *   - more than virtual_alias_recursion_limit rounds on one slot, more
 *     than virtual_alias_expansion_limit addresses, a result longer than
 *     virtual_alias_address_length_limit or a table failure defer the
 *     recipient with "4.6.0 Alias expansion error".
 * Beyond Postfix, which only stops such a loop at the recursion limit, a
 * slot that comes back to an address it already had (a -> b -> a) with
 * nothing learnt in between is reported at once as a loop, same status.
 * The final list has duplicates removed (cleanup's duplicate filter).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "rewrite.h"
#include "route_internal.h"

#define VA_PARAM	"virtual_alias_maps"
#define VA_ERROR	"4.6.0 Alias expansion error"

struct expansion {
	const struct config *c;
	const char *orig;               /* the address being expanded */
	struct route_strv list;         /* the addresses, rewritten in place */
	struct route_strv fixed;        /* addresses that expanded to themselves */
	long long recursion_limit, expansion_limit, length_limit;
	bool propagate;
};

static bool in_list(const struct route_strv *sv, const char *s)
{
	for (int i = 0; i < sv->n; i++)
		if (strcasecmp(sv->v[i], s) == 0)
			return true;
	return false;
}

/* Put one lookup result into the list: result 0 replaces the slot. */
static int take_results(struct expansion *x, int arg, char **v, int n)
{
	char *lhs = route_strdup(x->list.v[arg]);
	int rc = 0;

	for (int i = 0; i < n && rc == 0; i++) {
		if ((long long)strlen(v[i]) > x->length_limit) {
			msg_warn("unreasonable %s result %.300s... for %s -- message not accepted, try again later",
				 VA_PARAM, v[i], x->orig);
			rc = -1;
			break;
		}
		if (i == 0) {
			free(x->list.v[arg]);
			x->list.v[arg] = route_strdup(v[i]);
		} else {
			route_strv_add(&x->list, route_strdup(v[i]));
		}
		if (strcasecmp(lhs, v[i]) == 0 && !in_list(&x->fixed, lhs))
			route_strv_add(&x->fixed, route_strdup(lhs));
	}
	free(lhs);
	return rc;
}

/* Has this slot come back to an address while nothing else changed? */
static bool slot_loops(struct route_strv *chain, int *fixed_seen,
		       const struct expansion *x, const char *cur)
{
	if (*fixed_seen != x->fixed.n) {        /* learnt something: restart */
		route_strv_free(chain->v);
		*chain = (struct route_strv){ 0 };
		*fixed_seen = x->fixed.n;
	}
	if (in_list(chain, cur))
		return true;
	route_strv_add(chain, route_strdup(cur));
	return false;
}

/* Expand one slot until it has no mapping.  0, or -1 (logged). */
static int expand_slot(struct expansion *x, int arg)
{
	struct route_strv chain = { 0 };
	int fixed_seen = x->fixed.n, rc = 0;

	for (long long count = 0; rc == 0; count++) {
		const char *cur = x->list.v[arg];
		char **v = NULL;
		int n = 0, found;

		if (in_list(&x->fixed, cur))
			break;
		if (count >= x->recursion_limit) {
			msg_warn("unreasonable %s map nesting for %s -- message not accepted, try again later",
				 VA_PARAM, x->orig);
			rc = -1;
		} else if (slot_loops(&chain, &fixed_seen, x, cur)) {
			msg_warn("%s loop for %s: the expansion comes back to %s -- message not accepted, try again later",
				 VA_PARAM, x->orig, cur);
			rc = -1;
		} else if ((found = route_addr_map(x->c, VA_PARAM, cur,
						   x->propagate, &v, &n)) == ROUTE_FAIL) {
			msg_warn("%s map lookup problem for %s -- message not accepted, try again later",
				 VA_PARAM, x->orig);
			rc = -1;
		} else if (found == ROUTE_NOTFOUND) {
			route_strv_free(v);
			break;
		} else {
			rc = take_results(x, arg, v, n);
		}
		route_strv_free(v);
	}
	route_strv_free(chain.v);
	return rc;
}

static int expand_all(struct expansion *x)
{
	for (int arg = 0; arg < x->list.n; arg++) {
		if (x->list.n > x->expansion_limit) {
			msg_warn("unreasonable %s map expansion size for %s -- message not accepted, try again later",
				 VA_PARAM, x->orig);
			return -1;
		}
		if (expand_slot(x, arg) < 0)
			return -1;
	}
	return 0;
}

/* The list without duplicates, first occurrence first. */
static void dedupe(struct route_strv *in, struct route_strv *out)
{
	for (int i = 0; i < in->n; i++) {
		if (in_list(out, in->v[i]))
			free(in->v[i]);
		else
			route_strv_add(out, in->v[i]);
	}
	free(in->v);
	*in = (struct route_strv){ 0 };
}

int virtual_alias_expand(const struct config *c, const char *addr,
			 char ***out, int *n, char *why, size_t whylen)
{
	struct expansion x = {
		.c = c, .orig = addr,
		.recursion_limit = cfg_int(c, "virtual_alias_recursion_limit"),
		.expansion_limit = cfg_int(c, "virtual_alias_expansion_limit"),
		.length_limit = cfg_int(c, "virtual_alias_address_length_limit"),
		.propagate = route_propagates(c, "virtual"),
	};
	struct route_strv result = { 0 };
	int rc = 0;

	route_strv_add(&x.list, route_strdup(addr));
	if (*cfg_str(c, VA_PARAM) != 0 && *addr != 0 && expand_all(&x) < 0) {
		snprintf(why, whylen, "%s", VA_ERROR);
		rc = 4;
	}
	route_strv_free(x.fixed.v);
	if (rc != 0) {
		route_strv_free(x.list.v);
		*out = NULL;
		*n = 0;
		return rc;
	}
	dedupe(&x.list, &result);
	*out = result.v;
	*n = result.n;
	return 0;
}

void virtual_alias_free(char **list)
{
	route_strv_free(list);
}
