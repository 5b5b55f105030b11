/*
 * filter_chain.c - unit test of the filter chain and the plugin API
 * (TAP on stdout).
 *
 * Loads two builds of t/data/plugin_chaintest.c (chain1, chain2) and runs
 * stages on sessions made here, with a real libevent loop, thread pool
 * and queue file: hook order, every verdict and its reply, suspend and
 * resume (from a timer, from a job, from inside the hook), the content
 * stage (headers, end of headers, 64 KiB body chunks, suspended in the
 * middle), eom edits and their refusal elsewhere, reset and close, and
 * the lifetime rule: a session closed with a hook pending may be freed at
 * once, and a late resume is ignored.  Then the example plugin's
 * asynchronous end of message.  Run from the top of the source tree (as
 * `make test` does), or set SLUICE_SRCDIR.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "diag.h"
#include "filter_chain.h"
#include "jobpool.h"
#include "log.h"
#include "plugin_loader.h"
#include "queue.h"
#include "smtp_session.h"
#include "sluice_plugin.h"
#include "tap.h"

static const char *srcdir = ".";
static char dir[] = "/tmp/sluice-filter-chain-XXXXXX";
static char logpath[300], qdir[300];
static struct event_base *base;

/* What the plugins did, "plugin:event;" each. */
static char events[16384];
/* What the chain answered. */
static int done_calls, last_verdict;

void chaintest_record(const char *plugin, const char *event);

void chaintest_record(const char *plugin, const char *event)
{
	size_t n = strlen(events);

	snprintf(events + n, sizeof events - n, "%s:%s;", plugin, event);
}

static void done(struct smtp_session *s, int verdict)
{
	done_calls++;
	last_verdict = verdict;
}

/* ---- helpers ------------------------------------------------------- */

static bool build(const char *name, const char *src)
{
	const char *cc = getenv("CC") ? getenv("CC") : "cc";
	char cmd[2048];

	snprintf(cmd, sizeof cmd, "%s -shared -fPIC -Wall -Wextra -Werror "
		 "-I%s/plugins -DPLUGIN_NAME='\"%s\"' -o %s/%s.so %s/%s",
		 cc, srcdir, name, dir, name, srcdir, src);
	return system(cmd) == 0;
}

static bool log_has(const char *needle)
{
	char line[4096];
	bool found = false;
	FILE *fp = fopen(logpath, "r");

	while (fp && !found && fgets(line, sizeof line, fp))
		found = strstr(line, needle) != NULL;
	if (fp)
		fclose(fp);
	return found;
}

static void loop_timeout(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

/* Run the loop until `done` has been called `calls` times, or `ms`. */
static void run_until(int calls, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	bool expired = false;
	struct event *ev = evtimer_new(base, loop_timeout, &expired);

	evtimer_add(ev, &tv);
	while (done_calls < calls && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct smtp_session *session_new(void)
{
	struct smtp_session *s = calloc(1, sizeof *s);

	s->base = base;
	strcpy(s->client_addr, "192.0.2.1");
	strcpy(s->client_name, "unknown");
	s->client_port = 54321;
	return s;
}

static void add_header(struct smtp_session *s, const char *name,
		       const char *value)
{
	struct smtp_txn *t = &s->txn;

	if (t->nhdr == t->hdr_alloc) {
		t->hdr_alloc = t->hdr_alloc ? 2 * t->hdr_alloc : 8;
		t->hdr = realloc(t->hdr, t->hdr_alloc * sizeof *t->hdr);
	}
	t->hdr[t->nhdr].name = strdup(name);
	t->hdr[t->nhdr].value = strdup(value);
	t->nhdr++;
}

static void add_rcpt(struct smtp_session *s, const char *addr)
{
	struct smtp_txn *t = &s->txn;

	if (t->env.nrcpt == t->rcpt_alloc) {
		t->rcpt_alloc = t->rcpt_alloc ? 2 * t->rcpt_alloc : 8;
		t->env.rcpt = realloc(t->env.rcpt,
				      t->rcpt_alloc * sizeof *t->env.rcpt);
	}
	memset(&t->env.rcpt[t->env.nrcpt], 0, sizeof *t->env.rcpt);
	t->env.rcpt[t->env.nrcpt++].addr = strdup(addr);
}

static void session_free(struct smtp_session *s)
{
	filter_close(s);
	for (int i = 0; i < s->txn.nhdr; i++) {
		free(s->txn.hdr[i].name);
		free(s->txn.hdr[i].value);
	}
	free(s->txn.hdr);
	free(s->txn.hold_reason);
	if (s->txn.qf)
		queue_abort(s->txn.qf);
	queue_envelope_free(&s->txn.env);
	free(s);
}

/* Run one RCPT stage; returns the verdict (-1: still pending). */
static int rcpt(struct smtp_session *s, const char *addr)
{
	int before = done_calls;

	events[0] = 0;
	s->txn.cur_rcpt = addr;
	filter_run_stage(s, FS_RCPT, done);
	return done_calls > before ? last_verdict : -1;
}

/* ---- tests ------------------------------------------------------------- */

static void test_order_and_sync(void)
{
	struct smtp_session *s = session_new();
	int before = done_calls;

	events[0] = 0;
	filter_run_stage(s, FS_CONNECT, done);
	ok(done_calls == before + 1 && last_verdict == SLUICE_DUNNO,
	   "connect: done runs at once with DUNNO when no hook waits");
	is_str(events, "chain1:connect;chain2:connect;",
	       "hooks run in sluice_plugins order");
	ok(log_has("NOQUEUE: chain1: connect from 192.0.2.1"),
	   "sluice_txn_log writes NOQUEUE: plugin: text");

	is_int(rcpt(s, "dunno@x"), SLUICE_DUNNO, "rcpt: DUNNO from all");
	is_str(events, "chain1:rcpt dunno@x;chain2:rcpt dunno@x;",
	       "both plugins asked");
	ok(log_has("chain1: sluice_header_add refused"),
	   "a header edit outside eom is refused and logged");

	is_int(rcpt(s, "chain1-sync@x"), SLUICE_REJECT,
	       "resume inside the hook, then PENDING: done at once");
	is_str(events, "chain1:rcpt chain1-sync@x;",
	       "the first verdict ends the stage");
	ok(s->reply_code == 553 && strcmp(s->reply_dsn, "5.7.1") == 0
	   && s->reply_text && strcmp(s->reply_text, "sync says no") == 0,
	   "the plugin's reply is kept");

	is_int(rcpt(s, "chain1-ok@x"), SLUICE_OK, "OK ends the stage");
	is_str(events, "chain1:rcpt chain1-ok@x;", "chain2 is not asked");
	ok(s->reply_code == 0 && s->reply_text == NULL, "OK leaves no reply");

	is_int(rcpt(s, "chain2-soft@x"), SLUICE_DEFER,
	       "REJECT with a 450 reply defers");
	ok(s->reply_code == 450 && strcmp(s->reply_dsn, "4.1.1") == 0,
	   "... with 450 4.1.1 (the class digit follows the code)");

	is_int(rcpt(s, "chain1-bad@x"), SLUICE_DEFER,
	       "an invalid verdict defers");
	ok(s->reply_code == 451 && strcmp(s->reply_dsn, "4.3.5") == 0,
	   "... with 451 4.3.5");

	is_int(rcpt(s, "chain1-hold@x"), SLUICE_HOLD, "HOLD is handed on");
	ok(s->txn.hold && s->txn.hold_reason
	   && strcmp(s->txn.hold_reason, "quarantine") == 0,
	   "HOLD is recorded with the reply text as reason");
	is_int(rcpt(s, "chain2-discard@x"), SLUICE_DISCARD,
	       "DISCARD is handed on");
	ok(s->txn.discard, "DISCARD is recorded");

	events[0] = 0;
	filter_reset(s);
	is_str(events, "chain1:reset;chain2:reset;", "reset hooks run in order");

	events[0] = 0;
	before = done_calls;
	sluice_resume((sluice_txn *)s, SLUICE_OK);
	ok(done_calls == before && log_has("with no hook pending; ignored"),
	   "a resume with nothing pending is ignored and logged");

	events[0] = 0;
	session_free(s);
	is_str(events, "chain1:close 8;chain2:close 4;",
	       "close hooks run, and per-session data lasted the session");
}

static void test_async(void)
{
	struct smtp_session *s = session_new();
	double t0;

	filter_run_stage(s, FS_CONNECT, done);
	is_int(rcpt(s, "chain1-timer@x"), -1, "a timer wait leaves the stage pending");
	ok(strcmp(events, "chain1:rcpt chain1-timer@x;") == 0,
	   "chain2 waits for chain1");
	t0 = now_ms();
	run_until(done_calls + 1, 2000);
	is_int(last_verdict, SLUICE_DEFER, "the timer's resume decides: DEFER");
	ok(now_ms() - t0 >= 9, "... after the timer's delay");
	ok(s->reply_code == 450 && strcmp(s->reply_dsn, "4.7.1") == 0
	   && s->reply_text == NULL, "DEFER without a reply gets 450 4.7.1");

	is_int(rcpt(s, "chain2-timer@x"), -1, "chain2 waits");
	run_until(done_calls + 1, 2000);
	is_str(events, "chain1:rcpt chain2-timer@x;chain2:rcpt chain2-timer@x;"
	       "chain2:timer fired;", "in order, then the timer");

	is_int(rcpt(s, "chain1-job@x"), -1, "a thread-pool job leaves it pending");
	run_until(done_calls + 1, 2000);
	is_int(last_verdict, SLUICE_OK, "the job's completion resumes: OK");
	session_free(s);
}

static void test_close_pending(void)
{
	struct smtp_session *s = session_new();
	int before;

	filter_run_stage(s, FS_CONNECT, done);
	is_int(rcpt(s, "chain1-timer@x"), -1, "pending on a timer");
	before = done_calls;
	events[0] = 0;
	session_free(s);        /* close, then free at once */
	is_str(events, "chain1:close 2;chain2:close 1;",
	       "close hooks run while a hook is pending");
	run_until(before + 1, 60);
	ok(done_calls == before && !strstr(events, "timer fired"),
	   "the cancelled timer never fires; done never runs");

	s = session_new();
	filter_run_stage(s, FS_CONNECT, done);
	is_int(rcpt(s, "chain1-late@x"), -1, "pending on a timer not cancelled");
	before = done_calls;
	session_free(s);
	events[0] = 0;
	run_until(before + 1, 100);
	ok(strstr(events, "chain1:timer fired;") != NULL,
	   "the late timer fires after the session was freed");
	ok(done_calls == before && log_has("chain1: sluice_resume() for a "
					    "session that has closed; ignored"),
	   "its resume is ignored and logged, nothing touched");

	s = session_new();
	filter_run_stage(s, FS_CONNECT, done);
	is_int(rcpt(s, "chain1-latejob@x"), -1, "pending on a job");
	before = done_calls;
	session_free(s);
	events[0] = 0;
	run_until(before + 1, 200);
	ok(strstr(events, "chain1:job done;") && done_calls == before,
	   "a job completing after close resumes nothing");
}

/* A message in a queue file: headers, then a body of body_len bytes. */
static void make_message(struct smtp_session *s, const char *xchain,
			 size_t body_len)
{
	char line[64];

	s->txn.qf = queue_create(qdir);
	add_header(s, "Received", " from x\n\tby y");
	add_header(s, "Subject", " hi");
	add_header(s, "X-Chain", xchain);
	for (int i = 0; i < s->txn.nhdr; i++) {
		queue_write(s->txn.qf, s->txn.hdr[i].name,
			    strlen(s->txn.hdr[i].name));
		queue_write(s->txn.qf, ":", 1);
		queue_write(s->txn.qf, s->txn.hdr[i].value,
			    strlen(s->txn.hdr[i].value));
		queue_write(s->txn.qf, "\n", 1);
	}
	queue_mark_body(s->txn.qf);
	queue_write(s->txn.qf, "\n", 1);
	memset(line, 'b', sizeof line);
	line[sizeof line - 1] = '\n';
	for (size_t n = 0; n < body_len; n += sizeof line)
		queue_write(s->txn.qf, line, body_len - n < sizeof line
			    ? body_len - n : sizeof line);
	add_rcpt(s, "dunno@x");
	add_rcpt(s, "keep@x");
}

static void test_content(void)
{
	struct smtp_session *s = session_new();
	char want[1024];

	ok(filter_wants_content(), "plugins with content hooks want content");
	make_message(s, " chain1-htimer", 100000);
	events[0] = 0;
	filter_run_stage(s, FS_CONTENT, done);
	ok(strcmp(events, "chain1:header Received;chain2:header Received;"
		  "chain1:header Subject;chain2:header Subject;"
		  "chain1:header X-Chain;") == 0,
	   "content: each header to each plugin, suspended at X-Chain");
	run_until(done_calls + 1, 2000);
	is_int(last_verdict, SLUICE_DUNNO, "the content stage completes");
	snprintf(want, sizeof want, "chain1:header Received;chain2:header Received;"
		 "chain1:header Subject;chain2:header Subject;"
		 "chain1:header X-Chain;chain1:timer fired;chain2:header X-Chain;"
		 "chain1:eoh;chain2:eoh;chain1:body 65536;chain2:body 65536;"
		 "chain1:body 34464;chain2:body 34464;");
	is_str(events, want, "resumed where it stopped; eoh; 64 KiB body "
	       "chunks without the separating empty line");
	session_free(s);

	s = session_new();
	make_message(s, " chain2-reject", 10);
	events[0] = 0;
	filter_run_stage(s, FS_CONTENT, done);
	is_int(last_verdict, SLUICE_REJECT, "a header hook's REJECT ends content");
	ok(s->reply_code == 554 && strcmp(s->reply_dsn, "5.7.0") == 0
	   && !strstr(events, "eoh"), "... with its reply, no eoh");
	session_free(s);
}

/* sluice_no_content() in init(): that plugin's content hooks are not
 * called (its eom still is); when every plugin declines, the content
 * stage has nothing to do.  Outside init() it is ignored. */
static void test_no_content(void)
{
	char *names[] = { "chain1", "chain2", NULL };
	struct smtp_session *s;

	plugins_unload();
	setenv("CHAINTEST_NO_CONTENT", "chain2", 1);
	ok(plugins_load(dir, names) == 0, "no_content: chain2 declines content");
	ok(filter_wants_content(), "no_content: chain1 still wants content");
	s = session_new();
	make_message(s, " none", 10);
	events[0] = 0;
	filter_run_stage(s, FS_CONTENT, done);
	is_int(last_verdict, SLUICE_DUNNO, "no_content: content completes");
	is_str(events, "chain1:header Received;chain1:header Subject;"
	       "chain1:header X-Chain;chain1:eoh;chain1:body 10;",
	       "no_content: only chain1's content hooks run");
	events[0] = 0;
	filter_run_stage(s, FS_EOM, done);
	ok(strstr(events, "chain1:eom") && strstr(events, "chain2:eom"),
	   "no_content: both eom hooks still run");
	session_free(s);

	sluice_no_content();
	ok(log_has("sluice_no_content() called outside init()")
	   && !plugin_at(0)->no_content && filter_wants_content(),
	   "no_content: outside init() it warns and does nothing");

	plugins_unload();
	setenv("CHAINTEST_NO_CONTENT", "both", 1);
	ok(plugins_load(dir, names) == 0 && !filter_wants_content(),
	   "no_content: nobody wants content when both decline");
	plugins_unload();
	unsetenv("CHAINTEST_NO_CONTENT");
	ok(plugins_load(dir, names) == 0 && filter_wants_content(),
	   "no_content: reloaded without declining, content is wanted again");
}

static void test_eom_edits(void)
{
	struct smtp_session *s = session_new();
	struct smtp_txn *t = &s->txn;

	make_message(s, " chain1-edit", 10);
	filter_run_stage(s, FS_CONTENT, done);
	events[0] = 0;
	filter_run_stage(s, FS_EOM, done);
	is_int(last_verdict, SLUICE_DUNNO, "eom completes");
	is_str(events, "chain1:eom 10;chain1:edits ok;chain2:eom 10;",
	       "eom hooks in order; every edit accepted");
	ok(t->hdr_modified, "hdr_modified is set");
	ok(t->nhdr == 4 && !strcmp(t->hdr[0].name, "X-First")
	   && !strcmp(t->hdr[0].value, " top")
	   && !strcmp(t->hdr[1].name, "Received")
	   && !strcmp(t->hdr[2].name, "Subject")
	   && !strcmp(t->hdr[2].value, " changed")
	   && !strcmp(t->hdr[3].name, "X-chain1")
	   && !strcmp(t->hdr[3].value, " eom"),
	   "insert on top, change, delete, add, stored as \"Name:\" + \" value\"");
	ok(t->env.nrcpt == 2 && !strcmp(t->env.rcpt[0].addr, "keep@x")
	   && !strcmp(t->env.rcpt[1].addr, "added@x")
	   && t->env.rcpt[1].status == 'P',
	   "recipient added (without <>) and deleted");
	ok(!log_has("bad edit accepted") && !strstr(events, "bad edit"),
	   "a header name with a space and an injected header are refused");
	session_free(s);

	s = session_new();
	make_message(s, " chain1-dropall", 10);
	filter_run_stage(s, FS_CONTENT, done);
	filter_run_stage(s, FS_EOM, done);
	ok(last_verdict == SLUICE_DISCARD && s->txn.discard
	   && s->txn.env.nrcpt == 0,
	   "eom edits that remove every recipient discard the message");
	session_free(s);
}

static void test_example(void)
{
	char *names[] = { "example", NULL };
	struct smtp_session *s;
	struct diag d;
	double t0;
	int before;

	plugins_unload();
	diag_init(&d);
	ok(plugins_register_params(dir, names, &d, "main.cf", 1) == 0
	   && plugins_load(dir, names) == 0,
	   "the example plugin registers its parameters and loads");
	diag_free(&d);
	s = session_new();
	make_message(s, " none", 10);
	t0 = now_ms();
	before = done_calls;
	filter_run_stage(s, FS_EOM, done);
	ok(done_calls == before, "example: eom waits on its timer");
	run_until(before + 1, 2000);
	ok(done_calls == before + 1 && last_verdict == SLUICE_DUNNO,
	   "example: the timer resumes with DUNNO");
	ok(now_ms() - t0 >= 49, "example: after example_delay_ms (50)");
	ok(s->txn.hdr_modified && s->txn.nhdr == 4
	   && !strcmp(s->txn.hdr[3].name, "X-Sluice-Example")
	   && !strcmp(s->txn.hdr[3].value, " checked by example plugin"),
	   "example: X-Sluice-Example: checked by example plugin is added");
	session_free(s);

	s = session_new();
	make_message(s, " none", 10);
	before = done_calls;
	filter_run_stage(s, FS_EOM, done);
	session_free(s);
	run_until(before + 1, 100);
	ok(done_calls == before, "example: closing while it waits cancels");
	plugins_unload();
}

int main(void)
{
	char *names[] = { "chain1", "chain2", NULL };
	char cmd[600], err[256];

	if (getenv("SLUICE_SRCDIR"))
		srcdir = getenv("SLUICE_SRCDIR");
	snprintf(cmd, sizeof cmd, "%s/plugins/sluice_plugin.h", srcdir);
	if (access(cmd, R_OK) != 0) {
		printf("1..0 # SKIP run from the source tree or set SLUICE_SRCDIR\n");
		return 0;
	}
	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp: cannot create %s\n", dir);
		return 1;
	}
	snprintf(logpath, sizeof logpath, "%s/log", dir);
	snprintf(qdir, sizeof qdir, "%s/queue", dir);
	log_open("test", LOG_DEST_FILE, logpath);
	if (queue_dirs_ensure(qdir, (uid_t)-1, (gid_t)-1, err, sizeof err) < 0) {
		printf("Bail out! %s\n", err);
		return 1;
	}
	base = event_base_new();
	filter_set_event_base(base);
	if (jobpool_start(base, 2) < 0) {
		printf("Bail out! jobpool_start failed\n");
		return 1;
	}
	ok(build("chain1", "t/data/plugin_chaintest.c")
	   && build("chain2", "t/data/plugin_chaintest.c")
	   && build("example", "plugins/example/example.c"),
	   "test plugins build");
	ok(plugins_load(dir, names) == 0, "chain1 and chain2 load");

	test_order_and_sync();
	test_async();
	test_close_pending();
	test_content();
	test_eom_edits();
	test_no_content();
	test_example();

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (tap_failures == 0 && system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
