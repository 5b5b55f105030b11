/*
 * smtp_client_txn.c - one mail transaction on an SMTP/LMTP connection:
 * MAIL FROM, RCPT TO, DATA, the content, and the verdict after the dot.
 *
 * With PIPELINING the MAIL command and every RCPT go out in one write and
 * the replies are paired with them in order (c->expect); without it each
 * command waits for the previous reply.  DATA is sent only when some
 * recipient was accepted; otherwise the session ends without it.
 *
 * Extensions used when the server offers them: SIZE= (and a message over
 * the server's SIZE limit is refused before MAIL: 5.3.4), BODY=8BITMIME,
 * SMTPUTF8 (a message that needs it, to a server without it: 5.6.7), and
 * the DSN parameters RET, ENVID, NOTIFY and ORCPT (ORCPT made from the
 * original address when the envelope has none, as Postfix does).  A
 * server without 8BITMIME gets 8-bit parts as quoted-printable
 * (smtp_client_data.c).  A NOTIFY=SUCCESS recipient accepted by a server
 * that announced DSN is reported by that server; otherwise the success
 * notice from here says "relayed" (Postfix's smtp_rcpt_done()).
 *
 * Results: 2xx after the dot (SMTP: one reply for all accepted
 * recipients; LMTP: one per accepted recipient, in RCPT order) is the
 * only way a recipient becomes delivered.  A 5xx is final; a 4xx is kept
 * as the recipient's reason while other servers may still take it.  Texts
 * are Postfix's: the reply itself for success, "host X said: ... (in
 * reply to RCPT TO command)" for a failure.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "smtp_client.h"

/* ---- checks before MAIL ----------------------------------------------- */

/* An address fit for a command line: no control characters, no angle
 * brackets, not absurdly long. */
static bool addr_ok(const char *a)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)a; *p; p++, n++)
		if (*p < 32 || *p == 127 || *p == '<' || *p == '>')
			return false;
	return n < 1000;
}

static bool ascii(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p >= 128)
			return false;
	return true;
}

/* Does the envelope need SMTPUTF8 (a non-ASCII address)? */
static bool needs_utf8(struct smtpc_conn *c)
{
	struct delivery_request *req = smtpc_req(c->d);

	if (!req->env->smtputf8)
		return false;
	if (!ascii(req->env->sender))
		return true;
	for (int i = 0; i < req->nrcpt; i++)
		if (smtpc_rcpt_open(c->d, i) && !ascii(req->rcpt[i].addr))
			return true;
	return false;
}

/* A reason to refuse the message before MAIL, into text; 0 if none. */
static int precheck(struct smtpc_conn *c, char *dsn, char *text, size_t len)
{
	struct delivery_request *req = smtpc_req(c->d);

	if (!addr_ok(req->env->sender)) {
		strcpy(dsn, "5.1.7");
		snprintf(text, len, "bad sender address syntax");
		return 5;
	}
	if ((c->features & SMTPC_F_SIZE) && c->size_limit > 0
	    && req->env->size > c->size_limit) {
		strcpy(dsn, "5.3.4");
		snprintf(text, len, "message size %lld exceeds size limit %lld "
			 "of server %s", req->env->size, c->size_limit, c->namaddr);
		return 5;
	}
	if (!(c->features & SMTPC_F_SMTPUTF8) && needs_utf8(c)) {
		strcpy(dsn, "5.6.7");
		snprintf(text, len, "SMTPUTF8 is required, but was not offered "
			 "by host %s", c->namaddr);
		return 5;
	}
	return 0;
}

/* ---- commands --------------------------------------------------------- */

static void send_mail(struct smtpc_conn *c)
{
	const struct queue_envelope *env = smtpc_req(c->d)->env;
	char args[600] = "";
	size_t n = 0;

	if (c->features & SMTPC_F_SIZE)
		n += (size_t)snprintf(args + n, sizeof args - n, " SIZE=%lld",
				      env->size);
	if ((c->features & SMTPC_F_8BITMIME) && env->body != BODY_7BIT)
		n += (size_t)snprintf(args + n, sizeof args - n, " BODY=8BITMIME");
	if ((c->features & SMTPC_F_SMTPUTF8) && env->smtputf8)
		n += (size_t)snprintf(args + n, sizeof args - n, " SMTPUTF8");
	if ((c->features & SMTPC_F_DSN) && env->ret != DSN_RET_NONE)
		n += (size_t)snprintf(args + n, sizeof args - n, " RET=%s",
				      env->ret == DSN_RET_FULL ? "FULL" : "HDRS");
	if ((c->features & SMTPC_F_DSN) && env->envid && *env->envid
	    && n + 8 < sizeof args) {
		strcat(args, " ENVID=");
		if (!smtpc_xtext(args, sizeof args, env->envid))
			args[n] = 0;    /* too long: leave it out */
	}
	smtpc_send(c, "MAIL FROM:<%s>%s", env->sender, args);
	c->expect[c->nexpect++] = -1;
}

static void notify_arg(char *buf, size_t len, int notify)
{
	static const struct { int bit; const char *word; } w[] = {
		{ DSN_NOTIFY_SUCCESS, "SUCCESS" }, { DSN_NOTIFY_FAILURE, "FAILURE" },
		{ DSN_NOTIFY_DELAY, "DELAY" },
	};

	if (notify & DSN_NOTIFY_NEVER) {
		snprintf(buf, len, " NOTIFY=NEVER");
		return;
	}
	snprintf(buf, len, " NOTIFY=");
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
		if (notify & w[i].bit) {
			if (buf[strlen(buf) - 1] != '=')
				strncat(buf, ",", len - strlen(buf) - 1);
			strncat(buf, w[i].word, len - strlen(buf) - 1);
		}
}

/* The DSN arguments of recipient i's RCPT command into buf. */
static void rcpt_args(struct smtpc_conn *c, int i, char *buf, size_t len)
{
	struct delivery_request *req = smtpc_req(c->d);
	const struct delivery_rcpt *r = &req->rcpt[i];
	const struct queue_rcpt *q = NULL;
	size_t n;

	buf[0] = 0;
	if (!(c->features & SMTPC_F_DSN))
		return;
	if (r->queue_index >= 0 && r->queue_index < req->env->nrcpt)
		q = &req->env->rcpt[r->queue_index];
	if (q && q->notify != DSN_NOTIFY_NONE)
		notify_arg(buf, len, q->notify);
	n = strlen(buf);
	if (q && q->orcpt && *q->orcpt) {
		strncat(buf, " ORCPT=", len - n - 1);
		if (!smtpc_xtext(buf, len, q->orcpt))
			buf[n] = 0;
	} else if (r->orig_addr && *r->orig_addr && ascii(r->orig_addr)) {
		strncat(buf, " ORCPT=rfc822;", len - n - 1);
		if (!smtpc_xtext(buf, len, r->orig_addr))
			buf[n] = 0;
	}
}

/* Send recipient i's RCPT; false (and a final result) when its address
 * cannot be sent. */
static bool send_rcpt(struct smtpc_conn *c, int i)
{
	struct delivery_request *req = smtpc_req(c->d);
	char args[2200];

	smtpc_rs(c->d, i)->sent = true;
	if (!addr_ok(req->rcpt[i].addr)) {
		smtpc_rcpt_final(c->d, i, 5, "5.1.3", "bad recipient address syntax");
		return false;
	}
	rcpt_args(c, i, args, sizeof args);
	smtpc_send(c, "RCPT TO:<%s>%s", req->rcpt[i].addr, args);
	c->expect[c->nexpect++] = i;
	return true;
}

/* Send the next RCPT not yet sent; false when there is none. */
static bool send_next_rcpt(struct smtpc_conn *c)
{
	int n = smtpc_req(c->d)->nrcpt;

	for (; c->next_rcpt < n; c->next_rcpt++) {
		int i = c->next_rcpt;

		if (smtpc_rcpt_open(c->d, i) && !smtpc_rs(c->d, i)->sent
		    && send_rcpt(c, i))
			return true;
	}
	return false;
}

static bool reuse_ok(const struct smtpc_conn *c)
{
	const struct smtpc_params *par = c->par;
	struct timeval now;

	gettimeofday(&now, NULL);
	return par->cache_on_demand
		&& (par->reuse_count_limit <= 0 || c->uses < par->reuse_count_limit)
		&& (par->reuse_time_limit <= 0
		    || now.tv_sec - c->t_open.tv_sec < par->reuse_time_limit);
}

void smtpc_txn_begin(struct smtpc_conn *c)
{
	struct delivery_request *req = smtpc_req(c->d);
	char dsn[16], text[600];
	int status;

	c->nexpect = c->expect_head = c->next_rcpt = c->lmtp_next = 0;
	c->naccepted = 0;
	c->mail_failed = false;
	c->got_reply = false;
	c->body_off = 0;
	c->body_bol = true;
	c->body_cr = c->body_done = false;
	smtpc_body_end(c);
	for (int i = 0; i < req->nrcpt; i++)
		smtpc_rs(c->d, i)->sent = smtpc_rs(c->d, i)->accepted = false;
	if ((status = precheck(c, dsn, text, sizeof text)) != 0) {
		smtpc_site_fail(c->d, status, dsn, "%s", text);
		smtpc_end(c, SMTPC_END_FINAL, !c->reused && reuse_ok(c));
		return;
	}
	c->state = SMTPC_MAIL;
	smtpc_timeouts(c, c->par->mail_timeout, c->par->mail_timeout);
	send_mail(c);
	if (c->features & SMTPC_F_PIPELINING)
		while (send_next_rcpt(c))
			;
}

/* ---- replies ---------------------------------------------------------- */

/* The failure of a reply as a result: 4 soft, 5 final; a reply of
 * another class is a protocol error (5.5.0, Postfix). */
static int failure(struct smtpc_conn *c, const char *cmd, char *dsn,
		   char *text, size_t len)
{
	char said[SMTPC_REPLY_TEXT_MAX + 300];
	int cls = c->reply.code / 100;

	smtpc_said(c, said, sizeof said);
	if (cls == 4 || cls == 5) {
		snprintf(dsn, 16, "%s", c->reply.dsn);
		snprintf(text, len, "%s (in reply to %s command)", said, cmd);
		return cls;
	}
	strcpy(dsn, "5.5.0");
	snprintf(text, len, "Protocol error: %s (in reply to %s command)", said, cmd);
	return 5;
}

static void fail_rcpt(struct smtpc_conn *c, int i, const char *cmd)
{
	char dsn[16], text[SMTPC_REPLY_TEXT_MAX + 400];

	if (failure(c, cmd, dsn, text, sizeof text) == 4)
		smtpc_rcpt_soft(c->d, i, dsn, text);
	else
		smtpc_rcpt_final(c->d, i, 5, dsn, text);
}

/* A failure for every recipient accepted in this transaction. */
static void fail_accepted(struct smtpc_conn *c, const char *cmd)
{
	int n = smtpc_req(c->d)->nrcpt;

	for (int i = 0; i < n; i++)
		if (smtpc_rs(c->d, i)->accepted && smtpc_rcpt_open(c->d, i))
			fail_rcpt(c, i, cmd);
}

static void mail_reply(struct smtpc_conn *c)
{
	char dsn[16], text[SMTPC_REPLY_TEXT_MAX + 400];
	int status;

	if (c->reply.code / 100 == 2) {
		smtpc_timeouts(c, c->par->rcpt_timeout, c->par->rcpt_timeout);
		return;
	}
	c->mail_failed = true;
	status = failure(c, "MAIL FROM", dsn, text, sizeof text);
	smtpc_site_fail(c->d, status, dsn, "%s", text);
}

static void rcpt_reply(struct smtpc_conn *c, int i)
{
	if (c->mail_failed)
		return;
	if (c->reply.code / 100 == 2) {
		smtpc_rs(c->d, i)->accepted = true;
		c->naccepted++;
		return;
	}
	fail_rcpt(c, i, "RCPT TO");
}

static int envelope_reply(struct smtpc_conn *c)
{
	int what = c->expect[c->expect_head++];

	if (what < 0)
		mail_reply(c);
	else
		rcpt_reply(c, what);
	if (!(c->features & SMTPC_F_PIPELINING) && !c->mail_failed
	    && c->expect_head == c->nexpect && send_next_rcpt(c))
		return 0;
	if (c->expect_head < c->nexpect)
		return 0;
	if (c->mail_failed || c->naccepted == 0) {
		smtpc_end(c, SMTPC_END_OK, false);
		return -1;
	}
	smtpc_send(c, "DATA");
	c->state = SMTPC_DATA;
	smtpc_timeouts(c, c->par->data_init_timeout, c->par->data_init_timeout);
	return 0;
}

static int body_step(struct smtpc_conn *c)
{
	int rc = smtpc_body_fill(c, smtpc_req(c->d));
	char text[600];

	if (rc < 0) {
		snprintf(text, sizeof text, "local data error while talking to %s: "
			 "cannot read the queue file: %m", c->namaddr);
		smtpc_site_fail(c->d, 4, "4.3.0", "%s", text);
		smtpc_drop(c, SMTPC_END_FINAL);
		return -1;
	}
	if (rc == 1) {
		c->state = SMTPC_DOT;
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
		bufferevent_enable(c->bev, EV_READ);
		smtpc_timeouts(c, c->par->data_done_timeout, c->par->data_xfer_timeout);
	}
	return 0;
}

void smtpc_txn_body(struct smtpc_conn *c)
{
	body_step(c);
}

static int data_reply(struct smtpc_conn *c)
{
	if (c->reply.code / 100 != 3) {
		fail_accepted(c, "DATA");
		smtpc_end(c, SMTPC_END_OK, false);
		return -1;
	}
	c->state = SMTPC_BODY;
	smtpc_body_begin(c);
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, SMTPC_BODY_HIGH / 4, 0);
	smtpc_timeouts(c, 0, c->par->data_xfer_timeout);
	return body_step(c);
}

/* What a NOTIFY=SUCCESS notice for recipient i will say, as Postfix's
 * smtp_rcpt_done(): a server that announced DSN was given the NOTIFY
 * and reports itself (no notice from here); otherwise "relayed", or
 * "delivered" from an LMTP server with lmtp_assume_final. */
static void success_action(struct smtpc_conn *c, int i)
{
	struct delivery_rcpt *r = &smtpc_req(c->d)->rcpt[i];

	r->notify_passed = (c->features & SMTPC_F_DSN) != 0;
	r->relayed = !(c->lmtp && c->par->assume_final);
}

/* The verdict of the dot for recipient i. */
static void dot_verdict(struct smtpc_conn *c, int i)
{
	char one[SMTPC_REPLY_TEXT_MAX];

	if (c->reply.code / 100 == 2) {
		success_action(c, i);
		smtpc_rcpt_final(c->d, i, 2, c->reply.dsn,
				 smtpc_reply_oneline(&c->reply, one, sizeof one));
	} else
		fail_rcpt(c, i, "end of DATA");
}

/* The next recipient accepted in this transaction from i on, or -1. */
static int next_accepted(struct smtpc_conn *c, int i)
{
	int n = smtpc_req(c->d)->nrcpt;

	for (; i < n; i++)
		if (smtpc_rs(c->d, i)->accepted)
			return i;
	return -1;
}

static int dot_reply(struct smtpc_conn *c)
{
	struct delivery_request *req = smtpc_req(c->d);
	int i;

	if (c->lmtp) {
		i = next_accepted(c, c->lmtp_next);
		if (i >= 0) {
			dot_verdict(c, i);
			c->lmtp_next = i + 1;
		}
		if (next_accepted(c, c->lmtp_next) >= 0)
			return 0;
	} else {
		for (i = next_accepted(c, 0); i >= 0; i = next_accepted(c, i + 1))
			dot_verdict(c, i);
	}
	gettimeofday(&req->t_done, NULL);
	smtpc_end(c, SMTPC_END_OK, reuse_ok(c));
	return -1;
}

int smtpc_txn_reply(struct smtpc_conn *c)
{
	switch (c->state) {
	case SMTPC_MAIL:
		return envelope_reply(c);
	case SMTPC_DATA:
		return data_reply(c);
	default:
		return dot_reply(c);
	}
}
