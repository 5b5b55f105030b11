/*
 * example.c - the example sluice plugin: a complete, working plugin to
 * copy when you write your own.  docs/plugin-guide.md walks through it.
 *
 * What it does:
 *  - rcpt: rejects the recipient named by example_reject_recipient with
 *      550 5.1.1 <addr>: Recipient address rejected: example plugin says no
 *  - eom:  waits example_delay_ms milliseconds on a timer - without
 *    blocking the worker: other sessions are served meanwhile - and then
 *    adds the header "X-Sluice-Example: checked by example plugin" (the
 *    name is example_header_name);
 *  - close: cancels the timer if the session ends while it runs;
 *  - restrictions (usable in any smtpd_*_restrictions list):
 *      example_action        answers with the access(5) action in
 *                            example_action (e.g. "HOLD", "REJECT no",
 *                            "PREPEND X-Tag: yes"), as a table would;
 *      example_action_after MS  the same, after waiting MS milliseconds
 *                            on a timer (the session waits, the worker
 *                            does not).
 *
 * What it shows: the descriptor, parameters (read per listener, so
 * master.cf -o overrides work), a reply with sluice_reply(), the
 * asynchronous path (SLUICE_PENDING, then sluice_resume() from a timer
 * callback), per-session state with sluice_set_data(), a header edit at
 * end of message, and cleaning up in close.
 *
 * Build it on its own with
 *   cc -shared -fPIC -I/path/to/sluice/plugins -o example.so example.c
 * (in the sluice tree, `make` builds it into build/plugins/example.so),
 * then in main.cf:
 *   sluice_plugins = example
 *   plugin_directory = /path/to/the/directory/holding/example.so
 *   example_reject_recipient = nobody@example.com
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The only header a plugin includes. */
#include "sluice_plugin.h"

#define HEADER_VALUE "checked by example plugin"

/*
 * Parameters.  Each one is a main.cf parameter like the core's: it shows
 * in `sluice conf -d`, a misspelling of it is caught by `sluice check`,
 * and a master.cf listener may override it with -o.  Name them after the
 * plugin so they cannot clash with anything else.
 */
static const struct sluice_param example_params[] = {
	{ "example_header_name", SLUICE_PARAM_STRING, "X-Sluice-Example",
	  "name of the header the example plugin adds to every message" },
	{ "example_reject_recipient", SLUICE_PARAM_STRING, "",
	  "recipient address the example plugin rejects (empty: none)" },
	{ "example_delay_ms", SLUICE_PARAM_INT, "50",
	  "milliseconds the example plugin waits at end of message, "
	  "without blocking other sessions (0: no wait)" },
	{ "example_action", SLUICE_PARAM_STRING, "DUNNO",
	  "the access(5) action the example_action restrictions answer with" },
	{ NULL, 0, NULL, NULL }
};

/*
 * Per-session state.  A worker runs thousands of sessions at once, so
 * nothing about one session may live in a global variable: keep it here
 * and hand it to the core with sluice_set_data().
 */
struct example_session {
	sluice_txn *t;          /* the session the timer works for */
	sluice_timer *timer;    /* the end-of-message wait, or NULL */
	sluice_timer *rtimer;   /* example_action_after's wait, or NULL */
};

static struct example_session *session_state(sluice_txn *t)
{
	struct example_session *es = sluice_get_data(t);

	if (es == NULL && (es = calloc(1, sizeof *es)) != NULL)
		sluice_set_data(t, es);
	if (es)
		es->t = t;
	return es;
}

/* ---- init ------------------------------------------------------------- */

/*
 * Once per worker process, after the configuration is read.  Check what
 * you can check once, and say clearly what is wrong: a failing init()
 * stops the worker with this message, which beats failing every message.
 * There is no process-wide state to set up here, so *pdata stays NULL.
 */
static int example_init(void **pdata)
{
	const char *name = sluice_conf_str("example_header_name");

	if (name == NULL || *name == 0 || strpbrk(name, ": \t") != NULL) {
		sluice_log(SLUICE_LOG_ERR, "example_header_name = \"%s\" is not a "
			   "header name; use letters, digits and '-', e.g. "
			   "X-Sluice-Example", name ? name : "");
		return -1;
	}
	*pdata = NULL;
	return 0;
}

/* ---- rcpt: a synchronous verdict ---------------------------------------- */

/*
 * Called for each RCPT TO.  sluice_recipient() is the address being
 * checked (without <>).  The answer is immediate: SLUICE_DUNNO lets the
 * next filter decide, SLUICE_REJECT refuses this recipient with the reply
 * set by sluice_reply() (the text is the whole text after the codes;
 * Postfix's shape for recipients is "<addr>: Recipient address rejected:
 * reason").  Read parameters through the transaction: the value then
 * follows the listener's master.cf -o overrides.
 */
static int example_rcpt(sluice_txn *t, void *pdata)
{
	const char *rcpt = sluice_recipient(t);
	const char *refused = sluice_txn_conf_str(t, "example_reject_recipient");

	(void)pdata;            /* no process-wide state (see example_init) */
	if (rcpt == NULL || refused == NULL || *refused == 0
	    || strcasecmp(rcpt, refused) != 0)
		return SLUICE_DUNNO;
	sluice_reply(t, 550, "5.1.1",
		     "<%s>: Recipient address rejected: example plugin says no",
		     rcpt);
	return SLUICE_REJECT;
}

/* ---- eom: an asynchronous verdict ---------------------------------------- */

/* Add our header.  Allowed in the eom hook, and in callbacks while the
 * eom hook is pending - which is where this runs in the delayed case. */
static void add_header(sluice_txn *t)
{
	const char *name = sluice_txn_conf_str(t, "example_header_name");

	if (sluice_header_add(t, name, HEADER_VALUE) < 0)
		sluice_txn_log(t, SLUICE_LOG_WARN, "could not add header %s", name);
}

/*
 * The timer fired: the wait is over.  The core frees a timer once its
 * callback returns, so forget the handle first (close must not cancel
 * it any more).  Then do the work and resume the session with our
 * verdict.  sluice_resume() comes last: it continues the session - the
 * next plugins, the reply, even the end of the session - before it
 * returns, so neither `t` nor `es` may be used after it.
 */
static void example_timer_done(void *arg)
{
	struct example_session *es = arg;
	sluice_txn *t = es->t;

	es->timer = NULL;
	add_header(t);
	sluice_txn_log(t, SLUICE_LOG_DEBUG, "header added after the wait");
	sluice_resume(t, SLUICE_DUNNO);
}

/*
 * End of message.  To wait without blocking, start the timer, keep what
 * the callback needs in the session state, and return SLUICE_PENDING:
 * the session waits (it reads no more commands), the worker goes on
 * serving the other sessions.  Every path that returns SLUICE_PENDING
 * must end in exactly one sluice_resume().
 */
static int example_eom(sluice_txn *t, void *pdata)
{
	long long delay = sluice_txn_conf_int(t, "example_delay_ms");
	struct example_session *es = sluice_get_data(t);

	(void)pdata;
	if (delay <= 0) {
		add_header(t);
		return SLUICE_DUNNO;
	}
	if (es == NULL) {
		if ((es = calloc(1, sizeof *es)) == NULL) {
			/* No memory: better a temporary failure than a lie. */
			sluice_reply(t, 451, "4.3.0", "Error: out of memory");
			return SLUICE_DEFER;
		}
		sluice_set_data(t, es);
	}
	es->t = t;
	es->timer = sluice_timer_start((unsigned)delay, example_timer_done, es);
	if (es->timer == NULL) {
		add_header(t);          /* no timer (logged): do it now */
		return SLUICE_DUNNO;
	}
	return SLUICE_PENDING;
}

/* ---- restrictions ------------------------------------------------------- */

/*
 * A restriction answers like an access table: sluice_action() applies
 * any access(5) action (OK, REJECT text, 450 4.7.1 text, HOLD, DISCARD,
 * PREPEND, REDIRECT, BCC, FILTER, WARN, a restriction class, ...) with
 * Postfix's meaning, and its return value is what the restriction
 * returns.  NULL name and reply class stand for what the list checks
 * ("<rcpt>" / "Recipient address" in smtpd_recipient_restrictions).
 */
static int example_action(sluice_txn *t, const char *arg, void *pdata)
{
	(void)arg;
	(void)pdata;
	return sluice_action(t, sluice_txn_conf_str(t, "example_action"),
			     NULL, NULL);
}

static void example_action_timer(void *arg)
{
	struct example_session *es = arg;
	sluice_txn *t = es->t;

	es->rtimer = NULL;
	sluice_resume(t, sluice_action(t, sluice_txn_conf_str(t,
				"example_action"), NULL, NULL));
}

/* The same answer, after a wait: SLUICE_PENDING, then sluice_resume(). */
static int example_action_after(sluice_txn *t, const char *arg, void *pdata)
{
	struct example_session *es = session_state(t);

	(void)pdata;
	if (es == NULL)
		return example_action(t, arg, pdata);
	es->rtimer = sluice_timer_start((unsigned)atoi(arg),
					example_action_timer, es);
	if (es->rtimer == NULL)
		return example_action(t, arg, pdata);
	return SLUICE_PENDING;
}

static const struct sluice_restriction example_restrictions[] = {
	{ "example_action", 0, example_action },
	{ "example_action_after", 1, example_action_after },
	{ NULL, 0, NULL }
};

/* ---- close: clean up ------------------------------------------------- */

/*
 * The session ends - normally, or because the client went away while our
 * timer was running (then this runs with the eom hook still pending).
 * Cancel what is outstanding, so our callback never runs for a closed
 * session, and free the per-session state.
 */
static void example_close(sluice_txn *t, void *pdata)
{
	struct example_session *es = sluice_get_data(t);

	(void)pdata;
	if (es == NULL)
		return;
	sluice_timer_cancel(es->timer);     /* NULL is fine */
	sluice_timer_cancel(es->rtimer);
	free(es);
	sluice_set_data(t, NULL);
}

/* ---- the descriptor ----------------------------------------------------- */

/*
 * The one symbol sluice looks for.  `abi` tells the loader which ABI this
 * plugin was built against; `name` must be the file name without .so, as
 * listed in sluice_plugins.  Hooks you do not need stay NULL.
 */
SLUICE_PLUGIN_DECLARE = {
	.abi = SLUICE_PLUGIN_ABI,
	.name = "example",
	.version = "1.0",
	.description = "example plugin: rejects one recipient, waits on a "
		       "timer at end of message, adds a header",
	.params = example_params,
	.init = example_init,
	.rcpt = example_rcpt,
	.eom = example_eom,
	.close = example_close,
	.restrictions = example_restrictions,
};
