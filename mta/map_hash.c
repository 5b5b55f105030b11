/*
 * map_hash.c - hash:/path, a table kept in the LMDB file /path.lmdb, and
 * `sluice map build`, which makes that file from the text /path.
 *
 * Building (map_build) reads the text with map_text_read() - the same
 * syntax and checks as texthash: - into a new LMDB file beside the old
 * one (PATH.lmdb.tmpXXXXXX), commits it (LMDB syncs it to disk), renames
 * it over PATH.lmdb and syncs the directory.  So:
 *   - a reader never sees half a table: PATH.lmdb is always a complete
 *     file, the old one or the new one;
 *   - a source with errors builds nothing: the old table stays;
 *   - two builds at once need no lock: each writes its own temporary
 *     file and the last rename wins, both complete;
 *   - the file gets the source's group and other read permissions, as
 *     postmap(1) does.
 * A build killed half-way leaves its PATH.lmdb.tmpXXXXXX behind; it is
 * never read and may be deleted.
 *
 * Reading opens the file with MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK:
 * no lock file is needed (nor could an unprivileged worker create one
 * beside a root-owned table), because a table file is written exactly
 * once, before it gets its name, and never changed afterwards.  For the
 * same reason one read transaction stays open for the life of the table
 * and a lookup is a single mdb_get(), and the open table is safe to use
 * in a child after fork() (LMDB's fork caveat is about its lock table,
 * which NOLOCK does without).  A rebuilt file has a new inode, which
 * map.c notices on the next lookup, opening the new file; the old
 * mapping stays valid until then.  Values are copied out of the map, so
 * they do not depend on the mapping at all.
 *
 * Limits: keys of MAP_KEY_MAX bytes (LMDB's), a source of at most
 * BUILD_MAX bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "map.h"

#define BUILD_MAX	(1024LL * 1024 * 1024)
#define MAPSIZE_TRIES	4	/* doublings of the estimate on MDB_MAP_FULL */

struct hash_map {
	MDB_env *env;
	MDB_txn *txn;		/* read-only, open for the life of the table */
	MDB_dbi dbi;
	char *buf;		/* the last value found */
	size_t cap;
};

/* ---- reading ----------------------------------------------------------- */

static void hash_close(void *state)
{
	struct hash_map *h = state;

	if (h->txn != NULL)
		mdb_txn_abort(h->txn);
	if (h->env != NULL)
		mdb_env_close(h->env);
	free(h->buf);
	free(h);
}

static void open_failed(const char *name, const char *file, int rc,
			struct diag *d)
{
	if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "hash:%s: %s is not a table sluice built (%s); rebuild it with \"sluice map build %s\"",
			 name, file, mdb_strerror(rc), name);
	else if (rc == ENOENT)
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "hash:%s: cannot open %s: %s; run \"sluice map build %s\"",
			 name, file, mdb_strerror(rc), name);
	else
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "hash:%s: cannot open %s: %s; check its permissions",
			 name, file, mdb_strerror(rc));
}

/* A source edited after the table was built: Postfix warns, so do we. */
static void check_age(const char *name, const char *file,
		      const struct stat *db, struct diag *d)
{
	struct stat src;

	if (stat(name, &src) == 0 && src.st_mtime > db->st_mtime)
		diag_add(d, DIAG_WARNING, NULL, 0,
			 "hash:%s: %s is older than %s; run \"sluice map build %s\" to use the changes",
			 name, file, name, name);
}

static int hash_env_open(struct hash_map *h, const char *file)
{
	int rc;

	if ((rc = mdb_env_create(&h->env)) != 0)
		return rc;
	if ((rc = mdb_env_open(h->env, file, MDB_RDONLY | MDB_NOSUBDIR
			       | MDB_NOLOCK, 0)) != 0)
		return rc;
	if ((rc = mdb_txn_begin(h->env, NULL, MDB_RDONLY, &h->txn)) != 0)
		return rc;
	return mdb_dbi_open(h->txn, NULL, 0, &h->dbi);
}

static void *hash_open(const char *name, struct map_source *src,
		       struct diag *d)
{
	struct hash_map *h = calloc(1, sizeof *h);
	char *file = NULL;
	int rc, fd;

	if (h == NULL || asprintf(&file, "%s.lmdb", name) < 0) {
		diag_add(d, DIAG_ERROR, NULL, 0, "hash:%s: out of memory; free some memory", name);
		free(h);
		return NULL;
	}
	if ((rc = hash_env_open(h, file)) == 0
	    && (rc = mdb_env_get_fd(h->env, &fd)) == 0
	    && fstat(fd, &src->st) < 0)
		rc = errno;
	if (rc != 0) {
		open_failed(name, file, rc, d);
		hash_close(h);
		free(file);
		return NULL;
	}
	check_age(name, file, &src->st, d);
	src->path = file;
	return h;
}

static enum map_status hash_lookup(void *state, const char *key,
				   const char **value)
{
	struct hash_map *h = state;
	MDB_val k = { .mv_size = strlen(key), .mv_data = (void *)key }, v;
	int rc;

	if (k.mv_size == 0 || k.mv_size > MAP_KEY_MAX)
		return MAP_NOTFOUND;
	if ((rc = mdb_get(h->txn, h->dbi, &k, &v)) == MDB_NOTFOUND)
		return MAP_NOTFOUND;
	if (rc != 0)
		return MAP_TEMPFAIL;
	if (v.mv_size + 1 > h->cap) {
		char *buf = realloc(h->buf, v.mv_size + 1);

		if (buf == NULL)
			return MAP_TEMPFAIL;
		h->buf = buf;
		h->cap = v.mv_size + 1;
	}
	memcpy(h->buf, v.mv_data, v.mv_size);
	h->buf[v.mv_size] = 0;
	*value = h->buf;
	return MAP_FOUND;
}

const struct map_type map_type_hash = {
	.name = "hash",
	.flags = MAP_TYPE_FOLD,
	.open = hash_open,
	.lookup = hash_lookup,
	.close = hash_close,
};

/* ---- building ---------------------------------------------------------- */

struct build {
	const char *path;	/* the source text */
	const char *out;	/* PATH.lmdb */
	char tmp[PATH_MAX];	/* PATH.lmdb.tmpXXXXXX */
	int flags;
	mode_t mode;
	size_t mapsize;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	bool full;		/* MDB_MAP_FULL: try again, bigger */
	struct diag *d;
};

static void lmdb_failed(struct build *b, const char *what, int rc)
{
	diag_add(b->d, DIAG_ERROR, NULL, 0,
		 "hash:%s: cannot %s %s: %s; check the free space and the permissions of its directory",
		 b->path, what, b->tmp, mdb_strerror(rc));
}

static int put_entry(const char *key, const char *value, int line, void *arg)
{
	struct build *b = arg;
	MDB_val k = { .mv_size = strlen(key), .mv_data = (void *)key };
	MDB_val v = { .mv_size = strlen(value), .mv_data = (void *)value };
	int rc = mdb_put(b->txn, b->dbi, &k, &v, MDB_NOOVERWRITE);

	if (rc == 0)
		return 0;
	if (rc == MDB_KEYEXIST)
		return MAP_TEXT_DUPLICATE;
	if (rc == MDB_MAP_FULL)
		b->full = true;
	else
		lmdb_failed(b, "write", rc);
	return -1;
}

/* A new empty file beside the output, with the source's read bits. */
static int make_tmp(struct build *b)
{
	int fd;

	if (snprintf(b->tmp, sizeof b->tmp, "%s.tmpXXXXXX", b->out)
	    >= (int)sizeof b->tmp) {
		diag_add(b->d, DIAG_ERROR, NULL, 0,
			 "hash:%s: the path is too long; use a shorter one", b->path);
		return -1;
	}
	if ((fd = mkstemp(b->tmp)) < 0) {
		diag_add(b->d, DIAG_ERROR, NULL, 0,
			 "hash:%s: cannot create a file beside %s: %s; check the permissions of its directory",
			 b->path, b->out, strerror(errno));
		return -1;
	}
	if (fchmod(fd, b->mode) < 0) {
		diag_add(b->d, DIAG_ERROR, NULL, 0,
			 "hash:%s: cannot set the mode of %s: %s; check the file system",
			 b->path, b->tmp, strerror(errno));
		close(fd);
		unlink(b->tmp);
		return -1;
	}
	close(fd);
	return 0;
}

static int open_tmp_env(struct build *b)
{
	int rc;

	if ((rc = mdb_env_create(&b->env)) != 0
	    || (rc = mdb_env_set_mapsize(b->env, b->mapsize)) != 0
	    || (rc = mdb_env_open(b->env, b->tmp, MDB_NOSUBDIR | MDB_NOLOCK,
				  0600)) != 0
	    || (rc = mdb_txn_begin(b->env, NULL, 0, &b->txn)) != 0
	    || (rc = mdb_dbi_open(b->txn, NULL, 0, &b->dbi)) != 0) {
		lmdb_failed(b, "create", rc);
		return -1;
	}
	return 0;
}

static void close_tmp_env(struct build *b)
{
	if (b->txn != NULL)
		mdb_txn_abort(b->txn);
	if (b->env != NULL)
		mdb_env_close(b->env);
	b->txn = NULL;
	b->env = NULL;
}

/* The directory entry of the rename must reach the disk too. */
static void sync_dir(const char *file)
{
	char *copy = strdup(file);
	int fd;

	if (copy == NULL)
		return;
	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

/* Fill the temporary file from the source and commit it. */
static int fill_tmp(struct build *b)
{
	char label[PATH_MAX + 16];
	struct map_text t = {
		.path = b->path, .label = label, .flags = b->flags,
		.max_size = BUILD_MAX, .entry = put_entry, .arg = b,
	};
	int rc;

	snprintf(label, sizeof label, "hash:%s", b->path);
	if (open_tmp_env(b) < 0)
		return -1;
	if (map_text_read(&t, NULL, b->d) < 0)
		return -1;
	rc = mdb_txn_commit(b->txn);
	b->txn = NULL;
	if (rc == MDB_MAP_FULL)
		b->full = true;
	else if (rc != 0)
		lmdb_failed(b, "write", rc);
	return rc == 0 ? 0 : -1;
}

/* One attempt: 0, or -1 (b->full says whether a bigger map may do). */
static int build_once(struct build *b)
{
	int rc;

	b->full = false;
	if (make_tmp(b) < 0)
		return -1;
	rc = fill_tmp(b);
	close_tmp_env(b);
	if (rc == 0 && rename(b->tmp, b->out) < 0) {
		diag_add(b->d, DIAG_ERROR, NULL, 0,
			 "hash:%s: cannot rename %s to %s: %s; check the permissions of the directory",
			 b->path, b->tmp, b->out, strerror(errno));
		rc = -1;
	}
	if (rc < 0) {
		unlink(b->tmp);
		return -1;
	}
	sync_dir(b->out);
	return 0;
}

/* LMDB needs its size up front: room for the text several times over
 * (node headers, half-full pages); MDB_MAP_FULL doubles it. */
static size_t estimate_mapsize(off_t text_size)
{
	unsigned long long want = 4ULL * (unsigned long long)text_size
				  + 1024 * 1024;

	return want > SIZE_MAX / 16 ? SIZE_MAX / 16 : (size_t)want;
}

int map_build(const char *path, int flags, struct diag *d)
{
	struct build b = { .path = path, .flags = flags, .d = d };
	struct stat st;
	char *out;
	int rc = -1;

	if (stat(path, &st) < 0) {
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "hash:%s: cannot read %s: %s; check the file name and its permissions",
			 path, path, strerror(errno));
		return -1;
	}
	if (asprintf(&out, "%s.lmdb", path) < 0) {
		diag_add(d, DIAG_ERROR, NULL, 0, "hash:%s: out of memory; free some memory", path);
		return -1;
	}
	b.out = out;
	b.mode = 0600 | (st.st_mode & 0044);
	b.mapsize = estimate_mapsize(st.st_size);
	for (int i = 1; (rc = build_once(&b)) < 0 && b.full; i++) {
		if (i == MAPSIZE_TRIES)
			break;
		b.mapsize *= 2;
	}
	if (rc < 0 && b.full)
		diag_add(d, DIAG_ERROR, NULL, 0,
			 "hash:%s: the table does not fit in %zu bytes of LMDB map; split the source",
			 path, b.mapsize);
	free(out);
	return rc;
}
