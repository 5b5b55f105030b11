/*
 * smtp_session.c - life cycle, input and replies of an SMTP server session.
 *
 * A session is created for an accepted connection, greets (after the
 * connect filters agree), then loops: take a complete command line from
 * the input buffer and hand it to smtp_command(), or feed DATA/BDAT bytes
 * to smtp_data.c.  Replies are collected in s->out and handed to the
 * socket in one write when the input processing stops, so the replies to
 * a pipelined group of commands leave together (RFC 2920).
 *
 * Whenever the session must wait - a filter verdict, the queue commit,
 * the error tarpit - input processing pauses; what the client sent stays
 * in the bufferevent's input buffer, and smtp_resume_input() picks it up.
 *
 * Defensive limits: command lines longer than line_length_limit are
 * refused, smtpd_timeout bounds every read, smtpd_hard_error_limit and
 * smtpd_junk_command_limit end abusive sessions,
 * smtpd_client_connection_count_limit is counted across workers (anvil),
 * and with smtpd_forbid_unauth_pipelining a client that sends ahead where
 * RFC 2920 forbids it is disconnected.
 *
 * The session is freed only when nothing refers to it any more: a queue
 * commit in flight keeps it alive (the message is still committed, as a
 * 250 may already be owed), a pending filter is cancelled by its close
 * hook first.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "anvil.h"
#include "smtp_anvil.h"
#include "config.h"
#include "filter_chain.h"
#include "inet_addr.h"
#include "log.h"
#include "peer_name.h"
#include "smtp_auth.h"
#include "smtp_proto.h"
#include "tls_server.h"

static int session_count;
static const char *queue_dir_here;      /* set once by the worker */

void smtp_set_queue_dir(const char *dir)
{
	queue_dir_here = dir;
}

const char *smtp_queue_dir(const struct smtp_session *s)
{
	return queue_dir_here ? queue_dir_here : cfg_str(s->cfg, "queue_directory");
}

int smtp_session_count(void)
{
	return session_count;
}

const char *smtp_hostname(const struct smtp_session *s)
{
	return cfg_str(s->cfg, "myhostname");
}

/* ---- replies ------------------------------------------------------- */

static void flush_replies(struct smtp_session *s)
{
	if (s->tarpitting || s->dead)
		return;
	if (s->closing)
		bufferevent_disable(s->bev, EV_READ);
	if (evbuffer_get_length(s->out) > 0)
		bufferevent_write_buffer(s->bev, s->out);
}

static void tarpit_done(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	s->tarpitting = false;
	flush_replies(s);
	smtp_resume_input(s);
}

/* After a reply: count it when it is an error, enforce the hard limit
 * (errors also come from junk commands, smtp_commands.c), and once the
 * client had made smtpd_soft_error_limit errors before this reply, hold
 * the replies for smtpd_error_sleep_time - every reply, as Postfix does,
 * not only the error ones. */
static void error_limits(struct smtp_session *s, bool error)
{
	int before = s->errors;

	if (error)
		s->errors++;
	if (s->closing)
		return;
	if (s->errors >= s->lim.hard_error_limit) {
		msg_info("too many errors after %s from %s", s->last_cmd,
			 smtp_client_id(s));
		evbuffer_add_printf(s->out, "421 4.7.0 %s Error: too many errors\r\n",
				    smtp_hostname(s));
		s->closing = true;
		return;
	}
	if (before >= s->lim.soft_error_limit && s->lim.error_sleep_time > 0
	    && !s->tarpitting) {
		struct timeval tv = { s->lim.error_sleep_time, 0 };

		s->tarpitting = true;
		smtp_pause_input(s);
		evtimer_add(s->tarpit, &tv);
	}
}

/* Length of "NNN X.Y.Z " at the start of a reply (code and enhanced
 * code), or of "NNN " without an enhanced code. */
static size_t reply_prefix_len(const char *line)
{
	size_t n = 4;

	if (line[n] >= '2' && line[n] <= '5' && line[n + 1] == '.')
		n += strcspn(line + n, " ") + 1;
	return n;
}

/* Queue a reply line; a 4xx/5xx one gets smtpd_reject_footer as Postfix
 * does: as a last line with the same codes, or, when the footer starts
 * with "\c", at the end of the same line. */
static void add_reply_line(struct smtp_session *s, char *line, size_t n)
{
	const char *footer = (line[0] == '4' || line[0] == '5')
		? cfg_str(s->cfg, "smtpd_reject_footer") : "";
	size_t plen;

	if (*footer == 0 || n < 4 || line[3] != ' ') {
		evbuffer_add(s->out, line, n);
		evbuffer_add(s->out, "\r\n", 2);
		return;
	}
	if (strncmp(footer, "\\c", 2) == 0) {
		evbuffer_add_printf(s->out, "%.*s%s\r\n", (int)n, line, footer + 2);
		return;
	}
	plen = reply_prefix_len(line);
	line[3] = '-';
	evbuffer_add(s->out, line, n);
	line[3] = ' ';
	evbuffer_add_printf(s->out, "\r\n%.*s%s\r\n", (int)plen, line, footer);
}

/* A multi-line reply text (a milter's SMFIR_REPLYCODE, "550 5.7.1 a\r\n
 * 550 5.7.1 b"): every line but the last says "550-". */
static void mark_continuations(char *line)
{
	char *eol;

	while ((eol = strstr(line, "\r\n")) != NULL) {
		if (eol - line >= 4 && line[3] == ' ')
			line[3] = '-';
		line = eol + 2;
	}
}

static void vreply(struct smtp_session *s, bool account, const char *fmt,
		   va_list ap)
{
	char line[2048];
	int n = vsnprintf(line, sizeof line, fmt, ap);
	bool error;

	if (n < 0)
		return;
	error = account && (line[0] == '4' || line[0] == '5');
	if ((size_t)n >= sizeof line)
		n = sizeof line - 1;
	/* soft_bounce: every 5xx reply goes out as 4xx (Postfix's safety
	 * net covers syntax errors too), its enhanced code with it */
	if (line[0] == '5' && n >= 4 && s->cfg && cfg_bool(s->cfg, "soft_bounce")) {
		line[0] = '4';
		if (n > 5 && line[4] == '5' && line[5] == '.')
			line[4] = '4';
	}
	mark_continuations(line);
	add_reply_line(s, line, n);
	if (error && s->cur_cmd < CMD__COUNT)   /* CMD__COUNT: not a command */
		s->cmd_bad[s->cur_cmd]++;
	error_limits(s, error);
}

void smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply(s, true, fmt, ap);
	va_end(ap);
}

void smtp_reply_raw(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply(s, false, fmt, ap);
	va_end(ap);
}

void smtp_reply_close(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply(s, false, fmt, ap);
	va_end(ap);
	s->closing = true;
}

void smtp_set_last_command(struct smtp_session *s, const char *name)
{
	s->last_cmd = name;
}

/* ---- freeing --------------------------------------------------------- */

static void session_free(struct smtp_session *s)
{
	peer_name_cancel(s->peer_lookup);
	filter_close(s);
	smtp_txn_reset(s, false);
	smtp_auth_free(s);
	if (s->anvil_counted)
		anvil_disconnect(s->client_addr);
	smtp_log_disconnect(s);
	if (s->bev)
		bufferevent_free(s->bev);
	tls_server_session_free(s);
	event_free(s->tarpit);
	event_free(s->resume_ev);
	evbuffer_free(s->out);
	free(s->helo_name);
	free(s->reject_all_reply);
	free(s->hold_all_reason);
	free(s->reply_text);
	free(s->plugin_data);
	free(s->content.hline);
	free(s->content.message_id);
	free(s->received_for);
	free(s);
	session_count--;
}

/* The connection is gone (or must go now).  A commit in flight keeps the
 * session until its completion; otherwise free it. */
static void session_drop(struct smtp_session *s)
{
	s->dead = true;
	if (s->bev) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	if (s->state == SS_COMMIT)
		return;             /* smtp_data.c frees it via smtp_session_gone() */
	session_free(s);
}

/* Called by smtp_data.c when a commit completes for a dead session. */
void smtp_session_gone(struct smtp_session *s)
{
	session_free(s);
}

/* ---- input ------------------------------------------------------------- */

void smtp_pause_input(struct smtp_session *s)
{
	s->paused = true;
	if (s->bev)
		bufferevent_disable(s->bev, EV_READ);
}

void smtp_resume_input(struct smtp_session *s)
{
	flush_replies(s);
	if (s->dead || s->closing || s->tarpitting)
		return;
	s->paused = false;
	bufferevent_enable(s->bev, EV_READ);
	/* Buffered input is processed from the loop, not from this stack. */
	event_active(s->resume_ev, EV_READ, 0);
}

/* RFC 2920 and Postfix's smtpd_forbid_unauth_pipelining: after a command
 * that must end a pipeline group, or from a client that was not offered
 * PIPELINING, nothing may follow in the same send. */
static bool pipelining_violation(struct smtp_session *s, const char *line)
{
	static const char *const last_in_group[] = {
		"EHLO", "HELO", "DATA", "VRFY", "EXPN", "NOOP", "QUIT", "ETRN",
		"STARTTLS", "AUTH", NULL
	};
	struct evbuffer *in = bufferevent_get_input(s->bev);
	bool must_be_last = !s->pipelining_offered;

	if (evbuffer_get_length(in) == 0)
		return false;
	/* A BDAT chunk follows its command by definition: only input beyond
	 * the chunk is sent ahead. */
	if (strncasecmp(line, "BDAT ", 5) == 0) {
		long long chunk = strtoll(line + 5, NULL, 10);

		if (chunk >= 0 && (long long)evbuffer_get_length(in) <= chunk)
			return false;
	}
	for (int i = 0; !must_be_last && last_in_group[i]; i++) {
		size_t n = strlen(last_in_group[i]);

		if (strncasecmp(line, last_in_group[i], n) == 0
		    && (line[n] == 0 || line[n] == ' '))
			must_be_last = true;
	}
	return must_be_last && strncasecmp(line, "QUIT", 4) != 0;
}

static void reject_pipelining(struct smtp_session *s, const char *line)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	char peek[101], verb[11];
	size_t n = evbuffer_copyout(in, peek, sizeof peek - 1);
	size_t vlen = strcspn(line, " ");

	peek[n] = 0;
	for (size_t i = 0; i < n; i++)
		if (peek[i] == '\r' || peek[i] == '\n')
			peek[i] = ' ';
	/* The command's name, as Postfix logs it: "after MAIL", not "after MAIL FROM:<..." */
	if (vlen >= sizeof verb)
		vlen = sizeof verb - 1;
	for (size_t i = 0; i < vlen; i++)
		verb[i] = toupper((unsigned char)line[i]);
	verb[vlen] = 0;
	msg_info("improper command pipelining after %s from %s: %s",
		 verb, smtp_client_id(s), peek);
	smtp_reply_close(s, "554 5.5.0 Error: SMTP protocol synchronization");
}

static bool bare_lf_forbidden(const struct smtp_session *s)
{
	return s->lim.forbid_bare_newline && !s->bare_lf_excluded;
}

/* Take one command line from the input.  Returns 1 when a line was
 * handled, 0 when more input is needed. */
static int command_input(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t eol_len, len;
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len,
						      EVBUFFER_EOL_LF);
	bool ahead;
	char *line;

	if (eol.pos < 0) {
		if ((long long)evbuffer_get_length(in) > s->lim.line_length_limit) {
			smtp_reply_close(s, "500 5.5.0 Error: line too long");
			msg_info("command line too long from %s", smtp_client_id(s));
		}
		return 0;
	}
	len = eol.pos;
	line = malloc(len + 1);
	if (line == NULL)
		msg_fatal("out of memory");
	evbuffer_remove(in, line, len);
	evbuffer_drain(in, 1);
	line[len] = 0;
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = 0;
	else if (bare_lf_forbidden(s)) {
		msg_info("bare <LF> received after %s from %s", s->last_cmd,
			 smtp_client_id(s));
		smtp_reply_close(s, "521 5.5.2 %s Error: bare <LF> received",
				 smtp_hostname(s));
		free(line);
		return 1;
	}
	if ((long long)len > s->lim.line_length_limit) {
		s->cur_cmd = CMD__COUNT;    /* not a command: counted nowhere */
		smtp_reply(s, "500 5.5.0 Error: line too long");
	} else if ((ahead = pipelining_violation(s, line))
		   && s->forbid_unauth_pipelining) {
		reject_pipelining(s, line);
	} else {
		/* remembered for reject_unauth_pipelining (Postfix's
		 * SMTPD_FLAG_ILL_PIPELINING), logged once per session */
		if (ahead && !s->ill_pipelining) {
			s->ill_pipelining = true;
			msg_info("improper command pipelining after %.*s from %s",
				 (int)strcspn(line, " "), line, smtp_client_id(s));
		}
		smtp_command(s, line, len);
	}
	free(line);
	return 1;
}

/* Replies a client has not read yet: past this much, its input is not
 * read until they drain (on_write), so a client that pipelines commands
 * without reading the replies cannot make us buffer without bound. */
#define OUTPUT_HIGH_WATER (256 * 1024)

static bool output_backlogged(struct smtp_session *s)
{
	return evbuffer_get_length(s->out)
		+ evbuffer_get_length(bufferevent_get_output(s->bev))
		> OUTPUT_HIGH_WATER;
}

static void process_input(struct smtp_session *s)
{
	while (!s->paused && !s->closing && !s->dead) {
		enum smtp_state before = s->state;
		size_t avail = evbuffer_get_length(bufferevent_get_input(s->bev));

		if (output_backlogged(s)) {
			bufferevent_disable(s->bev, EV_READ);
			break;
		}
		if (s->state == SS_COMMAND) {
			if (avail == 0 || command_input(s) == 0)
				break;
		} else if (s->state == SS_DATA) {
			smtp_data_input(s);
		} else if (s->state == SS_BDAT) {
			smtp_bdat_input(s);
		} else {
			break;
		}
		if (s->state == before && evbuffer_get_length(
			    bufferevent_get_input(s->bev)) == avail)
			break;
	}
	flush_replies(s);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	process_input(arg);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	if (!s->paused)
		process_input(s);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	if (s->closing && evbuffer_get_length(s->out) == 0
	    && evbuffer_get_length(bufferevent_get_output(bev)) == 0
	    && !tls_server_output_pending(s)) {   /* TLS: until sent */
		session_drop(s);
		return;
	}
	/* The replies drained: read again if a backlog stopped the input. */
	if (!s->closing && !s->paused && !s->dead && !s->tarpitting
	    && !(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		event_active(s->resume_ev, EV_READ, 0);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	if ((what & BEV_EVENT_TIMEOUT) && s->closing) {
		/* Not even the last reply could be delivered: give up. */
		session_drop(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		msg_info("timeout after %s from %s", s->last_cmd,
			 smtp_client_id(s));
		evbuffer_add_printf(s->out, "421 4.4.2 %s Error: timeout exceeded\r\n",
				    smtp_hostname(s));
		s->closing = true;
		s->tarpitting = false;
		flush_replies(s);
		bufferevent_disable(bev, EV_READ);
		bufferevent_enable(bev, EV_WRITE);
		return;
	}
	if (!s->closing)
		msg_info("lost connection after %s from %s", s->last_cmd,
			 smtp_client_id(s));
	session_drop(s);
}

/* ---- start -------------------------------------------------------------- */

static void load_limits(struct smtp_session *s)
{
	const struct config *c = s->cfg;

	s->lim.message_size_limit = cfg_size(c, "message_size_limit");
	s->lim.header_size_limit = cfg_size(c, "header_size_limit");
	s->lim.line_length_limit = cfg_int(c, "line_length_limit");
	s->lim.recipient_limit = cfg_int(c, "smtpd_recipient_limit");
	s->lim.timeout = cfg_time(c, "smtpd_timeout");
	s->lim.error_sleep_time = cfg_time(c, "smtpd_error_sleep_time");
	s->lim.soft_error_limit = cfg_int(c, "smtpd_soft_error_limit");
	s->lim.hard_error_limit = cfg_int(c, "smtpd_hard_error_limit");
	s->lim.junk_command_limit = cfg_int(c, "smtpd_junk_command_limit");
	s->lim.forbid_bare_newline = cfg_bool(c, "smtpd_forbid_bare_newline");
	s->lim.strict_rfc821_envelopes = cfg_bool(c, "strict_rfc821_envelopes");
	s->lim.disable_vrfy = cfg_bool(c, "disable_vrfy_command");
	s->lim.helo_required = cfg_bool(c, "smtpd_helo_required");
	s->forbid_unauth_pipelining = cfg_bool(c, "smtpd_forbid_unauth_pipelining");
	if (s->lim.line_length_limit < 512)
		s->lim.line_length_limit = 512;   /* RFC 5321 4.5.3.1.4 */
}

static void set_endpoints(struct smtp_session *s, int fd,
			  const struct sockaddr *peer)
{
	struct sockaddr_storage local;
	socklen_t llen = sizeof local;

	inet_sockaddr_text(peer, s->client_addr, sizeof s->client_addr,
			   &s->client_port);
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
		inet_sockaddr_text((struct sockaddr *)&local, s->server_addr,
				   sizeof s->server_addr, &s->server_port);
	/* Reverse lookups come with the asynchronous resolver; until a name
	 * is verified the client is "unknown", as Postfix says. */
	snprintf(s->client_name, sizeof s->client_name, "unknown");
	snprintf(s->reverse_name, sizeof s->reverse_name, "unknown");
	snprintf(s->client_id, sizeof s->client_id, "%s[%s]", s->client_name,
		 s->client_addr);
}

static void greet_done(struct smtp_session *s, int verdict)
{
	int code;
	const char *dsn, *text;
	char buf[1024];

	if (s->dead)
		return;
	s->state = SS_COMMAND;
	snprintf(buf, sizeof buf, "<%s>: Client host rejected: Access denied",
		 smtp_client_id(s));
	if (filter_reply_by_milter(s)
	    && smtp_verdict_reply(s, verdict, &code, &dsn, &text, buf)) {
		/* A milter's connect reject: Postfix greets "554 host ESMTP not
		 * accepting connections" for a 5xx, "421 host Service
		 * unavailable - try again later" for a 421, and its usual 220
		 * otherwise; the milter's reply then answers MAIL, RCPT, DATA
		 * (milter.c keeps it), HELO/EHLO get their 250. */
		smtp_log_reject(s, "reject", "CONNECT", code, dsn, text);
		if (code == 421)
			smtp_reply_close(s, "421 %s Service unavailable - try again later",
					 smtp_hostname(s));
		else if (code >= 500)
			smtp_reply_raw(s, "554 %s ESMTP not accepting connections",
				       smtp_hostname(s));
		else
			smtp_reply_raw(s, "220 %s", cfg_str(s->cfg, "smtpd_banner"));
		filter_clear_reply(s);
	} else if (smtp_verdict_reply(s, verdict, &code, &dsn, &text, buf)) {
		smtp_log_reject(s, "reject", "CONNECT", code, dsn, text);
		/* Postfix (smtpd_delay_reject = no): the reject or deferral
		 * instead of the banner, then "503 5.7.0 Error: access denied
		 * for host[addr]" to every command */
		s->reject_all = true;
		if (asprintf(&s->reject_all_reply,
			     "503 5.7.0 Error: access denied for %s",
			     smtp_client_id(s)) < 0)
			s->reject_all_reply = NULL;
		smtp_reply_raw(s, "%d %s %s", code, dsn, text);
	} else {
		smtp_keep_session_decisions(s);
		smtp_reply_raw(s, "220 %s", cfg_str(s->cfg, "smtpd_banner"));
	}
	flush_replies(s);
	smtp_resume_input(s);
}

static bool over_connection_limit(struct smtp_session *s)
{
	long long limit = cfg_int(s->cfg, "smtpd_client_connection_count_limit");
	int count;

	if (inet_match_list(s->cfg, "smtpd_client_event_limit_exceptions",
			    s->client_addr))
		return false;
	/* counted, hence not exempt: smtp_anvil_over() relies on it */
	s->anvil_counted = true;
	count = anvil_connect(s->client_addr);
	if (limit > 0 && count > limit)
		msg_warn("Connection concurrency limit exceeded: %d from %s for service %s",
			 count, smtp_client_id(s), s->listener->service);
	else if (!smtp_anvil_over(s, ANVIL_EV_CONN))  /* _connection_rate_limit */
		return false;
	smtp_reply_close(s, "421 4.7.0 %s Error: too many connections from %s",
			 smtp_hostname(s), s->client_addr);
	return true;
}

/* The client is known by name (or "unknown"): log, count, greet. */
static void session_connected(struct smtp_session *s)
{
	if (cfg_bool(s->cfg, "smtpd_client_port_logging"))
		msg_info("connect from %s:%d", smtp_client_id(s), s->client_port);
	else
		msg_info("connect from %s", smtp_client_id(s));
	if (over_connection_limit(s)) {
		flush_replies(s);
		return;
	}
	/* smtps (smtpd_tls_wrappermode): the handshake comes before the
	 * connect filters and the banner; tls_server.c greets. */
	if (s->tls_wrapper) {
		if (!tls_server_start(s)) {
			msg_warn("cannot start TLS for %s: TLS not available due "
				 "to local problem", smtp_client_id(s));
			session_drop(s);
		}
		return;
	}
	smtp_session_greet(s);
}

/* ---- TLS (the bufferevent_openssl wiring; tls_server.c does the rest) -- */

void smtp_session_greet(struct smtp_session *s)
{
	filter_run_stage(s, FS_CONNECT, greet_done);
}

/* The handshake completed: s->bev is now the TLS filter; the session
 * reads and writes through it with its own callbacks and smtpd_timeout. */
void smtp_session_tls_ready(struct smtp_session *s)
{
	struct timeval tv = { s->lim.timeout, 0 };

	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_WRITE);
	bufferevent_disable(s->bev, EV_READ);   /* smtp_resume_input enables */
}

/* A failed handshake, or a closed TLS session whose output left. */
void smtp_session_abort(struct smtp_session *s)
{
	s->closing = true;
	session_drop(s);
}

static void peer_named(void *arg, const char *name, const char *reverse)
{
	struct smtp_session *s = arg;

	s->peer_lookup = NULL;
	snprintf(s->client_name, sizeof s->client_name, "%s", name);
	snprintf(s->reverse_name, sizeof s->reverse_name, "%s", reverse);
	snprintf(s->client_id, sizeof s->client_id, "%s[%s]", s->client_name,
		 s->client_addr);
	session_connected(s);
}

void smtp_session_start(struct event_base *base, int fd,
			const struct sockaddr *peer, socklen_t peerlen,
			const struct listener *l)
{
	struct smtp_session *s = calloc(1, sizeof *s);
	struct timeval tv;
	int one = 1;

	if (s == NULL) {
		close(fd);
		msg_warn("out of memory: connection dropped");
		return;
	}
	session_count++;
	evutil_make_socket_nonblocking(fd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	s->base = base;
	s->listener = l;
	s->cfg = l->cfg;
	s->last_cmd = "CONNECT";
	s->tls_wrapper = tls_server_wrappermode(l->cfg);
	load_limits(s);
	set_endpoints(s, fd, peer);
	s->bare_lf_excluded = inet_match_list(s->cfg,
		"smtpd_forbid_bare_newline_exclusions", s->client_addr);
	s->out = evbuffer_new();
	s->tarpit = evtimer_new(base, tarpit_done, s);
	s->resume_ev = event_new(base, -1, 0, on_resume, s);
	s->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!s->out || !s->tarpit || !s->resume_ev || !s->bev)
		msg_fatal("out of memory");
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	tv.tv_sec = s->lim.timeout;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_WRITE);
	s->state = SS_GREETING;
	smtp_pause_input(s);
	if (cfg_bool(s->cfg, "smtpd_peername_lookup"))
		s->peer_lookup = peer_name_lookup(s->client_addr, peer_named, s);
	else
		session_connected(s);
}
