/*
 * smtp_anvil.h - the SMTP server's per-client rate limits
 * (smtpd_client_connection_rate_limit, smtpd_client_message_rate_limit,
 * smtpd_client_recipient_rate_limit, smtpd_client_auth_rate_limit),
 * counted in anvil (anvil.h) across all workers, as Postfix's anvil
 * counts them for all its smtpd processes.
 */
#ifndef SLUICE_SMTP_ANVIL_H
#define SLUICE_SMTP_ANVIL_H

#include <stdbool.h>

#include "anvil.h"

struct smtp_session;

/* Count one `ev` of the session's client on its service (unless the
 * event's limit is 0 or the client is in
 * smtpd_client_event_limit_exceptions) and say whether that put it over
 * the limit in this anvil_rate_time_unit; if so the warning is logged
 * with Postfix's words ("warning: Recipient address rate limit exceeded:
 * 21 from host[addr] for service smtp").  The caller replies. */
bool smtp_anvil_over(struct smtp_session *s, enum anvil_event ev);

#endif
