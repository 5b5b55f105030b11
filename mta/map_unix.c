/*
 * map_unix.c - unix:passwd.byname and unix:group.byname, the system's
 * user and group databases as tables (Postfix's unix: type).
 *
 * unix:passwd.byname answers a user name with the passwd(5) line
 * "name:passwd:uid:gid:gecos:dir:shell" (getpwnam(3)), unix:group.byname
 * a group name with the group(5) line "name:passwd:gid:member,member"
 * (getgrnam(3)) - what Postfix's postmap -q prints.  Keys are folded to
 * lower case, as Postfix folds them (a lookup of "ROOT" finds root).  The
 * tables are read-only and come from NSS, not a file, so nothing is
 * re-read: every lookup asks NSS afresh.  Another name after "unix:" is
 * an error.  A failing NSS lookup (not "no such entry") is a temporary
 * failure.
 *
 * Global state: none (the answer lives in the table's buffer until the
 * next lookup).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "map.h"

enum unix_db { UNIX_PASSWD, UNIX_GROUP };

struct unix_map {
	enum unix_db db;
	char *buf;		/* the last answer */
};

static void *unix_open(const char *name, struct map_source *src,
		       struct diag *d)
{
	struct unix_map *u;
	enum unix_db db;

	if (strcmp(name, "passwd.byname") == 0)
		db = UNIX_PASSWD;
	else if (strcmp(name, "group.byname") == 0)
		db = UNIX_GROUP;
	else {
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "unix:%.60s: unknown table; write unix:passwd.byname or unix:group.byname",
			 name);
		return NULL;
	}
	if ((u = calloc(1, sizeof *u)) == NULL) {
		diag_add(d, DIAG_ERROR, NULL, 0, "unix:%s: out of memory; free some memory",
			 name);
		return NULL;
	}
	u->db = db;
	return u;
}

/* "a,b,c" of a member list, malloc'ed; NULL when out of memory. */
static char *members(char **mem)
{
	size_t len = 1;
	char *s;

	for (int i = 0; mem[i] != NULL; i++)
		len += strlen(mem[i]) + 1;
	if ((s = malloc(len)) == NULL)
		return NULL;
	s[0] = 0;
	for (int i = 0; mem[i] != NULL; i++) {
		if (i > 0)
			strcat(s, ",");
		strcat(s, mem[i]);
	}
	return s;
}

static enum map_status unix_lookup(void *state, const char *key,
				   const char **value)
{
	struct unix_map *u = state;
	int rc;

	free(u->buf);
	u->buf = NULL;
	errno = 0;
	if (u->db == UNIX_PASSWD) {
		struct passwd *pw = getpwnam(key);

		if (pw == NULL)
			return errno == 0 || errno == ENOENT || errno == ESRCH
			       || errno == EBADF || errno == EPERM ? MAP_NOTFOUND : MAP_TEMPFAIL;
		rc = asprintf(&u->buf, "%s:%s:%ld:%ld:%s:%s:%s", pw->pw_name,
			      pw->pw_passwd, (long)pw->pw_uid, (long)pw->pw_gid,
			      pw->pw_gecos, pw->pw_dir, pw->pw_shell);
	} else {
		struct group *gr = getgrnam(key);
		char *mem;

		if (gr == NULL)
			return errno == 0 || errno == ENOENT || errno == ESRCH
			       || errno == EBADF || errno == EPERM ? MAP_NOTFOUND : MAP_TEMPFAIL;
		if ((mem = members(gr->gr_mem)) == NULL)
			return MAP_TEMPFAIL;
		rc = asprintf(&u->buf, "%s:%s:%ld:%s", gr->gr_name, gr->gr_passwd,
			      (long)gr->gr_gid, mem);
		free(mem);
	}
	if (rc < 0)
		u->buf = NULL;
	*value = u->buf;
	return rc < 0 ? MAP_TEMPFAIL : MAP_FOUND;
}

static void unix_close(void *state)
{
	struct unix_map *u = state;

	free(u->buf);
	free(u);
}

const struct map_type map_type_unix = {
	.name = "unix",
	.flags = MAP_TYPE_FOLD,
	.open = unix_open,
	.lookup = unix_lookup,
	.close = unix_close,
};
