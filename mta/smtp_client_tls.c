/*
 * smtp_client_tls.c - STARTTLS in the SMTP client (delivery), as Postfix's
 * smtp(8) does it.  The OpenSSL side (policy, contexts, sessions, the
 * verdict on a certificate) is tls_client.c.
 *
 * After the EHLO reply the destination's TLS level (smtp_tls_security_level
 * or smtp_tls_policy_maps) decides:
 *   none      no STARTTLS ("Host offered STARTTLS: [host]" with
 *             smtp_tls_note_starttls_offer);
 *   may       STARTTLS when offered; a refused STARTTLS goes on in
 *             plaintext; a failed handshake tries the same server once
 *             more over a new plaintext connection (Postfix's
 *             RETRY_AS_PLAINTEXT); any certificate is accepted;
 *   encrypt   TLS or nothing: "TLS is required, but was not offered by
 *             host X" (4.7.4), "TLS is required, but host X refused to
 *             start TLS: ...", "Cannot start TLS: handshake failure"
 *             (4.7.5) - the server is given up (next MX, else deferred);
 *   verify, secure, fingerprint
 *             as encrypt, and then "Server certificate not trusted" or
 *             "Server certificate not verified" (4.7.5) when the chain or
 *             the names (fingerprints) do not satisfy the level; the
 *             session is ended with QUIT over TLS.
 * After the handshake the EHLO is sent again and its reply is the one
 * that counts; STARTTLS is not sent twice.  Whatever the server sent
 * after its 220 and before the handshake is discarded (a server can not
 * inject plaintext into the TLS session).
 *
 * The TLS layer is libevent's OpenSSL filter over the connection's
 * bufferevent, so the session stays in the event loop; the connection
 * then keeps the filter as c->bev (cached and reused with its TLS state,
 * under a pool key that names the TLS level).  The handshake is bounded
 * by smtp_starttls_timeout.
 *
 * TLS lines are logged as Postfix's smtp(8) logs them, under the program
 * name sluice/smtp (the delivery lines' name), although the client runs
 * in the queue manager's process: log_as_smtp() switches the name for
 * the line and back to qmgr's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "config.h"
#include "log.h"
#include "smtp_client.h"
#include "tls_client.h"

struct smtpc_tls {
	SSL *ssl;                       /* ours until the filter owns it */
	struct event *timer;            /* handshake deadline */
	bool active;                    /* TLS is up */
};

/* Lines about TLS go out as sluice/smtp (or lmtp); then back to qmgr. */
static void log_as_smtp(const struct smtpc_conn *c, bool on)
{
	log_set_service(on ? (c->lmtp ? "lmtp" : "smtp") : "qmgr");
}

static struct smtpc_tls *tls_state(struct smtpc_conn *c)
{
	if (c->tls == NULL && (c->tls = calloc(1, sizeof *c->tls)) == NULL)
		msg_fatal("smtp: out of memory");
	return c->tls;
}

/* Before the connection (and the TLS filter, c->bev) is freed: a
 * session that worked ends with close_notify, so OpenSSL keeps it
 * resumable (an SSL freed without it spoils its session). */
void smtpc_tls_free(struct smtpc_conn *c)
{
	if (c->tls == NULL)
		return;
	if (c->tls->active && c->bev) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

		if (ssl && SSL_shutdown(ssl) < 0)
			ERR_clear_error();
	}
	if (c->tls->timer)
		event_free(c->tls->timer);
	if (c->tls->ssl)
		SSL_free(c->tls->ssl);
	free(c->tls);
	c->tls = NULL;
}

bool smtpc_tls_active(const struct smtpc_conn *c)
{
	return c->tls && c->tls->active;
}

/* Does the EHLO reply in hand announce STARTTLS?  (Its lines are kept
 * with their "250-"; the first one is the server's name.) */
static bool starttls_offered(const struct smtpc_conn *c)
{
	const char *s = c->reply.text;

	if (c->state != SMTPC_EHLO)
		return false;
	while ((s = strchr(s, '\n')) != NULL) {
		size_t n = strcspn(++s, "\n");

		if (n >= 12 && strncasecmp(s + 4, "STARTTLS", 8) == 0
		    && (n == 12 || s[12] == ' '))
			return true;    /* "250-STARTTLS" */
	}
	return false;
}

/* The level for this connection: the destination's, or none when the
 * server is being tried again in plaintext. */
static int conn_level(struct smtpc_conn *c)
{
	if (c->lmtp || smtpc_tls_plaintext(c->d))
		return TLS_LEV_NONE;
	return smtpc_tls_policy(c->d)->level;
}

/* A failure of this server: soft (the next MX, else deferred), after
 * QUIT when the conversation is still sane. */
static int give_up(struct smtpc_conn *c, int status, const char *dsn,
		   bool quit, const char *text)
{
	smtpc_fail_site(c, status, dsn, text, quit);
	return SMTPC_TLS_GONE;
}

static void namaddrport(const struct smtpc_conn *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%d", c->namaddr, c->port);
}

int smtpc_tls_after_hello(struct smtpc_conn *c)
{
	int level = conn_level(c);
	bool offered = starttls_offered(c);
	char text[600], nap[sizeof c->namaddr + 8], err[400];
	struct smtpc_tls *t;

	if (smtpc_tls_active(c))
		return SMTPC_TLS_GO;
	if (offered && level == TLS_LEV_NONE && !c->lmtp
	    && cfg_bool(smtpc_cfg(c->d), "smtp_tls_note_starttls_offer")) {
		log_as_smtp(c, true);
		msg_info("Host offered STARTTLS: [%s]", c->host);
		log_as_smtp(c, false);
	}
	if (offered && level >= TLS_LEV_MAY) {
		namaddrport(c, nap, sizeof nap);
		t = tls_state(c);
		snprintf(text, sizeof text, "%s:%d", c->addr, c->port);
		t->ssl = tlsc_ssl_new(smtpc_cfg(c->d), smtpc_tls_policy(c->d), text,
				      err, sizeof err);
		if (t->ssl) {
			smtpc_send(c, "STARTTLS");
			c->state = SMTPC_STARTTLS;
			smtpc_timeouts(c, smtpc_par(c->d)->starttls_timeout,
				       smtpc_par(c->d)->starttls_timeout);
			return SMTPC_TLS_WAIT;
		}
		log_as_smtp(c, true);
		msg_warn("%s: cannot start TLS: %s", nap, err);
		log_as_smtp(c, false);
		if (level >= TLS_LEV_ENCRYPT)
			return give_up(c, 4, "4.7.5", true, "TLS is required, but "
				       "our TLS engine is unavailable");
		return SMTPC_TLS_GO;
	}
	if (level >= TLS_LEV_ENCRYPT) {
		snprintf(text, sizeof text, "TLS is required, but was not offered "
			 "by host %s", c->namaddr);
		return give_up(c, 4, "4.7.4", true, text);
	}
	return SMTPC_TLS_GO;
}

/* ---- the handshake ------------------------------------------------------- */

/* What OpenSSL said about a failed handshake, as Postfix logs it. */
static void log_handshake_failure(struct smtpc_conn *c, short what)
{
	char nap[sizeof c->namaddr + 8], buf[256];
	unsigned long e;
	bool any = false;

	namaddrport(c, nap, sizeof nap);
	log_as_smtp(c, true);
	while ((e = bufferevent_get_openssl_error(c->bev)) != 0) {
		ERR_error_string_n(e, buf, sizeof buf);
		msg_warn("TLS library problem: %s", buf);
		any = true;
	}
	tls_log_errors();
	msg_info("SSL_connect error to %s: %s", nap,
		 what & BEV_EVENT_TIMEOUT ? "timed out"
		 : what & BEV_EVENT_EOF ? "lost connection"
		 : any ? "handshake failure" : "lost connection");
	log_as_smtp(c, false);
}

static void handshake_failed(struct smtpc_conn *c, short what)
{
	int level = conn_level(c);

	log_handshake_failure(c, what);
	if (level == TLS_LEV_MAY) {
		smtpc_drop(c, SMTPC_END_PLAINTEXT);
		return;
	}
	give_up(c, 4, "4.7.5", false, "Cannot start TLS: handshake failure");
}

/* The handshake is done: is the server good enough for the level? */
static void tls_established(struct smtpc_conn *c)
{
	const struct tlsc_policy *p = smtpc_tls_policy(c->d);
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	int level = conn_level(c);
	char nap[sizeof c->namaddr + 8];
	struct tlsc_peer peer;
	bool trusted, matched;

	namaddrport(c, nap, sizeof nap);
	log_as_smtp(c, true);
	tlsc_peer_check(&peer, ssl, smtpc_cfg(c->d), p, c->host,
			smtpc_nexthop_domain(c->d), nap);
	log_as_smtp(c, false);
	trusted = peer.trusted;
	matched = peer.matched;
	tlsc_peer_free(&peer);
	c->tls->active = true;          /* from here on QUIT goes over TLS */
	smtpc_conn_setcb(c);
	smtpc_reply_reset(&c->reply);
	if (level >= TLS_LEV_VERIFY && !trusted) {
		give_up(c, 4, "4.7.5", true, "Server certificate not trusted");
		return;
	}
	if (level > TLS_LEV_ENCRYPT && !matched) {
		give_up(c, 4, "4.7.5", true, "Server certificate not verified");
		return;
	}
	c->features = 0;
	c->size_limit = 0;
	smtpc_send_hello(c);
}

static void on_handshake(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc_conn *c = arg;

	if (c->tls->timer)
		evtimer_del(c->tls->timer);
	if (what & BEV_EVENT_CONNECTED)
		tls_established(c);
	else
		handshake_failed(c, what);
}

static void on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
	handshake_failed(arg, BEV_EVENT_TIMEOUT);
}

static int start_handshake(struct smtpc_conn *c)
{
	struct smtpc_tls *t = c->tls;
	long long secs = smtpc_par(c->d)->starttls_timeout;
	struct timeval tv = { (time_t)(secs > 0 ? secs : 300), 0 };
	struct bufferevent *f;

	/* nothing the server sent before the handshake is kept */
	evbuffer_drain(bufferevent_get_input(c->bev),
		       evbuffer_get_length(bufferevent_get_input(c->bev)));
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	f = bufferevent_openssl_filter_new(c->base, c->bev, t->ssl,
					   BUFFEREVENT_SSL_CONNECTING,
					   BEV_OPT_CLOSE_ON_FREE
					   | BEV_OPT_DEFER_CALLBACKS);
	if (f == NULL) {
		msg_warn("%s: cannot make a TLS bufferevent", c->namaddr);
		return give_up(c, 4, "4.7.5", false,
			       "Cannot start TLS: handshake failure");
	}
	t->ssl = NULL;                  /* the filter frees it */
	c->bev = f;
	bufferevent_setcb(f, NULL, NULL, on_handshake, c);
	bufferevent_enable(f, EV_READ | EV_WRITE);
	if ((t->timer = evtimer_new(c->base, on_handshake_timeout, c)) == NULL)
		msg_fatal("smtp: out of memory");
	evtimer_add(t->timer, &tv);
	return SMTPC_TLS_WAIT;
}

int smtpc_tls_reply(struct smtpc_conn *c)
{
	char text[SMTPC_REPLY_TEXT_MAX + 300], one[SMTPC_REPLY_TEXT_MAX];
	char dsn[16];
	int status;

	if (c->reply.code / 100 == 2)
		return start_handshake(c);
	SSL_free(c->tls->ssl);
	c->tls->ssl = NULL;
	c->state = SMTPC_EHLO;          /* the EHLO features still hold */
	if (conn_level(c) < TLS_LEV_ENCRYPT)
		return SMTPC_TLS_GO;    /* go on in plaintext */
	status = c->reply.code / 100 == 5 ? 5 : 4;
	snprintf(dsn, sizeof dsn, "%s", c->reply.dsn);
	dsn[0] = (char)('0' + status);
	snprintf(text, sizeof text, "TLS is required, but host %s refused to "
		 "start TLS: %s", c->namaddr,
		 smtpc_reply_oneline(&c->reply, one, sizeof one));
	return give_up(c, status, dsn, true, text);
}
