/*
 * queue_cmd.c - `sluice queue list|show|hold|release|requeue|delete|flush`,
 * what Postfix's mailq, postqueue, postsuper and postcat do
 * (docs/queue-tools.md).
 *
 *   list                       mailq's listing (queue_list.c)
 *   show [-e|-h|-b] ID...      envelope and content (queue_show.c)
 *   hold SELECT [QUEUE...]     incoming, active, deferred -> hold/
 *   release SELECT [QUEUE...]  hold -> incoming/
 *   requeue SELECT [QUEUE...]  active, deferred -> incoming/, reasons gone
 *   delete SELECT [QUEUE...]   incoming, active, deferred, hold: removed
 *   flush                      ask the queue manager to try everything now
 *
 * SELECT is any mix of queue IDs, ALL, -s SENDER, -r RECIPIENT (messages
 * with that envelope sender, or with that recipient; "" or <> is the null
 * sender) and - (IDs read from stdin, one per line; anything after the
 * first word, like mailq's '*' or '!', is ignored).  Naming queues limits
 * the action to them.
 *
 * Each message acted on is logged as postsuper logs it ("ID: placed on
 * hold", "ID: released from hold", "ID: requeued", "ID: removed"); a
 * count goes to stderr.  Moves are rename(2)s of complete files only,
 * made durable by syncing the directories involved.  Exit status: 0, 1
 * when a named ID was not found or something failed, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "log.h"
#include "qmgr_trigger.h"
#include "queue.h"
#include "queue_reason.h"
#include "queue_tools.h"
#include "tool_common.h"

#define MAX_QUEUES      8

/* ==== hold, release, requeue, delete ==== */

struct action {
	const char *name;
	const char *from[MAX_QUEUES];   /* default source queues */
	const char *to;                 /* NULL: remove */
	const char *logged;             /* "ID: placed on hold" */
	const char *counted;            /* "Placed on hold: N messages" */
	bool drop_reasons;
};

static const struct action actions[] = {
	{ "hold", { QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, NULL },
	  QUEUE_HOLD, "placed on hold", "Placed on hold", false },
	{ "release", { QUEUE_HOLD, NULL },
	  QUEUE_INCOMING, "released from hold", "Released from hold", false },
	{ "requeue", { QUEUE_ACTIVE, QUEUE_DEFERRED, NULL },
	  QUEUE_INCOMING, "requeued", "Requeued", true },
	{ "delete", { QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
		      NULL },
	  NULL, "removed", "Deleted", true },
};

/* What to act on. */
struct selection {
	bool all;
	char **ids;             /* named IDs (and those read from stdin) */
	int nids;
	bool *found;
	const char *sender, *rcpt;      /* without <>; NULL: not asked */
	const char *queues[MAX_QUEUES]; /* the sources, NULL-terminated */
};

struct run {
	const char *qdir;
	const struct action *a;
	struct selection sel;
	int done, failed;
	bool dirty[MAX_QUEUES + 1];     /* directories to sync: sources, to */
};

static int add_id(struct selection *s, const char *id)
{
	char **v = realloc(s->ids, (size_t) (s->nids + 1) * sizeof *v);

	if (v == NULL)
		return -1;
	s->ids = v;
	if ((v[s->nids] = strdup(id)) == NULL)
		return -1;
	s->nids++;
	return 0;
}

/* IDs from stdin: the first word of each line ("ID*" as mailq shows). */
static int read_stdin_ids(struct selection *s)
{
	char line[1024];
	size_t n;

	while (fgets(line, sizeof line, stdin) != NULL) {
		n = strspn(line, "0123456789ABCDEF");
		line[n] = 0;
		if (n > 0 && qt_id_ok(line) && add_id(s, line) < 0)
			return -1;
	}
	return 0;
}

/* A copy of the address without the <> around it. */
static char *dup_address(const char *addr)
{
	size_t n = strlen(addr);

	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>')
		return strndup(addr + 1, n - 2);
	return strdup(addr);
}

/* -s or -r: the address to match (the last one given wins). */
static int set_address(const char **slot, const char *value)
{
	free((char *) *slot);
	*slot = dup_address(value);
	return *slot != NULL ? 0 : 2;
}

static int usage(const char *name)
{
	fprintf(stderr, "usage: sluice queue %s ID...|ALL|-s SENDER|-r "
		"RECIPIENT|- [QUEUE...]\n", name);
	return 2;
}

/* One argument of a selection; 0, or 2 after a usage message. */
static int parse_arg(struct run *r, char **argv, int argc, int *i, int *nq)
{
	const char *arg = argv[*i];
	struct selection *s = &r->sel;

	if ((strcmp(arg, "-s") == 0 || strcmp(arg, "-r") == 0)
	    && *i + 1 < argc) {
		(*i)++;
		return set_address(arg[1] == 's' ? &s->sender : &s->rcpt,
				   argv[*i]);
	}
	if (strcmp(arg, "ALL") == 0)
		s->all = true;
	else if (strcmp(arg, "-") == 0)
		return read_stdin_ids(s) < 0 ? 2 : 0;
	else if (qt_queue_ok(arg) && *nq < MAX_QUEUES - 1)
		s->queues[(*nq)++] = arg;
	else if (qt_id_ok(arg))
		return add_id(s, arg) < 0 ? 2 : 0;
	else {
		fprintf(stderr, "sluice: queue: %s: not a queue ID, ALL, -s, "
			"-r, - or a queue name\n", arg);
		return usage(r->a->name);
	}
	return 0;
}

static int parse_selection(struct run *r, int argc, char **argv)
{
	struct selection *s = &r->sel;
	int i, nq = 0, rc;

	for (i = 1; i < argc; i++)
		if ((rc = parse_arg(r, argv, argc, &i, &nq)) != 0)
			return rc;
	if (!s->all && s->nids == 0 && !s->sender && !s->rcpt)
		return usage(r->a->name);
	if (nq == 0)
		memcpy(s->queues, r->a->from, sizeof s->queues);
	if (s->nids > 0 && (s->found = calloc((size_t) s->nids,
					      sizeof *s->found)) == NULL)
		return 2;
	return 0;
}

/* Does the message's envelope match -s / -r? */
static bool envelope_matches(const struct run *r, const char *sub,
			     const char *id)
{
	struct queue_envelope env;
	struct stat st;
	char err[256];
	bool match = false;
	int fd = qt_open(r->qdir, sub, id, &st), i;

	if (fd < 0)
		return false;
	memset(&env, 0, sizeof env);
	if (queue_read_envelope_fd(fd, &env, err, sizeof err) == 0) {
		match = r->sel.sender == NULL
			|| strcasecmp(env.sender, r->sel.sender) == 0;
		if (match && r->sel.rcpt != NULL)
			for (i = 0, match = false; i < env.nrcpt && !match; i++)
				match = strcasecmp(env.rcpt[i].addr,
						   r->sel.rcpt) == 0;
		queue_envelope_free(&env);
	}
	close(fd);
	return match;
}

static bool selected(struct run *r, const char *sub, const char *id)
{
	const struct selection *s = &r->sel;
	int i;

	for (i = 0; i < s->nids; i++)
		if (strcmp(s->ids[i], id) == 0) {
			s->found[i] = true;
			return true;
		}
	if (!s->all && s->sender == NULL && s->rcpt == NULL)
		return false;
	if (s->sender == NULL && s->rcpt == NULL)
		return true;
	return envelope_matches(r, sub, id);
}

static void mark_dirty(struct run *r, int qi)
{
	r->dirty[qi] = true;
	if (r->a->to != NULL)
		r->dirty[MAX_QUEUES] = true;
}

/* Move or remove one message (complete files only). */
static void act_on(struct run *r, const char *sub, int qi, const char *id)
{
	char from[4096], to[4096];
	struct stat st;
	int fd = qt_open(r->qdir, sub, id, &st), rc;

	if (fd < 0)
		return;         /* gone, or being written */
	close(fd);
	snprintf(from, sizeof from, "%s/%s/%s", r->qdir, sub, id);
	if (r->a->to == NULL) {
		rc = unlink(from);
	} else {
		snprintf(to, sizeof to, "%s/%s/%s", r->qdir, r->a->to, id);
		rc = renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
	}
	if (rc < 0) {
		if (errno != ENOENT) {
			fprintf(stderr, "sluice: queue: %s/%s: %s\n", sub, id,
				strerror(errno));
			r->failed++;
		}
		return;
	}
	if (r->a->drop_reasons)
		(void) queue_reason_remove(r->qdir, id);
	if (r->a->to == NULL) { /* the queue manager's state goes too */
		snprintf(to, sizeof to, "%s/%s/%s.qmgr", r->qdir, QUEUE_DEFER,
			 id);
		(void) unlink(to);
	}
	msg_info("%s: %s", id, r->a->logged);
	mark_dirty(r, qi);
	r->done++;
}

static void act_on_queue(struct run *r, int qi)
{
	const char *sub = r->sel.queues[qi];
	char **ids;
	int n, i;

	if (r->a->to != NULL && strcmp(sub, r->a->to) == 0)
		return;         /* already there */
	if ((ids = qt_list_ids(r->qdir, sub, &n)) == NULL) {
		fprintf(stderr, "sluice: queue: cannot read %s/%s: %s; run as "
			"root or as mail_owner\n", r->qdir, sub,
			strerror(errno));
		r->failed++;
		return;
	}
	for (i = 0; i < n; i++)
		if (selected(r, sub, ids[i]))
			act_on(r, sub, qi, ids[i]);
	qt_free_ids(ids, n);
}

static void sync_dir(const char *qdir, const char *sub)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof path, "%s/%s", qdir, sub);
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return;
	if (fsync(fd) < 0)
		fprintf(stderr, "sluice: queue: fsync %s: %s\n", path,
			strerror(errno));
	close(fd);
}

/* Sync what changed, name what was not found, tell the count. */
static int finish_run(struct run *r)
{
	int i, missing = 0;

	for (i = 0; r->sel.queues[i] != NULL; i++)
		if (r->dirty[i])
			sync_dir(r->qdir, r->sel.queues[i]);
	if (r->dirty[MAX_QUEUES])
		sync_dir(r->qdir, r->a->to);
	for (i = 0; i < r->sel.nids; i++)
		if (!r->sel.found[i]) {
			fprintf(stderr, "sluice: queue: %s: no such message in "
				"the queues looked at\n", r->sel.ids[i]);
			missing++;
		}
	fprintf(stderr, "sluice: %s: %d message%s\n", r->a->counted, r->done,
		r->done == 1 ? "" : "s");
	if (r->done > 0 && r->a->to != NULL
	    && strcmp(r->a->to, QUEUE_INCOMING) == 0)
		(void) qmgr_trigger_send(r->qdir, QMGR_REQ_SCAN_INCOMING);
	return missing || r->failed ? 1 : 0;
}

static void free_run(struct run *r)
{
	int i;

	for (i = 0; i < r->sel.nids; i++)
		free(r->sel.ids[i]);
	free(r->sel.ids);
	free(r->sel.found);
	free((char *) r->sel.sender);
	free((char *) r->sel.rcpt);
}

static int queue_act(const char *qdir, const struct action *a, int argc,
		     char **argv)
{
	struct run r;
	int i, rc;

	memset(&r, 0, sizeof r);
	r.qdir = qdir;
	r.a = a;
	if ((rc = parse_selection(&r, argc, argv)) == 0) {
		for (i = 0; r.sel.queues[i] != NULL; i++)
			act_on_queue(&r, i);
		rc = finish_run(&r);
	}
	free_run(&r);
	return rc;
}

/* ==== flush ==== */

static int queue_flush(const char *qdir, int argc)
{
	if (argc > 1) {
		fprintf(stderr, "usage: sluice queue flush\n");
		return 2;
	}
	if (qmgr_trigger_send(qdir, QMGR_REQ_FLUSH_DEAD) < 0
	    || qmgr_trigger_send(qdir, QMGR_REQ_SCAN_ALL) < 0) {
		if (errno == ENXIO || errno == ENOENT)
			fprintf(stderr, "sluice: queue: cannot flush the "
				"queue: the queue manager is not running; the "
				"mail waits until sluice starts\n");
		else
			fprintf(stderr, "sluice: queue: cannot flush the "
				"queue: %s/%s: %s\n", qdir, QMGR_TRIGGER_FIFO,
				strerror(errno));
		return 1;
	}
	msg_info("flush requested by uid=%ld", (long) getuid());
	return 0;
}

/* ==== the command ==== */

static int queue_usage(void)
{
	fprintf(stderr,
		"usage: sluice queue list\n"
		"       sluice queue show [-e|-h|-b] ID...\n"
		"       sluice queue hold|release|requeue|delete SELECTION "
		"[QUEUE...]\n"
		"         SELECTION: ID..., ALL, -s SENDER, -r RECIPIENT, "
		"- (IDs on stdin)\n"
		"       sluice queue flush\n");
	return 2;
}

static int dispatch(const char *qdir, int argc, char **argv)
{
	size_t i;

	if (strcmp(argv[0], "list") == 0)
		return queue_list(qdir, argc, argv);
	if (strcmp(argv[0], "show") == 0)
		return queue_show(qdir, argc, argv);
	if (strcmp(argv[0], "flush") == 0)
		return queue_flush(qdir, argc);
	for (i = 0; i < sizeof actions / sizeof actions[0]; i++)
		if (strcmp(argv[0], actions[i].name) == 0)
			return queue_act(qdir, &actions[i], argc, argv);
	fprintf(stderr, "sluice: queue: unknown command '%s'\n", argv[0]);
	return queue_usage();
}

int cmd_queue(const char *config_dir, int argc, char **argv)
{
	struct sluice_config *sc;
	char *qdir;
	int rc;

	if (argc < 2)
		return queue_usage();
	if ((sc = tool_load_config(config_dir, "sluice: queue")) == NULL)
		return 1;
	tool_open_log(sc, "queue");
	qdir = strdup(cfg_str(sc->main, "queue_directory"));
	config_free(sc);
	if (qdir == NULL)
		return 1;
	rc = dispatch(qdir, argc - 1, argv + 1);
	free(qdir);
	return rc;
}
