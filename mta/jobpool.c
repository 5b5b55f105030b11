/*
 * jobpool.c - a few threads for blocking work, completions in the loop.
 *
 * jobpool_submit() queues work(arg) for one of the pool's threads; when it
 * returns, done(arg) is queued for the event loop.  jobpool_post() queues
 * only a done(arg), from any thread.  The loop learns about completions
 * through a non-blocking pipe watched by one libevent event: a poster
 * writes one byte when the completion list goes from empty to non-empty,
 * and the loop drains the pipe, then runs the whole list in order.  The
 * event base is touched only by the loop's own thread, so libevent needs
 * no locking of its own.
 *
 * Promises: every done() runs in the loop thread, outside any lock (it may
 * submit or post again), in the order the completions were queued, and
 * exactly once, provided the loop keeps running.  Pool threads block all
 * signals, so signals reach the loop thread.  jobpool_stop() lets the
 * queued jobs finish first.  One pool per process (the state below).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "jobpool.h"

struct job {
	struct job *next;
	job_fn work;            /* NULL for a posted completion */
	job_fn done;
	void *arg;
};

struct job_list {
	struct job *head;
	struct job **tail;
};

/* Fields that other threads read are changed under `lock`; the rest
 * belong to the loop thread (start, stop and the wake event). */
static struct jobpool {
	pthread_mutex_t lock;
	pthread_cond_t work_ready;
	struct job_list work;           /* waiting for a thread */
	struct job_list completed;      /* waiting for the loop */
	pthread_t *threads;
	int nthreads;
	bool started;                   /* start..teardown */
	bool stopping;                  /* no new work: threads finishing */
	bool teardown_pending;          /* stopped; free once drained */
	int wake[2];                    /* pipe: posters -> loop */
	struct event *wake_ev;
} pool = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.work_ready = PTHREAD_COND_INITIALIZER,
	.work = { NULL, &pool.work.head },
	.completed = { NULL, &pool.completed.head },
	.wake = { -1, -1 },
};

static void list_push(struct job_list *l, struct job *j)
{
	j->next = NULL;
	*l->tail = j;
	l->tail = &j->next;
}

static struct job *list_pop(struct job_list *l)
{
	struct job *j = l->head;

	if (j != NULL && (l->head = j->next) == NULL)
		l->tail = &l->head;
	return j;
}

static struct job *list_take_all(struct job_list *l)
{
	struct job *all = l->head;

	l->head = NULL;
	l->tail = &l->head;
	return all;
}

/* Queue a completion; wake the loop if it may be asleep.  Lock held. */
static void complete_locked(struct job *j)
{
	bool was_empty = pool.completed.head == NULL;
	char byte = 0;

	list_push(&pool.completed, j);
	if (was_empty && write(pool.wake[1], &byte, 1) < 0) {
		/* EAGAIN: the pipe is full, so the loop wakes anyway */
	}
}

static void *pool_thread(void *unused)
{
	struct job *j;

	for (;;) {
		pthread_mutex_lock(&pool.lock);
		while (pool.work.head == NULL && !pool.stopping)
			pthread_cond_wait(&pool.work_ready, &pool.lock);
		j = list_pop(&pool.work);
		pthread_mutex_unlock(&pool.lock);
		if (j == NULL)
			return NULL;            /* stopping, queue empty */
		j->work(j->arg);
		if (j->done == NULL) {
			free(j);
			continue;
		}
		j->work = NULL;
		pthread_mutex_lock(&pool.lock);
		complete_locked(j);
		pthread_mutex_unlock(&pool.lock);
	}
}

/* No poster can reach the pipe once `started` is false. */
static void teardown(void)
{
	pthread_mutex_lock(&pool.lock);
	pool.started = false;
	pool.stopping = false;
	pool.teardown_pending = false;
	pthread_mutex_unlock(&pool.lock);
	event_free(pool.wake_ev);
	pool.wake_ev = NULL;
	close(pool.wake[0]);
	close(pool.wake[1]);
	pool.wake[0] = pool.wake[1] = -1;
}

/* In the loop: run every completion queued so far. */
static void on_wake(evutil_socket_t fd, short what, void *unused)
{
	char drain[256];
	struct job *j, *next;
	bool finished;

	while (read(fd, drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&pool.lock);
	j = list_take_all(&pool.completed);
	pthread_mutex_unlock(&pool.lock);
	for (; j != NULL; j = next) {
		next = j->next;
		j->done(j->arg);
		free(j);
	}
	pthread_mutex_lock(&pool.lock);
	finished = pool.teardown_pending && pool.completed.head == NULL;
	pthread_mutex_unlock(&pool.lock);
	if (finished)
		teardown();
}

/* Start threads with every signal blocked; they inherit the mask. */
static int start_threads(int n)
{
	sigset_t all, old;
	int i, rc = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < n && rc == 0; i++)
		if ((rc = pthread_create(&pool.threads[i], NULL, pool_thread,
					 NULL)) == 0)
			pool.nthreads++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static void join_threads(void)
{
	int i;

	pthread_mutex_lock(&pool.lock);
	pool.stopping = true;
	pthread_cond_broadcast(&pool.work_ready);
	pthread_mutex_unlock(&pool.lock);
	for (i = 0; i < pool.nthreads; i++)
		pthread_join(pool.threads[i], NULL);
	free(pool.threads);
	pool.threads = NULL;
	pool.nthreads = 0;
}

int jobpool_start(struct event_base *base, int nthreads)
{
	int rc;

	if (pool.started) {
		errno = EBUSY;
		return -1;
	}
	if (nthreads < 1)
		nthreads = 1;
	if ((pool.threads = calloc((size_t) nthreads, sizeof(pthread_t))) == NULL)
		return -1;
	if (pipe2(pool.wake, O_NONBLOCK | O_CLOEXEC) < 0)
		goto fail;
	pool.wake_ev = event_new(base, pool.wake[0], EV_READ | EV_PERSIST,
				 on_wake, NULL);
	if (pool.wake_ev == NULL || event_add(pool.wake_ev, NULL) < 0) {
		errno = ENOMEM;
		goto fail;
	}
	pthread_mutex_lock(&pool.lock);
	pool.started = true;
	pthread_mutex_unlock(&pool.lock);
	if ((rc = start_threads(nthreads)) != 0) {
		join_threads();
		teardown();
		errno = rc;
		return -1;
	}
	return 0;

fail:
	rc = errno;
	if (pool.wake_ev != NULL)
		event_free(pool.wake_ev);
	pool.wake_ev = NULL;
	if (pool.wake[0] >= 0) {
		close(pool.wake[0]);
		close(pool.wake[1]);
	}
	pool.wake[0] = pool.wake[1] = -1;
	free(pool.threads);
	pool.threads = NULL;
	errno = rc;
	return -1;
}

void jobpool_stop(void)
{
	bool drained;

	if (!pool.started || pool.teardown_pending)
		return;
	join_threads();
	pthread_mutex_lock(&pool.lock);
	drained = pool.completed.head == NULL;
	pool.teardown_pending = !drained;
	pthread_mutex_unlock(&pool.lock);
	if (drained)
		teardown();
}

static int enqueue(job_fn work, job_fn done, void *arg)
{
	struct job *j = malloc(sizeof(*j));

	if (j == NULL)
		return -1;
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&pool.lock);
	if (!pool.started || (work != NULL && pool.stopping)) {
		pthread_mutex_unlock(&pool.lock);
		free(j);
		errno = ESHUTDOWN;
		return -1;
	}
	if (work != NULL) {
		list_push(&pool.work, j);
		pthread_cond_signal(&pool.work_ready);
	} else {
		complete_locked(j);
	}
	pthread_mutex_unlock(&pool.lock);
	return 0;
}

int jobpool_submit(job_fn work, job_fn done, void *arg)
{
	if (work == NULL) {
		errno = EINVAL;
		return -1;
	}
	return enqueue(work, done, arg);
}

int jobpool_post(job_fn done, void *arg)
{
	if (done == NULL) {
		errno = EINVAL;
		return -1;
	}
	return enqueue(NULL, done, arg);
}
