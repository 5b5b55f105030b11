/*
 * local_maildir.c - delivery to a maildir (home_mailbox "Maildir/", or a
 * "/path/" destination of an alias or .forward: the trailing "/" says
 * maildir).
 *
 * As the recipient: missing directories (the maildir and its tmp/, new/,
 * cur/) are made with mode 0700; the message goes to tmp/ under a unique
 * name "seconds.MmicrosecondsPpid.host", with Return-Path:,
 * X-Original-To: and Delivered-To: first; the file is fsync()ed, then
 * moved into new/ (never replacing a file) and new/ is fsync()ed, so
 * "delivered" is only said of a message that a crash cannot take back.
 * On any error the tmp/ file is removed.  No locking is needed: that is
 * the point of maildir.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "local_int.h"

struct mdir {
	char dir[4096];                 /* without the trailing "/" */
	char tmp[4400], new[4400];
	char host[256];
};

/* Make dir and every missing parent, mode 0700. */
static int make_dirs(const char *dir)
{
	char path[4096];
	size_t len = strlen(dir);

	if (len >= sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; ; p++) {
		if (*p != '/' && *p != 0)
			continue;
		char c = *p;

		*p = 0;
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = c;
		if (c == 0)
			return 0;
	}
}

static int make_maildir(const char *dir)
{
	static const char *const sub[] = { "tmp", "new", "cur" };
	char path[4200];

	if (make_dirs(dir) < 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, sub[i]);
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}

/* The host name, with "/" and ":" written as \057 and \072. */
static void safe_host(char *out, size_t size)
{
	char host[200];
	size_t n = 0;

	if (gethostname(host, sizeof host) < 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = 0;
	for (const char *s = host; *s && n + 5 < size; s++) {
		if (*s == '/' || *s == ':')
			n += (size_t)snprintf(out + n, size - n, "\\%03o",
					      (unsigned char)*s);
		else
			out[n++] = *s;
	}
	out[n] = 0;
}

static void names(struct mdir *m, const char *dir)
{
	struct timeval tv;
	char base[400];
	size_t len;

	snprintf(m->dir, sizeof m->dir, "%s", dir);
	len = strlen(m->dir);
	while (len > 1 && m->dir[len - 1] == '/')
		m->dir[--len] = 0;
	safe_host(m->host, sizeof m->host);
	gettimeofday(&tv, NULL);
	snprintf(base, sizeof base, "%lld.M%ldP%ld.%s", (long long)tv.tv_sec,
		 (long)tv.tv_usec, (long)getpid(), m->host);
	snprintf(m->tmp, sizeof m->tmp, "%s/tmp/%s", m->dir, base);
	snprintf(m->new, sizeof m->new, "%s/new/%s", m->dir, base);
}

static int sync_dir(const char *dir, const char *sub)
{
	char path[4200];
	int fd, rc;

	snprintf(path, sizeof path, "%s/%s", dir, sub);
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int move_new(const struct mdir *m)
{
	if (renameat2(AT_FDCWD, m->tmp, AT_FDCWD, m->new, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (link(m->tmp, m->new) < 0)   /* no RENAME_NOREPLACE here */
		return -1;
	unlink(m->tmp);
	return 0;
}

static void copy_opts(const struct ldeliv *d, bool as_file,
		      struct lcopy_opts *o, const char **dt)
{
	memset(o, 0, sizeof *o);
	o->return_path = d->msg.env->sender;
	o->orig_to = d->orig_rcpt;
	dt[0] = d->delivered;
	dt[1] = NULL;
	if (!as_file || local_prepend_delivered(d->cfg, "file"))
		o->delivered_to = dt;
}

static int write_tmp(const struct ldeliv *d, const struct mdir *m,
		     bool as_file)
{
	struct lcopy_opts o;
	const char *dt[2];
	int fd, err;

	fd = open(m->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -1;
	copy_opts(d, as_file, &o, dt);
	if (lcopy_to_fd(&d->msg, &o, fd) < 0 || fsync(fd) < 0) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return close(fd);
}

void lmaildir_deliver(const struct ldeliv *d, const char *dir,
		      const struct lpriv *p, bool as_file,
		      struct local_result *res)
{
	const char *param = ldeliv_box(d)->size_limit;
	long long limit = cfg_size(d->cfg, param);
	struct mdir m;

	names(&m, dir);
	if (lpriv_become(p) < 0) {
		lres_errno(res, errno, "cannot take the privileges of %s", p->name);
		return;
	}
	if (limit > 0 && d->msg.env->size > limit) {
		lres_set(res, 5, "5.2.2", "maildir delivery failed: message is larger than %s %lld",
			 param, limit);
		return;
	}
	if (make_maildir(m.dir) < 0) {
		lres_errno(res, errno, "maildir delivery failed: create maildir %s",
			   m.dir);
		return;
	}
	if (write_tmp(d, &m, as_file) < 0 || move_new(&m) < 0
	    || sync_dir(m.dir, "new") < 0) {
		int err = errno;

		unlink(m.tmp);
		lres_errno(res, err, "maildir delivery failed: %s", m.tmp);
		return;
	}
	lres_set(res, 2, "2.0.0", "delivered to maildir");
}
