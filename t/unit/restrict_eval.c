/*
 * restrict_eval.c - unit test of the restriction engine on sessions
 * without a socket (the path `sluice explain` takes): list order, OK
 * ending one list, classes, nested actions, warn_if_reject,
 * defer_if_permit / defer_if_reject, soft_bounce, the per-listener lists
 * of master.cf -o overrides, and the trace.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "log.h"
#include "restriction.h"
#include "restriction_int.h"
#include "smtp_session.h"
#include "tap.h"
#include "config_fixture.h"

static char trace[8192];
static char logpath[300];

/* Does the log contain `text`? */
static bool logged(const char *text)
{
	char line[2048];
	bool hit = false;
	FILE *fp = fopen(logpath, "r");

	while (fp && !hit && fgets(line, sizeof line, fp))
		hit = strstr(line, text) != NULL;
	if (fp)
		fclose(fp);
	return hit;
}

static struct sluice_config *load(const char *extra, const char *master)
{
	char main_cf[4096];
	struct diag d;
	struct sluice_config *sc;

	snprintf(main_cf, sizeof main_cf, "queue_directory = %s\n"
		 "local_recipient_maps =\nmynetworks = 127.0.0.1/32\nmyhostname = mx.example\n%s", tmp, extra);
	write_file("main.cf", main_cf);
	write_file("master.cf", master ? master : "smtp inet - - - - - smtpd\n");
	diag_init(&d);
	sc = config_load(tmp, &d);
	show_diags(&d);
	diag_free(&d);
	return sc;
}

static void on_trace(void *arg, const char *line)
{
	size_t n = strlen(trace);

	snprintf(trace + n, sizeof trace - n, "%s\n", line);
}

/* A socket-less session from 192.0.2.1 sending MAIL FROM:<sender>. */
static struct smtp_session *session(const struct config *cfg)
{
	struct smtp_session *s = calloc(1, sizeof *s);

	s->cfg = cfg;
	strcpy(s->client_addr, "192.0.2.1");
	strcpy(s->client_name, "client.example");
	strcpy(s->reverse_name, "client.example");
	strcpy(s->client_id, "client.example[192.0.2.1]");
	s->helo_name = strdup("helo.example");
	s->esmtp = true;
	s->txn.env.sender = strdup("sender@example.org");
	s->txn.active = true;
	rcheck_set_trace(s, on_trace, NULL);
	return s;
}

static void session_free(struct smtp_session *s)
{
	rcheck_session_free(s);
	free(s->helo_name);
	free(s->txn.env.sender);
	free(s->txn.hold_reason);
	free(s->reply_text);
	free(s);
}

/* The reply to RCPT TO:<rcpt> ("OK" when accepted). */
static const char *rcpt(const struct config *cfg, const char *addr)
{
	static char reply[600];
	struct smtp_session *s = session(cfg);
	int v;

	trace[0] = 0;
	s->txn.cur_rcpt = addr;
	v = rcheck_explain_stage(s, RS_RECIPIENT, NULL);
	if (v == RV_REJECT || v == RV_DEFER)
		snprintf(reply, sizeof reply, "%d %s %s", s->reply_code,
			 s->reply_dsn, s->reply_text);
	else
		snprintf(reply, sizeof reply, "OK");
	session_free(s);
	return reply;
}

static void case_is(const char *extra, const char *addr, const char *want)
{
	struct sluice_config *sc = load(extra, NULL);
	char name[1024];

	snprintf(name, sizeof name, "%s -> %s", *extra ? extra : "defaults", addr);
	for (char *p = name; *p; p++)
		if (*p == '\n')
			*p = ';';
	if (sc == NULL) {
		ok(false, "config loads: %s", name);
		return;
	}
	is_str(rcpt(sc->main, addr), want, name);
	config_free(sc);
}

int main(void)
{
	struct sluice_config *sc;

	fixture_tmpdir("sluice-restrict");
	snprintf(logpath, sizeof logpath, "%s/log", tmp);
	log_open("smtpd", LOG_DEST_FILE, logpath);
	case_is("", "a@remote.example",
		"454 4.7.1 <a@remote.example>: Relay access denied");
	case_is("smtpd_relay_restrictions = permit, reject\n"
		"smtpd_recipient_restrictions = reject\n", "a@remote.example",
		"554 5.7.1 <a@remote.example>: Recipient address rejected: Access denied");
	case_is("smtpd_client_restrictions = permit\n"
		"smtpd_helo_restrictions = reject\n", "a@remote.example",
		"554 5.7.1 <helo.example>: Helo command rejected: Access denied");
	case_is("smtpd_sender_restrictions = defer\n", "a@remote.example",
		"450 4.3.2 <sender@example.org>: Sender address rejected: Try again later");
	case_is("smtpd_restriction_classes = a b\na = b\nb = reject\n"
		"smtpd_client_restrictions = a\n", "x@remote.example",
		"554 5.7.1 <client.example[192.0.2.1]>: Client host rejected: Access denied");
	case_is("smtpd_client_restrictions = warn_if_reject reject\n",
		"x@mx.example", "OK");
	ok(logged("NOQUEUE: reject_warning: RCPT from client.example[192.0.2.1]: "
		  "554 5.7.1 <client.example[192.0.2.1]>: Client host rejected: "
		  "Access denied; from=<sender@example.org> to=<x@mx.example> "
		  "proto=ESMTP helo=<helo.example>"), "reject_warning is logged as Postfix does");
	case_is("smtpd_client_restrictions = defer_if_permit\n", "x@mx.example",
		"450 4.7.0 <client.example[192.0.2.1]>: Client host rejected: defer_if_permit requested");
	case_is("smtpd_recipient_restrictions = defer_if_reject, reject\n",
		"x@mx.example", "450 4.7.0 <x@mx.example>: Recipient address rejected: defer_if_reject requested");
	case_is("soft_bounce = yes\nsmtpd_recipient_restrictions = reject\n",
		"x@mx.example", "454 4.7.1 <x@mx.example>: Recipient address rejected: Access denied");
	case_is("smtpd_recipient_restrictions = reject\n", "postmaster", "OK");
	case_is("smtpd_restriction_classes = loop\nloop = permit_mynetworks loop\n"
		"smtpd_client_restrictions = loop\n", "x@mx.example",
		"451 4.3.5 Server configuration error");
	case_is("smtpd_restriction_classes = loop\nloop = loop\n"
		"smtpd_recipient_restrictions = warn_if_reject loop, permit\n",
		"x@mx.example", "451 4.3.5 Server configuration error");
	case_is("smtpd_delay_reject = no\nsmtpd_client_restrictions = reject\n",
		"x@mx.example", "OK");

	/* the trace names the lists and restrictions evaluated */
	sc = load("smtpd_relay_restrictions = permit_mynetworks, reject\n", NULL);
	rcpt(sc->main, "x@mx.example");
	ok(strstr(trace, "smtpd_relay_restrictions:\n  permit_mynetworks\n") != NULL,
	   "trace shows the list and each restriction");
	ok(strstr(trace, "result: 554 5.7.1 <x@mx.example>: Recipient address rejected: Access denied") != NULL,
	   "trace shows the result");
	config_free(sc);

	/* a listener's -o override compiles its own list */
	sc = load("", "smtp inet - - - - - smtpd\n"
		  "2525 inet - - - - - smtpd -o smtpd_relay_restrictions=reject\n");
	ok(sc && sc->nlisteners == 2, "two listeners");
	if (sc && sc->nlisteners == 2) {
		int other = strcmp(sc->listeners[0].service, "2525") == 0 ? 0 : 1;

		is_str(rcpt(sc->listeners[other].cfg, "x@mx.example"),
		       "554 5.7.1 <x@mx.example>: Recipient address rejected: Access denied",
		       "the -o list applies to its listener");
		is_str(rcpt(sc->listeners[1 - other].cfg, "x@remote.example"),
		       "454 4.7.1 <x@remote.example>: Relay access denied",
		       "the other listener keeps main.cf's");
	}
	config_free(sc);
	remove_tmp();
	return tap_done();
}
