/*
 * master.c - `sluice run` and `sluice start`: the master process.
 *
 * Start-up, in this order, refusing to start with the reason on any
 * failure: read the configuration (config_load; its diagnostics are
 * printed as "file:line: ..."), set up logging, find mail_owner (when
 * started as root), create the queue directories, take the pid file,
 * bind every listener, map the anvil table, bind the delivery process'
 * socket (root with a qmgr), fork the workers, the delivery process and
 * the queue manager (when master.cf declares one), and log
 * "daemon started -- version X, configuration DIR".  `run` stays in the
 * foreground and logs to stderr unless maillog_file is set; `start`
 * forks, becomes a session leader and logs to maillog_file or syslog.
 * Until the daemon is up, log lines are mirrored to stderr so that the
 * person starting it sees why it would not start.
 *
 * Started as root, the master keeps root (it binds ports on reload), its
 * workers and the queue manager run as mail_owner, and only the delivery
 * process (master_delivery.c) keeps root, for local, virtual and pipe;
 * started as anybody else, everything runs as that user.
 *
 * Then the master waits for signals with sigtimedwait(); they are blocked
 * at all other times, so no handler ever interrupts its work:
 *   SIGCHLD          reap; restart a worker that died unexpectedly
 *   SIGHUP           reload (see master_reload())
 *   SIGTERM, SIGINT  stop: log "terminating on signal N", SIGTERM every
 *                    worker, give them STOP_GRACE_SECS to finish their
 *                    sessions, then SIGKILL; then the same for the queue
 *                    manager, so that it sees every message the workers
 *                    accepted, and last for the delivery process, so
 *                    that the queue manager's deliveries are answered; a
 *                    second signal kills at once
 * No child is left unreaped, and the pid file is removed on the way out.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "diag.h"
#include "log.h"
#include "master.h"
#include "queue.h"
#include "version.h"
#include "sasl_server.h"
#include "tls_server.h"

#define STOP_GRACE_SECS	10
#define ANVIL_SLOTS	4096	/* distinct clients per worker */

static const int master_signal_list[] = { SIGHUP, SIGINT, SIGTERM, SIGCHLD };
#define NSIGNALS (sizeof master_signal_list / sizeof master_signal_list[0])

double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- signals ------------------------------------------------------- */

static void placeholder_handler(int sig)
{
	(void)sig;		/* never runs: the signals stay blocked */
}

/* Block the master's signals; they are taken with sigtimedwait(). */
static void master_signals(sigset_t *set)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = placeholder_handler;	/* SIG_DFL of SIGCHLD would discard */
	sigemptyset(&sa.sa_mask);
	sigemptyset(set);
	for (size_t i = 0; i < NSIGNALS; i++) {
		sigaddset(set, master_signal_list[i]);
		sigaction(master_signal_list[i], &sa, NULL);
	}
	sigprocmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* A signal, or 0 when `deadline` (monotonic; 0 = none) passed first. */
static int wait_signal(const sigset_t *set, double deadline)
{
	struct timespec ts;
	double left;
	int sig;

	if (deadline == 0) {
		sig = sigwaitinfo(set, NULL);
	} else {
		left = deadline - mono_now();
		if (left < 0)
			left = 0;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		sig = sigtimedwait(set, NULL, &ts);
	}
	return sig < 0 ? 0 : sig;
}

void master_child_setup(struct master *m)
{
	if (m->pidfile_fd >= 0)
		close(m->pidfile_fd);
	if (m->delivery.listen_fd >= 0)
		close(m->delivery.listen_fd);
	close(m->alive_pipe[1]);
	for (size_t i = 0; i < NSIGNALS; i++)
		signal(master_signal_list[i], SIG_DFL);
	/* The signals stay blocked until the child has its own handlers. */
	/* Only the master copies its start-up lines to the terminal; a child
	 * logs once, where logging goes. */
	log_mirror_stderr(false);
}

/* Each session holds a socket (and a queue file while receiving): a
 * worker serving thousands of sessions needs more than the usual soft
 * limit of 1024 descriptors.  Take what the hard limit allows. */
static void raise_open_files_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		msg_warn("cannot raise the open files limit: %s", strerror(errno));
}

/* ---- configuration pieces, shared by start-up and reload ----------- */

/* A reload's diagnostics go to the log; an error refuses the reload. */
static void log_diagnostics(const struct diag *d)
{
	for (int i = 0; i < d->n; i++) {
		if (d->v[i].level == DIAG_WARNING)
			msg_warn("%s", d->v[i].text);
		else
			msg_error("reload refused: %s", d->v[i].text);
	}
}

/* At start-up the diagnostics go to the terminal, and an error is fatal. */
static struct sluice_config *load_config(const char *dir, bool reloading)
{
	struct sluice_config *sc;
	struct diag d;

	diag_init(&d);
	sc = config_load(dir, &d);
	if (sc && !reloading)   /* a SASL backend out of reach: say so now */
		sasl_check(&d, sc, NULL, DIAG_WARNING);
	if (sc != NULL) {       /* certificates and keys (tls_server.c) */
		char *main_path = cf_display_path(dir, "main.cf");

		tls_server_check(&d, sc, main_path);
		free(main_path);
		if (d.errors > 0) {
			config_free(sc);
			sc = NULL;
		}
	}
	if (reloading)
		log_diagnostics(&d);
	else
		diag_print(&d, stderr);
	if (sc == NULL && !reloading)
		msg_fatal("%d error%s in the configuration in %s; not starting",
			  d.errors, d.errors == 1 ? "" : "s", dir);
	if (sc == NULL && d.errors == 0)
		msg_error("reload refused: cannot load the configuration in %s", dir);
	diag_free(&d);
	return sc;
}

static int open_logging(const struct sluice_config *sc, bool daemon,
			char *err, size_t errlen)
{
	const char *file = cfg_str(sc->main, "maillog_file");
	const char *facility = cfg_str(sc->main, "syslog_facility");
	enum log_dest dest = *file ? LOG_DEST_FILE
	    : daemon ? LOG_DEST_SYSLOG : LOG_DEST_STDERR;

	if (log_set_syslog(cfg_str(sc->main, "syslog_name"), facility) < 0) {
		snprintf(err, errlen, "syslog_facility = %s: unknown facility "
			 "(use mail, daemon, user or local0 .. local7)", facility);
		return -1;
	}
	log_open("master", dest, file);
	if (log_dest() != dest) {
		snprintf(err, errlen, "cannot log to maillog_file %s", file);
		return -1;
	}
	return 0;
}

/* Who the workers run as: mail_owner when we are root, else ourselves. */
static int resolve_user(const struct sluice_config *sc, struct run_as *ru,
			char *err, size_t errlen)
{
	const char *owner = cfg_str(sc->main, "mail_owner");
	const struct passwd *pw;

	memset(ru, 0, sizeof *ru);
	if (geteuid() != 0) {
		pw = getpwuid(geteuid());
		if (pw != NULL && strcmp(pw->pw_name, owner) != 0
		    && cfg_is_set(sc->main, "mail_owner"))
			msg_warn("not started as root: running as %s, not as "
				 "mail_owner %s", pw->pw_name, owner);
		ru->uid = geteuid();
		ru->gid = getegid();
		return 0;
	}
	if ((pw = getpwnam(owner)) == NULL) {
		snprintf(err, errlen, "mail_owner = %s: no such user; create it "
			 "(useradd --system --home-dir /nonexistent --shell "
			 "/usr/sbin/nologin %s) or name an existing unprivileged "
			 "user", owner, owner);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "mail_owner = %s: has the privileged user ID "
			 "0; name an unprivileged user", owner);
		return -1;
	}
	ru->drop = true;
	ru->uid = pw->pw_uid;
	ru->gid = pw->pw_gid;
	snprintf(ru->name, sizeof ru->name, "%s", pw->pw_name);
	return 0;
}

/* sluice_smtpd_workers, with 0 meaning one per CPU core. */
static int workers_wanted(const struct sluice_config *sc, char *err,
			  size_t errlen)
{
	long long n = cfg_int(sc->main, "sluice_smtpd_workers");
	long cpus;

	if (n == 0) {
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus < 1 ? 1 : cpus > MASTER_GENERATION_MAX
		    ? MASTER_GENERATION_MAX : cpus;
	}
	if (n < 1 || n > MASTER_GENERATION_MAX) {
		snprintf(err, errlen, "sluice_smtpd_workers = %lld: use 1 to %d, "
			 "or 0 for one per CPU core", n, MASTER_GENERATION_MAX);
		return -1;
	}
	return (int)n;
}

/* ---- start-up ------------------------------------------------------ */

/* The pid file first: a second master must not touch the queue (it
 * removes half-written files) of a running one. */
static void prepare_queue(struct master *m)
{
	const char *qdir = cfg_str(m->sc->main, "queue_directory");
	char err[512];
	pid_t holder;

	if ((m->pidfile = pidfile_path(m->sc)) == NULL)
		msg_fatal("out of memory");
	m->pidfile_fd = pidfile_acquire(m->pidfile, &holder, err, sizeof err);
	if (m->pidfile_fd < 0 && holder > 0)
		msg_fatal("%s", err);
	if (m->pidfile_fd < 0
	    || queue_dirs_ensure(qdir, m->user.drop ? m->user.uid : (uid_t)-1,
				 m->user.drop ? m->user.gid : (gid_t)-1,
				 err, sizeof err) < 0)
		msg_fatal("queue_directory %s: %s; fix queue_directory in main.cf "
			  "or what is in the way, then start again", qdir, err);
}

static void prepare(struct master *m, const char *config_dir)
{
	char err[1024];

	if ((m->config_dir = realpath(config_dir, NULL)) == NULL)
		msg_fatal("configuration directory %s: %s", config_dir,
			  strerror(errno));
	m->sc = load_config(m->config_dir, false);
	sluice_conf = m->sc;
	if (open_logging(m->sc, m->daemon, err, sizeof err) < 0)
		msg_fatal("%s", err);
	log_mirror_stderr(log_dest() != LOG_DEST_STDERR);
	if (resolve_user(m->sc, &m->user, err, sizeof err) < 0
	    || (m->workers.wanted = workers_wanted(m->sc, err, sizeof err)) < 0)
		msg_fatal("%s", err);
	prepare_queue(m);
	if (listen_open(&m->sockets, m->sc, NULL, err, sizeof err) < 0)
		msg_fatal("%s", err);
	if (m->sockets.n == 0)
		msg_warn("master.cf declares no smtpd service: nothing to listen on");
	raise_open_files_limit();
	if (anvil_init(ANVIL_SLOTS) < 0)
		msg_fatal("cannot map the connection count table: %s",
			  strerror(errno));
	if (delivery_proc_prepare(m, err, sizeof err) < 0)
		msg_fatal("%s", err);
	if (pipe2(m->alive_pipe, O_CLOEXEC) < 0)
		msg_fatal("pipe: %s", strerror(errno));
}

/* `start`: leave the terminal.  Returns in the daemon; the parent, having
 * written the daemon's pid, returns false. */
static bool daemonize(struct master *m)
{
	pid_t pid;
	int null;

	fflush(NULL);
	if ((pid = fork()) < 0)
		msg_fatal("fork: %s", strerror(errno));
	if (pid > 0) {
		pidfile_write(m->pidfile_fd, pid);
		return false;
	}
	setsid();
	if ((null = open("/dev/null", O_RDWR)) >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	return true;
}

/* ---- reload -------------------------------------------------------- */

/* How long a reload waits for the old workers to stop accepting, so that
 * connections made after "reload --" meet the new configuration. */
#define RETIRE_WAIT_SECS	5.0

/* Can the master switch to `next`?  Fills *user and *wanted. */
static int reload_check(struct master *m, const struct sluice_config *next,
			struct run_as *user, int *wanted, char *err, size_t errlen)
{
	const char *qdir = cfg_str(m->sc->main, "queue_directory");
	const char *new_qdir = cfg_str(next->main, "queue_directory");

	if (strcmp(qdir, new_qdir) != 0) {
		snprintf(err, errlen, "queue_directory changed from %s to %s: "
			 "that takes sluice stop and start", qdir, new_qdir);
		return -1;
	}
	if (resolve_user(next, user, err, errlen) < 0)
		return -1;
	if (user->drop && user->uid != m->user.uid) {
		snprintf(err, errlen, "mail_owner changed from %s to %s: the queue "
			 "belongs to %s; that takes sluice stop and start",
			 m->user.name, user->name, m->user.name);
		return -1;
	}
	if ((*wanted = workers_wanted(next, err, errlen)) < 0)
		return -1;
	if (workers_free_slots(m) < *wanted) {
		snprintf(err, errlen, "%d workers of earlier generations are still "
			 "finishing their sessions; try again later",
			 workers_alive(m));
		return -1;
	}
	return 0;
}

/* Switch to `next`: its sockets were bound (or carried over) already. */
static void reload_install(struct master *m, struct sluice_config *next,
			   struct socket_set *sockets, const struct run_as *user,
			   int wanted)
{
	struct sluice_config *old = m->sc;
	struct socket_set old_sockets = m->sockets;
	char err[512];

	m->sc = next;
	sluice_conf = next;
	m->sockets = *sockets;
	m->user = *user;
	/* Before forking: new workers must not inherit dropped sockets. */
	listen_close_unused(&old_sockets);
	if (open_logging(next, m->daemon, err, sizeof err) < 0)
		msg_warn("%s; logging stays as it was", err);
	workers_start_generation(m, wanted);
	workers_retire_old(m);
	if (delivery_proc_prepare(m, err, sizeof err) < 0)
		msg_warn("%s; local, virtual and pipe deliveries are deferred", err);
	delivery_proc_replace(m);
	qmgr_proc_replace(m);
	config_free(old);
}

/*
 * SIGHUP: read the configuration again.  A configuration that does not
 * load, changes what a reload cannot change, or cannot bind its listeners
 * is refused ("reload refused: ...") and the running one stays.  Else a
 * new generation of workers starts on it (listeners whose address did not
 * change keep their socket), and the old generation is told to finish.
 */
static void master_reload(struct master *m)
{
	struct sluice_config *next;
	struct socket_set sockets;
	struct run_as user;
	char err[1024];
	int wanted;

	if ((next = load_config(m->config_dir, true)) == NULL)
		return;
	if (reload_check(m, next, &user, &wanted, err, sizeof err) < 0
	    || listen_open(&sockets, next, &m->sockets, err, sizeof err) < 0) {
		msg_error("reload refused: %s", err);
		config_free(next);
		return;
	}
	reload_install(m, next, &sockets, &user, wanted);
	workers_wait_retired(m, RETIRE_WAIT_SECS);
	msg_info("reload -- version %s, configuration %s", SLUICE_VERSION,
		 m->config_dir);
}

/* ---- stop ---------------------------------------------------------- */

static void master_stop(struct master *m, int sig)
{
	if (m->stopping) {
		msg_warn("signal %d again: killing %d worker%s now", sig,
			 workers_alive(m), workers_alive(m) == 1 ? "" : "s");
		workers_signal_all(m, SIGKILL);
		qmgr_proc_signal(m, SIGKILL);
		delivery_proc_signal(m, SIGKILL);
		m->stop_deadline = 0;
		return;
	}
	msg_info("terminating on signal %d", sig);
	m->stopping = true;
	m->stop_deadline = mono_now() + STOP_GRACE_SECS;
	listen_close_unused(&m->sockets);	/* refuse new connections now */
	workers_signal_all(m, SIGTERM);
}

static void stop_overdue(struct master *m)
{
	int n = workers_alive(m);

	if (n > 0)
		msg_warn("%d worker%s still busy after %d seconds: killing", n,
			 n == 1 ? "" : "s", STOP_GRACE_SECS);
	else
		msg_warn("the %s is still busy after %d seconds: killing",
			 qmgr_proc_alive(m) ? "queue manager" : "delivery process",
			 STOP_GRACE_SECS);
	workers_signal_all(m, SIGKILL);
	qmgr_proc_signal(m, SIGKILL);
	delivery_proc_signal(m, SIGKILL);
	m->stop_deadline = 0;
}

/* Stopping, with the workers gone: now the queue manager.  True when
 * everything is gone. */
static bool stop_qmgr(struct master *m)
{
	if (!qmgr_proc_alive(m))
		return true;
	if (!m->qmgr_stopping) {
		m->qmgr_stopping = true;
		qmgr_proc_signal(m, SIGTERM);
		if (m->stop_deadline != 0)
			m->stop_deadline = mono_now() + STOP_GRACE_SECS;
	}
	return false;
}

/* ... and then the delivery process.  True when it is gone too. */
static bool stop_delivery(struct master *m)
{
	if (!delivery_proc_alive(m))
		return true;
	if (!m->delivery_stopping) {
		m->delivery_stopping = true;
		delivery_proc_signal(m, SIGTERM);
		if (m->stop_deadline != 0)
			m->stop_deadline = mono_now() + STOP_GRACE_SECS;
	}
	return false;
}

/* ---- the loop ------------------------------------------------------ */

/* Let go of everything (the daemon keeps its own copies in `start`). */
static void master_free(struct master *m)
{
	listen_close_unused(&m->sockets);
	delivery_proc_close(m);
	if (m->sc != NULL)
		config_free(m->sc);
	m->sc = sluice_conf = NULL;
	for (int i = 0; i < 2; i++)
		if (m->alive_pipe[i] >= 0)
			close(m->alive_pipe[i]);
	if (m->pidfile_fd >= 0)
		close(m->pidfile_fd);
	free(m->pidfile);
	free(m->config_dir);
}

static int master_loop(struct master *m, const sigset_t *signals)
{
	double deadline;
	int sig;

	for (;;) {
		workers_reap(m);
		if (m->stopping && workers_alive(m) == 0 && stop_qmgr(m)
		    && stop_delivery(m))
			break;
		deadline = m->stopping ? m->stop_deadline
		    : workers_restart_due(m, mono_now());
		sig = wait_signal(signals, deadline);
		if (sig == SIGHUP && !m->stopping)
			master_reload(m);
		else if (sig == SIGTERM || sig == SIGINT)
			master_stop(m, sig);
		else if (sig == 0 && m->stopping && m->stop_deadline != 0
			 && mono_now() >= m->stop_deadline)
			stop_overdue(m);
	}
	unlink(m->pidfile);
	master_free(m);
	return 0;
}

static int master_main(const char *config_dir, bool daemon)
{
	struct master m;
	sigset_t signals;

	memset(&m, 0, sizeof m);
	m.daemon = daemon;
	m.pidfile_fd = m.alive_pipe[0] = m.alive_pipe[1] = -1;
	m.delivery.listen_fd = -1;
	master_signals(&signals);
	log_open("master", LOG_DEST_STDERR, NULL);
	prepare(&m, config_dir);
	if (daemon && !daemonize(&m)) {
		master_free(&m);
		return 0;
	}
	if (!daemon)
		pidfile_write(m.pidfile_fd, getpid());
	workers_start_generation(&m, m.workers.wanted);
	delivery_proc_start(&m);
	qmgr_proc_start(&m);
	msg_info("daemon started -- version %s, configuration %s",
		 SLUICE_VERSION, m.config_dir);
	log_mirror_stderr(false);
	return master_loop(&m, &signals);
}

int cmd_run(const char *config_dir, int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "usage: sluice [-c CONFIG_DIR] run\n");
		return 2;
	}
	return master_main(config_dir, false);
}

int cmd_start(const char *config_dir, int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "usage: sluice [-c CONFIG_DIR] start\n");
		return 2;
	}
	return master_main(config_dir, true);
}
