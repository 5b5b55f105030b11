/*
 * t/unit/local.c - the local(8) and pipe(8) delivery agents, tested
 * (TAP) against real files, real commands and a real user.
 *
 * Works in a fresh temporary directory, removed at the end.  As root it
 * creates a user (useradd, home in the temporary directory; userdel at
 * the end, even after a failure) for the mailbox tests: mbox in a mail
 * spool only root may write (From_ line, Return-Path:, Delivered-To:,
 * ">From " quoting, the empty last line, the new mailbox given to the
 * user), appends, fcntl and dot-lock contention deferring,
 * mailbox_size_limit bouncing, maildir (tmp/ -> new/, owner), .forward
 * (mailbox plus a command run as the user), and "never as root".  As any
 * user: unknown users, the Delivered-To: loop, aliases (texthash) to
 * files, commands (exit 0, 75, 1 with output, the time limit),
 * :include:, recursion and loops, forwarding to a remote address as a new
 * queue file, and pipe(8) with its flags, macros, "{ braced }" arguments
 * and exit codes.
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
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "delivery.h"
#include "diag.h"
#include "queue.h"
#include "tap.h"
#include "local_fixture.h"

static char user[32];           /* the test user (root only) */
static struct passwd upw;       /* its entry */
static bool have_user;

/* ---- the test user ---- */

static void drop_user(void)
{
	char cmd[128];

	if (!have_user)
		return;
	snprintf(cmd, sizeof cmd, "userdel %s >/dev/null 2>&1", user);
	if (system(cmd) != 0)
		fprintf(stderr, "# userdel %s failed\n", user);
	have_user = false;
}

static void cleanup(void)
{
	drop_user();
	remove_tmp();
}

static void make_user(void)
{
	char cmd[600];
	struct passwd *pw;

	if (geteuid() != 0)
		return;
	snprintf(user, sizeof user, "sluicelt%ld", (long)getpid() % 100000);
	snprintf(cmd, sizeof cmd,
		 "useradd -M -U -d %s/home -s /bin/sh %s >/dev/null 2>&1",
		 tmp, user);
	if (system(cmd) != 0 || (pw = getpwnam(user)) == NULL) {
		diag("useradd failed: mailbox tests skipped");
		return;
	}
	have_user = true;
	upw = *pw;
	upw.pw_name = user;
	mkdir(path_of("%s/home", tmp), 0700);
	if (chown(path_of("%s/home", tmp), upw.pw_uid, upw.pw_gid) < 0)
		perror("chown home");
}

/* ---- configuration ---- */

/* A configuration directory with main.cf = the common part + extra. */
static struct config *conf(const char *name, const char *extra)
{
	char main_cf[4096];

	snprintf(main_cf, sizeof main_cf,
		 "queue_directory = %s\n"
		 "mail_spool_directory = %s/spool\n"
		 "alias_maps = texthash:%s/aliases\n"
		 "mydestination = localhost, example.test\n"
		 "recipient_delimiter = +\n"
		 "deliver_lock_attempts = 2\n"
		 "deliver_lock_delay = 1s\n"
		 "%s", qdir, tmp, tmp, extra);
	return load_conf(name, main_cf);
}

/* ---- messages ---- */

/* Queue a message with these header lines and body for the recipients. */
static void make_msg(struct msg *m, const char *sender, const char *headers,
		     const char *body, char **rcpts, int n)
{
	struct queue_envelope env = {
		.sender = (char *)sender,
		.client_name = "client.example",
		.client_addr = "192.0.2.1",
	};

	queue_msg(m, &env, headers, body, rcpts, n);
}

static const char *std_headers =
	"Received: from client.example\n"
	"From: <sender@remote.test>\n"
	"Subject: test\n";

static const char *std_body =
	"First line\n"
	"From the start of a line\n"
	">From already quoted\n"
	".a dot\n"
	"last line without a newline";

/* ---- running an agent ---- */

enum agent { LOCAL, PIPE };

static void run(enum agent a, struct config *cfg, struct msg *m,
		char **rcpts, int n, char **args, struct result *res)
{
	struct delivery_request req = {
		.transport = a == LOCAL ? "local" : "mypipe",
		.nexthop = "Example.Test", .cfg = cfg, .agent_args = args,
	};

	run_agent(a == LOCAL ? local_deliver : pipe_deliver, req, m, rcpts, n,
		  res);
}
/* Deliver a standard message to one recipient with the local agent. */
static void local1(struct config *cfg, const char *rcpt, const char *headers,
		   struct result *res)
{
	char *rcpts[] = { (char *)rcpt };
	struct msg m;

	make_msg(&m, "sender@remote.test", headers ? headers : std_headers,
		 std_body, rcpts, 1);
	run(LOCAL, cfg, &m, rcpts, 1, NULL, res);
	free_msg(&m);
}

static void result_free(struct result *res)
{
	delivery_clear(&res->req);
}

/* One delivery to rcpt, its result checked with is_result(), freed. */
static void local_is(struct config *cfg, const char *rcpt, const char *headers,
		     int status, const char *dsn, const char *text,
		     const char *name)
{
	struct result res;

	local1(cfg, rcpt, headers, &res);
	is_result(&res.r[0], status, dsn, text, name);
	result_free(&res);
}

/* ---- mailboxes (root only) ---- */

static void test_mbox(struct config *cfg)
{
	char *box = path_of("%s/spool/%s", tmp, user);
	char rcpt[100], *text;
	struct result res;
	struct stat st;

	snprintf(rcpt, sizeof rcpt, "%s@example.test", user);
	local1(cfg, rcpt, NULL, &res);
	is_result(&res.r[0], 2, "2.0.0", "delivered to mailbox", "mbox delivery");
	ok(strcmp(res.req.relay, "local") == 0, "relay is local");
	ok(res.req.t_conn.tv_sec > 0 && res.req.t_done.tv_sec > 0,
	   "t_conn and t_done are set");
	result_free(&res);
	text = slurp(box);
	ok(text != NULL, "the mailbox exists");
	if (text == NULL)
		return;
	ok(strncmp(text, "From sender@remote.test  ", 25) == 0,
	   "it starts with the From_ line");
	ok(strstr(text, "\nReturn-Path: <sender@remote.test>\n") != NULL,
	   "Return-Path: is added");
	ok(strstr(text, path_of("\nDelivered-To: %s@example.test\n", user)),
	   "Delivered-To: is added");
	ok(strstr(text, "\n>From the start of a line\n") != NULL,
	   "a body line starting with From is quoted");
	ok(strstr(text, "\n>From already quoted\n") != NULL,
	   "a \">From \" line is left as it is (mboxo, as Postfix)");
	ok(strstr(text, "\n.a dot\n") != NULL, "no dot stuffing in mbox");
	ok(strlen(text) > 29 && strcmp(text + strlen(text) - 29,
				       "last line without a newline\n\n") == 0,
	   "the message ends with a newline and an empty line");
	ok(stat(box, &st) == 0 && st.st_uid == upw.pw_uid
	   && (st.st_mode & 0777) == 0600,
	   "the new mailbox belongs to the user, mode 0600");
	ok(access(path_of("%s.lock", box), F_OK) < 0, "the dot-lock is gone");
	local1(cfg, rcpt, NULL, &res);
	result_free(&res);
	text = slurp(box);
	ok(text && strstr(strstr(text, "\n\nFrom sender@remote.test  ") ?
			  text : "", "\n\nFrom sender@remote.test  ") != NULL,
	   "a second message is appended after the empty line");
}

static void test_mbox_locks(struct config *cfg)
{
	char *box = path_of("%s/spool/%s", tmp, user);
	char *lock = path_of("%s/spool/%s.lock", tmp, user);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct result res;
	struct stat before, after;
	char rcpt[100];
	int fd;

	snprintf(rcpt, sizeof rcpt, "%s@example.test", user);
	stat(box, &before);
	fd = open(box, O_RDWR);
	ok(fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0, "the test holds an fcntl lock");
	local1(cfg, rcpt, NULL, &res);
	is_result(&res.r[0], 4, "4.2.0", "unable to lock for exclusive access",
		  "a locked mailbox defers");
	ok(res.secs >= 0.9, "after waiting deliver_lock_delay (%.1fs)", res.secs);
	result_free(&res);
	close(fd);
	write_file(lock, "", 0600);
	local_is(cfg, rcpt, NULL,
		 4, "4.2.0", "unable to create lock file",
		 "a dot-locked mailbox defers");
	ok(access(lock, F_OK) == 0, "someone else's dot-lock is left alone");
	unlink(lock);
	stat(box, &after);
	ok(after.st_size == before.st_size, "the mailbox did not change");
}

static void test_mbox_limits(void)
{
	struct config *cfg = conf("small", "mailbox_size_limit = 400\n"
				  "message_size_limit = 400\n");
	struct config *bad = conf("badlimit", "mailbox_size_limit = 400\n");
	struct config *unl = conf("unlimited", "mailbox_size_limit = 400\n"
				  "message_size_limit = 0\n");
	struct config *strict = conf("strict", "");
	char *box = path_of("%s/spool/%s", tmp, user);
	struct stat before, after;
	char rcpt[100];

	snprintf(rcpt, sizeof rcpt, "%s@example.test", user);
	stat(box, &before);
	local_is(cfg, rcpt, NULL,
		 5, "5.2.2", "mailbox full",
		 "over mailbox_size_limit bounces");
	stat(box, &after);
	ok(after.st_size == before.st_size, "and leaves the mailbox as it was");
	local_is(bad, rcpt, NULL,
		 4, "4.3.5", "mail system configuration error",
		 "mailbox_size_limit below message_size_limit defers (Postfix's configuration error)");
	local_is(unl, rcpt, NULL,
		 4, "4.3.5", "mail system configuration error",
		 "... and so does a limited mailbox with message_size_limit = 0");
	stat(box, &after);
	ok(after.st_size == before.st_size, "... leaving the mailbox alone");
	if (chown(box, 0, 0) == 0) {
		local_is(strict, rcpt, NULL,
			 4, "4.2.0", "strict_mailbox_ownership",
			 "a mailbox owned by someone else defers");
		chown(box, upw.pw_uid, upw.pw_gid);
	}
}

static void test_maildir(void)
{
	struct config *cfg = conf("maildir", "home_mailbox = Maildir/\n");
	char *newdir = path_of("%s/home/Maildir/new", tmp);
	char rcpt[100], file[900], *text = NULL;
	struct dirent *e;
	struct stat st;
	int n = 0;
	DIR *dir;

	snprintf(rcpt, sizeof rcpt, "%s+ext@Example.Test", user);
	local_is(cfg, rcpt, NULL,
		 2, "2.0.0", "delivered to maildir", "maildir delivery");
	if ((dir = opendir(newdir)) != NULL) {
		while ((e = readdir(dir)) != NULL)
			if (e->d_name[0] != '.') {
				n++;
				snprintf(file, sizeof file, "%s/%s", newdir,
					 e->d_name);
			}
		closedir(dir);
	}
	ok(n == 1, "one file in new/");
	if (n == 1)
		text = slurp(file);
	ok(text && strncmp(text, "Return-Path: <sender@remote.test>\n", 34) == 0,
	   "it starts with Return-Path:");
	ok(text && strstr(text, path_of("Delivered-To: %s+ext@example.test\n",
					 user)), "Delivered-To: the address, in lower case");
	ok(text && strstr(text, "\nFrom the start of a line\n") != NULL,
	   "no From quoting in maildir");
	ok(n == 1 && stat(file, &st) == 0 && st.st_uid == upw.pw_uid,
	   "the file belongs to the user");
	ok(stat(path_of("%s/home/Maildir/tmp", tmp), &st) == 0
	   && st.st_uid == upw.pw_uid && (st.st_mode & 0777) == 0700,
	   "tmp/ was made by the user, mode 0700");
	ok(rmdir(path_of("%s/home/Maildir/tmp", tmp)) == 0, "tmp/ is empty");
}

static void test_forward_file(struct config *cfg)
{
	char *fwd = path_of("%s/home/.forward", tmp);
	char *out = path_of("%s/out/fwd.out", tmp);
	char text[600], rcpt[100];
	struct stat st;

	snprintf(text, sizeof text, "# a comment\n\\%s, \"|cat > %s\"\n", user,
		 out);
	write_file(fwd, text, 0644);
	chown(fwd, upw.pw_uid, upw.pw_gid);
	snprintf(rcpt, sizeof rcpt, "%s@example.test", user);
	local_is(cfg, rcpt, NULL,
		 2, "2.0.0", "2 destinations",
		 ".forward: mailbox and command");
	ok(stat(out, &st) == 0 && st.st_uid == upw.pw_uid,
	   "the .forward command ran as the user");
	ok(slurp(out) && strstr(slurp(out), "Subject: test\n"),
	   "and got the message");
	unlink(fwd);
}

/* ---- any user ---- */

static void test_unknown(struct config *cfg)
{

	local_is(cfg, "nosuchuser@example.test", NULL,
		 5, "5.1.1", "unknown user: \"nosuchuser\"",
		 "an unknown user bounces");
}

static void test_loop(struct config *cfg)
{
	char headers[400];

	snprintf(headers, sizeof headers,
		 "Delivered-To: Someone@Example.Test\n%s", std_headers);
	local_is(cfg, "someone@example.test", headers,
		 5, "5.4.6", "mail forwarding loop for someone@example.test",
		 "a message with our Delivered-To: bounces");
}

static void test_alias_file(struct config *cfg)
{
	char *out = path_of("%s/out/file.mbox", tmp);
	char *text;

	local_is(cfg, "tofile@example.test", NULL,
		 2, "2.0.0", "delivered to file:", "alias to /file");
	text = slurp(out);
	ok(text && strncmp(text, "From sender@remote.test  ", 25) == 0,
	   "the file gets an mbox message");
	ok(text && strstr(text, "Delivered-To: tofile@example.test\n"),
	   "with Delivered-To: (prepend_delivered_header file)");
	if (geteuid() == 0) {
		struct stat st;
		struct passwd *pw = getpwnam("nobody");

		ok(stat(out, &st) == 0 && pw && st.st_uid == pw->pw_uid,
		   "written as default_privs (nobody), not root");
	}
}

static void test_alias_commands(struct config *cfg)
{
	char *out = path_of("%s/out/cmd.out", tmp);
	struct result res;
	char *text;

	local_is(cfg, "tocmd@example.test", NULL,
		 2, "2.0.0", "delivered to command: cat >",
		 "alias to |command");
	text = slurp(out);
	ok(text && strncmp(text, "From sender@remote.test  ", 25) == 0,
	   "the command gets the From_ line");
	ok(text && strstr(text, "Delivered-To: tocmd@example.test\n"),
	   "and Delivered-To:");
	ok(text && strstr(text, "\nFrom the start of a line\n"),
	   "and the message unquoted");
	local_is(cfg, "tempfail@example.test", NULL,
		 4, "4.3.0", "Command died with status 75",
		 "exit 75 defers");
	local1(cfg, "fails@example.test", NULL, &res);
	is_result(&res.r[0], 5, "5.3.0",
		  "Command died with status 1: \"echo no such mailbox here; exit 1\". Command output: no such mailbox here",
		  "exit 1 bounces with the output");
	result_free(&res);
	local_is(cfg, "nouser@example.test", NULL,
		 5, "5.1.1", "Command died with status 67",
		 "exit 67 (EX_NOUSER) bounces with 5.1.1");
}

static void test_time_limit(void)
{
	struct config *cfg = conf("quick", "command_time_limit = 2s\n");
	struct result res;

	local1(cfg, "slow@example.test", NULL, &res);
	is_result(&res.r[0], 4, "4.3.0", "Command time limit exceeded",
		  "a command over command_time_limit is killed and deferred");
	ok(res.secs < 10, "within the limit (%.1fs)", res.secs);
	result_free(&res);
}

/* The one new file in incoming/ other than `skip`; its envelope. */
static bool find_forwarded(const char *skip, struct queue_envelope *env,
			   char **text)
{
	char *dir = path_of("%s/incoming", qdir), err[256];
	struct dirent *e;
	bool found = false;
	DIR *d = opendir(dir);
	int fd;

	while (d && !found && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, skip) == 0)
			continue;
		char *p = path_of("%s/%s", dir, e->d_name);

		if ((fd = open(p, O_RDONLY)) < 0)
			continue;
		memset(env, 0, sizeof *env);
		found = queue_read_envelope_fd(fd, env, err, sizeof err) == 0;
		*text = slurp(p);
		close(fd);
		unlink(p);
	}
	if (d)
		closedir(d);
	return found;
}

static void test_alias_expansion(struct config *cfg)
{
	char *rcpts[] = { "list@example.test" };
	struct queue_envelope env;
	struct result res;
	struct msg m;
	char *text = NULL;

	make_msg(&m, "sender@remote.test", std_headers, std_body, rcpts, 1);
	run(LOCAL, cfg, &m, rcpts, 1, NULL, &res);
	is_result(&res.r[0], 2, "2.0.0", "3 destinations",
		  "an alias to a file, a nested alias and a remote address");
	ok(res.r[0].text && strstr(res.r[0].text, "forwarded as "),
	   "the remote address is forwarded");
	result_free(&res);
	ok(find_forwarded(m.id, &env, &text), "a new message is queued");
	ok(env.nrcpt == 1 && strcmp(env.rcpt[0].addr, "remote@elsewhere.test") == 0,
	   "for the remote address");
	ok(env.nrcpt == 1 && env.rcpt[0].notify == DSN_NOTIFY_FAILURE
	   && env.rcpt[0].orcpt
	   && strcmp(env.rcpt[0].orcpt, "rfc822;list@example.test") == 0,
	   "with the original NOTIFY and ORCPT");
	ok(strcmp(env.sender, "sender@remote.test") == 0, "and the sender");
	ok(text && strstr(text, "Delivered-To: list@example.test\nReceived:"),
	   "with Delivered-To: in front of the message");
	queue_envelope_free(&env);
	free_msg(&m);
	ok(slurp(path_of("%s/out/nested.mbox", tmp)) != NULL,
	   "the nested alias delivered to its file");

	local_is(cfg, "loop1@example.test", NULL,
		 5, "5.4.6", "mail forwarding loop",
		 "aliases that only name each other bounce");
	local_is(cfg, "inc@example.test", NULL,
		 5, "5.7.1", "mail to file is restricted",
		 "a /file in an :include: file needs allow_mail_to_files include");
	ok(slurp(path_of("%s/out/inc.mbox", tmp)) == NULL,
	   "nothing was delivered");
	local_is(conf("incfiles", "allow_mail_to_files = alias, forward, include\n"),
		 "inc@example.test", NULL,
		 2, "2.0.0", "2 destinations",
		 ":include: file with an alias and a /file");
	ok(slurp(path_of("%s/out/inc.mbox", tmp)) != NULL,
	   "the included file destination was delivered");
	ok(slurp(path_of("%s/out/nested.mbox", tmp))
	   && strstr(slurp(path_of("%s/out/nested.mbox", tmp)),
		     "Delivered-To: inc@example.test\n"),
	   "the alias named in it too, with Delivered-To: the recipient");
	local_is(cfg, "nocmd@example.test", NULL,
		 5, "5.7.1", "mail to command is restricted",
		 "a command in an :include: file needs allow_mail_to_commands include");
}

static void test_extension_alias(struct config *cfg)
{

	unlink(path_of("%s/out/file.mbox", tmp));
	local_is(cfg, "tofile+foo@example.test", NULL,
		 2, "2.0.0", "delivered to file:",
		 "user+ext falls back to the alias of user");
	ok(slurp(path_of("%s/out/file.mbox", tmp))
	   && strstr(slurp(path_of("%s/out/file.mbox", tmp)),
		     "Delivered-To: tofile+foo@example.test"),
	   "Delivered-To: keeps the extension");
}

/* ---- pipe(8) ---- */

static void pipe_h(struct config *cfg, const char *headers, char **args,
		   char **rcpts, int n, struct result *res)
{
	struct msg m;

	make_msg(&m, "", headers, std_body, rcpts, n);
	run(PIPE, cfg, &m, rcpts, n, args, res);
	free_msg(&m);
}

static void pipe1(struct config *cfg, char **args, char **rcpts, int n,
		  struct result *res)
{
	struct msg m;

	make_msg(&m, "", std_headers, std_body, rcpts, n);
	run(PIPE, cfg, &m, rcpts, n, args, res);
	free_msg(&m);
}

static void test_pipe(struct config *cfg, const char *as)
{
	char *out = path_of("%s/out/pipe.out", tmp);
	char *argsout = path_of("%s/out/pipe.args", tmp);
	char script[600], userarg[64];
	char *rcpts[] = { "One+X@Example.Test", "two@example.test" };
	struct result res;
	char *text;

	snprintf(userarg, sizeof userarg, "user=%s", as);
	snprintf(script, sizeof script,
		 "cat > %s; echo \"$*\" > %s; id -u >> %s", out, argsout,
		 argsout);
	char *args[] = { "flags=FRDhu.", userarg, "argv=/bin/sh", "-c", script,
			 "sh", "${sender}", "${nexthop}", "${recipient}",
			 "<${user}|${extension}|${domain}>", NULL };

	pipe1(cfg, args, rcpts, 2, &res);
	is_result(&res.r[0], 2, "2.0.0", "delivered via mypipe service",
		  "pipe delivers");
	is_result(&res.r[1], 2, "2.0.0", "delivered via mypipe service",
		  "every recipient");
	ok(strcmp(res.req.relay, "mypipe") == 0, "relay is the transport name");
	result_free(&res);
	text = slurp(out);
	ok(text && strncmp(text, "From MAILER-DAEMON  ", 20) == 0,
	   "flag F: From_ line (null sender)");
	ok(text && strstr(text, "\nReturn-Path: <>\n"), "flag R: Return-Path:");
	ok(text && strstr(text, "\nDelivered-To: one+x@example.test\n"
			  "Delivered-To: two@example.test\n"),
	   "flag D: Delivered-To: for each recipient");
	ok(text && strstr(text, "\n..a dot\n"), "flag .: dot stuffing");
	text = slurp(argsout);
	const char *want = "MAILER-DAEMON example.test one+x@Example.Test "
		"two@example.test <one|x|example.test> <two||example.test>\n";
	ok(text && strncmp(text, want, strlen(want)) == 0,
	   "macros, per recipient arguments repeated, flags h and u");
	if (text && strncmp(text, want, strlen(want)) != 0)
		diag("got: %s", text);
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam(as);

		ok(pw && text && atol(strchr(text, '\n') + 1) == (long)pw->pw_uid,
		   "the command ran as user= (%s)", as);
	}

	char *tempfail[] = { userarg, "argv=/bin/sh", "-c", "exit 75", NULL };
	pipe1(cfg, tempfail, rcpts, 1, &res);
	is_result(&res.r[0], 4, "4.3.0", "Command died with status 75",
		  "pipe: exit 75 defers");
	result_free(&res);

	char *fail[] = { userarg, "argv=/bin/sh", "-c",
			 "echo 'mailbox unavailable'; echo second line >&2; exit 1",
			 NULL };
	pipe1(cfg, fail, rcpts, 1, &res);
	is_result(&res.r[0], 5, "5.3.0",
		  "Command died with status 1: \"/bin/sh\". Command output: mailbox unavailable second line",
		  "pipe: exit 1 bounces with the output on one line");
	result_free(&res);

	char *missing[] = { "argv=/bin/true", NULL };
	pipe1(cfg, missing, rcpts, 1, &res);
	is_result(&res.r[0], 4, "4.3.5", "user= is required",
		  "pipe: no user= defers with 4.3.5");
	result_free(&res);

	char *rootuser[] = { "user=root", "argv=/bin/true", NULL };
	pipe1(cfg, rootuser, rcpts, 1, &res);
	is_result(&res.r[0], 4, "4.3.5", "must not be root",
		  "pipe: user=root is refused");
	result_free(&res);

	char *loop[] = { "flags=D", userarg, "argv=/bin/sh", "-c",
			 "echo \"$*\" > $0", argsout, "${recipient}", NULL };
	pipe_h(cfg, "Delivered-To: two@example.test\nSubject: x\n", loop,
	       rcpts, 2, &res);
	is_result(&res.r[0], 2, "2.0.0", "delivered via mypipe service",
		  "pipe flag D: a recipient not in Delivered-To: is delivered");
	is_result(&res.r[1], 5, "5.4.6", "mail forwarding loop for two@example.test",
		  "one that is bounces");
	result_free(&res);
	ok(slurp(argsout) && strcmp(slurp(argsout), "One+X@Example.Test\n") == 0,
	   "and is not given to the command");

	char *braces[] = { userarg, "argv=/bin/sh", "-c",
			   "{ echo \"$1\" > $0 }", argsout, "${recipient}", NULL };
	pipe1(cfg, braces, rcpts, 1, &res);
	is_result(&res.r[0], 2, "2.0.0", "delivered via mypipe service",
		  "pipe: \"{ an argument with blanks }\"");
	result_free(&res);
	ok(slurp(argsout) && strcmp(slurp(argsout), "One+X@Example.Test\n") == 0,
	   "is one argument, without the braces");

	char *badmacro[] = { userarg, "argv=/bin/echo", "${nosuch}", NULL };
	pipe1(cfg, badmacro, rcpts, 1, &res);
	is_result(&res.r[0], 4, "4.3.5", "unknown macro", "pipe: unknown macro");
	result_free(&res);
}

static void test_pipe_time_limit(const char *as)
{
	struct config *cfg = conf("pipequick", "command_time_limit = 1s\n");
	char *rcpts[] = { "one@example.test" };
	char userarg[64];
	struct result res;

	snprintf(userarg, sizeof userarg, "user=%s", as);
	char *slow[] = { userarg, "argv=/bin/sleep", "30", NULL };
	pipe1(cfg, slow, rcpts, 1, &res);
	is_result(&res.r[0], 4, "4.3.0", "Command time limit exceeded",
		  "pipe: the time limit kills and defers");
	ok(res.secs < 10, "within the limit (%.1fs)", res.secs);
	result_free(&res);
}

/* ---- set-up ---- */

static void write_aliases(void)
{
	char text[4096];

	snprintf(text, sizeof text,
		 "tofile: %s/out/file.mbox\n"
		 "tocmd: |cat > %s/out/cmd.out\n"
		 "tempfail: \"|exit 75\"\n"
		 "fails: |echo no such mailbox here; exit 1\n"
		 "nouser: |exit 67\n"
		 "slow: |sleep 30\n"
		 "list: %s/out/list.mbox, nested, remote@elsewhere.test\n"
		 "nested: %s/out/nested.mbox\n"
		 "loop1: loop2\n"
		 "loop2: loop1\n"
		 "inc: :include:%s/include\n"
		 "nocmd: :include:%s/include-cmd\n",
		 tmp, tmp, tmp, tmp, tmp, tmp);
	write_file(path_of("%s/aliases", tmp), text, 0644);
	write_file(path_of("%s/include", tmp),
		   path_of("# members\nnested\n%s/out/inc.mbox\n", tmp), 0644);
	write_file(path_of("%s/include-cmd", tmp), "|cat\n", 0644);
}

static void setup(void)
{
	fixture_dirs("sluice-local", cleanup);
	mkdir(path_of("%s/spool", tmp), 0755);  /* only root may write */
	mkdir(path_of("%s/out", tmp), 01777);
	chmod(path_of("%s/out", tmp), 01777);
	write_aliases();
	make_user();
	base = event_base_new();
}

int main(void)
{
	struct config *cfg;
	const char *as;

	signal(SIGPIPE, SIG_IGN);
	setup();
	cfg = conf("main", "");
	if (have_user) {
		test_mbox(cfg);
		test_mbox_locks(cfg);
		test_mbox_limits();
		test_maildir();
		test_forward_file(cfg);
	} else {
		diag("not root: mailbox tests skipped");
	}
	test_unknown(cfg);
	test_loop(cfg);
	test_alias_file(cfg);
	test_alias_commands(cfg);
	test_time_limit();
	test_alias_expansion(cfg);
	test_extension_alias(cfg);
	as = geteuid() == 0 ? "nobody" : getpwuid(geteuid())->pw_name;
	test_pipe(cfg, as);
	test_pipe_time_limit(as);
	event_base_free(base);
	return tap_done();
}
