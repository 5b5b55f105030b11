/*
 * restriction_list.c - the registry of restriction names and the compiler
 * of restriction lists (Postfix's smtpd_*_restrictions syntax).
 *
 * The registry holds every restriction sluice knows: the built-in tables
 * listed in builtin_tables[] below (one line per table, each in the file
 * of the restrictions it holds), then the ones plugins provide.  Names
 * are matched case-insensitively, as Postfix does.  A plugin's names are
 * first *declared* (the master and `sluice check` only open a plugin to
 * read its descriptor, then close it) and become callable when a worker
 * loads the plugin: a declared name compiles, a call to a name nobody
 * implements in this process answers 451 4.3.5 "Server configuration
 * error", as Postfix does for an unknown name at run time.
 *
 * A list is compiled once per configuration set (main.cf, and each
 * listener whose -o overrides give it its own set) and cached for the
 * life of the process: a worker never sees a configuration change (reload
 * starts new workers), so the cache keyed by the set needs no
 * invalidation.  restriction_config_check() compiles every list and class
 * of every set when the configuration is loaded, so `sluice check`,
 * start-up and reload refuse a list with an unknown name, a missing
 * argument, a table that cannot be opened, or an argument the
 * restriction's own check refuses (builtin_arg_checks[]: the
 * check_policy_service "{ ... }" form), with "file:line: ...".
 *
 * Promises: compiled items point at registry entries that never move (an
 * entry is allocated once; a declared name is completed in place when its
 * plugin loads); a compiled list is immutable.  This module owns the
 * registry and the cache.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "diag.h"
#include "log.h"
#include "mymalloc.h"
#include "map.h"
#include "restriction.h"
#include "restriction_int.h"
#include "restriction_builtin.h"
#include "policy/policy_client.h"

/* The built-in tables, each terminated by { NULL }: one line per table. */
static const struct restriction_def *const builtin_tables[] = {
	restrictions_generic,
	restrictions_client, restrictions_helo,		/* restriction_client.c, _helo.c */
	restrictions_sender, restrictions_recipient,	/* restriction_sender.c, _recipient.c */
	restrictions_policy,				/* policy/policy_client.c */
	restrictions_tls,				/* restriction_tls.c */
	NULL
};

/* The built-in argument checks, each table terminated by { NULL }. */
static const struct restriction_arg_check *const builtin_arg_checks[] = {
	restriction_arg_checks_policy,			/* policy/policy_client.c */
	NULL
};

/* ---- the registry ---------------------------------------------------- */

struct reg_entry {
	struct restriction_def def;     /* name owned when `owned` */
	restriction_arg_check_fn check_arg;     /* or NULL */
	bool owned;
	char *owner;                    /* plugin name, or NULL */
};

static struct reg_entry **reg;
static int nreg, capreg;
static bool builtins_loaded;

static struct reg_entry *reg_lookup(const char *name)
{
	for (int i = 0; i < nreg; i++)
		if (strcasecmp(reg[i]->def.name, name) == 0)
			return reg[i];
	return NULL;
}

static struct reg_entry *reg_add(const struct restriction_def *def,
				 const char *owner)
{
	struct reg_entry *e;

	if (nreg == capreg) {
		capreg = capreg ? 2 * capreg : 64;
		if ((reg = realloc(reg, (size_t)capreg * sizeof *reg)) == NULL)
			msg_fatal("restrictions: out of memory");
	}
	if ((e = calloc(1, sizeof *e)) == NULL)
		msg_fatal("restrictions: out of memory");
	e->def = *def;
	if (owner) {
		e->def.name = mystrdup(def->name);
		e->owned = true;
		e->owner = mystrdup(owner);
	}
	reg[nreg++] = e;
	return e;
}

static void load_builtins(void)
{
	if (builtins_loaded)
		return;
	builtins_loaded = true;
	for (int t = 0; builtin_tables[t]; t++)
		for (const struct restriction_def *d = builtin_tables[t];
		     d->name; d++)
			if (reg_lookup(d->name) == NULL)
				reg_add(d, NULL);
			else
				msg_warn("restriction %s is defined twice in "
					 "the built-in tables", d->name);
	for (int t = 0; builtin_arg_checks[t]; t++)
		for (const struct restriction_arg_check *a = builtin_arg_checks[t];
		     a->name; a++)
			if (restriction_set_arg_check(a->name, a->check) < 0)
				msg_warn("argument check for unknown restriction %s",
					 a->name);
}

int restriction_set_arg_check(const char *name, restriction_arg_check_fn fn)
{
	struct reg_entry *e;

	load_builtins();
	if (name == NULL || (e = reg_lookup(name)) == NULL)
		return -1;
	e->check_arg = fn;
	return 0;
}

/* The argument check registered for a name, or NULL. */
static restriction_arg_check_fn arg_check_of(const char *name)
{
	struct reg_entry *e = reg_lookup(name);

	return e ? e->check_arg : NULL;
}

int restriction_register(const struct restriction_def *def)
{
	struct reg_entry *e;

	load_builtins();
	if (def == NULL || def->name == NULL || *def->name == 0)
		return -1;
	e = reg_lookup(def->name);
	if (e && e->def.eval == NULL) {
		/* a declared plugin name, now implemented */
		e->def.flags = def->flags;
		e->def.eval = def->eval;
		e->def.data = def->data;
		return 0;
	}
	if (e) {
		msg_warn("restriction %s is already defined%s%s; the second "
			 "definition is ignored", def->name,
			 e->owner ? " by plugin " : "", e->owner ? e->owner : "");
		return -1;
	}
	reg_add(def, "");
	return 0;
}

int restriction_declare(const char *name, unsigned flags, const char *owner)
{
	struct restriction_def def = { .name = name, .flags = flags };
	struct reg_entry *e;

	load_builtins();
	if ((e = reg_lookup(name)) != NULL) {
		if (e->owner && owner && strcmp(e->owner, owner) == 0) {
			e->def.flags = flags;       /* the same plugin, again */
			return 0;
		}
		return -1;
	}
	reg_add(&def, owner ? owner : "");
	return 0;
}

void restriction_forget_declared(void)
{
	int k = 0;

	for (int i = 0; i < nreg; i++) {
		struct reg_entry *e = reg[i];

		if (e->def.eval == NULL && e->owner && *e->owner) {
			free((char *)e->def.name);
			free(e->owner);
			free(e);
			continue;
		}
		reg[k++] = e;
	}
	nreg = k;
}

const char *restriction_owner(const char *name)
{
	struct reg_entry *e;

	load_builtins();
	e = reg_lookup(name);
	return e && e->owner && *e->owner ? e->owner : NULL;
}

const struct restriction_def *restriction_find(const char *name)
{
	struct reg_entry *e;

	load_builtins();
	e = reg_lookup(name);
	return e ? &e->def : NULL;
}

/* ---- names for messages ------------------------------------------------ */

static const char *const stage_params[RS__COUNT] = {
	"smtpd_client_restrictions", "smtpd_helo_restrictions",
	"smtpd_sender_restrictions", "smtpd_relay_restrictions",
	"smtpd_recipient_restrictions", "smtpd_data_restrictions",
	"smtpd_end_of_data_restrictions", "smtpd_etrn_restrictions"
};

/* Postfix's "bare table" shorthand: a type:name in a list means the
 * list's own check_*_access. */
static const char *const stage_default_acl[RS__COUNT] = {
	"check_client_access", "check_helo_access", "check_sender_access",
	"check_recipient_access", "check_recipient_access", NULL, NULL,
	"check_etrn_access"
};

const char *restriction_stage_param(enum rstage st)
{
	return st < RS__COUNT ? stage_params[st] : "?";
}

static int stage_of_param(const char *param)
{
	for (int i = 0; i < RS__COUNT; i++)
		if (strcmp(stage_params[i], param) == 0)
			return i;
	return -1;
}

/* Edit distance, bounded, for "did you mean". */
static int distance(const char *a, const char *b)
{
	int la = (int)strlen(a), lb = (int)strlen(b), prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (int j = 0; j <= lb; j++)
		prev[j] = j;
	for (int i = 1; i <= la; i++) {
		cur[0] = i;
		for (int j = 1; j <= lb; j++) {
			int sub = prev[j - 1] + (tolower((unsigned char)a[i - 1])
						 != tolower((unsigned char)b[j - 1]));
			int del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? (sub < ins ? sub : ins)
				: (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof(int) * (size_t)(lb + 1));
	}
	return prev[lb];
}

static const char *suggest(const char *name)
{
	const char *best = NULL;
	int bestd = 4;

	for (int i = 0; i < nreg; i++) {
		int dd = distance(name, reg[i]->def.name);

		if (dd < bestd) {
			bestd = dd;
			best = reg[i]->def.name;
		}
	}
	return best;
}

/* Which bundled plugin provides a name sluice does not know (a hint). */
static const char *providing_plugin(const char *name)
{
	if (strncasecmp(name, "check_", 6) == 0
	    && strlen(name) > 7 && strcasecmp(name + strlen(name) - 7, "_access") == 0)
		return "access";
	if (strncasecmp(name, "reject_rbl", 10) == 0
	    || strncasecmp(name, "reject_rhsbl", 12) == 0
	    || strncasecmp(name, "permit_dnswl", 12) == 0
	    || strncasecmp(name, "permit_rhswl", 12) == 0)
		return "rbl";
	return NULL;
}

/* ---- compiling ---------------------------------------------------------- */

static bool is_class(const struct config *cfg, const char *name)
{
	const char *v = cfg_lookup(cfg, "smtpd_restriction_classes");
	char **cl;
	bool hit = false;

	if (v == NULL || *v == 0)
		return false;
	cl = config_split_list(v);
	for (int i = 0; cl && cl[i] && !hit; i++)
		hit = strcasecmp(cl[i], name) == 0;
	cfg_list_free(cl);
	return hit;
}

static void list_add(struct restriction_list *l, enum ritem_kind kind,
		     const struct restriction_def *def, const char *name,
		     const char *arg)
{
	struct ritem *it;

	if ((l->v = realloc(l->v, (size_t)(l->n + 1) * sizeof *l->v)) == NULL)
		msg_fatal("restrictions: out of memory");
	it = &l->v[l->n++];
	it->kind = kind;
	it->def = def;
	it->name = mystrdup(name);
	it->arg = arg ? mystrdup(arg) : NULL;
}

/* A problem in a list: to d as "file:line: ...", or into err. */
struct compile_ctx {
	const struct config *cfg;
	const char *param;          /* "smtpd_client_restrictions", or the
				     * access table for a runtime value */
	const char *file; int line;
	struct diag *d;
	char *err; size_t errlen;
	bool check_tables;
	int problems;
};

static void problem(struct compile_ctx *cc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void problem(struct compile_ctx *cc, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (cc->d)
		diag_add(cc->d, DIAG_ERROR, cc->file, cc->line, "%s", text);
	if (cc->err && cc->problems == 0)
		snprintf(cc->err, cc->errlen, "%s", text);
	cc->problems++;
}

static void unknown_name(struct compile_ctx *cc, const char *name)
{
	const char *sug = suggest(name), *plugin = providing_plugin(name);

	if (plugin)
		problem(cc, "unknown restriction %s in %s; it is provided by "
			"the \"%s\" plugin: add %s to sluice_plugins", name,
			cc->param, plugin, plugin);
	else if (sug)
		problem(cc, "unknown restriction %s in %s; did you mean %s? "
			"(a restriction class must be listed in "
			"smtpd_restriction_classes)", name, cc->param, sug);
	else
		problem(cc, "unknown restriction %s in %s; use a restriction "
			"name (docs/restrictions.md), a plugin's restriction, or "
			"a class listed in smtpd_restriction_classes", name,
			cc->param);
}

static void check_table(struct compile_ctx *cc, const char *name,
			const char *arg)
{
	char err[512];

	if (strchr(arg, ':') == NULL) {
		problem(cc, "restriction %s in %s: bad argument \"%s\": need "
			"type:name", name, cc->param, arg);
		return;
	}
	if (cc->check_tables && map_open(arg, err, sizeof err) == NULL)
		problem(cc, "restriction %s in %s: %s", name, cc->param, err);
}

/* The restriction's own argument check, if it registered one. */
static void check_arg(struct compile_ctx *cc, const char *name,
		      const char *arg)
{
	restriction_arg_check_fn fn = arg_check_of(name);
	char err[768];

	if (fn && fn(arg, cc->cfg, err, sizeof err) < 0)
		problem(cc, "restriction %s in %s: %s", name, cc->param, err);
}

/* Compile the words of a list. */
static struct restriction_list *compile_words(struct compile_ctx *cc,
					      char **w, int stage)
{
	struct restriction_list *l = calloc(1, sizeof *l);
	const struct restriction_def *def;
	const char *name;

	if (l == NULL)
		msg_fatal("restrictions: out of memory");
	l->param = mystrdup(cc->param);
	for (int i = 0; w && w[i]; i++) {
		name = w[i];
		if (strchr(name, ':') != NULL) {
			/* a bare table: the list's own check_*_access */
			const char *acl = stage >= 0 ? stage_default_acl[stage] : NULL;

			if (acl == NULL || (def = restriction_find(acl)) == NULL) {
				problem(cc, "table %s in %s: write the "
					"check_*_access restriction before it", name,
					cc->param);
				continue;
			}
			if (def->flags & RF_ARG_TABLE)
				check_table(cc, acl, name);
			list_add(l, RI_RESTRICTION, def, acl, name);
			continue;
		}
		if ((def = restriction_find(name)) != NULL) {
			const char *arg = NULL;

			if (def->flags & (RF_ARG | RF_ARG_TABLE)) {
				if ((arg = w[i + 1]) == NULL) {
					problem(cc, "restriction %s in %s needs an "
						"argument%s", name, cc->param,
						(def->flags & RF_ARG_TABLE)
						? " (a type:name table)" : "");
					continue;
				}
				i++;
				if (def->flags & RF_ARG_TABLE)
					check_table(cc, name, arg);
				check_arg(cc, def->name, arg);
			}
			list_add(l, def->flags & RF_WARN_IF_REJECT
				 ? RI_WARN_IF_REJECT : RI_RESTRICTION, def,
				 def->name, arg);
		} else if (is_class(cc->cfg, name)) {
			list_add(l, RI_CLASS, NULL, name, NULL);
		} else {
			unknown_name(cc, name);
			if (w[i + 1] && strchr(w[i + 1], ':'))
				i++;    /* its table: one message is enough */
		}
	}
	return l;
}

static struct restriction_list *compile(struct compile_ctx *cc,
					const char *value)
{
	char **w = config_split_list(value ? value : "");
	struct restriction_list *l = compile_words(cc, w, stage_of_param(cc->param));

	cfg_list_free(w);
	if (cc->problems) {
		restriction_list_free(l);
		return NULL;
	}
	return l;
}

struct restriction_list *restriction_list_compile(const struct config *cfg,
						  const char *param,
						  struct diag *d)
{
	struct compile_ctx cc = { .cfg = cfg, .param = param, .d = d,
				  .check_tables = true };
	const char *value = cfg_lookup(cfg, param);
	char label[300];

	if (stage_of_param(param) < 0) {
		snprintf(label, sizeof label, "restriction class %s", param);
		cc.param = label;
	}

	cc.file = cfg_where(cfg, param, &cc.line);
	if (value == NULL) {
		problem(&cc, "restriction class %s has no definition; set "
			"\"%s = restrictions...\" in main.cf", param, param);
		return NULL;
	}
	return compile(&cc, value);
}

struct restriction_list *restriction_list_parse(const struct config *cfg,
						const char *origin,
						const char *value,
						char *err, size_t errlen)
{
	struct compile_ctx cc = { .cfg = cfg, .param = origin, .err = err,
				  .errlen = errlen };

	return compile(&cc, value);
}

void restriction_list_free(struct restriction_list *l)
{
	if (l == NULL)
		return;
	for (int i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].arg);
	}
	free(l->v);
	free(l->param);
	free(l);
}

/* ---- the per-configuration cache ------------------------------------ */

struct named_list { char *name; struct restriction_list *l; bool broken; };

struct cfg_lists {
	const struct config *cfg;
	struct restriction_list *stage[RS__COUNT];
	bool broken[RS__COUNT];
	struct named_list *cls; int ncls;
};

static struct cfg_lists *cache;
static int ncache;

static struct cfg_lists *lists_of(const struct config *cfg)
{
	struct cfg_lists *cl;
	struct diag d;

	for (int i = 0; i < ncache; i++)
		if (cache[i].cfg == cfg)
			return &cache[i];
	if ((cache = realloc(cache, (size_t)(ncache + 1) * sizeof *cache)) == NULL)
		msg_fatal("restrictions: out of memory");
	cl = &cache[ncache++];
	memset(cl, 0, sizeof *cl);
	cl->cfg = cfg;
	for (int st = 0; st < RS__COUNT; st++) {
		diag_init(&d);
		cl->stage[st] = restriction_list_compile(cfg, stage_params[st], &d);
		cl->broken[st] = cl->stage[st] == NULL;
		for (int k = 0; k < d.n; k++)
			msg_error("%s", d.v[k].text);
		diag_free(&d);
	}
	return cl;
}

const struct restriction_list *restriction_stage_list(const struct config *cfg,
						      enum rstage st)
{
	struct cfg_lists *cl = lists_of(cfg);

	return st < RS__COUNT ? cl->stage[st] : NULL;
}

const struct restriction_list *restriction_class_list(const struct config *cfg,
						      const char *name)
{
	struct cfg_lists *cl = lists_of(cfg);
	struct named_list *nl;
	struct diag d;

	for (int i = 0; i < cl->ncls; i++)
		if (strcasecmp(cl->cls[i].name, name) == 0)
			return cl->cls[i].l;
	if (!is_class(cfg, name))
		return NULL;
	cl->cls = realloc(cl->cls, (size_t)(cl->ncls + 1) * sizeof *cl->cls);
	if (cl->cls == NULL)
		msg_fatal("restrictions: out of memory");
	nl = &cl->cls[cl->ncls++];
	nl->name = mystrdup(name);
	diag_init(&d);
	nl->l = restriction_list_compile(cfg, name, &d);
	for (int k = 0; k < d.n; k++)
		msg_error("%s", d.v[k].text);
	diag_free(&d);
	return nl->l;
}

static void forget(const struct config *cfg)
{
	for (int i = 0; i < ncache; i++) {
		struct cfg_lists *cl = &cache[i];

		if (cl->cfg != cfg)
			continue;
		for (int st = 0; st < RS__COUNT; st++)
			restriction_list_free(cl->stage[st]);
		for (int k = 0; k < cl->ncls; k++) {
			free(cl->cls[k].name);
			restriction_list_free(cl->cls[k].l);
		}
		free(cl->cls);
		cache[i] = cache[--ncache];
		return;
	}
}

void restriction_config_forget(const struct sluice_config *sc)
{
	if (sc == NULL)
		return;
	forget(sc->main);
	for (int i = 0; i < sc->nlisteners; i++)
		forget(sc->listeners[i].cfg);
}

/* ---- checking a whole configuration ------------------------------------ */

/* Postfix refuses to start without a restriction that can refuse relaying
 * in the relay or recipient list (fail_required in smtpd_check.c). */
static bool has_required(const struct config *cfg,
			 const struct restriction_list *l, int depth)
{
	static const char *const required[] = {
		"reject_unauth_destination", "defer_unauth_destination",
		"reject", "defer", "defer_if_permit", "check_relay_domains", NULL
	};

	for (int i = 0; l && i < l->n && depth < 20; i++) {
		const struct ritem *it = &l->v[i];

		if (it->kind == RI_WARN_IF_REJECT) {
			i++;        /* a warned restriction does not count */
			continue;
		}
		if (strcasecmp(it->name, "permit") == 0)
			return false;
		for (int k = 0; required[k]; k++)
			if (strcasecmp(it->name, required[k]) == 0)
				return true;
		if (it->kind == RI_CLASS && has_required(cfg,
				restriction_class_list(cfg, it->name), depth + 1))
			return true;
	}
	return false;
}

/* Postfix's "restriction `x' after `permit' is ignored", found early. */
static void check_unreachable(const struct config *cfg, const char *param,
			      const struct restriction_list *l, struct diag *d)
{
	static const char *const enders[] = { "permit", "reject", "defer", NULL };
	const char *file;
	int line;

	for (int i = 0; l && i + 1 < l->n; i++) {
		if (l->v[i].kind != RI_RESTRICTION
		    || (i > 0 && l->v[i - 1].kind == RI_WARN_IF_REJECT))
			continue;
		for (int k = 0; enders[k]; k++) {
			if (strcasecmp(l->v[i].name, enders[k]) != 0)
				continue;
			file = cfg_where(cfg, param, &line);
			diag_add(d, DIAG_WARNING, file, line, "restriction %s after "
				 "%s in %s is never evaluated; remove it or move "
				 "%s to the end", l->v[i + 1].name, enders[k],
				 param, enders[k]);
			return;
		}
	}
}

static void check_set(const struct config *cfg, struct diag *d,
		      const char *where)
{
	struct restriction_list *l[RS__COUNT] = { NULL };
	const char *classes = cfg_lookup(cfg, "smtpd_restriction_classes");
	char **cl = config_split_list(classes ? classes : "");
	int errors = d->errors, line;
	const char *file;

	for (int i = 0; cl && cl[i]; i++) {
		struct restriction_list *c;

		if (cfg_lookup(cfg, cl[i]) == NULL || *cfg_lookup(cfg, cl[i]) == 0) {
			file = cfg_where(cfg, "smtpd_restriction_classes", &line);
			diag_add(d, DIAG_ERROR, file, line, "restriction class %s "
				 "needs a definition; add \"%s = restrictions...\" "
				 "to main.cf", cl[i], cl[i]);
			continue;
		}
		if ((c = restriction_list_compile(cfg, cl[i], d)) != NULL) {
			if (*where == 0)
				check_unreachable(cfg, cl[i], c, d);
			restriction_list_free(c);
		}
	}
	cfg_list_free(cl);
	for (int st = 0; st < RS__COUNT; st++) {
		l[st] = restriction_list_compile(cfg, stage_params[st], d);
		if (*where == 0 || cfg_where(cfg, stage_params[st], &line) == NULL
		    || strstr(cfg_where(cfg, stage_params[st], &line), "master.cf"))
			check_unreachable(cfg, stage_params[st], l[st], d);
	}
	if (d->errors == errors && !has_required(cfg, l[RS_RELAY], 0)
	    && !has_required(cfg, l[RS_RECIPIENT], 0)) {
		file = cfg_where(cfg, "smtpd_relay_restrictions", &line);
		if (file == NULL)
			file = cfg_where(cfg, "smtpd_recipient_restrictions", &line);
		diag_add(d, DIAG_ERROR, file, line, "%sin parameter "
			 "smtpd_relay_restrictions or smtpd_recipient_restrictions, "
			 "specify at least one working instance of: "
			 "reject_unauth_destination, defer_unauth_destination, "
			 "reject, defer or defer_if_permit (an open relay is "
			 "refused)", where);
	}
	for (int st = 0; st < RS__COUNT; st++)
		restriction_list_free(l[st]);
}

void restriction_config_check(const struct sluice_config *sc, struct diag *d)
{
	int errors = d->errors;

	if (sc == NULL || sc->main == NULL)
		return;
	check_set(sc->main, d, "");
	if (d->errors > errors)
		return;         /* listeners inherit main.cf's problems: say them once */
	for (int i = 0; i < sc->nlisteners; i++) {
		char where[300];

		snprintf(where, sizeof where, "listener %s: ",
			 sc->listeners[i].service);
		check_set(sc->listeners[i].cfg, d, where);
	}
}
