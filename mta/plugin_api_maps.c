/*
 * plugin_api_maps.c - the lookup-table and DNS services of
 * plugins/sluice_plugin.h: sluice_map_open, sluice_map_lookup,
 * sluice_access_lookup, sluice_dns_lookup, sluice_dns_cancel.
 *
 * Promises:
 *  - a table spec (one "type:name", or a list of them, tried in order)
 *    is opened once per process: every sluice_map_open() of the same
 *    spec returns the same handle, which lives as long as the process;
 *    map.c re-reads a table whose file changed, so a rebuilt table
 *    answers the next lookup;
 *  - sluice_access_lookup searches in Postfix's access(5) order
 *    (map_access.c) under the session's configuration (main.cf plus its
 *    listener's -o overrides) and reports every key it tried to
 *    sluice_explain();
 *  - a DNS callback runs in the context of the hook (or restriction)
 *    that started the lookup, like a timer's, exactly once unless
 *    cancelled; when that session has closed in the meantime the
 *    callback is not called at all (the plugin's close hook has freed
 *    what `arg` points to).  The handle is freed once the callback
 *    returns: cancelling from the callback itself is harmless, after it
 *    is not allowed (as with timers);
 *  - MX answers are host names by preference, best first; a domain
 *    publishing RFC 7505's null MX answers status 0 with the single
 *    name "." (it accepts no mail), so a caller can tell it from a
 *    domain without MX records (status 1).
 *
 * State: the list of open table handles, owned here, for the one thread
 * of the process (the worker's event loop).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dns.h"
#include "filter_chain.h"
#include "log.h"
#include "map.h"
#include "map_access.h"
#include "smtp_session.h"
#include "sluice_plugin.h"

/* ---- tables ---------------------------------------------------------- */

struct sluice_map {
	char *spec;
	struct map_list *ml;
	struct sluice_map *next;
};

static struct sluice_map *open_tables;

sluice_map *sluice_map_open(const char *spec, char *err, size_t errlen)
{
	struct sluice_map *m;
	struct map_list *ml;

	if (spec == NULL || *spec == 0) {
		snprintf(err, errlen, "no table given; write type:name, e.g. "
			 "hash:/etc/sluice/access");
		return NULL;
	}
	for (m = open_tables; m != NULL; m = m->next)
		if (strcmp(m->spec, spec) == 0)
			return m;
	if ((ml = map_list_open(spec, err, errlen)) == NULL)
		return NULL;
	if ((m = calloc(1, sizeof *m)) == NULL || (m->spec = strdup(spec)) == NULL)
		msg_fatal("plugin api: out of memory");
	m->ml = ml;
	m->next = open_tables;
	open_tables = m;
	return m;
}

static int answer(enum map_status st)
{
	return st == MAP_FOUND ? 1 : st == MAP_NOTFOUND ? 0 : -1;
}

int sluice_map_lookup(sluice_map *m, const char *key, const char **value)
{
	if (m == NULL || key == NULL)
		return 0;
	return answer(map_list_lookup(m->ml, key, value));
}

/* The configuration a session works under (its listener's, with the -o
 * overrides), or main.cf's without a session. */
static const struct config *config_of(sluice_txn *t)
{
	struct smtp_session *s = (struct smtp_session *)t;

	if (s && s->cfg)
		return s->cfg;
	return sluice_conf ? sluice_conf->main : NULL;
}

static void explain_key(void *arg, const char *table, const char *key,
			enum map_status st, const char *value)
{
	sluice_txn *t = arg;

	if (st == MAP_FOUND)
		sluice_explain(t, "key %s: found: %s", key, value);
	else if (st == MAP_NOTFOUND)
		sluice_explain(t, "key %s: not found", key);
	else
		sluice_explain(t, "key %s: lookup error in %s", key,
			       table ? table : "the table");
}

int sluice_access_lookup(sluice_txn *t, sluice_map *m, int kind,
			 const char *key, const char **value)
{
	static const enum map_key_kind kinds[] = {
		[SLUICE_KEY_ADDRESS] = MAP_KEY_ADDRESS,
		[SLUICE_KEY_DOMAIN] = MAP_KEY_DOMAIN,
		[SLUICE_KEY_HOSTNAME] = MAP_KEY_HOSTNAME,
		[SLUICE_KEY_ADDR] = MAP_KEY_ADDR,
	};

	if (m == NULL || key == NULL || kind < 0
	    || kind > SLUICE_KEY_ADDR)
		return 0;
	return answer(map_access_lookup(config_of(t), m->ml, kinds[kind], key,
					value, t ? explain_key : NULL, t));
}

/* ---- DNS ------------------------------------------------------------- */

struct sluice_dns {
	struct dns_req *req;        /* NULL once answered */
	sluice_dns_fn fn;
	void *arg;
	struct filter_ctx ctx;      /* the hook that asked */
	bool delivering;            /* the callback runs: freed when it returns */
};

static void dns_free(struct sluice_dns *q)
{
	filter_ctx_release(&q->ctx);
	free(q);
}

/* Call the plugin back in its context, unless its session has closed. */
static void deliver(struct sluice_dns *q, int status, char **v, int n)
{
	struct filter_ctx previous;

	q->delivering = true;
	if (q->ctx.anchor == NULL || filter_ctx_session(q->ctx) != NULL) {
		previous = filter_ctx_enter(q->ctx);
		q->fn(q->arg, status, v, n);
		filter_ctx_leave(previous);
	}
	dns_free(q);
}

static int status_of(enum dns_status st)
{
	return st == DNS_OK ? 0 : st == DNS_NOTFOUND ? 1 : -1;
}

static void on_strs(void *arg, enum dns_status st, char **v, int n)
{
	deliver(arg, status_of(st), v, st == DNS_OK ? n : 0);
}

static void on_name(void *arg, enum dns_status st, const char *name)
{
	char *v[1] = { (char *)name };

	deliver(arg, name ? status_of(st) : st == DNS_TEMPFAIL ? -1 : 1, v,
		name && st == DNS_OK ? 1 : 0);
}

static void on_mx(void *arg, enum dns_mx_status st, const struct dns_mx *mx,
		  int n)
{
	char *v[64], root[] = ".";
	int k = 0;

	switch (st) {
	case DNS_MX_OK:
		for (int i = 0; i < n && k < 64; i++)
			v[k++] = (char *)mx[i].host;
		deliver(arg, 0, v, k);
		return;
	case DNS_MX_NULL:
		v[0] = root;
		deliver(arg, 0, v, 1);
		return;
	case DNS_MX_NODATA:
	case DNS_MX_NXDOMAIN:
		deliver(arg, 1, v, 0);
		return;
	default:
		deliver(arg, -1, v, 0);
	}
}

static struct dns_req *start(struct sluice_dns *q, const char *name, int type)
{
	switch (type) {
	case SLUICE_DNS_A:
		return dns_lookup_rr(name, DNS_RR_A, on_strs, q);
	case SLUICE_DNS_AAAA:
		return dns_lookup_rr(name, DNS_RR_AAAA, on_strs, q);
	case SLUICE_DNS_NS:
		return dns_lookup_rr(name, DNS_RR_NS, on_strs, q);
	case SLUICE_DNS_TXT:
		return dns_lookup_rr(name, DNS_RR_TXT, on_strs, q);
	case SLUICE_DNS_ADDRS:
		return dns_lookup_addrs(name, on_strs, q);
	case SLUICE_DNS_MX:
		return dns_lookup_mx(name, on_mx, q);
	default:    /* SLUICE_DNS_PTR */
		return dns_lookup_ptr(name, on_name, q);
	}
}

sluice_dns *sluice_dns_lookup(const char *name, int type, sluice_dns_fn fn,
			      void *arg)
{
	struct sluice_dns *q;
	struct dns_req *req;

	if (name == NULL || fn == NULL || type < SLUICE_DNS_A
	    || type > SLUICE_DNS_TXT) {
		msg_error("plugin: sluice_dns_lookup(): %s",
			  fn == NULL ? "no callback" : name == NULL ? "no name"
			  : "unknown record type");
		return NULL;
	}
	if ((q = calloc(1, sizeof *q)) == NULL)
		msg_fatal("plugin api: out of memory");
	q->fn = fn;
	q->arg = arg;
	q->ctx = filter_ctx_current();
	filter_ctx_hold(&q->ctx);
	/* NULL: answered already, and q is gone with the answer. */
	if ((req = start(q, name, type)) == NULL)
		return NULL;
	q->req = req;
	return q;
}

void sluice_dns_cancel(sluice_dns *q)
{
	if (q == NULL || q->delivering)
		return;     /* from its own callback: freed when that returns */
	dns_cancel(q->req);     /* its callback, and so deliver(), never runs */
	dns_free(q);
}
