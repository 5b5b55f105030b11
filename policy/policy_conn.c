/*
 * policy_conn.c - connections to policy servers, pooled per service in
 * the worker's event loop (libevent bufferevents), and the queries sent
 * over them: Postfix's attr_clnt/auto_clnt behaviour without blocking.
 *
 * A service (endpoint and options, struct policy_service's key) keeps
 * its connections for reuse by any later request of any session of the
 * worker: one connection carries one request at a time, so a worker with
 * many sessions waiting at once opens more than one, and a worker serving
 * one session after another uses one.  An idle connection is closed after
 * max_idle, when the server closes it, and once it is max_ttl old or has
 * carried request_limit requests (0: no limit).
 *
 * A query makes up to try_limit attempts, retry_delay apart; an attempt
 * (connect, write, read of the whole reply) is bounded by timeout.  An
 * attempt fails on a connect error, a timeout, the server closing the
 * connection or answering something that is not "name=value" lines
 * ending with an empty line and holding action=, or a line longer than
 * line_length_limit (a whole reply: four such lines).  Every failure is
 * logged as Postfix does ("warning: problem talking to server
 * 127.0.0.1:10023: Connection refused"), except a reused connection the
 * server had closed while idle (Postfix's silent reconnect): that attempt
 * is tried again at once.  After the last attempt the query answers NULL
 * and the caller applies the default action.
 *
 * A cancelled query (its session ended) closes the connection it was
 * using: its reply, if it comes, must not be read as the next request's.
 *
 * An inet: endpoint with a host name is resolved for each new connection
 * with the worker's asynchronous resolver (dns.h: /etc/hosts, then DNS),
 * inside the attempt's timeout, and its addresses are tried in turn until
 * one accepts (as Postfix's inet_connect does); a numeric address is
 * connected to at once.  A name that does not
 * resolve fails the attempt like a refused connection ("connect to
 * name:port: Name or service not known").  Nothing here blocks the loop.
 *
 * This file owns the pool (one per worker process).
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "dns.h"
#include "log.h"
#include "mymalloc.h"
#include "policy_int.h"

#define REPLY_LINES_MAX 4       /* a reply: this many line_length_limit */

struct pool_svc;

struct pconn {
	struct pool_svc *svc;
	struct bufferevent *bev;
	time_t born, last;
	long long nreq;
	bool connected;
	struct dns_req *dns;        /* resolving the host name, or NULL */
	char **addrs;               /* the name's addresses, tried in turn */
	int naddrs, iaddr;
	struct policy_query *q;     /* the query it carries, NULL when idle */
	struct event *idle_timer;
	struct pconn *next;
};

struct pool_svc {
	struct policy_service ps;   /* own copy */
	struct event_base *base;
	struct pconn *conns;
	struct pool_svc *next;
};

struct policy_query {
	struct pool_svc *svc;
	char *req;
	size_t len;
	long long line_limit;
	long long tries;
	struct pconn *conn;
	struct event *timer;        /* the attempt's timeout, or the retry delay */
	bool retry_wait;
	bool reused;                /* the attempt uses a pooled connection */
	size_t got;                 /* reply bytes read */
	char *action;
	policy_reply_fn fn;
	void *arg;
};

static struct pool_svc *pool;

static void attempt(struct policy_query *q);
static void failed(struct policy_query *q, const char *why, bool stale);
static bool conn_try_next(struct pconn *k);

/* ---- services ---------------------------------------------------------- */

static struct pool_svc *svc_get(struct event_base *base,
				const struct policy_service *ps)
{
	struct pool_svc *v;

	for (v = pool; v; v = v->next)
		if (v->base == base && strcmp(v->ps.key, ps->key) == 0)
			return v;
	if ((v = calloc(1, sizeof *v)) == NULL)
		msg_fatal("policy: out of memory");
	v->base = base;
	v->ps = *ps;
	v->ps.endpoint = mystrdup(ps->endpoint);
	v->ps.name = mystrdup(ps->name);
	v->ps.host = ps->host ? mystrdup(ps->host) : NULL;
	v->ps.port = ps->port ? mystrdup(ps->port) : NULL;
	v->ps.path = ps->path ? mystrdup(ps->path) : NULL;
	v->ps.default_action = mystrdup(ps->default_action);
	v->ps.policy_context = mystrdup(ps->policy_context);
	v->ps.key = mystrdup(ps->key);
	v->next = pool;
	pool = v;
	return v;
}

/* ---- connections --------------------------------------------------------- */

static void conn_close(struct pconn *k)
{
	struct pconn **pp;

	for (pp = &k->svc->conns; *pp; pp = &(*pp)->next)
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	if (k->q)
		k->q->conn = NULL;
	if (k->idle_timer)
		event_free(k->idle_timer);
	dns_cancel(k->dns);
	bufferevent_free(k->bev);
	for (int i = 0; i < k->naddrs; i++)
		free(k->addrs[i]);
	free(k->addrs);
	free(k);
}

static void idle_expired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	conn_close(arg);
}

/* The connection carried its request: keep it for the next, or close. */
static void conn_release(struct pconn *k)
{
	const struct policy_service *ps = &k->svc->ps;
	struct timeval tv = { .tv_sec = (time_t)ps->max_idle };
	time_t now = time(NULL);

	k->q = NULL;
	k->last = now;
	k->nreq++;
	if ((ps->request_limit > 0 && k->nreq >= ps->request_limit)
	    || now - k->born >= ps->max_ttl || ps->max_idle <= 0) {
		conn_close(k);
		return;
	}
	evtimer_add(k->idle_timer, &tv);
}

/* An idle connection young enough to carry one more request. */
static struct pconn *conn_take(struct pool_svc *v)
{
	time_t now = time(NULL);
	struct pconn *k, *next;

	for (k = v->conns; k; k = next) {
		next = k->next;
		if (k->q != NULL || !k->connected)
			continue;
		if (now - k->born >= v->ps.max_ttl) {
			conn_close(k);
			continue;
		}
		evtimer_del(k->idle_timer);
		return k;
	}
	return NULL;
}

/* ---- reading the reply ------------------------------------------------------ */

static void answered(struct policy_query *q);

/* Take what arrived: complete lines up to the empty one. */
static void conn_read(struct bufferevent *bev, void *arg)
{
	struct pconn *k = arg;
	struct policy_query *q = k->q;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line, *eq;
	size_t n;

	if (q == NULL) {            /* an idle connection talks: drop it */
		conn_close(k);
		return;
	}
	while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) != NULL) {
		q->got += n + 1;
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = 0;
		if ((long long)n > q->line_limit
		    || (long long)q->got > REPLY_LINES_MAX * q->line_limit) {
			free(line);
			failed(q, "reply too long", false);
			return;
		}
		if (n == 0) {
			free(line);
			if (q->action == NULL || *q->action == 0) {
				msg_warn("missing attribute action in input "
					 "from %s", q->svc->ps.name);
				failed(q, "no action in the reply", false);
			} else {
				answered(q);
			}
			return;
		}
		if ((eq = strchr(line, '=')) == NULL || eq == line) {
			msg_warn("malformed reply line from %s: \"%.100s\"",
				 q->svc->ps.name, line);
			free(line);
			failed(q, "malformed reply", false);
			return;
		}
		*eq = 0;
		if (strcmp(line, "action") == 0 && q->action == NULL)
			q->action = mystrdup(eq + 1);
		free(line);
	}
	if ((long long)evbuffer_get_length(in) > q->line_limit) {
		failed(q, "reply too long", false);
		return;
	}
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct pconn *k = arg;
	struct policy_query *q = k->q;
	int err = EVUTIL_SOCKET_ERROR();
	char why[256];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		k->connected = true;
		return;
	}
	if (q == NULL) {            /* idle, closed by the server */
		conn_close(k);
		return;
	}
	if (!k->connected) {
		if (conn_try_next(k))
			return;     /* another address of the name */
		snprintf(why, sizeof why, "%s", evutil_socket_error_to_string(err));
		msg_warn("connect to %s: %s", q->svc->ps.name, why);
		failed(q, why, false);
		return;
	}
	if ((what & BEV_EVENT_EOF) || err == ECONNRESET || err == EPIPE) {
		failed(q, (what & BEV_EVENT_EOF) ? "unexpected end-of-input"
		       : evutil_socket_error_to_string(err),
		       q->reused && q->got == 0);
		return;
	}
	failed(q, evutil_socket_error_to_string(err), false);
}

/* A new connection, not yet connecting (conn_start does that once it
 * carries its query). */
static struct pconn *conn_new(struct pool_svc *v)
{
	struct pconn *k = calloc(1, sizeof *k);

	if (k == NULL)
		msg_fatal("policy: out of memory");
	k->svc = v;
	k->born = k->last = time(NULL);
	k->bev = bufferevent_socket_new(v->base, -1, BEV_OPT_CLOSE_ON_FREE);
	k->idle_timer = evtimer_new(v->base, idle_expired, k);
	if (k->bev == NULL || k->idle_timer == NULL)
		msg_fatal("policy: out of memory");
	bufferevent_setcb(k->bev, conn_read, NULL, conn_event, k);
	k->next = v->conns;
	v->conns = k;
	return k;
}

/* The attempt of k's query failed before a connection existed. */
static void conn_start_failed(struct pconn *k, const char *why)
{
	struct policy_query *q = k->q;

	msg_warn("connect to %s: %s", k->svc->ps.name, why);
	failed(q, why, false);      /* closes k */
}

/* Connect k to the numeric address `host` (the unix path when the
 * service is unix:); false with the reason in why. */
static bool conn_connect(struct pconn *k, const char *host, char *why,
			 size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST }, *ai = NULL;
	int rc;

	memset(&ss, 0, sizeof ss);
	if (k->svc->ps.is_unix) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;

		un->sun_family = AF_UNIX;
		snprintf(un->sun_path, sizeof un->sun_path, "%s", k->svc->ps.path);
		sslen = sizeof *un;
	} else if ((rc = getaddrinfo(host, k->svc->ps.port, &hints, &ai)) != 0
		   || ai == NULL) {
		snprintf(why, len, "%s", gai_strerror(rc));
		return false;
	} else {
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		sslen = ai->ai_addrlen;
		freeaddrinfo(ai);
	}
	errno = 0;
	if (bufferevent_socket_connect(k->bev, (struct sockaddr *)&ss,
				       sslen) < 0) {
		snprintf(why, len, "%s", strerror(errno ? errno : ECONNREFUSED));
		return false;
	}
	return true;
}

/* The connection to the current address failed: connect to the next
 * address of the name on a fresh socket, the request written again.
 * False when no address is left. */
static bool conn_try_next(struct pconn *k)
{
	char why[256];

	while (k->q != NULL && ++k->iaddr < k->naddrs) {
		bufferevent_free(k->bev);
		k->bev = bufferevent_socket_new(k->svc->base, -1,
						BEV_OPT_CLOSE_ON_FREE);
		if (k->bev == NULL)
			msg_fatal("policy: out of memory");
		bufferevent_setcb(k->bev, conn_read, NULL, conn_event, k);
		bufferevent_write(k->bev, k->q->req, k->q->len);
		bufferevent_enable(k->bev, EV_READ | EV_WRITE);
		if (conn_connect(k, k->addrs[k->iaddr], why, sizeof why))
			return true;
	}
	return false;
}

static void conn_resolved(void *arg, enum dns_status st, char **addrs, int n)
{
	struct pconn *k = arg;
	char why[256];

	k->dns = NULL;
	if (st != DNS_OK || n < 1) {
		conn_start_failed(k, gai_strerror(st == DNS_TEMPFAIL ? EAI_AGAIN
						  : EAI_NONAME));
		return;
	}
	if ((k->addrs = calloc((size_t)n, sizeof *k->addrs)) == NULL)
		msg_fatal("policy: out of memory");
	for (k->naddrs = 0; k->naddrs < n; k->naddrs++)
		k->addrs[k->naddrs] = mystrdup(addrs[k->naddrs]);
	k->iaddr = 0;
	if (!conn_connect(k, k->addrs[0], why, sizeof why) && !conn_try_next(k))
		conn_start_failed(k, why);
}

static bool is_numeric(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1
	    || inet_pton(AF_INET6, host, buf) == 1;
}

/* Connect k, which carries its query: at once to a path or a numeric
 * address, else once the host name resolved.  A failure fails the
 * query's attempt (perhaps before this returns: call it last). */
static void conn_start(struct pconn *k)
{
	char why[256];
	struct dns_req *req;

	if (k->svc->ps.is_unix || is_numeric(k->svc->ps.host)) {
		if (!conn_connect(k, k->svc->ps.host, why, sizeof why))
			conn_start_failed(k, why);
		return;
	}
	req = dns_lookup_addrs(k->svc->ps.host, conn_resolved, k);
	/* NULL: answered already (/etc/hosts), k may be gone */
	if (req != NULL)
		k->dns = req;
}

/* ---- queries ------------------------------------------------------------------ */

static void query_free(struct policy_query *q)
{
	if (q->timer)
		event_free(q->timer);
	free(q->req);
	free(q->action);
	free(q);
}

static void finish(struct policy_query *q, const char *action)
{
	policy_reply_fn fn = q->fn;
	void *arg = q->arg;
	char *copy = action ? mystrdup(action) : NULL;

	query_free(q);
	fn(arg, copy);
	free(copy);
}

static void answered(struct policy_query *q)
{
	struct pconn *k = q->conn;

	evtimer_del(q->timer);
	q->conn = NULL;
	if (k)
		conn_release(k);
	finish(q, q->action);
}

static void arm(struct policy_query *q, long long secs)
{
	struct timeval tv = { .tv_sec = (time_t)(secs > 0 ? secs : 0) };

	evtimer_add(q->timer, &tv);
}

static void failed(struct policy_query *q, const char *why, bool stale)
{
	evtimer_del(q->timer);
	if (q->conn) {
		q->conn->q = NULL;
		conn_close(q->conn);
	}
	q->conn = NULL;
	free(q->action);
	q->action = NULL;
	if (stale)
		q->tries--;         /* the server closed it while idle: not a try */
	else
		msg_warn("problem talking to server %s: %s", q->svc->ps.name, why);
	if (q->tries >= q->svc->ps.try_limit) {
		finish(q, NULL);
		return;
	}
	q->retry_wait = true;
	arm(q, stale ? 0 : q->svc->ps.retry_delay);
}

static void timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct policy_query *q = arg;

	(void)fd, (void)what;
	if (q->retry_wait) {
		q->retry_wait = false;
		attempt(q);
		return;
	}
	failed(q, strerror(ETIMEDOUT), false);
}

static void attempt(struct policy_query *q)
{
	struct pconn *k;

	q->tries++;
	q->got = 0;
	q->reused = (k = conn_take(q->svc)) != NULL;
	if (k == NULL)
		k = conn_new(q->svc);
	k->q = q;
	q->conn = k;
	bufferevent_write(k->bev, q->req, q->len);   /* sent once connected */
	bufferevent_enable(k->bev, EV_READ | EV_WRITE);
	arm(q, q->svc->ps.timeout);
	if (!q->reused)
		conn_start(k);      /* last: it may fail q's attempt */
}

struct policy_query *policy_query_start(struct event_base *base,
					const struct policy_service *ps,
					const char *request, size_t len,
					long long line_limit,
					policy_reply_fn fn, void *arg)
{
	struct policy_query *q = calloc(1, sizeof *q);

	if (q == NULL || (q->req = malloc(len)) == NULL)
		msg_fatal("policy: out of memory");
	memcpy(q->req, request, len);
	q->len = len;
	q->svc = svc_get(base, ps);
	q->line_limit = line_limit > 0 ? line_limit : 2048;
	q->fn = fn;
	q->arg = arg;
	if ((q->timer = evtimer_new(base, timer_fired, q)) == NULL)
		msg_fatal("policy: out of memory");
	q->retry_wait = true;       /* the first attempt, from the loop */
	arm(q, 0);
	return q;
}

void policy_query_cancel(struct policy_query *q)
{
	if (q == NULL)
		return;
	if (q->conn) {
		q->conn->q = NULL;
		conn_close(q->conn);
	}
	query_free(q);
}
