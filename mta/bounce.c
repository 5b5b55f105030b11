/*
 * bounce.c - which notices are due about a message, and committing them:
 * the decisions of Postfix's bounce(8) services (bounce_notify_service,
 * bounce_warn_service, bounce_trace_service) for the queue manager.
 *
 *	sender is double_bounce_sender@$myhostname
 *		a postmaster notice failed: discard it, log a warning (no
 *		triple bounce, no loop);
 *	sender is <>
 *		a notice failed (was delayed): the whole message to
 *		2bounce_notice_recipient (delay_notice_recipient) when
 *		notify_classes lists 2bounce or bounce (delay), else nothing;
 *	any other sender
 *		the notice to the sender, for the recipients whose NOTIFY
 *		asks for it; then, when notify_classes lists bounce (delay),
 *		a headers-only copy for every recipient to
 *		bounce_notice_recipient (delay_notice_recipient).
 *
 * The notices of one call are written at once (bounce_notice.c) and
 * committed one after the other: a postmaster copy is committed only
 * after the sender's notice is durable, so a retry after a failure never
 * duplicates it.  The caller hears once, after the last commit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bounce_internal.h"
#include "config.h"
#include "jobpool.h"
#include "log.h"

#define MAX_NOTICES     2       /* the notice, and a postmaster copy */

/* One bounce_send() or bounce_error_notice() until its done() runs. */
struct bounce_job {
	char queue_id[QUEUE_ID_MAX];
	struct bounce_notice n[MAX_NOTICES];
	int count;              /* notices written */
	int cur;                /* the one being committed */
	int err;                /* why the critical one failed, or 0 */
	queue_done_fn done;
	void *arg;
};

static const struct {
	const char *name;
	int mask;
} class_names[] = {
	{ "bounce", BOUNCE_CLASS_BOUNCE | BOUNCE_CLASS_2BOUNCE },
	{ "2bounce", BOUNCE_CLASS_2BOUNCE },
	{ "data", BOUNCE_CLASS_DATA },
	{ "delay", BOUNCE_CLASS_DELAY },
	{ "policy", BOUNCE_CLASS_POLICY },
	{ "protocol", BOUNCE_CLASS_PROTOCOL },
	{ "resource", BOUNCE_CLASS_RESOURCE },
	{ "software", BOUNCE_CLASS_SOFTWARE },
};

/* ==== configuration ==== */

static int class_mask(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof class_names / sizeof class_names[0]; i++)
		if (strcasecmp(name, class_names[i].name) == 0)
			return class_names[i].mask;
	return 0;
}

int bounce_notify_classes(const struct config *c, char *bad, size_t badlen)
{
	char **list = cfg_list(c, "notify_classes");
	int i, m, mask = 0;

	if (bad != NULL && badlen > 0)
		*bad = 0;
	for (i = 0; list[i] != NULL; i++) {
		if ((m = class_mask(list[i])) != 0)
			mask |= m;
		else if (bad != NULL && badlen > 0 && *bad == 0)
			snprintf(bad, badlen, "%s", list[i]);
	}
	cfg_list_free(list);
	return mask;
}

/* notify_classes, with a warning about a name we do not know. */
static int notify_classes(const struct config *c)
{
	char bad[64];
	int mask = bounce_notify_classes(c, bad, sizeof bad);

	if (*bad)
		msg_warn("notify_classes: unknown class \"%s\" ignored "
			 "(known: bounce, 2bounce, data, delay, policy, "
			 "protocol, resource, software)", bad);
	return mask;
}

static char *double_bounce_addr(const struct config *c)
{
	return bounce_qualify(cfg_str(c, "double_bounce_sender"),
			      cfg_str(c, "myhostname"));
}

bool bounce_is_double_bounce(const struct config *c, const char *addr)
{
	char *dbl = double_bounce_addr(c);
	bool same = addr != NULL && strcasecmp(addr, dbl) == 0;

	free(dbl);
	return same;
}

/* ==== the plan ==== */

static struct bounce_notice *add_notice(struct bounce_job *job,
					enum bounce_kind kind, int ret,
					const char *to, const char *origin)
{
	struct bounce_notice *bn = &job->n[job->count++];

	memset(bn, 0, sizeof *bn);
	bn->kind = kind;
	bn->ret = ret;
	bn->to = bounce_qualify(to, origin);
	bn->sender = bounce_strdup("");
	return bn;
}

/* A notice to a postmaster address, from double-bounce: never bounced. */
static struct bounce_notice *add_postmaster(struct bounce_job *job,
					    const struct config *c,
					    enum bounce_kind kind, int ret,
					    const char *rcpt_param)
{
	struct bounce_notice *bn = add_notice(job, kind, ret,
					      cfg_str(c, rcpt_param),
					      cfg_str(c, "myorigin"));

	free(bn->sender);
	bn->sender = double_bounce_addr(c);
	bn->postmaster = true;
	snprintf(bn->what, sizeof bn->what, "postmaster %s notification",
		 kind == BOUNCE_DELAY ? "delay" : "non-delivery");
	return bn;
}

/* The message itself is a notice (null sender): postmaster or nothing. */
static void plan_null_sender(struct bounce_job *job,
			     const struct bounce_source *src,
			     enum bounce_kind kind, int classes)
{
	struct bounce_notice *bn = NULL;

	if (kind == BOUNCE_FAILURE
	    && (classes & (BOUNCE_CLASS_2BOUNCE | BOUNCE_CLASS_BOUNCE)))
		bn = add_postmaster(job, src->cfg, kind, DSN_RET_FULL,
				    "2bounce_notice_recipient");
	else if (kind == BOUNCE_DELAY && (classes & BOUNCE_CLASS_DELAY))
		bn = add_postmaster(job, src->cfg, kind, DSN_RET_FULL,
				    "delay_notice_recipient");
	else if (kind == BOUNCE_FAILURE)
		msg_info("%s: undeliverable bounce discarded "
			 "(notify_classes lists neither 2bounce nor bounce)",
			 src->queue_id);
	if (bn != NULL)
		bn->critical = true;
}

static void plan_sender(struct bounce_job *job,
			const struct bounce_source *src,
			enum bounce_kind kind, int classes)
{
	static const int filters[] = {
		DSN_NOTIFY_FAILURE, DSN_NOTIFY_DELAY, DSN_NOTIFY_SUCCESS
	};
	static const char *const what[] = {
		"sender non-delivery notification",
		"sender delay notification",
		"sender delivery status notification",
	};
	int ret = kind == BOUNCE_FAILURE && src->env->ret != DSN_RET_HDRS ?
		DSN_RET_FULL : DSN_RET_HDRS;
	struct bounce_notice *bn;

	if (bounce_rcpt_count(src, filters[kind]) > 0) {
		bn = add_notice(job, kind, ret, src->env->sender,
				cfg_str(src->cfg, "myorigin"));
		bn->filter = filters[kind];
		bn->critical = true;
		snprintf(bn->what, sizeof bn->what, "%s", what[kind]);
	}
	if (kind == BOUNCE_FAILURE && (classes & BOUNCE_CLASS_BOUNCE))
		add_postmaster(job, src->cfg, kind, DSN_RET_HDRS,
			       "bounce_notice_recipient");
	else if (kind == BOUNCE_DELAY && (classes & BOUNCE_CLASS_DELAY))
		add_postmaster(job, src->cfg, kind, DSN_RET_HDRS,
			       "delay_notice_recipient");
}

static void plan_notices(struct bounce_job *job,
			 const struct bounce_source *src,
			 enum bounce_kind kind)
{
	const char *sender = src->env->sender;

	if (bounce_is_double_bounce(src->cfg, sender)) {
		if (kind != BOUNCE_SUCCESS)
			msg_warn("%s: undeliverable postmaster notification "
				 "discarded", src->queue_id);
	} else if (*sender == 0) {
		if (kind != BOUNCE_SUCCESS)
			plan_null_sender(job, src, kind,
					 notify_classes(src->cfg));
	} else {
		plan_sender(job, src, kind, kind == BOUNCE_SUCCESS ? 0
			    : notify_classes(src->cfg));
	}
}

/* ==== committing, in order ==== */

static void job_free(struct bounce_job *job)
{
	int i;

	for (i = 0; i < job->count; i++)
		bounce_notice_free(&job->n[i]);  /* removes what is uncommitted */
	free(job);
}

static void finish(void *arg)
{
	struct bounce_job *job = arg;

	if (job->done != NULL)
		job->done(job->arg, job->err);
	job_free(job);
}

static void commit_next(struct bounce_job *job);

static void on_commit(void *arg, int err)
{
	struct bounce_job *job = arg;
	struct bounce_notice *bn = &job->n[job->cur++];

	if (err == 0)
		msg_info("%s: %s: %s", job->queue_id, bn->what, bn->id);
	else
		msg_warn("%s: %s not queued: %s", job->queue_id, bn->what,
			 strerror(err));
	if (err != 0 && bn->critical)
		job->err = err;
	commit_next(job);
}

static void commit_next(struct bounce_job *job)
{
	struct bounce_notice *bn;
	struct queue_file *qf;

	while (job->cur < job->count && job->n[job->cur].qf == NULL)
		job->cur++;     /* not written */
	if (job->cur >= job->count || job->err != 0) {
		finish(job);
		return;
	}
	bn = &job->n[job->cur];
	qf = bn->qf;
	bn->qf = NULL;          /* queue_commit() consumes it */
	queue_commit(qf, &bn->env, on_commit, job);
}

/* done() through the loop when a pool runs (as queue_commit), else now. */
static void finish_nothing_due(struct bounce_job *job)
{
	if (jobpool_post(finish, job) < 0)
		finish(job);
}

/* Write the planned notices; a postmaster copy that cannot be written
 * is only a warning (its slot keeps no file and is skipped).  0, or -1
 * with errno when the critical one failed. */
static int write_notices(struct bounce_job *job,
			 const struct bounce_source *src, const char *queue_dir)
{
	int i;

	for (i = 0; i < job->count; i++) {
		struct bounce_notice *bn = &job->n[i];

		if (bounce_notice_write(src, bn, queue_dir) == 0)
			continue;
		if (bn->critical)
			return -1;
		msg_warn("%s: %s not written: %m", job->queue_id, bn->what);
	}
	return 0;
}

static struct bounce_job *job_new(const char *queue_id, queue_done_fn done,
				  void *arg)
{
	struct bounce_job *job = calloc(1, sizeof *job);

	if (job == NULL)
		msg_fatal("out of memory");
	snprintf(job->queue_id, sizeof job->queue_id, "%s", queue_id);
	job->done = done;
	job->arg = arg;
	return job;
}

static bool any_written(const struct bounce_job *job)
{
	int i;

	for (i = 0; i < job->count; i++)
		if (job->n[i].qf != NULL)
			return true;
	return false;
}

/* Hand the written notices to the commit chain; new_id_out as promised. */
static int job_start(struct bounce_job *job, char *new_id_out)
{
	if (new_id_out != NULL)
		snprintf(new_id_out, QUEUE_ID_MAX, "%s", job->count > 0
			 && job->n[0].critical ? job->n[0].id : "");
	if (!any_written(job))
		finish_nothing_due(job);
	else
		commit_next(job);
	return 0;
}

static bool args_ok(const struct queue_envelope *env, enum bounce_kind kind,
		    const struct bounce_rcpt *r, int n)
{
	int i;

	if (env == NULL || env->sender == NULL || n < 0 || (n > 0 && !r)
	    || kind < BOUNCE_FAILURE || kind > BOUNCE_SUCCESS)
		return false;
	for (i = 0; i < n; i++)
		if (r[i].addr == NULL || *r[i].addr == 0)
			return false;
	return true;
}

int bounce_send(const struct config *c, const char *queue_dir,
		enum bounce_kind kind, const char *queue_id, int fd,
		const struct queue_envelope *env,
		const struct bounce_rcpt *r, int n,
		queue_done_fn done, void *arg, char *new_id_out)
{
	struct bounce_source src = { c, queue_id, fd, env, r, n, time(NULL) };
	struct bounce_job *job;
	int err;

	if (c == NULL || queue_dir == NULL || queue_id == NULL
	    || !args_ok(env, kind, r, n)) {
		errno = EINVAL;
		return -1;
	}
	job = job_new(queue_id, done, arg);
	if (n > 0)
		plan_notices(job, &src, kind);
	if (write_notices(job, &src, queue_dir) < 0) {
		err = errno;
		msg_warn("%s: %s not written: %s", queue_id,
			 job->n[0].what, strerror(err));
		job_free(job);
		errno = err;
		return -1;
	}
	return job_start(job, new_id_out);
}

int bounce_error_notice(const struct config *c, const char *queue_dir,
			const char *class_name, const char *queue_id,
			const char *subject, const char *text,
			queue_done_fn done, void *arg, char *new_id_out)
{
	int mask = class_name ? class_mask(class_name) : 0;
	struct bounce_notice *bn;
	struct bounce_job *job;
	int err;

	if (c == NULL || queue_dir == NULL || mask == 0 || subject == NULL
	    || text == NULL) {
		errno = EINVAL;
		return -1;
	}
	job = job_new(queue_id ? queue_id : "NOQUEUE", done, arg);
	if (notify_classes(c) & mask) {
		bn = add_postmaster(job, c, BOUNCE_FAILURE, DSN_RET_HDRS,
				    "error_notice_recipient");
		bn->critical = true;
		snprintf(bn->what, sizeof bn->what, "postmaster %s notification",
			 class_name);
		if (bounce_notice_write_text(c, bn, queue_dir, subject, text) < 0) {
			err = errno;
			job_free(job);
			errno = err;
			return -1;
		}
	}
	return job_start(job, new_id_out);
}
