/*
 * t/unit/pickup.c - local submission's back end, tested (TAP): the
 * queue manager's trigger FIFO (qmgr_trigger.c), deferral reasons
 * (queue_reason.c), and pickup_run() turning maildrop files into queue
 * files (pickup.c, pickup_content.c, maildrop.c).
 *
 * Runs in a fresh temporary queue directory, removed at the end.  Good
 * files are written with the writer sendmail uses (maildrop_create and
 * maildrop_finish); bad ones by hand.  Covers: the headers pickup adds
 * and keeps, address qualification and duplicate recipients, the log
 * line, and what happens to files that must not be trusted: damaged,
 * truncated, too big, incomplete (fresh and stale), symbolic links, hard
 * links, foreign names, directories, another owner (as root).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "maildrop.h"
#include "pickup.h"
#include "qmgr_trigger.h"
#include "queue.h"
#include "queue_reason.h"
#include "tap.h"
#include "dir_fixture.h"

static char tmp[256], qdir[300], logpath[300];
static struct sluice_config *sc;

/* ---- set-up ---- */

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
}

static void setup(void)
{
	char path[400], err[256];
	struct diag d;

	snprintf(tmp, sizeof tmp, "/tmp/sluice-pickup-XXXXXX");
	if (mkdtemp(tmp) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		exit(1);
	}
	snprintf(qdir, sizeof qdir, "%s/spool", tmp);
	snprintf(logpath, sizeof logpath, "%s/log", tmp);
	snprintf(path, sizeof path, "%s/main.cf", tmp);
	write_text(path, "myhostname = mx.example.test\n"
		   "myorigin = example.test\n"
		   "message_size_limit = 100000\n"
		   "queue_directory = spool\n");
	snprintf(path, sizeof path, "%s/master.cf", tmp);
	write_text(path, "");
	diag_init(&d);
	sc = config_load_flags(tmp, &d, CONFIG_LENIENT);
	diag_free(&d);
	if (sc == NULL || queue_dirs_ensure(qdir, (uid_t) -1, (gid_t) -1, err,
					    sizeof err) < 0) {
		printf("Bail out! cannot set up %s: %s\n", tmp, err);
		exit(1);
	}
	log_open("qmgr", LOG_DEST_FILE, logpath);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

/* ---- helpers ---- */

static char *slurp(const char *path, size_t *lenp)
{
	FILE *fp = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, n;
	char chunk[4096];

	if (fp == NULL)
		return strdup("");
	while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
		buf = realloc(buf, len + n + 1);
		memcpy(buf + len, chunk, n);
		len += n;
	}
	fclose(fp);
	if (buf == NULL)
		buf = strdup("");
	buf[len] = 0;
	if (lenp)
		*lenp = len;
	return buf;
}

static int count_files(const char *sub)
{
	char path[400];

	snprintf(path, sizeof path, "%s/%s", qdir, sub);
	return dir_entries(path, NULL, 0);
}

/* The oldest queue file in incoming/ (the smallest ID): its name in id. */
static bool first_incoming(char *id, size_t size)
{
	char path[400];
	struct dirent *de;
	DIR *d;
	bool found = false;

	snprintf(path, sizeof path, "%s/%s", qdir, QUEUE_INCOMING);
	if ((d = opendir(path)) == NULL)
		return false;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && (!found || strcmp(de->d_name, id) < 0)) {
			snprintf(id, size, "%.*s", QUEUE_ID_MAX, de->d_name);
			found = true;
		}
	closedir(d);
	return found;
}

/* Take the only message out of incoming/: envelope and content. */
static char *take_message(struct queue_envelope *env, char *id, size_t idsize)
{
	char path[400], err[256], *msg = NULL;
	int fd;

	memset(env, 0, sizeof *env);
	if (!first_incoming(id, idsize))
		return NULL;
	snprintf(path, sizeof path, "%s/%s/%s", qdir, QUEUE_INCOMING, id);
	if ((fd = open(path, O_RDONLY)) < 0
	    || queue_read_envelope_fd(fd, env, err, sizeof err) < 0) {
		diag("cannot read %s: %s", path, err);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	msg = calloc(1, (size_t) env->size + 1);
	queue_message_pread(fd, env, msg, (size_t) env->size, 0);
	close(fd);
	unlink(path);
	return msg;
}

/* Drop a good file with the writer sendmail uses; its name in name. */
static void drop(const char *content, const char *sender, const char *full,
		 char *const *rcpt, int nrcpt, char *name)
{
	struct maildrop_env env = { sender, full, rcpt, nrcpt };
	struct maildrop_file *mf;
	char err[256];

	mf = maildrop_create(qdir, err, sizeof err);
	if (mf == NULL) {
		printf("Bail out! %s\n", err);
		exit(1);
	}
	if (name)
		snprintf(name, MAILDROP_NAME_LEN + 1, "%s", maildrop_name(mf));
	maildrop_write(mf, content, strlen(content));
	if (maildrop_finish(mf, &env, err, sizeof err) < 0)
		diag("maildrop_finish: %s", err);
}

static int name_seq;

/* A file written by hand: a valid name, `text`, the mode given. */
static void drop_raw(const char *text, size_t len, mode_t mode, char *name)
{
	char path[400];
	int fd;

	snprintf(name, MAILDROP_NAME_LEN + 1, "0000000000000%016X", ++name_seq);
	snprintf(path, sizeof path, "%s/%s/%s", qdir, MAILDROP_DIR, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, text, len) != (ssize_t) len) {
		printf("Bail out! %s: %s\n", path, strerror(errno));
		exit(1);
	}
	fchmod(fd, mode);
	close(fd);
}

static bool has(const char *hay, const char *needle)
{
	return hay != NULL && strstr(hay, needle) != NULL;
}

static bool in_dir(const char *sub, const char *name)
{
	char path[400];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s/%s", qdir, sub, name);
	return lstat(path, &st) == 0;
}

/* ---- the trigger FIFO ---- */

static void test_trigger(void)
{
	int fd, junk;
	unsigned want;

	errno = 0;
	ok(qmgr_trigger_send(qdir, QMGR_REQ_WAKEUP) < 0
	   && (errno == ENXIO || errno == ENOENT),
	   "trigger: no queue manager listening: ENXIO or ENOENT");
	fd = qmgr_trigger_open(qdir);
	ok(fd >= 0, "trigger: the reader opens (and makes) public/qmgr");
	ok(qmgr_trigger_send(qdir, QMGR_REQ_WAKEUP) == 0
	   && qmgr_trigger_send(qdir, QMGR_REQ_SCAN_ALL) == 0
	   && qmgr_trigger_send(qdir, QMGR_REQ_FLUSH_DEAD) == 0
	   && qmgr_trigger_send(qdir, QMGR_REQ_SCAN_INCOMING) == 0
	   && qmgr_trigger_send(qdir, QMGR_REQ_WAKEUP) == 0,
	   "trigger: requests are written");
	junk = qmgr_trigger_send(qdir, 'x');
	ok(junk < 0 && errno == EINVAL, "trigger: an unknown request is refused");
	want = qmgr_trigger_read(fd);
	is_int(want, QMGR_WANT_WAKEUP | QMGR_WANT_SCAN_ALL
	       | QMGR_WANT_FLUSH_DEAD | QMGR_WANT_SCAN_INCOMING,
	       "trigger: the reader sees each request once");
	is_int(qmgr_trigger_read(fd), 0, "trigger: drained, nothing more");
	close(fd);
	ok(qmgr_trigger_send(qdir, QMGR_REQ_WAKEUP) < 0 && errno == ENXIO,
	   "trigger: reader gone: ENXIO (the mail system is down)");
}

/* ---- deferral reasons ---- */

static void test_reasons(void)
{
	const char *id = "6B012F0CC3C02A72621";
	struct queue_reason r[] = {
		{ 0, "connect to mx.example.net[192.0.2.1]:25: Connection refused" },
		{ 2, "host said: 450 4.2.0 try\r\nlater %41\033[31m" },
	};
	struct queue_reason r2[] = { { 0, "timed out" } };
	char **got;

	ok(queue_reason_load(qdir, id, 3) == NULL, "reasons: none at first");
	ok(queue_reason_update(qdir, id, r, 2) == 0, "reasons: written");
	got = queue_reason_load(qdir, id, 3);
	ok(got != NULL, "reasons: read back");
	if (got == NULL)
		return;
	is_str(got[0], r[0].text, "reasons: recipient 0");
	ok(got[1] == NULL, "reasons: recipient 1 has none");
	is_str(got[2], "host said: 450 4.2.0 try  later %41 [31m",
	       "reasons: recipient 2, control bytes shown as spaces");
	queue_reason_free(got, 3);
	ok(queue_reason_update(qdir, id, r2, 1) == 0, "reasons: one replaced");
	got = queue_reason_load(qdir, id, 3);
	ok(got && strcmp(got[0], "timed out") == 0 && got[2] != NULL,
	   "reasons: the other recipient's reason is kept");
	queue_reason_free(got, 3);
	got = queue_reason_load(qdir, id, 1);
	ok(got && strcmp(got[0], "timed out") == 0,
	   "reasons: an index beyond the recipients is ignored");
	queue_reason_free(got, 1);
	r2[0].text = NULL;
	queue_reason_update(qdir, id, r2, 1);
	got = queue_reason_load(qdir, id, 3);
	ok(got && got[0] == NULL && got[2] != NULL,
	   "reasons: a NULL text forgets that recipient's reason");
	queue_reason_free(got, 3);
	ok(queue_reason_remove(qdir, id) == 0
	   && queue_reason_load(qdir, id, 3) == NULL
	   && queue_reason_remove(qdir, id) == 0, "reasons: removed (twice is fine)");
	ok(queue_reason_update(qdir, "../x", r, 1) < 0 && errno == EINVAL,
	   "reasons: an ID with a slash is refused");
}

/* ---- pickup: good files ---- */

static void test_minimal(void)
{
	char *rcpt[] = { "bob@example.test", "carol@example.org",
			 "BOB@example.test", "dave" };
	struct queue_envelope env;
	char id[QUEUE_ID_MAX + 4], want[512], name[64], *msg, *log;

	drop("Subject: hi\n\nbody\n", "alice", NULL, rcpt, 4, name);
	is_int(pickup_run(sc->main, qdir), 1, "pickup: one file taken");
	is_int(count_files(MAILDROP_DIR), 0, "pickup: maildrop file removed");
	msg = take_message(&env, id, sizeof id);
	ok(msg != NULL, "pickup: a queue file in incoming/");
	if (msg == NULL)
		return;
	is_str(env.sender, "alice@example.test", "pickup: sender qualified with myorigin");
	is_int(env.nrcpt, 3, "pickup: a repeated recipient (any case) dropped");
	is_str(env.rcpt[0].addr, "bob@example.test", "pickup: recipient 1");
	is_str(env.rcpt[1].addr, "carol@example.org", "pickup: recipient 2");
	is_str(env.rcpt[2].addr, "dave@example.test", "pickup: recipient 3 qualified");
	is_str(env.proto, "sendmail", "pickup: proto sendmail");
	is_str(env.client_name, "local", "pickup: client local");
	ok(env.client_addr == NULL, "pickup: no client address");
	snprintf(want, sizeof want, "Received: by mx.example.test (sluice, "
		 "from userid %ld)\n\tid %s; ", (long) getuid(), id);
	ok(strncmp(msg, want, strlen(want)) == 0, "pickup: our Received: first");
	ok(has(msg, "\nSubject: hi\nMessage-Id: <") && has(msg, "@mx.example.test>\nDate: ")
	   && has(msg, "\nFrom: alice@example.test\n\nbody\n"),
	   "pickup: Message-Id:, Date:, From: added at the end of the headers");
	snprintf(want, sizeof want, ".%s@mx.example.test>", id);
	ok(env.message_id && has(env.message_id, want),
	   "pickup: the Message-Id names the queue ID (%s)", env.message_id);
	is_int(env.body, BODY_7BIT, "pickup: 7BIT content");
	ok(!env.smtputf8, "pickup: ASCII only: no SMTPUTF8");
	log = slurp(logpath, NULL);
	snprintf(want, sizeof want, "%s: uid=%ld from=<alice@example.test>", id,
		 (long) getuid());
	ok(has(log, want), "pickup: logged '%s'", want);
	free(log);
	free(msg);
	queue_envelope_free(&env);
}

static void test_headers_kept(void)
{
	char *rcpt[] = { "bob@example.test" };
	struct queue_envelope env;
	char id[QUEUE_ID_MAX + 4], *msg;

	drop("From: Someone <s@example.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
	     "Message-ID:\n <abc@example.org>\nSubject: x\n\n\xc3\xa9t\xc3\xa9\n",
	     "", "Al Ice", rcpt, 1, NULL);
	is_int(pickup_run(sc->main, qdir), 1, "pickup: second file taken");
	msg = take_message(&env, id, sizeof id);
	ok(msg && !has(msg, "Message-Id:") && !has(msg, "\nDate: Sat")
	   && !has(msg, "Al Ice"), "pickup: present headers not added again");
	is_str(env.message_id, "<abc@example.org>", "pickup: the folded Message-ID read");
	is_str(env.sender, "", "pickup: the null sender stays null");
	is_int(env.body, BODY_8BITMIME, "pickup: 8-bit content is 8BITMIME");
	ok(!env.smtputf8, "pickup: an 8-bit body alone asks no SMTPUTF8");
	free(msg);
	queue_envelope_free(&env);
}

static void test_shapes(void)
{
	char *rcpt[] = { "bob@example.test" };
	struct queue_envelope env;
	char id[QUEUE_ID_MAX + 4], *msg;

	drop("Subject: x\nno blank line before this body\n", "alice@example.org",
	     "Ice, Al", rcpt, 1, NULL);
	drop("Subject: only headers, no line end", "", NULL, rcpt, 1, NULL);
	drop("Subject: x\n\nx\n", "j\xc3\xb6rg@example.org", NULL, rcpt, 1, NULL);
	is_int(pickup_run(sc->main, qdir), 3, "pickup: three files taken");
	msg = take_message(&env, id, sizeof id);
	ok(has(msg, "From: \"Ice, Al\" <alice@example.org>\n\nno blank line before this body\n"),
	   "pickup: a full name with specials quoted; an empty line put before the body");
	free(msg);
	queue_envelope_free(&env);
	msg = take_message(&env, id, sizeof id);
	ok(has(msg, "\nSubject: only headers, no line end\nMessage-Id: ")
	   && has(msg, "\nFrom: MAILER-DAEMON@mx.example.test\n"),
	   "pickup: a last header without LF ends; null sender's From: MAILER-DAEMON");
	free(msg);
	queue_envelope_free(&env);
	msg = take_message(&env, id, sizeof id);
	ok(env.smtputf8, "pickup: a UTF-8 address asks for SMTPUTF8");
	free(msg);
	queue_envelope_free(&env);
}

/* ---- pickup: files that must not be trusted ---- */

/* A file by hand (len 0: strlen) that pickup must send to corrupt/. */
static void expect_corrupt(const char *what, const char *text, size_t len)
{
	char name[64];

	drop_raw(text, len ? len : strlen(text), 0744, name);
	is_int(pickup_run(sc->main, qdir), 0, "pickup: nothing queued from a bad file");
	ok(in_dir(QUEUE_CORRUPT, name) && !in_dir(MAILDROP_DIR, name),
	   "pickup: %s goes to corrupt/", what);
}

#define MD_PRE "sluice-maildrop 1 00000000000000000004\nabc\n"

static void test_corrupt(void)
{
	static const char big_tail[] = "sender\nrcpt b\nend\n";
	size_t n = 39 + 100001 + sizeof big_tail - 1;
	char *big = malloc(n);

	expect_corrupt("a bad preamble", "sluice-queue 1 x\n", 0);
	expect_corrupt("a truncated file", "sluice-maildrop 1 "
		       "00000000000000000900\nabc\nend\n", 0);
	expect_corrupt("a file without end", MD_PRE "sender a\nrcpt b\n", 0);
	expect_corrupt("an unknown record", MD_PRE "sender a\nrcpt b\n"
		       "client_addr 1.2.3.4\nend\n", 0);
	expect_corrupt("two senders", MD_PRE "sender a\nsender b\nrcpt b\nend\n", 0);
	expect_corrupt("no recipient", MD_PRE "sender a\nend\n", 0);
	expect_corrupt("a recipient with <>", MD_PRE "sender a\nrcpt <b>\nend\n", 0);
	expect_corrupt("a control byte in a value",
		       MD_PRE "sender a\x01\nrcpt b\nend\n", 0);
	expect_corrupt("something after end", MD_PRE "sender a\nrcpt b\nend\nx", 0);
	expect_corrupt("a NUL in a value", MD_PRE "sender a\0b\nrcpt b\nend\n",
		       sizeof(MD_PRE "sender a\0b\nrcpt b\nend\n") - 1);
	memset(big, 'x', n);
	memcpy(big, "sluice-maildrop 1 00000000000000100001\n", 39);
	memcpy(big + 39 + 100001, big_tail, sizeof big_tail - 1);
	expect_corrupt("a message over message_size_limit", big, n);
	free(big);
}

static void test_untrusted(void)
{
	static const char good[] = MD_PRE "sender a\nrcpt b\nend\n";
	char name[64], path[400], link2[500], target[400];
	struct timeval old[2];

	drop_raw(good, sizeof good - 1, 0644, name);
	is_int(pickup_run(sc->main, qdir), 0, "pickup: an incomplete file is left alone");
	ok(in_dir(MAILDROP_DIR, name), "pickup: ... and stays in maildrop/");
	snprintf(path, sizeof path, "%s/%s/%s", qdir, MAILDROP_DIR, name);
	gettimeofday(&old[0], NULL);
	old[0].tv_sec -= 2 * 86400;
	old[1] = old[0];
	utimes(path, old);
	pickup_run(sc->main, qdir);
	ok(!in_dir(MAILDROP_DIR, name) && !in_dir(QUEUE_CORRUPT, name),
	   "pickup: an incomplete file older than a day is removed");

	snprintf(target, sizeof target, "%s/secret", tmp);
	write_text(target, "do not read me\n");
	snprintf(name, sizeof name, "0000000000000%016X", ++name_seq);
	snprintf(path, sizeof path, "%s/%s/%s", qdir, MAILDROP_DIR, name);
	symlink(target, path);
	is_int(pickup_run(sc->main, qdir), 0, "pickup: a symbolic link is not followed");
	ok(!in_dir(MAILDROP_DIR, name) && access(target, F_OK) == 0,
	   "pickup: ... it is removed, its target left alone");

	drop_raw(good, sizeof good - 1, 0744, name);
	snprintf(path, sizeof path, "%s/%s/%s", qdir, MAILDROP_DIR, name);
	snprintf(link2, sizeof link2, "%s/hardlink", tmp);
	link(path, link2);
	is_int(pickup_run(sc->main, qdir), 0, "pickup: a file with two links is refused");
	ok(in_dir(QUEUE_CORRUPT, name), "pickup: ... it goes to corrupt/");

	snprintf(path, sizeof path, "%s/%s/evil..name", qdir, MAILDROP_DIR);
	write_text(path, good);
	chmod(path, 0744);
	is_int(pickup_run(sc->main, qdir), 0, "pickup: a foreign name is not read");
	ok(access(path, F_OK) < 0, "pickup: ... it is removed");

	snprintf(path, sizeof path, "%s/%s/0000000000000FFFFFFFFFFFFFFFF", qdir,
		 MAILDROP_DIR);
	mkdir(path, 0755);
	snprintf(link2, sizeof link2, "%s/inside", path);
	write_text(link2, "x");
	is_int(pickup_run(sc->main, qdir), 0, "pickup: a directory is not read");
	ok(access(link2, F_OK) == 0, "pickup: ... a directory with files is left alone");
	unlink(link2);
	pickup_run(sc->main, qdir);
	ok(access(path, F_OK) < 0, "pickup: ... an empty one is removed");
}

static void test_owner(void)
{
	char *rcpt[] = { "bob@example.test" };
	struct queue_envelope env;
	char id[QUEUE_ID_MAX + 4], name[64], path[400], want[512], *msg, *log;

	if (geteuid() != 0) {
		ok(1, "# SKIP the owner test needs root");
		return;
	}
	drop("Subject: x\n\nx\n", "root", NULL, rcpt, 1, name);
	snprintf(path, sizeof path, "%s/%s/%s", qdir, MAILDROP_DIR, name);
	if (chown(path, 65534, 65534) < 0)
		diag("chown: %s", strerror(errno));
	is_int(pickup_run(sc->main, qdir), 1, "pickup: a file of uid 65534 taken");
	msg = take_message(&env, id, sizeof id);
	ok(has(msg, "(sluice, from userid 65534)"),
	   "pickup: the user is the file's owner, whatever the file says");
	log = slurp(logpath, NULL);
	snprintf(want, sizeof want, "%s: uid=65534 from=<root@example.test>", id);
	ok(has(log, want), "pickup: logged %s", want);
	free(log);
	free(msg);
	queue_envelope_free(&env);
}

static void test_batches(void)
{
	char *rcpt[] = { "bob@example.test" };
	int i, first, second;

	for (i = 0; i < PICKUP_BATCH_MAX + 5; i++)
		drop("Subject: many\n\nx\n", "a", NULL, rcpt, 1, NULL);
	first = pickup_run(sc->main, qdir);
	second = pickup_run(sc->main, qdir);
	is_int(first, PICKUP_BATCH_MAX, "pickup: at most PICKUP_BATCH_MAX per call");
	is_int(second, 5, "pickup: the rest on the next call");
	is_int(count_files(QUEUE_INCOMING), PICKUP_BATCH_MAX + 5,
	       "pickup: every file queued once");
}

int main(void)
{
	setup();
	test_trigger();
	test_reasons();
	test_minimal();
	test_headers_kept();
	test_shapes();
	test_corrupt();
	test_untrusted();
	test_owner();
	test_batches();
	config_free(sc);
	if (getenv("SLUICE_KEEP_TMP") == NULL)
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
