/*
 * map_access.c - Postfix's access(5) search order over a list of tables
 * (map_access.h), as smtpd_check.c's check_access, check_domain_access,
 * check_addr_access and check_mail_access walk it.
 *
 * The promises:
 *   - the keys, their order and which of them pattern tables see are
 *     Postfix's: only the first key of a search is asked of every table;
 *     the partial keys after it (parent domains, shorter address
 *     prefixes, the address without extension, the domain and "user@"
 *     of a mail address) go to fixed-string tables only
 *     (MAP_LOOKUP_FIXED);
 *   - the first key that any table answers ends the search, whatever the
 *     answer says (access(5): DUNNO stops the search for shorter keys);
 *   - a table that fails (MAP_TEMPFAIL) ends the search too: the caller
 *     says "Server configuration error" as Postfix does;
 *   - every key tried goes to the trace, with its outcome;
 *   - no state: everything comes from the config and the arguments.
 *
 * The empty key is never looked up (Postfix avoids it for Berkeley DB's
 * sake; a helo name "x." has no empty parent).
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "map_access.h"

/* What one search carries from key to key. */
struct search {
	struct map_list *ml;
	const char **result;
	map_access_trace_fn trace;
	void *trace_arg;
};

/* ---- the configuration the search depends on --------------------------- */

static const char *conf_or(const struct config *cfg, const char *name,
			   const char *dflt)
{
	const char *v = cfg ? cfg_lookup(cfg, name) : NULL;

	return v ? v : dflt;
}

/* Is "smtpd_access_maps" in parent_domain_matches_subdomains?  Postfix's
 * default lists it. */
static bool parent_style(const struct config *cfg)
{
	char **v;
	bool hit = false;

	if (cfg == NULL || cfg_lookup(cfg, "parent_domain_matches_subdomains") == NULL)
		return true;
	v = config_split_list(cfg_lookup(cfg, "parent_domain_matches_subdomains"));
	for (int i = 0; v && v[i] && !hit; i++)
		hit = strcasecmp(v[i], "smtpd_access_maps") == 0;
	cfg_list_free(v);
	return hit;
}

/* ---- one key ------------------------------------------------------------ */

static enum map_status try_key(struct search *s, const char *key, int flags)
{
	enum map_status st;
	struct map *m;

	if (*key == 0)
		return MAP_NOTFOUND;
	st = map_list_lookup_flags(s->ml, key, flags, s->result);
	if (s->trace) {
		m = map_list_found(s->ml);
		s->trace(s->trace_arg, m ? map_spec(m) : NULL, key, st,
			 st == MAP_FOUND ? *s->result : NULL);
	}
	return st;
}

/* ---- domains and host names (check_domain_access) ---------------------- */

/* Postfix's valid_hostaddr(): a numeric IPv4 or IPv6 address. */
static bool numeric_host(const char *name)
{
	unsigned char buf[16];

	return inet_pton(strchr(name, ':') ? AF_INET6 : AF_INET, name, buf) == 1;
}

/* The name, then its parents: "a.b.c", then "b.c", "c" (parent style) or
 * ".b.c", ".c".  A numeric host name has no parents.  `flags` applies to
 * the first key; the parents are partial keys. */
static enum map_status search_domain(struct search *s, const struct config *cfg,
				     const char *domain, int flags)
{
	bool parents = parent_style(cfg), numeric = numeric_host(domain);
	const char *name = domain, *next;
	enum map_status st;

	while (*name) {
		if ((st = try_key(s, name, flags)) != MAP_NOTFOUND)
			return st;
		if (numeric || (next = strchr(name + 1, '.')) == NULL)
			break;
		name = parents ? next + 1 : next;
		flags = MAP_LOOKUP_FIXED;
	}
	return MAP_NOTFOUND;
}

/* ---- addresses (check_addr_access) -------------------------------------- */

/* Cut buf at its last delim: Postfix's split_at_right().  false when
 * there is none. */
static bool cut_right(char *buf, int delim)
{
	char *p = strrchr(buf, delim);

	if (p == NULL)
		return false;
	*p = 0;
	return true;
}

/* "1.2.3.4", "1.2.3", "1.2", "1"; IPv6 likewise at each ':' of the
 * address as written ("2001:db8::1", "2001:db8:", "2001:db8", "2001"). */
static enum map_status search_addr(struct search *s, const char *addr)
{
	char buf[INET6_ADDRSTRLEN + 16];
	int delim = strchr(addr, ':') ? ':' : '.', flags = 0;
	enum map_status st;

	if (strlen(addr) >= sizeof buf)
		return MAP_NOTFOUND;    /* no address is that long */
	strcpy(buf, addr);
	do {
		if ((st = try_key(s, buf, flags)) != MAP_NOTFOUND)
			return st;
		flags = MAP_LOOKUP_FIXED;
	} while (cut_right(buf, delim));
	return MAP_NOTFOUND;
}

/* ---- mail addresses (check_mail_access) --------------------------------- */

/* Postfix's split_addr(): may this local part lose its extension? */
static bool splittable(const struct config *cfg, const char *local,
		       const char *delims)
{
	size_t len = strlen(local);

	if (strcasecmp(local, "postmaster") == 0
	    || strcasecmp(local, "MAILER-DAEMON") == 0
	    || strcasecmp(local, conf_or(cfg, "double_bounce_sender",
					 "double-bounce")) == 0)
		return false;
	if (strchr(delims, '-') != NULL
	    && (strncasecmp(local, "owner-", 6) == 0
		|| (len > 8 && strcasecmp(local + len - 8, "-request") == 0)))
		return false;
	return true;
}

/* The length of the local part without its extension ("user+ext" with
 * recipient_delimiter "+": 4), or 0 when it has none to strip. */
static size_t bare_length(const struct config *cfg, const char *local,
			  size_t llen)
{
	const char *delims = conf_or(cfg, "recipient_delimiter", "");
	char *copy;
	size_t cut;
	bool ok;

	if (*delims == 0 || llen == 0)
		return 0;
	if ((copy = strndup(local, llen)) == NULL)
		msg_fatal("out of memory");
	cut = strcspn(copy, delims);
	ok = cut > 0 && cut < llen && splittable(cfg, copy, delims);
	free(copy);
	return ok ? cut : 0;
}

/* Postfix's resolver makes "user" into "user@$myorigin" (unless
 * append_at_myorigin = no); malloc'ed. */
static char *qualified(const struct config *cfg, const char *addr)
{
	const char *origin = conf_or(cfg, "myorigin", "localhost");
	bool append = strrchr(addr, '@') == NULL
		&& !(cfg && cfg_lookup(cfg, "append_at_myorigin")
		     && !cfg_bool(cfg, "append_at_myorigin"));
	size_t n = strlen(addr) + (append ? strlen(origin) + 2 : 1);
	char *q = malloc(n);

	if (q == NULL)
		msg_fatal("out of memory");
	snprintf(q, n, "%s%s%s", addr, append ? "@" : "", append ? origin : "");
	return q;
}

/* A key made of the first n bytes of a and then b; malloc'ed. */
static char *key_of(const char *a, size_t n, const char *b)
{
	char *k;

	if (asprintf(&k, "%.*s%s", (int)n, a, b) < 0)
		msg_fatal("out of memory");
	return k;
}

/* user+ext@domain, user@domain, domain and its parents, user+ext@,
 * user@ (access(5) "EMAIL ADDRESS EXTENSION"). */
static enum map_status search_mail(struct search *s, const struct config *cfg,
				   const char *value)
{
	char *addr = qualified(cfg, value), *key, *at = strrchr(addr, '@');
	size_t llen, blen;
	enum map_status st = MAP_NOTFOUND;

	if (at == NULL)         /* Postfix: "no @domain in address": no lookup */
		goto done;
	llen = (size_t)(at - addr);
	blen = bare_length(cfg, addr, llen);
	if ((st = try_key(s, addr, 0)) != MAP_NOTFOUND)
		goto done;
	if (blen) {
		key = key_of(addr, blen, at);
		st = try_key(s, key, MAP_LOOKUP_FIXED);
		free(key);
		if (st != MAP_NOTFOUND)
			goto done;
	}
	if ((st = search_domain(s, cfg, at + 1, MAP_LOOKUP_FIXED)) != MAP_NOTFOUND)
		goto done;
	key = key_of(addr, llen, "@");
	st = llen ? try_key(s, key, MAP_LOOKUP_FIXED) : MAP_NOTFOUND;
	free(key);
	if (st != MAP_NOTFOUND || blen == 0)
		goto done;
	key = key_of(addr, blen, "@");
	st = try_key(s, key, MAP_LOOKUP_FIXED);
	free(key);
done:
	free(addr);
	return st;
}

/* ---- the entry point ---------------------------------------------------- */

enum map_status map_access_lookup(const struct config *cfg,
				  struct map_list *ml, enum map_key_kind kind,
				  const char *value, const char **result,
				  map_access_trace_fn trace, void *trace_arg)
{
	struct search s = { ml, result, trace, trace_arg };

	if (value == NULL)
		return MAP_NOTFOUND;
	switch (kind) {
	case MAP_KEY_ADDRESS:
		if (*value == 0)
			return try_key(&s, conf_or(cfg, "smtpd_null_access_lookup_key",
						   "<>"), 0);
		return search_mail(&s, cfg, value);
	case MAP_KEY_DOMAIN:
	case MAP_KEY_HOSTNAME:
		return search_domain(&s, cfg, value, 0);
	case MAP_KEY_ADDR:
		return search_addr(&s, value);
	}
	return MAP_NOTFOUND;
}
