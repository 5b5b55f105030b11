/*
 * milter8.c - one connection to one milter, speaking the Sendmail 8
 * milter protocol (version 2 to 6) in the worker's event loop.
 *
 * A packet is a 4-byte length in network order, a command letter, then
 * data.  This module connects (unix:/path, local:/path, inet:host:port),
 * negotiates (SMFIC_OPTNEG: version, actions, protocol step flags -
 * SMFIP_RCPT_REJ included, at version 6 - and the macro lists the milter
 * asks for), sends packets, and reads one reply
 * at a time for the caller.
 *
 * Promises:
 *  - never blocks: the socket is non-blocking, every wait has a deadline
 *    (milter8_expect's timeout; the connect timeout for connect and
 *    negotiation); SMFIR_PROGRESS restarts it and is not passed on;
 *  - a failure (refused, timed out, closed, a malformed packet) is logged
 *    once in Postfix's words, closes the connection, sets M8_ERROR and
 *    reaches the waiting caller as cmd -1; a callback runs at most once
 *    per wait;
 *  - milter8_free() may be called at any time, also from a callback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#include "log.h"
#include "milter_int.h"

/* The biggest reply packet taken (SMFIR_REPLBODY chunks, header values). */
#define M8_MAX_PACKET   (1024 * 1024 + 64)

/* What sluice offers at negotiation: every modification and every step
 * and no-reply flag it honours. */
#define M8_ACTIONS (SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT \
	| SMFIF_DELRCPT | SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_CHGFROM \
	| SMFIF_ADDRCPT_PAR | SMFIF_SETSYMLIST)
#define M8_STEPS (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL \
	| SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH \
	| SMFIP_NR_HDR | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_SKIP \
	| SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT \
	| SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH | SMFIP_NR_BODY \
	| SMFIP_HDR_LEADSPC | SMFIP_RCPT_REJ)

const char *milter8_cmd_name(int cmd)
{
	switch (cmd) {
	case SMFIC_ABORT: return "SMFIC_ABORT";
	case SMFIC_BODY: return "SMFIC_BODY";
	case SMFIC_CONNECT: return "SMFIC_CONNECT";
	case SMFIC_MACRO: return "SMFIC_MACRO";
	case SMFIC_BODYEOB: return "SMFIC_BODYEOB";
	case SMFIC_HELO: return "SMFIC_HELO";
	case SMFIC_HEADER: return "SMFIC_HEADER";
	case SMFIC_MAIL: return "SMFIC_MAIL";
	case SMFIC_EOH: return "SMFIC_EOH";
	case SMFIC_OPTNEG: return "SMFIC_OPTNEG";
	case SMFIC_QUIT: return "SMFIC_QUIT";
	case SMFIC_RCPT: return "SMFIC_RCPT";
	case SMFIC_DATA: return "SMFIC_DATA";
	case SMFIC_UNKNOWN: return "SMFIC_UNKNOWN";
	}
	return "(unknown command)";
}

/* ---- closing and failing ------------------------------------------- */

static void m8_disconnect(struct milter8 *m)
{
	if (m->timer) {
		event_free(m->timer);
		m->timer = NULL;
	}
	if (m->bev) {
		bufferevent_free(m->bev);
		m->bev = NULL;
	}
}

static void m8_disarm_timer(struct milter8 *m)
{
	if (m->timer)
		evtimer_del(m->timer);
}

/* Hand a failure to whoever waits (at most once). */
static void m8_report_failure(struct milter8 *m)
{
	milter8_fn fn = m->fn ? m->fn : m->open_fn;
	void *arg = m->fn ? m->arg : m->open_arg;

	m->fn = m->open_fn = NULL;
	m->waiting_for = NULL;
	if (fn)
		fn(m, -1, NULL, 0, arg);
}

void milter8_fail(struct milter8 *m)
{
	if (m->bev) {
		bufferevent_free(m->bev);
		m->bev = NULL;
	}
	m8_disarm_timer(m);
	m->state = M8_ERROR;
	m->in_message = false;
}

/* A failure while waiting: log in Postfix's words, close, report. */
static void m8_read_failed(struct milter8 *m, const char *why)
{
	msg_warn("milter %s: can't read %s reply packet header: %s",
		 m->conf->name, m->waiting_for ? m->waiting_for : "(none)", why);
	milter8_fail(m);
	m8_report_failure(m);
}

void milter8_free(struct milter8 *m)
{
	if (m == NULL)
		return;
	if (m->bev && m->state != M8_ERROR && m->state != M8_OPENING) {
		/* best effort: a QUIT the milter may or may not read */
		unsigned char pkt[5] = { 0, 0, 0, 1, SMFIC_QUIT };
		int fd = bufferevent_getfd(m->bev);

		bufferevent_flush(m->bev, EV_WRITE, BEV_FLUSH);
		if (fd >= 0)
			(void)!send(fd, pkt, sizeof pkt, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	m8_disconnect(m);
	for (int i = 0; i < M8_NMACRO_LISTS; i++)
		free(m->macros[i]);
	free(m->rej_text);
	free(m);
}

/* ---- timer ------------------------------------------------------------ */

static void m8_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct milter8 *m = arg;

	if (m->state == M8_ERROR) {     /* a failure found while starting */
		m8_report_failure(m);
		return;
	}
	if (m->state == M8_OPENING && m->waiting_for == NULL) {
		msg_warn("connect to Milter service %s: Connection timed out",
			 m->conf->name);
		milter8_fail(m);
		m8_report_failure(m);
		return;
	}
	m8_read_failed(m, "Connection timed out");
}

static void m8_arm(struct milter8 *m, long long secs)
{
	struct timeval tv = { secs > 0 ? (time_t)secs : 1, 0 };

	if (m->timer == NULL
	    && (m->timer = evtimer_new(m->base, m8_timeout, m)) == NULL)
		msg_fatal("milter: out of memory");
	evtimer_add(m->timer, &tv);
}

static void m8_disarm(struct milter8 *m)
{
	if (m->timer)
		evtimer_del(m->timer);
}

/* ---- packets ----------------------------------------------------------- */

void milter8_send(struct milter8 *m, int cmd, const void *data, size_t len)
{
	uint32_t n = htonl((uint32_t)len + 1);
	unsigned char c = (unsigned char)cmd;
	struct evbuffer *out;

	if (m->bev == NULL)
		return;
	out = bufferevent_get_output(m->bev);
	evbuffer_add(out, &n, 4);
	evbuffer_add(out, &c, 1);
	if (len)
		evbuffer_add(out, data, len);
}

void milter8_expect(struct milter8 *m, const char *what, long long timeout,
		    milter8_fn fn, void *arg)
{
	m->fn = fn;
	m->arg = arg;
	m->waiting_for = what;
	m->timeout = timeout;
	m8_arm(m, timeout);
	/* a reply may already be buffered */
	if (m->bev && evbuffer_get_length(bufferevent_get_input(m->bev)) >= 5)
		bufferevent_trigger(m->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS
				    | BEV_TRIG_DEFER_CALLBACKS);
}

/* ---- negotiation ---------------------------------------------------- */

/* What each protocol version may be offered (as Postfix's milter8):
 * version 2 knows the first six steps and five actions, 3 adds EOH and
 * quarantine, 4 adds DATA, unknown commands and no header replies, 6
 * the rest. */
static void m8_offer(int version, uint32_t *actions, uint32_t *steps)
{
	*actions = M8_ACTIONS;
	*steps = M8_STEPS;
	if (version >= 6)
		return;
	*actions &= SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT
		| SMFIF_DELRCPT | SMFIF_CHGHDRS
		| (version >= 3 ? SMFIF_QUARANTINE : 0);
	*steps &= SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT
		| SMFIP_NOBODY | SMFIP_NOHDRS
		| (version >= 3 ? SMFIP_NOEOH : 0)
		| (version >= 4 ? SMFIP_NR_HDR | SMFIP_NOUNKNOWN | SMFIP_NODATA : 0);
}

static void m8_send_optneg(struct milter8 *m)
{
	uint32_t v[3], actions, steps;

	m8_offer(m->conf->protocol, &actions, &steps);
	v[0] = htonl((uint32_t)m->conf->protocol);
	v[1] = htonl(actions);
	v[2] = htonl(steps);
	milter8_send(m, SMFIC_OPTNEG, v, sizeof v);
}

static uint32_t get32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

/* The OPTNEG reply: version, actions, steps, then (v6) macro lists as
 * pairs of a 4-byte SMFIM_* index and a NUL-terminated list. */
static int m8_take_optneg(struct milter8 *m, const char *d, size_t len)
{
	size_t off = 12;

	if (len < 12) {
		msg_warn("milter %s: SMFIC_OPTNEG reply too short: %zu bytes",
			 m->conf->name, len);
		return -1;
	}
	m->version = get32(d);
	m->actions = get32(d + 4);
	m->pflags = get32(d + 8);
	if (m->version < 2 || m->version > 6) {
		msg_warn("milter %s: unsupported protocol version %u",
			 m->conf->name, (unsigned)m->version);
		return -1;
	}
	if ((m->actions & ~(uint32_t)M8_ACTIONS) != 0)
		msg_warn("milter %s: requested action flags 0x%x not offered; "
			 "ignored", m->conf->name,
			 (unsigned)(m->actions & ~(uint32_t)M8_ACTIONS));
	if (m->version > (uint32_t)m->conf->protocol)
		m->version = (uint32_t)m->conf->protocol;
	{
		/* only what was offered at the version both speak */
		uint32_t actions, steps;

		m8_offer((int)m->version, &actions, &steps);
		m->actions &= actions;
		m->pflags &= steps;
	}
	if (m->version < 4)         /* no DATA or unknown command events */
		m->pflags |= SMFIP_NODATA | SMFIP_NOUNKNOWN;
	while (off + 5 <= len) {
		uint32_t idx = get32(d + off);
		const char *list = d + off + 4;
		size_t n = strnlen(list, len - off - 4);

		if (off + 4 + n >= len)
			break;          /* not terminated */
		if (idx < M8_NMACRO_LISTS) {
			free(m->macros[idx]);
			m->macros[idx] = strndup(list, n);
		}
		off += 4 + n + 1;
	}
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

static void m8_dispatch(struct milter8 *m, int cmd, const char *d, size_t len)
{
	milter8_fn fn;
	void *arg;

	if (m->open_fn && m->state == M8_OPENING) {
		fn = m->open_fn;
		arg = m->open_arg;
		m->open_fn = NULL;
		m->waiting_for = NULL;
		m8_disarm(m);
		if (cmd != SMFIC_OPTNEG || m8_take_optneg(m, d, len) < 0) {
			if (cmd != SMFIC_OPTNEG)
				msg_warn("milter %s: unexpected reply to SMFIC_OPTNEG: '%c'",
					 m->conf->name, cmd);
			milter8_fail(m);
			fn(m, -1, NULL, 0, arg);
			return;
		}
		m->state = M8_READY;
		fn(m, SMFIC_OPTNEG, d, len, arg);
		return;
	}
	if (cmd == SMFIR_PROGRESS && m->fn) {
		m8_arm(m, m->timeout);
		return;
	}
	if (m->fn == NULL) {
		msg_warn("milter %s: unexpected '%c' packet with no request pending",
			 m->conf->name, cmd);
		milter8_fail(m);
		return;
	}
	fn = m->fn;
	arg = m->arg;
	m->fn = NULL;
	m->waiting_for = NULL;
	m8_disarm(m);
	fn(m, cmd, d, len, arg);
}

static void m8_read(struct bufferevent *bev, void *arg)
{
	struct milter8 *m = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	/* one packet per wait: the callback may free m or start the next
	 * wait, which re-triggers the read for what is buffered */
	while (m->bev && (m->fn || m->open_fn)
	       && evbuffer_get_length(in) >= 4) {
		uint32_t n;
		unsigned char *p;
		char *copy;

		evbuffer_copyout(in, &n, 4);
		n = ntohl(n);
		if (n == 0 || n > M8_MAX_PACKET) {
			msg_warn("milter %s: bad %s reply packet length: %u",
				 m->conf->name, m->waiting_for ? m->waiting_for
				 : "SMFIC_OPTNEG", (unsigned)n);
			milter8_fail(m);
			m8_report_failure(m);
			return;
		}
		if (evbuffer_get_length(in) < 4 + (size_t)n)
			return;
		p = evbuffer_pullup(in, 4 + (ssize_t)n);
		if ((copy = malloc(n)) == NULL)
			msg_fatal("milter: out of memory");
		memcpy(copy, p + 5, n - 1);
		copy[n - 1] = 0;
		{
			int cmd = p[4];

			evbuffer_drain(in, 4 + (size_t)n);
			if (cmd == SMFIR_PROGRESS && m->fn) {
				/* not an answer: the deadline starts over */
				free(copy);
				m8_arm(m, m->timeout);
				continue;
			}
			m8_dispatch(m, cmd, copy, n - 1);
		}
		free(copy);
		return;         /* m may be gone; a new wait re-reads */
	}
}

static void m8_event(struct bufferevent *bev, short what, void *arg)
{
	struct milter8 *m = arg;

	if (what & BEV_EVENT_CONNECTED) {
		m8_send_optneg(m);
		m->waiting_for = "SMFIC_OPTNEG";
		m8_arm(m, m->conf->conn_timeout);
		return;
	}
	if (m->state == M8_OPENING && m->waiting_for == NULL) {
		msg_warn("connect to Milter service %s: %s", m->conf->name,
			 strerror(EVUTIL_SOCKET_ERROR() ? EVUTIL_SOCKET_ERROR()
				  : ECONNREFUSED));
		milter8_fail(m);
		m8_report_failure(m);
		return;
	}
	if (m->fn || m->open_fn) {
		m8_read_failed(m, (what & BEV_EVENT_EOF) ? "Connection reset by peer"
			       : strerror(EVUTIL_SOCKET_ERROR()));
		return;
	}
	/* closed between requests: noticed now, reported at the next use */
	msg_warn("milter %s: connection closed by the milter", m->conf->name);
	milter8_fail(m);
}

/* ---- connecting ------------------------------------------------------- */

/* Parse the endpoint into a socket address.  0, or -1 (logged). */
static int m8_address(const struct milter8 *m, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	const char *name = m->conf->name;

	memset(ss, 0, sizeof *ss);
	if (!strncmp(name, "unix:", 5) || !strncmp(name, "local:", 6)) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;
		const char *path = strchr(name, ':') + 1;

		if (strlen(path) >= sizeof sun->sun_path) {
			msg_warn("milter %s: path too long", name);
			return -1;
		}
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, path);
		*len = sizeof *sun;
		return 0;
	}
	if (!strncmp(name, "inet:", 5) || !strncmp(name, "inet6:", 6)) {
		const char *hp = strchr(name, ':') + 1;
		const char *colon = strrchr(hp, ':');
		char host[256];
		struct addrinfo hints, *res = NULL;
		int err;

		if (colon == NULL || colon == hp
		    || (size_t)(colon - hp) >= sizeof host) {
			msg_warn("milter %s: expected inet:host:port", name);
			return -1;
		}
		memcpy(host, hp, colon - hp);
		host[colon - hp] = 0;
		if (host[0] == '[' && host[strlen(host) - 1] == ']') {
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = 0;
		}
		memset(&hints, 0, sizeof hints);
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
		err = getaddrinfo(host, colon + 1, &hints, &res);
		if (err == EAI_NONAME) {
			/* a name: /etc/hosts in practice ("localhost") */
			hints.ai_flags = AI_NUMERICSERV;
			err = getaddrinfo(host, colon + 1, &hints, &res);
		}
		if (err != 0 || res == NULL) {
			msg_warn("milter %s: cannot resolve %s: %s", name, host,
				 gai_strerror(err));
			return -1;
		}
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		*len = res->ai_addrlen;
		freeaddrinfo(res);
		return 0;
	}
	msg_warn("milter %s: unknown transport (expected unix:, local: or inet:)",
		 name);
	return -1;
}

/* A failure found before milter8_open() returns reaches the caller from
 * the event loop, never from inside the call. */
static void m8_fail_later(struct milter8 *m)
{
	struct timeval now = { 0, 0 };

	milter8_fail(m);
	if (m->timer == NULL
	    && (m->timer = evtimer_new(m->base, m8_timeout, m)) == NULL)
		msg_fatal("milter: out of memory");
	evtimer_add(m->timer, &now);
}

struct milter8 *milter8_create(const struct milter_conf *conf,
			       struct event_base *base)
{
	struct milter8 *m = calloc(1, sizeof *m);

	if (m == NULL)
		msg_fatal("milter: out of memory");
	m->conf = conf;
	m->base = base;
	m->state = M8_CLOSED;
	return m;
}

void milter8_open(struct milter8 *m, milter8_fn fn, void *arg)
{
	struct sockaddr_storage ss;
	socklen_t len;

	m->open_fn = fn;
	m->open_arg = arg;
	m->state = M8_OPENING;
	m->waiting_for = NULL;
	if (m8_address(m, &ss, &len) < 0) {
		m8_fail_later(m);
		return;
	}
	m->bev = bufferevent_socket_new(m->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (m->bev == NULL)
		msg_fatal("milter: out of memory");
	bufferevent_setcb(m->bev, m8_read, NULL, m8_event, m);
	bufferevent_enable(m->bev, EV_READ | EV_WRITE);
	m8_arm(m, m->conf->conn_timeout);
	if (bufferevent_socket_connect(m->bev, (struct sockaddr *)&ss,
				       (int)len) < 0) {
		int err = EVUTIL_SOCKET_ERROR();

		msg_warn("connect to Milter service %s: %s", m->conf->name,
			 strerror(err ? err : ECONNREFUSED));
		m8_fail_later(m);
	}
}
