/*
 * sasl_client.h - SMTP AUTH in the SMTP client (sasl_client.c), as
 * Postfix's smtp(8) does it with Cyrus SASL: with smtp_sasl_auth_enable,
 * a server that offers AUTH and a password in smtp_sasl_password_maps
 * (by next-hop destination, then by server name), authenticate after the
 * EHLO (and after STARTTLS when there is TLS) with the best mechanism the
 * server offers that smtp_sasl_mechanism_filter keeps and the security
 * options (smtp_sasl_security_options, smtp_sasl_tls_security_options
 * under TLS) allow.  A failure defers the mail (4.7.0, as Postfix's
 * smtp_sasl_auth_soft_bounce) and the next server is tried.
 *
 * Used by smtp_client_proto.c only.
 */
#ifndef SLUICE_SASL_CLIENT_H
#define SLUICE_SASL_CLIENT_H

struct smtpc_conn;

/* The EHLO reply is in hand: note the AUTH mechanisms it offers. */
void smtpc_sasl_ehlo(struct smtpc_conn *c);
/* The handshake is complete (STARTTLS included): SMTPC_SASL_GO when
 * there is nothing to do (go on with the transaction), SMTPC_SASL_WAIT
 * when AUTH was sent, SMTPC_SASL_GONE when the session ended. */
enum { SMTPC_SASL_GO = 0, SMTPC_SASL_WAIT = 1, SMTPC_SASL_GONE = -1 };
int smtpc_sasl_start(struct smtpc_conn *c);
/* A reply in state SMTPC_AUTH: the same answers. */
int smtpc_sasl_reply(struct smtpc_conn *c);
void smtpc_sasl_free(struct smtpc_conn *c);

#endif
