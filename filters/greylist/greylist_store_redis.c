/*
 * greylist_store_redis.c - the shared greylist store: a Redis server
 * (greylist_store = redis:host:port[/db]) used by several sluice nodes,
 * through hiredis' synchronous API on the plugin's pool threads.
 *
 * Promises (greylist_store.h): a key per record ("sluice:gl:" + the
 * plugin's key) holding "first last count", set with EX ttl so Redis
 * forgets it after greylist_max_age; one connection per process, used
 * by one pool thread at a time (a mutex), with greylist_redis_timeout
 * for connecting and for each command; a connection that failed is
 * dropped and made again on the next call, and a command that fails on
 * a connection made earlier is tried once more on a new one, so a Redis
 * that restarted is used again at once, without a reload.  Failures are reported, never retried
 * here (the plugin fails open or defers, per
 * greylist_store_failure_action).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "greylist_store.h"

#define GL_REDIS_PREFIX "sluice:gl:"

struct gl_redis {
	pthread_mutex_t lock;
	redisContext *c;        /* NULL: not connected */
	char host[256];
	int port;
	int db;
	struct timeval timeout;
};

/* "host:port[/db]" (host may be [v6]). */
static int parse_name(struct gl_redis *s, const char *name)
{
	const char *colon, *h = name, *hend;

	if (*h == '[') {
		if ((hend = strchr(h, ']')) == NULL || hend[1] != ':')
			return -1;
		h++;
		colon = hend + 1;
	} else {
		if ((colon = strrchr(name, ':')) == NULL)
			return -1;
		hend = colon;
	}
	if (hend - h <= 0 || (size_t)(hend - h) >= sizeof s->host)
		return -1;
	memcpy(s->host, h, hend - h);
	s->host[hend - h] = 0;
	if (sscanf(colon + 1, "%d", &s->port) != 1 || s->port <= 0
	    || s->port > 65535)
		return -1;
	const char *slash = strchr(colon + 1, '/');
	s->db = slash ? atoi(slash + 1) : 0;
	return 0;
}

static void *redis_open(const char *name, const struct gl_store_opts *o,
			char *err, size_t errlen)
{
	struct gl_redis *s = calloc(1, sizeof *s);
	long long ms = o->redis_timeout_ms;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (parse_name(s, name) < 0) {
		snprintf(err, errlen, "redis:%s: expected redis:host:port[/db]",
			 name);
		free(s);
		return NULL;
	}
	if (ms <= 0)
		ms = 1000;
	s->timeout.tv_sec = ms / 1000;
	s->timeout.tv_usec = (ms % 1000) * 1000;
	pthread_mutex_init(&s->lock, NULL);
	return s;      /* connected on first use, on a pool thread */
}

static void drop(struct gl_redis *s)
{
	if (s->c != NULL)
		redisFree(s->c);
	s->c = NULL;
}

/* Connected (and db selected), or -1 with err.  Lock held. */
static int connect_locked(struct gl_redis *s, char *err, size_t errlen)
{
	redisReply *r;

	if (s->c != NULL)
		return 0;
	s->c = redisConnectWithTimeout(s->host, s->port, s->timeout);
	if (s->c == NULL || s->c->err) {
		snprintf(err, errlen, "redis %s:%d: %s", s->host, s->port,
			 s->c ? s->c->errstr : "cannot allocate");
		drop(s);
		return -1;
	}
	redisSetTimeout(s->c, s->timeout);
	if (s->db != 0) {
		r = redisCommand(s->c, "SELECT %d", s->db);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			snprintf(err, errlen, "redis %s:%d: SELECT %d: %s",
				 s->host, s->port, s->db,
				 r ? r->str : s->c->errstr);
			if (r)
				freeReplyObject(r);
			drop(s);
			return -1;
		}
		freeReplyObject(r);
	}
	return 0;
}

/* One command; the reply, or NULL with err (the connection dropped). */
static redisReply *command(struct gl_redis *s, char *err, size_t errlen,
			   const char *fmt, const char *key, const char *val,
			   long long ttl)
{
	redisReply *r;
	bool reused = s->c != NULL;

	if (connect_locked(s, err, errlen) < 0)
		return NULL;
	r = val ? redisCommand(s->c, fmt, key, val, ttl)
		: redisCommand(s->c, fmt, key);
	if (r == NULL && reused) {
		/* a connection made before Redis restarted: once more, anew */
		drop(s);
		if (connect_locked(s, err, errlen) < 0)
			return NULL;
		r = val ? redisCommand(s->c, fmt, key, val, ttl)
			: redisCommand(s->c, fmt, key);
	}
	if (r == NULL) {
		snprintf(err, errlen, "redis %s:%d: %s", s->host, s->port,
			 s->c->errstr);
		drop(s);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "redis %s:%d: %s", s->host, s->port,
			 r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

static int redis_get(void *h, const char *key, struct gl_rec *rec,
		     char *err, size_t errlen)
{
	struct gl_redis *s = h;
	redisReply *r;
	int found = -1;

	pthread_mutex_lock(&s->lock);
	r = command(s, err, errlen, "GET " GL_REDIS_PREFIX "%s", key, NULL, 0);
	if (r != NULL) {
		found = 0;
		if (r->type == REDIS_REPLY_STRING
		    && sscanf(r->str, "%lld %lld %lld", &rec->first, &rec->last,
			      &rec->count) == 3)
			found = 1;
		freeReplyObject(r);
	}
	pthread_mutex_unlock(&s->lock);
	return found;
}

static int redis_put(void *h, const char *key, const struct gl_rec *rec,
		     long long ttl, char *err, size_t errlen)
{
	struct gl_redis *s = h;
	redisReply *r;
	char val[96];

	snprintf(val, sizeof val, "%lld %lld %lld", rec->first, rec->last,
		 rec->count);
	pthread_mutex_lock(&s->lock);
	r = command(s, err, errlen, "SET " GL_REDIS_PREFIX "%s %s EX %lld",
		    key, val, ttl > 0 ? ttl : 1);
	if (r != NULL)
		freeReplyObject(r);
	pthread_mutex_unlock(&s->lock);
	return r != NULL ? 0 : -1;
}

static void redis_close(void *h)
{
	struct gl_redis *s = h;

	if (s != NULL) {
		drop(s);
		pthread_mutex_destroy(&s->lock);
		free(s);
	}
}

const struct gl_store_ops gl_store_redis = {
	"redis", redis_open, redis_get, redis_put, redis_close
};
