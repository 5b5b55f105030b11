/*
 * local_mbox.c - delivery to an mbox file: the user's mailbox in
 * mail_spool_directory or under the home directory (home_mailbox), and
 * "/file" destinations of aliases and .forward files.
 *
 * As Postfix's local(8): the mailbox is locked with the methods of
 * mailbox_delivery_lock (virtual(8): virtual_mailbox_lock) - fcntl,
 * flock, dotlock - each tried deliver_lock_attempts times
 * deliver_lock_delay apart, a dot-lock older than stale_lock_time
 * removed; the message is appended as "From sender date",
 * Return-Path:, X-Original-To:, Delivered-To:, the message with ">From "
 * quoting, and an empty line; the file is fsync()ed before success is
 * reported.  Any error truncates the file back to its size before the
 * delivery, so a mailbox never holds half a message.  The size limit is
 * mailbox_size_limit (virtual(8): virtual_mailbox_limit).
 *
 * Privileges: the mailbox is written as the recipient.  In a mail spool
 * that is not world-writable (Debian's /var/mail, root:mail 2775) it is
 * opened and dot-locked as root, as Postfix does, and a new mailbox is
 * given to the recipient; everything else (and every virtual(8) mailbox)
 * is opened as the recipient.  A mailbox must be a regular file with one
 * link (no symlink, no hard link to another file) and, with
 * strict_mailbox_ownership, be owned by the recipient; otherwise
 * delivery is deferred.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "local_int.h"

struct mbox {
	const struct ldeliv *d;
	const char *path;
	const struct lpriv *p, *owner;
	bool as_root;                   /* opened and dot-locked as root */
	bool dotlocked;
	char lock[4200];
	int fd;
	struct stat st;
};

static bool lock_wanted(const struct ldeliv *d, const char *method)
{
	char **v = cfg_list(d->cfg, ldeliv_box(d)->lock);
	bool yes = false;

	for (int i = 0; v[i]; i++)
		if (strcmp(v[i], method) == 0)
			yes = true;
	cfg_list_free(v);
	return yes;
}

static void lock_pause(const struct config *cfg)
{
	struct timespec ts = { (time_t)cfg_time(cfg, "deliver_lock_delay"), 0 };

	if (ts.tv_sec <= 0)
		ts.tv_sec = 1;
	nanosleep(&ts, NULL);
}

static int attempts(const struct config *cfg)
{
	long long n = cfg_int(cfg, "deliver_lock_attempts");

	return n < 1 ? 1 : (int)n;
}

/* ---- the dot-lock ---- */

static bool stale(const char *lock, long long max_age)
{
	struct stat st;

	return lstat(lock, &st) == 0 && time(NULL) - st.st_mtime > max_age;
}

static int dotlock(struct mbox *m, struct local_result *res)
{
	const struct config *cfg = m->d->cfg;
	int fd, n = attempts(cfg);

	snprintf(m->lock, sizeof m->lock, "%s.lock", m->path);
	for (int i = 0; i < n; i++) {
		fd = open(m->lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
		if (fd >= 0) {
			close(fd);
			m->dotlocked = true;
			return 0;
		}
		if (errno != EEXIST)
			break;
		if (stale(m->lock, cfg_time(cfg, "stale_lock_time"))) {
			unlink(m->lock);
			continue;
		}
		if (i + 1 < n)
			lock_pause(cfg);
	}
	if (m->owner == NULL && (errno == EACCES || errno == EPERM
				 || errno == EROFS))
		return 0;       /* a /file in a directory we cannot write */
	lres_set(res, 4, "4.2.0", "cannot update %s %s: unable to create lock file %s: %s",
		 m->owner ? "mailbox" : "file", m->path, m->lock,
		 errno == EEXIST ? "file exists (mailbox busy)" : strerror(errno));
	return -1;
}

static void dotunlock(struct mbox *m)
{
	if (!m->dotlocked)
		return;
	if (m->as_root)
		lpriv_root();
	unlink(m->lock);
	m->dotlocked = false;
}

/* ---- the kernel locks ---- */

static int try_lock(int fd, bool use_flock)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	if (use_flock)
		return flock(fd, LOCK_EX | LOCK_NB);
	return fcntl(fd, F_SETLK, &fl);
}

static int kernel_lock(struct mbox *m, bool use_flock, struct local_result *res)
{
	int n = attempts(m->d->cfg);

	for (int i = 0; i < n; i++) {
		if (try_lock(m->fd, use_flock) == 0)
			return 0;
		if (errno != EAGAIN && errno != EACCES && errno != EWOULDBLOCK)
			break;
		if (i + 1 < n)
			lock_pause(m->d->cfg);
	}
	lres_set(res, 4, "4.2.0", "cannot update %s %s: unable to lock for exclusive access: %s",
		 m->owner ? "mailbox" : "file", m->path, strerror(errno));
	return -1;
}

/* ---- opening ---- */

static int check_file(struct mbox *m, struct local_result *res)
{
	const char *what = m->owner ? "mailbox" : "file";

	if (m->owner == NULL && S_ISCHR(m->st.st_mode))
		return 0;       /* /dev/null */
	if (!S_ISREG(m->st.st_mode)) {
		lres_set(res, 4, "4.2.0", "cannot update %s %s: not a regular file",
			 what, m->path);
		return -1;
	}
	if (m->st.st_nlink != 1) {
		lres_set(res, 4, "4.2.0", "cannot update %s %s: file has %lu hard links",
			 what, m->path, (unsigned long)m->st.st_nlink);
		return -1;
	}
	if (m->owner && m->st.st_uid != m->owner->uid
	    && cfg_bool(m->d->cfg, "strict_mailbox_ownership")) {
		lres_set(res, 4, "4.2.0", "cannot update mailbox %s: file is owned by uid %lu, not by the recipient (strict_mailbox_ownership)",
			 m->path, (unsigned long)m->st.st_uid);
		return -1;
	}
	return 0;
}

static int open_mbox(struct mbox *m, struct local_result *res)
{
	int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC;

	m->fd = open(m->path, flags);
	if (m->fd < 0 && errno == ENOENT) {
		m->fd = open(m->path, flags | O_CREAT | O_EXCL, 0600);
		if (m->fd >= 0 && m->as_root && m->owner
		    && fchown(m->fd, m->owner->uid, m->owner->gid) < 0) {
			lres_errno(res, errno, "cannot give mailbox %s to %s",
				   m->path, m->owner->name);
			return -1;
		}
	}
	if (m->fd < 0 && errno == ELOOP) {
		lres_set(res, 4, "4.2.0", "cannot update %s %s: it is a symbolic link",
			 m->owner ? "mailbox" : "file", m->path);
		return -1;
	}
	if (m->fd < 0) {
		lres_errno(res, errno, "cannot update %s %s",
			   m->owner ? "mailbox" : "file", m->path);
		return -1;
	}
	if (fstat(m->fd, &m->st) < 0) {
		lres_errno(res, errno, "cannot stat %s", m->path);
		return -1;
	}
	return check_file(m, res);
}

/* A mail spool that is not world-writable is opened as root. */
static bool spool_as_root(const struct ldeliv *d, const struct lpriv *owner)
{
	struct stat st;

	if (owner == NULL || !ldeliv_box(d)->spool_as_root
	    || *cfg_str(d->cfg, "home_mailbox") != 0 || !lpriv_capable())
		return false;
	return stat(cfg_str(d->cfg, "mail_spool_directory"), &st) == 0
		&& (st.st_mode & S_IWOTH) == 0;
}

/* ---- writing ---- */

static void copy_opts(const struct mbox *m, struct lcopy_opts *o,
		      const char **dt)
{
	const struct ldeliv *d = m->d;

	memset(o, 0, sizeof *o);
	o->from_line = o->quote_from = o->blank_end = true;
	o->return_path = d->msg.env->sender;
	o->orig_to = d->orig_rcpt;
	dt[0] = d->delivered;
	dt[1] = NULL;
	if (m->owner != NULL || local_prepend_delivered(d->cfg, "file"))
		o->delivered_to = dt;
}

static int too_big(const struct mbox *m, struct local_result *res)
{
	const char *param = ldeliv_box(m->d)->size_limit;
	long long limit = cfg_size(m->d->cfg, param);

	if (limit <= 0 || !S_ISREG(m->st.st_mode)
	    || m->st.st_size + m->d->msg.env->size <= limit)
		return 0;
	lres_set(res, 5, "5.2.2", "cannot update %s %s: mailbox full (%s %lld)",
		 m->owner ? "mailbox" : "file", m->path, param, limit);
	return -1;
}

static void append(struct mbox *m, struct local_result *res)
{
	bool reg = S_ISREG(m->st.st_mode);
	struct lcopy_opts o;
	const char *dt[2];
	off_t start = reg ? lseek(m->fd, 0, SEEK_END) : 0;

	copy_opts(m, &o, dt);
	if (start < 0 || lcopy_to_fd(&m->d->msg, &o, m->fd) < 0
	    || (reg && fsync(m->fd) < 0)) {
		int err = errno;

		if (reg && start >= 0 && ftruncate(m->fd, start) == 0)
			fsync(m->fd);
		lres_errno(res, err, "cannot update %s %s",
			   m->owner ? "mailbox" : "file", m->path);
		return;
	}
	if (m->owner)
		lres_set(res, 2, "2.0.0", "delivered to mailbox");
	else
		lres_set(res, 2, "2.0.0", "delivered to file: %s", m->path);
}

static int lock_all(struct mbox *m, struct local_result *res)
{
	if (S_ISCHR(m->st.st_mode))
		return 0;
	if (lock_wanted(m->d, "fcntl") && kernel_lock(m, false, res) < 0)
		return -1;
	if (lock_wanted(m->d, "flock") && kernel_lock(m, true, res) < 0)
		return -1;
	return 0;
}

static void deliver(struct mbox *m, struct local_result *res)
{
	if (m->as_root ? lpriv_root() < 0 : lpriv_become(m->p) < 0) {
		lres_errno(res, errno, "cannot take the privileges of %s",
			   m->as_root ? "root" : m->p->name);
		return;
	}
	if (lock_wanted(m->d, "dotlock") && dotlock(m, res) < 0)
		return;
	if (open_mbox(m, res) < 0 || lock_all(m, res) < 0)
		return;
	if (m->as_root && lpriv_become(m->p) < 0) {
		lres_errno(res, errno, "cannot take the privileges of %s",
			   m->p->name);
		return;
	}
	if (too_big(m, res) == 0)
		append(m, res);
}

void lmbox_deliver(const struct ldeliv *d, const char *path,
		   const struct lpriv *p, const struct lpriv *owner,
		   struct local_result *res)
{
	struct mbox m = { .d = d, .path = path, .p = p, .owner = owner,
			  .fd = -1 };

	m.as_root = spool_as_root(d, owner);
	deliver(&m, res);
	if (m.fd >= 0)
		close(m.fd);    /* releases the fcntl and flock locks */
	dotunlock(&m);
}
