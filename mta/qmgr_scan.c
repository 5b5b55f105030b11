/*
 * qmgr_scan.c - which messages come into active/, and when.
 *
 * Three listings: active/ (once, at start: whatever a previous queue
 * manager left there is scheduled again), incoming/ (on every wake-up
 * from smtpd, pickup or a bounce, and every queue_run_delay) and
 * deferred/ (every queue_run_delay, and on `sluice queue flush`).  A
 * listing is the directory's queue IDs sorted by name, which is by
 * arrival; the feeder works through it while there is room in active/
 * (qmgr_message_active_limit), and a scan asked for meanwhile is done
 * when the listing runs out.
 *
 * Fairness: incoming and deferred mail take turns for the room in
 * active/, so a large backlog of retries never starves new mail (and the
 * scheduler alternates between them again within each destination).
 *
 * The rules for a file:
 *   incoming/  taken only when complete (mode 0700, docs/queue-format.md);
 *              a file still being written is left for a later scan;
 *   deferred/  taken when its mtime (the next retry time) has come, or
 *              always in a flush;
 *   active/    taken at start.
 * Taking it is a rename() into active/; a file that vanished meanwhile
 * (`sluice queue delete`) is skipped.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "qmgr.h"

struct qmgr_scan {
	const char *dir;
	char **ids;
	int n, next;
	bool requested;		/* list the directory (again) when done */
	bool want_all;		/* ... taking every file (flush) */
	bool all;		/* the current listing is a flush */
};

struct qmgr_scans {
	struct qmgr_scan s[3];	/* by enum qmgr_queue */
	bool deferred_turn;	/* who goes first next time */
};

static const char *const scan_dirs[] = {
	[QQ_INCOMING] = QUEUE_INCOMING, [QQ_DEFERRED] = QUEUE_DEFERRED,
	[QQ_ACTIVE] = QUEUE_ACTIVE,
};

int qmgr_scan_init(struct qmgr *q)
{
	if ((q->scans = calloc(1, sizeof *q->scans)) == NULL)
		return -1;
	for (int i = 0; i < 3; i++)
		q->scans->s[i].dir = scan_dirs[i];
	return 0;
}

static void listing_free(struct qmgr_scan *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->ids[i]);
	free(s->ids);
	s->ids = NULL;
	s->n = s->next = 0;
}

void qmgr_scan_free(struct qmgr *q)
{
	if (q->scans == NULL)
		return;
	for (int i = 0; i < 3; i++)
		listing_free(&q->scans->s[i]);
	free(q->scans);
	q->scans = NULL;
}

void qmgr_scan_request(struct qmgr *q, enum qmgr_queue which, bool all)
{
	struct qmgr_scan *s = &q->scans->s[which];

	s->requested = true;
	s->want_all |= all;
	qmgr_kick(q);
}

/* ---- listing a directory ---------------------------------------------- */

/* Queue IDs are upper-case hex (docs/queue-format.md). */
static bool is_queue_id(const char *name)
{
	size_t n = strlen(name);

	return n > 13 && n < QUEUE_ID_MAX &&
	       strspn(name, "0123456789ABCDEF") == n;
}

/* A deferred file is due when its mtime has come. */
static bool due(const char *dir, const char *id, time_t now)
{
	char path[QUEUE_ID_MAX + 16];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, id);
	return stat(path, &st) == 0 && st.st_mtime <= now;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int listing_add(struct qmgr_scan *s, const char *id, int *cap)
{
	if (s->n == *cap) {
		int ncap = *cap ? *cap * 2 : 64;
		char **v = realloc(s->ids, (size_t)ncap * sizeof *v);

		if (v == NULL)
			return -1;
		s->ids = v;
		*cap = ncap;
	}
	if ((s->ids[s->n] = strdup(id)) == NULL)
		return -1;
	s->n++;
	return 0;
}

static void list_dir(struct qmgr_scan *s, bool check_due)
{
	DIR *d = opendir(s->dir);
	struct dirent *de;
	time_t now = time(NULL);
	int cap = 0;

	listing_free(s);
	if (d == NULL) {
		msg_warn("cannot scan %s/: %s", s->dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_queue_id(de->d_name) ||
		    (check_due && !due(s->dir, de->d_name, now)))
			continue;
		if (listing_add(s, de->d_name, &cap) < 0) {
			msg_warn("scanning %s/: out of memory", s->dir);
			break;
		}
	}
	closedir(d);
	if (s->n > 1)
		qsort(s->ids, (size_t)s->n, sizeof *s->ids, by_name);
}

/* The next ID of listing `s`, listing the directory again when a scan
 * was asked for and the listing has run out.  NULL when none. */
static const char *next_of(struct qmgr_scan *s, enum qmgr_queue which)
{
	if (s->next >= s->n && s->requested) {
		s->all = s->want_all;
		s->requested = s->want_all = false;
		list_dir(s, which == QQ_DEFERRED && !s->all);
	}
	return s->next < s->n ? s->ids[s->next++] : NULL;
}

/* ---- taking a file ------------------------------------------------- */

static bool complete(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       (st.st_mode & S_IXUSR);
}

/* Move `id` from its directory into active/.  False when it is not
 * there (any more) or not ready. */
static bool take(enum qmgr_queue which, const char *id)
{
	char from[QUEUE_ID_MAX + 16], to[QUEUE_ID_MAX + 16];

	if (which == QQ_ACTIVE)
		return true;
	snprintf(from, sizeof from, "%s/%s", scan_dirs[which], id);
	snprintf(to, sizeof to, "%s/%s", QUEUE_ACTIVE, id);
	if (which == QQ_INCOMING && !complete(from))
		return false;
	if (rename(from, to) == 0)
		return true;
	if (errno != ENOENT)
		msg_warn("%s: cannot move %s to %s: %s", id, from, to,
			 strerror(errno));
	return false;
}

/* The queue to take from now: active/ first (start-up), then incoming/
 * and deferred/ in turn.  -1 when every listing is done. */
static int pick(struct qmgr_scans *sc, const char **id)
{
	enum qmgr_queue order[2];

	if ((*id = next_of(&sc->s[QQ_ACTIVE], QQ_ACTIVE)) != NULL)
		return QQ_ACTIVE;
	order[0] = sc->deferred_turn ? QQ_DEFERRED : QQ_INCOMING;
	order[1] = sc->deferred_turn ? QQ_INCOMING : QQ_DEFERRED;
	for (int i = 0; i < 2; i++) {
		if ((*id = next_of(&sc->s[order[i]], order[i])) != NULL) {
			sc->deferred_turn = order[i] == QQ_INCOMING;
			return order[i];
		}
	}
	return -1;
}

void qmgr_scan_feed(struct qmgr *q)
{
	const char *id;
	int which;

	while (!q->stopping && q->nmsgs < q->p.active_limit) {
		if ((which = pick(q->scans, &id)) < 0)
			return;
		if (take(which, id))
			qmgr_msg_activate(q, id, which != QQ_INCOMING,
					  q->scans->s[which].all);
	}
}
