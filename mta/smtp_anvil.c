/*
 * smtp_anvil.c - the SMTP server's per-client rate limits, counted in
 * anvil (anvil.h) per service, client address and anvil_rate_time_unit,
 * across all workers, with Postfix's parameters, replies and warnings:
 *
 *   smtpd_client_connection_rate_limit  421 4.7.0 HOST Error: too many connections from ADDR
 *     warning: Connection rate limit exceeded: N from host[addr] for service S
 *   smtpd_client_message_rate_limit     452 4.3.2 Too much mail from ADDR
 *     warning: Message delivery request rate limit exceeded: N from ... for service S
 *   smtpd_client_recipient_rate_limit   452 4.3.2 Too many recipients from ADDR
 *     warning: Recipient address rate limit exceeded: N from ... for service S
 *   smtpd_client_auth_rate_limit        450 4.7.1 Error: too many AUTH commands from ADDR
 *     warning: AUTH command rate limit exceeded: N from ... for service S
 *
 * 0 (the default) means no limit, and then nothing is counted; clients in
 * smtpd_client_event_limit_exceptions (default $mynetworks) are neither
 * counted nor limited.  The callers (smtp_session.c at connect,
 * smtp_commands.c at MAIL and RCPT, smtp_auth.c at AUTH) send the reply.
 * The parameter table of the three limits new here is params_anvil[]
 * (smtpd_client_auth_rate_limit and anvil_rate_time_unit are with SMTP
 * AUTH's, params_sasl.c).  No state of its own.
 */
#include "anvil.h"
#include "config.h"
#include "log.h"
#include "smtp_anvil.h"
#include "smtp_proto.h"
#include "smtp_session.h"

const struct param_def params_anvil[] = {
	{ "smtpd_client_connection_rate_limit", PT_INT, "0",
	  "The most connections one client address may make to a service per anvil_rate_time_unit (60s), across all workers; 0 means no limit.", NULL },
	{ "smtpd_client_message_rate_limit", PT_INT, "0",
	  "The most MAIL FROM commands (message delivery requests) one client address may send to a service per anvil_rate_time_unit, across all workers; 0 means no limit.", NULL },
	{ "smtpd_client_recipient_rate_limit", PT_INT, "0",
	  "The most RCPT TO commands one client address may send to a service per anvil_rate_time_unit, across all workers; 0 means no limit.", NULL },
	{ NULL, PT_STRING, NULL, NULL, NULL }
};

static const struct {
	const char *param;
	const char *warning;
} rate_limits[ANVIL_EV_COUNT] = {
	[ANVIL_EV_CONN] = { "smtpd_client_connection_rate_limit",
			    "Connection rate limit exceeded" },
	[ANVIL_EV_MAIL] = { "smtpd_client_message_rate_limit",
			    "Message delivery request rate limit exceeded" },
	[ANVIL_EV_RCPT] = { "smtpd_client_recipient_rate_limit",
			    "Recipient address rate limit exceeded" },
	[ANVIL_EV_AUTH] = { "smtpd_client_auth_rate_limit",
			    "AUTH command rate limit exceeded" },
};

bool smtp_anvil_over(struct smtp_session *s, enum anvil_event ev)
{
	const char *service = s->listener ? s->listener->service : "smtp";
	long long limit;
	int count;

	if (ev < 0 || ev >= ANVIL_EV_COUNT)
		return false;
	limit = cfg_int(s->cfg, rate_limits[ev].param);
	/* a client in smtpd_client_event_limit_exceptions was not counted
	 * at connect (smtp_session.c): the list is matched once per
	 * session there, not again on every MAIL, RCPT and AUTH */
	if (limit <= 0 || !s->anvil_counted)
		return false;
	count = anvil_rate(service, s->client_addr, ev,
			   cfg_time(s->cfg, "anvil_rate_time_unit"));
	if (count <= limit)
		return false;
	msg_warn("%s: %d from %s for service %s", rate_limits[ev].warning,
		 count, smtp_client_id(s), service);
	return true;
}
