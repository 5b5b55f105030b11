/*
 * tls_server.h - server-side TLS for SMTP sessions: per-listener
 * contexts, the handshake inside the event loop (libevent's
 * bufferevent_openssl filter over the session's socket bufferevent),
 * Postfix's log lines, the Received: clause, and the checks `sluice
 * check` and start-up make of certificates and keys.
 *
 * Promises:
 *   - tls_server_init() builds one SSL_CTX per listener whose
 *     security level is may/encrypt or that is in wrapper mode.  A
 *     worker calls it before dropping privileges (keys are 0600 root).
 *     A listener whose context cannot be built logs a warning; its
 *     sessions answer STARTTLS with "454 4.7.0 TLS not available due to
 *     local problem" (wrapper mode: the connection is closed).
 *   - tls_server_start() switches a session to TLS: input already
 *     buffered is discarded (no plaintext injection across STARTTLS),
 *     the handshake runs in the loop under smtpd_starttls_timeout.  A failed or stalled handshake
 *     is logged as Postfix does and ends that session only.
 *   - tls_server_check() reports, as "file:line: problem; fix", TLS
 *     configured without a certificate, unreadable or group/world-
 *     readable keys, keys that do not match their certificate, expired
 *     certificates (errors) and certificates whose names do not cover
 *     $myhostname (warning).
 */
#ifndef SLUICE_TLS_SERVER_H
#define SLUICE_TLS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include "smtp_session.h"

struct config;
struct listener;
struct sluice_config;
struct smtp_session;
struct diag;

/* Postfix's smtpd_tls_security_level with its obsolete spellings
 * (smtpd_use_tls, smtpd_enforce_tls): TLS_LEV_NONE/MAY/ENCRYPT. */
int tls_server_level(const struct config *c);
bool tls_server_wrappermode(const struct config *c);

void tls_server_init(const struct sluice_config *sc);
/* Is a server context available for this listener? */
bool tls_server_available(const struct listener *l);

/* Start the handshake; false when no context (nothing changed then).
 * When it succeeds, a wrapper-mode session is greeted
 * (smtp_session_greet); a STARTTLS session forgets its HELO and
 * transaction and reads the next command. */
bool tls_server_start(struct smtp_session *s);
/* Closing a TLS session: are encrypted bytes still waiting for the
 * socket?  Then the session is ended (smtp_session_abort) once they
 * left, and this returns true. */
bool tls_server_output_pending(struct smtp_session *s);
/* Free the session's TLS state (from session_free). */
void tls_server_session_free(struct smtp_session *s);

/* The Received: header's TLS lines, each led by "\n\t" ("\n\t(using
 * TLSv1.3 with cipher ...)\n\t(No client certificate requested)"), or
 * "" in plaintext or without smtpd_tls_received_header. */
void tls_server_received(const struct smtp_session *s, char *buf, size_t len);

/* `sluice check` and start-up: every listener's certificates and keys. */
void tls_server_check(struct diag *d, const struct sluice_config *sc,
		      const char *main_path);

/* smtp_starttls.c: is STARTTLS offered in EHLO?  Must this command
 * wait for TLS (then "530 5.7.0 Must issue a STARTTLS command first" was
 * queued and the caller returns)?  The STARTTLS command. */
bool smtp_starttls_offered(const struct smtp_session *s);
bool smtp_starttls_required(struct smtp_session *s, enum smtp_cmd_id id);
void smtp_cmd_starttls(struct smtp_session *s, char *arg);

/* Provided by smtp_session.c for this module: hand the session its new
 * (TLS) bufferevent back with the session's own callbacks and timeouts,
 * greet (wrapper mode), and end a session whose handshake failed. */
void smtp_session_tls_ready(struct smtp_session *s);
void smtp_session_greet(struct smtp_session *s);
void smtp_session_abort(struct smtp_session *s);

#endif
