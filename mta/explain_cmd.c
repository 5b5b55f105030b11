/*
 * explain_cmd.c - `sluice explain`: replay a described SMTP transaction
 * against the configuration, without a running server, and print every
 * restriction evaluated, what it looked at (table keys tried, what
 * matched), its verdict, and the reply the client would get.
 *
 *   sluice explain [--service NAME] --client ADDR [--client-name NAME]
 *                  [--reverse-name NAME] [--helo NAME] [--sender ADDR]
 *                  [--sasl-user USER] [--sasl-method MECH]
 *                  [--data] --recipient ADDR [--recipient ADDR...]
 *
 * The session is a real struct smtp_session without a socket: the
 * listener's configuration (the master.cf service named by --service,
 * by default "smtp", else the first listener), the plugins of
 * sluice_plugins loaded as a worker loads them, the DNS resolver running
 * in an event loop of its own.  Each stage goes through the same engine
 * as `sluice run` (rcheck_stage), with the engine's trace on: CONNECT,
 * HELO, MAIL, then one RCPT per recipient; with --data, DATA and the
 * end of the message (smtpd_data_restrictions and
 * smtpd_end_of_data_restrictions, the accepted recipients counted as the
 * session counts them).  With smtpd_delay_reject = yes (the default) the
 * client, helo and sender lists run at RCPT, and the output shows them
 * there, as Postfix evaluates them.
 *
 * The client name is what --client-name says (taken as verified, as
 * Postfix's forward-confirmed name); without it the client is "unknown",
 * as a client without a PTR record is.  The reverse name defaults to the
 * client name.
 *
 * Output (stdout): a header naming the listener and client, then per
 * command its line ("RCPT TO:<r@example.net>"), the engine's trace
 * indented under it, and the outcome ("RCPT: 554 5.7.1 <r@example.net>:
 * Relay access denied", or "RCPT: accepted"), plus what the accepted
 * stage decided for the message (HOLD, DISCARD, FILTER, REDIRECT, BCC,
 * PREPEND).  A stage that rejects at CONNECT, HELO or MAIL ends the
 * replay as it would end the client's transaction.
 *
 * Exit status: 0 when the replay ran (whatever the verdicts), 1 when the
 * configuration does not load or the plugins or resolver cannot start,
 * 2 on a usage error.  Log lines (reject_warning, warn, ...) go to
 * stderr as `sluice run` writes them there.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "commands.h"
#include "config.h"
#include "dns.h"
#include "filter_chain.h"
#include "log.h"
#include "mymalloc.h"
#include "plugin_loader.h"
#include "plugin_names.h"
#include "restriction.h"
#include "restriction_int.h"
#include "smtp_proto.h"
#include "smtp_session.h"
#include "tool_common.h"

#define EXPLAIN_RCPT_MAX 100    /* recipients in one replay */

struct explain_opts {
	const char *service, *client, *client_name, *reverse_name, *helo;
	const char *sender, *sasl_user, *sasl_method;
	const char *rcpt[EXPLAIN_RCPT_MAX];
	int nrcpt;
	bool data;                      /* --data: DATA and end of message too */
};

/* One stage's completion (the engine calls done exactly once). */
struct stage_wait {
	bool done;
	int verdict;
};

static struct stage_wait waiting;      /* the stage being replayed */
static char held_header[128];          /* a list header not yet printed */

static void usage(FILE *fp)
{
	fprintf(fp, "usage: sluice [-c CONFIG_DIR] explain [--service NAME] "
		"--client ADDR [--client-name NAME] [--reverse-name NAME]\n"
		"           [--helo NAME] [--sender ADDR] [--sasl-user USER] "
		"[--sasl-method MECH]\n"
		"           [--data] --recipient ADDR [--recipient ADDR...]\n");
}

/* The client is an address, as the server knows it ("192.0.2.7",
 * "2001:db8::7"); its name comes with --client-name. */
static bool client_addr_ok(const char *addr)
{
	unsigned char buf[16];

	if (inet_pton(AF_INET, addr, buf) == 1 ||
	    inet_pton(AF_INET6, addr, buf) == 1)
		return true;
	fprintf(stderr, "sluice explain: --client \"%s\" is not an IPv4 or "
		"IPv6 address; give the address, and the name with "
		"--client-name\n", addr);
	return false;
}

static int parse_opts(int argc, char **argv, struct explain_opts *o)
{
	static const struct option longopts[] = {
		{ "service", required_argument, NULL, 's' },
		{ "client", required_argument, NULL, 'a' },
		{ "client-name", required_argument, NULL, 'n' },
		{ "reverse-name", required_argument, NULL, 'r' },
		{ "helo", required_argument, NULL, 'h' },
		{ "sender", required_argument, NULL, 'f' },
		{ "recipient", required_argument, NULL, 't' },
		{ "sasl-user", required_argument, NULL, 'u' },
		{ "sasl-method", required_argument, NULL, 'm' },
		{ "data", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, '?' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(o, 0, sizeof *o);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': o->service = optarg; break;
		case 'a': o->client = optarg; break;
		case 'n': o->client_name = optarg; break;
		case 'r': o->reverse_name = optarg; break;
		case 'h': o->helo = optarg; break;
		case 'f': o->sender = optarg; break;
		case 'u': o->sasl_user = optarg; break;
		case 'm': o->sasl_method = optarg; break;
		case 'd': o->data = true; break;
		case 't':
			if (o->nrcpt >= EXPLAIN_RCPT_MAX) {
				fprintf(stderr, "sluice explain: at most %d recipients\n",
					EXPLAIN_RCPT_MAX);
				return -1;
			}
			o->rcpt[o->nrcpt++] = optarg;
			break;
		default:
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice explain: unexpected argument \"%s\"\n",
			argv[optind]);
		return -1;
	}
	if (o->client == NULL || o->nrcpt == 0) {
		fprintf(stderr, "sluice explain: --client and --recipient are required\n");
		return -1;
	}
	return client_addr_ok(o->client) ? 0 : -1;
}

/* ---- the configuration and the process ------------------------------------ */

static struct sluice_config *load_config(const char *config_dir)
{
	struct sluice_config *sc = tool_load_config_strict(config_dir);

	if (sc == NULL)
		fprintf(stderr, "sluice explain: the configuration has errors; "
			"\"sluice check\" lists them\n");
	return sc;
}

/* The listener to replay: --service, else "smtp", else the first. */
static const struct listener *pick_listener(const struct sluice_config *sc,
					    const char *service)
{
	for (int i = 0; i < sc->nlisteners; i++)
		if (strcmp(sc->listeners[i].service, service ? service : "smtp") == 0)
			return &sc->listeners[i];
	if (service != NULL) {
		fprintf(stderr, "sluice explain: master.cf has no smtpd service "
			"\"%s\"; name one of:", service);
		for (int i = 0; i < sc->nlisteners; i++)
			fprintf(stderr, " %s", sc->listeners[i].service);
		fprintf(stderr, "\n");
		return NULL;
	}
	if (sc->nlisteners == 0)
		fprintf(stderr, "sluice explain: master.cf declares no smtpd "
			"service; add one, e.g. \"smtp inet n - n - - smtpd\"\n");
	return sc->nlisteners ? &sc->listeners[0] : NULL;
}

static int start_plugins(const struct sluice_config *sc)
{
	char **names = plugin_names(sc->main);
	int rc = plugins_load(cfg_str(sc->main, "plugin_directory"), names);

	cfg_list_free(names);
	if (rc < 0)
		fprintf(stderr, "sluice explain: cannot load the plugins named "
			"in sluice_plugins\n");
	return rc;
}

/* ---- the session ------------------------------------------------------------ */

/* A session as smtp_session_start() makes one, without the socket. */
static struct smtp_session *session_new(struct event_base *base,
					const struct listener *l,
					const struct explain_opts *o)
{
	struct smtp_session *s = calloc(1, sizeof *s);
	const char *name = o->client_name ? o->client_name : "unknown";

	if (s == NULL || (s->out = evbuffer_new()) == NULL)
		msg_fatal("explain: out of memory");
	s->base = base;
	s->listener = l;
	s->cfg = l->cfg;
	s->state = SS_COMMAND;
	s->last_cmd = "CONNECT";
	snprintf(s->client_addr, sizeof s->client_addr, "%s", o->client);
	snprintf(s->client_name, sizeof s->client_name, "%s", name);
	snprintf(s->reverse_name, sizeof s->reverse_name, "%s",
		 o->reverse_name ? o->reverse_name : name);
	snprintf(s->client_id, sizeof s->client_id, "%s[%s]", s->client_name,
		 s->client_addr);
	snprintf(s->server_addr, sizeof s->server_addr, "%s",
		 l->host && *l->host ? l->host : "127.0.0.1");
	s->server_port = atoi(l->port ? l->port : "25");
	s->lim.recipient_limit = cfg_int(s->cfg, "smtpd_recipient_limit");
	if (plugin_count() > 0 &&
	    (s->plugin_data = calloc((size_t)plugin_count(), sizeof *s->plugin_data)) == NULL)
		msg_fatal("explain: out of memory");
	if (o->sasl_user) {
		s->sasl_username = mystrdup(o->sasl_user);
		s->sasl_method = mystrdup(o->sasl_method ? o->sasl_method : "PLAIN");
	}
	return s;
}

/* Is this trace line a list's header ("smtpd_client_restrictions:")? */
static bool list_header(const char *line)
{
	for (int st = 0; st < RS__COUNT; st++) {
		const char *p = restriction_stage_param((enum rstage)st);
		size_t n = strlen(p);

		if (strncmp(line, p, n) == 0 && strcmp(line + n, ":") == 0)
			return true;
	}
	return false;
}

/* A list header is held until the next line shows whether the list had
 * anything in it. */
static void flush_header(const char *note)
{
	if (held_header[0])
		printf("  %s%s\n", held_header, note);
	held_header[0] = 0;
}

/* Every line of the engine's trace, indented under its command: lists at
 * 2, restrictions at 4, what they looked at and their verdicts at 6 (a
 * restriction's own lines may come without indentation).  The engine's
 * "result:" line is left out: the outcome line says it. */
static void trace_line(void *arg, const char *line)
{
	(void)arg;
	if (strncmp(line, "result: ", 8) == 0)
		return;
	if (list_header(line)) {
		flush_header(" (empty)");
		snprintf(held_header, sizeof held_header, "%s", line);
		return;
	}
	if (strncmp(line, "  smtpd_reject_unlisted_", 24) == 0) {
		/* the implicit check Postfix makes after the lists */
		flush_header(" (empty)");
		printf("  %s (after the lists):\n", line + 2);
		return;
	}
	flush_header("");
	if (*line == ' ')
		printf("  %s\n", line);
	else
		printf("      %s\n", line);
}

static void stage_done(struct smtp_session *s, int verdict)
{
	(void)s;
	waiting.done = true;
	waiting.verdict = verdict;
}

/* Run one stage through the engine; the loop turns until it is done
 * (DNS answers, timers).  Returns the verdict. */
static int run_stage(struct smtp_session *s, enum rstage stage)
{
	waiting.done = false;
	waiting.verdict = RV_DUNNO;
	rcheck_stage(s, stage, stage_done);
	while (!waiting.done)
		if (event_base_loop(s->base, EVLOOP_ONCE) < 0) {
			printf("  (the event loop failed; the stage did not end)\n");
			return RV_DEFER;
		}
	flush_header(" (empty)");
	return waiting.verdict;
}

/* "CMD: 554 5.7.1 text" or "CMD: accepted"; true when it rejected. */
static bool outcome(struct smtp_session *s, const char *cmd, int verdict)
{
	if (verdict == RV_REJECT || verdict == RV_DEFER) {
		printf("%s: %d %s %s\n", cmd, s->reply_code, s->reply_dsn,
		       s->reply_text ? s->reply_text : "");
		return true;
	}
	printf("%s: accepted\n", cmd);
	return false;
}

/* The client, helo and sender lists wait for RCPT with smtpd_delay_reject. */
static bool delayed(const struct smtp_session *s, const char *list)
{
	if (!cfg_bool(s->cfg, "smtpd_delay_reject"))
		return false;
	printf("  %s: evaluated at RCPT (smtpd_delay_reject = yes)\n", list);
	return true;
}

/* CONNECT, HELO and MAIL: true when the replay ends there. */
static bool early_stage(struct smtp_session *s, enum rstage stage,
			const char *cmd, const char *list)
{
	if (delayed(s, list))
		return false;
	return outcome(s, cmd, run_stage(s, stage));
}

/* What an accepted transaction carries for the message. */
static void message_actions(const struct smtp_session *s)
{
	const struct smtp_txn *t = &s->txn;

	if (t->discard || s->discard_all)
		printf("  the message would be discarded (DISCARD)\n");
	if (t->hold || s->hold_all)
		printf("  the message would be held (HOLD%s%s)\n",
		       t->hold_reason ? ": " : "",
		       t->hold_reason ? t->hold_reason : "");
	if (t->env.filter)
		printf("  content filter: %s (FILTER)\n", t->env.filter);
	if (t->redirect)
		printf("  recipients replaced by <%s> (REDIRECT)\n", t->redirect);
	for (int i = 0; i < t->nbcc; i++)
		printf("  blind copy to <%s> (BCC)\n", t->bcc[i]);
	for (int i = 0; i < t->nprepend; i++)
		printf("  header prepended: %s (PREPEND)\n", t->prepend[i]);
}

/* An accepted recipient joins the envelope, as the session adds it. */
static void add_rcpt(struct smtp_session *s, const char *rcpt)
{
	struct queue_envelope *e = &s->txn.env;
	struct queue_rcpt *v = realloc(e->rcpt, (size_t)(e->nrcpt + 1) * sizeof *v);

	if (v == NULL)
		msg_fatal("explain: out of memory");
	e->rcpt = v;
	memset(&v[e->nrcpt], 0, sizeof v[e->nrcpt]);
	v[e->nrcpt].addr = mystrdup(rcpt);
	v[e->nrcpt].status = 'P';
	e->nrcpt++;
}

/* The address the session takes from "KEYWORD:<addr>" (a source route
 * stripped), after the session's checks before any restriction
 * (smtp_envelope.c; sender-specified routing is the restrictions' to
 * judge).  NULL, with the reply printed, when the session refuses it. */
static char *session_address(struct smtp_session *s, const char *stage,
			     const char *keyword, const char *addr)
{
	bool sender = strcmp(keyword, "FROM") == 0;
	size_t len = strlen(keyword) + strlen(addr) + 4;
	char *line = malloc(len), *out = NULL;
	struct esmtp_param params[1];
	const char *err;
	int n = 0;

	if (line == NULL)
		msg_fatal("explain: out of memory");
	snprintf(line, len, "%s:<%s>", keyword, addr);
	if (smtp_parse_path(line, keyword, false, &out, params, &n, 1) < 0 || n > 0)
		err = sender ? "501 5.1.7 Bad sender address syntax"
			: "501 5.1.3 Bad recipient address syntax";
	else
		err = smtp_address_check(s->cfg, out, sender,
					 cfg_bool(s->cfg, "strict_rfc821_envelopes"), false);
	if (err == NULL)
		out = mystrdup(out);
	else
		printf("%s: %s\n", stage, err);
	free(line);
	return err ? NULL : out;
}

static void rcpt_stage(struct smtp_session *s, const char *arg)
{
	char *name, *rcpt;

	printf("RCPT TO:<%s>\n", arg);
	if ((rcpt = session_address(s, "RCPT", "TO", arg)) == NULL)
		return;
	if (strcasecmp(rcpt, "postmaster") == 0)
		printf("  <postmaster> without a domain is always accepted "
		       "(RFC 5321): no list runs\n");
	/* the restrictions see Postfix's internal form, as in the session */
	name = mystrdup(rcpt);
	if (!smtp_address_internal(rcpt, name, strlen(rcpt) + 1))
		strcpy(name, rcpt);
	s->txn.cur_rcpt = name;
	if (!outcome(s, "RCPT", run_stage(s, RS_RECIPIENT))) {
		message_actions(s);
		add_rcpt(s, rcpt);
	}
	s->txn.cur_rcpt = NULL;
	free(name);
	free(rcpt);
}

/* DATA, then the end of the message (no content: the lists that look at
 * the envelope and the session). */
static void data_stages(struct smtp_session *s)
{
	if (s->txn.env.nrcpt == 0) {
		printf("DATA: 554 5.5.1 Error: no valid recipients\n");
		return;
	}
	printf("DATA\n");
	if (outcome(s, "DATA", run_stage(s, RS_DATA)))
		return;
	printf("END-OF-MESSAGE\n");
	if (!outcome(s, "END-OF-MESSAGE", run_stage(s, RS_END_OF_DATA)))
		message_actions(s);
}

static void replay(struct smtp_session *s, const struct explain_opts *o)
{
	printf("CONNECT from %s\n", s->client_id);
	if (early_stage(s, RS_CLIENT, "CONNECT", "smtpd_client_restrictions"))
		return;
	if (o->helo) {
		s->helo_name = mystrdup(o->helo);
		s->esmtp = true;
		printf("EHLO %s\n", o->helo);
		if (early_stage(s, RS_HELO, "EHLO", "smtpd_helo_restrictions"))
			return;
	}
	if (s->sasl_username)
		printf("AUTH %s: logged in as %s\n", s->sasl_method,
		       s->sasl_username);
	printf("MAIL FROM:<%s>\n", o->sender ? o->sender : "");
	if (s->helo_name == NULL && cfg_bool(s->cfg, "smtpd_helo_required")) {
		printf("MAIL: 503 5.5.1 Error: send HELO/EHLO first\n");
		return;
	}
	s->txn.env.sender = session_address(s, "MAIL", "FROM", o->sender ? o->sender : "");
	if (s->txn.env.sender == NULL)
		return;
	s->txn.active = true;
	if (early_stage(s, RS_SENDER, "MAIL", "smtpd_sender_restrictions"))
		return;
	for (int i = 0; i < o->nrcpt; i++)
		rcpt_stage(s, o->rcpt[i]);
	if (o->data)
		data_stages(s);
}

int cmd_explain(const char *config_dir, int argc, char **argv)
{
	struct explain_opts o;
	struct sluice_config *sc;
	const struct listener *l;
	struct event_base *base;
	struct smtp_session *s;

	if (parse_opts(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	log_open("explain", LOG_DEST_STDERR, NULL);
	if ((sc = load_config(config_dir)) == NULL)
		return 1;
	sluice_conf = sc;
	if ((l = pick_listener(sc, o.service)) == NULL)
		return 1;
	if ((base = event_base_new()) == NULL) {
		fprintf(stderr, "sluice explain: cannot create the event loop\n");
		return 1;
	}
	filter_set_event_base(base);
	if (dns_start_config(base, sc->main) < 0 || start_plugins(sc) < 0)
		return 1;
	s = session_new(base, l, &o);
	rcheck_set_trace(s, trace_line, NULL);
	printf("sluice explain: listener %s (%s:%d), client %s\n", l->service,
	       l->file, l->line, s->client_id);
	replay(s, &o);
	fflush(stdout);
	/* The process ends here: the session, plugins and resolver go with
	 * it (no close hooks: nothing was started that needs them). */
	rcheck_session_free(s);
	dns_stop();
	return 0;
}
