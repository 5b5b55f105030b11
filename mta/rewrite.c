/*
 * rewrite.c - canonical form and canonical(5) mapping of envelope
 * addresses, as Postfix's trivial-rewrite(8) "rewrite" (local context)
 * and cleanup(8) canonical_maps, sender_canonical_maps and
 * recipient_canonical_maps.  Interface: rewrite.h.
 *
 * Postfix's rules kept here:
 *   - canonical form: "user" -> "user@$myorigin"; "user@host" ->
 *     "user@host.$mydomain" only with append_dot_mydomain = yes (Postfix
 *     3's default is no); one trailing dot of the domain is removed;
 *     forms ending in "@" and address literals are left alone.
 *   - a table result is a list of addresses; "@otherdomain" keeps the
 *     user ("user@domain" -> "user@otherdomain"); every result is put in
 *     canonical form; with propagate_unmatched_extensions naming the
 *     class, an extension that had to be dropped to find the key is put
 *     back ("user+ext" -> "other+ext").
 *   - canonical mapping is one-to-one (the first result of a list is
 *     used, with a warning), sender/recipient table first, then
 *     canonical_maps; each is applied again to its result until the
 *     address no longer changes or maps to itself, at most 10 times.
 *     More nesting than that is a table loop: Postfix's newer cleanup
 *     defers such mail, and so do we (4.6.0).
 *
 * Address masquerading and header address rewriting are not done here.
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

#define CANON_MAX_NESTING	10

/* ---- canonical form ------------------------------------------------------ */

/* Append ".$mydomain" to a domain without a dot? */
static bool wants_mydomain(const struct config *c, const char *domain)
{
	return cfg_bool(c, "append_dot_mydomain") && *domain != 0 &&
	       *domain != '[' && strchr(domain, '.') == NULL &&
	       *cfg_str(c, "mydomain") != 0;
}

/* Remove one trailing dot, but not from "..", "@." or a bare ".". */
static void strip_trailing_dot(char *addr)
{
	size_t n = strlen(addr);

	if (n >= 2 && addr[n - 1] == '.' && addr[n - 2] != '.' &&
	    addr[n - 2] != '@' && route_domain_of(addr) != NULL)
		addr[n - 1] = 0;
}

char *rewrite_canonical_form(const struct config *c, const char *addr)
{
	const char *domain = route_domain_of(addr);
	char *out;

	if (*addr == 0)
		return route_strdup("");
	if (domain == NULL && cfg_bool(c, "append_at_myorigin") &&
	    *cfg_str(c, "myorigin") != 0)
		out = route_concat(addr, "@", cfg_str(c, "myorigin"));
	else if (domain != NULL && wants_mydomain(c, domain))
		out = route_concat(addr, ".", cfg_str(c, "mydomain"));
	else
		out = route_strdup(addr);
	strip_trailing_dot(out);
	return out;
}

/* ---- table results ------------------------------------------------------- */

/* Length of s up to the first character of `seps` outside quotes. */
static size_t span_unquoted(const char *s, const char *seps)
{
	bool quoted = false;
	size_t i;

	for (i = 0; s[i]; i++) {
		if (s[i] == '\\' && s[i + 1] != 0)
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && strchr(seps, s[i]) != NULL)
			break;
	}
	return i;
}

/* Words of s separated by `seps` (outside quotes), empty ones dropped. */
static void split_unquoted(struct route_strv *sv, const char *s, size_t len,
			   const char *seps)
{
	char *text = route_strndup(s, len);

	for (char *p = text; *p;) {
		size_t n = span_unquoted(p, seps);

		if (n > 0)
			route_strv_add(sv, route_strndup(p, n));
		p += n + (p[n] != 0);
	}
	free(text);
}

/* One comma-separated piece: "Name <addr>" gives addr, otherwise the
 * words separated by white space. */
static void crunch_piece(struct route_strv *sv, const char *piece)
{
	const char *lt = strchr(piece, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;

	if (gt != NULL && gt > lt + 1)
		route_strv_add(sv, route_strndup(lt + 1, (size_t)(gt - lt - 1)));
	else if (gt == NULL)
		split_unquoted(sv, piece, strlen(piece), " \t\r\n");
}

/* Insert an extension before the domain: "other@x" + "+ext". */
static char *with_extension(const char *addr, const char *ext)
{
	const char *at = route_at(addr);
	size_t llen = at ? (size_t)(at - addr) : strlen(addr);
	char *local = route_strndup(addr, llen);
	char *out = route_concat(local, ext, at ? at : "");

	free(local);
	return out;
}

/* Postfix's mail_addr_crunch(): the addresses of a table result, in
 * canonical form, each with the extension (may be NULL) put back. */
static void crunch(const struct config *c, const char *value, const char *ext,
		   struct route_strv *out)
{
	struct route_strv pieces = { 0 }, words = { 0 };

	split_unquoted(&pieces, value, strlen(value), ",");
	for (int i = 0; i < pieces.n; i++)
		crunch_piece(&words, pieces.v[i]);
	for (int i = 0; i < words.n; i++) {
		char *canon = rewrite_canonical_form(c, words.v[i]);

		route_strv_add(out, ext ? with_extension(canon, ext) : canon);
		if (ext)
			free(canon);
	}
	route_strv_free(pieces.v);
	route_strv_free(words.v);
}

/* "@otherdomain": the user of addr (without the dropped extension). */
static char *user_at_other(const char *addr, const char *ext,
			   const char *value)
{
	const char *at = route_at(addr);
	size_t llen = at ? (size_t)(at - addr) : strlen(addr);
	char *local;
	char *out;

	if (ext != NULL && strlen(ext) <= llen)
		llen -= strlen(ext);
	local = route_strndup(addr, llen);
	out = route_concat(local, value, "");
	free(local);
	return out;
}

int route_addr_map(const struct config *c, const char *param,
		   const char *addr, bool propagate, char ***out, int *n)
{
	struct route_strv sv = { 0 };
	char *value = NULL, *ext = NULL;
	int rc = route_addr_find(c, param, addr, &value, &ext);

	*out = NULL;
	*n = 0;
	if (rc != ROUTE_FOUND)
		return rc;
	if (value[0] == '@') {
		char *whole = user_at_other(addr, ext, value);

		crunch(c, whole, NULL, &sv);
		free(whole);
	} else {
		crunch(c, value, propagate ? ext : NULL, &sv);
	}
	if (sv.n == 0) {
		msg_warn("%s lookup of %s returns non-address result \"%s\"",
			 param, addr, value);
		rc = ROUTE_FAIL;
	}
	free(value);
	free(ext);
	*out = sv.v;
	*n = sv.n;
	return rc;
}

/* ---- canonical mapping --------------------------------------------------- */

/* Postfix's cleanup_map11: apply one table to *addr until it settles. */
static int map11(const struct config *c, const char *param, char **addr,
		 char *why, size_t whylen)
{
	bool propagate = route_propagates(c, "canonical");
	char **v;
	int n, rc;

	if (*cfg_str(c, param) == 0 || **addr == 0)
		return 0;
	for (int round = 0; round < CANON_MAX_NESTING; round++) {
		bool self;

		rc = route_addr_map(c, param, *addr, propagate, &v, &n);
		if (rc != ROUTE_FOUND) {
			route_strv_free(v);
			if (rc == ROUTE_NOTFOUND)
				return 0;
			snprintf(why, whylen, "4.3.0 %s lookup failure", param);
			return 4;
		}
		if (n > 1)
			msg_warn("multi-valued %s entry for %s", param, *addr);
		self = strcasecmp(v[0], *addr) == 0;
		free(*addr);
		*addr = route_strdup(v[0]);
		route_strv_free(v);
		if (self)
			return 0;
	}
	msg_warn("unreasonable %s map nesting for %s -- message not accepted, try again later",
		 param, *addr);
	snprintf(why, whylen, "4.6.0 unreasonable %s nesting", param);
	return 4;
}

static int rewrite_envelope(const struct config *c, const char *addr,
			    const char *param, char **out, char *why,
			    size_t whylen)
{
	char *a = rewrite_canonical_form(c, addr);
	int rc = map11(c, param, &a, why, whylen);

	if (rc == 0)
		rc = map11(c, "canonical_maps", &a, why, whylen);
	if (rc != 0) {
		free(a);
		a = NULL;
	}
	*out = a;
	return rc;
}

int rewrite_sender(const struct config *c, const char *addr, char **out,
		   char *why, size_t whylen)
{
	return rewrite_envelope(c, addr, "sender_canonical_maps", out, why,
				whylen);
}

int rewrite_recipient(const struct config *c, const char *addr, char **out,
		      char *why, size_t whylen)
{
	return rewrite_envelope(c, addr, "recipient_canonical_maps", out, why,
				whylen);
}
