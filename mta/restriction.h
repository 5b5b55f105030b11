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
#include <stddef.h>

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

/* An argument check, run when a list naming the restriction is compiled
 * (config load, `sluice check`, start-up, reload), so a bad argument is
 * "main.cf:LINE: ..." there and not a 451 when mail arrives.  0, or -1
 * with the reason and the fix in err.  Kept beside restriction_def, not
 * in it: the positional restriction_def tables stay as they are. */
typedef int (*restriction_arg_check_fn)(const char *arg,
					const struct config *cfg,
					char *err, size_t errlen);
struct restriction_arg_check {
	const char *name;
	restriction_arg_check_fn check;
};

/* ---- the registry (restriction_list.c) ---- */
/* Built-in tables are listed in restriction_list.c; plugins register
 * theirs when loaded.  A name registered twice is refused (-1, logged). */
int restriction_register(const struct restriction_def *def);
const struct restriction_def *restriction_find(const char *name);
/* Give a registered name an argument check (built-in ones are listed in
 * restriction_list.c); -1 when the name is unknown. */
int restriction_set_arg_check(const char *name, restriction_arg_check_fn fn);

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

/* ---- additions (engine extensions B, C and the policy client use) ---- */

/* What the generic reply text quotes and names for the list being
 * evaluated: "host[1.2.3.4]" / "Client host", the HELO name / "Helo
 * command", the sender / "Sender address", the recipient / "Recipient
 * address", "DATA" / "Data command", "END-OF-MESSAGE" / "End-of-data",
 * the ETRN domain / "Etrn command". */
const char *rcheck_reply_name(struct rcheck *c);
const char *rcheck_reply_class(struct rcheck *c);

/* Postfix's DEFER_IF_PERMIT and DEFER_IF_REJECT from a restriction (a
 * temporary failure that must not turn into a permit, resp. a reject):
 * records the reply (the first one of the stage wins) and returns
 * RV_DUNNO; under warn_if_reject, DEFER_IF_PERMIT defers at once (which
 * warn_if_reject then logs) as Postfix does.  Return what they return.
 * code 0 takes access_map_defer_code, dsn NULL 4.7.1. */
int rcheck_defer_if_permit(struct rcheck *c, int code, const char *dsn,
			   const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int rcheck_defer_if_reject(struct rcheck *c, int code, const char *dsn,
			   const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A restriction that answered RV_PENDING registers how to stop its work
 * (cancel a DNS query, a timer); the engine calls cancel(arg) if the
 * session ends or resets first, and forgets it once rcheck_resume() runs.
 * After cancel, rcheck_resume must not be called. */
void rcheck_on_cancel(struct rcheck *c, void (*cancel)(void *arg), void *arg);

/* reject_unlisted_recipient / reject_unlisted_sender in a list mark the
 * address as checked, so the implicit check after the lists does not run
 * it twice (Postfix's *_rcptmap_checked); not marked under warn_if_reject. */
void rcheck_unlisted_checked(struct rcheck *c, bool recipient);
bool rcheck_warn_if_reject(struct rcheck *c);

/* Declare a restriction name a plugin provides, without its code (the
 * master and `sluice check` only read plugin descriptors): lists using it
 * compile; a worker completes it with restriction_register(). */
int restriction_declare(const char *name, unsigned flags, const char *owner);

/* For `sluice explain`: evaluate one stage on a session that has no
 * socket (a calloc'ed struct smtp_session with cfg, client_addr,
 * client_name, client_id, helo_name, txn.env.sender, txn.cur_rcpt ...
 * filled in), with tracing attached by rcheck_set_trace()
 * (restriction_int.h), running `base` until a waiting
 * restriction (DNS) answers.  Returns the verdict; the reply of a
 * REJECT/DEFER is in s->reply_code / reply_dsn / reply_text. */
struct event_base;
int rcheck_explain_stage(struct smtp_session *s, enum rstage stage,
			 struct event_base *base);

/* Compile every restriction list and class of a configuration (main.cf
 * and each listener's set), reporting problems to d as errors with
 * file:line (config_load calls it). */
struct sluice_config;
void restriction_config_check(const struct sluice_config *sc, struct diag *d);
/* The configuration is freed: drop its compiled lists (config_free). */
void restriction_config_forget(const struct sluice_config *sc);

#endif
