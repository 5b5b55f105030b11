/*
 * pickup_milter.c - non_smtpd_milters: mail submitted with `sendmail`
 * goes through the milters too, as Postfix's cleanup sends it, before
 * pickup commits it to the queue.
 *
 * The milters see a session made for the message: connect from
 * "localhost" [127.0.0.1], HELO "localhost", MAIL, one RCPT per
 * recipient, DATA, then the headers and body as pickup wrote them and
 * the end of message; their modifications (milter_edit.c) change the
 * envelope and the queue file before the commit.  The session has no
 * listener, which is how milter.c knows to use non_smtpd_milters.
 *
 * A reject bounces the message to its sender, as Postfix's cleanup
 * does for pickup (the sendmail command's submission was accepted): the
 * message is committed to hold/ (out of the queue manager's way), an RFC
 * 3464 non-delivery notice is queued from it (bounce_send()), and the
 * held copy is removed once the notice is on stable storage.  The log
 * says, as Postfix's: "ID: milter-reject: END-OF-MESSAGE from ...",
 * "ID: to=<rcpt>, relay=none, delay=..., dsn=5.7.1, status=bounced
 * (text)" per recipient, "ID: sender non-delivery notification: NEWID",
 * "ID: removed".
 *
 * Promises: runs in the queue manager's event loop without blocking it;
 * `done` is called exactly once, with the queue file and envelope back
 * (changed by the milters) and the verdict: SLUICE_DUNNO (commit),
 * SLUICE_REJECT (bounced, or dropped when nobody is to be told; the
 * queue file is then NULL: already consumed), SLUICE_DEFER (try the
 * maildrop file again later: also when the bounce could not be queued),
 * SLUICE_DISCARD (drop, logged).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "bounce.h"
#include "config.h"
#include "filter_chain.h"
#include "log.h"
#include "milter.h"
#include "pickup_internal.h"
#include "plugins/sluice_plugin.h"
#include "queue.h"
#include "smtp_proto.h"
#include "smtp_session.h"

struct pickup_milter {
	struct smtp_session s;      /* first: a session pointer is ours */
	int rcpt;                   /* next recipient for RCPT */
	pickup_milter_fn done;
	void *ctx;
};

/* The header block of the queue file into s->txn.hdr, as smtp_data.c
 * keeps it ("Name" and ":" value with folds as "\n"). */
static int load_headers(struct smtp_session *s)
{
	long long end = queue_body_offset(s->txn.qf);
	char *buf, *p, *line, *save = NULL;

	if (end < 0)
		end = queue_content_size(s->txn.qf);
	if ((buf = malloc((size_t)end + 1)) == NULL)
		msg_fatal("pickup: out of memory");
	if (queue_pread(s->txn.qf, buf, (size_t)end, 0) != end) {
		free(buf);
		return -1;
	}
	buf[end] = 0;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct smtp_txn *t = &s->txn;

		if ((line[0] == ' ' || line[0] == '\t') && t->nhdr > 0) {
			char *v = t->hdr[t->nhdr - 1].value, *nv;

			if (asprintf(&nv, "%s\n%s", v, line) < 0)
				msg_fatal("pickup: out of memory");
			free(v);
			t->hdr[t->nhdr - 1].value = nv;
			continue;
		}
		if ((p = strchr(line, ':')) == NULL)
			continue;
		if (t->nhdr == t->hdr_alloc) {
			t->hdr_alloc = t->hdr_alloc ? 2 * t->hdr_alloc : 16;
			if ((t->hdr = realloc(t->hdr, t->hdr_alloc * sizeof *t->hdr)) == NULL)
				msg_fatal("pickup: out of memory");
		}
		t->hdr[t->nhdr].name = strndup(line, (size_t)(p - line));
		t->hdr[t->nhdr].value = strdup(p + 1);
		if (!t->hdr[t->nhdr].name || !t->hdr[t->nhdr].value)
			msg_fatal("pickup: out of memory");
		t->nhdr++;
	}
	free(buf);
	return 0;
}

static int rewrite_content(struct smtp_session *s)
{
	struct evbuffer *b;
	size_t n;
	int rc;

	if (!s->txn.hdr_modified && !milter_body_replaced(filter_milters(s)))
		return 0;
	if ((b = evbuffer_new()) == NULL)
		msg_fatal("pickup: out of memory");
	for (int i = 0; i < s->txn.nhdr; i++)
		evbuffer_add_printf(b, "%s:%s\n", s->txn.hdr[i].name,
				    s->txn.hdr[i].value);
	n = evbuffer_get_length(b);
	rc = milter_replace_content(filter_milters(s), s->txn.qf,
				    (const char *)evbuffer_pullup(b, (ssize_t)n), n);
	evbuffer_free(b);
	return rc;
}

/* ---- a reject bounces ------------------------------------------------ */

struct reject_bounce {
	const struct config *cfg;
	char *queue_dir;
	char id[QUEUE_ID_MAX];
	char dsn[16];
	char *text;                 /* the milter's reply text */
	struct queue_envelope env;  /* handed back to `fn` */
	pickup_milter_fn fn;
	void *ctx;
	int fd;
	char *path;                 /* the held copy */
};

static void reject_bounce_end(struct reject_bounce *rb, int verdict)
{
	pickup_milter_fn fn = rb->fn;
	void *ctx = rb->ctx;
	struct queue_envelope env = rb->env;

	if (rb->fd >= 0)
		close(rb->fd);
	if (rb->path && unlink(rb->path) < 0 && errno != ENOENT)
		msg_warn("%s: cannot remove %s: %s", rb->id, rb->path,
			 strerror(errno));
	else if (rb->path && verdict == SLUICE_REJECT)
		msg_info("%s: removed", rb->id);
	free(rb->path);
	free(rb->queue_dir);
	free(rb->text);
	free(rb);
	fn(ctx, NULL, &env, verdict);
}

static void reject_bounced(void *arg, int err)
{
	struct reject_bounce *rb = arg;

	if (err) {
		msg_warn("%s: cannot queue the non-delivery notice: %s; the "
			 "message stays in maildrop/ for another try", rb->id,
			 strerror(err));
		reject_bounce_end(rb, SLUICE_DEFER);
		return;
	}
	reject_bounce_end(rb, SLUICE_REJECT);
}

/* Postfix's delivery log line for each recipient. */
static void log_bounced(const struct reject_bounce *rb,
			const struct queue_envelope *env)
{
	struct timeval now;
	double delay = 0;

	gettimeofday(&now, NULL);
	if (env->arrival_sec > 0)
		delay = (double)(now.tv_sec - env->arrival_sec)
			+ (now.tv_usec - env->arrival_usec) / 1e6;
	if (delay < 0)
		delay = 0;
	for (int i = 0; i < env->nrcpt; i++)
		msg_info("%s: to=<%s>, relay=none, delay=%.2g, delays=%.2g/0/0/0, "
			 "dsn=%s, status=bounced (%s)", rb->id, env->rcpt[i].addr,
			 delay, delay, rb->dsn, rb->text);
}

/* The held copy is on disk: the notice is made from it. */
static void reject_held(void *arg, int err)
{
	struct reject_bounce *rb = arg;
	struct queue_envelope env;
	struct bounce_rcpt *r;
	char why[200];

	if (err) {
		msg_warn("%s: cannot keep the rejected message for its bounce: %s; "
			 "it stays in maildrop/ for another try", rb->id,
			 strerror(err));
		reject_bounce_end(rb, SLUICE_DEFER);
		return;
	}
	if (asprintf(&rb->path, "%s/%s/%s", rb->queue_dir, QUEUE_HOLD, rb->id) < 0)
		msg_fatal("pickup: out of memory");
	memset(&env, 0, sizeof env);
	if ((rb->fd = open(rb->path, O_RDONLY | O_CLOEXEC)) < 0
	    || queue_read_envelope_fd(rb->fd, &env, why, sizeof why) < 0) {
		msg_warn("%s: cannot read %s back: %s", rb->id, rb->path,
			 rb->fd < 0 ? strerror(errno) : why);
		queue_envelope_free(&env);
		reject_bounce_end(rb, SLUICE_DEFER);
		return;
	}
	if ((r = calloc((size_t)env.nrcpt + 1, sizeof *r)) == NULL)
		msg_fatal("pickup: out of memory");
	for (int i = 0; i < env.nrcpt; i++) {
		r[i].addr = env.rcpt[i].addr;
		r[i].orcpt = env.rcpt[i].orcpt;
		r[i].notify = env.rcpt[i].notify;
		r[i].action = BOUNCE_ACTION_FAILED;
		r[i].dsn = rb->dsn;
		r[i].reason = rb->text;
	}
	log_bounced(rb, &env);
	if (bounce_send(rb->cfg, rb->queue_dir, BOUNCE_FAILURE, rb->id, rb->fd,
			&env, r, env.nrcpt, reject_bounced, rb, NULL) < 0) {
		int e = errno;

		free(r);
		queue_envelope_free(&env);
		reject_bounced(rb, e ? e : EIO);
		return;
	}
	free(r);
	queue_envelope_free(&env);
}

/* Commit the rejected message to hold/, then bounce it. */
static void reject_bounce_start(struct smtp_session *s, struct queue_file *qf,
				struct queue_envelope *env, const char *dsn,
				const char *text, pickup_milter_fn fn, void *ctx)
{
	struct reject_bounce *rb = calloc(1, sizeof *rb);
	struct queue_envelope held;

	if (rb == NULL)
		msg_fatal("pickup: out of memory");
	rb->cfg = s->cfg;
	rb->fd = -1;
	rb->fn = fn;
	rb->ctx = ctx;
	rb->env = *env;
	snprintf(rb->id, sizeof rb->id, "%s", s->queue_id);
	snprintf(rb->dsn, sizeof rb->dsn, "%s", dsn);
	if ((rb->text = strdup(text)) == NULL
	    || (rb->queue_dir = strdup(smtp_queue_dir(s))) == NULL)
		msg_fatal("pickup: out of memory");
	held = *env;
	held.hold = true;
	held.hold_reason = (char *)"rejected by a milter; bouncing";
	queue_commit(qf, &held, reject_held, rb);
}

/* The end: hand the file and envelope back, free the session. */
static void finish(struct smtp_session *s, int verdict)
{
	struct pickup_milter *pm = (struct pickup_milter *)s;
	struct queue_envelope env;
	struct queue_file *qf;
	char rej_dsn[16] = "", *rej_text = NULL;

	if (verdict == SLUICE_REJECT || verdict == SLUICE_DEFER) {
		int code = s->reply_code ? s->reply_code
			: verdict == SLUICE_REJECT ? 550 : 451;

		snprintf(rej_dsn, sizeof rej_dsn, "%s", s->reply_dsn[0]
			 ? s->reply_dsn : code >= 500 ? "5.7.1" : "4.7.1");
		if ((rej_text = strdup(s->reply_text ? s->reply_text
				       : "Command rejected")) == NULL)
			msg_fatal("pickup: out of memory");
		smtp_log_reject(s, "reject", "END-OF-MESSAGE", code, rej_dsn,
				rej_text);
	} else if (verdict == SLUICE_DUNNO && rewrite_content(s) < 0) {
		msg_warn("%s: cannot write the milters' changes: %s", s->queue_id,
			 strerror(errno));
		verdict = SLUICE_DEFER;
	}
	if (s->txn.discard && verdict == SLUICE_DUNNO)
		verdict = SLUICE_DISCARD;
	filter_close(s);            /* the milters' QUIT */
	env = s->txn.env;
	if (s->txn.hold) {
		env.hold = true;
		free(env.hold_reason);
		env.hold_reason = s->txn.hold_reason;
		s->txn.hold_reason = NULL;
	}
	qf = s->txn.qf;
	for (int i = 0; i < s->txn.nhdr; i++) {
		free(s->txn.hdr[i].name);
		free(s->txn.hdr[i].value);
	}
	free(s->txn.hdr);
	free(s->txn.hold_reason);
	free(s->helo_name);
	{
		pickup_milter_fn fn = pm->done;
		void *ctx = pm->ctx;

		if (verdict == SLUICE_REJECT && env.nrcpt > 0) {
			reject_bounce_start(s, qf, &env, rej_dsn, rej_text, fn, ctx);
			free(rej_text);
			free(pm);
			return;
		}
		free(rej_text);
		free(pm);
		fn(ctx, qf, &env, verdict);
	}
}

/* The stages in order; each `done` starts the next. */
static void next_stage(struct smtp_session *s, int verdict);

static void stage_done(struct smtp_session *s, int verdict)
{
	/* called from the chain; the chain is finished with s here */
	next_stage(s, verdict);
}

/* Which stage comes after: kept in pm->rcpt as a small state machine:
 * -4 connect, -3 helo, -2 mail, 0..n-1 rcpt, n data, n+1 eom, n+2 end. */
static void next_stage(struct smtp_session *s, int verdict)
{
	struct pickup_milter *pm = (struct pickup_milter *)s;
	int n = s->txn.env.nrcpt;

	if (verdict == SLUICE_REJECT || verdict == SLUICE_DEFER
	    || verdict == SLUICE_DISCARD) {
		finish(s, verdict);
		return;
	}
	pm->rcpt++;
	if (pm->rcpt == -3) {
		filter_run_milters(s, FS_HELO, stage_done);
	} else if (pm->rcpt == -2) {
		s->txn.active = true;
		filter_run_milters(s, FS_MAIL, stage_done);
	} else if (pm->rcpt == -1) {
		pm->rcpt = 0;
		s->txn.cur_rcpt = n > 0 ? s->txn.env.rcpt[0].addr : NULL;
		filter_run_milters(s, n > 0 ? FS_RCPT : FS_DATA, stage_done);
		if (n == 0)
			pm->rcpt = n;
	} else if (pm->rcpt < n) {
		s->txn.cur_rcpt = s->txn.env.rcpt[pm->rcpt].addr;
		filter_run_milters(s, FS_RCPT, stage_done);
	} else if (pm->rcpt == n) {
		s->txn.cur_rcpt = NULL;
		filter_run_milters(s, FS_DATA, stage_done);
	} else if (pm->rcpt == n + 1) {
		filter_run_milters(s, FS_EOM, stage_done);
	} else {
		finish(s, verdict);
	}
}

int pickup_milter_run(const struct config *c, struct queue_file *qf,
		      struct queue_envelope *env, pickup_milter_fn done,
		      void *ctx)
{
	struct smtp_session *s;
	struct pickup_milter *pm;

	if (!*cfg_str(c, "non_smtpd_milters") || filter_event_base() == NULL)
		return -1;
	if ((pm = calloc(1, sizeof *pm)) == NULL)
		msg_fatal("pickup: out of memory");
	s = &pm->s;
	s->base = filter_event_base();
	s->cfg = c;
	s->state = SS_FILTER;
	snprintf(s->client_addr, sizeof s->client_addr, "127.0.0.1");
	snprintf(s->client_name, sizeof s->client_name, "localhost");
	snprintf(s->reverse_name, sizeof s->reverse_name, "localhost");
	snprintf(s->client_id, sizeof s->client_id, "localhost[127.0.0.1]");
	snprintf(s->server_addr, sizeof s->server_addr, "127.0.0.1");
	if ((s->helo_name = strdup("localhost")) == NULL)
		msg_fatal("pickup: out of memory");
	s->cur_plugin = -1;
	s->txn.env = *env;          /* moved: the caller's copy is cleared */
	s->txn.rcpt_alloc = env->nrcpt;
	memset(env, 0, sizeof *env);
	s->txn.qf = qf;
	snprintf(s->queue_id, sizeof s->queue_id, "%s", queue_file_id(qf));
	if (load_headers(s) < 0)
		msg_warn("%s: cannot read the headers back for the milters: %s",
			 s->queue_id, strerror(errno));
	pm->rcpt = -4;
	pm->done = done;
	pm->ctx = ctx;
	filter_run_milters(s, FS_CONNECT, stage_done);
	return 0;
}
