/*
 * virtual_deliver.c - virtual_deliver() (delivery.h): Postfix's
 * virtual(8), the agent of virtual mailbox domains, driven from the
 * caller's event loop.
 *
 * Unlike local(8) there are no aliases, no .forward, no commands and no
 * passwd lookup: everything comes from tables keyed by the full
 * recipient address (virtual(5) order: user+ext@domain, user@domain,
 * @domain).  For each recipient in turn, in the loop (where the tables
 * are):
 *   1. a message that already carries "Delivered-To:" with the recipient
 *      bounces: "5.4.6 mail forwarding loop for ...";
 *   2. the mailbox is virtual_mailbox_base + the virtual_mailbox_maps
 *      result (resolve_virtual_mailbox()): a trailing "/" means maildir,
 *      anything else an mbox file; no entry bounces with 5.1.1;
 *   3. the owner: virtual_uid_maps and virtual_gid_maps give numbers
 *      ("static:5000" for everyone).  A missing entry, a uid below
 *      virtual_minimum_uid or a gid of 0 defers with "4.3.5 mail system
 *      configuration error" and a warning naming the table, as Postfix;
 *   4. a child process (local_agent.c) takes the owner's ids - never
 *      root, with no supplementary group but the gid - and writes the
 *      mailbox with local(8)'s writers (local_mbox.c, local_maildir.c):
 *      Return-Path:, X-Original-To:, Delivered-To:, and for mbox the
 *      From_ line, ">From " quoting and locking (virtual_mailbox_lock).
 *      virtual_mailbox_limit is checked before the write and is the
 *      child's RLIMIT_FSIZE.  As in Postfix, a virtual_mailbox_limit
 *      below message_size_limit (or with message_size_limit 0) is a
 *      configuration error: everything defers (4.3.5) with a warning.
 * req->relay is "virtual"; t_conn when the work starts, t_done when the
 * last recipient has its result; done() runs once, from the loop.
 *
 * As in Postfix, a maildir and its missing parents are created as the
 * owner, but an mbox file's directory must exist and let the owner
 * create the file and its dot-lock.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "config.h"
#include "local_int.h"
#include "log.h"
#include "resolve.h"

#define VIRTUAL_PATH_MAX	4096
#define CONFIG_ERROR		"mail system configuration error"

struct vjob {
	struct event_base *base;
	struct delivery_request *req;
	delivery_done_fn done;
	void *arg;
	char **seen_dt;                 /* Delivered-To: in the message */
	int cur;                        /* the recipient being delivered */
	struct ldeliv d;
	struct lpriv owner;
	char mailbox[VIRTUAL_PATH_MAX];
};

const struct lbox_params lbox_virtual = {
	.lock = "virtual_mailbox_lock",
	.size_limit = "virtual_mailbox_limit",
	.spool_as_root = false,
};

static void next_rcpt(struct vjob *j);

/* ---- the end ---- */

static void finish(void *arg)
{
	struct vjob *j = arg;

	gettimeofday(&j->req->t_done, NULL);
	cfg_list_free(j->seen_dt);
	j->done(j->req, j->arg);
	free(j);
}

/* ---- the delivery, in a child ---- */

static void child(void *arg, int out_fd)
{
	struct vjob *j = arg;
	size_t n = strlen(j->mailbox);
	struct local_result res;

	log_set_service("virtual");
	j->d.out_fd = out_fd;
	local_child_limits(cfg_size(j->d.cfg, lbox_virtual.size_limit));
	lres_set(&res, 4, "4.3.0", "virtual delivery to %s did not finish",
		 j->mailbox);
	if (n > 0 && j->mailbox[n - 1] == '/')
		lmaildir_deliver(&j->d, j->mailbox, &j->owner, false, &res);
	else
		lmbox_deliver(&j->d, j->mailbox, &j->owner, &j->owner, &res);
	lres_write(out_fd, &res);
	lres_write_end(out_fd);
}

static void child_done(void *arg, const char *out, size_t len, bool timed_out)
{
	struct vjob *j = arg;
	struct delivery_rcpt *r = &j->req->rcpt[j->cur];
	struct lres_list l;

	memset(&l, 0, sizeof l);
	lres_parse(&l, out, len);
	if (timed_out || !l.complete || l.n == 0)
		delivery_set(r, 4, "4.3.0", "virtual delivery to %s %s",
			     j->mailbox, timed_out ? "exceeded its time limit"
			     : "failed: the delivery process died");
	else
		lres_fold(&l, r);
	lres_list_free(&l);
	j->cur++;
	next_rcpt(j);
}

/* The lock waits, and a margin for the write. */
static long long time_limit(const struct config *cfg)
{
	return 3 * cfg_int(cfg, "deliver_lock_attempts")
		* cfg_time(cfg, "deliver_lock_delay") + 60;
}

/* ---- one recipient, in the loop ---- */

/* The number virtual_uid_maps or virtual_gid_maps (what: "uid", "gid")
 * gives the recipient: 0 with *id set, or -1 (a warning is logged) when
 * there is none, it is not a number, or it is below `min`. */
static int owner_id(const struct ldeliv *d, const char *param,
		    const char *what, long long min, long long *id)
{
	char *value = NULL, *end;
	int rc = resolve_virtual_lookup(d->cfg, param, d->rcpt, &value);

	if (rc == 5)
		msg_warn("recipient %s: not found in %s", d->rcpt, param);
	if (rc != 0)
		return -1;      /* a table failure is logged by the lookup */
	errno = 0;
	*id = strtoll(value, &end, 10);
	if (end == value || *end != 0 || errno != 0 || *id < min
	    || *id >= (long long)UINT32_MAX) {
		msg_warn("recipient %s: bad %s %s in %s", d->rcpt, what, value,
			 param);
		rc = -1;
	}
	free(value);
	return rc;
}

static int find_owner(struct vjob *j)
{
	const struct config *cfg = j->d.cfg;
	long long min = cfg_int(cfg, "virtual_minimum_uid");
	long long uid, gid;

	/* uid 0 never, whatever virtual_minimum_uid says */
	if (owner_id(&j->d, "virtual_uid_maps", "uid", min > 1 ? min : 1,
		     &uid) < 0
	    || owner_id(&j->d, "virtual_gid_maps", "gid", 1, &gid) < 0)
		return -1;
	memset(&j->owner, 0, sizeof j->owner);
	j->owner.uid = (uid_t)uid;
	j->owner.gid = (gid_t)gid;
	/* "#uid": no account, so no supplementary groups (local_priv.c) */
	snprintf(j->owner.name, sizeof j->owner.name, "#%lld", uid);
	snprintf(j->owner.home, sizeof j->owner.home, "/");
	snprintf(j->owner.shell, sizeof j->owner.shell, "/bin/sh");
	return 0;
}

/* A resolve.h result, "D.S.N text", as the recipient's. */
static void set_why(struct delivery_rcpt *r, int status, const char *why)
{
	char dsn[16];
	int off = 0;

	if (sscanf(why, "%15s %n", dsn, &off) < 1 || off == 0)
		delivery_set(r, status, status == 5 ? "5.0.0" : "4.0.0", "%s",
			     why);
	else
		delivery_set(r, status, dsn, "%s", why + off);
}

/* Look the recipient up; false when it has its result already. */
static bool start_rcpt(struct vjob *j, struct delivery_rcpt *r)
{
	char why[600];
	int rc;

	if (ldeliv_init(&j->d, j->req, r) < 0) {
		delivery_set(r, 5, "5.1.3", "bad address syntax: \"%.100s\"",
			     r->addr);
		return false;
	}
	j->d.box = &lbox_virtual;
	if (ldeliv_looped(&j->d, j->seen_dt)) {
		delivery_set(r, 5, "5.4.6", "mail forwarding loop for %s",
			     r->addr);
		return false;
	}
	rc = resolve_virtual_mailbox(j->d.cfg, r->addr, j->mailbox,
				     sizeof j->mailbox, why, sizeof why);
	if (rc != 0) {
		set_why(r, rc, why);
		return false;
	}
	if (find_owner(j) < 0) {
		delivery_set(r, 4, "4.3.5", CONFIG_ERROR);
		return false;
	}
	return true;
}

static void next_rcpt(struct vjob *j)
{
	for (; j->cur < j->req->nrcpt; j->cur++) {
		struct delivery_rcpt *r = &j->req->rcpt[j->cur];

		if (r->status != 0 || !start_rcpt(j, r))
			continue;
		if (lagent_spawn(j->base, time_limit(j->d.cfg), child, j,
				 child_done, j) == 0)
			return;
		delivery_set(r, 4, "4.3.0",
			     "cannot start a virtual delivery process: %s",
			     strerror(errno));
	}
	finish(j);
}

static void start(void *arg)
{
	next_rcpt(arg);
}

void virtual_deliver(struct event_base *base, struct delivery_request *req,
		     delivery_done_fn done, void *arg)
{
	struct vjob *j = calloc(1, sizeof *j);
	struct local_msg m = { req->queue_fd, req->env, req->queue_id };

	if (j == NULL)
		msg_fatal("out of memory");
	j->base = base;
	j->req = req;
	j->done = done;
	j->arg = arg;
	gettimeofday(&req->t_conn, NULL);
	snprintf(req->relay, sizeof req->relay, "virtual");
	if (local_size_misconfigured(req->cfg, "virtual_mailbox_limit")) {
		delivery_set_rest(req, 4, "4.3.5", CONFIG_ERROR);
		lagent_later(base, finish, j);
		return;
	}
	if ((j->seen_dt = lcopy_delivered_to(&m)) == NULL) {
		delivery_set_rest(req, 4, "4.3.0",
				  "cannot read the queued message: %s",
				  strerror(errno));
		lagent_later(base, finish, j);
		return;
	}
	lagent_later(base, start, j);
}
