/*
 * qmgr_deliver.c - an entry to its transport's agent, and the agent's
 * results back into the message.
 *
 * The agents (delivery.h), by the transport's master.cf command:
 *   smtp, lmtp       smtp_deliver(), in this process' event loop
 *   local            local_deliver() (it forks, one child per recipient)
 *   virtual          virtual_deliver() (the same)
 *   pipe             pipe_deliver() (it forks)
 *   discard          every recipient "sent", the next hop as the text
 *   error            every recipient bounced (a transport named "retry"
 *                    defers, as Postfix's retry(8)); the next hop is the
 *                    text and may start with a status: "5.1.1 unknown"
 * The built-in three answer from the loop, never inside the call.
 * Started as root, this process has no root left to give local, virtual
 * and pipe's children: their requests go to the delivery process
 * (delivery_client.h), which runs the same agents as root, with at most
 * DP_RCPT_MAX recipients each; the results come back the same way.
 *
 * Results, per recipient: 2 becomes done (its status byte 'D' is synced
 * before "status=sent" is logged; the fdatasync runs on a pool thread, so
 * many deliveries' syncs overlap and the loop goes on), 5 failed (logged "status=bounced";
 * the bounce goes out at the end of the visit), 4 deferred (logged
 * "status=deferred").  An agent that leaves a recipient without a result
 * defers it.  For SMTP and LMTP, a request whose every recipient was
 * deferred without reaching a server (relay=none) tells the scheduler
 * the site failed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "delivery_client.h"
#include "jobpool.h"
#include "log.h"
#include "qmgr.h"

enum agent { AG_SMTP, AG_LMTP, AG_LOCAL, AG_VIRTUAL, AG_PIPE, AG_DISCARD,
	     AG_ERROR, AG_RETRY };

static enum agent agent_of(const struct transport *t)
{
	static const struct { const char *cmd; enum agent ag; } v[] = {
		{ "smtp", AG_SMTP }, { "lmtp", AG_LMTP }, { "local", AG_LOCAL },
		{ "virtual", AG_VIRTUAL }, { "pipe", AG_PIPE },
		{ "discard", AG_DISCARD }, { "error", AG_ERROR },
	};

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		if (strcmp(t->command, v[i].cmd) == 0)
			return v[i].ag == AG_ERROR && strcmp(t->name, "retry") == 0
			    ? AG_RETRY : v[i].ag;
	return AG_RETRY;		/* master_cf.c admits no other command */
}

/* The program the delivery lines are logged as: "sluice/smtp", or with
 * the transport's syslog_name ("postfix/relay/smtp"). */
static void log_identity(const struct qmgr_entry *e, const char **program,
			 const char **service)
{
	const struct transport *t = e->tdef;

	*program = t && t->cfg ? cfg_str(t->cfg, "syslog_name") : NULL;
	*service = t == NULL ? "qmgr" : strcmp(t->command, "error") == 0
	    ? t->name : t->command;
}

/* ---- the request -------------------------------------------------- */

static void build_request(struct qmgr_entry *e, const struct transport *t)
{
	struct qmgr_msg *m = e->msg;
	struct delivery_request *req = &e->req;

	memset(req, 0, sizeof *req);
	if ((req->rcpt = calloc((size_t)e->n, sizeof *req->rcpt)) == NULL)
		msg_fatal("out of memory");
	for (int i = 0; i < e->n; i++) {
		const struct qmgr_addr *a = &m->addrs[e->addr[i]];
		const char *orig = m->env.rcpt[a->index].addr;

		req->rcpt[i].addr = a->addr;
		req->rcpt[i].orig_addr = strcmp(orig, a->addr) ? orig : NULL;
		req->rcpt[i].queue_index = a->index;
	}
	req->nrcpt = e->n;
	req->queue_id = m->id;
	req->queue_path = m->path;
	req->queue_fd = m->fd;
	req->env = &m->env;
	req->transport = e->transport;
	req->nexthop = e->nexthop;
	req->cfg = t && t->cfg ? t->cfg : m->q->cfg;
	req->agent_args = t ? t->args : NULL;
}

/* ---- results ---------------------------------------------------------- */

static const char *default_dsn(int status)
{
	return status == 2 ? "2.0.0" : status == 5 ? "5.0.0" : "4.0.0";
}

static void log_result(const struct qmgr_entry *e, int i,
		       const struct qmgr_log_times *t)
{
	const struct delivery_rcpt *r = &e->req.rcpt[i];
	const char *program, *service;

	log_identity(e, &program, &service);
	qmgr_log_delivery(e->msg->q, program, service, e->msg->id, r->addr,
			  e->msg->env.rcpt[r->queue_index].addr, e->req.relay,
			  t, r->dsn, r->status == 2 ? "sent" : r->status == 5
			  ? "bounced" : "deferred", r->text);
}

/* Every recipient gets a result in 2, 4, 5 and a dsn. */
static void normalize(struct delivery_request *req)
{
	for (int i = 0; i < req->nrcpt; i++) {
		struct delivery_rcpt *r = &req->rcpt[i];

		if (r->status != 2 && r->status != 4 && r->status != 5)
			delivery_set(r, 4, "4.3.0", "delivery agent gave no result");
		if (r->dsn[0] == 0)
			snprintf(r->dsn, sizeof r->dsn, "%s", default_dsn(r->status));
		if (r->text == NULL)
			delivery_set(r, r->status, r->dsn, "%s",
				     r->status == 2 ? "delivered" : "failed");
	}
}

static void record(struct qmgr_entry *e, int *sent, int *nsent)
{
	struct qmgr_msg *m = e->msg;

	for (int i = 0; i < e->n; i++) {
		const struct delivery_rcpt *r = &e->req.rcpt[i];
		struct qmgr_addr *a = &m->addrs[e->addr[i]];

		if (r->status == 2) {
			qmgr_addr_result(a, QA_DONE, r->dsn, r->text);
			free(a->relay);
			a->relay = strdup(e->req.relay[0] ? e->req.relay : "none");
			a->relayed = r->relayed;
			a->success = (m->env.rcpt[a->index].notify & DSN_NOTIFY_SUCCESS)
			    != 0 && !r->notify_passed;
			sent[(*nsent)++] = e->addr[i];
		} else {
			qmgr_addr_result(a, r->status == 5 ? QA_FAILED
					 : QA_DEFERRED, r->dsn, r->text);
		}
	}
}

static void log_results(const struct qmgr_entry *e,
			const struct qmgr_log_times *t)
{
	for (int i = 0; i < e->n; i++)
		log_result(e, i, t);
}

/* Record the results; true when status bytes became 'D' and must reach
 * the disk before the log says "sent". */
static bool take_results(struct qmgr_entry *e)
{
	int *sent = calloc((size_t)e->n, sizeof *sent), nsent = 0;
	bool changed;

	if (sent == NULL)
		msg_fatal("out of memory");
	normalize(&e->req);
	record(e, sent, &nsent);
	changed = nsent > 0 && qmgr_msg_mark_done(e->msg, sent, nsent);
	free(sent);
	return changed;
}

/* ---- the status bytes to disk, off the loop --------------------------- */

/* fdatasync() waits for the disk: on a pool thread, many at once, while
 * the loop goes on.  The entry (so its message and file) lives until the
 * lines are logged. */
struct sync_job {
	struct qmgr_entry *e;
	struct qmgr_log_times t;
	int err;
};

static void sync_work(void *arg)
{
	struct sync_job *job = arg;

	job->err = fdatasync(job->e->msg->fd) < 0 ? errno : 0;
}

static void sync_done(void *arg)
{
	struct sync_job *job = arg;

	if (job->err != 0)
		msg_warn("%s: cannot sync the queue file (recipients may be "
			 "delivered again): %s", job->e->msg->id,
			 strerror(job->err));
	log_results(job->e, &job->t);
	qmgr_entry_free(job->e);
	free(job);
}

static void sync_then_log(struct qmgr_entry *e, const struct qmgr_log_times *t)
{
	struct sync_job *job = calloc(1, sizeof *job);

	if (job == NULL)
		msg_fatal("out of memory");
	job->e = e;
	job->t = *t;
	if (jobpool_submit(sync_work, sync_done, job) < 0) {
		sync_work(job);
		sync_done(job);
	}
}

static void fill_times(const struct qmgr_entry *e, struct qmgr_log_times *t)
{
	const struct qmgr_msg *m = e->msg;

	memset(t, 0, sizeof *t);
	t->arrival.tv_sec = (time_t)m->env.arrival_sec;
	t->arrival.tv_usec = m->env.arrival_usec;
	t->active = m->t_active;
	t->start = e->t_start;
	t->conn = e->req.t_conn;
	if (timerisset(&e->req.t_done))
		t->done = e->req.t_done;
	else
		gettimeofday(&t->done, NULL);
}

/* The site as a whole: reached, or not reached at all (SMTP and LMTP:
 * no server talked to, relay=none, and every recipient deferred). */
static void site_verdict(const struct qmgr_entry *e, bool *ok, bool *failed)
{
	const struct delivery_request *req = &e->req;
	bool all_soft = true, any_final = false;
	bool reached = req->relay[0] != 0 && strcmp(req->relay, "none") != 0;

	for (int i = 0; i < req->nrcpt; i++) {
		all_soft &= req->rcpt[i].status == 4;
		any_final |= req->rcpt[i].status != 4;
	}
	*failed = (e->agent == AG_SMTP || e->agent == AG_LMTP) && all_soft &&
	    !reached;
	*ok = !*failed && (any_final || reached);
}

static void on_agent_done(struct delivery_request *req, void *arg)
{
	struct qmgr_entry *e = arg;
	struct qmgr_log_times t;
	bool ok, failed, sync;

	fill_times(e, &t);
	sync = take_results(e);
	site_verdict(e, &ok, &failed);
	qmgr_sched_done(e, ok, failed, req->rcpt[0].dsn, req->rcpt[0].text);
	if (sync) {
		sync_then_log(e, &t);
		return;
	}
	log_results(e, &t);
	qmgr_entry_free(e);
}

/* ---- the built-in agents ------------------------------------------- */

/* "5.1.1 text" -> status class, dsn and text; else the defaults. */
static void error_text(const char *hop, int dflt, char *dsn, size_t len,
		       const char **text)
{
	size_t n = strspn(hop, "0123456789.");

	if (n >= 5 && n < len && (hop[0] == '4' || hop[0] == '5') &&
	    hop[1] == '.' && (hop[n] == ' ' || hop[n] == 0)) {
		memcpy(dsn, hop, n);
		dsn[n] = 0;
		hop += n;
		hop += strspn(hop, " ");
	} else {
		snprintf(dsn, len, "%d.0.0", dflt);
	}
	*text = *hop ? hop : "Address is undeliverable";
}

static void builtin_answer(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr_entry *e = arg;
	const char *text;
	char dsn[16];

	snprintf(e->req.relay, sizeof e->req.relay, "none");
	if (e->agent == AG_DISCARD) {
		delivery_set_rest(&e->req, 2, "2.0.0", "%s",
				  *e->nexthop ? e->nexthop : "discarded");
	} else {
		error_text(e->nexthop, e->agent == AG_RETRY ? 4 : 5, dsn,
			   sizeof dsn, &text);
		if (e->agent == AG_RETRY)
			dsn[0] = '4';	/* retry never bounces */
		delivery_set_rest(&e->req, dsn[0] - '0', dsn, "%s", text);
	}
	gettimeofday(&e->req.t_done, NULL);
	on_agent_done(&e->req, e);
}

static void builtin_deliver(struct qmgr_entry *e)
{
	struct timeval now = { 0, 0 };

	if (event_base_once(e->msg->q->base, -1, EV_TIMEOUT, builtin_answer, e,
			    &now) < 0)
		msg_fatal("cannot schedule a delivery");
}

/* ---- starting a delivery ------------------------------------------ */

static bool needs_root(enum agent ag)
{
	return ag == AG_LOCAL || ag == AG_VIRTUAL || ag == AG_PIPE;
}

int qmgr_deliver_rcpt_max(const struct qmgr *q, const struct transport *t)
{
	return q->dclient != NULL && t != NULL && needs_root(agent_of(t))
	    ? delivery_client_rcpt_max() : 0;
}

void qmgr_deliver(struct qmgr_entry *e, const struct transport *t)
{
	struct qmgr *q = e->msg->q;

	e->tdef = t;
	e->agent = agent_of(t);
	build_request(e, t);
	gettimeofday(&e->t_start, NULL);
	if (q->dclient != NULL && needs_root(e->agent)) {
		delivery_client_deliver(q->dclient, &e->req, on_agent_done, e);
		return;
	}
	switch (e->agent) {
	case AG_SMTP:
	case AG_LMTP:
		smtp_deliver(q->base, &e->req, e->agent == AG_LMTP,
			     on_agent_done, e);
		break;
	case AG_LOCAL:
		local_deliver(q->base, &e->req, on_agent_done, e);
		break;
	case AG_VIRTUAL:
		virtual_deliver(q->base, &e->req, on_agent_done, e);
		break;
	case AG_PIPE:
		pipe_deliver(q->base, &e->req, on_agent_done, e);
		break;
	default:
		builtin_deliver(e);
		break;
	}
}

void qmgr_deliver_skip(struct qmgr_entry *e, int status, const char *dsn,
		       const char *fmt, ...)
{
	struct qmgr_log_times t;
	char text[1000];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	e->tdef = NULL;
	build_request(e, NULL);
	snprintf(e->req.relay, sizeof e->req.relay, "none");
	delivery_set_rest(&e->req, status, dsn, "%s", text);
	gettimeofday(&e->t_start, NULL);
	fill_times(e, &t);
	if (take_results(e))
		qmgr_msg_sync(e->msg);
	log_results(e, &t);
	qmgr_entry_free(e);
}
