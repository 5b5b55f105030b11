/*
 * smtp_starttls.c - the STARTTLS command (RFC 3207) and what the TLS
 * security level means for the other commands, as Postfix does it.
 *
 * Promises:
 *   - STARTTLS is offered in the EHLO reply when the listener's
 *     smtpd_tls_security_level is may or encrypt (or smtpd_use_tls /
 *     smtpd_enforce_tls), the session is not encrypted yet, and the
 *     listener is not in wrapper mode;
 *   - replies: "220 2.0.0 Ready to start TLS"; "501 5.5.4 Syntax:
 *     STARTTLS" with an argument; "554 5.5.1 Error: TLS already active";
 *     "502 5.5.1 Error: command not implemented" where TLS is off; "454
 *     4.7.0 TLS not available due to local problem" when the listener's
 *     certificate could not be loaded;
 *   - the 220 leaves in plaintext before the handshake starts, and input
 *     pipelined behind STARTTLS is discarded (tls_server_start);
 *   - with security level encrypt, every command but HELO, EHLO,
 *     STARTTLS, RSET, NOOP and QUIT is answered "530 5.7.0 Must issue a
 *     STARTTLS command first" until TLS is active.
 */
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "config.h"
#include "log.h"
#include "smtp_proto.h"
#include "tls_common.h"
#include "tls_server.h"

bool smtp_starttls_offered(const struct smtp_session *s)
{
	return s->tls == NULL && !s->tls_wrapper
		&& tls_server_level(s->cfg) >= TLS_LEV_MAY;
}

bool smtp_starttls_required(struct smtp_session *s, enum smtp_cmd_id id)
{
	switch (id) {
	case CMD_HELO: case CMD_EHLO: case CMD_STARTTLS:
	case CMD_RSET: case CMD_NOOP: case CMD_QUIT:
		return false;
	default:
		break;
	}
	if (s->tls != NULL || s->tls_wrapper
	    || tls_server_level(s->cfg) < TLS_LEV_ENCRYPT)
		return false;
	smtp_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
	return true;
}

void smtp_cmd_starttls(struct smtp_session *s, char *arg)
{
	if (*arg != 0) {
		smtp_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (s->tls != NULL) {
		smtp_reply(s, "554 5.5.1 Error: TLS already active");
		return;
	}
	/* smtpd_discard_ehlo_keywords = starttls: not offered, not accepted */
	if (!smtp_starttls_offered(s)
	    || smtp_ehlo_keyword_discarded(s, "STARTTLS")) {
		smtp_reply(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	if (!tls_server_available(s->listener)) {
		smtp_reply(s, "454 4.7.0 TLS not available due to local problem");
		return;
	}
	smtp_reply_raw(s, "220 2.0.0 Ready to start TLS");
	/* the 220 (and any reply before it) goes out in plaintext, now */
	bufferevent_write_buffer(s->bev, s->out);
	if (!tls_server_start(s)) {
		msg_warn("cannot start TLS for %s", smtp_client_id(s));
		smtp_reply_close(s, "421 4.7.0 %s Error: TLS not available due "
				 "to local problem", smtp_hostname(s));
	}
}
