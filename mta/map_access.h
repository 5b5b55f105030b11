/*
 * map_access.h - Postfix's access(5) search order over a table list.
 *
 * The restrictions that consult tables (check_client_access and the rest
 * of the check_*_access family, smtpd_sender_login_maps, ...) look a
 * value up as Postfix's smtpd_check.c does:
 *
 *  MAP_KEY_ADDRESS   "user+ext@domain": the full address, then (with a
 *                    recipient_delimiter) the address without extension;
 *                    the domain, then its parent domains as ".parent"
 *                    (or "parent" when parent_domain_matches_subdomains
 *                    lists smtpd_access_maps); then "user+ext@" and
 *                    "user@".  The null sender "" is looked up as
 *                    smtpd_null_access_lookup_key ("<>").
 *  MAP_KEY_DOMAIN    a domain and its parents, as above.
 *  MAP_KEY_HOSTNAME  a host name and its parents, as above.
 *  MAP_KEY_ADDR      an IP address; IPv4 then its shorter octet prefixes
 *                    (1.2.3.4, 1.2.3, 1.2, 1); IPv6 with its shorter
 *                    ":"-separated prefixes as Postfix does.
 *
 * Pattern tables (cidr, pcre, regexp) are asked the full key once
 * (MAP_LOOKUP_FIXED for the partial keys), as in Postfix.  Keys are
 * folded to lower case.  The first table and key that answer win.
 */
#ifndef SLUICE_MAP_ACCESS_H
#define SLUICE_MAP_ACCESS_H

#include "map.h"

struct config;

enum map_key_kind { MAP_KEY_ADDRESS, MAP_KEY_DOMAIN, MAP_KEY_HOSTNAME,
		    MAP_KEY_ADDR };

/* Called for every key tried, with its outcome (for `sluice explain`). */
typedef void (*map_access_trace_fn)(void *arg, const char *table,
				    const char *key, enum map_status st,
				    const char *value);

/* Search `ml` for `value` of `kind` under the config's
 * parent_domain_matches_subdomains, recipient_delimiter and
 * smtpd_null_access_lookup_key.  On MAP_FOUND, *result is the table's
 * answer (valid until the next lookup in that table).  trace may be NULL. */
enum map_status map_access_lookup(const struct config *cfg,
				  struct map_list *ml, enum map_key_kind kind,
				  const char *value, const char **result,
				  map_access_trace_fn trace, void *trace_arg);

#endif
