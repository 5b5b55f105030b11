/*
 * delivery_client.c - requests to the delivery process, and their results
 * back, in the queue manager's loop (delivery_client.h).
 *
 * One connection to DP_SOCKET, connected on demand.  Each request gets a
 * sequence number; the results come back in any order and are matched
 * by it.  A result fills the request's recipients (by their position in
 * what was sent; recipients settled here before sending are skipped),
 * or, for "error", every recipient sent.  The connection is dropped,
 * and every request in flight deferred, when it ends, fails, or carries
 * something that is not a result of ours.
 *
 * done() always runs from the loop: at once when a result is read, and
 * through a zero timeout when the request never left (no connection, no
 * recipient left to send).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "delivery_client.h"
#include "delivery_proto.h"
#include "log.h"

struct pending {
	unsigned long long seq;
	struct delivery_request *req;
	delivery_done_fn done;
	void *arg;
	int *sent;                      /* position sent -> req->rcpt index */
	int nsent;
	TAILQ_ENTRY(pending) link;
};
TAILQ_HEAD(pending_list, pending);

struct delivery_client {
	struct event_base *base;
	char *path;
	struct bufferevent *bev;        /* NULL: not connected */
	struct pending_list pending;
	unsigned long long next_seq;
	struct dp_result rd;            /* the result being read */
};

static void pending_free(struct pending *p)
{
	free(p->sent);
	free(p);
}

/* ---- finishing a request --------------------------------------------- */

static void finish(struct pending *p)
{
	p->done(p->req, p->arg);
	pending_free(p);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	finish(arg);
}

/* done() from the loop, soon. */
static void finish_later(struct delivery_client *c, struct pending *p)
{
	struct timeval now = { 0, 0 };

	if (event_base_once(c->base, -1, EV_TIMEOUT, on_later, p, &now) < 0)
		msg_fatal("cannot schedule a delivery completion");
}

static void defer_sent(struct pending *p, const char *text)
{
	for (int i = 0; i < p->nsent; i++) {
		struct delivery_rcpt *r = &p->req->rcpt[p->sent[i]];

		if (r->status == 0)
			delivery_set(r, 4, "4.3.0", "%s", text);
	}
	gettimeofday(&p->req->t_done, NULL);
}

/* ---- the connection -------------------------------------------------- */

/* Every request in flight is deferred: those sent from inside a done()
 * go on a new connection. */
static void drop_connection(struct delivery_client *c, const char *why)
{
	struct pending_list lost = TAILQ_HEAD_INITIALIZER(lost);
	struct pending *p;

	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	dp_result_free(&c->rd);
	TAILQ_CONCAT(&lost, &c->pending, link);
	while ((p = TAILQ_FIRST(&lost)) != NULL) {
		TAILQ_REMOVE(&lost, p, link);
		defer_sent(p, why);
		finish(p);
	}
}

static void apply_rcpt(struct pending *p, int pos,
		       const struct dp_rcpt_result *o)
{
	struct delivery_rcpt *r;

	if (pos >= p->nsent || o->status == 0)
		return;
	r = &p->req->rcpt[p->sent[pos]];
	delivery_set(r, o->status, o->dsn, "%s", o->text ? o->text : "");
}

/* A complete result: into its request, which is done. */
static bool take_result(struct delivery_client *c, const struct dp_result *res)
{
	struct delivery_request *req;
	struct pending *p;

	TAILQ_FOREACH(p, &c->pending, link)
		if (p->seq == res->seq)
			break;
	if (p == NULL)
		return false;
	TAILQ_REMOVE(&c->pending, p, link);
	req = p->req;
	if (res->relay[0])
		snprintf(req->relay, sizeof req->relay, "%s", res->relay);
	if (timerisset(&res->t_conn))
		req->t_conn = res->t_conn;
	req->t_done = res->t_done;
	for (int i = 0; i < res->n; i++)
		apply_rcpt(p, i, &res->v[i]);
	if (res->error)
		for (int i = 0; i < p->nsent; i++)
			apply_rcpt(p, i, &res->all);
	if (!timerisset(&req->t_done))
		gettimeofday(&req->t_done, NULL);
	finish(p);
	return true;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct delivery_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char why[128], *line;
	enum dp_feed st;
	size_t len;

	while (c->bev != NULL
	       && (line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
		st = dp_result_feed(&c->rd, line, len, why, sizeof why);
		free(line);
		if (st == DP_DONE && !take_result(c, &c->rd)) {
			snprintf(why, sizeof why, "a result for no request");
			st = DP_BROKEN;
		}
		if (st == DP_BROKEN) {
			msg_warn("delivery process: %s; connection dropped",
				 why);
			drop_connection(c, "lost the connection with the "
					"delivery process");
			return;
		}
		if (st == DP_DONE)
			dp_result_free(&c->rd);
	}
	if (c->bev != NULL && evbuffer_get_length(in) > DP_LINE_MAX) {
		msg_warn("delivery process: a record longer than the limit; "
			 "connection dropped");
		drop_connection(c, "lost the connection with the delivery "
				"process");
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct delivery_client *c = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (!TAILQ_EMPTY(&c->pending))
		msg_warn("the delivery process closed the connection with "
			 "deliveries in progress; they will be tried again");
	drop_connection(c, "lost the connection with the delivery process "
			"(it stopped or died)");
}

/* Connect to the socket; 0, or -1 with errno. */
static int dial(struct delivery_client *c)
{
	struct sockaddr_un sun;
	int fd, e;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(c->path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, c->path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	evutil_make_socket_nonblocking(fd);
	c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		msg_fatal("cannot set up the delivery connection: out of "
			  "memory");
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 2 * DP_LINE_MAX);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return 0;
}

/* ---- requests -------------------------------------------------------- */

/* Settle the recipients the delivery process would refuse; the
 * positions of the others, as they will be sent. */
static void choose(struct pending *p)
{
	struct delivery_request *req = p->req;

	if ((p->sent = calloc((size_t)req->nrcpt + 1, sizeof *p->sent)) == NULL)
		msg_fatal("out of memory");
	for (int i = 0; i < req->nrcpt; i++) {
		struct delivery_rcpt *r = &req->rcpt[i];

		if (r->status != 0)
			continue;
		if (!dp_addr_ok(r->addr)
		    || (r->orig_addr && !dp_addr_ok(r->orig_addr)))
			delivery_set(r, 5, "5.1.3",
				     "bad address syntax: \"%.100s\"", r->addr);
		else
			p->sent[p->nsent++] = i;
	}
}

void delivery_client_deliver(struct delivery_client *c,
			     struct delivery_request *req,
			     delivery_done_fn done, void *arg)
{
	struct pending *p = calloc(1, sizeof *p);
	int n;

	if (p == NULL)
		msg_fatal("out of memory");
	*p = (struct pending){ .req = req, .done = done, .arg = arg };
	gettimeofday(&req->t_conn, NULL);
	snprintf(req->relay, sizeof req->relay, "none");
	choose(p);
	if (p->nsent > 0 && c->bev == NULL && dial(c) < 0) {
		char text[200];

		snprintf(text, sizeof text, "cannot connect to the delivery "
			 "process (%s): %s", c->path, strerror(errno));
		msg_warn("%s", text);
		defer_sent(p, text);
		p->nsent = 0;
	}
	if (p->nsent == 0) {
		gettimeofday(&req->t_done, NULL);
		finish_later(c, p);
		return;
	}
	p->seq = ++c->next_seq;
	dp_request_write(bufferevent_get_output(c->bev), p->seq, req, &n);
	if (n != p->nsent)
		msg_panic("delivery request: %d recipients written, %d chosen",
			  n, p->nsent);
	TAILQ_INSERT_TAIL(&c->pending, p, link);
}

int delivery_client_rcpt_max(void)
{
	return DP_RCPT_MAX;
}

/* ---- the client ------------------------------------------------------ */

struct delivery_client *delivery_client_new(struct event_base *base,
					    const char *path)
{
	struct delivery_client *c = calloc(1, sizeof *c);

	if (c == NULL || (c->path = strdup(path)) == NULL)
		msg_fatal("out of memory");
	c->base = base;
	TAILQ_INIT(&c->pending);
	return c;
}

void delivery_client_free(struct delivery_client *c)
{
	struct pending *p;

	if (c == NULL)
		return;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	dp_result_free(&c->rd);
	while ((p = TAILQ_FIRST(&c->pending)) != NULL) {
		TAILQ_REMOVE(&c->pending, p, link);
		pending_free(p);
	}
	free(c->path);
	free(c);
}
