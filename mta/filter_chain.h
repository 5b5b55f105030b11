/*
 * filter_chain.h - run the filters of one SMTP stage, with suspend/resume.
 *
 * Every stage of a session (connect, helo, mail, rcpt, data, content, eom)
 * asks the same chain: the loaded plugins' hooks in sluice_plugins order
 * (the restriction lists, milters and policy services join this chain in
 * later work).  A hook answering SLUICE_PENDING suspends the chain; its
 * sluice_resume() continues it.  `done` is called exactly once with the
 * final verdict, possibly before filter_run_stage() returns (no hook
 * pending), so callers are written in continuation style.
 *
 * The first verdict other than SLUICE_DUNNO ends the stage.  SLUICE_OK ends
 * it too (the stage is accepted).  DISCARD and HOLD are recorded on the
 * transaction and end the stage as accepted.  A reply set with
 * sluice_reply() is left in s->reply_code / reply_dsn / reply_text.
 */
#ifndef SLUICE_FILTER_CHAIN_H
#define SLUICE_FILTER_CHAIN_H

struct smtp_session;

enum filter_stage {
	FS_CONNECT, FS_HELO, FS_MAIL, FS_RCPT, FS_DATA,
	FS_CONTENT,     /* header hooks for each header, eoh, body chunks */
	FS_EOM
};

typedef void (*filter_done_fn)(struct smtp_session *s, int verdict);

void filter_run_stage(struct smtp_session *s, enum filter_stage st,
		      filter_done_fn done);
/* Continue a suspended chain (called by sluice_resume). */
void filter_resume(struct smtp_session *s, int verdict);
/* Transaction reset (RSET, new MAIL, end of message): reset hooks. */
void filter_reset(struct smtp_session *s);
/* Session end: close hooks; a pending run is abandoned (done never runs). */
void filter_close(struct smtp_session *s);
/* Forget a filter reply (before the next stage). */
void filter_clear_reply(struct smtp_session *s);
/* True when any loaded plugin has a header/eoh/body hook (then the session
 * keeps parsed headers and FS_CONTENT has work to do). */
int filter_wants_content(void);

#endif
