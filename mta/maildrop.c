/*
 * maildrop.c - writing a maildrop file (sendmail, as the submitting user)
 * and reading one back strictly (pickup, as mail_owner).  The format is
 * in maildrop.h and docs/queue-tools.md.
 *
 * Promises:
 * - the writer marks a file complete (owner x bit) only after its content
 *   and records are on stable storage, and syncs the mode too, so a file
 *   that sendmail reported as submitted survives a crash;
 * - the reader accepts a file only when the preamble, the length, every
 *   record and the final "end" record agree, reads at most
 *   MAILDROP_RECORDS_MAX bytes of records, and says what is wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <unistd.h>

#include "maildrop.h"

#define MD_MODE_WRITING 0644    /* readable by pickup, whoever writes */
#define MD_MODE_DONE    0744    /* owner x bit: complete */
#define MD_DIGITS       20

struct maildrop_file {
	FILE *fp;
	char name[MAILDROP_NAME_LEN + 1];
	char *path;
	long long size;
};

/* ==== writing ==== */

static void new_name(char *name)
{
	struct timeval tv;
	unsigned long long rnd = 0;

	gettimeofday(&tv, NULL);
	if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
		rnd ^= ((unsigned long long) getpid() << 32)
			^ (unsigned long long) tv.tv_usec;
	snprintf(name, MAILDROP_NAME_LEN + 1, "%08llX%05lX%016llX",
		 (unsigned long long) tv.tv_sec & 0xFFFFFFFFULL,
		 (unsigned long) tv.tv_usec & 0xFFFFFUL, rnd);
}

static int open_new(const char *queue_dir, struct maildrop_file *mf)
{
	int fd = -1, tries;

	for (tries = 0; tries < 8 && fd < 0; tries++) {
		new_name(mf->name);
		free(mf->path);
		if (asprintf(&mf->path, "%s/%s/%s", queue_dir, MAILDROP_DIR,
			     mf->name) < 0) {
			mf->path = NULL;
			errno = ENOMEM;
			return -1;
		}
		fd = open(mf->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
			  | O_CLOEXEC, MD_MODE_WRITING);
		if (fd < 0 && errno != EEXIST)
			return -1;
	}
	if (fd < 0 || fchmod(fd, MD_MODE_WRITING) < 0)  /* whatever the umask */
		goto fail;
	if ((mf->fp = fdopen(fd, "w")) == NULL)
		goto fail;
	return 0;
fail:
	if (fd >= 0) {
		int e = errno;

		close(fd);
		unlink(mf->path);
		errno = e;
	}
	return -1;
}

struct maildrop_file *maildrop_create(const char *queue_dir, char *err,
				      size_t errlen)
{
	struct maildrop_file *mf = calloc(1, sizeof *mf);
	int e;

	if (mf == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (open_new(queue_dir, mf) < 0
	    || fprintf(mf->fp, "%s%0*d\n", MAILDROP_MAGIC, MD_DIGITS, 0) < 0) {
		e = errno;
		snprintf(err, errlen, "cannot create a file in %s/%s: %s",
			 queue_dir, MAILDROP_DIR, strerror(e));
		if (mf->fp != NULL) {
			fclose(mf->fp);
			unlink(mf->path);
		}
		free(mf->path);
		free(mf);
		errno = e;
		return NULL;
	}
	return mf;
}

const char *maildrop_name(const struct maildrop_file *mf)
{
	return mf->name;
}

long long maildrop_size(const struct maildrop_file *mf)
{
	return mf->size;
}

int maildrop_write(struct maildrop_file *mf, const void *buf, size_t len)
{
	if (len > 0 && fwrite(buf, 1, len, mf->fp) != len)
		return -1;
	mf->size += (long long) len;
	return 0;
}

static bool value_ok(const char *s)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if ((unsigned char) *s < 0x20 || *s == 0x7f)
			return false;
	return n <= MAILDROP_VALUE_MAX;
}

bool maildrop_addr_ok(const char *addr, bool empty_ok)
{
	size_t len = strlen(addr);

	if (len == 0)
		return empty_ok;
	return value_ok(addr) && strpbrk(addr, "<>") == NULL
		&& addr[0] != ' ' && addr[len - 1] != ' ';
}

static int put_records(struct maildrop_file *mf,
		       const struct maildrop_env *env, char *err, size_t errlen)
{
	int i;

	if (!maildrop_addr_ok(env->sender, true)) {
		snprintf(err, errlen, "bad sender address");
		return -1;
	}
	fprintf(mf->fp, *env->sender ? "sender %s\n" : "sender\n", env->sender);
	if (env->fullname != NULL && *env->fullname) {
		if (!value_ok(env->fullname)) {
			snprintf(err, errlen, "bad full name");
			return -1;
		}
		fprintf(mf->fp, "fullname %s\n", env->fullname);
	}
	for (i = 0; i < env->nrcpt; i++) {
		if (!maildrop_addr_ok(env->rcpt[i], false)) {
			snprintf(err, errlen, "bad recipient address");
			return -1;
		}
		fprintf(mf->fp, "rcpt %s\n", env->rcpt[i]);
	}
	fputs("end\n", mf->fp);
	return 0;
}

/* Length in the preamble, then data, mode and mode again on disk. */
static int seal(struct maildrop_file *mf)
{
	char pre[MAILDROP_PREAMBLE_LEN + 1];
	int fd = fileno(mf->fp);

	snprintf(pre, sizeof pre, "%s%0*lld\n", MAILDROP_MAGIC, MD_DIGITS,
		 mf->size);
	if (fflush(mf->fp) != 0
	    || pwrite(fd, pre, MAILDROP_PREAMBLE_LEN, 0)
	       != MAILDROP_PREAMBLE_LEN
	    || fsync(fd) < 0 || fchmod(fd, MD_MODE_DONE) < 0 || fsync(fd) < 0)
		return -1;
	return 0;
}

int maildrop_finish(struct maildrop_file *mf, const struct maildrop_env *env,
		    char *err, size_t errlen)
{
	if (env->nrcpt <= 0) {
		snprintf(err, errlen, "no recipients");
		maildrop_abort(mf);
		return -1;
	}
	if (put_records(mf, env, err, errlen) < 0) {
		maildrop_abort(mf);
		return -1;
	}
	if (seal(mf) < 0) {
		snprintf(err, errlen, "%s/%s: write error: %s", MAILDROP_DIR,
			 mf->name, strerror(errno));
		maildrop_abort(mf);
		return -1;
	}
	if (fclose(mf->fp) != 0) {
		mf->fp = NULL;
		snprintf(err, errlen, "%s/%s: write error: %s", MAILDROP_DIR,
			 mf->name, strerror(errno));
		maildrop_abort(mf);
		return -1;
	}
	free(mf->path);
	free(mf);
	return 0;
}

void maildrop_abort(struct maildrop_file *mf)
{
	if (mf == NULL)
		return;
	if (mf->fp != NULL)
		fclose(mf->fp);
	unlink(mf->path);
	free(mf->path);
	free(mf);
}

/* ==== reading ==== */

bool maildrop_name_ok(const char *name)
{
	size_t i;

	for (i = 0; name[i]; i++)
		if (!((name[i] >= '0' && name[i] <= '9')
		      || (name[i] >= 'A' && name[i] <= 'F')))
			return false;
	return i == MAILDROP_NAME_LEN;
}

static int md_bad(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
	return -1;
}

/* The preamble's content length, checked against the file size. */
static int read_preamble(int fd, const struct stat *st, long long *len,
			 char *err, size_t errlen)
{
	char pre[MAILDROP_PREAMBLE_LEN];
	const char *d = pre + strlen(MAILDROP_MAGIC);
	long long v = 0;
	int i;

	if (st->st_size < MAILDROP_PREAMBLE_LEN + 4
	    || pread(fd, pre, sizeof pre, 0) != (ssize_t) sizeof pre
	    || memcmp(pre, MAILDROP_MAGIC, strlen(MAILDROP_MAGIC)) != 0
	    || pre[MAILDROP_PREAMBLE_LEN - 1] != '\n')
		return md_bad(err, errlen,
			      "not a maildrop file (bad preamble)");
	for (i = 0; i < MD_DIGITS; i++) {
		if (d[i] < '0' || d[i] > '9' || v > (st->st_size / 10) + 1)
			return md_bad(err, errlen, "bad content length");
		v = v * 10 + (d[i] - '0');
	}
	if (v > st->st_size - MAILDROP_PREAMBLE_LEN - 4)
		return md_bad(err, errlen, "content length beyond the end "
			      "of the file (truncated?)");
	*len = v;
	return 0;
}

static char *dup_value(const char *v, size_t len)
{
	char *s;

	if (len > MAILDROP_VALUE_MAX || (s = strndup(v, len)) == NULL)
		return NULL;
	if (strlen(s) != len || !value_ok(s)) {
		free(s);
		return NULL;
	}
	return s;
}

static int add_rcpt(struct maildrop_msg *m, char *addr)
{
	char **v;

	if ((m->nrcpt & (m->nrcpt - 1)) == 0) {   /* 0, 1, 2, 4, ...: grow */
		v = realloc(m->rcpt, (size_t) (m->nrcpt ? 2 * m->nrcpt : 1)
			    * sizeof *v);
		if (v == NULL)
			return -1;
		m->rcpt = v;
	}
	m->rcpt[m->nrcpt++] = addr;
	return 0;
}

/* One record "name[ value]" (without its LF).  1 for "end", 0 for
 * another good record, -1 with err set. */
static int read_record(struct maildrop_msg *m, const char *line, size_t len,
		       bool *have_sender, char *err, size_t errlen)
{
	const char *sp = memchr(line, ' ', len);
	size_t nlen = sp ? (size_t) (sp - line) : len;
	size_t vlen = sp ? len - nlen - 1 : 0;
	char *v = NULL;

	if (sp != NULL && (v = dup_value(sp + 1, vlen)) == NULL)
		return md_bad(err, errlen, "bad record value");
	if (nlen == 3 && memcmp(line, "end", 3) == 0 && sp == NULL)
		return 1;
	if (nlen == 6 && memcmp(line, "sender", 6) == 0 && !*have_sender
	    && maildrop_addr_ok(v ? v : "", false) == (v != NULL)) {
		*have_sender = true;
		m->sender = v ? v : strdup("");
		return m->sender ? 0 : md_bad(err, errlen, "out of memory");
	}
	if (nlen == 8 && memcmp(line, "fullname", 8) == 0 && v != NULL
	    && m->fullname == NULL) {
		m->fullname = v;
		return 0;
	}
	if (nlen == 4 && memcmp(line, "rcpt", 4) == 0 && v != NULL
	    && maildrop_addr_ok(v, false) && add_rcpt(m, v) == 0)
		return 0;
	free(v);
	return md_bad(err, errlen, "bad, duplicate or unknown record");
}

static int parse_records(struct maildrop_msg *m, const char *text,
			 size_t len, char *err, size_t errlen)
{
	const char *p = text, *nl;
	bool have_sender = false;
	int rc = 0;

	while (rc == 0 && p < text + len) {
		if ((nl = memchr(p, '\n', (size_t) (text + len - p))) == NULL)
			return md_bad(err, errlen, "record without a line end");
		rc = read_record(m, p, (size_t) (nl - p), &have_sender, err,
				 errlen);
		p = nl + 1;
	}
	if (rc < 0)
		return -1;
	if (rc != 1 || p != text + len)
		return md_bad(err, errlen, "\"end\" is not the last record");
	if (!have_sender || m->nrcpt == 0)
		return md_bad(err, errlen, "no sender or no recipient");
	return 0;
}

int maildrop_read(int fd, const struct stat *st, long long size_limit,
		  struct maildrop_msg *m, char *err, size_t errlen)
{
	long long clen;
	size_t rlen;
	char *text;
	int rc;

	memset(m, 0, sizeof *m);
	if (read_preamble(fd, st, &clen, err, errlen) < 0)
		return -1;
	if (size_limit > 0 && clen > size_limit)
		return md_bad(err, errlen, "message file too big");
	if (st->st_size - MAILDROP_PREAMBLE_LEN - clen > MAILDROP_RECORDS_MAX)
		return md_bad(err, errlen, "too many records");
	rlen = (size_t) (st->st_size - MAILDROP_PREAMBLE_LEN - clen);
	if ((text = malloc(rlen)) == NULL)
		return md_bad(err, errlen, "out of memory");
	if (pread(fd, text, rlen, MAILDROP_PREAMBLE_LEN + clen)
	    != (ssize_t) rlen) {
		free(text);
		return md_bad(err, errlen, "short read (file changed?)");
	}
	rc = parse_records(m, text, rlen, err, errlen);
	free(text);
	if (rc < 0) {
		maildrop_msg_free(m);
		return -1;
	}
	m->content_off = MAILDROP_PREAMBLE_LEN;
	m->content_len = clen;
	return 0;
}

void maildrop_msg_free(struct maildrop_msg *m)
{
	int i;

	free(m->sender);
	free(m->fullname);
	for (i = 0; i < m->nrcpt; i++)
		free(m->rcpt[i]);
	free(m->rcpt);
	memset(m, 0, sizeof *m);
}
