/*
 * t/unit/virtual.c - the virtual(8) delivery agent, tested (TAP) against
 * real maildirs and mbox files under a virtual_mailbox_base.
 *
 * Works in a fresh temporary directory, removed at the end.  As root the
 * mailboxes belong to a uid and gid that have no account (as virtual
 * mailbox owners usually have none); otherwise to the user running the
 * test.  Checked: the mailbox path from virtual_mailbox_maps (maildir for
 * a trailing "/", mbox otherwise, an @domain catch-all), the files'
 * owner and mode, what is prepended (From_ line, ">From " quoting,
 * Return-Path:, X-Original-To:, Delivered-To:), appending, one request
 * with several recipients each getting its own result, unknown users
 * bouncing, the Delivered-To: loop, virtual_uid_maps / virtual_gid_maps
 * without an entry, with a uid below virtual_minimum_uid or uid 0
 * deferring, virtual_mailbox_limit (and not mailbox_size_limit),
 * virtual_mailbox_lock (and not mailbox_delivery_lock), and done() never
 * called from inside virtual_deliver().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <signal.h>
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
#include "local_fixture.h"
#include "dir_fixture.h"

#define TEST_UID	54321   /* as root: an id without an account */

static char base_dir[300];      /* virtual_mailbox_base */
static uid_t vuid;
static gid_t vgid;

/* ---- files ---- */

/* The only file in dir (NULL unless there is exactly one). */
static char *only_file(const char *dir)
{
	static char file[900];

	return dir_entries(dir, file, sizeof file) == 1 ? file : NULL;
}

/* ---- configuration ---- */

/* A configuration directory with main.cf = the common part + extra. */
static struct config *conf(const char *name, const char *extra)
{
	char main_cf[4096];

	snprintf(main_cf, sizeof main_cf,
		 "queue_directory = %s\n"
		 "virtual_mailbox_base = %s\n"
		 "virtual_mailbox_maps = texthash:%s/vmailbox\n"
		 "virtual_uid_maps = texthash:%s/vuids\n"
		 "virtual_gid_maps = static:%lu\n"
		 "mydestination = localhost\n"
		 "recipient_delimiter = +\n"
		 "deliver_lock_attempts = 2\n"
		 "deliver_lock_delay = 1s\n"
		 "%s", qdir, base_dir, tmp, tmp, (unsigned long)vgid, extra);
	return load_conf(name, main_cf);
}

static void write_tables(void)
{
	write_file(path_of("%s/vmailbox", tmp),
		   "bob@virt.test      virt.test/bob/\n"
		   "ann@virt.test      virt.test/ann\n"
		   "low@virt.test      virt.test/low/\n"
		   "root@virt.test     virt.test/root/\n"
		   "nouid@other.test   other.test/nouid/\n"
		   "@catch.test        catch.test/all/\n", 0644);
	write_file(path_of("%s/vuids", tmp),
		   path_of("@virt.test %lu\n"
			   "@catch.test %lu\n"
			   "low@virt.test 50\n"
			   "root@virt.test 0\n",
			   (unsigned long)vuid, (unsigned long)vuid), 0644);
}

/* ---- messages ---- */

static const char *std_headers =
	"From: <sender@remote.test>\n"
	"Subject: virtual test\n";

static const char *std_body =
	"First line\n"
	"From the start of a line\n"
	">From already quoted\n"
	"last line\n";

/* ---- running the agent ---- */

static void run(struct config *cfg, const char *headers, char **rcpts, int n,
		struct result *res)
{
	struct queue_envelope env = { .sender = "sender@remote.test" };
	struct delivery_request req = {
		.transport = "virtual", .nexthop = "virt.test", .cfg = cfg,
	};
	struct msg m;

	queue_msg(&m, &env, headers ? headers : std_headers, std_body, rcpts, n);
	run_agent(virtual_deliver, req, &m, rcpts, n, res);
	free_msg(&m);
}
static void run1(struct config *cfg, const char *rcpt, const char *headers,
		 struct result *res)
{
	char *rcpts[] = { (char *)rcpt };

	run(cfg, headers, rcpts, 1, res);
}

/* One delivery to rcpt, its result checked with is_result(), cleared. */
static void run_is(struct config *cfg, const char *rcpt, const char *headers,
		   int status, const char *dsn, const char *text,
		   const char *name)
{
	struct result res;

	run1(cfg, rcpt, headers, &res);
	is_result(&res.r[0], status, dsn, text, name);
	delivery_clear(&res.req);
}


/* ---- tests ---- */

static void test_maildir(struct config *cfg)
{
	char *file, *text;
	struct result res;
	struct stat st;

	run1(cfg, "Bob@Virt.Test", NULL, &res);
	is_result(&res.r[0], 2, "2.0.0", "delivered to maildir",
		  "maildir delivery (a trailing / in virtual_mailbox_maps)");
	ok(strcmp(res.req.relay, "virtual") == 0, "relay is virtual");
	ok(res.req.t_conn.tv_sec > 0 && res.req.t_done.tv_sec > 0,
	   "t_conn and t_done are set");
	delivery_clear(&res.req);
	file = only_file(path_of("%s/virt.test/bob/new", base_dir));
	ok(file != NULL, "one file in virt.test/bob/new/");
	text = file ? slurp(file) : NULL;
	ok(text && strncmp(text, "Return-Path: <sender@remote.test>\n", 34) == 0,
	   "it starts with Return-Path:");
	ok(text && strstr(text, "\nDelivered-To: bob@virt.test\n"),
	   "Delivered-To: the recipient, in lower case");
	ok(text && strstr(text, "\nX-Original-To: Bob@Virt.Test\n"),
	   "X-Original-To: the recipient as given");
	ok(text && strstr(text, "\nFrom the start of a line\n"),
	   "no From quoting in maildir");
	ok(file && stat(file, &st) == 0 && st.st_uid == vuid
	   && st.st_gid == vgid && (st.st_mode & 0777) == 0600,
	   "the file belongs to the virtual_uid_maps / virtual_gid_maps ids");
	ok(stat(path_of("%s/virt.test/bob/cur", base_dir), &st) == 0
	   && st.st_uid == vuid && (st.st_mode & 0777) == 0700,
	   "cur/ was made by them, mode 0700");
}

static void test_mbox(struct config *cfg)
{
	char *box = path_of("%s/virt.test/ann", base_dir);
	struct result res;
	struct stat st;
	char *text;

	run_is(cfg, "ann@virt.test", NULL,
	       2, "2.0.0", "delivered to mailbox",
	       "mbox delivery (no trailing /)");
	text = slurp(box);
	ok(text && strncmp(text, "From sender@remote.test  ", 25) == 0,
	   "it starts with the From_ line");
	ok(text && strstr(text, "\nReturn-Path: <sender@remote.test>\n"),
	   "Return-Path: is added");
	ok(text && strstr(text, "\nDelivered-To: ann@virt.test\n"),
	   "Delivered-To: is added");
	ok(text && strstr(text, "\n>From the start of a line\n"),
	   "a body line starting with From is quoted");
	ok(text && strstr(text, "\n>From already quoted\n"),
	   "a \">From \" line is left as it is");
	ok(text && strlen(text) > 11
	   && strcmp(text + strlen(text) - 11, "last line\n\n") == 0,
	   "the message ends with an empty line");
	ok(stat(box, &st) == 0 && st.st_uid == vuid
	   && (st.st_mode & 0777) == 0600,
	   "the new mailbox belongs to the virtual uid, mode 0600");
	ok(access(path_of("%s.lock", box), F_OK) < 0, "the dot-lock is gone");
	run1(cfg, "ann@virt.test", NULL, &res);
	delivery_clear(&res.req);
	text = slurp(box);
	ok(text && strstr(text, "\n\nFrom sender@remote.test  "),
	   "a second message is appended");
}

static void test_several(struct config *cfg)
{
	char *rcpts[] = { "who@catch.test", "nobody@virt.test",
			  "nouid@other.test", "ann@virt.test" };
	struct result res;

	run(cfg, NULL, rcpts, 4, &res);
	is_result(&res.r[0], 2, "2.0.0", "delivered to maildir",
		  "an @domain entry catches the domain");
	is_result(&res.r[1], 5, "5.1.1", "User unknown in virtual mailbox table",
		  "an address without a mailbox bounces");
	is_result(&res.r[2], 4, "4.3.5", "mail system configuration error",
		  "an address missing from virtual_uid_maps defers");
	is_result(&res.r[3], 2, "2.0.0", "delivered to mailbox",
		  "the last recipient of the request is delivered too");
	delivery_clear(&res.req);
	ok(only_file(path_of("%s/catch.test/all/new", base_dir)) != NULL,
	   "the catch-all maildir has the message");
}

static void test_refused(struct config *cfg)
{
	struct config *zero = conf("zero", "virtual_minimum_uid = 0\n");
	char headers[400];
	struct stat st;

	run_is(cfg, "low@virt.test", NULL,
	       4, "4.3.5", "mail system configuration error",
	       "a uid below virtual_minimum_uid defers");
	run_is(zero, "root@virt.test", NULL,
	       4, "4.3.5", "mail system configuration error",
	       "uid 0 defers even with virtual_minimum_uid = 0");
	ok(stat(path_of("%s/virt.test/root", base_dir), &st) < 0,
	   "and nothing was written");
	snprintf(headers, sizeof headers, "Delivered-To: BOB@virt.test\n%s",
		 std_headers);
	run_is(cfg, "bob@virt.test", headers,
	       5, "5.4.6", "mail forwarding loop for bob@virt.test",
	       "a message with the recipient's Delivered-To: bounces");
}

static void test_limits(void)
{
	struct config *small = conf("small", "virtual_mailbox_limit = 100\n"
				    "message_size_limit = 100\n");
	struct config *local = conf("local", "mailbox_size_limit = 100\n"
				    "message_size_limit = 100\n");
	struct config *bad = conf("badlimit", "virtual_mailbox_limit = 100\n");
	char *box = path_of("%s/virt.test/ann", base_dir);
	struct stat before, after;

	stat(box, &before);
	run_is(small, "ann@virt.test", NULL,
	       5, "5.2.2", "virtual_mailbox_limit",
	       "over virtual_mailbox_limit an mbox bounces");
	stat(box, &after);
	ok(after.st_size == before.st_size, "and is left as it was");
	run_is(small, "bob@virt.test", NULL,
	       5, "5.2.2", "virtual_mailbox_limit",
	       "a message over virtual_mailbox_limit bounces from a maildir");
	run_is(bad, "bob@virt.test", NULL,
	       4, "4.3.5", "mail system configuration error",
	       "virtual_mailbox_limit below message_size_limit defers (Postfix's configuration error)");
	run_is(local, "ann@virt.test", NULL,
	       2, "2.0.0", "delivered to mailbox",
	       "mailbox_size_limit (local's) does not apply");
}

static void test_locks(void)
{
	struct config *fcntl_only = conf("fcntl", "virtual_mailbox_lock = fcntl\n"
					 "mailbox_delivery_lock = dotlock\n");
	struct config *dot_only = conf("dot", "virtual_mailbox_lock = dotlock\n"
				       "mailbox_delivery_lock = fcntl\n");
	char *box = path_of("%s/virt.test/ann", base_dir);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct result res;
	int fd = open(box, O_RDWR);

	ok(fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0, "the test holds an fcntl lock");
	run1(fcntl_only, "ann@virt.test", NULL, &res);
	is_result(&res.r[0], 4, "4.2.0", "unable to lock for exclusive access",
		  "virtual_mailbox_lock = fcntl: a locked mailbox defers");
	ok(res.secs >= 0.9, "after waiting deliver_lock_delay (%.1fs)", res.secs);
	delivery_clear(&res.req);
	run_is(dot_only, "ann@virt.test", NULL,
	       2, "2.0.0", "delivered to mailbox",
	       "virtual_mailbox_lock = dotlock ignores the fcntl lock");
	close(fd);
	write_file(path_of("%s.lock", box), "", 0600);
	run_is(dot_only, "ann@virt.test", NULL,
	       4, "4.2.0", "unable to create lock file",
	       "and defers on someone else's dot-lock");
	unlink(path_of("%s.lock", box));
}

/* ---- set-up ---- */

static void setup(void)
{
	fixture_dirs("sluice-virtual", remove_tmp);
	snprintf(base_dir, sizeof base_dir, "%s/vmail", tmp);
	vuid = geteuid() == 0 ? TEST_UID : geteuid();
	vgid = geteuid() == 0 ? TEST_UID : getegid();
	if (geteuid() == 0 && getpwuid(TEST_UID) != NULL)
		diag("uid %d has an account; the test goes on", TEST_UID);
	/* the base belongs to the virtual owner, as Postfix's docs say */
	mkdir(base_dir, 0755);
	mkdir(path_of("%s/virt.test", base_dir), 0755);
	if (chown(base_dir, vuid, vgid) < 0
	    || chown(path_of("%s/virt.test", base_dir), vuid, vgid) < 0) {
		printf("Bail out! chown: %s\n", strerror(errno));
		exit(2);
	}
	write_tables();
	base = event_base_new();
}

int main(void)
{
	struct config *cfg;

	signal(SIGPIPE, SIG_IGN);
	setup();
	if (geteuid() != 0 && geteuid() < 100) {
		printf("1..0 # SKIP uid %d is below virtual_minimum_uid\n",
		       (int)geteuid());
		return 0;
	}
	cfg = conf("main", "");
	test_maildir(cfg);
	test_mbox(cfg);
	test_several(cfg);
	test_refused(cfg);
	test_limits();
	test_locks();
	event_base_free(base);
	return tap_done();
}
