/*
 * smtp_client_proto.c - one SMTP/LMTP client connection: connecting,
 * reading replies, the greeting and the EHLO/LHLO/HELO handshake, and
 * how a session ends (QUIT, reuse, or dropped).  The mail transaction
 * itself is smtp_client_txn.c.
 *
 * Connecting is done by hand (non-blocking connect(), then SO_ERROR) so
 * that a failure carries its real reason into "connect to X[ip]:25:
 * Connection refused"; only then does a bufferevent take the socket.
 * Every stage has its own time limit (Postfix's smtp_*_timeout), kept as
 * the bufferevent's read and write timeouts: a stage fails when the
 * server has been silent, or has not taken our output, for that long.
 *
 * After the greeting and after EHLO the server's name is compared with
 * myhostname (SMTP only; an LMTP server is usually this very host): a
 * match is "mail for X loops back to myself", 5.4.6, as in Postfix.  A
 * greeting other than 2xx, or a 5xx with smtp_skip_5xx_greeting, makes
 * the delivery try the next server.
 *
 * A connection refers to its delivery only while it carries one; every
 * path out of a session goes through smtpc_end() or smtpc_drop(), which
 * first let go of the connection and then tell the delivery once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "smtp_client.h"
#include "sasl_client.h"

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* ---- small helpers ---------------------------------------------------- */

void smtpc_send(struct smtpc_conn *c, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	va_list ap;

	va_start(ap, fmt);
	if (log_verbose_level() > 0) {
		va_list aq;
		char line[1100];

		va_copy(aq, ap);
		vsnprintf(line, sizeof line, fmt, aq);
		va_end(aq);
		msg_debug("> %s: %s", c->namaddr, line);
	}
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

void smtpc_timeouts(struct smtpc_conn *c, long long rd, long long wr)
{
	struct timeval r = { (time_t)rd, 0 }, w = { (time_t)wr, 0 };

	bufferevent_set_timeouts(c->bev, rd > 0 ? &r : NULL, wr > 0 ? &w : NULL);
}

const char *smtpc_stage_text(const struct smtpc_conn *c)
{
	switch (c->state) {
	case SMTPC_GREET:
		return "receiving the initial server greeting";
	case SMTPC_EHLO:
		return c->lmtp ? "performing the LHLO handshake"
			: "performing the EHLO handshake";
	case SMTPC_HELO:
		return "performing the HELO handshake";
	case SMTPC_STARTTLS:
		return "receiving the STARTTLS response";
	case SMTPC_AUTH:
		return "performing the AUTH handshake";
	case SMTPC_MAIL:
		return c->expect_head < c->nexpect && c->expect[c->expect_head] < 0
			? "sending MAIL FROM" : "sending RCPT TO";
	case SMTPC_DATA:
		return "sending DATA command";
	case SMTPC_BODY:
		return "sending message body";
	case SMTPC_DOT:
		return "sending end of data -- message may be sent more than once";
	default:
		return "talking to it";
	}
}

/* Format into a fixed buffer where a cut text is acceptable. */
static void fmt_cut(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fmt_cut(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* relay=, as Postfix logs it: "host[addr]:port", "host[/path]". */
static void set_relay(struct smtpc_conn *c, struct delivery_request *req)
{
	if (c->port > 0)
		fmt_cut(req->relay, sizeof req->relay, "%s:%d", c->namaddr, c->port);
	else
		fmt_cut(req->relay, sizeof req->relay, "%s", c->namaddr);
}

/* Postfix's shape of a failure reply: "host X said: 550 ... (in reply
 * to RCPT TO command)"; the text of a success is the reply itself. */
static void said(struct smtpc_conn *c, char *buf, size_t len)
{
	char one[SMTPC_REPLY_TEXT_MAX];

	snprintf(buf, len, "host %s said: %s", c->namaddr,
		 smtpc_reply_oneline(&c->reply, one, sizeof one));
}

/* ---- the end of a session --------------------------------------------- */

static struct smtpc_delivery *detach(struct smtpc_conn *c)
{
	struct smtpc_delivery *d = c->d;

	c->d = NULL;
	return d;
}

void smtpc_drop(struct smtpc_conn *c, enum smtpc_end how)
{
	struct smtpc_delivery *d = detach(c);

	smtpc_conn_free(c);
	if (d)
		smtpc_session_end(d, how);
}

void smtpc_end(struct smtpc_conn *c, enum smtpc_end how, bool keep)
{
	const struct smtpc_params *par = c->par;
	struct smtpc_delivery *d = detach(c);

	if (keep && par)
		smtpc_pool_keep(c, par);
	else
		smtpc_conn_quit(c);
	if (d)
		smtpc_session_end(d, how);
}

void smtpc_conn_free(struct smtpc_conn *c)
{
	if (c == NULL)
		return;
	smtpc_pool_forget(c);
	if (c->connect_ev)
		event_free(c->connect_ev);
	if (c->bev)
		bufferevent_free(c->bev);
	else if (c->fd >= 0)
		close(c->fd);
	smtpc_tls_free(c);
	smtpc_sasl_free(c);
	smtpc_body_end(c);
	free(c->expect);
	free(c);
}

void smtpc_conn_quit(struct smtpc_conn *c)
{
	c->state = SMTPC_QUIT;
	c->d = NULL;
	if (c->bev == NULL) {
		smtpc_conn_free(c);
		return;
	}
	if (smtpc_tls_active(c))
		c->quit_wait_reply = true;      /* the TLS layer may still hold
						 * QUIT when it is "written" */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	smtpc_reply_reset(&c->reply);
	smtpc_send(c, "QUIT");
	smtpc_timeouts(c, c->quit_timeout, c->quit_timeout);
	smtpc_pool_closing(c);
}

void smtpc_fail_site(struct smtpc_conn *c, int status, const char *dsn,
		     const char *text, bool quit)
{
	smtpc_site_fail(c->d, status, dsn, "%s", text);
	if (quit)
		smtpc_end(c, status == 4 ? SMTPC_END_SITE_SOFT : SMTPC_END_FINAL,
			  false);
	else
		smtpc_drop(c, status == 4 ? SMTPC_END_SITE_SOFT : SMTPC_END_FINAL);
}

/* ---- greeting and handshake ------------------------------------------- */

static bool loops_back(struct smtpc_conn *c)
{
	char word[SMTPC_HOST_MAX];

	if (c->lmtp)
		return false;
	smtpc_reply_first_word(&c->reply, word, sizeof word);
	if (strcasecmp(word, c->par->myhostname) != 0)
		return false;
	msg_warn("host %s greeted me with my own hostname %s", c->namaddr,
		 c->par->myhostname);
	return true;
}

static int loop_fail(struct smtpc_conn *c)
{
	char text[600];

	snprintf(text, sizeof text, "mail for %s loops back to myself",
		 smtpc_req(c->d)->nexthop);
	smtpc_fail_site(c, 5, "5.4.6", text, true);
	return -1;
}

static int refused(struct smtpc_conn *c, bool skip_5xx)
{
	char text[SMTPC_REPLY_TEXT_MAX + 400], one[SMTPC_REPLY_TEXT_MAX];
	char dsn[16];
	int status = c->reply.code / 100 == 5 && !skip_5xx ? 5 : 4;

	snprintf(dsn, sizeof dsn, "%s", c->reply.dsn);
	dsn[0] = (char)('0' + status);
	snprintf(text, sizeof text, "host %s refused to talk to me: %s",
		 c->namaddr, smtpc_reply_oneline(&c->reply, one, sizeof one));
	smtpc_fail_site(c, status, dsn, text, true);
	return -1;
}

static void send_hello(struct smtpc_conn *c)
{
	const struct smtpc_params *par = c->par;

	if (c->lmtp) {
		smtpc_send(c, "LHLO %s", par->helo_name);
		c->state = SMTPC_EHLO;
	} else if (par->never_send_ehlo) {
		smtpc_send(c, "HELO %s", par->helo_name);
		c->state = SMTPC_HELO;
	} else {
		smtpc_send(c, "EHLO %s", par->helo_name);
		c->state = SMTPC_EHLO;
	}
	smtpc_timeouts(c, par->helo_timeout, par->helo_timeout);
}

void smtpc_send_hello(struct smtpc_conn *c)
{
	send_hello(c);
}

static int on_greeting(struct smtpc_conn *c)
{
	if (c->reply.code / 100 != 2)
		return refused(c, c->par->skip_5xx_greeting);
	if (loops_back(c))
		return loop_fail(c);
	send_hello(c);
	return 0;
}

static int handshake_done(struct smtpc_conn *c)
{
	c->uses++;
	smtpc_session_ready(c->d);
	smtpc_txn_begin(c);
	return c->d ? 0 : -1;   /* the transaction may end before a reply */
}

/* AUTH, when smtp_sasl_auth_enable says so (sasl_client.c). */
static int sasl_step(struct smtpc_conn *c, int rc)
{
	if (rc == SMTPC_SASL_GO)
		return handshake_done(c);
	return rc == SMTPC_SASL_WAIT ? 0 : -1;
}

/* STARTTLS, when the TLS level says so (smtp_client_tls.c). */
static int tls_step(struct smtpc_conn *c, int rc)
{
	if (rc == SMTPC_TLS_GO)
		return sasl_step(c, smtpc_sasl_start(c));
	return rc == SMTPC_TLS_WAIT ? 0 : -1;
}

static int on_ehlo(struct smtpc_conn *c)
{
	if (c->reply.code / 100 == 5 && !c->lmtp) {
		smtpc_send(c, "HELO %s", c->par->helo_name);
		c->state = SMTPC_HELO;
		return 0;
	}
	if (c->reply.code / 100 != 2)
		return refused(c, false);
	if (loops_back(c))
		return loop_fail(c);
	c->features = smtpc_ehlo_features(&c->reply, &c->size_limit);
	smtpc_sasl_ehlo(c);
	return tls_step(c, smtpc_tls_after_hello(c));
}

static int on_helo(struct smtpc_conn *c)
{
	if (c->reply.code / 100 != 2)
		return refused(c, false);
	if (loops_back(c))
		return loop_fail(c);
	c->features = 0;
	c->size_limit = 0;
	return tls_step(c, smtpc_tls_after_hello(c));
}

/* ---- input ------------------------------------------------------------ */

static int dispatch(struct smtpc_conn *c)
{
	c->got_reply = true;
	switch (c->state) {
	case SMTPC_GREET:
		return on_greeting(c);
	case SMTPC_EHLO:
		return on_ehlo(c);
	case SMTPC_HELO:
		return on_helo(c);
	case SMTPC_STARTTLS:
		return tls_step(c, smtpc_tls_reply(c));
	case SMTPC_AUTH:
		return sasl_step(c, smtpc_sasl_reply(c));
	case SMTPC_MAIL:
	case SMTPC_DATA:
	case SMTPC_DOT:
		return smtpc_txn_reply(c);
	default:
		smtpc_conn_free(c);     /* QUIT's reply, or an idle one's */
		return -1;
	}
}

static void bad_reply(struct smtpc_conn *c)
{
	char text[SMTPC_REPLY_TEXT_MAX + 300];

	if (c->d == NULL) {
		smtpc_conn_free(c);
		return;
	}
	if (c->reused && !c->got_reply) {
		smtpc_drop(c, SMTPC_END_STALE);
		return;
	}
	fmt_cut(text, sizeof text, "host %s sent an invalid reply while %s: %s",
		 c->namaddr, smtpc_stage_text(c), c->reply.text);
	smtpc_fail_site(c, 4, "4.5.0", text, false);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct smtpc_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->state == SMTPC_IDLE) {
		smtpc_conn_free(c);     /* a server talking to an idle client */
		return;
	}
	while (evbuffer_get_length(in) > 0 && c->state != SMTPC_BODY) {
		int rc = smtpc_reply_read(in, &c->reply);

		if (rc == SMTPC_REPLY_MORE)
			return;
		if (rc == SMTPC_REPLY_BAD) {
			bad_reply(c);
			return;
		}
		if (log_verbose_level() > 0)
			msg_debug("< %s: %s", c->namaddr, c->reply.text);
		if (dispatch(c) < 0)
			return;
		smtpc_reply_reset(&c->reply);
	}
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct smtpc_conn *c = arg;

	if (c->state == SMTPC_BODY)
		smtpc_txn_body(c);
	else if (c->state == SMTPC_QUIT && !c->quit_wait_reply)
		smtpc_conn_free(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc_conn *c = arg;
	char text[1000];

	if (c->d == NULL) {
		smtpc_conn_free(c);     /* idle or saying QUIT: just go */
		return;
	}
	if (c->reused && !c->got_reply) {
		if (log_verbose_level() > 0)
			msg_debug("%s: cached connection went away; connecting "
				  "afresh", c->namaddr);
		smtpc_drop(c, SMTPC_END_STALE);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(text, sizeof text, "conversation with %s timed out while %s",
			 c->namaddr, smtpc_stage_text(c));
	else
		snprintf(text, sizeof text, "lost connection with %s while %s",
			 c->namaddr, smtpc_stage_text(c));
	smtpc_fail_site(c, 4, "4.4.2", text, false);
}

/* ---- connecting ------------------------------------------------------- */

static void connected(struct smtpc_conn *c)
{
	struct delivery_request *req = smtpc_req(c->d);

	c->bev = bufferevent_socket_new(c->base, c->fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		msg_fatal("smtp: cannot make a bufferevent: out of memory");
	c->fd = -1;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	set_relay(c, req);
	c->state = SMTPC_GREET;
	smtpc_timeouts(c, c->par->helo_timeout, c->par->helo_timeout);
}

static void connect_failed(struct smtpc_conn *c, int err)
{
	char text[600];

	if (c->port > 0)
		snprintf(text, sizeof text, "connect to %s:%d: %s", c->namaddr,
			 c->port, strerror(err));
	else
		snprintf(text, sizeof text, "connect to %s: %s", c->addr,
			 strerror(err));
	smtpc_fail_site(c, 4, "4.4.1", text, false);
}

static void on_connect(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc_conn *c = arg;
	int err = 0;
	socklen_t len = sizeof err;

	event_free(c->connect_ev);
	c->connect_ev = NULL;
	if (what & EV_TIMEOUT)
		err = ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0)
		connect_failed(c, err);
	else
		connected(c);
}

/* The socket address of c->addr:c->port, or of the unix path. */
static socklen_t make_sockaddr(const struct smtpc_conn *c,
			       struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (c->port == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;

		if (strlen(c->addr) >= sizeof un->sun_path)
			return 0;
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, c->addr);
		return sizeof *un;
	}
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET, c->addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)c->port);
		return sizeof *in4;
	}
	if (inet_pton(AF_INET6, c->addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)c->port);
		return sizeof *in6;
	}
	return 0;
}

static void begin_connect(struct smtpc_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = make_sockaddr(c, &ss);
	struct timeval tv = { (time_t)c->par->connect_timeout, 0 };

	if (len == 0) {
		connect_failed(c, c->port ? EAFNOSUPPORT : ENAMETOOLONG);
		return;
	}
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		connect_failed(c, errno);
		return;
	}
	if (ss.ss_family != AF_UNIX)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	if (connect(c->fd, (struct sockaddr *)&ss, len) == 0) {
		connected(c);
		return;
	}
	if (errno != EINPROGRESS) {
		connect_failed(c, errno);
		return;
	}
	c->connect_ev = event_new(c->base, c->fd, EV_WRITE, on_connect, c);
	if (c->connect_ev == NULL)
		msg_fatal("smtp: cannot make an event: out of memory");
	event_add(c->connect_ev, c->par->connect_timeout > 0 ? &tv : NULL);
}

static struct smtpc_conn *conn_new(struct smtpc_delivery *d, const char *key)
{
	struct smtpc_conn *c = calloc(1, sizeof *c);
	struct delivery_request *req = smtpc_req(d);

	if (c == NULL || (c->expect = calloc((size_t)req->nrcpt + 1,
					     sizeof *c->expect)) == NULL)
		msg_fatal("smtp: out of memory");
	c->fd = -1;
	c->d = d;
	c->par = smtpc_par(d);
	c->lmtp = smtpc_is_lmtp(d);
	c->quit_timeout = c->par->quit_timeout;
	c->quit_wait_reply = !c->par->skip_quit_response;
	snprintf(c->key, sizeof c->key, "%s", key);
	gettimeofday(&c->t_open, NULL);
	return c;
}

void smtpc_conn_start(struct smtpc_delivery *d, const char *host,
		      const char *addr, int port, const char *key)
{
	struct smtpc_conn *c = conn_new(d, key);

	c->base = smtpc_base(d);
	snprintf(c->host, sizeof c->host, "%s", host);
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	c->port = port;
	snprintf(c->namaddr, sizeof c->namaddr, "%s[%s]", host, addr);
	smtpc_attach(d, c);
	begin_connect(c);
}

void smtpc_conn_setcb(struct smtpc_conn *c)
{
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

void smtpc_conn_reuse(struct smtpc_conn *c, struct smtpc_delivery *d)
{
	struct delivery_request *req = smtpc_req(d);
	int *expect = realloc(c->expect, ((size_t)req->nrcpt + 1) * sizeof *expect);

	if (expect == NULL)
		msg_fatal("smtp: out of memory");
	c->expect = expect;
	c->d = d;
	c->par = smtpc_par(d);
	c->quit_timeout = c->par->quit_timeout;
	c->quit_wait_reply = !c->par->skip_quit_response;
	c->reused = true;
	c->uses++;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	set_relay(c, req);
	smtpc_attach(d, c);
	smtpc_session_ready(d);
	smtpc_txn_begin(c);
}

/* For smtp_client_txn.c: the failure text of the reply in hand. */
void smtpc_said(struct smtpc_conn *c, char *buf, size_t len)
{
	said(c, buf, len);
}
