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
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "filter_chain.h"
#include "log.h"
#include "plugin_loader.h"
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

/* ---- worker: load, init, fini ---------------------------------------- */

static int run_init(int i)
{
	struct loaded_plugin *lp = &loaded[i];
	struct filter_ctx previous;
	int rc = 0;

	if (lp->p->init == NULL)
		return 0;
	previous = filter_ctx_enter((struct filter_ctx){ NULL, i });
	rc = lp->p->init(&lp->pdata);
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
