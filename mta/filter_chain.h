/*
 * filter_chain.h - run the filters of one SMTP stage, with suspend/resume.
 *
 * Every stage of a session (connect, helo, mail, rcpt, data, content, eom)
 * asks the restriction engine first (restriction.h: the stage's
 * smtpd_*_restrictions lists; a REJECT or DEFER there ends the stage
 * with the engine's reply), then the loaded plugins' hooks in
 * sluice_plugins order, then the session's milters (smtpd_milters,
 * milter.h: asked once per stage when nothing decided before them; they
 * get the message content at FS_EOM).  A hook answering SLUICE_PENDING suspends the chain; its
 * sluice_resume() continues it.  `done` is called exactly once with the
 * final verdict, possibly before filter_run_stage() returns (no hook
 * pending), so callers are written in continuation style.  Calling `done`
 * is the chain's last action: `done` may start the next stage or free the
 * session.
 *
 * The first verdict other than SLUICE_DUNNO ends the stage, at every stage
 * including FS_CONTENT (a header hook's REJECT ends the content stage; its
 * OK accepts the content and skips the remaining content hooks).
 * SLUICE_OK ends it too (the stage is accepted).  DISCARD and HOLD are
 * recorded on the transaction (s->txn.discard, s->txn.hold and
 * s->txn.hold_reason: the reply text, or "held by plugin NAME") and end
 * the stage as accepted; `done` still gets DISCARD or HOLD, for the log.
 * An eom stage whose edits removed every recipient ends in DISCARD.
 *
 * Replies: a reply set with sluice_reply() is left in s->reply_code /
 * reply_dsn / reply_text.  For REJECT and DEFER the chain completes it:
 * code 0 becomes 554 (REJECT) or 450 (DEFER); a valid 4xx/5xx code the
 * plugin chose wins and the verdict follows its class (REJECT with 450 is
 * handed to `done` as DEFER, as with a numeric access(5) action); the
 * enhanced code defaults to 5.7.1 / 4.7.1 and its class digit is made to
 * match the code.  reply_text stays NULL when the plugin gave none: the
 * session then uses Postfix's text for the stage.  The reply of a hook
 * that answers DUNNO or OK is forgotten.
 *
 * Resume rules (what a plugin may do, and what the chain guarantees):
 *  - sluice_resume() may be called from the hook itself before it returns
 *    SLUICE_PENDING (an answer found in a cache, a failed start): the
 *    chain records the verdict and continues when the hook returns, on
 *    the same stack, without recursion.  A recorded resume followed by a
 *    verdict other than PENDING is a plugin bug: the returned verdict
 *    wins and a warning is logged.
 *  - Otherwise it is called later from the event loop, exactly once.  It
 *    may run further hooks and `done` before it returns (so the session
 *    may be gone afterwards): call it last.
 *  - A resume with no hook pending is logged and ignored.
 *
 * Session lifetime (the rule smtp_session.c follows):
 *  - The session calls filter_close(s) exactly once, before it frees
 *    anything a plugin can reach (s->txn, helo_name, the queue file...).
 *    filter_close() runs every plugin's close hook with the session
 *    intact, a pending hook included (its owner cancels its work there),
 *    then detaches: it frees s->frun, s->plugin_data and s->reply_text
 *    and sets them to NULL.  After it returns the session may be freed at
 *    once; the session need not wait for a pending hook.
 *  - A sluice_resume() called inside a close hook is ignored.  One that
 *    comes from a timer or job callback started for a session that has
 *    closed since is ignored too (the callback's context holds a
 *    reference to the session's anchor, see below), so a plugin that
 *    cannot cancel a job only has to stop touching its own freed state.
 *  - filter_run_stage() while a stage runs for s, and filter_reset()
 *    while a hook is pending, are programming errors (msg_panic): the
 *    session stops reading input while a stage runs.
 */
#ifndef SLUICE_FILTER_CHAIN_H
#define SLUICE_FILTER_CHAIN_H

#include <stdbool.h>

struct smtp_session;
struct event_base;
struct milter_session;

enum filter_stage {
	FS_CONNECT, FS_HELO, FS_MAIL, FS_RCPT, FS_DATA,
	FS_CONTENT,     /* header hooks for each header, eoh, body chunks */
	FS_EOM
};

typedef void (*filter_done_fn)(struct smtp_session *s, int verdict);

void filter_run_stage(struct smtp_session *s, enum filter_stage st,
		      filter_done_fn done);
/* The milters of a stage alone, without restrictions or plugins: mail
 * that did not come by SMTP (non_smtpd_milters, pickup_milter.c), on a
 * session made for it (s->listener NULL).  Same contract as
 * filter_run_stage(). */
void filter_run_milters(struct smtp_session *s, enum filter_stage st,
			filter_done_fn done);
/* Continue a suspended chain (called by sluice_resume). */
void filter_resume(struct smtp_session *s, int verdict);
/* Transaction reset (RSET, new MAIL, an aborted transaction): reset
 * hooks, and SMFIC_ABORT to the milters. */
void filter_reset(struct smtp_session *s);
/* The message is done (accepted or refused at end of data): the plugins'
 * reset hooks; milters have seen the end of the message already. */
void filter_message_done(struct smtp_session *s);
/* Session end: close hooks; a pending run is abandoned (done never runs). */
void filter_close(struct smtp_session *s);
/* Forget a filter reply (before the next stage). */
void filter_clear_reply(struct smtp_session *s);
/* The reply in s->reply_* came from a milter: logged as "milter-reject"
 * (smtp_log.c).  filter_clear_reply() forgets it. */
void filter_note_milter_reply(struct smtp_session *s);
bool filter_reply_by_milter(const struct smtp_session *s);
/* The session's milters (NULL before the first stage that asks them). */
struct milter_session *filter_milters(const struct smtp_session *s);
/* True when any loaded plugin has a header/eoh/body hook and did not
 * decline content in init() (sluice_no_content()): only then does
 * FS_CONTENT have work to do. */
int filter_wants_content(void);

/* ---- For the worker ---- */
/* The process' event loop, where plugins' timers run.  The worker sets it
 * before plugins_load(), since an init() may start a timer. */
void filter_set_event_base(struct event_base *base);
struct event_base *filter_event_base(void);

/* ---- For plugin_api.c and the loader ---- */
/* The stage running (or suspended) for s, or -1 between stages: header
 * and recipient edits are allowed only while FS_EOM runs. */
int filter_running_stage(const struct smtp_session *s);
/* The plugin that runs code for s right now (its hook, or a timer or job
 * callback that the hook started), or -1. */
int filter_plugin_for(const struct smtp_session *s);
/* Plugin i's slot in s->plugin_data (allocated on first use); NULL when
 * i is not a loaded plugin's index. */
void **filter_data_slot(struct smtp_session *s, int i);

/*
 * Whose code runs: a context names a plugin and, when the code runs for a
 * session, a reference to that session that outlives it (an "anchor": it
 * only records that the session closed).  The chain enters a context for
 * every hook, the loader for init() and fini().  A timer or job started in
 * a context keeps a reference (filter_ctx_hold) and its callback runs in
 * the same context (filter_ctx_enter), so sluice_get_data() finds the
 * plugin's slot there, and a sluice_resume() for a session that closed in
 * the meantime is recognised and ignored instead of touching freed memory.
 */
struct session_anchor;
struct filter_ctx {
	struct session_anchor *anchor;  /* NULL: no session (init, fini) */
	int plugin;                     /* plugin_at() index, -1: none */
};

struct filter_ctx filter_ctx_current(void);
/* Keep a context beyond the code that runs in it (a reference). */
void filter_ctx_hold(const struct filter_ctx *c);
void filter_ctx_release(struct filter_ctx *c);
/* Run code in c; pass the result to filter_ctx_leave() afterwards. */
struct filter_ctx filter_ctx_enter(struct filter_ctx c);
void filter_ctx_leave(struct filter_ctx previous);
/* The context of plugin `plugin` running for session s (a plugin's
 * restriction, plugin_api_restrict.c). */
struct filter_ctx filter_ctx_for(struct smtp_session *s, int plugin);
/* The live session of a context; NULL for none or a closed one. */
struct smtp_session *filter_ctx_session(struct filter_ctx c);

#endif
