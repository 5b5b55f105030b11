/*
 * plugin_loader.c - unit test of the plugin loader (TAP on stdout).
 *
 * Builds plugins from source into a temporary plugin_directory with $CC
 * (default cc) and the build command of docs/plugin-guide.md: the example
 * plugin, and defective ones from t/data/plugin_bad.c.  Checks that the
 * example loads and registers its parameters, and that a plugin of
 * another ABI, one without a descriptor, a misnamed one, one claiming a
 * core parameter, a missing one and a duplicate are refused with their
 * exact messages.  Run from the top of the source tree (as `make test`
 * does), or set SLUICE_SRCDIR.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "log.h"
#include "plugin_loader.h"
#include "tap.h"

static const char *srcdir = ".";
static char dir[] = "/tmp/sluice-plugin-loader-XXXXXX";
static char logpath[300];

/* Build a plugin: srcdir/src -> dir/NAME.so, with extra cc flags. */
static bool build(const char *name, const char *src, const char *flags)
{
	const char *cc = getenv("CC") ? getenv("CC") : "cc";
	char cmd[2048];

	snprintf(cmd, sizeof cmd, "%s -shared -fPIC -I%s/plugins "
		 "-DPLUGIN_NAME='\"%s\"' %s -o %s/%s.so %s/%s", cc, srcdir,
		 name, flags, dir, name, srcdir, src);
	return system(cmd) == 0;
}

/* The one diagnostic of a refused registration. */
static char *register_one(const char *name, int *rc)
{
	static char text[2048];
	char *names[] = { (char *)name, NULL };
	struct diag d;

	diag_init(&d);
	*rc = plugins_register_params(dir, names, &d, "main.cf", 7);
	snprintf(text, sizeof text, "%s", d.n > 0 ? d.v[0].text : "");
	diag_free(&d);
	return text;
}

static char *expect(const char *fmt, const char *a, const char *b)
{
	static char text[2048];

	snprintf(text, sizeof text, fmt, a, b);
	return text;
}

static bool log_has(const char *needle)
{
	char line[4096];
	bool found = false;
	FILE *fp = fopen(logpath, "r");

	while (fp && !found && fgets(line, sizeof line, fp))
		found = strstr(line, needle) != NULL;
	if (fp)
		fclose(fp);
	return found;
}

static void test_example_params(void)
{
	const struct param_def *p;
	char *text;
	int rc;

	text = register_one("example", &rc);
	ok(rc == 0 && *text == 0, "example.so registers its parameters");
	p = param_find("example_header_name");
	ok(p && p->type == PT_STRING && p->owner
	   && strcmp(p->owner, "example") == 0,
	   "example_header_name is a string owned by example");
	is_str(p ? p->defval : NULL, "X-Sluice-Example",
	       "example_header_name default");
	p = param_find("example_delay_ms");
	ok(p && p->type == PT_INT, "example_delay_ms is an integer");
	is_str(p ? p->defval : NULL, "50", "example_delay_ms default");
	p = param_find("example_reject_recipient");
	is_str(p ? p->defval : NULL, "", "example_reject_recipient default");
	text = register_one("example", &rc);
	ok(rc == 0, "registering again (reload) is fine");
}

static void test_refusals(void)
{
	char path[512];
	char *text;
	int rc;

	text = register_one("nosuch", &rc);
	ok(rc < 0, "a missing plugin is refused");
	is_str(text, expect("main.cf:7: plugin \"nosuch\": nosuch.so not found in "
			    "plugin_directory (%s); build it or fix "
			    "sluice_plugins", dir, NULL), "... saying so");

	snprintf(path, sizeof path, "%s/abi1.so", dir);
	text = register_one("abi1", &rc);
	ok(rc < 0, "a plugin built for the older ABI 1 is refused");
	is_str(text, expect("main.cf:7: plugin \"abi1\" (%s) was built for plugin "
			    "ABI 1, this sluice needs ABI 2; rebuild it against "
			    "this sluice's sluice_plugin.h", path, NULL),
	       "... saying which ABI it has and which is needed");

	text = register_one("nosym", &rc);
	ok(rc < 0 && strstr(text, "does not export the symbol sluice_plugin; "
			    "declare its descriptor with SLUICE_PLUGIN_DECLARE"),
	   "a plugin without a descriptor is refused: %s", text);

	text = register_one("misnamed", &rc);
	ok(rc < 0 && strstr(text, "calls itself \"other\""),
	   "a plugin whose name differs from its file is refused: %s", text);

	text = register_one("coreparam", &rc);
	ok(rc < 0 && strstr(text, "parameter \"myhostname\" is a sluice "
			    "parameter"),
	   "a plugin redefining a core parameter is refused: %s", text);

	text = register_one("../example", &rc);
	ok(rc < 0 && strstr(text, "is not a plugin name"),
	   "a name with a directory is refused: %s", text);
}

static void test_duplicate(void)
{
	char *names[] = { "example", "example", NULL };
	struct diag d;
	int rc;

	diag_init(&d);
	rc = plugins_register_params(dir, names, &d, "main.cf", 7);
	ok(rc < 0 && d.n == 1, "a plugin listed twice is refused once");
	is_str(d.n ? d.v[0].text : NULL, "main.cf:7: sluice_plugins lists "
	       "\"example\" twice; list each plugin once", "... saying so");
	diag_free(&d);
}

static void test_load(void)
{
	char *names[] = { "example", "okplug", NULL };
	char *failing[] = { "okplug", "failinit", NULL };
	char *wrong[] = { "abi1", NULL };

	ok(plugins_load(dir, names) == 0, "example and okplug load");
	ok(plugin_count() == 2, "two plugins are loaded");
	is_str(plugin_at(0) ? plugin_at(0)->p->name : NULL, "example",
	       "in sluice_plugins order: example first");
	is_str(plugin_at(1) ? plugin_at(1)->p->name : NULL, "okplug",
	       "okplug second");
	ok(plugin_at(2) == NULL, "no third plugin");
	plugins_unload();
	ok(plugin_count() == 0, "unload forgets them");

	ok(plugins_load(dir, failing) < 0, "a failing init() fails the load");
	ok(plugin_count() == 0, "... and leaves nothing loaded");
	ok(log_has("error: failinit: cannot open /nonexistent/bad.db"),
	   "the plugin's own message is logged with its name");
	ok(log_has("plugin \"failinit\" (") && log_has("init() failed"),
	   "the loader says which plugin failed");

	ok(plugins_load(dir, wrong) < 0, "a wrong-ABI plugin fails the load");
	ok(log_has("was built for plugin ABI 1, this sluice needs ABI 2"),
	   "... with the ABI message in the log");
	ok(plugins_load(dir, names) == 0 && plugin_count() == 2,
	   "loading works again after failures");
	plugins_unload();
}

int main(void)
{
	char cmd[600];

	if (getenv("SLUICE_SRCDIR"))
		srcdir = getenv("SLUICE_SRCDIR");
	snprintf(cmd, sizeof cmd, "%s/plugins/sluice_plugin.h", srcdir);
	if (access(cmd, R_OK) != 0) {
		printf("1..0 # SKIP run from the source tree or set SLUICE_SRCDIR\n");
		return 0;
	}
	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp: cannot create %s\n", dir);
		return 1;
	}
	snprintf(logpath, sizeof logpath, "%s/log", dir);
	log_open("test", LOG_DEST_FILE, logpath);

	ok(build("example", "plugins/example/example.c", "-Wall -Wextra -Werror"),
	   "the example plugin builds with the guide's command");
	ok(build("okplug", "t/data/plugin_bad.c", ""), "okplug builds");
	ok(build("abi1", "t/data/plugin_bad.c", "-DBAD_ABI"), "abi1 builds");
	ok(build("nosym", "t/data/plugin_bad.c", "-DNO_SYMBOL"), "nosym builds");
	ok(build("misnamed", "t/data/plugin_bad.c", "-DWRONG_NAME"),
	   "misnamed builds");
	ok(build("coreparam", "t/data/plugin_bad.c", "-DCORE_PARAM"),
	   "coreparam builds");
	ok(build("failinit", "t/data/plugin_bad.c", "-DFAIL_INIT"),
	   "failinit builds");

	test_example_params();
	test_refusals();
	test_duplicate();
	test_load();

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (tap_failures == 0 && system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
