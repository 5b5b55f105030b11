/*
 * restriction_dns.c - the DNS lookups of the built-in restrictions, in
 * the worker's event loop (dns.c, c-ares): the check answers RV_PENDING,
 * the session waits, the worker does not, and the answer comes back
 * through rcheck_resume().
 *
 * A job is a short sequence of lookups, asked one after the other:
 *   hostname   A, AAAA, then MX (Postfix's reject_unknown_hostname: any
 *              of them, a null MX included, makes the name known);
 *   mailhost   MX, then A, AAAA (Postfix's reject_unknown_mailhost: a
 *              null MX stops at once and is reported as such);
 *   client     PTR of the client address, then (unless only the reverse
 *              name is wanted) the A and AAAA records of that name, one
 *              of which must be the client's (as peer_name.c does).
 * The first lookup that finds something ends the job.  Otherwise it is a
 * temporary failure when any lookup failed temporarily (SERVFAIL, no
 * answer), as Postfix's dns_lookup_l(), else "not found".
 *
 * Lookups use DNS only (no /etc/hosts, no search list), as Postfix's
 * dns_lookup() for these checks.  The client job asks again what the
 * session's peer_name.c asked (which reads /etc/hosts first and cannot
 * tell a server failure from "no name"): it runs only for a client
 * without a name, to learn whether that is for good.
 *
 * A whole job is bounded by sluice_smtpd_dns_timeout: past it, the
 * outstanding query is forgotten and the job is a temporary failure, so
 * a domain whose servers never answer costs the client that long, not
 * c-ares' retries over every lookup.  If the session ends or its
 * transaction resets first, the engine cancels the job
 * (rcheck_on_cancel): the query is forgotten and nothing is resumed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "restriction_builtin.h"
#include "smtp_session.h"

#define JOB_STEPS_MAX	3
#define DNS_NAME_MAX	256

enum step { ST_A, ST_AAAA, ST_MX, ST_PTR, ST_FWD_A, ST_FWD_AAAA };

enum answer {
	ANS_NONE = 0,   /* no answer yet */
	ANS_FOUND, ANS_NOTFOUND, ANS_NULLMX, ANS_TEMPFAIL
};

struct rb_dns_job {
	struct rcheck *c;
	rb_dns_done_fn done;
	void *arg;
	enum step steps[JOB_STEPS_MAX];
	int nsteps, at;             /* the lookup being asked */
	bool mailhost;              /* a null MX is an answer of its own */
	char name[DNS_NAME_MAX];    /* the name asked about; PTR: the answer */
	char addr[64];              /* client jobs: its address */
	struct dns_req *req;        /* outstanding lookup, or NULL */
	enum answer answer;         /* the last lookup's, not yet consumed */
	bool soft;                  /* a lookup failed temporarily */
	bool final;                 /* result below is the job's answer */
	enum rb_dns_result result;
	bool busy;                  /* inside run(): answers wait for it */
	bool starting;              /* inside the rb_dns_* call */
	struct event *timer;
};

static void run(struct rb_dns_job *j);

/* ---- answers -------------------------------------------------------------- */

static void answered(struct rb_dns_job *j, enum answer a)
{
	j->req = NULL;
	j->answer = a;
	if (!j->busy)
		run(j);
}

static enum answer from_status(enum dns_status st)
{
	return st == DNS_OK ? ANS_FOUND : st == DNS_TEMPFAIL ? ANS_TEMPFAIL
							     : ANS_NOTFOUND;
}

static void rr_answer(void *arg, enum dns_status st, char **v, int n)
{
	struct rb_dns_job *j = arg;
	enum step step = j->steps[j->at];
	enum answer a = st == DNS_OK && n == 0 ? ANS_NOTFOUND : from_status(st);

	/* forward confirmation: found means "leads back to the client" */
	if (a == ANS_FOUND && (step == ST_FWD_A || step == ST_FWD_AAAA)) {
		a = ANS_NOTFOUND;
		for (int i = 0; i < n; i++)
			if (strcmp(v[i], j->addr) == 0)
				a = ANS_FOUND;
	}
	answered(j, a);
}

static void mx_answer(void *arg, enum dns_mx_status st, const struct dns_mx *mx,
		      int n)
{
	enum answer a = ANS_NOTFOUND;

	(void)mx, (void)n;
	if (st == DNS_MX_OK)
		a = ANS_FOUND;
	else if (st == DNS_MX_NULL)
		a = ANS_NULLMX;
	else if (st == DNS_MX_TEMPFAIL)
		a = ANS_TEMPFAIL;
	answered(arg, a);
}

static void ptr_answer(void *arg, enum dns_status st, const char *name)
{
	struct rb_dns_job *j = arg;

	if (st == DNS_OK && (name == NULL || strlen(name) >= sizeof j->name))
		st = DNS_NOTFOUND;
	if (st == DNS_OK)
		snprintf(j->name, sizeof j->name, "%s", name);
	answered(j, from_status(st));
}

/* ---- the sequence ---------------------------------------------------------- */

static struct dns_req *submit(struct rb_dns_job *j)
{
	switch (j->steps[j->at]) {
	case ST_A:
	case ST_FWD_A:
		return dns_lookup_rr(j->name, DNS_RR_A, rr_answer, j);
	case ST_AAAA:
	case ST_FWD_AAAA:
		return dns_lookup_rr(j->name, DNS_RR_AAAA, rr_answer, j);
	case ST_MX:
		return dns_lookup_mx(j->name, mx_answer, j);
	default:
		return dns_lookup_ptr_dns(j->addr, ptr_answer, j);
	}
}

static void finish(struct rb_dns_job *j, enum rb_dns_result res)
{
	j->final = true;
	j->result = res;
}

/* Take the last answer: end the job, or move to the next lookup. */
static void advance(struct rb_dns_job *j)
{
	enum answer a = j->answer;

	j->answer = ANS_NONE;
	if (a == ANS_NULLMX) {
		finish(j, j->mailhost ? RB_DNS_NULLMX : RB_DNS_FOUND);
		return;
	}
	if (j->steps[j->at] == ST_PTR && a != ANS_FOUND) {
		finish(j, a == ANS_TEMPFAIL ? RB_DNS_TEMPFAIL : RB_DNS_NOTFOUND);
		return;
	}
	if (a == ANS_FOUND && j->steps[j->at] != ST_PTR) {
		finish(j, RB_DNS_FOUND);
		return;
	}
	j->soft |= a == ANS_TEMPFAIL;
	if (++j->at >= j->nsteps)
		finish(j, a == ANS_FOUND ? RB_DNS_FOUND
		       : j->soft ? RB_DNS_TEMPFAIL : RB_DNS_NOTFOUND);
}

static void job_free(struct rb_dns_job *j)
{
	if (j->timer)
		event_free(j->timer);
	dns_cancel(j->req);
	free(j);
}

/* The job's answer goes back to the engine (from the event loop). */
static void complete(struct rb_dns_job *j)
{
	struct rcheck *c = j->c;
	int verdict = j->done(c, j->result, j->arg);

	job_free(j);
	rcheck_resume(c, verdict);
}

/* Ask lookups until one is outstanding or the job has its answer.  An
 * answer that comes during submit() (dns.c may answer at once) is taken
 * by this loop, not by a nested run(). */
static void run(struct rb_dns_job *j)
{
	j->busy = true;
	while (!j->final) {
		if (j->answer != ANS_NONE) {
			advance(j);
		} else if (j->req == NULL) {
			struct dns_req *r = submit(j);

			if (j->answer == ANS_NONE)
				j->req = r;
		} else {
			break;
		}
	}
	j->busy = false;
	if (j->final && !j->starting)
		complete(j);
}

static void timed_out(evutil_socket_t fd, short what, void *arg)
{
	struct rb_dns_job *j = arg;

	(void)fd, (void)what;
	rcheck_trace(j->c, "%s: no DNS answer within sluice_smtpd_dns_timeout",
		     j->name[0] ? j->name : j->addr);
	dns_cancel(j->req);
	j->req = NULL;
	finish(j, RB_DNS_TEMPFAIL);
	complete(j);
}

static void cancelled(void *arg)
{
	job_free(arg);
}

static void arm_timer(struct rb_dns_job *j)
{
	struct smtp_session *s = rcheck_session(j->c);
	long long secs = 10;
	struct timeval tv;

	if (s->base == NULL)
		return;
	(void)cfg_lookup_number(rcheck_config(j->c), "sluice_smtpd_dns_timeout", &secs);
	if (secs <= 0)
		return;
	if ((j->timer = evtimer_new(s->base, timed_out, j)) == NULL)
		msg_fatal("out of memory");
	tv.tv_sec = (time_t)secs;
	tv.tv_usec = 0;
	evtimer_add(j->timer, &tv);
}

/* Run the job: its answer now, or RV_PENDING and rcheck_resume() later. */
static int start(struct rb_dns_job *j)
{
	struct rcheck *c = j->c;

	j->starting = true;
	run(j);
	j->starting = false;
	if (j->final) {
		enum rb_dns_result res = j->result;
		rb_dns_done_fn done = j->done;
		void *arg = j->arg;

		job_free(j);
		return done(c, res, arg);
	}
	arm_timer(j);
	rcheck_on_cancel(c, cancelled, j);
	return RV_PENDING;
}

static struct rb_dns_job *new_job(struct rcheck *c, const enum step *steps,
				  int nsteps, rb_dns_done_fn done, void *arg)
{
	struct rb_dns_job *j = calloc(1, sizeof *j);

	if (j == NULL)
		msg_fatal("out of memory");
	j->c = c;
	j->done = done;
	j->arg = arg;
	memcpy(j->steps, steps, (size_t)nsteps * sizeof *steps);
	j->nsteps = nsteps;
	return j;
}

/* ---- the jobs ----------------------------------------------------------------- */

/* Postfix's dns_lookup() refuses a name that is not a valid host name
 * ("not found", no query).  A UTF-8 (SMTPUTF8) name is not asked either:
 * without IDNA conversion the answer would mean nothing, so the check
 * says nothing (found). */
static bool askable(struct rcheck *c, const char *name, enum rb_dns_result *res)
{
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p >= 0x80) {
			rcheck_trace(c, "%s: a UTF-8 name: not looked up", name);
			*res = RB_DNS_FOUND;
			return false;
		}
	if (strlen(name) >= DNS_NAME_MAX || !rb_valid_hostname(name)) {
		rcheck_trace(c, "%s: not a valid host name: not found", name);
		*res = RB_DNS_NOTFOUND;
		return false;
	}
	return true;
}

/* The lookups of a host name, in the order of steps; a mailhost job
 * takes a null MX for an answer of its own. */
static int ask_name(struct rcheck *c, const char *name, const enum step *steps,
		    bool mailhost, rb_dns_done_fn done, void *arg)
{
	enum rb_dns_result res;
	struct rb_dns_job *j;

	if (!askable(c, name, &res))
		return done(c, res, arg);
	j = new_job(c, steps, JOB_STEPS_MAX, done, arg);
	snprintf(j->name, sizeof j->name, "%s", name);
	j->mailhost = mailhost;
	return start(j);
}

int rb_dns_hostname(struct rcheck *c, const char *name, rb_dns_done_fn done,
		    void *arg)
{
	static const enum step steps[] = { ST_A, ST_AAAA, ST_MX };

	return ask_name(c, name, steps, false, done, arg);
}

int rb_dns_mailhost(struct rcheck *c, const char *name, rb_dns_done_fn done,
		    void *arg)
{
	static const enum step steps[] = { ST_MX, ST_A, ST_AAAA };

	return ask_name(c, name, steps, true, done, arg);
}

int rb_dns_client(struct rcheck *c, const char *addr, bool reverse_only,
		  rb_dns_done_fn done, void *arg)
{
	static const enum step steps[] = { ST_PTR, ST_FWD_A, ST_FWD_AAAA };
	struct rb_dns_job *j = new_job(c, steps, reverse_only ? 1 : JOB_STEPS_MAX,
					   done, arg);

	snprintf(j->addr, sizeof j->addr, "%s", addr);
	return start(j);
}
