/*
 * route_internal.h - what address rewriting (rewrite.c, virtual_alias.c)
 * and routing (resolve.c) share: Postfix's table search orders and list
 * matching (route_lookup.c).  Not for other subsystems: they use
 * rewrite.h and resolve.h.
 *
 * Every lookup here answers ROUTE_FOUND, ROUTE_NOTFOUND or ROUTE_FAIL.
 * ROUTE_FAIL means a table could not be opened or did not answer; the
 * helper has already logged a warning naming the parameter and the table,
 * and the caller turns it into a temporary failure (Postfix: "try again
 * later").  Strings handed back are malloc'ed and belong to the caller.
 */
#ifndef SLUICE_ROUTE_INTERNAL_H
#define SLUICE_ROUTE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

struct config;

enum { ROUTE_FAIL = -1, ROUTE_NOTFOUND = 0, ROUTE_FOUND = 1 };

/* How a domain list matches (Postfix's string_list and domain_list):
 * LIST_STRING is exact names and exact table keys (mydestination,
 * virtual_alias_domains, virtual_mailbox_domains); LIST_DOMAIN also
 * matches subdomains: ".example.com" always, "example.com" when the
 * parameter is listed in parent_domain_matches_subdomains, and tables
 * are asked for the parent domains too (relay_domains). */
enum list_style { LIST_STRING, LIST_DOMAIN };

/* ---- memory ---- */
char *route_strdup(const char *s);                  /* msg_fatal on ENOMEM */
char *route_strndup(const char *s, size_t n);
void *route_alloc(size_t n);                        /* zeroed */
char *route_concat(const char *a, const char *b, const char *c);

/* A growing NULL-terminated array of malloc'ed strings. */
struct route_strv {
	char **v;
	int n, cap;
};
void route_strv_add(struct route_strv *sv, char *s);    /* takes s */
void route_strv_free(char **v);

/* ---- addresses ---- */
/* The '@' before the domain (the last one outside quotes), or NULL. */
const char *route_at(const char *addr);
/* The domain part, or NULL when there is none. */
const char *route_domain_of(const char *addr);
/* Fold ASCII to lower case, in a malloc'ed copy. */
char *route_fold(const char *s);
/* recipient_delimiter (read by name: local delivery may own it), "" when
 * unset or unknown. */
const char *route_delimiters(const struct config *c);
/* Postfix's strip_addr(): the address without its extension
 * ("user+ext@dom" -> "user@dom"), *ext set to "+ext"; NULL (and *ext
 * NULL) when there is no extension to strip.  postmaster, MAILER-DAEMON,
 * double-bounce, owner-* and *-request (with '-' as a delimiter) are
 * never split. */
char *route_strip_ext(const struct config *c, const char *addr, char **ext);
/* Does list parameter `param` (propagate_unmatched_extensions) name
 * `cls`?  Unknown parameters read as Postfix's default. */
bool route_propagates(const struct config *c, const char *cls);
/* Is `name` listed in parent_domain_matches_subdomains? */
bool route_parent_style(const struct config *c, const char *name);

/* ---- tables ---- */
/* (route_tables_release(), which drops the tables kept open, is public:
 * resolve.h.) */
/* The tables of `value` (a list of "type:name"), opened at their first
 * use and kept open (this file's cache); NULL, with a warning naming
 * `param`, when one cannot be opened. */
struct map_list *route_tables_open(const char *param, const char *value);
/* Search the tables of map parameter `param` for `key`, first table
 * first.  `partial` keys (Postfix's DICT_FLAG_FIXED searches) skip
 * pattern tables (regexp:, pcre:, cidr:).  map.c folds keys for the
 * types that fold. */
int route_table_find(const struct config *c, const char *param,
		     const char *key, bool partial, char **value);
/* Postfix's mail_addr_find(), the canonical(5) and virtual(5) order:
 * user+ext@domain, user@domain, then (when domain is $myorigin or local)
 * user+ext and user, then @domain.  *ext (may be NULL) gets the
 * extension that had to be dropped to find the key, or NULL. */
int route_addr_find(const struct config *c, const char *param,
		    const char *addr, char **value, char **ext);

/* ---- domain lists ---- */
/* Match `domain` against list parameter `param`: names, !negation,
 * type:table, /file/name. */
int route_list_match(const struct config *c, const char *param,
		     const char *domain, enum list_style style);
/* An address literal's address: "[192.0.2.1]" -> "192.0.2.1",
 * "[IPv6:2001:db8::1]" -> "2001:db8::1"; false when domain is not a
 * valid literal. */
bool route_literal_address(const char *domain, char *buf, size_t len);
/* Postfix's resolve_local(): in mydestination, or an [address literal]
 * of inet_interfaces or proxy_interfaces. */
int route_domain_is_local(const struct config *c, const char *domain);

/* ---- the rewriting resolve.c needs (rewrite.c) ---- */
/* Postfix's mail_addr_map(): route_addr_find, "@otherdomain" results
 * keep the user, a result list is split into addresses, each put in
 * canonical form, the unmatched extension carried over when `propagate`.
 * *out is a NULL-terminated malloc'ed array (route_strv_free). */
int route_addr_map(const struct config *c, const char *param,
		   const char *addr, bool propagate, char ***out, int *n);

#endif
