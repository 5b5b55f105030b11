/*
 * filter_chain.c - run one SMTP stage's filters: the restriction lists
 * first (rcheck_stage(); a reject or defer there ends the stage), then
 * the plugins' hooks in sluice_plugins order, suspending on
 * SLUICE_PENDING and continuing when sluice_resume() arrives (a resume
 * for a plugin's waiting *restriction* goes to the engine instead).
 *
 * Promises (the rules are spelled out in filter_chain.h):
 *  - `done` runs exactly once per filter_run_stage(), as the chain's last
 *    action, unless filter_close() abandons the run first;
 *  - the chain never recurses into itself: a resume made inside a hook is
 *    recorded and taken when the hook returns, and continuing after a
 *    resume is a loop, not a nested call per hook;
 *  - nothing here dereferences a session after filter_close(): callbacks
 *    started for a session hold its anchor, which outlives it and only
 *    says whether the session is still open.
 *
 * This module owns the "current context" (which plugin runs, for which
 * session) and the process' event base for plugin timers.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access_action.h"
#include "filter_chain.h"
#include "log.h"
#include "milter.h"
#include "plugin_loader.h"
#include "queue.h"
#include "restriction_int.h"
#include "smtp_session.h"
#include "sluice_plugin.h"

#define BODY_CHUNK      (64 * 1024)     /* body hook chunk size */

/* A reference to a session that outlives it. */
struct session_anchor {
	struct smtp_session *s;     /* never dereferenced once closed */
	bool closed;
	unsigned refs;              /* the session's own, plus callbacks' */
};

/* Where FS_CONTENT is. */
enum content_part { CP_HEADERS, CP_EOH, CP_BODY, CP_END };

/* The chain state of one session (s->frun). */
struct filter_run {
	struct session_anchor *anchor;
	enum filter_stage stage;
	filter_done_fn done;        /* non-NULL while a stage runs */
	int next;                   /* next plugin to ask for the current item */
	int cur;                    /* plugin whose hook runs or is pending */
	bool in_hook;               /* a hook of this session is on the stack */
	bool pending;               /* cur's hook returned PENDING */
	bool early;                 /* sluice_resume() came during the hook */
	int early_verdict;
	bool closing;               /* close hooks running */
	/* FS_CONTENT position */
	enum content_part part;
	int hdr;                    /* header offered now */
	long long body_off;         /* content offset of the chunk */
	unsigned char *chunk;
	size_t chunk_len;
	/* milters: asked after the plugins, once per stage */
	struct milter_session *milters;
	bool milters_ran;           /* this stage's milters were asked */
	bool milter_reply;          /* the reply in s->reply_* is a milter's */
};

static struct filter_ctx current = { NULL, -1 };
static struct event_base *event_base;

static const char *const stage_names[] = {
	"connect", "helo", "mail", "rcpt", "data", "content", "eom"
};

static const char *const verdict_names[] = {
	"DUNNO", "OK", "REJECT", "DEFER", "DISCARD", "HOLD", "PENDING"
};

static const char *verdict_name(int v)
{
	return v >= 0 && v <= SLUICE_PENDING ? verdict_names[v] : "(invalid)";
}

static const char *plugin_name(int i)
{
	return i >= 0 && i < plugin_count() ? plugin_at(i)->p->name : "?";
}

/* ---- event base ------------------------------------------------------ */

void filter_set_event_base(struct event_base *base)
{
	event_base = base;
}

struct event_base *filter_event_base(void)
{
	return event_base;
}

/* ---- contexts and anchors -------------------------------------------- */

struct filter_ctx filter_ctx_current(void)
{
	return current;
}

void filter_ctx_hold(const struct filter_ctx *c)
{
	if (c->anchor)
		c->anchor->refs++;
}

void filter_ctx_release(struct filter_ctx *c)
{
	struct session_anchor *a = c->anchor;

	c->anchor = NULL;
	if (a && --a->refs == 0)
		free(a);
}

struct filter_ctx filter_ctx_enter(struct filter_ctx c)
{
	struct filter_ctx previous = current;

	current = c;
	return previous;
}

void filter_ctx_leave(struct filter_ctx previous)
{
	current = previous;
}

struct smtp_session *filter_ctx_session(struct filter_ctx c)
{
	return c.anchor && !c.anchor->closed ? c.anchor->s : NULL;
}

/* Is the running code a callback for session s, which has closed? */
static bool resume_is_late(const struct smtp_session *s)
{
	return current.anchor && current.anchor->s == s
		&& current.anchor->closed;
}

/* ---- per-session state ----------------------------------------------- */

static struct filter_run *run_of(struct smtp_session *s)
{
	struct filter_run *fr = s->frun;

	if (fr)
		return fr;
	if ((fr = calloc(1, sizeof *fr)) == NULL
	    || (fr->anchor = calloc(1, sizeof *fr->anchor)) == NULL)
		msg_fatal("filter chain: out of memory");
	fr->anchor->s = s;
	fr->anchor->refs = 1;
	fr->cur = -1;
	s->frun = fr;
	s->cur_plugin = -1;
	return fr;
}

struct filter_ctx filter_ctx_for(struct smtp_session *s, int plugin)
{
	return (struct filter_ctx){ run_of(s)->anchor, plugin };
}

int filter_running_stage(const struct smtp_session *s)
{
	return s->frun && s->frun->done ? (int)s->frun->stage : -1;
}

int filter_plugin_for(const struct smtp_session *s)
{
	if (current.anchor && current.anchor->s == s && !current.anchor->closed)
		return current.plugin;
	if (s->frun && (s->frun->pending || s->frun->in_hook))
		return s->frun->cur;
	return -1;
}

void **filter_data_slot(struct smtp_session *s, int i)
{
	if (i < 0 || i >= plugin_count())
		return NULL;
	if (s->plugin_data == NULL
	    && (s->plugin_data = calloc(plugin_count(), sizeof(void *))) == NULL)
		msg_fatal("filter chain: out of memory");
	return &s->plugin_data[i];
}

void filter_clear_reply(struct smtp_session *s)
{
	if (s->frun)
		s->frun->milter_reply = false;
	s->reply_code = 0;
	s->reply_dsn[0] = 0;
	free(s->reply_text);
	s->reply_text = NULL;
}

void filter_note_milter_reply(struct smtp_session *s)
{
	run_of(s)->milter_reply = true;
}

bool filter_reply_by_milter(const struct smtp_session *s)
{
	return s->frun && s->frun->milter_reply;
}

struct milter_session *filter_milters(const struct smtp_session *s)
{
	return s->frun ? s->frun->milters : NULL;
}

static bool has_hook(const struct loaded_plugin *lp, enum filter_stage st,
		     enum content_part part)
{
	const struct sluice_plugin *p = lp->p;

	switch (st) {
	case FS_CONNECT: return p->connect != NULL;
	case FS_HELO: return p->helo != NULL;
	case FS_MAIL: return p->mail != NULL;
	case FS_RCPT: return p->rcpt != NULL;
	case FS_DATA: return p->data != NULL;
	case FS_EOM: return p->eom != NULL;
	case FS_CONTENT:
		if (lp->no_content)     /* sluice_no_content() in init() */
			return false;
		return part == CP_HEADERS ? p->header != NULL
			: part == CP_EOH ? p->eoh != NULL
			: part == CP_BODY ? p->body != NULL : false;
	}
	return false;
}

static bool any_hook(enum filter_stage st, enum content_part part)
{
	for (int i = 0; i < plugin_count(); i++)
		if (has_hook(plugin_at(i), st, part))
			return true;
	return false;
}

int filter_wants_content(void)
{
	return any_hook(FS_CONTENT, CP_HEADERS) || any_hook(FS_CONTENT, CP_EOH)
		|| any_hook(FS_CONTENT, CP_BODY);
}

/* ---- calling one hook ---------------------------------------------- */

static int invoke(struct smtp_session *s, struct filter_run *fr,
		  const struct loaded_plugin *lp)
{
	const struct sluice_plugin *p = lp->p;
	sluice_txn *t = (sluice_txn *)s;

	switch (fr->stage) {
	case FS_CONNECT: return p->connect(t, lp->pdata);
	case FS_HELO: return p->helo(t, lp->pdata);
	case FS_MAIL: return p->mail(t, lp->pdata);
	case FS_RCPT: return p->rcpt(t, lp->pdata);
	case FS_DATA: return p->data(t, lp->pdata);
	case FS_EOM: return p->eom(t, lp->pdata);
	case FS_CONTENT:
		break;
	}
	if (fr->part == CP_HEADERS) {
		/* stored as received after the colon; plugins get the value
		 * without its leading whitespace */
		const char *value = s->txn.hdr[fr->hdr].value;

		return p->header(t, s->txn.hdr[fr->hdr].name,
				 value + strspn(value, " \t"), lp->pdata);
	}
	if (fr->part == CP_EOH)
		return p->eoh(t, lp->pdata);
	return p->body(t, fr->chunk, fr->chunk_len, lp->pdata);
}

/*
 * Call plugin i's hook for the current item.  Returns its verdict, the
 * verdict of a sluice_resume() made during a hook that returned PENDING,
 * or SLUICE_PENDING when the answer comes later.
 */
static int call_hook(struct smtp_session *s, struct filter_run *fr, int i)
{
	struct filter_ctx previous;
	int v;

	fr->cur = s->cur_plugin = i;
	fr->in_hook = true;
	fr->early = false;
	previous = filter_ctx_enter((struct filter_ctx){ fr->anchor, i });
	v = invoke(s, fr, plugin_at(i));
	filter_ctx_leave(previous);
	fr->in_hook = false;
	if (v == SLUICE_PENDING) {
		if (fr->early)
			return fr->early_verdict;
		fr->pending = true;
		return SLUICE_PENDING;
	}
	if (fr->early)
		msg_warn("plugin %s: sluice_resume() called in the %s hook, "
			 "which then returned %s instead of SLUICE_PENDING; "
			 "the resume is ignored", plugin_name(i),
			 stage_names[fr->stage], verdict_name(v));
	return v;
}

/* ---- verdicts and replies ------------------------------------------ */

/* Complete the reply of a REJECT or DEFER; returns the verdict that
 * matches the final code. */
static int complete_reply(struct smtp_session *s, int v, int plugin)
{
	int code = s->reply_code;

	if (code != 0 && (code < 400 || code > 599)) {
		msg_warn("plugin %s: reply code %d with %s; using the default",
			 plugin_name(plugin), code, verdict_name(v));
		code = 0;
	}
	if (code == 0)
		code = v == SLUICE_REJECT ? 554 : 450;
	s->reply_code = code;
	/* a 4.x.x or 5.x.x RFC 3463 code (4.7.1, 5.1.10), or the default */
	if (!access_dsn_valid(s->reply_dsn) || s->reply_dsn[0] == '2')
		strcpy(s->reply_dsn, code >= 500 ? "5.7.1" : "4.7.1");
	s->reply_dsn[0] = code >= 500 ? '5' : '4';
	return code >= 500 ? SLUICE_REJECT : SLUICE_DEFER;
}

static void record_hold(struct smtp_session *s, int plugin)
{
	char *reason;

	if (s->reply_text)
		reason = strdup(s->reply_text);
	else if (asprintf(&reason, "held by plugin %s", plugin_name(plugin)) < 0)
		reason = NULL;
	if (reason == NULL)
		msg_fatal("filter chain: out of memory");
	free(s->txn.hold_reason);
	s->txn.hold_reason = reason;
	s->txn.hold = true;
}

/* Take plugin i's verdict: DUNNO continues the stage, anything else ends
 * it (after its side effects).  Returns the verdict to act on. */
static int take_verdict(struct smtp_session *s, struct filter_run *fr,
			int i, int v)
{
	if (v < SLUICE_DUNNO || v >= SLUICE_PENDING) {
		msg_error("plugin %s: %s hook gave the invalid verdict %d; "
			  "deferring", plugin_name(i), stage_names[fr->stage], v);
		filter_clear_reply(s);
		s->reply_code = 451;
		strcpy(s->reply_dsn, "4.3.5");
		s->reply_text = strdup("Server configuration problem");
		return SLUICE_DEFER;
	}
	if (v != SLUICE_DUNNO)
		msg_debug("plugin %s: %s hook: %s", plugin_name(i),
			  stage_names[fr->stage], verdict_name(v));
	switch (v) {
	case SLUICE_DUNNO:
	case SLUICE_OK:
		filter_clear_reply(s);
		break;
	case SLUICE_REJECT:
	case SLUICE_DEFER:
		v = complete_reply(s, v, i);
		break;
	case SLUICE_DISCARD:
		s->txn.discard = true;
		break;
	case SLUICE_HOLD:
		record_hold(s, i);
		break;
	}
	return v;
}

/* ---- the content stage's items --------------------------------------- */

/* Read the body chunk at fr->body_off.  Returns its length (0 at the
 * end), or -1 on a read error. */
static long read_chunk(struct smtp_session *s, struct filter_run *fr)
{
	long long end = queue_content_size(s->txn.qf);
	long long want = end - fr->body_off;

	if (want <= 0)
		return 0;
	if (want > BODY_CHUNK)
		want = BODY_CHUNK;
	if (fr->chunk == NULL && (fr->chunk = malloc(BODY_CHUNK)) == NULL)
		msg_fatal("filter chain: out of memory");
	return queue_pread(s->txn.qf, fr->chunk, (size_t)want, fr->body_off);
}

/* The body as queued starts with the empty line that ends the headers;
 * body hooks get what follows it. */
static void enter_body(struct smtp_session *s, struct filter_run *fr)
{
	char c;

	fr->part = CP_BODY;
	fr->chunk_len = 0;
	fr->body_off = s->txn.qf ? queue_body_offset(s->txn.qf) : -1;
	if (fr->body_off >= 0 && any_hook(FS_CONTENT, CP_BODY)
	    && queue_pread(s->txn.qf, &c, 1, fr->body_off) == 1 && c == '\n')
		fr->body_off++;
}

/* Skip to the first content item that exists and has a hook; read the
 * body chunk when that item is one.  Returns false on a read error. */
static bool content_settle(struct smtp_session *s, struct filter_run *fr)
{
	long n;

	if (fr->part == CP_HEADERS
	    && (fr->hdr >= s->txn.nhdr || !any_hook(FS_CONTENT, CP_HEADERS)))
		fr->part = CP_EOH;
	if (fr->part == CP_EOH && !any_hook(FS_CONTENT, CP_EOH))
		enter_body(s, fr);
	if (fr->part != CP_BODY || fr->chunk_len > 0)
		return true;
	if (fr->body_off < 0 || !any_hook(FS_CONTENT, CP_BODY)) {
		fr->part = CP_END;
		return true;
	}
	if ((n = read_chunk(s, fr)) < 0) {
		msg_error("%s: filter chain: cannot read the queue file back: %s",
			  s->queue_id[0] ? s->queue_id : "NOQUEUE",
			  strerror(errno));
		return false;
	}
	if ((fr->chunk_len = (size_t)n) == 0)
		fr->part = CP_END;
	return true;
}

/* Move to the next content item.  Returns 1 when there is one, 0 at the
 * end, -1 on a read error. */
static int content_advance(struct smtp_session *s, struct filter_run *fr)
{
	switch (fr->part) {
	case CP_HEADERS:
		fr->hdr++;
		break;
	case CP_EOH:
		enter_body(s, fr);
		break;
	case CP_BODY:
		fr->body_off += (long long)fr->chunk_len;
		fr->chunk_len = 0;
		break;
	case CP_END:
		return 0;
	}
	if (!content_settle(s, fr))
		return -1;
	return fr->part != CP_END;
}

/* ---- the driver ------------------------------------------------------ */

static void milters_done(struct smtp_session *s, int verdict);

static void finish(struct smtp_session *s, struct filter_run *fr, int v)
{
	filter_done_fn done = fr->done;

	/* the milters come after the plugins, when nothing decided yet
	 * (milter.h; the content goes to them at FS_EOM) */
	if (!fr->milters_ran && fr->stage != FS_CONTENT
	    && (v == SLUICE_DUNNO || v == SLUICE_OK)
	    && milter_session_wanted(s)) {
		fr->milters_ran = true;
		milter_run_stage(s, &fr->milters, (int)fr->stage, milters_done);
		return;
	}

	/* eom edits that leave no recipient drop the message */
	if (fr->stage == FS_EOM && (v == SLUICE_DUNNO || v == SLUICE_OK)
	    && s->txn.env.nrcpt == 0) {
		s->txn.discard = true;
		v = SLUICE_DISCARD;
	}

	fr->done = NULL;
	fr->pending = false;
	fr->cur = s->cur_plugin = -1;
	free(fr->chunk);
	fr->chunk = NULL;
	fr->chunk_len = 0;
	done(s, v);             /* last: may start a stage or free s */
}

static void milters_done(struct smtp_session *s, int verdict)
{
	finish(s, s->frun, verdict);
}

/* Queue file read error in the content stage: defer the message. */
static void finish_read_error(struct smtp_session *s, struct filter_run *fr)
{
	filter_clear_reply(s);
	s->reply_code = 451;
	strcpy(s->reply_dsn, "4.3.0");
	s->reply_text = strdup("Error: queue file read error");
	finish(s, fr, SLUICE_DEFER);
}

/*
 * Ask the remaining hooks of the stage until one decides, one is pending,
 * or none is left.  Iterative: resumed hooks come back here through
 * filter_resume(), never by nesting one call per hook.
 */
static void drive(struct smtp_session *s, struct filter_run *fr)
{
	int n = plugin_count();
	int i, v, more;

	for (;;) {
		if (fr->next >= n) {
			if (fr->stage != FS_CONTENT
			    || (more = content_advance(s, fr)) == 0) {
				finish(s, fr, SLUICE_DUNNO);
				return;
			}
			if (more < 0) {
				finish_read_error(s, fr);
				return;
			}
			fr->next = 0;
			continue;
		}
		i = fr->next++;
		if (!has_hook(plugin_at(i), fr->stage, fr->part))
			continue;
		if ((v = call_hook(s, fr, i)) == SLUICE_PENDING)
			return;
		if ((v = take_verdict(s, fr, i, v)) != SLUICE_DUNNO) {
			finish(s, fr, v);
			return;
		}
	}
}

/* The restriction list(s) a stage asks first (FS_CONTENT: none). */
static const enum rstage restriction_stage_of[] = {
	[FS_CONNECT] = RS_CLIENT, [FS_HELO] = RS_HELO, [FS_MAIL] = RS_SENDER,
	[FS_RCPT] = RS_RECIPIENT, [FS_DATA] = RS_DATA, [FS_CONTENT] = RS__COUNT,
	[FS_EOM] = RS_END_OF_DATA
};

/* The restriction engine answered: a reject or defer ends the stage
 * with its reply (RV_REJECT/RV_DEFER are SLUICE_REJECT/SLUICE_DEFER);
 * otherwise the plugins' hooks run. */
static void restrictions_done(struct smtp_session *s, int verdict)
{
	struct filter_run *fr = s->frun;

	if (verdict == RV_REJECT || verdict == RV_DEFER) {
		finish(s, fr, verdict == RV_REJECT ? SLUICE_REJECT : SLUICE_DEFER);
		return;
	}
	filter_clear_reply(s);
	drive(s, fr);
}

/* What filter_run_stage() and filter_run_milters() both do first. */
static struct filter_run *stage_begin(struct smtp_session *s,
				      enum filter_stage st,
				      filter_done_fn done, const char *caller)
{
	struct filter_run *fr = run_of(s);

	if (fr->done)
		msg_panic("%s: %s stage while the %s stage runs", caller,
			  stage_names[st], stage_names[fr->stage]);
	filter_clear_reply(s);
	fr->stage = st;
	fr->done = done;
	fr->milters_ran = false;
	fr->next = 0;
	fr->pending = false;
	return fr;
}

void filter_run_stage(struct smtp_session *s, enum filter_stage st,
		      filter_done_fn done)
{
	struct filter_run *fr;

	if (s->frun && s->frun->closing)
		msg_panic("filter_run_stage: session is closing");
	fr = stage_begin(s, st, done, "filter_run_stage");
	fr->part = CP_HEADERS;
	fr->hdr = 0;
	fr->body_off = -1;
	fr->chunk_len = 0;
	if (st == FS_CONTENT && !content_settle(s, fr)) {
		finish_read_error(s, fr);
		return;
	}
	if (st == FS_CONTENT && fr->part == CP_END) {
		finish(s, fr, SLUICE_DUNNO);
		return;
	}
	if (st == FS_CONTENT) {
		drive(s, fr);
		return;
	}
	rcheck_stage(s, restriction_stage_of[st], restrictions_done);
}

void filter_run_milters(struct smtp_session *s, enum filter_stage st,
			filter_done_fn done)
{
	struct filter_run *fr = stage_begin(s, st, done, "filter_run_milters");

	fr->next = plugin_count();
	finish(s, fr, SLUICE_DUNNO);    /* asks the milters, then `done` */
}

void filter_resume(struct smtp_session *s, int verdict)
{
	struct filter_run *fr;
	int i;

	if (resume_is_late(s)) {
		msg_warn("plugin %s: sluice_resume() for a session that has "
			 "closed; ignored (cancel pending work in the close hook)",
			 plugin_name(current.plugin));
		return;
	}
	if (plugin_restriction_waiting(s)) {
		plugin_restriction_resume(s, verdict);
		return;
	}
	fr = s->frun;
	if (fr && fr->closing)
		return;             /* a close hook completing its own work */
	if (fr && fr->in_hook) {
		if (fr->early)
			msg_warn("plugin %s: sluice_resume() called twice in one "
				 "hook; the second is ignored", plugin_name(fr->cur));
		fr->early = true;
		fr->early_verdict = verdict;
		return;
	}
	if (fr == NULL || !fr->pending) {
		msg_warn("plugin %s: sluice_resume() with no hook pending; ignored",
			 plugin_name(current.plugin));
		return;
	}
	fr->pending = false;
	i = fr->cur;
	if ((verdict = take_verdict(s, fr, i, verdict)) != SLUICE_DUNNO) {
		finish(s, fr, verdict);
		return;
	}
	drive(s, fr);
}

/* ---- reset and close ------------------------------------------------- */

static void call_void_hooks(struct smtp_session *s, struct filter_run *fr,
			    bool close)
{
	struct filter_ctx previous;

	for (int i = 0; i < plugin_count(); i++) {
		const struct loaded_plugin *lp = plugin_at(i);
		sluice_void_fn fn = close ? lp->p->close : lp->p->reset;

		if (fn == NULL)
			continue;
		previous = filter_ctx_enter((struct filter_ctx){ fr->anchor, i });
		fn((sluice_txn *)s, lp->pdata);
		filter_ctx_leave(previous);
	}
}

void filter_reset(struct smtp_session *s)
{
	struct filter_run *fr = run_of(s);

	if (fr->pending || fr->in_hook)
		msg_panic("filter_reset: plugin %s has a hook pending",
			  plugin_name(fr->cur));
	call_void_hooks(s, fr, false);
	milter_abort(fr->milters);
	filter_clear_reply(s);
}

void filter_message_done(struct smtp_session *s)
{
	struct filter_run *fr = run_of(s);

	if (fr->pending || fr->in_hook)
		msg_panic("filter_message_done: plugin %s has a hook pending",
			  plugin_name(fr->cur));
	call_void_hooks(s, fr, false);  /* milters need no abort after EOM */
}

void filter_close(struct smtp_session *s)
{
	struct filter_run *fr = run_of(s);
	struct filter_ctx mine = { fr->anchor, -1 };

	fr->closing = true;
	call_void_hooks(s, fr, true);
	rcheck_session_free(s);     /* after the close hooks cancelled their work */
	milter_session_free(fr->milters);   /* SMFIC_QUIT; no callback after */
	fr->milters = NULL;
	fr->anchor->closed = true;
	filter_ctx_release(&mine);      /* the session's own reference */
	free(fr->chunk);
	free(fr);
	s->frun = NULL;
	s->cur_plugin = -1;
	free(s->plugin_data);
	s->plugin_data = NULL;
	filter_clear_reply(s);
}
