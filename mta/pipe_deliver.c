/*
 * pipe_deliver.c - pipe_deliver() (delivery.h): Postfix's pipe(8), a
 * command from master.cf fed the message on its standard input.
 *
 * master.cf arguments, as Postfix's (argv= last, taking the rest):
 *   flags=DFORhqu.>B  D Delivered-To: for each recipient (and a message
 *                     that already has it for one bounces that one: 5.4.6
 *                     mail forwarding loop), F mbox From_ line, O
 *                     X-Original-To:, R Return-Path:, h ${nexthop} and
 *                     ${domain} in lower case, u ${user}, ${mailbox} and
 *                     the local part of ${recipient} in lower case,
 *                     . dot stuffing, > ">From " quoting, B an empty line
 *                     at the end; q and X are accepted and change nothing
 *   user=name[:group] required; never root (uid or gid 0)
 *   size=N            bigger messages bounce (5.2.3)
 *   eol=\r\n          line ends (default \n)
 *   directory=path    the command's working directory (default /)
 *   null_sender=x     ${sender} for the null sender (default MAILER-DAEMON)
 *   argv=/path args   ${sender} ${nexthop} ${size} ${queue_id}
 *                     ${client_address} ${client_hostname} ${client_helo}
 *                     ${client_protocol} ${sasl_method} ${sasl_username},
 *                     and per recipient ${recipient} ${original_recipient}
 *                     ${user} ${extension} ${mailbox} ${domain}: an
 *                     argument naming one of those is repeated for each
 *                     recipient, as Postfix does; "$$" is a "$", and a
 *                     "$" before anything but a name ("$*", "$1") stays;
 *                     "{ an argument with blanks }" is one argument,
 *                     without the braces (Postfix 3)
 *
 * One command runs for all the request's recipients (the queue manager
 * decides how many a request holds), executed directly (no shell), in a
 * child that takes user='s ids for good before anything else; the time
 * limit is command_time_limit (per transport with -o).  Exit 0 delivers
 * every recipient ("delivered via NAME service"), 75 defers, other
 * statuses bounce with the command's output (local_command.c).  A bad
 * master.cf entry defers with 4.3.5 and says what is wrong.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "config.h"
#include "local_int.h"
#include "log.h"

struct popts {
	const char *flags;
	char user[128];
	char group[128];
	long long size;
	bool crlf;
	const char *directory;
	const char *null_sender;
	char *const *argv;              /* from argv=, NULL-terminated */
};

struct pjob {
	struct event_base *base;
	struct delivery_request *req;
	delivery_done_fn done;
	void *arg;
	struct popts o;
	char **seen_dt;
	bool *send;                     /* the recipients the command gets */
	char **argv;                    /* expanded */
	const char **dt;                /* Delivered-To: values */
	int argc, ndt;
	char err[LOCAL_TEXT_MAX];       /* why nothing was delivered ... */
	const char *err_dsn;            /* ... with this code (4.3.5) */
};

/* ---- master.cf arguments ---- */

static bool has_flag(const struct popts *o, char f)
{
	return o->flags && strchr(o->flags, f) != NULL;
}

static int parse_user(struct pjob *j, const char *v)
{
	const char *colon = strchr(v, ':');
	size_t n = colon ? (size_t)(colon - v) : strlen(v);

	if (n == 0 || n >= sizeof j->o.user || (colon && strlen(colon + 1)
						>= sizeof j->o.group)) {
		snprintf(j->err, sizeof j->err, "bad user= value \"%s\"", v);
		return -1;
	}
	snprintf(j->o.user, sizeof j->o.user, "%.*s", (int)n, v);
	snprintf(j->o.group, sizeof j->o.group, "%s", colon ? colon + 1 : "");
	return 0;
}

static int parse_attr(struct pjob *j, const char *a)
{
	const char *v = strchr(a, '=') + 1;

	if (strncmp(a, "flags=", 6) == 0) {
		if (v[strspn(v, "DFORhqu.>BX")] != 0) {
			snprintf(j->err, sizeof j->err, "unknown flag in \"%s\"", a);
			return -1;
		}
		j->o.flags = v;
	} else if (strncmp(a, "user=", 5) == 0) {
		return parse_user(j, v);
	} else if (strncmp(a, "size=", 5) == 0) {
		j->o.size = strtoll(v, NULL, 10);
	} else if (strncmp(a, "eol=", 4) == 0) {
		j->o.crlf = strcmp(v, "\\r\\n") == 0;
	} else if (strncmp(a, "directory=", 10) == 0) {
		j->o.directory = v;
	} else if (strncmp(a, "null_sender=", 12) == 0) {
		j->o.null_sender = v;
	} else {
		snprintf(j->err, sizeof j->err, "unknown attribute \"%s\"", a);
		return -1;
	}
	return 0;
}

static int parse_args(struct pjob *j)
{
	char *const *a = j->req->agent_args;

	j->o.null_sender = "MAILER-DAEMON";
	for (; a && *a; a++) {
		if (strncmp(*a, "argv=", 5) == 0) {
			j->o.argv = a;
			break;
		}
		if (strchr(*a, '=') == NULL || parse_attr(j, *a) < 0) {
			if (!j->err[0])
				snprintf(j->err, sizeof j->err,
					 "bad attribute \"%s\"", *a);
			return -1;
		}
	}
	if (j->o.argv == NULL || (*j->o.argv)[5] != '/') {
		snprintf(j->err, sizeof j->err, "argv=/path/of/command is required");
		return -1;
	}
	if (!j->o.user[0]) {
		snprintf(j->err, sizeof j->err, "user= is required");
		return -1;
	}
	return 0;
}

/* ---- macros ---- */

struct sb {
	char *s;
	size_t len, cap;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		if ((b->s = realloc(b->s, b->cap)) == NULL)
			msg_fatal("out of memory");
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
}

static const char *const per_rcpt[] = {
	"recipient", "original_recipient", "user", "extension", "mailbox",
	"domain", NULL
};

static bool is_per_rcpt(const char *name, size_t n)
{
	for (int i = 0; per_rcpt[i]; i++)
		if (strlen(per_rcpt[i]) == n && strncmp(per_rcpt[i], name, n) == 0)
			return true;
	return false;
}

static void fold(char *s, size_t n)
{
	for (size_t i = 0; i < n && s[i]; i++)
		s[i] = (char)tolower((unsigned char)s[i]);
}

/* A recipient's value: buf holds it. */
static void rcpt_value(const struct pjob *j, const struct delivery_rcpt *r,
		       const char *name, char *buf, size_t size)
{
	const char *at = strrchr(r->addr, '@');
	const char *delims = cfg_str(j->req->cfg, "recipient_delimiter");
	size_t lp = at ? (size_t)(at - r->addr) : strlen(r->addr);
	size_t u = *delims ? strcspn(r->addr, delims) : lp;

	if (u == 0 || u > lp)
		u = lp;
	if (strcmp(name, "recipient") == 0) {
		snprintf(buf, size, "%s", r->addr);
		if (has_flag(&j->o, 'u'))
			fold(buf, lp);
		return;
	}
	if (strcmp(name, "original_recipient") == 0)
		snprintf(buf, size, "%s", r->orig_addr ? r->orig_addr : r->addr);
	else if (strcmp(name, "user") == 0)
		snprintf(buf, size, "%.*s", (int)u, r->addr);
	else if (strcmp(name, "extension") == 0)
		snprintf(buf, size, "%.*s", u < lp ? (int)(lp - u - 1) : 0,
			 u < lp ? r->addr + u + 1 : "");
	else if (strcmp(name, "mailbox") == 0)
		snprintf(buf, size, "%.*s", (int)lp, r->addr);
	else
		snprintf(buf, size, "%s", at ? at + 1 : "");
	if (strcmp(name, "domain") == 0 ? has_flag(&j->o, 'h')
	    : has_flag(&j->o, 'u'))
		fold(buf, size);
}

static const char *msg_value(const struct pjob *j, const char *name,
			     char *buf, size_t size)
{
	const struct queue_envelope *e = j->req->env;
	const char *v = NULL;

	if (strcmp(name, "sender") == 0)
		v = *e->sender ? e->sender : j->o.null_sender;
	else if (strcmp(name, "nexthop") == 0) {
		snprintf(buf, size, "%s", j->req->nexthop ? j->req->nexthop : "");
		if (has_flag(&j->o, 'h'))
			fold(buf, size);
		return buf;
	} else if (strcmp(name, "size") == 0) {
		snprintf(buf, size, "%lld", e->size);
		return buf;
	} else if (strcmp(name, "queue_id") == 0)
		v = j->req->queue_id;
	else if (strcmp(name, "client_address") == 0)
		v = e->client_addr;
	else if (strcmp(name, "client_hostname") == 0)
		v = e->client_name;
	else if (strcmp(name, "client_helo") == 0)
		v = e->helo;
	else if (strcmp(name, "client_protocol") == 0)
		v = e->proto;
	else if (strcmp(name, "sasl_method") == 0)
		v = e->sasl_method;
	else if (strcmp(name, "sasl_username") == 0)
		v = e->sasl_username;
	else
		return NULL;
	return v ? v : "";
}

/* The name at p ("$name" or "${name}"): its length; *skip bytes used. */
static size_t macro_name(const char *p, const char **name, size_t *skip)
{
	size_t n;

	if (p[1] == '{') {
		const char *end = strchr(p + 2, '}');

		if (end == NULL)
			return 0;
		*name = p + 2;
		n = (size_t)(end - *name);
		*skip = n + 3;
		return n;
	}
	*name = p + 1;
	n = strspn(*name, "abcdefghijklmnopqrstuvwxyz_");
	*skip = n + 1;
	return n;
}

/* Expand one argument (for recipient r, or NULL).  -1: bad macro. */
static int expand(struct pjob *j, const char *arg,
		  const struct delivery_rcpt *r, struct sb *out)
{
	char name[64], buf[1100];
	const char *p, *nm, *v;
	size_t n, skip;

	for (p = arg; *p; p += skip) {
		skip = 1;
		if (*p != '$') {
			sb_add(out, p, 1);
			continue;
		}
		if (p[1] == '$') {
			sb_add(out, "$", 1);
			skip = 2;
			continue;
		}
		if (p[1] != '{' && !islower((unsigned char)p[1])) {
			sb_add(out, "$", 1);    /* "$*", "$1": not a macro */
			continue;
		}
		if ((n = macro_name(p, &nm, &skip)) == 0 || n >= sizeof name)
			goto bad;
		snprintf(name, sizeof name, "%.*s", (int)n, nm);
		if (r != NULL && is_per_rcpt(name, n)) {
			rcpt_value(j, r, name, buf, sizeof buf);
			v = buf;
		} else if ((v = msg_value(j, name, buf, sizeof buf)) == NULL)
			goto bad;
		sb_add(out, v, strlen(v));
	}
	if (out->s == NULL)
		sb_add(out, "", 0);
	return 0;
bad:
	snprintf(j->err, sizeof j->err, "unknown macro in argv= argument \"%s\"",
		 arg);
	return -1;
}

static bool names_rcpt(const char *arg)
{
	const char *p, *nm;
	size_t n, skip;

	for (p = strchr(arg, '$'); p; p = strchr(p + 1, '$'))
		if ((n = macro_name(p, &nm, &skip)) > 0 && is_per_rcpt(nm, n))
			return true;
	return false;
}

static void add_arg(struct pjob *j, char *s)
{
	if ((j->argv = realloc(j->argv, (size_t)(j->argc + 2) * sizeof *j->argv))
	    == NULL)
		msg_fatal("out of memory");
	j->argv[j->argc++] = s;
	j->argv[j->argc] = NULL;
}

/* Postfix 3's "{ an argument with blanks }": without the braces and the
 * blanks next to them.  *copy is what to free (NULL: arg as it is). */
static const char *unbrace(const char *arg, char **copy)
{
	size_t n = strlen(arg);

	*copy = NULL;
	if (n < 2 || arg[0] != '{' || arg[n - 1] != '}')
		return arg;
	for (arg++, n -= 2; n > 0 && isspace((unsigned char)*arg); n--)
		arg++;
	while (n > 0 && isspace((unsigned char)arg[n - 1]))
		n--;
	if ((*copy = strndup(arg, n)) == NULL)
		msg_fatal("out of memory");
	return *copy;
}

/* One argv= argument, once or once for each recipient. */
static int add_expanded(struct pjob *j, const char *arg)
{
	bool each = names_rcpt(arg);

	for (int k = 0; k < (each ? j->req->nrcpt : 1); k++) {
		struct sb out = { NULL, 0, 0 };

		if (each && !j->send[k])
			continue;
		if (expand(j, arg, each ? &j->req->rcpt[k] : NULL, &out) < 0) {
			free(out.s);
			return -1;
		}
		add_arg(j, out.s);
	}
	return 0;
}

static int build_argv(struct pjob *j)
{
	char *const *a = j->o.argv;

	for (int i = 0; a[i]; i++) {
		char *copy;
		int rc = add_expanded(j, unbrace(i == 0 ? a[i] + 5 : a[i], &copy));

		free(copy);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* ---- which recipients ---- */

static bool looped(const struct pjob *j, const char *addr)
{
	for (int i = 0; j->seen_dt && j->seen_dt[i]; i++)
		if (strcasecmp(j->seen_dt[i], addr) == 0)
			return true;
	return false;
}

/* Bounce looping or oversize recipients; how many are left. */
static int choose(struct pjob *j)
{
	struct delivery_request *req = j->req;
	int n = 0;

	for (int i = 0; i < req->nrcpt; i++) {
		struct delivery_rcpt *r = &req->rcpt[i];

		if (r->status != 0)
			continue;
		if (j->o.size > 0 && req->env->size > j->o.size)
			delivery_set(r, 5, "5.2.3", "message too large for the %s service",
				     req->transport);
		else if (has_flag(&j->o, 'D') && looped(j, r->addr))
			delivery_set(r, 5, "5.4.6", "mail forwarding loop for %s",
				     r->addr);
		else {
			j->send[i] = true;
			j->dt[j->ndt++] = r->addr;
			n++;
		}
	}
	return n;
}

/* ---- the child ---- */

static int child_priv(const struct pjob *j, struct lpriv *p,
		      struct local_result *res)
{
	struct group gr, *g = NULL;
	char buf[8192];
	int rc = lpriv_lookup(j->o.user, p);

	if (rc <= 0) {
		lres_set(res, 4, "4.3.5", "%s service: unknown user= \"%s\"",
			 j->req->transport, j->o.user);
		return -1;
	}
	if (j->o.group[0]) {
		if (getgrnam_r(j->o.group, &gr, buf, sizeof buf, &g) != 0 || !g) {
			lres_set(res, 4, "4.3.5", "%s service: unknown group \"%s\"",
				 j->req->transport, j->o.group);
			return -1;
		}
		p->gid = g->gr_gid;
	}
	if (p->uid == 0 || p->gid == 0) {
		lres_set(res, 4, "4.3.5", "%s service: user= must not be root (uid or gid 0)",
			 j->req->transport);
		return -1;
	}
	return 0;
}

static void child(void *arg, int out_fd)
{
	struct pjob *j = arg;
	struct local_msg m = { j->req->queue_fd, j->req->env, j->req->queue_id };
	struct lcopy_opts o = { 0 };
	struct local_result res;
	struct lpriv p;
	char *envp[] = { "PATH=/usr/bin:/bin", NULL };
	struct lcmd c = { .argv = j->argv, .envp = envp, .msg = &m,
			  .copy = &o, .what = j->argv[0] };

	log_set_service("pipe");
	if (child_priv(j, &p, &res) < 0) {
		/* res says why */
	} else if (lpriv_drop(&p) < 0) {
		lres_set(&res, 4, "4.3.0", "cannot take the privileges of %s: %s",
			 p.name, strerror(errno));
	} else {
		o.from_line = has_flag(&j->o, 'F');
		o.quote_from = has_flag(&j->o, '>');
		o.dot_stuff = has_flag(&j->o, '.');
		o.blank_end = has_flag(&j->o, 'B');
		o.crlf = j->o.crlf;
		o.return_path = has_flag(&j->o, 'R') ? j->req->env->sender : NULL;
		o.orig_to = has_flag(&j->o, 'O') ? j->req->rcpt[0].orig_addr
			? j->req->rcpt[0].orig_addr : j->req->rcpt[0].addr : NULL;
		o.delivered_to = has_flag(&j->o, 'D') ? j->dt : NULL;
		c.cwd = j->o.directory;
		c.time_limit = cfg_time(j->req->cfg, "command_time_limit");
		lcmd_run(&c, &res);
		if (res.status == 2)
			lres_set(&res, 2, "2.0.0", "delivered via %s service",
				 j->req->transport);
	}
	lres_write(out_fd, &res);
	lres_write_end(out_fd);
}

/* ---- the parent ---- */

static void finish(void *arg)
{
	struct pjob *j = arg;

	gettimeofday(&j->req->t_done, NULL);
	for (int i = 0; i < j->argc; i++)
		free(j->argv[i]);
	free(j->argv);
	free((void *)j->dt);
	free(j->send);
	cfg_list_free(j->seen_dt);
	j->done(j->req, j->arg);
	free(j);
}

static void child_done(void *arg, const char *out, size_t len, bool timed_out)
{
	struct pjob *j = arg;
	struct lres_list l = { 0 };
	const struct local_result *r = NULL;

	lres_parse(&l, out, len);
	if (l.n > 0 && l.complete && !timed_out)
		r = &l.v[0];
	for (int i = 0; i < j->req->nrcpt; i++) {
		if (!j->send[i])
			continue;
		if (r != NULL)
			delivery_set(&j->req->rcpt[i], r->status, r->dsn, "%s",
				     r->text);
		else
			delivery_set(&j->req->rcpt[i], 4, "4.3.0",
				     "%s service: the command %s", j->req->transport,
				     timed_out ? "exceeded its time limit"
				     : "could not be run (the delivery process died)");
	}
	lres_list_free(&l);
	finish(j);
}

static void start(struct pjob *j)
{
	struct local_msg m = { j->req->queue_fd, j->req->env, j->req->queue_id };
	long long limit = cfg_time(j->req->cfg, "command_time_limit") + 60;

	if (parse_args(j) < 0)
		return;
	if (has_flag(&j->o, 'D') && (j->seen_dt = lcopy_delivered_to(&m)) == NULL) {
		snprintf(j->err, sizeof j->err, "cannot read the queued message: %s",
			 strerror(errno));
		j->err_dsn = "4.3.0";
		return;
	}
	if (choose(j) == 0 || build_argv(j) < 0)
		return;
	if (lagent_spawn(j->base, limit, child, j, child_done, j) < 0) {
		snprintf(j->err, sizeof j->err, "cannot start a process: %s",
			 strerror(errno));
		j->err_dsn = "4.3.0";
	}
}

void pipe_deliver(struct event_base *base, struct delivery_request *req,
		  delivery_done_fn done, void *arg)
{
	struct pjob *j = calloc(1, sizeof *j);

	if (j == NULL)
		msg_fatal("out of memory");
	*j = (struct pjob){ .base = base, .req = req, .done = done, .arg = arg };
	j->send = calloc((size_t)req->nrcpt + 1, sizeof *j->send);
	j->dt = calloc((size_t)req->nrcpt + 1, sizeof *j->dt);
	if (j->send == NULL || j->dt == NULL)
		msg_fatal("out of memory");
	gettimeofday(&req->t_conn, NULL);
	snprintf(req->relay, sizeof req->relay, "%s",
		 req->transport ? req->transport : "pipe");
	start(j);
	if (j->err[0]) {
		delivery_set_rest(req, 4, j->err_dsn ? j->err_dsn : "4.3.5",
				  "%s service: %s", req->relay, j->err);
		memset(j->send, 0, (size_t)req->nrcpt * sizeof *j->send);
	}
	if (j->err[0] || j->ndt == 0)
		lagent_later(base, finish, j);
}
