/*
 * local_alias.c - alias expansion for local(8): a recipient's local part
 * looked up in alias_maps, its value expanded into destinations.
 *
 * An alias value (aliases(5)) is a list of items separated by commas or
 * new lines, an item quoted with "..." when it holds commas or spaces:
 *   |command        a command, run with the message on stdin
 *   /file, /dir/    an mbox file, or a maildir (trailing "/")
 *   :include:/path  more items, read from a file
 *   \user           the user's mailbox, no alias or .forward expansion
 *   address         a local address (unqualified, or in mydestination):
 *                   expanded again; any other address is forwarded
 * Lookups try "user+extension" before "user" (recipient_delimiter), with
 * the key in lower case, in each table of alias_maps in order.
 *
 * Privileges (as Postfix): commands and files named by an alias run as
 * the owner of the alias table's file (map_owner(); with the owner's
 * group from passwd), or as default_privs when root owns it; those named by an :include: file run as that file's owner, or keep
 * the privileges they had when root owns it.  Commands and files must be
 * allowed for their context ("alias", "include") by
 * allow_mail_to_commands and allow_mail_to_files.
 *
 * The promises: expansion ends - an alias that names itself is the
 * user's mailbox, one already being expanded is not expanded again, and
 * more than LOCAL_EXPAND_DEPTH levels or LOCAL_TARGETS_MAX destinations
 * bounce the recipient; every destination appears once; a table that is
 * unavailable defers the recipient instead of delivering to the user.
 * This runs in the queue manager's process (the tables are open there);
 * an :include: file is read only if the privileges it would be read with
 * could read it (its mode bits are checked).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "local_int.h"
#include "log.h"
#include "map.h"

#define INCLUDE_MAX	(1024 * 1024)   /* bytes of one :include: file */

struct ctx {
	const char *context;            /* "alias", "include" */
	bool default_privs;
	uid_t uid;
	gid_t gid;
};

struct expand {
	const struct ldeliv *d;
	struct ltargets *t;
	struct local_result *res;
	struct map_list *maps;          /* alias_maps */
	const char *chain[LOCAL_EXPAND_DEPTH + 2];   /* aliases being expanded */
	int depth;
	bool failed;
	bool looped;                    /* an alias came back to itself */
};

static void expand_items(struct expand *ex, const char *value,
			 const struct ctx *ctx);

/* ---- the destinations ---- */

void ltargets_free(struct ltargets *t)
{
	for (int i = 0; i < t->n; i++)
		free(t->v[i].value);
	free(t->v);
	memset(t, 0, sizeof *t);
}

static bool same(const struct ltarget *a, enum ltarget_kind kind,
		 const char *value)
{
	return a->kind == kind && (kind == LT_USER || kind == LT_FORWARD
				   ? strcasecmp(a->value, value) == 0
				   : strcmp(a->value, value) == 0);
}

static void fail(struct expand *ex, int status, const char *dsn,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void fail(struct expand *ex, int status, const char *dsn,
		 const char *fmt, ...)
{
	char text[LOCAL_TEXT_MAX];
	va_list ap;

	if (ex->failed)
		return;
	ex->failed = true;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	lres_set(ex->res, status, dsn, "%s", text);
}

static struct ltarget *add(struct expand *ex, enum ltarget_kind kind,
			   const char *value, const struct ctx *ctx)
{
	struct ltargets *t = ex->t;
	struct ltarget *x;

	for (int i = 0; i < t->n; i++)
		if (same(&t->v[i], kind, value))
			return NULL;
	if (t->n >= LOCAL_TARGETS_MAX) {
		fail(ex, 5, "5.3.0", "alias expansion of %s: more than %d destinations",
		     ex->d->rcpt, LOCAL_TARGETS_MAX);
		return NULL;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 8;
		if ((t->v = realloc(t->v, (size_t)t->cap * sizeof *t->v)) == NULL)
			msg_fatal("out of memory");
	}
	x = &t->v[t->n++];
	memset(x, 0, sizeof *x);
	x->kind = kind;
	if ((x->value = strdup(value)) == NULL)
		msg_fatal("out of memory");
	x->default_privs = ctx == NULL || ctx->default_privs;
	if (ctx != NULL) {
		x->uid = ctx->uid;
		x->gid = ctx->gid;
	}
	return x;
}

/* ---- splitting a value into items ---- */

static void emit(const char *s, size_t len,
		 void (*fn)(const char *, void *), void *arg)
{
	char *item, *save;

	while (len > 0 && isspace((unsigned char)*s))
		s++, len--;
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	if (len >= 2 && s[0] == '"' && s[len - 1] == '"')
		s++, len -= 2;
	if (len == 0 || (item = strndup(s, len)) == NULL)
		return;
	/* Unquoted words of an address list: "a b" are two addresses. */
	if (!strchr("|/:\\\"", item[0]) && strpbrk(item, " \t") != NULL) {
		for (char *w = strtok_r(item, " \t", &save); w;
		     w = strtok_r(NULL, " \t", &save))
			fn(w, arg);     /* fn may split another value */
		free(item);
		return;
	}
	fn(item, arg);
	free(item);
}

void lalias_items(const char *value, void (*fn)(const char *item, void *arg),
		  void *arg)
{
	const char *p = value, *start = value;
	bool quoted = false, line_start = true;

	for (; *p; p++) {
		if (line_start && *p == '#') {          /* a comment line */
			while (p[1] && p[1] != '\n')
				p++;
			start = p + 1;
			continue;
		}
		line_start = false;
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '\\' && quoted && p[1])
			p++;
		else if (!quoted && (*p == ',' || *p == '\n')) {
			emit(start, (size_t)(p - start), fn, arg);
			start = p + 1;
			line_start = *p == '\n';
		}
	}
	emit(start, (size_t)(p - start), fn, arg);
}

bool lalias_allowed(const struct config *cfg, const char *param,
		    const char *context)
{
	char **v = cfg_list(cfg, param);
	bool yes = false;

	for (int i = 0; v[i]; i++)
		if (strcasecmp(v[i], context) == 0)
			yes = true;
	cfg_list_free(v);
	return yes;
}

/* ---- the tables ---- */

/* The rights of a table's deliveries: its owner's, or default_privs. */
static void table_owner(const struct map *m, struct ctx *ctx)
{
	uid_t uid = m ? map_owner(m) : 0;

	ctx->default_privs = uid == 0;
	ctx->uid = uid;
	ctx->gid = (gid_t)-1;           /* the owner's group, from passwd */
}

/* 1 found (value copied), 0 not found, -1 failed (ex->res set). */
static int lookup_key(struct expand *ex, const char *key, char **value,
		      struct ctx *ctx)
{
	const char *v;

	switch (map_list_lookup(ex->maps, key, &v)) {
	case MAP_FOUND:
		if ((*value = strdup(v)) == NULL)
			msg_fatal("out of memory");
		table_owner(map_list_found(ex->maps), ctx);
		return 1;
	case MAP_TEMPFAIL:
		fail(ex, 4, "4.3.0", "alias_maps: table %s is unavailable",
		     map_list_found(ex->maps)
		     ? map_spec(map_list_found(ex->maps)) : "(unknown)");
		return -1;
	default:
		return 0;
	}
}

/* The local part without its extension (recipient_delimiter). */
static const char *user_part(const struct expand *ex, const char *local,
			     char *user, size_t size)
{
	const char *delims = cfg_str(ex->d->cfg, "recipient_delimiter");
	size_t n = *delims ? strcspn(local, delims) : strlen(local);

	if (n == 0)
		n = strlen(local);
	snprintf(user, size, "%.*s", (int)n, local);
	return user;
}

/* user+ext first, then user. */
static int lookup(struct expand *ex, const char *local, char **value,
		  struct ctx *ctx)
{
	char user[256];
	int rc;

	if ((rc = lookup_key(ex, local, value, ctx)) != 0)
		return rc;
	user_part(ex, local, user, sizeof user);
	if (strcmp(user, local) == 0)
		return 0;
	return lookup_key(ex, user, value, ctx);
}

/* ---- expansion ---- */

static bool on_chain(const struct expand *ex, const char *name)
{
	for (int i = 0; i < ex->depth; i++)
		if (strcmp(ex->chain[i], name) == 0)
			return true;
	return false;
}

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* A local name: its alias, or the user. */
static void expand_local(struct expand *ex, const char *local)
{
	char name[256], user[256], *value = NULL;
	struct ctx ctx = { .context = "alias" };
	int rc;

	snprintf(name, sizeof name, "%s", local);
	lower(name);
	if (ex->depth > 0 && strcmp(ex->chain[ex->depth - 1], name) == 0) {
		add(ex, LT_USER, user_part(ex, name, user, sizeof user), NULL);
		return;         /* "user: user, ...": the user's mailbox */
	}
	if (on_chain(ex, name)) {
		ex->looped = true;
		return;         /* being expanded: the loop ends here */
	}
	if (ex->depth > LOCAL_EXPAND_DEPTH) {
		fail(ex, 5, "5.4.6", "mail forwarding loop for %s: aliases nest deeper than %d",
		     ex->d->rcpt, LOCAL_EXPAND_DEPTH);
		return;
	}
	if ((rc = lookup(ex, name, &value, &ctx)) <= 0) {
		user_part(ex, name, user, sizeof user);
		if (rc == 0)
			add(ex, LT_USER, user, NULL);
		return;
	}
	ex->chain[ex->depth++] = name;
	expand_items(ex, value, &ctx);
	ex->depth--;
	free(value);
}

/* Could privileges ctx read this file?  (Mode bits, as the parent may
 * be root.) */
static bool ctx_can_read(const struct expand *ex, const struct stat *st,
			 const struct ctx *ctx)
{
	struct lpriv p;
	uid_t uid = ctx->uid;
	gid_t gid = ctx->gid;

	if (!lpriv_capable())
		return true;    /* we read as ourselves: open() decides */
	if (ctx->default_privs) {
		if (lpriv_lookup(cfg_str(ex->d->cfg, "default_privs"), &p) <= 0)
			return false;
		uid = p.uid;
		gid = p.gid;
	}
	if (st->st_uid == uid)
		return (st->st_mode & S_IRUSR) != 0;
	if (st->st_gid == gid)
		return (st->st_mode & S_IRGRP) != 0;
	return (st->st_mode & S_IROTH) != 0;
}

static char *read_include(struct expand *ex, const char *path,
			  const struct ctx *ctx, struct stat *st)
{
	char *buf = NULL;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0
	    || fstat(fd, st) < 0) {
		fail(ex, errno == ENOENT ? 5 : 4, errno == ENOENT ? "5.3.0" : "4.3.0",
		     "cannot open include file %s: %s", path, strerror(errno));
	} else if (!S_ISREG(st->st_mode) || st->st_size > INCLUDE_MAX) {
		fail(ex, 5, "5.3.0", "include file %s: not a regular file, or too large",
		     path);
	} else if (!ctx_can_read(ex, st, ctx)) {
		fail(ex, 5, "5.7.1", "include file %s: not readable with the privileges of its alias",
		     path);
	} else if ((buf = malloc((size_t)st->st_size + 1)) == NULL) {
		msg_fatal("out of memory");
	} else if ((n = read(fd, buf, (size_t)st->st_size)) < 0) {
		fail(ex, 4, "4.3.0", "cannot read include file %s: %s", path,
		     strerror(errno));
		free(buf);
		buf = NULL;
	} else {
		buf[n] = 0;
	}
	if (fd >= 0)
		close(fd);
	return buf;
}

static void expand_include(struct expand *ex, const char *path,
			   const struct ctx *outer)
{
	struct ctx ctx = *outer;
	struct stat st;
	char *text;

	if (path[0] != '/') {
		fail(ex, 5, "5.3.5", "include file name must be absolute: %s",
		     path);
		return;
	}
	if (ex->depth > LOCAL_EXPAND_DEPTH || on_chain(ex, path)) {
		fail(ex, 5, "5.4.6", "mail forwarding loop for %s: include file %s",
		     ex->d->rcpt, path);
		return;
	}
	if ((text = read_include(ex, path, outer, &st)) == NULL)
		return;
	ctx.context = "include";
	if (st.st_uid != 0) {
		ctx.default_privs = false;
		ctx.uid = st.st_uid;
		ctx.gid = st.st_gid;
	}
	ex->chain[ex->depth++] = path;
	expand_items(ex, text, &ctx);
	ex->depth--;
	free(text);
}

static void expand_address(struct expand *ex, const char *addr)
{
	const char *at = strrchr(addr, '@');
	char local[256];

	if (at == NULL || local_domain(ex->d->cfg, at + 1)) {
		size_t n = at ? (size_t)(at - addr) : strlen(addr);

		if (n == 0 || n >= sizeof local)
			return;
		snprintf(local, sizeof local, "%.*s", (int)n, addr);
		expand_local(ex, local);
		return;
	}
	add(ex, LT_FORWARD, addr, NULL);
}

static bool good_address(const char *s)
{
	if (*s == 0 || strlen(s) > 900)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '<'
		    || *s == '>' || *s == ',')
			return false;
	return true;
}

struct item_arg {
	struct expand *ex;
	const struct ctx *ctx;
};

static void allowed_or_fail(struct expand *ex, const char *param,
			    const char *what, const char *item,
			    const struct ctx *ctx, enum ltarget_kind kind)
{
	if (!lalias_allowed(ex->d->cfg, param, ctx->context)) {
		fail(ex, 5, "5.7.1", "mail to %s is restricted (%s)", what,
		     param);
		return;
	}
	add(ex, kind, item, ctx);
}

static void one_item(const char *item, void *arg)
{
	struct item_arg *ia = arg;
	struct expand *ex = ia->ex;

	if (ex->failed)
		return;
	if (item[0] == '|' && item[1])
		allowed_or_fail(ex, "allow_mail_to_commands", "command",
				item + 1, ia->ctx, LT_COMMAND);
	else if (item[0] == '/')
		allowed_or_fail(ex, "allow_mail_to_files", "file", item,
				ia->ctx, LT_FILE);
	else if (strncasecmp(item, ":include:", 9) == 0)
		expand_include(ex, item + 9 + strspn(item + 9, " \t"), ia->ctx);
	else if (item[0] == '\\' && good_address(item + 1)) {
		struct ltarget *t = add(ex, LT_USER, item + 1, NULL);

		if (t != NULL) {
			lower(t->value);
			t->no_forward = true;
		}
	} else if (good_address(item))
		expand_address(ex, item);
	else
		msg_warn("alias expansion of %s: skipped a bad item \"%.100s\"",
			 ex->d->rcpt, item);
}

static void expand_items(struct expand *ex, const char *value,
			 const struct ctx *ctx)
{
	struct item_arg ia = { ex, ctx };

	lalias_items(value, one_item, &ia);
}

int lalias_expand(const struct ldeliv *d, struct ltargets *t,
		  struct local_result *res)
{
	struct expand ex = { .d = d, .t = t, .res = res };
	char err[512];

	ex.maps = map_list_open(cfg_str(d->cfg, "alias_maps"), err, sizeof err);
	if (ex.maps == NULL) {
		lres_set(res, 4, "4.3.5", "alias_maps: %s", err);
		return -1;
	}
	expand_local(&ex, d->local);
	map_list_free(ex.maps);
	if (!ex.failed && t->n == 0 && ex.looped)
		fail(&ex, 5, "5.4.6", "mail forwarding loop for %s", d->rcpt);
	if (ex.failed)
		ltargets_free(t);
	return ex.failed ? -1 : 0;
}
