/*
 * smtp_log.c - the SMTP server's log lines, in Postfix's shapes, so that
 * pflogsumm and log exporters read them unchanged:
 *
 *   NOQUEUE: reject: RCPT from host[ip]: 554 5.7.1 <x@y>: ...; from=<a@b> to=<x@y> proto=ESMTP helo=<h>
 *   6741A3F20A3E5001: hold: END-OF-MESSAGE from host[ip]: reason; from=<...> to=<...> proto=ESMTP helo=<...>
 *   disconnect from host[ip] ehlo=1 mail=1 rcpt=0/1 data=0/1 quit=1 commands=3/5
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "filter_chain.h"
#include "log.h"
#include "smtp_proto.h"

const char *smtp_client_id(const struct smtp_session *s)
{
	return s->client_id;
}

const char *smtp_queue_id_or_noqueue(const struct smtp_session *s)
{
	return s->queue_id[0] ? s->queue_id : "NOQUEUE";
}

void smtp_log_reject(struct smtp_session *s, const char *action,
		     const char *stage, int code, const char *dsn,
		     const char *text)
{
	char codes[32] = "";
	char to[600] = "", from[600] = "", helo[600] = "";
	const char *rcpt = s->txn.cur_rcpt;

	if (filter_reply_by_milter(s) && !strcmp(action, "reject")) {
		action = "milter-reject";       /* as Postfix names it */
		if (!strcmp(stage, "END-OF-MESSAGE") && code)
			code = -1;      /* Postfix's cleanup logs no reply code */
	}
	if (code > 0)
		snprintf(codes, sizeof codes, "%d %s ", code, dsn);
	else if (code < 0)
		snprintf(codes, sizeof codes, "%s ", dsn);
	if (rcpt == NULL && s->txn.env.nrcpt > 0)
		rcpt = s->txn.env.rcpt[0].addr;
	if (s->txn.env.sender)
		snprintf(from, sizeof from, " from=<%s>", s->txn.env.sender);
	if (rcpt)
		snprintf(to, sizeof to, " to=<%s>", rcpt);
	if (s->helo_name)
		snprintf(helo, sizeof helo, " helo=<%s>", s->helo_name);
	msg_info("%s: %s: %s from %s: %s%s;%s%s proto=%s%s",
		 smtp_queue_id_or_noqueue(s), action, stage, smtp_client_id(s),
		 codes, text, from, to, s->esmtp ? "ESMTP" : "SMTP", helo);
}

void smtp_log_disconnect(struct smtp_session *s)
{
	static const struct { enum smtp_cmd_id id; const char *name; } order[] = {
		{ CMD_HELO, "helo" }, { CMD_EHLO, "ehlo" },
		{ CMD_STARTTLS, "starttls" }, { CMD_AUTH, "auth" },
		{ CMD_MAIL, "mail" }, { CMD_RCPT, "rcpt" }, { CMD_DATA, "data" },
		{ CMD_BDAT, "bdat" }, { CMD_RSET, "rset" }, { CMD_NOOP, "noop" },
		{ CMD_VRFY, "vrfy" }, { CMD_ETRN, "etrn" }, { CMD_HELP, "help" },
		{ CMD_QUIT, "quit" }, { CMD_UNKNOWN, "unknown" },
	};
	struct evbuffer *b = evbuffer_new();
	int bad_total = 0;
	char *line;
	size_t len;

	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
		int n = s->cmd_count[order[i].id], bad = s->cmd_bad[order[i].id];

		if (n == 0)
			continue;
		bad_total += bad;
		if (bad)
			evbuffer_add_printf(b, " %s=%d/%d", order[i].name, n - bad, n);
		else
			evbuffer_add_printf(b, " %s=%d", order[i].name, n);
	}
	if (bad_total)
		evbuffer_add_printf(b, " commands=%d/%d", s->cmd_total - bad_total,
				    s->cmd_total);
	else
		evbuffer_add_printf(b, " commands=%d", s->cmd_total);
	len = evbuffer_get_length(b);
	line = (char *)evbuffer_pullup(b, len);
	msg_info("disconnect from %s%.*s", smtp_client_id(s), (int)len, line);
	evbuffer_free(b);
}
