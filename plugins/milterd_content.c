/*
 * milterd_content.c - the message as sluice-milterd's plugins' body hooks
 * see it: the same queue file an smtpd session writes (queue.h), kept in
 * milterd_spool_directory for the length of one message.
 *
 * The filter chain reads body chunks back from the session's queue file
 * (s->txn.qf), as in smtpd.  sluice-milterd writes one when some loaded
 * plugin has a body hook: at end of headers the headers as received
 * ("Name:" + stored value), the body mark and the blank line, then each
 * body chunk libmilter passes with CRLF turned into LF (the body as
 * queued; the MTA has already undone dot-stuffing).  The file is removed
 * at end of message or abort; it is never committed.
 *
 * Promises: the spool is sluice-milterd's own directory (never a live
 * queue's incoming/, whose half-written files queue_dirs_ensure
 * removes); an error writing it is reported to the caller, which
 * answers TEMPFAIL rather than skip the body checks; loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "milterd.h"
#include "mymalloc.h"
#include "plugin_loader.h"
#include "queue.h"

static char *spool_dir;         /* set once at start-up */

int milterd_spool_init(const char *dir)
{
	char err[512];

	if (!milterd_wants_body())
		return 0;
	if (queue_dirs_ensure(dir, (uid_t)-1, (gid_t)-1, err, sizeof err) < 0) {
		msg_error("milterd_spool_directory %s: %s", dir, err);
		return -1;
	}
	spool_dir = mystrdup(dir);
	return 0;
}

bool milterd_wants_body(void)
{
	for (int i = 0; i < plugin_count(); i++)
		if (plugin_at(i)->p->body != NULL)
			return true;
	return false;
}

int milterd_content_start(struct md_conn *c)
{
	struct smtp_txn *tx = &c->s.txn;

	milterd_content_drop(c);
	if (spool_dir == NULL)
		return 0;
	if ((tx->qf = queue_create(spool_dir)) == NULL) {
		msg_error("sluice-milterd: cannot create a file in %s/incoming: %s",
			  spool_dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < tx->nhdr; i++)
		if (queue_write(tx->qf, tx->hdr[i].name, strlen(tx->hdr[i].name)) < 0
		    || queue_write(tx->qf, ":", 1) < 0
		    || queue_write(tx->qf, tx->hdr[i].value,
				   strlen(tx->hdr[i].value)) < 0
		    || queue_write(tx->qf, "\n", 1) < 0)
			return -1;
	queue_mark_body(tx->qf);
	return queue_write(tx->qf, "\n", 1);
}

int milterd_content_body(struct md_conn *c, const unsigned char *p,
			 size_t len)
{
	struct queue_file *qf = c->s.txn.qf;
	size_t i, from = 0;

	if (qf == NULL)
		return 0;
	/* a CR held back from the last chunk, not followed by LF here */
	if (c->body_cr && (len == 0 || p[0] != '\n')
	    && queue_write(qf, "\r", 1) < 0)
		return -1;
	c->body_cr = false;
	if (len > 0 && p[len - 1] == '\r') {
		c->body_cr = true;
		len--;
	}
	for (i = 0; i < len; i++) {
		if (p[i] != '\r' || i + 1 >= len || p[i + 1] != '\n')
			continue;
		if (queue_write(qf, p + from, i - from) < 0)
			return -1;
		from = i + 1;           /* the LF is written with the next piece */
	}
	return queue_write(qf, p + from, len - from);
}

void milterd_content_drop(struct md_conn *c)
{
	c->body_cr = false;
	queue_abort(c->s.txn.qf);
	c->s.txn.qf = NULL;
}
