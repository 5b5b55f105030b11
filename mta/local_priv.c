/*
 * local_priv.c - the privileges local and pipe deliveries run with.
 *
 * A delivery child starts as root (when sluice runs as root) and takes
 * the recipient's ids before it touches a mailbox: effective ids for
 * mailbox and file writes (the saved uid stays 0, so it can come back to
 * remove a dot-lock in a mail spool only root may write), real ids for
 * good before any command is executed.  Supplementary groups are the
 * account's (initgroups), or just its group for a uid without a name.
 *
 * The promise: no id-changing call here ever leaves uid 0 in place for a
 * delivery - asked to become root, lpriv_become() and lpriv_drop() fail.
 * A process that is not root (a test, `make run` as a user) cannot change
 * ids at all; then every delivery runs as that user.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "local_int.h"

static void fill(struct lpriv *p, const struct passwd *pw)
{
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	snprintf(p->name, sizeof p->name, "%s", pw->pw_name);
	snprintf(p->home, sizeof p->home, "%s",
		 pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/");
	snprintf(p->shell, sizeof p->shell, "%s",
		 pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh");
}

int lpriv_lookup(const char *name, struct lpriv *p)
{
	struct passwd pw, *res = NULL;
	char buf[16384];
	int err;

	err = getpwnam_r(name, &pw, buf, sizeof buf, &res);
	if (res != NULL) {
		fill(p, res);
		return 1;
	}
	if (err == 0 || err == ENOENT || err == ESRCH || err == EBADF
	    || err == EPERM)
		return 0;
	errno = err;
	return -1;
}

int lpriv_lookup_uid(uid_t uid, gid_t gid, struct lpriv *p)
{
	struct passwd pw, *res = NULL;
	char buf[16384];

	if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res != NULL) {
		fill(p, res);
		if (gid != (gid_t)-1)
			p->gid = gid;
		return 1;
	}
	if (gid == (gid_t)-1) {
		errno = ENOENT; /* no group to take */
		return -1;
	}
	p->uid = uid;
	p->gid = gid;
	snprintf(p->name, sizeof p->name, "#%lu", (unsigned long)uid);
	snprintf(p->home, sizeof p->home, "/");
	snprintf(p->shell, sizeof p->shell, "/bin/sh");
	return 0;
}

int lpriv_default(const struct config *cfg, struct lpriv *p,
		  struct local_result *res)
{
	const char *name = cfg_str(cfg, "default_privs");
	int rc = lpriv_lookup(name, p);

	if (rc < 0) {
		lres_set(res, 4, "4.3.0", "cannot look up default_privs user \"%s\": %s",
			 name, strerror(errno));
		return -1;
	}
	if (rc == 0) {
		lres_set(res, 4, "4.3.5", "default_privs: unknown user \"%s\"",
			 name);
		return -1;
	}
	if (p->uid == 0) {
		lres_set(res, 4, "4.3.5", "default_privs: \"%s\" must not be root",
			 name);
		return -1;
	}
	return 0;
}

bool lpriv_capable(void)
{
	uid_t r, e, s;

	if (getresuid(&r, &e, &s) < 0)
		return false;
	return r == 0 || e == 0 || s == 0;
}

static int set_groups(const struct lpriv *p)
{
	if (p->name[0] != '#' && initgroups(p->name, p->gid) == 0)
		return 0;
	return setgroups(1, &p->gid);
}

int lpriv_root(void)
{
	if (!lpriv_capable())
		return 0;
	if (seteuid(0) < 0 || setegid(0) < 0)
		return -1;
	return 0;
}

int lpriv_become(const struct lpriv *p)
{
	if (!lpriv_capable())
		return 0;
	if (p->uid == 0) {
		errno = EPERM;
		return -1;
	}
	if (seteuid(0) < 0 || setegid(p->gid) < 0 || set_groups(p) < 0
	    || seteuid(p->uid) < 0)
		return -1;
	return 0;
}

int lpriv_drop(const struct lpriv *p)
{
	if (!lpriv_capable())
		return 0;
	if (p->uid == 0) {
		errno = EPERM;
		return -1;
	}
	if (seteuid(0) < 0 || setgid(p->gid) < 0 || set_groups(p) < 0
	    || setuid(p->uid) < 0)
		return -1;
	if (setuid(0) == 0 || geteuid() == 0) {
		errno = EPERM;  /* the kernel left root in place: stop */
		return -1;
	}
	return 0;
}
