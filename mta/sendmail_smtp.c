/*
 * sendmail_smtp.c - `sendmail -bs`: an SMTP dialogue on stdin and stdout,
 * each accepted message written to maildrop/ (as Postfix's sendmail -bs
 * runs a stand-alone smtpd that submits through postdrop).
 *
 * Why not the SMTP server's session code: smtp_session.c writes the
 * message straight into incoming/, which only mail_owner may do, and runs
 * what belongs to the daemon (connection counting in the master's shared
 * memory, client name lookups, the filter chain).  Run by an ordinary
 * user, sendmail can only drop files for pickup, so this is the small
 * dialogue local submission needs: HELO, EHLO (PIPELINING, SIZE,
 * 8BITMIME, ENHANCEDSTATUSCODES), MAIL, RCPT, DATA, RSET, NOOP, QUIT;
 * VRFY and the rest are refused.  Replies are flushed after each one, so
 * a pipelining client works as well.  The message gets no Received: line
 * of its own: pickup writes one naming the user.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "config.h"
#include "log.h"
#include "maildrop.h"
#include "qmgr_trigger.h"
#include "sendmail.h"

#define SMTP_LINE_MAX   2048    /* a command line (RFC 5321: 512) */
#define DATA_PIECE_MAX  8192

struct smtp_local {
	const struct sluice_config *sc;
	const char *qdir;
	const char *host;
	long long limit;
	long long rcpt_limit;
	char *sender;           /* NULL: no MAIL yet */
	char **rcpt;
	int nrcpt;
	bool quit;
};

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputs("\r\n", stdout);
	fflush(stdout);
}

static void txn_reset(struct smtp_local *t)
{
	int i;

	free(t->sender);
	t->sender = NULL;
	for (i = 0; i < t->nrcpt; i++)
		free(t->rcpt[i]);
	free(t->rcpt);
	t->rcpt = NULL;
	t->nrcpt = 0;
}

/* The address in "FROM:<addr> params" (after the verb); NULL when it is
 * malformed.  *params points after the '>'. */
static char *path_arg(const char *arg, const char *keyword,
		      const char **params)
{
	size_t klen = strlen(keyword);
	const char *lt, *gt;

	if (strncasecmp(arg, keyword, klen) != 0)
		return NULL;
	for (lt = arg + klen; *lt == ' '; lt++)
		;
	if (*lt != '<' || (gt = strchr(lt, '>')) == NULL)
		return NULL;
	*params = gt + 1;
	return strndup(lt + 1, (size_t) (gt - lt - 1));
}

static void do_mail(struct smtp_local *t, const char *arg)
{
	const char *params, *size;
	char *addr;

	if (t->sender != NULL) {
		reply("503 5.5.1 Error: nested MAIL command");
		return;
	}
	if ((addr = path_arg(arg, "FROM:", &params)) == NULL
	    || !maildrop_addr_ok(addr, true)) {
		free(addr);
		reply("501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	if ((size = strcasestr(params, "SIZE=")) != NULL && t->limit > 0
	    && strtoll(size + 5, NULL, 10) > t->limit) {
		free(addr);
		reply("552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	t->sender = addr;
	reply("250 2.1.0 Ok");
}

static void do_rcpt(struct smtp_local *t, const char *arg)
{
	const char *params;
	char *addr, **v;

	if (t->sender == NULL) {
		reply("503 5.5.1 Error: need MAIL command");
		return;
	}
	if ((addr = path_arg(arg, "TO:", &params)) == NULL
	    || !maildrop_addr_ok(addr, false)) {
		free(addr);
		reply("501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (t->rcpt_limit > 0 && t->nrcpt >= t->rcpt_limit) {
		free(addr);
		reply("452 4.5.3 Error: too many recipients");
		return;
	}
	v = realloc(t->rcpt, (size_t) (t->nrcpt + 1) * sizeof *v);
	if (v == NULL) {
		free(addr);
		reply("451 4.3.0 Error: out of memory");
		return;
	}
	t->rcpt = v;
	v[t->nrcpt++] = addr;
	reply("250 2.1.5 Ok");
}

enum data_result { DATA_OK, DATA_TOO_BIG, DATA_WRITE_ERROR, DATA_EOF };

/* One piece of a DATA line into mf; the new result. */
static enum data_result data_piece(struct smtp_local *t,
				   struct maildrop_file *mf, const char *p,
				   size_t len, bool eol, enum data_result r)
{
	if (r != DATA_OK)
		return r;               /* read on to the end, keep nothing */
	if (maildrop_write(mf, p, len) < 0
	    || (eol && maildrop_write(mf, "\n", 1) < 0))
		return DATA_WRITE_ERROR;
	if (t->limit > 0 && maildrop_size(mf) > t->limit)
		return DATA_TOO_BIG;
	return DATA_OK;
}

/* The DATA content, dot-unstuffed, into mf, up to the lone "." line. */
static enum data_result read_data(struct smtp_local *t,
				  struct maildrop_file *mf)
{
	char buf[DATA_PIECE_MAX];
	enum data_result r = DATA_OK;
	bool at_start = true, eol;
	const char *p;
	size_t n;

	while (fgets(buf, sizeof buf, stdin) != NULL) {
		n = strlen(buf);
		eol = n > 0 && buf[n - 1] == '\n';
		if (eol)
			n -= (n > 1 && buf[n - 2] == '\r') ? 2 : 1;
		if (at_start && eol && n == 1 && buf[0] == '.')
			return r;
		p = at_start && buf[0] == '.' ? buf + 1 : buf;
		r = data_piece(t, mf, p, n - (size_t) (p - buf), eol, r);
		at_start = eol;
	}
	return DATA_EOF;
}

static void data_done(struct smtp_local *t, struct maildrop_file *mf)
{
	struct maildrop_env env = { 0 };
	char name[MAILDROP_NAME_LEN + 1], err[512];

	env.sender = t->sender;
	env.rcpt = t->rcpt;
	env.nrcpt = t->nrcpt;
	snprintf(name, sizeof name, "%s", maildrop_name(mf));
	if (maildrop_finish(mf, &env, err, sizeof err) < 0) {
		msg_warn("%s", err);
		reply("451 4.3.0 Error: queue file write error");
		return;
	}
	reply("250 2.0.0 Ok: queued as %s", name);
	(void) qmgr_trigger_send(t->qdir, QMGR_REQ_WAKEUP);
}

static void do_data(struct smtp_local *t)
{
	struct maildrop_file *mf;
	char err[512];

	if (t->nrcpt == 0) {
		reply("503 5.5.1 Error: need RCPT command");
		return;
	}
	if ((mf = maildrop_create(t->qdir, err, sizeof err)) == NULL) {
		msg_warn("%s", err);
		reply("451 4.3.0 Error: queue file write error");
		return;
	}
	reply("354 End data with <CR><LF>.<CR><LF>");
	switch (read_data(t, mf)) {
	case DATA_OK:
		data_done(t, mf);
		break;
	case DATA_TOO_BIG:
		maildrop_abort(mf);
		reply("552 5.3.4 Error: message file too big");
		break;
	case DATA_WRITE_ERROR:
		maildrop_abort(mf);
		reply("451 4.3.0 Error: queue file write error");
		break;
	case DATA_EOF:
		maildrop_abort(mf);
		t->quit = true;
		break;
	}
	txn_reset(t);
}

static void do_ehlo(struct smtp_local *t, bool ehlo)
{
	if (!ehlo) {
		reply("250 %s", t->host);
		return;
	}
	printf("250-%s\r\n250-PIPELINING\r\n", t->host);
	if (t->limit > 0)
		printf("250-SIZE %lld\r\n", t->limit);
	else
		printf("250-SIZE\r\n");
	reply("250-8BITMIME\r\n250 ENHANCEDSTATUSCODES");
}

static void command(struct smtp_local *t, char *line)
{
	size_t vlen = strcspn(line, " ");
	const char *arg = line + vlen + (line[vlen] == ' ');

	if (vlen == 4 && strncasecmp(line, "HELO", 4) == 0)
		do_ehlo(t, false);
	else if (vlen == 4 && strncasecmp(line, "EHLO", 4) == 0)
		do_ehlo(t, true);
	else if (vlen == 4 && strncasecmp(line, "MAIL", 4) == 0)
		do_mail(t, arg);
	else if (vlen == 4 && strncasecmp(line, "RCPT", 4) == 0)
		do_rcpt(t, arg);
	else if (vlen == 4 && strncasecmp(line, "DATA", 4) == 0)
		do_data(t);
	else if (vlen == 4 && strncasecmp(line, "RSET", 4) == 0) {
		txn_reset(t);
		reply("250 2.0.0 Ok");
	} else if (vlen == 4 && strncasecmp(line, "NOOP", 4) == 0)
		reply("250 2.0.0 Ok");
	else if (vlen == 4 && strncasecmp(line, "QUIT", 4) == 0) {
		reply("221 2.0.0 Bye");
		t->quit = true;
	} else if (vlen == 4 && strncasecmp(line, "VRFY", 4) == 0)
		reply("502 5.5.1 VRFY command is disabled");
	else
		reply("502 5.5.2 Error: command not recognized");
}

/* A command line, CR LF or LF removed; false at the end of input.  A
 * line too long is read to its end and answered here. */
static bool read_command(char *buf, size_t size, bool *too_long)
{
	size_t n;
	int c;

	*too_long = false;
	if (fgets(buf, (int) size, stdin) == NULL)
		return false;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n') {
		buf[--n] = 0;
		if (n > 0 && buf[n - 1] == '\r')
			buf[--n] = 0;
		return true;
	}
	while ((c = getchar()) != EOF && c != '\n')
		;
	*too_long = true;
	return c != EOF;
}

int sendmail_smtp(const struct sluice_config *sc,
		  const struct sendmail_opts *o)
{
	struct smtp_local t;
	char line[SMTP_LINE_MAX];
	bool too_long;

	memset(&t, 0, sizeof t);
	t.sc = sc;
	t.qdir = cfg_str(sc->main, "queue_directory");
	t.host = cfg_str(sc->main, "myhostname");
	t.limit = cfg_size(sc->main, "message_size_limit");
	t.rcpt_limit = cfg_int(sc->main, "smtpd_recipient_limit");
	reply("220 %s", cfg_str(sc->main, "smtpd_banner"));
	while (!t.quit && read_command(line, sizeof line, &too_long)) {
		if (too_long)
			reply("500 5.5.0 Error: line too long");
		else
			command(&t, line);
	}
	txn_reset(&t);
	return EX_OK;
}
