/*
 * plugin_chaintest.c - a plugin that exercises the filter chain, for
 * t/unit/filter_chain.c.  Built twice (-DPLUGIN_NAME='"chain1"' and
 * "chain2") so the order of two plugins shows.
 *
 * Every hook reports to chaintest_record(), a function of the test
 * program (found through -rdynamic), as "NAME:event".  What a hook does
 * is chosen by the recipient ("NAME-MODE@x") or by an X-Chain header
 * ("NAME-MODE"), so one test drives each path:
 *   sync      resume inside the hook, then return PENDING (553 5.7.1)
 *   timer     wait 10 ms on a timer, then DEFER (default reply)
 *   late      wait 30 ms and do not cancel in close (late resume)
 *   job       thread-pool job, then OK
 *   latejob   thread-pool job outliving the session
 *   hold / discard / soft (REJECT with a 450 reply) / bad (verdict 42)
 *   reject    (header) REJECT the content
 *   htimer    (header) wait on a timer, then DUNNO
 *   edit      (header, acted on at eom) every kind of edit
 *   dropall   (header, acted on at eom) delete every recipient
 * init() declines the content (sluice_no_content()) when the environment
 * variable CHAINTEST_NO_CONTENT names this plugin (or "both").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice_plugin.h"

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "chain1"
#endif

void chaintest_record(const char *plugin, const char *event);

struct state {
	sluice_txn *t;
	sluice_timer *timer;
	int verdict;            /* to resume with */
	int cancel_in_close;
	int closed;             /* closed with the timer left running */
	char mode[32];          /* from X-Chain, acted on at eom */
	size_t body_bytes;
	int hooks;
};

static void record(const char *fmt, const char *arg)
{
	char event[256];

	snprintf(event, sizeof event, fmt, arg);
	chaintest_record(PLUGIN_NAME, event);
}

/* The MODE of "NAME-MODE..." (up to '@'), or NULL if not for us. */
static const char *mode_of(const char *s, char *buf, size_t len)
{
	size_t n = strlen(PLUGIN_NAME);

	if (s == NULL || strncmp(s, PLUGIN_NAME "-", n + 1) != 0)
		return NULL;
	snprintf(buf, len, "%s", s + n + 1);
	buf[strcspn(buf, "@")] = 0;
	return buf;
}

static struct state *state_of(sluice_txn *t)
{
	struct state *st = sluice_get_data(t);

	if (st == NULL) {
		st = calloc(1, sizeof *st);
		st->t = t;
		st->cancel_in_close = 1;
		sluice_set_data(t, st);
	}
	st->hooks++;
	return st;
}

static void timer_done(void *arg)
{
	struct state *st = arg;
	int orphan = st->closed;    /* "late": close left st to us */

	st->timer = NULL;
	record("timer fired%s", "");
	sluice_resume(st->t, st->verdict);
	if (orphan)
		free(st);
}

static int wait_then(struct state *st, unsigned msec, int verdict)
{
	st->verdict = verdict;
	st->timer = sluice_timer_start(msec, timer_done, st);
	return st->timer ? SLUICE_PENDING : SLUICE_DEFER;
}

/* A job keeps its own state: it may outlive the session. */
struct job {
	sluice_txn *t;
	int result;
};

static void job_work(void *arg)
{
	struct job *j = arg;

	usleep(10000);
	j->result = SLUICE_OK;
}

static void job_done(void *arg)
{
	struct job *j = arg;

	record("job done%s", "");
	sluice_resume(j->t, j->result);     /* ignored if the session closed */
	free(j);
}

static int start_job(sluice_txn *t)
{
	struct job *j = calloc(1, sizeof *j);

	j->t = t;
	if (sluice_job_submit(job_work, job_done, j) < 0) {
		free(j);
		return SLUICE_DEFER;
	}
	return SLUICE_PENDING;
}

static int chain_connect(sluice_txn *t, void *pdata)
{
	(void)pdata;
	state_of(t);
	record("connect%s", "");
	sluice_txn_log(t, SLUICE_LOG_INFO, "connect from %s",
		       sluice_client_addr(t));
	return SLUICE_DUNNO;
}

static int chain_rcpt(sluice_txn *t, void *pdata)
{
	struct state *st = state_of(t);
	char buf[32];
	const char *mode = mode_of(sluice_recipient(t), buf, sizeof buf);

	(void)pdata;
	record("rcpt %s", sluice_recipient(t));
	if (sluice_header_add(t, "X-Too-Early", "yes") == 0)
		record("edit allowed in rcpt%s", "");
	if (mode == NULL)
		return SLUICE_DUNNO;
	if (strcmp(mode, "sync") == 0) {
		sluice_reply(t, 553, "5.7.1", "sync says no");
		sluice_resume(t, SLUICE_REJECT);
		return SLUICE_PENDING;
	}
	if (strcmp(mode, "timer") == 0)
		return wait_then(st, 10, SLUICE_DEFER);
	if (strcmp(mode, "late") == 0) {
		st->cancel_in_close = 0;
		return wait_then(st, 30, SLUICE_OK);
	}
	if (strcmp(mode, "job") == 0 || strcmp(mode, "latejob") == 0)
		return start_job(t);
	if (strcmp(mode, "hold") == 0) {
		sluice_reply(t, 0, NULL, "quarantine");
		return SLUICE_HOLD;
	}
	if (strcmp(mode, "discard") == 0)
		return SLUICE_DISCARD;
	if (strcmp(mode, "soft") == 0) {
		sluice_reply(t, 450, "5.1.1", "<%s>: try later", sluice_recipient(t));
		return SLUICE_REJECT;
	}
	if (strcmp(mode, "bad") == 0)
		return 42;
	if (strcmp(mode, "ok") == 0)
		return SLUICE_OK;
	return SLUICE_DUNNO;
}

static int chain_header(sluice_txn *t, const char *name, const char *value,
			void *pdata)
{
	struct state *st = state_of(t);
	char buf[32];
	const char *mode;

	(void)pdata;
	record("header %s", name);
	if (strcmp(name, "X-Chain") != 0
	    || (mode = mode_of(value, buf, sizeof buf)) == NULL)
		return SLUICE_DUNNO;
	snprintf(st->mode, sizeof st->mode, "%s", mode);
	if (strcmp(mode, "reject") == 0) {
		sluice_reply(t, 554, "5.7.0", "header says no");
		return SLUICE_REJECT;
	}
	if (strcmp(mode, "htimer") == 0)
		return wait_then(st, 10, SLUICE_DUNNO);
	return SLUICE_DUNNO;
}

static int chain_eoh(sluice_txn *t, void *pdata)
{
	(void)pdata;
	state_of(t);
	record("eoh%s", "");
	return SLUICE_DUNNO;
}

static int chain_body(sluice_txn *t, const unsigned char *chunk, size_t len,
		      void *pdata)
{
	struct state *st = state_of(t);
	char n[32];

	(void)pdata;
	(void)chunk;
	st->body_bytes += len;
	snprintf(n, sizeof n, "%zu", len);
	record("body %s", n);
	return SLUICE_DUNNO;
}

static void edit(sluice_txn *t)
{
	int r = 0;

	r |= sluice_header_add(t, "X-" PLUGIN_NAME, "eom");
	r |= sluice_header_insert(t, 0, "X-First", "top");
	r |= sluice_header_change(t, "Subject", 1, "changed");
	r |= sluice_header_change(t, "X-Chain", 1, NULL);
	r |= sluice_rcpt_add(t, "<added@x>");
	r |= sluice_rcpt_delete(t, "dunno@x");
	record(r == 0 ? "edits ok%s" : "edits failed%s", "");
	if (sluice_header_add(t, "Bad Name", "x") == 0
	    || sluice_header_add(t, "X-Inject", "a\nInjected: yes") == 0)
		record("bad edit accepted%s", "");
}

static int chain_eom(sluice_txn *t, void *pdata)
{
	struct state *st = state_of(t);
	char n[32];

	(void)pdata;
	snprintf(n, sizeof n, "%zu", st->body_bytes);
	record("eom %s", n);
	if (strcmp(st->mode, "edit") == 0)
		edit(t);
	if (strcmp(st->mode, "dropall") == 0) {
		sluice_rcpt_delete(t, "dunno@x");
		sluice_rcpt_delete(t, "keep@x");
	}
	return SLUICE_DUNNO;
}

static void chain_reset(sluice_txn *t, void *pdata)
{
	(void)t;
	(void)pdata;
	record("reset%s", "");
}

static void chain_close(sluice_txn *t, void *pdata)
{
	struct state *st = sluice_get_data(t);
	char n[32];

	(void)pdata;
	snprintf(n, sizeof n, "%d", st ? st->hooks : 0);
	record("close %s", n);
	if (st == NULL)
		return;
	if (st->cancel_in_close) {
		sluice_timer_cancel(st->timer);
		free(st);
	} else {
		st->closed = 1;     /* "late": the timer frees st */
	}
	sluice_set_data(t, NULL);
}

static int chain_init(void **pdata)
{
	const char *no = getenv("CHAINTEST_NO_CONTENT");

	*pdata = NULL;
	if (no && (strcmp(no, PLUGIN_NAME) == 0 || strcmp(no, "both") == 0))
		sluice_no_content();
	return 0;
}

SLUICE_PLUGIN_DECLARE = {
	.abi = SLUICE_PLUGIN_ABI,
	.name = PLUGIN_NAME,
	.version = "0",
	.init = chain_init,
	.connect = chain_connect,
	.rcpt = chain_rcpt,
	.header = chain_header,
	.eoh = chain_eoh,
	.body = chain_body,
	.eom = chain_eom,
	.reset = chain_reset,
	.close = chain_close,
};
