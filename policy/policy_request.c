/*
 * policy_request.c - the attributes of a policy request, as Postfix's
 * smtpd_check.c sends them (SMTPD_POLICY_README), in its order:
 *
 *   request=smtpd_access_policy, protocol_state (CONNECT, EHLO/HELO,
 *   MAIL, RCPT, DATA/BDAT, END-OF-MESSAGE, ETRN), protocol_name (SMTP,
 *   ESMTP), helo_name, queue_id, sender, recipient, recipient_count,
 *   client_address, client_name, reverse_client_name, instance,
 *   sasl_method, sasl_username, sasl_sender, size, ccert_subject,
 *   ccert_issuer, ccert_fingerprint, ccert_pubkey_fingerprint,
 *   encryption_protocol, encryption_cipher, encryption_keysize,
 *   etrn_domain, stress, client_port, policy_context, server_address,
 *   server_port, compatibility_level, mail_version, then an empty line.
 *
 * Values as Postfix gives them: recipient only at RCPT, or at DATA and
 * END-OF-MESSAGE when the message has exactly one recipient;
 * recipient_count non-zero only at DATA and END-OF-MESSAGE; client_name
 * and reverse_client_name "unknown" without a name; size the MAIL SIZE=
 * value (0 without one), and at END-OF-MESSAGE the size of the message
 * received (as queued, with sluice's Received: header and LF line ends:
 * the size= sluice logs; Postfix counts the client's bytes with CRLF);
 * the TLS attributes of the session's TLS (empty in plaintext), the
 * certificate's CNs only when it verified, its fingerprints whenever the
 * client sent one; stress empty (sluice has no stress mode).  compatibility_level is what main.cf says,
 * else 3.6 (sluice has Postfix 3.6's defaults); mail_version is sluice's.
 *
 * `instance` is stable for one message and differs between messages
 * (policyd-spf and policyd-weight key their per-message cache on it):
 * "pid.session.transaction" in hex.  Sessions are numbered here, since
 * the session struct has no number of its own: a small table remembers
 * the number given to a session (its address, client address and port),
 * so a later session at the same address gets a new one.  This file owns
 * that table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "config.h"
#include "log.h"
#include "policy_int.h"
#include "queue.h"
#include "restriction.h"
#include "restriction_int.h"
#include "smtp_session.h"
#include "tls_common.h"
#include "version.h"

#define SESSION_SLOTS 256       /* sessions remembered for `instance` */

struct session_slot {
	const struct smtp_session *s;
	char addr[64];
	int port;
	unsigned serial;
};

static struct session_slot slots[SESSION_SLOTS];
static unsigned next_serial;

/* The number of this session (the same for all its requests). */
static unsigned session_serial(const struct smtp_session *s)
{
	struct session_slot *e;

	for (int i = 0; i < SESSION_SLOTS; i++) {
		e = &slots[i];
		if (e->s == s && e->port == s->client_port
		    && strcmp(e->addr, s->client_addr) == 0)
			return e->serial;
	}
	e = &slots[++next_serial % SESSION_SLOTS];
	e->s = s;
	e->port = s->client_port;
	snprintf(e->addr, sizeof e->addr, "%s", s->client_addr);
	e->serial = next_serial;
	return e->serial;
}

/* name=value, with a line break in the value made a space (a value can
 * never end the request early). */
static void attr(struct evbuffer *b, const char *name, const char *value)
{
	evbuffer_add_printf(b, "%s=", name);
	for (const char *p = value ? value : ""; *p; p++)
		evbuffer_add(b, *p == '\n' || *p == '\r' ? " " : p, 1);
	evbuffer_add(b, "\n", 1);
}

static void attr_num(struct evbuffer *b, const char *name, long long v)
{
	evbuffer_add_printf(b, "%s=%lld\n", name, v);
}

static const char *or_unknown(const char *v)
{
	return v && *v ? v : "unknown";
}

/* Postfix's recipient attribute for the stage. */
static const char *recipient(struct rcheck *c, const struct smtp_txn *t)
{
	switch (rcheck_list_stage(c)) {
	case RS_RELAY:
	case RS_RECIPIENT:
		return t->cur_rcpt;
	case RS_DATA:
	case RS_END_OF_DATA:
		return t->env.nrcpt == 1 ? t->env.rcpt[0].addr : "";
	default:
		return "";
	}
}

static int recipient_count(struct rcheck *c, const struct smtp_txn *t)
{
	enum rstage st = rcheck_list_stage(c);

	return st == RS_DATA || st == RS_END_OF_DATA ? t->env.nrcpt : 0;
}

/* At END-OF-MESSAGE the bytes of the message as queued (the size= of the
 * log line); before it the MAIL SIZE= value, 0 without one. */
static long long message_size(struct rcheck *c, const struct smtp_session *s)
{
	if (rcheck_list_stage(c) == RS_END_OF_DATA && s->txn.qf != NULL)
		return queue_content_size(s->txn.qf);
	return s->txn.declared_size > 0 ? s->txn.declared_size : 0;
}

char *policy_request_build(struct rcheck *c, const char *policy_context,
			   size_t *len)
{
	struct smtp_session *s = rcheck_session(c);
	const struct smtp_txn *t = &s->txn;
	const char *compat = cfg_lookup(rcheck_config(c), "compatibility_level");
	const struct tls_info *tls = s->tls;
	struct evbuffer *b = evbuffer_new();
	char instance[64];
	char *out;

	if (b == NULL)
		msg_fatal("policy: out of memory");
	snprintf(instance, sizeof instance, "%x.%x.%x", (unsigned)getpid(),
		 session_serial(s), (unsigned)s->cmd_count[CMD_MAIL]);
	attr(b, "request", "smtpd_access_policy");
	attr(b, "protocol_state", rcheck_where(c));
	attr(b, "protocol_name", s->esmtp ? "ESMTP" : "SMTP");
	attr(b, "helo_name", s->helo_name);
	attr(b, "queue_id", s->queue_id);
	attr(b, "sender", t->env.sender);
	attr(b, "recipient", recipient(c, t));
	attr_num(b, "recipient_count", recipient_count(c, t));
	attr(b, "client_address", s->client_addr);
	attr(b, "client_name", or_unknown(s->client_name));
	attr(b, "reverse_client_name", or_unknown(s->reverse_name));
	attr(b, "instance", instance);
	attr(b, "sasl_method", s->sasl_method);
	attr(b, "sasl_username", s->sasl_username);
	attr(b, "sasl_sender", s->sasl_sender);
	attr_num(b, "size", message_size(c, s));
	attr(b, "ccert_subject", tls && tls->peer_trusted ? tls->peer_CN : "");
	attr(b, "ccert_issuer", tls && tls->peer_trusted ? tls->issuer_CN : "");
	attr(b, "ccert_fingerprint", tls && tls->peer_cert
	     ? tls->peer_cert_fprint : "");
	attr(b, "ccert_pubkey_fingerprint", tls && tls->peer_cert
	     ? tls->peer_pkey_fprint : "");
	attr(b, "encryption_protocol", tls ? tls->protocol : "");
	attr(b, "encryption_cipher", tls ? tls->cipher : "");
	attr_num(b, "encryption_keysize", tls ? tls->cipher_bits : 0);
	attr(b, "etrn_domain", rcheck_list_stage(c) == RS_ETRN
	     ? rcheck_etrn_domain(c) : "");
	attr(b, "stress", "");
	attr_num(b, "client_port", s->client_port);
	attr(b, "policy_context", policy_context);
	attr(b, "server_address", s->server_addr);
	attr_num(b, "server_port", s->server_port);
	attr(b, "compatibility_level", compat && *compat ? compat : "3.6");
	attr(b, "mail_version", SLUICE_VERSION);
	evbuffer_add(b, "\n", 1);
	*len = evbuffer_get_length(b);
	if ((out = malloc(*len + 1)) == NULL)
		msg_fatal("policy: out of memory");
	evbuffer_remove(b, out, *len);
	out[*len] = 0;
	evbuffer_free(b);
	return out;
}
