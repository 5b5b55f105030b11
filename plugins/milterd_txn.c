/*
 * milterd_txn.c - the message side of sluice-milterd's sessions: forget a
 * transaction, and turn what the plugins' eom hooks changed into the
 * smfi_* edits the MTA understands.
 *
 * The eom stage edits the session's header list and recipients in place
 * (plugin_api.c).  Before it runs, milterd_snapshot() keeps the header
 * and recipient pointers as received; afterwards milterd_diff() compares:
 * a header whose name pointer is gone was deleted, one whose value
 * pointer changed was changed, a header not in the snapshot was added
 * (appended when it follows every kept header, else inserted at its
 * position); recipients are compared by pointer the same way.
 *
 * Promises: the edits come in an order the MTA can apply one after the
 * other - changes and deletions last occurrence first (so an occurrence
 * index never shifts under a later edit), then insertions in position
 * order (everything above an insertion is already in place), then
 * recipient deletions and additions.  Runs in the loop thread only.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "milterd.h"
#include "mymalloc.h"

void milterd_edits_free(struct md_conn *c)
{
	for (int i = 0; i < c->nedit; i++) {
		free(c->edits[i].name);
		free(c->edits[i].value);
	}
	free(c->edits);
	c->edits = NULL;
	c->nedit = 0;
}

static void orig_free(struct md_orig *v, int n)
{
	for (int i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

static void snapshot_free(struct md_conn *c)
{
	orig_free(c->orig_h, c->norig_h);
	orig_free(c->orig_r, c->norig_r);
	c->orig_h = c->orig_r = NULL;
	c->norig_h = c->norig_r = 0;
}

void milterd_txn_clear(struct md_conn *c)
{
	struct smtp_txn *tx = &c->s.txn;

	milterd_content_drop(c);
	free((char *)tx->cur_rcpt);     /* only when a RCPT step was abandoned */
	free(tx->env.sender);
	for (int i = 0; i < tx->env.nrcpt; i++) {
		free(tx->env.rcpt[i].addr);
		free(tx->env.rcpt[i].orcpt);
	}
	free(tx->env.rcpt);
	for (int i = 0; i < tx->nhdr; i++) {
		free(tx->hdr[i].name);
		free(tx->hdr[i].value);
	}
	free(tx->hdr);
	free(tx->hold_reason);
	memset(tx, 0, sizeof *tx);
	c->s.queue_id[0] = 0;
	snapshot_free(c);
}

void milterd_conn_free(struct md_conn *c)
{
	milterd_txn_clear(c);
	milterd_edits_free(c);
	free(c->s.helo_name);
	free(c->s.hold_all_reason);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

void milterd_snapshot(struct md_conn *c)
{
	struct smtp_txn *tx = &c->s.txn;

	snapshot_free(c);
	c->norig_h = tx->nhdr;
	c->orig_h = mycalloc(((size_t)tx->nhdr + 1) * sizeof *c->orig_h);
	for (int i = 0; i < tx->nhdr; i++) {
		c->orig_h[i].nptr = tx->hdr[i].name;
		c->orig_h[i].vptr = tx->hdr[i].value;
		c->orig_h[i].name = mystrdup(tx->hdr[i].name);
		c->orig_h[i].value = mystrdup(tx->hdr[i].value);
	}
	c->norig_r = tx->env.nrcpt;
	c->orig_r = mycalloc(((size_t)tx->env.nrcpt + 1) * sizeof *c->orig_r);
	for (int i = 0; i < tx->env.nrcpt; i++) {
		c->orig_r[i].nptr = tx->env.rcpt[i].addr;
		c->orig_r[i].name = mystrdup(tx->env.rcpt[i].addr);
	}
}

static void edit_add(struct md_conn *c, enum md_edit_kind kind,
		     const char *name, const char *value, int index)
{
	struct md_edit *e;

	c->edits = realloc(c->edits, (size_t)(c->nedit + 1) * sizeof *c->edits);
	if (c->edits == NULL)
		msg_fatal("sluice-milterd: out of memory");
	e = &c->edits[c->nedit++];
	e->kind = kind;
	e->name = mystrdup(name);
	e->value = value ? mystrdup(value) : NULL;
	e->index = index;
}

/* A stored value is " value" (plugin_api.c): the MTA wants it without
 * the space after the colon. */
static const char *bare(const char *stored)
{
	return *stored == ' ' ? stored + 1 : stored;
}

/* Still the same string: same pointer and same text (a freed pointer
 * may come back from malloc for a new string). */
static bool same(const void *ptr, const char *text, const struct md_orig *o)
{
	return ptr == o->nptr && strcmp(text, o->name) == 0;
}

/* Index in the current header list of original header o, or -1. */
static int hdr_now(const struct smtp_txn *tx, const struct md_orig *o)
{
	for (int i = 0; i < tx->nhdr; i++)
		if (same(tx->hdr[i].name, tx->hdr[i].name, o))
			return i;
	return -1;
}

/* Occurrence (1-based) of original header i among same-named originals. */
static int occurrence(const struct md_conn *c, int i)
{
	int n = 0;

	for (int j = 0; j <= i; j++)
		if (strcasecmp(c->orig_h[j].name, c->orig_h[i].name) == 0)
			n++;
	return n;
}

static bool was_original(const struct md_conn *c, const char *name)
{
	for (int i = 0; i < c->norig_h; i++)
		if (same(name, name, &c->orig_h[i]))
			return true;
	return false;
}

static void diff_headers(struct md_conn *c)
{
	const struct smtp_txn *tx = &c->s.txn;
	int last_kept = -1;

	for (int i = c->norig_h - 1; i >= 0; i--) {
		const struct md_orig *o = &c->orig_h[i];
		int now = hdr_now(tx, o);

		if (now < 0)
			edit_add(c, MD_CHGHDR, o->name, NULL, occurrence(c, i));
		else if (tx->hdr[now].value != o->vptr
			 || strcmp(tx->hdr[now].value, o->value) != 0)
			edit_add(c, MD_CHGHDR, o->name, bare(tx->hdr[now].value),
				 occurrence(c, i));
	}
	for (int i = 0; i < tx->nhdr; i++)
		if (was_original(c, tx->hdr[i].name))
			last_kept = i;
	for (int i = 0; i < tx->nhdr; i++) {
		if (was_original(c, tx->hdr[i].name))
			continue;
		edit_add(c, i > last_kept ? MD_ADDHDR : MD_INSHDR,
			 tx->hdr[i].name, bare(tx->hdr[i].value), i);
	}
}

static bool rcpt_was(const struct md_conn *c, const char *addr)
{
	for (int i = 0; i < c->norig_r; i++)
		if (same(addr, addr, &c->orig_r[i]))
			return true;
	return false;
}

static void diff_rcpts(struct md_conn *c)
{
	const struct queue_envelope *env = &c->s.txn.env;

	for (int i = 0; i < c->norig_r; i++) {
		bool kept = false;

		for (int j = 0; j < env->nrcpt && !kept; j++)
			kept = same(env->rcpt[j].addr, env->rcpt[j].addr,
				    &c->orig_r[i]);
		if (!kept)
			edit_add(c, MD_DELRCPT, c->orig_r[i].name, NULL, 0);
	}
	for (int j = 0; j < env->nrcpt; j++)
		if (!rcpt_was(c, env->rcpt[j].addr))
			edit_add(c, MD_ADDRCPT, env->rcpt[j].addr, NULL, 0);
}

void milterd_diff(struct md_conn *c)
{
	milterd_edits_free(c);
	diff_headers(c);
	diff_rcpts(c);
}
