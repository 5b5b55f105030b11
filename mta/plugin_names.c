/*
 * plugin_names.c - the plugins a configuration loads (plugin_names.h),
 * and the parameter that adds the bundled ones, sluice_builtin_plugins.
 *
 * Promises: the list is sluice_builtin_plugins' names whose NAME.so is
 * in plugin_directory and that sluice_plugins does not name, in order,
 * then sluice_plugins as written (its own mistakes - a name listed
 * twice, a missing file - are left for the loader to report); the master,
 * `sluice check` and the workers all ask here, so they agree.  No state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "plugin_names.h"

const struct param_def params_plugins[] = {
	{ "sluice_builtin_plugins", PT_LIST, "access regex rbl greylist",
	  "Bundled plugins loaded before those of sluice_plugins when plugin_directory has them (\"access\" provides the check_*_access restrictions, \"regex\" header_checks and body_checks, \"rbl\" reject_rbl_client and the other DNSBL/RHSBL/DNSWL restrictions, \"greylist\" check_greylist); empty: none.", NULL },
	{ NULL, PT_STRING, NULL, NULL, NULL }
};

static bool listed(char **list, const char *name)
{
	for (int i = 0; list && list[i]; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

/* Is dir/NAME.so there?  Names with a '/' never are (the loader refuses
 * them with a better message when sluice_plugins has them). */
static bool present(const char *dir, const char *name)
{
	char path[4096];

	if (strchr(name, '/') != NULL
	    || snprintf(path, sizeof path, "%s/%s.so", dir, name)
	       >= (int)sizeof path)
		return false;
	return access(path, F_OK) == 0;
}

char **plugin_names(const struct config *c)
{
	char **builtin = cfg_list(c, "sluice_builtin_plugins");
	char **named = cfg_list(c, "sluice_plugins");
	const char *dir = cfg_str(c, "plugin_directory");
	size_t n = 0, k = 0;
	char **out;

	while (builtin[n])
		n++;
	for (char **p = named; *p; p++)
		n++;
	if ((out = calloc(n + 1, sizeof *out)) == NULL)
		msg_fatal("out of memory");
	for (char **p = builtin; *p; p++)
		if (!listed(named, *p) && !listed(out, *p) && present(dir, *p))
			if ((out[k++] = strdup(*p)) == NULL)
				msg_fatal("out of memory");
	for (char **p = named; *p; p++)
		if ((out[k++] = strdup(*p)) == NULL)
			msg_fatal("out of memory");
	cfg_list_free(builtin);
	cfg_list_free(named);
	return out;
}
