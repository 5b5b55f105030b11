/*
 * bounce_notice.c - one delivery status notification written into a new
 * queue file: the RFC 3464 multipart/report that Postfix's bounce(8)
 * writes, part for part.
 *
 *	Received:, Date:, From: Mail Delivery System <MAILER-DAEMON@origin>,
 *	Subject:, To:, Auto-Submitted:, Message-ID:, MIME headers
 *	--boundary   text/plain: the explanation (Postfix's wording), then
 *	             one paragraph per recipient, "<addr>: reason"
 *	--boundary   message/delivery-status: Reporting-MTA, Original-
 *	             Envelope-Id, X-Sluice-Queue-ID, Arrival-Date, then per
 *	             recipient Final-Recipient, Original-Recipient, Action,
 *	             Status, Remote-MTA, Diagnostic-Code (Will-Retry-Until)
 *	--boundary   message/rfc822 (the whole message) or
 *	             text/rfc822-headers (its headers only)
 *	--boundary--
 *
 * Diagnostic-Code is the caller's, or, for a recipient that a next hop
 * answered, Postfix's "smtp; <the reply>" taken from the reason ("250
 * 2.0.0 Ok", or the reply after "host X[ip] said: " without "(in reply
 * to ... command)"), with Remote-MTA from relay= or else from that "host
 * X"; otherwise "X-Sluice; <reason>".
 *
 * With SMTPUTF8 the parts are message/global-delivery-status and
 * message/global(-headers) (RFC 6533).  The text is built in a memory
 * stream and poured into the queue file part by part; the original is
 * copied straight from its queue file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounce_internal.h"
#include "config.h"
#include "log.h"

#define COPY_CHUNK      65536
#define BOUNDARY_MAX    70      /* RFC 2046 */

/* What every part of one notice needs to know. */
struct notice_fmt {
	const struct bounce_source *src;
	const struct bounce_notice *bn;
	bool eight_bit;         /* 8bit content (charset utf-8, CTE 8bit) */
	bool utf8;              /* SMTPUTF8: message/global-*, UTF-8 fields */
	bool headers_only;      /* attach text/rfc822-headers */
	long long orig_len;     /* bytes of the original to attach; -1: unreadable */
	char boundary[BOUNDARY_MAX + 1];
	char date[64];
	const char *host;       /* myhostname */
};

/* The notice text being built; poured into the queue file by out_flush(). */
struct out {
	struct queue_file *qf;
	FILE *fp;
	char *buf;
	size_t len;
};

/* ==== which recipients ==== */

bool bounce_rcpt_wanted(const struct bounce_rcpt *r, int filter)
{
	if (filter == 0)
		return true;            /* postmaster copies list everyone */
	if (r->notify == DSN_NOTIFY_NONE)       /* no NOTIFY: as before DSN */
		return filter != DSN_NOTIFY_SUCCESS;
	return (r->notify & filter) != 0;
}

int bounce_rcpt_count(const struct bounce_source *src, int filter)
{
	int i, n = 0;

	for (i = 0; i < src->nrcpt; i++)
		n += bounce_rcpt_wanted(&src->rcpt[i], filter);
	return n;
}

/* ==== output ==== */

static void out_open(struct out *o)
{
	if ((o->fp = open_memstream(&o->buf, &o->len)) == NULL)
		msg_fatal("open_memstream: %m");
}

/* Move what was printed into the queue file; the stream starts empty. */
static int out_flush(struct out *o)
{
	int rc, err;

	if (fclose(o->fp) != 0)
		msg_fatal("memory stream: %m");
	rc = queue_write(o->qf, o->buf, o->len);
	err = errno;
	free(o->buf);
	o->buf = NULL;
	out_open(o);
	errno = err;
	return rc;
}

static void out_close(struct out *o)
{
	if (o->fp != NULL)
		fclose(o->fp);
	free(o->buf);
	o->fp = NULL;
	o->buf = NULL;
}

/* Print s masked for this part (8-bit kept only when allowed). */
static void put_masked(FILE *fp, const char *s, bool eight_bit)
{
	char *m = bounce_mask(s, eight_bit);

	fputs(m, fp);
	free(m);
}

/* ==== the original message ==== */

/* Bytes of the header block: up to and including the LF of the last
 * header line (the body starts with an empty line).  -1 on read error. */
static long long header_len(const struct bounce_source *src)
{
	char buf[8192];
	long long off = 0;
	char prev = '\n';
	long n, i;

	while ((n = queue_message_pread(src->fd, src->env, buf, sizeof buf,
					off)) > 0) {
		for (i = 0; i < n; i++) {
			if (buf[i] == '\n' && prev == '\n')
				return off + i;
			prev = buf[i];
		}
		off += n;
	}
	return n < 0 ? -1 : off;
}

static bool range_has_8bit(const struct bounce_source *src, long long len)
{
	char buf[8192];
	long long off;
	size_t want;
	long n, i;

	for (off = 0; off < len; off += n) {
		want = len - off < (long long) sizeof buf ? (size_t) (len - off)
			: sizeof buf;
		n = queue_message_pread(src->fd, src->env, buf, want, off);
		if (n <= 0)
			break;
		for (i = 0; i < n; i++)
			if ((unsigned char) buf[i] >= 0x80)
				return true;
	}
	return false;
}

/* Whole message or headers only (Postfix: never cut a message in the
 * middle, which could break its MIME structure). */
static void choose_original(struct notice_fmt *f)
{
	const struct queue_envelope *env = f->src->env;
	long long limit = cfg_size(f->src->cfg, "bounce_size_limit");

	f->headers_only = f->bn->ret == DSN_RET_HDRS
		|| env->body == BODY_BINARYMIME
		|| (limit > 0 && env->size > limit);
	f->orig_len = f->headers_only ? header_len(f->src) : env->size;
}

static bool notice_8bit(const struct notice_fmt *f)
{
	const struct queue_envelope *env = f->src->env;

	return env->body != BODY_7BIT || env->smtputf8
		|| (f->orig_len > 0 && range_has_8bit(f->src, f->orig_len));
}

/* ==== headers ==== */

static const char *notice_subject(const struct bounce_notice *bn)
{
	static const char *const sender[] = {
		"Undelivered Mail Returned to Sender",
		"Delayed Mail (still being retried)",
		"Successful Mail Delivery Report",
	};
	static const char *const postmaster[] = {
		"Postmaster Copy: Undelivered Mail",
		"Postmaster Warning: Delayed Mail",
		"Successful Mail Delivery Report",
	};

	return bn->postmaster ? postmaster[bn->kind] : sender[bn->kind];
}

static void set_boundary(struct notice_fmt *f, const char *id)
{
	int n = snprintf(f->boundary, sizeof f->boundary, "%s.%lld/", id,
			 (long long) f->src->now);

	if (n > 0 && (size_t) n < sizeof f->boundary)
		snprintf(f->boundary + n, sizeof f->boundary - (size_t) n, "%s",
			 f->host);
}

/* "<20261121053836.ID@host>" */
static char *make_message_id(time_t now, const char *id, const char *host)
{
	struct tm tm;
	char stamp[32];

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
	return bounce_sprintf("<%s.%s@%s>", stamp, id, host);
}

/* Headers every notice has, up to Message-ID. */
static void put_common_headers(FILE *fp, const struct config *c,
			       const struct bounce_notice *bn,
			       const char *date, const char *subject,
			       bool utf8)
{
	const char *origin = cfg_str(c, "myorigin");
	char *to = bounce_header_addr(bn->to, origin);

	fprintf(fp, "Received: by %s (%s)\n\tid %s; %s\n",
		cfg_str(c, "myhostname"), cfg_str(c, "mail_name"), bn->id, date);
	fprintf(fp, "Date: %s\n", date);
	fprintf(fp, "From: Mail Delivery System <MAILER-DAEMON@%s>\n", origin);
	fprintf(fp, "Subject: %s\n", subject);
	fputs("To: ", fp);
	put_masked(fp, to, utf8);
	fprintf(fp, "\nAuto-Submitted: %s\n", bn->postmaster ?
		"auto-generated" : "auto-replied");
	fprintf(fp, "Message-ID: %s\n", bn->message_id);
	free(to);
}

static void put_headers(FILE *fp, const struct notice_fmt *f)
{
	put_common_headers(fp, f->src->cfg, f->bn, f->date,
			   notice_subject(f->bn), f->utf8);
	fputs("MIME-Version: 1.0\n", fp);
	fputs("Content-Type: multipart/report; report-type=delivery-status;\n",
	      fp);
	fprintf(fp, "\tboundary=\"%s\"\n", f->boundary);
	fprintf(fp, "Content-Transfer-Encoding: %s\n",
		f->eight_bit ? "8bit" : "7bit");
}

/* ==== the human-readable part ==== */

/* How long the message waited, and until when it is retried. */
static void put_delay_text(FILE *fp, const struct bounce_source *src)
{
	long long warn, life;

	if (cfg_lookup_number(src->cfg, "delay_warning_time", &warn) < 0)
		warn = (long long) src->now - src->env->arrival_sec;
	if (cfg_lookup_number(src->cfg, "maximal_queue_lifetime", &life) < 0)
		life = 5 * 86400;
	fputs("####################################################################\n"
	      "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
	      "####################################################################\n\n",
	      fp);
	fprintf(fp, "Your message could not be delivered for more than %lld hour(s).\n"
		"It will be retried until it is %lld day(s) old.\n\n",
		warn / 3600, life / 86400);
}

/* Postfix's default templates (bounce.cf.default), $myhostname expanded. */
static void put_boilerplate(FILE *fp, const struct notice_fmt *f)
{
	fprintf(fp, "This is the mail system at host %s.\n\n", f->host);
	if (f->bn->kind == BOUNCE_SUCCESS) {
		fputs("Your message was successfully delivered to the destination(s)\n"
		      "listed below. If the message was delivered to mailbox you will\n"
		      "receive no further notifications. Otherwise you may still receive\n"
		      "notifications of mail delivery errors from other systems.\n\n"
		      "                   The mail system\n", fp);
		return;
	}
	if (f->bn->kind == BOUNCE_FAILURE)
		fputs("I'm sorry to have to inform you that your message could not\n"
		      "be delivered to one or more recipients. It's attached below.\n\n",
		      fp);
	else
		put_delay_text(fp, f->src);
	fputs("For further assistance, please send mail to postmaster.\n\n"
	      "If you do so, please include this problem report. You can\n"
	      "delete your own text from the attached returned message.\n\n"
	      "                   The mail system\n", fp);
}

static const char *default_reason(enum bounce_kind kind)
{
	return kind == BOUNCE_FAILURE ? "delivery failed"
		: kind == BOUNCE_DELAY ? "delivery temporarily suspended"
		: "delivered";
}

static void put_rcpt_text(FILE *fp, const struct notice_fmt *f,
			  const struct bounce_rcpt *r)
{
	const char *reason = r->reason && *r->reason ? r->reason
		: default_reason(f->bn->kind);
	char *line, *masked;

	if (r->orig_addr && *r->orig_addr && strcmp(r->orig_addr, r->addr))
		line = bounce_sprintf("<%s> (expanded from <%s>): %s", r->addr,
				      r->orig_addr, reason);
	else
		line = bounce_sprintf("<%s>: %s", r->addr, reason);
	masked = bounce_mask(line, f->eight_bit);
	fputc('\n', fp);
	bounce_put_wrapped(fp, masked);
	free(masked);
	free(line);
}

static void put_text_part(FILE *fp, const struct notice_fmt *f)
{
	int i;

	fprintf(fp, "\n--%s\n", f->boundary);
	fputs("Content-Description: Notification\n", fp);
	fprintf(fp, "Content-Type: text/plain; charset=%s\n",
		f->eight_bit ? "utf-8" : "us-ascii");
	if (f->eight_bit)
		fputs("Content-Transfer-Encoding: 8bit\n", fp);
	fputc('\n', fp);
	if (!f->bn->postmaster)
		put_boilerplate(fp, f);
	for (i = 0; i < f->src->nrcpt; i++)
		if (bounce_rcpt_wanted(&f->src->rcpt[i], f->bn->filter))
			put_rcpt_text(fp, f, &f->src->rcpt[i]);
}

/* ==== the delivery-status part ==== */

/* Print "Name: value" masked and folded as Postfix's bounce_print_wrap. */
static void put_field(FILE *fp, bool utf8, const char *name,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void put_field(FILE *fp, bool utf8, const char *name,
		      const char *fmt, ...)
{
	char *value, *line, *masked;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&value, fmt, ap) < 0)
		msg_fatal("out of memory");
	va_end(ap);
	line = bounce_sprintf("%s: %s", name, value);
	masked = bounce_mask(line, utf8);
	bounce_put_wrapped(fp, masked);
	free(masked);
	free(line);
	free(value);
}

/* "rfc822" or, for a UTF-8 address under SMTPUTF8, "utf-8" (RFC 6533). */
static const char *addr_type(const struct notice_fmt *f, const char *addr)
{
	return f->utf8 && bounce_has_8bit(addr) ? "utf-8" : "rfc822";
}

static void put_message_fields(FILE *fp, const struct notice_fmt *f)
{
	const struct queue_envelope *env = f->src->env;
	const char *sender = *env->sender ? env->sender : "MAILER-DAEMON";
	char date[64], *envid;

	fputc('\n', fp);
	put_field(fp, f->utf8, "Reporting-MTA", "dns; %s", f->host);
	if (env->envid && *env->envid) {
		envid = bounce_xtext_decode(env->envid, false);
		put_field(fp, f->utf8, "Original-Envelope-Id", "%s",
			  envid ? envid : env->envid);
		free(envid);
	}
	put_field(fp, f->utf8, "X-Sluice-Queue-ID", "%s", f->src->queue_id);
	put_field(fp, f->utf8, "X-Sluice-Sender", "%s; %s",
		  addr_type(f, sender), sender);
	bounce_date(date, sizeof date, (time_t) env->arrival_sec);
	put_field(fp, f->utf8, "Arrival-Date", "%s", date);
}

/* "rfc822;bob@example.net" from ORCPT "rfc822;bob+40x..." (xtext). */
static void put_orcpt(FILE *fp, const struct notice_fmt *f, const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');
	char *addr = semi ? bounce_xtext_decode(semi + 1, f->utf8) : NULL;

	if (addr != NULL)
		put_field(fp, f->utf8, "Original-Recipient", "%.*s;%s",
			  (int) (semi - orcpt), orcpt, addr);
	else
		put_field(fp, f->utf8, "Original-Recipient", "%s", orcpt);
	free(addr);
}

static const char *action_name(const struct notice_fmt *f,
			       const struct bounce_rcpt *r)
{
	static const char *const names[] = {
		NULL, "failed", "delayed", "delivered", "relayed", "expanded"
	};

	if (f->bn->kind == BOUNCE_FAILURE)
		return "failed";
	if (r->action > BOUNCE_ACTION_AUTO && r->action <= BOUNCE_ACTION_EXPANDED)
		return names[r->action];
	return f->bn->kind == BOUNCE_DELAY ? "delayed" : "delivered";
}

/* Up to three digits, then `end`: the rest after it, or NULL. */
static const char *digits(const char *p, char end)
{
	int n = 0;

	while (n < 3 && *p >= '0' && *p <= '9')
		p++, n++;
	return n > 0 && *p == end ? p + 1 : NULL;
}

/* An enhanced status code "C.SSS.DDD" (RFC 3463), or the kind's default. */
static const char *status_code(const struct notice_fmt *f, const char *dsn)
{
	static const char *const def[] = { "5.0.0", "4.0.0", "2.0.0" };
	const char *p;

	if (dsn && (dsn[0] == '2' || dsn[0] == '4' || dsn[0] == '5')
	    && dsn[1] == '.' && (p = digits(dsn + 2, '.')) != NULL
	    && digits(p, 0) != NULL)
		return dsn;
	return def[f->bn->kind];
}

/* Is relay= a next hop (Remote-MTA), not "none" or "local"? */
static bool remote_relay(const char *relay)
{
	return relay != NULL && *relay && strcmp(relay, "none") != 0
		&& strcmp(relay, "local") != 0;
}

/* A reply of a next hop in a reason: the reason itself ("250 2.0.0 Ok",
 * a success) or after "host X said: ", without the "(in reply to ...
 * command)" that follows; *len its length.  NULL when there is none. */
static const char *reply_in(const char *reason, int *len)
{
	const char *p = reason, *said, *tail;

	if (!(p[0] >= '2' && p[0] <= '5' && digits(p, ' ') == p + 4)) {
		if ((said = strstr(reason, " said: ")) != NULL)
			p = said + 7;
		else if ((said = strstr(reason, " refused to talk to me: ")) != NULL)
			p = said + 25;
	}
	if (!(p[0] == '2' || p[0] == '4' || p[0] == '5')
	    || (digits(p, ' ') != p + 4 && digits(p, '-') != p + 4))
		return NULL;
	tail = strstr(p, " (in reply to ");
	*len = tail ? (int)(tail - p) : (int)strlen(p);
	return p;
}

/* Remote-MTA's name from relay= "host[addr]:port": host, or [addr]. */
static void put_remote_mta(FILE *fp, const struct notice_fmt *f,
			   const char *relay)
{
	size_t len;

	if (!remote_relay(relay))
		return;
	len = strcspn(relay, "[");
	if (len == 0)
		len = strcspn(relay, "]") + (relay[strcspn(relay, "]")] == ']');
	put_field(fp, f->utf8, "Remote-MTA", "dns; %.*s", (int) len, relay);
}

static void put_rcpt_fields(FILE *fp, const struct notice_fmt *f,
			    const struct bounce_rcpt *r)
{
	const char *reason = r->reason && *r->reason ? r->reason
		: default_reason(f->bn->kind);
	const char *reply, *remote;
	long long life;
	char date[64];
	int rlen;

	fputc('\n', fp);
	put_field(fp, f->utf8, "Final-Recipient", "%s; %s",
		  addr_type(f, r->addr), r->addr);
	if (r->orcpt && *r->orcpt)
		put_orcpt(fp, f, r->orcpt);
	else if (r->orig_addr && *r->orig_addr && strcmp(r->orig_addr, r->addr))
		put_field(fp, f->utf8, "Original-Recipient", "%s; %s",
			  addr_type(f, r->orig_addr), r->orig_addr);
	put_field(fp, f->utf8, "Action", "%s", action_name(f, r));
	put_field(fp, f->utf8, "Status", "%s", status_code(f, r->dsn));
	remote = remote_relay(r->relay) ? r->relay
		: strncmp(reason, "host ", 5) == 0 && reply_in(reason, &rlen)
		? reason + 5 : NULL;    /* "host X[ip] said: ..." */
	put_remote_mta(fp, f, remote);
	if (r->diag && strchr(r->diag, ';'))
		put_field(fp, f->utf8, "Diagnostic-Code", "%s", r->diag);
	else if (remote && (reply = reply_in(reason, &rlen)))
		put_field(fp, f->utf8, "Diagnostic-Code", "smtp; %.*s", rlen,
			  reply);       /* Postfix's for a next hop's reply */
	else
		put_field(fp, f->utf8, "Diagnostic-Code", "%s; %s",
			  BOUNCE_DIAG_TYPE, reason);
	if (f->bn->kind == BOUNCE_DELAY) {
		if (cfg_lookup_number(f->src->cfg, "maximal_queue_lifetime",
				      &life) < 0)
			life = 5 * 86400;
		bounce_date(date, sizeof date,
			    (time_t) (f->src->env->arrival_sec + life));
		put_field(fp, f->utf8, "Will-Retry-Until", "%s", date);
	}
}

static void put_dsn_part(FILE *fp, const struct notice_fmt *f)
{
	int i;

	fprintf(fp, "\n--%s\n", f->boundary);
	fputs("Content-Description: Delivery report\n", fp);
	fprintf(fp, "Content-Type: message/%sdelivery-status\n",
		f->utf8 ? "global-" : "");
	if (f->utf8 && f->eight_bit)
		fputs("Content-Transfer-Encoding: 8bit\n", fp);
	put_message_fields(fp, f);
	for (i = 0; i < f->src->nrcpt; i++)
		if (bounce_rcpt_wanted(&f->src->rcpt[i], f->bn->filter))
			put_rcpt_fields(fp, f, &f->src->rcpt[i]);
}

/* ==== the returned message ==== */

static void put_original_header(FILE *fp, const struct notice_fmt *f)
{
	bool undelivered = f->bn->kind != BOUNCE_SUCCESS;
	const char *sender = f->src->env->sender;

	fprintf(fp, "\n--%s\n", f->boundary);
	fprintf(fp, "Content-Description: %s%s\n",
		undelivered ? "Undelivered " : "",
		f->headers_only ? "Message Headers" : "Message");
	if (f->utf8)
		fprintf(fp, "Content-Type: message/%s\n",
			f->headers_only ? "global-headers" : "global");
	else
		fprintf(fp, "Content-Type: %s\n", f->headers_only ?
			"text/rfc822-headers" : "message/rfc822");
	if (f->eight_bit)
		fputs("Content-Transfer-Encoding: 8bit\n", fp);
	fputc('\n', fp);
	if (f->orig_len < 0)
		return;
	fputs("Return-Path: <", fp);
	put_masked(fp, sender, f->utf8);
	fputs(">\n", fp);
}

/* Copy the original; a read error leaves Postfix's place holder. */
static int copy_original(struct out *o, const struct notice_fmt *f)
{
	char *buf = malloc(COPY_CHUNK), last = '\n';
	long long off = 0;
	long n = 0;

	if (buf == NULL)
		msg_fatal("out of memory");
	while (off < f->orig_len) {
		size_t want = f->orig_len - off < COPY_CHUNK ?
			(size_t) (f->orig_len - off) : COPY_CHUNK;

		n = queue_message_pread(f->src->fd, f->src->env, buf, want, off);
		if (n <= 0)
			break;
		if (queue_write(o->qf, buf, (size_t) n) < 0) {
			free(buf);
			return -1;
		}
		last = buf[n - 1];
		off += n;
	}
	free(buf);
	if (f->orig_len < 0 || n < 0)
		fputs("\t--- Undelivered message unavailable ---\n", o->fp);
	else if (last != '\n')
		fputc('\n', o->fp);
	return 0;
}

/* ==== the whole notice ==== */

static void fmt_init(struct notice_fmt *f, const struct bounce_source *src,
		     const struct bounce_notice *bn)
{
	memset(f, 0, sizeof *f);
	f->src = src;
	f->bn = bn;
	f->host = cfg_str(src->cfg, "myhostname");
	f->utf8 = src->env->smtputf8;
	bounce_date(f->date, sizeof f->date, src->now);
	choose_original(f);
	f->eight_bit = notice_8bit(f);
	set_boundary(f, bn->id);
}

/* The envelope of the notice: from bn->sender to bn->to, nothing else. */
static void notice_envelope(struct bounce_notice *bn, bool eight_bit,
			    bool utf8)
{
	bn->env_rcpt = (struct queue_rcpt) { bn->to, NULL, DSN_NOTIFY_NONE, 'P' };
	memset(&bn->env, 0, sizeof bn->env);
	bn->env.sender = bn->sender;
	bn->env.rcpt = &bn->env_rcpt;
	bn->env.nrcpt = 1;
	bn->env.body = eight_bit ? BODY_8BITMIME : BODY_7BIT;
	bn->env.smtputf8 = utf8;
	bn->env.message_id = bn->message_id;
}

static int start_file(struct bounce_notice *bn, const char *queue_dir,
		      const struct config *c, time_t now, struct out *o)
{
	if ((bn->qf = queue_create(queue_dir)) == NULL)
		return -1;
	snprintf(bn->id, sizeof bn->id, "%s", queue_file_id(bn->qf));
	bn->message_id = make_message_id(now, bn->id, cfg_str(c, "myhostname"));
	o->qf = bn->qf;
	out_open(o);
	return 0;
}

static int write_notice(struct out *o, struct notice_fmt *f)
{
	put_headers(o->fp, f);
	if (out_flush(o) < 0)
		return -1;
	queue_mark_body(o->qf);
	fputs("\nThis is a MIME-encapsulated message.\n", o->fp);
	put_text_part(o->fp, f);
	put_dsn_part(o->fp, f);
	put_original_header(o->fp, f);
	if (out_flush(o) < 0 || copy_original(o, f) < 0)
		return -1;
	fprintf(o->fp, "\n--%s--\n", f->boundary);
	return out_flush(o);
}

int bounce_notice_write(const struct bounce_source *src,
			struct bounce_notice *bn, const char *queue_dir)
{
	struct out o = { 0 };
	struct notice_fmt f;
	int err;

	if (start_file(bn, queue_dir, src->cfg, src->now, &o) < 0)
		return -1;
	fmt_init(&f, src, bn);
	if (write_notice(&o, &f) < 0) {
		err = errno;
		out_close(&o);
		bounce_notice_free(bn);
		errno = err;
		return -1;
	}
	out_close(&o);
	notice_envelope(bn, f.eight_bit, f.utf8);
	return 0;
}

/* ==== a plain-text postmaster notice ==== */

static void put_text_lines(FILE *fp, const char *text, bool eight_bit)
{
	const char *p = text, *nl;
	char *line, *masked;

	while (*p) {
		nl = strchr(p, '\n');
		line = nl ? strndup(p, (size_t) (nl - p)) : bounce_strdup(p);
		if (line == NULL)
			msg_fatal("out of memory");
		masked = bounce_mask(line, eight_bit);
		bounce_put_wrapped(fp, masked);
		free(masked);
		free(line);
		p = nl ? nl + 1 : p + strlen(p);
	}
}

static void put_text_headers(FILE *fp, const struct config *c,
			     const struct bounce_notice *bn,
			     const char *subject, bool eight_bit, time_t now)
{
	char *subj = bounce_mask(subject, false), date[64];

	bounce_date(date, sizeof date, now);
	put_common_headers(fp, c, bn, date, subj, false);
	fputs("MIME-Version: 1.0\n", fp);
	fprintf(fp, "Content-Type: text/plain; charset=%s\n",
		eight_bit ? "utf-8" : "us-ascii");
	fprintf(fp, "Content-Transfer-Encoding: %s\n",
		eight_bit ? "8bit" : "7bit");
	free(subj);
}

int bounce_notice_write_text(const struct config *c,
			     struct bounce_notice *bn, const char *queue_dir,
			     const char *subject, const char *text)
{
	bool eight_bit = bounce_has_8bit(text);
	time_t now = time(NULL);
	struct out o = { 0 };
	int rc, err;

	if (start_file(bn, queue_dir, c, now, &o) < 0)
		return -1;
	put_text_headers(o.fp, c, bn, subject, eight_bit, now);
	if ((rc = out_flush(&o)) == 0) {
		queue_mark_body(o.qf);
		fputc('\n', o.fp);
		put_text_lines(o.fp, text, eight_bit);
		rc = out_flush(&o);
	}
	err = errno;
	out_close(&o);
	if (rc < 0) {
		bounce_notice_free(bn);
		errno = err;
		return -1;
	}
	notice_envelope(bn, eight_bit, false);
	return 0;
}

void bounce_notice_free(struct bounce_notice *bn)
{
	if (bn->qf != NULL)
		queue_abort(bn->qf);
	bn->qf = NULL;
	free(bn->message_id);
	bn->message_id = NULL;
	free(bn->to);
	free(bn->sender);
	bn->to = bn->sender = NULL;
}
