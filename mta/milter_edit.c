/*
 * milter_edit.c - the end-of-message exchange with one milter, and the
 * modifications it makes.
 *
 * As Postfix does, sluice gives milters the message once it is complete:
 * each header (SMFIC_HEADER), the end of headers (SMFIC_EOH), the body in
 * chunks of at most 64K with CRLF line ends (SMFIC_BODY), then
 * SMFIC_BODYEOB; the milter answers with modification requests and one
 * final reply.  Milters run one after another, and each sees the headers
 * and body as the milters before it left them.
 *
 * Modifications go through the same core functions as a plugin's eom
 * edits (plugin_api.c: sluice_header_add/insert/change,
 * sluice_rcpt_add/delete), so both kinds of filter edit the message the
 * same way.  A replaced body is kept here (LF line ends) until the commit
 * writes it to the queue file (milter_replace_content()).
 *
 * Promises: a modification the milter did not negotiate (SMFIF_*) is
 * refused with a warning; of smfi_chgfrom's ESMTP parameters RET= and
 * ENVID= are kept, the others ignored with a warning; SMFIP_NOHDRS/NOEOH/NOBODY and SMFIP_NR_HDR /
 * NR_EOH / NR_BODY are honoured; SMFIR_SKIP ends the body early.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#include "filter_chain.h"
#include "log.h"
#include "milter_int.h"
#include "plugins/sluice_plugin.h"
#include "queue.h"
#include "smtp_proto.h"
#include "smtp_session.h"

/* Raw body bytes per SMFIC_BODY: LF becomes CRLF, so at most twice this
 * goes out, within MILTER_CHUNK_SIZE. */
#define RAW_CHUNK (MILTER_CHUNK_SIZE / 2)

static void send_eoh(struct milter_session *ms);
static void send_body(struct milter_session *ms);
static void send_eom(struct milter_session *ms);

static struct milter8 *cur(struct milter_session *ms)
{
	return ms->m[ms->cur];
}

/* A reply to a header, EOH or body chunk: CONTINUE goes on, SKIP (body)
 * goes to the end, anything else is this milter's final word. */
static void content_reply(struct milter8 *m, int cmd, const char *data,
			  size_t len, void *arg)
{
	struct milter_session *ms = arg;

	/* ms->hdr: below nhdr a header waits, at nhdr the EOH, above the body */
	if (cmd == SMFIR_CONTINUE) {
		if (ms->hdr < ms->s->txn.nhdr && ms->hdr >= 0) {
			ms->hdr++;
			send_eoh(ms);   /* sends the next header or the EOH */
		} else if (ms->hdr == ms->s->txn.nhdr) {
			ms->hdr++;      /* EOH answered */
			send_body(ms);
		} else {
			send_body(ms);
		}
		return;
	}
	if (cmd == SMFIR_SKIP && ms->hdr > ms->s->txn.nhdr) {
		send_eom(ms);
		return;
	}
	if (cmd >= 0)
		m->in_message = false;
	milter_stage_reply(ms, cmd, data, len);
}

/* Headers from ms->hdr on, then the EOH. */
static void send_eoh(struct milter_session *ms)
{
	struct milter8 *m = cur(ms);
	struct smtp_txn *t = &ms->s->txn;

	while (ms->hdr < t->nhdr && !(m->pflags & SMFIP_NOHDRS)) {
		struct evbuffer *pkt = evbuffer_new();
		const char *v = t->hdr[ms->hdr].value;
		size_t n;

		if (!(m->pflags & SMFIP_HDR_LEADSPC))
			v += strspn(v, " \t");
		evbuffer_add(pkt, t->hdr[ms->hdr].name,
			     strlen(t->hdr[ms->hdr].name) + 1);
		evbuffer_add(pkt, v, strlen(v) + 1);
		n = evbuffer_get_length(pkt);
		milter8_send(m, SMFIC_HEADER, evbuffer_pullup(pkt, (ssize_t)n), n);
		evbuffer_free(pkt);
		if (!(m->pflags & SMFIP_NR_HDR)) {
			milter8_expect(m, "SMFIC_HEADER", m->conf->content_timeout,
				       content_reply, ms);
			return;
		}
		ms->hdr++;
	}
	ms->hdr = t->nhdr;
	if (m->pflags & SMFIP_NOEOH) {
		ms->hdr++;
		send_body(ms);
		return;
	}
	milter_send_macros(m, ms->s, SMFIC_EOH);
	milter8_send(m, SMFIC_EOH, NULL, 0);
	if (m->pflags & SMFIP_NR_EOH) {
		ms->hdr++;
		send_body(ms);
		return;
	}
	milter8_expect(m, "SMFIC_EOH", m->conf->content_timeout,
		       content_reply, ms);
}

/* Up to `max` raw body bytes at ms->body_off.  Returns the count, 0 at
 * the end, -1 on a read error. */
static long body_read(struct milter_session *ms, char *buf, size_t max)
{
	if (ms->body_replaced) {
		struct evbuffer_ptr pos;

		if (evbuffer_ptr_set(ms->new_body, &pos, (size_t)ms->body_off,
				     EVBUFFER_PTR_SET) < 0)
			return 0;
		return (long)evbuffer_copyout_from(ms->new_body, &pos, buf, max);
	}
	{
		long long end = queue_content_size(ms->s->txn.qf);

		if (ms->body_off >= end)
			return 0;
		if ((long long)max > end - ms->body_off)
			max = (size_t)(end - ms->body_off);
		return queue_pread(ms->s->txn.qf, buf, max, ms->body_off);
	}
}

static void send_body(struct milter_session *ms)
{
	struct milter8 *m = cur(ms);
	char out[2 * RAW_CHUNK];
	long n;
	size_t o = 0;

	if (ms->chunk == NULL && (ms->chunk = malloc(RAW_CHUNK)) == NULL)
		msg_fatal("milter: out of memory");
	for (;;) {
		if ((m->pflags & SMFIP_NOBODY) || ms->skip_body) {
			send_eom(ms);
			return;
		}
		if ((n = body_read(ms, ms->chunk, RAW_CHUNK)) < 0) {
			msg_warn("%s: milter: cannot read the queue file back: %s",
				 ms->s->queue_id, strerror(errno));
			n = 0;
		}
		if (n == 0) {
			send_eom(ms);
			return;
		}
		ms->body_off += n;
		o = 0;
		for (long i = 0; i < n; i++) {
			if (ms->chunk[i] == '\n')
				out[o++] = '\r';
			out[o++] = ms->chunk[i];
		}
		milter8_send(m, SMFIC_BODY, out, o);
		if (!(m->pflags & SMFIP_NR_BODY)) {
			milter8_expect(m, "SMFIC_BODY", m->conf->content_timeout,
				       content_reply, ms);
			return;
		}
	}
}

/* ---- modifications ---------------------------------------------------- */

static bool allowed(struct milter8 *m, uint32_t flag, const char *what)
{
	if (m->actions & flag)
		return true;
	msg_warn("milter %s: %s request without negotiating it; ignored",
		 m->conf->name, what);
	return false;
}

/* Two NUL-terminated strings at the start of d (len bytes). */
static bool two_strings(const char *d, size_t len, const char **a,
			const char **b)
{
	size_t n = strnlen(d, len);

	if (n >= len)
		return false;
	*a = d;
	*b = d + n + 1;
	return strnlen(*b, len - n - 1) < len - n - 1;
}

static uint32_t get32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

/* The DSN parameters given with SMFIR_ADDRCPT_PAR ("NOTIFY=SUCCESS,
 * FAILURE ORCPT=rfc822;a@b") on the recipient just added; others are
 * ignored. */
static void rcpt_args(struct smtp_session *s, const char *args)
{
	struct queue_rcpt *r = &s->txn.env.rcpt[s->txn.env.nrcpt - 1];
	char *copy = strdup(args), *save = NULL, *a;

	if (copy == NULL)
		msg_fatal("milter: out of memory");
	for (a = strtok_r(copy, " ", &save); a; a = strtok_r(NULL, " ", &save)) {
		if (!strncasecmp(a, "NOTIFY=", 7)) {
			char *save2 = NULL, *w;

			r->notify = 0;
			for (w = strtok_r(a + 7, ",", &save2); w;
			     w = strtok_r(NULL, ",", &save2))
				r->notify |= !strcasecmp(w, "NEVER") ? DSN_NOTIFY_NEVER
					: !strcasecmp(w, "SUCCESS") ? DSN_NOTIFY_SUCCESS
					: !strcasecmp(w, "FAILURE") ? DSN_NOTIFY_FAILURE
					: !strcasecmp(w, "DELAY") ? DSN_NOTIFY_DELAY : 0;
		} else if (!strncasecmp(a, "ORCPT=", 6) && r->orcpt == NULL) {
			r->orcpt = strdup(a + 6);
		}
	}
	free(copy);
}

/* The ESMTP parameters given with SMFIR_CHGFROM: RET= and ENVID= are
 * the DSN parameters sluice keeps for the message and replace the
 * client's; the others (SIZE, BODY, ...) describe the client's
 * transfer, not the message, and are ignored with a warning, as Postfix's
 * cleanup ignores them all. */
static void sender_args(struct milter_session *ms, const char *args)
{
	struct queue_envelope *env = &ms->s->txn.env;
	char *copy = strdup(args), *save = NULL, *a;

	if (copy == NULL)
		msg_fatal("milter: out of memory");
	for (a = strtok_r(copy, " ", &save); a; a = strtok_r(NULL, " ", &save)) {
		if (!strcasecmp(a, "RET=FULL"))
			env->ret = DSN_RET_FULL;
		else if (!strcasecmp(a, "RET=HDRS"))
			env->ret = DSN_RET_HDRS;
		else if (!strncasecmp(a, "ENVID=", 6) && smtp_xtext_valid(a + 6)
			 && strlen(a + 6) <= 100) {
			free(env->envid);
			if ((env->envid = strdup(a + 6)) == NULL)
				msg_fatal("milter: out of memory");
		} else
			msg_warn("%s: milter %s: ignoring ESMTP arguments \"%.100s\"",
				 ms->s->queue_id, cur(ms)->conf->name, a);
	}
	free(copy);
}

static void change_sender(struct smtp_session *s, const char *addr)
{
	size_t n = strlen(addr);
	char *a;

	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>') {
		addr++;
		n -= 2;
	}
	if ((a = strndup(addr, n)) == NULL)
		msg_fatal("milter: out of memory");
	free(s->txn.env.sender);
	s->txn.env.sender = a;
}

/* Apply one modification request.  false: malformed. */
static bool modify(struct milter_session *ms, int cmd, const char *d,
		   size_t len)
{
	struct milter8 *m = cur(ms);
	sluice_txn *t = (sluice_txn *)ms->s;
	const char *a, *b;

	switch (cmd) {
	case SMFIR_ADDHEADER:
		if (!two_strings(d, len, &a, &b))
			return false;
		if ((m->pflags & SMFIP_HDR_LEADSPC) && *b == ' ')
			b++;    /* we add the space after the colon */
		if (allowed(m, SMFIF_ADDHDRS, "add header"))
			(void)sluice_header_add(t, a, b);
		return true;
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		if (len < 4 || !two_strings(d + 4, len - 4, &a, &b))
			return false;
		if ((m->pflags & SMFIP_HDR_LEADSPC) && *b == ' ')
			b++;
		if (cmd == SMFIR_INSHEADER) {
			if (allowed(m, SMFIF_ADDHDRS, "insert header"))
				(void)sluice_header_insert(t, (int)get32(d), a, b);
		} else if (allowed(m, SMFIF_CHGHDRS, "change header")) {
			int idx = (int)get32(d);

			(void)sluice_header_change(t, a, idx < 1 ? 1 : idx,
						   *b ? b : NULL);
		}
		return true;
	case SMFIR_ADDRCPT:
		if (strnlen(d, len) >= len)
			return false;
		if (allowed(m, SMFIF_ADDRCPT, "add recipient"))
			(void)sluice_rcpt_add(t, d);
		return true;
	case SMFIR_ADDRCPT_PAR:
		if (strnlen(d, len) >= len)
			return false;
		if (allowed(m, SMFIF_ADDRCPT_PAR, "add recipient with parameters")
		    && sluice_rcpt_add(t, d) == 0 && strnlen(d, len) + 1 < len)
			rcpt_args(ms->s, d + strlen(d) + 1);
		return true;
	case SMFIR_DELRCPT:
		if (strnlen(d, len) >= len)
			return false;
		if (allowed(m, SMFIF_DELRCPT, "delete recipient"))
			(void)sluice_rcpt_delete(t, d);
		return true;
	case SMFIR_CHGFROM:
		if (strnlen(d, len) >= len)
			return false;
		if (allowed(m, SMFIF_CHGFROM, "change sender")) {
			change_sender(ms->s, d);
			if (strlen(d) + 1 < len)
				sender_args(ms, d + strlen(d) + 1);
		}
		return true;
	case SMFIR_REPLBODY:
		if (!allowed(m, SMFIF_CHGBODY, "replace body"))
			return true;
		if (ms->repl == NULL && (ms->repl = evbuffer_new()) == NULL)
			msg_fatal("milter: out of memory");
		evbuffer_add(ms->repl, d, len);
		return true;
	case SMFIR_QUARANTINE:
		if (!allowed(m, SMFIF_QUARANTINE, "quarantine"))
			return true;
		free(ms->s->txn.hold_reason);
		ms->s->txn.hold_reason = strndup(d, strnlen(d, len));
		ms->s->txn.hold = true;
		smtp_log_reject(ms->s, "milter-hold", "END-OF-MESSAGE", 0, NULL,
				"milter triggers HOLD action");
		ms->s->txn.hold_logged = true;
		return true;
	}
	return false;
}

/* The milter's replacement body (CRLF from the wire) becomes the body
 * the next milters and the queue see: LF line ends, after the empty line
 * that ends the headers. */
static void take_new_body(struct milter_session *ms)
{
	size_t n = evbuffer_get_length(ms->repl);
	const char *p = (const char *)evbuffer_pullup(ms->repl, (ssize_t)n);

	if (ms->new_body)
		evbuffer_free(ms->new_body);
	if ((ms->new_body = evbuffer_new()) == NULL)
		msg_fatal("milter: out of memory");
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			continue;
		evbuffer_add(ms->new_body, &p[i], 1);
	}
	ms->body_replaced = true;
	evbuffer_free(ms->repl);
	ms->repl = NULL;
}

static void eom_reply(struct milter8 *m, int cmd, const char *data,
		      size_t len, void *arg)
{
	struct milter_session *ms = arg;

	if (cmd >= 0 && cmd != SMFIR_CONTINUE && cmd != SMFIR_ACCEPT
	    && cmd != SMFIR_REJECT && cmd != SMFIR_TEMPFAIL
	    && cmd != SMFIR_DISCARD && cmd != SMFIR_REPLYCODE
	    && cmd != SMFIR_SHUTDOWN && cmd != SMFIR_CONN_FAIL) {
		if (!modify(ms, cmd, data, len)) {
			msg_warn("milter %s: malformed or unexpected '%c' reply "
				 "after SMFIC_BODYEOB", m->conf->name, cmd);
			milter8_fail(m);
			milter_stage_failed(ms);
			return;
		}
		milter8_expect(m, "SMFIC_BODYEOB", m->conf->content_timeout,
			       eom_reply, ms);
		return;
	}
	if (cmd >= 0)
		m->in_message = false;
	if (ms->repl && (cmd == SMFIR_CONTINUE || cmd == SMFIR_ACCEPT))
		take_new_body(ms);
	else if (ms->repl) {
		evbuffer_free(ms->repl);
		ms->repl = NULL;
	}
	milter_stage_reply(ms, cmd, data, len);
}

static void send_eom(struct milter_session *ms)
{
	struct milter8 *m = cur(ms);

	milter_send_macros(m, ms->s, SMFIC_BODYEOB);
	milter8_send(m, SMFIC_BODYEOB, NULL, 0);
	milter8_expect(m, "SMFIC_BODYEOB", m->conf->content_timeout,
		       eom_reply, ms);
}

/* The body starts after the empty line that ends the headers. */
static long long body_start(struct milter_session *ms)
{
	long long off;
	char c;

	if (ms->body_replaced)
		return 0;
	off = ms->s->txn.qf ? queue_body_offset(ms->s->txn.qf) : -1;
	if (off < 0)
		return ms->s->txn.qf ? queue_content_size(ms->s->txn.qf) : 0;
	if (queue_pread(ms->s->txn.qf, &c, 1, off) == 1 && c == '\n')
		off++;
	return off;
}

void milter_eom_start(struct milter_session *ms)
{
	ms->hdr = 0;
	ms->skip_body = false;
	ms->body_off = body_start(ms);
	if (ms->repl) {
		evbuffer_free(ms->repl);
		ms->repl = NULL;
	}
	send_eoh(ms);
}

bool milter_body_replaced(const struct milter_session *ms)
{
	return ms && ms->body_replaced;
}

int milter_replace_content(struct milter_session *ms, struct queue_file *qf,
			   const char *hdrs, size_t hlen)
{
	struct evbuffer *b;
	size_t n;
	int rc;

	if (!milter_body_replaced(ms))
		return queue_replace_headers(qf, hdrs, hlen);
	if ((b = evbuffer_new()) == NULL)
		msg_fatal("milter: out of memory");
	evbuffer_add(b, hdrs, hlen);
	evbuffer_add(b, "\n", 1);
	evbuffer_add_buffer(b, ms->new_body);
	n = evbuffer_get_length(b);
	rc = queue_drop_body(qf);
	if (rc == 0)
		rc = queue_replace_headers(qf, (const char *)evbuffer_pullup(b, (ssize_t)n), n);
	evbuffer_free(b);
	return rc;
}
