/*
 * qmgr_log.c - the queue manager's log lines about messages, in
 * Postfix's shape, so pflogsumm and log exporters read them:
 *
 *   sluice/qmgr[pid]: ID: from=<a@example.org>, size=312, nrcpt=1 (queue active)
 *   sluice/smtp[pid]: ID: to=<b@example.net>, relay=mx.example.net[192.0.2.1]:25,
 *       delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok)
 *   sluice/qmgr[pid]: ID: removed
 *
 * A delivery line is written under the program name of the transport
 * that did the work ("sluice/smtp", "sluice/local", or with the
 * transport's syslog_name, "postfix/relay/smtp"), as Postfix's delivery
 * agents write them; the queue manager's own lines stay "sluice/qmgr".
 *
 * delays=a/b/c/d are Postfix's: a before the queue manager (arrival to
 * active/), b in the queue manager (active/ to the agent), c connection
 * set-up, d transmission.  Values keep at most
 * delay_logging_resolution_limit decimals, fewer as they grow, and a
 * value below the resolution reads "0".
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "qmgr.h"

/* b - a in seconds, never negative; unset times count as `a`. */
static double span(const struct timeval *a, const struct timeval *b)
{
	double d;

	if (!timerisset(a) || !timerisset(b))
		return 0;
	d = (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_usec - a->tv_usec) / 1e6;
	return d < 0 ? 0 : d;
}

/* Postfix's pretty delays: "0.16", "1.2", "16", "0". */
static void fmt_delay(char *buf, size_t len, double d, int digits)
{
	char *p;

	if (d >= 10)
		digits = 0;
	else if (d >= 1 && digits > 1)
		digits = 1;
	snprintf(buf, len, "%.*f", digits, d);
	if (strchr(buf, '.') == NULL)
		return;
	p = buf + strlen(buf) - 1;
	while (*p == '0')
		*p-- = 0;
	if (*p == '.')
		*p = 0;
}

static void fmt_delays(char *buf, size_t len, const struct qmgr_log_times *t,
		       int digits)
{
	char a[16], b[16], c[16], d[16], all[16];
	const struct timeval *conn = timerisset(&t->conn) ? &t->conn : &t->start;

	fmt_delay(all, sizeof all, span(&t->arrival, &t->done), digits);
	fmt_delay(a, sizeof a, span(&t->arrival, &t->active), digits);
	fmt_delay(b, sizeof b, span(&t->active, &t->start), digits);
	fmt_delay(c, sizeof c, span(&t->start, conn), digits);
	fmt_delay(d, sizeof d, span(conn, &t->done), digits);
	snprintf(buf, len, "delay=%s, delays=%s/%s/%s/%s", all, a, b, c, d);
}

/* Log one line as program/service, then go back to sluice/qmgr. */
static void log_as(const struct qmgr *q, const char *program,
		   const char *service, const char *line)
{
	const char *main_program = cfg_str(q->cfg, "syslog_name");
	const char *facility = cfg_str(q->cfg, "syslog_facility");
	bool other = program != NULL && strcmp(program, main_program) != 0;

	if (other)
		log_set_syslog(program, facility);
	log_set_service(service);
	msg_info("%s", line);
	if (other)
		log_set_syslog(main_program, facility);
	log_set_service("qmgr");
}

void qmgr_log_delivery(const struct qmgr *q, const char *program,
		       const char *service, const char *id, const char *to,
		       const char *orig_to, const char *relay,
		       const struct qmgr_log_times *t, const char *dsn,
		       const char *status, const char *text)
{
	char delays[128], orig[1100] = "", line[4096];

	if (orig_to != NULL && strcmp(orig_to, to) != 0)
		snprintf(orig, sizeof orig, "orig_to=<%s>, ", orig_to);
	fmt_delays(delays, sizeof delays, t, q->p.delay_digits);
	snprintf(line, sizeof line,
		 "%s: to=<%s>, %srelay=%s, %s, dsn=%s, status=%s (%s)", id, to,
		 orig, relay && *relay ? relay : "none", delays, dsn, status,
		 text ? text : "");
	log_as(q, program, service ? service : "qmgr", line);
}

void qmgr_log_skip(const struct qmgr_msg *m, const struct qmgr_addr *a,
		   const char *status, const char *dsn, const char *text)
{
	struct qmgr_log_times t = { 0 };
	const char *orig = m->env.rcpt[a->index].addr;

	t.arrival.tv_sec = (time_t)m->env.arrival_sec;
	t.arrival.tv_usec = m->env.arrival_usec;
	t.active = m->t_active;
	gettimeofday(&t.start, NULL);
	t.done = t.start;
	qmgr_log_delivery(m->q, NULL, NULL, m->id, a->addr, orig, "none", &t,
			  dsn, status, text);
}

void qmgr_log_queue_active(const struct qmgr_msg *m)
{
	msg_info("%s: from=<%s>, size=%lld, nrcpt=%d (queue active)", m->id,
		 m->env.sender, m->env.size, m->env.nrcpt);
}
