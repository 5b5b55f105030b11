/*
 * jobpool.h - a small thread pool whose completions run in the event loop.
 *
 * Blocking work (fsync for the queue's group commit, a virus scan, a
 * plugin's job) runs on one of a few threads; its done() callback is then
 * called from the worker's libevent loop, so the code that continues the
 * session never needs a lock.  One pool per process, created by the worker
 * after fork.
 */
#ifndef SLUICE_JOBPOOL_H
#define SLUICE_JOBPOOL_H

struct event_base;

typedef void (*job_fn)(void *arg);

/* Create the process' pool with `nthreads` threads, delivering completions
 * into `base`.  Returns 0 or -1 (errno set). */
int jobpool_start(struct event_base *base, int nthreads);
/* Stop the threads after the queued jobs finish (their done() still runs
 * if the loop keeps running). */
void jobpool_stop(void);
/* Queue work(arg) on a thread, then done(arg) in the loop. */
int jobpool_submit(job_fn work, job_fn done, void *arg);
/* Post done(arg) into the loop from any thread (used by other threads that
 * the core owns, like the queue committer). */
int jobpool_post(job_fn done, void *arg);

#endif
