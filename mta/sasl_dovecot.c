/*
 * sasl_dovecot.c - the "dovecot" SASL server backend: Dovecot's
 * authentication protocol (version 1) on the unix socket smtpd_sasl_path
 * (relative to queue_directory, as Postfix's private/auth).
 *
 *   C: VERSION 1 1 / CPID pid          S: VERSION 1 x / MECH name flags... / DONE
 *   C: AUTH id mech service=smtp nologin lip= rip= lport= rport= [secured] [resp=b64]
 *   S: OK id user=name | CONT id b64 | FAIL id [reason=text] [temp] [user=name]
 *   C: CONT id b64
 *
 * One connection per process and socket serves every session, each
 * request with its own id.  The handshake happens once per connection
 * (blocking, bounded by DOVECOT_HANDSHAKE_TIMEOUT: a local socket whose
 * server answers at once); the AUTH/CONT exchange runs in the event loop
 * and never blocks a worker.  A connection that breaks fails every
 * request in flight as a temporary failure (454) and is made again for
 * the next session.
 *
 * Promise: a Dovecot that is down or speaks another protocol version is
 * a reason text, never a hang beyond the timeout, never a crash.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "sasl_server.h"

/* Postfix's xsasl_dovecot AUTH_TIMEOUT: the handshake's bound. */
#define DOVECOT_HANDSHAKE_TIMEOUT 10
#define DOVECOT_MAX_MECHS 32

struct dc_srv;

struct dc_mech { char *name; int flags; };

/* One connection to an auth socket (process-wide, owned here). */
struct dc_conn {
	struct dc_conn *next;
	char *path;
	struct bufferevent *bev;
	struct dc_mech mech[DOVECOT_MAX_MECHS];
	int nmech;
	unsigned next_id;
	struct dc_srv *pending;         /* requests awaiting an answer */
	struct dc_srv *attached;        /* every session using it */
};
static struct dc_conn *dc_conns;

struct dc_srv {
	struct dc_conn *conn;
	struct dc_srv *next_pending;
	struct dc_srv *next_attached;
	bool waiting;
	unsigned id;
	xsasl_server_fn fn; void *ctx;
	char mechs[512];
	char *service, *lip, *rip;
	int lport, rport;
	bool tls;
	char *username;
};

/* ---- the connection --------------------------------------------------- */

static int mech_flags(char **words)
{
	static const struct { const char *name; int flag; } map[] = {
		{ "plaintext", SASL_OPT_NOPLAINTEXT },
		{ "active", SASL_OPT_NOACTIVE },
		{ "dictionary", SASL_OPT_NODICTIONARY },
		{ "anonymous", SASL_OPT_NOANONYMOUS },
	};
	int flags = 0;

	for (int i = 0; words[i]; i++)
		for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
			if (strcmp(words[i], map[k].name) == 0)
				flags |= map[k].flag;
	/* mutual-auth and forward-secrecy are properties a mechanism has:
	 * requiring them excludes those without (below) */
	for (int i = 0; words[i]; i++) {
		if (strcmp(words[i], "mutual-auth") == 0)
			flags |= 0x100;
		if (strcmp(words[i], "forward-secrecy") == 0)
			flags |= 0x200;
	}
	return flags;
}

/* Split a line on tabs in place; NULL-terminated, at most max - 1 words. */
static int split_tabs(char *line, char **w, int max)
{
	int n = 0;

	while (n < max - 1) {
		w[n++] = line;
		if ((line = strchr(line, '\t')) == NULL)
			break;
		*line++ = 0;
	}
	w[n] = NULL;
	return n;
}

/* Read one line with a deadline (blocking socket, handshake only). */
static int read_line_until(int fd, char *buf, size_t len, size_t *have,
			   time_t deadline, char **line)
{
	for (;;) {
		char *nl = memchr(buf, '\n', *have);
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;
		int left = (int)(deadline - time(NULL));

		if (nl) {
			*nl = 0;
			*line = buf;
			return (int)(nl - buf) + 1;
		}
		if (*have >= len - 1 || left <= 0 || poll(&pfd, 1, left * 1000) <= 0) {
			errno = *have >= len - 1 ? EMSGSIZE : ETIMEDOUT;
			return -1;
		}
		if ((n = read(fd, buf + *have, len - 1 - *have)) <= 0) {
			errno = n == 0 ? ECONNRESET : errno;
			return -1;
		}
		*have += (size_t)n;
	}
}

static int handshake(struct dc_conn *dc, int fd, char *err, size_t errlen)
{
	char buf[8192], hello[64], *line, *w[DOVECOT_MAX_MECHS + 4];
	time_t deadline = time(NULL) + DOVECOT_HANDSHAKE_TIMEOUT;
	size_t have = 0;
	bool version_ok = false;
	int used;

	snprintf(hello, sizeof hello, "VERSION\t1\t1\nCPID\t%ld\n", (long)getpid());
	if (write(fd, hello, strlen(hello)) != (ssize_t)strlen(hello)) {
		snprintf(err, errlen, "cannot write to %s: %s", dc->path, strerror(errno));
		return -1;
	}
	for (;;) {
		if ((used = read_line_until(fd, buf, sizeof buf, &have, deadline,
					    &line)) < 0) {
			snprintf(err, errlen, "no handshake from Dovecot auth socket %s: %s",
				 dc->path, strerror(errno));
			return -1;
		}
		split_tabs(line, w, (int)(sizeof w / sizeof w[0]));
		if (strcmp(w[0], "VERSION") == 0) {
			if (w[1] == NULL || strcmp(w[1], "1") != 0) {
				snprintf(err, errlen, "Dovecot auth socket %s: protocol version %s, not 1",
					 dc->path, w[1] ? w[1] : "?");
				return -1;
			}
			version_ok = true;
		} else if (strcmp(w[0], "MECH") == 0 && w[1]
			   && dc->nmech < DOVECOT_MAX_MECHS) {
			if ((dc->mech[dc->nmech].name = strdup(w[1])) == NULL)
				msg_fatal("out of memory");
			dc->mech[dc->nmech++].flags = mech_flags(w + 2);
		} else if (strcmp(w[0], "DONE") == 0) {
			break;
		}
		memmove(buf, buf + used, have - used);
		have -= used;
	}
	if (!version_ok) {
		snprintf(err, errlen, "Dovecot auth socket %s: no VERSION line", dc->path);
		return -1;
	}
	return 0;
}

static void conn_free(struct dc_conn *dc)
{
	struct dc_conn **pp;

	for (pp = &dc_conns; *pp; pp = &(*pp)->next)
		if (*pp == dc) {
			*pp = dc->next;
			break;
		}
	if (dc->bev)
		bufferevent_free(dc->bev);
	for (int i = 0; i < dc->nmech; i++)
		free(dc->mech[i].name);
	free(dc->path);
	free(dc);
}

static void unlink_pending(struct dc_srv *ds)
{
	struct dc_srv **pp;

	if (!ds->waiting)
		return;
	for (pp = &ds->conn->pending; *pp; pp = &(*pp)->next_pending)
		if (*pp == ds) {
			*pp = ds->next_pending;
			break;
		}
	ds->waiting = false;
}

/* Hand a result to the session waiting for request `ds`. */
static void answer(struct dc_srv *ds, enum sasl_result r, const char *text)
{
	xsasl_server_fn fn = ds->fn;
	void *ctx = ds->ctx;

	unlink_pending(ds);
	fn(ctx, r, text);
}

/* The connection broke: every session forgets it, and every request in
 * flight fails, temporarily (the callbacks run once the connection is
 * gone, so they may free their sessions). */
static void conn_lost(struct dc_conn *dc, const char *why)
{
	struct dc_srv *failed = dc->pending;

	msg_warn("SASL: lost connection to Dovecot auth socket %s: %s", dc->path, why);
	for (struct dc_srv *ds = dc->attached; ds; ds = ds->next_attached)
		ds->conn = NULL;
	dc->pending = dc->attached = NULL;
	conn_free(dc);
	while (failed) {
		struct dc_srv *ds = failed;

		failed = ds->next_pending;
		ds->waiting = false;
		ds->fn(ds->ctx, SASL_R_TEMP, "Connection lost to authentication server");
	}
}

/* Dovecot's escapes: \001 1 -> \001, \001 t -> tab, \001 r, \001 n. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == 1 && s[1]) {
			s++;
			*o++ = *s == 't' ? '\t' : *s == 'r' ? ' ' : *s == 'n' ? ' ' : 1;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

static void handle_reply(struct dc_conn *dc, char *line)
{
	char *w[64];
	struct dc_srv *ds;
	unsigned id;
	const char *reason = NULL, *user = NULL;
	bool temp = false;

	split_tabs(line, w, 64);
	if (w[1] == NULL)
		return;
	id = (unsigned)strtoul(w[1], NULL, 10);
	for (ds = dc->pending; ds && ds->id != id; ds = ds->next_pending)
		;
	if (ds == NULL)
		return;         /* a session that went away */
	for (int i = 2; w[i]; i++) {
		unescape(w[i]);
		if (strncmp(w[i], "reason=", 7) == 0)
			reason = w[i] + 7;
		else if (strncmp(w[i], "user=", 5) == 0)
			user = w[i] + 5;
		else if (strcmp(w[i], "temp") == 0)
			temp = true;
	}
	if (user) {
		free(ds->username);
		ds->username = strdup(user);
	}
	if (strcmp(w[0], "OK") == 0) {
		if (ds->username == NULL) {
			answer(ds, SASL_R_TEMP, "Dovecot sent no user name");
			return;
		}
		answer(ds, SASL_R_DONE, "");
	} else if (strcmp(w[0], "CONT") == 0) {
		answer(ds, SASL_R_MORE, w[2] ? w[2] : "");
	} else if (strcmp(w[0], "FAIL") == 0) {
		answer(ds, temp ? SASL_R_TEMP : SASL_R_FAIL,
		       reason && *reason ? reason : "authentication failure");
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct dc_conn *dc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;

	while ((line = evbuffer_readln(in, NULL, EVBUFFER_EOL_LF)) != NULL) {
		handle_reply(dc, line);
		free(line);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	conn_lost(arg, (what & BEV_EVENT_EOF) ? "connection closed"
		  : strerror(EVUTIL_SOCKET_ERROR()));
}

static int connect_socket(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct timeval tv = { DOVECOT_HANDSHAKE_TIMEOUT, 0 };
	int fd;

	if (strlen(path) >= sizeof sun.sun_path) {
		snprintf(err, errlen, "Dovecot auth socket path too long: %s", path);
		return -1;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		snprintf(err, errlen, "cannot connect to Dovecot auth socket %s: %s",
			 path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static struct dc_conn *conn_get(struct event_base *base, const char *path,
				char *err, size_t errlen)
{
	struct dc_conn *dc;
	int fd;

	for (dc = dc_conns; dc; dc = dc->next)
		if (strcmp(dc->path, path) == 0)
			return dc;
	if ((fd = connect_socket(path, err, errlen)) < 0)
		return NULL;
	if ((dc = calloc(1, sizeof *dc)) == NULL || (dc->path = strdup(path)) == NULL)
		msg_fatal("out of memory");
	if (handshake(dc, fd, err, errlen) < 0) {
		close(fd);
		conn_free(dc);
		return NULL;
	}
	evutil_make_socket_nonblocking(fd);
	if ((dc->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		msg_fatal("out of memory");
	bufferevent_setcb(dc->bev, on_read, NULL, on_event, dc);
	bufferevent_enable(dc->bev, EV_READ | EV_WRITE);
	dc->next = dc_conns;
	dc_conns = dc;
	return dc;
}

/* ---- the backend ------------------------------------------------------------ */

static bool mech_ok(const struct dc_mech *m, int secflags)
{
	if ((m->flags & 0x0f) & secflags)
		return false;
	if ((secflags & SASL_OPT_MUTUAL_AUTH) && !(m->flags & 0x100))
		return false;
	if ((secflags & SASL_OPT_FORWARD_SECRECY) && !(m->flags & 0x200))
		return false;
	return true;
}

static void dc_free(void *impl)
{
	struct dc_srv *ds = impl;
	struct dc_srv **pp;

	if (ds->conn) {
		unlink_pending(ds);
		for (pp = &ds->conn->attached; *pp; pp = &(*pp)->next_attached)
			if (*pp == ds) {
				*pp = ds->next_attached;
				break;
			}
	}
	free(ds->service);
	free(ds->lip);
	free(ds->rip);
	free(ds->username);
	free(ds);
}

static void *dc_create(const struct xsasl_server_params *p, int secflags,
		       char *err, size_t errlen)
{
	struct dc_conn *dc = conn_get(p->base, cfg_str(p->cfg, "smtpd_sasl_path"),
				      err, errlen);
	struct dc_srv *ds;
	size_t n = 0;

	if (dc == NULL)
		return NULL;
	if ((ds = calloc(1, sizeof *ds)) == NULL)
		msg_fatal("out of memory");
	ds->conn = dc;
	ds->next_attached = dc->attached;
	dc->attached = ds;
	for (int i = 0; i < dc->nmech; i++) {
		if (!mech_ok(&dc->mech[i], secflags)
		    || n + strlen(dc->mech[i].name) + 2 > sizeof ds->mechs)
			continue;
		n += (size_t)snprintf(ds->mechs + n, sizeof ds->mechs - n, "%s%s",
				      n ? " " : "", dc->mech[i].name);
	}
	if (n == 0) {
		snprintf(err, errlen, "no SASL authentication mechanisms left "
			 "from Dovecot auth socket %s", dc->path);
		dc_free(ds);
		return NULL;
	}
	ds->service = strdup(cfg_str(p->cfg, "smtpd_sasl_service"));
	ds->lip = strdup(p->server_addr);
	ds->rip = strdup(p->client_addr);
	ds->lport = p->server_port;
	ds->rport = p->client_port;
	ds->tls = p->tls;
	return ds;
}

static const char *dc_mechs(void *impl)
{
	return ((struct dc_srv *)impl)->mechs;
}

static bool dc_mech_allowed(void *impl, const char *mech, int secflags)
{
	struct dc_srv *ds = impl;

	if (ds->conn == NULL)
		return false;
	for (int i = 0; i < ds->conn->nmech; i++)
		if (strcasecmp(ds->conn->mech[i].name, mech) == 0)
			return mech_ok(&ds->conn->mech[i], secflags);
	return false;
}

/* Send "VERB<tab>id<tab>rest" and wait for its answer. */
static void send_request(struct dc_srv *ds, const char *verb,
			 const char *rest, xsasl_server_fn fn, void *ctx)
{
	if (ds->conn == NULL) {
		fn(ctx, SASL_R_TEMP, "Connection lost to authentication server");
		return;
	}
	ds->fn = fn;
	ds->ctx = ctx;
	evbuffer_add_printf(bufferevent_get_output(ds->conn->bev), "%s\t%u\t%s\n",
			    verb, ds->id, rest);
	ds->waiting = true;
	ds->next_pending = ds->conn->pending;
	ds->conn->pending = ds;
}

static void dc_start(void *impl, const char *mech, const char *init_b64,
		     xsasl_server_fn fn, void *ctx)
{
	struct dc_srv *ds = impl;
	char *rest;

	if (ds->conn == NULL) {
		fn(ctx, SASL_R_TEMP, "Connection lost to authentication server");
		return;
	}
	ds->id = ++ds->conn->next_id;
	free(ds->username);
	ds->username = NULL;
	/* an empty initial response ("=") is "resp=" */
	if (asprintf(&rest, "%s\tservice=%s\tnologin\tlip=%s\trip=%s\tlport=%d"
		     "\trport=%d%s%s%s", mech, ds->service, ds->lip, ds->rip,
		     ds->lport, ds->rport, ds->tls ? "\tsecured" : "",
		     init_b64 ? "\tresp=" : "",
		     init_b64 && strcmp(init_b64, "=") ? init_b64 : "") < 0)
		msg_fatal("out of memory");
	send_request(ds, "AUTH", rest, fn, ctx);
	free(rest);
}

static void dc_next(void *impl, const char *resp_b64, xsasl_server_fn fn,
		    void *ctx)
{
	struct dc_srv *ds = impl;

	send_request(ds, "CONT", strcmp(resp_b64, "=") ? resp_b64 : "", fn, ctx);
}

static const char *dc_username(void *impl)
{
	return ((struct dc_srv *)impl)->username;
}

static int dc_user_exists(void *impl, const char *user)
{
	return -1;      /* the client socket does not say */
}

static int dc_check(const struct config *c, const char **param,
		    char *err, size_t errlen)
{
	const char *path = cfg_str(c, "smtpd_sasl_path");
	char full[1200];
	int fd;

	if (*path == '/')
		snprintf(full, sizeof full, "%s", path);
	else
		snprintf(full, sizeof full, "%s/%s", cfg_str(c, "queue_directory"), path);
	if ((fd = connect_socket(full, err, errlen)) < 0) {
		size_t n = strlen(err);

		snprintf(err + n, errlen - n, "; start Dovecot with a unix_listener "
			 "for it in service auth, or fix smtpd_sasl_path");
		return -1;
	}
	close(fd);
	return 0;
}

const struct sasl_backend sasl_backend_dovecot = {
	"dovecot", dc_create, dc_mechs, dc_mech_allowed, dc_start, dc_next,
	dc_username, dc_user_exists, dc_free, dc_check,
};
