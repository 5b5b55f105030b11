/*
 * restriction_int.h - internals shared by the restriction engine's files
 * (restriction_list.c, restriction_eval.c, restriction_generic.c,
 * plugin_api_restrict.c): compiled lists, the per-session evaluation
 * state, and the hooks the SMTP session and the plugin API use.
 * Restrictions themselves include restriction.h only.
 */
#ifndef SLUICE_RESTRICTION_INT_H
#define SLUICE_RESTRICTION_INT_H

#include <stdbool.h>
#include "restriction.h"

/* An internal flag: the pseudo restriction warn_if_reject. */
#define RF_WARN_IF_REJECT 0x100

/* The default of sluice_restriction_recursion_limit: Postfix's fixed
 * nesting limit for classes and restrictions named by access table
 * actions (smtpd_check.c: "causes unreasonable recursion"). */
#define RCHECK_MAX_DEPTH 100

enum ritem_kind { RI_RESTRICTION, RI_CLASS, RI_WARN_IF_REJECT };

struct ritem {
	enum ritem_kind kind;
	const struct restriction_def *def;  /* RI_RESTRICTION */
	char *name;                         /* as registered, or the class */
	char *arg;                          /* NULL without RF_ARG */
};

struct restriction_list {
	char *param;                /* where it came from, for messages */
	struct ritem *v;
	int n;
};

/* ---- the registry and lists (restriction_list.c) ---- */
extern const struct restriction_def restrictions_generic[];

/* Forget the names plugins declared without code (before the plugins
 * of a new configuration declare theirs: a plugin no longer listed must
 * not leave its names behind). */
void restriction_forget_declared(void);
/* The plugin that declared a name, or NULL for a built-in. */
const char *restriction_owner(const char *name);
const char *restriction_stage_param(enum rstage st);
/* The compiled list of a stage, or of a class (NULL: not a class, or a
 * broken one; the problem was logged).  Cached per configuration set. */
const struct restriction_list *restriction_stage_list(const struct config *cfg,
						      enum rstage st);
const struct restriction_list *restriction_class_list(const struct config *cfg,
						      const char *name);
/* Compile a value found at run time (an access table's "restriction
 * names" action); NULL with the reason in err. */
struct restriction_list *restriction_list_parse(const struct config *cfg,
						const char *origin,
						const char *value,
						char *err, size_t errlen);

/* ---- evaluation (restriction_eval.c) ---- */
struct rcheck *rcheck_of(struct smtp_session *s);        /* created on use */
/* Session freed: cancel pending work, free the state. */
void rcheck_session_free(struct smtp_session *s);
/* The restriction being evaluated, or NULL. */
const struct ritem *rcheck_current_item(struct rcheck *c);
/* Is a restriction of this session waiting for rcheck_resume()? */
bool rcheck_pending(struct rcheck *c);
/* Remember a plugin restriction's SLUICE_ACTION answer. */
void rcheck_set_action_verdict(struct rcheck *c, int verdict);
int rcheck_action_verdict(struct rcheck *c);
/* A server configuration problem: 451 4.3.5, never a warning. */
int rcheck_server_error(struct rcheck *c);
/* For `sluice explain` (no socket): trace every restriction to fn. */
void rcheck_set_trace(struct smtp_session *s,
		      void (*fn)(void *arg, const char *line), void *arg);
/* Evaluate the compiled list l alone, as the list of stage `as`;
 * done(s, verdict) as rcheck_stage's (sluice-policyd's
 * policyd_restrictions; l outlives the evaluation).  No DEFER_IF_PERMIT
 * check after it: rcheck_open_defer() says what the list left open
 * (permit: a DEFER_IF_PERMIT, else a DEFER_IF_REJECT), for a caller that
 * passes it on; false when nothing. */
void rcheck_list(struct smtp_session *s, enum rstage as,
		 const struct restriction_list *l, rcheck_done_fn done);
bool rcheck_open_defer(struct smtp_session *s, bool permit, int *code,
		       const char **dsn, const char **text);
/* The domain of the ETRN command being checked (smtp_commands.c). */
void rcheck_set_etrn_domain(struct rcheck *c, const char *domain);
const char *rcheck_etrn_domain(struct rcheck *c);
/* The SMTP command the stage answers, for log lines: "RCPT". */
const char *rcheck_where(struct rcheck *c);

/* ---- plugins (plugin_api_restrict.c) ---- */
/* Register plugin i's restrictions (a worker, after init). */
void plugin_restrictions_register(int plugin);
/* Is a plugin restriction of s waiting for sluice_resume()?  Then
 * sluice_resume() goes here instead of to the hook chain. */
bool plugin_restriction_waiting(struct smtp_session *s);
void plugin_restriction_resume(struct smtp_session *s, int verdict);

#endif
