/*
 * local_forward.c - mail that local(8) sends on to other addresses (an
 * alias or a .forward naming a remote address, or a local one a .forward
 * gives back to the mail system): a new message in the queue, as
 * Postfix's local(8) hands a copy to cleanup and logs "forwarded as ID".
 *
 * The copy is the message as queued with "Delivered-To: recipient" in
 * front (prepend_delivered_header "forward"), so a forwarding loop comes
 * back with the header and bounces; its envelope keeps the sender, the
 * DSN envelope ID and RET, the body type and SMTPUTF8, and gives each new
 * recipient the original recipient's NOTIFY and ORCPT (or
 * "rfc822;original-recipient").  It goes to incoming/ like any new
 * message, and the queue manager is told to look there
 * (qmgr_trigger_send 'I'); it routes the copy like any new mail.
 *
 * The promise: done(arg, id, 0) only after queue_commit() reported the
 * new file durable - so the original recipient is marked delivered only
 * once its copy cannot be lost; on any failure the copy is removed and
 * done(arg, NULL, errno) lets the caller defer.  done always runs from
 * the loop.  This runs in the parent, the agent's caller.  When that is
 * the delivery process (root), it sets req->queue_uid: the copy is then
 * created, written and announced with mail_owner's file system ids
 * (setfsuid/setfsgid, which on Linux change the calling thread's only,
 * for the few calls that touch the queue here), so the new file belongs
 * to mail_owner like every other queue file, and root never follows a
 * name in the queue, whose directories mail_owner owns.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>

#include "config.h"
#include "local_int.h"
#include "log.h"
#include "qmgr_trigger.h"
#include "queue.h"

struct fwd_job {
	struct event_base *base;
	lforward_done_fn done;
	void *arg;
	char id[QUEUE_ID_MAX];
	const char *queue_dir;
	uid_t uid;                      /* file system ids for the queue, */
	gid_t gid;                      /* or 0: this thread's own */
	bool inside;                    /* queue_commit() has not returned */
	bool fired;
	int err;
};

/* ---- whose ids touch the queue ---- */

struct fs_ids {
	uid_t uid;
	gid_t gid;
};

/* Take the job's file system ids (if it has any); *old gets the ones to
 * go back to.  0, or -1 (EPERM) when the kernel did not take them. */
static int fs_enter(const struct fwd_job *j, struct fs_ids *old)
{
	old->uid = (uid_t)setfsuid((uid_t)-1);
	old->gid = (gid_t)setfsgid((gid_t)-1);
	if (j->uid == 0)
		return 0;
	setfsgid(j->gid);
	setfsuid(j->uid);
	if ((uid_t)setfsuid((uid_t)-1) != j->uid
	    || (gid_t)setfsgid((gid_t)-1) != j->gid) {
		setfsuid(old->uid);
		setfsgid(old->gid);
		errno = EPERM;
		return -1;
	}
	return 0;
}

static void fs_leave(const struct fs_ids *old)
{
	setfsuid(old->uid);
	setfsgid(old->gid);
}

static int copy_range(struct queue_file *qf, const struct local_msg *m,
		      long long from, long long to)
{
	char buf[65536];
	long n;

	while (from < to) {
		size_t want = to - from < (long long)sizeof buf
			? (size_t)(to - from) : sizeof buf;

		if ((n = queue_message_pread(m->fd, m->env, buf, want, from)) <= 0) {
			if (n == 0)
				errno = EIO;    /* shorter than its envelope says */
			return -1;
		}
		if (queue_write(qf, buf, (size_t)n) < 0)
			return -1;
		from += n;
	}
	return 0;
}

static int write_content(struct queue_file *qf, const struct ldeliv *d)
{
	long long hend = lcopy_header_end(&d->msg);
	char line[1100];
	int n;

	if (hend < 0)
		return -1;
	if (local_prepend_delivered(d->cfg, "forward")) {
		n = snprintf(line, sizeof line, "Delivered-To: %s\n", d->delivered);
		if (queue_write(qf, line, (size_t)n) < 0)
			return -1;
	}
	if (copy_range(qf, &d->msg, 0, hend) < 0)
		return -1;
	queue_mark_body(qf);
	return copy_range(qf, &d->msg, hend, d->msg.env->size);
}

/* RFC 3461 xtext: "+XX" for '+', '=' and anything outside ! to ~. */
static char *xtext(const char *s)
{
	char *out = malloc(strlen(s) * 3 + 8), *p;

	if (out == NULL)
		msg_fatal("out of memory");
	p = out + sprintf(out, "rfc822;");
	for (; *s; s++) {
		if (*s == '+' || *s == '=' || (unsigned char)*s < '!'
		    || (unsigned char)*s > '~')
			p += sprintf(p, "+%02X", (unsigned char)*s);
		else
			*p++ = *s;
	}
	*p = 0;
	return out;
}

static void make_envelope(struct queue_envelope *env, const struct ldeliv *d,
			  const struct delivery_rcpt *r, char *const *addrs,
			  int n, char **orcpt)
{
	const struct queue_envelope *old = d->msg.env;
	const struct queue_rcpt *qr = NULL;

	if (r->queue_index >= 0 && r->queue_index < old->nrcpt)
		qr = &old->rcpt[r->queue_index];
	memset(env, 0, sizeof *env);
	env->sender = old->sender;
	env->envid = old->envid;
	env->ret = old->ret;
	env->body = old->body;
	env->smtputf8 = old->smtputf8;
	env->message_id = old->message_id;
	env->proto = "local";
	*orcpt = qr && qr->orcpt ? NULL
		: xtext(r->orig_addr ? r->orig_addr : r->addr);
	if ((env->rcpt = calloc((size_t)n, sizeof *env->rcpt)) == NULL)
		msg_fatal("out of memory");
	env->nrcpt = n;
	for (int i = 0; i < n; i++) {
		env->rcpt[i].addr = addrs[i];
		env->rcpt[i].orcpt = qr && qr->orcpt ? qr->orcpt : *orcpt;
		env->rcpt[i].notify = qr ? qr->notify : DSN_NOTIFY_NONE;
		env->rcpt[i].status = 'P';
	}
}

static void report(void *arg)
{
	struct fwd_job *j = arg;
	struct fs_ids old;

	if (j->err == 0 && fs_enter(j, &old) == 0) {
		/* a hint; no queue manager: picked up later */
		qmgr_trigger_send(j->queue_dir, QMGR_REQ_SCAN_INCOMING);
		fs_leave(&old);
	}
	j->done(j->arg, j->err ? NULL : j->id, j->err);
	free(j);
}

static void committed(void *arg, int err)
{
	struct fwd_job *j = arg;

	j->err = err;
	j->fired = true;
	if (!j->inside)
		report(j);
}

/* Create, write and seal the copy (with the job's file system ids). */
static void queue_copy(struct fwd_job *j, const struct ldeliv *d,
		       const struct delivery_rcpt *r, char *const *addrs, int n)
{
	struct queue_envelope env;
	struct queue_file *qf;
	char *orcpt;

	errno = 0;
	qf = queue_create(j->queue_dir);
	if (qf == NULL || write_content(qf, d) < 0) {
		j->err = errno ? errno : EIO;
		if (qf != NULL)
			queue_abort(qf);
		j->fired = true;
		return;
	}
	snprintf(j->id, sizeof j->id, "%s", queue_file_id(qf));
	make_envelope(&env, d, r, addrs, n, &orcpt);
	j->inside = true;
	queue_commit(qf, &env, committed, j);   /* seals now: env may go */
	j->inside = false;
	free(env.rcpt);
	free(orcpt);
}

void lforward_queue(struct event_base *base, const struct ldeliv *d,
		    const struct delivery_rcpt *r, char *const *addrs, int n,
		    lforward_done_fn done, void *arg)
{
	struct fwd_job *j = calloc(1, sizeof *j);
	struct fs_ids old;

	if (j == NULL)
		msg_fatal("out of memory");
	*j = (struct fwd_job){ .base = base, .done = done, .arg = arg,
			       .queue_dir = cfg_str(d->cfg, "queue_directory"),
			       .uid = d->req->queue_uid,
			       .gid = d->req->queue_gid };
	if (fs_enter(j, &old) < 0) {
		j->err = errno;
		j->fired = true;
	} else {
		queue_copy(j, d, r, addrs, n);
		fs_leave(&old);
	}
	if (j->fired)   /* failed, or no committer thread: done already */
		lagent_later(base, report, j);
}
