/*
 * smtp_commands.c - the SMTP command handlers: HELO, EHLO, MAIL, RCPT,
 * DATA, BDAT, RSET, NOOP, QUIT, VRFY, HELP, and the error replies for
 * everything else (after the milters heard of an unknown command:
 * SMFIC_UNKNOWN, milter.h).
 *
 * Replies and enhanced status codes are Postfix's, so that clients,
 * monitoring and admins see what they know.  Each stage that filters care
 * about (HELO, MAIL, RCPT, DATA) asks the filter chain and replies from its
 * continuation, so a filter that waits suspends only this session.
 *
 * Promises: no command is accepted out of sequence (503, or Postfix's
 * "554 5.5.1 Error: no valid recipients" for DATA/BDAT in a transaction
 * without recipients), a transaction never holds more than
 * smtpd_recipient_limit recipients, a declared SIZE over
 * message_size_limit or beyond the queue's free space is refused up
 * front, and an address whose domain does not resolve to a valid host
 * name or address literal gets Postfix's 501 5.1.7 / 5.1.3
 * (smtp_envelope.c).  Sender-specified routing (user%host@x, host!user@x,
 * "user@host"@x) is not refused here: as in Postfix the restrictions
 * decide, and they never count it as a local or relay destination for
 * an untrusted client (restriction_recipient.c).
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
#include "mymalloc.h"
#include "milter.h"
#include "plugins/sluice_plugin.h"
#include "qmgr_trigger.h"
#include "queue.h"
#include "restriction_int.h"
#include "smtp_anvil.h"
#include "smtp_auth.h"
#include "smtp_proto.h"
#include "tls_server.h"

#define MAX_ESMTP_PARAMS 10

/* ---- helpers ------------------------------------------------------------ */

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

/* Reply to a filter's reject/defer and log it.  Returns true if it did.
 * A 421 (an access table's "421 text") ends the session after the
 * reply, as Postfix's smtpd hangs up after any 421. */
static bool filter_rejected(struct smtp_session *s, int verdict,
			    const char *stage, const char *default_text)
{
	int code;
	const char *dsn, *text;

	if (!smtp_verdict_reply(s, verdict, &code, &dsn, &text, default_text))
		return false;
	smtp_log_reject(s, "reject", stage, code, dsn, text);
	if (code == 421)
		smtp_reply_close(s, "%d %s %s", code, dsn, text);
	else
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
	for (int i = 0; i < t->nprepend; i++)
		free(t->prepend[i]);
	free(t->prepend);
	free(t->redirect);
	for (int i = 0; i < t->nbcc; i++)
		free(t->bcc[i]);
	free(t->bcc);
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
		s->hold_all_reason = s->txn.hold_reason ? mystrdup(s->txn.hold_reason)
			: NULL;
	}
}

/* A new transaction inherits the session's decisions. */
static void apply_session_decisions(struct smtp_session *s)
{
	s->txn.discard |= s->discard_all;
	if (s->hold_all && !s->txn.hold) {
		s->txn.hold = true;
		s->txn.hold_reason = s->hold_all_reason ? mystrdup(s->hold_all_reason)
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

/* Postfix's warning for an address it refuses before any restriction:
 * the address as parsed (in <>), or the raw "FROM:..." argument. */
static void illegal_address(struct smtp_session *s, const char *cmd,
			    const char *addr)
{
	const char *colon = strchr(addr, ':');

	if ((strncasecmp(addr, "FROM:", 5) == 0 || strncasecmp(addr, "TO:", 3) == 0)
	    && colon != NULL)
		msg_warn("Illegal address syntax from %s in %s command: %.200s",
			 smtp_client_id(s), cmd, colon + 1 + strspn(colon + 1, " "));
	else
		msg_warn("Illegal address syntax from %s in %s command: <%.200s>",
			 smtp_client_id(s), cmd, addr);
}

/* ---- HELO / EHLO ------------------------------------------------------------ */

bool smtp_ehlo_keyword_discarded(const struct smtp_session *s, const char *kw)
{
	char **list;
	bool hit = false;

	/* the default, empty: nothing to split (asked ~10 times per EHLO) */
	if (*cfg_str(s->cfg, "smtpd_discard_ehlo_keywords") == 0)
		return false;
	list = cfg_list(s->cfg, "smtpd_discard_ehlo_keywords");
	for (int i = 0; list[i] && !hit; i++)
		hit = strcasecmp(list[i], kw) == 0;
	cfg_list_free(list);
	return hit;
}

static void ehlo_reply(struct smtp_session *s)
{
	const char *kw[12];
	char size[40], mbuf[600];
	const char *mrej = milter_other_event(s, mbuf, sizeof mbuf);
	int n = 0;

	/* Postfix: after a milter's 5xx at connect or HELO, EHLO announces
	 * ENHANCEDSTATUSCODES only */
	if (mrej && mrej[0] == '5') {
		s->pipelining_offered = false;
		smtp_reply_raw(s, "250-%s", smtp_hostname(s));
		smtp_reply_raw(s, "250 ENHANCEDSTATUSCODES");
		return;
	}

	snprintf(size, sizeof size, "SIZE %lld", s->lim.message_size_limit);
	s->pipelining_offered = !smtp_ehlo_keyword_discarded(s, "PIPELINING");
	if (s->pipelining_offered)
		kw[n++] = "PIPELINING";
	if (!smtp_ehlo_keyword_discarded(s, "SIZE"))
		kw[n++] = s->lim.message_size_limit ? size : "SIZE";
	if (!s->lim.disable_vrfy && !smtp_ehlo_keyword_discarded(s, "VRFY"))
		kw[n++] = "VRFY";
	if (smtp_starttls_offered(s) && !smtp_ehlo_keyword_discarded(s, "STARTTLS"))
		kw[n++] = "STARTTLS";
	smtp_auth_ehlo(s, kw, &n);      /* AUTH (and AUTH=) */
	if (!smtp_ehlo_keyword_discarded(s, "ENHANCEDSTATUSCODES"))
		kw[n++] = "ENHANCEDSTATUSCODES";
	if (!smtp_ehlo_keyword_discarded(s, "8BITMIME"))
		kw[n++] = "8BITMIME";
	if (!smtp_ehlo_keyword_discarded(s, "DSN"))
		kw[n++] = "DSN";
	if (cfg_bool(s->cfg, "smtputf8_enable")
	    && !smtp_ehlo_keyword_discarded(s, "SMTPUTF8"))
		kw[n++] = "SMTPUTF8";
	if (!smtp_ehlo_keyword_discarded(s, "CHUNKING"))
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
		/* no enhanced status code before EHLO is done, as Postfix */
		smtp_reply(s, "501 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		return;
	}
	smtp_txn_reset(s, true);
	free(s->helo_name);
	s->helo_name = mystrdup(arg);
	s->esmtp = esmtp;
	s->pipelining_offered = false;
	filter_clear_reply(s);
	smtp_pause_input(s);
	filter_run_stage(s, FS_HELO, helo_done);
}

/* ---- MAIL ----------------------------------------------------------------- */

/* Postfix's reply to a parameter it does not take: the whole word. */
static const char *unsupported_option(const struct esmtp_param *p, char *buf,
				      size_t blen)
{
	snprintf(buf, blen, "555 5.5.4 Unsupported option: %.500s%s%.500s",
		 p->name, p->value ? "=" : "", p->value ? p->value : "");
	return buf;
}

/* Apply one MAIL parameter; returns NULL or an error reply (in buf for
 * an unsupported one).  As in Postfix, a keyword is only known with its
 * "=value" (SMTPUTF8: without one); a second RET or ENVID is bad syntax. */
static const char *mail_param(struct smtp_session *s, struct esmtp_param *p,
			      char *buf, size_t blen)
{
	struct queue_envelope *env = &s->txn.env;
	const char *v = p->value;
	char *end;

	if (v == NULL) {
		if (strcasecmp(p->name, "SMTPUTF8") != 0
		    || !cfg_bool(s->cfg, "smtputf8_enable"))
			return unsupported_option(p, buf, blen);
		env->smtputf8 = true;
	} else if (strcasecmp(p->name, "SIZE") == 0) {
		if (!isdigit((unsigned char)*v))
			return "501 5.5.4 Bad message size syntax";
		errno = 0;
		s->txn.declared_size = strtoll(v, &end, 10);
		if (*end || errno)
			return "501 5.5.4 Bad message size syntax";
		if (s->lim.message_size_limit > 0
		    && s->txn.declared_size > s->lim.message_size_limit)
			return "552 5.3.4 Message size exceeds fixed limit";
	} else if (strcasecmp(p->name, "BODY") == 0) {
		if (strcasecmp(v, "8BITMIME") == 0)
			env->body = BODY_8BITMIME;
		else if (strcasecmp(v, "7BIT") == 0)
			env->body = BODY_7BIT;
		else
			return unsupported_option(p, buf, blen);
	} else if (strcasecmp(p->name, "RET") == 0) {
		if (env->ret == DSN_RET_NONE && strcasecmp(v, "FULL") == 0)
			env->ret = DSN_RET_FULL;
		else if (env->ret == DSN_RET_NONE && strcasecmp(v, "HDRS") == 0)
			env->ret = DSN_RET_HDRS;
		else
			return "501 5.5.4 Bad RET parameter syntax";
	} else if (strcasecmp(p->name, "ENVID") == 0) {
		if (env->envid || !smtp_xtext_valid(v) || strlen(v) > 100)
			return "501 5.5.4 Bad ENVID parameter syntax";
		env->envid = mystrdup(v);
	} else if (strcasecmp(p->name, "AUTH") == 0) {
		/* RFC 4954: ignored unless the session is authenticated. */
		if (!smtp_xtext_valid(v))
			return "501 5.5.4 Bad AUTH parameter syntax";
		return smtp_auth_mail_param(s, v);
	} else {
		return unsupported_option(p, buf, blen);
	}
	return NULL;
}

/* SMTPUTF8 among the parameters (looked for before the address, which
 * it allows to be UTF-8). */
static bool mail_smtputf8(struct smtp_session *s, struct esmtp_param *params,
			  int n)
{
	for (int i = 0; i < n; i++)
		if (params[i].value == NULL && strcasecmp(params[i].name, "SMTPUTF8") == 0)
			return cfg_bool(s->cfg, "smtputf8_enable");
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

/* Postfix's order: sequence, command syntax, the address (501 5.1.7,
 * or 553 5.6.7 for UTF-8 without SMTPUTF8), then the parameters. */
static const char *mail_checks(struct smtp_session *s, char *arg,
			       char *buf, size_t blen)
{
	struct esmtp_param params[MAX_ESMTP_PARAMS];
	const char *err;
	char *addr;
	int n = 0, rc;
	bool utf8;

	if (s->lim.helo_required && s->helo_name == NULL)
		return "503 5.5.1 Error: send HELO/EHLO first";
	if (!s->txn.active)
		smtp_auth_mail_start(s);        /* AUTH= and the login */
	if (s->txn.active)
		return "503 5.5.1 Error: nested MAIL command";
	rc = smtp_parse_path(arg, "FROM", s->lim.strict_rfc821_envelopes, &addr,
			     params, &n, MAX_ESMTP_PARAMS);
	if (rc == SMTP_PATH_ADDRESS) {
		illegal_address(s, "MAIL", arg);
		return "501 5.1.7 Bad sender address syntax";
	}
	if (rc < 0)
		return "501 5.5.4 Syntax: MAIL FROM:<address>";
	utf8 = mail_smtputf8(s, params, n);
	/* good syntax but for its UTF-8: Postfix's 553 (bad syntax: 501) */
	if (!utf8 && smtp_address_valid(addr, true) && !smtp_address_valid(addr, false))
		return "553 5.6.7 Must declare SMTPUTF8 to send unicode address";
	if ((err = smtp_address_check(s->cfg, addr, true,
				      s->lim.strict_rfc821_envelopes, utf8)) != NULL) {
		illegal_address(s, "MAIL", addr);
		return err;
	}
	for (int i = 0; i < n; i++)
		if ((err = mail_param(s, &params[i], buf, blen)) != NULL)
			return err;
	if (!queue_space_ok(smtp_queue_dir(s),
			    s->txn.declared_size, cfg_size(s->cfg, "queue_minfree")))
		return "452 4.3.1 Insufficient system storage";
	s->txn.env.sender = mystrdup(addr);
	milter_note_params(s, false, params, n);    /* SMFIC_MAIL's, as sent */
	return NULL;
}

static int open_queue_file(struct smtp_session *s);

static void cmd_mail(struct smtp_session *s, char *arg)
{
	char unsupported[1100];
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
	if (smtp_anvil_over(s, ANVIL_EV_MAIL)) {   /* _message_rate_limit */
		txn_free_envelope(&s->txn);
		smtp_reply(s, "452 4.3.2 Too much mail from %s", s->client_addr);
		return;
	}
	/* smtpd_delay_open_until_valid_rcpt = no: the queue file (and the
	 * queue ID, the milters' i macro) from MAIL on, as Postfix */
	if (!cfg_bool(s->cfg, "smtpd_delay_open_until_valid_rcpt")
	    && open_queue_file(s) < 0) {
		txn_free_envelope(&s->txn);
		smtp_reply(s, "451 4.3.0 Error: queue file write error");
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
	r->addr = mystrdup(addr);
	r->orcpt = orcpt ? mystrdup(orcpt) : NULL;
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
	msg_info("%s: client=%s%s", s->queue_id, smtp_client_id(s),
		 smtp_auth_log_fields(s));
	return 0;
}

/* addr is the external form (queued as sent), name Postfix's internal
 * form, which the restrictions look up and show in replies. */
struct pending_rcpt {
	char *addr; char *name; char *orcpt; int notify;
	int verdict; char *rej_reply;  /* while milters hear of a reject */
};

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
		 "<%s>: Recipient address rejected: Access denied", pr->name);
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

static void rcpt_complete(struct smtp_session *s, int verdict)
{
	struct pending_rcpt *pr = (struct pending_rcpt *)s->txn.cur_rcpt_ctx;

	rcpt_finish(s, pr, verdict);   /* logs with to=<cur_rcpt> */
	s->txn.cur_rcpt = NULL;
	s->txn.cur_rcpt_ctx = NULL;
	free(pr->addr);
	free(pr->name);
	free(pr->orcpt);
	free(pr->rej_reply);
	free(pr);
	smtp_resume_input(s);
}

/* The milters that asked for rejected recipients have heard of it. */
static void rcpt_rej_done(struct smtp_session *s, int unused)
{
	rcpt_complete(s, ((struct pending_rcpt *)s->txn.cur_rcpt_ctx)->verdict);
}

/* A recipient the restrictions (not a milter) refused goes to the
 * milters that negotiated SMFIP_RCPT_REJ first, as in Postfix. */
static void rcpt_done(struct smtp_session *s, int verdict)
{
	struct pending_rcpt *pr = (struct pending_rcpt *)s->txn.cur_rcpt_ctx;
	const char *dsn, *text;
	char deflt[600];
	int code;

	snprintf(deflt, sizeof deflt,
		 "<%s>: Recipient address rejected: Access denied", pr->name);
	if (!filter_reply_by_milter(s) && milter_wants_rcpt_rej(s)
	    && smtp_verdict_reply(s, verdict, &code, &dsn, &text, deflt)
	    && !(verdict == SLUICE_REJECT && s->txn.env.sender[0] == 0
		 && is_local_postmaster(s, pr->addr))) {
		pr->verdict = verdict;
		if (asprintf(&pr->rej_reply, "%d %s %s", code, dsn, text) < 0)
			msg_fatal("out of memory");
		milter_run_rcpt_rej(s, pr->rej_reply, rcpt_rej_done);
		return;
	}
	rcpt_complete(s, verdict);
}

/* NOTIFY= and ORCPT=, once each (a second one is bad syntax, as in
 * Postfix); anything else is an unsupported option. */
static const char *rcpt_params(struct esmtp_param *params, int n,
			       struct pending_rcpt *pr, char *buf, size_t blen)
{
	for (int i = 0; i < n; i++) {
		if (params[i].value == NULL) {
			return unsupported_option(&params[i], buf, blen);
		} else if (strcasecmp(params[i].name, "NOTIFY") == 0) {
			if (pr->notify != 0
			    || (pr->notify = parse_notify(params[i].value)) < 0)
				return "501 5.5.4 Error: Bad NOTIFY parameter syntax";
		} else if (strcasecmp(params[i].name, "ORCPT") == 0) {
			if (pr->orcpt || !orcpt_valid(params[i].value))
				return "501 5.5.4 Error: Bad ORCPT parameter syntax";
			pr->orcpt = mystrdup(params[i].value);
		} else {
			return unsupported_option(&params[i], buf, blen);
		}
	}
	return NULL;
}

static void cmd_rcpt(struct smtp_session *s, char *arg)
{
	struct esmtp_param params[MAX_ESMTP_PARAMS];
	struct pending_rcpt *pr;
	char buf[1100];
	const char *err;
	char *addr;
	int n = 0, rc;

	if (!s->txn.active) {
		smtp_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->txn.bdat_used) {
		smtp_reply(s, "503 5.5.1 Error: RCPT after BDAT");
		return;
	}
	rc = smtp_parse_path(arg, "TO", s->lim.strict_rfc821_envelopes, &addr,
			     params, &n, MAX_ESMTP_PARAMS);
	if (rc == SMTP_PATH_ADDRESS) {
		illegal_address(s, "RCPT", arg);
		smtp_reply(s, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	if (rc < 0) {
		smtp_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (!s->txn.env.smtputf8 && smtp_address_valid(addr, true)
	    && !smtp_address_valid(addr, false)) {
		smtp_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
		return;
	}
	if ((err = smtp_address_check(s->cfg, addr, false, s->lim.strict_rfc821_envelopes,
				      s->txn.env.smtputf8)) != NULL) {
		illegal_address(s, "RCPT", addr);
		smtp_reply(s, "%s", err);
		return;
	}
	if (s->txn.env.nrcpt >= s->lim.recipient_limit) {
		smtp_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (smtp_anvil_over(s, ANVIL_EV_RCPT)) {   /* _recipient_rate_limit */
		smtp_reply(s, "452 4.3.2 Too many recipients from %s", s->client_addr);
		return;
	}
	if ((pr = calloc(1, sizeof *pr)) == NULL)
		msg_fatal("out of memory");
	pr->addr = mystrdup(addr);
	pr->name = mystrdup(addr);
	if (!smtp_address_internal(addr, pr->name, strlen(addr) + 1))
		strcpy(pr->name, addr);
	if ((err = rcpt_params(params, n, pr, buf, sizeof buf)) != NULL) {
		smtp_reply(s, "%s", err);
	} else {
		milter_note_params(s, true, params, n);
		s->txn.cur_rcpt = pr->name;
		s->txn.cur_rcpt_ctx = pr;
		filter_clear_reply(s);
		smtp_pause_input(s);
		filter_run_stage(s, FS_RCPT, rcpt_done);
		return;
	}
	free(pr->addr);
	free(pr->name);
	free(pr->orcpt);
	free(pr);
}

/* ---- DATA and BDAT ---------------------------------------------------------- */

/* Postfix's replies to DATA or BDAT without an accepted recipient:
 * outside a transaction a protocol error, inside one (every RCPT refused,
 * perhaps pipelined) "no valid recipients". */
static const char *data_sequence_error(struct smtp_session *s)
{
	if (!s->txn.active)
		return "503 5.5.1 Error: need RCPT command";
	if (s->txn.env.nrcpt == 0)
		return "554 5.5.1 Error: no valid recipients";
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

	if (s->txn.bdat_used) {
		/* RFC 3030 2: DATA after BDAT in one transaction is a 503. */
		smtp_reply(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	/* Postfix: the recipients first, then the syntax */
	if (err) {
		smtp_reply(s, "%s", err);
		return;
	}
	if (*arg) {
		smtp_reply(s, "501 5.5.4 Syntax: DATA");
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
		/* Consume the chunk, then reply (smtp_data.c).  Outside a
		 * transaction the 503 leaves nothing behind; in one, the
		 * transaction is a failed BDAT message from here on, as after
		 * any failed chunk: Postfix answers each further chunk "551
		 * 5.0.0 Discarded N bytes after earlier error" and forgets
		 * the transaction with the LAST one. */
		if (s->txn.content_error) {
			s->txn.content_err_code = 551;
			snprintf(s->txn.content_err_text,
				 sizeof s->txn.content_err_text,
				 "5.0.0 Discarded %lld bytes after earlier error", size);
		} else {
			s->txn.content_error = true;
			s->txn.content_err_code = atoi(err);
			snprintf(s->txn.content_err_text,
				 sizeof s->txn.content_err_text, "%s", err + 4);
			s->txn.bdat_used = s->txn.active;
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

/* VRFY's argument as Postfix reads it: an address, in <> or not, then
 * perhaps SMTPUTF8; the other words are part of the address.  The
 * SMTPUTF8 word is cut off arg (which the reply echoes). */
static bool vrfy_address_ok(struct smtp_session *s, char *arg)
{
	char buf[1024], *addr = buf, *last;
	size_t n = strlen(arg);

	while (n > 0 && arg[n - 1] == ' ')
		arg[--n] = 0;
	last = strrchr(arg, ' ');
	if (last && strcasecmp(last + 1, "SMTPUTF8") == 0
	    && cfg_bool(s->cfg, "smtputf8_enable")) {
		while (last > arg && last[-1] == ' ')
			last--;
		*last = 0;
	}
	if ((n = strlen(arg)) >= sizeof buf)
		return false;
	strcpy(buf, arg);
	if (n >= 2 && buf[0] == '<' && buf[n - 1] == '>') {
		buf[n - 1] = 0;
		addr++;
	}
	return *addr && smtp_address_valid(addr, true)
		&& smtp_address_resolvable(s->cfg, addr, true);
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
		smtp_reply(s, "501 5.5.4 Syntax: VRFY address%s",
			   cfg_bool(s->cfg, "smtputf8_enable") ? " [SMTPUTF8]" : "");
		return;
	}
	if (!vrfy_address_ok(s, arg)) {
		illegal_address(s, "VRFY", arg);
		smtp_reply(s, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	/* No recipient table is asked (Postfix asks them): 252, as RFC 5321
	 * allows for an address that is not verified. */
	smtp_reply(s, "252 2.0.0 %s", arg);
}

/* ETRN domain (RFC 1985): smtpd_etrn_restrictions, then, for a domain in
 * fast_flush_domains, a flush.  sluice has no per-site fast flush
 * logs: the whole deferred queue is retried.  The domain is a host name
 * or an address literal, after an optional '@' or '#'; Postfix's ETRN
 * replies carry no enhanced status codes. */

/* Is the ETRN domain one fast_flush_domains serves?  Names match
 * themselves and their subdomains (as parent_domain_matches_subdomains
 * has it for fast_flush_domains by default), ".name" only subdomains. */
static bool flush_domain(struct smtp_session *s, const char *domain)
{
	char **list = cfg_list(s->cfg, "fast_flush_domains");
	size_t dl = strlen(domain);
	bool hit = false;

	for (int i = 0; list && list[i] && !hit; i++) {
		const char *d = list[i] + (list[i][0] == '.');
		size_t n = strlen(d);

		hit = (list[i][0] != '.' && strcasecmp(d, domain) == 0)
			|| (dl > n && domain[dl - n - 1] == '.'
			    && strcasecmp(domain + dl - n, d) == 0);
	}
	cfg_list_free(list);
	return hit;
}

static void etrn_done(struct smtp_session *s, int verdict)
{
	const char *domain = rcheck_etrn_domain(rcheck_of(s));
	char deflt[600];

	snprintf(deflt, sizeof deflt, "<%s>: Etrn command rejected: Access denied",
		 domain);
	if (filter_rejected(s, verdict, "ETRN", deflt)) {
		/* replied */
	} else if (!flush_domain(s, domain)) {
		msg_info("reject: ETRN %.100s... from %s", domain, smtp_client_id(s));
		smtp_reply(s, "459 <%s>: service unavailable", domain);
	} else {
		(void)qmgr_trigger_send(smtp_queue_dir(s), QMGR_REQ_SCAN_ALL);
		smtp_reply(s, "250 Queuing started");
	}
	filter_clear_reply(s);
	smtp_resume_input(s);
}

static void cmd_etrn(struct smtp_session *s, char *arg)
{
	junk_command(s);
	while (*arg == ' ')
		arg++;
	if (s->lim.helo_required && s->helo_name == NULL) {
		smtp_reply(s, "503 Error: send HELO/EHLO first");
		return;
	}
	if (s->txn.active) {
		smtp_reply(s, "503 Error: MAIL transaction in progress");
		return;
	}
	if (*arg == 0 || strchr(arg, ' ') != NULL) {
		smtp_reply(s, "500 Syntax: ETRN domain");
		return;
	}
	if (*arg == '@' || *arg == '#')
		arg++;
	if (!smtp_domain_valid(arg, false)) {
		smtp_reply(s, "501 Error: invalid parameter syntax");
		return;
	}
	rcheck_set_etrn_domain(rcheck_of(s), arg);
	filter_clear_reply(s);
	smtp_pause_input(s);
	rcheck_stage(s, RS_ETRN, etrn_done);
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
	{ "ETRN", CMD_ETRN, cmd_etrn, false },
	{ "AUTH", CMD_AUTH, smtp_auth_cmd, false },
	{ "HELP", CMD_HELP, cmd_help, true },
	{ "STARTTLS", CMD_STARTTLS, smtp_cmd_starttls, false },
	{ NULL, CMD_UNKNOWN, NULL, false }
};

/* Postfix's defence against other protocols spoken to the SMTP port (an
 * HTTP request a web page makes a browser send, a message header sent
 * as a command): a first word that is CONNECT, GET or POST, or that is a
 * header name and ':' - the session ends with a 221. */
static bool non_smtp_command(const char *line)
{
	static const char *const verbs[] = { "CONNECT", "GET", "POST", NULL };
	size_t n = strcspn(line, " "), name = strcspn(line, ":");

	for (int i = 0; verbs[i]; i++)
		if (n == strlen(verbs[i]) && strncasecmp(line, verbs[i], n) == 0)
			return true;
	if (name >= n)
		return false;                   /* no ':' in the first word */
	for (size_t i = 0; i < name; i++)
		if ((unsigned char)line[i] < 33 || (unsigned char)line[i] > 126)
			return false;
	return true;
}

/* MAIL FROM: and RCPT TO: carry their keyword after the verb; everything
 * else is "VERB args". */
static const struct smtp_command *lookup_command(char *line, char **arg)
{
	size_t n = strcspn(line, " ");

	for (const struct smtp_command *c = command_table; c->name; c++) {
		if (n == strlen(c->name) && strncasecmp(line, c->name, n) == 0) {
			*arg = line + n;
			if (**arg == ' ')
				(*arg)++;
			return c;
		}
	}
	return NULL;
}

/* The milters' answer to an unknown command: their reject or tempfail
 * replaces Postfix's "command not recognized" (logged "milter-reject:
 * UNKNOWN from ..."). */
static void unknown_done(struct smtp_session *s, int verdict)
{
	if (!filter_rejected(s, verdict, "UNKNOWN", "Error: command not recognized"))
		smtp_reply(s, "500 5.5.2 Error: command not recognized");
	filter_clear_reply(s);
	smtp_resume_input(s);
}

/* An unknown command goes to the milters (SMFIC_UNKNOWN, its first word,
 * as Postfix sends it) while the session waits. */
static void unknown_command(struct smtp_session *s, const char *line)
{
	char verb[256];

	if (s->reject_all || !milter_session_wanted(s)) {
		smtp_reply(s, "500 5.5.2 Error: command not recognized");
		return;
	}
	snprintf(verb, sizeof verb, "%.*s", (int)strcspn(line, " "), line);
	filter_clear_reply(s);
	smtp_pause_input(s);
	milter_run_unknown(s, verb, unknown_done);
}

/* After a milter's connect or HELO reject, AUTH and STARTTLS get its
 * reply (a 4xx as "454 4.3.0 Try again later"), as in Postfix. */
static bool milter_refuses(struct smtp_session *s, enum smtp_cmd_id id)
{
	char buf[600];
	const char *r;

	if (id != CMD_AUTH && id != CMD_STARTTLS)
		return false;
	if ((r = milter_other_event(s, buf, sizeof buf)) == NULL)
		return false;
	smtp_reply(s, "%s", r);
	return true;
}

void smtp_command(struct smtp_session *s, char *line, size_t len)
{
	const struct smtp_command *c;
	char *arg;

	if (smtp_auth_busy(s)) {             /* a response to a 334 */
		smtp_auth_response(s, line);
		return;
	}
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
		if (non_smtp_command(line)) {
			msg_warn("non-SMTP command from %s: %.100s", smtp_client_id(s), line);
			smtp_reply_close(s, "221 2.7.0 Error: I can break rules, too. Goodbye.");
			return;
		}
		unknown_command(s, line);
		return;
	}
	s->cur_cmd = c->id;
	s->cmd_count[c->id]++;
	s->cmd_total++;
	smtp_set_last_command(s, c->name);
	if (s->reject_all && !c->allowed_when_rejected) {
		smtp_reply(s, "%s", s->reject_all_reply ? s->reject_all_reply
			   : "503 5.7.0 Error: access denied");
		return;
	}
	if (smtp_starttls_required(s, c->id))   /* smtpd_tls_security_level */
		return;
	if (milter_refuses(s, c->id))
		return;
	c->fn(s, arg);
}
