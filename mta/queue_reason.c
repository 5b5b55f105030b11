/*
 * queue_reason.c - the deferral reasons of queued messages, one small
 * text file per message in queue_directory/defer/ (see queue_reason.h).
 *
 * Reading is defensive (bounded size, bad lines skipped, indexes checked
 * against the envelope's recipient count); writing replaces the whole
 * file by rename, so a reader never sees half of one.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue.h"
#include "queue_reason.h"
#include "hex_digit.h"

#define REASON_FILE_MAX (1024 * 1024)   /* larger ones are not read */
#define REASON_TEXT_MAX 2000            /* one reason, decoded */
#define REASON_INDEX_MAX 1000000        /* recipients of one message */

static int reason_path(const char *queue_dir, const char *id,
		       const char *prefix, char *buf, size_t size)
{
	if (strchr(id, '/') != NULL || *id == '.' || *id == 0) {
		errno = EINVAL;
		return -1;
	}
	if ((size_t) snprintf(buf, size, "%s/%s/%s%s", queue_dir, QUEUE_DEFER,
			      prefix, id) >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* ==== reading ==== */

/* Decode one %XX-encoded reason; NULL when it is malformed.  What the
 * reader gets is printable: a decoded control byte becomes a space. */
static char *decode(const char *s, size_t len)
{
	char *out, *o;
	size_t i;
	int hi, lo;

	if (len > REASON_TEXT_MAX * 3 || (out = malloc(len + 1)) == NULL)
		return NULL;
	for (o = out, i = 0; i < len; i++) {
		unsigned char c = (unsigned char) s[i];

		if (c == '%' && i + 2 < len && (hi = hex_digit_value(s[i + 1])) >= 0
		    && (lo = hex_digit_value(s[i + 2])) >= 0) {
			c = (unsigned char) (hi * 16 + lo);
			i += 2;
			if (c < 0x20 || c == 0x7f)
				c = ' ';
		} else if (c == '%' || c < 0x20 || c == 0x7f) {
			free(out);
			return NULL;
		}
		*o++ = (char) c;
	}
	*o = 0;
	return out;
}

/* The recipient index at the start of a line, or -1. */
static long line_index(const char *line, size_t len, const char **tabp)
{
	const char *tab = memchr(line, '\t', len);
	char *end;
	long idx;

	if (tab == NULL || tab == line || line[0] < '0' || line[0] > '9')
		return -1;
	idx = strtol(line, &end, 10);
	if (end != tab || idx >= REASON_INDEX_MAX)
		return -1;
	*tabp = tab;
	return idx;
}

/* Every well-formed line of text into reasons[0 .. nslots). */
static void parse_text(const char *text, size_t len, char **reasons,
		       int nslots)
{
	const char *p, *nl, *tab;
	long idx;

	for (p = text; p < text + len; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t) (text + len - p))) == NULL)
			break;
		idx = line_index(p, (size_t) (nl - p), &tab);
		if (idx < 0 || idx >= nslots)
			continue;
		free(reasons[idx]);
		reasons[idx] = decode(tab + 1, (size_t) (nl - tab - 1));
	}
}

/* The highest recipient index in text, or -1. */
static long max_index(const char *text, size_t len)
{
	const char *p, *nl, *tab;
	long idx, max = -1;

	for (p = text; p < text + len; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t) (text + len - p))) == NULL)
			break;
		if ((idx = line_index(p, (size_t) (nl - p), &tab)) > max)
			max = idx;
	}
	return max;
}

/* The file's text, or NULL (missing, not a regular file, too large). */
static char *read_small_file(const char *path, size_t *lenp)
{
	struct stat st;
	char *text;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)
	    || st.st_size > REASON_FILE_MAX
	    || (text = malloc((size_t) st.st_size + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	n = read(fd, text, (size_t) st.st_size);
	close(fd);
	if (n < 0) {
		free(text);
		return NULL;
	}
	text[n] = 0;
	*lenp = (size_t) n;
	return text;
}

char **queue_reason_load(const char *queue_dir, const char *id, int nrcpt)
{
	char path[4096], *text;
	char **reasons;
	size_t len;
	int i;

	if (nrcpt <= 0 || reason_path(queue_dir, id, "", path, sizeof path) < 0
	    || (text = read_small_file(path, &len)) == NULL)
		return NULL;
	if ((reasons = calloc((size_t) nrcpt, sizeof *reasons)) != NULL)
		parse_text(text, len, reasons, nrcpt);
	free(text);
	for (i = 0; reasons != NULL && i < nrcpt; i++)
		if (reasons[i] != NULL)
			return reasons;
	free(reasons);
	return NULL;
}

void queue_reason_free(char **reasons, int nrcpt)
{
	int i;

	if (reasons == NULL)
		return;
	for (i = 0; i < nrcpt; i++)
		free(reasons[i]);
	free(reasons);
}

/* ==== writing ==== */

static void put_encoded(FILE *fp, const char *s)
{
	size_t n;

	for (n = 0; *s && n < REASON_TEXT_MAX; s++, n++) {
		unsigned char c = (unsigned char) *s;

		if (c < 0x20 || c == 0x7f || c == '%')
			fprintf(fp, "%%%02X", c);
		else
			putc(c, fp);
	}
}

static int write_reasons(const char *tmp, char **reasons, int nslots)
{
	FILE *fp;
	int i, fd, e;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -1;
	if ((fp = fdopen(fd, "w")) == NULL) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	for (i = 0; i < nslots; i++) {
		if (reasons[i] == NULL)
			continue;
		fprintf(fp, "%d\t", i);
		put_encoded(fp, reasons[i]);
		putc('\n', fp);
	}
	return fclose(fp) == 0 ? 0 : -1;
}

/* defer/ is made by queue_dirs_ensure(); this covers a queue made before. */
static int make_defer_dir(const char *queue_dir)
{
	char dir[4096];

	if ((size_t) snprintf(dir, sizeof dir, "%s/%s", queue_dir,
			      QUEUE_DEFER) >= sizeof dir)
		return -1;
	return mkdir(dir, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* The old file's reasons with r on top, in *nslots slots. */
static char **merge(const char *path, const struct queue_reason *r, int n,
		    int *nslots)
{
	size_t len = 0;
	char *text = read_small_file(path, &len);
	char **reasons;
	long max = text != NULL ? max_index(text, len) : -1;
	int i;

	for (i = 0; i < n; i++)
		if (r[i].index > max && r[i].index < REASON_INDEX_MAX)
			max = r[i].index;
	if (max < 0) {
		free(text);
		errno = EINVAL;
		return NULL;
	}
	if ((reasons = calloc((size_t) max + 1, sizeof *reasons)) == NULL) {
		free(text);
		errno = ENOMEM;
		return NULL;
	}
	if (text != NULL)
		parse_text(text, len, reasons, (int) max + 1);
	free(text);
	for (i = 0; i < n; i++) {
		if (r[i].index < 0 || r[i].index > max)
			continue;
		free(reasons[r[i].index]);
		reasons[r[i].index] = r[i].text ? strdup(r[i].text) : NULL;
	}
	*nslots = (int) max + 1;
	return reasons;
}

static bool any_reason(char **reasons, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (reasons[i] != NULL)
			return true;
	return false;
}

int queue_reason_update(const char *queue_dir, const char *id,
			const struct queue_reason *r, int n)
{
	char path[4096], tmp[4096];
	char **reasons;
	int nslots = 0, rc, e;

	if (reason_path(queue_dir, id, "", path, sizeof path) < 0
	    || reason_path(queue_dir, id, ".tmp.", tmp, sizeof tmp) < 0)
		return -1;
	if (n <= 0)
		return 0;
	if ((reasons = merge(path, r, n, &nslots)) == NULL)
		return -1;
	if (!any_reason(reasons, nslots)) {
		queue_reason_free(reasons, nslots);
		return queue_reason_remove(queue_dir, id);
	}
	(void) unlink(tmp);     /* a leftover of a crash */
	rc = write_reasons(tmp, reasons, nslots);
	if (rc < 0 && errno == ENOENT && make_defer_dir(queue_dir) == 0)
		rc = write_reasons(tmp, reasons, nslots);
	if (rc == 0)
		rc = rename(tmp, path);
	e = errno;
	if (rc < 0)
		(void) unlink(tmp);
	queue_reason_free(reasons, nslots);
	errno = e;
	return rc;
}

int queue_reason_remove(const char *queue_dir, const char *id)
{
	char path[4096];

	if (reason_path(queue_dir, id, "", path, sizeof path) < 0)
		return -1;
	if (unlink(path) < 0 && errno != ENOENT)
		return -1;
	return 0;
}
