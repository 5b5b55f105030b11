/*
 * milter_macros.c - the Sendmail macros sluice sends to milters: the
 * values (Postfix's names and meanings: j, _, v, i, {daemon_name},
 * {client_addr}, {mail_addr}, {rcpt_addr}, {auth_authen}, ...) and the
 * SMFIC_MACRO packet of each event, made of the stage's configured list
 * (milter_connect_macros, ...) plus the macros the milter asked for at
 * negotiation (SMFIC_OPTNEG macro lists, protocol 6).
 *
 * Promises: a macro without a value (no TLS, no AUTH, no queue ID yet)
 * is left out, never sent empty; a name asked for twice is sent once; a
 * recipient the restrictions rejected has Postfix's {rcpt_mailer}
 * "error", {rcpt_host} and {rcpt_addr} taken from the reject reply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#include "config.h"
#include "filter_chain.h"
#include "log.h"
#include "milter_int.h"
#include "plugins/sluice_plugin.h"
#include "smtp_session.h"

static char macro_buf[512];

/* The domain of an address, or NULL. */
static const char *domain_of(const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;

	return at && at[1] ? at + 1 : NULL;
}

/* A rejected recipient (SMFIP_RCPT_REJ), as Postfix's smtpd_milter.c
 * describes it from the reply "550 5.7.1 <a@b>: Recipient address
 * rejected: ...": {rcpt_mailer} "error", {rcpt_host} the enhanced status
 * code, {rcpt_addr} the text after the reply's third word. */
static const char *rejected_rcpt_value(const char *reply, const char *name)
{
	const char *dsn = reply + strcspn(reply, " "), *text;
	size_t n;

	dsn += strspn(dsn, " ");
	n = strcspn(dsn, " ");
	if (!strcmp(name, "{rcpt_mailer}"))
		return "error";
	if (!strcmp(name, "{rcpt_host}")) {
		snprintf(macro_buf, sizeof macro_buf, "%.*s", (int)n, dsn);
		return macro_buf;
	}
	text = dsn + n;
	text += strspn(text, " ");
	text += strcspn(text, " ");
	text += strspn(text, " ");
	snprintf(macro_buf, sizeof macro_buf, "%s", text);
	return macro_buf;
}

const char *milter_macro_value(struct smtp_session *s, const char *name)
{
	const struct config *c = s->cfg;
	const struct milter_session *ms = filter_milters(s);

	if (ms && ms->rej_reply && (!strcmp(name, "{rcpt_mailer}")
				    || !strcmp(name, "{rcpt_host}")
				    || !strcmp(name, "{rcpt_addr}")))
		return rejected_rcpt_value(ms->rej_reply, name);

	if (!strcmp(name, "{daemon_name}"))
		return cfg_str(c, "milter_macro_daemon_name");
	if (!strcmp(name, "v"))
		return cfg_str(c, "milter_macro_v");
	if (!strcmp(name, "{mail_host}"))
		return domain_of(s->txn.env.sender);
	if (!strcmp(name, "{mail_mailer}"))
		return s->txn.env.sender ? "smtp" : NULL;
	if (!strcmp(name, "{mail_addr}"))
		return s->txn.env.sender;
	if (!strcmp(name, "{rcpt_host}"))
		return domain_of(s->txn.cur_rcpt);
	if (!strcmp(name, "{rcpt_mailer}"))
		return s->txn.cur_rcpt ? "smtp" : NULL;
	if (!strcmp(name, "{auth_type}"))
		return s->sasl_method;
	if (!strcmp(name, "{auth_authen}"))
		return s->sasl_username;
	if (!strcmp(name, "{auth_author}"))
		return s->sasl_sender;
	if (!strcmp(name, "{client_connections}"))
		return NULL;
	if (!strcmp(name, "i") || !strcmp(name, "{queue_id}"))
		return s->queue_id[0] ? s->queue_id : NULL;
	if (!strcmp(name, "{client_resolve}")) {
		snprintf(macro_buf, sizeof macro_buf, "%s",
			 strcmp(s->client_name, "unknown") ? "OK" : "FAIL");
		return macro_buf;
	}
	/* the rest as plugins see them (j, _, {client_addr}, {client_name},
	 * {client_port}, {client_ptr}, {daemon_addr}, {daemon_port},
	 * {if_addr}, s, ...) */
	return sluice_attr((sluice_txn *)s, name);
}

/* The configured list of the stage of event `cmd`. */
static const char *stage_list(const struct config *c, int cmd, int *idx)
{
	switch (cmd) {
	case SMFIC_CONNECT: *idx = SMFIM_CONNECT;
		return cfg_str(c, "milter_connect_macros");
	case SMFIC_HELO: *idx = SMFIM_HELO;
		return cfg_str(c, "milter_helo_macros");
	case SMFIC_MAIL: *idx = SMFIM_ENVFROM;
		return cfg_str(c, "milter_mail_macros");
	case SMFIC_RCPT: *idx = SMFIM_ENVRCPT;
		return cfg_str(c, "milter_rcpt_macros");
	case SMFIC_DATA: *idx = SMFIM_DATA;
		return cfg_str(c, "milter_data_macros");
	case SMFIC_EOH: *idx = SMFIM_EOH;
		return cfg_str(c, "milter_end_of_header_macros");
	case SMFIC_BODYEOB: *idx = SMFIM_EOM;
		return cfg_str(c, "milter_end_of_data_macros");
	case SMFIC_UNKNOWN: *idx = -1;
		return cfg_str(c, "milter_unknown_command_macros");
	}
	*idx = -1;
	return "";
}

/* Add each name of `list` not already in `seen` (a " name " string). */
static void add_list(struct evbuffer *pkt, struct evbuffer *seen,
		     struct smtp_session *s, const char *list)
{
	char *copy = strdup(list ? list : ""), *save = NULL, *name;

	if (copy == NULL)
		msg_fatal("milter: out of memory");
	for (name = strtok_r(copy, ", \t\r\n", &save); name;
	     name = strtok_r(NULL, ", \t\r\n", &save)) {
		char key[300];
		const char *v;
		size_t slen = evbuffer_get_length(seen);

		snprintf(key, sizeof key, " %s ", name);
		if (slen && evbuffer_search(seen, key, strlen(key), NULL).pos >= 0)
			continue;
		evbuffer_add(seen, key, strlen(key));
		if ((v = milter_macro_value(s, name)) == NULL)
			continue;
		evbuffer_add(pkt, name, strlen(name) + 1);
		evbuffer_add(pkt, v, strlen(v) + 1);
	}
	free(copy);
}

void milter_send_macros(struct milter8 *m, struct smtp_session *s, int cmd)
{
	struct evbuffer *pkt = evbuffer_new(), *seen = evbuffer_new();
	unsigned char c = (unsigned char)cmd;
	const char *list;
	int idx;

	if (pkt == NULL || seen == NULL)
		msg_fatal("milter: out of memory");
	list = stage_list(s->cfg, cmd, &idx);
	evbuffer_add(pkt, &c, 1);
	add_list(pkt, seen, s, list);
	if (idx >= 0 && idx < M8_NMACRO_LISTS && m->macros[idx])
		add_list(pkt, seen, s, m->macros[idx]);
	if (evbuffer_get_length(pkt) > 1) {
		size_t n = evbuffer_get_length(pkt);

		milter8_send(m, SMFIC_MACRO, evbuffer_pullup(pkt, (ssize_t)n), n);
	}
	evbuffer_free(pkt);
	evbuffer_free(seen);
}
