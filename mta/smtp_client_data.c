/*
 * smtp_client_data.c - the message content on the wire, after DATA.
 *
 * The queue file holds the message with LF line ends and without dot
 * stuffing (queue.h); the wire wants CRLF and a "." doubled at the start
 * of a line (RFC 5321 4.5.2), then a last line ".".  A message whose last
 * line lacks its LF gets a CRLF before the ".".  A CR already in front of
 * an LF is not doubled.
 *
 * The content is read in SMTPC_BODY_CHUNK pieces with
 * queue_message_pread() and queued on the connection until its output
 * holds SMTPC_BODY_HIGH bytes; the caller calls again when the output has
 * drained, so a large message never sits in memory whole.  A queue file
 * shorter than its envelope says is an error (EIO), never a silently
 * truncated message.
 *
 * To a server that does not announce 8BITMIME the content first goes
 * through the MIME downgrade (mime_downgrade.h), as Postfix's smtp(8)
 * does unless disable_mime_output_conversion is set: parts declared 8bit
 * or binary leave as quoted-printable.  Every message to such a server
 * is parsed, whatever its BODY= said: a part declared 8bit is 8-bit mail
 * even when the client did not say so, and a 7-bit message passes
 * unchanged.
 */
#include <errno.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "mime_downgrade.h"
#include "smtp_client.h"

/* Queue n content bytes, converted. */
static void convert(struct smtpc_conn *c, struct evbuffer *out,
		    const char *p, size_t n)
{
	size_t run = 0;                 /* bytes of p[0..run) not yet queued */

	for (size_t i = 0; i < n; i++) {
		char ch = p[i];

		if (c->body_bol && ch == '.') {
			evbuffer_add(out, p + run, i - run);
			evbuffer_add(out, ".", 1);
			run = i;                /* the dot itself goes with the run */
		} else if (ch == '\n' && !c->body_cr) {
			evbuffer_add(out, p + run, i - run);
			evbuffer_add(out, "\r", 1);
			run = i;
		}
		c->body_bol = ch == '\n';
		c->body_cr = ch == '\r';
	}
	evbuffer_add(out, p + run, n - run);
}

/* The converter's output, on its way to the wire. */
static void dg_out(void *arg, const char *p, size_t n)
{
	struct smtpc_conn *c = arg;

	convert(c, bufferevent_get_output(c->bev), p, n);
}

void smtpc_body_begin(struct smtpc_conn *c)
{
	smtpc_body_end(c);
	if (!(c->features & SMTPC_F_8BITMIME) && c->par->mime_conversion)
		c->dg = mime_dg_new(dg_out, c);
}

void smtpc_body_end(struct smtpc_conn *c)
{
	mime_dg_free(c->dg);
	c->dg = NULL;
}

static int finish(struct smtpc_conn *c, struct evbuffer *out)
{
	if (c->dg) {
		mime_dg_finish(c->dg);
		smtpc_body_end(c);
	}
	if (!c->body_bol)
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	c->body_done = true;
	return 1;
}

int smtpc_body_fill(struct smtpc_conn *c, struct delivery_request *req)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char buf[SMTPC_BODY_CHUNK];

	if (c->body_done)
		return 1;
	while (evbuffer_get_length(out) < SMTPC_BODY_HIGH) {
		long n = queue_message_pread(req->queue_fd, req->env, buf,
					     sizeof buf, c->body_off);

		if (n < 0)
			return -1;
		if (n == 0) {
			if (c->body_off < req->env->size) {
				errno = EIO;
				return -1;
			}
			return finish(c, out);
		}
		if (c->dg)
			mime_dg_update(c->dg, buf, (size_t)n);
		else
			convert(c, out, buf, (size_t)n);
		c->body_off += n;
	}
	return 0;
}
