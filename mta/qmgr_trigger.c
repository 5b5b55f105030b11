/*
 * qmgr_trigger.c - one-byte wake-up requests to the queue manager through
 * the FIFO queue_directory/public/qmgr (see qmgr_trigger.h).
 *
 * The writer opens the FIFO write-only and non-blocking: with no reader
 * the open fails with ENXIO, which is how "the mail system is down" is
 * told apart.  The reader keeps it open read-write, so the FIFO always
 * has a reader while the queue manager lives and the descriptor never
 * reports end-of-file.
 *
 * Promises: nothing here blocks; the writer refuses anything at the
 * FIFO's name that is not a FIFO (O_NOFOLLOW, then fstat); the reader
 * drains everything waiting and reports only the requests it knows.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qmgr_trigger.h"

#define TRIGGER_FIFO_MODE       0622
#define TRIGGER_DIR_MODE        0711

static int trigger_path(const char *queue_dir, const char *name, char *buf,
			size_t size)
{
	if ((size_t) snprintf(buf, size, "%s/%s", queue_dir, name) >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static unsigned request_bit(char c)
{
	switch (c) {
	case QMGR_REQ_WAKEUP: return QMGR_WANT_WAKEUP;
	case QMGR_REQ_SCAN_INCOMING: return QMGR_WANT_SCAN_INCOMING;
	case QMGR_REQ_SCAN_ALL: return QMGR_WANT_SCAN_ALL;
	case QMGR_REQ_FLUSH_DEAD: return QMGR_WANT_FLUSH_DEAD;
	default: return 0;
	}
}

int qmgr_trigger_send(const char *queue_dir, char what)
{
	char path[4096];
	struct stat st;
	ssize_t n;
	int fd, e;

	if (request_bit(what) == 0) {
		errno = EINVAL;
		return -1;
	}
	if (trigger_path(queue_dir, QMGR_TRIGGER_FIFO, path, sizeof path) < 0)
		return -1;
	fd = open(path, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		close(fd);
		errno = ENXIO;          /* not ours: nobody listens there */
		return -1;
	}
	do
		n = write(fd, &what, 1);
	while (n < 0 && errno == EINTR);
	e = errno;
	close(fd);
	if (n < 0 && e != EAGAIN) {  /* EAGAIN: full of pending requests */
		errno = e;
		return -1;
	}
	return 0;
}

/* Make sure a FIFO (and nothing else) sits at path. */
static int make_fifo(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0) {
		if (S_ISFIFO(st.st_mode) && st.st_uid == geteuid())
			return chmod(path, TRIGGER_FIFO_MODE);
		if (unlink(path) < 0)
			return -1;
	} else if (errno != ENOENT) {
		return -1;
	}
	if (mkfifo(path, TRIGGER_FIFO_MODE) < 0 && errno != EEXIST)
		return -1;
	return chmod(path, TRIGGER_FIFO_MODE);  /* whatever the umask */
}

int qmgr_trigger_open(const char *queue_dir)
{
	char dir[4096], path[4096];
	struct stat st;
	int fd;

	if (trigger_path(queue_dir, QMGR_PUBLIC_DIR, dir, sizeof dir) < 0
	    || trigger_path(queue_dir, QMGR_TRIGGER_FIFO, path,
			    sizeof path) < 0)
		return -1;
	if (mkdir(dir, TRIGGER_DIR_MODE) == 0)
		(void) chmod(dir, TRIGGER_DIR_MODE);
	else if (errno != EEXIST)
		return -1;
	if (make_fifo(path) < 0)
		return -1;
	fd = open(path, O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

unsigned qmgr_trigger_read(int fd)
{
	char buf[512];
	unsigned want = 0;
	ssize_t n, i;

	for (;;) {
		n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (i = 0; i < n; i++)
			want |= request_bit(buf[i]);
	}
	return want;
}
