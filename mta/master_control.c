/*
 * master_control.c - the master's pid file, and `sluice stop`, `sluice
 * reload` and `sluice status`, which find the master through it.
 *
 * The pid file is queue_directory/pid/master.pid, where Postfix keeps its
 * own.  The master holds an exclusive flock() on it for as long as it
 * lives (its workers do not inherit it), so "is sluice running?" is
 * answered by the lock, never by a pid that may have been reused: a
 * stale file left by a crash means "not running".
 *
 * The commands read the configuration only to find queue_directory, and
 * leniently, so that a configuration broken by an edit still lets the
 * administrator stop or query the running master.  `reload` alone reads
 * it strictly first, and refuses (printing the problems) instead of
 * sending the master a configuration it would refuse anyway.
 *
 *   status  "sluice is running (pid N)", exit 0; "sluice is not running",
 *           exit 1
 *   stop    SIGTERM, then wait until the master is gone (it gives its
 *           sessions STOP_GRACE seconds); exit 1 when it was not running
 *   reload  SIGHUP; exit 1 when not running or the configuration is bad
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "commands.h"
#include "config.h"
#include "diag.h"
#include "log.h"
#include "master.h"
#include "tool_common.h"

#define STOP_WAIT_SECS	30	/* longer than the master's own grace time */
#define POLL_MSECS	50

/* ---- the pid file (used by the master) ------------------------------ */

char *pidfile_path(const struct sluice_config *sc)
{
	char *path;

	if (asprintf(&path, "%s/pid/master.pid",
		     cfg_str(sc->main, "queue_directory")) < 0)
		return NULL;
	return path;
}

static pid_t read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = 0;
	return (pid_t)strtol(buf, NULL, 10);
}

/* mkdir -p the directory part of path: root-owned 0755 when we are root,
 * as Postfix's queue_directory and its pid/ are. */
static int make_pid_dir(const char *path, char *err, size_t errlen)
{
	char *dir = strdup(path), *slash;
	int rc = 0;

	if (dir == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = 0;
	slash = dir;
	while (rc == 0 && *dir != 0) {
		if ((slash = strchr(slash + 1, '/')) != NULL)
			*slash = 0;	/* each parent in turn */
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", dir,
				 strerror(errno));
			rc = -1;
		}
		if (slash == NULL)
			break;
		*slash = '/';
	}
	free(dir);
	return rc;
}

int pidfile_acquire(const char *path, pid_t *holder, char *err, size_t errlen)
{
	int fd;

	*holder = 0;
	if (make_pid_dir(path, err, errlen) < 0)
		return -1;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		snprintf(err, errlen, "cannot open pid file %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			*holder = read_pid(fd);
			snprintf(err, errlen, "the mail system is already running "
				 "(pid %ld)", (long)*holder);
		} else {
			snprintf(err, errlen, "cannot lock pid file %s: %s", path,
				 strerror(errno));
		}
		close(fd);
		return -1;
	}
	return fd;
}

void pidfile_write(int fd, pid_t pid)
{
	char buf[32];
	int len = snprintf(buf, sizeof buf, "%ld\n", (long)pid);

	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len)
		msg_warn("cannot write the pid file: %s", strerror(errno));
}

/* ---- finding the running master (used by the commands) -------------- */

/* Open the pid file for config_dir; -1 when there is none (*missing) or
 * on an error (printed). */
static int open_pidfile(const char *config_dir, bool *missing)
{
	struct diag d;
	struct sluice_config *sc;
	char *path;
	int fd;

	*missing = false;
	diag_init(&d);
	sc = config_load_flags(config_dir, &d, CONFIG_LENIENT | CONFIG_BEST_EFFORT);
	if (sc == NULL) {
		diag_print(&d, stderr);
		diag_free(&d);
		fprintf(stderr, "sluice: cannot read the configuration in %s\n",
			config_dir);
		return -1;
	}
	diag_free(&d);
	path = pidfile_path(sc);
	config_free(sc);
	if (path == NULL)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			*missing = true;
		else
			fprintf(stderr, "sluice: cannot open %s: %s\n", path,
				strerror(errno));
	}
	free(path);
	return fd;
}

/* The pid of the master holding fd's lock, or 0 when none does. */
static pid_t lock_holder(int fd)
{
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		flock(fd, LOCK_UN);
		return 0;
	}
	return read_pid(fd);
}

/* The running master's pid, 0 when there is none, -1 on an error
 * (printed).  *fdp keeps the pid file open for waiting on it. */
static pid_t running_master(const char *config_dir, int *fdp)
{
	bool missing;
	pid_t pid;
	int fd = open_pidfile(config_dir, &missing);

	*fdp = -1;
	if (fd < 0)
		return missing ? 0 : -1;
	if ((pid = lock_holder(fd)) <= 0) {
		close(fd);
		return 0;
	}
	*fdp = fd;
	return pid;
}

static void sleep_msecs(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int usage(const char *cmd)
{
	fprintf(stderr, "usage: sluice [-c CONFIG_DIR] %s\n", cmd);
	return 2;
}

static int not_running(void)
{
	fprintf(stderr, "sluice: the mail system is not running\n");
	return 1;
}

/* ---- the commands -------------------------------------------------- */

int cmd_status(const char *config_dir, int argc, char **argv)
{
	int fd;
	pid_t pid;

	if (argc > 1)
		return usage("status");
	if ((pid = running_master(config_dir, &fd)) < 0)
		return 1;
	if (pid == 0) {
		printf("sluice is not running\n");
		return 1;
	}
	close(fd);
	printf("sluice is running (pid %ld)\n", (long)pid);
	return 0;
}

int cmd_stop(const char *config_dir, int argc, char **argv)
{
	int fd, waited;
	pid_t pid;

	if (argc > 1)
		return usage("stop");
	if ((pid = running_master(config_dir, &fd)) <= 0)
		return pid < 0 ? 1 : not_running();
	if (kill(pid, SIGTERM) < 0) {
		fprintf(stderr, "sluice: cannot signal pid %ld: %s\n", (long)pid,
			strerror(errno));
		close(fd);
		return 1;
	}
	fprintf(stderr, "sluice: stopping the mail system (pid %ld)\n", (long)pid);
	for (waited = 0; lock_holder(fd) > 0; waited += POLL_MSECS) {
		if (waited >= STOP_WAIT_SECS * 1000) {
			fprintf(stderr, "sluice: pid %ld has not stopped after %d "
				"seconds\n", (long)pid, STOP_WAIT_SECS);
			close(fd);
			return 1;
		}
		sleep_msecs(POLL_MSECS);
	}
	close(fd);
	return 0;
}

/* Would the master accept this configuration?  Prints what is wrong. */
static bool config_loads(const char *config_dir)
{
	struct sluice_config *sc = tool_load_config_strict(config_dir);

	if (sc == NULL)
		return false;
	config_free(sc);
	return true;
}

int cmd_reload(const char *config_dir, int argc, char **argv)
{
	int fd;
	pid_t pid;

	if (argc > 1)
		return usage("reload");
	if ((pid = running_master(config_dir, &fd)) <= 0)
		return pid < 0 ? 1 : not_running();
	close(fd);
	if (!config_loads(config_dir)) {
		fprintf(stderr, "sluice: not reloading: the configuration has "
			"errors; the running one stays in use\n");
		return 1;
	}
	if (kill(pid, SIGHUP) < 0) {
		fprintf(stderr, "sluice: cannot signal pid %ld: %s\n", (long)pid,
			strerror(errno));
		return 1;
	}
	fprintf(stderr, "sluice: refreshing the mail system (pid %ld)\n",
		(long)pid);
	return 0;
}
