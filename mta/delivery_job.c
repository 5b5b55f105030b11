/*
 * delivery_job.c - one request in the delivery process: checked, run by
 * its agent, answered (delivery_server.h).
 *
 * The request comes from the queue manager, which runs as mail_owner
 * and parses what remote SMTP servers say: it is taken as untrusted.
 * Before any agent sees it, in this order:
 *   1. the reader's verdict (delivery_proto.c): syntax and bounds of
 *      every field, the queue ID's form (hex digits only), each address;
 *   2. the transport is one of this process' own configuration (master.cf,
 *      or the built-in local and virtual), and its command is local,
 *      virtual or pipe; its definition (pipe's user=, argv=) is ours,
 *      never the request's;
 *   3. the message is opened only as active/ID, below queue_directory
 *      (this process' working directory), with O_NOFOLLOW for both names;
 *      it must be a regular file with one link, owned by mail_owner, and
 *      marked complete (mode 0700);
 *   4. its envelope (sender, DSN fields, size, content segments) is read
 *      from the file by queue_read_envelope_fd(), which checks it whole;
 *   5. every recipient names a recipient of that file by its index,
 *      still pending ('P'), as received (the original address must be
 *      the file's); the address to deliver to may differ (rewriting,
 *      virtual aliases), and passed step 1.
 * A request that fails any of them is refused: "warning: [ID: ]request
 * N from uid U refused: WHY", and every recipient gets "4.3.0 delivery
 * request refused: WHY" (the queue manager defers them).  Nothing it
 * sent is used for anything else.
 *
 * Then the agent runs from this loop (delivery.h: local_deliver(),
 * virtual_deliver(), pipe_deliver(), each forking its own children that
 * take the recipient's or user='s ids), with the queue file open
 * read-only, and its results go back on the connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "delivery.h"
#include "delivery_server.h"
#include "log.h"

typedef void (*agent_fn)(struct event_base *, struct delivery_request *,
			 delivery_done_fn, void *);

static const struct {
	const char *command;
	agent_fn fn;
} agents[] = {
	{ "local", local_deliver },
	{ "virtual", virtual_deliver },
	{ "pipe", pipe_deliver },
};

struct djob {
	struct dserver *s;
	struct dconn *c;
	struct dp_request r;
	char path[QUEUE_ID_MAX + 16];   /* "active/ID" */
	int fd;
	bool have_env;
	struct queue_envelope env;
	struct delivery_request req;
};

/* ---- the end of a job ------------------------------------------------ */

static void job_free(struct djob *j)
{
	if (j->fd >= 0)
		close(j->fd);
	if (j->have_env)
		queue_envelope_free(&j->env);
	delivery_clear(&j->req);
	free(j->req.rcpt);
	dp_request_free(&j->r);
	free(j);
}

static void refuse(struct djob *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void refuse(struct djob *j, const char *fmt, ...)
{
	char why[DP_REASON_MAX], text[DP_REASON_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	msg_warn("%s%srequest %llu from uid %ld refused: %s",
		 j->r.queue_id, j->r.queue_id[0] ? ": " : "", j->r.seq,
		 (long)j->c->uid, why);
	snprintf(text, sizeof text, "delivery request refused: %s", why);
	dconn_reply_error(j->c, j->r.seq, "4.3.0", text);
	dconn_job_done(j->c);
	job_free(j);
}

static void agent_done(struct delivery_request *req, void *arg)
{
	struct djob *j = arg;

	dconn_reply_result(j->c, j->r.seq, req);
	dconn_job_done(j->c);
	job_free(j);
}

/* ---- 2. the transport, from our own configuration -------------------- */

static const struct transport *transport_of(const struct dserver *s,
					    const char *name)
{
	const struct transport *t = config_transport(s->sc, name);

	if (t != NULL)
		return t;
	for (int i = 0; i < s->nbuiltin; i++)
		if (strcmp(s->builtin[i].name, name) == 0)
			return &s->builtin[i];
	return NULL;
}

static agent_fn agent_of(const struct transport *t)
{
	for (size_t i = 0; i < sizeof agents / sizeof agents[0]; i++)
		if (strcmp(t->command, agents[i].command) == 0)
			return agents[i].fn;
	return NULL;
}

/* ---- 3. the queue file ----------------------------------------------- */

/* active/ID, without following a link at either name.  -1 with why. */
static int open_active(const char *id, char *why, size_t len)
{
	int dir, fd;

	if ((dir = open(QUEUE_ACTIVE, O_RDONLY | O_DIRECTORY | O_NOFOLLOW
			| O_CLOEXEC)) < 0) {
		snprintf(why, len, "cannot open %s/: %s", QUEUE_ACTIVE,
			 strerror(errno));
		return -1;
	}
	fd = openat(dir, id, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY
		    | O_CLOEXEC);
	if (fd < 0)
		snprintf(why, len, "cannot open %s/%s: %s", QUEUE_ACTIVE, id,
			 strerror(errno));
	close(dir);
	return fd;
}

/* A queue file as the queue manager holds it in active/. */
static bool queue_file_ok(const struct dserver *s, int fd, char *why,
			  size_t len)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		snprintf(why, len, "fstat: %s", strerror(errno));
		return false;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
		snprintf(why, len, "not a regular file with one link");
	else if (st.st_uid != s->owner_uid)
		snprintf(why, len, "owned by uid %ld, not by mail_owner",
			 (long)st.st_uid);
	else if ((st.st_mode & S_IXUSR) == 0)
		snprintf(why, len, "not a complete queue file");
	else
		return true;
	return false;
}

static bool open_message(struct djob *j, char *why, size_t len)
{
	char err[256];

	snprintf(j->path, sizeof j->path, "%s/%s", QUEUE_ACTIVE, j->r.queue_id);
	if ((j->fd = open_active(j->r.queue_id, why, len)) < 0
	    || !queue_file_ok(j->s, j->fd, why, len))
		return false;
	if (queue_read_envelope_fd(j->fd, &j->env, err, sizeof err) < 0) {
		snprintf(why, len, "damaged queue file: %.200s", err);
		return false;
	}
	j->have_env = true;
	return true;
}

/* ---- 5. the recipients against the file's ---------------------------- */

static bool recipients_ok(const struct djob *j, char *why, size_t len)
{
	for (int i = 0; i < j->r.nrcpt; i++) {
		const struct dp_rcpt *r = &j->r.rcpt[i];
		const struct queue_rcpt *q;

		if (r->index >= j->env.nrcpt) {
			snprintf(why, len, "recipient %d: the queue file has no "
				 "recipient %d", i, r->index);
			return false;
		}
		q = &j->env.rcpt[r->index];
		if (q->status != 'P') {
			snprintf(why, len, "recipient %d: recipient %d of the "
				 "queue file is not pending", i, r->index);
			return false;
		}
		if (strcmp(q->addr, r->orig) != 0) {
			snprintf(why, len, "recipient %d: not recipient %d of "
				 "the queue file", i, r->index);
			return false;
		}
	}
	return true;
}

/* ---- the agent's request --------------------------------------------- */

static void build_request(struct djob *j, const struct transport *t)
{
	struct delivery_request *req = &j->req;

	req->queue_id = j->r.queue_id;
	req->queue_path = j->path;
	req->queue_fd = j->fd;
	req->env = &j->env;
	req->transport = t->name;
	req->nexthop = j->r.nexthop;
	req->cfg = t->cfg ? t->cfg : j->s->sc->main;
	req->agent_args = t->args;
	req->queue_uid = j->s->owner_uid;
	req->queue_gid = j->s->owner_gid;
	if ((req->rcpt = calloc((size_t)j->r.nrcpt, sizeof *req->rcpt)) == NULL)
		msg_fatal("out of memory");
	for (int i = 0; i < j->r.nrcpt; i++) {
		const struct dp_rcpt *r = &j->r.rcpt[i];

		req->rcpt[i].addr = r->addr;
		req->rcpt[i].orig_addr = strcmp(r->orig, r->addr) == 0 ? NULL
		    : r->orig;
		req->rcpt[i].queue_index = r->index;
	}
	req->nrcpt = j->r.nrcpt;
}

/* ---- a request ------------------------------------------------------- */

static struct djob *job_new(struct dserver *s, struct dconn *c,
			    struct dp_request *r)
{
	struct djob *j = calloc(1, sizeof *j);

	if (j == NULL)
		msg_fatal("out of memory");
	j->s = s;
	j->c = c;
	j->r = *r;
	memset(r, 0, sizeof *r);
	j->fd = -1;
	return j;
}

void djob_start(struct dserver *s, struct dconn *c, struct dp_request *r)
{
	struct djob *j = job_new(s, c, r);
	const struct transport *t;
	char why[DP_REASON_MAX];
	agent_fn agent;

	if (j->r.refused[0]) {
		refuse(j, "%s", j->r.refused);
		return;
	}
	if ((t = transport_of(s, j->r.transport)) == NULL) {
		refuse(j, "unknown transport \"%s\"", j->r.transport);
		return;
	}
	if ((agent = agent_of(t)) == NULL) {
		refuse(j, "transport \"%s\" (%s) is not delivered here",
		       t->name, t->command);
		return;
	}
	if (!open_message(j, why, sizeof why)
	    || !recipients_ok(j, why, sizeof why)) {
		refuse(j, "%s", why);
		return;
	}
	build_request(j, t);
	agent(s->base, &j->req, agent_done, j);
}
