/*
 * plugin_bad.c - plugins the loader must refuse (or whose init fails),
 * for t/unit/plugin_loader.c.  One source, one defect per build:
 *   -DBAD_ABI      built for plugin ABI 1 (older than this sluice)
 *   -DNO_SYMBOL    exports no `sluice_plugin`
 *   -DWRONG_NAME   calls itself "other"
 *   -DCORE_PARAM   declares a parameter of the core (myhostname)
 *   -DFAIL_INIT    init() fails with a message
 * The test builds it as NAME.so with `cc -shared -fPIC -Iplugins`.
 */
#include "sluice_plugin.h"

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "bad"
#endif

static const struct sluice_param bad_params[] = {
#ifdef CORE_PARAM
	{ "myhostname", SLUICE_PARAM_STRING, "", "clashes with the core" },
#endif
	{ PLUGIN_NAME "_level", SLUICE_PARAM_INT, "3", "a harmless parameter" },
	{ NULL, 0, NULL, NULL }
};

static int bad_init(void **pdata)
{
	(void)pdata;
#ifdef FAIL_INIT
	sluice_log(SLUICE_LOG_ERR, "cannot open /nonexistent/bad.db: "
		   "No such file or directory");
	return -1;
#else
	return 0;
#endif
}

#ifndef NO_SYMBOL
SLUICE_PLUGIN_DECLARE = {
#ifdef BAD_ABI
	.abi = 1,
#else
	.abi = SLUICE_PLUGIN_ABI,
#endif
#ifdef WRONG_NAME
	.name = "other",
#else
	.name = PLUGIN_NAME,
#endif
	.version = "0",
	.params = bad_params,
	.init = bad_init,
};
#else
const struct sluice_plugin not_the_descriptor = {
	.abi = SLUICE_PLUGIN_ABI, .name = PLUGIN_NAME, .params = bad_params,
	.init = bad_init,
};
#endif
