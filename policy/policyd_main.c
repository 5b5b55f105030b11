/*
 * policyd_main.c - sluice-policyd: a Postfix policy delegation server
 * (SMTPD_POLICY_README) that answers with sluice's restriction engine,
 * so a Postfix that stays can use sluice's restrictions and the bundled
 * plugins' ones (check_*_access, reject_rbl_client, check_greylist, ...).
 *
 *   sluice-policyd [-c CONFIG_DIR] [-l inet:HOST:PORT | -l unix:/path]
 *
 * Postfix's smtpd connects (check_policy_service inet:127.0.0.1:10040)
 * and sends requests of name=value lines ended by an empty line; each is
 * answered with one "action=..." line and an empty line, on the same
 * connection (persistent connections, any number of requests).  One
 * event loop (libevent) serves every client; a request whose restriction
 * waits (DNS, the greylist store) suspends only that connection.
 *
 * What a request does: its facts (client_address, client_name,
 * reverse_client_name, helo_name, sender, recipient, sasl_username,
 * sasl_method, server_address, server_port) fill a session without a
 * socket, as `sluice explain` builds one, and the list in
 * policyd_restrictions is evaluated as the list of the request's
 * protocol_state (CONNECT: client, EHLO/HELO: helo, MAIL: sender,
 * RCPT/VRFY: recipient, DATA, END-OF-MESSAGE, ETRN), so reply texts say
 * "Client host", "Sender address", "Recipient address" as smtpd's do.
 * The verdict becomes the action:
 *   - a DEFER_IF_PERMIT or DEFER_IF_REJECT the list left open: passed
 *     on as that action, so the client's own list decides (a
 *     DEFER_IF_PERMIT followed by a permit defers at once, as smtpd's
 *     stage check does);
 *   - reject or defer: "action=CODE D.D.D text" (the restriction's code
 *     and text, soft_bounce and the enhanced code as the engine settles
 *     them).  The text
 *     goes without the "<name>: Class rejected: " smtpd puts before it:
 *     the client's smtpd adds its own, for its own stage, to any policy
 *     server's text ("<b@example.net>: Recipient address rejected:
 *     client blocked");
 *   - a list that decided something for the message: DISCARD, HOLD,
 *     REDIRECT, FILTER, PREPEND or BCC with its argument (one action per
 *     reply, the protocol's limit: the first of these, in that order);
 *   - anything else, a permit included: "action=DUNNO", so Postfix goes
 *     on with its own list (a policy server's OK would end that list with
 *     a permit, and could open a relay if it stands before
 *     reject_unauth_destination).
 * An empty policyd_restrictions answers DUNNO to everything.
 *
 * Malformed input, as Postfix's own policy servers take it: a line
 * without "=" is logged ("ignoring garbage") and skipped; a request
 * whose request= is not smtpd_access_policy, and a request longer than
 * policyd_request_size_limit, are logged and the connection is closed
 * (the client then answers 451 4.3.5, its server-failure reply).
 *
 * Plugins: the plugins of sluice_plugins are loaded as a worker loads
 * them and their restrictions are available; their connect .. rcpt hooks
 * do not run (a policy request is not an SMTP session).  Each request's
 * session ends as an smtpd session does (filter_close: the close hooks,
 * then the engine's state), from the event loop, after the answer.
 *
 * The configuration is main.cf of CONFIG_DIR, read as sluice reads it
 * (errors refuse to start); master.cf is not used and its warnings are
 * not shown.  Logs go to stderr in Postfix's shape ("policyd[pid]: ...").
 * docs/policyd.md is the user's page.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "diag.h"
#include "dns.h"
#include "filter_chain.h"
#include "jobpool.h"
#include "log.h"
#include "mymalloc.h"
#include "plugin_loader.h"
#include "plugin_names.h"
#include "restriction.h"
#include "restriction_int.h"
#include "smtp_session.h"

#define PD_ATTR_MAX 64          /* attributes kept from one request */

/* The server: one per process. */
struct policyd {
	struct event_base *base;
	struct sluice_config *sc;
	struct listener listener;           /* what sessions point at */
	struct restriction_list *list;      /* policyd_restrictions */
	long long size_limit, idle_timeout;
	int client_limit, nclients;
};

struct pd_conn;

/* One request being evaluated: the session comes first, so the engine's
 * completion (which gets the session) finds the request. */
struct pd_req {
	struct smtp_session s;
	struct pd_conn *conn;
};

struct pd_conn {
	struct policyd *pd;
	struct bufferevent *bev;
	char peer[80];
	char *name[PD_ATTR_MAX], *value[PD_ATTR_MAX];
	int nattr;
	size_t size;                        /* bytes of the request so far */
	struct pd_req *req;                 /* being evaluated, or NULL */
};

static void conn_read(struct bufferevent *bev, void *arg);

/* ---- requests --------------------------------------------------------------- */

static const char *attr(const struct pd_conn *pc, const char *name)
{
	for (int i = 0; i < pc->nattr; i++)
		if (strcmp(pc->name[i], name) == 0)
			return pc->value[i];
	return NULL;
}

static const char *attr_or(const struct pd_conn *pc, const char *name,
			   const char *dflt)
{
	const char *v = attr(pc, name);

	return v && *v ? v : dflt;
}

static void attrs_clear(struct pd_conn *pc)
{
	for (int i = 0; i < pc->nattr; i++) {
		free(pc->name[i]);
		free(pc->value[i]);
	}
	pc->nattr = 0;
	pc->size = 0;
}

/* protocol_state -> the list whose reply names the verdict carries, and
 * the state's name as the engine's log lines say it (NULL: unknown). */
static const char *state_stage(const char *state, enum rstage *st)
{
	static const struct { const char *name; enum rstage st; } map[] = {
		{ "CONNECT", RS_CLIENT }, { "EHLO", RS_HELO }, { "HELO", RS_HELO },
		{ "MAIL", RS_SENDER }, { "RCPT", RS_RECIPIENT },
		{ "VRFY", RS_RECIPIENT }, { "DATA", RS_DATA }, { "BDAT", RS_DATA },
		{ "END-OF-MESSAGE", RS_END_OF_DATA }, { "ETRN", RS_ETRN },
	};

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strcasecmp(state, map[i].name) == 0) {
			*st = map[i].st;
			return map[i].name;
		}
	return NULL;
}

/* A session without a socket holding the request's facts. */
static struct pd_req *req_new(struct pd_conn *pc, const char *state)
{
	struct policyd *pd = pc->pd;
	struct pd_req *r = calloc(1, sizeof *r);
	struct smtp_session *s;
	const char *name, *v;

	if (r == NULL || (r->s.out = evbuffer_new()) == NULL)
		msg_fatal("policyd: out of memory");
	r->conn = pc;
	s = &r->s;
	s->base = pd->base;
	s->listener = &pd->listener;
	s->cfg = pd->sc->main;
	s->state = SS_COMMAND;
	s->last_cmd = state;
	name = attr_or(pc, "client_name", "unknown");
	snprintf(s->client_addr, sizeof s->client_addr, "%s",
		 attr_or(pc, "client_address", "unknown"));
	snprintf(s->client_name, sizeof s->client_name, "%s", name);
	snprintf(s->reverse_name, sizeof s->reverse_name, "%s",
		 attr_or(pc, "reverse_client_name", name));
	snprintf(s->client_id, sizeof s->client_id, "%s[%s]", s->client_name,
		 s->client_addr);
	snprintf(s->server_addr, sizeof s->server_addr, "%s",
		 attr_or(pc, "server_address", "127.0.0.1"));
	s->server_port = atoi(attr_or(pc, "server_port", "25"));
	s->client_port = atoi(attr_or(pc, "client_port", "0"));
	s->lim.recipient_limit = cfg_int(s->cfg, "smtpd_recipient_limit");
	if ((v = attr(pc, "helo_name")) != NULL && *v)
		s->helo_name = mystrdup(v);
	s->esmtp = strcasecmp(attr_or(pc, "protocol_name", "ESMTP"), "SMTP") != 0;
	if ((v = attr(pc, "sasl_username")) != NULL && *v) {
		s->sasl_username = mystrdup(v);
		s->sasl_method = mystrdup(attr_or(pc, "sasl_method", "PLAIN"));
	}
	if ((v = attr(pc, "sender")) != NULL) {
		s->txn.env.sender = mystrdup(v);
		s->txn.active = true;
	}
	if ((v = attr(pc, "recipient")) != NULL && *v)
		s->txn.cur_rcpt = mystrdup(v);
	if (plugin_count() > 0 && (s->plugin_data =
	    calloc((size_t)plugin_count(), sizeof *s->plugin_data)) == NULL)
		msg_fatal("policyd: out of memory");
	return r;
}

static void free_strings(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void req_free(struct pd_req *r)
{
	struct smtp_session *s = &r->s;

	/* as a session ends: the plugins' close hooks cancel their work
	 * (a greylist job in flight), then the engine's state goes; a late
	 * callback finds the session closed instead of freed memory */
	filter_close(s);
	evbuffer_free(s->out);
	free(s->helo_name);
	free(s->sasl_username);
	free(s->sasl_method);
	free(s->txn.env.sender);
	free(s->txn.env.filter);
	free((char *)s->txn.cur_rcpt);
	free(s->txn.hold_reason);
	free(s->txn.redirect);
	free_strings(s->txn.prepend, s->txn.nprepend);
	free_strings(s->txn.bcc, s->txn.nbcc);
	free(r);
}

static const struct timeval no_delay = { 0, 0 };

static void req_free_later(evutil_socket_t fd, short what, void *arg)
{
	req_free(arg);
}

/* The action a permitting (or DUNNO) list leaves for the message. */
static void message_action(const struct smtp_session *s, char *buf, size_t len)
{
	const struct smtp_txn *t = &s->txn;

	if (t->discard)
		snprintf(buf, len, "DISCARD");
	else if (t->hold)
		snprintf(buf, len, "HOLD%s%s", t->hold_reason ? " " : "",
			 t->hold_reason ? t->hold_reason : "");
	else if (t->redirect)
		snprintf(buf, len, "REDIRECT %s", t->redirect);
	else if (t->env.filter)
		snprintf(buf, len, "FILTER %s", t->env.filter);
	else if (t->nprepend > 0)
		snprintf(buf, len, "PREPEND %s", t->prepend[0]);
	else if (t->nbcc > 0)
		snprintf(buf, len, "BCC %s", t->bcc[0]);
	else
		snprintf(buf, len, "DUNNO");
}

/* The restriction's own text: without the "<name>: Class rejected: "
 * the engine puts before it, which the client's smtpd adds again for
 * its own stage (as it does for any policy server's "action=CODE text"). */
static const char *own_text(const char *text)
{
	static const char *const classes[] = {
		"Client host", "Helo command", "Sender address",
		"Recipient address", "Data command", "End-of-data",
		"Etrn command", NULL
	};
	const char *p;

	if (text == NULL)
		return "";
	if (*text != '<' || (p = strstr(text, ">: ")) == NULL)
		return text;
	p += 3;
	for (int i = 0; classes[i]; i++) {
		size_t n = strlen(classes[i]);

		if (strncmp(p, classes[i], n) == 0 &&
		    strncmp(p + n, " rejected: ", 11) == 0)
			return p + n + 11;
	}
	return text;
}

/* The policy action for the engine's verdict. */
static void verdict_action(struct smtp_session *s, int verdict, char *buf,
			   size_t len)
{
	int code;
	const char *dsn, *text;

	if (verdict == RV_REJECT || verdict == RV_DEFER) {
		snprintf(buf, len, "%d %s %s", s->reply_code, s->reply_dsn,
			 own_text(s->reply_text));
	} else if (rcheck_open_defer(s, true, &code, &dsn, &text)) {
		/* a permit after DEFER_IF_PERMIT defers, as a stage's check
		 * does; without one the client's own list decides */
		if (verdict == RV_OK)
			snprintf(buf, len, "%d %s %s", code, dsn, own_text(text));
		else
			snprintf(buf, len, "DEFER_IF_PERMIT %s %s", dsn,
				 own_text(text));
	} else if (rcheck_open_defer(s, false, &code, &dsn, &text)) {
		snprintf(buf, len, "DEFER_IF_REJECT %s %s", dsn, own_text(text));
	} else {
		message_action(s, buf, len);
	}
}

static void req_done(struct smtp_session *s, int verdict)
{
	struct pd_req *r = (struct pd_req *)s;
	struct pd_conn *pc = r->conn;
	char action[1024];

	verdict_action(s, verdict, action, sizeof action);
	for (char *p = action; *p; p++)     /* one line, whatever a text held */
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	msg_info("%s: %s from %s: action=%s; from=<%s> to=<%s>",
		 pc->peer, s->last_cmd, s->client_id, action,
		 s->txn.env.sender ? s->txn.env.sender : "",
		 s->txn.cur_rcpt ? s->txn.cur_rcpt : "");
	evbuffer_add_printf(bufferevent_get_output(pc->bev), "action=%s\n\n",
			    action);
	pc->req = NULL;
	/* done may run deep in a plugin's resume, which may still touch
	 * the session as it unwinds: free it from the loop, not here */
	if (event_base_once(pc->pd->base, -1, EV_TIMEOUT, req_free_later, r,
			    &no_delay) < 0)
		msg_fatal("policyd: cannot schedule an event");
	r->conn = NULL;
	bufferevent_enable(pc->bev, EV_READ);
	conn_read(pc->bev, pc);             /* requests already buffered */
}

/* ---- connections ------------------------------------------------------------ */

static void conn_close(struct pd_conn *pc)
{
	if (pc->req) {
		req_free(pc->req);      /* cancels what it waits for */
		pc->req = NULL;
	}
	attrs_clear(pc);
	bufferevent_free(pc->bev);
	pc->pd->nclients--;
	free(pc);
}

static void dispatch(struct pd_conn *pc)
{
	struct policyd *pd = pc->pd;
	const char *req = attr(pc, "request");
	const char *given = attr_or(pc, "protocol_state", "RCPT"), *state;
	enum rstage st;

	if (req == NULL || strcmp(req, "smtpd_access_policy") != 0) {
		msg_warn("%s: unrecognized request type: \"%s\"; closing the "
			 "connection", pc->peer, req ? req : "(none)");
		conn_close(pc);
		return;
	}
	if ((state = state_stage(given, &st)) == NULL) {
		msg_warn("%s: unknown protocol_state \"%.100s\"; answering as "
			 "RCPT", pc->peer, given);
		st = RS_RECIPIENT;
		state = "RCPT";
	}
	pc->req = req_new(pc, state);
	attrs_clear(pc);
	bufferevent_disable(pc->bev, EV_READ);  /* one request at a time */
	rcheck_list(&pc->req->s, st, pd->list, req_done);
}

/* One request line; false when the connection was closed. */
static bool request_line(struct pd_conn *pc, char *line, size_t n)
{
	char *eq;

	if (n > 0 && line[n - 1] == '\r')
		line[--n] = 0;
	if (n == 0) {
		dispatch(pc);
		return false;
	}
	if ((eq = strchr(line, '=')) == NULL || eq == line) {
		msg_warn("%s: ignoring garbage: %.100s", pc->peer, line);
		return true;
	}
	*eq = 0;
	if (pc->nattr >= PD_ATTR_MAX) {
		msg_warn("%s: more than %d attributes; ignoring %.100s",
			 pc->peer, PD_ATTR_MAX, line);
		return true;
	}
	pc->name[pc->nattr] = mystrdup(line);
	pc->value[pc->nattr++] = mystrdup(eq + 1);
	return true;
}

static void conn_read(struct bufferevent *bev, void *arg)
{
	struct pd_conn *pc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line;

	while (pc->req == NULL) {
		if ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) == NULL) {
			if ((long long)(pc->size + evbuffer_get_length(in)) > pc->pd->size_limit)
				goto too_long;
			return;
		}
		pc->size += n + 1;
		if ((long long)pc->size > pc->pd->size_limit) {
			free(line);
			goto too_long;
		}
		if (!request_line(pc, line, n)) {
			free(line);
			/* dispatched: the connection may be gone already */
			return;
		}
		free(line);
	}
	return;
too_long:
	msg_warn("%s: request longer than policyd_request_size_limit (%lld "
		 "bytes); closing the connection", pc->peer, pc->pd->size_limit);
	conn_close(pc);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct pd_conn *pc = arg;

	if (what & BEV_EVENT_TIMEOUT)
		msg_info("%s: idle for policyd_idle_timeout; closing", pc->peer);
	conn_close(pc);
}

static void peer_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char addr[64];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
		snprintf(buf, len, "%s:%d", addr, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
		snprintf(buf, len, "[%s]:%d", addr, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, len, "local");
	}
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct policyd *pd = arg;
	struct pd_conn *pc;
	struct timeval tv = { pd->idle_timeout, 0 };

	if (pd->nclients >= pd->client_limit) {
		msg_warn("too many policy clients (policyd_client_limit = %d); "
			 "refusing one", pd->client_limit);
		close(fd);
		return;
	}
	if ((pc = calloc(1, sizeof *pc)) == NULL ||
	    (pc->bev = bufferevent_socket_new(pd->base, fd,
					      BEV_OPT_CLOSE_ON_FREE)) == NULL)
		msg_fatal("policyd: out of memory");
	pc->pd = pd;
	peer_text(sa, pc->peer, sizeof pc->peer);
	pd->nclients++;
	bufferevent_setcb(pc->bev, conn_read, NULL, conn_event, pc);
	bufferevent_set_timeouts(pc->bev, &tv, &tv);
	bufferevent_enable(pc->bev, EV_READ | EV_WRITE);
}

/* ---- start-up ----------------------------------------------------------------- */

/* "inet:HOST:PORT" (HOST may be [v6]) or "unix:/path". */
static struct evconnlistener *listen_on(struct policyd *pd, const char *where)
{
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE;
	struct sockaddr_storage ss;
	int len = sizeof ss;

	memset(&ss, 0, sizeof ss);
	if (strncmp(where, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;

		if (strlen(where + 5) >= sizeof un->sun_path)
			msg_fatal("-l %s: the path is too long", where);
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, where + 5);
		unlink(un->sun_path);
		len = sizeof *un;
	} else {
		const char *hp = strncmp(where, "inet:", 5) == 0 ? where + 5 : where;

		if (evutil_parse_sockaddr_port(hp, (struct sockaddr *)&ss, &len) < 0)
			msg_fatal("-l %s: expected inet:HOST:PORT or unix:/path", where);
	}
	return evconnlistener_new_bind(pd->base, accept_cb, pd, flags, -1,
				       (struct sockaddr *)&ss, len);
}

static struct restriction_list *compile_list(const struct config *cfg)
{
	struct diag d;
	struct restriction_list *l;

	diag_init(&d);
	l = restriction_list_compile(cfg, "policyd_restrictions", &d);
	for (int i = 0; i < d.n; i++)
		fprintf(stderr, "sluice-policyd: %s\n", d.v[i].text);
	diag_free(&d);
	return l;
}

/* main.cf as sluice reads it; master.cf's warnings (no smtpd listener,
 * ignored columns) say nothing about a policy server: left out. */
static struct sluice_config *load_config(const char *config_dir)
{
	struct sluice_config *sc;
	struct diag d;

	diag_init(&d);
	sc = config_load(config_dir, &d);
	for (int i = 0; i < d.n; i++)
		if (d.v[i].level == DIAG_ERROR || strstr(d.v[i].text, "master.cf") == NULL)
			fprintf(stderr, "sluice-policyd: %s%s\n",
				d.v[i].level == DIAG_WARNING ? "warning: " : "",
				d.v[i].text);
	diag_free(&d);
	return sc;
}

static void usage(void)
{
	fprintf(stderr, "usage: sluice-policyd [-c CONFIG_DIR] "
		"[-l inet:HOST:PORT | -l unix:/path]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *config_dir = SLUICE_CONFIG_DIR, *where = NULL;
	struct policyd pd;
	struct evconnlistener *lst;
	char **names;
	int ch;

	while ((ch = getopt(argc, argv, "c:l:")) != -1) {
		switch (ch) {
		case 'c': config_dir = optarg; break;
		case 'l': where = optarg; break;
		default: usage();
		}
	}
	if (optind < argc)
		usage();
	signal(SIGPIPE, SIG_IGN);
	log_open("policyd", LOG_DEST_STDERR, NULL);
	memset(&pd, 0, sizeof pd);
	if ((pd.sc = load_config(config_dir)) == NULL) {
		fprintf(stderr, "sluice-policyd: the configuration has errors; "
			"\"sluice -c %s check\" lists them\n", config_dir);
		return 1;
	}
	sluice_conf = pd.sc;
	pd.listener.service = "policyd";
	pd.listener.command = "policyd";
	pd.listener.cfg = pd.sc->main;
	pd.listener.fd = -1;
	pd.size_limit = cfg_size(pd.sc->main, "policyd_request_size_limit");
	pd.idle_timeout = cfg_time(pd.sc->main, "policyd_idle_timeout");
	pd.client_limit = (int)cfg_int(pd.sc->main, "policyd_client_limit");
	if ((pd.base = event_base_new()) == NULL)
		msg_fatal("cannot create the event loop");
	filter_set_event_base(pd.base);
	if (jobpool_start(pd.base, (int)cfg_int(pd.sc->main,
						"policyd_job_threads")) < 0)
		msg_fatal("cannot start the job threads");
	names = plugin_names(pd.sc->main);
	if (dns_start_config(pd.base, pd.sc->main) < 0 ||
	    plugins_load(cfg_str(pd.sc->main, "plugin_directory"), names) < 0)
		msg_fatal("cannot start the resolver or the plugins of sluice_plugins");
	cfg_list_free(names);
	if ((pd.list = compile_list(pd.sc->main)) == NULL)
		return 1;
	if (where == NULL)
		where = cfg_str(pd.sc->main, "policyd_listen");
	if ((lst = listen_on(&pd, where)) == NULL)
		msg_fatal("cannot listen on %s: %s", where, strerror(errno));
	msg_info("daemon started -- listening on %s, %d restriction%s",
		 where, pd.list->n, pd.list->n == 1 ? "" : "s");
	event_base_dispatch(pd.base);
	evconnlistener_free(lst);
	return 0;
}
