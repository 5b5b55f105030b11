/*
 * tls_server.c - server-side TLS of SMTP sessions: one SSL_CTX per
 * listener, the handshake in the event loop, Postfix's TLS log lines and
 * Received: clause, and the certificate checks of `sluice check`.
 *
 * The promises are in tls_server.h.  How the switch works: the session
 * reads from a socket bufferevent; STARTTLS (or a wrapper-mode connect)
 * drops whatever input is already buffered, then stacks a
 * bufferevent_openssl filter on that bufferevent and makes it the
 * session's bufferevent.  While the handshake runs the session is paused
 * and the filter's callbacks are ours; a timer bounds it
 * (smtpd_starttls_timeout).  Once it completes, the session gets its own
 * callbacks back (smtp_session_tls_ready) and reads through the filter:
 * thousands of TLS sessions share the worker's loop.
 *
 * This file owns the per-process table of listener contexts, built once
 * by tls_server_init() in each worker before it drops privileges.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"
#include "diag.h"
#include "log.h"
#include "smtp_proto.h"
#include "tls_common.h"
#include "tls_server.h"

#define TLS_MAX_LISTENERS 64

static struct server_ctx {
	const struct listener *l;
	SSL_CTX *ctx;
} ctxs[TLS_MAX_LISTENERS];
static int nctx;

/* ---- levels --------------------------------------------------------------- */

static bool cfg_yes(const struct config *c, const char *name)
{
	long long v;

	return cfg_lookup_number(c, name, &v) == 0 && v == 1;
}

int tls_server_level(const struct config *c)
{
	const char *v = cfg_lookup(c, "smtpd_tls_security_level");
	int lev;

	if (v && *v) {
		lev = tls_level_parse(v);
		return lev < 0 ? TLS_LEV_NONE : lev > TLS_LEV_ENCRYPT
			? TLS_LEV_ENCRYPT : lev;
	}
	if (cfg_yes(c, "smtpd_enforce_tls"))
		return TLS_LEV_ENCRYPT;
	return cfg_yes(c, "smtpd_use_tls") ? TLS_LEV_MAY : TLS_LEV_NONE;
}

bool tls_server_wrappermode(const struct config *c)
{
	return cfg_yes(c, "smtpd_tls_wrappermode");
}

static bool listener_uses_tls(const struct config *c)
{
	return tls_server_wrappermode(c) || tls_server_level(c) >= TLS_LEV_MAY;
}

/* ---- contexts ------------------------------------------------------------- */

static SSL_CTX *listener_ctx(const struct config *c, char *err, size_t len,
			     const char **bad)
{
	struct tls_settings ts;
	SSL_CTX *ctx = NULL;

	tls_settings_from_config(&ts, c, "smtpd", TLS_ROLE_SERVER,
				 tls_server_level(c) >= TLS_LEV_ENCRYPT
				 || tls_server_wrappermode(c));
	*bad = NULL;
	if (!tls_settings_have_cert(&ts))
		snprintf(err, len, "no server certificate (smtpd_tls_chain_files "
			 "or smtpd_tls_cert_file is empty)");
	else
		ctx = tls_ctx_create(&ts, err, len, bad);
	tls_settings_free(&ts);
	return ctx;
}

void tls_server_init(const struct sluice_config *sc)
{
	for (int i = 0; i < sc->nlisteners && nctx < TLS_MAX_LISTENERS; i++) {
		const struct listener *l = &sc->listeners[i];
		char err[512];
		const char *bad;

		if (!listener_uses_tls(l->cfg))
			continue;
		ctxs[nctx].l = l;
		ctxs[nctx].ctx = listener_ctx(l->cfg, err, sizeof err, &bad);
		if (ctxs[nctx].ctx == NULL)
			msg_warn("%s: TLS not available: %s%s%s", l->service, err,
				 bad ? " (" : "", bad ? bad : "");
		nctx++;
	}
}

static SSL_CTX *ctx_of(const struct listener *l)
{
	for (int i = 0; i < nctx; i++)
		if (ctxs[i].l == l)
			return ctxs[i].ctx;
	return NULL;
}

bool tls_server_available(const struct listener *l)
{
	return ctx_of(l) != NULL;
}

/* ---- the handshake -------------------------------------------------------- */

static int loglevel(const struct smtp_session *s)
{
	long long v;

	return cfg_lookup_number(s->cfg, "smtpd_tls_loglevel", &v) == 0 ? (int)v : 0;
}

static void handshake_failed(struct smtp_session *s, const char *why)
{
	unsigned long e;
	bool logged = false;
	char text[256];

	if (s->tls_timer)
		event_del(s->tls_timer);
	/* libevent keeps the OpenSSL errors of the connection */
	while (s->bev && (e = bufferevent_get_openssl_error(s->bev)) != 0) {
		if (!logged)
			msg_info("SSL_accept error from %s: -1", smtp_client_id(s));
		logged = true;
		ERR_error_string_n(e, text, sizeof text);
		msg_warn("TLS library problem: %s", text);
	}
	if (ERR_peek_error() != 0) {
		if (!logged)
			msg_info("SSL_accept error from %s: -1", smtp_client_id(s));
		logged = true;
		tls_log_errors();
	}
	if (!logged)
		msg_info("SSL_accept error from %s: %s", smtp_client_id(s), why);
	msg_info("lost connection after %s from %s", s->last_cmd,
		 smtp_client_id(s));
	s->closing = true;          /* no second "lost connection" line */
	smtp_session_abort(s);
}

/* The session's TLS timer: the handshake's time limit, or (closing) the
 * moment the last encrypted bytes left. */
static void tls_timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	if (s->tls_handshaking)
		handshake_failed(s, "Connection timed out");
	else
		smtp_session_abort(s);
}

static void socket_output_drained(struct evbuffer *buf,
				  const struct evbuffer_cb_info *info, void *arg)
{
	struct smtp_session *s = arg;
	struct timeval now = { 0, 0 };

	if (evbuffer_get_length(buf) == 0 && s->closing)
		evtimer_add(s->tls_timer, &now);    /* free from the loop */
}

bool tls_server_output_pending(struct smtp_session *s)
{
	struct bufferevent *sock;
	struct evbuffer *out;

	if (s->ssl == NULL || s->bev == NULL
	    || (sock = bufferevent_get_underlying(s->bev)) == NULL)
		return false;
	out = bufferevent_get_output(sock);
	if (evbuffer_get_length(out) == 0)
		return false;
	if (!s->tls_linger) {
		s->tls_linger = true;
		evbuffer_add_cb(out, socket_output_drained, s);
	}
	return true;
}

static void log_established(struct smtp_session *s)
{
	const struct tls_info *ti = s->tls;
	char summary[512];
	int lev = loglevel(s);

	if (lev >= 2 && ti->reused)
		msg_info("%s: Reusing old session", smtp_client_id(s));
	if (lev >= 2 && ti->peer_cert)
		msg_info("%s: subject_CN=%s, issuer=%s, fingerprint=%s, "
			 "pkey_fingerprint=%s", smtp_client_id(s), ti->peer_CN,
			 ti->issuer_CN, ti->peer_cert_fprint ? ti->peer_cert_fprint : "",
			 ti->peer_pkey_fprint ? ti->peer_pkey_fprint : "");
	if (lev < 1)
		return;
	tls_summary(summary, sizeof summary, s->ssl, ti);
	msg_info("%s TLS connection established from %s: %s",
		 tls_trust_word(ti), smtp_client_id(s), summary);
}

/* Postfix's smtpd_tls_req_ccert: with mandatory TLS, a client without a
 * verified certificate is sent away. */
static bool ccert_refused(struct smtp_session *s)
{
	const char *why;

	if (!cfg_yes(s->cfg, "smtpd_tls_req_ccert")
	    || tls_server_level(s->cfg) < TLS_LEV_ENCRYPT || s->tls->peer_trusted)
		return false;
	why = s->tls->peer_cert ? "Client certificate not trusted"
		: "No client certificate presented";
	msg_info("NOQUEUE: abort: TLS from %s: %s", smtp_client_id(s), why);
	smtp_reply_close(s, "421 4.7.1 %s Error: %s", smtp_hostname(s), why);
	return true;
}

/* After STARTTLS the client starts over (RFC 3207 4.2): HELO again. */
static void starttls_reset(struct smtp_session *s)
{
	smtp_txn_reset(s, true);
	free(s->helo_name);
	s->helo_name = NULL;
	s->esmtp = false;
	s->pipelining_offered = false;
}

static void handshake_done(struct smtp_session *s)
{
	const char *digest = cfg_lookup(s->cfg, "smtpd_tls_fingerprint_digest");

	event_del(s->tls_timer);
	s->tls = calloc(1, sizeof *s->tls);
	if (s->tls == NULL)
		msg_fatal("out of memory");
	tls_info_get(s->tls, s->ssl, digest ? digest : "sha256");
	s->tls_handshaking = false;
	log_established(s);
	smtp_session_tls_ready(s);
	if (ccert_refused(s)) {
		smtp_resume_input(s);
		return;
	}
	if (s->tls_wrapper) {
		smtp_session_greet(s);
		return;
	}
	starttls_reset(s);
	smtp_resume_input(s);
}

static void handshake_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		handshake_done(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		handshake_failed(s, "Connection timed out");
	else if (what & BEV_EVENT_EOF)
		handshake_failed(s, "lost connection");
	else
		handshake_failed(s, errno ? strerror(errno) : "lost connection");
}

bool tls_server_start(struct smtp_session *s)
{
	SSL_CTX *ctx = ctx_of(s->listener);
	struct evbuffer *in;
	struct bufferevent *tls;
	struct timeval tv = { 300, 0 };
	long long t;
	SSL *ssl;

	if (ctx == NULL || (ssl = SSL_new(ctx)) == NULL)
		return false;
	if (loglevel(s) >= 2)
		msg_info("setting up TLS connection from %s", smtp_client_id(s));
	/* What the client sent before the handshake - commands pipelined
	 * after STARTTLS, say - is never read as if it came over TLS
	 * (CVE-2011-0411). */
	in = bufferevent_get_input(s->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	tls = bufferevent_openssl_filter_new(s->base, s->bev, ssl,
					     BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		return false;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	s->bev = tls;
	s->ssl = ssl;
	s->tls_handshaking = true;
	s->paused = true;
	bufferevent_setcb(tls, NULL, NULL, handshake_event, s);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
	if (cfg_lookup_number(s->cfg, "smtpd_starttls_timeout", &t) == 0 && t > 0)
		tv.tv_sec = t;
	if (s->tls_timer == NULL)
		s->tls_timer = evtimer_new(s->base, tls_timer_fired, s);
	if (s->tls_timer == NULL)
		msg_fatal("out of memory");
	evtimer_add(s->tls_timer, &tv);
	return true;
}

void tls_server_session_free(struct smtp_session *s)
{
	if (s->tls_timer)
		event_free(s->tls_timer);
	s->tls_timer = NULL;
	if (s->tls) {
		tls_info_free(s->tls);
		free(s->tls);
		s->tls = NULL;
	}
	s->ssl = NULL;              /* freed with the bufferevent */
}

/* ---- Received: --------------------------------------------------------------- */

void tls_server_received(const struct smtp_session *s, char *buf, size_t len)
{
	char summary[512], *kex;
	const struct tls_info *ti = s->tls;
	size_t n;

	*buf = 0;
	if (ti == NULL || !cfg_yes(s->cfg, "smtpd_tls_received_header"))
		return;
	tls_summary(summary, sizeof summary, s->ssl, ti);
	kex = strstr(summary, " key-exchange ");
	if (kex)
		*kex++ = 0;
	n = snprintf(buf, len, "\n\t(using %s%s%s)", summary,
		     kex ? "\n\t " : "", kex ? kex : "");
	if (n >= len)
		return;
	if (ti->peer_cert)
		snprintf(buf + n, len - n, "\n\t(Client CN \"%s\", Issuer \"%s\" (%s))",
			 ti->peer_CN, ti->issuer_CN,
			 ti->peer_trusted ? "verified OK" : "not verified");
	else if (cfg_yes(s->cfg, "smtpd_tls_ask_ccert"))
		snprintf(buf + n, len - n, "\n\t(Client did not present a certificate)");
	else
		snprintf(buf + n, len - n, "\n\t(No client certificate requested)");
}

/* ---- sluice check ---------------------------------------------------------- */

struct check {
	struct diag *d;
	const struct config *c;
	const struct listener *l;
	const char *main_path;
	char **seen; int nseen;     /* messages already given (shared files) */
};

static bool seen_before(struct check *k, const char *text)
{
	for (int i = 0; i < k->nseen; i++)
		if (strcmp(k->seen[i], text) == 0)
			return true;
	k->seen = realloc(k->seen, (k->nseen + 1) * sizeof *k->seen);
	k->seen[k->nseen++] = strdup(text);
	return false;
}

/* "file:line: <param> = <value>: problem; fix" at the parameter's place. */
static void report(struct check *k, enum diag_level lev, const char *param,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void report(struct check *k, enum diag_level lev, const char *param,
		   const char *fmt, ...)
{
	char text[1024];
	const char *file = NULL;
	int line = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (param)
		file = cfg_where(k->c, param, &line);
	if (file == NULL) {
		file = k->l ? k->l->file : k->main_path;
		line = k->l ? k->l->line : 0;
	}
	{
		char key[1200];

		snprintf(key, sizeof key, "%s:%d:%s", file, line, text);
		if (seen_before(k, key))
			return;
	}
	diag_add(k->d, lev, file, line, "%s", text);
}

static void check_key_file(struct check *k, const char *param,
			   const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		report(k, DIAG_ERROR, param, "%s: cannot read %s: %s; create it "
		       "(sluice tls selfsigned makes a key and a certificate) "
		       "or correct %s", param, path, strerror(errno), param);
		return;
	}
	if (st.st_mode & 077)
		report(k, DIAG_ERROR, param, "%s: the private key %s is readable "
		       "by %s (mode %04o); chmod 600 %s", param, path,
		       (st.st_mode & 007) ? "everyone" : "its group",
		       (unsigned)(st.st_mode & 07777), path);
	else if (access(path, R_OK) < 0)
		report(k, DIAG_ERROR, param, "%s: cannot read %s: %s; make it "
		       "readable by the user that starts sluice (root)", param,
		       path, strerror(errno));
}

static void check_keycert(struct check *k, const char *param,
			  struct tls_keycert *kc, const char *file)
{
	const char *host = cfg_str(k->c, "myhostname");

	if (!X509_check_private_key(kc->cert, kc->key)) {
		ERR_clear_error();
		report(k, DIAG_ERROR, param, "%s: the private key in %s does not "
		       "match its certificate; give the key the certificate was "
		       "made for", param, file);
	}
	if (tls_cert_expired(kc->cert))
		report(k, DIAG_ERROR, param, "%s: the certificate in %s has "
		       "expired (or is not valid yet); renew it (sluice tls "
		       "selfsigned, or your CA)", param, file);
	else if (!tls_cert_covers_host(kc->cert, host))
		report(k, DIAG_WARNING, param, "%s: the certificate in %s does "
		       "not name myhostname (%s); clients that verify names will "
		       "refuse it: add %s to its subjectAltName", param, file,
		       host, host);
}

static void check_pair(struct check *k, const char *cparam, const char *cert,
		       const char *kparam, const char *key)
{
	struct tls_keycert kc;
	char err[512];

	check_key_file(k, kparam, key);
	if (access(cert, R_OK) < 0) {
		report(k, DIAG_ERROR, cparam, "%s: cannot read %s: %s; correct %s",
		       cparam, cert, strerror(errno), cparam);
		return;
	}
	if (access(key, R_OK) < 0)
		return;
	if (tls_read_cert_key(cert, key, &kc, err, sizeof err) < 0) {
		report(k, DIAG_ERROR, cparam, "%s: %s; give PEM files", cparam, err);
		return;
	}
	check_keycert(k, cparam, &kc, cert);
	tls_keycert_free(&kc);
}

static void check_chain_files(struct check *k, char **files)
{
	for (int i = 0; files[i]; i++) {
		struct tls_keycert kc[4];
		char err[512];
		int n;

		check_key_file(k, "smtpd_tls_chain_files", files[i]);
		if (access(files[i], R_OK) < 0)
			continue;
		n = tls_read_chain_file(files[i], kc, 4, err, sizeof err);
		if (n < 0) {
			report(k, DIAG_ERROR, "smtpd_tls_chain_files", "smtpd_tls_"
			       "chain_files: %s; each file holds a private key "
			       "followed by its certificate chain (PEM)", err);
			continue;
		}
		for (int j = 0; j < n; j++) {
			check_keycert(k, "smtpd_tls_chain_files", &kc[j], files[i]);
			tls_keycert_free(&kc[j]);
		}
	}
}

static void check_settings(struct check *k, const struct tls_settings *ts)
{
	struct tls_protocols p;
	char err[512];
	const char *bad;
	SSL_CTX *ctx;
	int before = k->d->errors;

	if (tls_parse_protocols(ts->protocols, &p, err, sizeof err) < 0)
		report(k, DIAG_ERROR, ts->pname_protocols, "%s = %s: %s; write "
		       "e.g. \">=TLSv1.2\"", ts->pname_protocols, ts->protocols, err);
	if (!tls_digest_known(ts->digest))
		report(k, DIAG_ERROR, ts->pname_digest, "%s = %s: unknown digest; "
		       "use sha256", ts->pname_digest, ts->digest);
	if (!tls_settings_have_cert(ts)) {
		report(k, DIAG_ERROR, "smtpd_tls_security_level", "listener %s "
		       "uses TLS but has no certificate; set smtpd_tls_chain_files "
		       "(or smtpd_tls_cert_file and smtpd_tls_key_file), or run "
		       "`sluice tls selfsigned` to make one",
		       k->l ? k->l->service : "smtp");
		return;
	}
	if (ts->chain_files)
		check_chain_files(k, ts->chain_files);
	else {
		if (ts->cert_file)
			check_pair(k, "smtpd_tls_cert_file", ts->cert_file,
				   "smtpd_tls_key_file", ts->key_file);
		if (ts->eccert_file)
			check_pair(k, "smtpd_tls_eccert_file", ts->eccert_file,
				   "smtpd_tls_eckey_file", ts->eckey_file);
	}
	if (k->d->errors > before)
		return;
	/* whatever else OpenSSL refuses (cipher grade, CA files) */
	ctx = tls_ctx_create(ts, err, sizeof err, &bad);
	if (ctx == NULL)
		report(k, DIAG_ERROR, bad, "%s: %s; correct it", bad ? bad
		       : "TLS", err);
	SSL_CTX_free(ctx);
}

static void check_listener(struct check *k)
{
	const char *v = cfg_lookup(k->c, "smtpd_tls_security_level");
	struct tls_settings ts;

	if (v && *v && (tls_level_parse(v) < 0
			|| tls_level_parse(v) > TLS_LEV_ENCRYPT)) {
		report(k, DIAG_ERROR, "smtpd_tls_security_level",
		       "smtpd_tls_security_level = %s: not a server security "
		       "level; use none, may or encrypt", v);
		return;
	}
	if (!listener_uses_tls(k->c))
		return;
	tls_settings_from_config(&ts, k->c, "smtpd", TLS_ROLE_SERVER,
				 tls_server_level(k->c) >= TLS_LEV_ENCRYPT
				 || tls_server_wrappermode(k->c));
	check_settings(k, &ts);
	tls_settings_free(&ts);
}

void tls_server_check(struct diag *d, const struct sluice_config *sc,
		      const char *main_path)
{
	struct check k = { .d = d, .main_path = main_path };

	for (int i = 0; sc && i < sc->nlisteners; i++) {
		k.l = &sc->listeners[i];
		k.c = k.l->cfg;
		check_listener(&k);
	}
	for (int i = 0; i < k.nseen; i++)
		free(k.seen[i]);
	free(k.seen);
}
