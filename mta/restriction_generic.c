/*
 * restriction_generic.c - the restrictions that fit every list: permit,
 * reject, defer, defer_if_permit, defer_if_reject, warn_if_reject, sleep,
 * reject_unauth_pipelining (Postfix's generic_checks()), with Postfix's
 * reply codes and texts.
 *
 * Promises: `sleep N` waits on a timer (the session, not the worker) and
 * is cancelled with the session; texts and codes are Postfix's
 * ("<name>: Class rejected: Access denied" with reject_code, "Try again
 * later" 4.3.2 with defer_code, "defer_if_permit requested" 450 4.7.0).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "config.h"
#include "filter_chain.h"
#include "log.h"
#include "restriction_int.h"
#include "smtp_session.h"

static long long code_of(struct rcheck *c, const char *name, long long dflt)
{
	long long v;

	return cfg_lookup_number(rcheck_config(c), name, &v) == 0 ? v : dflt;
}

static int eval_permit(struct rcheck *c, const char *arg, void *data)
{
	return RV_OK;
}

static int eval_reject(struct rcheck *c, const char *arg, void *data)
{
	rcheck_reply(c, (int)code_of(c, "reject_code", 554), "5.7.1",
		     "<%s>: %s rejected: Access denied", rcheck_reply_name(c),
		     rcheck_reply_class(c));
	return RV_REJECT;
}

static int eval_defer(struct rcheck *c, const char *arg, void *data)
{
	rcheck_reply(c, (int)code_of(c, "defer_code", 450), "4.3.2",
		     "<%s>: %s rejected: Try again later", rcheck_reply_name(c),
		     rcheck_reply_class(c));
	return RV_DEFER;
}

static int eval_defer_if_permit(struct rcheck *c, const char *arg, void *data)
{
	return rcheck_defer_if_permit(c, 450, "4.7.0",
				      "<%s>: %s rejected: defer_if_permit requested",
				      rcheck_reply_name(c), rcheck_reply_class(c));
}

static int eval_defer_if_reject(struct rcheck *c, const char *arg, void *data)
{
	return rcheck_defer_if_reject(c, 450, "4.7.0",
				      "<%s>: %s rejected: defer_if_reject requested",
				      rcheck_reply_name(c), rcheck_reply_class(c));
}

/* The engine handles warn_if_reject itself (RF_WARN_IF_REJECT). */
static int eval_warn_if_reject(struct rcheck *c, const char *arg, void *data)
{
	return RV_DUNNO;
}

/* ---- sleep N ---------------------------------------------------------- */

struct sleeper { struct event *ev; struct rcheck *c; };

static void sleep_done(evutil_socket_t fd, short what, void *arg)
{
	struct sleeper *z = arg;
	struct rcheck *c = z->c;

	event_free(z->ev);
	free(z);
	rcheck_resume(c, RV_DUNNO);
}

static void sleep_cancel(void *arg)
{
	struct sleeper *z = arg;

	event_free(z->ev);
	free(z);
}

static int eval_sleep(struct rcheck *c, const char *arg, void *data)
{
	struct event_base *base = filter_event_base();
	struct timeval tv = { 0, 0 };
	struct sleeper *z;

	for (const char *p = arg; *p; p++)
		if (!isdigit((unsigned char)*p)) {
			msg_warn("restriction sleep must be followed by number");
			return rcheck_server_error(c);
		}
	tv.tv_sec = atol(arg);
	rcheck_trace(c, "    sleeping %ld s", (long)tv.tv_sec);
	if (base == NULL || tv.tv_sec == 0 || rcheck_explaining(c))
		return RV_DUNNO;
	if ((z = calloc(1, sizeof *z)) == NULL)
		msg_fatal("restrictions: out of memory");
	z->c = c;
	if ((z->ev = evtimer_new(base, sleep_done, z)) == NULL
	    || evtimer_add(z->ev, &tv) < 0) {
		if (z->ev)
			event_free(z->ev);
		free(z);
		return RV_DUNNO;
	}
	rcheck_on_cancel(c, sleep_cancel, z);
	return RV_PENDING;
}

/* ---- reject_unauth_pipelining ------------------------------------------ */

/* The client has, in this session, sent more before our reply to a
 * command it must wait for: any command without PIPELINING announced,
 * or anything behind a command that ends a group (DATA, EHLO, ...). */
static int eval_reject_unauth_pipelining(struct rcheck *c, const char *arg,
					 void *data)
{
	if (!rcheck_session(c)->ill_pipelining)
		return RV_DUNNO;
	rcheck_reply(c, 503, "5.5.0",
		     "<%s>: %s rejected: Improper use of SMTP command pipelining",
		     rcheck_reply_name(c), rcheck_reply_class(c));
	return RV_REJECT;
}

const struct restriction_def restrictions_generic[] = {
	{ "permit", 0, eval_permit, NULL },
	{ "reject", 0, eval_reject, NULL },
	{ "defer", 0, eval_defer, NULL },
	{ "defer_if_permit", 0, eval_defer_if_permit, NULL },
	{ "defer_if_reject", 0, eval_defer_if_reject, NULL },
	{ "warn_if_reject", RF_WARN_IF_REJECT, eval_warn_if_reject, NULL },
	{ "sleep", RF_ARG, eval_sleep, NULL },
	{ "reject_unauth_pipelining", 0, eval_reject_unauth_pipelining, NULL },
	{ NULL, 0, NULL, NULL }
};
