/*
 * route_lookup.c - Postfix's table search orders and domain-list matching,
 * shared by address rewriting and routing (see route_internal.h).
 *
 * Rules kept from Postfix:
 *   - A parameter's tables are searched in the order given; the first
 *     that has the key answers.  Tables come from map.h, which folds the
 *     keys of the types that fold and re-reads a table rebuilt on disk;
 *     the map_list of each parameter value is kept open here.
 *   - Only the full address (and transport(5)'s "*") is given to pattern
 *     tables (regexp:, pcre:, cidr:); the derived "partial" keys (address
 *     without extension, bare local part, @domain, parent domains) go to
 *     fixed-string tables only, as Postfix's DICT_FLAG_FIXED searches do.
 *   - A table that cannot be opened or answered is a lookup failure, never
 *     a "not found": mail waits rather than taking a wrong route.
 *
 * Domain lists (mydestination, relay_domains, virtual_*_domains) accept
 * names, "!name" negation, type:table and /file/name entries, as Postfix's
 * match_list.  A /file is read when the list is matched; keep it small or
 * use a table.
 */
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config.h"
#include "inet_addr.h"
#include "log.h"
#include "map.h"
#include "resolve.h"
#include "route_internal.h"

#define LIST_FILE_MAX	(1024 * 1024)	/* a /file/name list larger is refused */

/* ---- memory ----------------------------------------------------------- */

void *route_alloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (p == NULL)
		msg_fatal("out of memory (%zu bytes) in address routing", n);
	return p;
}

char *route_strndup(const char *s, size_t n)
{
	char *p = route_alloc(n + 1);

	memcpy(p, s, n);
	return p;
}

char *route_strdup(const char *s)
{
	return route_strndup(s, strlen(s));
}

char *route_concat(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *p = route_alloc(la + lb + lc + 1);

	memcpy(p, a, la);
	memcpy(p + la, b, lb);
	memcpy(p + la + lb, c, lc);
	return p;
}

void route_strv_free(char **v)
{
	for (int i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* ---- addresses -------------------------------------------------------- */

const char *route_at(const char *addr)
{
	const char *at = NULL;
	bool quoted = false;

	for (const char *p = addr; *p; p++) {
		if (*p == '\\' && p[1] != 0)
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '@' && !quoted)
			at = p;
	}
	return at;
}

const char *route_domain_of(const char *addr)
{
	const char *at = route_at(addr);

	return at ? at + 1 : NULL;
}

void route_strv_add(struct route_strv *sv, char *s)
{
	if (sv->n + 1 >= sv->cap) {
		int cap = sv->cap ? sv->cap * 2 : 8;
		char **v = realloc(sv->v, (size_t)cap * sizeof *v);

		if (v == NULL)
			msg_fatal("out of memory in address routing");
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
}

char *route_fold(const char *s)
{
	char *p = route_strdup(s);

	for (char *q = p; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	return p;
}

const char *route_delimiters(const struct config *c)
{
	const char *d = cfg_lookup(c, "recipient_delimiter");

	return d ? d : "";
}

static bool list_has(const char *value, const char *word)
{
	char **v = config_split_list(value);
	bool hit = false;

	for (int i = 0; v && v[i] && !hit; i++)
		hit = strcasecmp(v[i], word) == 0;
	cfg_list_free(v);
	return hit;
}

bool route_propagates(const struct config *c, const char *cls)
{
	const char *v = cfg_lookup(c, "propagate_unmatched_extensions");

	return list_has(v ? v : "canonical, virtual", cls);
}

bool route_parent_style(const struct config *c, const char *name)
{
	return list_has(cfg_str(c, "parent_domain_matches_subdomains"), name);
}

/* Postfix's split_addr(): may this local part be split at all? */
static bool splittable(const struct config *c, const char *local,
		       const char *delims)
{
	const char *dbl = cfg_lookup(c, "double_bounce_sender");
	size_t len = strlen(local);

	if (strcasecmp(local, "postmaster") == 0 ||
	    strcasecmp(local, "MAILER-DAEMON") == 0 ||
	    strcasecmp(local, dbl ? dbl : "double-bounce") == 0)
		return false;
	if (strchr(delims, '-') != NULL &&
	    (strncasecmp(local, "owner-", 6) == 0 ||
	     (len > 8 && strcasecmp(local + len - 8, "-request") == 0)))
		return false;
	return true;
}

char *route_strip_ext(const struct config *c, const char *addr, char **ext)
{
	const char *delims = route_delimiters(c);
	const char *at = route_at(addr);
	size_t llen = at ? (size_t)(at - addr) : strlen(addr);
	char *local = route_strndup(addr, llen);
	size_t cut = strcspn(local, delims);
	char *out = NULL;

	*ext = NULL;
	if (*delims && cut > 0 && cut < llen && splittable(c, local, delims)) {
		*ext = route_strdup(local + cut);
		local[cut] = 0;
		out = route_concat(local, at ? at : "", "");
	}
	free(local);
	return out;
}

/* ---- tables ----------------------------------------------------------- */

/*
 * The tables of each parameter value ("texthash:/a, hash:/b") stay open
 * from their first use on: map.c shares a table among all its users and
 * re-reads it when its file changes, so keeping the references here
 * costs nothing and saves opening per lookup.  This cache is this file's
 * only state; like the tables it serves one thread.
 */
struct table_cache {
	char *value;
	struct map_list *ml;
	struct table_cache *next;
};

static struct table_cache *tables;

struct map_list *route_tables_open(const char *param, const char *value)
{
	struct table_cache *t;
	char err[512];
	struct map_list *ml;

	for (t = tables; t != NULL; t = t->next)
		if (strcmp(t->value, value) == 0)
			return t->ml;
	if ((ml = map_list_open(value, err, sizeof err)) == NULL) {
		msg_warn("%s: %s", param, err);
		return NULL;
	}
	t = route_alloc(sizeof *t);
	t->value = route_strdup(value);
	t->ml = ml;
	t->next = tables;
	tables = t;
	return ml;
}

void route_tables_release(void)
{
	while (tables != NULL) {
		struct table_cache *t = tables;

		tables = t->next;
		map_list_free(t->ml);
		free(t->value);
		free(t);
	}
}

/* The tables of `value`: ROUTE_FOUND with *value, ROUTE_NOTFOUND or
 * ROUTE_FAIL. */
static int tables_find(const char *param, const char *value, const char *key,
		       bool partial, char **result)
{
	struct map_list *ml = route_tables_open(param, value);
	const char *v = NULL;
	enum map_status st;

	*result = NULL;
	if (ml == NULL)
		return ROUTE_FAIL;
	st = map_list_lookup_flags(ml, key, partial ? MAP_LOOKUP_FIXED : 0, &v);
	if (st == MAP_TEMPFAIL) {
		msg_warn("%s: table lookup failure for \"%s\"", param, key);
		return ROUTE_FAIL;
	}
	if (st != MAP_FOUND)
		return ROUTE_NOTFOUND;
	*result = route_strdup(v ? v : "");
	return ROUTE_FOUND;
}

int route_table_find(const struct config *c, const char *param,
		     const char *key, bool partial, char **value)
{
	const char *v = cfg_str(c, param);

	*value = NULL;
	if (*v == 0)
		return ROUTE_NOTFOUND;
	return tables_find(param, v, key, partial, value);
}

/* user+ext@domain, then user@domain */
static int find_full(const struct config *c, const char *param,
		     const char *addr, const char *bare, char **value,
		     bool *stripped)
{
	int rc = route_table_find(c, param, addr, false, value);

	*stripped = false;
	if (rc == ROUTE_NOTFOUND && bare != NULL) {
		rc = route_table_find(c, param, bare, true, value);
		*stripped = rc == ROUTE_FOUND;
	}
	return rc;
}

/* Is the bare local part a key for this domain?  $myorigin or local. */
static int local_key_domain(const struct config *c, const char *domain)
{
	if (strcasecmp(domain, cfg_str(c, "myorigin")) == 0)
		return ROUTE_FOUND;
	return route_domain_is_local(c, domain);
}

/* user+ext, then user (the address parts before '@') */
static int find_local(const struct config *c, const char *param,
		      const char *addr, const char *bare, char **value,
		      bool *stripped)
{
	char *key = route_strndup(addr, (size_t)(route_at(addr) - addr));
	int rc = route_table_find(c, param, key, true, value);

	free(key);
	*stripped = false;
	if (rc == ROUTE_NOTFOUND && bare != NULL) {
		key = route_strndup(bare, (size_t)(route_at(bare) - bare));
		rc = route_table_find(c, param, key, true, value);
		*stripped = rc == ROUTE_FOUND;
		free(key);
	}
	return rc;
}

/* The search order itself; *stripped when the extension was dropped. */
static int addr_search(const struct config *c, const char *param,
		       const char *addr, const char *bare, char **value,
		       bool *stripped)
{
	const char *domain = route_domain_of(addr);
	int rc = find_full(c, param, addr, bare, value, stripped);

	if (rc != ROUTE_NOTFOUND || domain == NULL)
		return rc;
	if ((rc = local_key_domain(c, domain)) == ROUTE_FAIL)
		return rc;
	if (rc == ROUTE_FOUND &&
	    (rc = find_local(c, param, addr, bare, value, stripped)) != ROUTE_NOTFOUND)
		return rc;
	return route_table_find(c, param, domain - 1, true, value);
}

int route_addr_find(const struct config *c, const char *param,
		    const char *addr, char **value, char **ext)
{
	char *extension = NULL;
	char *bare = route_strip_ext(c, addr, &extension);
	bool stripped = false;
	int rc;

	*value = NULL;
	rc = addr_search(c, param, addr, bare, value, &stripped);
	if (ext != NULL)
		*ext = stripped ? extension : NULL;
	if (ext == NULL || !stripped)
		free(extension);
	free(bare);
	return rc;
}

/* ---- domain lists ----------------------------------------------------- */

/* A table entry of a list: the name, then (LIST_DOMAIN) its parents as
 * ".parent" or, in parent style, "parent", from fixed-string tables. */
static int match_table(const char *param, const char *spec, const char *name,
		       enum list_style style, bool parent)
{
	const char *entry = name;
	char *v = NULL;
	int rc;

	for (;;) {
		rc = tables_find(param, spec, entry, entry != name, &v);
		free(v);
		if (rc != ROUTE_NOTFOUND || style == LIST_STRING ||
		    (entry = strchr(entry + 1, '.')) == NULL)
			return rc;
		if (parent)
			entry++;
	}
}

static bool match_name(const char *name, const char *pattern,
		       enum list_style style, bool parent)
{
	size_t ln = strlen(name), lp = strlen(pattern);
	const char *tail;

	if (strcasecmp(name, pattern) == 0)
		return true;
	if (style == LIST_STRING || lp == 0 || lp >= ln)
		return false;
	tail = name + ln - lp;
	if (pattern[0] == '.')
		return strcasecmp(tail, pattern) == 0;
	return parent && tail[-1] == '.' && strcasecmp(tail, pattern) == 0;
}

/* '#' starts a comment that runs to the end of the line. */
static void strip_comments(char *text)
{
	for (char *p = text; (p = strchr(p, '#')) != NULL;) {
		size_t n = strcspn(p, "\n");

		memset(p, ' ', n);
		p += n;
	}
}

/* The text of a /file/name list entry, or NULL (logged). */
static char *read_list_file(const char *param, const char *path)
{
	FILE *fp = fopen(path, "r");
	struct stat st;
	char *text = NULL;
	size_t n = 0;

	if (fp != NULL && fstat(fileno(fp), &st) == 0 &&
	    st.st_size <= LIST_FILE_MAX) {
		text = route_alloc((size_t)st.st_size + 1);
		n = fread(text, 1, (size_t)st.st_size, fp);
		if (ferror(fp)) {
			free(text);
			text = NULL;
		}
	} else if (fp != NULL) {
		errno = EFBIG;
	}
	if (text == NULL)
		msg_warn("%s: cannot read %s: %s", param, path, strerror(errno));
	if (fp != NULL)
		fclose(fp);
	if (text != NULL) {
		text[n] = 0;
		strip_comments(text);
	}
	return text;
}

static int match_item(const char *param, const char *item, const char *name,
		      enum list_style style, bool parent);

/* A /file/name entry: its words are the patterns (no nested files). */
static int match_file(const char *param, const char *path, const char *name,
		      enum list_style style, bool parent)
{
	char *text = read_list_file(param, path);
	char **words = text ? config_split_list(text) : NULL;
	int rc = text ? ROUTE_NOTFOUND : ROUTE_FAIL;

	for (int i = 0; words && words[i] && rc == ROUTE_NOTFOUND; i++)
		if (words[i][0] != '/')
			rc = match_item(param, words[i], name, style, parent);
	cfg_list_free(words);
	free(text);
	return rc;
}

/* One list entry: ROUTE_FOUND (matches), ROUTE_NOTFOUND (says nothing),
 * or ROUTE_FAIL.  A negated entry that matches answers -2. */
#define ROUTE_NEGATED	(-2)

static int match_item(const char *param, const char *item, const char *name,
		      enum list_style style, bool parent)
{
	bool negate = false;
	int rc;

	while (*item == '!') {
		negate = !negate;
		item++;
	}
	if (*item == '/')
		rc = match_file(param, item, name, style, parent);
	else if (config_is_table(item))
		rc = match_table(param, item, name, style, parent);
	else
		rc = match_name(name, item, style, parent) ? ROUTE_FOUND
							   : ROUTE_NOTFOUND;
	return rc == ROUTE_FOUND && negate ? ROUTE_NEGATED : rc;
}

static int match_value(const char *param, const char *value, const char *name,
		       enum list_style style, bool parent)
{
	char **items = config_split_list(value);
	int rc = ROUTE_NOTFOUND;

	for (int i = 0; items && items[i] && rc == ROUTE_NOTFOUND; i++)
		rc = match_item(param, items[i], name, style, parent);
	cfg_list_free(items);
	return rc == ROUTE_NEGATED ? ROUTE_NOTFOUND : rc;
}

int route_list_match(const struct config *c, const char *param,
		     const char *domain, enum list_style style)
{
	const char *value = cfg_lookup(c, param);

	if (value == NULL || *value == 0 || *domain == 0)
		return ROUTE_NOTFOUND;
	return match_value(param, value, domain, style,
			   style == LIST_DOMAIN && route_parent_style(c, param));
}

/* ---- the local machine ------------------------------------------------ */

bool route_literal_address(const char *domain, char *buf, size_t len)
{
	size_t n = strlen(domain);

	if (n < 3 || domain[0] != '[' || domain[n - 1] != ']')
		return false;
	domain++;
	n -= 2;
	if (n > 5 && strncasecmp(domain, "IPv6:", 5) == 0) {
		domain += 5;
		n -= 5;
	}
	if (n >= len)
		return false;
	memcpy(buf, domain, n);
	buf[n] = 0;
	return inet_match_pattern(buf, buf);    /* a valid address */
}

static bool machine_has_address(const char *addr)
{
	struct ifaddrs *ifa = NULL;
	bool hit = false;
	char text[64];

	if (getifaddrs(&ifa) < 0)
		return false;
	for (struct ifaddrs *p = ifa; p && !hit; p = p->ifa_next) {
		if (p->ifa_addr == NULL || (p->ifa_addr->sa_family != AF_INET &&
					    p->ifa_addr->sa_family != AF_INET6))
			continue;
		inet_sockaddr_text(p->ifa_addr, text, sizeof text, NULL);
		text[strcspn(text, "%")] = 0;   /* scope */
		hit = inet_match_pattern(text, addr);
	}
	freeifaddrs(ifa);
	return hit;
}

/* Is the address of a family inet_protocols enables ("all", "ipv4",
 * "ipv6", "ipv4, ipv6")? */
static bool protocol_enabled(const struct config *c, const char *addr)
{
	const char *protocols = cfg_str(c, "inet_protocols");
	bool v6 = strchr(addr, ':') != NULL;

	return *protocols == 0 || strcasecmp(protocols, "all") == 0 ||
	       strcasestr(protocols, v6 ? "ipv6" : "ipv4") != NULL;
}

/* Postfix's own_inet_addr() and proxy_inet_addr() for one address:
 * loopback-only means the addresses listeners bind then (127.0.0.1 and
 * ::1, master_listen.c), not all of 127.0.0.0/8. */
static bool own_address(const struct config *c, const char *addr)
{
	const char *ifaces = cfg_str(c, "inet_interfaces");
	const char *proxy = cfg_lookup(c, "proxy_interfaces");
	char **v;
	bool hit = false;

	if (!protocol_enabled(c, addr))
		hit = false;
	else if (*ifaces == 0 || strcasecmp(ifaces, "all") == 0)
		hit = machine_has_address(addr);
	else if (strcasecmp(ifaces, "loopback-only") == 0)
		hit = inet_match_pattern("127.0.0.1", addr) ||
		      inet_match_pattern("::1", addr);
	else
		hit = inet_match_list(c, "inet_interfaces", addr);
	v = proxy ? config_split_list(proxy) : NULL;
	for (int i = 0; v && v[i] && !hit; i++)
		hit = inet_match_pattern(v[i], addr);
	cfg_list_free(v);
	return hit;
}

int route_domain_is_local(const struct config *c, const char *domain)
{
	size_t n = strlen(domain);
	char *name, addr[64];
	int rc;

	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0 || domain[n - 1] == '.')
		return ROUTE_NOTFOUND;
	name = route_strndup(domain, n);
	rc = route_list_match(c, "mydestination", name, LIST_STRING);
	if (rc == ROUTE_NOTFOUND && route_literal_address(name, addr, sizeof addr))
		rc = own_address(c, addr) ? ROUTE_FOUND : ROUTE_NOTFOUND;
	free(name);
	return rc;
}
