/*
 * smtp_client_cache.c - the SMTP/LMTP client's connection pool: idle
 * connections kept for the next delivery to the same transport and next
 * hop (Postfix's connection cache), and connections saying QUIT.
 *
 * A connection whose transaction ended cleanly may be kept idle for
 * smtp_connection_cache_time_limit seconds (while
 * smtp_connection_cache_on_demand is on, and within
 * smtp_connection_reuse_time_limit and _count_limit, which the caller
 * checks); then it says QUIT.  An idle connection the server talks on or
 * closes is dropped at once.  At most SMTPC_POOL_MAX are kept: the
 * oldest is let go first.  A connection saying QUIT is freed when its
 * QUIT was written (smtp_skip_quit_response) or answered, or after
 * smtp_quit_timeout.
 *
 * This file owns the pool, the only process-wide state of the client
 * besides TLS's (tls_client.c); smtp_client_shutdown() empties both.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "smtp_client.h"
#include "tls_client.h"

enum { POOL_NONE = 0, POOL_IDLE, POOL_CLOSING };

static struct {
	struct smtpc_conn *idle;        /* newest first */
	struct smtpc_conn *closing;
	int nidle;
} pool;

static struct smtpc_conn **list_of(int where)
{
	return where == POOL_IDLE ? &pool.idle : &pool.closing;
}

void smtpc_pool_forget(struct smtpc_conn *c)
{
	if (c->idle_ev) {
		event_free(c->idle_ev);
		c->idle_ev = NULL;
	}
	if (c->pool_where == POOL_NONE)
		return;
	for (struct smtpc_conn **p = list_of(c->pool_where); *p;
	     p = &(*p)->pool_next)
		if (*p == c) {
			*p = c->pool_next;
			break;
		}
	if (c->pool_where == POOL_IDLE)
		pool.nidle--;
	c->pool_where = POOL_NONE;
	c->pool_next = NULL;
}

static void add(struct smtpc_conn *c, int where, long long secs,
		event_callback_fn fn)
{
	struct timeval tv = { (time_t)(secs > 0 ? secs : 1), 0 };

	c->idle_ev = evtimer_new(c->base, fn, c);
	if (c->idle_ev == NULL)
		msg_fatal("smtp: out of memory");
	evtimer_add(c->idle_ev, &tv);
	c->pool_where = where;
	c->pool_next = *list_of(where);
	*list_of(where) = c;
	if (where == POOL_IDLE)
		pool.nidle++;
}

static void on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc_conn *c = arg;

	smtpc_pool_forget(c);
	smtpc_conn_quit(c);
}

static void on_quit_timeout(evutil_socket_t fd, short what, void *arg)
{
	smtpc_conn_free(arg);
}

static void drop_oldest_idle(void)
{
	struct smtpc_conn *c = pool.idle;

	while (c && c->pool_next)
		c = c->pool_next;
	if (c) {
		smtpc_pool_forget(c);
		smtpc_conn_quit(c);
	}
}

void smtpc_pool_keep(struct smtpc_conn *c, const struct smtpc_params *par)
{
	smtpc_pool_forget(c);
	if (par->cache_time_limit <= 0) {
		smtpc_conn_quit(c);
		return;
	}
	if (pool.nidle >= SMTPC_POOL_MAX)
		drop_oldest_idle();
	c->state = SMTPC_IDLE;
	c->d = NULL;
	c->par = NULL;
	c->reused = false;
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
	add(c, POOL_IDLE, par->cache_time_limit, on_idle_timeout);
}

struct smtpc_conn *smtpc_pool_take(const char *key,
				   const struct smtpc_params *par)
{
	if (!par->cache_on_demand)
		return NULL;
	for (struct smtpc_conn *c = pool.idle; c; c = c->pool_next) {
		if (strcmp(c->key, key) != 0)
			continue;
		smtpc_pool_forget(c);
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
			smtpc_conn_free(c);     /* it said something: not clean */
			return smtpc_pool_take(key, par);
		}
		return c;
	}
	return NULL;
}

void smtpc_pool_closing(struct smtpc_conn *c)
{
	smtpc_pool_forget(c);
	add(c, POOL_CLOSING, c->quit_timeout, on_quit_timeout);
}

void smtp_client_shutdown(void)
{
	while (pool.idle)
		smtpc_conn_free(pool.idle);
	while (pool.closing)
		smtpc_conn_free(pool.closing);
	tlsc_shutdown();                /* TLS contexts and sessions */
}
