/*
 * access_server.c - the access plugin's DNS checks, Postfix's
 * check_server_access(): check_*_mx_access (the domain's MX hosts),
 * check_*_ns_access (its name servers) and check_*_a_access (its own
 * addresses), for the client name, the unverified reverse client name,
 * the helo name, and the sender's and recipient's domains.
 *
 * The order is Postfix's, host by host: a numeric host is looked up as an
 * address; otherwise its name and parent domains (not for *_a_access),
 * then each of its addresses and their prefixes.  The first key found
 * decides.  As in Postfix:
 *   - a domain without MX records is its own MX host; one with a null
 *     MX (RFC 7505) is not checked;
 *   - a domain without NS records is looked up in its parent domains
 *     until one has some;
 *   - an [address literal] is its own MX host and A record (checked as
 *     an address); it has no name servers;
 *   - a DNS failure is logged and the restriction has no opinion;
 *   - a host whose addresses cannot be found is skipped (logged for MX
 *     and NS hosts), and so are addresses of a family inet_protocols
 *     does not use;
 *   - OK from these tables is a configuration error (ACCESS_FORBID_OK).
 *
 * Every DNS lookup is asynchronous: the restriction answers
 * SLUICE_PENDING and resumes the session when the last lookup has
 * answered.  The lookup in flight is the session's plugin data, so the
 * close hook can cancel it.  One check per session is pending at a time
 * (the session waits for it).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "access.h"

struct server_check {
	sluice_txn *t;
	sluice_map *m;
	const char *restriction;
	struct access_facts f;
	int type;               /* SLUICE_DNS_MX, SLUICE_DNS_NS, SLUICE_DNS_ADDRS */
	char *domain;           /* whose servers (NS: moves up to the parents) */
	char **servers;
	int n, i;               /* servers, and the one being checked */
	sluice_dns *q;          /* the lookup in flight, or NULL */
};

static const char *type_name(int type)
{
	return type == SLUICE_DNS_MX ? "MX" : type == SLUICE_DNS_NS ? "NS" : "A";
}

static void check_free(struct server_check *c)
{
	for (int i = 0; i < c->n; i++)
		free(c->servers[i]);
	free(c->servers);
	free(c->domain);
	free(c);
}

/* The end: forget the check, then resume the session (last). */
static void finish(struct server_check *c, int verdict)
{
	sluice_txn *t = c->t;

	sluice_set_data(t, NULL);
	check_free(c);
	sluice_resume(t, verdict);
}

static void set_servers(struct server_check *c, char **names, int n)
{
	c->servers = sluice_calloc((size_t)(n ? n : 1) * sizeof *c->servers);
	for (int i = 0; i < n; i++)
		c->servers[i] = sluice_strdup(names[i]);
	c->n = n;
	c->i = 0;
}

/* Postfix's valid_hostaddr(). */
static bool numeric(const char *s)
{
	unsigned char buf[16];

	return inet_pton(strchr(s, ':') ? AF_INET6 : AF_INET, s, buf) == 1;
}

/* May an address of this family be checked (inet_protocols, as
 * Postfix's check_server_access skips the families it does not use)? */
static bool family_used(sluice_txn *t, const char *addr)
{
	const char *p = sluice_txn_conf_str(t, "inet_protocols");

	if (p == NULL || *p == 0 || strcasecmp(p, "all") == 0)
		return true;
	return strstr(p, strchr(addr, ':') ? "ipv6" : "ipv4") != NULL;
}

/* Look key up; true when that decided the check (and it is finished). */
static bool decided(struct server_check *c, int kind, const char *key)
{
	const char *value = NULL;
	int found = sluice_access_lookup(c->t, c->m, kind, key, &value);

	if (found == 0)
		return false;
	finish(c, access_apply(c->t, c->restriction, found, value, &c->f,
			       ACCESS_FORBID_OK));
	return true;
}

static void next_server(struct server_check *c);

/* The addresses of server c->i. */
static void on_addrs(void *arg, int status, char **addrs, int n)
{
	struct server_check *c = arg;

	c->q = NULL;
	if (status != 0 && c->type != SLUICE_DNS_ADDRS)
		sluice_txn_log(c->t, SLUICE_LOG_WARN, "Unable to look up %s host "
			       "%s for %s %s: %s", type_name(c->type),
			       c->servers[c->i], c->f.reply_class, c->f.reply_name,
			       status < 0 ? "Host not found, try again"
			       : "Host not found");
	for (int i = 0; status == 0 && i < n; i++)
		if (family_used(c->t, addrs[i])
		    && decided(c, SLUICE_KEY_ADDR, addrs[i]))
			return;
	c->i++;
	next_server(c);
}

/* Check the servers from c->i on, host by host. */
static void next_server(struct server_check *c)
{
	sluice_dns *q;
	const char *host;

	for (; c->i < c->n; c->i++) {
		host = c->servers[c->i];
		if (numeric(host)) {
			if (decided(c, SLUICE_KEY_ADDR, host))
				return;
			continue;
		}
		if (c->type != SLUICE_DNS_ADDRS
		    && decided(c, SLUICE_KEY_HOSTNAME, host))
			return;
		/* c is gone when q is NULL: the answer came at once. */
		if ((q = sluice_dns_lookup(host, SLUICE_DNS_ADDRS, on_addrs, c)))
			c->q = q;
		return;
	}
	finish(c, SLUICE_DUNNO);
}

static void lookup_servers(struct server_check *c);

static void explain_servers(struct server_check *c, char **names, int n)
{
	char list[1024] = "";
	size_t len = 0;

	for (int i = 0; i < n && len < sizeof list; i++)
		len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
					i ? " " : "", names[i]);
	sluice_explain(c->t, "%s hosts of %s: %s", type_name(c->type),
		       c->domain, list);
}

/* The MX or NS answer for c->domain. */
static void on_servers(void *arg, int status, char **names, int n)
{
	struct server_check *c = arg;
	const char *parent;

	c->q = NULL;
	if (status == 0 && c->type == SLUICE_DNS_MX && n == 1
	    && strcmp(names[0], ".") == 0) {
		sluice_explain(c->t, "%s publishes a null MX: not checked",
			       c->domain);
		finish(c, SLUICE_DUNNO);
		return;
	}
	if (status == 1 && c->type == SLUICE_DNS_MX) {
		sluice_explain(c->t, "%s has no MX: checking it as its own MX "
			       "host", c->domain);
		set_servers(c, &c->domain, 1);
	} else if (status == 1 && (parent = strchr(c->domain, '.')) != NULL
		   && parent[1] != 0) {
		char *up = sluice_strdup(parent + 1);     /* NS: try the parent */

		free(c->domain);
		c->domain = up;
		lookup_servers(c);
		return;
	} else if (status != 0) {
		sluice_txn_log(c->t, SLUICE_LOG_WARN, "Unable to look up %s host "
			       "for %s: %s", type_name(c->type), c->domain,
			       status < 0 ? "Host not found, try again"
			       : "Host not found");
		finish(c, SLUICE_DUNNO);
		return;
	} else {
		explain_servers(c, names, n);
		set_servers(c, names, n);
	}
	next_server(c);
}

static void lookup_servers(struct server_check *c)
{
	sluice_dns *q = sluice_dns_lookup(c->domain, c->type, on_servers, c);

	if (q)          /* otherwise answered already: c may be gone */
		c->q = q;
}

/* An [address literal]: checked as an address, for MX and A only. */
static int literal_check(sluice_txn *t, const char *restriction,
			 sluice_map *m, const char *domain, int type,
			 const struct access_facts *f)
{
	char addr[128];
	const char *value = NULL;
	size_t len = strlen(domain);
	int found;

	if (type == SLUICE_DNS_NS || len < 3 || domain[len - 1] != ']'
	    || len - 2 >= sizeof addr)
		return SLUICE_DUNNO;
	snprintf(addr, sizeof addr, "%.*s", (int)(len - 2), domain + 1);
	if (strncasecmp(addr, "IPv6:", 5) == 0)
		memmove(addr, addr + 5, strlen(addr + 5) + 1);
	if (!numeric(addr))
		return SLUICE_DUNNO;
	found = sluice_access_lookup(t, m, SLUICE_KEY_ADDR, addr, &value);
	return access_apply(t, restriction, found, value, f, ACCESS_FORBID_OK);
}

int access_server_check(sluice_txn *t, const char *restriction,
			const char *spec, enum access_target w, int dns_type)
{
	struct server_check *c;
	struct access_facts f;
	const char *domain;
	sluice_map *m;

	if (!access_facts(t, w, &f) || *f.key == 0
	    || ((w == AT_CLIENT || w == AT_REVERSE_CLIENT)
		&& strcasecmp(f.key, "unknown") == 0))
		return SLUICE_DUNNO;
	if ((m = access_table(t, restriction, spec)) == NULL)
		return access_config_error(t);
	domain = strrchr(f.key, '@') ? strrchr(f.key, '@') + 1 : f.key;
	if (*domain == 0)
		return SLUICE_DUNNO;
	if (*domain == '[')
		return literal_check(t, restriction, m, domain, dns_type, &f);
	c = sluice_calloc(sizeof *c);
	c->t = t;
	c->m = m;
	c->restriction = restriction;
	c->f = f;
	c->type = dns_type;
	c->domain = sluice_strdup(domain);
	sluice_set_data(t, c);
	if (dns_type == SLUICE_DNS_ADDRS) {     /* the domain is its own host */
		set_servers(c, &c->domain, 1);
		next_server(c);
	} else {
		lookup_servers(c);
	}
	return SLUICE_PENDING;  /* c may be gone: the answer may have come */
}

void access_server_close(sluice_txn *t)
{
	struct server_check *c = sluice_get_data(t);

	if (c == NULL)
		return;
	sluice_dns_cancel(c->q);
	sluice_set_data(t, NULL);
	check_free(c);
}
