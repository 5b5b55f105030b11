/*
 * milterd.h - sluice-milterd: the loaded plugins hosted behind libmilter.
 *
 * Two kinds of thread meet here.  libmilter runs one thread per MTA
 * connection and calls the xxfi_* callbacks (milterd_cb.c) there; they
 * block until they have an answer.  The plugins, the filter chain,
 * timers, DNS and thread-pool completions live in one libevent loop
 * thread (milterd_loop.c), exactly as in an smtpd worker.  A callback
 * hands a step to the loop (milterd_call) and waits on its connection's
 * condition variable; the step runs a filter stage on the connection's
 * session and the chain's completion (even one that comes later, from a
 * sluice_resume) wakes the callback.  Only the loop thread touches a
 * session; only the callback thread calls smfi_*.
 *
 * Promises: a connection's session is touched only while its callback
 * thread waits; milterd_call returns only once the step completed.
 */
#ifndef SLUICE_MILTERD_H
#define SLUICE_MILTERD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "smtp_session.h"

struct event_base;

/* An edit a plugin made at end of message, replayed with smfi_* calls. */
enum md_edit_kind { MD_ADDHDR, MD_INSHDR, MD_CHGHDR, MD_ADDRCPT, MD_DELRCPT };
struct md_edit {
	enum md_edit_kind kind;
	char *name;             /* header name, or the address */
	char *value;            /* header value (NULL: delete) */
	int index;              /* insheader position / chgheader occurrence */
};

/* A header or recipient as received: its pointers in the session (the
 * identity) and copies (the pointers may be freed by an edit). */
struct md_orig {
	const void *nptr, *vptr;
	char *name, *value;
};

/* One MTA connection.  The session is the first member: the filter
 * chain's completion gets &c->s back. */
struct md_conn {
	struct smtp_session s;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;              /* the step completed */
	int verdict;            /* its verdict (SLUICE_*) */
	int stage;              /* the filter stage that ran last */
	bool closed;            /* abandoned after a timeout: filter_close ran */
	void (*step)(struct md_conn *c);   /* runs in the loop */
	/* step arguments, set by the callback thread before the call */
	const char *arg1, *arg2;
	size_t arg_len;         /* of arg1, for a body chunk */
	/* results of a step, for the callback thread */
	int reply_code; char reply_dsn[16]; char reply_text[512];
	bool hold; char hold_reason[256];
	bool body_cr;           /* a body chunk ended in CR (CRLF split?) */
	struct md_edit *edits; int nedit;
	/* end-of-message snapshot: the headers and recipients as received */
	struct md_orig *orig_h; int norig_h;
	struct md_orig *orig_r; int norig_r;
};

/* The loop: start it in its own thread (0 or -1); `timeout` is how long
 * a call waits for plugins (milterd_plugin_timeout, seconds). */
int milterd_loop_start(struct event_base *base, long long timeout);
/* Run c->step in the loop and wait until it calls milterd_complete()
 * (directly or as the chain's completion).  Returns the verdict; after
 * the timeout, SLUICE_DEFER (the session is closed then, see
 * milterd_loop.c). */
int milterd_call(struct md_conn *c, void (*step)(struct md_conn *c));
/* From the loop thread: the step is over with this verdict. */
void milterd_complete(struct md_conn *c, int verdict);

/* Run a filter stage on c's session; completes c with its verdict. */
void milterd_run_stage(struct md_conn *c, int stage);

/* Transaction helpers (milterd_txn.c), loop thread only. */
void milterd_txn_clear(struct md_conn *c);     /* forget the message */
void milterd_snapshot(struct md_conn *c);      /* before the eom stage */
void milterd_diff(struct md_conn *c);          /* after it: c->edits */
void milterd_edits_free(struct md_conn *c);
void milterd_conn_free(struct md_conn *c);     /* after filter_close */

/* The message content for body hooks (milterd_content.c), loop thread:
 * where it is kept (once, at start-up: 0 or -1 logged), whether any
 * plugin wants it, and the steps that write it. */
int milterd_spool_init(const char *dir);
bool milterd_wants_body(void);
int milterd_content_start(struct md_conn *c);   /* at end of headers */
int milterd_content_body(struct md_conn *c, const unsigned char *p,
			 size_t len);
void milterd_content_drop(struct md_conn *c);

/* The libmilter descriptor for the loaded plugins (milterd_cb.c): no
 * body callback when no plugin has a body hook, so the MTA sends none. */
struct smfiDesc;
struct smfiDesc *milterd_descriptor(void);

#endif
