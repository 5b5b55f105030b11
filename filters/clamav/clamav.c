/*
 * clamav.c - the clamav plugin: virus scanning of each message at end
 * of data, in process with libclamav (clamav_engine.c) or by a clamd
 * over its socket (clamav_clamd.c).  Enabled with `sluice_plugins =
 * clamav`; not among the default sluice_builtin_plugins, since loading
 * a full signature database costs seconds and much memory per worker.
 *
 * Promises:
 *   - the message is collected as queued (headers, blank line, body) from
 *     the header and body hooks, up to clamav_max_scan_size; a larger
 *     message is not scanned and is accepted (clamav-milter's
 *     MaxFileSize), with a log line saying so;
 *   - the scan runs on the thread pool (sluice_job_submit); the session
 *     waits at end of message, the worker's loop never blocks;
 *   - infected: clamav_action decides: reject (clamav_reject_text, %v the
 *     signature name, "550 5.7.1 Virus found: NAME"), hold (hold/),
 *     discard, or tag (accepted, X-Virus-Status: Infected (NAME)); each is
 *     logged as "ID: clamav: ACTION: END-OF-MESSAGE from host[addr]:
 *     TEXT; from=<s> to=<r>";
 *   - scanner failure (no database, clamd down, scan error):
 *     clamav_failure_action tempfail ("451 4.7.1") or accept, logged;
 *   - clamav_add_header adds X-Virus-Scanned and X-Virus-Status as
 *     clamav-milter's AddHeader does;
 *   - a session closed during a scan orphans the job; its completion then
 *     frees the scan and resumes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clamav.h"

static const struct sluice_param clamav_params[] = {
	{ "clamav_mode", SLUICE_PARAM_STRING, "libclamav",
	  "How messages are scanned: libclamav (in process, the engine loaded once per worker) or clamd (INSTREAM to clamav_clamd_socket)." },
	{ "clamav_database_directory", SLUICE_PARAM_STRING, "/var/lib/clamav",
	  "Where libclamav mode loads its signature database (.cvd, .cld, .ndb, .hdb ...) from, as clamd's DatabaseDirectory." },
	{ "clamav_clamd_socket", SLUICE_PARAM_STRING, "unix:/run/clamav/clamd.ctl",
	  "clamd's socket in clamd mode: unix:/path or inet:host:port." },
	{ "clamav_clamd_timeout", SLUICE_PARAM_TIME, "60s",
	  "How long clamd mode waits for each connect, write and read before the scan fails." },
	{ "clamav_action", SLUICE_PARAM_STRING, "reject",
	  "What an infected message gets: reject, hold (hold/ queue), discard, or tag (accepted with X-Virus-Status: Infected (NAME))." },
	{ "clamav_reject_text", SLUICE_PARAM_STRING, "5.7.1 Virus found: %v",
	  "The reply text for clamav_action = reject (code 550); %v is the signature name." },
	{ "clamav_max_scan_size", SLUICE_PARAM_SIZE, "26214400",
	  "Messages larger than this are not scanned, and accepted (clamav-milter's MaxFileSize); also the engine's MaxScanSize and MaxFileSize." },
	{ "clamav_failure_action", SLUICE_PARAM_STRING, "tempfail",
	  "When the scanner fails (no database, clamd unreachable, scan error): tempfail (451 4.7.1) or accept." },
	{ "clamav_add_header", SLUICE_PARAM_BOOL, "no",
	  "Add X-Virus-Scanned and X-Virus-Status headers (Clean or Infected (NAME)), as clamav-milter's AddHeader." },
	{ NULL, 0, NULL, NULL }
};

/* Set by init in the loop thread, read-only afterwards. */
static bool use_clamd;

static struct clamav_scan *scan_new(void)
{
	struct clamav_scan *sc = calloc(1, sizeof *sc);

	if (sc == NULL)
		abort();
	return sc;
}

static void scan_free(struct clamav_scan *sc)
{
	if (sc) {
		free(sc->buf);
		free(sc);
	}
}

static void append(sluice_txn *t, struct clamav_scan *sc, const void *p, size_t n)
{
	if (sc->truncated)
		return;
	if (sc->max > 0 && sc->len + n > sc->max) {
		sc->truncated = true;
		free(sc->buf);
		sc->buf = NULL;
		sc->len = sc->cap = 0;
		return;
	}
	if (sc->len + n > sc->cap) {
		size_t cap = sc->cap ? sc->cap : 65536;
		unsigned char *nb;

		while (cap < sc->len + n)
			cap *= 2;
		if ((nb = realloc(sc->buf, cap)) == NULL)
			abort();
		sc->buf = nb;
		sc->cap = cap;
	}
	memcpy(sc->buf + sc->len, p, n);
	sc->len += n;
}

/* The enum-like parameters, checked by `sluice check` and before init()
 * (sluice_plugin.h: SLUICE_PLUGIN_CHECK). */
SLUICE_PLUGIN_CHECK
{
	int bad = 0;

	bad |= sluice_param_one_of("clamav_mode", "libclamav clamd");
	bad |= sluice_param_one_of("clamav_action", "reject hold discard tag");
	bad |= sluice_param_one_of("clamav_failure_action", "tempfail accept");
	return bad;
}

static int clamav_init(void **pdata)
{
	const char *mode = sluice_conf_str("clamav_mode");
	char err[512] = "";

	if (!strcasecmp(mode, "clamd")) {
		use_clamd = true;
		sluice_log(SLUICE_LOG_INFO, "scanning with clamd at %s",
			   sluice_conf_str("clamav_clamd_socket"));
		return 0;
	}
	if (clamav_engine_load(sluice_conf_str("clamav_database_directory"),
			       sluice_conf_int("clamav_max_scan_size"),
			       err, sizeof err) < 0)
		sluice_log(SLUICE_LOG_WARN, "%s; every message gets clamav_failure_action (%s)",
			   err, sluice_conf_str("clamav_failure_action"));
	else
		sluice_log(SLUICE_LOG_INFO, "libclamav %s: %s",
			   clamav_engine_version(), err);
	return 0;
}

static void clamav_fini(void *pdata)
{
	clamav_engine_free();
}

static int clamav_data(sluice_txn *t, void *pdata)
{
	struct clamav_scan *sc = scan_new();

	scan_free(sluice_get_data(t));
	sc->max = (size_t)sluice_txn_conf_int(t, "clamav_max_scan_size");
	sluice_set_data(t, sc);
	return SLUICE_DUNNO;
}

static int clamav_header(sluice_txn *t, const char *name, const char *value,
			 void *pdata)
{
	struct clamav_scan *sc = sluice_get_data(t);

	if (sc) {
		append(t, sc, name, strlen(name));
		append(t, sc, ": ", 2);
		append(t, sc, value, strlen(value));
		append(t, sc, "\n", 1);
	}
	return SLUICE_DUNNO;
}

static int clamav_eoh(sluice_txn *t, void *pdata)
{
	struct clamav_scan *sc = sluice_get_data(t);

	if (sc)
		append(t, sc, "\n", 1);
	return SLUICE_DUNNO;
}

static int clamav_body(sluice_txn *t, const unsigned char *chunk, size_t len,
		       void *pdata)
{
	struct clamav_scan *sc = sluice_get_data(t);

	if (sc)
		append(t, sc, chunk, len);
	return SLUICE_DUNNO;
}

/* ---- end of message: the scan and its verdict ------------------------- */

/* Per job: the configuration the pool thread needs, copied in the loop. */
struct clamav_job {
	struct clamav_scan *scan;
	char socket[512];
	int timeout;
};

static void scan_work(void *arg)
{
	struct clamav_job *j = arg;

	if (use_clamd)
		clamav_clamd_scan(j->scan, j->socket, j->timeout);
	else
		clamav_engine_scan(j->scan);
}

/* "5.7.1 Virus found: %v" with the name: the DSN and the text apart. */
static void reject_text(sluice_txn *t, const char *virus, char *dsn,
			size_t dsnlen, char *out, size_t outlen)
{
	const char *fmt = sluice_txn_conf_str(t, "clamav_reject_text");
	size_t o = 0;

	snprintf(dsn, dsnlen, "5.7.1");
	if (fmt[0] >= '2' && fmt[0] <= '5' && fmt[1] == '.') {
		size_t n = strcspn(fmt, " ");

		snprintf(dsn, dsnlen, "%.*s", (int)n, fmt);
		fmt += n + (fmt[n] == ' ');
	}
	for (; *fmt && o + 1 < outlen; fmt++) {
		if (fmt[0] == '%' && fmt[1] == 'v') {
			o += (size_t)snprintf(out + o, outlen - o, "%s", virus);
			if (o >= outlen)
				o = outlen - 1;
			fmt++;
		} else {
			out[o++] = *fmt;
		}
	}
	out[o] = 0;
}

static void log_action(sluice_txn *t, const char *action, const char *dsn,
		       const char *text)
{
	const char *from = sluice_sender(t);
	const char *to = sluice_recipient_count(t) > 0 ? sluice_recipient_at(t, 0) : NULL;

	sluice_txn_log(t, SLUICE_LOG_INFO,
		       "%s: END-OF-MESSAGE from %s[%s]: %s%s%s; from=<%s>%s%s%s",
		       action, sluice_client_name(t), sluice_client_addr(t),
		       dsn ? dsn : "", dsn ? " " : "", text, from ? from : "",
		       to ? " to=<" : "", to ? to : "", to ? ">" : "");
}

static void add_headers(sluice_txn *t, const struct clamav_scan *sc, bool force)
{
	char v[400];

	if (!force && !sluice_txn_conf_int(t, "clamav_add_header"))
		return;
	snprintf(v, sizeof v, "ClamAV %s (sluice clamav) at %s",
		 clamav_engine_version(), sluice_conf_str("myhostname"));
	sluice_header_add(t, "X-Virus-Scanned", v);
	if (sc->result == CLAMAV_INFECTED)
		snprintf(v, sizeof v, "Infected (%s)", sc->virus);
	else
		snprintf(v, sizeof v, "Clean");
	sluice_header_add(t, "X-Virus-Status", v);
}

static int infected_verdict(sluice_txn *t, const struct clamav_scan *sc)
{
	const char *action = sluice_txn_conf_str(t, "clamav_action");
	char dsn[16], text[512], why[400];

	snprintf(why, sizeof why, "Virus found: %s", sc->virus);
	if (!strcasecmp(action, "hold")) {
		log_action(t, "hold", NULL, why);
		sluice_reply(t, 0, NULL, "%s", why);
		return SLUICE_HOLD;
	}
	if (!strcasecmp(action, "discard")) {
		log_action(t, "discard", NULL, why);
		return SLUICE_DISCARD;
	}
	if (!strcasecmp(action, "tag")) {
		log_action(t, "tag", NULL, why);
		add_headers(t, sc, true);
		return SLUICE_DUNNO;
	}
	reject_text(t, sc->virus, dsn, sizeof dsn, text, sizeof text);
	log_action(t, "reject", dsn, text);
	sluice_reply(t, dsn[0] == '4' ? 450 : 550, dsn, "%s", text);
	return SLUICE_REJECT;
}

static int failure_verdict(sluice_txn *t, const struct clamav_scan *sc)
{
	if (!strcasecmp(sluice_txn_conf_str(t, "clamav_failure_action"), "accept")) {
		sluice_txn_log(t, SLUICE_LOG_WARN, "scan failed: %s; message accepted unscanned "
			       "(clamav_failure_action = accept)", sc->error);
		return SLUICE_DUNNO;
	}
	sluice_txn_log(t, SLUICE_LOG_WARN, "scan failed: %s; message deferred "
		       "(clamav_failure_action = tempfail)", sc->error);
	sluice_reply(t, 451, "4.7.1", "Service unavailable - try again later");
	return SLUICE_DEFER;
}

static int scan_verdict(sluice_txn *t, const struct clamav_scan *sc)
{
	switch (sc->result) {
	case CLAMAV_INFECTED:
		return infected_verdict(t, sc);
	case CLAMAV_ERROR:
		return failure_verdict(t, sc);
	default:
		add_headers(t, sc, false);
		return SLUICE_DUNNO;
	}
}

static void scan_done(void *arg)
{
	struct clamav_job *j = arg;
	struct clamav_scan *sc = j->scan;
	sluice_txn *t = sc->txn;
	int v;

	free(j);
	if (sc->orphaned) {
		scan_free(sc);
		return;
	}
	v = scan_verdict(t, sc);
	sluice_set_data(t, NULL);
	scan_free(sc);
	sluice_resume(t, v);
}

static int clamav_eom(sluice_txn *t, void *pdata)
{
	struct clamav_scan *sc = sluice_get_data(t);
	struct clamav_job *j;
	int v;

	if (sc == NULL)
		return SLUICE_DUNNO;
	if (sc->truncated) {
		sluice_txn_log(t, SLUICE_LOG_INFO, "not scanned: larger than "
			       "clamav_max_scan_size (%lld bytes)",
			       sluice_txn_conf_int(t, "clamav_max_scan_size"));
		return SLUICE_DUNNO;
	}
	if ((j = calloc(1, sizeof *j)) == NULL)
		abort();
	j->scan = sc;
	snprintf(j->socket, sizeof j->socket, "%s",
		 sluice_txn_conf_str(t, "clamav_clamd_socket"));
	j->timeout = (int)sluice_txn_conf_int(t, "clamav_clamd_timeout");
	sc->txn = t;
	if (sluice_job_submit(scan_work, scan_done, j) < 0) {
		free(j);
		sc->result = CLAMAV_ERROR;
		snprintf(sc->error, sizeof sc->error, "cannot start a scan job");
		sc->txn = NULL;
		sluice_set_data(t, NULL);
		v = scan_verdict(t, sc);
		scan_free(sc);
		return v;
	}
	return SLUICE_PENDING;
}

static void clamav_reset(sluice_txn *t, void *pdata)
{
	struct clamav_scan *sc = sluice_get_data(t);

	if (sc && sc->txn)      /* a scan is running: its completion frees it */
		return;
	scan_free(sc);
	sluice_set_data(t, NULL);
}

static void clamav_close(sluice_txn *t, void *pdata)
{
	struct clamav_scan *sc = sluice_get_data(t);

	if (sc && sc->txn)
		sc->orphaned = true;
	else
		scan_free(sc);
	sluice_set_data(t, NULL);
}

SLUICE_PLUGIN_DECLARE = {
	.abi = SLUICE_PLUGIN_ABI,
	.name = "clamav",
	.version = "1.0",
	.description = "virus scanning with libclamav in process, or clamd",
	.params = clamav_params,
	.init = clamav_init,
	.fini = clamav_fini,
	.data = clamav_data,
	.header = clamav_header,
	.eoh = clamav_eoh,
	.body = clamav_body,
	.eom = clamav_eom,
	.reset = clamav_reset,
	.close = clamav_close,
};
