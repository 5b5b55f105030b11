/*
 * smtp_auth.c - SMTP AUTH in the SMTP server (smtp_auth.h), with
 * Postfix's replies, order of checks and log lines:
 *
 *   AUTH PLAIN dXNlcgB1c2VyAHB3      235 2.7.0 Authentication successful
 *   bad password                     535 5.7.8 Error: authentication failed: <reason>
 *   backend down                     454 4.7.0 Temporary authentication failure: <reason>
 *   unknown mechanism                504 5.5.4 Unrecognized authentication type
 *   mechanism only allowed with TLS  538 5.7.11 Encryption required for requested authentication mechanism
 *   "*" as a response                501 5.7.0 Authentication aborted
 *   too many AUTH commands           450 4.7.1 Error: too many AUTH commands from ADDR
 *
 *   warning: host[ip]: SASL PLAIN authentication failed: authentication failure, sasl_username=user
 *   QUEUEID: client=host[ip], sasl_method=PLAIN, sasl_username=user
 *
 * Failed attempts are error replies, so smtpd_soft_error_limit and
 * smtpd_error_sleep_time slow a guessing client down and
 * smtpd_hard_error_limit ends its session, as in Postfix.
 * smtpd_client_auth_rate_limit counts AUTH commands per service, client
 * address and anvil_rate_time_unit in anvil (smtp_anvil.c), across all
 * workers, as Postfix's anvil does for all its smtpd processes.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "inet_addr.h"
#include "log.h"
#include "mymalloc.h"
#include "sasl_server.h"
#include "smtp_anvil.h"
#include "smtp_auth.h"
#include "smtp_proto.h"

struct smtp_auth {
	struct sasl_server *srv;        /* made at the first EHLO or AUTH */
	bool srv_tls;                   /* made for a TLS session */
	bool srv_used;                  /* a fresh one for each AUTH, as Postfix */
	bool tls_seen;                  /* the session went TLS since */
	bool in_progress;               /* a 334 is out: a response is due */
	int step;                       /* responses received */
	char *mech;
	char *login;                    /* the login name the client gave */
	char *kw_auth, *kw_auth_eq;     /* EHLO keywords */
	char log_fields[700];
	char received[300];
};

/* ---- helpers ---------------------------------------------------------------- */

static struct smtp_auth *auth_of(struct smtp_session *s)
{
	if (s->auth == NULL) {
		if ((s->auth = calloc(1, sizeof *s->auth)) == NULL)
			msg_fatal("out of memory");
		s->auth->tls_seen = s->tls != NULL;     /* smtps: from the start */
	}
	return s->auth;
}

static bool yes(const struct config *c, const char *name)
{
	long long v;

	return cfg_lookup_number(c, name, &v) == 0 && v != 0;
}

/* Postfix's smtpd_sasl_is_active(): enabled, not discarded, and with
 * smtpd_tls_auth_only only under TLS (tls_only tells which failed). */
static bool auth_active(const struct smtp_session *s, bool *tls_only)
{
	*tls_only = false;
	if (!cfg_bool(s->cfg, "smtpd_sasl_auth_enable") || smtp_ehlo_keyword_discarded(s, "AUTH"))
		return false;
	if (yes(s->cfg, "smtpd_tls_auth_only") && s->tls == NULL) {
		*tls_only = true;
		return false;
	}
	return true;
}

static void drop_server(struct smtp_auth *a)
{
	xsasl_server_free(a->srv);
	a->srv = NULL;
	a->srv_used = false;
}

/* Forget the login (Postfix's smtpd_sasl_auth_reset). */
static void logout(struct smtp_session *s)
{
	free(s->sasl_method);
	free(s->sasl_username);
	free(s->sasl_sender);
	s->sasl_method = s->sasl_username = s->sasl_sender = NULL;
}

/* STARTTLS completed since we last looked: RFC 3207 4.2 says to forget
 * what the client said before, the login included. */
static void tls_transition(struct smtp_session *s)
{
	if (s->tls == NULL || s->auth == NULL || s->auth->tls_seen)
		return;
	s->auth->tls_seen = true;
	drop_server(s->auth);
	s->auth->in_progress = false;
	logout(s);
}

/* The session's SASL server, made (again) when missing, used, or made
 * before TLS; NULL with the reason logged and in err. */
static struct sasl_server *server(struct smtp_session *s, char *err,
				  size_t errlen)
{
	struct smtp_auth *a = auth_of(s);
	struct xsasl_server_params p;

	if (a->srv && (a->srv_used || a->srv_tls != (s->tls != NULL)))
		drop_server(a);
	if (a->srv)
		return a->srv;
	memset(&p, 0, sizeof p);
	p.cfg = s->cfg;
	p.base = s->base;
	p.client_addr = s->client_addr;
	p.client_port = s->client_port;
	p.server_addr = s->server_addr;
	p.server_port = s->server_port;
	p.tls = s->tls != NULL;
	if ((a->srv = xsasl_server_create(&p, err, errlen)) == NULL) {
		msg_warn("%s: SASL: %s", smtp_client_id(s), err);
		return NULL;
	}
	a->srv_tls = p.tls;
	return a->srv;
}

static bool word_in(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; p && *p; p += strcspn(p, " "), p += *p == ' ')
		if (strncasecmp(p, word, n) == 0 && (p[n] == 0 || p[n] == ' '))
			return true;
	return false;
}

/* ---- EHLO ------------------------------------------------------------------- */

void smtp_auth_ehlo(struct smtp_session *s, const char **kw, int *n)
{
	struct smtp_auth *a;
	const char *mechs;
	bool tls_only;
	char err[512];

	tls_transition(s);
	if (!auth_active(s, &tls_only)
	    || inet_match_list(s->cfg, "smtpd_sasl_exceptions_networks",
			       s->client_addr))
		return;
	a = auth_of(s);
	if (a->srv && a->srv_used)
		drop_server(a);
	if (server(s, err, sizeof err) == NULL)
		return;
	mechs = xsasl_server_mechs(a->srv);
	if (*mechs == 0)
		return;
	free(a->kw_auth);
	free(a->kw_auth_eq);
	if (asprintf(&a->kw_auth, "AUTH %s", mechs) < 0
	    || asprintf(&a->kw_auth_eq, "AUTH=%s", mechs) < 0)
		msg_fatal("out of memory");
	kw[(*n)++] = a->kw_auth;
	if (cfg_bool(s->cfg, "broken_sasl_auth_clients"))
		kw[(*n)++] = a->kw_auth_eq;
}

/* ---- the exchange ---------------------------------------------------------- */

/* Remember the login name a PLAIN, LOGIN or CRAM-MD5 response carries,
 * for the failure log and the case hint. */
static void note_login(struct smtp_auth *a, const char *b64)
{
	size_t cap = 3 * strlen(b64) / 4 + 3;
	unsigned char *buf = malloc(cap + 1);
	const char *user = NULL;
	int len;

	if (buf == NULL)
		msg_fatal("out of memory");
	len = strcmp(b64, "=") == 0 ? 0 : sasl_b64_decode(b64, buf, cap);
	if (len >= 0) {
		buf[len] = 0;
		if (strcasecmp(a->mech, "PLAIN") == 0) {
			size_t z = strlen((char *)buf);  /* authzid NUL authcid NUL pw */

			if ((int)z < len)
				user = (char *)buf + z + 1;
		} else if (strcasecmp(a->mech, "LOGIN") == 0 && a->step == 0) {
			user = (char *)buf;
		} else if (strcasecmp(a->mech, "CRAM-MD5") == 0 && a->step == 1) {
			char *sp = strrchr((char *)buf, ' ');

			if (sp)
				*sp = 0;
			user = (char *)buf;
		}
	}
	if (user && *user && strlen(user) < 256) {
		free(a->login);
		a->login = mystrdup(user);
		for (char *p = a->login; *p; p++)
			if (!isprint((unsigned char)*p))
				*p = '?';
	}
	free(buf);
}

static void end_exchange(struct smtp_auth *a)
{
	a->in_progress = false;
	a->step = 0;
	a->srv_used = true;
}

/* "no such user" and a user differing only in case exists: say so. */
static void case_hint(struct smtp_session *s, struct smtp_auth *a)
{
	char *lower;

	if (a->login == NULL || a->srv == NULL
	    || xsasl_server_user_exists(a->srv, a->login) != 0)
		return;
	lower = mystrdup(a->login);
	for (char *p = lower; *p; p++)
		*p = tolower((unsigned char)*p);
	if (strcmp(lower, a->login) != 0
	    && xsasl_server_user_exists(a->srv, lower) == 1)
		msg_warn("%s: SASL %s authentication failed: no user \"%s\", but "
			 "there is a user \"%s\" (login names are case-sensitive)",
			 smtp_client_id(s), a->mech, a->login, lower);
	free(lower);
}

static void step_done(void *ctx, enum sasl_result r, const char *text)
{
	struct smtp_session *s = ctx;
	struct smtp_auth *a = s->auth;
	const char *user;

	s->cur_cmd = CMD_AUTH;
	switch (r) {
	case SASL_R_MORE:
		a->in_progress = true;
		smtp_reply(s, "334 %s", text);
		break;
	case SASL_R_DONE:
		end_exchange(a);
		user = xsasl_server_username(a->srv);
		free(s->sasl_username);
		free(s->sasl_method);
		s->sasl_username = mystrdup(user ? user : a->login);
		for (char *p = s->sasl_username; *p; p++)
			if (!isprint((unsigned char)*p))
				*p = '?';
		s->sasl_method = mystrdup(a->mech);
		smtp_reply(s, "235 2.7.0 Authentication successful");
		break;
	case SASL_R_FORM:
		end_exchange(a);
		msg_warn("%s: SASL %s authentication failed: %s",
			 smtp_client_id(s), a->mech, text);
		smtp_reply(s, "501 5.5.2 %s", text);
		break;
	case SASL_R_TEMP:
		end_exchange(a);
		msg_warn("%s: SASL %s authentication failed: %s%s%s",
			 smtp_client_id(s), a->mech, text,
			 a->login ? ", sasl_username=" : "", a->login ? a->login : "");
		smtp_reply(s, "454 4.7.0 Temporary authentication failure: %s", text);
		break;
	case SASL_R_FAIL:
	case SASL_R_NOUSER:
		end_exchange(a);
		msg_warn("%s: SASL %s authentication failed: %s%s%s",
			 smtp_client_id(s), a->mech, *text ? text : "(reason unavailable)",
			 a->login ? ", sasl_username=" : "", a->login ? a->login : "");
		if (r == SASL_R_NOUSER)     /* never probe a backend otherwise */
			case_hint(s, a);
		smtp_reply(s, "535 5.7.8 Error: authentication failed: %s",
			   *text ? text : "(reason unavailable)");
		break;
	}
	smtp_resume_input(s);
}

bool smtp_auth_busy(const struct smtp_session *s)
{
	return s->auth && s->auth->in_progress;
}

void smtp_auth_response(struct smtp_session *s, char *line)
{
	struct smtp_auth *a = s->auth;

	s->cur_cmd = CMD_AUTH;
	a->in_progress = false;
	if (strcmp(line, "*") == 0) {
		end_exchange(a);
		msg_warn("%s: SASL %s authentication aborted", smtp_client_id(s),
			 a->mech);
		smtp_reply(s, "501 5.7.0 Authentication aborted");
		return;
	}
	if ((long long)strlen(line) > cfg_int(s->cfg, "smtpd_sasl_response_limit")) {
		end_exchange(a);
		smtp_reply(s, "500 5.5.6 Authentication exchange line is too long");
		return;
	}
	note_login(a, line);
	a->step++;
	smtp_pause_input(s);
	xsasl_server_next(a->srv, line, step_done, s);
}

/* Postfix's order: HELO first, enabled, no transaction, TLS when
 * required, not yet authenticated, syntax. */
static const char *auth_precheck(struct smtp_session *s, char *arg,
				 char **mech, char **init)
{
	bool tls_only;
	char *extra;

	if (cfg_bool(s->cfg, "smtpd_helo_required") && s->helo_name == NULL)
		return "503 5.5.1 Error: send HELO/EHLO first";
	if (!auth_active(s, &tls_only))
		return tls_only ? "538 5.7.11 Encryption required for requested authentication mechanism"
			: "503 5.5.1 Error: authentication not enabled";
	if (s->txn.active)
		return "503 5.5.1 Error: MAIL transaction in progress";
	if (s->sasl_username)
		return "503 5.5.1 Error: already authenticated";
	while (*arg == ' ')
		arg++;
	*mech = strtok_r(arg, " ", &extra);
	*init = strtok_r(NULL, " ", &extra);
	if (*mech == NULL || strtok_r(NULL, " ", &extra) != NULL)
		return "501 5.5.4 Syntax: AUTH mechanism";
	return NULL;
}

void smtp_auth_cmd(struct smtp_session *s, char *arg)
{
	struct smtp_auth *a;
	const char *err;
	char *mech, *init, why[512];

	tls_transition(s);
	if ((err = auth_precheck(s, arg, &mech, &init)) != NULL) {
		smtp_reply(s, "%s", err);
		return;
	}
	if (smtp_anvil_over(s, ANVIL_EV_AUTH)) {   /* smtpd_client_auth_rate_limit */
		smtp_reply(s, "450 4.7.1 Error: too many AUTH commands from %s",
			   s->client_addr);
		return;
	}
	if (server(s, why, sizeof why) == NULL) {
		smtp_reply(s, "454 4.7.0 Temporary authentication failure: %s", why);
		return;
	}
	a = s->auth;
	if (!word_in(xsasl_server_mechs(a->srv), mech)) {
		if (xsasl_server_mech_needs_tls(a->srv, mech))
			smtp_reply(s, "538 5.7.11 Encryption required for requested authentication mechanism");
		else
			smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	free(a->mech);
	a->mech = mystrdup(mech);
	for (char *p = a->mech; *p; p++)
		*p = toupper((unsigned char)*p);
	free(a->login);
	a->login = NULL;
	a->step = 0;
	if (init) {
		note_login(a, init);
		a->step = 1;
	}
	smtp_pause_input(s);
	xsasl_server_start(a->srv, a->mech, init, step_done, s);
}

/* ---- MAIL, logs, Received: ------------------------------------------------- */

void smtp_auth_mail_start(struct smtp_session *s)
{
	tls_transition(s);
	free(s->sasl_sender);
	s->sasl_sender = NULL;
	if (s->sasl_username && s->txn.env.sasl_username == NULL) {
		s->txn.env.sasl_method = mystrdup(s->sasl_method);
		s->txn.env.sasl_username = mystrdup(s->sasl_username);
	}
}

/* Postfix's smtpd_sasl_mail_opt(): AUTH=<> says nothing; AUTH=addr is
 * kept (as printable text) for the log. */
const char *smtp_auth_mail_param(struct smtp_session *s, const char *value)
{
	bool tls_only;

	if (value == NULL || !cfg_bool(s->cfg, "smtpd_sasl_auth_enable"))
		return NULL;    /* without AUTH: ignored, as before */
	if (!auth_active(s, &tls_only))
		return "503 5.5.4 Error: authentication disabled";
	if (s->sasl_sender != NULL)
		return "503 5.5.4 Error: multiple AUTH= options";
	if (strcmp(value, "<>") != 0) {
		s->sasl_sender = mystrdup(value);
		for (char *p = s->sasl_sender; *p; p++)
			if (!isprint((unsigned char)*p))
				*p = '?';
	}
	return NULL;
}

const char *smtp_auth_log_fields(const struct smtp_session *s)
{
	struct smtp_auth *a = s->auth;

	if (a == NULL || (s->sasl_method == NULL && s->sasl_sender == NULL))
		return "";
	snprintf(a->log_fields, sizeof a->log_fields, "%s%s%s%s%s%s",
		 s->sasl_method ? ", sasl_method=" : "",
		 s->sasl_method ? s->sasl_method : "",
		 s->sasl_username ? ", sasl_username=" : "",
		 s->sasl_username ? s->sasl_username : "",
		 s->sasl_sender ? ", sasl_sender=" : "",
		 s->sasl_sender ? s->sasl_sender : "");
	return a->log_fields;
}

const char *smtp_auth_received(const struct smtp_session *s)
{
	struct smtp_auth *a = s->auth;

	if (a == NULL || s->sasl_username == NULL
	    || !cfg_bool(s->cfg, "smtpd_sasl_authenticated_header"))
		return "";
	snprintf(a->received, sizeof a->received,
		 "\n\t(Authenticated sender: %.200s)", s->sasl_username);
	return a->received;
}

const char *smtp_auth_proto_suffix(const struct smtp_session *s)
{
	return s->sasl_username ? "A" : "";
}

void smtp_auth_reset(struct smtp_session *s)
{
	logout(s);
	if (s->auth == NULL)
		return;
	drop_server(s->auth);
	s->auth->in_progress = false;
	s->auth->tls_seen = s->tls != NULL;
}

void smtp_auth_free(struct smtp_session *s)
{
	struct smtp_auth *a = s->auth;

	logout(s);
	if (a == NULL)
		return;
	xsasl_server_free(a->srv);
	free(a->mech);
	free(a->login);
	free(a->kw_auth);
	free(a->kw_auth_eq);
	free(a);
	s->auth = NULL;
}
