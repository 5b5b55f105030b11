/*
 * plugin_api_restrict.c - plugins' restrictions: registering the
 * `restrictions[]` of a loaded plugin with the restriction engine,
 * calling them, and the ABI 2 functions sluice_action(), sluice_stage()
 * and sluice_explain().  sluice_action() also works in an eom hook, for
 * the actions that change the message (FILTER, HOLD, DISCARD, REDIRECT,
 * BCC): see eom_action().
 *
 * A plugin restriction is a restriction_def whose eval enters the
 * plugin's context (so sluice_get_data, timers and jobs work as in a
 * hook), calls the plugin's check() and maps its answer: DUNNO, OK,
 * REJECT/DEFER (with sluice_reply()'s reply), SLUICE_ACTION (the access
 * action given to sluice_action(), applied by rcheck_action()), HOLD and
 * DISCARD (as the HOLD / DISCARD actions), or PENDING: then the plugin's
 * sluice_resume() reaches the engine (filter_resume() asks
 * plugin_restriction_waiting() first), not the hook chain.
 *
 * Promises: the plugin's reply never leaks into the session's (it is
 * moved into the engine's); a plugin answering with an invalid verdict
 * gets 451 4.3.5 and a warning naming it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter_chain.h"
#include "access_action.h"
#include "log.h"
#include "mymalloc.h"
#include "plugin_loader.h"
#include "restriction_int.h"
#include "smtp_session.h"
#include "sluice_plugin.h"

struct plugin_restr {
	int plugin;                         /* plugin_at() index */
	const struct sluice_restriction *r;
};

static int plugin_eval(struct rcheck *c, const char *arg, void *data);

static const char *plugin_name(int i)
{
	struct loaded_plugin *lp = plugin_at(i);

	return lp ? lp->p->name : "?";
}

/* "check_client_access hash:/etc/x", for actions' warnings */
static const char *origin_of(struct rcheck *c, char *buf, size_t len)
{
	const struct ritem *it = rcheck_current_item(c);

	snprintf(buf, len, "%s%s%s", it ? it->name : "restriction",
		 it && it->arg ? " " : "", it && it->arg ? it->arg : "");
	return buf;
}

/* Move the plugin's reply into the engine's and map the verdict. */
static int map_answer(struct rcheck *c, struct smtp_session *s, int plugin,
		      int v)
{
	char origin[512], action[600];
	int code;

	switch (v) {
	case SLUICE_DUNNO:
	case SLUICE_OK:
		filter_clear_reply(s);
		return v == SLUICE_OK ? RV_OK : RV_DUNNO;
	case SLUICE_REJECT:
	case SLUICE_DEFER:
		code = s->reply_code;
		if (code < 400 || code > 599)
			code = v == SLUICE_REJECT ? 554 : 450;
		if (s->reply_text)
			rcheck_reply(c, code, s->reply_dsn[0] ? s->reply_dsn : NULL,
				     "%s", s->reply_text);
		else
			rcheck_reply(c, code, s->reply_dsn[0] ? s->reply_dsn : NULL,
				     "<%s>: %s rejected: Access denied",
				     rcheck_reply_name(c), rcheck_reply_class(c));
		filter_clear_reply(s);
		return code >= 500 ? RV_REJECT : RV_DEFER;
	case SLUICE_HOLD:
	case SLUICE_DISCARD:
		snprintf(action, sizeof action, "%s%s%s",
			 v == SLUICE_HOLD ? "HOLD" : "DISCARD",
			 s->reply_text ? " " : "", s->reply_text ? s->reply_text : "");
		filter_clear_reply(s);
		return rcheck_action(c, action, rcheck_reply_name(c),
				     rcheck_reply_class(c),
				     origin_of(c, origin, sizeof origin));
	case SLUICE_ACTION:
		filter_clear_reply(s);
		return rcheck_action_verdict(c);
	case SLUICE_PENDING:
		return RV_PENDING;
	}
	msg_warn("plugin %s: restriction %s answered the invalid verdict %d",
		 plugin_name(plugin), origin_of(c, origin, sizeof origin), v);
	filter_clear_reply(s);
	return rcheck_server_error(c);
}

static int plugin_eval(struct rcheck *c, const char *arg, void *data)
{
	const struct plugin_restr *pr = data;
	struct smtp_session *s = rcheck_session(c);
	struct loaded_plugin *lp = plugin_at(pr->plugin);
	struct filter_ctx previous;
	int v;

	if (lp == NULL)
		return rcheck_server_error(c);
	filter_clear_reply(s);
	rcheck_set_action_verdict(c, RV_DUNNO);
	previous = filter_ctx_enter(filter_ctx_for(s, pr->plugin));
	v = pr->r->check((sluice_txn *)s, arg, lp->pdata);
	filter_ctx_leave(previous);
	return map_answer(c, s, pr->plugin, v);
}

void plugin_restrictions_register(int plugin)
{
	struct loaded_plugin *lp = plugin_at(plugin);

	if (lp == NULL || lp->p->restrictions == NULL)
		return;
	for (const struct sluice_restriction *r = lp->p->restrictions;
	     r->name; r++) {
		struct plugin_restr *pr = calloc(1, sizeof *pr);
		struct restriction_def def = {
			.name = r->name,
			.flags = r->takes_arg == 2 ? RF_ARG | RF_ARG_TABLE
				: r->takes_arg == 1 ? RF_ARG : 0,
			.eval = plugin_eval,
		};

		if (pr == NULL)
			msg_fatal("plugin restrictions: out of memory");
		pr->plugin = plugin;
		pr->r = r;
		def.data = pr;
		if (restriction_register(&def) < 0) {
			msg_warn("plugin %s: restriction %s is not available",
				 lp->p->name, r->name);
			free(pr);
		}
	}
}

/* ---- resuming --------------------------------------------------------- */

static const struct plugin_restr *waiting_restr(struct smtp_session *s)
{
	struct rcheck *c;
	const struct ritem *it;

	if (s->rstate == NULL)
		return NULL;
	c = rcheck_of(s);
	it = rcheck_current_item(c);
	if (!rcheck_pending(c) || it == NULL || it->def == NULL
	    || it->def->eval != plugin_eval)
		return NULL;
	return it->def->data;
}

/* Only the plugin whose restriction waits may resume it: a stray resume
 * from another plugin's callback goes to the hook chain (which ignores
 * it with a warning). */
bool plugin_restriction_waiting(struct smtp_session *s)
{
	const struct plugin_restr *pr = waiting_restr(s);
	int running = filter_ctx_current().plugin;

	return pr != NULL && (running < 0 || running == pr->plugin);
}

void plugin_restriction_resume(struct smtp_session *s, int verdict)
{
	const struct plugin_restr *pr = waiting_restr(s);
	struct rcheck *c = rcheck_of(s);
	int v;

	v = map_answer(c, s, pr ? pr->plugin : -1, verdict);
	if (v == RV_PENDING) {
		msg_warn("plugin %s: sluice_resume() with SLUICE_PENDING",
			 plugin_name(pr ? pr->plugin : -1));
		v = rcheck_server_error(c);
	}
	rcheck_resume(c, v);    /* last: may end the session */
}

/* ---- the ABI ------------------------------------------------------------ */

static void add_bcc(struct smtp_txn *t, const char *addr)
{
	char **v = realloc(t->bcc, (size_t)(t->nbcc + 1) * sizeof *v);

	if (v == NULL)
		msg_fatal("sluice_action: out of memory");
	t->bcc = v;
	t->bcc[t->nbcc++] = mystrdup(addr);
}

/*
 * sluice_action() in an end-of-message hook: the actions that change the
 * message are recorded on the transaction exactly where the restriction
 * engine records them (smtp_data.c applies them when the envelope is
 * written): FILTER is the envelope's content filter, REDIRECT and BCC
 * the transaction's lists, HOLD and DISCARD its flags (logged by the
 * session as "hold:" / "discard:" END-OF-MESSAGE lines).  FILTER,
 * REDIRECT and BCC are logged by the plugin, which knows what matched.
 * Returns the verdict the hook should return: SLUICE_DISCARD for
 * DISCARD, SLUICE_DUNNO otherwise (other actions are refused with a
 * warning: answer with a verdict).
 */
static int eom_action(struct smtp_session *s, const char *action)
{
	struct smtp_txn *t = &s->txn;
	struct access_action a;
	char *copy;

	access_action_parse(action ? action : "DUNNO", &a);
	switch (a.kind) {
	case AA_FILTER:
		if (*a.text == 0 || strchr(a.text, ':') == NULL) {
			msg_warn("sluice_action(): \"%s\" requires "
				 "transport:destination; ignored", action);
			return SLUICE_DUNNO;
		}
		free(t->env.filter);
		t->env.filter = mystrdup(a.text);
		return SLUICE_DUNNO;
	case AA_REDIRECT:
	case AA_BCC:
		if (strchr(a.text, '@') == NULL) {
			msg_warn("sluice_action(): \"%s\" requires a user@domain "
				 "target; ignored", action);
			return SLUICE_DUNNO;
		}
		if (a.kind == AA_BCC) {
			add_bcc(t, a.text);
		} else {
			free(t->redirect);
			t->redirect = mystrdup(a.text);
		}
		return SLUICE_DUNNO;
	case AA_HOLD:
		if (t->hold)
			return SLUICE_DUNNO;
		copy = mystrdup(*a.text ? a.text : "triggers HOLD action");
		free(t->hold_reason);
		t->hold_reason = copy;
		t->hold = true;
		return SLUICE_DUNNO;
	case AA_DISCARD:
		t->discard = true;
		return SLUICE_DISCARD;
	case AA_DUNNO:
		return SLUICE_DUNNO;
	default:
		break;
	}
	msg_warn("sluice_action(): action %s is not available at end of "
		 "message (FILTER, HOLD, DISCARD, REDIRECT, BCC are); ignored",
		 a.command);
	return SLUICE_DUNNO;
}

int sluice_action(sluice_txn *t, const char *action, const char *name,
		  const char *reply_class)
{
	struct smtp_session *s = (struct smtp_session *)t;
	struct rcheck *c = rcheck_of(s);
	char origin[512];
	int v;

	if ((s->rstate == NULL || rcheck_current_item(c) == NULL)
	    && filter_running_stage(s) == FS_EOM)
		return eom_action(s, action);
	if (rcheck_current_item(c) == NULL) {
		msg_warn("sluice_action() outside a restriction; ignored");
		rcheck_set_action_verdict(c, RV_DUNNO);
		return SLUICE_ACTION;
	}
	v = rcheck_action(c, action ? action : "DUNNO",
			  name ? name : rcheck_reply_name(c),
			  reply_class ? reply_class : rcheck_reply_class(c),
			  origin_of(c, origin, sizeof origin));
	rcheck_set_action_verdict(c, v);
	return SLUICE_ACTION;
}

const char *sluice_stage(sluice_txn *t)
{
	struct smtp_session *s = (struct smtp_session *)t;
	const char *w;

	if (s->rstate == NULL)
		return "CONNECT";
	w = rcheck_where(rcheck_of(s));
	if (strcmp(w, "EHLO") == 0)
		return "HELO";
	if (strcmp(w, "BDAT") == 0)
		return "DATA";
	return w;
}

void sluice_explain(sluice_txn *t, const char *fmt, ...)
{
	struct smtp_session *s = (struct smtp_session *)t;
	char text[1024];
	va_list ap;

	if (s->rstate == NULL || !rcheck_explaining(rcheck_of(s)))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	rcheck_trace(rcheck_of(s), "    %s", text);
}
