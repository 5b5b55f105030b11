/*
 * greylist_store_lmdb.c - the embedded greylist store: one LMDB file
 * (greylist_store = lmdb:/path, MDB_NOSUBDIR: the file and PATH-lock),
 * shared by every worker process of the node.
 *
 * Promises (greylist_store.h): each process opens its own environment
 * after the fork (LMDB forbids using one across fork); MDB_NOTLS lets
 * the pool threads share it; every get and put is its own transaction,
 * so a put is durable when it returns (LMDB's default sync) and the
 * readers of every worker see it.  Records are 24 bytes (three 64-bit
 * numbers, host order: the file is local to the host).  Records older
 * than greylist_max_age are ignored by the plugin and overwritten when
 * the key comes back; the file is sized by greylist_lmdb_map_size.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "greylist_store.h"

struct gl_lmdb {
	MDB_env *env;
	MDB_dbi dbi;
};

static void *lmdb_open(const char *name, const struct gl_store_opts *o,
		       char *err, size_t errlen)
{
	struct gl_lmdb *s = calloc(1, sizeof *s);
	long long size = o->lmdb_map_size;
	MDB_txn *txn = NULL;
	int rc;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((rc = mdb_env_create(&s->env)) != 0
	    || (rc = mdb_env_set_mapsize(s->env, size > 0 ? (size_t)size
					 : (size_t)64 << 20)) != 0
	    || (rc = mdb_env_open(s->env, name, MDB_NOSUBDIR | MDB_NOTLS, 0600)) != 0
	    || (rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0
	    || (rc = mdb_dbi_open(txn, NULL, 0, &s->dbi)) != 0
	    || (rc = mdb_txn_commit(txn)) != 0) {
		snprintf(err, errlen, "lmdb:%s: %s", name, mdb_strerror(rc));
		if (txn != NULL && rc != 0)
			mdb_txn_abort(txn);
		if (s->env != NULL)
			mdb_env_close(s->env);
		free(s);
		return NULL;
	}
	return s;
}

static int lmdb_get(void *h, const char *key, struct gl_rec *r,
		    char *err, size_t errlen)
{
	struct gl_lmdb *s = h;
	MDB_txn *txn;
	MDB_val k = { strlen(key), (void *)key }, v;
	int rc, found = 0;

	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0) {
		snprintf(err, errlen, "lmdb: %s", mdb_strerror(rc));
		return -1;
	}
	rc = mdb_get(txn, s->dbi, &k, &v);
	if (rc == 0 && v.mv_size == sizeof *r) {
		memcpy(r, v.mv_data, sizeof *r);
		found = 1;
	} else if (rc != 0 && rc != MDB_NOTFOUND) {
		snprintf(err, errlen, "lmdb: %s", mdb_strerror(rc));
		found = -1;
	}
	mdb_txn_abort(txn);
	return found;
}

static int lmdb_put(void *h, const char *key, const struct gl_rec *r,
		    long long ttl, char *err, size_t errlen)
{
	struct gl_lmdb *s = h;
	MDB_txn *txn;
	MDB_val k = { strlen(key), (void *)key }, v = { sizeof *r, (void *)r };
	int rc;

	(void)ttl;
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
		snprintf(err, errlen, "lmdb: %s", mdb_strerror(rc));
		return -1;
	}
	if ((rc = mdb_put(txn, s->dbi, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		snprintf(err, errlen, "lmdb: %s", mdb_strerror(rc));
		return -1;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		snprintf(err, errlen, "lmdb: %s", mdb_strerror(rc));
		return -1;
	}
	return 0;
}

static void lmdb_close(void *h)
{
	struct gl_lmdb *s = h;

	if (s != NULL) {
		mdb_env_close(s->env);
		free(s);
	}
}

const struct gl_store_ops gl_store_lmdb = {
	"lmdb", lmdb_open, lmdb_get, lmdb_put, lmdb_close
};
