/*
 * restriction.h - the restriction engine: Postfix's smtpd_*_restrictions.
 *
 * A restriction list ("permit_mynetworks, check_client_access
 * hash:/etc/x, reject_unauth_destination") is compiled once per config
 * (restriction_list.c) into items: a restriction found in the one
 * registry, with its argument when it takes one.  Built-in restrictions
 * (restriction_generic.c, restriction_client.c, restriction_helo.c,
 * restriction_sender.c, restriction_recipient.c), the ones plugins
 * provide (filters/access provides the check_*_access family) and
 * check_policy_service all register here and are evaluated the same way.
 *
 * Evaluation (restriction_eval.c) walks a list left to right with
 * Postfix's semantics: the first restriction answering other than DUNNO
 * decides; a restriction class or a restriction named by an access table
 * action is evaluated as a nested list whose answer is the answer of the
 * restriction that named it; DEFER_IF_PERMIT / DEFER_IF_REJECT /
 * warn_if_reject / soft_bounce / smtpd_delay_reject as in Postfix's
 * smtpd_check.c.  A restriction that must wait (DNS, a policy socket)
 * answers RV_PENDING and later calls rcheck_resume(): the session is
 * suspended, never the worker.
 *
 * The facts a restriction reads are the session's own fields
 * (struct smtp_session: client_addr, client_name, reverse_name,
 * helo_name, txn.env.sender, txn.cur_rcpt, sasl_*, ...).  `sluice
 * explain` builds a session without a socket and runs the same engine,
 * with a trace: every restriction reports what it looked at through
 * rcheck_trace(), which costs nothing outside explain.
 */
#ifndef SLUICE_RESTRICTION_H
#define SLUICE_RESTRICTION_H

#include <stdbool.h>

struct smtp_session;
struct config;
struct diag;
struct rcheck;

/* The lists, in Postfix's evaluation order at RCPT time. */
enum rstage {
	RS_CLIENT, RS_HELO, RS_SENDER, RS_RELAY, RS_RECIPIENT,
	RS_DATA, RS_END_OF_DATA, RS_ETRN, RS__COUNT
};

/* What one restriction (or a whole list) answers. */
enum rverdict {
	RV_DUNNO = 0,   /* no opinion: next restriction */
	RV_OK,          /* permit: the list ends accepting */
	RV_REJECT,      /* the list ends with the reply set by rcheck_reply() */
	RV_DEFER,       /* same, temporary */
	RV_PENDING,     /* the answer comes through rcheck_resume() */
	RV_NESTED       /* rcheck_action() started a nested list: its answer
			 * becomes this restriction's (engine internal; a
			 * restriction returns what rcheck_action returned) */
};

/* Where a restriction may appear (Postfix refuses e.g. check_recipient_access
 * in smtpd_client_restrictions only when smtpd_delay_reject = no). */
#define RF_ARG          0x01    /* takes one argument (the next word) */
#define RF_ARG_TABLE    0x02    /* ... which is a type:name table, opened and
				 * checked by `sluice check` */
#define RF_NEEDS_HELO   0x10    /* meaningful once HELO is known */
#define RF_NEEDS_SENDER 0x20    /* ... MAIL */
#define RF_NEEDS_RCPT   0x40    /* ... RCPT */

struct restriction_def {
	const char *name;
	unsigned flags;                 /* RF_* */
	/* Evaluate with the item's argument (NULL without RF_ARG).  Returns an
	 * enum rverdict; RV_REJECT / RV_DEFER after rcheck_reply() or
	 * rcheck_action(); RV_PENDING after starting work that will call
	 * rcheck_resume(c, verdict) exactly once from the event loop. */
	int (*eval)(struct rcheck *c, const char *arg, void *data);
	void *data;                     /* for plugins: the plugin's handle */
};

/* ---- the registry (restriction_list.c) ---- */
/* Built-in tables are listed in restriction_list.c; plugins register
 * theirs when loaded.  A name registered twice is refused (-1, logged). */
int restriction_register(const struct restriction_def *def);
const struct restriction_def *restriction_find(const char *name);

/* ---- compiled lists ---- */
struct restriction_list;

/* Compile the value of `param` (a list parameter or a restriction class)
 * for the config; problems go to d as "main.cf:LINE: ..." (via config's
 * origin of the parameter).  NULL on error. */
struct restriction_list *restriction_list_compile(const struct config *cfg,
						  const char *param,
						  struct diag *d);
void restriction_list_free(struct restriction_list *l);

/* ---- evaluation (restriction_eval.c) ---- */
typedef void (*rcheck_done_fn)(struct smtp_session *s, int verdict);

/* Evaluate the lists a session stage needs (with smtpd_delay_reject the
 * client, helo and sender lists run at RCPT), then call done(s, verdict)
 * exactly once: RV_OK/RV_DUNNO (go on), RV_REJECT or RV_DEFER with the
 * reply in s->reply_code / reply_dsn / reply_text (the whole text after
 * the codes, e.g. "<a@b>: Relay access denied").  done may run before
 * this returns. */
void rcheck_stage(struct smtp_session *s, enum rstage stage,
		  rcheck_done_fn done);
/* Session end or transaction reset: cancel what is pending (no done). */
void rcheck_cancel(struct smtp_session *s);

/* The implicit checks Postfix makes after the lists permit
 * (restriction_recipient.c): smtpd_reject_unlisted_recipient at RCPT,
 * smtpd_reject_unlisted_sender at MAIL.  Same answers as eval. */
int restriction_implicit_unlisted(struct rcheck *c, bool recipient);

/* ---- for restrictions ---- */
struct smtp_session *rcheck_session(struct rcheck *c);
enum rstage rcheck_list_stage(struct rcheck *c);   /* list being evaluated */
const struct config *rcheck_config(struct rcheck *c);

/* Set the reply of an RV_REJECT / RV_DEFER answer.  code 0 takes the
 * restriction's default; dsn NULL derives one from the code. */
void rcheck_reply(struct rcheck *c, int code, const char *dsn,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Apply an access(5) action found for `name` ("<a@b>", the client
 * "host[addr]", ...) in the context `reply_class` ("Client host",
 * "Helo command", "Sender address", "Recipient address", "Data command",
 * "End-of-data", "Etrn command") by `origin` ("check_client_access
 * hash:/etc/x", "check_policy_service inet:127.0.0.1:10023").  Handles
 * every action: OK, REJECT/DEFER [text], 4NN/5NN [d.d.d] text,
 * DEFER_IF_REJECT, DEFER_IF_PERMIT, a restriction name or class (nested
 * evaluation), DISCARD, DUNNO, FILTER, HOLD, PREPEND, REDIRECT, BCC,
 * WARN, INFO.  Returns the verdict to return from eval. */
int rcheck_action(struct rcheck *c, const char *action, const char *name,
		  const char *reply_class, const char *origin);

/* Complete an RV_PENDING answer (once, from the event loop). */
void rcheck_resume(struct rcheck *c, int verdict);

/* `sluice explain` trace ("  check_client_access hash:/etc/x: key
 * 192.0.2.1: not found"); a no-op unless explaining. */
void rcheck_trace(struct rcheck *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
bool rcheck_explaining(struct rcheck *c);

#endif
