/*
 * queue_id.c - queue IDs: a time stamp and the file's inode, in hex.
 *
 * An ID is 8 hex digits of seconds, 5 of microseconds, then the inode
 * number of the file it names (queue.h).  queue_file.c takes a stamp,
 * formats the ID and renames the new file to it.
 *
 * Promises: stamps grow strictly within a process, so IDs sort by arrival
 * and a clock step back never repeats one (the stamp moves on by one
 * microsecond from the last instead); queue_id_stamp() is safe from any
 * thread.
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/time.h>

#include "queue_internal.h"

static pthread_mutex_t stamp_lock = PTHREAD_MUTEX_INITIALIZER;
static struct timeval last_stamp;       /* newest ID time of this process */

void queue_id_stamp(struct timeval *tv)
{
	pthread_mutex_lock(&stamp_lock);
	gettimeofday(tv, NULL);
	if (!timercmp(tv, &last_stamp, >)) {
		*tv = last_stamp;
		if (++tv->tv_usec >= 1000000) {
			tv->tv_sec++;
			tv->tv_usec = 0;
		}
	}
	last_stamp = *tv;
	pthread_mutex_unlock(&stamp_lock);
}

void queue_id_format(char *id, const struct timeval *tv, ino_t ino)
{
	snprintf(id, QUEUE_ID_MAX, "%08llX%05lX%llX",
		 (unsigned long long) tv->tv_sec & 0xffffffffULL,
		 (unsigned long) tv->tv_usec, (unsigned long long) ino);
}
