/*
 * master_cf.c - read master.cf, Postfix's service table.
 *
 *   service type private unpriv chroot wakeup maxproc command [args]
 *   smtp       inet n - n - - smtpd
 *   submission inet n - n - - smtpd -o smtpd_tls_security_level=encrypt
 *   127.0.0.1:2525 inet - - - - - smtpd
 *     -o { smtpd_banner = $myhostname ESMTP test listener }
 *
 * Same line rules as main.cf (continuation lines, "#" comments).  A field
 * that starts with "{" runs to its matching "}", so "-o { name = value }"
 * may hold spaces, as in Postfix 3.
 *
 * What it promises: "inet" services whose command is "smtpd" become
 * listeners; services of another type whose command is a delivery agent
 * (smtp, lmtp, local, virtual, pipe, discard, error) become transports,
 * keeping their -o overrides and their arguments (pipe's flags=, user=,
 * argv=...); a "qmgr" (or "oqmgr") service turns the queue manager on, as
 * in Postfix; every other line is checked for shape and otherwise ignored
 * (a pasted Postfix master.cf has pickup, cleanup, rewrite, ... lines).  The
 * private, unpriv, chroot and wakeup columns mean nothing in sluice's
 * process model: they are checked, ignored, and a listener line that sets
 * them gets a warning.  The service column may be a port, a service name
 * (getservbyname, with smtp 25, submission 587 and smtps/submissions 465
 * built in), host:port or [ipv6]:port; the listener's port is always the
 * resolved number.  -o overrides are collected here and resolved (names
 * checked, values expanded and typed) by config.c.
 */
#include <ctype.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define MASTER_FIELDS_MAX	256

struct fields {
	char *f[MASTER_FIELDS_MAX];
	int n;
};

struct master_reader {
	struct cf_master *m;
	struct diag *d;
};

/* ---- fields ------------------------------------------------------------ */

/* Split on blanks; a field starting with "{" ends at its matching "}".
 * Returns -1 (with *why) on an unbalanced brace or too many fields. */
static int split_fields(const char *s, struct fields *fl, const char **why)
{
	fl->n = 0;
	for (;;) {
		const char *start;
		int depth = 0;

		while (*s && isspace((unsigned char)*s))
			s++;
		if (*s == 0)
			return 0;
		if (fl->n == MASTER_FIELDS_MAX) {
			*why = "too many fields; split the service into fewer options";
			return -1;
		}
		start = s;
		if (*s == '{') {
			for (; *s; s++) {
				if (*s == '{')
					depth++;
				else if (*s == '}' && --depth == 0)
					break;
			}
			if (*s == 0) {
				*why = "a \"{\" without its closing \"}\"; add the \"}\"";
				return -1;
			}
			s++;
		} else {
			while (*s && !isspace((unsigned char)*s))
				s++;
		}
		if ((fl->f[fl->n] = strndup(start, (size_t)(s - start))) == NULL) {
			*why = "out of memory; free some memory and try again";
			return -1;
		}
		fl->n++;
	}
}

static void free_fields(struct fields *fl)
{
	for (int i = 0; i < fl->n; i++)
		free(fl->f[i]);
	fl->n = 0;
}

static char *trim_dup(const char *s, size_t n)
{
	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	return strndup(s, n);
}

/* ---- the service address --------------------------------------------- */

static const struct { const char *name; const char *port; } builtin_ports[] = {
	{ "smtp", "25" }, { "submission", "587" }, { "smtps", "465" },
	{ "submissions", "465" },
};

/* A port number or service name -> the number as text (malloc'ed). */
static char *resolve_port(const char *s)
{
	struct servent *se;
	char buf[16];
	char *end;
	long v;

	if (*s && strspn(s, "0123456789") == strlen(s)) {
		v = strtol(s, &end, 10);
		if (v < 1 || v > 65535 || strlen(s) > 5)
			return NULL;
		snprintf(buf, sizeof buf, "%ld", v);
		return strdup(buf);
	}
	if (*s && (se = getservbyname(s, "tcp")) != NULL) {
		snprintf(buf, sizeof buf, "%d", ntohs((unsigned short)se->s_port));
		return strdup(buf);
	}
	for (size_t i = 0; i < sizeof builtin_ports / sizeof builtin_ports[0]; i++)
		if (strcmp(s, builtin_ports[i].name) == 0)
			return strdup(builtin_ports[i].port);
	return NULL;
}

/* Split "port", "host:port" or "[v6]:port" into l->host and l->port.
 * Returns NULL or what is wrong (with the fix). */
static const char *parse_service(const char *svc, struct listener *l)
{
	const char *colon, *portpart = svc;
	size_t hlen = 0;
	const char *host = NULL;

	if (svc[0] == '[') {
		const char *rb = strchr(svc, ']');

		if (rb == NULL || rb[1] != ':')
			return "is not [address]:port; write e.g. \"[::1]:25\"";
		host = svc + 1;
		hlen = (size_t)(rb - host);
		portpart = rb + 2;
	} else if ((colon = strrchr(svc, ':')) != NULL) {
		if (memchr(svc, ':', (size_t)(colon - svc)) != NULL)
			return "has an IPv6 address without brackets; write e.g. \"[::1]:25\"";
		host = svc;
		hlen = (size_t)(colon - svc);
		portpart = colon + 1;
	}
	if (host && hlen > 0 && (l->host = strndup(host, hlen)) == NULL)
		return "could not be stored: out of memory";
	if ((l->port = resolve_port(portpart)) == NULL)
		return "has an unknown port; use a number from 1 to 65535, or a service name from /etc/services";
	return NULL;
}

/* ---- columns ------------------------------------------------------------ */

static bool valid_ynd(const char *s)
{
	return strcmp(s, "y") == 0 || strcmp(s, "n") == 0 ||
	       strcmp(s, "-") == 0;
}

static bool valid_wakeup(const char *s)
{
	size_t n = strspn(s, "0123456789");

	return strcmp(s, "-") == 0 ||
	       (n > 0 && (s[n] == 0 || (s[n] == '?' && s[n + 1] == 0)));
}

static bool valid_maxproc(const char *s, int *v)
{
	size_t n = strspn(s, "0123456789");

	if (strcmp(s, "-") == 0) {
		*v = 0;
		return true;
	}
	if (n == 0 || s[n] != 0 || n > 6)
		return false;
	*v = atoi(s);
	return true;
}

static bool valid_type(const char *s)
{
	static const char *const types[] = {
		"inet", "unix", "unix-dgram", "fifo", "pass",
	};

	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strcmp(s, types[i]) == 0)
			return true;
	return false;
}

/* Check columns 2-7; returns false after reporting an error. */
static bool check_columns(struct master_reader *mr, struct fields *fl,
			  int line, int *maxproc)
{
	static const char *const ynd[] = { NULL, NULL, "private", "unpriv", "chroot" };
	const char *path = mr->m->path;

	if (!valid_type(fl->f[1])) {
		diag_add(mr->d, DIAG_ERROR, path, line,
			 "unknown service type \"%s\"; use inet, unix, unix-dgram, fifo or pass (sluice listens on inet services)",
			 fl->f[1]);
		return false;
	}
	for (int c = 2; c <= 4; c++) {
		if (!valid_ynd(fl->f[c])) {
			diag_add(mr->d, DIAG_ERROR, path, line,
				 "the %s column is \"%s\"; write y, n or -",
				 ynd[c], fl->f[c]);
			return false;
		}
	}
	if (!valid_wakeup(fl->f[5])) {
		diag_add(mr->d, DIAG_ERROR, path, line,
			 "the wakeup column is \"%s\"; write a number of seconds or -",
			 fl->f[5]);
		return false;
	}
	if (!valid_maxproc(fl->f[6], maxproc)) {
		diag_add(mr->d, DIAG_ERROR, path, line,
			 "the maxproc column is \"%s\"; write a number or -",
			 fl->f[6]);
		return false;
	}
	return true;
}

/* A listener line that sets private, unpriv, chroot or wakeup: say these
 * are ignored, once, naming them ("the private (n) and chroot (y)
 * columns"). */
static void warn_ignored_columns(struct master_reader *mr, struct fields *fl,
				 int line)
{
	static const char *const names[] = { "private", "unpriv", "chroot", "wakeup" };
	char what[512];
	size_t len = 0;
	int set[4], n = 0;

	for (int c = 0; c < 4; c++)
		if (strcmp(fl->f[c + 2], "-") != 0)
			set[n++] = c;
	if (n == 0)
		return;
	what[0] = 0;
	for (int k = 0; k < n && len < sizeof what; k++)
		len += (size_t)snprintf(what + len, sizeof what - len,
					"%s%s (%s)",
					k == 0 ? "" : k == n - 1 ? " and " : ", ",
					names[set[k]], fl->f[set[k] + 2]);
	diag_add(mr->d, DIAG_WARNING, mr->m->path, line,
		 "the %s column%s no meaning in sluice and %s ignored; write \"-\" there to silence this warning",
		 what, n > 1 ? "s have" : " has", n > 1 ? "are" : "is");
}

/* ---- -o overrides -------------------------------------------------------- */

static int add_override(struct cf_service *svc, const char *nv, int line,
			struct master_reader *mr)
{
	const char *eq;
	struct cf_override *o;
	size_t n = strlen(nv);

	if (n >= 2 && nv[0] == '{' && nv[n - 1] == '}') {
		nv++;
		n -= 2;
	}
	eq = memchr(nv, '=', n);
	if (eq == NULL) {
		diag_add(mr->d, DIAG_ERROR, mr->m->path, line,
			 "-o \"%.*s\" has no \"=\"; write -o name=value",
			 (int)(n > 60 ? 60 : n), nv);
		return -1;
	}
	o = realloc(svc->o, (size_t)(svc->no + 1) * sizeof *o);
	if (o == NULL)
		return -1;
	svc->o = o;
	o = &svc->o[svc->no];
	o->name = trim_dup(nv, (size_t)(eq - nv));
	o->value = trim_dup(eq + 1, n - (size_t)(eq + 1 - nv));
	o->line = line;
	if (o->name == NULL || o->value == NULL) {
		free(o->name);
		free(o->value);
		return -1;
	}
	if (o->name[0] == 0) {
		diag_add(mr->d, DIAG_ERROR, mr->m->path, line,
			 "-o \"=%s\" has no parameter name; write -o name=value",
			 o->value);
		free(o->name);
		free(o->value);
		return -1;
	}
	svc->no++;
	return 0;
}

/* The arguments after "smtpd": -o pairs; anything else is ignored with a
 * warning. */
static void parse_args(struct master_reader *mr, struct cf_service *svc,
		       struct fields *fl, int line)
{
	for (int i = 8; i < fl->n; i++) {
		const char *a = fl->f[i];

		if (strcmp(a, "-o") == 0) {
			if (i + 1 == fl->n) {
				diag_add(mr->d, DIAG_ERROR, mr->m->path, line,
					 "-o at the end of the line; write -o name=value");
				return;
			}
			add_override(svc, fl->f[++i], line, mr);
		} else if (strncmp(a, "-o", 2) == 0) {
			add_override(svc, a + 2, line, mr);
		} else {
			diag_add(mr->d, DIAG_WARNING, mr->m->path, line,
				 "smtpd argument \"%s\" has no meaning in sluice and is ignored; only -o name=value is used",
				 a);
		}
	}
}

/* ---- services ---------------------------------------------------------- */

static bool same_address(const struct listener *a, const struct listener *b)
{
	const char *ha = a->host ? a->host : "", *hb = b->host ? b->host : "";

	return strcmp(a->port, b->port) == 0 && strcmp(ha, hb) == 0;
}

static void free_args(char **args)
{
	for (int i = 0; args && args[i]; i++)
		free(args[i]);
	free(args);
}

static void service_free(struct cf_service *svc)
{
	struct listener *l = &svc->l;

	free(l->service);
	free(l->host);
	free(l->port);
	free(l->command);
	free(l->file);
	for (int i = 0; i < svc->no; i++) {
		free(svc->o[i].name);
		free(svc->o[i].value);
	}
	free(svc->o);
	free_args(svc->args);
}

static bool duplicate_transport(struct master_reader *mr, struct cf_service *svc)
{
	for (int i = 0; i < mr->m->n; i++) {
		const struct cf_service *o = &mr->m->v[i];

		if (!o->transport || strcmp(o->l.service, svc->l.service) != 0)
			continue;
		diag_add(mr->d, DIAG_ERROR, mr->m->path, svc->l.line,
			 "transport \"%s\" is already declared at line %d; remove one of them or rename it",
			 svc->l.service, o->l.line);
		return true;
	}
	return false;
}

static bool duplicate(struct master_reader *mr, struct cf_service *svc)
{
	if (svc->transport)
		return duplicate_transport(mr, svc);
	for (int i = 0; i < mr->m->n; i++) {
		if (mr->m->v[i].transport ||
		    !same_address(&mr->m->v[i].l, &svc->l))
			continue;
		diag_add(mr->d, DIAG_ERROR, mr->m->path, svc->l.line,
			 "service \"%s\" listens on the same address and port as \"%s\" at line %d; remove one of them or change its address",
			 svc->l.service, mr->m->v[i].l.service,
			 mr->m->v[i].l.line);
		return true;
	}
	return false;
}

static void add_service(struct master_reader *mr, struct cf_service *svc)
{
	struct cf_master *m = mr->m;

	if (duplicate(mr, svc)) {
		service_free(svc);
		return;
	}
	if (m->n == m->cap) {
		int cap = m->cap ? m->cap * 2 : 8;
		struct cf_service *v = realloc(m->v, (size_t)cap * sizeof *v);

		if (v == NULL) {
			diag_add(mr->d, DIAG_ERROR, m->path, svc->l.line,
				 "out of memory; free some memory and try again");
			service_free(svc);
			return;
		}
		m->v = v;
		m->cap = cap;
	}
	m->v[m->n++] = *svc;
}

static void listener_line(struct master_reader *mr, struct fields *fl,
			  int line, int maxproc)
{
	struct cf_service svc = { 0 };
	const char *why;

	svc.l.kind = LISTEN_INET;
	svc.l.fd = -1;
	svc.l.line = line;
	svc.l.maxproc = maxproc;
	svc.l.service = strdup(fl->f[0]);
	svc.l.command = strdup(fl->f[7]);
	svc.l.file = strdup(mr->m->path);
	if (!svc.l.service || !svc.l.command || !svc.l.file) {
		diag_add(mr->d, DIAG_ERROR, mr->m->path, line,
			 "out of memory; free some memory and try again");
		service_free(&svc);
		return;
	}
	if ((why = parse_service(fl->f[0], &svc.l)) != NULL) {
		diag_add(mr->d, DIAG_ERROR, mr->m->path, line,
			 "service \"%s\" %s", fl->f[0], why);
		service_free(&svc);
		return;
	}
	warn_ignored_columns(mr, fl, line);
	parse_args(mr, &svc, fl, line);
	add_service(mr, &svc);
}

/* ---- transports ------------------------------------------------------ */

/* The delivery agents a transport's command may name. */
static const char *const transport_commands[] = {
	"smtp", "lmtp", "local", "virtual", "pipe", "discard", "error", NULL
};

static bool is_transport_command(const char *cmd)
{
	for (int i = 0; transport_commands[i]; i++)
		if (strcmp(cmd, transport_commands[i]) == 0)
			return true;
	return false;
}

static bool has_arg(char *const *args, const char *prefix)
{
	for (int i = 0; args && args[i]; i++)
		if (strncmp(args[i], prefix, strlen(prefix)) == 0)
			return true;
	return false;
}

/* user=root or user=root:group (pipe(8) refuses to run as root). */
static bool is_root_user(char *const *args)
{
	for (int i = 0; args[i]; i++)
		if (strncmp(args[i], "user=", 5) == 0)
			return strncmp(args[i] + 5, "root", 4) == 0 &&
			       (args[i][9] == 0 || args[i][9] == ':');
	return false;
}

/* Options first (-o name=value, as Postfix's daemons read them with
 * getopt), then the agent's arguments, kept as they are. */
static int transport_args(struct master_reader *mr, struct cf_service *svc,
			  struct fields *fl, int line)
{
	int i = 8, n = 0;

	while (i < fl->n && strncmp(fl->f[i], "-o", 2) == 0) {
		if (strcmp(fl->f[i], "-o") != 0) {
			add_override(svc, fl->f[i++] + 2, line, mr);
		} else if (i + 1 < fl->n) {
			add_override(svc, fl->f[i + 1], line, mr);
			i += 2;
		} else {
			diag_add(mr->d, DIAG_ERROR, mr->m->path, line,
				 "-o at the end of the line; write -o name=value");
			i++;
		}
	}
	if ((svc->args = calloc((size_t)(fl->n - i) + 1, sizeof *svc->args)) == NULL)
		return -1;
	for (; i < fl->n; i++)
		if ((svc->args[n++] = strdup(fl->f[i])) == NULL)
			return -1;
	return 0;
}

/* What a transport's arguments must say: pipe(8) needs a command and a
 * user to run it as; the other agents take none. */
static void check_transport_args(struct master_reader *mr,
				 const struct cf_service *svc, int line)
{
	const char *name = svc->l.service;

	if (strcmp(svc->l.command, "pipe") != 0) {
		if (svc->args[0] != NULL)
			diag_add(mr->d, DIAG_WARNING, mr->m->path, line,
				 "%s argument \"%s\" has no meaning in sluice and is ignored; only -o name=value is used",
				 svc->l.command, svc->args[0]);
		return;
	}
	if (!has_arg(svc->args, "argv="))
		diag_add(mr->d, DIAG_ERROR, mr->m->path, line,
			 "pipe service \"%s\" has no argv=; end the line with argv=/path/to/command and its arguments",
			 name);
	if (!has_arg(svc->args, "user="))
		diag_add(mr->d, DIAG_ERROR, mr->m->path, line,
			 "pipe service \"%s\" has no user=; add user=NAME, the unprivileged user that runs the command",
			 name);
	else if (is_root_user(svc->args))
		diag_add(mr->d, DIAG_ERROR, mr->m->path, line,
			 "pipe service \"%s\" runs its command as root; name an unprivileged user in user=",
			 name);
}

static void transport_line(struct master_reader *mr, struct fields *fl,
			   int line, int maxproc)
{
	struct cf_service svc = { 0 };

	svc.transport = true;
	svc.l.fd = -1;
	svc.l.line = line;
	svc.l.maxproc = maxproc;
	svc.l.service = strdup(fl->f[0]);
	svc.l.command = strdup(fl->f[7]);
	svc.l.file = strdup(mr->m->path);
	if (!svc.l.service || !svc.l.command || !svc.l.file ||
	    transport_args(mr, &svc, fl, line) < 0) {
		diag_add(mr->d, DIAG_ERROR, mr->m->path, line,
			 "out of memory; free some memory and try again");
		service_free(&svc);
		return;
	}
	check_transport_args(mr, &svc, line);
	add_service(mr, &svc);
}

const struct transport *config_transport(const struct sluice_config *sc,
					 const char *name)
{
	for (int i = 0; i < sc->ntransports; i++)
		if (strcmp(sc->transports[i].name, name) == 0)
			return &sc->transports[i];
	return NULL;
}

/* ---- one line -------------------------------------------------------- */

static void service_line(struct master_reader *mr, struct fields *fl,
			 int first, int maxproc)
{
	bool inet = strcmp(fl->f[1], "inet") == 0;

	if (inet && strcmp(fl->f[7], "smtpd") == 0)
		listener_line(mr, fl, first, maxproc);
	else if (inet)
		diag_add(mr->d, DIAG_WARNING, mr->m->path, first,
			 "service \"%s\" runs \"%s\", which sluice does not have, so nothing listens there; run smtpd instead",
			 fl->f[0], fl->f[7]);
	else if (is_transport_command(fl->f[7]))
		transport_line(mr, fl, first, maxproc);
	else if (strcmp(fl->f[7], "qmgr") == 0 || strcmp(fl->f[7], "oqmgr") == 0)
		mr->m->qmgr = true;
}

static void master_logical(const char *text, int first, int last, void *arg)
{
	struct master_reader *mr = arg;
	struct fields fl;
	const char *why = NULL;
	int maxproc = 0;

	if (split_fields(text, &fl, &why) < 0) {
		diag_add(mr->d, DIAG_ERROR, mr->m->path, first, "%s", why);
	} else if (fl.n < 8) {
		diag_add(mr->d, DIAG_ERROR, mr->m->path, first,
			 "the line has %d field%s but a service needs 8; write \"service type private unpriv chroot wakeup maxproc command [args]\", e.g. \"smtp inet n - n - - smtpd\"",
			 fl.n, fl.n == 1 ? "" : "s");
	} else if (check_columns(mr, &fl, first, &maxproc)) {
		service_line(mr, &fl, first, maxproc);
	}
	free_fields(&fl);
}

int cf_read_master(const char *path, struct cf_master *m, struct diag *d)
{
	struct master_reader mr = { m, d };
	struct cf_reader r = { master_logical, NULL, &mr };

	memset(m, 0, sizeof *m);
	if ((m->path = strdup(path)) == NULL)
		return -1;
	if (cf_logical_lines(path, d, &r) < 0) {
		m->unreadable = true;
		return -1;
	}
	return 0;
}

void cf_master_free(struct cf_master *m)
{
	for (int i = 0; i < m->n; i++)
		service_free(&m->v[i]);
	free(m->v);
	free(m->path);
	memset(m, 0, sizeof *m);
}
