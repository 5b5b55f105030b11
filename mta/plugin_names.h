/*
 * plugin_names.h - which plugins a configuration loads: the bundled ones
 * of sluice_builtin_plugins, then those named in sluice_plugins.
 *
 * Postfix has check_client_access and friends built in, so an admin's
 * main.cf uses them without naming any plugin.  In sluice they live in
 * the bundled `access` plugin; sluice_builtin_plugins (default "access")
 * loads it unasked.  A bundled plugin that is not in plugin_directory is
 * skipped without a word (its restriction names are then unknown, and a
 * list using them says so with the plugin to add); one that sluice_plugins
 * names as well is loaded once, at sluice_plugins' place.
 */
#ifndef SLUICE_PLUGIN_NAMES_H
#define SLUICE_PLUGIN_NAMES_H

struct config;

/* The plugin names to load, in load (and hook) order: a NULL-terminated
 * list to free with cfg_list_free().  Never NULL. */
char **plugin_names(const struct config *c);

#endif
