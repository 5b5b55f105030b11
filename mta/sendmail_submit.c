/*
 * sendmail_submit.c - `sendmail [-t] [-i] [-f sender] [-F name] rcpt...`:
 * read a message on stdin and drop it into maildrop/ for pickup.
 *
 * What happens to the input, as with Postfix's sendmail:
 * - line ends become LF (a CR before the LF goes); a last line without
 *   one gets one; a leading mbox "From " line is dropped;
 * - without -i (-oi) a line holding a single "." ends the message;
 * - with -t the addresses of To:, Cc: and Bcc: (Resent-To:, Resent-Cc:
 *   and Resent-Bcc: instead, when there are any) are added to the
 *   command line's recipients, and Bcc: and Resent-Bcc: are removed;
 * - a message over message_size_limit is refused (EX_DATAERR).
 * Date:, Message-ID: and From: are added by pickup when missing: it
 * knows the queue ID, and who the user is, for sure.
 *
 * The file is complete and synced before sendmail exits 0; the queue
 * manager is then woken (QMGR_REQ_WAKEUP), or finds the file when it
 * starts.
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "maildrop.h"
#include "qmgr_trigger.h"
#include "sendmail.h"

#define PIECE_MAX 8192

struct strv {
	char **v;
	int n;
};

struct submit {
	const struct sendmail_opts *o;
	struct maildrop_file *mf;
	long long limit;                /* message_size_limit, 0: none */
	long long header_limit;         /* header_size_limit */
	bool in_headers, first_line;
	char *hdr;                      /* the header being collected */
	size_t hlen;
	bool hdr_pending;
	long long hdr_total;
	struct strv to, resent;         /* -t: from headers */
	int status;                     /* first failure (sysexits), or 0 */
};

/* ==== failing ==== */

int sendmail_fail(int status, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	fprintf(stderr, "sendmail: fatal: %s\n", text);
	msg_warn("uid=%ld: %s", (long) getuid(), text);
	return status;
}

/* ==== who is sending ==== */

char *sendmail_login_name(void)
{
	struct passwd *pw = getpwuid(getuid());
	char *s;

	if (pw != NULL && pw->pw_name[0] != 0)
		return strdup(pw->pw_name);
	if (asprintf(&s, "%ld", (long) getuid()) < 0)
		return NULL;
	return s;
}

/* The passwd full name: the GECOS field to its first ',', with '&'
 * standing for the capitalised login name. */
static char *gecos_name(void)
{
	struct passwd *pw = getpwuid(getuid());
	size_t n, i, o = 0;
	char *out;

	if (pw == NULL || pw->pw_gecos == NULL)
		return NULL;
	n = strcspn(pw->pw_gecos, ",");
	if (n == 0 || (out = malloc(n * (strlen(pw->pw_name) + 1) + 1)) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (pw->pw_gecos[i] != '&') {
			out[o++] = pw->pw_gecos[i];
			continue;
		}
		memcpy(out + o, pw->pw_name, strlen(pw->pw_name));
		out[o] = (char) toupper((unsigned char) out[o]);
		o += strlen(pw->pw_name);
	}
	out[o] = 0;
	return out;
}

char *sendmail_full_name(const char *given)
{
	const char *env = getenv("NAME");
	char *s, *p;

	if (given != NULL)
		s = strdup(given);
	else if (env != NULL && *env)
		s = strdup(env);
	else
		s = gecos_name();
	if (s == NULL)
		return NULL;
	for (p = s; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			*p = ' ';
	if (strlen(s) > 200)
		s[200] = 0;
	return s;
}

/* ==== recipients ==== */

static int strv_add(const char *addr, void *arg)
{
	struct strv *sv = arg;
	char **v = realloc(sv->v, (size_t) (sv->n + 1) * sizeof *v);

	if (v == NULL)
		return -1;
	sv->v = v;
	if ((v[sv->n] = strdup(addr)) == NULL)
		return -1;
	sv->n++;
	return 0;
}

static void strv_free(struct strv *sv)
{
	int i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

/* ==== writing ==== */

static void fail(struct submit *s, int status)
{
	if (s->status == 0)
		s->status = status;
}

static void out(struct submit *s, const char *p, size_t n)
{
	if (s->status != 0)
		return;
	if (maildrop_write(s->mf, p, n) < 0) {
		sendmail_fail(EX_TEMPFAIL, "queue file write error: %s",
			      strerror(errno));
		fail(s, EX_TEMPFAIL);
	} else if (s->limit > 0 && maildrop_size(s->mf) > s->limit) {
		sendmail_fail(EX_DATAERR, "message file too big (more than "
			      "message_size_limit = %lld bytes)", s->limit);
		fail(s, EX_DATAERR);
	}
}

/* ==== headers ==== */

/* "To", "Cc", "Bcc" (0, 1, 2), plus 3 for the Resent- ones; -1 else. */
static int rcpt_header(const char *h, size_t nlen)
{
	static const char *const names[] = { "To", "Cc", "Bcc" };
	int resent = 0, i;

	if (nlen > 7 && strncasecmp(h, "Resent-", 7) == 0) {
		resent = 3;
		h += 7;
		nlen -= 7;
	}
	for (i = 0; i < 3; i++)
		if (strlen(names[i]) == nlen
		    && strncasecmp(h, names[i], nlen) == 0)
			return i + resent;
	return -1;
}

/* A complete header: take its recipients (-t), then write it unless it
 * is a Bcc: that -t removes. */
static void header_done(struct submit *s)
{
	size_t nlen = strcspn(s->hdr, ":");
	int kind = rcpt_header(s->hdr, nlen);

	s->hdr_pending = false;
	if (s->o->extract && kind >= 0) {
		if (addr_list_parse(s->hdr + nlen + 1, strv_add,
				    kind >= 3 ? &s->resent : &s->to) < 0)
			fail(s, EX_OSERR);
		if (kind % 3 == 2)
			return;         /* Bcc: recipients stay unnamed */
	}
	out(s, s->hdr, s->hlen);
	out(s, "\n", 1);
}

static bool is_header(const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < len && line[i] != ':'; i++)
		if ((unsigned char) line[i] <= ' '
		    || (unsigned char) line[i] >= 127)
			return false;
	return i > 0 && i < len;
}

static void hdr_append(struct submit *s, const char *p, size_t n)
{
	char *h = realloc(s->hdr, s->hlen + n + 1);

	if (h == NULL) {
		fail(s, EX_OSERR);
		return;
	}
	s->hdr = h;
	memcpy(h + s->hlen, p, n);
	s->hlen += n;
	h[s->hlen] = 0;
}

/* One complete line while in the headers; false when it ended them. */
static bool header_line(struct submit *s, const char *line, size_t len)
{
	if ((line[0] == ' ' || line[0] == '\t') && s->hdr_pending) {
		hdr_append(s, "\n", 1);
		hdr_append(s, line, len);
		return true;
	}
	if (s->hdr_pending)
		header_done(s);
	if (!is_header(line, len))
		return false;
	s->hlen = 0;
	hdr_append(s, line, len);
	s->hdr_pending = true;
	return true;
}

/* ==== reading ==== */

/* The next piece of input: up to a line end (then *eol, the CR LF or LF
 * removed) or PIECE_MAX bytes.  0 with *eof at the end. */
static size_t read_piece(char *buf, bool *eol, bool *eof)
{
	size_t n;
	int c;

	*eol = *eof = false;
	if (fgets(buf, PIECE_MAX, stdin) == NULL) {
		*eof = true;
		return 0;
	}
	n = strlen(buf);        /* a NUL in the input cuts the piece there */
	if (n > 0 && buf[n - 1] == '\n') {
		*eol = true;
		buf[--n] = 0;
	} else if (n > 0 && buf[n - 1] == '\r') {
		if ((c = getchar()) == '\n')
			*eol = true;
		else if (c != EOF)
			ungetc(c, stdin);
	}
	if (*eol && n > 0 && buf[n - 1] == '\r')
		buf[--n] = 0;
	return n;
}

/* The line being collected while in the headers. */
struct line_buf {
	char *p;
	size_t n;
};

static int line_add(struct line_buf *lb, const char *p, size_t n)
{
	char *np = realloc(lb->p, lb->n + n + 1);

	if (np == NULL)
		return -1;
	lb->p = np;
	memcpy(np + lb->n, p, n);
	lb->n += n;
	np[lb->n] = 0;
	return 0;
}

/* The headers end here: what was collected goes out as body text. */
static void end_headers(struct submit *s, const char *p, size_t n, bool eol)
{
	if (s->hdr_pending)
		header_done(s);
	s->in_headers = false;
	out(s, p, n);
	if (eol)
		out(s, "\n", 1);
}

/* A complete line in the header part; false at the end of the message. */
static bool head_line(struct submit *s, const char *p, size_t n)
{
	bool first = s->first_line;

	s->first_line = false;
	if (!s->o->ignore_dots && n == 1 && p[0] == '.')
		return false;
	if (first && n >= 5 && strncmp(p, "From ", 5) == 0)
		return true;    /* an mbox From_ line: dropped */
	s->hdr_total += (long long) n + 1;
	if (s->hdr_total > s->header_limit || !header_line(s, p, n))
		end_headers(s, p, n, true);
	return true;
}

/* A piece while in the headers: collected until its line is complete. */
static bool head_piece(struct submit *s, struct line_buf *lb, const char *p,
		       size_t n, bool eol)
{
	bool more = true;

	if (line_add(lb, p, n) < 0) {
		fail(s, EX_OSERR);
		return false;
	}
	if (!eol && (long long) lb->n + s->hdr_total > s->header_limit) {
		end_headers(s, lb->p, lb->n, false);    /* too long: body */
		lb->n = 0;
		return true;
	}
	if (eol) {
		more = head_line(s, lb->p, lb->n);
		lb->n = 0;
	}
	return more;
}

static void read_message(struct submit *s)
{
	char *buf = malloc(PIECE_MAX);
	struct line_buf lb = { NULL, 0 };
	bool eol, eof, at_start = true;
	size_t n;

	while (buf != NULL && s->status == 0) {
		n = read_piece(buf, &eol, &eof);
		if (eof)
			break;
		if (s->in_headers) {
			if (!head_piece(s, &lb, buf, n, eol))
				break;
		} else if (at_start && eol && n == 1 && buf[0] == '.'
			   && !s->o->ignore_dots) {
			break;
		} else {
			out(s, buf, n);
			if (eol)
				out(s, "\n", 1);
		}
		at_start = eol || (s->in_headers && lb.n == 0);
	}
	if (buf == NULL)
		fail(s, EX_OSERR);
	if (s->in_headers && lb.n > 0)
		(void) head_line(s, lb.p, lb.n);        /* last line, no LF */
	else if (!at_start)
		out(s, "\n", 1);
	if (s->hdr_pending)
		header_done(s);
	free(lb.p);
	free(buf);
}

/* ==== the submission ==== */

/* The recipients: the command line's, then -t's. */
static int collect_rcpts(struct submit *s, struct strv *all)
{
	const struct strv *hdr = s->resent.n > 0 ? &s->resent : &s->to;
	int i;

	for (i = 0; i < s->o->nrcpt; i++)
		if (addr_list_parse(s->o->rcpt[i], strv_add, all) < 0)
			return sendmail_fail(EX_OSERR, "out of memory");
	for (i = 0; i < hdr->n; i++)
		if (strv_add(hdr->v[i], all) < 0)
			return sendmail_fail(EX_OSERR, "out of memory");
	for (i = 0; i < all->n; i++)
		if (!maildrop_addr_ok(all->v[i], false))
			return sendmail_fail(EX_DATAERR, "bad recipient "
					     "address: %s", all->v[i]);
	if (all->n == 0 && s->o->extract)
		return sendmail_fail(EX_DATAERR, "no recipient addresses found "
				     "in the message header");
	return 0;
}

/* The sender: -f's address without <> around it, else the login name. */
static char *envelope_sender(const char *given)
{
	size_t n;

	if (given == NULL)
		return sendmail_login_name();
	n = strlen(given);
	if (n >= 2 && given[0] == '<' && given[n - 1] == '>')
		return strndup(given + 1, n - 2);
	return strdup(given);
}

static int finish(struct submit *s, const char *qdir)
{
	struct maildrop_env env = { 0 };
	struct strv all = { NULL, 0 };
	char *sender, *fullname, err[256];
	int rc;

	if ((rc = collect_rcpts(s, &all)) != 0) {
		strv_free(&all);
		maildrop_abort(s->mf);
		return rc;
	}
	if ((sender = envelope_sender(s->o->sender)) == NULL) {
		strv_free(&all);
		maildrop_abort(s->mf);
		return sendmail_fail(EX_OSERR, "out of memory");
	}
	fullname = sendmail_full_name(s->o->fullname);
	env.sender = sender;
	env.fullname = fullname;
	env.rcpt = all.v;
	env.nrcpt = all.n;
	if (s->o->verbose)
		fprintf(stderr, "sendmail: %s/%s: %d recipient%s\n",
			MAILDROP_DIR, maildrop_name(s->mf), all.n,
			all.n == 1 ? "" : "s");
	rc = maildrop_finish(s->mf, &env, err, sizeof err) < 0
		? sendmail_fail(EX_TEMPFAIL, "%s", err) : 0;
	if (rc == 0)
		(void) qmgr_trigger_send(qdir, QMGR_REQ_WAKEUP);
	strv_free(&all);
	free(sender);
	free(fullname);
	return rc;
}

static bool sender_ok(const char *given)
{
	char *s;
	bool ok;

	if (given == NULL)
		return true;
	if ((s = envelope_sender(given)) == NULL)
		return false;
	ok = maildrop_addr_ok(s, true);
	free(s);
	return ok;
}

int sendmail_deliver(const struct sluice_config *sc,
		     const struct sendmail_opts *o)
{
	const char *qdir = cfg_str(sc->main, "queue_directory");
	struct submit s;
	char err[512];
	int rc;

	if (o->nrcpt == 0 && !o->extract)
		return sendmail_fail(EX_USAGE, "recipient addresses must be "
				     "specified on the command line or via "
				     "the -t option");
	if (!sender_ok(o->sender))
		return sendmail_fail(EX_USAGE, "bad sender address: %s",
				     o->sender);
	memset(&s, 0, sizeof s);
	s.o = o;
	s.limit = cfg_size(sc->main, "message_size_limit");
	s.header_limit = cfg_size(sc->main, "header_size_limit");
	s.in_headers = s.first_line = true;
	if ((s.mf = maildrop_create(qdir, err, sizeof err)) == NULL)
		return sendmail_fail(EX_TEMPFAIL, "%s", err);
	read_message(&s);
	if (s.status != 0) {
		maildrop_abort(s.mf);
		rc = s.status;
	} else {
		rc = finish(&s, qdir);
	}
	strv_free(&s.to);
	strv_free(&s.resent);
	free(s.hdr);
	return rc;
}
