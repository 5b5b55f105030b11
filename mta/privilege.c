/*
 * privilege.c - entering the queue directory and dropping root for good,
 * the same way in every child of the master (privilege.h).
 *
 * The promise: privilege_drop() returns only when the process can no
 * longer become root (setuid(0) is checked to fail).
 */
#include <errno.h>
#include <grp.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "privilege.h"

void privilege_enter_queue_directory(const struct config *c)
{
	const char *qdir = cfg_str(c, "queue_directory");

	if (chdir(qdir) < 0)
		msg_fatal("cannot enter queue_directory %s: %s", qdir,
			  strerror(errno));
}

void privilege_drop(bool drop, uid_t uid, gid_t gid, const char *user)
{
	if (!drop)
		return;
	if (setgid(gid) < 0)
		msg_fatal("setgid(%ld): %s", (long)gid, strerror(errno));
	if (initgroups(user, gid) < 0)
		msg_fatal("initgroups(%s): %s", user, strerror(errno));
	if (setuid(uid) < 0)
		msg_fatal("setuid(%ld): %s", (long)uid, strerror(errno));
	if (setuid(0) == 0)
		msg_fatal("privileges not dropped: setuid(0) still works");
}
