/*
 * restriction_client.c - Postfix's built-in client restrictions.
 *
 *   permit_mynetworks               OK when the client is in mynetworks
 *   permit_inet_interfaces          OK when the client address is one of
 *                                   this machine's (inet_interfaces,
 *                                   proxy_interfaces)
 *   permit_sasl_authenticated       OK once the client has logged in with
 *                                   AUTH (DUNNO until then)
 *   reject_unknown_client_hostname  "Client host rejected: cannot find
 *                                   your hostname, [ip]" 450 4.7.25
 *                                   (unknown_client_reject_code) when the
 *                                   client has no verified name
 *   reject_unknown_reverse_client_hostname
 *                                   "Client host rejected: cannot find
 *                                   your reverse hostname, [ip]" 450 4.7.1
 *                                   when it has no PTR name at all
 *   (reject_unknown_client is the old name of the first.)
 *
 * As in Postfix, a temporary DNS failure answers 450 even when the reply
 * code parameter says 5XX.  The session records the names, not why a
 * lookup failed, so with a 5XX code and an "unknown" name the lookup is
 * asked again here to tell a temporary failure from a permanent one
 * (with smtpd_peername_lookup = no the name is unknown for good).
 *
 * mynetworks: when main.cf sets it, its value is the list: networks
 * (192.0.2.0/24, [2001:db8::]/32), addresses, host names (matching the
 * verified client name; subdomains too per parent_domain_matches_
 * subdomains), type:table (the address, then the name, looked up),
 * /file/name (more of the same), "!" negation; the first match decides.
 * When main.cf does not set it, it is what Postfix computes: the networks
 * mynetworks_style derives from this machine's interfaces, loopback
 * included: host (their addresses: 127.0.0.1, not 127.0.0.2), subnet
 * (their subnets), class (their whole class A/B/C networks; IPv6 as
 * subnet).  The interfaces are read once per process.  (The registered
 * default "127.0.0.0/8 [::1]/128" is only what $mynetworks expands to in
 * other parameters.)
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config.h"
#include "inet_addr.h"
#include "log.h"
#include "map.h"
#include "restriction_builtin.h"
#include "route_internal.h"
#include "smtp_session.h"

#define LIST_FILE_MAX	(1024 * 1024)
#define NET_TEXT_MAX	80

enum { NET_NOTFOUND = 0, NET_FOUND = 1, NET_NEGATED = 2, NET_FAIL = -1 };

/* ---- tables named in mynetworks --------------------------------------- */

/* A table stays open from its first use on (route_tables_open()). */
static int table_match(const char *spec, const char *name, const char *addr)
{
	struct map_list *ml = route_tables_open("mynetworks", spec);
	const char *v;
	enum map_status st = MAP_NOTFOUND;

	if (ml == NULL)
		return NET_FAIL;
	st = map_list_lookup(ml, addr, &v);
	if (st == MAP_NOTFOUND && strcmp(name, "unknown") != 0)
		st = map_list_lookup(ml, name, &v);
	if (st == MAP_TEMPFAIL)
		return NET_FAIL;
	return st == MAP_FOUND ? NET_FOUND : NET_NOTFOUND;
}

/* ---- list matching ------------------------------------------------------ */

static bool looks_numeric(const char *item)
{
	return item[0] == '[' || strchr(item, ':') != NULL ||
	       strspn(item, "0123456789./") == strlen(item);
}

static bool name_match(const struct config *cfg, const char *pattern,
		       const char *name)
{
	size_t ln = strlen(name), lp = strlen(pattern);

	if (strcmp(name, "unknown") == 0)
		return false;
	if (strcasecmp(name, pattern) == 0)
		return true;
	if (lp == 0 || lp >= ln)
		return false;
	if (pattern[0] == '.')
		return strcasecmp(name + ln - lp, pattern) == 0;
	return route_parent_style(cfg, "mynetworks") && name[ln - lp - 1] == '.'
	       && strcasecmp(name + ln - lp, pattern) == 0;
}

static int match_words(const struct config *cfg, char **words,
		       const char *name, const char *addr, int depth,
		       char *hit, size_t hitlen);

static int file_match(const struct config *cfg, const char *path,
		      const char *name, const char *addr, int depth)
{
	FILE *fp = fopen(path, "r");
	char *text = NULL, **words;
	struct stat st;
	size_t n = 0;
	int rc;

	if (fp != NULL && fstat(fileno(fp), &st) == 0 && st.st_size <= LIST_FILE_MAX) {
		text = route_alloc((size_t)st.st_size + 1);
		n = fread(text, 1, (size_t)st.st_size, fp);
		text[n] = 0;
		for (char *p = text; (p = strchr(p, '#')) != NULL;)
			while (*p && *p != '\n')
				*p++ = ' ';
	}
	if (fp != NULL)
		fclose(fp);
	if (text == NULL) {
		msg_warn("mynetworks: cannot read %s", path);
		return NET_FAIL;
	}
	words = config_split_list(text);
	rc = match_words(cfg, words, name, addr, depth + 1, NULL, 0);
	cfg_list_free(words);
	free(text);
	return rc;
}

static int item_match(const struct config *cfg, const char *item,
		      const char *name, const char *addr, int depth)
{
	bool negate = false;
	int rc;

	while (*item == '!') {
		negate = !negate;
		item++;
	}
	if (*item == '/' && depth == 0)
		rc = file_match(cfg, item, name, addr, depth);
	else if (config_is_table(item))
		rc = table_match(item, name, addr);
	else if (looks_numeric(item))
		rc = inet_match_pattern(item, addr) ? NET_FOUND : NET_NOTFOUND;
	else
		rc = name_match(cfg, item, name) ? NET_FOUND : NET_NOTFOUND;
	return rc == NET_FOUND && negate ? NET_NEGATED : rc;
}

/* The first entry that says something decides; it goes to hit (may be
 * NULL) for the trace. */
static int match_words(const struct config *cfg, char **words,
		       const char *name, const char *addr, int depth,
		       char *hit, size_t hitlen)
{
	int rc = NET_NOTFOUND;

	for (int i = 0; words && words[i] && rc == NET_NOTFOUND; i++)
		if ((rc = item_match(cfg, words[i], name, addr, depth)) != NET_NOTFOUND
		    && hit != NULL)
			snprintf(hit, hitlen, "%s", words[i]);
	return rc;
}

/* ---- mynetworks_style ------------------------------------------------------ */

static char **style_nets;       /* computed once per process */
static char style_used[16];

static int style_prefix(const char *style, const struct sockaddr *sa,
			const struct sockaddr *mask)
{
	int bits = 0;
	const unsigned char *m;
	size_t len;

	if (sa->sa_family == AF_INET) {
		m = (const void *)&((const struct sockaddr_in *)mask)->sin_addr;
		len = 4;
	} else {
		m = (const void *)&((const struct sockaddr_in6 *)mask)->sin6_addr;
		len = 16;
	}
	if (strcasecmp(style, "host") == 0)
		return (int)len * 8;
	for (size_t i = 0; i < len; i++)
		for (int b = 7; b >= 0; b--)
			bits += (m[i] >> b) & 1;
	if (strcasecmp(style, "class") == 0 && sa->sa_family == AF_INET) {
		unsigned char first = ((const unsigned char *)
			&((const struct sockaddr_in *)sa)->sin_addr)[0];

		return first < 128 ? 8 : first < 192 ? 16 : first < 224 ? 24 : -1;
	}
	return bits;
}

static void add_style_net(struct route_strv *sv, const char *style,
			  const struct ifaddrs *p)
{
	char text[64], net[NET_TEXT_MAX];
	int port, bits;

	if (p->ifa_addr == NULL || p->ifa_netmask == NULL ||
	    (p->ifa_addr->sa_family != AF_INET && p->ifa_addr->sa_family != AF_INET6))
		return;
	if ((bits = style_prefix(style, p->ifa_addr, p->ifa_netmask)) < 0)
		return;
	inet_sockaddr_text(p->ifa_addr, text, sizeof text, &port);
	text[strcspn(text, "%")] = 0;
	if (p->ifa_addr->sa_family == AF_INET6)
		snprintf(net, sizeof net, "[%s]/%d", text, bits);
	else
		snprintf(net, sizeof net, "%s/%d", text, bits);
	route_strv_add(sv, route_strdup(net));
}

static char **style_networks(const char *style)
{
	struct route_strv sv = { 0 };
	struct ifaddrs *ifa = NULL;

	if (style_nets != NULL && strcasecmp(style_used, style) == 0)
		return style_nets;
	route_strv_free(style_nets);
	style_nets = NULL;
	if (getifaddrs(&ifa) == 0) {
		for (struct ifaddrs *p = ifa; p; p = p->ifa_next)
			add_style_net(&sv, style, p);
		freeifaddrs(ifa);
	}
	if (sv.v == NULL)
		route_strv_add(&sv, route_strdup("127.0.0.0/8"));
	snprintf(style_used, sizeof style_used, "%s", style);
	style_nets = sv.v;
	return style_nets;
}

/* host, subnet or class; anything else is read as host (the fewest
 * networks), with a warning. */
static const char *style_of(const struct config *cfg)
{
	const char *style = cfg_lookup(cfg, "mynetworks_style");

	if (style == NULL || strcasecmp(style, "host") == 0 ||
	    strcasecmp(style, "subnet") == 0 || strcasecmp(style, "class") == 0)
		return style ? style : "host";
	msg_warn("bad mynetworks_style value: %s; using host", style);
	return "host";
}

/* Is the client in mynetworks?  NET_FOUND, NET_NOTFOUND or NET_FAIL;
 * the deciding entry goes to hit.  Unset, mynetworks is what
 * mynetworks_style derives from the interfaces, as Postfix computes its
 * default. */
static int in_mynetworks(struct rcheck *c, const char *name, const char *addr,
			 char *hit, size_t hitlen)
{
	const struct config *cfg = rcheck_config(c);
	char **words;
	int rc;

	if (!cfg_is_set(cfg, "mynetworks")) {
		rc = match_words(cfg, style_networks(style_of(cfg)), name, addr, 1,
				 hit, hitlen);
		return rc == NET_NEGATED ? NET_NOTFOUND : rc;
	}
	words = cfg_list(cfg, "mynetworks");
	rc = match_words(cfg, words, name, addr, 0, hit, hitlen);
	cfg_list_free(words);
	return rc == NET_NEGATED ? NET_NOTFOUND : rc;
}

/* ---- the restrictions ----------------------------------------------------- */

static int permit_mynetworks(struct rcheck *c, const char *arg, void *data)
{
	struct smtp_session *s = rcheck_session(c);
	char hit[NET_TEXT_MAX] = "";
	int rc = in_mynetworks(c, s->client_name, s->client_addr, hit, sizeof hit);

	(void)arg, (void)data;
	rcheck_trace(c, "%s: %s mynetworks%s%s%s", s->client_id,
		     rc == NET_FOUND ? "in" : rc == NET_FAIL ? "lookup failure for"
		     : "not in", hit[0] ? " (" : "", hit, hit[0] ? ")" : "");
	if (rc == NET_FAIL)
		return rb_lookup_failure(c, s->client_id);
	return rc == NET_FOUND ? RV_OK : RV_DUNNO;
}

static int permit_inet_interfaces(struct rcheck *c, const char *arg, void *data)
{
	struct smtp_session *s = rcheck_session(c);
	char literal[80];
	int rc;

	(void)arg, (void)data;
	snprintf(literal, sizeof literal, strchr(s->client_addr, ':')
		 ? "[IPv6:%s]" : "[%s]", s->client_addr);
	rc = route_domain_is_local(rcheck_config(c), literal);
	rcheck_trace(c, "%s: %s one of this machine's addresses", s->client_addr,
		     rc == ROUTE_FOUND ? "is" : "is not");
	return rc == ROUTE_FOUND ? RV_OK : RV_DUNNO;
}

static int permit_sasl_authenticated(struct rcheck *c, const char *arg,
				     void *data)
{
	struct smtp_session *s = rcheck_session(c);

	(void)arg, (void)data;
	if (s->sasl_username == NULL || *s->sasl_username == 0) {
		rcheck_trace(c, "not authenticated");
		return RV_DUNNO;
	}
	rcheck_trace(c, "authenticated as %s", s->sasl_username);
	return RV_OK;
}

/* unknown_client_reject_code, or 450 for a temporary failure. */
static int unknown_client_reply(struct rcheck *c, bool temporary,
				bool reverse)
{
	struct smtp_session *s = rcheck_session(c);

	if (reverse)
		return rb_reject(c, temporary ? NULL : "unknown_client_reject_code",
				 450, "4.7.1",
				 "Client host rejected: cannot find your reverse hostname, [%s]",
				 s->client_addr);
	return rb_reject(c, temporary ? NULL : "unknown_client_reject_code",
			 450, "4.7.25",
			 "Client host rejected: cannot find your hostname, [%s]",
			 s->client_addr);
}

static int reverse_done(struct rcheck *c, enum rb_dns_result res, void *arg)
{
	(void)arg;
	rcheck_trace(c, "reverse lookup asked again: %s",
		     res == RB_DNS_TEMPFAIL ? "temporary failure" : "no name");
	if (res == RB_DNS_FOUND)        /* it answers now: still unknown here */
		res = RB_DNS_NOTFOUND;
	return unknown_client_reply(c, res == RB_DNS_TEMPFAIL, true);
}

static int verified_done(struct rcheck *c, enum rb_dns_result res, void *arg)
{
	(void)arg;
	rcheck_trace(c, "name lookup asked again: %s",
		     res == RB_DNS_TEMPFAIL ? "temporary failure" : "no verified name");
	return unknown_client_reply(c, res == RB_DNS_TEMPFAIL, false);
}

/* Would the configured code be permanent?  Then a temporary cause must
 * be told apart (see the top of this file). */
static bool must_ask_again(struct rcheck *c)
{
	long long code = 450, lookup = 1;

	(void)cfg_lookup_number(rcheck_config(c), "unknown_client_reject_code", &code);
	(void)cfg_lookup_number(rcheck_config(c), "smtpd_peername_lookup", &lookup);
	return code >= 500 && lookup != 0;
}

static int client_unknown(struct rcheck *c, bool reverse)
{
	struct smtp_session *s = rcheck_session(c);
	const char *name = reverse ? s->reverse_name : s->client_name;

	if (name[0] != 0 && strcmp(name, "unknown") != 0) {
		rcheck_trace(c, "%s name: %s", reverse ? "reverse" : "verified", name);
		return RV_DUNNO;
	}
	rcheck_trace(c, "no %s name for %s", reverse ? "reverse" : "verified",
		     s->client_addr);
	if (!must_ask_again(c))
		return unknown_client_reply(c, false, reverse);
	return rb_dns_client(c, s->client_addr, reverse,
			     reverse ? reverse_done : verified_done, NULL);
}

static int unknown_client_hostname(struct rcheck *c, const char *arg, void *data)
{
	(void)arg, (void)data;
	return client_unknown(c, false);
}

static int unknown_reverse_hostname(struct rcheck *c, const char *arg, void *data)
{
	(void)arg, (void)data;
	return client_unknown(c, true);
}

const struct restriction_def restrictions_client[] = {
	{ "permit_mynetworks", 0, permit_mynetworks, NULL },
	{ "permit_inet_interfaces", 0, permit_inet_interfaces, NULL },
	{ "permit_sasl_authenticated", 0, permit_sasl_authenticated, NULL },
	{ "reject_unknown_client_hostname", 0, unknown_client_hostname, NULL },
	{ "reject_unknown_client", 0, unknown_client_hostname, NULL },
	{ "reject_unknown_reverse_client_hostname", 0, unknown_reverse_hostname, NULL },
	{ NULL, 0, NULL, NULL }
};
