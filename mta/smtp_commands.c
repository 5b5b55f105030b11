/*
 * smtp_commands.c - the SMTP command handlers: HELO, EHLO, MAIL, RCPT,
 * DATA, BDAT, RSET, NOOP, QUIT, VRFY, HELP, and the error replies for
 * everything else.
 *
 * Replies and enhanced status codes are Postfix's, so that clients,
 * monitoring and admins see what they know.  Each stage that filters care
 * about (HELO, MAIL, RCPT, DATA) asks the filter chain and replies from its
 * continuation, so a filter that waits suspends only this session.
 *
 * Promises: no command is accepted out of sequence (503), a transaction
 * never holds more than smtpd_recipient_limit recipients, a declared SIZE
 * over message_size_limit or beyond the queue's free space is refused up
 * front, and sender-specified routing (user%host@x, user!host@x, source
 * routes, quoted local parts hiding '@') is refused.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "config.h"
#include "filter_chain.h"
#include "log.h"
#include "plugins/sluice_plugin.h"
#include "queue.h"
#include "smtp_proto.h"

#define MAX_ESMTP_PARAMS 10

/* ---- helpers ------------------------------------------------------------ */

static char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (p == NULL)
		msg_fatal("out of memory");
	return p;
}

bool smtp_verdict_reply(struct smtp_session *s, int verdict, int *code,
			const char **dsn, const char **text,
			const char *default_text)
{
	bool reject = verdict == SLUICE_REJECT;

	if (verdict != SLUICE_REJECT && verdict != SLUICE_DEFER)
		return false;
	*code = s->reply_code;
	if (*code / 100 != (reject ? 5 : 4))
		*code = reject ? 554 : 450;
	*dsn = s->reply_dsn[0] && s->reply_dsn[0] == (reject ? '5' : '4')
		? s->reply_dsn : reject ? "5.7.1" : "4.7.1";
	*text = s->reply_text ? s->reply_text : default_text;
	return true;
}

/* Reply to a filter's reject/defer and log it.  Returns true if it did. */
static bool filter_rejected(struct smtp_session *s, int verdict,
			    const char *stage, const char *default_text)
{
	int code;
	const char *dsn, *text;

	if (!smtp_verdict_reply(s, verdict, &code, &dsn, &text, default_text))
		return false;
	smtp_log_reject(s, "reject", stage, code, dsn, text);
	smtp_reply(s, "%d %s %s", code, dsn, text);
	return true;
}

static void txn_free_envelope(struct smtp_txn *t)
{
	queue_envelope_free(&t->env);
	for (int i = 0; i < t->nhdr; i++) {
		free(t->hdr[i].name);
		free(t->hdr[i].value);
	}
	free(t->hdr);
	free(t->hold_reason);
	memset(t, 0, sizeof *t);
}

void smtp_txn_reset(struct smtp_session *s, bool notify_filters)
{
	bool was_active = s->txn.active;

	if (s->txn.qf) {
		queue_abort(s->txn.qf);
		s->txn.qf = NULL;
	}
	txn_free_envelope(&s->txn);
	s->queue_id[0] = 0;
	free(s->content.hline);
	free(s->content.message_id);
	memset(&s->content, 0, sizeof s->content);
	free(s->received_for);
	s->received_for = NULL;
	if (notify_filters && was_active)
		filter_reset(s);
}

void smtp_keep_session_decisions(struct smtp_session *s)
{
	if (s->txn.discard)
		s->discard_all = true;
	if (s->txn.hold && !s->hold_all) {
		s->hold_all = true;
		s->hold_all_reason = s->txn.hold_reason ? xstrdup(s->txn.hold_reason)
			: NULL;
	}
}

/* A new transaction inherits the session's decisions. */
static void apply_session_decisions(struct smtp_session *s)
{
	s->txn.discard |= s->discard_all;
	if (s->hold_all && !s->txn.hold) {
		s->txn.hold = true;
		s->txn.hold_reason = s->hold_all_reason ? xstrdup(s->hold_all_reason)
			: NULL;
	}
}

static bool junk_command(struct smtp_session *s)
{
	if (++s->junk > s->lim.junk_command_limit) {
		s->errors++;
		return true;
	}
	return false;
}

/* ---- HELO / EHLO ------------------------------------------------------------ */

static bool ehlo_keyword_discarded(struct smtp_session *s, const char *kw)
{
	char **list = cfg_list(s->cfg, "smtpd_discard_ehlo_keywords");
	bool hit = false;

	for (int i = 0; list && list[i] && !hit; i++)
		hit = strcasecmp(list[i], kw) == 0;
	cfg_list_free(list);
	return hit;
}

static void ehlo_reply(struct smtp_session *s)
{
	const char *kw[8];
	char size[40];
	int n = 0;

	snprintf(size, sizeof size, "SIZE %lld", s->lim.message_size_limit);
	s->pipelining_offered = !ehlo_keyword_discarded(s, "PIPELINING");
	if (s->pipelining_offered)
		kw[n++] = "PIPELINING";
	if (!ehlo_keyword_discarded(s, "SIZE"))
		kw[n++] = s->lim.message_size_limit ? size : "SIZE";
	if (!s->lim.disable_vrfy && !ehlo_keyword_discarded(s, "VRFY"))
		kw[n++] = "VRFY";
	if (!ehlo_keyword_discarded(s, "ENHANCEDSTATUSCODES"))
		kw[n++] = "ENHANCEDSTATUSCODES";
	if (!ehlo_keyword_discarded(s, "8BITMIME"))
		kw[n++] = "8BITMIME";
	if (!ehlo_keyword_discarded(s, "DSN"))
		kw[n++] = "DSN";
	if (cfg_bool(s->cfg, "smtputf8_enable")
	    && !ehlo_keyword_discarded(s, "SMTPUTF8"))
		kw[n++] = "SMTPUTF8";
	if (!ehlo_keyword_discarded(s, "CHUNKING"))
		kw[n++] = "CHUNKING";
	smtp_reply_raw(s, "250%c%s", n ? '-' : ' ', smtp_hostname(s));
	for (int i = 0; i < n; i++)
		smtp_reply_raw(s, "250%c%s", i == n - 1 ? ' ' : '-', kw[i]);
}

static void helo_done(struct smtp_session *s, int verdict)
{
	char deflt[600];

	snprintf(deflt, sizeof deflt, "<%s>: Helo command rejected: Access denied",
		 s->helo_name);
	if (filter_rejected(s, verdict, s->esmtp ? "EHLO" : "HELO", deflt)) {
		free(s->helo_name);
		s->helo_name = NULL;
	} else if (s->esmtp) {
		smtp_keep_session_decisions(s);
		ehlo_reply(s);
	} else {
		smtp_keep_session_decisions(s);
		smtp_reply_raw(s, "250 %s", smtp_hostname(s));
	}
	smtp_resume_input(s);
}

static void cmd_helo_ehlo(struct smtp_session *s, char *arg, bool esmtp)
{
	char *end;

	while (*arg == ' ')
		arg++;
	end = arg + strlen(arg);
	while (end > arg && end[-1] == ' ')
		*--end = 0;
	if (*arg == 0) {
		smtp_reply(s, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		return;
	}
	smtp_txn_reset(s, true);
	free(s->helo_name);
	s->helo_name = xstrdup(arg);
	s->esmtp = esmtp;
	s->pipelining_offered = false;
	filter_clear_reply(s);
	smtp_pause_input(s);
	filter_run_stage(s, FS_HELO, helo_done);
}

/* ---- MAIL ----------------------------------------------------------------- */

/* Apply one MAIL parameter; returns NULL or an error reply. */
static const char *mail_param(struct smtp_session *s, struct esmtp_param *p)
{
	struct queue_envelope *env = &s->txn.env;
	const char *v = p->value;
	char *end;

	if (strcasecmp(p->name, "SIZE") == 0) {
		if (v == NULL || !isdigit((unsigned char)*v))
			return "501 5.5.4 Bad message size syntax";
		errno = 0;
		s->txn.declared_size = strtoll(v, &end, 10);
		if (*end || errno)
			return "501 5.5.4 Bad message size syntax";
		if (s->lim.message_size_limit > 0
		    && s->txn.declared_size > s->lim.message_size_limit)
			return "552 5.3.4 Message size exceeds fixed limit";
	} else if (strcasecmp(p->name, "BODY") == 0) {
		if (v && strcasecmp(v, "8BITMIME") == 0)
			env->body = BODY_8BITMIME;
		else if (v && strcasecmp(v, "7BIT") == 0)
			env->body = BODY_7BIT;
		else
			return "501 5.5.4 Unsupported BODY parameter";
	} else if (strcasecmp(p->name, "SMTPUTF8") == 0) {
		if (!cfg_bool(s->cfg, "smtputf8_enable"))
			return "555 5.5.4 Unsupported option: SMTPUTF8";
		if (v != NULL)
			return "501 5.5.4 Bad SMTPUTF8 parameter syntax";
		env->smtputf8 = true;
	} else if (strcasecmp(p->name, "RET") == 0) {
		if (env->ret != DSN_RET_NONE)
			return "501 5.5.4 Duplicate RET parameter";
		if (v && strcasecmp(v, "FULL") == 0)
			env->ret = DSN_RET_FULL;
		else if (v && strcasecmp(v, "HDRS") == 0)
			env->ret = DSN_RET_HDRS;
		else
			return "501 5.5.4 Bad RET parameter syntax";
	} else if (strcasecmp(p->name, "ENVID") == 0) {
		if (env->envid)
			return "501 5.5.4 Duplicate ENVID parameter";
		if (v == NULL || !smtp_xtext_valid(v) || strlen(v) > 100)
			return "501 5.5.4 Bad ENVID parameter syntax";
		env->envid = xstrdup(v);
	} else if (strcasecmp(p->name, "AUTH") == 0) {
		/* RFC 4954: ignored unless the session is authenticated. */
		if (v == NULL || !smtp_xtext_valid(v))
			return "501 5.5.4 Bad AUTH parameter syntax";
	} else {
		return NULL;   /* caller builds "555 5.5.4 Unsupported option: X" */
	}
	return NULL;
}

static bool is_known_mail_param(const char *name)
{
	static const char *const known[] = {
		"SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "AUTH", NULL
	};

	for (int i = 0; known[i]; i++)
		if (strcasecmp(name, known[i]) == 0)
			return true;
	return false;
}

static void mail_done(struct smtp_session *s, int verdict)
{
	char deflt[600];

	snprintf(deflt, sizeof deflt, "<%s>: Sender address rejected: Access denied",
		 s->txn.env.sender);
	if (filter_rejected(s, verdict, "MAIL", deflt))
		smtp_txn_reset(s, true);
	else
		smtp_reply(s, "250 2.1.0 Ok");
	smtp_resume_input(s);
}

static const char *mail_checks(struct smtp_session *s, char *arg,
			       char *unsupported, size_t ulen)
{
	struct esmtp_param params[MAX_ESMTP_PARAMS];
	const char *err;
	char *addr;
	int n = 0;

	if (s->lim.helo_required && s->helo_name == NULL)
		return "503 5.5.1 Error: send HELO/EHLO first";
	if (s->txn.active)
		return "503 5.5.1 Error: nested MAIL command";
	if (smtp_parse_path(arg, "FROM", s->lim.strict_rfc821_envelopes, &addr,
			    params, &n, MAX_ESMTP_PARAMS) < 0)
		return "501 5.5.4 Syntax: MAIL FROM:<address>";
	for (int i = 0; i < n; i++) {
		if (!is_known_mail_param(params[i].name)) {
			snprintf(unsupported, ulen, "555 5.5.4 Unsupported option: %s",
				 params[i].name);
			return unsupported;
		}
		if ((err = mail_param(s, &params[i])) != NULL)
			return err;
	}
	if (!smtp_address_valid(addr, s->txn.env.smtputf8)) {
		for (const char *p = addr; *p; p++)
			if ((unsigned char)*p >= 0x80 && !s->txn.env.smtputf8)
				return "553 5.6.7 Must declare SMTPUTF8 to send unicode address";
		return "501 5.1.7 Bad sender address syntax";
	}
	if (!queue_space_ok(smtp_queue_dir(s),
			    s->txn.declared_size, cfg_size(s->cfg, "queue_minfree")))
		return "452 4.3.1 Insufficient system storage";
	s->txn.env.sender = xstrdup(addr);
	return NULL;
}

static void cmd_mail(struct smtp_session *s, char *arg)
{
	char unsupported[128];
	const char *err = mail_checks(s, arg, unsupported, sizeof unsupported);

	if (err) {
		if (err[0] == '4')
			msg_warn("%s: %s", smtp_client_id(s), err);
		/* keep nothing of a refused MAIL; a nested MAIL leaves the
		 * transaction in progress (and its queue file) alone */
		if (!s->txn.active)
			txn_free_envelope(&s->txn);
		smtp_reply(s, "%s", err);
		return;
	}
	s->txn.active = true;
	apply_session_decisions(s);
	filter_clear_reply(s);
	smtp_pause_input(s);
	filter_run_stage(s, FS_MAIL, mail_done);
}

/* ---- RCPT ------------------------------------------------------------------ */

static int parse_notify(const char *v)
{
	int bits = 0;
	char buf[64], *tok, *save;

	if (v == NULL || strlen(v) >= sizeof buf)
		return -1;
	strcpy(buf, v);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcasecmp(tok, "NEVER") == 0)
			bits |= DSN_NOTIFY_NEVER;
		else if (strcasecmp(tok, "SUCCESS") == 0)
			bits |= DSN_NOTIFY_SUCCESS;
		else if (strcasecmp(tok, "FAILURE") == 0)
			bits |= DSN_NOTIFY_FAILURE;
		else if (strcasecmp(tok, "DELAY") == 0)
			bits |= DSN_NOTIFY_DELAY;
		else
			return -1;
	}
	if (bits == 0 || ((bits & DSN_NOTIFY_NEVER) && bits != DSN_NOTIFY_NEVER))
		return -1;
	return bits;
}

static bool orcpt_valid(const char *v)
{
	const char *semi = v ? strchr(v, ';') : NULL;

	return semi && semi > v && semi[1] && strlen(v) <= 500
		&& smtp_xtext_valid(semi + 1);
}

static void add_recipient(struct smtp_session *s, const char *addr,
			  const char *orcpt, int notify)
{
	struct smtp_txn *t = &s->txn;
	struct queue_rcpt *r;

	if (t->env.nrcpt == t->rcpt_alloc) {
		t->rcpt_alloc = t->rcpt_alloc ? 2 * t->rcpt_alloc : 8;
		t->env.rcpt = realloc(t->env.rcpt, t->rcpt_alloc * sizeof *r);
		if (t->env.rcpt == NULL)
			msg_fatal("out of memory");
	}
	r = &t->env.rcpt[t->env.nrcpt++];
	r->addr = xstrdup(addr);
	r->orcpt = orcpt ? xstrdup(orcpt) : NULL;
	r->notify = notify;
	r->status = 'P';
}

/* The first accepted recipient opens the queue file: from here on, log
 * lines carry the queue ID instead of NOQUEUE, as Postfix's do. */
static int open_queue_file(struct smtp_session *s)
{
	if (s->txn.qf)
		return 0;
	s->txn.qf = queue_create(smtp_queue_dir(s));
	if (s->txn.qf == NULL) {
		msg_warn("%s: cannot create queue file: %m", smtp_client_id(s));
		return -1;
	}
	snprintf(s->queue_id, sizeof s->queue_id, "%s", queue_file_id(s->txn.qf));
	msg_info("%s: client=%s", s->queue_id, smtp_client_id(s));
	return 0;
}

struct pending_rcpt { char *addr; char *orcpt; int notify; };

/* postmaster, or postmaster@ one of our own names (RFC 5321 4.5.1).  Only
 * local domains: the bypass must never help relaying. */
static bool is_local_postmaster(struct smtp_session *s, const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t local_len = at ? (size_t)(at - addr) : strlen(addr);
	char **dest;
	bool hit;

	if (local_len != 10 || strncasecmp(addr, "postmaster", 10) != 0)
		return false;
	if (at == NULL || strcasecmp(at + 1, smtp_hostname(s)) == 0)
		return true;
	dest = cfg_list(s->cfg, "mydestination");
	hit = false;
	for (int i = 0; dest && dest[i] && !hit; i++)
		hit = strcasecmp(dest[i], at + 1) == 0;
	cfg_list_free(dest);
	return hit;
}
static void rcpt_done(struct smtp_session *s, int verdict);

static void rcpt_finish(struct smtp_session *s, struct pending_rcpt *pr,
			int verdict)
{
	char deflt[600];
	bool postmaster_bypass = verdict == SLUICE_REJECT
		&& s->txn.env.sender[0] == 0 && is_local_postmaster(s, pr->addr);

	snprintf(deflt, sizeof deflt,
		 "<%s>: Recipient address rejected: Access denied", pr->addr);
	if (postmaster_bypass)
		msg_info("%s: null sender to <%s> accepted despite a reject (RFC 5321 4.5.1)",
			 smtp_queue_id_or_noqueue(s), pr->addr);
	if (!postmaster_bypass && filter_rejected(s, verdict, "RCPT", deflt))
		return;
	if (open_queue_file(s) < 0) {
		smtp_reply(s, "451 4.3.0 Error: queue file write error");
		return;
	}
	add_recipient(s, pr->addr, pr->orcpt, pr->notify);
	smtp_reply(s, "250 2.1.5 Ok");
}

static void rcpt_done(struct smtp_session *s, int verdict)
{
	struct pending_rcpt *pr = (struct pending_rcpt *)s->txn.cur_rcpt_ctx;

	rcpt_finish(s, pr, verdict);   /* logs with to=<cur_rcpt> */
	s->txn.cur_rcpt = NULL;
	s->txn.cur_rcpt_ctx = NULL;
	free(pr->addr);
	free(pr->orcpt);
	free(pr);
	smtp_resume_input(s);
}

static const char *rcpt_params(struct esmtp_param *params, int n,
			       struct pending_rcpt *pr, char *buf, size_t blen)
{
	for (int i = 0; i < n; i++) {
		if (strcasecmp(params[i].name, "NOTIFY") == 0) {
			if ((pr->notify = parse_notify(params[i].value)) < 0)
				return "501 5.5.4 Error: Bad NOTIFY parameter syntax";
		} else if (strcasecmp(params[i].name, "ORCPT") == 0) {
			if (!orcpt_valid(params[i].value))
				return "501 5.5.4 Error: Bad ORCPT parameter syntax";
			free(pr->orcpt);
			pr->orcpt = xstrdup(params[i].value);
		} else {
			snprintf(buf, blen, "555 5.5.4 Unsupported option: %s",
				 params[i].name);
			return buf;
		}
	}
	return NULL;
}

static void cmd_rcpt(struct smtp_session *s, char *arg)
{
	struct esmtp_param params[MAX_ESMTP_PARAMS];
	struct pending_rcpt *pr;
	char buf[128], deflt[600];
	const char *err;
	char *addr;
	int n = 0;

	if (!s->txn.active) {
		smtp_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (smtp_parse_path(arg, "TO", s->lim.strict_rfc821_envelopes, &addr,
			    params, &n, MAX_ESMTP_PARAMS) < 0) {
		smtp_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (*addr == 0 || !smtp_address_valid(addr, s->txn.env.smtputf8)) {
		for (const char *p = addr; *p; p++)
			if ((unsigned char)*p >= 0x80 && !s->txn.env.smtputf8) {
				smtp_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
				return;
			}
		smtp_reply(s, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	if (s->txn.env.nrcpt >= s->lim.recipient_limit) {
		smtp_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if ((pr = calloc(1, sizeof *pr)) == NULL)
		msg_fatal("out of memory");
	pr->addr = xstrdup(addr);
	if ((err = rcpt_params(params, n, pr, buf, sizeof buf)) != NULL) {
		smtp_reply(s, "%s", err);
	} else if (smtp_address_routes(addr, false)) {
		snprintf(deflt, sizeof deflt,
			 "<%s>: Recipient address rejected: sender-specified routing is not allowed",
			 addr);
		s->txn.cur_rcpt = pr->addr;     /* to=<> names this recipient */
		smtp_log_reject(s, "reject", "RCPT", 550, "5.7.1", deflt);
		s->txn.cur_rcpt = NULL;
		smtp_reply(s, "550 5.7.1 %s", deflt);
	} else {
		s->txn.cur_rcpt = pr->addr;
		s->txn.cur_rcpt_ctx = pr;
		filter_clear_reply(s);
		smtp_pause_input(s);
		filter_run_stage(s, FS_RCPT, rcpt_done);
		return;
	}
	free(pr->addr);
	free(pr->orcpt);
	free(pr);
}

/* ---- DATA and BDAT ---------------------------------------------------------- */

static const char *data_sequence_error(struct smtp_session *s)
{
	if (!s->txn.active)
		return "503 5.5.1 Error: need MAIL command";
	if (s->txn.env.nrcpt == 0)
		return "503 5.5.1 Error: need RCPT command";
	return NULL;
}

/* The first BDAT was refused (filter, queue file): its chunk follows the
 * command, so consume it and reply then (smtp_data.c), as for any chunk
 * of a failed message; later chunks get the same reply, and BDAT LAST
 * ends the transaction.  Never parse the chunk as commands. */
static void bdat_refuse(struct smtp_session *s, int code, const char *dsn,
			const char *text)
{
	if (!s->txn.content_error) {
		s->txn.content_error = true;
		s->txn.content_err_code = code;
		snprintf(s->txn.content_err_text, sizeof s->txn.content_err_text,
			 "%s %s", dsn, text);
	}
	s->content.skip = true;
	s->state = SS_BDAT;
	smtp_resume_input(s);
}

static void data_done(struct smtp_session *s, int verdict)
{
	int code;
	const char *dsn, *text;

	if (s->txn.bdat_used && smtp_verdict_reply(s, verdict, &code, &dsn, &text,
			"<DATA>: Data command rejected: Access denied")) {
		smtp_log_reject(s, "reject", "DATA", code, dsn, text);
		bdat_refuse(s, code, dsn, text);
		return;
	}
	if (filter_rejected(s, verdict, "DATA",
			    "<DATA>: Data command rejected: Access denied")) {
		smtp_resume_input(s);
		return;
	}
	if (smtp_data_begin(s) < 0) {
		if (s->txn.bdat_used) {
			bdat_refuse(s, 451, "4.3.0", "Error: queue file write error");
			return;
		}
		smtp_reply(s, "451 4.3.0 Error: queue file write error");
		smtp_txn_reset(s, true);
		smtp_resume_input(s);
		return;
	}
	if (s->txn.bdat_used) {
		s->state = SS_BDAT;
	} else {
		smtp_reply_raw(s, "354 End data with <CR><LF>.<CR><LF>");
		s->state = SS_DATA;
	}
	smtp_resume_input(s);
}

static void cmd_data(struct smtp_session *s, char *arg)
{
	const char *err = data_sequence_error(s);

	if (*arg) {
		smtp_reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (err) {
		smtp_reply(s, "%s", err);
		return;
	}
	if (s->txn.bdat_used) {
		/* RFC 3030 2: DATA after BDAT in one transaction is a 503. */
		smtp_reply(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	filter_clear_reply(s);
	smtp_pause_input(s);
	filter_run_stage(s, FS_DATA, data_done);
}

static int parse_bdat(char *arg, long long *size, bool *last)
{
	char *end;

	if (!isdigit((unsigned char)*arg))
		return -1;
	errno = 0;
	*size = strtoll(arg, &end, 10);
	if (errno || *size < 0)
		return -1;
	while (*end == ' ')
		end++;
	*last = false;
	if (strcasecmp(end, "LAST") == 0)
		*last = true;
	else if (*end)
		return -1;
	return 0;
}

static void cmd_bdat(struct smtp_session *s, char *arg)
{
	const char *err = data_sequence_error(s);
	long long size;
	bool last;

	if (parse_bdat(arg, &size, &last) < 0) {
		/* The chunk's length is unknown: the stream cannot be resynchronised. */
		smtp_reply_close(s, "501 5.5.4 Syntax: BDAT count [LAST]");
		return;
	}
	s->bdat_remaining = size;
	s->bdat_last = last;
	if (err || s->txn.content_error) {
		/* Consume the chunk, then reply (smtp_data.c). */
		if (err) {
			s->txn.content_error = true;
			s->txn.content_err_code = 503;
			snprintf(s->txn.content_err_text,
				 sizeof s->txn.content_err_text, "%s", err + 4);
		}
		s->state = SS_BDAT;
		s->content.skip = true;
		return;
	}
	if (s->txn.bdat_used) {
		s->state = SS_BDAT;
		return;
	}
	s->txn.bdat_used = true;
	filter_clear_reply(s);
	smtp_pause_input(s);
	filter_run_stage(s, FS_DATA, data_done);
}

/* ---- the rest ------------------------------------------------------------------ */

static void cmd_rset(struct smtp_session *s, char *arg)
{
	if (*arg) {
		smtp_reply(s, "501 5.5.4 Syntax: RSET");
		return;
	}
	junk_command(s);
	smtp_txn_reset(s, true);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(struct smtp_session *s, char *arg)
{
	junk_command(s);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void cmd_quit(struct smtp_session *s, char *arg)
{
	smtp_reply_close(s, "221 2.0.0 Bye");
}

static void cmd_vrfy(struct smtp_session *s, char *arg)
{
	junk_command(s);
	if (s->lim.disable_vrfy) {
		smtp_reply(s, "502 5.5.1 VRFY command is disabled");
		return;
	}
	while (*arg == ' ')
		arg++;
	if (*arg == 0) {
		smtp_reply(s, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	/* Without recipient maps nothing can be verified: 252 as RFC 5321 says. */
	smtp_reply(s, "252 2.0.0 %s", arg);
}

static void cmd_help(struct smtp_session *s, char *arg)
{
	smtp_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP");
}

static void cmd_helo(struct smtp_session *s, char *arg)
{
	cmd_helo_ehlo(s, arg, false);
}

static void cmd_ehlo(struct smtp_session *s, char *arg)
{
	cmd_helo_ehlo(s, arg, true);
}

static const struct smtp_command {
	const char *name;
	enum smtp_cmd_id id;
	void (*fn)(struct smtp_session *, char *);
	bool allowed_when_rejected;    /* after a connect-stage reject */
} command_table[] = {
	{ "HELO", CMD_HELO, cmd_helo, false },
	{ "EHLO", CMD_EHLO, cmd_ehlo, false },
	{ "MAIL", CMD_MAIL, cmd_mail, false },
	{ "RCPT", CMD_RCPT, cmd_rcpt, false },
	{ "DATA", CMD_DATA, cmd_data, false },
	{ "BDAT", CMD_BDAT, cmd_bdat, false },
	{ "RSET", CMD_RSET, cmd_rset, true },
	{ "NOOP", CMD_NOOP, cmd_noop, true },
	{ "QUIT", CMD_QUIT, cmd_quit, true },
	{ "VRFY", CMD_VRFY, cmd_vrfy, false },
	{ "HELP", CMD_HELP, cmd_help, true },
	{ NULL, CMD_UNKNOWN, NULL, false }
};

/* MAIL FROM: and RCPT TO: carry their keyword after the verb; everything
 * else is "VERB args". */
static const struct smtp_command *lookup_command(char *line, char **arg)
{
	size_t n = strcspn(line, " ");

	for (const struct smtp_command *c = command_table; c->name; c++) {
		if (n == 4 && strncasecmp(line, c->name, 4) == 0) {
			*arg = line + n;
			if (**arg == ' ')
				(*arg)++;
			return c;
		}
	}
	return NULL;
}

void smtp_command(struct smtp_session *s, char *line, size_t len)
{
	const struct smtp_command *c;
	char *arg;

	if (memchr(line, 0, len) != NULL || len == 0) {
		s->cur_cmd = CMD__COUNT;    /* not a command: no "unknown=" count */
		smtp_reply(s, "500 5.5.2 Error: bad syntax");
		return;
	}
	c = lookup_command(line, &arg);
	if (c == NULL) {
		s->cur_cmd = CMD_UNKNOWN;
		s->cmd_count[CMD_UNKNOWN]++;
		s->cmd_total++;
		smtp_set_last_command(s, "UNKNOWN");
		smtp_reply(s, "502 5.5.2 Error: command not recognized");
		return;
	}
	s->cur_cmd = c->id;
	s->cmd_count[c->id]++;
	s->cmd_total++;
	smtp_set_last_command(s, c->name);
	if (s->reject_all && !c->allowed_when_rejected) {
		smtp_reply(s, "%s", s->reject_all_reply);
		return;
	}
	c->fn(s, arg);
}
