/*
 * local_agent.c - the shell of the local and pipe delivery agents: a
 * child process started from the caller's event loop, whose result lines
 * come back over a pipe the loop watches.
 *
 * The child runs in its own process group, with default signal handling
 * (SIGPIPE ignored, so a command that stops reading gives EPIPE, not a
 * dead agent).  The parent never blocks: it reads the pipe when it is
 * readable, reaps the child with waitpid(WNOHANG) once the pipe ends
 * (retrying on a short timer until the child is gone), and at the time
 * limit kills the whole process group.  done() runs exactly once, from
 * the loop.
 *
 * SIGCHLD must not be ignored (SIG_IGN) in the caller: the children are
 * reaped here.  An ECHILD from waitpid is taken as "already reaped"; the
 * result lines (with their "E" end mark) still tell a finished child
 * from a crashed one.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "local_int.h"
#include "log.h"

#define AGENT_OUTPUT_MAX	(1024 * 1024)  /* result lines kept */
#define AGENT_REAP_USEC		20000          /* waitpid retry interval */

struct lagent {
	struct event_base *base;
	pid_t pid;
	int fd;
	struct event *rd, *timer, *reap;
	char *buf;
	size_t len, cap;
	bool timed_out;
	lagent_done_fn done;
	void *arg;
};

/* ---- in the child ---- */

static void child_signals(void)
{
	static const int dfl[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT,
				   SIGUSR1, SIGUSR2, SIGALRM, SIGXFSZ };
	sigset_t none;

	for (size_t i = 0; i < sizeof dfl / sizeof dfl[0]; i++)
		signal(dfl[i], SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static void __attribute__((noreturn))
child_main(int fd, lagent_child_fn fn, void *arg)
{
	setpgid(0, 0);
	child_signals();
	fn(arg, fd);
	_exit(0);
}

/* ---- in the parent ---- */

static void finish(struct lagent *a)
{
	if (a->rd)
		event_free(a->rd);
	if (a->timer)
		event_free(a->timer);
	if (a->reap)
		event_free(a->reap);
	if (a->fd >= 0)
		close(a->fd);
	a->done(a->arg, a->buf ? a->buf : "", a->len, a->timed_out);
	free(a->buf);
	free(a);
}

static void try_reap(struct lagent *a)
{
	struct timeval tv = { 0, AGENT_REAP_USEC };
	int status;
	pid_t r;

	while ((r = waitpid(a->pid, &status, WNOHANG)) < 0 && errno == EINTR)
		;
	if (r == 0) {
		evtimer_add(a->reap, &tv);
		return;
	}
	if (r > 0 && WIFSIGNALED(status) && !a->timed_out)
		msg_warn("delivery agent process %ld died with signal %d",
			 (long)a->pid, WTERMSIG(status));
	finish(a);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	try_reap(arg);
}

static void stop_reading(struct lagent *a)
{
	if (a->rd) {
		event_free(a->rd);
		a->rd = NULL;
	}
	if (a->fd >= 0) {
		close(a->fd);
		a->fd = -1;
	}
}

static void keep(struct lagent *a, const char *buf, size_t n)
{
	if (a->len + n > AGENT_OUTPUT_MAX)
		return;         /* a runaway child: its end mark is lost too */
	if (a->len + n > a->cap) {
		size_t cap = a->cap ? a->cap : 4096;

		while (cap < a->len + n)
			cap *= 2;
		if ((a->buf = realloc(a->buf, cap)) == NULL)
			msg_fatal("out of memory");
		a->cap = cap;
	}
	memcpy(a->buf + a->len, buf, n);
	a->len += n;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct lagent *a = arg;
	char buf[4096];
	ssize_t n;

	while ((n = read(a->fd, buf, sizeof buf)) > 0)
		keep(a, buf, (size_t)n);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	stop_reading(a);
	try_reap(a);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct lagent *a = arg;

	a->timed_out = true;
	kill(-a->pid, SIGKILL);
	kill(a->pid, SIGKILL);
	if (a->rd != NULL) {
		stop_reading(a);
		try_reap(a);
	}
}

static int watch(struct lagent *a, long long time_limit)
{
	struct timeval tv = { (time_t)time_limit, 0 };

	a->rd = event_new(a->base, a->fd, EV_READ | EV_PERSIST, on_read, a);
	a->reap = evtimer_new(a->base, on_reap, a);
	if (a->rd == NULL || a->reap == NULL || event_add(a->rd, NULL) < 0)
		return -1;
	if (time_limit > 0) {
		if ((a->timer = evtimer_new(a->base, on_timeout, a)) == NULL)
			return -1;
		evtimer_add(a->timer, &tv);
	}
	return 0;
}

int lagent_spawn(struct event_base *base, long long time_limit,
		 lagent_child_fn fn, void *child_arg,
		 lagent_done_fn done, void *arg)
{
	struct lagent *a;
	int p[2];

	if ((a = calloc(1, sizeof *a)) == NULL)
		return -1;
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(a);
		return -1;
	}
	if ((a->pid = fork()) < 0) {
		close(p[0]);
		close(p[1]);
		free(a);
		return -1;
	}
	if (a->pid == 0) {
		close(p[0]);
		child_main(p[1], fn, child_arg);
	}
	close(p[1]);
	setpgid(a->pid, a->pid);        /* either side may win the race */
	fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
	a->base = base;
	a->fd = p[0];
	a->done = done;
	a->arg = arg;
	if (watch(a, time_limit) < 0)
		msg_fatal("cannot watch a delivery agent process: out of memory");
	return 0;
}

/* ---- a callback from the loop ---- */

struct later {
	void (*fn)(void *);
	void *arg;
};

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	struct later l = *(struct later *)arg;

	free(arg);
	l.fn(l.arg);
}

void lagent_later(struct event_base *base, void (*fn)(void *), void *arg)
{
	struct timeval now = { 0, 0 };
	struct later *l = malloc(sizeof *l);

	if (l == NULL)
		msg_fatal("out of memory");
	l->fn = fn;
	l->arg = arg;
	if (event_base_once(base, -1, EV_TIMEOUT, on_later, l, &now) < 0)
		msg_fatal("cannot schedule a delivery completion");
}
