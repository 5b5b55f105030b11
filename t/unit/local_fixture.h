/*
 * t/unit/local_fixture.h - the fixture shared by the tests of the delivery
 * agents that write mailboxes: t/unit/local.c (local(8), pipe(8)) and
 * t/unit/virtual.c (virtual(8)).
 *
 * Header-only, like tap.h: each test is built on its own, so everything
 * here is static (and marked unused where a test may not need it).
 * Include it after tap.h.  It gives:
 *
 *	tmp, qdir, base		the temporary directory, the queue in it, the
 *				event base the agents run on
 *	write_file, slurp, path_of, remove_tmp
 *				files (path_of: 8 rotating buffers)
 *	fixture_dirs(prefix, cleanup)
 *				mkdtemp /tmp/PREFIX-XXXXXX, atexit(cleanup),
 *				and the queue directories under qdir
 *	load_conf(name, main_cf)
 *				a configuration directory conf-NAME with this
 *				main.cf; bails out if it does not load
 *	struct msg, queue_msg, free_msg
 *				a message queued for env's sender (the
 *				recipients are filled in) and read back
 *	struct result, run_agent, is_result
 *				run one agent on a message until done(), with
 *				the TAP checks every run makes
 */
#ifndef SLUICE_T_UNIT_LOCAL_FIXTURE_H
#define SLUICE_T_UNIT_LOCAL_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "delivery.h"
#include "diag.h"
#include "queue.h"
#include "tap.h"

static char tmp[256];           /* the temporary directory */
static char qdir[300];
static struct event_base *base;

/* ---- files ---- */

static TAP_UNUSED void write_file(const char *path, const char *text,
				  mode_t mode)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0) {
		perror(path);
		exit(2);
	}
	chmod(path, mode);
}

static TAP_UNUSED char *slurp(const char *path)
{
	static char buf[1 << 20];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n < 0 ? 0 : n] = 0;
	return buf;
}

static char *path_of(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static char *path_of(const char *fmt, ...)
{
	static char bufs[8][600];
	static int i;
	char *b = bufs[i++ % 8];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof bufs[0], fmt, ap);
	va_end(ap);
	return b;
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *f)
{
	return remove(p);
}

/* Remove the temporary directory (if made) with all in it. */
static TAP_UNUSED void remove_tmp(void)
{
	if (tmp[0])
		nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The temporary directory /tmp/PREFIX-XXXXXX (mode 0755, cleanup run at
 * exit) and the queue directories in it. */
static TAP_UNUSED void fixture_dirs(const char *prefix, void (*cleanup)(void))
{
	char err[256];

	snprintf(tmp, sizeof tmp, "/tmp/%s-XXXXXX", prefix);
	if (mkdtemp(tmp) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		exit(2);
	}
	atexit(cleanup);
	chmod(tmp, 0755);
	snprintf(qdir, sizeof qdir, "%s/queue", tmp);
	if (queue_dirs_ensure(qdir, (uid_t)-1, (gid_t)-1, err, sizeof err) < 0) {
		printf("Bail out! queue: %s\n", err);
		exit(2);
	}
}

/* ---- configuration ---- */

/* A configuration directory conf-NAME with this main.cf. */
static TAP_UNUSED struct config *load_conf(const char *name,
					   const char *main_cf)
{
	char *dir = path_of("%s/conf-%s", tmp, name);
	struct sluice_config *sc;
	struct diag d;

	mkdir(dir, 0755);
	write_file(path_of("%s/main.cf", dir), main_cf, 0644);
	write_file(path_of("%s/master.cf", dir),
		   "smtp inet - - - - - smtpd\n", 0644);
	diag_init(&d);
	sc = config_load_flags(dir, &d, 0);
	for (int i = 0; i < d.n; i++)
		diag("config %s: %s", name, d.v[i].text);
	diag_free(&d);
	if (sc == NULL) {
		printf("Bail out! configuration %s does not load\n", name);
		exit(2);
	}
	return sc->main;       /* kept until the test ends */
}

/* ---- messages ---- */

struct msg {
	char id[QUEUE_ID_MAX];
	char path[600];
	int fd;
	struct queue_envelope env;
};

/* Queue a message with these header lines and body for the recipients
 * (at most 8), with env's sender and client; read its envelope back. */
static TAP_UNUSED void queue_msg(struct msg *m, struct queue_envelope *env,
				 const char *headers, const char *body,
				 char **rcpts, int n)
{
	struct queue_rcpt r[8];
	struct queue_file *qf = queue_create(qdir);
	char err[256];

	if (qf == NULL) {
		printf("Bail out! queue_create: %s\n", strerror(errno));
		exit(2);
	}
	memset(r, 0, sizeof r);
	for (int i = 0; i < n; i++) {
		r[i].addr = rcpts[i];
		r[i].notify = DSN_NOTIFY_FAILURE;
	}
	env->rcpt = r;
	env->nrcpt = n;
	queue_write(qf, headers, strlen(headers));
	queue_mark_body(qf);
	queue_write(qf, "\n", 1);
	queue_write(qf, body, strlen(body));
	snprintf(m->id, sizeof m->id, "%s", queue_file_id(qf));
	queue_commit(qf, env, NULL, NULL);
	env->rcpt = NULL;
	env->nrcpt = 0;
	snprintf(m->path, sizeof m->path, "%s/incoming/%s", qdir, m->id);
	memset(&m->env, 0, sizeof m->env);
	if ((m->fd = open(m->path, O_RDONLY | O_CLOEXEC)) < 0
	    || queue_read_envelope_fd(m->fd, &m->env, err, sizeof err) < 0) {
		printf("Bail out! cannot read back %s: %s\n", m->path, err);
		exit(2);
	}
}

static TAP_UNUSED void free_msg(struct msg *m)
{
	close(m->fd);
	unlink(m->path);
	queue_envelope_free(&m->env);
}

/* ---- running an agent ---- */

static bool done_called;

static void on_done(struct delivery_request *req, void *arg)
{
	done_called = true;
	event_base_loopbreak(base);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(base);
}

struct result {
	struct delivery_rcpt r[4];
	struct delivery_request req;
	double secs;
};

typedef void agent_fn(struct event_base *base, struct delivery_request *req,
		      delivery_done_fn done, void *arg);

/* Run agent on message m for the recipients (at most 4), with the request
 * req (transport, nexthop, cfg, agent_args; the rest is filled in), until
 * it calls done() or 60s pass.  Checks that done() comes from the event
 * loop only; res->secs is how long it took. */
static TAP_UNUSED void run_agent(agent_fn *agent, struct delivery_request req,
				 struct msg *m, char **rcpts, int n,
				 struct result *res)
{
	struct timeval limit = { 60, 0 }, t0, t1;
	struct event *timer = evtimer_new(base, on_timeout, NULL);

	memset(res, 0, sizeof *res);
	for (int i = 0; i < n; i++) {
		res->r[i].addr = rcpts[i];
		res->r[i].queue_index = i;
	}
	req.queue_id = m->id;
	req.queue_path = m->path;
	req.queue_fd = m->fd;
	req.env = &m->env;
	req.rcpt = res->r;
	req.nrcpt = n;
	res->req = req;
	done_called = false;
	evtimer_add(timer, &limit);
	gettimeofday(&t0, NULL);
	agent(base, &res->req, on_done, NULL);
	ok(!done_called, "done() is not called from inside the agent");
	event_base_dispatch(base);
	gettimeofday(&t1, NULL);
	res->secs = (double)(t1.tv_sec - t0.tv_sec)
		+ (double)(t1.tv_usec - t0.tv_usec) / 1e6;
	event_free(timer);
	ok(done_called, "the agent completed");
	for (int i = 0; i < n; i++)
		diag("%s -> %d %s %s", rcpts[i], res->r[i].status,
		     res->r[i].dsn, res->r[i].text ? res->r[i].text : "");
}

static TAP_UNUSED void is_result(const struct delivery_rcpt *r, int status,
				 const char *dsn, const char *text,
				 const char *name)
{
	ok(r->status == status && strcmp(r->dsn, dsn) == 0 && r->text
	   && strstr(r->text, text) != NULL, "%s: %d %s \"...%s...\"", name,
	   status, dsn, text);
}

#endif
