/*
 * smtp_data.c - receiving message content (DATA and BDAT) into the queue,
 * and the end-of-message path: content filters, end-of-message filters,
 * header edits, then the durable commit and the 250.
 *
 * Content is streamed straight into the queue file (LF line endings,
 * dot-unstuffed); only the header block is also kept in memory (bounded by
 * header_size_limit) for header hooks and end-of-message edits.  Lines
 * longer than the input buffer threshold are passed through in pieces, so
 * a message never needs to fit in memory.
 *
 * SMTP smuggling: with smtpd_forbid_bare_newline (the default) a line
 * ending in a bare LF inside DATA ends the session with 521 and nothing is
 * queued, so "<LF>.<LF>" can never end a message early.  BDAT content has
 * no end marker to smuggle with; bare LFs there are taken as line ends.
 *
 * The promise: "250 2.0.0 Ok: queued as ID" is sent only from the queue
 * commit's completion, i.e. once the file and its directory entry are on
 * stable storage.  A message over message_size_limit gets 552 5.3.4, a
 * write error 451 4.3.0 (452 4.3.1 when the disk is full), and the
 * half-written file is removed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "config.h"
#include "filter_chain.h"
#include "log.h"
#include "milter.h"
#include "plugins/sluice_plugin.h"
#include "qmgr_trigger.h"
#include "queue.h"
#include "smtp_auth.h"
#include "smtp_proto.h"
#include "tls_server.h"
#include "version.h"

/* Pass a line through in pieces once this much is buffered without LF. */
#define PARTIAL_LINE_THRESHOLD 8192

/* ---- content errors ---------------------------------------------------- */

static void content_fail(struct smtp_session *s, int code, const char *text)
{
	if (s->txn.content_error)
		return;
	s->txn.content_error = true;
	s->txn.content_err_code = code;
	snprintf(s->txn.content_err_text, sizeof s->txn.content_err_text, "%s",
		 text);
	s->content.skip = true;
}

static void write_content(struct smtp_session *s, const char *p, size_t n)
{
	if (s->content.skip || n == 0)
		return;
	if (queue_write(s->txn.qf, p, n) < 0) {
		msg_warn("%s: queue file write error: %m", s->queue_id);
		if (errno == ENOSPC || errno == EDQUOT)
			content_fail(s, 452, "4.3.1 Insufficient system storage");
		else
			content_fail(s, 451, "4.3.0 Error: queue file write error");
	}
}

/* ---- headers -------------------------------------------------------------- */

static void hline_append(struct smtp_session *s, const char *p, size_t n)
{
	struct content_state *c = &s->content;

	if (c->hlen + n + 1 > c->halloc) {
		c->halloc = (c->hlen + n + 1) * 2;
		if ((c->hline = realloc(c->hline, c->halloc)) == NULL)
			msg_fatal("out of memory");
	}
	memcpy(c->hline + c->hlen, p, n);
	c->hlen += n;
	c->hline[c->hlen] = 0;
}

static void push_header(struct smtp_session *s, char *name, char *value)
{
	struct smtp_txn *t = &s->txn;

	if (t->nhdr == t->hdr_alloc) {
		t->hdr_alloc = t->hdr_alloc ? 2 * t->hdr_alloc : 16;
		t->hdr = realloc(t->hdr, t->hdr_alloc * sizeof *t->hdr);
		if (t->hdr == NULL)
			msg_fatal("out of memory");
	}
	t->hdr[t->nhdr].name = name;
	t->hdr[t->nhdr].value = value;
	t->nhdr++;
}

static void note_message_id(struct smtp_session *s, const char *value)
{
	size_t n;

	while (*value == ' ' || *value == '\t')
		value++;
	n = strcspn(value, "\n");
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	free(s->content.message_id);
	s->content.message_id = strndup(value, n);
}

/* The collected header text ("Name: value\n\tfolded") becomes an entry. */
static void finish_header(struct smtp_session *s)
{
	struct content_state *c = &s->content;
	char *colon, *name, *value;

	if (c->hlen == 0)
		return;
	colon = memchr(c->hline, ':', c->hlen);
	if (colon != NULL) {
		name = strndup(c->hline, colon - c->hline);
		value = strdup(colon + 1);
		if (!name || !value)
			msg_fatal("out of memory");
		if (strcasecmp(name, "Message-ID") == 0)
			note_message_id(s, value);
		push_header(s, name, value);
	}
	c->hlen = 0;
}

static bool looks_like_header_start(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && p[i] != ':'; i++)
		if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 127)
			return false;
	return i > 0 && i < n;
}

static void end_of_headers(struct smtp_session *s)
{
	finish_header(s);
	s->content.in_headers = false;
	if (!s->content.skip)
		queue_mark_body(s->txn.qf);
}

/* Header parsing for one line or line piece, before it is written. */
static void header_input(struct smtp_session *s, const char *p, size_t n,
			 bool complete)
{
	struct content_state *c = &s->content;

	if (c->mid_line) {
		hline_append(s, p, n);
	} else if (complete && n == 0) {
		end_of_headers(s);
		return;
	} else if ((p[0] == ' ' || p[0] == '\t') && c->hlen > 0) {
		hline_append(s, "\n", 1);
		hline_append(s, p, n);
	} else if (looks_like_header_start(p, n)) {
		finish_header(s);
		hline_append(s, p, n);
	} else {
		end_of_headers(s);   /* a body line without the empty line */
		return;
	}
	c->hdr_bytes += n + 1;
	if (c->hdr_bytes > s->lim.header_size_limit) {
		msg_info("%s: message header size exceeds %lld bytes: rest taken as body",
			 s->queue_id, s->lim.header_size_limit);
		c->hlen = 0;
		end_of_headers(s);
	}
}

/* One line (complete = it ended with a line end) or line piece. */
static void content_line(struct smtp_session *s, const char *p, size_t n,
			 bool complete)
{
	long long limit = s->lim.message_size_limit;

	s->txn.env.size += n + complete;
	if (limit > 0 && s->txn.env.size > limit)
		content_fail(s, 552, "5.3.4 Error: message file too big");
	if (s->content.in_headers && !s->content.skip)
		header_input(s, p, n, complete);
	write_content(s, p, n);
	if (complete)
		write_content(s, "\n", 1);
	s->content.mid_line = !complete;
}

/* ---- Received: -------------------------------------------------------------- */

static const char *protocol_name(const struct smtp_session *s)
{
	bool authenticated = s->sasl_username != NULL;  /* RFC 3848 "A" */
	bool tls = s->tls != NULL;                      /* RFC 3848 "S" */

	if (s->txn.env.smtputf8)
		return authenticated ? (tls ? "UTF8SMTPSA" : "UTF8SMTPA")
			: (tls ? "UTF8SMTPS" : "UTF8SMTP");
	if (!s->esmtp)
		return "SMTP";
	return authenticated ? (tls ? "ESMTPSA" : "ESMTPA")
		: (tls ? "ESMTPS" : "ESMTP");
}

static void rfc2822_date(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm);
}

int smtp_data_begin(struct smtp_session *s)
{
	struct timeval tv;
	char date[80], hdr[2048], tls[640];
	int n;

	memset(&s->content, 0, sizeof s->content);
	s->content.in_headers = true;
	s->txn.env.size = 0;
	gettimeofday(&tv, NULL);
	s->txn.env.arrival_sec = tv.tv_sec;
	s->txn.env.arrival_usec = tv.tv_usec;
	rfc2822_date(date, sizeof date);
	tls_server_received(s, tls, sizeof tls);    /* smtpd_tls_received_header */
	/* PREPEND actions: on top, above our Received: (as Postfix) */
	for (int i = 0; i < s->txn.nprepend; i++)
		content_line(s, s->txn.prepend[i], strlen(s->txn.prepend[i]), true);
	if (s->txn.env.nrcpt == 1)
		n = snprintf(hdr, sizeof hdr,
			     "Received: from %s (%s [%s])%s%s\n\tby %s (%s) with %s id %s\n\tfor <%s>; %s",
			     s->helo_name ? s->helo_name : s->client_name,
			     s->client_name, s->client_addr, tls,
			     smtp_auth_received(s), smtp_hostname(s),
			     cfg_str(s->cfg, "mail_name"), protocol_name(s),
			     s->queue_id, s->txn.env.rcpt[0].addr, date);
	else
		n = snprintf(hdr, sizeof hdr,
			     "Received: from %s (%s [%s])%s%s\n\tby %s (%s) with %s id %s;\n\t%s",
			     s->helo_name ? s->helo_name : s->client_name,
			     s->client_name, s->client_addr, tls,
			     smtp_auth_received(s), smtp_hostname(s),
			     cfg_str(s->cfg, "mail_name"), protocol_name(s),
			     s->queue_id, date);
	if (n < 0 || (size_t)n >= sizeof hdr)
		n = strlen(hdr);
	content_line(s, hdr, n, true);
	s->content.hdr_bytes = 0;   /* our own header does not count */
	return s->txn.content_error ? -1 : 0;
}

/* ---- DATA -------------------------------------------------------------------- */

static bool bare_lf_forbidden(const struct smtp_session *s)
{
	return s->lim.forbid_bare_newline && !s->bare_lf_excluded;
}

static void bare_lf_abort(struct smtp_session *s)
{
	msg_info("%s: bare <LF> received in DATA from %s: message not queued",
		 smtp_queue_id_or_noqueue(s), smtp_client_id(s));
	smtp_txn_reset(s, true);
	s->state = SS_COMMAND;
	smtp_reply_close(s, "521 5.5.2 %s Error: bare <LF> received",
			 smtp_hostname(s));
}

/* A long line without LF yet: pass all but a trailing CR through. */
static void data_partial(struct smtp_session *s, struct evbuffer *in,
			 size_t avail)
{
	const char *p = (const char *)evbuffer_pullup(in, avail);
	size_t take = avail, skip = 0;

	if (p[take - 1] == '\r')
		take--;
	if (!s->content.mid_line && p[0] == '.')
		skip = 1;
	content_line(s, p + skip, take - skip, false);
	evbuffer_drain(in, take);
}

void smtp_data_input(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	while (s->state == SS_DATA) {
		size_t eol_len, avail = evbuffer_get_length(in), len, skip = 0;
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len,
							      EVBUFFER_EOL_LF);
		const char *p;

		if (eol.pos < 0) {
			if (avail >= PARTIAL_LINE_THRESHOLD)
				data_partial(s, in, avail);
			return;
		}
		p = (const char *)evbuffer_pullup(in, eol.pos + 1);
		len = eol.pos;
		if (len > 0 && p[len - 1] == '\r') {
			len--;
		} else if (bare_lf_forbidden(s)) {
			evbuffer_drain(in, eol.pos + 1);
			bare_lf_abort(s);
			return;
		}
		if (!s->content.mid_line && len == 1 && p[0] == '.') {
			evbuffer_drain(in, eol.pos + 1);
			smtp_data_end(s);
			return;
		}
		if (!s->content.mid_line && len > 0 && p[0] == '.')
			skip = 1;
		content_line(s, p + skip, len - skip, true);
		evbuffer_drain(in, eol.pos + 1);
	}
}

/* ---- BDAT ---------------------------------------------------------------------- */

/* Feed raw chunk bytes: CRLF and bare LF end lines.  A CR at the end of
 * the bytes at hand is held back until we see whether an LF follows. */
static void bdat_bytes(struct smtp_session *s, const char *p, size_t n)
{
	if (s->content.pending_cr && n > 0) {
		s->content.pending_cr = false;
		if (p[0] == '\n') {
			content_line(s, "", 0, true);
			p++;
			n--;
		} else {
			content_line(s, "\r", 1, false);
		}
	}
	while (n > 0) {
		const char *lf = memchr(p, '\n', n);
		size_t len;

		if (lf == NULL) {
			if (p[n - 1] == '\r') {
				s->content.pending_cr = true;
				n--;
			}
			if (n > 0)
				content_line(s, p, n, false);
			return;
		}
		len = lf - p;
		if (len > 0 && p[len - 1] == '\r')
			len--;
		content_line(s, p, len, true);
		n -= lf + 1 - p;
		p = lf + 1;
	}
}

static void bdat_chunk_done(struct smtp_session *s)
{
	s->state = SS_COMMAND;
	if (s->txn.content_error && s->txn.content_err_code == 503) {
		/* BDAT out of sequence: the chunk is gone, the transaction stays. */
		s->txn.content_error = false;
		s->content.skip = false;
		smtp_reply(s, "503 %s", s->txn.content_err_text);
		return;
	}
	if (!s->bdat_last) {
		if (s->txn.content_error)
			smtp_reply(s, "%d %s", s->txn.content_err_code,
				   s->txn.content_err_text);
		else
			smtp_reply(s, "250 2.0.0 Ok: %lld bytes", s->txn.env.size);
		return;
	}
	smtp_data_end(s);
}

void smtp_bdat_input(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	while (s->state == SS_BDAT) {
		size_t avail = evbuffer_get_length(in), take;
		const char *p;

		if (s->bdat_remaining == 0) {
			bdat_chunk_done(s);
			return;
		}
		if (avail == 0)
			return;
		take = (long long)avail < s->bdat_remaining ? avail
			: (size_t)s->bdat_remaining;
		p = (const char *)evbuffer_pullup(in, take);
		if (!(s->content.skip && s->txn.content_err_code == 503))
			bdat_bytes(s, p, take);
		evbuffer_drain(in, take);
		s->bdat_remaining -= take;
	}
}

/* ---- end of message ------------------------------------------------------------ */

static void commit_done(void *arg, int err);

/* Add a recipient made by an action (no DSN parameters). */
static void append_recipient(struct smtp_txn *t, const char *addr)
{
	struct queue_rcpt *r;

	if (t->env.nrcpt >= t->rcpt_alloc) {
		t->rcpt_alloc = t->rcpt_alloc ? 2 * t->rcpt_alloc : 8;
		t->env.rcpt = realloc(t->env.rcpt, t->rcpt_alloc * sizeof *r);
		if (t->env.rcpt == NULL)
			msg_fatal("out of memory");
	}
	r = &t->env.rcpt[t->env.nrcpt++];
	memset(r, 0, sizeof *r);
	if ((r->addr = strdup(addr)) == NULL)
		msg_fatal("out of memory");
	r->status = 'P';
}

static char *serialize_headers(struct smtp_session *s, size_t *len)
{
	struct evbuffer *b = evbuffer_new();
	char *out;

	for (int i = 0; i < s->txn.nhdr; i++)
		evbuffer_add_printf(b, "%s:%s\n", s->txn.hdr[i].name,
				    s->txn.hdr[i].value);
	*len = evbuffer_get_length(b);
	out = malloc(*len + 1);
	if (out == NULL)
		msg_fatal("out of memory");
	evbuffer_remove(b, out, *len);
	evbuffer_free(b);
	return out;
}

static void replace_recipients(struct smtp_txn *t, const char *addr)
{
	for (int i = 0; i < t->env.nrcpt; i++) {
		free(t->env.rcpt[i].addr);
		free(t->env.rcpt[i].orcpt);
	}
	t->env.nrcpt = 0;
	append_recipient(t, addr);
}

/*
 * The message actions of the restriction lists (access(5)), applied as
 * Postfix's cleanup does: REDIRECT replaces every recipient with one,
 * BCC adds recipients, FILTER (or else content_filter) names the content
 * filter the queue manager delivers to.  PREPEND was written with the
 * headers, HOLD and DISCARD are the transaction's flags.
 */
static void apply_actions(struct smtp_session *s)
{
	struct smtp_txn *t = &s->txn;
	const char *cf = cfg_str(s->cfg, "content_filter");

	if (t->redirect)
		replace_recipients(t, t->redirect);
	for (int i = 0; i < t->nbcc; i++)
		append_recipient(t, t->bcc[i]);
	if (t->env.filter == NULL && *cf)
		t->env.filter = strdup(cf);
}

static void fill_envelope(struct smtp_session *s)
{
	struct queue_envelope *env = &s->txn.env;

	env->client_name = strdup(s->client_name);
	env->client_addr = strdup(s->client_addr);
	env->client_port = s->client_port;
	env->helo = s->helo_name ? strdup(s->helo_name) : NULL;
	env->proto = strdup(protocol_name(s));
	env->listener = strdup(s->listener->service);
	env->message_id = s->content.message_id ? strdup(s->content.message_id)
		: NULL;
	env->hold = s->txn.hold;
	env->hold_reason = s->txn.hold_reason ? strdup(s->txn.hold_reason) : NULL;
	env->size = queue_content_size(s->txn.qf);
	apply_actions(s);
}

static void log_eom_action(struct smtp_session *s, const char *action,
			   const char *reason)
{
	smtp_log_reject(s, action, "END-OF-MESSAGE", 0, NULL,
			reason ? reason : s->reply_text ? s->reply_text
			: "filter decision");
}

static void finish_transaction(struct smtp_session *s)
{
	filter_message_done(s);     /* sluice_plugin.h: reset at end of message */
	smtp_txn_reset(s, false);
	s->state = SS_COMMAND;
	smtp_resume_input(s);
}

static void eom_done(struct smtp_session *s, int verdict)
{
	int code;
	const char *dsn, *text;
	char *hdrs;
	size_t hlen;

	if (smtp_verdict_reply(s, verdict, &code, &dsn, &text,
			       "<END-OF-MESSAGE>: End-of-data rejected: Access denied")) {
		smtp_log_reject(s, "reject", "END-OF-MESSAGE", code, dsn, text);
		smtp_reply(s, "%d %s %s", code, dsn, text);
		finish_transaction(s);
		return;
	}
	if (s->txn.discard) {
		if (!s->txn.discard_logged)
			log_eom_action(s, "discard", NULL);
		smtp_reply(s, "250 2.0.0 Ok: queued as %s", s->queue_id);
		finish_transaction(s);
		return;
	}
	if (s->txn.hold && !s->txn.hold_logged)
		log_eom_action(s, "hold", s->txn.hold_reason);
	if (s->txn.hdr_modified || milter_body_replaced(filter_milters(s))) {
		hdrs = serialize_headers(s, &hlen);
		if (milter_replace_content(filter_milters(s), s->txn.qf, hdrs,
					   hlen) < 0)
			content_fail(s, 451, "4.3.0 Error: queue file write error");
		free(hdrs);
	}
	if (s->txn.content_error) {
		smtp_reply(s, "%d %s", s->txn.content_err_code, s->txn.content_err_text);
		finish_transaction(s);
		return;
	}
	fill_envelope(s);
	s->state = SS_COMMIT;
	queue_commit(s->txn.qf, &s->txn.env, commit_done, s);
	s->txn.qf = NULL;
}

static void content_done(struct smtp_session *s, int verdict)
{
	if (verdict != SLUICE_DUNNO && verdict != SLUICE_OK) {
		eom_done(s, verdict);
		return;
	}
	filter_clear_reply(s);
	filter_run_stage(s, FS_EOM, eom_done);
}

void smtp_data_end(struct smtp_session *s)
{
	smtp_pause_input(s);
	s->state = SS_FILTER;
	if (s->content.pending_cr) {
		s->content.pending_cr = false;
		content_line(s, "\r", 1, false);
	}
	if (s->content.in_headers)
		end_of_headers(s);
	if (s->txn.content_error) {
		smtp_reply(s, "%d %s", s->txn.content_err_code, s->txn.content_err_text);
		finish_transaction(s);
		return;
	}
	if (s->content.message_id)
		msg_info("%s: message-id=%s", s->queue_id, s->content.message_id);
	filter_clear_reply(s);
	if (filter_wants_content())
		filter_run_stage(s, FS_CONTENT, content_done);
	else
		content_done(s, SLUICE_DUNNO);
}

/* Committed: wake the queue manager (it logs "(queue active)" when it
 * takes the message).  A hint only: no queue manager, or a full FIFO,
 * is fine. */
static void commit_done(void *arg, int err)
{
	struct smtp_session *s = arg;

	if (err == 0 && !s->txn.env.hold)
		(void)qmgr_trigger_send(smtp_queue_dir(s), QMGR_REQ_SCAN_INCOMING);
	else if (err != 0)
		msg_warn("%s: queue commit failed: %s", s->queue_id, strerror(err));
	if (s->dead) {
		smtp_session_gone(s);
		return;
	}
	if (err == 0) {
		/* Delivered: the error and junk counts start over (Postfix). */
		s->errors = 0;
		s->junk = 0;
		smtp_reply(s, "250 2.0.0 Ok: queued as %s", s->queue_id);
	}
	else if (err == ENOSPC || err == EDQUOT)
		smtp_reply(s, "452 4.3.1 Insufficient system storage");
	else
		smtp_reply(s, "451 4.3.0 Error: queue file write error");
	finish_transaction(s);
}
