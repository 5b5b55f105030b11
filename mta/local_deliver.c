/*
 * local_deliver.c - local_deliver() (delivery.h): Postfix's local(8) for
 * one delivery request, driven from the caller's event loop.
 *
 * For each recipient in turn, in the loop (where the lookup tables are):
 *   1. its local part (lower case), extension (recipient_delimiter) and
 *      domain; its Delivered-To: value is the address as given;
 *   2. a message that already carries "Delivered-To:" with that value
 *      bounces: "5.4.6 mail forwarding loop for ...";
 *   3. alias expansion (local_alias.c) into destinations: users, files,
 *      commands, addresses to forward to;
 *   4. each user, file and command destination is delivered by a child
 *      process (local_agent.c) that takes the right privileges - never
 *      root - and reports back; one destination at a time, each within a
 *      time limit (command_time_limit plus the lock waits);
 *   5. addresses to forward to, from aliases and .forward files, become
 *      one new queued message (local_forward.c): "forwarded as ID";
 *   6. the results fold into the recipient's (local_result.c): delivered
 *      only if every destination was.
 * req->relay is "local"; t_conn when the work starts, t_done when the
 * last recipient has its result; done() runs once, from the loop.
 *
 * A child runs with RLIMIT_FSIZE at mailbox_size_limit (as Postfix's
 * local does, for mailboxes, files and commands alike), SIGXFSZ ignored
 * so a write past it fails with EFBIG: 5.2.2 mailbox full.  A
 * mailbox_size_limit below message_size_limit (or with message_size_limit
 * 0) is Postfix's "main.cf configuration error": everything defers
 * (4.3.5) with a warning, instead of local(8) refusing to start.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/time.h>

#include "config.h"
#include "local_int.h"
#include "log.h"

struct ljob {
	struct event_base *base;
	struct delivery_request *req;
	delivery_done_fn done;
	void *arg;
	char **seen_dt;                 /* Delivered-To: in the message */
	int cur;                        /* the recipient being delivered */
	struct ldeliv d;
	struct ltargets t;
	int next;                       /* its next destination */
	struct lres_list res;           /* its results so far */
};

static void next_rcpt(struct ljob *j);
static void next_target(struct ljob *j);

/* ---- what every local delivery needs ---- */

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

bool local_domain(const struct config *cfg, const char *domain)
{
	char **v;
	bool yes = false;
	size_t n = strlen(domain);

	while (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0 || (n == 9 && strncasecmp(domain, "localhost", 9) == 0))
		return true;
	v = cfg_list(cfg, "mydestination");
	for (int i = 0; v[i] && !yes; i++)
		yes = strchr(v[i], ':') == NULL && strlen(v[i]) == n
			&& strncasecmp(v[i], domain, n) == 0;
	cfg_list_free(v);
	return yes;
}

bool local_size_misconfigured(const struct config *cfg, const char *param)
{
	long long box = cfg_size(cfg, param);
	long long msg = cfg_size(cfg, "message_size_limit");

	if (box == 0 || (msg != 0 && box >= msg))
		return false;
	msg_warn("main.cf configuration error: %s is smaller than %s", param,
		 "message_size_limit");
	return true;
}

const struct lbox_params lbox_local = {
	.lock = "mailbox_delivery_lock",
	.size_limit = "mailbox_size_limit",
	.spool_as_root = true,
};

const struct lbox_params *ldeliv_box(const struct ldeliv *d)
{
	return d->box ? d->box : &lbox_local;
}

bool local_prepend_delivered(const struct config *cfg, const char *context)
{
	return lalias_allowed(cfg, "prepend_delivered_header", context);
}

int ldeliv_init(struct ldeliv *d, const struct delivery_request *req,
		const struct delivery_rcpt *r)
{
	const char *at = strrchr(r->addr, '@');
	const char *delims = cfg_str(req->cfg, "recipient_delimiter");
	size_t n = at ? (size_t)(at - r->addr) : strlen(r->addr), u;

	memset(d, 0, sizeof *d);
	d->req = req;
	d->cfg = req->cfg;
	d->msg = (struct local_msg){ req->queue_fd, req->env, req->queue_id };
	d->rcpt = r->addr;
	d->orig_rcpt = r->orig_addr ? r->orig_addr : r->addr;
	d->out_fd = -1;
	if (n == 0 || n >= sizeof d->local || (at && strlen(at + 1) >= sizeof d->domain)
	    || strlen(r->addr) >= sizeof d->delivered)
		return -1;
	snprintf(d->local, sizeof d->local, "%.*s", (int)n, r->addr);
	lower(d->local);
	snprintf(d->domain, sizeof d->domain, "%s", at ? at + 1 : "");
	snprintf(d->delivered, sizeof d->delivered, "%s", r->addr);
	lower(d->delivered);
	u = *delims ? strcspn(d->local, delims) : n;
	if (u == 0 || u >= n)
		u = n;
	snprintf(d->user, sizeof d->user, "%.*s", (int)u, d->local);
	snprintf(d->extension, sizeof d->extension, "%s",
		 u < n ? d->local + u + 1 : "");
	return 0;
}

bool ldeliv_looped(const struct ldeliv *d, char *const *seen_dt)
{
	for (int i = 0; seen_dt[i]; i++)
		if (strcmp(seen_dt[i], d->delivered) == 0)
			return true;
	return false;
}

/* ---- the end ---- */

static void finish(void *arg)
{
	struct ljob *j = arg;

	gettimeofday(&j->req->t_done, NULL);
	cfg_list_free(j->seen_dt);
	j->done(j->req, j->arg);
	free(j);
}

static void rcpt_done(struct ljob *j)
{
	lres_fold(&j->res, &j->req->rcpt[j->cur]);
	lres_list_free(&j->res);
	ltargets_free(&j->t);
	j->cur++;
	next_rcpt(j);
}

/* ---- forwarding ---- */

static void forwarded(void *arg, const char *queue_id, int err)
{
	struct ljob *j = arg;
	struct local_result r;

	if (err == 0)
		lres_set(&r, 2, "2.0.0", "forwarded as %s", queue_id);
	else
		lres_set(&r, 4, "4.3.0", "cannot queue a forwarded copy: %s",
			 strerror(err));
	lres_add(&j->res, &r);
	rcpt_done(j);
}

static void forward(struct ljob *j)
{
	lforward_queue(j->base, &j->d, &j->req->rcpt[j->cur], j->res.fwd,
		       j->res.nfwd, forwarded, j);
}

/* ---- one destination, in a child ---- */

void local_child_limits(long long limit)
{
	struct rlimit rl;

	signal(SIGXFSZ, SIG_IGN);
	if (limit <= 0)
		return;
	rl.rlim_cur = rl.rlim_max = (rlim_t)limit;
	if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
		msg_warn("cannot set the file size limit to %lld: %m", limit);
}

static void child(void *arg, int out_fd)
{
	struct ljob *j = arg;
	const struct ltarget *t = &j->t.v[j->next - 1];

	log_set_service("local");
	j->d.out_fd = out_fd;
	local_child_limits(cfg_size(j->d.cfg, "mailbox_size_limit"));
	if (t->kind == LT_USER)
		luser_deliver(&j->d, t);
	else
		ltarget_deliver(&j->d, t);
	lres_write_end(out_fd);
}

static void child_done(void *arg, const char *out, size_t len, bool timed_out)
{
	struct ljob *j = arg;
	const struct ltarget *t = &j->t.v[j->next - 1];
	struct local_result r;

	j->res.complete = false;
	lres_parse(&j->res, out, len);
	if (timed_out || !j->res.complete) {
		lres_set(&r, 4, "4.3.0", "local delivery to %s %s", t->value,
			 timed_out ? "exceeded its time limit"
			 : "failed: the delivery process died");
		lres_add(&j->res, &r);
	}
	next_target(j);
}

static long long time_limit(const struct config *cfg)
{
	long long locks = cfg_int(cfg, "deliver_lock_attempts")
		* cfg_time(cfg, "deliver_lock_delay");

	return cfg_time(cfg, "command_time_limit") + 3 * locks + 60;
}

static void next_target(struct ljob *j)
{
	struct local_result r;

	while (j->next < j->t.n) {
		const struct ltarget *t = &j->t.v[j->next++];

		if (t->kind == LT_FORWARD) {
			lres_add_forward(&j->res, t->value);
			continue;
		}
		if (lagent_spawn(j->base, time_limit(j->d.cfg), child, j,
				 child_done, j) == 0)
			return;
		lres_set(&r, 4, "4.3.0", "cannot start a local delivery process: %s",
			 strerror(errno));
		lres_add(&j->res, &r);
	}
	if (j->res.nfwd > 0)
		forward(j);
	else
		rcpt_done(j);
}

/* ---- one recipient ---- */


/* Start the recipient's deliveries; false when it has its result. */
static bool start_rcpt(struct ljob *j, struct delivery_rcpt *r)
{
	struct local_result res;

	if (ldeliv_init(&j->d, j->req, r) < 0) {
		delivery_set(r, 5, "5.1.3", "bad address syntax: \"%.100s\"",
			     r->addr);
		return false;
	}
	if (ldeliv_looped(&j->d, j->seen_dt)) {
		delivery_set(r, 5, "5.4.6", "mail forwarding loop for %s",
			     r->addr);
		return false;
	}
	if (lalias_expand(&j->d, &j->t, &res) < 0) {
		delivery_set(r, res.status, res.dsn, "%s", res.text);
		return false;
	}
	j->next = 0;
	return true;
}

static void next_rcpt(struct ljob *j)
{
	for (; j->cur < j->req->nrcpt; j->cur++) {
		struct delivery_rcpt *r = &j->req->rcpt[j->cur];

		if (r->status == 0 && start_rcpt(j, r)) {
			next_target(j);
			return;
		}
	}
	finish(j);
}

static void start(void *arg)
{
	next_rcpt(arg);
}

void local_deliver(struct event_base *base, struct delivery_request *req,
		   delivery_done_fn done, void *arg)
{
	struct ljob *j = calloc(1, sizeof *j);
	struct local_msg m = { req->queue_fd, req->env, req->queue_id };

	if (j == NULL)
		msg_fatal("out of memory");
	*j = (struct ljob){ .base = base, .req = req, .done = done, .arg = arg };
	gettimeofday(&req->t_conn, NULL);
	snprintf(req->relay, sizeof req->relay, "local");
	if (local_size_misconfigured(req->cfg, "mailbox_size_limit")) {
		delivery_set_rest(req, 4, "4.3.5", "mail system configuration error");
		lagent_later(base, finish, j);
		return;
	}
	if ((j->seen_dt = lcopy_delivered_to(&m)) == NULL) {
		delivery_set_rest(req, 4, "4.3.0", "cannot read the queued message: %s",
				  strerror(errno));
		lagent_later(base, finish, j);
		return;
	}
	lagent_later(base, start, j);
}
