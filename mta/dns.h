/*
 * dns.h - asynchronous DNS lookups (c-ares) in the worker's event loop.
 *
 * One resolver channel per process, driven by libevent: lookups never
 * block the loop.  A lookup's callback runs in the loop exactly once,
 * unless the lookup was cancelled first (then never).  Lookups honour
 * /etc/hosts before DNS ("files, then bind", c-ares' default), so
 * 127.0.0.1 is "localhost" as it is to Postfix.
 *
 * dns_servers (sluice's parameter) replaces /etc/resolv.conf's servers,
 * e.g. "127.0.0.1:5353" for a test's own DNS server.
 */
#ifndef SLUICE_DNS_H
#define SLUICE_DNS_H

struct config;
struct event_base;
struct dns_req;

enum dns_status { DNS_OK = 0, DNS_NOTFOUND, DNS_TEMPFAIL };

typedef void (*dns_name_fn)(void *arg, enum dns_status st, const char *name);
/* addrs: numeric text, n of them (only valid during the call). */
typedef void (*dns_addrs_fn)(void *arg, enum dns_status st,
			     char **addrs, int n);

/* Start the process' resolver.  `servers` may be NULL or "" for the
 * system's.  0, or -1 (logged). */
int dns_start(struct event_base *base, const char *servers);
/* dns_start() with the dns_servers list of c (a list of "ip:port"). */
int dns_start_config(struct event_base *base, const struct config *c);
void dns_stop(void);

/* The callback may run before these return (an /etc/hosts answer); they
 * then return NULL.  Otherwise the handle serves only dns_cancel(). */
/* Reverse lookup (PTR) of a numeric address. */
struct dns_req *dns_lookup_ptr(const char *addr, dns_name_fn fn, void *arg);
/* Addresses (A and AAAA) of a name. */
struct dns_req *dns_lookup_addrs(const char *name, dns_addrs_fn fn, void *arg);
/* Forget a lookup: its callback will not run.  NULL is fine. */
void dns_cancel(struct dns_req *req);

/* ---- MX lookups (the SMTP client's routing) ---- */

/* How an MX lookup ended.  NODATA (the name exists, no MX) tells the
 * caller to fall back to the name's own addresses; NXDOMAIN that the
 * domain does not exist; NULL that it publishes RFC 7505's null MX
 * ("MX 0 .": it accepts no mail). */
enum dns_mx_status {
	DNS_MX_OK = 0, DNS_MX_NODATA, DNS_MX_NXDOMAIN, DNS_MX_NULL,
	DNS_MX_TEMPFAIL
};

/* One MX record: exchange host (no trailing dot) and preference. */
struct dns_mx {
	const char *host;
	int pref;
};

/* mx: n records sorted by preference, lowest (best) first; records of
 * equal preference keep the server's order.  Only valid during the call;
 * n > 0 only with DNS_MX_OK. */
typedef void (*dns_mx_fn)(void *arg, enum dns_mx_status st,
			  const struct dns_mx *mx, int n);

/* MX records of a domain (no search list, no /etc/hosts).  Same calling
 * rules as the lookups above: the callback may run before this returns
 * (then NULL is returned), and dns_cancel() forgets it. */
struct dns_req *dns_lookup_mx(const char *domain, dns_mx_fn fn, void *arg);

/* ---- records by type (plugins' sluice_dns_lookup, the *_ns_access and
 * *_a_access checks) ---- */

enum dns_rr_type { DNS_RR_A, DNS_RR_AAAA, DNS_RR_NS, DNS_RR_TXT };

/* v: n strings, valid only during the call: addresses in numeric form
 * (A: IPv4 only, AAAA: IPv6 only), name server names without the
 * trailing dot (NS), or the text of each TXT record, its strings joined
 * (TXT).  DNS_NOTFOUND covers both "no such name" and "no records of
 * that type".  No search list, no /etc/hosts.  Same calling rules as the
 * lookups above. */
typedef void (*dns_strs_fn)(void *arg, enum dns_status st, char **v, int n);
struct dns_req *dns_lookup_rr(const char *name, enum dns_rr_type type,
			      dns_strs_fn fn, void *arg);

/* PTR of a numeric address from DNS alone (no /etc/hosts), so that a
 * server failure (DNS_TEMPFAIL) is told from "no name" (DNS_NOTFOUND),
 * which dns_lookup_ptr() cannot do.  Same calling rules. */
struct dns_req *dns_lookup_ptr_dns(const char *addr, dns_name_fn fn, void *arg);

#endif
