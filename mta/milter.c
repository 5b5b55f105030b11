/*
 * milter.c - the milters of one SMTP session: parsing smtpd_milters /
 * non_smtpd_milters (Postfix 3's forms: unix:/path, inet:host:port, or
 * "{ inet:host:port, connect_timeout=10s, command_timeout=10s,
 * content_timeout=300s, default_action=accept }"), opening one connection
 * per milter at connect, and asking each milter in order at every stage:
 * connect, helo, mail, rcpt, data, end of message (milter_edit.c),
 * abort and quit; and, outside the filter chain's stages, an unknown
 * command (SMFIC_UNKNOWN) and a recipient the restrictions rejected (to
 * milters that negotiated SMFIP_RCPT_REJ).
 *
 * Promises (see milter.h): `done` exactly once per stage, from the event
 * loop or before milter_run_stage() returns; the step flags (SMFIP_NO*)
 * and no-reply flags (SMFIP_NR_*) a milter negotiated are honoured; a
 * milter that accepted the session (or the message) is not asked again
 * until the session (the message) ends; a failed milter answers with its
 * default_action at every later stage of the session, as Postfix's do; a
 * milter's reject or tempfail at connect or HELO answers every later
 * MAIL, RCPT, DATA and unknown command of the session the same way,
 * while HELO/EHLO get their 250 (Postfix's MILTER8_STAT_REJECT_CON).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#include "config.h"
#include "diag.h"
#include "filter_chain.h"
#include "log.h"
#include "milter_int.h"
#include "plugins/sluice_plugin.h"
#include "smtp_proto.h"
#include "smtp_session.h"

static void free_words(char **w, int n)
{
	for (int i = 0; i < n; i++)
		free(w[i]);
	free(w);
}

/* ---- configuration ------------------------------------------------------ */

static int def_action_parse(const char *v, enum milter_def_action *a)
{
	if (!strcasecmp(v, "accept"))
		*a = MDA_ACCEPT;
	else if (!strcasecmp(v, "reject"))
		*a = MDA_REJECT;
	else if (!strcasecmp(v, "tempfail"))
		*a = MDA_TEMPFAIL;
	else if (!strcasecmp(v, "quarantine"))
		*a = MDA_QUARANTINE;
	else
		return -1;
	return 0;
}

/* One list item into mc.  NULL, or the problem. */
static const char *conf_item(const struct config *c, const char *item,
			     struct milter_conf *mc, char *err, size_t errlen)
{
	char *copy, *p, *tok, *save = NULL;
	const char *problem = NULL;
	bool first = true;

	memset(mc, 0, sizeof *mc);
	mc->conn_timeout = cfg_time(c, "milter_connect_timeout");
	mc->cmd_timeout = cfg_time(c, "milter_command_timeout");
	mc->content_timeout = cfg_time(c, "milter_content_timeout");
	mc->protocol = atoi(cfg_str(c, "milter_protocol"));
	if (mc->protocol < 2 || mc->protocol > 6 || mc->protocol == 5)
		mc->protocol = 6;
	if (def_action_parse(cfg_str(c, "milter_default_action"),
			     &mc->def_action) < 0)
		mc->def_action = MDA_TEMPFAIL;
	if ((copy = strdup(item)) == NULL)
		msg_fatal("milter: out of memory");
	p = config_trim(copy);
	if (*p != '{') {
		mc->name = strdup(p);
		p += strlen(p);         /* no options */
	} else if ((tok = strrchr(++p, '}')) == NULL) {
		free(copy);
		return "a \"{\" without its closing \"}\"";
	} else {
		*tok = 0;
	}
	for (tok = strtok_r(p, ",", &save); tok && !problem;
	     tok = strtok_r(NULL, ",", &save)) {
		char *kv = config_trim(tok), *eq = strchr(kv, '=');
		long long secs;

		if (first && mc->name == NULL) {
			first = false;
			mc->name = strdup(kv);
			continue;
		}
		if (eq == NULL) {
			snprintf(err, errlen, "\"%s\": expected name=value", kv);
			problem = err;
			break;
		}
		*eq = 0;
		{
			char *k = config_trim(kv), *v = config_trim(eq + 1);
			long long *t = !strcmp(k, "connect_timeout") ? &mc->conn_timeout
				: !strcmp(k, "command_timeout") ? &mc->cmd_timeout
				: !strcmp(k, "content_timeout") ? &mc->content_timeout
				: NULL;

			if (t) {
				if (parse_time(v, 's', &secs) < 0) {
					snprintf(err, errlen, "%s=%s: not a time", k, v);
					problem = err;
				} else {
					*t = secs;
				}
			} else if (!strcmp(k, "default_action")) {
				if (def_action_parse(v, &mc->def_action) < 0) {
					snprintf(err, errlen, "default_action=%s: expected "
						 "accept, reject, tempfail or quarantine", v);
					problem = err;
				}
			} else if (!strcmp(k, "protocol")) {
				mc->protocol = atoi(v);
				if (mc->protocol < 2 || mc->protocol > 6) {
					snprintf(err, errlen, "protocol=%s: expected 2 to 6", v);
					problem = err;
				}
			} else {
				snprintf(err, errlen, "unknown milter option \"%s\"", k);
				problem = err;
			}
		}
	}
	free(copy);
	if (!problem && (mc->name == NULL || *mc->name == 0))
		problem = "no milter address";
	if (!problem && strncmp(mc->name, "unix:", 5)
	    && strncmp(mc->name, "local:", 6) && strncmp(mc->name, "inet:", 5)
	    && strncmp(mc->name, "inet6:", 6)) {
		snprintf(err, errlen, "\"%s\": expected unix:/path or inet:host:port",
			 mc->name);
		problem = err;
	}
	return problem;
}

struct milter_conf *milter_conf_parse(const struct config *c,
				      const char *param, int *n)
{
	char **items = cfg_list(c, param);
	struct milter_conf *mc = NULL;
	char err[300];
	int k = 0, cap = 0;

	*n = 0;
	for (int i = 0; items && items[i]; i++) {
		const char *problem;

		if (k == cap) {
			cap = cap ? 2 * cap : 4;
			if ((mc = realloc(mc, cap * sizeof *mc)) == NULL)
				msg_fatal("milter: out of memory");
		}
		if ((problem = conf_item(c, items[i], &mc[k], err, sizeof err))) {
			msg_warn("%s: %s: %s; milter skipped", param, items[i], problem);
			free(mc[k].name);
			continue;
		}
		k++;
	}
	cfg_list_free(items);
	*n = k;
	if (k == 0) {
		free(mc);
		return NULL;
	}
	return mc;
}

void milter_conf_free(struct milter_conf *mc, int n)
{
	for (int i = 0; i < n; i++)
		free(mc[i].name);
	free(mc);
}

/* Has this "name=value" been checked already (main.cf, then each
 * listener, which mostly repeats it)?  Remembers it otherwise. */
static bool seen_before(char ***seen, int *n, const char *name,
			const char *value)
{
	char *key;

	if (asprintf(&key, "%s=%s", name, value) < 0)
		msg_fatal("milter: out of memory");
	for (int i = 0; i < *n; i++)
		if (!strcmp((*seen)[i], key)) {
			free(key);
			return true;
		}
	if ((*seen = realloc(*seen, (*n + 1) * sizeof **seen)) == NULL)
		msg_fatal("milter: out of memory");
	(*seen)[(*n)++] = key;
	return false;
}

static void check_lists(struct diag *d, const struct config *c,
			const char *main_path, const char *param)
{
	char **items = cfg_list(c, param);
	const char *file;
	int line = 0;

	for (int i = 0; items && items[i]; i++) {
		struct milter_conf mc;
		char err[300];
		const char *problem = conf_item(c, items[i], &mc, err, sizeof err);

		free(mc.name);
		if (problem == NULL)
			continue;
		file = cfg_where(c, param, &line);
		diag_add(d, DIAG_ERROR, file ? file : main_path, line,
			 "%s: %s: %s; see docs/milter.md", param, items[i], problem);
	}
	cfg_list_free(items);
}

/* One configuration's milter parameters into d. */
static void check_one(struct diag *d, const struct config *c,
		      const char *main_path, char ***seen, int *nseen)
{
	enum milter_def_action a;
	const char *file, *v;
	int line = 0, proto;

	if (!seen_before(seen, nseen, "smtpd_milters", cfg_str(c, "smtpd_milters")))
		check_lists(d, c, main_path, "smtpd_milters");
	if (!seen_before(seen, nseen, "non_smtpd_milters",
			 cfg_str(c, "non_smtpd_milters")))
		check_lists(d, c, main_path, "non_smtpd_milters");
	v = cfg_str(c, "milter_default_action");
	if (!seen_before(seen, nseen, "milter_default_action", v)
	    && def_action_parse(v, &a) < 0) {
		file = cfg_where(c, "milter_default_action", &line);
		diag_add(d, DIAG_ERROR, file ? file : main_path, line,
			 "milter_default_action = %s: expected accept, reject, "
			 "tempfail or quarantine", v);
	}
	v = cfg_str(c, "milter_protocol");
	proto = atoi(v);
	if (!seen_before(seen, nseen, "milter_protocol", v)
	    && (proto < 2 || proto > 6 || proto == 5
		|| strspn(v, "0123456789") != strlen(v))) {
		file = cfg_where(c, "milter_protocol", &line);
		diag_add(d, DIAG_ERROR, file ? file : main_path, line,
			 "milter_protocol = %s: expected 2, 3, 4 or 6", v);
	}
}

void milter_check(struct diag *d, const struct sluice_config *sc,
		  const char *main_path)
{
	char **seen = NULL;
	int nseen = 0;

	check_one(d, sc->main, main_path, &seen, &nseen);
	for (int i = 0; i < sc->nlisteners; i++)
		check_one(d, sc->listeners[i].cfg, main_path, &seen, &nseen);
	for (int i = 0; i < nseen; i++)
		free(seen[i]);
	free(seen);
}

const char *milter_conf_problem(const struct config *c, char *buf,
				unsigned len)
{
	static const char *const params[] = { "smtpd_milters", "non_smtpd_milters" };

	for (int p = 0; p < 2; p++) {
		char **items = cfg_list(c, params[p]);

		for (int i = 0; items && items[i]; i++) {
			struct milter_conf mc;
			char err[300];
			const char *problem = conf_item(c, items[i], &mc, err, sizeof err);

			free(mc.name);
			if (problem) {
				snprintf(buf, len, "%s: %s: %s", params[p], items[i], problem);
				cfg_list_free(items);
				return buf;
			}
		}
		cfg_list_free(items);
	}
	return "";
}

/* ---- the session's milters -------------------------------------------- */

/* smtpd_milters for SMTP sessions; non_smtpd_milters for the sessions
 * pickup makes for local submissions (no listener). */
static const char *list_param(const struct smtp_session *s)
{
	return s->listener ? "smtpd_milters" : "non_smtpd_milters";
}

bool milter_session_wanted(const struct smtp_session *s)
{
	return s->cfg && *cfg_str(s->cfg, list_param(s));
}

static struct milter_session *session_new(struct smtp_session *s)
{
	struct milter_session *ms = calloc(1, sizeof *ms);

	if (ms == NULL)
		msg_fatal("milter: out of memory");
	ms->s = s;
	ms->conf = milter_conf_parse(s->cfg, list_param(s), &ms->n);
	if (ms->n && (ms->m = calloc(ms->n, sizeof *ms->m)) == NULL)
		msg_fatal("milter: out of memory");
	for (int i = 0; i < ms->n; i++)
		ms->m[i] = milter8_create(&ms->conf[i], s->base);
	return ms;
}

void milter_session_free(struct milter_session *ms)
{
	if (ms == NULL)
		return;
	for (int i = 0; i < ms->n; i++)
		milter8_free(ms->m[i]);
	free(ms->m);
	milter_conf_free(ms->conf, ms->n);
	free_words(ms->mail_args, ms->nmail_args);
	free_words(ms->rcpt_args, ms->nrcpt_args);
	free(ms->unknown_cmd);
	if (ms->new_body)
		evbuffer_free(ms->new_body);
	if (ms->repl)
		evbuffer_free(ms->repl);
	free(ms->chunk);
	free(ms);
}

void milter_abort(struct milter_session *ms)
{
	if (ms == NULL)
		return;
	/* the last message's replaced body is not the next one's */
	ms->body_replaced = false;
	if (ms->new_body) {
		evbuffer_free(ms->new_body);
		ms->new_body = NULL;
	}
	for (int i = 0; i < ms->n; i++) {
		struct milter8 *m = ms->m[i];

		if (m->in_message && m->state == M8_READY)
			milter8_send(m, SMFIC_ABORT, NULL, 0);
		m->in_message = false;
		if (m->state == M8_ACCEPT_MSG)
			m->state = M8_READY;
	}
}

/* ---- stages --------------------------------------------------------------- */

static const char *const stage_log_names[] = {
	"CONNECT", "HELO", "MAIL", "RCPT", "DATA", "CONTENT", "END-OF-MESSAGE",
	[MS_UNKNOWN] = "UNKNOWN", [MS_RCPT_REJ] = "RCPT"
};

static void next_milter(struct milter_session *ms);
static void stage_rejected(struct milter_session *ms, struct milter8 *m);

static void stage_finish(struct milter_session *ms, int verdict)
{
	milter_done_fn done = ms->done;

	if (ms->stage == MS_RCPT_REJ)
		ms->rej_reply = NULL;
	ms->running = false;
	ms->done = NULL;
	done(ms->s, verdict);
}

static void set_reply(struct smtp_session *s, int code, const char *dsn,
		      const char *text)
{
	filter_clear_reply(s);
	s->reply_code = code;
	snprintf(s->reply_dsn, sizeof s->reply_dsn, "%s", dsn);
	if ((s->reply_text = strdup(text)) == NULL)
		msg_fatal("milter: out of memory");
	filter_note_milter_reply(s);
}

/* "550 5.7.1 text", or multi-line "550-5.7.1 a\r\n550 5.7.1 b".  Returns
 * false when it is not a 4xx/5xx reply. */
static bool take_replycode(struct smtp_session *s, const char *d)
{
	int code;
	const char *p = d, *sp;
	char dsn[16] = "";

	if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1])
	    || !isdigit((unsigned char)p[2]) || (p[3] != ' ' && p[3] != '-'
						 && p[3] != 0))
		return false;
	code = atoi(p);
	if (code < 400 || code > 599)
		return false;
	/* every further line must carry the same code */
	for (const char *l = strstr(d, "\r\n"); l; l = strstr(l + 2, "\r\n"))
		if (strncmp(l + 2, d, 3) || (l[5] != ' ' && l[5] != '-'))
			return false;
	p += p[3] ? 4 : 3;
	sp = p + strcspn(p, " \r\n");
	if (sp > p && (size_t)(sp - p) < sizeof dsn && p[0] == d[0] && p[1] == '.'
	    && strspn(p, "0123456789.") == (size_t)(sp - p)) {
		memcpy(dsn, p, sp - p);
		p = *sp == ' ' ? sp + 1 : sp;
	} else {
		snprintf(dsn, sizeof dsn, "%c.7.1", d[0]);
	}
	set_reply(s, code, dsn, *p ? p : "Command rejected");
	return true;
}

static void log_action(struct milter_session *ms, const char *action,
		       const char *text)
{
	smtp_log_reject(ms->s, action, stage_log_names[ms->stage], 0, NULL, text);
}

/* Default action of milter ms->cur, after a failure already logged. */
void milter_stage_failed(struct milter_session *ms)
{
	struct smtp_session *s = ms->s;
	struct milter8 *m = ms->m[ms->cur];

	switch (m->conf->def_action) {
	case MDA_ACCEPT:
		m->state = M8_DONE;     /* this milter is out of the session */
		ms->cur++;
		next_milter(ms);
		return;
	case MDA_REJECT:
		set_reply(s, 550, "5.5.0", "Service unavailable");
		stage_rejected(ms, m);
		return;
	case MDA_TEMPFAIL:
		set_reply(s, 451, "4.7.1", "Service unavailable - try again later");
		stage_rejected(ms, m);
		return;
	case MDA_QUARANTINE:
		free(s->txn.hold_reason);
		s->txn.hold_reason = strdup("milter triggers HOLD action");
		s->txn.hold = true;
		if (!s->txn.hold_logged)
			log_action(ms, "milter-hold", "milter triggers HOLD action");
		s->txn.hold_logged = true;
		m->state = M8_DONE;
		ms->cur++;
		next_milter(ms);
		return;
	}
}

/* Remember the reply in s->reply_* as the milter's answer to every later
 * command of the session (M8_REJECT_CONN). */
static void keep_conn_reply(struct milter8 *m, const struct smtp_session *s)
{
	m->state = M8_REJECT_CONN;
	m->rej_code = s->reply_code;
	snprintf(m->rej_dsn, sizeof m->rej_dsn, "%s", s->reply_dsn);
	free(m->rej_text);
	if ((m->rej_text = strdup(s->reply_text ? s->reply_text : "")) == NULL)
		msg_fatal("milter: out of memory");
}

/* A reject or tempfail of milter m ends the stage.  At connect and HELO
 * it persists (Postfix's MILTER8_STAT_REJECT_CON); at HELO the client
 * still gets its 250, unless it is a 421, as Postfix answers ("Sendmail
 * compatibility"): the reply is logged and MAIL, RCPT, DATA get it. */
static void stage_rejected(struct milter_session *ms, struct milter8 *m)
{
	struct smtp_session *s = ms->s;
	int verdict = s->reply_code >= 500 ? SLUICE_REJECT : SLUICE_DEFER;

	if ((ms->stage == FS_CONNECT || ms->stage == FS_HELO)
	    && m->state != M8_ERROR)    /* a failed one answers so anyway */
		keep_conn_reply(m, s);
	if (ms->stage == FS_HELO && s->reply_code != 421) {
		smtp_log_reject(s, "milter-reject", "HELO", s->reply_code,
				s->reply_dsn, s->reply_text);
		filter_clear_reply(s);
		verdict = SLUICE_DUNNO;
	}
	stage_finish(ms, verdict);
}

void milter_stage_reply(struct milter_session *ms, int cmd, const char *data,
			size_t len)
{
	struct smtp_session *s = ms->s;
	struct milter8 *m = ms->m[ms->cur];

	if (ms->stage == MS_RCPT_REJ) {
		/* a rejected recipient: the answer does not matter */
		ms->cur++;
		next_milter(ms);
		return;
	}
	if (cmd < 0) {
		milter_stage_failed(ms);
		return;
	}
	switch (cmd) {
	case SMFIR_CONTINUE:
		break;
	case SMFIR_ACCEPT:
		if (ms->stage == FS_CONNECT || ms->stage == FS_HELO)
			m->state = M8_ACCEPT_CONN;
		else if (ms->stage != FS_EOM)
			m->state = M8_ACCEPT_MSG;
		break;
	case SMFIR_REJECT:
		set_reply(s, 550, "5.7.1", "Command rejected");
		stage_rejected(ms, m);
		return;
	case SMFIR_TEMPFAIL:
		set_reply(s, 451, "4.7.1", "Service unavailable - try again later");
		stage_rejected(ms, m);
		return;
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		set_reply(s, 421, "4.7.0", "Server closing connection");
		stage_rejected(ms, m);
		return;
	case SMFIR_REPLYCODE:
		if (!take_replycode(s, data)) {
			msg_warn("milter %s: malformed reply code \"%.100s\"",
				 m->conf->name, data);
			milter8_fail(m);
			milter_stage_failed(ms);
			return;
		}
		stage_rejected(ms, m);
		return;
	case SMFIR_DISCARD:
		if (ms->stage == FS_CONNECT || ms->stage == FS_HELO
		    || ms->stage == MS_UNKNOWN) {
			/* Postfix: no discard outside a transaction */
			msg_warn("milter %s: DISCARD action is not allowed for "
				 "connect or helo", m->conf->name);
			break;
		}
		log_action(ms, "milter-discard", "milter triggers DISCARD action");
		filter_clear_reply(s);
		s->txn.discard = true;
		s->txn.discard_logged = true;
		stage_finish(ms, SLUICE_DISCARD);
		return;
	default:
		msg_warn("milter %s: unexpected filter response '%c' after event %s",
			 m->conf->name, cmd, stage_log_names[ms->stage]);
		milter8_fail(m);
		milter_stage_failed(ms);
		return;
	}
	(void)len;
	ms->cur++;
	next_milter(ms);
}

static void reply_cb(struct milter8 *m, int cmd, const char *data,
		     size_t len, void *arg)
{
	milter_stage_reply(arg, cmd, data, len);
}

void milter_note_params(struct smtp_session *s, bool rcpt,
			const struct esmtp_param *p, int n)
{
	struct milter_session *ms = filter_milters(s);
	char ***w;
	int *nw;

	if (ms == NULL)
		return;
	w = rcpt ? &ms->rcpt_args : &ms->mail_args;
	nw = rcpt ? &ms->nrcpt_args : &ms->nmail_args;
	free_words(*w, *nw);
	*w = NULL;
	*nw = 0;
	if (n <= 0)
		return;
	if ((*w = calloc((size_t)n, sizeof **w)) == NULL)
		msg_fatal("milter: out of memory");
	for (int i = 0; i < n; i++) {
		if (asprintf(&(*w)[i], "%s%s%s", p[i].name, p[i].value ? "=" : "",
			     p[i].value ? p[i].value : "") < 0)
			msg_fatal("milter: out of memory");
	}
	*nw = n;
}

/* The client's ESMTP parameters, one string each after the address, as
 * Postfix passes them. */
static void add_words(struct evbuffer *pkt, char **w, int n)
{
	for (int i = 0; i < n; i++)
		evbuffer_add(pkt, w[i], strlen(w[i]) + 1);
}

/* Event data of a stage: the command letter, its packet, and the step
 * and no-reply flags.  Returns false when the stage has no event. */
static bool stage_event(struct milter_session *ms, struct milter8 *m,
			int *cmd, struct evbuffer *pkt, uint32_t *no,
			uint32_t *nr)
{
	struct smtp_session *s = ms->s;

	switch (ms->stage) {
	case FS_CONNECT: {
		unsigned char fam = strchr(s->client_addr, ':') ? SMFIA_INET6
			: SMFIA_INET;
		uint16_t port = htons((uint16_t)s->client_port);
		char host[300];

		if (strcmp(s->client_name, "unknown"))
			snprintf(host, sizeof host, "%s", s->client_name);
		else
			snprintf(host, sizeof host, "[%s]", s->client_addr);
		*cmd = SMFIC_CONNECT; *no = SMFIP_NOCONNECT; *nr = SMFIP_NR_CONN;
		evbuffer_add(pkt, host, strlen(host) + 1);
		if (s->client_addr[0] == 0) {
			fam = SMFIA_UNKNOWN;
			evbuffer_add(pkt, &fam, 1);
			return true;
		}
		evbuffer_add(pkt, &fam, 1);
		evbuffer_add(pkt, &port, 2);
		evbuffer_add(pkt, s->client_addr, strlen(s->client_addr) + 1);
		return true;
	}
	case FS_HELO:
		*cmd = SMFIC_HELO; *no = SMFIP_NOHELO; *nr = SMFIP_NR_HELO;
		evbuffer_add_printf(pkt, "%s", s->helo_name ? s->helo_name : "");
		evbuffer_add(pkt, "", 1);
		return true;
	case FS_MAIL:
		*cmd = SMFIC_MAIL; *no = SMFIP_NOMAIL; *nr = SMFIP_NR_MAIL;
		evbuffer_add_printf(pkt, "<%s>", s->txn.env.sender ? s->txn.env.sender : "");
		evbuffer_add(pkt, "", 1);
		add_words(pkt, ms->mail_args, ms->nmail_args);
		return true;
	case MS_RCPT_REJ:
		if (!(m->pflags & SMFIP_RCPT_REJ))
			return false;
		/* FALLTHROUGH */
	case FS_RCPT:
		*cmd = SMFIC_RCPT; *no = SMFIP_NORCPT; *nr = SMFIP_NR_RCPT;
		evbuffer_add_printf(pkt, "<%s>", s->txn.cur_rcpt ? s->txn.cur_rcpt : "");
		evbuffer_add(pkt, "", 1);
		add_words(pkt, ms->rcpt_args, ms->nrcpt_args);
		return true;
	case FS_DATA:
		*cmd = SMFIC_DATA; *no = SMFIP_NODATA; *nr = SMFIP_NR_DATA;
		return true;
	case MS_UNKNOWN:
		*cmd = SMFIC_UNKNOWN; *no = SMFIP_NOUNKNOWN; *nr = SMFIP_NR_UNKN;
		evbuffer_add(pkt, ms->unknown_cmd, strlen(ms->unknown_cmd) + 1);
		return true;
	}
	return false;
}

/* Send the stage's event to milter ms->cur (connected and willing). */
static void send_event(struct milter_session *ms)
{
	struct milter8 *m = ms->m[ms->cur];
	struct evbuffer *pkt = evbuffer_new();
	uint32_t no = 0, nr = 0;
	int cmd = 0;
	size_t n;

	if (pkt == NULL)
		msg_fatal("milter: out of memory");
	if (!stage_event(ms, m, &cmd, pkt, &no, &nr) || (m->pflags & no)) {
		evbuffer_free(pkt);
		ms->cur++;
		next_milter(ms);
		return;
	}
	if (cmd == SMFIC_MAIL)
		m->in_message = true;
	milter_send_macros(m, ms->s, cmd);
	n = evbuffer_get_length(pkt);
	milter8_send(m, cmd, n ? evbuffer_pullup(pkt, (ssize_t)n) : NULL, n);
	evbuffer_free(pkt);
	if (m->pflags & nr) {
		ms->cur++;
		next_milter(ms);
		return;
	}
	milter8_expect(m, milter8_cmd_name(cmd), m->conf->cmd_timeout,
		       reply_cb, ms);
}

static void opened_cb(struct milter8 *m, int cmd, const char *data,
		      size_t len, void *arg)
{
	struct milter_session *ms = arg;

	if (cmd < 0) {
		milter_stage_failed(ms);
		return;
	}
	send_event(ms);
}

/*
 * Ask milters from ms->cur on.  Recursion depth is bounded by the number
 * of milters (each step moves ms->cur on).
 */
static void next_milter(struct milter_session *ms)
{
	struct milter8 *m;

	while (ms->cur < ms->n) {
		m = ms->m[ms->cur];
		switch (m->state) {
		case M8_CLOSED:
			if (ms->stage != FS_CONNECT) {
				ms->cur++;
				continue;
			}
			milter8_open(m, opened_cb, ms);
			return;
		case M8_READY:
			if (ms->stage == FS_EOM) {
				milter_eom_start(ms);
				return;
			}
			send_event(ms);
			return;
		case M8_ERROR:
			if (ms->stage == MS_RCPT_REJ) {
				ms->cur++;
				continue;
			}
			/* a failed milter answers with its default action */
			milter_stage_failed(ms);
			return;
		case M8_REJECT_CONN:
			if (ms->stage == MS_RCPT_REJ) {
				ms->cur++;
				continue;
			}
			/* its connect or HELO reply answers again */
			set_reply(ms->s, m->rej_code, m->rej_dsn, m->rej_text);
			stage_rejected(ms, m);
			return;
		case M8_OPENING:
		case M8_ACCEPT_CONN:
		case M8_ACCEPT_MSG:
		case M8_DONE:
			ms->cur++;
			continue;
		}
	}
	stage_finish(ms, SLUICE_DUNNO);
}

/* An event outside the filter chain's stages, on the session's milters
 * (none yet: nothing to ask). */
static void run_event(struct smtp_session *s, int stage, milter_done_fn done)
{
	struct milter_session *ms = filter_milters(s);

	if (ms == NULL || ms->n == 0 || ms->running) {
		done(s, SLUICE_DUNNO);
		return;
	}
	ms->stage = stage;
	ms->done = done;
	ms->running = true;
	ms->cur = 0;
	next_milter(ms);
}

void milter_run_unknown(struct smtp_session *s, const char *verb,
			milter_done_fn done)
{
	struct milter_session *ms = filter_milters(s);

	if (ms) {
		free(ms->unknown_cmd);
		if ((ms->unknown_cmd = strdup(verb)) == NULL)
			msg_fatal("milter: out of memory");
	}
	run_event(s, MS_UNKNOWN, done);
}

bool milter_wants_rcpt_rej(const struct smtp_session *s)
{
	const struct milter_session *ms = filter_milters(s);

	for (int i = 0; ms && i < ms->n; i++)
		if (ms->m[i]->state == M8_READY
		    && (ms->m[i]->pflags & SMFIP_RCPT_REJ))
			return true;
	return false;
}

void milter_run_rcpt_rej(struct smtp_session *s, const char *reply,
			 milter_done_fn done)
{
	struct milter_session *ms = filter_milters(s);

	if (ms)
		ms->rej_reply = reply;      /* the caller's, until done */
	run_event(s, MS_RCPT_REJ, done);
}

const char *milter_other_event(const struct smtp_session *s, char *buf,
			       size_t len)
{
	const struct milter_session *ms = filter_milters(s);

	for (int i = 0; ms && i < ms->n; i++) {
		const struct milter8 *m = ms->m[i];

		if (m->state == M8_ERROR && m->conf->def_action == MDA_REJECT)
			snprintf(buf, len, "550 5.5.0 Service unavailable");
		else if (m->state == M8_ERROR
			 && m->conf->def_action == MDA_TEMPFAIL)
			snprintf(buf, len, "454 4.3.0 Try again later");
		else if (m->state != M8_REJECT_CONN)
			continue;
		else if (m->rej_code >= 500)
			snprintf(buf, len, "%d %s %s", m->rej_code, m->rej_dsn,
				 m->rej_text);
		else
			snprintf(buf, len, "454 4.3.0 Try again later");
		return buf;
	}
	return NULL;
}

void milter_run_stage(struct smtp_session *s, struct milter_session **msp,
		      int stage, milter_done_fn done)
{
	struct milter_session *ms = *msp;

	if (ms == NULL)
		ms = *msp = session_new(s);
	if (ms->running)
		msg_panic("milter_run_stage: a stage is running");
	if (stage == FS_CONTENT || ms->n == 0) {
		done(s, SLUICE_DUNNO);
		return;
	}
	if (stage == FS_MAIL)
		milter_abort(ms);       /* a new message: forget the last one */
	ms->stage = stage;
	ms->done = done;
	ms->running = true;
	ms->cur = 0;
	next_milter(ms);
}
