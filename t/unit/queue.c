/*
 * t/unit/queue.c - the durable queue and the job pool, tested (TAP).
 *
 * Runs in a fresh temporary queue directory, which it removes at the end.
 * Covers: job pool completions in the loop thread; queue_dirs_ensure
 * (creation, refusal, removal of half-written files); create, write,
 * commit, done callback, and the envelope and content read back equal;
 * hostile envelope values; IDs unique and sorted; abort leaves nothing;
 * header replacement; held messages; many commits sharing one directory
 * flush; write and commit failures (RLIMIT_FSIZE stands in for a full
 * disk) leave nothing behind; damaged files refused by the reader;
 * recipient status updated in place.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "jobpool.h"
#include "log.h"
#include "queue.h"
#include "tap.h"

/* ---- stand-ins for log.c when this test is built on its own ---- */

__attribute__((weak)) void msg_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("# warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

__attribute__((weak)) void msg_fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("# fatal: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* ---- the event loop ---- */

static struct event_base *base;
static pthread_t loop_thread;
static int outstanding;         /* callbacks still expected */
static bool timed_out;

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	timed_out = true;
}

/* Run the loop until every expected callback ran (30 s at most). */
static bool run_until_done(void)
{
	struct timeval tv = { 30, 0 };
	struct event *t = evtimer_new(base, on_timeout, NULL);

	timed_out = false;
	evtimer_add(t, &tv);
	while (outstanding > 0 && !timed_out)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return outstanding == 0;
}

struct commit_result {
	bool called;
	bool in_loop;
	int err;
};

static void on_commit(void *arg, int err)
{
	struct commit_result *r = arg;

	r->called = true;
	r->err = err;
	r->in_loop = pthread_equal(pthread_self(), loop_thread);
	outstanding--;
}

/* ---- files ---- */

static char qdir[256];

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

static int count_files(const char *sub)
{
	char path[512];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", qdir, sub);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

static mode_t file_mode(const char *sub, const char *id)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s/%s", qdir, sub, id);
	if (stat(path, &st) < 0)
		return (mode_t) -1;
	return st.st_mode & 07777;
}

static void qpath(char *buf, size_t len, const char *sub, const char *id)
{
	snprintf(buf, len, "%s/%s/%s", qdir, sub, id);
}

/* ---- a message ---- */

static char *make_content(size_t want, size_t *len, long long *body_off)
{
	char *s = malloc(want + 256);
	size_t n;
	int i;

	n = (size_t) sprintf(s, "Received: from client (client [192.0.2.1])\n"
			     "Subject: queue test\nFrom: <a@example.org>\n");
	*body_off = (long long) n;
	n += (size_t) sprintf(s + n, "\n");
	for (i = 0; n < want; i++)
		n += (size_t) sprintf(s + n, "body line %d .. with text\n", i);
	*len = n;
	return s;
}

static void fill_envelope(struct queue_envelope *env)
{
	static struct queue_rcpt rcpt[3];

	memset(env, 0, sizeof(*env));
	rcpt[0] = (struct queue_rcpt) { "bob@example.net", NULL,
					DSN_NOTIFY_NONE, 'P' };
	rcpt[1] = (struct queue_rcpt) { "t\tab@example.net",
					"rfc822;t+09ab@example.net",
					DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE,
					'P' };
	rcpt[2] = (struct queue_rcpt) { "\xc3\xa9l\xc3\xa8ve@exemple.fr", "",
					DSN_NOTIFY_NEVER, 0 };
	env->arrival_sec = 1700000000;
	env->arrival_usec = 42;
	env->sender = "alice%bounce@example.org";
	env->rcpt = rcpt;
	env->nrcpt = 3;
	env->envid = "QQ314159";
	env->ret = DSN_RET_HDRS;
	env->body = BODY_8BITMIME;
	env->smtputf8 = true;
	env->client_name = "client.example.org";
	env->client_addr = "192.0.2.1";
	env->client_port = 41234;
	env->helo = "evil\r\nrcpt injected\tx %41";
	env->proto = "ESMTP";
	env->listener = "smtp";
	env->sasl_method = "PLAIN";
	env->sasl_username = "alice with space ";
	env->message_id = "<id@example.org>";
}

static void compare_envelopes(const struct queue_envelope *a,
			      const struct queue_envelope *b)
{
	bool same = true;
	int i;

	same &= a->arrival_sec == b->arrival_sec
		&& a->arrival_usec == b->arrival_usec;
	ok(same, "arrival read back");
	ok(str_eq(a->sender, b->sender), "sender read back (%s)", b->sender);
	ok(a->nrcpt == b->nrcpt, "recipient count read back");
	for (i = 0; i < a->nrcpt && i < b->nrcpt; i++) {
		char want = a->rcpt[i].status ? a->rcpt[i].status : 'P';

		ok(str_eq(a->rcpt[i].addr, b->rcpt[i].addr)
		   && str_eq(a->rcpt[i].orcpt, b->rcpt[i].orcpt)
		   && a->rcpt[i].notify == b->rcpt[i].notify
		   && want == b->rcpt[i].status,
		   "recipient %d read back (addr, orcpt, notify, status)", i);
	}
	ok(str_eq(a->envid, b->envid) && a->ret == b->ret
	   && a->body == b->body && a->smtputf8 == b->smtputf8,
	   "envid, ret, body, smtputf8 read back");
	ok(str_eq(a->client_name, b->client_name)
	   && str_eq(a->client_addr, b->client_addr)
	   && a->client_port == b->client_port,
	   "client name, address, port read back");
	ok(str_eq(a->helo, b->helo), "hostile helo (CR LF TAB %%) read back "
	   "unchanged");
	ok(str_eq(a->proto, b->proto) && str_eq(a->listener, b->listener)
	   && str_eq(a->sasl_method, b->sasl_method)
	   && str_eq(a->sasl_username, b->sasl_username)
	   && str_eq(a->message_id, b->message_id),
	   "proto, listener, sasl, message_id read back");
	ok(a->hold == b->hold && str_eq(a->hold_reason, b->hold_reason),
	   "hold read back");
}

/* Write `content` in uneven pieces (and one large one) to cross buffers. */
static int write_pieces(struct queue_file *qf, const char *content,
			size_t len, long long body_off)
{
	size_t off = 0, piece = 1;

	while (off < len) {
		size_t n = piece < len - off ? piece : len - off;

		if (off <= (size_t) body_off && (size_t) body_off < off + n) {
			n = (size_t) body_off - off;    /* stop at the body */
			if (n == 0) {
				queue_mark_body(qf);
				n = piece < len - off ? piece : len - off;
			}
		}
		if (queue_write(qf, content + off, n) < 0)
			return -1;
		off += n;
		piece = piece >= 100000 ? 7 : piece * 3 + 1;
	}
	return 0;
}

static char *read_message(const char *path, struct queue_envelope *env,
			  size_t *len)
{
	char err[256], *buf;
	int fd = open(path, O_RDONLY);
	long n;

	memset(env, 0, sizeof(*env));
	if (fd < 0 || queue_read_envelope_fd(fd, env, err, sizeof(err)) < 0) {
		diag("read %s: %s", path, fd < 0 ? strerror(errno) : err);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	buf = malloc((size_t) env->size + 1);
	n = queue_message_pread(fd, env, buf, (size_t) env->size + 1, 0);
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	*len = (size_t) n;
	return buf;
}

/* ---- the tests ---- */

static atomic_int jobs_worked;
static int jobs_done_in_loop;

static void job_work(void *arg)
{
	atomic_fetch_add(&jobs_worked, 1);
}

static void job_done(void *arg)
{
	if (pthread_equal(pthread_self(), loop_thread))
		jobs_done_in_loop++;
	outstanding--;
}

static void *poster(void *arg)
{
	int i;

	for (i = 0; i < 100; i++)
		jobpool_post(job_done, NULL);
	return NULL;
}

static void test_jobpool(void)
{
	pthread_t t;
	int i, submitted = 0;

	for (i = 0; i < 300; i++)
		submitted += jobpool_submit(job_work, job_done, NULL) == 0;
	outstanding = submitted + 100;
	pthread_create(&t, NULL, poster, NULL);
	ok(run_until_done(), "jobpool: 300 jobs and 100 posts completed");
	pthread_join(t, NULL);
	ok(atomic_load(&jobs_worked) == 300 && jobs_done_in_loop == 400,
	   "jobpool: work ran 300 times, done() 400 times in the loop thread");
}

static void test_dirs(void)
{
	static const char *const sub[] = { "incoming", "active", "deferred",
					   "hold", "corrupt" };
	char err[512] = "", path[512];
	struct stat st;
	bool all = true;
	size_t i;
	int fd;

	ok(queue_dirs_ensure(qdir, (uid_t) -1, (gid_t) -1, err,
			     sizeof(err)) == 0, "queue_dirs_ensure creates the "
	   "queue (%s)", err);
	for (i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s/%s", qdir, sub[i]);
		all &= stat(path, &st) == 0 && S_ISDIR(st.st_mode)
			&& (st.st_mode & 07777) == 0700;
	}
	ok(all, "incoming active deferred hold corrupt exist, mode 0700");

	snprintf(path, sizeof(path), "%s/incoming/ABCDEF", qdir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	snprintf(path, sizeof(path), "%s/incoming/DONE", qdir);
	fd = open(path, O_CREAT | O_WRONLY, 0700);
	close(fd);
	fchmodat(AT_FDCWD, path, 0700, 0);
	ok(queue_dirs_ensure(qdir, (uid_t) -1, (gid_t) -1, err,
			     sizeof(err)) == 0
	   && file_mode("incoming", "ABCDEF") == (mode_t) -1
	   && file_mode("incoming", "DONE") == 0700,
	   "queue_dirs_ensure removes a 0600 leftover, keeps a 0700 file");
	unlink(path);

	snprintf(path, sizeof(path), "%s/plainfile", qdir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	strcat(path, "/q");
	ok(queue_dirs_ensure(path, (uid_t) -1, (gid_t) -1, err,
			     sizeof(err)) < 0 && strstr(err, "plainfile"),
	   "queue_dirs_ensure refuses, saying why: %s", err);
	snprintf(path, sizeof(path), "%s/plainfile", qdir);
	unlink(path);

	if (geteuid() != 0) {
		ok(true, "# SKIP ownership needs root");
		ok(true, "# SKIP ownership needs root");
		return;
	}
	snprintf(path, sizeof(path), "%s/owned", qdir);
	ok(queue_dirs_ensure(path, 65534, 65534, err, sizeof(err)) == 0
	   && strcat(path, "/incoming") && stat(path, &st) == 0
	   && st.st_uid == 65534 && st.st_gid == 65534,
	   "queue_dirs_ensure gives new directories to mail_owner");
	snprintf(path, sizeof(path), "%s/owned", qdir);
	ok(queue_dirs_ensure(path, 1234, 1234, err, sizeof(err)) < 0
	   && strstr(err, "chown"),
	   "an existing queue owned by another user is refused: %s", err);
}

static void test_roundtrip(void)
{
	struct queue_envelope env, back;
	struct commit_result res = { 0 };
	char path[512], id[QUEUE_ID_MAX], *content, *msg, head[64];
	size_t len, mlen;
	long long body_off;
	struct queue_file *qf;
	int fd;

	content = make_content(300 * 1024, &len, &body_off);
	fill_envelope(&env);
	qf = queue_create(qdir);
	if (!ok(qf != NULL, "queue_create")) {
		free(content);
		return;
	}
	snprintf(id, sizeof(id), "%s", queue_file_id(qf));
	ok(write_pieces(qf, content, len, body_off) == 0,
	   "write %zu bytes in uneven pieces", len);
	ok(queue_content_size(qf) == (long long) len
	   && queue_body_offset(qf) == body_off,
	   "content size and body offset");
	ok(queue_pread(qf, head, 20, (long long) len - 20) == 20
	   && memcmp(head, content + len - 20, 20) == 0,
	   "queue_pread reads back still-buffered content");
	ok(file_mode("incoming", id) == 0600, "file is 0600 while written");

	outstanding = 1;
	queue_commit(qf, &env, on_commit, &res);
	ok(!res.called, "done() does not run inside queue_commit()");
	ok(run_until_done() && res.called && res.err == 0 && res.in_loop,
	   "commit: done(0) ran in the loop thread");
	ok(file_mode("incoming", id) == 0700, "committed file is 0700");

	qpath(path, sizeof(path), "incoming", id);
	msg = read_message(path, &back, &mlen);
	ok(msg != NULL && mlen == len && memcmp(msg, content, len) == 0
	   && back.size == (long long) len,
	   "content read back identical (%zu bytes)", mlen);
	compare_envelopes(&env, &back);

	fd = open(path, O_RDWR);
	ok(queue_rcpt_set_status(fd, 1, 'D') == 0, "queue_rcpt_set_status");
	ok(queue_rcpt_set_status(fd, 3, 'D') < 0 && errno == EINVAL,
	   "queue_rcpt_set_status refuses a recipient that does not exist");
	close(fd);
	queue_envelope_free(&back);
	free(msg);
	msg = read_message(path, &back, &mlen);
	ok(msg != NULL && back.rcpt[0].status == 'P'
	   && back.rcpt[1].status == 'D' && back.rcpt[2].status == 'P'
	   && str_eq(back.rcpt[1].addr, env.rcpt[1].addr),
	   "recipient 1 is 'D' after the in-place update, others 'P'");
	queue_envelope_free(&back);
	free(msg);
	free(content);
}

static void test_envelope_text(void)
{
	struct queue_envelope env;
	struct commit_result res = { 0 };
	char path[512], id[QUEUE_ID_MAX], buf[8192];
	struct queue_file *qf;
	const char *env_text, *p, *nl;
	ssize_t n;
	int fd;

	fill_envelope(&env);
	qf = queue_create(qdir);
	snprintf(id, sizeof(id), "%s", queue_file_id(qf));
	queue_write(qf, "Subject: x\n\nhi\n", 15);
	outstanding = 1;
	queue_commit(qf, &env, on_commit, &res);
	run_until_done();
	qpath(path, sizeof(path), "incoming", id);
	fd = open(path, O_RDONLY);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	ok(strncmp(buf, "sluice-queue 1 00000000000000000051\n", 36) == 0,
	   "preamble points at the envelope");
	env_text = buf + 51;
	ok(strstr(env_text, "helo evil%0D%0Arcpt injected%09x %2541\n") != NULL
	   && strstr(env_text, "\nrcpt P\tt%09ab@example.net\t"
		     "SUCCESS,FAILURE\trfc822;t+09ab@example.net\n") != NULL
	   && strstr(env_text, "\nsender alice%25bounce@example.org\n")
	   && strstr(env_text, "\nrcpt P\tbob@example.net\t-\t-\n")
	   && strstr(env_text, "\nseg 36 15\nend\n") != NULL,
	   "envelope text escapes CR LF TAB %%, one record per line");
	for (p = env_text; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
		diag("  %.*s", (int) (nl - p), p);
}

static void test_ids_and_abort(void)
{
	char prev[QUEUE_ID_MAX] = "";
	bool sorted = true, all = true;
	struct queue_file *qf;
	int i, before = count_files("incoming");

	for (i = 0; i < 2000; i++) {
		if ((qf = queue_create(qdir)) == NULL) {
			all = false;
			break;
		}
		if (strcmp(prev, queue_file_id(qf)) >= 0)
			sorted = false;
		snprintf(prev, sizeof(prev), "%s", queue_file_id(qf));
		queue_write(qf, "x\n", 2);
		queue_abort(qf);
	}
	ok(all && sorted, "2000 IDs (create+abort, inodes reused) strictly "
	   "increasing, so unique and sortable (last %s)", prev);
	ok(count_files("incoming") == before, "abort leaves nothing in "
	   "incoming/");
}

static void test_replace_headers(void)
{
	static const char content[] = "Subject: old\nX-Old: 1\n\nbody 1\nbody 2\n";
	static const char want[] = "Subject: new\nX-Added: yes\n\nbody 1\nbody 2\n";
	struct queue_envelope env, back;
	struct commit_result res = { 0 };
	char path[512], id[QUEUE_ID_MAX], *msg;
	struct queue_file *qf;
	size_t mlen;
	int round;

	for (round = 0; round < 2; round++) {
		fill_envelope(&env);
		qf = queue_create(qdir);
		snprintf(id, sizeof(id), "%s", queue_file_id(qf));
		queue_write(qf, content, 22);
		queue_mark_body(qf);
		queue_write(qf, content + 22, sizeof(content) - 1 - 22);
		/* with and without the empty line at the end of the block */
		queue_replace_headers(qf, "Subject: new\nX-Added: yes\n\n",
				      round == 0 ? 26 : 27);
		ok(queue_write(qf, "late", 4) < 0 && errno == EINVAL,
		   "writing content after replacing headers is refused");
		outstanding = 1;
		queue_commit(qf, &env, on_commit, &res);
		run_until_done();
		qpath(path, sizeof(path), "incoming", id);
		msg = read_message(path, &back, &mlen);
		ok(msg != NULL && mlen == sizeof(want) - 1
		   && memcmp(msg, want, mlen) == 0 && back.nseg == 2,
		   "replaced headers + original body read back (%s)",
		   round == 0 ? "block without empty line"
			      : "block with empty line");
		queue_envelope_free(&back);
		free(msg);
	}
}

static void test_hold(void)
{
	struct queue_envelope env, back;
	struct commit_result res = { 0 };
	char path[512], err[256], id[QUEUE_ID_MAX];
	struct queue_file *qf;

	fill_envelope(&env);
	env.hold = true;
	env.hold_reason = "HOLD action from header_checks";
	qf = queue_create(qdir);
	snprintf(id, sizeof(id), "%s", queue_file_id(qf));
	queue_write(qf, "Subject: hold me\n\n", 18);
	outstanding = 1;
	queue_commit(qf, &env, on_commit, &res);
	run_until_done();
	qpath(path, sizeof(path), "hold", id);
	ok(res.err == 0 && file_mode("hold", id) == 0700
	   && file_mode("incoming", id) == (mode_t) -1,
	   "a held message is committed into hold/, not incoming/");
	ok(queue_read_envelope(path, &back, err, sizeof(err)) == 0
	   && back.hold && str_eq(back.hold_reason, env.hold_reason),
	   "hold and its reason read back");
	queue_envelope_free(&back);
}

static void test_group_commit(void)
{
	enum { N = 50 };
	static struct commit_result res[N];
	struct queue_commit_stats before, after;
	struct queue_envelope env;
	struct queue_file *qf;
	bool all = true;
	int i;

	fill_envelope(&env);
	queue_commit_stats(&before);
	queue_committer_hold(true);
	outstanding = N;
	for (i = 0; i < N; i++) {
		memset(&res[i], 0, sizeof(res[i]));
		qf = queue_create(qdir);
		queue_write(qf, "Subject: g\n\nx\n", 14);
		queue_commit(qf, &env, on_commit, &res[i]);
	}
	queue_committer_hold(false);
	run_until_done();
	queue_commit_stats(&after);
	for (i = 0; i < N; i++)
		all &= res[i].called && res[i].err == 0;
	ok(all, "%d concurrent commits all succeeded", N);
	ok(after.files - before.files == N
	   && after.file_syncs - before.file_syncs == N,
	   "each file was fsync'ed (%llu)", after.file_syncs - before.file_syncs);
	ok(after.dir_syncs - before.dir_syncs == 1
	   && after.batches - before.batches == 1,
	   "they shared one flush of incoming/ (dir fsyncs %llu, batches %llu)",
	   after.dir_syncs - before.dir_syncs, after.batches - before.batches);

	queue_commit_stats(&before);
	outstanding = N;
	for (i = 0; i < N; i++) {
		memset(&res[i], 0, sizeof(res[i]));
		qf = queue_create(qdir);
		queue_write(qf, "Subject: g\n\nx\n", 14);
		queue_commit(qf, &env, on_commit, &res[i]);
	}
	run_until_done();
	queue_commit_stats(&after);
	all = true;
	for (i = 0; i < N; i++)
		all &= res[i].called && res[i].err == 0;
	ok(all && after.dir_syncs - before.dir_syncs <= N,
	   "unheld: %d commits took %llu directory flushes", N,
	   after.dir_syncs - before.dir_syncs);
}

static void test_write_failure(void)
{
	struct rlimit old, small;
	struct queue_envelope env;
	struct commit_result res = { 0 };
	char chunk[4096], id[QUEUE_ID_MAX];
	struct queue_file *qf;
	int i, rc = 0, before = count_files("incoming");

	memset(chunk, 'x', sizeof(chunk));
	chunk[sizeof(chunk) - 1] = '\n';
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	small = old;
	small.rlim_cur = 256 * 1024;
	setrlimit(RLIMIT_FSIZE, &small);

	qf = queue_create(qdir);
	for (i = 0; i < 200 && rc == 0; i++)
		rc = queue_write(qf, chunk, sizeof(chunk));
	ok(rc < 0 && errno == EFBIG, "a write past the file size limit fails "
	   "(%s)", strerror(errno));
	ok(queue_write(qf, "x", 1) < 0 && errno == EFBIG,
	   "the error is sticky");
	queue_abort(qf);
	ok(count_files("incoming") == before, "abort after the failure leaves "
	   "nothing");

	/* The content fits, the envelope does not: the commit fails. */
	fill_envelope(&env);
	qf = queue_create(qdir);
	snprintf(id, sizeof(id), "%s", queue_file_id(qf));
	for (i = 0; i < 63; i++)
		queue_write(qf, chunk, sizeof(chunk));
	queue_write(qf, chunk, sizeof(chunk) - 100);
	outstanding = 1;
	queue_commit(qf, &env, on_commit, &res);
	run_until_done();
	ok(res.called && res.err == EFBIG && res.in_loop,
	   "a commit that cannot write its envelope reports the errno (%s)",
	   strerror(res.err));
	ok(file_mode("incoming", id) == (mode_t) -1
	   && count_files("incoming") == before,
	   "the failed commit removed its file");
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
}

static void test_space(void)
{
	ok(queue_space_ok(qdir, 1000, 0), "queue_space_ok: room for a small "
	   "message");
	ok(!queue_space_ok(qdir, 0, 1LL << 60), "queue_space_ok: no room "
	   "when queue_minfree exceeds the free space");
	ok(!queue_space_ok(qdir, 1LL << 60, 0), "queue_space_ok: no room for "
	   "a message larger than the free space");
	ok(!queue_space_ok("/nonexistent/queue", 1, 0), "queue_space_ok: "
	   "false when the queue cannot be examined");
}

/* Damage a committed file and expect the reader to refuse it. */
static void expect_refused(const char *path, off_t cut, const char *patch,
			   off_t patch_at, const char *what)
{
	struct queue_envelope env;
	char err[256], tmp[600], cmd[1300];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.damaged", path);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, tmp);
	if (system(cmd) != 0)
		return;
	fd = open(tmp, O_RDWR);
	if (cut > 0 && ftruncate(fd, lseek(fd, 0, SEEK_END) - cut) < 0)
		diag("ftruncate: %s", strerror(errno));
	if (patch != NULL
	    && pwrite(fd, patch, strlen(patch), patch_at) != (ssize_t) strlen(patch))
		diag("pwrite: %s", strerror(errno));
	close(fd);
	ok(queue_read_envelope(tmp, &env, err, sizeof(err)) < 0,
	   "reader refuses %s: %s", what, err);
	unlink(tmp);
}

static void test_damaged(void)
{
	struct queue_envelope env;
	struct commit_result res = { 0 };
	char path[512], err[256], id[QUEUE_ID_MAX];
	struct queue_file *qf;

	qf = queue_create(qdir);
	snprintf(id, sizeof(id), "%s", queue_file_id(qf));
	queue_write(qf, "Subject: x\n\nhi\n", 15);
	qpath(path, sizeof(path), "incoming", id);
	queue_pread(qf, err, 1, 0);     /* flush it to the file */
	ok(queue_read_envelope(path, &env, err, sizeof(err)) < 0,
	   "reader refuses a file still being written: %s", err);
	fill_envelope(&env);
	outstanding = 1;
	queue_commit(qf, &env, on_commit, &res);
	run_until_done();

	expect_refused(path, 4, NULL, 0, "a file without its end record");
	expect_refused(path, 1, NULL, 0, "a file cut inside the end record");
	expect_refused(path, 0, "sluice-queue 9", 0, "another format version");
	expect_refused(path, 0, "99999", 30, "an envelope offset past the end");
	expect_refused(path, 0, "junk\n", 51 + 20, "a damaged record");
}

int main(void)
{
	char tmpl[] = "/tmp/sluice-queue-test.XXXXXX";

	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(tmpl) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(qdir, sizeof(qdir), "%s/spool/queue", tmpl);
	base = event_base_new();
	loop_thread = pthread_self();
	if (base == NULL || jobpool_start(base, 3) < 0
	    || queue_committer_start() < 0) {
		printf("Bail out! cannot start the pool or the committer\n");
		return 1;
	}

	test_jobpool();
	test_dirs();
	test_roundtrip();
	test_envelope_text();
	test_ids_and_abort();
	test_replace_headers();
	test_hold();
	test_group_commit();
	test_write_failure();
	test_space();
	test_damaged();

	queue_committer_stop();
	jobpool_stop();
	event_base_free(base);
	nftw(tmpl, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
