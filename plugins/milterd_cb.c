/*
 * milterd_cb.c - sluice-milterd's libmilter callbacks: each milter event
 * becomes the plugin stage sluice's smtpd would run, and each verdict the
 * milter reply Postfix or Sendmail understands.
 *
 *   xxfi_connect  -> connect hooks     xxfi_header -> kept for the header hooks
 *   xxfi_helo     -> helo hooks        xxfi_eoh, xxfi_body -> the content is
 *   xxfi_envfrom  -> mail hooks            kept for the body hooks (only when a
 *   xxfi_envrcpt  -> rcpt hooks            plugin has one: milterd_content.c)
 *   xxfi_data     -> data hooks        xxfi_eom    -> header, eoh and body
 *   xxfi_abort    -> reset hooks           hooks, then eom hooks and edits
 *   xxfi_close    -> close hooks
 *
 * Verdicts: DUNNO/OK -> SMFIS_CONTINUE; REJECT -> smfi_setreply with the
 * plugin's code, enhanced code and text (or Postfix's "... rejected:
 * Access denied" text for the stage) and SMFIS_REJECT; DEFER (or a 4xx
 * reply) -> the same with SMFIS_TEMPFAIL; DISCARD -> SMFIS_DISCARD (at
 * connect or HELO: every message of the connection, at end of message);
 * HOLD -> smfi_quarantine at end of message.  Edits made by eom hooks go
 * back as smfi_addheader / smfi_insheader / smfi_chgheader /
 * smfi_addrcpt / smfi_delrcpt (milterd_txn.c computes them).
 *
 * Promises: smfi_* run in the callback's thread only; the session is
 * touched in the loop thread only (milterd_call); every connection's
 * close hooks run exactly once: from xxfi_close, or earlier when a
 * plugin's verdict did not come within milterd_plugin_timeout.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmilter/mfapi.h>

#include "filter_chain.h"
#include "log.h"
#include "milterd.h"
#include "mymalloc.h"
#include "plugin_loader.h"
#include "sluice_plugin.h"

static struct md_conn *conn(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

/* An address as the envelope keeps it: without <> and surrounding space. */
static char *strip_brackets(const char *a)
{
	size_t n;

	while (*a == ' ')
		a++;
	n = strlen(a);
	if (n >= 2 && a[0] == '<' && a[n - 1] == '>')
		return strndup(a + 1, n - 2);
	return mystrdup(a);
}

/* ---- steps: run in the loop thread ------------------------------------ */

static void step_connect(struct md_conn *c)
{
	milterd_run_stage(c, FS_CONNECT);
}

static void step_helo(struct md_conn *c)
{
	free(c->s.helo_name);
	c->s.helo_name = mystrdup(c->arg1);
	c->s.esmtp = true;
	milterd_run_stage(c, FS_HELO);
}

static void step_mail(struct md_conn *c)
{
	if (c->s.txn.active) {          /* a new MAIL without an abort */
		filter_reset(&c->s);
		milterd_txn_clear(c);
	}
	c->s.txn.active = true;
	c->s.txn.env.sender = strip_brackets(c->arg1);
	if (c->arg2)
		snprintf(c->s.queue_id, sizeof c->s.queue_id, "%s", c->arg2);
	c->s.txn.discard = c->s.discard_all;
	milterd_run_stage(c, FS_MAIL);
}

static void step_rcpt(struct md_conn *c)
{
	char *a = strip_brackets(c->arg1);

	c->s.txn.cur_rcpt = a;
	milterd_run_stage(c, FS_RCPT);
}

/* After the rcpt stage (loop thread again): keep an accepted recipient. */
static void step_rcpt_keep(struct md_conn *c)
{
	struct smtp_txn *tx = &c->s.txn;
	char *a = (char *)tx->cur_rcpt;
	bool keep = c->arg2 != NULL;

	tx->cur_rcpt = NULL;
	if (keep) {
		tx->env.rcpt = realloc(tx->env.rcpt, (size_t)(tx->env.nrcpt + 1)
				       * sizeof *tx->env.rcpt);
		if (tx->env.rcpt == NULL)
			msg_fatal("sluice-milterd: out of memory");
		memset(&tx->env.rcpt[tx->env.nrcpt], 0, sizeof *tx->env.rcpt);
		tx->env.rcpt[tx->env.nrcpt].addr = a;
		tx->env.rcpt[tx->env.nrcpt].status = 'P';
		tx->env.nrcpt++;
		tx->rcpt_alloc = tx->env.nrcpt;
	} else {
		free(a);
	}
	milterd_complete(c, SLUICE_DUNNO);
}

static void step_data(struct md_conn *c)
{
	milterd_run_stage(c, FS_DATA);
}

/* A header as the session stores it: the value with its leading space,
 * CRLF line ends as LF. */
static void step_header(struct md_conn *c)
{
	struct smtp_txn *tx = &c->s.txn;
	size_t n = strlen(c->arg2);
	char *v = malloc(n + 2), *o = v;

	if (v == NULL)
		msg_fatal("sluice-milterd: out of memory");
	*o++ = ' ';
	for (const char *p = c->arg2; *p; p++)
		if (!(*p == '\r' && p[1] == '\n'))
			*o++ = *p;
	*o = 0;
	if (tx->nhdr == tx->hdr_alloc) {
		tx->hdr_alloc = tx->hdr_alloc ? 2 * tx->hdr_alloc : 16;
		tx->hdr = realloc(tx->hdr, (size_t)tx->hdr_alloc * sizeof *tx->hdr);
		if (tx->hdr == NULL)
			msg_fatal("sluice-milterd: out of memory");
	}
	tx->hdr[tx->nhdr].name = mystrdup(c->arg1);
	tx->hdr[tx->nhdr].value = v;
	tx->nhdr++;
	milterd_complete(c, SLUICE_DUNNO);
}

/* The content could not be kept for the body hooks: TEMPFAIL, as
 * smtpd answers a queue file write error. */
static void content_error(struct md_conn *c)
{
	c->reply_code = 451;
	snprintf(c->reply_dsn, sizeof c->reply_dsn, "4.3.0");
	snprintf(c->reply_text, sizeof c->reply_text,
		 "Error: queue file write error");
	milterd_complete(c, SLUICE_DEFER);
}

static void step_eoh(struct md_conn *c)
{
	if (milterd_content_start(c) < 0)
		content_error(c);
	else
		milterd_complete(c, SLUICE_DUNNO);
}

static void step_body(struct md_conn *c)
{
	if (milterd_content_body(c, (const unsigned char *)c->arg1,
				 (size_t)c->arg_len) < 0)
		content_error(c);
	else
		milterd_complete(c, SLUICE_DUNNO);
}

static void step_content(struct md_conn *c)
{
	/* the end of the body: a CR held back was the body's last byte */
	if (milterd_content_body(c, (const unsigned char *)"", 0) < 0) {
		content_error(c);
		return;
	}
	if (c->arg1)
		snprintf(c->s.queue_id, sizeof c->s.queue_id, "%s", c->arg1);
	milterd_run_stage(c, FS_CONTENT);
}

static void step_eom(struct md_conn *c)
{
	milterd_snapshot(c);
	milterd_run_stage(c, FS_EOM);
}

/* After the eom stage: the edits, then the message is done. */
static void step_eom_done(struct md_conn *c)
{
	milterd_diff(c);
	filter_message_done(&c->s);
	milterd_txn_clear(c);
	milterd_complete(c, SLUICE_DUNNO);
}

static void step_abort(struct md_conn *c)
{
	if (c->s.txn.active)
		filter_reset(&c->s);
	milterd_txn_clear(c);
	milterd_complete(c, SLUICE_DUNNO);
}

static void step_close(struct md_conn *c)
{
	filter_close(&c->s);
	milterd_complete(c, SLUICE_DUNNO);
}

/* ---- verdicts to milter replies ---------------------------------------- */

/* smfi_setreply's text is a format for the MTA: '%' doubled. */
static void set_reply(SMFICTX *ctx, int code, const char *dsn, const char *text)
{
	char rcode[8], buf[1024], *o = buf;

	for (const char *p = text; *p && o < buf + sizeof buf - 3; p++) {
		if (*p == '%')
			*o++ = '%';
		*o++ = *p;
	}
	*o = 0;
	snprintf(rcode, sizeof rcode, "%d", code);
	if (smfi_setreply(ctx, rcode, (char *)dsn, buf) != MI_SUCCESS)
		msg_warn("sluice-milterd: smfi_setreply(%s %s %s) failed",
			 rcode, dsn, buf);
}

/* Postfix's text when the plugin gave none. */
static void default_text(struct md_conn *c, const char *what, char *buf,
			 size_t len)
{
	static const char *const klass[] = {
		[FS_CONNECT] = "Client host", [FS_HELO] = "Helo command",
		[FS_MAIL] = "Sender address", [FS_RCPT] = "Recipient address",
		[FS_DATA] = "Data command", [FS_CONTENT] = "Message content",
		[FS_EOM] = "Message content"
	};
	int st = c->stage >= FS_CONNECT && c->stage <= FS_EOM ? c->stage : FS_EOM;

	snprintf(buf, len, "<%s>: %s rejected: Access denied",
		 what ? what : "", klass[st]);
}

static sfsistat answer(SMFICTX *ctx, struct md_conn *c, int v,
		       const char *what)
{
	char text[512];
	int code = c->reply_code;
	const char *dsn = c->reply_dsn[0] ? c->reply_dsn : NULL;

	switch (v) {
	case SLUICE_REJECT:
	case SLUICE_DEFER:
		if (code < 400 || code > 599)
			code = v == SLUICE_REJECT ? 554 : 450;
		if (dsn == NULL)
			dsn = code >= 500 ? "5.7.1" : "4.7.1";
		if (c->reply_text[0])
			snprintf(text, sizeof text, "%s", c->reply_text);
		else
			default_text(c, what, text, sizeof text);
		set_reply(ctx, code, dsn, text);
		return code >= 500 ? SMFIS_REJECT : SMFIS_TEMPFAIL;
	case SLUICE_DISCARD:
		/* before MAIL there is no message yet: at end of message */
		return c->stage <= FS_HELO ? SMFIS_CONTINUE : SMFIS_DISCARD;
	default:
		return SMFIS_CONTINUE;
	}
}

/* ---- the callbacks ------------------------------------------------------ */

static void client_from(struct md_conn *c, SMFICTX *ctx, const char *host,
			const struct sockaddr *sa)
{
	struct smtp_session *s = &c->s;
	const char *v;

	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, s->client_addr,
			  sizeof s->client_addr);
		s->client_port = ntohs(in->sin_port);
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, s->client_addr,
			  sizeof s->client_addr);
		s->client_port = ntohs(in6->sin6_port);
	} else if ((v = smfi_getsymval(ctx, "{client_addr}")) != NULL) {
		snprintf(s->client_addr, sizeof s->client_addr, "%s", v);
	}
	if ((v = smfi_getsymval(ctx, "{client_port}")) != NULL)
		s->client_port = atoi(v);
	/* an unverified client comes as "[addr]" (Sendmail) or "unknown" */
	if (host && *host && *host != '[' && strcmp(host, "unknown") != 0)
		snprintf(s->client_name, sizeof s->client_name, "%s", host);
	snprintf(s->reverse_name, sizeof s->reverse_name, "%s",
		 (v = smfi_getsymval(ctx, "{client_ptr}")) ? v :
		 s->client_name[0] ? s->client_name : "unknown");
	snprintf(s->client_id, sizeof s->client_id, "%s[%s]",
		 s->client_name[0] ? s->client_name : "unknown", s->client_addr);
}

static sfsistat md_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	struct md_conn *c = mycalloc(sizeof *c);
	char what[400];

	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->s.base = filter_event_base();
	c->s.state = SS_COMMAND;
	c->s.last_cmd = "CONNECT";
	client_from(c, ctx, host, (const struct sockaddr *)sa);
	if (smfi_setpriv(ctx, c) != MI_SUCCESS) {
		milterd_conn_free(c);
		return SMFIS_TEMPFAIL;
	}
	snprintf(what, sizeof what, "%s", c->s.client_id);
	return answer(ctx, c, milterd_call(c, step_connect), what);
}

static sfsistat md_helo(SMFICTX *ctx, char *helo)
{
	struct md_conn *c = conn(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	c->arg1 = helo ? helo : "";
	return answer(ctx, c, milterd_call(c, step_helo), c->arg1);
}

static sfsistat md_envfrom(SMFICTX *ctx, char **argv)
{
	struct md_conn *c = conn(ctx);
	sfsistat r;

	if (c == NULL)
		return SMFIS_CONTINUE;
	c->arg1 = argv && argv[0] ? argv[0] : "<>";
	c->arg2 = smfi_getsymval(ctx, "i");
	r = answer(ctx, c, milterd_call(c, step_mail), NULL);
	if (r == SMFIS_REJECT || r == SMFIS_TEMPFAIL) {
		/* the MTA refuses MAIL: no abort follows, forget it here */
		milterd_call(c, step_abort);
	}
	return r;
}

static sfsistat md_envrcpt(SMFICTX *ctx, char **argv)
{
	struct md_conn *c = conn(ctx);
	char *rcpt;
	int v;
	sfsistat r;

	if (c == NULL)
		return SMFIS_CONTINUE;
	c->arg1 = argv && argv[0] ? argv[0] : "<>";
	rcpt = strip_brackets(c->arg1);
	v = milterd_call(c, step_rcpt);
	r = answer(ctx, c, v, rcpt);
	free(rcpt);
	c->arg2 = r == SMFIS_CONTINUE ? "keep" : NULL;
	milterd_call(c, step_rcpt_keep);
	return r;
}

static sfsistat md_data(SMFICTX *ctx)
{
	struct md_conn *c = conn(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	return answer(ctx, c, milterd_call(c, step_data), "DATA");
}

static sfsistat md_header(SMFICTX *ctx, char *name, char *value)
{
	struct md_conn *c = conn(ctx);

	if (c == NULL || name == NULL)
		return SMFIS_CONTINUE;
	c->arg1 = name;
	c->arg2 = value ? value : "";
	milterd_call(c, step_header);
	return SMFIS_CONTINUE;
}

static sfsistat md_eoh(SMFICTX *ctx)
{
	struct md_conn *c = conn(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	return answer(ctx, c, milterd_call(c, step_eoh), "DATA");
}

static sfsistat md_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct md_conn *c = conn(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	c->arg1 = (const char *)chunk;
	c->arg_len = len;
	return answer(ctx, c, milterd_call(c, step_body), "DATA");
}

/* Replay the eom hooks' edits to the MTA. */
static void apply_edits(SMFICTX *ctx, struct md_conn *c)
{
	for (int i = 0; i < c->nedit; i++) {
		struct md_edit *e = &c->edits[i];
		char addr[1024];
		int rc = MI_SUCCESS;

		switch (e->kind) {
		case MD_ADDHDR:
			rc = smfi_addheader(ctx, e->name, e->value);
			break;
		case MD_INSHDR:
			rc = smfi_insheader(ctx, e->index, e->name, e->value);
			break;
		case MD_CHGHDR:
			rc = smfi_chgheader(ctx, e->name, e->index, e->value);
			break;
		case MD_ADDRCPT:
		case MD_DELRCPT:
			snprintf(addr, sizeof addr, "<%s>", e->name);
			rc = e->kind == MD_ADDRCPT ? smfi_addrcpt(ctx, addr)
						   : smfi_delrcpt(ctx, addr);
			break;
		}
		if (rc != MI_SUCCESS)
			msg_warn("%s: sluice-milterd: the MTA refused an edit "
				 "of \"%s\"", c->s.queue_id[0] ? c->s.queue_id
				 : "NOQUEUE", e->name);
	}
}

static sfsistat md_eom(SMFICTX *ctx)
{
	struct md_conn *c = conn(ctx);
	sfsistat r;
	int v;

	if (c == NULL)
		return SMFIS_CONTINUE;
	c->arg1 = smfi_getsymval(ctx, "i");
	v = milterd_call(c, step_content);
	if (v != SLUICE_REJECT && v != SLUICE_DEFER && v != SLUICE_DISCARD)
		v = milterd_call(c, step_eom);
	r = answer(ctx, c, v, "DATA");
	if (c->s.discard_all)           /* DISCARD at connect or HELO */
		r = SMFIS_DISCARD;
	milterd_call(c, step_eom_done);
	if (r == SMFIS_CONTINUE) {
		apply_edits(ctx, c);
		if (c->hold && smfi_quarantine(ctx, c->hold_reason) != MI_SUCCESS)
			msg_warn("sluice-milterd: the MTA refused to hold the "
				 "message");
	}
	return r == SMFIS_CONTINUE ? SMFIS_ACCEPT : r;
}

static sfsistat md_abort(SMFICTX *ctx)
{
	struct md_conn *c = conn(ctx);

	if (c != NULL)
		milterd_call(c, step_abort);
	return SMFIS_CONTINUE;
}

static sfsistat md_close(SMFICTX *ctx)
{
	struct md_conn *c = conn(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	if (!c->closed)
		milterd_call(c, step_close);
	smfi_setpriv(ctx, NULL);
	milterd_conn_free(c);
	return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
	.xxfi_name = "sluice-milterd",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT
		      | SMFIF_DELRCPT | SMFIF_QUARANTINE,
	.xxfi_connect = md_connect,
	.xxfi_helo = md_helo,
	.xxfi_envfrom = md_envfrom,
	.xxfi_envrcpt = md_envrcpt,
	.xxfi_header = md_header,
	.xxfi_eoh = md_eoh,
	.xxfi_body = md_body,
	.xxfi_eom = md_eom,
	.xxfi_abort = md_abort,
	.xxfi_close = md_close,
	.xxfi_data = md_data,
};

struct smfiDesc *milterd_descriptor(void)
{
	if (!milterd_wants_body()) {
		desc.xxfi_eoh = NULL;
		desc.xxfi_body = NULL;
	}
	return &desc;
}
