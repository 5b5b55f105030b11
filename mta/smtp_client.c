/*
 * smtp_client.c - the SMTP and LMTP delivery agent: smtp_deliver().
 *
 * One call delivers one request: it reads the transport's parameters
 * (smtp_* or lmtp_*), takes the next hop apart, finds the servers, and
 * hands the mail to one connection after another until every recipient
 * has a result; then it calls done() once, from the event loop.
 *
 * Next hops, as Postfix writes them:
 *   domain, host:port       MX lookup (SMTP only), best preference first,
 *                           equal preferences shuffled; no MX: the name's
 *                           own addresses; a null MX (RFC 7505) bounces
 *   [host], [host]:port     no MX lookup; [ip] and [ipv6:...] too
 *   unix:/path, inet:h:p    LMTP only (LMTP never looks up MX)
 * The port defaults to smtp_tcp_port / lmtp_tcp_port.
 *
 * Walking the servers follows Postfix: every address of every MX host in
 * turn, at most smtp_mx_address_limit addresses and smtp_mx_session_limit
 * sessions that got past the handshake.  A server that cannot be reached,
 * greets with 4xx (or 5xx, smtp_skip_5xx_greeting) or fails softly
 * leaves its recipients for the next one; a hard failure is final at
 * once.  What is still open at the end is deferred with its last reason,
 * e.g. 4.4.1 "connect to mx[192.0.2.1]:25: Connection refused".
 *
 * A connection from the pool (smtp_client_cache.c) for the same transport
 * and next hop is used first; if it turns out dead before its first
 * reply, the delivery starts over as if it had not been there.
 */
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include <event2/event.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "smtp_client.h"
#include "tls_client.h"

enum step { STEP_ROUTE, STEP_NEXT_HOST, STEP_NEXT_ADDR, STEP_FINISH };

struct smtpc_delivery {
	struct event_base *base;
	struct delivery_request *req;
	bool lmtp;
	delivery_done_fn done;
	void *done_arg;
	struct smtpc_params par;
	/* the next hop */
	char domain[SMTPC_HOST_MAX];    /* name to route (or the unix path) */
	int port;                       /* 0: a unix socket */
	bool mx;                        /* look up MX records */
	char key[300];                  /* pool key */
	/* the servers */
	char hosts[SMTPC_MAX_HOSTS][SMTPC_HOST_MAX];
	int nhosts, host_i;
	char addrs[SMTPC_MAX_ADDRS][SMTPC_ADDR_MAX];
	int naddrs, addr_i;
	int addrs_tried, sessions;
	struct dns_req *dns;
	struct smtpc_conn *conn;
	/* results */
	struct smtpc_rstate *rs;
	int site_status;                /* the last reason for all */
	char site_dsn[16];
	char *site_text;
	bool soft_seen;                 /* some failure was temporary */
	struct event *step_ev;
	enum step step;
	/* TLS (smtp_client_tls.c) */
	const struct config *cfg;
	struct tlsc_policy tls;         /* the destination's policy */
	bool tls_plaintext;             /* this server again, without TLS */
};

/* ---- accessors (smtp_client.h) ---------------------------------------- */

struct delivery_request *smtpc_req(struct smtpc_delivery *d) { return d->req; }
const struct smtpc_params *smtpc_par(struct smtpc_delivery *d) { return &d->par; }
struct smtpc_rstate *smtpc_rs(struct smtpc_delivery *d, int i) { return &d->rs[i]; }
bool smtpc_is_lmtp(struct smtpc_delivery *d) { return d->lmtp; }
struct event_base *smtpc_base(struct smtpc_delivery *d) { return d->base; }
const struct tlsc_policy *smtpc_tls_policy(struct smtpc_delivery *d) { return &d->tls; }
const struct config *smtpc_cfg(struct smtpc_delivery *d) { return d->cfg; }
const char *smtpc_nexthop_domain(struct smtpc_delivery *d) { return d->domain; }
bool smtpc_tls_plaintext(struct smtpc_delivery *d) { return d->tls_plaintext; }

bool smtpc_rcpt_open(struct smtpc_delivery *d, int i)
{
	return d->req->rcpt[i].status == 0;
}

/* ---- results ---------------------------------------------------------- */

void smtpc_rcpt_final(struct smtpc_delivery *d, int i, int status,
		      const char *dsn, const char *text)
{
	delivery_set(&d->req->rcpt[i], status, dsn, "%s", text);
	free(d->rs[i].text);
	d->rs[i].text = NULL;
}

void smtpc_rcpt_soft(struct smtpc_delivery *d, int i, const char *dsn,
		     const char *text)
{
	struct smtpc_rstate *rs = &d->rs[i];

	free(rs->text);
	if ((rs->text = strdup(text)) == NULL)
		msg_fatal("smtp: out of memory");
	snprintf(rs->dsn, sizeof rs->dsn, "%s", dsn);
	rs->dsn[0] = '4';
	rs->answered = true;
	d->soft_seen = true;
}

static void site_reason(struct smtpc_delivery *d, int status, const char *dsn,
			const char *text)
{
	free(d->site_text);
	if ((d->site_text = strdup(text)) == NULL)
		msg_fatal("smtp: out of memory");
	d->site_status = status;
	snprintf(d->site_dsn, sizeof d->site_dsn, "%s", dsn);
	if (status == 4)
		d->soft_seen = true;
}

void smtpc_site_fail(struct smtpc_delivery *d, int status, const char *dsn,
		     const char *fmt, ...)
{
	char text[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	site_reason(d, status, dsn, text);
	if (status == 4 && d->req->queue_id)
		msg_info("%s: %s", d->req->queue_id, text);
	for (int i = 0; i < d->req->nrcpt; i++) {
		if (!smtpc_rcpt_open(d, i) || d->rs[i].answered)
			continue;
		if (status == 5)
			smtpc_rcpt_final(d, i, 5, dsn, text);
		else
			smtpc_rcpt_soft(d, i, dsn, text);
	}
}

static bool any_open(struct smtpc_delivery *d)
{
	for (int i = 0; i < d->req->nrcpt; i++)
		if (smtpc_rcpt_open(d, i))
			return true;
	return false;
}

/* ---- the end ---------------------------------------------------------- */

static void finish(struct smtpc_delivery *d)
{
	struct delivery_request *req = d->req;
	int status = d->soft_seen || d->site_status == 0 ? 4 : d->site_status;
	char dsn[16];

	dns_cancel(d->dns);
	snprintf(dsn, sizeof dsn, "%s", d->site_text ? d->site_dsn : "4.4.1");
	dsn[0] = (char)('0' + status);
	for (int i = 0; i < req->nrcpt; i++) {
		if (!smtpc_rcpt_open(d, i))
			continue;
		if (d->rs[i].text)
			delivery_set(&req->rcpt[i], 4, d->rs[i].dsn, "%s", d->rs[i].text);
		else
			delivery_set(&req->rcpt[i], status, dsn, "%s", d->site_text
				     ? d->site_text : "no mail server could be tried");
	}
	gettimeofday(&req->t_done, NULL);
	if (!timerisset(&req->t_conn))
		req->t_conn = req->t_done;
	for (int i = 0; i < req->nrcpt; i++)
		free(d->rs[i].text);
	free(d->rs);
	free(d->site_text);
	tlsc_policy_free(&d->tls);
	event_free(d->step_ev);
	d->done(req, d->done_arg);
	free(d);
}

static void go(struct smtpc_delivery *d, enum step step)
{
	d->step = step;
	event_active(d->step_ev, 0, 0);
}

/* ---- servers and addresses -------------------------------------------- */

static bool limits_reached(struct smtpc_delivery *d)
{
	return (d->par.mx_session_limit > 0
		&& d->sessions >= d->par.mx_session_limit)
		|| (d->par.mx_address_limit > 0
		    && d->addrs_tried >= d->par.mx_address_limit);
}

static void next_addr(struct smtpc_delivery *d)
{
	if (!any_open(d) || limits_reached(d)) {
		finish(d);
		return;
	}
	if (d->addr_i >= d->naddrs) {
		d->host_i++;
		go(d, STEP_NEXT_HOST);
		return;
	}
	d->addrs_tried++;
	smtpc_conn_start(d, d->hosts[d->host_i], d->addrs[d->addr_i++],
			 d->port, d->key);
}

static bool family_ok(const struct smtpc_delivery *d, const char *addr)
{
	return strchr(addr, ':') ? d->par.ipv6 : d->par.ipv4;
}

static void on_addrs(void *arg, enum dns_status st, char **addrs, int n)
{
	struct smtpc_delivery *d = arg;
	const char *host = d->hosts[d->host_i];

	d->dns = NULL;
	d->naddrs = d->addr_i = 0;
	for (int i = 0; i < n && d->naddrs < SMTPC_MAX_ADDRS; i++)
		if (family_ok(d, addrs[i]) && strlen(addrs[i]) < SMTPC_ADDR_MAX)
			strcpy(d->addrs[d->naddrs++], addrs[i]);
	if (d->naddrs == 0) {
		char text[SMTPC_HOST_MAX + 200];
		bool temp = st == DNS_TEMPFAIL;

		snprintf(text, sizeof text, "Host or domain name not found. Name "
			 "service error for name=%s type=A: Host not found%s",
			 host, temp ? ", try again" : "");
		site_reason(d, temp ? 4 : 5, temp ? "4.4.3" : "5.4.4", text);
	}
	go(d, STEP_NEXT_ADDR);
}

static bool numeric(const char *host)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, host, buf) == 1
		|| inet_pton(AF_INET6, host, buf) == 1;
}

static void next_host(struct smtpc_delivery *d)
{
	struct dns_req *r;

	if (d->host_i >= d->nhosts || !any_open(d) || limits_reached(d)) {
		finish(d);
		return;
	}
	d->naddrs = d->addr_i = 0;
	if (d->port == 0 || numeric(d->hosts[d->host_i])) {
		strcpy(d->addrs[0], d->port == 0 ? d->domain : d->hosts[d->host_i]);
		d->naddrs = family_ok(d, d->addrs[0]) || d->port == 0;
		go(d, STEP_NEXT_ADDR);
		return;
	}
	if ((r = dns_lookup_addrs(d->hosts[d->host_i], on_addrs, d)) != NULL)
		d->dns = r;
}

/* Shuffle runs of equal preference (smtp_randomize_addresses). */
static void shuffle_equal(struct smtpc_delivery *d, const int *pref)
{
	char tmp[SMTPC_HOST_MAX];

	for (int start = 0; start < d->nhosts;) {
		int end = start;

		while (end < d->nhosts && pref[end] == pref[start])
			end++;
		for (int i = end - 1; i > start; i--) {
			int j = start + (int)(random() % (i - start + 1));

			memcpy(tmp, d->hosts[i], sizeof tmp);
			memcpy(d->hosts[i], d->hosts[j], sizeof tmp);
			memcpy(d->hosts[j], tmp, sizeof tmp);
		}
		start = end;
	}
}

static void mx_found(struct smtpc_delivery *d, const struct dns_mx *mx, int n)
{
	int pref[SMTPC_MAX_HOSTS];

	d->nhosts = 0;
	for (int i = 0; i < n && d->nhosts < SMTPC_MAX_HOSTS; i++) {
		if (strlen(mx[i].host) >= SMTPC_HOST_MAX)
			continue;
		strcpy(d->hosts[d->nhosts], mx[i].host);
		pref[d->nhosts++] = mx[i].pref;
	}
	if (d->par.randomize)
		shuffle_equal(d, pref);
}

static void on_mx(void *arg, enum dns_mx_status st, const struct dns_mx *mx,
		  int n)
{
	struct smtpc_delivery *d = arg;

	d->dns = NULL;
	d->host_i = 0;
	switch (st) {
	case DNS_MX_OK:
		mx_found(d, mx, n);
		break;
	case DNS_MX_NODATA:
		strcpy(d->hosts[0], d->domain);
		d->nhosts = 1;
		break;
	case DNS_MX_NULL:
		smtpc_site_fail(d, 5, "5.1.10", "Recipient address has null MX "
				"(domain %s does not accept mail)", d->domain);
		break;
	case DNS_MX_NXDOMAIN:
		smtpc_site_fail(d, 5, "5.4.4", "Host or domain name not found. "
				"Name service error for name=%s type=MX: Host not "
				"found", d->domain);
		break;
	default:
		smtpc_site_fail(d, 4, "4.4.3", "Host or domain name not found. "
				"Name service error for name=%s type=MX: Host not "
				"found, try again", d->domain);
		break;
	}
	go(d, st == DNS_MX_OK || st == DNS_MX_NODATA ? STEP_NEXT_HOST
	   : STEP_FINISH);
}

static void route(struct smtpc_delivery *d)
{
	struct dns_req *r;

	d->host_i = d->nhosts = 0;
	if (!d->mx) {
		snprintf(d->hosts[0], sizeof d->hosts[0], "%s",
			 d->port == 0 ? d->par.myhostname : d->domain);
		d->nhosts = 1;
		next_host(d);
		return;
	}
	if ((r = dns_lookup_mx(d->domain, on_mx, d)) != NULL)
		d->dns = r;
}

static void on_step(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc_delivery *d = arg;

	switch (d->step) {
	case STEP_ROUTE:
		route(d);
		break;
	case STEP_NEXT_HOST:
		next_host(d);
		break;
	case STEP_NEXT_ADDR:
		next_addr(d);
		break;
	default:
		finish(d);
		break;
	}
}

/* ---- sessions --------------------------------------------------------- */

void smtpc_attach(struct smtpc_delivery *d, struct smtpc_conn *c)
{
	d->conn = c;
	for (int i = 0; i < d->req->nrcpt; i++)
		d->rs[i].answered = false;
}

void smtpc_session_ready(struct smtpc_delivery *d)
{
	d->sessions++;
	gettimeofday(&d->req->t_conn, NULL);
}

void smtpc_session_end(struct smtpc_delivery *d, enum smtpc_end how)
{
	d->conn = NULL;
	d->tls_plaintext = how == SMTPC_END_PLAINTEXT;
	if (how == SMTPC_END_PLAINTEXT) {
		d->addr_i--;            /* the same server, in plaintext */
		d->addrs_tried--;
		go(d, STEP_NEXT_ADDR);
	}
	else if (how == SMTPC_END_STALE) {
		d->sessions--;          /* it carried nothing: start over */
		snprintf(d->req->relay, sizeof d->req->relay, "none");
		timerclear(&d->req->t_conn);
		go(d, STEP_ROUTE);
	}
	else if (how == SMTPC_END_FINAL || !any_open(d))
		go(d, STEP_FINISH);
	else
		go(d, STEP_NEXT_ADDR);
}

/* ---- the next hop ----------------------------------------------------- */

/* "25", "smtp": a port number, or -1. */
static int port_of(const char *s)
{
	struct servent *se;
	char *end;
	long v;

	if (*s == 0)
		return -1;
	v = strtol(s, &end, 10);
	if (*end == 0)
		return v > 0 && v < 65536 ? (int)v : -1;
	if (strcmp(s, "smtp") == 0)
		return 25;      /* the usual names without reading /etc/services */
	if (strcmp(s, "lmtp") == 0)
		return 24;
	if ((se = getservbyname(s, "tcp")) != NULL)
		return ntohs((uint16_t)se->s_port);
	return -1;
}

/* "[host]:port", "host:port", "host" into d; 0 or -1. */
static int parse_hostport(struct smtpc_delivery *d, const char *s)
{
	const char *host = s, *port = NULL;
	size_t hlen;

	d->mx = !d->lmtp;
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || (close[1] && close[1] != ':'))
			return -1;
		host = s + 1;
		hlen = (size_t)(close - host);
		port = close[1] ? close + 2 : NULL;
		d->mx = false;
		if (hlen > 5 && strncasecmp(host, "ipv6:", 5) == 0)
			host += 5, hlen -= 5;
	} else {
		const char *colon = strchr(s, ':');

		hlen = strlen(s);
		if (colon && strchr(colon + 1, ':') == NULL) {
			hlen = (size_t)(colon - s);
			port = colon + 1;
		}
	}
	if (hlen == 0 || hlen >= sizeof d->domain)
		return -1;
	memcpy(d->domain, host, hlen);
	d->domain[hlen] = 0;
	if (numeric(d->domain))
		d->mx = false;
	if (port && (d->port = port_of(port)) < 0)
		return -1;
	return 0;
}

static int parse_nexthop(struct smtpc_delivery *d, const char *s)
{
	d->port = d->par.default_port;
	if (d->lmtp && strncmp(s, "unix:", 5) == 0) {
		if (strlen(s + 5) == 0 || strlen(s + 5) >= SMTPC_ADDR_MAX)
			return -1;
		snprintf(d->domain, sizeof d->domain, "%s", s + 5);
		d->port = 0;
		d->mx = false;
		return 0;
	}
	if (d->lmtp && strncmp(s, "inet:", 5) == 0)
		s += 5;
	return parse_hostport(d, s);
}

/* The domain of the first recipient, for a request without a next hop. */
static const char *rcpt_domain(const struct delivery_request *req)
{
	const char *at = req->nrcpt > 0 ? strrchr(req->rcpt[0].addr, '@') : NULL;

	return at ? at + 1 : "";
}

/* ---- parameters ------------------------------------------------------- */

static const char *pname(bool lmtp, const char *smtp_name, char *buf,
			 size_t len)
{
	if (!lmtp)
		return smtp_name;
	snprintf(buf, len, "lmtp%s", smtp_name + 4);
	return buf;
}

static long long ptime(const struct config *c, bool lmtp, const char *name)
{
	char buf[80];

	return cfg_time(c, pname(lmtp, name, buf, sizeof buf));
}

static void read_params(struct smtpc_params *p, const struct config *c,
			bool lmtp)
{
	char b[80];
	const char *proto = cfg_str(c, "inet_protocols");

	p->connect_timeout = ptime(c, lmtp, "smtp_connect_timeout");
	p->helo_timeout = lmtp ? cfg_time(c, "lmtp_lhlo_timeout")
		: cfg_time(c, "smtp_helo_timeout");
	p->mail_timeout = ptime(c, lmtp, "smtp_mail_timeout");
	p->rcpt_timeout = ptime(c, lmtp, "smtp_rcpt_timeout");
	p->data_init_timeout = ptime(c, lmtp, "smtp_data_init_timeout");
	p->data_xfer_timeout = ptime(c, lmtp, "smtp_data_xfer_timeout");
	p->data_done_timeout = ptime(c, lmtp, "smtp_data_done_timeout");
	p->quit_timeout = ptime(c, lmtp, "smtp_quit_timeout");
	p->cache_time_limit = ptime(c, lmtp, "smtp_connection_cache_time_limit");
	p->reuse_time_limit = ptime(c, lmtp, "smtp_connection_reuse_time_limit");
	p->helo_name = cfg_str(c, lmtp ? "lmtp_lhlo_name" : "smtp_helo_name");
	p->myhostname = cfg_str(c, "myhostname");
	p->skip_5xx_greeting = cfg_bool(c, pname(lmtp, "smtp_skip_5xx_greeting", b, sizeof b));
	p->skip_quit_response = cfg_bool(c, pname(lmtp, "smtp_skip_quit_response", b, sizeof b));
	p->never_send_ehlo = !lmtp && cfg_bool(c, "smtp_never_send_ehlo");
	p->assume_final = lmtp && cfg_bool(c, "lmtp_assume_final");
	p->mime_conversion = !cfg_bool(c, "disable_mime_output_conversion");
	p->cache_on_demand = cfg_bool(c, pname(lmtp, "smtp_connection_cache_on_demand", b, sizeof b));
	p->randomize = cfg_bool(c, pname(lmtp, "smtp_randomize_addresses", b, sizeof b));
	p->reuse_count_limit = cfg_int(c, pname(lmtp, "smtp_connection_reuse_count_limit", b, sizeof b));
	p->mx_address_limit = cfg_int(c, pname(lmtp, "smtp_mx_address_limit", b, sizeof b));
	p->mx_session_limit = cfg_int(c, pname(lmtp, "smtp_mx_session_limit", b, sizeof b));
	p->default_port = port_of(cfg_str(c, pname(lmtp, "smtp_tcp_port", b, sizeof b)));
	if (p->default_port < 0)
		p->default_port = lmtp ? 24 : 25;
	p->starttls_timeout = lmtp ? 0 : cfg_time(c, "smtp_starttls_timeout");
	p->ipv4 = p->ipv6 = *proto == 0 || strcasestr(proto, "all") != NULL;
	p->ipv4 |= strcasestr(proto, "ipv4") != NULL;
	p->ipv6 |= strcasestr(proto, "ipv6") != NULL;
}

/* ---- the entry -------------------------------------------------------- */

static struct smtpc_delivery *delivery_new(struct event_base *base,
					   struct delivery_request *req,
					   bool lmtp)
{
	struct smtpc_delivery *d = calloc(1, sizeof *d);
	const struct config *cfg = req->cfg ? req->cfg
		: sluice_conf ? sluice_conf->main : NULL;

	if (cfg == NULL)
		msg_panic("smtp_deliver: a request without a configuration");
	if (d == NULL || (d->rs = calloc((size_t)req->nrcpt + 1,
					 sizeof *d->rs)) == NULL)
		msg_fatal("smtp: out of memory");
	d->base = base;
	d->req = req;
	d->lmtp = lmtp;
	d->cfg = cfg;
	read_params(&d->par, cfg, lmtp);
	d->step_ev = event_new(base, -1, 0, on_step, d);
	if (d->step_ev == NULL)
		msg_fatal("smtp: out of memory");
	return d;
}

/* The destination's TLS policy (SMTP only); the pool key names its
 * level, so a connection is reused only under the same policy.  -1 when
 * the policy is invalid (everything is deferred). */
static int tls_policy(struct smtpc_delivery *d, const char *hop)
{
	size_t n = strlen(d->key);

	if (d->lmtp)
		return 0;
	tlsc_policy_get(&d->tls, d->cfg, hop, d->mx && strchr(hop, ':') == NULL);
	if (d->tls.invalid) {
		smtpc_site_fail(d, 4, "4.7.5", "client TLS configuration problem");
		return -1;
	}
	if (d->tls.level != TLS_LEV_NONE)
		snprintf(d->key + n, sizeof d->key - n, "|tls=%s",
			 tlsc_level_name(d->tls.level));
	return 0;
}

void smtp_deliver(struct event_base *base, struct delivery_request *req,
		  bool lmtp, delivery_done_fn done, void *arg)
{
	struct smtpc_delivery *d = delivery_new(base, req, lmtp);
	const char *hop = req->nexthop && *req->nexthop ? req->nexthop
		: rcpt_domain(req);
	struct smtpc_conn *c;

	d->done = done;
	d->done_arg = arg;
	snprintf(req->relay, sizeof req->relay, "none");
	timerclear(&req->t_conn);
	timerclear(&req->t_done);
	snprintf(d->key, sizeof d->key, "%s:%s", req->transport ? req->transport
		 : lmtp ? "lmtp" : "smtp", hop);
	if (parse_nexthop(d, hop) < 0) {
		smtpc_site_fail(d, 4, "4.3.5", "bad next hop \"%s\" for the %s "
				"transport", hop, lmtp ? "lmtp" : "smtp");
		go(d, STEP_FINISH);
		return;
	}
	if (tls_policy(d, hop) < 0) {
		go(d, STEP_FINISH);
		return;
	}
	if ((c = smtpc_pool_take(d->key, &d->par)) != NULL) {
		smtpc_conn_reuse(c, d);
		return;
	}
	go(d, STEP_ROUTE);
}
