/*
 * queue_commit.c - group commit: queue files made durable, many per flush.
 *
 * queue_commit() seals the file in the event loop (envelope, preamble,
 * mode 0700: page-cache writes, see queue_file_seal) and hands it to the
 * committer thread.  The committer takes every file waiting, fsync()s each
 * one, then fsync()s each directory holding them once for the whole batch,
 * and only then posts each done() into the loop (jobpool_post).  Files
 * handed over during a flush wait for the next one: under load one flush
 * serves many sessions, and no commit waits for more than two.
 *
 * Why fsync and not fdatasync: the file's mode (0700 marks it complete) is
 * inode metadata that fdatasync may leave behind, and a crash must never
 * turn an acknowledged message back into a "half-written" 0600 file that
 * start-up would delete.  Why the directory too: the file's name (its
 * queue ID, given by rename) lives in the directory, not in the file.
 *
 * The promise: done(arg, 0) runs only after the file's data, its inode and
 * the directory entry naming it are on stable storage.  On any failure
 * (ENOSPC, EIO, ...) the file is removed and done(arg, errno) runs
 * instead.  done() always runs in the loop thread, never inside
 * queue_commit(), except in a process without a committer thread (a
 * command-line tool), where the whole commit runs in the caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobpool.h"
#include "log.h"
#include "queue.h"
#include "queue_internal.h"

struct commit_job {
	struct commit_job *next;
	struct queue_file *qf;  /* closed or removed by report() */
	char id[QUEUE_ID_MAX];
	queue_done_fn done;
	void *arg;
	int err;                /* 0 or errno */
	bool dir_synced;        /* its directory was flushed in this batch */
};

/* Everything here is shared with the committer thread, under `lock`. */
static struct committer {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct commit_job *head, **tail;        /* waiting for a flush */
	pthread_t thread;
	bool running, stopping, held;
	struct queue_commit_stats stats;
} cm = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
	.tail = &cm.head,
};

/* ---- reporting, in the loop ---- */

/* Close the file, or remove it after a failure, then tell the caller. */
static void report(void *ctx)
{
	struct commit_job *job = ctx;

	if (job->err != 0) {
		msg_warn("%s: queue file not committed, removed: %s",
			 job->id, strerror(job->err));
		queue_abort(job->qf);
	} else {
		queue_file_close(job->qf);
	}
	if (job->done != NULL)
		job->done(job->arg, job->err);
	free(job);
}

/* From the loop thread: through the loop when a pool runs, else now. */
static void report_from_loop(struct commit_job *job)
{
	if (jobpool_post(report, job) < 0)
		report(job);
}

/* From the committer thread: only through the loop. */
static void report_from_committer(struct commit_job *job)
{
	if (jobpool_post(report, job) < 0)
		msg_fatal("%s: cannot report a queue commit to the event loop: %m",
			  job->id);
}

/* ---- one batch ---- */

static int fsync_retry(int fd)
{
	while (fsync(fd) < 0)
		if (errno != EINTR)
			return errno;
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd, err;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return errno;
	err = fsync_retry(fd);
	close(fd);
	return err;
}

static void sync_files(struct commit_job *batch, struct queue_commit_stats *st)
{
	struct commit_job *job;

	for (job = batch; job != NULL; job = job->next) {
		if (job->err != 0)
			continue;
		job->err = fsync_retry(queue_file_fd(job->qf));
		st->file_syncs++;
	}
}

/* Each directory once: its result is the result of every file in it. */
static void sync_dirs(struct commit_job *batch, struct queue_commit_stats *st)
{
	struct commit_job *job, *other;
	const char *dir;
	int err;

	for (job = batch; job != NULL; job = job->next) {
		if (job->err != 0 || job->dir_synced)
			continue;
		dir = queue_file_dir(job->qf);
		err = fsync_dir(dir);
		st->dir_syncs++;
		for (other = job; other != NULL; other = other->next) {
			if (other->err != 0 || other->dir_synced
			    || strcmp(queue_file_dir(other->qf), dir) != 0)
				continue;
			other->dir_synced = true;
			other->err = err;
		}
	}
}

static void count_results(const struct commit_job *batch,
			  struct queue_commit_stats *st)
{
	for (; batch != NULL; batch = batch->next) {
		st->files++;
		st->failures += batch->err != 0;
	}
}

/* Counted before reporting, so a done() already sees its commit counted. */
static void add_stats(const struct queue_commit_stats *st)
{
	pthread_mutex_lock(&cm.lock);
	if (st->file_syncs > 0)
		cm.stats.batches++;
	cm.stats.files += st->files;
	cm.stats.file_syncs += st->file_syncs;
	cm.stats.dir_syncs += st->dir_syncs;
	cm.stats.failures += st->failures;
	pthread_mutex_unlock(&cm.lock);
}

static void report_all(struct commit_job *batch, bool in_committer)
{
	struct commit_job *job, *next;

	for (job = batch; job != NULL; job = next) {
		next = job->next;
		if (in_committer)
			report_from_committer(job);
		else
			report_from_loop(job);
	}
}

static void commit_batch(struct commit_job *batch, bool in_committer)
{
	struct queue_commit_stats st = { 0 };

	sync_files(batch, &st);
	sync_dirs(batch, &st);
	count_results(batch, &st);
	add_stats(&st);
	report_all(batch, in_committer);
}

/* ---- the committer thread ---- */

/* Every job waiting, or NULL once stopping with nothing left. */
static struct commit_job *next_batch(void)
{
	struct commit_job *batch;

	pthread_mutex_lock(&cm.lock);
	while (!cm.stopping && (cm.head == NULL || cm.held))
		pthread_cond_wait(&cm.wake, &cm.lock);
	batch = cm.head;
	cm.head = NULL;
	cm.tail = &cm.head;
	pthread_mutex_unlock(&cm.lock);
	return batch;
}

static void *committer_main(void *unused)
{
	struct commit_job *batch;

	while ((batch = next_batch()) != NULL)
		commit_batch(batch, true);
	return NULL;
}

/* Hand a sealed file to the committer; false when none runs. */
static bool hand_over(struct commit_job *job)
{
	bool taken;

	pthread_mutex_lock(&cm.lock);
	taken = cm.running && !cm.stopping;
	if (taken) {
		job->next = NULL;
		*cm.tail = job;
		cm.tail = &job->next;
		pthread_cond_signal(&cm.wake);
	}
	pthread_mutex_unlock(&cm.lock);
	return taken;
}

void queue_commit(struct queue_file *qf, const struct queue_envelope *env,
		  queue_done_fn done, void *arg)
{
	struct commit_job *job = calloc(1, sizeof(*job));

	if (job == NULL)        /* as Postfix's mymalloc: no way to go on */
		msg_fatal("%s: out of memory for a queue commit",
			  queue_file_id(qf));
	snprintf(job->id, sizeof(job->id), "%s", queue_file_id(qf));
	job->qf = qf;
	job->done = done;
	job->arg = arg;
	if (queue_file_seal(qf, env) < 0) {
		job->err = errno;
		commit_batch(job, false);       /* removes and reports */
		return;
	}
	if (!hand_over(job))
		commit_batch(job, false);       /* no committer: do it here */
}

int queue_committer_start(void)
{
	sigset_t all, old;
	int rc;

	pthread_mutex_lock(&cm.lock);
	rc = cm.running ? EBUSY : 0;
	pthread_mutex_unlock(&cm.lock);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&cm.thread, NULL, committer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	pthread_mutex_lock(&cm.lock);
	cm.running = true;
	pthread_mutex_unlock(&cm.lock);
	return 0;
}

/* Flushes what is waiting (even while held), then ends the thread. */
void queue_committer_stop(void)
{
	pthread_mutex_lock(&cm.lock);
	if (!cm.running) {
		pthread_mutex_unlock(&cm.lock);
		return;
	}
	cm.stopping = true;
	pthread_cond_signal(&cm.wake);
	pthread_mutex_unlock(&cm.lock);
	pthread_join(cm.thread, NULL);
	pthread_mutex_lock(&cm.lock);
	cm.running = false;
	cm.stopping = false;
	pthread_mutex_unlock(&cm.lock);
}

void queue_committer_hold(bool hold)
{
	pthread_mutex_lock(&cm.lock);
	cm.held = hold;
	pthread_cond_signal(&cm.wake);
	pthread_mutex_unlock(&cm.lock);
}

void queue_commit_stats(struct queue_commit_stats *st)
{
	pthread_mutex_lock(&cm.lock);
	*st = cm.stats;
	pthread_mutex_unlock(&cm.lock);
}
