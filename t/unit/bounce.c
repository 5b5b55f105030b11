/*
 * t/unit/bounce.c - delivery status notifications (bounce.h), tested (TAP).
 *
 * Each case writes an original message with the queue API, asks
 * bounce_send() for a notice, reads the new queue file back and takes its
 * MIME structure apart: the boundary and closing delimiter, the three
 * parts, the message/delivery-status fields, what of the original comes
 * back (whole, headers only past bounce_size_limit or with RET=HDRS).
 * Covers NOTIFY (NEVER, SUCCESS, none), ENVID and ORCPT echoed, delay and
 * success notices, bounces of bounces to 2bounce_notice_recipient and
 * never a triple bounce, notify_classes postmaster copies, 8-bit and
 * SMTPUTF8 originals, masking of hostile text, the log lines, error
 * notices, and the completion from the event loop with the committer.
 *
 * Runs in a fresh temporary directory (configuration, queue, log), which
 * it removes at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "bounce.h"
#include "config.h"
#include "jobpool.h"
#include "log.h"
#include "queue.h"
#include "tap.h"
#include "config_fixture.h"
#include "dir_fixture.h"

/* ---- fixtures ---- */

static char qdir[300], logpath[300];
static struct sluice_config *sc;

/* A configuration: the common settings plus `extra` main.cf lines. */
static const struct config *configure(const char *extra)
{
	char main_cf[2048];

	if (sc != NULL)
		config_free(sc);
	snprintf(main_cf, sizeof main_cf,
		 "myhostname = mx.example.net\nmyorigin = example.net\n"
		 "queue_directory = %s\n%s", qdir, extra ? extra : "");
	sc = load_config(main_cf, NULL, false);
	return sc->main;
}

static char *slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0)
		return NULL;
	buf = malloc((size_t) st.st_size + 1);
	if (read(fd, buf, (size_t) st.st_size) != st.st_size) {
		close(fd);
		free(buf);
		return NULL;
	}
	close(fd);
	buf[st.st_size] = 0;
	if (len)
		*len = (size_t) st.st_size;
	return buf;
}

/* Does the log hold a line containing `text`? */
static bool logged(const char *text)
{
	char *log = slurp(logpath, NULL);
	bool found = log && strstr(log, text);

	free(log);
	return found;
}

/* The queue ID in the last log line "QID: what: NEWID". */
static bool logged_notice(const char *qid, const char *what, const char *id)
{
	char line[256];

	snprintf(line, sizeof line, "%s: %s: %s", qid, what, id);
	return logged(line);
}

static int count_incoming(void)
{
	char path[512];

	snprintf(path, sizeof path, "%s/incoming", qdir);
	return dir_entries(path, NULL, 0);
}

/* ---- originals ---- */

struct orig {
	char id[QUEUE_ID_MAX];
	int fd;
	struct queue_envelope env;
	char *text;             /* the message as written */
};

struct orig_spec {
	const char *sender;
	struct queue_rcpt *rcpt;
	int nrcpt;
	int ret;
	const char *envid;
	int body;
	bool smtputf8;
	const char *headers;    /* extra header lines */
	size_t body_len;        /* bytes of body text to make */
	const char *body_text;  /* or this */
};

static void on_orig_commit(void *arg, int err)
{
	*(int *) arg = err;
}

static char *orig_text(const struct orig_spec *s, size_t *hdr_len)
{
	char *text;
	size_t n, len = 1024 + s->body_len + (s->body_text ?
						strlen(s->body_text) : 0);
	int i;

	text = malloc(len);
	n = (size_t) snprintf(text, len,
			      "Received: from client.example.org (client [192.0.2.9])\n"
			      "\tby mx.example.net (sluice) with ESMTP\n"
			      "From: Alice <alice@example.org>\nTo: bob@example.net\n"
			      "Subject: the original\n"
			      "Message-ID: <orig@example.org>\n%s",
			      s->headers ? s->headers : "");
	*hdr_len = n;
	n += (size_t) snprintf(text + n, len - n, "\n%s",
			       s->body_text ? s->body_text : "");
	for (i = 0; n < *hdr_len + 1 + s->body_len; i++)
		n += (size_t) snprintf(text + n, len - n,
				       "body line %05d of the original\n", i);
	return text;
}

/* Write the original with the queue API and open it as the qmgr would. */
static bool make_original(struct orig *o, const struct orig_spec *s)
{
	struct queue_envelope env = { 0 };
	struct queue_file *qf = queue_create(qdir);
	char path[512], err[256];
	size_t hdr_len;
	int cerr = -1;

	memset(o, 0, sizeof *o);
	o->fd = -1;
	if (qf == NULL)
		return false;
	o->text = orig_text(s, &hdr_len);
	snprintf(o->id, sizeof o->id, "%s", queue_file_id(qf));
	queue_write(qf, o->text, hdr_len);
	queue_mark_body(qf);
	queue_write(qf, o->text + hdr_len, strlen(o->text) - hdr_len);
	env.sender = (char *) s->sender;
	env.rcpt = s->rcpt;
	env.nrcpt = s->nrcpt;
	env.ret = s->ret;
	env.envid = (char *) s->envid;
	env.body = s->body;
	env.smtputf8 = s->smtputf8;
	env.proto = "ESMTP";
	queue_commit(qf, &env, on_orig_commit, &cerr);
	snprintf(path, sizeof path, "%s/incoming/%s", qdir, o->id);
	if (cerr != 0 || (o->fd = open(path, O_RDONLY)) < 0)
		return false;
	return queue_read_envelope_fd(o->fd, &o->env, err, sizeof err) == 0;
}

static void orig_free(struct orig *o)
{
	char path[512];

	if (o->fd >= 0)
		close(o->fd);
	queue_envelope_free(&o->env);
	free(o->text);
	snprintf(path, sizeof path, "%s/incoming/%s", qdir, o->id);
	unlink(path);
}

/* ---- notices read back ---- */

struct part {
	char *headers;          /* header block, unfolded */
	char *body;
};

struct notice {
	char id[QUEUE_ID_MAX];
	struct queue_envelope env;
	char *text;             /* the whole message */
	char *headers;          /* unfolded */
	char *boundary;
	struct part part[6];
	int nparts;
	bool closed;            /* the closing delimiter was found */
	bool lines_ok;          /* no line over 998 bytes, no CR */
};

/* Join folded header lines ("\n\t", "\n ") into one line each. */
static char *unfold(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '\n' && i + 1 < len && (s[i + 1] == ' '
						     || s[i + 1] == '\t')) {
			*o++ = ' ';
			while (i + 1 < len && (s[i + 1] == ' ' || s[i + 1] == '\t'))
				i++;
			continue;
		}
		*o++ = s[i];
	}
	*o = 0;
	return out;
}

/* The value of header `name` in an unfolded block, or NULL (static). */
static const char *hdr(const char *block, const char *name)
{
	static char value[4096];
	size_t nlen = strlen(name);
	const char *p = block;

	while (p && *p) {
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1, *e = strchr(v, '\n');

			while (*v == ' ')
				v++;
			snprintf(value, sizeof value, "%.*s",
				 (int) (e ? e - v : (long) strlen(v)), v);
			return value;
		}
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	return NULL;
}

static bool hdr_is(const char *block, const char *name, const char *want)
{
	const char *v = block ? hdr(block, name) : NULL;

	if (v == NULL || strcmp(v, want) != 0) {
		printf("#   %s: got \"%s\", want \"%s\"\n", name, v ? v : "(none)",
		       want);
		return false;
	}
	return true;
}

static bool lines_ok(const char *s)
{
	const char *p = s, *nl;

	for (; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p) - 1;
		if (nl - p > 998 || memchr(p, '\r', (size_t) (nl - p + 1)))
			return false;
	}
	return true;
}

/* Split the body into the parts between "--boundary" lines. */
static void split_parts(struct notice *nt, const char *body)
{
	char delim[200], close_delim[204];
	const char *p = body, *start = NULL, *nl;

	snprintf(delim, sizeof delim, "--%s", nt->boundary);
	snprintf(close_delim, sizeof close_delim, "--%s--", nt->boundary);
	for (; *p; p = nl + 1) {
		size_t len;

		nl = strchr(p, '\n');
		if (nl == NULL)
			break;
		len = (size_t) (nl - p);
		bool is_close = len == strlen(close_delim)
			&& memcmp(p, close_delim, len) == 0;
		bool is_delim = len == strlen(delim) && memcmp(p, delim, len) == 0;

		if (!is_close && !is_delim)
			continue;
		if (start != NULL && nt->nparts < 6) {
			/* the LF before the delimiter belongs to it */
			size_t plen = (size_t) (p - start) - 1;
			char *raw = strndup(start, plen), *sep = strstr(raw, "\n\n");
			struct part *pt = &nt->part[nt->nparts++];

			pt->headers = sep ? unfold(raw, (size_t) (sep - raw + 1))
				: strdup(raw);
			pt->body = strdup(sep ? sep + 2 : "");
			free(raw);
		}
		if (is_close) {
			nt->closed = true;
			break;
		}
		start = nl + 1;
	}
}

static bool read_notice(struct notice *nt, const char *id)
{
	char path[512], err[256], *sep;
	const char *ct, *b;
	int fd;

	memset(nt, 0, sizeof *nt);
	snprintf(nt->id, sizeof nt->id, "%s", id);
	snprintf(path, sizeof path, "%s/incoming/%s", qdir, id);
	if ((fd = open(path, O_RDONLY)) < 0)
		return false;
	if (queue_read_envelope_fd(fd, &nt->env, err, sizeof err) < 0) {
		diag("notice %s: %s", id, err);
		close(fd);
		return false;
	}
	nt->text = calloc(1, (size_t) nt->env.size + 1);
	queue_message_pread(fd, &nt->env, nt->text, (size_t) nt->env.size, 0);
	close(fd);
	nt->lines_ok = lines_ok(nt->text);
	if ((sep = strstr(nt->text, "\n\n")) == NULL)
		return false;
	nt->headers = unfold(nt->text, (size_t) (sep - nt->text + 1));
	if ((ct = hdr(nt->headers, "Content-Type")) != NULL
	    && (b = strstr(ct, "boundary=\"")) != NULL) {
		nt->boundary = strndup(b + 10, strcspn(b + 10, "\""));
		split_parts(nt, sep + 2);
	}
	return true;
}

static void notice_free(struct notice *nt)
{
	char path[512];

	for (int i = 0; i < nt->nparts; i++) {
		free(nt->part[i].headers);
		free(nt->part[i].body);
	}
	queue_envelope_free(&nt->env);
	free(nt->text);
	free(nt->headers);
	free(nt->boundary);
	snprintf(path, sizeof path, "%s/incoming/%s", qdir, nt->id);
	unlink(path);
}

/* The delivery-status body as groups of fields: [0] per message, then
 * one per recipient.  Returns the number of groups (max 8). */
static int dsn_groups(const char *body, char **group)
{
	char *copy = unfold(body, strlen(body)), *p = copy, *sep;
	int n = 0;

	while (*p == '\n')
		p++;
	while (*p && n < 8) {
		sep = strstr(p, "\n\n");
		group[n++] = strndup(p, sep ? (size_t) (sep - p + 1) : strlen(p));
		if (sep == NULL)
			break;
		p = sep + 2;
		while (*p == '\n')
			p++;
	}
	free(copy);
	return n;
}

static void groups_free(char **group, int n)
{
	while (n-- > 0)
		free(group[n]);
}

/* ---- calling bounce_send ---- */

struct done_rec {
	int calls;
	int err;
	bool during_call;       /* done() ran before bounce_send() returned */
};

static bool in_call;

static void on_done(void *arg, int err)
{
	struct done_rec *d = arg;

	d->calls++;
	d->err = err;
	d->during_call = in_call;
}

static int send_notice(const struct config *c, enum bounce_kind kind,
		       const struct orig *o, const struct bounce_rcpt *r, int n,
		       struct done_rec *d, char *new_id)
{
	int rc;

	memset(d, 0, sizeof *d);
	in_call = true;
	rc = bounce_send(c, qdir, kind, o->id, o->fd, &o->env, r, n, on_done,
			 d, new_id);
	in_call = false;
	return rc;
}

static bool has_line_longer(const char *s, size_t max)
{
	const char *p = s, *nl;

	for (; p && *p; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if ((nl ? (size_t) (nl - p) : strlen(p)) > max)
			return true;
	}
	return false;
}

/* ---- the cases ---- */

static struct queue_rcpt rcpt4[] = {
	{ "bob@example.net", "rfc822;bob@example.net", DSN_NOTIFY_NONE, 'P' },
	{ "carol@example.net", "rfc822;carol+2Bx@example.net",
	  DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY, 'P' },
	{ "dave@example.net", NULL, DSN_NOTIFY_NEVER, 'P' },
	{ "erin@example.net", NULL, DSN_NOTIFY_SUCCESS, 'P' },
};

static const char *long_reason =
	"host mx2.example.net[192.0.2.2] said: 552 5.2.2 <carol@example.net>: "
	"Mailbox full, the user has exceeded the storage quota of this "
	"mailbox and will not receive any more mail until she deletes some "
	"(in reply to RCPT TO command)";

static struct bounce_rcpt failed4[] = {
	{ "bob@example.net", NULL, "rfc822;bob@example.net", DSN_NOTIFY_NONE,
	  BOUNCE_ACTION_AUTO, "5.1.1",
	  "host mx.example.net[192.0.2.1] said: 550 5.1.1 <bob@example.net>: "
	  "User unknown (in reply to RCPT TO command)",
	  "smtp; 550 5.1.1 <bob@example.net>: User unknown",
	  "mx.example.net[192.0.2.1]:25" },
	{ "carol@example.net", NULL, "rfc822;carol+2Bx@example.net",
	  DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY, BOUNCE_ACTION_AUTO, "5.2.2",
	  NULL, NULL, NULL },
	{ "dave@example.net", NULL, NULL, DSN_NOTIFY_NEVER, BOUNCE_ACTION_AUTO,
	  "5.1.1", "dave is gone", NULL, "none" },
	{ "erin@example.net", NULL, NULL, DSN_NOTIFY_SUCCESS, BOUNCE_ACTION_AUTO,
	  "5.1.1", "erin is gone", NULL, NULL },
};

static void test_failure(void)
{
	const struct config *c = configure(NULL);
	struct orig_spec s = { "alice@example.org", rcpt4, 4, DSN_RET_NONE,
			       "QQ+2B314159", BODY_7BIT, false, NULL, 600, NULL };
	struct bounce_rcpt r[4];
	char new_id[QUEUE_ID_MAX] = "x", want[512], *g[8];
	struct done_rec d;
	struct notice nt;
	struct orig o;
	int ng;

	memcpy(r, failed4, sizeof r);
	r[1].reason = long_reason;
	ok(make_original(&o, &s), "failure: original written and read back");
	is_int(send_notice(c, BOUNCE_FAILURE, &o, r, 4, &d, new_id), 0,
	       "failure: bounce_send returns 0");
	ok(d.calls == 1 && d.err == 0, "failure: done called once, err 0");
	ok(*new_id != 0 && strcmp(new_id, o.id) != 0, "failure: new queue ID %s",
	   new_id);
	ok(logged_notice(o.id, "sender non-delivery notification", new_id),
	   "failure: log line \"ID: sender non-delivery notification: NEWID\"");
	if (!ok(read_notice(&nt, new_id), "failure: notice read back")) {
		orig_free(&o);
		return;
	}
	ok(nt.env.sender && *nt.env.sender == 0, "failure: envelope sender <>");
	ok(nt.env.nrcpt == 1 && strcmp(nt.env.rcpt[0].addr,
				       "alice@example.org") == 0,
	   "failure: envelope recipient is the envelope sender");
	ok(nt.env.body == BODY_7BIT, "failure: 7bit original, 7bit notice");
	ok(hdr_is(nt.headers, "From",
		  "Mail Delivery System <MAILER-DAEMON@example.net>"),
	   "failure: From: Mail Delivery System <MAILER-DAEMON@$myorigin>");
	ok(hdr_is(nt.headers, "To", "alice@example.org"), "failure: To: sender");
	ok(hdr_is(nt.headers, "Subject", "Undelivered Mail Returned to Sender"),
	   "failure: Subject");
	ok(hdr_is(nt.headers, "Auto-Submitted", "auto-replied"),
	   "failure: Auto-Submitted: auto-replied");
	ok(hdr_is(nt.headers, "MIME-Version", "1.0"), "failure: MIME-Version");
	ok(hdr(nt.headers, "Date") != NULL, "failure: Date:");
	ok(hdr(nt.headers, "Message-ID") && strstr(hdr(nt.headers, "Message-ID"),
						   new_id),
	   "failure: Message-ID: names the notice");
	ok(nt.env.message_id && strstr(nt.env.message_id, new_id),
	   "failure: message_id record");
	ok(hdr(nt.headers, "Content-Type") && strncmp(hdr(nt.headers,
		"Content-Type"), "multipart/report; report-type=delivery-status;",
		46) == 0, "failure: multipart/report; report-type=delivery-status");
	ok(hdr_is(nt.headers, "Content-Transfer-Encoding", "7bit"),
	   "failure: Content-Transfer-Encoding: 7bit");
	ok(nt.boundary && strstr(nt.boundary, new_id), "failure: boundary %s",
	   nt.boundary ? nt.boundary : "(none)");
	is_int(nt.nparts, 3, "failure: three parts");
	ok(nt.closed, "failure: closing delimiter");
	ok(nt.lines_ok, "failure: no CR, no line over 998 bytes");
	if (nt.nparts != 3) {
		notice_free(&nt);
		orig_free(&o);
		return;
	}

	/* the human-readable part */
	ok(hdr_is(nt.part[0].headers, "Content-Type",
		  "text/plain; charset=us-ascii"), "failure: part 1 text/plain");
	ok(strstr(nt.part[0].body, "This is the mail system at host "
		  "mx.example.net.\n\nI'm sorry to have to inform you that your "
		  "message could not\nbe delivered to one or more recipients. "
		  "It's attached below.\n") != NULL,
	   "failure: Postfix's wording");
	ok(strstr(nt.part[0].body, "\n<bob@example.net>: host mx.example.net"
		  "[192.0.2.1] said: 550 5.1.1\n") != NULL,
	   "failure: bob's reason, wrapped");
	ok(strstr(nt.part[0].body, "<carol@example.net>: host mx2") != NULL
	   && strstr(nt.part[0].body, "\n    ") != NULL,
	   "failure: carol's long reason, continuation lines indented");
	ok(!has_line_longer(nt.part[0].body, 79), "failure: no line over 79");
	ok(strstr(nt.part[0].body, "dave") == NULL,
	   "failure: NOTIFY=NEVER recipient not reported");
	ok(strstr(nt.part[0].body, "erin") == NULL,
	   "failure: NOTIFY=SUCCESS recipient not reported");

	/* the delivery-status part */
	ok(hdr_is(nt.part[1].headers, "Content-Type", "message/delivery-status"),
	   "failure: part 2 message/delivery-status");
	ng = dsn_groups(nt.part[1].body, g);
	is_int(ng, 3, "failure: per-message fields and two recipients");
	if (ng == 3) {
		ok(hdr_is(g[0], "Reporting-MTA", "dns; mx.example.net"),
		   "failure: Reporting-MTA: dns; myhostname");
		ok(hdr_is(g[0], "Original-Envelope-Id", "QQ+314159"),
		   "failure: Original-Envelope-Id: ENVID, xtext decoded");
		ok(hdr_is(g[0], "X-Sluice-Queue-ID", o.id),
		   "failure: X-Sluice-Queue-ID: the original's ID");
		ok(hdr_is(g[0], "X-Sluice-Sender", "rfc822; alice@example.org"),
		   "failure: X-Sluice-Sender");
		ok(hdr(g[0], "Arrival-Date") != NULL, "failure: Arrival-Date");
		ok(hdr_is(g[1], "Final-Recipient", "rfc822; bob@example.net")
		   && hdr_is(g[1], "Original-Recipient", "rfc822;bob@example.net")
		   && hdr_is(g[1], "Action", "failed")
		   && hdr_is(g[1], "Status", "5.1.1")
		   && hdr_is(g[1], "Remote-MTA", "dns; mx.example.net")
		   && hdr_is(g[1], "Diagnostic-Code",
			     "smtp; 550 5.1.1 <bob@example.net>: User unknown"),
		   "failure: bob's fields (ORCPT, Remote-MTA, Diagnostic-Code)");
		snprintf(want, sizeof want, "smtp; %.*s",
			 (int)(strstr(long_reason, " (in reply") - long_reason - 38),
			 long_reason + 38);
		ok(hdr_is(g[2], "Final-Recipient", "rfc822; carol@example.net")
		   && hdr_is(g[2], "Original-Recipient",
			     "rfc822;carol+x@example.net")
		   && hdr_is(g[2], "Status", "5.2.2")
		   && hdr_is(g[2], "Remote-MTA", "dns; mx2.example.net")
		   && hdr_is(g[2], "Diagnostic-Code", want),
		   "failure: carol's fields (ORCPT decoded; without relay=, "
		   "Remote-MTA and the smtp; reply from \"host X said:\")");
	}
	groups_free(g, ng);

	/* the original */
	ok(hdr_is(nt.part[2].headers, "Content-Description",
		  "Undelivered Message")
	   && hdr_is(nt.part[2].headers, "Content-Type", "message/rfc822"),
	   "failure: part 3 message/rfc822, the whole message");
	snprintf(want, sizeof want, "Return-Path: <alice@example.org>\n");
	ok(strncmp(nt.part[2].body, want, strlen(want)) == 0
	   && strcmp(nt.part[2].body + strlen(want), o.text) == 0,
	   "failure: Return-Path, then the original byte for byte");
	notice_free(&nt);
	orig_free(&o);
}

static void test_size_limit(void)
{
	const struct config *c = configure("bounce_size_limit = 2000\n");
	struct orig_spec s = { "alice@example.org", rcpt4, 1, DSN_RET_FULL,
			       NULL, BODY_7BIT, false, NULL, 5000, NULL };
	char new_id[QUEUE_ID_MAX], *hdrs_end;
	struct done_rec d;
	struct notice nt;
	struct orig o;

	ok(make_original(&o, &s), "size limit: 5000-byte original");
	send_notice(c, BOUNCE_FAILURE, &o, failed4, 1, &d, new_id);
	if (!ok(read_notice(&nt, new_id) && nt.nparts == 3,
		"size limit: notice with three parts")) {
		orig_free(&o);
		return;
	}
	ok(hdr_is(nt.part[2].headers, "Content-Type", "text/rfc822-headers")
	   && hdr_is(nt.part[2].headers, "Content-Description",
		     "Undelivered Message Headers"),
	   "size limit: over bounce_size_limit, text/rfc822-headers");
	hdrs_end = strstr(o.text, "\n\n");
	ok(hdrs_end && strncmp(nt.part[2].body, "Return-Path: <alice@example.org>\n",
			       33) == 0
	   && strncmp(nt.part[2].body + 33, o.text,
		      (size_t) (hdrs_end - o.text + 1)) == 0
	   && strlen(nt.part[2].body) == 33 + (size_t) (hdrs_end - o.text + 1),
	   "size limit: the header block exactly, no body");
	ok(strstr(nt.part[2].body, "body line") == NULL,
	   "size limit: nothing of the body");
	ok(nt.closed, "size limit: MIME structure intact");
	notice_free(&nt);
	orig_free(&o);

	c = configure("bounce_size_limit = 20000\n");
	ok(make_original(&o, &s), "size limit: same original, limit 20000");
	send_notice(c, BOUNCE_FAILURE, &o, failed4, 1, &d, new_id);
	ok(read_notice(&nt, new_id) && nt.nparts == 3
	   && hdr_is(nt.part[2].headers, "Content-Type", "message/rfc822")
	   && strcmp(nt.part[2].body + 33, o.text) == 0,
	   "size limit: under bounce_size_limit, returned whole");
	notice_free(&nt);
	orig_free(&o);
}

static void test_ret_hdrs(void)
{
	const struct config *c = configure(NULL);
	struct orig_spec s = { "alice@example.org", rcpt4, 1, DSN_RET_HDRS,
			       NULL, BODY_7BIT, false, NULL, 100, NULL };
	char new_id[QUEUE_ID_MAX];
	struct done_rec d;
	struct notice nt;
	struct orig o;

	ok(make_original(&o, &s), "RET=HDRS: original");
	send_notice(c, BOUNCE_FAILURE, &o, failed4, 1, &d, new_id);
	ok(read_notice(&nt, new_id) && nt.nparts == 3
	   && hdr_is(nt.part[2].headers, "Content-Type", "text/rfc822-headers")
	   && strstr(nt.part[2].body, "Subject: the original\n")
	   && !strstr(nt.part[2].body, "body line"),
	   "RET=HDRS: headers only, though small");
	notice_free(&nt);
	orig_free(&o);

	s.sender = "local user";
	ok(make_original(&o, &s), "unqualified sender: original");
	send_notice(c, BOUNCE_FAILURE, &o, failed4, 1, &d, new_id);
	ok(read_notice(&nt, new_id)
	   && strcmp(nt.env.rcpt[0].addr, "local user@example.net") == 0
	   && hdr_is(nt.headers, "To", "\"local user\"@example.net"),
	   "unqualified sender: @$myorigin appended, local part quoted in To:");
	notice_free(&nt);
	orig_free(&o);
}

static void test_notify_never(void)
{
	const struct config *c = configure(NULL);
	struct orig_spec s = { "alice@example.org", rcpt4, 4, DSN_RET_NONE,
			       NULL, BODY_7BIT, false, NULL, 100, NULL };
	char new_id[QUEUE_ID_MAX] = "x";
	struct done_rec d;
	struct orig o;
	int before;

	ok(make_original(&o, &s), "NOTIFY: original");
	before = count_incoming();
	is_int(send_notice(c, BOUNCE_FAILURE, &o, &failed4[2], 1, &d, new_id),
	       0, "NOTIFY=NEVER: bounce_send returns 0");
	ok(d.calls == 1 && d.err == 0 && *new_id == 0,
	   "NOTIFY=NEVER: done(0), no new ID");
	is_int(count_incoming(), before, "NOTIFY=NEVER: no notice written");
	send_notice(c, BOUNCE_FAILURE, &o, &failed4[3], 1, &d, new_id);
	ok(d.calls == 1 && *new_id == 0 && count_incoming() == before,
	   "NOTIFY=SUCCESS alone: no non-delivery notice");
	send_notice(c, BOUNCE_DELAY, &o, &failed4[1], 1, &d, new_id);
	ok(*new_id != 0, "NOTIFY=FAILURE,DELAY: delay notice");
	if (*new_id) {
		struct notice nt;

		read_notice(&nt, new_id);
		notice_free(&nt);
	}
	send_notice(c, BOUNCE_SUCCESS, &o, &failed4[0], 1, &d, new_id);
	ok(d.calls == 1 && *new_id == 0 && count_incoming() == before,
	   "no NOTIFY: no success notice");
	orig_free(&o);
}

static void test_success(void)
{
	const struct config *c = configure("notify_classes = bounce, delay\n");
	struct orig_spec s = { "alice@example.org", rcpt4, 4, DSN_RET_FULL,
			       "ENV1", BODY_7BIT, false, NULL, 100, NULL };
	struct bounce_rcpt r[2] = {
		{ "bob@example.net", NULL, NULL, DSN_NOTIFY_NONE,
		  BOUNCE_ACTION_DELIVERED, "2.0.0", "delivered to mailbox",
		  NULL, "local" },
		{ "erin@example.net", "erin@alias.example.net", NULL,
		  DSN_NOTIFY_SUCCESS, BOUNCE_ACTION_RELAYED, "2.0.0",
		  "delivery via mx.example.com[192.0.2.7]:25: 250 2.0.0 Ok: "
		  "queued as 4Xyz", "smtp; 250 2.0.0 Ok: queued as 4Xyz",
		  "mx.example.com[192.0.2.7]:25" },
	};
	char new_id[QUEUE_ID_MAX], *g[8];
	struct done_rec d;
	struct notice nt;
	struct orig o;
	int before, ng;

	ok(make_original(&o, &s), "success: original");
	before = count_incoming();
	send_notice(c, BOUNCE_SUCCESS, &o, r, 2, &d, new_id);
	ok(d.calls == 1 && d.err == 0 && *new_id, "success: notice queued");
	is_int(count_incoming(), before + 1,
	       "success: one notice, no postmaster copy");
	ok(logged_notice(o.id, "sender delivery status notification", new_id),
	   "success: log line \"sender delivery status notification\"");
	if (!ok(read_notice(&nt, new_id) && nt.nparts == 3,
		"success: three parts")) {
		orig_free(&o);
		return;
	}
	ok(hdr_is(nt.headers, "Subject", "Successful Mail Delivery Report"),
	   "success: Subject");
	ok(strstr(nt.part[0].body, "Your message was successfully delivered "
		  "to the destination(s)\nlisted below.") != NULL,
	   "success: Postfix's wording");
	ok(strstr(nt.part[0].body, "<erin@example.net> (expanded from "
		  "<erin@alias.example.net>): delivery via") != NULL
	   && strstr(nt.part[0].body, "bob@") == NULL,
	   "success: only the NOTIFY=SUCCESS recipient, \"expanded from\"");
	ng = dsn_groups(nt.part[1].body, g);
	ok(ng == 2 && hdr_is(g[0], "Original-Envelope-Id", "ENV1")
	   && hdr_is(g[1], "Final-Recipient", "rfc822; erin@example.net")
	   && hdr_is(g[1], "Original-Recipient", "rfc822; erin@alias.example.net")
	   && hdr_is(g[1], "Action", "relayed")
	   && hdr_is(g[1], "Status", "2.0.0")
	   && hdr_is(g[1], "Remote-MTA", "dns; mx.example.com"),
	   "success: Action: relayed, Status 2.0.0, Remote-MTA");
	groups_free(g, ng);
	ok(hdr_is(nt.part[2].headers, "Content-Description", "Message Headers")
	   && hdr_is(nt.part[2].headers, "Content-Type", "text/rfc822-headers")
	   && !strstr(nt.part[2].body, "body line"),
	   "success: headers only, though RET=FULL");
	notice_free(&nt);
	orig_free(&o);
}

static void test_delay(void)
{
	const struct config *c = configure(NULL);
	struct orig_spec s = { "alice@example.org", rcpt4, 4, DSN_RET_FULL,
			       NULL, BODY_7BIT, false, NULL, 100, NULL };
	struct bounce_rcpt r[3] = {
		{ "bob@example.net", NULL, NULL, DSN_NOTIFY_NONE,
		  BOUNCE_ACTION_AUTO, "4.4.1",
		  "connect to mx.example.net[192.0.2.1]:25: Connection refused",
		  NULL, NULL },
		{ "carol@example.net", NULL, NULL, DSN_NOTIFY_DELAY,
		  BOUNCE_ACTION_AUTO, "4.2.2", "mailbox full", NULL, NULL },
		{ "dave@example.net", NULL, NULL, DSN_NOTIFY_FAILURE,
		  BOUNCE_ACTION_AUTO, "4.4.1", "no route", NULL, NULL },
	};
	char new_id[QUEUE_ID_MAX], *g[8];
	struct done_rec d;
	struct notice nt;
	struct orig o;
	int ng;

	ok(make_original(&o, &s), "delay: original");
	send_notice(c, BOUNCE_DELAY, &o, r, 3, &d, new_id);
	ok(d.calls == 1 && d.err == 0 && *new_id, "delay: notice queued");
	ok(logged_notice(o.id, "sender delay notification", new_id),
	   "delay: log line \"sender delay notification\"");
	if (!ok(read_notice(&nt, new_id) && nt.nparts == 3, "delay: three parts")) {
		orig_free(&o);
		return;
	}
	ok(hdr_is(nt.headers, "Subject", "Delayed Mail (still being retried)"),
	   "delay: Subject");
	ok(strstr(nt.part[0].body, "# THIS IS A WARNING ONLY.  YOU DO NOT NEED "
		  "TO RESEND YOUR MESSAGE. #") != NULL
	   && strstr(nt.part[0].body, "It will be retried until it is ") != NULL,
	   "delay: Postfix's wording");
	ng = dsn_groups(nt.part[1].body, g);
	ok(ng == 3 && hdr_is(g[1], "Final-Recipient", "rfc822; bob@example.net")
	   && hdr_is(g[1], "Action", "delayed") && hdr_is(g[1], "Status", "4.4.1")
	   && hdr(g[1], "Will-Retry-Until") != NULL
	   && hdr_is(g[2], "Final-Recipient", "rfc822; carol@example.net"),
	   "delay: Action: delayed, Will-Retry-Until; NOTIFY=FAILURE left out");
	groups_free(g, ng);
	ok(hdr_is(nt.part[2].headers, "Content-Description",
		  "Undelivered Message Headers")
	   && !strstr(nt.part[2].body, "body line"),
	   "delay: headers only");
	notice_free(&nt);
	orig_free(&o);
}

static void test_double_bounce(void)
{
	const struct config *c = configure(NULL);
	static struct queue_rcpt to_alice[] = {
		{ "alice@example.org", NULL, DSN_NOTIFY_NONE, 'P' },
	};
	struct orig_spec s = { "", to_alice, 1, DSN_RET_NONE, NULL, BODY_7BIT,
			       false, NULL, 300, NULL };
	struct bounce_rcpt r = { "alice@example.org", NULL, NULL, 0,
				 BOUNCE_ACTION_AUTO, "5.1.1",
				 "host mx.example.org[192.0.2.3] said: 550 5.1.1 "
				 "no such user (in reply to RCPT TO command)",
				 NULL, "mx.example.org[192.0.2.3]:25" };
	char new_id[QUEUE_ID_MAX] = "x", want[128];
	struct done_rec d;
	struct notice nt;
	struct orig o;
	int before;

	ok(make_original(&o, &s), "double bounce: a bounce (null sender)");
	before = count_incoming();
	send_notice(c, BOUNCE_FAILURE, &o, &r, 1, &d, new_id);
	ok(d.calls == 1 && d.err == 0 && *new_id == 0
	   && count_incoming() == before,
	   "double bounce: nothing by default (notify_classes lacks 2bounce)");
	ok(logged("undeliverable bounce discarded"),
	   "double bounce: the discard is logged");

	c = configure("notify_classes = 2bounce\n");
	send_notice(c, BOUNCE_FAILURE, &o, &r, 1, &d, new_id);
	ok(d.calls == 1 && d.err == 0 && *new_id,
	   "double bounce: with 2bounce, a notice");
	ok(logged_notice(o.id, "postmaster non-delivery notification", new_id),
	   "double bounce: log \"postmaster non-delivery notification\"");
	if (read_notice(&nt, new_id) && nt.nparts == 3) {
		ok(strcmp(nt.env.sender, "double-bounce@mx.example.net") == 0,
		   "double bounce: envelope sender double-bounce@$myhostname");
		ok(strcmp(nt.env.rcpt[0].addr, "postmaster@example.net") == 0
		   && hdr_is(nt.headers, "To", "postmaster@example.net"),
		   "double bounce: to 2bounce_notice_recipient@$myorigin");
		ok(hdr_is(nt.headers, "Subject", "Postmaster Copy: Undelivered Mail")
		   && hdr_is(nt.headers, "Auto-Submitted", "auto-generated"),
		   "double bounce: postmaster subject, auto-generated");
		ok(strstr(nt.part[0].body, "I'm sorry") == NULL
		   && strstr(nt.part[0].body, "<alice@example.org>: host"),
		   "double bounce: reasons without the boilerplate");
		ok(hdr_is(nt.part[2].headers, "Content-Type", "message/rfc822")
		   && strncmp(nt.part[2].body, "Return-Path: <>\n", 16) == 0
		   && strcmp(nt.part[2].body + 16, o.text) == 0,
		   "double bounce: the whole bounce attached");
		snprintf(want, sizeof want, "%s", nt.id);
		notice_free(&nt);
	} else {
		ok(0, "double bounce: notice read back");
	}
	orig_free(&o);

	/* ... and that postmaster notice fails in turn */
	s.sender = "double-bounce@mx.example.net";
	ok(make_original(&o, &s), "triple bounce: a postmaster notice");
	before = count_incoming();
	send_notice(c, BOUNCE_FAILURE, &o, &r, 1, &d, new_id);
	ok(d.calls == 1 && d.err == 0 && *new_id == 0
	   && count_incoming() == before,
	   "triple bounce: never sent");
	snprintf(want, sizeof want, "%s: undeliverable postmaster notification "
		 "discarded", o.id);
	ok(logged(want), "triple bounce: \"undeliverable postmaster "
	   "notification discarded\" logged");
	ok(bounce_is_double_bounce(c, "Double-Bounce@MX.example.net")
	   && !bounce_is_double_bounce(c, "double-bounce@example.net"),
	   "bounce_is_double_bounce: double_bounce_sender@$myhostname");
	orig_free(&o);
}

static void test_postmaster_copy(void)
{
	const struct config *c = configure("notify_classes = bounce\n");
	struct orig_spec s = { "alice@example.org", rcpt4, 4, DSN_RET_FULL,
			       NULL, BODY_7BIT, false, NULL, 300, NULL };
	char new_id[QUEUE_ID_MAX], pm_id[QUEUE_ID_MAX] = "", *log, *p, *g[8];
	struct done_rec d;
	struct notice nt;
	struct orig o;
	int before, ng;

	ok(make_original(&o, &s), "postmaster copy: original");
	before = count_incoming();
	send_notice(c, BOUNCE_FAILURE, &o, failed4, 3, &d, new_id);
	ok(d.calls == 1 && d.err == 0 && *new_id, "postmaster copy: done once");
	is_int(count_incoming(), before + 2,
	       "postmaster copy: the notice and a copy");
	log = slurp(logpath, NULL);
	for (p = log; p && (p = strstr(p, "postmaster non-delivery "
				       "notification: ")) != NULL; p++)
		sscanf(p + 38, "%31s", pm_id);  /* the last one */
	free(log);
	ok(*pm_id && strcmp(pm_id, new_id) > 0,
	   "postmaster copy: logged, committed after the notice");
	if (read_notice(&nt, pm_id) && nt.nparts == 3) {
		ok(hdr_is(nt.headers, "To", "postmaster@example.net")
		   && strcmp(nt.env.sender, "double-bounce@mx.example.net") == 0,
		   "postmaster copy: to bounce_notice_recipient, from "
		   "double-bounce");
		ok(hdr_is(nt.headers, "Subject", "Postmaster Copy: Undelivered Mail"),
		   "postmaster copy: Subject");
		ng = dsn_groups(nt.part[1].body, g);
		ok(ng == 4 && hdr_is(g[3], "Final-Recipient",
				     "rfc822; dave@example.net"),
		   "postmaster copy: every recipient, NOTIFY=NEVER too");
		groups_free(g, ng);
		ok(hdr_is(nt.part[2].headers, "Content-Type", "text/rfc822-headers"),
		   "postmaster copy: headers only");
		notice_free(&nt);
	} else {
		ok(0, "postmaster copy: read back");
	}
	if (read_notice(&nt, new_id))
		notice_free(&nt);

	/* only NOTIFY=NEVER: no notice to the sender, still the copy */
	before = count_incoming();
	send_notice(c, BOUNCE_FAILURE, &o, &failed4[2], 1, &d, new_id);
	ok(d.calls == 1 && *new_id == 0 && count_incoming() == before + 1,
	   "postmaster copy: sent even when the sender gets none");
	orig_free(&o);
}

static void test_8bit(void)
{
	const struct config *c = configure(NULL);
	static struct queue_rcpt utf8_rcpt[] = {
		{ "j\xc3\xbcrgen@b\xc3\xbcro.example", NULL, DSN_NOTIFY_NONE, 'P' },
	};
	struct orig_spec s = { "alice@example.org", rcpt4, 1, DSN_RET_FULL, NULL,
			       BODY_8BITMIME, false, NULL, 0,
			       "Gr\xc3\xbc\xc3\x9f""e aus K\xc3\xb6ln\n" };
	struct bounce_rcpt r = { "j\xc3\xbcrgen@b\xc3\xbcro.example", NULL, NULL,
				 0, BOUNCE_ACTION_AUTO, "5.1.1", "unknown user",
				 NULL, NULL };
	char new_id[QUEUE_ID_MAX], *g[8];
	struct done_rec d;
	struct notice nt;
	struct orig o;
	int ng;

	ok(make_original(&o, &s), "8bit: 8BITMIME original");
	send_notice(c, BOUNCE_FAILURE, &o, failed4, 1, &d, new_id);
	if (read_notice(&nt, new_id) && nt.nparts == 3) {
		ok(nt.env.body == BODY_8BITMIME
		   && hdr_is(nt.headers, "Content-Transfer-Encoding", "8bit")
		   && hdr_is(nt.part[0].headers, "Content-Type",
			     "text/plain; charset=utf-8")
		   && hdr_is(nt.part[2].headers, "Content-Transfer-Encoding",
			     "8bit"),
		   "8bit: 8BITMIME notice, 8bit parts, charset utf-8");
		ok(strstr(nt.part[2].body, "K\xc3\xb6ln") != NULL,
		   "8bit: the original's 8-bit text kept");
		notice_free(&nt);
	} else {
		ok(0, "8bit: notice read back");
	}
	orig_free(&o);

	s.smtputf8 = true;
	s.sender = "\xc3\xa9l\xc3\xa8ve@exemple.fr";
	s.rcpt = utf8_rcpt;
	ok(make_original(&o, &s), "SMTPUTF8: original from a UTF-8 sender");
	send_notice(c, BOUNCE_FAILURE, &o, &r, 1, &d, new_id);
	if (read_notice(&nt, new_id) && nt.nparts == 3) {
		ok(strcmp(nt.env.rcpt[0].addr, s.sender) == 0 && nt.env.smtputf8,
		   "SMTPUTF8: to the UTF-8 sender, SMTPUTF8 envelope");
		ok(hdr_is(nt.part[1].headers, "Content-Type",
			  "message/global-delivery-status")
		   && hdr_is(nt.part[2].headers, "Content-Type", "message/global"),
		   "SMTPUTF8: message/global-delivery-status, message/global");
		ng = dsn_groups(nt.part[1].body, g);
		ok(ng == 2 && hdr_is(g[1], "Final-Recipient",
				     "utf-8; j\xc3\xbcrgen@b\xc3\xbcro.example"),
		   "SMTPUTF8: Final-Recipient: utf-8; address");
		groups_free(g, ng);
		notice_free(&nt);
	} else {
		ok(0, "SMTPUTF8: notice read back");
	}
	orig_free(&o);
}

static void test_hostile(void)
{
	const struct config *c = configure(NULL);
	struct orig_spec s = { "alice@example.org", rcpt4, 1, DSN_RET_FULL,
			       "bad+0D+0Aenvid", BODY_7BIT, false, NULL, 100,
			       NULL };
	struct bounce_rcpt r = { "bob@example.net\r\nBcc: victim@example.com",
				 NULL, "rfc822;x+0D+0AInjected: 1",
				 0, BOUNCE_ACTION_AUTO, "5.1.1; rm",
				 "550 no\r\nX-Injected: yes\n\n--fake\x01\xff",
				 "smtp; 550 no\r\nX-Injected: yes", NULL };
	char new_id[QUEUE_ID_MAX], *g[8];
	struct done_rec d;
	struct notice nt;
	struct orig o;
	int ng;

	ok(make_original(&o, &s), "hostile: original");
	send_notice(c, BOUNCE_FAILURE, &o, &r, 1, &d, new_id);
	if (!ok(read_notice(&nt, new_id) && nt.nparts == 3 && nt.closed,
		"hostile: MIME structure intact")) {
		orig_free(&o);
		return;
	}
	ok(strstr(nt.text, "\nX-Injected") == NULL
	   && strstr(nt.text, "\nBcc:") == NULL
	   && strstr(nt.text, "\nInjected") == NULL
	   && strstr(nt.text, "\n--fake") == NULL,
	   "hostile: no CR/LF from the network starts a line");
	ok(strchr(nt.text, '\x01') == NULL && strchr(nt.text, '\xff') == NULL,
	   "hostile: control and 8-bit bytes masked in a 7bit notice");
	ng = dsn_groups(nt.part[1].body, g);
	ok(ng == 2 && hdr_is(g[1], "Status", "5.0.0")
	   && hdr_is(g[0], "Original-Envelope-Id", "bad+0D+0Aenvid")
	   && hdr_is(g[1], "Original-Recipient", "rfc822;x+0D+0AInjected: 1"),
	   "hostile: bad status replaced, undecodable xtext kept as given");
	groups_free(g, ng);
	notice_free(&nt);
	orig_free(&o);
}

/* Headers replaced at end of message: the notice returns the new ones. */
static void test_segments(void)
{
	const struct config *c = configure(NULL);
	struct queue_envelope env = { 0 };
	struct queue_file *qf = queue_create(qdir);
	const char *hdrs = "Received: by mx\nSubject: first\n";
	const char *newhdrs = "Received: by mx\nSubject: rewritten\n"
		"X-Filter: yes\n";
	char new_id[QUEUE_ID_MAX], path[512], err[256];
	struct done_rec d;
	struct notice nt;
	struct orig o = { .fd = -1 };
	int cerr = -1;

	snprintf(o.id, sizeof o.id, "%s", queue_file_id(qf));
	queue_write(qf, hdrs, strlen(hdrs));
	queue_mark_body(qf);
	queue_write(qf, "\nthe body\n", 10);
	queue_replace_headers(qf, newhdrs, strlen(newhdrs));
	env.sender = "alice@example.org";
	env.rcpt = rcpt4;
	env.nrcpt = 1;
	env.ret = DSN_RET_HDRS;
	queue_commit(qf, &env, on_orig_commit, &cerr);
	snprintf(path, sizeof path, "%s/incoming/%s", qdir, o.id);
	o.fd = open(path, O_RDONLY);
	ok(cerr == 0 && o.fd >= 0 && queue_read_envelope_fd(o.fd, &o.env, err,
							     sizeof err) == 0
	   && o.env.nseg == 2, "segments: original with replaced headers");
	send_notice(c, BOUNCE_FAILURE, &o, failed4, 1, &d, new_id);
	ok(read_notice(&nt, new_id) && nt.nparts == 3
	   && strcmp(nt.part[2].body, "Return-Path: <alice@example.org>\n"
		     "Received: by mx\nSubject: rewritten\nX-Filter: yes\n") == 0,
	   "segments: the headers as rewritten, read through the segments");
	notice_free(&nt);
	orig_free(&o);
}

static void test_error_notice(void)
{
	const struct config *c = configure(NULL);
	char new_id[QUEUE_ID_MAX] = "x";
	struct done_rec d = { 0 };
	struct notice nt;
	int before = count_incoming();

	is_int(bounce_error_notice(c, qdir, "policy", "ABC", "Policy", "text",
				   on_done, &d, new_id), 0,
	       "error notice: class not in notify_classes, returns 0");
	ok(d.calls == 1 && *new_id == 0 && count_incoming() == before,
	   "error notice: nothing sent for policy by default");
	memset(&d, 0, sizeof d);
	bounce_error_notice(c, qdir, "software", "ABC",
			    "sluice SMTP client: errors from mx[192.0.2.1]",
			    "Transcript of session follows.\n\n Out: EHLO x\r\n"
			    " In:  421 bye\nBcc: no\n", on_done, &d, new_id);
	ok(d.calls == 1 && d.err == 0 && *new_id,
	   "error notice: software problem reported");
	ok(logged_notice("ABC", "postmaster software notification", new_id),
	   "error notice: logged");
	if (read_notice(&nt, new_id)) {
		ok(hdr_is(nt.headers, "To", "postmaster@example.net")
		   && hdr_is(nt.headers, "Subject",
			     "sluice SMTP client: errors from mx[192.0.2.1]")
		   && hdr_is(nt.headers, "Content-Type",
			     "text/plain; charset=us-ascii")
		   && strcmp(nt.env.sender, "double-bounce@mx.example.net") == 0,
		   "error notice: to error_notice_recipient, from double-bounce");
		ok(strstr(nt.text, "\n\nTranscript of session follows.\n\n Out: "
			  "EHLO x \n In:  421 bye\nBcc: no\n") != NULL,
		   "error notice: the text as lines");
		notice_free(&nt);
	} else {
		ok(0, "error notice: read back");
	}
	errno = 0;
	ok(bounce_error_notice(c, qdir, "nonsense", NULL, "s", "t", on_done, &d,
			       NULL) == -1 && errno == EINVAL,
	   "error notice: unknown class is EINVAL");
}

static void test_args(void)
{
	const struct config *c = configure("notify_classes = bounce, nonsense, "
					   "DELAY\n");
	struct bounce_rcpt r;
	struct queue_envelope env = { 0 };
	struct done_rec d = { 0 };
	char bad[32];
	int mask;

	memset(&r, 0, sizeof r);
	env.sender = "a@b";
	errno = 0;
	ok(bounce_send(c, qdir, BOUNCE_FAILURE, "X", 0, &env, &r, 1, on_done, &d,
		       NULL) == -1 && errno == EINVAL && d.calls == 0,
	   "bounce_send: a recipient without address is EINVAL, no done()");
	mask = bounce_notify_classes(c, bad, sizeof bad);
	ok(mask == (BOUNCE_CLASS_BOUNCE | BOUNCE_CLASS_2BOUNCE
		    | BOUNCE_CLASS_DELAY) && strcmp(bad, "nonsense") == 0,
	   "notify_classes: bounce implies 2bounce, case-insensitive, "
	   "unknown name reported");
}

/* ---- with the committer: done() from the loop ---- */

static struct event_base *base;

static void test_async(void)
{
	const struct config *c = configure(NULL);
	struct orig_spec s = { "alice@example.org", rcpt4, 1, DSN_RET_FULL,
			       NULL, BODY_7BIT, false, NULL, 100, NULL };
	char new_id[QUEUE_ID_MAX], path[512];
	struct timeval tv = { 10, 0 };
	struct done_rec d;
	struct stat st;
	struct orig o;
	time_t end;

	ok(make_original(&o, &s), "async: original");
	base = event_base_new();
	if (!ok(base && jobpool_start(base, 2) == 0
		&& queue_committer_start() == 0,
		"async: job pool and committer started"))
		return;
	end = time(NULL) + 10;
	is_int(send_notice(c, BOUNCE_FAILURE, &o, failed4, 1, &d, new_id), 0,
	       "async: bounce_send returns 0");
	ok(d.calls == 0, "async: done() not called inside bounce_send()");
	event_base_loopexit(base, &tv);
	while (d.calls == 0 && time(NULL) < end)
		event_base_loop(base, EVLOOP_ONCE);
	ok(d.calls == 1 && d.err == 0 && !d.during_call,
	   "async: done(0) from the loop");
	snprintf(path, sizeof path, "%s/incoming/%s", qdir, new_id);
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700,
	   "async: the notice is committed (0700)");
	memset(&d, 0, sizeof d);
	send_notice(c, BOUNCE_FAILURE, &o, &failed4[2], 1, &d, new_id);
	ok(d.calls == 0, "async: nothing due, done() still not inside the call");
	while (d.calls == 0 && time(NULL) < end)
		event_base_loop(base, EVLOOP_ONCE);
	ok(d.calls == 1 && d.err == 0, "async: ... but from the loop");
	orig_free(&o);
	queue_committer_stop();
	jobpool_stop();
	while (event_base_loop(base, EVLOOP_NONBLOCK) == 0)
		;
}

/* ---- main ---- */

int main(void)
{
	char err[256];

	fixture_tmpdir("sluice-bounce");
	snprintf(qdir, sizeof qdir, "%s/queue", tmp);
	snprintf(logpath, sizeof logpath, "%s/maillog", tmp);
	if (queue_dirs_ensure(qdir, (uid_t) -1, (gid_t) -1, err, sizeof err) < 0) {
		printf("Bail out! %s\n", err);
		return 2;
	}
	log_open("qmgr", LOG_DEST_FILE, logpath);
	test_failure();
	test_size_limit();
	test_ret_hdrs();
	test_notify_never();
	test_success();
	test_delay();
	test_double_bounce();
	test_postmaster_copy();
	test_8bit();
	test_hostile();
	test_segments();
	test_error_notice();
	test_args();
	test_async();
	if (tap_failures == 0)
		remove_tmp();
	else
		diag("left %s for a look", tmp);
	config_free(sc);
	return tap_done();
}
