/*
 * queue_dirs.c - the queue's directories: create and check them at
 * start-up, remove half-written files, and tell whether there is room for
 * a message.
 *
 * queue_dirs_ensure() runs in the master before any worker: it creates
 * queue_directory (and its parents, like mkdir -p) and the incoming/,
 * active/, deferred/, hold/ and corrupt/ subdirectories, then removes the
 * files a crash left half-written.  queue_space_ok() is asked at MAIL
 * FROM, with the declared SIZE (Postfix's rule: queue_minfree left over
 * after room for 1.5 x the message).
 *
 * Local submission and the queue tools (docs/queue-tools.md) add
 * maildrop/ (mode 1733: every local user may drop a file, none may list
 * them), public/ (0711, the queue manager's FIFO) and defer/ (0700,
 * deferral reasons); the delivery process' socket lives in private/
 * (0700, docs/process-model.md); queue_directory itself gets search
 * permission for all, so that `sendmail` run by any user reaches
 * maildrop/.
 *
 * Promises:
 * - sluice does not start on a queue it cannot use: a path that is not a
 *   directory, a subdirectory owned by another user than mail_owner, with
 *   a mode that keeps mail_owner out or on another file system than
 *   queue_directory (files move by rename) is refused with a message that
 *   names the fix;
 * - only files not marked complete (mode without the owner x bit: a file
 *   still being written, see queue_file.c) are removed, and each removal
 *   is logged;
 * - queue_space_ok() never overflows and says no when it cannot tell.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "delivery_proto.h"
#include "log.h"
#include "maildrop.h"
#include "qmgr_trigger.h"
#include "queue.h"
#include "queue_reason.h"

#define QF_DIR_MODE     0700

static const char *const queue_subdirs[] = {
	QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT,
};

/* Directories of local submission and the queue tools, and their modes. */
static const struct {
	const char *name;
	mode_t mode;
} tool_subdirs[] = {
	{ MAILDROP_DIR, 01733 },        /* anyone drops, nobody lists */
	{ QMGR_PUBLIC_DIR, 0711 },      /* the queue manager's FIFO */
	{ QUEUE_DEFER, 0700 },          /* deferral reasons */
	{ DP_SOCKET_DIR, 0700 },        /* the delivery process' socket */
};

/* mkdir -p for the directories above `path` (0755, like mkdir -p). */
static int make_parents(const char *path, char *err, size_t errlen)
{
	char *copy = strdup(path), *p;

	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (p = copy + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", copy,
				 strerror(errno));
			free(copy);
			return -1;
		}
		*p = '/';
	}
	free(copy);
	return 0;
}

/* Can uid/gid search (and with `write`, also write) directory `st`? */
static bool dir_usable_by(const struct stat *st, uid_t uid, gid_t gid,
			  bool write)
{
	mode_t need = write ? 07 : 01;  /* rwx or x, in the class' bits */

	if (uid == 0)
		return true;
	if (st->st_uid == uid)
		return ((st->st_mode >> 6) & need) == need;
	if (st->st_gid == gid)
		return ((st->st_mode >> 3) & need) == need;
	return (st->st_mode & need) == need;
}

/* 0, -1 with errno from mkdir (EEXIST...), or -2 with a message in err. */
static int create_dir(const char *path, uid_t uid, gid_t gid,
		      char *err, size_t errlen)
{
	if (mkdir(path, QF_DIR_MODE) < 0)
		return -1;
	if (chmod(path, QF_DIR_MODE) < 0
	    || (uid != (uid_t) -1 && chown(path, uid, gid) < 0)) {
		snprintf(err, errlen, "cannot set owner %ld:%ld and mode 0700 "
			 "on %s: %s", (long) uid, (long) gid, path,
			 strerror(errno));
		return -2;
	}
	return 0;
}

/* Can uid (the current user when -1) use directory `path`: search
 * queue_directory, own and write a subdirectory? */
static int check_dir_access(const char *path, const struct stat *st,
			    bool subdir, uid_t uid, gid_t gid,
			    char *err, size_t errlen)
{
	if (uid == (uid_t) -1) {
		if (access(path, subdir ? (R_OK | W_OK | X_OK) : X_OK) == 0)
			return 0;
		snprintf(err, errlen, "%s: %s; fix: chown the queue to the "
			 "user running sluice", path, strerror(errno));
		return -1;
	}
	if (!subdir) {
		if (dir_usable_by(st, uid, gid, false))
			return 0;
		snprintf(err, errlen, "%s (uid %ld, mode %04o) cannot be "
			 "searched by mail_owner (uid %ld); fix: chown -R "
			 "%ld:%ld %s", path, (long) st->st_uid,
			 (unsigned) st->st_mode & 07777, (long) uid, (long) uid,
			 (long) gid, path);
		return -1;
	}
	if (st->st_uid != uid) {
		snprintf(err, errlen, "%s is owned by uid %ld, not by "
			 "mail_owner (uid %ld); fix: chown -R %ld:%ld %s", path,
			 (long) st->st_uid, (long) uid, (long) uid, (long) gid,
			 path);
		return -1;
	}
	if (!dir_usable_by(st, uid, gid, true)) {
		snprintf(err, errlen, "%s has mode %04o; fix: chmod 0700 %s",
			 path, (unsigned) st->st_mode & 07777, path);
		return -1;
	}
	return 0;
}

/* Make `path` a directory usable by uid (the current user when -1);
 * subdirectories must be owned by it and sit on the queue's file system. */
static int ensure_dir(const char *path, bool subdir, dev_t queue_dev,
		      uid_t uid, gid_t gid, char *err, size_t errlen)
{
	struct stat st;
	int rc = create_dir(path, uid, gid, err, errlen);

	if (rc == -2)
		return -1;
	if (rc < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory; fix: remove or "
			 "rename it, or change queue_directory", path);
		return -1;
	}
	if (subdir && st.st_dev != queue_dev) {
		snprintf(err, errlen, "%s is on another file system than "
			 "queue_directory; queue files move by rename(2), so "
			 "all queue directories must be on one file system",
			 path);
		return -1;
	}
	return check_dir_access(path, &st, subdir, uid, gid, err, errlen);
}

/* Remove files not marked complete (no owner x bit): half-written ones. */
static void remove_unfinished(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.'
		    && (de->d_name[1] == '\0' || strcmp(de->d_name, "..") == 0))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0
		    || !S_ISREG(st.st_mode) || (st.st_mode & S_IXUSR))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			msg_warn("%s/%s: removed a half-written queue file",
				 dir, de->d_name);
		else
			msg_warn("%s/%s: cannot remove half-written queue "
				 "file: %m", dir, de->d_name);
	}
	closedir(d);
}

/* maildrop/, public/, defer/ and private/ with their modes (fixed when changed),
 * and search permission on queue_directory (`st`) for local users. */
static int ensure_tool_dirs(const char *queue_dir, const struct stat *st,
			    uid_t uid, gid_t gid, char *err, size_t errlen)
{
	char path[4096];
	struct stat sub;
	size_t i;

	for (i = 0; i < sizeof(tool_subdirs) / sizeof(tool_subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", queue_dir,
			 tool_subdirs[i].name);
		if (ensure_dir(path, true, st->st_dev, uid, gid, err,
			       errlen) < 0)
			return -1;
		if (stat(path, &sub) == 0
		    && (sub.st_mode & 07777) != tool_subdirs[i].mode
		    && chmod(path, tool_subdirs[i].mode) < 0) {
			snprintf(err, errlen, "cannot set mode %04o on %s: %s",
				 (unsigned) tool_subdirs[i].mode, path,
				 strerror(errno));
			return -1;
		}
	}
	if ((st->st_mode & 0011) != 0011
	    && chmod(queue_dir, (st->st_mode & 07777) | 0011) < 0) {
		snprintf(err, errlen, "cannot give %s search permission for "
			 "local submission: %s", queue_dir, strerror(errno));
		return -1;
	}
	return 0;
}

int queue_dirs_ensure(const char *queue_dir, uid_t uid, gid_t gid,
		      char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	size_t i;

	if (queue_dir == NULL || *queue_dir == '\0') {
		snprintf(err, errlen, "queue_directory is empty");
		return -1;
	}
	if (make_parents(queue_dir, err, errlen) < 0
	    || ensure_dir(queue_dir, false, 0, uid, gid, err, errlen) < 0)
		return -1;
	if (stat(queue_dir, &st) < 0) {
		snprintf(err, errlen, "%s: %s", queue_dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(queue_subdirs) / sizeof(queue_subdirs[0]); i++) {
		if ((size_t) snprintf(path, sizeof(path), "%s/%s", queue_dir,
				      queue_subdirs[i]) >= sizeof(path)) {
			snprintf(err, errlen, "queue_directory is too long");
			return -1;
		}
		if (ensure_dir(path, true, st.st_dev, uid, gid, err, errlen) < 0)
			return -1;
	}
	if (ensure_tool_dirs(queue_dir, &st, uid, gid, err, errlen) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", queue_dir, QUEUE_INCOMING);
	remove_unfinished(path);
	snprintf(path, sizeof(path), "%s/%s", queue_dir, QUEUE_HOLD);
	remove_unfinished(path);
	return 0;
}

/* ==== free space ==== */

bool queue_space_ok(const char *queue_dir, long long size, long long minfree)
{
	struct statvfs fs;
	unsigned long long avail, need;

	if (statvfs(queue_dir, &fs) < 0)
		return false;
	if (size < 0)
		size = 0;
	if (minfree < 0)
		minfree = 0;
	if (__builtin_mul_overflow((unsigned long long) fs.f_bavail,
				   (unsigned long long) fs.f_frsize, &avail))
		avail = ~0ULL;
	if (__builtin_add_overflow((unsigned long long) minfree,
				   (unsigned long long) size
				   + (unsigned long long) size / 2, &need))
		return false;
	return avail > need;
}
