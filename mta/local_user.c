/*
 * local_user.c - the deliveries a local(8) child makes for one
 * destination: a user (passwd, .forward, mailbox), or a /file or
 * |command named by an alias.
 *
 * A user's mail goes, as Postfix's, to the first of:
 *   - $home/.forward+extension (when the address has one), then
 *     $home/.forward, read as the user: each item is a |command or /file
 *     (run as the user, if allow_mail_to_commands / allow_mail_to_files
 *     name "forward"), an :include: file, "\user" or the user's own name
 *     (the mailbox), or an address to forward to (sent back to the parent,
 *     which queues a copy);
 *   - the mailbox: home_mailbox under the home directory ("Maildir/" with
 *     a trailing "/" is a maildir), or mail_spool_directory/user (mbox).
 * Mail for root is written with default_privs' ids, never as root.
 *
 * A user passwd does not know is, as in Postfix's local(8):
 *   - sent on to luser_relay when it is set, after local(8)'s $name
 *     expansion ($user, $local, $mailbox, $recipient, $extension,
 *     $domain, $recipient_delimiter, $home and $shell - empty here -,
 *     ${name?text}, ${name:text}, $$): the address goes back to the
 *     parent, which queues a copy like a .forward's ("forwarded as ID");
 *     a relay that comes back to an unknown user meets its own
 *     Delivered-To: header and bounces as a loop;
 *   - else, for postmaster and mailer-daemon, discarded with the warning
 *     "required alias not found" (2.0.0, Postfix's);
 *   - else bounced: 5.1.1 unknown user.
 *
 * Every delivery made writes its result line to the parent; a failure to
 * read a .forward file that exists defers the mail rather than putting it
 * in a mailbox the user asked not to use.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "local_int.h"
#include "log.h"

#define FORWARD_MAX	(64 * 1024)     /* bytes of a .forward file */

/* ---- commands ---- */

struct env {
	char *v[32];
	int n;
};

static void env_add(struct env *e, const char *name, const char *value)
{
	if (e->n + 1 >= (int)(sizeof e->v / sizeof e->v[0]) || value == NULL)
		return;
	if (asprintf(&e->v[e->n], "%s=%s", name, value) < 0)
		msg_fatal("out of memory");
	e->v[++e->n] = NULL;
}

static void env_free(struct env *e)
{
	for (int i = 0; i < e->n; i++)
		free(e->v[i]);
}

static void command_env(const struct ldeliv *d, const struct lpriv *p,
			struct env *e)
{
	const struct queue_envelope *env = d->msg.env;

	e->n = 0;
	env_add(e, "PATH", "/usr/bin:/bin");
	env_add(e, "HOME", p->home);
	env_add(e, "LOGNAME", p->name);
	env_add(e, "USER", p->name);
	env_add(e, "SHELL", p->shell);
	env_add(e, "SENDER", env->sender);
	env_add(e, "RECIPIENT", d->rcpt);
	env_add(e, "ORIGINAL_RECIPIENT", d->orig_rcpt);
	env_add(e, "LOCAL", d->local);
	env_add(e, "USER_PART", d->user);
	env_add(e, "EXTENSION", d->extension);
	env_add(e, "DOMAIN", d->domain);
	env_add(e, "QUEUE_ID", d->msg.queue_id);
	env_add(e, "ENVID", env->envid);
	env_add(e, "CLIENT_ADDRESS", env->client_addr);
	env_add(e, "CLIENT_HOSTNAME", env->client_name);
	env_add(e, "CLIENT_HELO", env->helo);
	env_add(e, "CLIENT_PROTOCOL", env->proto);
	env_add(e, "SASL_METHOD", env->sasl_method);
	env_add(e, "SASL_USERNAME", env->sasl_username);
	for (const char *const *t = (const char *const[]){ "TZ", "LANG", NULL };
	     *t; t++)
		env_add(e, *t, getenv(*t));
}

/* local_command_shell's words (default /bin/sh -c), then the command. */
static char **shell_argv(const struct config *cfg, const char *command,
			 char *buf, size_t size)
{
	static const size_t max = 16;
	char **argv = calloc(max + 2, sizeof *argv);
	size_t n = 0;

	if (argv == NULL)
		msg_fatal("out of memory");
	snprintf(buf, size, "%s", *cfg_str(cfg, "local_command_shell")
		 ? cfg_str(cfg, "local_command_shell") : "/bin/sh -c");
	for (char *w = strtok(buf, " \t"); w && n < max; w = strtok(NULL, " \t"))
		argv[n++] = w;
	argv[n++] = (char *)command;
	return argv;
}

void lcommand_deliver(const struct ldeliv *d, const char *command,
		      const struct lpriv *p, struct local_result *res)
{
	struct lcopy_opts o = { .from_line = true };
	const char *dt[2] = { d->delivered, NULL };
	char shell[1024], **argv;
	struct env e;
	struct stat st;
	struct lcmd c = { .priv = p, .msg = &d->msg, .copy = &o,
			  .what = command };

	o.return_path = d->msg.env->sender;
	o.orig_to = d->orig_rcpt;
	if (local_prepend_delivered(d->cfg, "command"))
		o.delivered_to = dt;
	command_env(d, p, &e);
	argv = shell_argv(d->cfg, command, shell, sizeof shell);
	c.argv = argv;
	c.envp = e.v;
	c.cwd = stat(p->home, &st) == 0 && S_ISDIR(st.st_mode) ? p->home : "/";
	c.time_limit = cfg_time(d->cfg, "command_time_limit");
	lcmd_run(&c, res);
	free(argv);
	env_free(&e);
}

/* ---- alias destinations: /file and |command ---- */

static bool is_maildir(const char *path)
{
	size_t n = strlen(path);

	return n > 0 && path[n - 1] == '/';
}

static void file_deliver(const struct ldeliv *d, const char *path,
			 const struct lpriv *p, struct local_result *res)
{
	if (is_maildir(path))
		lmaildir_deliver(d, path, p, true, res);
	else
		lmbox_deliver(d, path, p, NULL, res);
}

void ltarget_deliver(const struct ldeliv *d, const struct ltarget *t)
{
	struct local_result res;
	struct lpriv p;

	if (t->default_privs) {
		if (lpriv_default(d->cfg, &p, &res) < 0)
			goto done;
	} else if (lpriv_lookup_uid(t->uid, t->gid, &p) < 0 || p.uid == 0) {
		lres_set(&res, 4, "4.3.5", "the owner (uid %lu) of the alias table for %s has no account to run as",
			 (unsigned long)t->uid, d->rcpt);
		goto done;
	}
	if (t->kind == LT_COMMAND)
		lcommand_deliver(d, t->value, &p, &res);
	else
		file_deliver(d, t->value, &p, &res);
done:
	lres_write(d->out_fd, &res);
}

/* ---- the mailbox ---- */

static void mailbox(const struct ldeliv *d, const struct lpriv *p,
		    const struct lpriv *owner)
{
	const char *hm = cfg_str(d->cfg, "home_mailbox");
	struct local_result res;
	char path[8400];

	if (*hm == 0) {
		snprintf(path, sizeof path, "%s/%s",
			 cfg_str(d->cfg, "mail_spool_directory"), owner->name);
		lmbox_deliver(d, path, p, owner, &res);
	} else {
		snprintf(path, sizeof path, "%s/%s", owner->home, hm);
		if (is_maildir(hm))
			lmaildir_deliver(d, path, p, false, &res);
		else
			lmbox_deliver(d, path, p, owner, &res);
	}
	lres_write(d->out_fd, &res);
}

/* ---- .forward ---- */

struct fwd {
	const struct ldeliv *d;
	const struct lpriv *p, *owner;
	bool to_mailbox;                /* "\user" or the user's name */
	int items;                      /* destinations found */
	int depth;                      /* :include: nesting */
	char *seen[64];                 /* destinations done, for duplicates */
	int nseen;
};

static bool seen(struct fwd *f, const char *item)
{
	for (int i = 0; i < f->nseen; i++)
		if (strcmp(f->seen[i], item) == 0)
			return true;
	if (f->nseen < (int)(sizeof f->seen / sizeof f->seen[0])
	    && (f->seen[f->nseen] = strdup(item)) != NULL)
		f->nseen++;
	return false;
}

/* Read a file the user owns (or root does), as the user. */
static char *read_owned(const struct fwd *f, const char *path, int *err)
{
	char *buf = NULL;
	struct stat st;
	ssize_t n;
	int fd;

	*err = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
		*err = errno;
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)
	    || (st.st_uid != f->owner->uid && st.st_uid != 0)
	    || st.st_size > FORWARD_MAX) {
		*err = EPERM;
	} else if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		msg_fatal("out of memory");
	} else if ((n = read(fd, buf, (size_t)st.st_size)) < 0) {
		*err = errno;
		free(buf);
		buf = NULL;
	} else {
		buf[n] = 0;
	}
	close(fd);
	return buf;
}

static void fwd_items(struct fwd *f, const char *text, const char *context);

static void fwd_result(struct fwd *f, int status, const char *dsn,
		       const char *text, const char *arg)
{
	struct local_result res;

	lres_set(&res, status, dsn, "%s %s", text, arg);
	lres_write(f->d->out_fd, &res);
}

/* A command or file from a .forward: delivered if param (allow_mail_to_
 * commands or _files) allows it in context, else refused 5.7.1. */
static void fwd_allowed(struct fwd *f, const char *param, const char *what,
			const char *target, const char *context,
			void (*deliver)(const struct ldeliv *, const char *,
					const struct lpriv *,
					struct local_result *))
{
	struct local_result res;

	if (!lalias_allowed(f->d->cfg, param, context)) {
		lres_set(&res, 5, "5.7.1", "mail to %s is restricted (%s): %s",
			 what, param, target);
		lres_write(f->d->out_fd, &res);
		return;
	}
	deliver(f->d, target, f->p, &res);
	lres_write(f->d->out_fd, &res);
}

static void fwd_include(struct fwd *f, const char *path)
{
	char *text;
	int err;

	if (f->depth >= LOCAL_EXPAND_DEPTH || path[0] != '/') {
		fwd_result(f, 5, "5.3.0", "bad or nested too deep :include:", path);
		return;
	}
	if ((text = read_owned(f, path, &err)) == NULL) {
		fwd_result(f, 4, "4.3.0", "cannot read include file", path);
		return;
	}
	f->depth++;
	fwd_items(f, text, "include");
	f->depth--;
	free(text);
}

/* The user's own name, bare or at a local domain? */
static bool is_self(const struct fwd *f, const char *item)
{
	const char *at = strrchr(item, '@');
	size_t n = at ? (size_t)(at - item) : strlen(item);

	if (at != NULL && !local_domain(f->d->cfg, at + 1))
		return false;
	return n == strlen(f->owner->name)
		&& strncasecmp(item, f->owner->name, n) == 0;
}

static bool sane_address(const char *s)
{
	if (*s == 0 || strlen(s) > 900)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f || strchr("<>,\\", *s))
			return false;
	return true;
}

struct fwd_arg {
	struct fwd *f;
	const char *context;
};

static void fwd_item(const char *item, void *arg)
{
	struct fwd_arg *a = arg;
	struct fwd *f = a->f;

	if (seen(f, item))
		return;
	f->items++;
	if (item[0] == '|' && item[1])
		fwd_allowed(f, "allow_mail_to_commands", "command", item + 1,
			    a->context, lcommand_deliver);
	else if (item[0] == '/')
		fwd_allowed(f, "allow_mail_to_files", "file", item, a->context,
			    file_deliver);
	else if (strncasecmp(item, ":include:", 9) == 0)
		fwd_include(f, item + 9 + strspn(item + 9, " \t"));
	else if ((item[0] == '\\' && is_self(f, item + 1)) || is_self(f, item))
		f->to_mailbox = true;
	else if (sane_address(item))
		lres_write_forward(f->d->out_fd, item);
	else
		f->items--;
}

static void fwd_items(struct fwd *f, const char *text, const char *context)
{
	struct fwd_arg a = { f, context };

	lalias_items(text, fwd_item, &a);
}

/* The .forward file names to try: with the extension first. */
static int forward_paths(const struct ldeliv *d, const struct lpriv *owner,
			 bool top, char paths[2][4400])
{
	int n = 0;

	if (top && d->extension[0]) {
		char delim = d->local[strlen(d->user)];

		snprintf(paths[n++], sizeof paths[0], "%s/.forward%c%s",
			 owner->home, delim, d->extension);
	}
	snprintf(paths[n++], sizeof paths[0], "%s/.forward", owner->home);
	return n;
}

/* 1: the .forward file decided; 0: none, use the mailbox. */
static int try_forward(struct fwd *f, bool top)
{
	char paths[2][4400], *text = NULL;
	int n, err = 0;

	/* The file is read with its owner's rights, as Postfix's open_as()
	 * does: root's own .forward (in a home only root can enter) is read
	 * as root; what it names is delivered with default_privs. */
	if (f->owner->uid != 0 && lpriv_become(f->p) < 0)
		return 0;
	n = forward_paths(f->d, f->owner, top, paths);
	for (int i = 0; i < n && text == NULL; i++)
		if ((text = read_owned(f, paths[i], &err)) == NULL
		    && err != ENOENT && err != ENOTDIR) {
			fwd_result(f, 4, "4.3.0", "cannot read forward file",
				   paths[i]);
			return 1;
		}
	if (text == NULL)
		return 0;
	fwd_items(f, text, "forward");
	free(text);
	if (f->items == 0)
		return 0;       /* an empty .forward: the mailbox */
	if (f->to_mailbox)
		mailbox(f->d, f->p, f->owner);
	return 1;
}

/* ---- a user passwd does not know ---- */

struct lexp {
	const struct ldeliv *d;
	const char *user;
	char delim[2];
};

/* The value of one of local(8)'s $names, or NULL for an unknown name. */
static const char *lexp_value(const struct lexp *x, const char *name, size_t n)
{
	static const char *const names[] = {
		"user", "local", "mailbox", "recipient", "extension", "domain",
		"recipient_delimiter", "home", "shell", NULL
	};
	int i;

	for (i = 0; names[i]; i++)
		if (strlen(names[i]) == n && strncmp(names[i], name, n) == 0)
			break;
	switch (i) {
	case 0: return x->user;
	case 1: case 2: return x->d->local;
	case 3: return x->d->rcpt;
	case 4: return x->d->extension;
	case 5: return x->d->domain;
	case 6: return x->delim;
	case 7: case 8: return "";
	default: return NULL;
	}
}

struct obuf {
	char *p;
	size_t n, cap;
	bool over;
};

static void ob_add(struct obuf *b, const char *s, size_t n)
{
	if (b->n + n >= b->cap) {
		b->over = true;
		return;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

static bool lexp_text(const struct lexp *x, const char *s, const char *end,
		      struct obuf *out, int depth);

/* One $ reference at s (after the '$'); the first byte after it, or
 * NULL on a syntax error. */
static const char *lexp_ref(const struct lexp *x, const char *s,
			    const char *end, struct obuf *out, int depth)
{
	const char *name, *val, *text = NULL, *tend = NULL;
	char close = 0, op = 0;
	size_t n;

	if (s < end && *s == '$') {
		ob_add(out, "$", 1);
		return s + 1;
	}
	if (s < end && (*s == '{' || *s == '(')) {
		close = *s == '{' ? '}' : ')';
		s++;
	}
	for (name = s; s < end && (isalnum((unsigned char)*s) || *s == '_'); s++)
		;
	if ((n = (size_t)(s - name)) == 0)
		return NULL;
	if (close) {
		int level = 1;

		if (s < end && (*s == '?' || *s == ':'))
			op = *s++;
		else if (s >= end || *s != close)
			return NULL;
		for (text = s; s < end; s++) {
			if (*s == (close == '}' ? '{' : '('))
				level++;
			else if (*s == close && --level == 0)
				break;
		}
		if (s >= end)
			return NULL;
		tend = s++;
	}
	if ((val = lexp_value(x, name, n)) == NULL)
		val = "";               /* unknown: empty, as mac_expand() */
	if (op == 0)
		ob_add(out, val, strlen(val));
	else if ((op == '?') == (*val != 0)
		 && !lexp_text(x, text, tend, out, depth + 1))
		return NULL;
	return s;
}

static bool lexp_text(const struct lexp *x, const char *s, const char *end,
		      struct obuf *out, int depth)
{
	if (depth > LOCAL_EXPAND_DEPTH)
		return false;
	while (s < end) {
		const char *dollar = memchr(s, '$', (size_t)(end - s));

		if (dollar == NULL) {
			ob_add(out, s, (size_t)(end - s));
			break;
		}
		ob_add(out, s, (size_t)(dollar - s));
		if ((s = lexp_ref(x, dollar + 1, end, out, depth)) == NULL)
			return false;
	}
	return !out->over;
}

/* luser_relay, or else the required aliases, or else the bounce. */
static void unknown_user(const struct ldeliv *d, const char *user)
{
	const char *relay = cfg_str(d->cfg, "luser_relay");
	struct lexp x = { .d = d, .user = user };
	struct local_result res;
	char addr[1024];
	struct obuf out = { addr, 0, sizeof addr, false };
	const char *a;

	addr[0] = 0;
	if (*relay) {
		x.delim[0] = d->extension[0] ? d->local[strlen(d->user)] : 0;
		if (!lexp_text(&x, relay, relay + strlen(relay), &out, 0)) {
			lres_set(&res, 4, "4.3.5", "bad luser_relay value \"%.200s\"",
				 relay);
		} else {
			for (a = addr; *a == ' ' || *a == '\t'; a++)
				;
			while (out.n > 0 && (addr[out.n - 1] == ' '
					     || addr[out.n - 1] == '\t'))
				addr[--out.n] = 0;
			if (sane_address(a)) {
				lres_write_forward(d->out_fd, a);
				return;
			}
			lres_set(&res, 4, "4.3.5", "luser_relay for \"%s\" expands to a bad address \"%.200s\"",
				 user, a);
		}
	} else if (strcasecmp(user, "postmaster") == 0
		   || strcasecmp(user, "mailer-daemon") == 0) {
		msg_warn("required alias not found: %s", user);
		lres_set(&res, 2, "2.0.0", "discarded");
	} else {
		lres_set(&res, 5, "5.1.1", "unknown user: \"%s\"", user);
	}
	lres_write(d->out_fd, &res);
}

/* ---- a user ---- */

void luser_deliver(const struct ldeliv *d, const struct ltarget *t)
{
	struct lpriv owner, def, *p = &owner;
	struct local_result res;
	struct fwd f = { .d = d };
	int rc;

	if ((rc = lpriv_lookup(t->value, &owner)) <= 0) {
		if (rc == 0) {
			unknown_user(d, t->value);
			return;
		}
		lres_set(&res, 4, "4.3.0", "cannot look up user \"%s\": %s",
			 t->value, strerror(errno));
		lres_write(d->out_fd, &res);
		return;
	}
	if (owner.uid == 0) {           /* never as root */
		if (lpriv_default(d->cfg, &def, &res) < 0) {
			lres_write(d->out_fd, &res);
			return;
		}
		p = &def;
	}
	f.p = p;
	f.owner = &owner;
	if (t->no_forward || try_forward(&f, strcmp(t->value, d->user) == 0) == 0)
		mailbox(d, p, &owner);
	for (int i = 0; i < f.nseen; i++)
		free(f.seen[i]);
}
