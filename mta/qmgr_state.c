/*
 * qmgr_state.c - what the queue manager remembers about a message
 * between two visits, beside its queue file (whose only mutable bytes are
 * the recipients' status):
 *
 *   defer/ID        the last deferral reason of each pending recipient,
 *                   for `sluice queue list` (queue_reason.h owns it);
 *   defer/ID.qmgr   the queue manager's own notes:
 *                     "warned"                 a delay notice was sent
 *                     "done<TAB>INDEX<TAB>ADDR" recipient INDEX's virtual
 *                                              alias expansion ADDR is
 *                                              delivered (or bounced)
 *                   addresses encoded as envelope values are (control
 *                   bytes, DEL and '%' as %XX).
 *
 * Both are informational: written whole under a temporary name and
 * renamed, never synced.  Losing the notes costs at worst a second delay
 * notice or a duplicate delivery to an alias member whose siblings were
 * deferred, never a lost message.  Both go when the message is removed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"
#include "queue_reason.h"
#include "hex_digit.h"

#define STATE_SUFFIX	".qmgr"
#define STATE_LINE_MAX	4096
#define STATE_LINES_MAX	100000

static void state_path(char *buf, size_t len, const char *id, const char *tmp)
{
	snprintf(buf, len, "%s/%s%s%s", QUEUE_DEFER, id, STATE_SUFFIX, tmp);
}

/* ---- encoding ------------------------------------------------------ */

static void encode(FILE *fp, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '%')
			fprintf(fp, "%%%02X", *p);
		else
			fputc(*p, fp);
	}
}

/* Decode in place; false on a bad escape or a NUL. */
static bool decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		int hi, lo;

		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		if ((hi = hex_digit_value(s[1])) < 0 || (lo = hex_digit_value(s[2])) < 0 ||
		    hi * 16 + lo == 0)
			return false;
		*o++ = (char)(hi * 16 + lo);
		s += 2;
	}
	*o = 0;
	return true;
}

/* ---- reading --------------------------------------------------------- */

static void add_done(struct qmgr_msg *m, int index, const char *addr)
{
	char **a = realloc(m->done_addrs, (size_t)(m->ndone + 1) * sizeof *a);
	int *ix = realloc(m->done_index, (size_t)(m->ndone + 1) * sizeof *ix);

	if (a == NULL || ix == NULL)
		msg_fatal("out of memory");
	m->done_addrs = a;
	m->done_index = ix;
	if ((a[m->ndone] = strdup(addr)) == NULL)
		msg_fatal("out of memory");
	ix[m->ndone++] = index;
}

static void state_line(struct qmgr_msg *m, char *line)
{
	char *idx, *addr, *end;
	long v;

	line[strcspn(line, "\n")] = 0;
	if (strcmp(line, "warned") == 0) {
		m->warned = true;
		return;
	}
	if (strncmp(line, "done\t", 5) != 0)
		return;
	idx = line + 5;
	if ((addr = strchr(idx, '\t')) == NULL)
		return;
	*addr++ = 0;
	v = strtol(idx, &end, 10);
	if (*end != 0 || v < 0 || v >= m->env.nrcpt || !decode(addr) || !*addr)
		return;
	add_done(m, (int)v, addr);
}

void qmgr_state_load(struct qmgr_msg *m)
{
	char path[QUEUE_ID_MAX + 32], line[STATE_LINE_MAX];
	FILE *fp;
	int n = 0;

	state_path(path, sizeof path, m->id, "");
	if ((fp = fopen(path, "re")) == NULL)
		return;
	while (n++ < STATE_LINES_MAX && fgets(line, sizeof line, fp) != NULL)
		state_line(m, line);
	fclose(fp);
}

bool qmgr_state_was_done(const struct qmgr_msg *m, int index, const char *addr)
{
	for (int i = 0; i < m->ndone; i++)
		if (m->done_index[i] == index && strcmp(m->done_addrs[i], addr) == 0)
			return true;
	return false;
}

/* ---- writing ------------------------------------------------------- */

static int write_notes(const struct qmgr_msg *m, FILE *fp)
{
	if (m->warned)
		fputs("warned\n", fp);
	for (int i = 0; i < m->ndone; i++) {
		if (m->env.rcpt[m->done_index[i]].status == 'D')
			continue;
		fprintf(fp, "done\t%d\t", m->done_index[i]);
		encode(fp, m->done_addrs[i]);
		fputc('\n', fp);
	}
	for (int i = 0; i < m->naddrs; i++) {
		const struct qmgr_addr *a = &m->addrs[i];

		if (a->state != QA_DONE || m->env.rcpt[a->index].status == 'D')
			continue;
		fprintf(fp, "done\t%d\t", a->index);
		encode(fp, a->addr);
		fputc('\n', fp);
	}
	return ferror(fp) ? -1 : 0;
}

static bool notes_needed(const struct qmgr_msg *m)
{
	if (m->warned)
		return true;
	for (int i = 0; i < m->ndone; i++)
		if (m->env.rcpt[m->done_index[i]].status != 'D')
			return true;
	for (int i = 0; i < m->naddrs; i++)
		if (m->addrs[i].state == QA_DONE &&
		    m->env.rcpt[m->addrs[i].index].status != 'D')
			return true;
	return false;
}

static void save_notes(const struct qmgr_msg *m)
{
	char path[QUEUE_ID_MAX + 32], tmp[QUEUE_ID_MAX + 40];
	FILE *fp;

	state_path(path, sizeof path, m->id, "");
	if (!notes_needed(m)) {
		if (unlink(path) < 0 && errno != ENOENT)
			msg_warn("%s: cannot remove %s: %s", m->id, path,
				 strerror(errno));
		return;
	}
	state_path(tmp, sizeof tmp, m->id, ".tmp");
	if (mkdir(QUEUE_DEFER, 0700) < 0 && errno != EEXIST)
		msg_warn("cannot create %s/: %s", QUEUE_DEFER, strerror(errno));
	if ((fp = fopen(tmp, "we")) == NULL) {
		msg_warn("%s: cannot write %s: %s", m->id, tmp, strerror(errno));
		return;
	}
	if (write_notes(m, fp) < 0 || fclose(fp) != 0 || rename(tmp, path) < 0) {
		msg_warn("%s: cannot write %s: %s", m->id, path, strerror(errno));
		unlink(tmp);
	}
}

/* The last reason of each pending recipient (one per recipient: the
 * first of its addresses that has one). */
static void save_reasons(const struct qmgr_msg *m)
{
	struct queue_reason *r = calloc((size_t)m->naddrs + 1, sizeof *r);
	int n = 0;

	if (r == NULL)
		return;
	for (int i = 0; i < m->naddrs; i++) {
		const struct qmgr_addr *a = &m->addrs[i];
		bool seen = false;

		if (a->state != QA_DEFERRED || a->reason == NULL)
			continue;
		for (int k = 0; k < n && !seen; k++)
			seen = r[k].index == a->index;
		if (!seen)
			r[n++] = (struct queue_reason){ a->index, a->reason };
	}
	if (n > 0 && queue_reason_update(".", m->id, r, n) < 0)
		msg_warn("%s: cannot record the deferral reasons: %s", m->id,
			 strerror(errno));
	free(r);
}

void qmgr_state_save(struct qmgr_msg *m)
{
	save_reasons(m);
	save_notes(m);
}

void qmgr_state_remove(const char *id)
{
	char path[QUEUE_ID_MAX + 32];

	if (queue_reason_remove(".", id) < 0)
		msg_warn("%s: cannot remove its deferral reasons: %s", id,
			 strerror(errno));
	state_path(path, sizeof path, id, "");
	if (unlink(path) < 0 && errno != ENOENT)
		msg_warn("%s: cannot remove %s: %s", id, path, strerror(errno));
}
