/*
 * local_command.c - a command fed the message on its standard input, for
 * local(8)'s "|command" destinations and for pipe(8).
 *
 * The command runs in its own process group with the privileges it is
 * given (taken for good before exec, never root), with only descriptors
 * 0, 1 and 2 open: the message on stdin, stdout and stderr into one pipe.
 * The message is written while the output is read (poll), so a command
 * that talks a lot cannot stall the delivery; the first LOCAL_OUTPUT_MAX
 * bytes of output are kept for the bounce text, the rest is read and
 * dropped.  A command that stops reading its input is not an error in
 * itself: its exit status decides.
 *
 * Results, as Postfix's pipe_command(): exit 0 delivered; the sysexits
 * codes by their class (EX_TEMPFAIL 75 and EX_OSERR 71 defer with 4.3.0,
 * EX_NOUSER 5.1.1, EX_NOPERM 5.7.0, ...), any other non-zero status
 * bounces with 5.3.0; a signal defers; at the time limit the process
 * group is killed and the delivery deferred ("Command time limit
 * exceeded").  Failure texts carry the command's output on one line.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "local_int.h"

struct sysexit {
	int code;
	int status;
	const char *dsn;
	const char *text;
};

static const struct sysexit sysexits[] = {
	{ EX_USAGE, 5, "5.3.0", "command line usage error" },
	{ EX_DATAERR, 5, "5.6.0", "data format error" },
	{ EX_NOINPUT, 5, "5.3.0", "cannot open input" },
	{ EX_NOUSER, 5, "5.1.1", "user unknown" },
	{ EX_NOHOST, 5, "5.1.2", "host name unknown" },
	{ EX_UNAVAILABLE, 5, "5.3.0", "service unavailable" },
	{ EX_SOFTWARE, 5, "5.3.0", "internal software error" },
	{ EX_OSERR, 4, "4.3.0", "system resource problem" },
	{ EX_OSFILE, 5, "5.3.0", "critical OS file missing" },
	{ EX_CANTCREAT, 5, "5.2.0", "can't create user output file" },
	{ EX_IOERR, 5, "5.3.0", "input/output error" },
	{ EX_TEMPFAIL, 4, "4.3.0", "temporary failure" },
	{ EX_PROTOCOL, 5, "5.5.0", "remote error in protocol" },
	{ EX_NOPERM, 5, "5.7.0", "permission denied" },
	{ EX_CONFIG, 5, "5.3.5", "local configuration error" },
};

struct run {
	const struct lcmd *c;
	pid_t pid;
	int in, out;                    /* our ends; -1 once closed */
	struct lcopy *copy;
	const char *pending;            /* message bytes not yet written */
	size_t npending;
	char output[LOCAL_OUTPUT_MAX + 1];
	size_t noutput;
	int read_errno;                 /* reading the queue file failed */
	struct timespec deadline;
};

void lcmd_close_from(int low)
{
	closefrom(low);
}

/* ---- the command's process ---- */

static void __attribute__((noreturn)) child(const struct lcmd *c, int in, int out)
{
	setpgid(0, 0);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(EX_OSERR);
	lcmd_close_from(3);
	signal(SIGPIPE, SIG_DFL);
	if (c->priv != NULL && lpriv_drop(c->priv) < 0) {
		dprintf(2, "cannot take the privileges of %s: %s\n",
			c->priv->name, strerror(errno));
		_exit(EX_OSERR);
	}
	if (chdir(c->cwd ? c->cwd : "/") < 0 && chdir("/") < 0)
		_exit(EX_OSERR);
	execve(c->argv[0], c->argv, c->envp);
	dprintf(2, "cannot execute %s: %s\n", c->argv[0], strerror(errno));
	_exit(errno == ENOENT || errno == EACCES ? EX_UNAVAILABLE : EX_OSERR);
}

static int start(struct run *r)
{
	int in[2], out[2];

	if (pipe2(in, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	if ((r->pid = fork()) < 0) {
		close(in[0]); close(in[1]); close(out[0]); close(out[1]);
		return -1;
	}
	if (r->pid == 0)
		child(r->c, in[0], out[1]);
	setpgid(r->pid, r->pid);
	close(in[0]);
	close(out[1]);
	r->in = in[1];
	r->out = out[0];
	fcntl(r->in, F_SETFL, O_NONBLOCK);
	fcntl(r->out, F_SETFL, O_NONBLOCK);
	return 0;
}

/* ---- feeding it, reading it ---- */

static long long ms_left(const struct run *r)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(r->deadline.tv_sec - now.tv_sec) * 1000
		+ (r->deadline.tv_nsec - now.tv_nsec) / 1000000;
}

static void close_in(struct run *r)
{
	if (r->in >= 0)
		close(r->in);
	r->in = -1;
}

static void feed(struct run *r)
{
	ssize_t n;
	int rc;

	while (r->in >= 0) {
		if (r->npending == 0) {
			rc = lcopy_next(r->copy, &r->pending, &r->npending);
			if (rc < 0)
				r->read_errno = errno ? errno : EIO;
			if (rc <= 0) {
				close_in(r);
				return;
			}
			continue;
		}
		if ((n = write(r->in, r->pending, r->npending)) < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				close_in(r);    /* EPIPE: it stopped reading */
			return;
		}
		r->pending += n;
		r->npending -= (size_t)n;
	}
}

static void drain(struct run *r)
{
	char buf[4096];
	ssize_t n;
	size_t keep;

	while ((n = read(r->out, buf, sizeof buf)) > 0) {
		keep = sizeof r->output - 1 - r->noutput;
		if (keep > (size_t)n)
			keep = (size_t)n;
		memcpy(r->output + r->noutput, buf, keep);
		r->noutput += keep;
	}
	if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		close(r->out);
		r->out = -1;
	}
}

static bool exited(struct run *r, int *status)
{
	return waitpid(r->pid, status, WNOHANG) == r->pid;
}

/* Feed and read until the output ends or the command exits.  Returns
 * false at the deadline; *status set when it exited meanwhile. */
static bool talk(struct run *r, int *status, bool *reaped)
{
	struct pollfd p[2];
	long long left;
	int n;

	while (r->in >= 0 || r->out >= 0) {
		if ((left = ms_left(r)) <= 0)
			return false;
		n = 0;
		if (r->in >= 0)
			p[n++] = (struct pollfd){ r->in, POLLOUT, 0 };
		if (r->out >= 0)
			p[n++] = (struct pollfd){ r->out, POLLIN, 0 };
		if (poll(p, (nfds_t)n, left > 1000 ? 1000 : (int)left) == 0) {
			if (!*reaped && exited(r, status)) {
				*reaped = true;
				close_in(r);
				if (r->out >= 0)
					drain(r);
				break;  /* a background child may hold stdout */
			}
			continue;
		}
		for (int i = 0; i < n; i++) {
			if (p[i].revents == 0)
				continue;
			if (p[i].fd == r->in)
				feed(r);
			else
				drain(r);
		}
		if (r->read_errno)
			return true;
	}
	return true;
}

static bool wait_exit(struct run *r, int *status)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };

	while (!exited(r, status)) {
		if (ms_left(r) <= 0)
			return false;
		nanosleep(&tick, NULL);
	}
	return true;
}

/* ---- the result ---- */

/* The output on one line, whitespace runs folded, ends trimmed. */
static const char *output_text(struct run *r)
{
	char *s = r->output, *d = r->output;
	bool space = false;

	r->output[r->noutput] = 0;
	for (; *s; s++) {
		if (isspace((unsigned char)*s) || (unsigned char)*s < ' ') {
			space = d != r->output;
			continue;
		}
		if (space)
			*d++ = ' ';
		space = false;
		*d++ = *s;
	}
	*d = 0;
	return r->output;
}

static void failed(struct run *r, struct local_result *res, int status,
		   const char *dsn, const char *why)
{
	const char *out = output_text(r);

	lres_set(res, status, dsn, "%s: \"%s\".%s%s", why, r->c->what,
		 *out ? " Command output: " : "", out);
}

static void exit_result(struct run *r, int status, struct local_result *res)
{
	char why[64];
	int code;

	if (WIFSIGNALED(status)) {
		snprintf(why, sizeof why, "Command died with signal %d",
			 WTERMSIG(status));
		failed(r, res, 4, "4.3.0", why);
		return;
	}
	if ((code = WEXITSTATUS(status)) == 0) {
		lres_set(res, 2, "2.0.0", "delivered to command: %s", r->c->what);
		return;
	}
	snprintf(why, sizeof why, "Command died with status %d", code);
	for (size_t i = 0; i < sizeof sysexits / sizeof sysexits[0]; i++)
		if (sysexits[i].code == code) {
			failed(r, res, sysexits[i].status, sysexits[i].dsn, why);
			return;
		}
	failed(r, res, 5, "5.3.0", why);
}

static void kill_it(struct run *r)
{
	int status;

	kill(-r->pid, SIGKILL);
	kill(r->pid, SIGKILL);
	while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
		;
}

void lcmd_run(const struct lcmd *c, struct local_result *res)
{
	struct run r = { .c = c, .in = -1, .out = -1 };
	bool reaped = false, in_time;
	int status = 0;

	clock_gettime(CLOCK_MONOTONIC, &r.deadline);
	r.deadline.tv_sec += c->time_limit > 0 ? c->time_limit : 1000;
	if (start(&r) < 0) {
		lres_set(res, 4, "4.3.0", "cannot run command \"%s\": %s",
			 c->what, strerror(errno));
		return;
	}
	r.copy = lcopy_new(c->msg, c->copy);
	in_time = talk(&r, &status, &reaped);
	if (in_time && !r.read_errno && !reaped)
		in_time = wait_exit(&r, &status);
	close_in(&r);
	if (r.out >= 0)
		close(r.out);
	lcopy_free(r.copy);
	if (!in_time || r.read_errno) {
		kill_it(&r);
		if (r.read_errno)
			lres_set(res, 4, "4.3.0", "error reading the message: %s",
				 strerror(r.read_errno));
		else
			failed(&r, res, 4, "4.3.0", "Command time limit exceeded");
		return;
	}
	exit_result(&r, status, res);
}
