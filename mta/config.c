/*
 * config.c - load the configuration: main.cf, master.cf and the plugins'
 * parameters, resolved into typed, immutable parameter sets.
 *
 * config_load() reads CONFIG_DIR/main.cf and CONFIG_DIR/master.cf,
 * registers the parameters of the plugins named in sluice_plugins, and
 * builds one `struct config` for main.cf and one per smtpd listener
 * (main.cf plus the listener's -o overrides, expanded after the overrides
 * are applied, as Postfix does: `-o mynetworks=...` also changes a
 * `$mynetworks` reference elsewhere in that listener's set), and likewise
 * one per delivery transport.  In a service's set, $service_name is its
 * master.cf name (Postfix's `-o syslog_name=postfix/$service_name`).
 *
 * Decisions:
 *   - Relative paths.  config_directory, queue_directory,
 *     plugin_directory and maillog_file, when relative, are taken
 *     relative to the configuration directory, and always come out as
 *     absolute, normalized paths (the daemon changes directory).  So
 *     conf/main.cf may say `queue_directory = ../var/spool`.
 *   - config_directory is the directory actually read (sluice -c DIR),
 *     as an absolute path; setting it in main.cf changes nothing and
 *     draws a warning when it differs.
 *   - Unknown names.  A name in main.cf (or -o) that is not registered
 *     is accepted as a user-defined parameter when some value refers to
 *     it with $name (or smtpd_restriction_classes lists it), as Postfix
 *     allows; Postfix-only names (biff, readme_directory, ...) are a
 *     warning; any other unknown name is an error with a did-you-mean.
 *     config_load() is strict for check, run and reload alike; with
 *     CONFIG_LENIENT unknown names, duplicates and indented look-alike
 *     lines become warnings (`sluice conf` uses it).
 *   - mydomain, when not set, follows a myhostname that is set (Postfix:
 *     "$myhostname minus the first component").
 *   - Bad values (a time that is not a time, ...) and $name problems
 *     are always errors.
 *   - Booleans read yes/no (also true/false, on/off, 1/0); sizes are
 *     bytes with optional k, m, g (x1024); integers are >= 0.
 *   - cfg_int, cfg_time and cfg_size answer for any of the three numeric
 *     types (all are counts); asking a string, list or boolean parameter
 *     for a number, or an unknown name for anything, is msg_panic.
 *
 * Lookups are a binary search over the set's sorted entries; the set
 * owns copies of every string it holds, so it stays valid when the
 * registry grows on reload.  This file owns sluice_conf.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "plugin_loader.h"
#include "restriction.h"
#include "plugin_names.h"

#define SHOW_MAX	60		/* how much of a bad value to quote */

struct sluice_config *sluice_conf;

struct cfg_entry {
	char *name;
	char *value;            /* expanded */
	enum param_type type;
	long long num;          /* boolean, integer, time (s), size */
	bool set;
	const char *file;       /* config's main_path or master_path */
	int line;
};

struct config {
	struct cfg_entry *v;
	int n;
	char *main_path;
	char *master_path;
};

/* ---- paths --------------------------------------------------------------- */

/* Fold "." and ".." and repeated "/" of an absolute path, in place. */
static void normalize_abs(char *path)
{
	char *out = path, *in = path;

	while (*in) {
		while (*in == '/')
			in++;
		if (*in == 0)
			break;
		size_t n = strcspn(in, "/");

		if (n == 1 && in[0] == '.') {
			/* skip */
		} else if (n == 2 && in[0] == '.' && in[1] == '.') {
			while (out > path && *--out != '/')
				;
		} else {
			*out++ = '/';
			memmove(out, in, n);
			out += n;
		}
		in += n;
	}
	if (out == path)
		*out++ = '/';
	*out = 0;
}

char *cf_path_join(const char *dir, const char *path)
{
	char *s;

	if (path[0] == '/')
		s = strdup(path);
	else if (asprintf(&s, "%s/%s", dir, path) < 0)
		s = NULL;
	if (s != NULL)
		normalize_abs(s);
	return s;
}

char *cf_display_path(const char *config_dir, const char *file)
{
	size_t n = strlen(config_dir);
	char *s;

	while (n > 1 && config_dir[n - 1] == '/')
		n--;
	if (n == 0 || (n == 1 && config_dir[0] == '.'))
		return strdup(file);
	if (asprintf(&s, "%.*s%s%s", (int)n, config_dir,
		     config_dir[n - 1] == '/' ? "" : "/", file) < 0)
		return NULL;
	return s;
}

static char *absolute_dir(const char *dir)
{
	char cwd[PATH_MAX];

	if (dir[0] == '/')
		return cf_path_join("/", dir);
	if (getcwd(cwd, sizeof cwd) == NULL)
		return NULL;
	return cf_path_join(cwd, dir);
}

/* ---- value types ----------------------------------------------------- */

int parse_bool(const char *s, bool *b)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*b = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*b = false;
			return 0;
		}
	}
	return -1;
}

/* A non-negative decimal number at s; *end after it. */
static int parse_count(const char *s, long long *v, const char **end)
{
	char *e;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	*v = strtoll(s, &e, 10);
	if (errno != 0)
		return -1;
	*end = e;
	return 0;
}

static int scale(long long v, long long mult, long long *out)
{
	if (v > LLONG_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int parse_time(const char *s, char default_unit, long long *secs)
{
	static const struct { char unit; long long mult; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
		{ 'w', 604800 },
	};
	const char *end;
	long long v;
	char unit;

	if (parse_count(s, &v, &end) < 0)
		return -1;
	unit = *end ? *end : default_unit;
	if (*end && end[1])
		return -1;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (units[i].unit == unit)
			return scale(v, units[i].mult, secs);
	return -1;
}

int parse_size(const char *s, long long *bytes)
{
	const char *end;
	long long v, mult = 1;

	if (parse_count(s, &v, &end) < 0)
		return -1;
	switch (tolower((unsigned char)*end)) {
	case 0: break;
	case 'k': mult = 1024; break;
	case 'm': mult = 1024 * 1024; break;
	case 'g': mult = 1024 * 1024 * 1024; break;
	default: return -1;
	}
	if (*end && end[1])
		return -1;
	return scale(v, mult, bytes);
}

static int parse_int(const char *s, long long *v)
{
	const char *end;

	if (parse_count(s, v, &end) < 0 || *end)
		return -1;
	return 0;
}

bool config_is_table(const char *item)
{
	size_t n = strspn(item, "abcdefghijklmnopqrstuvwxyz0123456789_-");

	return n > 0 && item[n] == ':' && item[n + 1] != 0;
}

/* The value as a number for the numeric types; -1 when it is bad. */
static int typed_value(enum param_type t, const char *value, long long *num)
{
	bool b;
	char **items;
	int rc = 0;

	*num = 0;
	switch (t) {
	case PT_BOOL:
		if (parse_bool(value, &b) < 0)
			return -1;
		*num = b;
		return 0;
	case PT_INT:
		return parse_int(value, num);
	case PT_TIME:
		return parse_time(value, 's', num);
	case PT_SIZE:
		return parse_size(value, num);
	case PT_MAP:
		if ((items = config_split_list(value)) == NULL)
			return -1;
		for (int i = 0; items[i] && rc == 0; i++)
			if (!config_is_table(items[i]))
				rc = -1;
		cfg_list_free(items);
		return rc;
	default:
		return 0;
	}
}

int param_value_ok(enum param_type t, const char *value)
{
	long long num;

	return typed_value(t, value, &num);
}

char *config_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

static bool list_sep(int c)
{
	return c == ',' || isspace(c);
}

char **config_split_list(const char *value)
{
	size_t cap = 8, n = 0;
	char **v = malloc(cap * sizeof *v);
	const char *p = value;

	if (v == NULL)
		return NULL;
	for (;;) {
		const char *start;
		int depth = 0;

		while (*p && list_sep((unsigned char)*p))
			p++;
		if (*p == 0)
			break;
		for (start = p; *p && (depth > 0 || !list_sep((unsigned char)*p)); p++) {
			if (*p == '{')
				depth++;
			else if (*p == '}' && depth > 0)
				depth--;
		}
		if (n + 2 > cap) {
			char **nv = realloc(v, (cap *= 2) * sizeof *v);

			if (nv == NULL)
				break;
			v = nv;
		}
		if ((v[n] = strndup(start, (size_t)(p - start))) == NULL)
			break;
		n++;
	}
	v[n] = NULL;
	if (*p) {               /* out of memory part way */
		cfg_list_free(v);
		return NULL;
	}
	return v;
}

void cfg_list_free(char **list)
{
	if (list == NULL)
		return;
	for (int i = 0; list[i]; i++)
		free(list[i]);
	free(list);
}

/* ---- lookups ------------------------------------------------------------ */

static int entry_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct cfg_entry *)elem)->name);
}

static const struct cfg_entry *entry_find(const struct config *c,
					  const char *name)
{
	if (c == NULL)
		return NULL;
	return bsearch(name, c->v, (size_t)c->n, sizeof *c->v, entry_cmp);
}

static const struct cfg_entry *entry_get(const struct config *c,
					 const char *name, const char *fn)
{
	const struct cfg_entry *e = entry_find(c, name);

	if (e == NULL)
		msg_panic("%s: unknown parameter \"%s\"", fn, name);
	return e;
}

static bool numeric(enum param_type t)
{
	return t == PT_INT || t == PT_TIME || t == PT_SIZE;
}

static long long number_get(const struct config *c, const char *name,
			    const char *fn)
{
	const struct cfg_entry *e = entry_get(c, name, fn);

	/* The numeric types convert into each other (they are all counts);
	 * a string has no number, and asking for one is a bug. */
	if (!numeric(e->type))
		msg_panic("%s: parameter \"%s\" is a %s, not a number", fn,
			  name, param_type_name(e->type));
	return e->num;
}

const char *cfg_str(const struct config *c, const char *name)
{
	return entry_get(c, name, "cfg_str")->value;
}

bool cfg_bool(const struct config *c, const char *name)
{
	const struct cfg_entry *e = entry_get(c, name, "cfg_bool");

	if (e->type != PT_BOOL)
		msg_panic("cfg_bool: parameter \"%s\" is a %s, not a boolean",
			  name, param_type_name(e->type));
	return e->num != 0;
}

long long cfg_int(const struct config *c, const char *name)
{
	return number_get(c, name, "cfg_int");
}

long long cfg_time(const struct config *c, const char *name)
{
	return number_get(c, name, "cfg_time");
}

long long cfg_size(const struct config *c, const char *name)
{
	return number_get(c, name, "cfg_size");
}

char **cfg_list(const struct config *c, const char *name)
{
	char **v = config_split_list(cfg_str(c, name));

	if (v == NULL)
		msg_fatal("out of memory splitting the value of %s", name);
	return v;
}

bool cfg_is_set(const struct config *c, const char *name)
{
	return entry_get(c, name, "cfg_is_set")->set;
}

const char *cfg_where(const struct config *c, const char *name, int *line)
{
	const struct cfg_entry *e = entry_get(c, name, "cfg_where");

	*line = e->set ? e->line : 0;
	return e->set ? e->file : NULL;
}

const char *cfg_lookup(const struct config *c, const char *name)
{
	const struct cfg_entry *e = entry_find(c, name);

	return e ? e->value : NULL;
}

int cfg_lookup_number(const struct config *c, const char *name,
		      long long *value)
{
	const struct cfg_entry *e = entry_find(c, name);

	*value = 0;
	if (e == NULL || !(numeric(e->type) || e->type == PT_BOOL))
		return -1;
	*value = e->num;
	return 0;
}

/* ---- loading ------------------------------------------------------------- */

struct loader {
	struct diag *d;
	int flags;
	enum diag_level lint;
	char *base;             /* absolute configuration directory */
	struct cf_file mf;
	struct cf_master ms;
	char **refs;            /* every name referenced with $ */
	int nrefs, caprefs;
	char **plugins_failed;  /* sluice_plugins, when registration failed */
	bool prelim;            /* first pass: every main.cf name is a string */
	int master_errors;      /* errors found reading master.cf */
};

static void add_ref(const char *name, size_t len, void *arg)
{
	struct loader *ld = arg;

	for (int i = 0; i < ld->nrefs; i++)
		if (strlen(ld->refs[i]) == len && memcmp(ld->refs[i], name, len) == 0)
			return;
	if (ld->nrefs == ld->caprefs) {
		int cap = ld->caprefs ? ld->caprefs * 2 : 16;
		char **v = realloc(ld->refs, (size_t)cap * sizeof *v);

		if (v == NULL)
			return;
		ld->refs = v;
		ld->caprefs = cap;
	}
	if ((ld->refs[ld->nrefs] = strndup(name, len)) != NULL)
		ld->nrefs++;
}

static bool referenced(const struct loader *ld, const char *name)
{
	for (int i = 0; i < ld->nrefs; i++)
		if (strcmp(ld->refs[i], name) == 0)
			return true;
	return false;
}

/* Every $name in main.cf and master.cf, and the restriction classes. */
static void collect_refs(struct loader *ld)
{
	for (int i = 0; i < ld->mf.n; i++) {
		cf_references(ld->mf.v[i].value, add_ref, ld);
		if (strcmp(ld->mf.v[i].name, "smtpd_restriction_classes") == 0) {
			char **cl = config_split_list(ld->mf.v[i].value);

			for (int k = 0; cl && cl[k]; k++)
				add_ref(cl[k], strlen(cl[k]), ld);
			cfg_list_free(cl);
		}
	}
	for (int s = 0; s < ld->ms.n; s++)
		for (int k = 0; k < ld->ms.v[s].no; k++)
			cf_references(ld->ms.v[s].o[k].value, add_ref, ld);
}

/* Postfix's per-transport parameters: TRANSPORT_destination_recipient_limit
 * and the like, for a transport master.cf declares or a built-in one. */
static bool transport_param(const struct loader *ld, const char *name)
{
	static const char *const builtin[] = {
		"smtp", "relay", "lmtp", "local", "virtual", "discard",
		"error", "retry", NULL
	};
	size_t n = strlen(name), k;

	for (int i = 0; transport_param_suffixes[i]; i++) {
		k = strlen(transport_param_suffixes[i]);
		if (n <= k || strcmp(name + n - k, transport_param_suffixes[i]) != 0)
			continue;
		for (int b = 0; builtin[b]; b++)
			if (strlen(builtin[b]) == n - k &&
			    strncmp(name, builtin[b], n - k) == 0)
				return true;
		for (int s = 0; s < ld->ms.n; s++)
			if (ld->ms.v[s].transport &&
			    strlen(ld->ms.v[s].l.service) == n - k &&
			    strncmp(name, ld->ms.v[s].l.service, n - k) == 0)
				return true;
	}
	return false;
}

/* A name that is neither registered nor Postfix-only but referenced (or
 * a per-transport parameter). */
static bool user_defined(const struct loader *ld, const char *name)
{
	if (param_find(name) != NULL)
		return false;
	return ld->prelim || referenced(ld, name) || transport_param(ld, name);
}

/* ---- one resolved set ------------------------------------------------ */

struct varset {
	struct cf_vars vs;
	int cap;
};

static int var_by_name(const void *a, const void *b)
{
	return strcmp(((const struct cf_var *)a)->name,
		      ((const struct cf_var *)b)->name);
}

static struct cf_var *var_find(struct varset *s, const char *name)
{
	struct cf_var key = { .name = name };

	return bsearch(&key, s->vs.v, (size_t)s->vs.n, sizeof key, var_by_name);
}

/* Add a variable; a user-defined name (set twice, or in main.cf and
 * -o) is added once. */
static int var_push(struct varset *s, const char *name, const char *raw,
		    enum param_type type, bool user)
{
	for (int i = 0; user && i < s->vs.n; i++)
		if (strcmp(s->vs.v[i].name, name) == 0)
			return 0;
	if (s->vs.n == s->cap) {
		int cap = s->cap ? s->cap * 2 : 128;
		struct cf_var *v = realloc(s->vs.v, (size_t)cap * sizeof *v);

		if (v == NULL)
			return -1;
		s->vs.v = v;
		s->cap = cap;
	}
	s->vs.v[s->vs.n++] = (struct cf_var) {
		.name = name, .raw = raw, .type = type,
		.path = param_is_path(name),
	};
	return 0;
}

static void var_set(struct varset *s, const char *name, const char *raw,
		    const char *file, int line)
{
	struct cf_var *v = var_find(s, name);

	if (v == NULL || strcmp(name, "config_directory") == 0)
		return;
	v->raw = raw;
	v->file = file;
	v->line = line;
}

static int build_vars(struct loader *ld, const struct cf_service *svc,
		      struct varset *s, const char *main_path,
		      const char *master_path)
{
	for (int i = 0; i < param_count(); i++) {
		const struct param_def *p = param_at(i);

		if (var_push(s, p->name, p->defval, p->type, false) < 0)
			return -1;
	}
	for (int i = 0; i < ld->mf.n; i++)
		if (user_defined(ld, ld->mf.v[i].name) &&
		    var_push(s, ld->mf.v[i].name, "", PT_STRING, true) < 0)
			return -1;
	for (int k = 0; svc && k < svc->no; k++)
		if (user_defined(ld, svc->o[k].name) &&
		    var_push(s, svc->o[k].name, "", PT_STRING, true) < 0)
			return -1;
	qsort(s->vs.v, (size_t)s->vs.n, sizeof *s->vs.v, var_by_name);
	for (int i = 0; i < ld->mf.n; i++)
		var_set(s, ld->mf.v[i].name, ld->mf.v[i].value, main_path,
			ld->mf.v[i].line);
	for (int k = 0; svc && k < svc->no; k++)
		var_set(s, svc->o[k].name, svc->o[k].value, master_path,
			svc->o[k].line);
	if (svc != NULL)
		var_set(s, "service_name", svc->l.service, NULL, 0);
	var_find(s, "config_directory")->raw = ld->base;
	s->vs.base_dir = ld->base;
	return 0;
}

static void free_vars(struct varset *s)
{
	for (int i = 0; i < s->vs.n; i++)
		free(s->vs.v[i].value);
	free(s->vs.v);
}

/* Postfix: an unset mydomain is $myhostname minus its first label (when
 * what remains still has a dot), else "localdomain". */
static bool derive_mydomain(struct varset *s, char **derived)
{
	struct cf_var *host = var_find(s, "myhostname");
	struct cf_var *dom = var_find(s, "mydomain");
	const char *dot;

	if (!host || !dom || dom->file || !host->file ||
	    strstr(host->raw, "mydomain") || strchr(host->value, '$'))
		return false;
	dot = strchr(host->value, '.');
	*derived = strdup(dot && strchr(dot + 1, '.') ? dot + 1 : "localdomain");
	if (*derived == NULL || strcmp(*derived, dom->value) == 0) {
		free(*derived);
		*derived = NULL;
		return false;
	}
	dom->raw = *derived;
	return true;
}

static void check_value(struct loader *ld, const struct cf_var *v,
			long long *num, const char *main_path)
{
	size_t n = strlen(v->value);

	if (v->broken || typed_value(v->type, v->value, num) == 0)
		return;
	diag_add(ld->d, DIAG_ERROR, v->file ? v->file : main_path, v->line,
		 "bad value \"%.*s%s\" for \"%s\"; expected %s",
		 (int)(n > SHOW_MAX ? SHOW_MAX : n), v->value,
		 n > SHOW_MAX ? "..." : "", v->name,
		 param_type_hint(v->type));
}

static struct config *config_from_vars(struct loader *ld, struct varset *s,
				       const char *main_path,
				       const char *master_path)
{
	struct config *c = calloc(1, sizeof *c);

	if (c == NULL || (c->v = calloc((size_t)s->vs.n, sizeof *c->v)) == NULL ||
	    (c->main_path = strdup(main_path)) == NULL ||
	    (c->master_path = strdup(master_path)) == NULL)
		goto oom;
	for (int i = 0; i < s->vs.n; i++) {
		struct cf_var *v = &s->vs.v[i];
		struct cfg_entry *e = &c->v[i];

		if ((e->name = strdup(v->name)) == NULL)
			goto oom;
		c->n++;
		check_value(ld, v, &e->num, main_path);
		e->value = v->value;
		v->value = NULL;
		e->type = v->type;
		e->set = v->file != NULL;
		e->file = v->file == NULL ? NULL :
			  v->file == main_path ? c->main_path : c->master_path;
		e->line = v->line;
		e->value = e->value ? e->value : strdup("");
		if (e->value == NULL)
			goto oom;
	}
	return c;
oom:
	diag_add(ld->d, DIAG_ERROR, main_path, 0,
		 "out of memory resolving the configuration; free some memory and try again");
	return c;
}

static void config_free_one(struct config *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < c->n; i++) {
		free(c->v[i].name);
		free(c->v[i].value);
	}
	free(c->v);
	free(c->main_path);
	free(c->master_path);
	free(c);
}

/* One parameter set: registry defaults, main.cf, then svc's -o. */
static struct config *resolve(struct loader *ld, const struct cf_service *svc)
{
	struct varset s = { 0 };
	struct config *c = NULL;
	char *derived = NULL;

	if (build_vars(ld, svc, &s, ld->mf.path, ld->ms.path) == 0) {
		cf_expand_all(&s.vs, ld->d);
		if (derive_mydomain(&s, &derived))
			cf_expand_all(&s.vs, ld->d);
		c = config_from_vars(ld, &s, ld->mf.path, ld->ms.path);
	} else {
		diag_add(ld->d, DIAG_ERROR, ld->mf.path, 0,
			 "out of memory resolving the configuration; free some memory and try again");
	}
	free_vars(&s);
	free(derived);
	return c;
}

/* ---- plugins ------------------------------------------------------------ */

/* Resolve main.cf once with the core's parameters (quietly: the real pass
 * reports), then let the loader register the plugins' parameters. */
static void register_plugins(struct loader *ld)
{
	const struct cf_setting *set = cf_last(&ld->mf, "sluice_plugins");
	struct diag quiet, *real = ld->d;
	struct config *pre;
	char **names;

	diag_init(&quiet);
	ld->prelim = true;
	ld->d = &quiet;
	pre = resolve(ld, NULL);
	ld->d = real;
	ld->prelim = false;
	diag_free(&quiet);
	if (pre == NULL)
		return;
	names = plugin_names(pre);     /* sluice_builtin_plugins too */
	if (names && names[0] &&
	    plugins_register_params(cfg_str(pre, "plugin_directory"), names,
				    ld->d, ld->mf.path, set ? set->line : 0) != 0)
		ld->plugins_failed = names;
	else
		cfg_list_free(names);
	config_free_one(pre);
}

/* A name that belongs to a plugin which failed to load is not reported
 * as unknown: the load failure is the problem to fix. */
static bool failed_plugin_name(const struct loader *ld, const char *name)
{
	for (int i = 0; ld->plugins_failed && ld->plugins_failed[i]; i++) {
		size_t n = strlen(ld->plugins_failed[i]);

		if (strncmp(name, ld->plugins_failed[i], n) == 0 && name[n] == '_')
			return true;
	}
	return false;
}

/* ---- names: unknown, Postfix-only, set twice ------------------------- */

static void unknown_name(struct loader *ld, const char *file, int line,
			 const char *name, const char *where)
{
	const char *sug;

	if (param_postfix_only(name)) {
		diag_add(ld->d, DIAG_WARNING, file, line,
			 "\"%s\"%s is a Postfix parameter with no meaning in sluice; it is ignored, remove it to silence this warning",
			 name, where);
		return;
	}
	if (failed_plugin_name(ld, name))
		return;
	if ((sug = param_suggest(name)) != NULL)
		diag_add(ld->d, ld->lint, file, line,
			 "unknown parameter \"%s\"%s; did you mean \"%s\"?",
			 name, where, sug);
	else
		diag_add(ld->d, ld->lint, file, line,
			 "unknown parameter \"%s\"%s; check the name (\"sluice conf -d\" lists them all) or remove it",
			 name, where);
}

static void config_directory_set(struct loader *ld, const char *file,
				 int line, const char *value)
{
	char *p = cf_path_join(ld->base, value);

	if (p && strcmp(p, ld->base) != 0)
		diag_add(ld->d, DIAG_WARNING, file, line,
			 "config_directory is the directory this file is read from (%s), so this setting is ignored; remove it, or use sluice -c DIR",
			 ld->base);
	free(p);
}

/* "also set at line 3" / "at lines 3 and 5" / "at lines 3, 5 and 7". */
static void set_twice(struct loader *ld, const char *name, int last)
{
	char lines[256];
	size_t len = 0;
	int n = 0, total = 0;

	for (int i = 0; i < last; i++)
		if (strcmp(ld->mf.v[i].name, name) == 0)
			total++;
	lines[0] = 0;
	for (int i = 0; i < last && len < sizeof lines; i++) {
		if (strcmp(ld->mf.v[i].name, name) != 0)
			continue;
		n++;
		len += (size_t)snprintf(lines + len, sizeof lines - len, "%s%d",
					n == 1 ? "" : n == total ? " and " : ", ",
					ld->mf.v[i].line);
	}
	diag_add(ld->d, ld->lint, ld->mf.path, ld->mf.v[last].line,
		 "\"%s\" is also set at line%s %s; this last setting wins, delete the other%s",
		 name, total > 1 ? "s" : "", lines, total > 1 ? "s" : "");
}

static bool is_last(const struct cf_file *f, int i)
{
	return cf_last(f, f->v[i].name) == &f->v[i];
}

static bool first_of(const struct cf_file *f, int i)
{
	for (int k = 0; k < i; k++)
		if (strcmp(f->v[k].name, f->v[i].name) == 0)
			return false;
	return true;
}

static void check_main_names(struct loader *ld)
{
	for (int i = 0; i < ld->mf.n; i++) {
		const struct cf_setting *s = &ld->mf.v[i];
		bool known = param_find(s->name) || user_defined(ld, s->name);

		if (!known) {
			unknown_name(ld, ld->mf.path, s->line, s->name, "");
			continue;
		}
		if (strcmp(s->name, "config_directory") == 0)
			config_directory_set(ld, ld->mf.path, s->line, s->value);
		if (is_last(&ld->mf, i) && !first_of(&ld->mf, i))
			set_twice(ld, s->name, i);
	}
}

static void check_override_names(struct loader *ld, const struct cf_service *svc)
{
	for (int k = 0; k < svc->no; k++) {
		const struct cf_override *o = &svc->o[k];

		if (!param_find(o->name) && !user_defined(ld, o->name)) {
			unknown_name(ld, ld->ms.path, o->line, o->name, " in -o");
			continue;
		}
		if (strcmp(o->name, "config_directory") == 0)
			config_directory_set(ld, ld->ms.path, o->line, o->value);
		for (int j = 0; j < k; j++)
			if (strcmp(svc->o[j].name, o->name) == 0)
				diag_add(ld->d, ld->lint, ld->ms.path, o->line,
					 "-o %s is given twice for service \"%s\"; the last one wins, delete the other",
					 o->name, svc->l.service);
	}
}

/* ---- files -------------------------------------------------------------- */

static void unreadable(struct loader *ld, const char *path, int err,
		       const char *create_fix)
{
	const char *fix = err == ENOENT ? create_fix :
			  err == EACCES ? "make it readable by the user running sluice" :
			  "check the file";

	diag_add(ld->d, DIAG_ERROR, path, 0, "cannot read: %s; %s",
		 strerror(err), fix);
}

static bool config_dir_ok(struct loader *ld, const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		diag_add(ld->d, DIAG_ERROR, dir, 0,
			 "cannot open the configuration directory: %s; check sluice -c, or create it with main.cf and master.cf",
			 strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		diag_add(ld->d, DIAG_ERROR, dir, 0,
			 "the configuration directory is not a directory; give sluice -c the directory that holds main.cf and master.cf");
		return false;
	}
	return true;
}

static bool read_files(struct loader *ld, const char *dir)
{
	char *main_path = cf_display_path(dir, "main.cf");
	char *master_path = cf_display_path(dir, "master.cf");
	bool ok = false;
	int errors;

	if (main_path == NULL || master_path == NULL)
		goto out;
	if (cf_read_main(main_path, &ld->mf, ld->d, ld->lint) < 0 &&
	    ld->mf.unreadable)
		unreadable(ld, main_path, errno,
			   "create it (an empty main.cf means every default)");
	errors = ld->d->errors;
	if (cf_read_master(master_path, &ld->ms, ld->d) < 0 &&
	    ld->ms.unreadable)
		unreadable(ld, master_path, errno,
			   "create it with a listener, e.g. \"smtp inet n - n - - smtpd\"");
	ld->master_errors = ld->d->errors - errors;
	ok = ld->mf.path != NULL && ld->ms.path != NULL;
out:
	free(main_path);
	free(master_path);
	return ok;
}

/* ---- the whole configuration ------------------------------------------ */

/* A transport of master.cf.  Its arguments move to `t`; its name stays
 * in ld too, for transport_param() while the other sets are resolved. */
static void add_transport(struct loader *ld, struct cf_service *svc,
			  struct transport *t)
{
	t->cfg = resolve(ld, svc);
	t->name = strdup(svc->l.service);
	t->command = strdup(svc->l.command);
	t->file = strdup(svc->l.file);
	t->line = svc->l.line;
	t->maxproc = svc->l.maxproc;
	t->args = svc->args;
	svc->args = NULL;
	if (t->name == NULL || t->command == NULL || t->file == NULL)
		diag_add(ld->d, DIAG_ERROR, ld->mf.path, 0,
			 "out of memory resolving the configuration; free some memory and try again");
}

static struct sluice_config *assemble(struct loader *ld)
{
	struct sluice_config *sc = calloc(1, sizeof *sc);
	size_t n = (size_t)ld->ms.n + 1;

	if (sc == NULL ||
	    (sc->listeners = calloc(n, sizeof *sc->listeners)) == NULL ||
	    (sc->transports = calloc(n, sizeof *sc->transports)) == NULL) {
		if (sc != NULL)
			free(sc->listeners);
		free(sc);
		diag_add(ld->d, DIAG_ERROR, ld->mf.path, 0,
			 "out of memory resolving the configuration; free some memory and try again");
		return NULL;
	}
	sc->main = resolve(ld, NULL);
	sc->qmgr = ld->ms.qmgr;
	for (int i = 0; i < ld->ms.n; i++) {
		struct cf_service *svc = &ld->ms.v[i];
		struct listener *l;
		struct config *cfg;

		check_override_names(ld, svc);
		if (svc->transport) {
			add_transport(ld, svc, &sc->transports[sc->ntransports++]);
			continue;
		}
		cfg = resolve(ld, svc);
		l = &sc->listeners[sc->nlisteners++];
		*l = svc->l;            /* the strings move to sc */
		memset(&svc->l, 0, sizeof svc->l);
		l->cfg = cfg;
	}
	if (sc->nlisteners == 0 && ld->master_errors == 0)
		diag_add(ld->d, DIAG_WARNING, ld->ms.path, 0,
			 "no smtpd listener is declared, so sluice accepts no mail; add one, e.g. \"smtp inet n - n - - smtpd\"");
	sc->config_dir = ld->base;
	ld->base = NULL;
	return sc;
}

static void loader_free(struct loader *ld)
{
	cf_file_free(&ld->mf);
	cf_master_free(&ld->ms);
	for (int i = 0; i < ld->nrefs; i++)
		free(ld->refs[i]);
	free(ld->refs);
	cfg_list_free(ld->plugins_failed);
	free(ld->base);
}

struct sluice_config *config_load_flags(const char *config_dir,
					struct diag *d, int flags)
{
	struct loader ld = { .d = d, .flags = flags };
	struct sluice_config *sc = NULL;
	int errors = d->errors;

	ld.lint = (flags & CONFIG_LENIENT) ? DIAG_WARNING : DIAG_ERROR;
	if (!config_dir_ok(&ld, config_dir))
		return NULL;
	if ((ld.base = absolute_dir(config_dir)) == NULL) {
		diag_add(d, DIAG_ERROR, config_dir, 0,
			 "cannot find the absolute path: %s; run sluice from a directory that exists",
			 strerror(errno));
		return NULL;
	}
	if (read_files(&ld, config_dir) && !ld.mf.unreadable &&
	    !ld.ms.unreadable) {
		register_plugins(&ld);
		collect_refs(&ld);
		check_main_names(&ld);
		sc = assemble(&ld);
	}
	/* restriction lists name restrictions, classes and tables */
	if (sc && !(flags & CONFIG_LENIENT))
		restriction_config_check(sc, d);
	loader_free(&ld);
	if (sc && d->errors > errors && !(flags & CONFIG_BEST_EFFORT)) {
		config_free(sc);
		sc = NULL;
	}
	return sc;
}

struct sluice_config *config_load(const char *config_dir, struct diag *d)
{
	return config_load_flags(config_dir, d, 0);
}

void config_free(struct sluice_config *sc)
{
	if (sc == NULL)
		return;
	restriction_config_forget(sc);
	for (int i = 0; i < sc->nlisteners; i++) {
		struct listener *l = &sc->listeners[i];

		free(l->service);
		free(l->host);
		free(l->port);
		free(l->command);
		free(l->file);
		config_free_one(l->cfg);
	}
	free(sc->listeners);
	for (int i = 0; i < sc->ntransports; i++) {
		struct transport *t = &sc->transports[i];

		free(t->name);
		free(t->command);
		free(t->file);
		for (int k = 0; t->args && t->args[k]; k++)
			free(t->args[k]);
		free(t->args);
		config_free_one(t->cfg);
	}
	free(sc->transports);
	config_free_one(sc->main);
	free(sc->config_dir);
	free(sc);
}
