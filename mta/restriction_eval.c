/*
 * restriction_eval.c - evaluate the restriction lists of an SMTP stage
 * with Postfix's semantics (smtpd_check.c), suspending the session (never
 * the worker) while a restriction waits.
 *
 * A stage runs a short program of operations: the lists it needs, in
 * Postfix's order, and the checks Postfix makes between them.  At RCPT
 * with smtpd_delay_reject = yes that is the client, helo and sender lists
 * (then the implicit reject_unlisted_sender), the relay list, the
 * recipient list, the DEFER_IF_PERMIT check, and the implicit
 * reject_unlisted_recipient; with smtpd_delay_reject = no the client,
 * helo and sender lists run at their own commands instead.  Each list is
 * walked left to right; the first restriction answering other than DUNNO
 * ends the list (OK ends only that list: the next list still runs); a
 * REJECT or DEFER ends the stage.  Classes and restrictions named by an
 * access action are nested lists on an explicit stack (frames), so a
 * restriction deep in a class can answer RV_PENDING and be resumed
 * without recursion through the event loop.
 *
 * Postfix's modifiers, as smtpd_check.c has them:
 *  - warn_if_reject: the next restriction's REJECT/DEFER (and everything
 *    nested in it) is logged as "reject_warning: ..." and answers DUNNO;
 *  - defer_if_permit / DEFER_IF_PERMIT: remembered (first reason wins);
 *    a stage that ends without a reject defers with it instead;
 *  - defer_if_reject / DEFER_IF_REJECT: remembered; a later 5xx reject
 *    of the stage is replaced by it;
 *  - evaluation of a list stops when both are raised, or once the
 *    message is to be discarded;
 *  - soft_bounce turns every 5xx reply into 4xx (logged as sent); the
 *    enhanced code's class always follows the reply code.
 *
 * The final reply of a rejecting stage is left in s->reply_code /
 * reply_dsn / reply_text; the SMTP session replies and logs "reject:"
 * lines itself.  The engine logs what Postfix's log_whatsup() does:
 * reject_warning, warn, info, hold, discard, filter, redirect, bcc.
 *
 * This file owns the per-session evaluation state (s->rstate).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "access_action.h"
#include "config.h"
#include "log.h"
#include "mymalloc.h"
#include "restriction_int.h"
#include "smtp_proto.h"

#define REPLY_MAX 500           /* a reply line stays within RFC 5321's 512 */

/* The operations a stage runs, in order. */
enum rop {
	OP_CLIENT, OP_HELO, OP_SENDER, OP_UNLISTED_SENDER, OP_RELAY,
	OP_RECIPIENT, OP_DEFER_IF_PERMIT, OP_UNLISTED_RECIPIENT, OP_DATA,
	OP_END_OF_DATA, OP_ETRN, OP_LIST
};
#define MAX_OPS 12

struct rdefer {                 /* a DEFER_IF_PERMIT / DEFER_IF_REJECT */
	bool active;
	int code;
	char dsn[16];
	char *text;
};

struct rframe {                 /* one list being walked */
	const struct restriction_list *l;
	struct restriction_list *owned;     /* parsed at run time: freed */
	int next;
};

struct rcheck {
	struct smtp_session *s;
	rcheck_done_fn done;
	enum rstage stage;          /* the stage asked for */
	enum rstage list;           /* the list being evaluated */
	enum rop ops[MAX_OPS];
	int nops, iop;
	bool op_started, op_ran;
	struct rframe *fr;          /* grown on demand */
	int depth, frcap;
	const struct ritem *cur;    /* restriction being evaluated */
	int status;                 /* result of the current operation */
	int warn_level;             /* frame depth of warn_if_reject, 0 none */
	struct rdefer dip, dir;
	bool dip_client, dip_helo, dip_sender;
	bool unlisted_rcpt_done, unlisted_sender_done;
	/* reply of the restriction being evaluated */
	int r_code; char r_dsn[16]; char *r_text; bool r_server;
	/* settled reply of the stage */
	int f_code; char f_dsn[16]; char *f_text;
	bool running, pending, in_eval, early;
	int early_verdict;
	int action_verdict;
	void (*cancel)(void *arg); void *cancel_arg;
	void (*trace)(void *arg, const char *line); void *trace_arg;
	bool x_done; int x_verdict;     /* rcheck_explain_stage() */
	char *etrn;                 /* the ETRN domain being checked */
	const struct restriction_list *xlist;   /* OP_LIST: rcheck_list() */
};

struct rcheck_state { struct rcheck c; };

static void drive(struct rcheck *c);

/* One printable reply line (Postfix's printable() and truncation). */
static char *reply_line(const char *fmt, va_list ap)
{
	char buf[REPLY_MAX + 1];

	vsnprintf(buf, sizeof buf, fmt, ap);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return mystrdup(buf);
}

/* ---- the per-session state ---------------------------------------------- */

struct rcheck *rcheck_of(struct smtp_session *s)
{
	if (s->rstate == NULL) {
		if ((s->rstate = calloc(1, sizeof *s->rstate)) == NULL)
			msg_fatal("restrictions: out of memory");
		s->rstate->c.s = s;
	}
	return &s->rstate->c;
}

struct smtp_session *rcheck_session(struct rcheck *c)
{
	return c->s;
}

enum rstage rcheck_list_stage(struct rcheck *c)
{
	return c->list;
}

const struct config *rcheck_config(struct rcheck *c)
{
	return c->s->cfg;
}

const struct ritem *rcheck_current_item(struct rcheck *c)
{
	return c->cur;
}

bool rcheck_pending(struct rcheck *c)
{
	return c->pending || c->in_eval;
}

bool rcheck_warn_if_reject(struct rcheck *c)
{
	return c->warn_level != 0;
}

void rcheck_set_action_verdict(struct rcheck *c, int verdict)
{
	c->action_verdict = verdict;
}

int rcheck_action_verdict(struct rcheck *c)
{
	return c->action_verdict;
}

void rcheck_set_trace(struct smtp_session *s,
		      void (*fn)(void *arg, const char *line), void *arg)
{
	struct rcheck *c = rcheck_of(s);

	c->trace = fn;
	c->trace_arg = arg;
}

bool rcheck_explaining(struct rcheck *c)
{
	return c->trace != NULL;
}

void rcheck_trace(struct rcheck *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (c->trace == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	c->trace(c->trace_arg, line);
}

void rcheck_on_cancel(struct rcheck *c, void (*cancel)(void *arg), void *arg)
{
	c->cancel = cancel;
	c->cancel_arg = arg;
}

void rcheck_unlisted_checked(struct rcheck *c, bool recipient)
{
	if (c->warn_level)
		return;
	if (recipient)
		c->unlisted_rcpt_done = true;
	else
		c->unlisted_sender_done = true;
}

/* ---- names ------------------------------------------------------------------- */

const char *rcheck_where(struct rcheck *c)
{
	switch (c->stage) {
	case RS_CLIENT: return "CONNECT";
	case RS_HELO: return c->s->esmtp ? "EHLO" : "HELO";
	case RS_SENDER: return "MAIL";
	case RS_RELAY:
	case RS_RECIPIENT: return "RCPT";
	case RS_DATA: return c->s->txn.bdat_used ? "BDAT" : "DATA";
	case RS_END_OF_DATA: return "END-OF-MESSAGE";
	case RS_ETRN:
	case RS__COUNT: break;
	}
	return "ETRN";
}

const char *rcheck_reply_name(struct rcheck *c)
{
	struct smtp_session *s = c->s;

	switch (c->list) {
	case RS_CLIENT: return smtp_client_id(s);
	case RS_HELO: return s->helo_name ? s->helo_name : "";
	case RS_SENDER: return s->txn.env.sender ? s->txn.env.sender : "";
	case RS_RELAY:
	case RS_RECIPIENT: return s->txn.cur_rcpt ? s->txn.cur_rcpt : "";
	case RS_DATA: return "DATA";
	case RS_END_OF_DATA: return "END-OF-MESSAGE";
	case RS_ETRN: return c->etrn ? c->etrn : "";
	case RS__COUNT: break;
	}
	return "";
}

void rcheck_set_etrn_domain(struct rcheck *c, const char *domain)
{
	free(c->etrn);
	c->etrn = mystrdup(domain);
}

const char *rcheck_etrn_domain(struct rcheck *c)
{
	return c->etrn ? c->etrn : "";
}

const char *rcheck_reply_class(struct rcheck *c)
{
	static const char *const classes[RS__COUNT] = {
		"Client host", "Helo command", "Sender address",
		"Recipient address", "Recipient address", "Data command",
		"End-of-data", "Etrn command"
	};

	return c->list < RS__COUNT ? classes[c->list] : "Client host";
}

/* Postfix's log_whatsup(): "NOQUEUE: warn: RCPT from host[addr]: text;
 * from=<s> to=<r> proto=ESMTP helo=<h>". */
static void log_whatsup(struct rcheck *c, const char *what, int code,
			const char *dsn, const char *text)
{
	smtp_log_reject(c->s, what, rcheck_where(c), code, dsn, text);
}

/* ---- replies ------------------------------------------------------------------- */

static void clear_reply(struct rcheck *c)
{
	c->r_code = 0;
	c->r_dsn[0] = 0;
	free(c->r_text);
	c->r_text = NULL;
	c->r_server = false;
}

void rcheck_reply(struct rcheck *c, int code, const char *dsn,
		  const char *fmt, ...)
{
	va_list ap;

	clear_reply(c);
	c->r_code = code;
	if (dsn && strlen(dsn) < sizeof c->r_dsn)
		strcpy(c->r_dsn, dsn);
	va_start(ap, fmt);
	c->r_text = reply_line(fmt, ap);
	va_end(ap);
}

int rcheck_server_error(struct rcheck *c)
{
	rcheck_reply(c, 451, "4.3.5", "Server configuration error");
	c->r_server = true;
	return RV_DEFER;
}

static long long code_param(struct rcheck *c, const char *name, long long dflt)
{
	long long v;

	return cfg_lookup_number(c->s->cfg, name, &v) == 0 ? v : dflt;
}

static bool param_yes(struct rcheck *c, const char *name, bool dflt)
{
	long long v;

	return cfg_lookup_number(c->s->cfg, name, &v) == 0 ? v != 0 : dflt;
}

/* Nesting of classes and actions naming restrictions (Postfix: 100). */
static int depth_limit(struct rcheck *c)
{
	return (int)code_param(c, "sluice_restriction_recursion_limit",
			       RCHECK_MAX_DEPTH);
}

static void defer_set(struct rdefer *d, int code, const char *dsn,
		      const char *text)
{
	if (d->active)
		return;         /* the first reason is kept */
	d->active = true;
	d->code = code;
	snprintf(d->dsn, sizeof d->dsn, "%s", dsn && access_dsn_valid(dsn)
		 ? dsn : "4.7.1");
	free(d->text);
	d->text = mystrdup(text);
}

/*
 * A restriction answered RV_REJECT or RV_DEFER with the reply in r_*:
 * Postfix's smtpd_check_reject().  Returns RV_DUNNO (warn_if_reject:
 * logged only), or the final RV_REJECT / RV_DEFER with the reply in f_*.
 */
static int settle(struct rcheck *c, int v)
{
	int code = c->r_code;
	char dsn[16];
	char *text;
	bool warn = c->warn_level != 0 && !c->r_server;

	if (code == 0)
		code = v == RV_REJECT ? (int)code_param(c, "reject_code", 554)
			: (int)code_param(c, "defer_code", 450);
	if (c->r_text == NULL) {
		if (asprintf(&text, "<%s>: %s rejected: Access denied",
			     rcheck_reply_name(c), rcheck_reply_class(c)) < 0)
			msg_fatal("restrictions: out of memory");
	} else {
		text = c->r_text;
		c->r_text = NULL;
	}
	snprintf(dsn, sizeof dsn, "%s", c->r_dsn);
	if (code < 400 || code > 599) {
		msg_warn("SMTP reply code configuration error: %d %s %s",
			 code, dsn, text);
		code = 450;
		strcpy(dsn, "4.7.1");
		free(text);
		text = mystrdup("Service unavailable");
	}
	if (!access_dsn_valid(dsn) || dsn[0] == '2')
		strcpy(dsn, code >= 500 ? "5.7.1" : "4.7.1");
	clear_reply(c);
	if (!warn && c->dir.active && code >= 500) {
		/* an earlier temporary problem may have prevented an accept */
		c->dir.active = false;
		c->warn_level = 0;
		free(text);
		c->r_code = c->dir.code;
		snprintf(c->r_dsn, sizeof c->r_dsn, "%s", c->dir.dsn);
		c->r_text = mystrdup(c->dir.text);
		return settle(c, RV_DEFER);
	}
	if (param_yes(c, "soft_bounce", false) && code >= 500)
		code -= 100;
	dsn[0] = code >= 500 ? '5' : '4';
	if (warn) {
		log_whatsup(c, "reject_warning", code, dsn, text);
		rcheck_trace(c, "    reject_warning: %d %s %s", code, dsn, text);
		free(text);
		return RV_DUNNO;
	}
	c->f_code = code;
	snprintf(c->f_dsn, sizeof c->f_dsn, "%s", dsn);
	free(c->f_text);
	c->f_text = text;
	return code >= 500 ? RV_REJECT : RV_DEFER;
}

static int defer_if_v(struct rcheck *c, bool permit, int code,
		      const char *dsn, const char *fmt, va_list ap)
{
	char *text = reply_line(fmt, ap);

	if (code == 0)
		code = (int)code_param(c, "access_map_defer_code", 450);
	if (permit && c->warn_level) {
		/* Postfix: under warn_if_reject, defer at once (logged) */
		clear_reply(c);
		c->r_code = code;
		snprintf(c->r_dsn, sizeof c->r_dsn, "%s", dsn ? dsn : "4.7.1");
		c->r_text = text;
		return RV_DEFER;
	}
	defer_set(permit ? &c->dip : &c->dir, code, dsn, text);
	rcheck_trace(c, "    %s: %d %s %s", permit ? "defer_if_permit"
		     : "defer_if_reject", code, dsn ? dsn : "4.7.1", text);
	free(text);
	return RV_DUNNO;
}

int rcheck_defer_if_permit(struct rcheck *c, int code, const char *dsn,
			   const char *fmt, ...)
{
	va_list ap;
	int v;

	va_start(ap, fmt);
	v = defer_if_v(c, true, code, dsn, fmt, ap);
	va_end(ap);
	return v;
}

int rcheck_defer_if_reject(struct rcheck *c, int code, const char *dsn,
			   const char *fmt, ...)
{
	va_list ap;
	int v;

	va_start(ap, fmt);
	v = defer_if_v(c, false, code, dsn, fmt, ap);
	va_end(ap);
	return v;
}

/* ---- frames ---------------------------------------------------------------- */

static void push(struct rcheck *c, const struct restriction_list *l,
		 struct restriction_list *owned)
{
	if (c->depth == c->frcap) {
		c->frcap = c->frcap ? 2 * c->frcap : 4;
		c->fr = realloc(c->fr, (size_t)c->frcap * sizeof *c->fr);
		if (c->fr == NULL)
			msg_fatal("restrictions: out of memory");
	}
	c->fr[c->depth++] = (struct rframe){ l, owned, 0 };
}

static void pop(struct rcheck *c)
{
	struct rframe *f = &c->fr[--c->depth];

	restriction_list_free(f->owned);
	f->owned = NULL;
}

/* The top frame ends with v (settled): so does the item that opened it,
 * and, unless v is DUNNO, the frame holding that item. */
static void frame_end(struct rcheck *c, int v)
{
	for (;;) {
		pop(c);
		if (c->depth == 0) {
			c->status = v;
			c->warn_level = 0;
			return;
		}
		if (c->warn_level >= c->depth)
			c->warn_level = 0;
		if (v == RV_DUNNO)
			return;
	}
}

/* The restriction at the top frame answered v (not yet settled). */
static void item_done(struct rcheck *c, int v)
{
	if (v < RV_DUNNO || v > RV_DEFER) {
		msg_warn("restriction %s answered the invalid verdict %d",
			 c->cur ? c->cur->name : "?", v);
		v = rcheck_server_error(c);
	}
	if (v == RV_REJECT || v == RV_DEFER)
		v = settle(c, v);
	else
		clear_reply(c);
	if (c->cur)
		rcheck_trace(c, "    -> %s", v == RV_OK ? "OK" : v == RV_DUNNO
			     ? "DUNNO" : v == RV_REJECT ? "REJECT" : "DEFER");
	c->cur = NULL;
	if (c->warn_level >= c->depth)
		c->warn_level = 0;
	if (v != RV_DUNNO)
		frame_end(c, v);
}

/* Call one restriction.  Returns its verdict, RV_NESTED, or RV_PENDING
 * (then c->pending is set). */
static int call(struct rcheck *c, const struct ritem *it)
{
	int v;

	c->cur = it;
	clear_reply(c);
	rcheck_trace(c, "  %s%s%s", it->name, it->arg ? " " : "",
		     it->arg ? it->arg : "");
	if (it->def->eval == NULL) {
		msg_warn("restriction %s: no plugin in this process provides "
			 "it (declared by plugin %s)", it->name,
			 restriction_owner(it->name) ? restriction_owner(it->name)
			 : "?");
		return rcheck_server_error(c);
	}
	c->in_eval = true;
	c->early = false;
	v = it->def->eval(c, it->arg, it->def->data);
	c->in_eval = false;
	if (v == RV_PENDING) {
		if (!c->early) {
			c->pending = true;
			return RV_PENDING;
		}
		v = c->early_verdict;
		c->early = false;
	} else if (c->early) {
		msg_warn("restriction %s: rcheck_resume() during its evaluation, "
			 "which then answered %d; the resume is ignored",
			 it->name, v);
		c->early = false;
	}
	c->cancel = NULL;
	return v;
}

/* Walk the frames until they are done (false) or a restriction waits. */
static bool step(struct rcheck *c)
{
	while (c->depth > 0) {
		struct rframe *f = &c->fr[c->depth - 1];
		const struct restriction_list *cl;
		const struct ritem *it;
		int v;

		if (c->s->txn.discard || (c->dip.active && c->dir.active)
		    || f->next >= f->l->n) {
			frame_end(c, RV_DUNNO);
			continue;
		}
		it = &f->l->v[f->next++];
		switch (it->kind) {
		case RI_WARN_IF_REJECT:
			if (c->warn_level == 0)
				c->warn_level = c->depth;
			rcheck_trace(c, "  warn_if_reject");
			continue;
		case RI_CLASS:
			rcheck_trace(c, "  class %s", it->name);
			cl = restriction_class_list(c->s->cfg, it->name);
			if (cl == NULL || c->depth >= depth_limit(c)) {
				if (cl != NULL)
					msg_warn("restriction class %s causes "
						 "unreasonable recursion", it->name);
				c->cur = it;
				item_done(c, rcheck_server_error(c));
			} else {
				push(c, cl, NULL);
			}
			continue;
		case RI_RESTRICTION:
			break;
		}
		if ((v = call(c, it)) == RV_PENDING)
			return true;
		if (v != RV_NESTED)
			item_done(c, v);
	}
	return false;
}

void rcheck_resume(struct rcheck *c, int verdict)
{
	if (c->in_eval) {
		if (c->early)
			msg_warn("rcheck_resume() called twice by one restriction; "
				 "the second is ignored");
		else
			c->early_verdict = verdict;
		c->early = true;
		return;
	}
	if (!c->pending) {
		msg_warn("rcheck_resume() with no restriction pending; ignored");
		return;
	}
	c->pending = false;
	c->cancel = NULL;
	if (verdict != RV_NESTED)
		item_done(c, verdict);
	drive(c);
}

/* ---- access(5) actions ---------------------------------------------------- */

/* Postfix's can_delegate_action()/not_in_client_helo(): actions on the
 * message need a transaction (smtpd_delay_reject = no puts client and
 * helo lists outside one). */
static bool in_transaction(struct rcheck *c, const char *origin,
			   const char *action)
{
	if (c->s->txn.env.sender != NULL)
		return true;
	msg_warn("%s: with smtpd_delay_reject=no, action %s is always skipped "
		 "in client or helo restrictions", origin, action);
	return false;
}

static void add_string(char ***v, int *n, const char *s)
{
	if ((*v = realloc(*v, (size_t)(*n + 1) * sizeof **v)) == NULL)
		msg_fatal("restrictions: out of memory");
	(*v)[(*n)++] = mystrdup(s);
}

static bool header_syntax(const char *h)
{
	const char *colon = strchr(h, ':');

	if (colon == NULL || colon == h)
		return false;
	for (const char *p = h; p < colon; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

/* The actions that change the message.  Returns the verdict. */
static int message_action(struct rcheck *c, const struct access_action *a,
			  const char *name, const char *reply_class,
			  const char *origin)
{
	struct smtp_txn *t = &c->s->txn;
	char line[1024];

	if (!in_transaction(c, origin, access_kind_name(a->kind)))
		return RV_DUNNO;
	switch (a->kind) {
	case AA_HOLD:
		if (t->hold)
			return RV_DUNNO;    /* held already */
		snprintf(line, sizeof line, "<%s>: %s %s", name, reply_class,
			 *a->text ? a->text : "triggers HOLD action");
		log_whatsup(c, "hold", 0, NULL, line);
		t->hold = true;
		t->hold_logged = true;
		free(t->hold_reason);
		t->hold_reason = mystrdup(line);
		return RV_DUNNO;
	case AA_DISCARD:
		snprintf(line, sizeof line, "<%s>: %s %s", name, reply_class,
			 *a->text ? a->text : "triggers DISCARD action");
		log_whatsup(c, "discard", 0, NULL, line);
		t->discard = true;
		t->discard_logged = true;
		return RV_OK;
	case AA_FILTER:
		if (*a->text == 0 || strchr(a->text, ':') == NULL) {
			msg_warn("%s: entry \"%s\" requires transport:destination",
				 origin, a->value);
			return RV_DUNNO;
		}
		snprintf(line, sizeof line, "<%s>: %s triggers FILTER %s", name,
			 reply_class, a->text);
		log_whatsup(c, "filter", 0, NULL, line);
		free(t->env.filter);
		t->env.filter = mystrdup(a->text);
		return RV_DUNNO;
	case AA_REDIRECT:
	case AA_BCC:
		if (strchr(a->text, '@') == NULL) {
			msg_warn("%s: entry \"%s\" requires user@domain target",
				 origin, a->value);
			return RV_DUNNO;
		}
		snprintf(line, sizeof line, "<%s>: %s triggers %s %s", name,
			 reply_class, a->kind == AA_BCC ? "BCC" : "REDIRECT",
			 a->text);
		log_whatsup(c, a->kind == AA_BCC ? "bcc" : "redirect", 0, NULL,
			    line);
		if (a->kind == AA_BCC) {
			add_string(&t->bcc, &t->nbcc, a->text);
		} else {
			free(t->redirect);
			t->redirect = mystrdup(a->text);
		}
		return RV_DUNNO;
	case AA_PREPEND:
		if (c->stage == RS_END_OF_DATA) {
			msg_warn("%s: action PREPEND must be used before "
				 "smtpd_end_of_data_restrictions", origin);
			return RV_DUNNO;
		}
		if (!header_syntax(a->text)) {
			msg_warn("%s: entry \"%s\" requires header: text", origin,
				 a->value);
			return RV_DUNNO;
		}
		add_string(&t->prepend, &t->nprepend, a->text);
		return RV_DUNNO;
	default:
		break;
	}
	return RV_DUNNO;
}

/* A value naming restrictions or classes: evaluated as a nested list. */
static int nested_action(struct rcheck *c, const struct access_action *a,
			 const char *origin)
{
	struct restriction_list *l;
	char err[512];

	if (c->depth >= depth_limit(c)) {
		msg_warn("%s: entry %s causes unreasonable recursion", origin,
			 a->value);
		return rcheck_server_error(c);
	}
	l = restriction_list_parse(c->s->cfg, origin, a->value, err, sizeof err);
	if (l == NULL) {
		msg_warn("%s: %s", origin, err);
		return rcheck_server_error(c);
	}
	if (l->n == 0) {
		msg_warn("%s: entry has an empty value", origin);
		restriction_list_free(l);
		return RV_OK;
	}
	push(c, l, l);
	return RV_NESTED;
}

int rcheck_action(struct rcheck *c, const char *action, const char *name,
		  const char *reply_class, const char *origin)
{
	struct access_action a;
	char dsn[16];

	access_action_parse(action, &a);
	rcheck_trace(c, "    %s: %s", origin, action);
	if (*a.dsn)
		access_dsn_fix(a.dsn, reply_class);
	switch (a.kind) {
	case AA_OK:
		return RV_OK;
	case AA_DUNNO:
		return RV_DUNNO;
	case AA_REJECT:
	case AA_DEFER:
	case AA_NUMERIC:
		if (a.kind == AA_NUMERIC)
			snprintf(dsn, sizeof dsn, "%c.7.1", a.code >= 500 ? '5' : '4');
		else
			strcpy(dsn, a.kind == AA_REJECT ? "5.7.1" : "4.7.1");
		rcheck_reply(c, a.kind == AA_NUMERIC ? a.code
			     : a.kind == AA_REJECT
			     ? (int)code_param(c, "access_map_reject_code", 554)
			     : (int)code_param(c, "access_map_defer_code", 450),
			     *a.dsn ? a.dsn : dsn, "<%s>: %s rejected: %s", name,
			     reply_class, *a.text ? a.text : "Access denied");
		return a.kind == AA_DEFER || (a.kind == AA_NUMERIC && a.code < 500)
			? RV_DEFER : RV_REJECT;
	case AA_DEFER_IF_PERMIT:
	case AA_DEFER_IF_REJECT:
		return (a.kind == AA_DEFER_IF_PERMIT ? rcheck_defer_if_permit
			: rcheck_defer_if_reject)(c,
			(int)code_param(c, "access_map_defer_code", 450),
			*a.dsn ? a.dsn : "4.7.1", "<%s>: %s rejected: %s", name,
			reply_class, *a.text ? a.text : "Service unavailable");
	case AA_WARN:
	case AA_INFO:
		log_whatsup(c, a.kind == AA_WARN ? "warn" : "info", 0, NULL, a.text);
		return RV_DUNNO;
	case AA_HOLD:
	case AA_DISCARD:
	case AA_FILTER:
	case AA_REDIRECT:
	case AA_BCC:
	case AA_PREPEND:
		return message_action(c, &a, name, reply_class, origin);
	case AA_TABLE:
		msg_warn("%s has entry with lookup table: %s", origin, action);
		msg_warn("do not specify lookup tables inside SMTPD access maps");
		msg_warn("define a restriction class and specify its name instead.");
		return rcheck_server_error(c);
	case AA_RESTRICTIONS:
		break;
	}
	return nested_action(c, &a, origin);
}

/* ---- the stage program ---------------------------------------------------- */

static void reset_modifiers(struct rcheck *c)
{
	c->warn_level = 0;
	c->dir.active = false;
}

static void begin_list(struct rcheck *c, enum rstage st)
{
	const struct restriction_list *l = restriction_stage_list(c->s->cfg, st);

	c->list = st;
	c->op_ran = true;
	if (l == NULL) {
		c->status = settle(c, rcheck_server_error(c));
		return;
	}
	rcheck_trace(c, "%s:", restriction_stage_param(st));
	if (l->n > 0)
		push(c, l, NULL);
}

static int eval_unlisted_recipient(struct rcheck *c, const char *arg, void *d)
{
	return restriction_implicit_unlisted(c, true);
}

static int eval_unlisted_sender(struct rcheck *c, const char *arg, void *d)
{
	return restriction_implicit_unlisted(c, false);
}

static const struct restriction_def unlisted_defs[2] = {
	{ "smtpd_reject_unlisted_recipient", 0, eval_unlisted_recipient, NULL },
	{ "smtpd_reject_unlisted_sender", 0, eval_unlisted_sender, NULL },
};
static struct ritem unlisted_items[2] = {
	{ RI_RESTRICTION, &unlisted_defs[0], "smtpd_reject_unlisted_recipient", NULL },
	{ RI_RESTRICTION, &unlisted_defs[1], "smtpd_reject_unlisted_sender", NULL },
};
static const struct restriction_list unlisted_lists[2] = {
	{ "smtpd_reject_unlisted_recipient", &unlisted_items[0], 1 },
	{ "smtpd_reject_unlisted_sender", &unlisted_items[1], 1 },
};

static void begin_unlisted(struct rcheck *c, bool recipient)
{
	struct smtp_session *s = c->s;

	if (s->txn.discard)
		return;
	if (recipient) {
		if (c->unlisted_rcpt_done
		    || !param_yes(c, "smtpd_reject_unlisted_recipient", true))
			return;
		c->list = RS_RECIPIENT;
	} else {
		if (c->unlisted_sender_done || s->txn.env.sender == NULL
		    || *s->txn.env.sender == 0
		    || !param_yes(c, "smtpd_reject_unlisted_sender", false))
			return;
		c->list = RS_SENDER;
	}
	push(c, &unlisted_lists[recipient ? 0 : 1], NULL);
}

static void op_begin(struct rcheck *c)
{
	struct smtp_session *s = c->s;

	c->op_ran = false;
	c->status = RV_DUNNO;
	switch (c->ops[c->iop]) {
	case OP_CLIENT:
		c->dip.active = false;
		reset_modifiers(c);
		begin_list(c, RS_CLIENT);
		break;
	case OP_HELO:
		if (s->helo_name == NULL)
			break;
		c->dip.active = c->dip_client;
		reset_modifiers(c);
		begin_list(c, RS_HELO);
		break;
	case OP_SENDER:
		if (s->txn.env.sender == NULL)
			break;
		c->dip.active = c->dip_client || c->dip_helo;
		c->unlisted_sender_done = false;
		reset_modifiers(c);
		begin_list(c, RS_SENDER);
		break;
	case OP_UNLISTED_SENDER:
		begin_unlisted(c, false);
		break;
	case OP_RELAY:
		c->dip.active = c->dip_sender;
		c->unlisted_rcpt_done = false;
		reset_modifiers(c);
		begin_list(c, RS_RELAY);
		break;
	case OP_RECIPIENT:
		begin_list(c, RS_RECIPIENT);
		break;
	case OP_DEFER_IF_PERMIT:
		if (!c->dip.active)
			break;
		c->r_code = c->dip.code;
		snprintf(c->r_dsn, sizeof c->r_dsn, "%s", c->dip.dsn);
		c->r_text = mystrdup(c->dip.text);
		c->status = settle(c, RV_DEFER);
		break;
	case OP_UNLISTED_RECIPIENT:
		begin_unlisted(c, true);
		break;
	case OP_DATA:
	case OP_END_OF_DATA:
		c->dip.active = false;
		reset_modifiers(c);
		begin_list(c, c->ops[c->iop] == OP_DATA ? RS_DATA : RS_END_OF_DATA);
		break;
	case OP_ETRN:
		c->dip.active = c->dip_client || c->dip_helo;
		reset_modifiers(c);
		begin_list(c, RS_ETRN);
		break;
	case OP_LIST:
		c->dip.active = false;
		reset_modifiers(c);
		c->op_ran = true;
		rcheck_trace(c, "%s:", c->xlist->param);
		if (c->xlist->n > 0)
			push(c, c->xlist, NULL);
		break;
	}
}

static void op_end(struct rcheck *c)
{
	if (!c->op_ran)
		return;
	switch (c->ops[c->iop]) {
	case OP_CLIENT: c->dip_client = c->dip.active; break;
	case OP_HELO: c->dip_helo = c->dip.active; break;
	case OP_SENDER: c->dip_sender = c->dip.active; break;
	default: break;
	}
}

static void finish(struct rcheck *c)
{
	struct smtp_session *s = c->s;
	rcheck_done_fn done = c->done;
	int v = c->status;

	while (c->depth > 0)
		pop(c);
	c->running = false;
	c->done = NULL;
	c->cur = NULL;
	if (v == RV_REJECT || v == RV_DEFER) {
		s->reply_code = c->f_code;
		snprintf(s->reply_dsn, sizeof s->reply_dsn, "%s", c->f_dsn);
		free(s->reply_text);
		s->reply_text = c->f_text;
		c->f_text = NULL;
		rcheck_trace(c, "result: %d %s %s", s->reply_code, s->reply_dsn,
			     s->reply_text);
	} else {
		rcheck_trace(c, "result: %s", v == RV_OK ? "OK" : "DUNNO");
	}
	done(s, v);             /* last: may start the next stage or free s */
}

static void drive(struct rcheck *c)
{
	for (;;) {
		if (c->depth > 0 && step(c))
			return;
		if (c->op_started) {
			op_end(c);
			c->op_started = false;
			if (c->status == RV_REJECT || c->status == RV_DEFER) {
				finish(c);
				return;
			}
			c->iop++;
		}
		if (c->iop >= c->nops) {
			finish(c);
			return;
		}
		c->op_started = true;
		op_begin(c);
	}
}

static void add_op(struct rcheck *c, enum rop op)
{
	if (c->nops < MAX_OPS)
		c->ops[c->nops++] = op;
}

/* The operations of a stage (smtpd_check.c's smtpd_check_* drivers). */
static void plan(struct rcheck *c, enum rstage stage)
{
	struct smtp_session *s = c->s;
	bool delay = param_yes(c, "smtpd_delay_reject", true);

	c->nops = 0;
	switch (stage) {
	case RS_CLIENT:
		if (!delay)
			add_op(c, OP_CLIENT);
		break;
	case RS_HELO:
		if (!delay)
			add_op(c, OP_HELO);
		break;
	case RS_SENDER:
		if (!delay) {
			add_op(c, OP_SENDER);
			add_op(c, OP_UNLISTED_SENDER);
		}
		break;
	case RS_RELAY:
	case RS_RECIPIENT:
		/* RFC 5321: "postmaster" without a domain is always accepted */
		if (s->txn.cur_rcpt && strcasecmp(s->txn.cur_rcpt, "postmaster") == 0)
			break;
		if (delay) {
			add_op(c, OP_CLIENT);
			add_op(c, OP_HELO);
			add_op(c, OP_SENDER);
			add_op(c, OP_UNLISTED_SENDER);
		}
		add_op(c, OP_RELAY);
		add_op(c, OP_RECIPIENT);
		add_op(c, OP_DEFER_IF_PERMIT);
		add_op(c, OP_UNLISTED_RECIPIENT);
		break;
	case RS_DATA:
		add_op(c, OP_DATA);
		add_op(c, OP_DEFER_IF_PERMIT);
		break;
	case RS_END_OF_DATA:
		add_op(c, OP_END_OF_DATA);
		add_op(c, OP_DEFER_IF_PERMIT);
		break;
	case RS_ETRN:
		if (delay) {
			add_op(c, OP_CLIENT);
			add_op(c, OP_HELO);
		}
		add_op(c, OP_ETRN);
		add_op(c, OP_DEFER_IF_PERMIT);
		break;
	case RS__COUNT:
		break;
	}
}

void rcheck_stage(struct smtp_session *s, enum rstage stage,
		  rcheck_done_fn done)
{
	struct rcheck *c;

	/* no configuration (a unit test's session): no lists.  Nothing to
	 * evaluate before RCPT with smtpd_delay_reject = yes: no state for
	 * the session (most never get further) */
	if (s->cfg == NULL) {
		done(s, RV_DUNNO);
		return;
	}
	if ((stage == RS_CLIENT || stage == RS_HELO || stage == RS_SENDER)
	    && s->rstate == NULL && cfg_bool(s->cfg, "smtpd_delay_reject")) {
		done(s, RV_DUNNO);
		return;
	}
	c = rcheck_of(s);
	if (c->running)
		msg_panic("rcheck_stage: a stage is already being evaluated");
	c->running = true;
	c->done = done;
	c->stage = stage;
	c->list = stage;
	c->iop = 0;
	c->op_started = false;
	c->status = RV_DUNNO;
	c->warn_level = 0;
	c->depth = 0;
	plan(c, stage);
	drive(c);
}

/* One list outside the stage program (sluice-policyd): evaluated as the
 * list of `as` (its reply names and classes).  A DEFER_IF_PERMIT or
 * DEFER_IF_REJECT it raised stays open for rcheck_open_defer(). */
void rcheck_list(struct smtp_session *s, enum rstage as,
		 const struct restriction_list *l, rcheck_done_fn done)
{
	struct rcheck *c = rcheck_of(s);

	if (c->running)
		msg_panic("rcheck_list: a stage is already being evaluated");
	c->running = true;
	c->done = done;
	c->stage = as;
	c->list = as;
	c->iop = 0;
	c->op_started = false;
	c->status = RV_DUNNO;
	c->warn_level = 0;
	c->depth = 0;
	c->xlist = l;
	c->nops = 0;
	add_op(c, OP_LIST);
	drive(c);
}

bool rcheck_open_defer(struct smtp_session *s, bool permit, int *code,
		       const char **dsn, const char **text)
{
	struct rdefer *d;

	if (s->rstate == NULL)
		return false;
	d = permit ? &s->rstate->c.dip : &s->rstate->c.dir;
	if (!d->active)
		return false;
	*code = d->code;
	*dsn = d->dsn;
	*text = d->text ? d->text : "";
	return true;
}

void rcheck_cancel(struct smtp_session *s)
{
	struct rcheck *c;

	if (s->rstate == NULL)
		return;
	c = &s->rstate->c;
	if (c->pending && c->cancel)
		c->cancel(c->cancel_arg);
	c->cancel = NULL;
	c->pending = false;
	while (c->depth > 0)
		pop(c);
	c->running = false;
	c->done = NULL;
	c->cur = NULL;
	clear_reply(c);
}

void rcheck_session_free(struct smtp_session *s)
{
	struct rcheck *c;

	if (s->rstate == NULL)
		return;
	rcheck_cancel(s);
	c = &s->rstate->c;
	free(c->dip.text);
	free(c->dir.text);
	free(c->f_text);
	free(c->fr);
	free(c->etrn);
	free(s->rstate);
	s->rstate = NULL;
}

/* ---- a stage without a socket (sluice explain) ------------------------- */

static void explain_done(struct smtp_session *s, int verdict)
{
	struct rcheck *c = rcheck_of(s);

	c->x_done = true;
	c->x_verdict = verdict;
}

int rcheck_explain_stage(struct smtp_session *s, enum rstage stage,
			 struct event_base *base)
{
	struct rcheck *c = rcheck_of(s);

	c->x_done = false;
	rcheck_stage(s, stage, explain_done);
	while (!c->x_done && base != NULL
	       && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	if (!c->x_done) {
		rcheck_cancel(s);
		return RV_DEFER;
	}
	return c->x_verdict;
}
