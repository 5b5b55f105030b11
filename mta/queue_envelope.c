/*
 * queue_envelope.c - the envelope records of a queue file: written when a
 * file is sealed, read and checked by everything that takes a message
 * from the queue, and a recipient's status updated in place.
 *
 * The envelope follows the content: "key value" lines (arrival, size,
 * sender, body, the optional ones, one rcpt record per recipient, one seg
 * record per content segment), then "end".  The preamble at the start of
 * the file points at it.  docs/queue-format.md describes every record.
 *
 * Promises:
 * - no envelope value ever holds a raw control character, whatever the
 *   client sent: control bytes, DEL and '%' are written as %XX, and the
 *   reader refuses a raw one, a bad escape and an escaped NUL;
 * - the reader accepts a file only when its preamble, its records, its
 *   segments and its "end" record at the very end of the file agree, and
 *   otherwise says which record is wrong; it skips records it does not
 *   know (later minor additions);
 * - a recipient's status byte sits at a fixed place in its record, so
 *   queue_rcpt_set_status() changes it with a one-byte write.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue_internal.h"
#include "hex_digit.h"

#define QF_ENV_MAX      (16 * 1024 * 1024)      /* sanity cap when reading */
#define NELEM(a)        (sizeof(a) / sizeof((a)[0]))

/* ==== the records' vocabulary ==== */

/* String records written when not NULL, read back into the same field. */
static const struct env_text_field {
	const char *key;
	size_t off;
} env_text_fields[] = {
	{ "envid", offsetof(struct queue_envelope, envid) },
	{ "client_name", offsetof(struct queue_envelope, client_name) },
	{ "client_addr", offsetof(struct queue_envelope, client_addr) },
	{ "helo", offsetof(struct queue_envelope, helo) },
	{ "proto", offsetof(struct queue_envelope, proto) },
	{ "listener", offsetof(struct queue_envelope, listener) },
	{ "sasl_method", offsetof(struct queue_envelope, sasl_method) },
	{ "sasl_username", offsetof(struct queue_envelope, sasl_username) },
	{ "message_id", offsetof(struct queue_envelope, message_id) },
	{ "filter", offsetof(struct queue_envelope, filter) },
};

static char **env_text_slot(struct queue_envelope *env, size_t i)
{
	return (char **) ((char *) env + env_text_fields[i].off);
}

static const char *env_text_value(const struct queue_envelope *env, size_t i)
{
	return *(char *const *) ((const char *) env + env_text_fields[i].off);
}

/* Indexed by BODY_* and DSN_RET_*. */
static const char *const body_names[] = { "7BIT", "8BITMIME", "BINARYMIME" };
static const char *const ret_names[] = { NULL, "FULL", "HDRS" };

static const struct { const char *name; int bit; } notify_names[] = {
	{ "NEVER", DSN_NOTIFY_NEVER }, { "SUCCESS", DSN_NOTIFY_SUCCESS },
	{ "FAILURE", DSN_NOTIFY_FAILURE }, { "DELAY", DSN_NOTIFY_DELAY },
};

/* ==== writing ==== */

static int put_str(struct queue_file *qf, const char *s)
{
	return queue_file_append(qf, s, strlen(s));
}

static bool value_byte_needs_escape(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == '%';
}

/* A value, with control bytes, DEL and '%' as %XX: never a raw LF or TAB. */
static int put_value(struct queue_file *qf, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *run = s;
	char esc[3];

	for (; *s != '\0'; s++) {
		if (!value_byte_needs_escape((unsigned char) *s))
			continue;
		esc[0] = '%';
		esc[1] = hex[(unsigned char) *s >> 4];
		esc[2] = hex[(unsigned char) *s & 15];
		if (queue_file_append(qf, run, (size_t) (s - run)) < 0
		    || queue_file_append(qf, esc, 3) < 0)
			return -1;
		run = s + 1;
	}
	return queue_file_append(qf, run, (size_t) (s - run));
}

/* "key value\n", or "key\n" for an empty value. */
static int put_record(struct queue_file *qf, const char *key, const char *value)
{
	if (put_str(qf, key) < 0)
		return -1;
	if (value != NULL && *value != '\0'
	    && (put_str(qf, " ") < 0 || put_value(qf, value) < 0))
		return -1;
	return put_str(qf, "\n");
}

static int put_number_record(struct queue_file *qf, const char *key,
			     long long n)
{
	char line[64];

	snprintf(line, sizeof(line), "%s %lld\n", key, n);
	return put_str(qf, line);
}

static int put_seg(struct queue_file *qf, const struct queue_seg *seg)
{
	char line[64];

	snprintf(line, sizeof(line), "seg %lld %lld\n", (long long) seg->off,
		 (long long) seg->len);
	return put_str(qf, line);
}

static int put_arrival(struct queue_file *qf, const struct queue_envelope *env,
		       const struct timeval *stamp)
{
	long long sec = env->arrival_sec, usec = env->arrival_usec;
	char line[64];

	if (sec == 0) {
		sec = stamp->tv_sec;
		usec = stamp->tv_usec;
	}
	snprintf(line, sizeof(line), "arrival %lld.%06lld\n", sec, usec);
	return put_str(qf, line);
}

static int put_notify(struct queue_file *qf, int notify)
{
	const char *sep = "";
	size_t i;

	if (notify == DSN_NOTIFY_NONE)
		return put_str(qf, "-");
	for (i = 0; i < NELEM(notify_names); i++) {
		if (!(notify & notify_names[i].bit))
			continue;
		if (put_str(qf, sep) < 0 || put_str(qf, notify_names[i].name) < 0)
			return -1;
		sep = ",";
	}
	return 0;
}

/* "rcpt S<TAB>addr<TAB>notify<TAB>orcpt": S is at a fixed place, so the
 * queue manager can overwrite it in place. */
static int put_rcpt(struct queue_file *qf, const struct queue_rcpt *r)
{
	char head[8];

	snprintf(head, sizeof(head), "rcpt %c\t", r->status ? r->status : 'P');
	if (put_str(qf, head) < 0 || put_value(qf, r->addr) < 0
	    || put_str(qf, "\t") < 0 || put_notify(qf, r->notify) < 0
	    || put_str(qf, "\t") < 0
	    || (r->orcpt != NULL ? put_value(qf, r->orcpt) : put_str(qf, "-")) < 0)
		return -1;
	return put_str(qf, "\n");
}

bool queue_envelope_writable(const struct queue_envelope *env)
{
	int i;

	if (env->nrcpt < 0 || (env->nrcpt > 0 && env->rcpt == NULL)
	    || env->arrival_sec < 0 || env->arrival_usec < 0
	    || env->arrival_usec > 999999 || env->client_port > 65535
	    || env->body < BODY_7BIT || env->body > BODY_BINARYMIME
	    || env->ret < DSN_RET_NONE || env->ret > DSN_RET_HDRS)
		return false;
	for (i = 0; i < env->nrcpt; i++) {
		char s = env->rcpt[i].status;

		if (env->rcpt[i].addr == NULL
		    || (s != 0 && (s < 'A' || s > 'Z')))
			return false;
	}
	return true;
}

/* Everything before the rcpt records. */
static int put_header_records(struct queue_file *qf,
			      const struct queue_envelope *env,
			      const struct timeval *stamp, long long size)
{
	size_t i;

	if (put_arrival(qf, env, stamp) < 0
	    || put_number_record(qf, "size", size) < 0
	    || put_record(qf, "sender", env->sender ? env->sender : "") < 0
	    || put_record(qf, "body", body_names[env->body]) < 0)
		return -1;
	if (env->ret != DSN_RET_NONE
	    && put_record(qf, "ret", ret_names[env->ret]) < 0)
		return -1;
	if (env->smtputf8 && put_record(qf, "smtputf8", NULL) < 0)
		return -1;
	for (i = 0; i < NELEM(env_text_fields); i++) {
		const char *v = env_text_value(env, i);

		if (v != NULL && put_record(qf, env_text_fields[i].key, v) < 0)
			return -1;
	}
	if (env->client_port > 0
	    && put_number_record(qf, "client_port", env->client_port) < 0)
		return -1;
	if (env->hold && put_record(qf, "hold", env->hold_reason) < 0)
		return -1;
	return 0;
}

int queue_envelope_put(struct queue_file *qf, const struct queue_envelope *env,
		       const struct timeval *stamp,
		       const struct queue_seg *seg, int nseg)
{
	long long size = 0;
	int i;

	for (i = 0; i < nseg; i++)
		size += seg[i].len;
	if (put_header_records(qf, env, stamp, size) < 0)
		return -1;
	for (i = 0; i < env->nrcpt; i++)
		if (put_rcpt(qf, &env->rcpt[i]) < 0)
			return -1;
	for (i = 0; i < nseg; i++)
		if (put_seg(qf, &seg[i]) < 0)
			return -1;
	return put_str(qf, "end\n");
}

/* ==== reading: values ==== */

struct env_reader {
	struct queue_envelope *env;
	off_t env_off;          /* segments must end before this */
	off_t line_off;         /* file offset of the record read, or -1 */
	int rcpt_alloc, seg_alloc;
	bool have_arrival, have_size, have_sender, have_body, have_end;
	char *err;
	size_t errlen;
};

static int bad(struct env_reader *rd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The reason, after the damaged record's offset when there is one. */
static int bad(struct env_reader *rd, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (rd->line_off >= 0)
		n = snprintf(rd->err, rd->errlen, "record at offset %lld: ",
			     (long long) rd->line_off);
	if (n < 0 || (size_t) n >= rd->errlen)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(rd->err + n, rd->errlen - (size_t) n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Decode a value's %XX escapes into a new string; NULL when damaged. */
static char *decode_value(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;
	size_t i;
	int hi, lo;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char) s[i];

		if (c < 0x20 || c == 0x7f)
			goto bad;
		if (c != '%') {
			*o++ = (char) c;
			continue;
		}
		if (i + 2 >= len)
			goto bad;
		if ((hi = hex_digit_value(s[i + 1])) < 0 || (lo = hex_digit_value(s[i + 2])) < 0
		    || (hi == 0 && lo == 0))
			goto bad;
		*o++ = (char) (hi << 4 | lo);
		i += 2;
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* Strict decimal: digits only (leading zeros allowed), no sign, no
 * overflow. */
static bool parse_number(const char *s, size_t len, long long *val)
{
	long long v = 0;
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9'
		    || __builtin_mul_overflow(v, 10, &v)
		    || __builtin_add_overflow(v, s[i] - '0', &v))
			return false;
	}
	*val = v;
	return true;
}

static int set_text(struct env_reader *rd, char **slot, const char *key,
		    const char *v, size_t len)
{
	char *s = decode_value(v, len);

	if (s == NULL)
		return bad(rd, "damaged value in the %s record", key);
	free(*slot);
	*slot = s;
	return 0;
}

static int read_keyword(struct env_reader *rd, const char *key,
			const char *v, size_t len,
			const char *const *names, int nnames, int *out)
{
	int i;

	for (i = 0; i < nnames; i++)
		if (names[i] && strlen(names[i]) == len
		    && memcmp(names[i], v, len) == 0) {
			*out = i;
			return 0;
		}
	return bad(rd, "bad %s record", key);
}

static int read_number_field(struct env_reader *rd, const char *key,
			     const char *v, size_t len, long long max,
			     long long *out)
{
	if (!parse_number(v, len, out) || *out > max)
		return bad(rd, "bad %s record", key);
	return 0;
}

/* ==== reading: records ==== */

static int read_arrival(struct env_reader *rd, const char *v, size_t len)
{
	const char *dot = memchr(v, '.', len);
	long long sec, usec;

	if (dot == NULL || !parse_number(v, (size_t) (dot - v), &sec)
	    || (size_t) (v + len - dot - 1) != 6
	    || !parse_number(dot + 1, 6, &usec))
		return bad(rd, "bad arrival record");
	rd->env->arrival_sec = sec;
	rd->env->arrival_usec = (long) usec;
	rd->have_arrival = true;
	return 0;
}

static int read_sender(struct env_reader *rd, const char *v, size_t len)
{
	rd->have_sender = true;
	return set_text(rd, &rd->env->sender, "sender", v, len);
}

static int read_size(struct env_reader *rd, const char *v, size_t len)
{
	rd->have_size = true;
	return read_number_field(rd, "size", v, len, INT64_MAX, &rd->env->size);
}

static int read_client_port(struct env_reader *rd, const char *v, size_t len)
{
	long long n = 0;

	if (read_number_field(rd, "client_port", v, len, 65535, &n) < 0)
		return -1;
	rd->env->client_port = (int) n;
	return 0;
}

static int read_body(struct env_reader *rd, const char *v, size_t len)
{
	rd->have_body = true;
	return read_keyword(rd, "body", v, len, body_names,
			    (int) NELEM(body_names), &rd->env->body);
}

static int read_ret(struct env_reader *rd, const char *v, size_t len)
{
	return read_keyword(rd, "ret", v, len, ret_names,
			    (int) NELEM(ret_names), &rd->env->ret);
}

static int read_smtputf8(struct env_reader *rd, const char *v, size_t len)
{
	rd->env->smtputf8 = true;
	return len == 0 ? 0 : bad(rd, "bad smtputf8 record");
}

static int read_hold(struct env_reader *rd, const char *v, size_t len)
{
	rd->env->hold = true;
	if (len == 0)
		return 0;
	return set_text(rd, &rd->env->hold_reason, "hold", v, len);
}

static int read_notify(struct env_reader *rd, const char *v, size_t len,
		       int *notify)
{
	size_t i;

	*notify = DSN_NOTIFY_NONE;
	if (len == 1 && *v == '-')
		return 0;
	while (len > 0) {
		const char *comma = memchr(v, ',', len);
		size_t word = comma ? (size_t) (comma - v) : len;

		for (i = 0; i < NELEM(notify_names); i++)
			if (strlen(notify_names[i].name) == word
			    && memcmp(notify_names[i].name, v, word) == 0)
				break;
		if (i == NELEM(notify_names))
			return bad(rd, "bad NOTIFY in a rcpt record");
		*notify |= notify_names[i].bit;
		v += word + (comma != NULL);
		len -= word + (comma != NULL);
	}
	return 0;
}

static struct queue_rcpt *new_rcpt(struct env_reader *rd)
{
	struct queue_envelope *env = rd->env;
	struct queue_rcpt *r;

	if (env->nrcpt == rd->rcpt_alloc) {
		int n = rd->rcpt_alloc ? 2 * rd->rcpt_alloc : 8;

		r = realloc(env->rcpt, (size_t) n * sizeof(*r));
		if (r == NULL)
			return NULL;
		env->rcpt = r;
		rd->rcpt_alloc = n;
	}
	r = &env->rcpt[env->nrcpt++];
	memset(r, 0, sizeof(*r));
	return r;
}

/* "S<TAB>addr<TAB>notify<TAB>orcpt" */
static int read_rcpt(struct env_reader *rd, const char *v, size_t len)
{
	const char *f[3], *end = v + len, *p;
	size_t flen[3];
	struct queue_rcpt *r;
	int i;

	if (len < 2 || *v < 'A' || *v > 'Z' || v[1] != '\t')
		return bad(rd, "bad status in a rcpt record");
	for (i = 0, p = v + 2; i < 3; i++) {
		const char *tab = memchr(p, '\t', (size_t) (end - p));

		if ((tab == NULL) != (i == 2))
			return bad(rd, "bad field count in a rcpt record");
		f[i] = p;
		flen[i] = (size_t) ((tab ? tab : end) - p);
		p = tab ? tab + 1 : end;
	}
	if ((r = new_rcpt(rd)) == NULL)
		return bad(rd, "out of memory");
	r->status = *v;
	if ((r->addr = decode_value(f[0], flen[0])) == NULL || flen[0] == 0)
		return bad(rd, "bad address in a rcpt record");
	if (read_notify(rd, f[1], flen[1], &r->notify) < 0)
		return -1;
	if (!(flen[2] == 1 && *f[2] == '-')
	    && (r->orcpt = decode_value(f[2], flen[2])) == NULL)
		return bad(rd, "bad ORCPT in a rcpt record");
	return 0;
}

static int read_seg(struct env_reader *rd, const char *v, size_t len)
{
	struct queue_envelope *env = rd->env;
	const char *sp = memchr(v, ' ', len);
	long long off, slen, end;

	if (sp == NULL || !parse_number(v, (size_t) (sp - v), &off)
	    || !parse_number(sp + 1, (size_t) (v + len - sp - 1), &slen))
		return bad(rd, "bad seg record");
	if (off < QUEUE_PREAMBLE_LEN || __builtin_add_overflow(off, slen, &end)
	    || end > rd->env_off)
		return bad(rd, "seg record %lld %lld outside the content "
			   "(%d..%lld)", off, slen, QUEUE_PREAMBLE_LEN,
			   (long long) rd->env_off);
	if (env->nseg == rd->seg_alloc) {
		int n = rd->seg_alloc ? 2 * rd->seg_alloc : 4;
		void *s = realloc(env->seg, (size_t) n * sizeof(*env->seg));

		if (s == NULL)
			return bad(rd, "out of memory");
		env->seg = s;
		rd->seg_alloc = n;
	}
	env->seg[env->nseg].off = (off_t) off;
	env->seg[env->nseg].len = (off_t) slen;
	env->nseg++;
	return 0;
}

static const struct {
	const char *key;
	int (*read)(struct env_reader *rd, const char *v, size_t len);
} record_readers[] = {
	{ "rcpt", read_rcpt }, { "seg", read_seg },
	{ "arrival", read_arrival }, { "sender", read_sender },
	{ "size", read_size }, { "client_port", read_client_port },
	{ "body", read_body }, { "ret", read_ret },
	{ "smtputf8", read_smtputf8 }, { "hold", read_hold },
};

static int read_record(struct env_reader *rd, const char *key,
		       const char *v, size_t len)
{
	size_t i;

	for (i = 0; i < NELEM(record_readers); i++)
		if (strcmp(key, record_readers[i].key) == 0)
			return record_readers[i].read(rd, v, len);
	for (i = 0; i < NELEM(env_text_fields); i++)
		if (strcmp(key, env_text_fields[i].key) == 0)
			return set_text(rd, env_text_slot(rd->env, i), key,
					v, len);
	return 0;       /* unknown record: a later minor addition; skip it */
}

/* One "key[ value]" line, without its LF. */
static int read_line(struct env_reader *rd, const char *line, size_t len)
{
	char key[32];
	const char *sp = memchr(line, ' ', len);
	size_t klen = sp ? (size_t) (sp - line) : len;
	size_t i;

	if (klen == 0 || klen >= sizeof(key))
		return bad(rd, "bad record name");
	for (i = 0; i < klen; i++)
		if (!((line[i] >= 'a' && line[i] <= 'z') || line[i] == '_'
		      || (line[i] >= '0' && line[i] <= '9')))
			return bad(rd, "bad record name");
	memcpy(key, line, klen);
	key[klen] = '\0';
	if (strcmp(key, "end") == 0) {
		rd->have_end = true;
		return sp == NULL ? 0 : bad(rd, "bad %s record", key);
	}
	if (sp == NULL)
		return read_record(rd, key, line + len, 0);
	return read_record(rd, key, sp + 1, len - klen - 1);
}

/* ==== reading: the whole envelope ==== */

static int check_envelope(struct env_reader *rd)
{
	const struct queue_envelope *env = rd->env;
	long long total = 0;
	int i;

	if (!rd->have_end)
		return bad(rd, "no end record: the file is incomplete");
	if (!rd->have_arrival || !rd->have_size || !rd->have_sender
	    || !rd->have_body || env->nseg == 0)
		return bad(rd, "a required record is missing (arrival, size, "
			   "sender, body, seg)");
	for (i = 0; i < env->nseg; i++)
		total += env->seg[i].len;
	if (total != env->size)
		return bad(rd, "segments add up to %lld bytes, size says %lld",
			   total, env->size);
	return 0;
}

static int parse_envelope(struct env_reader *rd, const char *text, size_t len)
{
	const char *p = text, *end = text + len, *nl;

	while (p < end) {
		rd->line_off = rd->env_off + (off_t) (p - text);
		if (rd->have_end)
			return bad(rd, "data after the end record");
		if ((nl = memchr(p, '\n', (size_t) (end - p))) == NULL)
			return bad(rd, "last record cut short: the file is "
				   "incomplete");
		if (read_line(rd, p, (size_t) (nl - p)) < 0)
			return -1;
		p = nl + 1;
	}
	rd->line_off = -1;
	return check_envelope(rd);
}

static int parse_preamble(const char *pre, off_t *env_off)
{
	long long off;

	if (memcmp(pre, QF_MAGIC, sizeof(QF_MAGIC) - 1) != 0
	    || pre[QUEUE_PREAMBLE_LEN - 1] != '\n'
	    || !parse_number(pre + sizeof(QF_MAGIC) - 1, QF_OFF_DIGITS, &off))
		return -1;
	*env_off = (off_t) off;
	return 0;
}

/* The envelope's offset from the preamble of a file of `size` bytes. */
static int read_preamble(int fd, off_t size, off_t *env_off,
			 char *err, size_t errlen)
{
	char pre[QUEUE_PREAMBLE_LEN];
	ssize_t n;

	n = queue_pread_full(fd, pre, sizeof(pre), 0);
	if (n < 0) {
		snprintf(err, errlen, "read: %s", strerror(errno));
		return -1;
	}
	if (n != (ssize_t) sizeof(pre) || parse_preamble(pre, env_off) < 0) {
		snprintf(err, errlen, "not a sluice queue file (bad preamble)");
		return -1;
	}
	if (*env_off == 0) {
		snprintf(err, errlen, "no envelope: the file was never completed");
		return -1;
	}
	if (*env_off < QUEUE_PREAMBLE_LEN || *env_off >= size
	    || size - *env_off > QF_ENV_MAX) {
		snprintf(err, errlen, "envelope offset %lld does not fit a "
			 "file of %lld bytes", (long long) *env_off,
			 (long long) size);
		return -1;
	}
	return 0;
}

/* Read the preamble and the envelope text (NUL-terminated, caller frees). */
static int load_envelope(int fd, char **text, size_t *len, off_t *env_off,
			 char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;

	*text = NULL;
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "fstat: %s", strerror(errno));
		return -1;
	}
	if (read_preamble(fd, st.st_size, env_off, err, errlen) < 0)
		return -1;
	*len = (size_t) (st.st_size - *env_off);
	if ((*text = malloc(*len + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = queue_pread_full(fd, *text, *len, *env_off);
	if (n != (ssize_t) *len) {
		snprintf(err, errlen, "cannot read the envelope: %s",
			 n < 0 ? strerror(errno) : "the file shrank");
		free(*text);
		*text = NULL;
		return -1;
	}
	(*text)[*len] = '\0';
	return 0;
}

int queue_read_envelope_fd(int fd, struct queue_envelope *env,
			   char *err, size_t errlen)
{
	struct env_reader rd = { .env = env, .line_off = -1, .err = err,
				 .errlen = errlen };
	char *text;
	size_t len;
	int rc;

	memset(env, 0, sizeof(*env));
	if (load_envelope(fd, &text, &len, &rd.env_off, err, errlen) < 0)
		return -1;
	rc = parse_envelope(&rd, text, len);
	free(text);
	if (rc < 0)
		queue_envelope_free(env);
	return rc;
}

int queue_read_envelope(const char *path, struct queue_envelope *env,
			char *err, size_t errlen)
{
	int fd, rc;

	memset(env, 0, sizeof(*env));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return -1;
	}
	rc = queue_read_envelope_fd(fd, env, err, errlen);
	close(fd);
	return rc;
}

void queue_envelope_free(struct queue_envelope *env)
{
	size_t i;
	int r;

	if (env == NULL)
		return;
	for (r = 0; r < env->nrcpt; r++) {
		free(env->rcpt[r].addr);
		free(env->rcpt[r].orcpt);
	}
	free(env->rcpt);
	free(env->sender);
	for (i = 0; i < NELEM(env_text_fields); i++)
		free(*env_text_slot(env, i));
	free(env->hold_reason);
	free(env->seg);
	memset(env, 0, sizeof(*env));
}

/* ==== updating a recipient ==== */

int queue_rcpt_set_status(int fd, int index, char status)
{
	char err[128], *text, *p, *nl;
	off_t env_off;
	size_t len;
	int seen = 0;
	ssize_t n;

	if (status < 'A' || status > 'Z' || index < 0) {
		errno = EINVAL;
		return -1;
	}
	if (load_envelope(fd, &text, &len, &env_off, err, sizeof(err)) < 0) {
		errno = EINVAL;
		return -1;
	}
	for (p = text; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		if (strncmp(p, "rcpt ", 5) != 0 || seen++ != index)
			continue;
		if (nl - p < 7 || p[5] < 'A' || p[5] > 'Z' || p[6] != '\t')
			break;
		n = pwrite(fd, &status, 1, env_off + (off_t) (p + 5 - text));
		free(text);
		if (n == 1)
			return 0;
		if (n == 0)
			errno = EIO;
		return -1;
	}
	free(text);
	errno = EINVAL;
	return -1;
}
