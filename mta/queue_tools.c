/*
 * queue_tools.c - what the pieces of `sluice queue` share (queue_tools.h):
 * the queues in listing order, queue ID checks, opening and listing
 * complete queue files, and printing client-controlled text safely.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"
#include "queue_tools.h"

const struct qt_queue qt_queues[] = {
	{ QUEUE_INCOMING, ' ' }, { QUEUE_ACTIVE, '*' },
	{ QUEUE_DEFERRED, ' ' }, { QUEUE_HOLD, '!' },
	{ QUEUE_CORRUPT, ' ' }, { NULL, 0 },
};

bool qt_id_ok(const char *id)
{
	size_t i;

	for (i = 0; id[i]; i++)
		if (!isxdigit((unsigned char) id[i])
		    || islower((unsigned char) id[i]))
			return false;
	return i >= 14 && i < QUEUE_ID_MAX;
}

bool qt_queue_ok(const char *name)
{
	const struct qt_queue *q;

	for (q = qt_queues; q->name != NULL; q++)
		if (strcmp(q->name, name) == 0)
			return true;
	return false;
}

int qt_open(const char *qdir, const char *sub, const char *id,
	    struct stat *st)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof path, "%s/%s/%s", qdir, sub, id);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)
	    || !(st->st_mode & S_IXUSR)) {
		close(fd);
		errno = ENOENT;
		return -1;
	}
	return fd;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Complete queue files only: regular, owner x bit, named by an ID. */
static bool listable(DIR *d, const char *name)
{
	struct stat st;

	return qt_id_ok(name)
		&& fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) == 0
		&& S_ISREG(st.st_mode) && (st.st_mode & S_IXUSR);
}

char **qt_list_ids(const char *qdir, const char *sub, int *n)
{
	char path[4096], **v = NULL, **nv;
	struct dirent *de;
	DIR *d;

	*n = 0;
	snprintf(path, sizeof path, "%s/%s", qdir, sub);
	if ((d = opendir(path)) == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (!listable(d, de->d_name))
			continue;
		if ((nv = realloc(v, (size_t) (*n + 1) * sizeof *v)) == NULL
		    || (nv[*n] = strdup(de->d_name)) == NULL) {
			v = nv ? nv : v;
			break;
		}
		v = nv;
		(*n)++;
	}
	closedir(d);
	if (*n > 1)
		qsort(v, (size_t) *n, sizeof *v, cmp_str);
	return v != NULL ? v : calloc(1, sizeof *v);
}

void qt_free_ids(char **ids, int n)
{
	int i;

	for (i = 0; ids != NULL && i < n; i++)
		free(ids[i]);
	free(ids);
}

void qt_put_safe(FILE *fp, const char *s)
{
	for (; *s; s++)
		putc((unsigned char) *s < 0x20 || *s == 0x7f ? '?' : *s, fp);
}

void qt_time(char *buf, size_t size, long long secs)
{
	time_t t = (time_t) secs;
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL
	    || strftime(buf, size, "%a %b %e %H:%M:%S %Y", &tm) == 0)
		snprintf(buf, size, "%lld", secs);
}
