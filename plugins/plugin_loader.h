/*
 * plugin_loader.h - find, load and check plugins (dlopen).
 *
 * Plugins are named in main.cf (`sluice_plugins = example other`) and
 * loaded from plugin_directory as NAME.so.  A plugin built against another
 * SLUICE_PLUGIN_ABI is refused with a message saying which version it has
 * and which this sluice needs.
 *
 * The master only registers plugins' parameters (then unloads them, so a
 * rebuilt .so is picked up by the next generation of workers on reload);
 * each worker loads the plugins again and runs their init().
 */
#ifndef SLUICE_PLUGIN_LOADER_H
#define SLUICE_PLUGIN_LOADER_H

#include <stdbool.h>

#include "sluice_plugin.h"

struct diag;

struct loaded_plugin {
	const struct sluice_plugin *p;
	void *handle;       /* dlopen handle */
	void *pdata;        /* what init() stored */
	char *path;
	bool no_content;    /* init() called sluice_no_content() */
};

/* dlopen each named plugin, check its ABI, register its parameters with
 * param_register() (copied, so dlclose is safe), then dlclose.  Errors go
 * to d with `file:line` of the sluice_plugins setting when known. */
int plugins_register_params(const char *plugin_dir, char **names,
			    struct diag *d, const char *file, int line);
/* `sluice check`: run every listed plugin's sluice_plugin_check() with
 * sc as the configuration; its reports go to d as "FILE:LINE: name:
 * text" (main_path for a defaulted parameter).  0, or -1 if any. */
struct sluice_config;
int plugins_check(struct diag *d, struct sluice_config *sc,
		  const char *main_path);
/* Load and init() every named plugin in this process (each plugin's
 * sluice_plugin_check() first, if it has one). 0 or -1 (logged). */
int plugins_load(const char *plugin_dir, char **names);
void plugins_unload(void);
int plugin_count(void);
struct loaded_plugin *plugin_at(int i);
/* The plugin whose init() is running, or NULL (sluice_no_content()). */
struct loaded_plugin *plugin_in_init(void);

#endif
