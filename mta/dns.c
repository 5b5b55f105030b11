/*
 * dns.c - c-ares driven by libevent.
 *
 * c-ares tells us, through its socket-state callback, which sockets it
 * wants watched; we keep one persistent libevent event per such socket and
 * one timer for c-ares' own timeouts.  Every completion runs in the loop.
 *
 * Cancellation: a request carries a `cancelled` flag; c-ares still
 * completes it later (it cannot forget a query), and we then free it
 * without calling back.  So a session may cancel and vanish at any time.
 *
 * MX lookups (dns_lookup_mx) parse the answer with ares_parse_mx_reply,
 * keep at most DNS_MAX_MX records, sort them by preference (stable) and
 * report RFC 7505's null MX on its own, so the SMTP client can bounce.
 *
 * Lookups by record type (dns_lookup_rr: A, AAAA, NS, TXT) keep at most
 * DNS_MAX_RR records of an answer, in the server's order, and hand them
 * over as strings.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ares.h>
#include <arpa/nameser.h>
#include <event2/event.h>

#include "config.h"
#include "dns.h"
#include "log.h"

#define DNS_MAX_SOCKETS 16
#define DNS_MAX_MX 64           /* MX records kept from one answer */
#define DNS_MAX_RR 64           /* records kept by dns_lookup_rr */

struct dns_req {
	dns_name_fn name_fn;
	dns_addrs_fn addrs_fn;
	dns_mx_fn mx_fn;
	dns_strs_fn strs_fn;
	enum dns_rr_type rr_type;
	void *arg;
	bool cancelled;
	bool submitting;        /* inside ares_*(): completion may come now */
	bool completed;         /* ...and did: the submitter frees */
};

struct dns_watch {
	ares_socket_t fd;
	struct event *ev;
};

static struct dns_resolver {
	ares_channel channel;
	struct event_base *base;
	struct event *timer;
	struct dns_watch watch[DNS_MAX_SOCKETS];
	bool started;
} R;

static void reschedule_timer(void)
{
	struct timeval max = { 1, 0 }, tv, *t;

	t = ares_timeout(R.channel, &max, &tv);
	evtimer_add(R.timer, t);
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
	ares_process_fd(R.channel,
			(what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	reschedule_timer();
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	ares_process_fd(R.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	reschedule_timer();
}

static struct dns_watch *find_watch(ares_socket_t fd, bool create)
{
	struct dns_watch *free_slot = NULL;

	for (int i = 0; i < DNS_MAX_SOCKETS; i++) {
		if (R.watch[i].ev && R.watch[i].fd == fd)
			return &R.watch[i];
		if (R.watch[i].ev == NULL && free_slot == NULL)
			free_slot = &R.watch[i];
	}
	return create ? free_slot : NULL;
}

static void sock_state(void *data, ares_socket_t fd, int readable,
		       int writable)
{
	struct dns_watch *w = find_watch(fd, readable || writable);
	short what = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);

	if (w == NULL) {
		if (what)
			msg_warn("dns: too many resolver sockets; lookups may time out");
		return;
	}
	if (w->ev) {
		event_del(w->ev);
		event_free(w->ev);
		w->ev = NULL;
	}
	if (what == 0)
		return;
	w->fd = fd;
	w->ev = event_new(R.base, fd, what | EV_PERSIST, on_socket, NULL);
	if (w->ev == NULL || event_add(w->ev, NULL) < 0)
		msg_fatal("dns: cannot watch resolver socket");
}

int dns_start(struct event_base *base, const char *servers)
{
	struct ares_options opt;
	int rc;

	if (R.started)
		return 0;
	memset(&opt, 0, sizeof opt);
	opt.sock_state_cb = sock_state;
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS
	    || (rc = ares_init_options(&R.channel, &opt,
				       ARES_OPT_SOCK_STATE_CB)) != ARES_SUCCESS) {
		msg_error("dns: cannot start the resolver: %s", ares_strerror(rc));
		return -1;
	}
	if (servers && *servers
	    && (rc = ares_set_servers_ports_csv(R.channel, servers)) != ARES_SUCCESS) {
		msg_error("dns: bad dns_servers \"%s\": %s", servers, ares_strerror(rc));
		ares_destroy(R.channel);
		return -1;
	}
	R.base = base;
	R.timer = evtimer_new(base, on_timer, NULL);
	R.started = true;
	return 0;
}

/* c-ares wants "ip:port,ip:port"; dns_servers is a list. */
int dns_start_config(struct event_base *base, const struct config *c)
{
	char **servers = cfg_list(c, "dns_servers");
	char csv[1024] = "";
	size_t n = 0;

	for (int i = 0; servers && servers[i] && n < sizeof csv; i++)
		n += (size_t)snprintf(csv + n, sizeof csv - n, "%s%s",
				      i ? "," : "", servers[i]);
	cfg_list_free(servers);
	return dns_start(base, csv);
}

void dns_stop(void)
{
	if (!R.started)
		return;
	ares_destroy(R.channel);      /* completes pending requests: ECANCELLED */
	for (int i = 0; i < DNS_MAX_SOCKETS; i++)
		if (R.watch[i].ev) {
			event_free(R.watch[i].ev);
			R.watch[i].ev = NULL;
		}
	event_free(R.timer);
	R.started = false;
}

static enum dns_status status_of(int rc)
{
	if (rc == ARES_SUCCESS)
		return DNS_OK;
	if (rc == ARES_ENOTFOUND || rc == ARES_ENODATA || rc == ARES_ENONAME)
		return DNS_NOTFOUND;
	return DNS_TEMPFAIL;
}

static struct dns_req *new_req(void *arg)
{
	struct dns_req *r = calloc(1, sizeof *r);

	if (r == NULL)
		msg_fatal("out of memory");
	r->arg = arg;
	return r;
}

/* A request that completed inside its own submission (an /etc/hosts
 * answer) is freed by the submitter, which then returns NULL. */
static void req_finished(struct dns_req *r)
{
	if (r->submitting)
		r->completed = true;
	else
		free(r);
}

static struct dns_req *req_submitted(struct dns_req *r)
{
	r->submitting = false;
	if (r->completed) {
		free(r);
		return NULL;
	}
	reschedule_timer();
	return r;
}

static void ptr_done(void *arg, int rc, int timeouts, struct hostent *h)
{
	struct dns_req *r = arg;

	if (!r->cancelled)
		r->name_fn(r->arg, status_of(rc),
			   rc == ARES_SUCCESS && h && h->h_name ? h->h_name : NULL);
	req_finished(r);
}

struct dns_req *dns_lookup_ptr(const char *addr, dns_name_fn fn, void *arg)
{
	struct dns_req *r;
	unsigned char buf[16];
	int family = AF_INET, len = 4;

	if (inet_pton(AF_INET, addr, buf) != 1) {
		family = AF_INET6;
		len = 16;
		if (inet_pton(AF_INET6, addr, buf) != 1) {
			fn(arg, DNS_NOTFOUND, NULL);
			return NULL;
		}
	}
	r = new_req(arg);
	r->name_fn = fn;
	r->submitting = true;
	ares_gethostbyaddr(R.channel, buf, len, family, ptr_done, r);
	return req_submitted(r);
}

static void addrs_done(void *arg, int rc, int timeouts,
		       struct ares_addrinfo *ai)
{
	struct dns_req *r = arg;
	char *addrs[32], text[32][64];
	int n = 0;

	for (struct ares_addrinfo_node *p = ai ? ai->nodes : NULL;
	     p && n < 32; p = p->ai_next) {
		const void *a = p->ai_family == AF_INET
			? (const void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
			: (const void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;

		if (inet_ntop(p->ai_family, a, text[n], sizeof text[n]))
			addrs[n] = text[n], n++;
	}
	if (!r->cancelled)
		r->addrs_fn(r->arg, status_of(rc), addrs, n);
	if (ai)
		ares_freeaddrinfo(ai);
	req_finished(r);
}

struct dns_req *dns_lookup_addrs(const char *name, dns_addrs_fn fn, void *arg)
{
	struct ares_addrinfo_hints hints;
	struct dns_req *r = new_req(arg);

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	r->addrs_fn = fn;
	r->submitting = true;
	ares_getaddrinfo(R.channel, name, NULL, &hints, addrs_done, r);
	return req_submitted(r);
}

/* ---- MX ---- */

/* Stable insertion sort by preference: few records, server order kept
 * among equals (the caller may shuffle them). */
static void sort_mx(struct dns_mx *mx, int n)
{
	for (int i = 1; i < n; i++) {
		struct dns_mx key = mx[i];
		int j = i - 1;

		while (j >= 0 && mx[j].pref > key.pref) {
			mx[j + 1] = mx[j];
			j--;
		}
		mx[j + 1] = key;
	}
}

static enum dns_mx_status mx_status_of(int rc)
{
	if (rc == ARES_ENODATA)
		return DNS_MX_NODATA;
	if (rc == ARES_ENOTFOUND || rc == ARES_ENONAME)
		return DNS_MX_NXDOMAIN;
	return DNS_MX_TEMPFAIL;
}

/* A target of "" (the root, written ".") is RFC 7505's null MX. */
static bool is_null_mx(const char *host)
{
	return host[0] == 0 || (host[0] == '.' && host[1] == 0);
}

static void mx_answer(struct dns_req *r, unsigned char *abuf, int alen)
{
	struct ares_mx_reply *head = NULL;
	struct dns_mx mx[DNS_MAX_MX];
	enum dns_mx_status st = DNS_MX_OK;
	int n = 0, rc = ares_parse_mx_reply(abuf, alen, &head);

	if (rc != ARES_SUCCESS) {
		r->mx_fn(r->arg, rc == ARES_ENODATA ? DNS_MX_NODATA
			 : DNS_MX_TEMPFAIL, NULL, 0);
		return;
	}
	for (struct ares_mx_reply *p = head; p && n < DNS_MAX_MX; p = p->next) {
		if (is_null_mx(p->host))
			st = DNS_MX_NULL;
		mx[n].host = p->host;
		mx[n].pref = p->priority;
		n++;
	}
	if (st == DNS_MX_OK && n == 0)
		st = DNS_MX_NODATA;
	sort_mx(mx, n);
	r->mx_fn(r->arg, st, st == DNS_MX_OK ? mx : NULL, st == DNS_MX_OK ? n : 0);
	ares_free_data(head);
}

static void mx_done(void *arg, int rc, int timeouts, unsigned char *abuf,
		    int alen)
{
	struct dns_req *r = arg;

	if (!r->cancelled) {
		if (rc == ARES_SUCCESS)
			mx_answer(r, abuf, alen);
		else
			r->mx_fn(r->arg, mx_status_of(rc), NULL, 0);
	}
	req_finished(r);
}

struct dns_req *dns_lookup_mx(const char *domain, dns_mx_fn fn, void *arg)
{
	struct dns_req *r;

	if (!R.started) {
		msg_warn("dns: MX lookup of %s before the resolver started", domain);
		fn(arg, DNS_MX_TEMPFAIL, NULL, 0);
		return NULL;
	}
	r = new_req(arg);
	r->mx_fn = fn;
	r->submitting = true;
	ares_query(R.channel, domain, ns_c_in, ns_t_mx, mx_done, r);
	return req_submitted(r);
}

/* ---- records by type ---- */

/* The strings of an answer, built for the callback and freed after it. */
struct dns_strs {
	char *v[DNS_MAX_RR];
	int n;
};

static void strs_add(struct dns_strs *out, const char *s, size_t len)
{
	char *c;

	if (out->n >= DNS_MAX_RR)
		return;
	if ((c = strndup(s, len)) == NULL)
		msg_fatal("out of memory");
	out->v[out->n++] = c;
}

static void strs_free(struct dns_strs *out)
{
	for (int i = 0; i < out->n; i++)
		free(out->v[i]);
	out->n = 0;
}

static int parse_a(unsigned char *abuf, int alen, struct dns_strs *out)
{
	struct ares_addrttl a[DNS_MAX_RR];
	int n = DNS_MAX_RR, rc = ares_parse_a_reply(abuf, alen, NULL, a, &n);
	char text[INET_ADDRSTRLEN];

	for (int i = 0; rc == ARES_SUCCESS && i < n; i++)
		if (inet_ntop(AF_INET, &a[i].ipaddr, text, sizeof text))
			strs_add(out, text, strlen(text));
	return rc;
}

static int parse_aaaa(unsigned char *abuf, int alen, struct dns_strs *out)
{
	struct ares_addr6ttl a[DNS_MAX_RR];
	int n = DNS_MAX_RR, rc = ares_parse_aaaa_reply(abuf, alen, NULL, a, &n);
	char text[INET6_ADDRSTRLEN];

	for (int i = 0; rc == ARES_SUCCESS && i < n; i++)
		if (inet_ntop(AF_INET6, &a[i].ip6addr, text, sizeof text))
			strs_add(out, text, strlen(text));
	return rc;
}

static int parse_ns(unsigned char *abuf, int alen, struct dns_strs *out)
{
	struct hostent *h = NULL;
	int rc = ares_parse_ns_reply(abuf, alen, &h);

	for (int i = 0; rc == ARES_SUCCESS && h->h_aliases[i]; i++) {
		size_t len = strlen(h->h_aliases[i]);

		if (len > 1 && h->h_aliases[i][len - 1] == '.')
			len--;
		strs_add(out, h->h_aliases[i], len);
	}
	if (h)
		ares_free_hostent(h);
	return rc;
}

/* Each TXT record is one string: its character-strings joined. */
static int parse_txt(unsigned char *abuf, int alen, struct dns_strs *out)
{
	struct ares_txt_ext *head = NULL;
	int rc = ares_parse_txt_reply_ext(abuf, alen, &head);

	for (struct ares_txt_ext *p = head; rc == ARES_SUCCESS && p; p = p->next) {
		if (p->record_start || out->n == 0) {
			strs_add(out, (const char *)p->txt, p->length);
		} else {
			char *prev = out->v[out->n - 1], *joined;

			if (asprintf(&joined, "%s%.*s", prev, (int)p->length,
				     (const char *)p->txt) < 0)
				msg_fatal("out of memory");
			free(prev);
			out->v[out->n - 1] = joined;
		}
	}
	if (head)
		ares_free_data(head);
	return rc;
}

static void rr_done(void *arg, int rc, int timeouts, unsigned char *abuf,
		    int alen)
{
	struct dns_req *r = arg;
	struct dns_strs out = { .n = 0 };

	if (!r->cancelled) {
		if (rc == ARES_SUCCESS) {
			switch (r->rr_type) {
			case DNS_RR_A: rc = parse_a(abuf, alen, &out); break;
			case DNS_RR_AAAA: rc = parse_aaaa(abuf, alen, &out); break;
			case DNS_RR_NS: rc = parse_ns(abuf, alen, &out); break;
			case DNS_RR_TXT: rc = parse_txt(abuf, alen, &out); break;
			}
			if (rc == ARES_SUCCESS && out.n == 0)
				rc = ARES_ENODATA;
		}
		r->strs_fn(r->arg, status_of(rc), out.v, out.n);
		strs_free(&out);
	}
	req_finished(r);
}

struct dns_req *dns_lookup_rr(const char *name, enum dns_rr_type type,
			      dns_strs_fn fn, void *arg)
{
	static const int qtype[] = {
		[DNS_RR_A] = ns_t_a, [DNS_RR_AAAA] = ns_t_aaaa,
		[DNS_RR_NS] = ns_t_ns, [DNS_RR_TXT] = ns_t_txt,
	};
	struct dns_req *r;

	if (!R.started) {
		msg_warn("dns: lookup of %s before the resolver started", name);
		fn(arg, DNS_TEMPFAIL, NULL, 0);
		return NULL;
	}
	r = new_req(arg);
	r->strs_fn = fn;
	r->rr_type = type;
	r->submitting = true;
	ares_query(R.channel, name, ns_c_in, qtype[type], rr_done, r);
	return req_submitted(r);
}

void dns_cancel(struct dns_req *req)
{
	if (req)
		req->cancelled = true;
}

/* ---- PTR from DNS only (the restrictions' second look at a client) ---- */

static void ptr_query_done(void *arg, int rc, int timeouts, unsigned char *abuf,
			   int alen)
{
	struct dns_req *r = arg;
	struct hostent *h = NULL;

	if (!r->cancelled) {
		if (rc == ARES_SUCCESS)
			rc = ares_parse_ptr_reply(abuf, alen, NULL, 0, AF_INET, &h);
		r->name_fn(r->arg, status_of(rc),
			   rc == ARES_SUCCESS && h && h->h_name ? h->h_name : NULL);
	}
	if (h)
		ares_free_hostent(h);
	req_finished(r);
}

/* "4.3.2.1.in-addr.arpa" or the ip6.arpa nibbles; -1 when not numeric. */
static int reverse_name(const char *addr, char *name, size_t len)
{
	unsigned char b[16];
	size_t n = 0;

	if (inet_pton(AF_INET, addr, b) == 1) {
		snprintf(name, len, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, b) != 1 || len < 16 * 4 + 9)
		return -1;
	for (int i = 15; i >= 0; i--)
		n += (size_t)snprintf(name + n, len - n, "%x.%x.", b[i] & 0xf, b[i] >> 4);
	snprintf(name + n, len - n, "ip6.arpa");
	return 0;
}

struct dns_req *dns_lookup_ptr_dns(const char *addr, dns_name_fn fn, void *arg)
{
	char name[128];
	struct dns_req *r;

	if (reverse_name(addr, name, sizeof name) < 0) {
		fn(arg, DNS_NOTFOUND, NULL);
		return NULL;
	}
	if (!R.started) {
		msg_warn("dns: lookup of %s before the resolver started", name);
		fn(arg, DNS_TEMPFAIL, NULL);
		return NULL;
	}
	r = new_req(arg);
	r->name_fn = fn;
	r->submitting = true;
	ares_query(R.channel, name, ns_c_in, ns_t_ptr, ptr_query_done, r);
	return req_submitted(r);
}
