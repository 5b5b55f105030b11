/*
 * plugin_loader.c - find the plugins named in sluice_plugins, check them,
 * register their parameters (master) or load and initialise them (worker).
 *
 * A plugin is plugin_directory/NAME.so, opened with RTLD_NOW|RTLD_LOCAL
 * (an unresolved symbol is refused at load time, not when a hook first
 * runs, and plugins cannot see each other's symbols).  It must export
 * `sluice_plugin`, whose first member `abi` is read before anything else:
 * only a descriptor of this sluice's SLUICE_PLUGIN_ABI is looked at
 * further.  Its name must be the name it was listed under, since that
 * name owns its parameters and prefixes its log lines.
 *
 * Promises: every refusal says which plugin, which file and what to do;
 * parameters are registered as copies (param_register copies), so the
 * master can dlclose; in a worker, init() runs in sluice_plugins order
 * and fini() in the reverse order, each in the plugin's context (its
 * sluice_log lines carry its name).  This module owns the list of loaded
 * plugins.
 *
 * Parameter checks: a plugin may export sluice_plugin_check() (found by
 * name, so struct sluice_plugin keeps ABI 2's layout).  `sluice check`
 * runs it for every listed plugin (plugins_check()), a worker before the
 * plugin's init(); its sluice_param_error() reports become
 * "FILE:LINE: name: text" diagnostics, or error log lines of that shape
 * at start-up, and any report refuses the plugin's start.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "filter_chain.h"
#include "log.h"
#include "plugin_loader.h"
#include "plugin_names.h"
#include "restriction_int.h"

static struct loaded_plugin *loaded;
static int nloaded;

int plugin_count(void)
{
	return nloaded;
}

struct loaded_plugin *plugin_at(int i)
{
	return i >= 0 && i < nloaded ? &loaded[i] : NULL;
}

/* ---- opening and checking one plugin ---------------------------------- */

/* A plugin name is a file name without a directory: letters, digits,
 * '_' and '-'. */
static bool name_ok(const char *name)
{
	if (*name == 0)
		return false;
	for (const char *p = name; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z')
		    && !(*p >= '0' && *p <= '9') && *p != '_' && *p != '-')
			return false;
	return true;
}

static bool listed_before(char **names, int i)
{
	for (int j = 0; j < i; j++)
		if (strcmp(names[j], names[i]) == 0)
			return true;
	return false;
}

/* Check the descriptor of an opened plugin.  0, or -1 with err set. */
static int check_descriptor(const char *name, const char *path,
			    const struct sluice_plugin *p,
			    char *err, size_t errlen)
{
	if (p->abi != SLUICE_PLUGIN_ABI) {
		snprintf(err, errlen, "plugin \"%s\" (%s) was built for plugin "
			 "ABI %u, this sluice needs ABI %d; rebuild it against "
			 "this sluice's sluice_plugin.h", name, path, p->abi,
			 SLUICE_PLUGIN_ABI);
		return -1;
	}
	if (p->name == NULL || strcmp(p->name, name) != 0) {
		snprintf(err, errlen, "plugin \"%s\" (%s) calls itself \"%s\"; "
			 "a plugin's name is its file name: rename the file or "
			 "set .name = \"%s\" in its descriptor", name, path,
			 p->name ? p->name : "", name);
		return -1;
	}
	for (const struct sluice_restriction *r = p->restrictions;
	     r && r->name; r++) {
		if (*r->name == 0 || r->check == NULL || r->takes_arg < 0
		    || r->takes_arg > 2) {
			snprintf(err, errlen, "plugin \"%s\" (%s): restriction "
				 "\"%s\" needs a name, a check function and "
				 "takes_arg 0, 1 or 2", name, path, r->name);
			return -1;
		}
	}
	for (const struct sluice_param *sp = p->params; sp && sp->name; sp++) {
		if ((unsigned)sp->type > SLUICE_PARAM_MAP) {
			snprintf(err, errlen, "plugin \"%s\" (%s): parameter "
				 "\"%s\" has the unknown type %d; use one of "
				 "enum sluice_param_type", name, path, sp->name,
				 (int)sp->type);
			return -1;
		}
	}
	return 0;
}

/*
 * Open dir/NAME.so and check it.  Fills lp (path, handle, descriptor)
 * and returns 0, or returns -1 with a message in err.
 */
static int plugin_open(const char *dir, const char *name,
		       struct loaded_plugin *lp, char *err, size_t errlen)
{
	const struct sluice_plugin *p;
	const char *why;
	char *path;
	void *h;

	memset(lp, 0, sizeof *lp);
	if (!name_ok(name)) {
		snprintf(err, errlen, "sluice_plugins: \"%s\" is not a plugin "
			 "name; use the file name without directory or .so "
			 "(letters, digits, '_' and '-')", name);
		return -1;
	}
	if (asprintf(&path, "%s/%s.so", dir, name) < 0)
		msg_fatal("plugin loader: out of memory");
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		snprintf(err, errlen, "plugin \"%s\": %s.so not found in "
			 "plugin_directory (%s); build it or fix sluice_plugins",
			 name, name, dir);
		free(path);
		return -1;
	}
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		why = dlerror();
		snprintf(err, errlen, "plugin \"%s\" (%s) cannot be loaded: %s; "
			 "rebuild it against this sluice or remove it from "
			 "sluice_plugins", name, path, why ? why : "unknown error");
		free(path);
		return -1;
	}
	if ((p = dlsym(h, "sluice_plugin")) == NULL) {
		snprintf(err, errlen, "plugin \"%s\" (%s) does not export the "
			 "symbol sluice_plugin; declare its descriptor with "
			 "SLUICE_PLUGIN_DECLARE", name, path);
		dlclose(h);
		free(path);
		return -1;
	}
	if (check_descriptor(name, path, p, err, errlen) < 0) {
		dlclose(h);
		free(path);
		return -1;
	}
	lp->p = p;
	lp->handle = h;
	lp->path = path;
	return 0;
}

static void plugin_close(struct loaded_plugin *lp)
{
	if (lp->handle)
		dlclose(lp->handle);
	free(lp->path);
	memset(lp, 0, sizeof *lp);
}

/* ---- master: parameters --------------------------------------------- */

/* Register one parameter (param_register copies the strings, so the
 * plugin can be closed afterwards). */
static int register_param(const struct sluice_plugin *p,
			  const struct sluice_param *sp, char *err,
			  size_t errlen)
{
	struct param_def def = {
		.name = sp->name, .type = (enum param_type)sp->type,
		.defval = sp->default_value ? sp->default_value : "",
		.desc = sp->description ? sp->description : "",
		.owner = p->name,
	};
	const struct param_def *taken;

	if (param_register(&def) == 0)
		return 0;
	taken = param_find(sp->name);
	if (taken == NULL)
		snprintf(err, errlen, "plugin \"%s\": parameter \"%s\" cannot "
			 "be registered; name it \"%s_...\" with letters, digits "
			 "and '_'", p->name, sp->name, p->name);
	else if (taken->owner)
		snprintf(err, errlen, "plugin \"%s\": parameter \"%s\" is "
			 "already defined by plugin \"%s\"; the two plugins "
			 "cannot be used together until one renames it",
			 p->name, sp->name, taken->owner);
	else
		snprintf(err, errlen, "plugin \"%s\": parameter \"%s\" is a "
			 "sluice parameter; the plugin must name its parameters "
			 "after itself (\"%s_...\")", p->name, sp->name, p->name);
	return -1;
}

/* Make the plugin's restriction names known to the list compiler (the
 * worker registers their code when it loads the plugin). */
static int declare_restrictions(const struct sluice_plugin *p,
				struct diag *d, const char *file, int line)
{
	int ret = 0;

	for (const struct sluice_restriction *r = p->restrictions;
	     r && r->name; r++) {
		unsigned flags = r->takes_arg == 2 ? RF_ARG | RF_ARG_TABLE
			: r->takes_arg == 1 ? RF_ARG : 0;
		const char *owner;

		if (restriction_declare(r->name, flags, p->name) == 0)
			continue;
		owner = restriction_owner(r->name);
		diag_add(d, DIAG_ERROR, file, line, "plugin \"%s\": restriction "
			 "%s is already provided by %s%s; the two cannot be used "
			 "together until one renames it", p->name, r->name,
			 owner ? "plugin " : "sluice itself", owner ? owner : "");
		ret = -1;
	}
	return ret;
}

int plugins_register_params(const char *plugin_dir, char **names,
			    struct diag *d, const char *file, int line)
{
	struct loaded_plugin lp;
	char err[1024];
	int ret = 0;

	restriction_forget_declared();
	for (int i = 0; names && names[i]; i++) {
		if (listed_before(names, i)) {
			diag_add(d, DIAG_ERROR, file, line, "sluice_plugins lists "
				 "\"%s\" twice; list each plugin once", names[i]);
			ret = -1;
			continue;
		}
		if (plugin_open(plugin_dir, names[i], &lp, err, sizeof err) < 0) {
			diag_add(d, DIAG_ERROR, file, line, "%s", err);
			ret = -1;
			continue;
		}
		for (const struct sluice_param *sp = lp.p->params;
		     sp && sp->name; sp++) {
			if (register_param(lp.p, sp, err, sizeof err) < 0) {
				diag_add(d, DIAG_ERROR, file, line, "%s", err);
				ret = -1;
			}
		}
		if (declare_restrictions(lp.p, d, file, line) < 0)
			ret = -1;
		plugin_close(&lp);
	}
	return ret;
}

/* ---- parameter checks (sluice check and start-up) -------------------- */

/* While a plugin's sluice_plugin_check() runs: where its reports go (a
 * diag under `sluice check`, else the log) and how many it made. */
static struct diag *param_diag;
static const char *param_main_path;
static int param_reports;

void sluice_param_error(const char *name, const char *fmt, ...)
{
	const struct config *c = sluice_conf ? sluice_conf->main : NULL;
	const char *file = NULL;
	char text[1024];
	int line = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	param_reports++;
	if (c != NULL && name != NULL)
		file = cfg_where(c, name, &line);
	if (param_diag != NULL)
		diag_add(param_diag, DIAG_ERROR, file ? file : param_main_path,
			 line, "%s: %s%s", name ? name : "?", text,
			 file ? "" : " (the default)");
	else if (file != NULL)
		msg_error("%s:%d: %s: %s", file, line, name, text);
	else
		msg_error("%s: %s (the default)", name ? name : "?", text);
}

int sluice_param_one_of(const char *name, const char *words)
{
	const char *v = sluice_conf_str(name);
	size_t n = v ? strlen(v) : 0;

	for (const char *w = words; n && *w; ) {
		size_t len = strcspn(w, " ");

		if (len == n && strncasecmp(w, v, n) == 0)
			return 0;
		w += len;
		w += strspn(w, " ");
	}
	sluice_param_error(name, "unknown value \"%s\"; use one of: %s",
			   v ? v : "", words);
	return -1;
}

/* Run lp's sluice_plugin_check(), if it has one.  The number of reports. */
static int run_check(const struct loaded_plugin *lp)
{
	int (*check)(void);
	void *sym;
	int before = param_reports;

	if ((sym = dlsym(lp->handle, "sluice_plugin_check")) == NULL)
		return 0;
	*(void **)&check = sym;
	if (check() != 0 && param_reports == before)
		sluice_param_error(lp->p->name, "plugin \"%s\": its parameter "
				   "check failed without saying why", lp->p->name);
	return param_reports - before;
}

int plugins_check(struct diag *d, struct sluice_config *sc,
		  const char *main_path)
{
	struct sluice_config *saved = sluice_conf;
	char **names = plugin_names(sc->main), err[1024];
	struct loaded_plugin lp;
	int reports = 0;

	sluice_conf = sc;       /* what sluice_conf_str() reads */
	param_diag = d;
	param_main_path = main_path;
	for (int i = 0; names && names[i]; i++) {
		if (listed_before(names, i)
		    || plugin_open(cfg_str(sc->main, "plugin_directory"),
				   names[i], &lp, err, sizeof err) < 0)
			continue;   /* reported when the configuration loaded */
		reports += run_check(&lp);
		plugin_close(&lp);
	}
	param_diag = NULL;
	sluice_conf = saved;
	cfg_list_free(names);
	return reports ? -1 : 0;
}

/* ---- worker: load, init, fini ---------------------------------------- */

/* The plugin whose init() runs now, or -1 (plugin_in_init()). */
static int initialising = -1;

struct loaded_plugin *plugin_in_init(void)
{
	return initialising >= 0 ? &loaded[initialising] : NULL;
}

static int run_init(int i)
{
	struct loaded_plugin *lp = &loaded[i];
	struct filter_ctx previous;
	int rc = 0;

	previous = filter_ctx_enter((struct filter_ctx){ NULL, i });
	if (run_check(lp) > 0) {
		filter_ctx_leave(previous);
		msg_error("plugin \"%s\" (%s): a parameter has a bad value "
			  "(logged above); fix it (sluice check shows where) or "
			  "remove the plugin from sluice_plugins", lp->p->name,
			  lp->path);
		return -1;
	}
	initialising = i;
	if (lp->p->init != NULL)
		rc = lp->p->init(&lp->pdata);
	initialising = -1;
	filter_ctx_leave(previous);
	if (rc != 0)
		msg_error("plugin \"%s\" (%s): init() failed (its reason is "
			  "logged above); fix it or remove it from "
			  "sluice_plugins", lp->p->name, lp->path);
	return rc == 0 ? 0 : -1;
}

static void run_fini(int i)
{
	struct loaded_plugin *lp = &loaded[i];
	struct filter_ctx previous;

	if (lp->p->fini == NULL)
		return;
	previous = filter_ctx_enter((struct filter_ctx){ NULL, i });
	lp->p->fini(lp->pdata);
	filter_ctx_leave(previous);
}

/* Open every named plugin into `loaded`.  0, or -1 (logged). */
static int open_all(const char *plugin_dir, char **names, int n)
{
	char err[1024];

	if ((loaded = calloc(n ? n : 1, sizeof *loaded)) == NULL)
		msg_fatal("plugin loader: out of memory");
	for (int i = 0; i < n; i++) {
		if (listed_before(names, i)) {
			msg_error("sluice_plugins lists \"%s\" twice; list each "
				  "plugin once", names[i]);
			return -1;
		}
		if (plugin_open(plugin_dir, names[i], &loaded[i], err,
				sizeof err) < 0) {
			msg_error("%s", err);
			return -1;
		}
		nloaded = i + 1;
	}
	return 0;
}

/* Close every plugin without fini() (open or init failed). */
static void close_all(void)
{
	for (int i = 0; i < nloaded; i++)
		plugin_close(&loaded[i]);
	free(loaded);
	loaded = NULL;
	nloaded = 0;
}

int plugins_load(const char *plugin_dir, char **names)
{
	int n = 0;

	if (loaded != NULL)
		msg_panic("plugins_load: plugins are loaded already");
	while (names && names[n])
		n++;
	if (open_all(plugin_dir, names, n) < 0) {
		close_all();
		return -1;
	}
	for (int i = 0; i < nloaded; i++) {
		if (run_init(i) < 0) {
			/* fini() only for the plugins whose init() succeeded */
			while (--i >= 0)
				run_fini(i);
			close_all();
			return -1;
		}
	}
	for (int i = 0; i < nloaded; i++)
		plugin_restrictions_register(i);
	return 0;
}

void plugins_unload(void)
{
	for (int i = nloaded - 1; i >= 0; i--)
		run_fini(i);
	close_all();
}
