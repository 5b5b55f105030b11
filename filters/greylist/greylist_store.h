/*
 * greylist_store.h - where the greylist plugin keeps its records, behind
 * one vtable: greylist_store_lmdb.c (the embedded default, one LMDB file
 * shared by every worker of the node) and greylist_store_redis.c (one
 * Redis server shared by several nodes).
 *
 * A record is three numbers under a key: when the key was first seen,
 * when last, and how many times it passed.  Promises of every backend:
 *   - open() runs once per process, after the fork, on a pool thread
 *     (the first check_greylist opens the store: a configuration that
 *     does not use it creates no file and no connection); it calls no
 *     sluice_* function, so its settings come in struct gl_store_opts;
 *   - get()/put() may block (disk, network): the plugin calls them on
 *     the thread pool only, and they are safe to call from several pool
 *     threads at once;
 *   - get() returns 1 (found, *r filled), 0 (none, or older than the
 *     ttl given to put), -1 store failure (logged by the caller);
 *   - put() stores r with a time-to-live of ttl seconds; 0 or -1.
 *   - err is a short reason for the caller's warning.
 */
#ifndef GREYLIST_STORE_H
#define GREYLIST_STORE_H

#include <stddef.h>

struct gl_rec {
	long long first;        /* time first seen (s since the epoch) */
	long long last;         /* time last seen */
	long long count;        /* passes */
};

struct gl_store_opts {
	long long lmdb_map_size;        /* greylist_lmdb_map_size, bytes */
	long long redis_timeout_ms;     /* greylist_redis_timeout */
};

struct gl_store_ops {
	const char *type;       /* "lmdb", "redis" */
	void *(*open)(const char *name, const struct gl_store_opts *o,
		      char *err, size_t errlen);
	int (*get)(void *h, const char *key, struct gl_rec *r,
		   char *err, size_t errlen);
	int (*put)(void *h, const char *key, const struct gl_rec *r,
		   long long ttl, char *err, size_t errlen);
	void (*close)(void *h);
};

extern const struct gl_store_ops gl_store_lmdb;
extern const struct gl_store_ops gl_store_redis;

#endif /* GREYLIST_STORE_H */
