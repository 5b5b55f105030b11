/*
 * test_milter.c - a milter for the tests, built on libmilter (the library
 * opendkim, clamav-milter and spamass-milter use), so sluice's client is
 * checked against the real thing.  One binary answers every reply at
 * every stage and makes every modification, as its script says.
 *
 *   test_milter -p unix:/path/sock -c script -l logfile
 *
 * Script lines (one directive each, '#' comments):
 *   steps FLAG...          protocol flags to ask for at negotiation:
 *                          NOCONNECT NOHELO NOMAIL NORCPT NOBODY NOHDRS
 *                          NOEOH NODATA NOUNKNOWN NR_CONN NR_HELO NR_MAIL
 *                          NR_RCPT NR_DATA NR_HDR NR_EOH NR_BODY SKIP
 *                          HDR_LEADSPC RCPT_REJ NR_UNKN
 *   symlist STAGE LIST     ask for macros (smfi_setsymlist): STAGE is
 *                          connect helo mail rcpt data eoh eom
 *   reply STAGE ACTION [CODE DSN TEXT|TEXT2...]
 *                          STAGE connect helo mail rcpt data header eoh
 *                          body eom unknown (rcpt:ADDR only for that
 *                          recipient);
 *                          ACTION continue accept reject tempfail discard
 *                          skip, or replycode (TEXT lines split on '|')
 *   delay STAGE SECONDS    sleep before answering
 *   progress STAGE SECONDS sleep, sending SMFIR_PROGRESS every second
 *   crash STAGE            exit at once (the connection closes)
 *   addheader NAME VALUE / insheader IDX NAME VALUE /
 *   chgheader NAME IDX VALUE / delheader NAME IDX / replbody TEXT
 *   (\n in TEXT is a line end) / addrcpt ADDR / addrcpt_par ADDR ARGS /
 *   delrcpt ADDR / chgfrom ADDR [ARGS] / quarantine REASON
 *                          modifications made at end of message, in order
 *
 * The log gets one line per callback ("connect HOST ADDR", "helo NAME",
 * "mail <a> ARGS", "rcpt <b> ARGS", "data", "header NAME: VALUE", "eoh",
 * "body N", "eom", "unknown COMMAND", "abort", "close") and one
 * "macro STAGE NAME=VALUE" line per macro of the stage's symlist that
 * has a value.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#define MAXLINES 200

static char *script[MAXLINES][4];   /* directive, up to 3 arguments */
static int nscript;
static FILE *log_fp;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void logline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void logline(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&log_lock);
	va_start(ap, fmt);
	vfprintf(log_fp, fmt, ap);
	va_end(ap);
	fputc('\n', log_fp);
	fflush(log_fp);
	pthread_mutex_unlock(&log_lock);
}

/* Split "directive a b rest..." into at most 4 fields (last takes the rest). */
static void read_script(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096];

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	while (fgets(line, sizeof line, f) && nscript < MAXLINES) {
		char *p = line, *field;
		int k = 0, max;

		line[strcspn(line, "\n")] = 0;
		while (*p == ' ')
			p++;
		if (*p == '#' || *p == 0)
			continue;
		/* how many fields before "the rest" */
		max = !strncmp(p, "insheader", 9) || !strncmp(p, "chgheader", 9) ? 4
			: !strncmp(p, "replbody", 8) || !strncmp(p, "quarantine", 10)
			|| !strncmp(p, "addrcpt ", 8) || !strncmp(p, "delrcpt", 7)
			|| !strncmp(p, "steps", 5) ? 2 : 3;
		while (k < max - 1 && (field = strsep(&p, " ")) != NULL)
			script[nscript][k++] = strdup(field);
		if (p && *p)
			script[nscript][k++] = strdup(p);
		nscript++;
	}
	fclose(f);
}

static const char *arg(int i, int k)
{
	return script[i][k] ? script[i][k] : "";
}

static void log_macros(SMFICTX *ctx, const char *stage)
{
	static const char *const names[] = {
		"j", "_", "v", "i", "{daemon_name}", "{daemon_addr}",
		"{client_addr}", "{client_name}", "{client_port}", "{mail_addr}",
		"{mail_host}", "{mail_mailer}", "{rcpt_addr}", "{rcpt_host}",
		"{rcpt_mailer}", "{auth_authen}", "{client_ptr}", "{if_addr}",
		"{daemon_port}", NULL
	};

	for (int i = 0; names[i]; i++) {
		const char *v = smfi_getsymval(ctx, (char *)names[i]);

		if (v)
			logline("macro %s %s=%s", stage, names[i], v);
	}
}

/* Sleep, crash, then the reply the script gives for this stage. */
static sfsistat answer(SMFICTX *ctx, const char *stage, const char *rcpt)
{
	sfsistat r = SMFIS_CONTINUE;

	for (int i = 0; i < nscript; i++) {
		const char *d = script[i][0], *st = arg(i, 1);

		if (!strcmp(d, "delay") && !strcmp(st, stage))
			sleep((unsigned)atoi(arg(i, 2)));
		if (!strcmp(d, "progress") && !strcmp(st, stage))
			for (int n = atoi(arg(i, 2)); n > 0; n--) {
				sleep(1);
				smfi_progress(ctx);
			}
		if (!strcmp(d, "crash") && !strcmp(st, stage)) {
			logline("crash %s", stage);
			_exit(3);
		}
		if (strcmp(d, "reply"))
			continue;
		if (strncmp(st, stage, strlen(stage)))
			continue;
		if (st[strlen(stage)] == ':') {
			if (!rcpt || strcmp(st + strlen(stage) + 1, rcpt))
				continue;
		} else if (st[strlen(stage)] != 0) {
			continue;
		}
		{
			const char *a = arg(i, 2);

			if (!strcmp(a, "accept"))
				r = SMFIS_ACCEPT;
			else if (!strcmp(a, "reject"))
				r = SMFIS_REJECT;
			else if (!strcmp(a, "tempfail"))
				r = SMFIS_TEMPFAIL;
			else if (!strcmp(a, "discard"))
				r = SMFIS_DISCARD;
			else if (!strcmp(a, "skip"))
				r = SMFIS_SKIP;
			else if (!strncmp(a, "replycode", 9)) {
				/* "replycode CODE DSN TEXT|TEXT2" in field 2 */
				char buf[1024], *code, *dsn, *text, *l[4] = { 0 };
				int n = 0;

				snprintf(buf, sizeof buf, "%s", a + 10);
				code = strtok(buf, " ");
				dsn = strtok(NULL, " ");
				text = strtok(NULL, "");
				for (char *t = strtok(text, "|"); t && n < 4; t = strtok(NULL, "|"))
					l[n++] = t;
				if (n > 1)
					smfi_setmlreply(ctx, code, dsn, l[0], l[1], l[2], l[3], NULL);
				else
					smfi_setreply(ctx, code, dsn, l[0]);
				r = code[0] == '4' ? SMFIS_TEMPFAIL : SMFIS_REJECT;
			}
		}
	}
	return r;
}

static sfsistat on_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
			     unsigned long f2, unsigned long f3,
			     unsigned long *pf0, unsigned long *pf1,
			     unsigned long *pf2, unsigned long *pf3)
{
	static const struct { const char *n; unsigned long f; } flags[] = {
		{ "NOCONNECT", SMFIP_NOCONNECT }, { "NOHELO", SMFIP_NOHELO },
		{ "NOMAIL", SMFIP_NOMAIL }, { "NORCPT", SMFIP_NORCPT },
		{ "NOBODY", SMFIP_NOBODY }, { "NOHDRS", SMFIP_NOHDRS },
		{ "NOEOH", SMFIP_NOEOH }, { "NODATA", SMFIP_NODATA },
		{ "NOUNKNOWN", SMFIP_NOUNKNOWN }, { "NR_CONN", SMFIP_NR_CONN },
		{ "NR_HELO", SMFIP_NR_HELO }, { "NR_MAIL", SMFIP_NR_MAIL },
		{ "NR_RCPT", SMFIP_NR_RCPT }, { "NR_DATA", SMFIP_NR_DATA },
		{ "NR_HDR", SMFIP_NR_HDR }, { "NR_EOH", SMFIP_NR_EOH },
		{ "NR_BODY", SMFIP_NR_BODY }, { "SKIP", SMFIP_SKIP },
		{ "HDR_LEADSPC", SMFIP_HDR_LEADSPC }, { "RCPT_REJ", SMFIP_RCPT_REJ },
		{ "NR_UNKN", SMFIP_NR_UNKN }, { NULL, 0 }
	};
	static const struct { const char *n; int i; } stages[] = {
		{ "connect", SMFIM_CONNECT }, { "helo", SMFIM_HELO },
		{ "mail", SMFIM_ENVFROM }, { "rcpt", SMFIM_ENVRCPT },
		{ "data", SMFIM_DATA }, { "eoh", SMFIM_EOH }, { "eom", SMFIM_EOM },
		{ NULL, 0 }
	};
	unsigned long want = 0;

	logline("negotiate version=%lu actions=0x%lx steps=0x%lx", f2 ? f2 : 0,
		f0, f1);
	for (int i = 0; i < nscript; i++) {
		if (!strcmp(script[i][0], "steps")) {
			char buf[1024], *t, *save = NULL;

			snprintf(buf, sizeof buf, "%s %s", arg(i, 1), arg(i, 2));
			for (t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
				for (int k = 0; flags[k].n; k++)
					if (!strcmp(t, flags[k].n))
						want |= flags[k].f;
		}
		if (!strcmp(script[i][0], "symlist"))
			for (int k = 0; stages[k].n; k++)
				if (!strcmp(arg(i, 1), stages[k].n))
					smfi_setsymlist(ctx, stages[k].i, (char *)arg(i, 2));
	}
	*pf0 = f0;              /* every action offered */
	*pf1 = want & f1;
	*pf2 = 0;
	*pf3 = 0;
	return SMFIS_CONTINUE;
}

static unsigned long negotiated;

static sfsistat nr(sfsistat r, unsigned long flag)
{
	return (negotiated & flag) ? SMFIS_NOREPLY : r;
}

static sfsistat on_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	logline("connect %s", host);
	log_macros(ctx, "connect");
	return nr(answer(ctx, "connect", NULL), SMFIP_NR_CONN);
}

static sfsistat on_helo(SMFICTX *ctx, char *helo)
{
	logline("helo %s", helo);
	log_macros(ctx, "helo");
	return nr(answer(ctx, "helo", NULL), SMFIP_NR_HELO);
}

/* The address and the ESMTP arguments, space-separated. */
static void join_args(char *line, size_t len, char **argv)
{
	size_t o = 0;

	line[0] = 0;
	for (int i = 0; argv[i] && o < len - 1; i++)
		o += (size_t)snprintf(line + o, len - o, "%s%s", i ? " " : "",
				      argv[i]);
}

static sfsistat on_mail(SMFICTX *ctx, char **argv)
{
	char line[1024];

	join_args(line, sizeof line, argv);
	logline("mail %s", line);
	log_macros(ctx, "mail");
	return nr(answer(ctx, "mail", NULL), SMFIP_NR_MAIL);
}

static sfsistat on_rcpt(SMFICTX *ctx, char **argv)
{
	char line[1024];

	join_args(line, sizeof line, argv);
	logline("rcpt %s", line);
	log_macros(ctx, "rcpt");
	return nr(answer(ctx, "rcpt", argv[0]), SMFIP_NR_RCPT);
}

static sfsistat on_unknown(SMFICTX *ctx, const char *cmd)
{
	logline("unknown %s", cmd);
	return nr(answer(ctx, "unknown", NULL), SMFIP_NR_UNKN);
}

static sfsistat on_data(SMFICTX *ctx)
{
	logline("data");
	log_macros(ctx, "data");
	return nr(answer(ctx, "data", NULL), SMFIP_NR_DATA);
}

static sfsistat on_header(SMFICTX *ctx, char *name, char *value)
{
	char *v = strdup(value);

	for (char *p = v; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = '~';
	logline("header %s:%s", name, v);
	free(v);
	return nr(answer(ctx, "header", NULL), SMFIP_NR_HDR);
}

static sfsistat on_eoh(SMFICTX *ctx)
{
	logline("eoh");
	log_macros(ctx, "eoh");
	return nr(answer(ctx, "eoh", NULL), SMFIP_NR_EOH);
}

static sfsistat on_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	logline("body %zu", len);
	{
		/* the first line of each chunk, for the body tests */
		size_t n = 0;

		while (n < len && n < 200 && chunk[n] != '\r' && chunk[n] != '\n')
			n++;
		logline("bodyline %.*s", (int)n, chunk);
	}
	return nr(answer(ctx, "body", NULL), SMFIP_NR_BODY);
}

/* "\n" in a script value: CRLF in a body, LF in a header value. */
static void unescape(char *out, const char *in, size_t len, bool crlf)
{
	size_t o = 0;

	for (; *in && o + 3 < len; in++) {
		if (in[0] == '\\' && in[1] == 'n') {
			if (crlf)
				out[o++] = '\r';
			out[o++] = '\n';
			in++;
			continue;
		}
		out[o++] = *in;
	}
	out[o] = 0;
}

static sfsistat on_eom(SMFICTX *ctx)
{
	logline("eom");
	log_macros(ctx, "eom");
	for (int i = 0; i < nscript; i++) {
		const char *d = script[i][0];
		int rc = MI_SUCCESS;

		char value[4096];

		if (!strcmp(d, "addheader")) {
			unescape(value, arg(i, 2), sizeof value, false);
			rc = smfi_addheader(ctx, (char *)arg(i, 1), value);
		} else if (!strcmp(d, "insheader")) {
			unescape(value, arg(i, 3), sizeof value, false);
			rc = smfi_insheader(ctx, atoi(arg(i, 1)), (char *)arg(i, 2),
					    value);
		} else if (!strcmp(d, "chgheader")) {
			unescape(value, arg(i, 3), sizeof value, false);
			rc = smfi_chgheader(ctx, (char *)arg(i, 1), atoi(arg(i, 2)),
					    value);
		}
		else if (!strcmp(d, "delheader"))
			rc = smfi_chgheader(ctx, (char *)arg(i, 1), atoi(arg(i, 2)), NULL);
		else if (!strcmp(d, "replbody")) {
			char body[8192];

			unescape(body, arg(i, 1), sizeof body, true);
			rc = smfi_replacebody(ctx, (unsigned char *)body, (int)strlen(body));
		} else if (!strcmp(d, "addrcpt"))
			rc = smfi_addrcpt(ctx, (char *)arg(i, 1));
		else if (!strcmp(d, "addrcpt_par"))
			rc = smfi_addrcpt_par(ctx, (char *)arg(i, 1), (char *)arg(i, 2));
		else if (!strcmp(d, "delrcpt"))
			rc = smfi_delrcpt(ctx, (char *)arg(i, 1));
		else if (!strcmp(d, "chgfrom"))
			rc = smfi_chgfrom(ctx, (char *)arg(i, 1),
					  script[i][2] ? (char *)arg(i, 2) : NULL);
		else if (!strcmp(d, "quarantine"))
			rc = smfi_quarantine(ctx, (char *)arg(i, 1));
		else
			continue;
		logline("modify %s %s", d, rc == MI_SUCCESS ? "ok" : "failed");
	}
	return answer(ctx, "eom", NULL);
}

static sfsistat on_abort(SMFICTX *ctx)
{
	logline("abort");
	return SMFIS_CONTINUE;
}

static sfsistat on_close(SMFICTX *ctx)
{
	logline("close");
	return SMFIS_CONTINUE;
}

static sfsistat on_negotiate_wrap(SMFICTX *ctx, unsigned long f0,
				  unsigned long f1, unsigned long f2,
				  unsigned long f3, unsigned long *pf0,
				  unsigned long *pf1, unsigned long *pf2,
				  unsigned long *pf3)
{
	sfsistat r = on_negotiate(ctx, f0, f1, f2, f3, pf0, pf1, pf2, pf3);

	negotiated = *pf1;
	return r;
}

int main(int argc, char **argv)
{
	struct smfiDesc desc = {
		"test_milter", SMFI_VERSION,
		SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT
		| SMFIF_ADDRCPT_PAR | SMFIF_DELRCPT | SMFIF_QUARANTINE
		| SMFIF_CHGFROM | SMFIF_SETSYMLIST,
		on_connect, on_helo, on_mail, on_rcpt, on_header, on_eoh,
		on_body, on_eom, on_abort, on_close, on_unknown, on_data,
		on_negotiate_wrap
	};
	const char *sock = NULL, *conf = NULL, *logpath = NULL;
	int c;

	while ((c = getopt(argc, argv, "p:c:l:")) != -1) {
		if (c == 'p')
			sock = optarg;
		else if (c == 'c')
			conf = optarg;
		else if (c == 'l')
			logpath = optarg;
	}
	if (!sock || !conf || !logpath) {
		fprintf(stderr, "usage: test_milter -p SOCKET -c SCRIPT -l LOG\n");
		return 2;
	}
	read_script(conf);
	if ((log_fp = fopen(logpath, "a")) == NULL) {
		perror(logpath);
		return 1;
	}
	if (!strncmp(sock, "unix:", 5))
		unlink(sock + 5);
	if (smfi_setconn((char *)sock) == MI_FAILURE
	    || smfi_register(desc) == MI_FAILURE) {
		fprintf(stderr, "test_milter: cannot set up\n");
		return 1;
	}
	if (smfi_opensocket(1) == MI_FAILURE) {
		fprintf(stderr, "test_milter: cannot open %s\n", sock);
		return 1;
	}
	logline("ready");
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
