/*
 * smtp_auth.h - SMTP AUTH (RFC 4954) in the SMTP server, as Postfix's
 * smtpd does it: the EHLO keyword, the AUTH command and its 334
 * exchange, the AUTH= parameter of MAIL, and what authentication leaves
 * behind (sasl_method, sasl_username, sasl_sender in the session, the
 * envelope, the logs and the Received: header).
 *
 * Used by smtp_commands.c (dispatch, EHLO, MAIL), smtp_data.c (Received:)
 * and smtp_session.c (freeing).  The SASL backends are behind
 * sasl_server.h.
 */
#ifndef SLUICE_SMTP_AUTH_H
#define SLUICE_SMTP_AUTH_H

#include <stdbool.h>

struct smtp_session;

/* The AUTH command. */
void smtp_auth_cmd(struct smtp_session *s, char *arg);
/* Is an exchange waiting for a client response?  Then the next input line
 * goes to smtp_auth_response(), not to the command table. */
bool smtp_auth_busy(const struct smtp_session *s);
void smtp_auth_response(struct smtp_session *s, char *line);
/* EHLO: append "AUTH mechs" (and with broken_sasl_auth_clients also
 * "AUTH=mechs") to kw[*n], kw having room for two more; the strings live
 * until the next EHLO. */
void smtp_auth_ehlo(struct smtp_session *s, const char **kw, int *n);
/* MAIL: forget the previous AUTH= and put the login into the envelope;
 * then smtp_auth_mail_param() for an AUTH= parameter: NULL, or an error
 * reply. */
void smtp_auth_mail_start(struct smtp_session *s);
const char *smtp_auth_mail_param(struct smtp_session *s, const char *value);
/* ", sasl_method=PLAIN, sasl_username=u, sasl_sender=x" for the
 * "client=" line, "" without a login. */
const char *smtp_auth_log_fields(const struct smtp_session *s);
/* The Received: header's "\n\t(Authenticated sender: user)" with
 * smtpd_sasl_authenticated_header, else "". */
const char *smtp_auth_received(const struct smtp_session *s);
/* The protocol suffix: "A" once authenticated, else "". */
const char *smtp_auth_proto_suffix(const struct smtp_session *s);
/* STARTTLS completed: forget the login (RFC 3207 4.2); the next EHLO
 * offers what TLS allows.  (The next EHLO, AUTH or MAIL notices the TLS
 * on its own as well.) */
void smtp_auth_reset(struct smtp_session *s);
void smtp_auth_free(struct smtp_session *s);

#endif
