/*
 * pickup.c - take the files `sendmail` dropped into maildrop/ and make
 * them queue files (see pickup.h).
 *
 * maildrop/ is writable by every local user, so nothing in it is
 * trusted: a name must be one sendmail makes, the file is opened without
 * following links and must be a regular file with one link (no hard link
 * to someone else's file), complete (owner x bit), within the size
 * limits, and parse strictly (maildrop_read).  The sender's uid is the
 * file's owner.  Files that fail go to corrupt/ (or are removed when
 * they are not files at all); files still being written are left alone,
 * unless they have been so for MAILDROP_STALE_SECS.
 *
 * A maildrop file is removed only after its queue file is durable (the
 * commit's completion), so a crash in between means a duplicate, never
 * a loss.  Until then its name is "in flight" and later scans skip it;
 * this table is the only state kept between calls, and pickup.c alone
 * touches it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "maildrop.h"
#include "pickup.h"
#include "pickup_internal.h"
#include "plugins/sluice_plugin.h"
#include "qmgr_trigger.h"
#include "queue.h"

#define MAILDROP_STALE_SECS     (24 * 3600)

/* ==== names in flight (handed to the queue, not yet removed) ==== */

static struct {
	char (*name)[MAILDROP_NAME_LEN + 1];
	int n, cap;
} in_flight;

static bool flight_has(const char *name)
{
	int i;

	for (i = 0; i < in_flight.n; i++)
		if (strcmp(in_flight.name[i], name) == 0)
			return true;
	return false;
}

static int flight_add(const char *name)
{
	void *v;

	if (in_flight.n == in_flight.cap) {
		int cap = in_flight.cap ? 2 * in_flight.cap : 16;

		if ((v = realloc(in_flight.name, (size_t) cap
				 * sizeof *in_flight.name)) == NULL)
			return -1;
		in_flight.name = v;
		in_flight.cap = cap;
	}
	snprintf(in_flight.name[in_flight.n++], MAILDROP_NAME_LEN + 1, "%s",
		 name);
	return 0;
}

static void flight_remove(const char *name)
{
	int i;

	for (i = 0; i < in_flight.n; i++) {
		if (strcmp(in_flight.name[i], name) != 0)
			continue;
		in_flight.n--;
		memmove(in_flight.name[i], in_flight.name[i + 1],
			(size_t) (in_flight.n - i) * sizeof *in_flight.name);
		return;
	}
}

/* ==== one pickup, from the file to the commit ==== */

struct pickup_job {
	char name[MAILDROP_NAME_LEN + 1];
	char id[QUEUE_ID_MAX];
	char *queue_dir;
	char *md_path;          /* queue_dir/maildrop/name */
};

static void job_free(struct pickup_job *j)
{
	free(j->queue_dir);
	free(j->md_path);
	free(j);
}

static void commit_done(void *arg, int err)
{
	struct pickup_job *j = arg;

	if (err != 0) {
		msg_warn("%s: queue commit failed: %s; %s/%s stays for another "
			 "try", j->id, strerror(err), MAILDROP_DIR, j->name);
		flight_remove(j->name);
		job_free(j);
		return;
	}
	if (unlink(j->md_path) == 0 || errno == ENOENT)
		flight_remove(j->name);   /* else: never take it again */
	else
		msg_error("cannot remove %s after queueing it as %s: %m; it "
			  "will not be taken again until a restart", j->md_path,
			  j->id);
	(void) qmgr_trigger_send(j->queue_dir, QMGR_REQ_SCAN_INCOMING);
	job_free(j);
}

/* Qualify a bare local part with @$myorigin, as local submissions are
 * (unless append_at_myorigin, when registered, says no). */
static char *qualify(const struct config *c, const char *addr)
{
	long long append = 1;
	char *s;

	if (cfg_lookup_number(c, "append_at_myorigin", &append) < 0)
		append = 1;
	if (*addr == 0 || strchr(addr, '@') != NULL || append == 0)
		return strdup(addr);
	if (asprintf(&s, "%s@%s", addr, cfg_str(c, "myorigin")) < 0)
		return NULL;
	return s;
}

/* Case-insensitive, then by position: equal addresses stay in order. */
static int cmp_ptr_addr(const void *a, const void *b)
{
	char *const *pa = *(char *const *const *) a;
	char *const *pb = *(char *const *const *) b;
	int d = strcasecmp(*pa, *pb);

	return d != 0 ? d : (pa > pb) - (pa < pb);
}

/* Mark repeated recipients (case-insensitive), keeping the first. */
static bool *find_duplicates(char **addr, int n)
{
	char ***order = malloc((size_t) n * sizeof *order);
	bool *dup = calloc((size_t) n, sizeof *dup);
	int i;

	if (order == NULL || dup == NULL) {
		free(order);
		free(dup);
		return NULL;
	}
	for (i = 0; i < n; i++)
		order[i] = &addr[i];
	qsort(order, (size_t) n, sizeof *order, cmp_ptr_addr);
	for (i = 1; i < n; i++)
		if (strcasecmp(*order[i], *order[i - 1]) == 0)
			dup[order[i] - addr] = true;
	free(order);
	return dup;
}

/* The envelope's recipients: qualified, without repeats. */
static int fill_rcpts(const struct config *c, const struct maildrop_msg *m,
		      struct queue_envelope *env)
{
	char **q = calloc((size_t) m->nrcpt, sizeof *q);
	bool *dup = NULL;
	int i, rc = -1;

	if (q == NULL)
		return -1;
	for (i = 0; i < m->nrcpt; i++)
		if ((q[i] = qualify(c, m->rcpt[i])) == NULL)
			goto out;
	if ((dup = find_duplicates(q, m->nrcpt)) == NULL
	    || (env->rcpt = calloc((size_t) m->nrcpt,
				   sizeof *env->rcpt)) == NULL)
		goto out;
	for (i = 0; i < m->nrcpt; i++) {
		if (dup[i])
			continue;
		env->rcpt[env->nrcpt].addr = q[i];
		env->rcpt[env->nrcpt++].status = 'P';
		q[i] = NULL;
	}
	rc = 0;
out:
	for (i = 0; i < m->nrcpt; i++)
		free(q[i]);
	free(q);
	free(dup);
	return rc;
}

static int fill_envelope(const struct config *c, const struct maildrop_msg *m,
			 struct queue_envelope *env)
{
	memset(env, 0, sizeof *env);
	if ((env->sender = qualify(c, m->sender)) == NULL
	    || (env->proto = strdup("sendmail")) == NULL
	    || (env->client_name = strdup("local")) == NULL
	    || (env->listener = strdup("pickup")) == NULL
	    || fill_rcpts(c, m, env) < 0) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* Does an envelope address need SMTPUTF8 (a byte over 127)?  As
 * Postfix's smtputf8_autodetect_classes = sendmail, headers count too. */
static bool utf8_envelope(const struct queue_envelope *env)
{
	const unsigned char *p;
	int i;

	for (p = (const unsigned char *) env->sender; *p; p++)
		if (*p >= 0x80)
			return true;
	for (i = 0; i < env->nrcpt; i++)
		for (p = (const unsigned char *) env->rcpt[i].addr; *p; p++)
			if (*p >= 0x80)
				return true;
	return false;
}

static struct pickup_job *new_job(const char *queue_dir, const char *name,
				  const struct queue_file *qf)
{
	struct pickup_job *j = calloc(1, sizeof *j);

	if (j == NULL)
		return NULL;
	snprintf(j->name, sizeof j->name, "%s", name);
	snprintf(j->id, sizeof j->id, "%s", queue_file_id(qf));
	if ((j->queue_dir = strdup(queue_dir)) == NULL
	    || asprintf(&j->md_path, "%s/%s/%s", queue_dir, MAILDROP_DIR,
			name) < 0) {
		j->md_path = NULL;
		job_free(j);
		return NULL;
	}
	return j;
}

/* The non_smtpd_milters have answered (pickup_milter.c). */
static void milters_done(void *arg, struct queue_file *qf,
			 struct queue_envelope *env, int verdict)
{
	struct pickup_job *j = arg;

	if (verdict == SLUICE_DUNNO || verdict == SLUICE_OK) {
		queue_commit(qf, env, commit_done, j);
		queue_envelope_free(env);
		return;
	}
	queue_abort(qf);
	queue_envelope_free(env);
	if (verdict == SLUICE_DEFER) {
		msg_info("%s/%s: milter said try again later; it stays for "
			 "another try", MAILDROP_DIR, j->name);
	} else if (unlink(j->md_path) < 0 && errno != ENOENT) {
		msg_error("cannot remove %s: %m; it will not be taken again "
			  "until a restart", j->md_path);
		job_free(j);
		return;
	}
	flight_remove(j->name);
	job_free(j);
}

/* Copy the checked message into a new queue file and commit it.  0, or
 * -1 (logged; the maildrop file stays for another try). */
static int enqueue(const struct config *c, const char *queue_dir,
		   const char *name, int fd, const struct stat *st,
		   const struct maildrop_msg *m)
{
	struct queue_envelope env;
	struct pickup_content pc = { .cfg = c, .fd = fd, .m = m,
				     .uid = (long) st->st_uid };
	struct queue_file *qf = NULL;
	struct pickup_job *j = NULL;
	int rc;

	if (fill_envelope(c, m, &env) < 0
	    || (qf = queue_create(queue_dir)) == NULL
	    || (j = new_job(queue_dir, name, qf)) == NULL)
		goto fail;
	pc.sender = env.sender;
	pc.queue_id = queue_file_id(qf);
	rc = pickup_copy(qf, &pc);
	env.message_id = pc.message_id;         /* freed with env */
	if (rc < 0 || flight_add(name) < 0)
		goto fail;
	env.body = pc.eightbit ? BODY_8BITMIME : BODY_7BIT;
	env.smtputf8 = cfg_bool(c, "smtputf8_enable")
		&& (pc.utf8_headers || utf8_envelope(&env));
	msg_info("%s: uid=%ld from=<%s>", j->id, pc.uid, env.sender);
	if (env.message_id != NULL)
		msg_info("%s: message-id=%s", j->id, env.message_id);
	if (pickup_milter_run(c, qf, &env, milters_done, j) == 0)
		return 0;       /* the milters have it now */
	queue_commit(qf, &env, commit_done, j);
	queue_envelope_free(&env);
	return 0;
fail:
	msg_warn("%s/%s: cannot queue the message: %m; trying again later",
		 MAILDROP_DIR, name);
	if (qf != NULL)
		queue_abort(qf);
	if (j != NULL)
		job_free(j);
	queue_envelope_free(&env);
	return -1;
}

/* ==== checks, and what happens to files that fail them ==== */

static void to_corrupt(const char *queue_dir, int dfd, const char *name,
		       long uid, const char *why)
{
	char to[4096];

	snprintf(to, sizeof to, "%s/%s/%s", queue_dir, QUEUE_CORRUPT, name);
	if (renameat2(dfd, name, AT_FDCWD, to, RENAME_NOREPLACE) == 0) {
		msg_warn("%s/%s: uid=%ld: %s; moved to %s/", MAILDROP_DIR,
			 name, uid, why, QUEUE_CORRUPT);
		return;
	}
	msg_warn("%s/%s: uid=%ld: %s; cannot move it to %s/ (%m), removed",
		 MAILDROP_DIR, name, uid, why, QUEUE_CORRUPT);
	(void) unlinkat(dfd, name, 0);
}

/* Not a name sendmail makes, or not a regular file: remove it.  A
 * directory goes only when empty: what is in it belongs to its maker. */
static void remove_stranger(int dfd, const char *name, const char *what)
{
	struct stat st;
	int flags;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	flags = S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0;
	if (unlinkat(dfd, name, flags) == 0)
		msg_warn("%s/%s: uid=%ld: %s; removed", MAILDROP_DIR, name,
			 (long) st.st_uid, what);
}

/* Is the open file one pickup may read now?  0 yes, 1 not yet (or
 * removed: stale), -1 it went to corrupt/. */
static int check_file(const char *queue_dir, int dfd, const char *name,
		      const struct stat *st)
{
	if (!S_ISREG(st->st_mode)) {
		remove_stranger(dfd, name, "not a regular file");
		return 1;
	}
	if (!(st->st_mode & S_IXUSR)) {
		if (time(NULL) - st->st_mtime > MAILDROP_STALE_SECS
		    && unlinkat(dfd, name, 0) == 0)
			msg_warn("%s/%s: uid=%ld: removed an incomplete file "
				 "older than a day", MAILDROP_DIR, name,
				 (long) st->st_uid);
		return 1;
	}
	if (st->st_nlink != 1) {
		to_corrupt(queue_dir, dfd, name, (long) st->st_uid,
			   "file has more than one link");
		return -1;
	}
	return 0;
}

/* One maildrop entry.  1 when it was handed to the queue, else 0. */
static int pickup_one(const struct config *c, const char *queue_dir,
		      int dfd, const char *name)
{
	struct maildrop_msg m;
	struct stat st;
	char why[256];
	int fd, rc;

	if (!maildrop_name_ok(name)) {
		remove_stranger(dfd, name, "not a maildrop file name");
		return 0;
	}
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			remove_stranger(dfd, name, "a symbolic link");
		return 0;
	}
	if (fstat(fd, &st) < 0 || check_file(queue_dir, dfd, name, &st) != 0) {
		close(fd);
		return 0;
	}
	if (maildrop_read(fd, &st, cfg_size(c, "message_size_limit"), &m, why,
			  sizeof why) < 0) {
		to_corrupt(queue_dir, dfd, name, (long) st.st_uid, why);
		close(fd);
		return 0;
	}
	rc = enqueue(c, queue_dir, name, fd, &st, &m) == 0;
	maildrop_msg_free(&m);
	close(fd);
	return rc;
}

/* ==== the scan ==== */

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The entries of maildrop/ (not "." and ".."), sorted: arrival order. */
static char **list_names(DIR *d, int *np)
{
	char **v = NULL, **nv;
	struct dirent *de;
	int n = 0;

	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0
		    || strcmp(de->d_name, "..") == 0)
			continue;
		if ((nv = realloc(v, (size_t) (n + 1) * sizeof *v)) == NULL)
			break;
		v = nv;
		if ((v[n] = strdup(de->d_name)) == NULL)
			break;
		n++;
	}
	if (n > 1)
		qsort(v, (size_t) n, sizeof *v, cmp_name);
	*np = n;
	return v;
}

int pickup_run(const struct config *c, const char *queue_dir)
{
	char path[4096];
	char **names;
	DIR *d;
	int i, n = 0, taken = 0;

	snprintf(path, sizeof path, "%s/%s", queue_dir, MAILDROP_DIR);
	if ((d = opendir(path)) == NULL)
		return -1;
	names = list_names(d, &n);
	for (i = 0; i < n; i++) {
		if (taken < PICKUP_BATCH_MAX && !flight_has(names[i]))
			taken += pickup_one(c, queue_dir, dirfd(d), names[i]);
		free(names[i]);
	}
	free(names);
	closedir(d);
	return taken;
}
