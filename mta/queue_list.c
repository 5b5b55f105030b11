/*
 * queue_list.c - `sluice queue list` (and mailq, sendmail -bp): the
 * queue in the format of Postfix's mailq, which scripts parse:
 *
 *   -Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------
 *   6B012F0CC3C02A72621*     268 Sat Nov 21 05:38:36  alice@example.org
 *                                            bob@example.net
 *
 *   -- 0 Kbytes in 1 Request.
 *
 * After the ID: '*' in active/, '!' in hold/.  A recipient's deferral
 * reason (queue_reason.h) is shown in parentheses above it, right-aligned
 * as Postfix does, once for a run of recipients with the same reason.
 * Only recipients not yet done are listed; the null sender reads
 * MAILER-DAEMON.  Messages come in arrival order (by queue ID) whatever
 * their queue; files sendmail left in maildrop/ show as "(maildrop
 * queue, sender UID N)".  An empty queue prints "Mail queue is empty".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildrop.h"
#include "queue.h"
#include "queue_reason.h"
#include "queue_tools.h"

#define REASON_WIDTH    76      /* Postfix right-aligns reasons to this */
#define RCPT_INDENT     41      /* "%-10s %8s %-20s " of empty strings */

struct list_entry {
	char *id;
	const struct qt_queue *q;       /* NULL: maildrop */
};

struct list_totals {
	long long bytes;
	int count;
};

/* The column titles, before the first message. */
static void put_title(const struct list_totals *t)
{
	if (t->count == 0)
		printf("%-11s %7s %-20s %s\n", "-Queue ID-", "--Size--",
		       "----Arrival Time----", "-Sender/Recipient-------");
}

static int cmp_entry(const void *a, const void *b)
{
	const struct list_entry *x = a, *y = b;

	return strcmp(x->id, y->id);
}

static int add_entry(struct list_entry **v, int *n, char *id,
		     const struct qt_queue *q)
{
	struct list_entry *nv = realloc(*v, (size_t) (*n + 1) * sizeof **v);

	if (nv == NULL)
		return -1;
	*v = nv;
	nv[*n].id = id;
	nv[*n].q = q;
	(*n)++;
	return 0;
}

/* The complete maildrop files (readable only by root and mail_owner). */
static int add_maildrop(const char *qdir, struct list_entry **v, int *n)
{
	char path[4096];
	struct dirent *de;
	DIR *d;
	char *id;

	snprintf(path, sizeof path, "%s/%s", qdir, MAILDROP_DIR);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (!maildrop_name_ok(de->d_name))
			continue;
		if ((id = strdup(de->d_name)) == NULL
		    || add_entry(v, n, id, NULL) < 0) {
			free(id);
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

/* Every message of every queue; -1 (printed) when a queue is unreadable. */
static struct list_entry *collect(const char *qdir, int *np)
{
	struct list_entry *v = NULL;
	const struct qt_queue *q;
	char **ids;
	int n = 0, k, i;

	for (q = qt_queues; q->name != NULL; q++) {
		if (strcmp(q->name, QUEUE_CORRUPT) == 0)
			continue;
		if ((ids = qt_list_ids(qdir, q->name, &k)) == NULL) {
			fprintf(stderr, "sluice: queue: cannot read %s/%s: %s; "
				"run as root or as mail_owner\n", qdir, q->name,
				strerror(errno));
			for (i = 0; i < n; i++)
				free(v[i].id);
			free(v);
			return NULL;
		}
		for (i = 0; i < k; i++)
			if (add_entry(&v, &n, ids[i], q) < 0)
				free(ids[i]);
		free(ids);
	}
	(void) add_maildrop(qdir, &v, &n);
	if (n > 1)
		qsort(v, (size_t) n, sizeof *v, cmp_entry);
	*np = n;
	return v != NULL ? v : calloc(1, sizeof *v);
}

static void put_first_line(const char *id, char mark, long long size,
			   long long arrival)
{
	char idm[64], when[32];

	snprintf(idm, sizeof idm, "%s%c", id, mark);
	qt_time(when, sizeof when, arrival);
	printf("%-11s %7lld %20.20s ", idm, size, when);
}

static void put_reason(const char *reason, const char **last)
{
	int pad = REASON_WIDTH - (int) strlen(reason);

	if (*last != NULL && strcmp(*last, reason) == 0)
		return;
	*last = reason;
	printf("%*s(", pad > 0 ? pad : 0, "");
	qt_put_safe(stdout, reason);
	printf(")\n");
}

static void put_recipients(const char *qdir, const char *id,
			   const struct queue_envelope *env)
{
	char **reasons = queue_reason_load(qdir, id, env->nrcpt);
	const char *last = NULL;
	int i;

	for (i = 0; i < env->nrcpt; i++) {
		if (env->rcpt[i].status == 'D')
			continue;
		if (reasons != NULL && reasons[i] != NULL)
			put_reason(reasons[i], &last);
		printf("%*s", RCPT_INDENT, "");
		qt_put_safe(stdout, env->rcpt[i].addr);
		putchar('\n');
	}
	queue_reason_free(reasons, env->nrcpt);
}

static void list_message(const char *qdir, const struct list_entry *e,
			 struct list_totals *t)
{
	struct queue_envelope env;
	struct stat st;
	char err[256];
	int fd = qt_open(qdir, e->q->name, e->id, &st);

	if (fd < 0)
		return;         /* gone meanwhile */
	memset(&env, 0, sizeof env);
	if (queue_read_envelope_fd(fd, &env, err, sizeof err) < 0) {
		close(fd);
		return;         /* damaged: the queue manager moves it */
	}
	close(fd);
	put_title(t);
	put_first_line(e->id, e->q->mark, env.size, env.arrival_sec);
	qt_put_safe(stdout, *env.sender ? env.sender : "MAILER-DAEMON");
	putchar('\n');
	put_recipients(qdir, e->id, &env);
	putchar('\n');
	t->bytes += env.size;
	t->count++;
	queue_envelope_free(&env);
}

static void list_maildrop(const char *qdir, const struct list_entry *e,
			  struct list_totals *t)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s/%s", qdir, MAILDROP_DIR, e->id);
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode)
	    || !(st.st_mode & S_IXUSR))
		return;         /* being written, or not ours */
	put_title(t);
	put_first_line(e->id, ' ', (long long) st.st_size,
		       (long long) st.st_mtime);
	printf("(maildrop queue, sender UID %ld)\n\n", (long) st.st_uid);
	t->bytes += st.st_size;
	t->count++;
}

int queue_list(const char *qdir, int argc, char **argv)
{
	struct list_totals t = { 0, 0 };
	struct list_entry *v;
	int n = 0, i;

	if (argc > 1) {
		fprintf(stderr, "usage: sluice queue list\n");
		return 2;
	}
	if ((v = collect(qdir, &n)) == NULL)
		return 1;
	for (i = 0; i < n; i++) {
		if (v[i].q != NULL)
			list_message(qdir, &v[i], &t);
		else
			list_maildrop(qdir, &v[i], &t);
		free(v[i].id);
	}
	free(v);
	if (t.count == 0)
		printf("Mail queue is empty\n");
	else
		printf("-- %lld Kbytes in %d Request%s.\n", t.bytes / 1024,
		       t.count, t.count == 1 ? "" : "s");
	return ferror(stdout) ? 1 : 0;
}
