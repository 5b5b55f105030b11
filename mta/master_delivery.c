/*
 * master_delivery.c - the delivery process, sluice/delivery (master.h,
 * delivery_server.h): its socket, and forking, supervising, replacing
 * and stopping it.
 *
 * It runs only when the master runs as root and master.cf has a qmgr:
 * then the queue manager drops root for good, and the agents that need
 * root (local, virtual, pipe) run in this process instead, as Postfix's
 * local(8) and pipe(8) run apart from its qmgr.  Started as anybody
 * else, there is no root to keep apart, and the queue manager runs them
 * itself.
 *
 * The socket is queue_directory/private/delivery (DP_SOCKET).  private/
 * is mode 0700 and owned by mail_owner (queue_dirs.c), so only
 * mail_owner and root reach the socket, which is srw-rw-rw- as Postfix's
 * private sockets; the delivery process also checks the peer's uid.  The
 * master binds it once, before forking the process and the queue
 * manager, and keeps it: a queue manager that connects while the
 * delivery process restarts waits in the backlog instead of failing.
 * private/ belongs to mail_owner, so the master never follows a name in
 * it: the directory is opened with O_NOFOLLOW and checked, and the
 * socket is made from inside it.
 *
 * The promises:
 *  - the process is restarted, throttled, when it dies (as the queue
 *    manager);
 *  - on reload the running one is retired (SIGTERM: it accepts nothing
 *    more and exits when the deliveries it started are done and
 *    answered) and a new one starts at once on the new configuration;
 *  - on stop it goes after the queue manager, so that the queue
 *    manager's last deliveries are answered;
 *  - the listening socket is in no other child (master_child_setup()).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "delivery_proto.h"
#include "delivery_server.h"
#include "log.h"
#include "master.h"

#define PRIVATE_MODE	0700
#define SOCKET_UMASK	0111            /* srw-rw-rw-: private/ guards it */

bool delivery_proc_wanted(const struct master *m)
{
	return m->user.drop && m->sc->qmgr;
}

const char *delivery_proc_socket(const struct master *m)
{
	return delivery_proc_wanted(m) ? DP_SOCKET : NULL;
}

/* ---- the socket ------------------------------------------------------ */

/* queue_directory/private: a directory, not a link, of mail_owner's,
 * mode 0700.  The descriptor, or -1 with err. */
static int open_private(const struct master *m, char *err, size_t len)
{
	const char *qdir = cfg_str(m->sc->main, "queue_directory");
	struct stat st;
	int q, d;

	if ((q = open(qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, len, "%s: %s", qdir, strerror(errno));
		return -1;
	}
	d = openat(q, DP_SOCKET_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW
		   | O_CLOEXEC);
	close(q);
	if (d < 0 || fstat(d, &st) < 0) {
		snprintf(err, len, "%s/%s: %s", qdir, DP_SOCKET_DIR,
			 strerror(errno));
	} else if (st.st_uid != m->user.uid) {
		snprintf(err, len, "%s/%s is owned by uid %ld, not by mail_owner; "
			 "fix: chown %s %s/%s", qdir, DP_SOCKET_DIR,
			 (long)st.st_uid, m->user.name, qdir, DP_SOCKET_DIR);
	} else if ((st.st_mode & 07777) != PRIVATE_MODE
		   && fchmod(d, PRIVATE_MODE) < 0) {
		snprintf(err, len, "cannot set mode 0700 on %s/%s: %s", qdir,
			 DP_SOCKET_DIR, strerror(errno));
	} else {
		return d;
	}
	if (d >= 0)
		close(d);
	return -1;
}

/* Bind DP_SOCKET_NAME inside directory `dir` (no bindat(): from inside
 * it, then back).  The listening descriptor, or -1 with errno. */
static int bind_in(int dir)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int cwd, fd, rc = -1, e;
	mode_t old;

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", DP_SOCKET_NAME);
	if ((cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0
	    && (unlinkat(dir, DP_SOCKET_NAME, 0) == 0 || errno == ENOENT)
	    && fchdir(dir) == 0) {
		old = umask(SOCKET_UMASK);
		rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
		umask(old);
		if (rc == 0)
			rc = listen(fd, SOMAXCONN);
	}
	e = errno;
	if (fchdir(cwd) < 0)
		msg_fatal("cannot return to the working directory: %m");
	close(cwd);
	if (rc < 0 && fd >= 0)
		close(fd);
	errno = e;
	return rc < 0 ? -1 : fd;
}

/* Bind the socket if the configuration wants the process and it is not
 * bound yet.  0, or -1 with err. */
int delivery_proc_prepare(struct master *m, char *err, size_t len)
{
	int dir;

	if (!delivery_proc_wanted(m) || m->delivery.listen_fd >= 0)
		return 0;
	if ((dir = open_private(m, err, len)) < 0)
		return -1;
	m->delivery.listen_fd = bind_in(dir);
	if (m->delivery.listen_fd < 0)
		snprintf(err, len, "cannot make the delivery socket %s/%s: %s",
			 cfg_str(m->sc->main, "queue_directory"), DP_SOCKET,
			 strerror(errno));
	close(dir);
	return m->delivery.listen_fd < 0 ? -1 : 0;
}

void delivery_proc_close(struct master *m)
{
	if (m->delivery.listen_fd >= 0)
		close(m->delivery.listen_fd);
	m->delivery.listen_fd = -1;
}

/* ---- the process ----------------------------------------------------- */

static void run_delivery(struct master *m) __attribute__((noreturn));

/* In the child: the socket and the master's pipe, nothing else. */
static void run_delivery(struct master *m)
{
	struct delivery_server_args a;

	memset(&a, 0, sizeof a);
	a.listen_fd = m->delivery.listen_fd;
	m->delivery.listen_fd = -1;     /* kept: master_child_setup closes it */
	master_child_setup(m);
	workers_close_inherited(m);
	a.master_pipe = m->alive_pipe[0];
	a.owner_uid = m->user.uid;
	a.owner_gid = m->user.gid;
	delivery_server_main(m->sc, &a);
}

static void spawn(struct master *m)
{
	struct worker_slot *ws = &m->delivery.slot;
	pid_t pid = fork();

	if (pid == 0)
		run_delivery(m);
	ws->index = -1;
	ws->started = mono_now();
	ws->restart_at = 0;
	ws->stopping = false;
	ws->pid = pid < 0 ? 0 : pid;
	if (pid < 0) {
		msg_warn("fork: %s", strerror(errno));
		master_schedule_restart(ws, ws->started, "sluice/delivery");
	}
}

void delivery_proc_start(struct master *m)
{
	struct worker_slot *ws = &m->delivery.slot;

	if (delivery_proc_wanted(m) && m->delivery.listen_fd >= 0
	    && ws->pid == 0 && ws->restart_at == 0)
		spawn(m);
}

/* SIGTERM, and remember it until it is reaped. */
static void retire(struct master *m, pid_t pid)
{
	kill(pid, SIGTERM);
	for (int i = 0; i < DELIVERY_RETIRED_MAX; i++)
		if (m->delivery.retired[i] == 0) {
			m->delivery.retired[i] = pid;
			return;
		}
	/* Not tracked: still reaped (workers_reap takes any child). */
}

void delivery_proc_replace(struct master *m)
{
	struct worker_slot *ws = &m->delivery.slot;

	if (ws->pid != 0)
		retire(m, ws->pid);
	memset(ws, 0, sizeof *ws);
	delivery_proc_start(m);
}

void delivery_proc_signal(struct master *m, int sig)
{
	struct worker_slot *ws = &m->delivery.slot;

	ws->restart_at = 0;
	if (ws->pid != 0) {
		ws->stopping = true;
		kill(ws->pid, sig);
	}
	for (int i = 0; i < DELIVERY_RETIRED_MAX; i++)
		if (m->delivery.retired[i] != 0)
			kill(m->delivery.retired[i], sig);
}

bool delivery_proc_alive(const struct master *m)
{
	if (m->delivery.slot.pid != 0)
		return true;
	for (int i = 0; i < DELIVERY_RETIRED_MAX; i++)
		if (m->delivery.retired[i] != 0)
			return true;
	return false;
}

bool delivery_proc_reaped(struct master *m, pid_t pid, int status)
{
	struct worker_slot *ws = &m->delivery.slot;

	for (int i = 0; i < DELIVERY_RETIRED_MAX; i++)
		if (m->delivery.retired[i] == pid) {
			master_log_exit("delivery", pid, status, true);
			m->delivery.retired[i] = 0;
			return true;
		}
	if (pid != ws->pid)
		return false;
	master_log_exit("delivery", pid, status, ws->stopping || m->stopping);
	ws->pid = 0;
	if (m->stopping || ws->stopping)
		ws->stopping = false;
	else
		master_schedule_restart(ws, mono_now(), "sluice/delivery");
	return true;
}

double delivery_proc_restart_due(struct master *m, double now)
{
	struct worker_slot *ws = &m->delivery.slot;

	if (ws->pid != 0 || ws->restart_at == 0)
		return 0;
	if (ws->restart_at > now)
		return ws->restart_at;
	ws->restart_at = 0;
	delivery_proc_start(m);
	return 0;
}
