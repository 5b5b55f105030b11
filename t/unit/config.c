/*
 * t/unit/config.c - unit tests of the configuration subsystem (TAP).
 *
 * Covers the value parsers, the registry, main.cf syntax, $name
 * expansion, master.cf listeners with per-listener -o overrides, path
 * resolution and the diagnostics of broken files.  Each case writes its
 * files into a fresh temporary directory.
 *
 * Built by the Makefile against every core object.  msg_panic,
 * msg_fatal and plugins_register_params are also defined here, weak, so
 * the test links with the configuration objects alone as well.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "plugin_loader.h"
#include "tap.h"
#include "config_fixture.h"

__attribute__((weak)) void msg_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	abort();
}

__attribute__((weak)) void msg_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	exit(1);
}

/* ---- fixtures ------------------------------------------------------------ */

static const char *default_master = "smtp inet - - - - - smtpd\n";

/* Load main.cf text (and master.cf text) from the temporary directory. */
static struct sluice_config *load(const char *main_cf, const char *master_cf,
				  struct diag *d, int flags)
{
	write_file("main.cf", main_cf);
	write_file("master.cf", master_cf ? master_cf : default_master);
	diag_init(d);
	return config_load_flags(tmp, d, flags);
}

static bool has_diag(const struct diag *d, const char *text)
{
	for (int i = 0; i < d->n; i++)
		if (strstr(d->v[i].text, text))
			return true;
	return false;
}

/* A config that must load; the test stops if it does not. */
static struct sluice_config *load_ok(const char *main_cf, const char *master_cf)
{
	struct diag d;
	struct sluice_config *sc = load(main_cf, master_cf, &d, 0);

	ok(sc != NULL && d.n == 0, "config loads cleanly");
	if (sc == NULL || d.n) {
		show_diags(&d);
		if (sc == NULL)
			exit(1);
	}
	diag_free(&d);
	return sc;
}

static void expect_diag(const char *main_cf, const char *master_cf,
			const char *text, bool loads)
{
	struct diag d;
	struct sluice_config *sc = load(main_cf, master_cf, &d, 0);
	bool found = has_diag(&d, text);

	ok(found && (sc != NULL) == loads, "diagnostic: %s", text);
	if (!found || (sc != NULL) != loads)
		show_diags(&d);
	config_free(sc);
	diag_free(&d);
}

/* ---- cases ---------------------------------------------------------------- */

static void test_parsers(void)
{
	long long v;
	bool b;

	ok(parse_time("300s", 's', &v) == 0 && v == 300, "time 300s");
	ok(parse_time("5m", 's', &v) == 0 && v == 300, "time 5m");
	ok(parse_time("2h", 's', &v) == 0 && v == 7200, "time 2h");
	ok(parse_time("1d", 's', &v) == 0 && v == 86400, "time 1d");
	ok(parse_time("1w", 's', &v) == 0 && v == 604800, "time 1w");
	ok(parse_time("10", 's', &v) == 0 && v == 10, "time without unit: default s");
	ok(parse_time("10", 'm', &v) == 0 && v == 600, "time without unit: default m");
	ok(parse_time("", 's', &v) < 0, "time: empty is bad");
	ok(parse_time("s", 's', &v) < 0, "time: unit alone is bad");
	ok(parse_time("5x", 's', &v) < 0, "time: unknown unit is bad");
	ok(parse_time("5mm", 's', &v) < 0, "time: two units are bad");
	ok(parse_time("-1", 's', &v) < 0, "time: negative is bad");
	ok(parse_time("99999999999999999w", 's', &v) < 0, "time: overflow is bad");
	ok(parse_size("10240000", &v) == 0 && v == 10240000, "size in bytes");
	ok(parse_size("10k", &v) == 0 && v == 10240, "size 10k");
	ok(parse_size("2M", &v) == 0 && v == 2097152, "size 2M");
	ok(parse_size("1.5m", &v) < 0, "size: fraction is bad");
	ok(parse_size("", &v) < 0, "size: empty is bad");
	ok(parse_bool("yes", &b) == 0 && b, "bool yes");
	ok(parse_bool("NO", &b) == 0 && !b, "bool NO");
	ok(parse_bool("maybe", &b) < 0, "bool: maybe is bad");
	ok(param_value_ok(PT_MAP, "hash:/etc/x, inline:{ a=b, c=d }") == 0,
	   "map list with inline table");
	ok(param_value_ok(PT_MAP, "/etc/x") < 0, "map without type is bad");
	ok(param_value_ok(PT_INT, "12a") < 0, "int 12a is bad");
}

static void test_split(void)
{
	char **v = config_split_list(" a, b c,,inline:{ x=1, y=2 } ,d ");

	ok(v && v[0] && v[1] && v[2] && v[3] && v[4] && !v[5], "list splits into 5");
	if (v && v[0] && v[1] && v[2] && v[3] && v[4]) {
		is_str(v[0], "a", "first item");
		is_str(v[3], "inline:{ x=1, y=2 }", "braces keep an item whole");
		is_str(v[4], "d", "last item");
	}
	cfg_list_free(v);
}

static void test_registry(void)
{
	struct param_def mine = { "unitplug_level", PT_INT, "3", "a test", "unitplug" };
	struct param_def other = { "unitplug_level", PT_INT, "4", "a test", "otherplug" };
	struct param_def core = { "mynetworks", PT_LIST, "", "dup", "unitplug" };
	bool sorted = true;

	ok(param_count() >= 40, "the registry holds the core parameters");
	for (int i = 1; i < param_count(); i++)
		if (strcmp(param_at(i - 1)->name, param_at(i)->name) >= 0)
			sorted = false;
	ok(sorted, "param_at() is sorted by name");
	ok(param_find("smtpd_timeout") && param_find("smtpd_timeout")->type == PT_TIME,
	   "smtpd_timeout is a time");
	ok(param_find("Mynetworks") == NULL, "param_find is exact");
	is_str(param_find_nocase("Mynetworks")->name, "mynetworks", "param_find_nocase");
	is_str(param_suggest("Mynetworks"), "mynetworks", "suggest: case");
	is_str(param_suggest("smtpd_recipent_limit"), "smtpd_recipient_limit",
	       "suggest: a missing letter");
	is_str(param_suggest("mynetwork"), "mynetworks", "suggest: a short name");
	ok(param_suggest("completely_different") == NULL, "suggest: nothing close");
	ok(param_register(&mine) == 0, "a plugin registers a parameter");
	ok(param_find("unitplug_level") != NULL, "and it is found");
	ok(param_register(&mine) == 0, "the same plugin may register it again");
	ok(param_register(&other) < 0, "another plugin may not");
	ok(param_register(&core) < 0, "a core name may not be taken");
	ok(param_is_path("queue_directory") && !param_is_path("mynetworks"),
	   "path parameters");
	ok(strcmp(param_default_doc(param_find("myhostname")),
		  param_find("myhostname")->defval) != 0,
	   "myhostname's default is documented as a phrase");
}

static void test_defaults(void)
{
	struct sluice_config *sc = load_ok("", NULL);
	const struct config *c = sc->main;
	char want[512];
	char **l;

	snprintf(want, sizeof want, "%s ESMTP sluice", cfg_str(c, "myhostname"));
	is_str(cfg_str(c, "smtpd_banner"), want, "smtpd_banner default expands");
	is_str(cfg_str(c, "myorigin"), cfg_str(c, "myhostname"), "myorigin = $myhostname");
	is_int(cfg_size(c, "message_size_limit"), 10240000, "message_size_limit");
	is_int(cfg_time(c, "smtpd_timeout"), 300, "smtpd_timeout 300s");
	is_int(cfg_int(c, "smtpd_recipient_limit"), 1000, "smtpd_recipient_limit");
	ok(cfg_bool(c, "disable_vrfy_command"), "VRFY is off by default");
	ok(cfg_bool(c, "smtpd_forbid_bare_newline"), "bare newlines refused by default");
	ok(!cfg_bool(c, "strict_rfc821_envelopes"), "strict_rfc821_envelopes off");
	l = cfg_list(c, "mynetworks");
	ok(l[0] && l[1] && !l[2], "mynetworks has two networks");
	cfg_list_free(l);
	l = cfg_list(c, "smtpd_forbid_bare_newline_exclusions");
	is_str(l[0], "127.0.0.0/8", "bare newline exclusions = $mynetworks");
	cfg_list_free(l);
	l = cfg_list(c, "sluice_plugins");
	ok(l[0] == NULL, "no plugins by default");
	cfg_list_free(l);
	is_str(cfg_str(c, "config_directory"), tmp, "config_directory is the directory read");
	ok(!cfg_is_set(c, "smtpd_timeout"), "defaults are not 'set'");
	is_int(sc->nlisteners, 1, "one listener");
	is_str(sc->listeners[0].port, "25", "smtp is port 25");
	ok(sc->listeners[0].host == NULL, "on all addresses");
	is_int(sc->listeners[0].fd, -1, "fd is -1 until the master binds");
	config_free(sc);
}

static void test_syntax(void)
{
	struct sluice_config *sc = load_ok(
		"# a comment\n"
		"\n"
		"mynetworks = 10.0.0.0/8,\n"
		"    # a comment inside a setting\n"
		"\t192.168.0.0/16   \n"
		"  172.16.0.0/12\n"
		"smtpd_banner = $myhostname # not a comment\n"
		"myhostname=mx.example.com\n"
		"mail_name = Sluice\r\n", NULL);
	const struct config *c = sc->main;
	int line;

	is_str(cfg_str(c, "mynetworks"), "10.0.0.0/8, 192.168.0.0/16 172.16.0.0/12",
	       "continuation lines join with a space; comments skipped");
	is_str(cfg_str(c, "smtpd_banner"), "mx.example.com # not a comment",
	       "# inside a value is text");
	is_str(cfg_str(c, "mail_name"), "Sluice", "a CRLF line loses its CR");
	ok(cfg_is_set(c, "mynetworks"), "mynetworks is set");
	ok(cfg_where(c, "myhostname", &line) != NULL && line == 8,
	   "cfg_where gives the line");
	is_str(cfg_str(c, "mydomain"), "example.com", "mydomain follows myhostname");
	config_free(sc);
}

static void test_expansion(void)
{
	struct sluice_config *sc = load_ok(
		"mail_name = M\n"
		"smtpd_reject_footer = [${mail_name}] [$(mail_name)] [$$] [$mail_name.x]\n"
		"smtpd_banner = ${mail_name?yes}${maillog_file?no}${maillog_file:empty}${mail_name:not}\n"
		"syslog_name = ${mail_name?{$myorigin}}\n"
		"mail_owner = ${maillog_file?{yes}:{no}}${mail_name?{yes}:{no}}${mail_name:{empty}}\n"
		"syslog_facility = $(mail_name?{a}) ${mail_name?x:y}\n"
		"myorigin = o.example\n"
		"my_custom = custom $mail_name\n"
		"smtpd_peername_lookup = yes\n"
		"inet_interfaces = $my_custom\n", NULL);
	const struct config *c = sc->main;

	is_str(cfg_str(c, "smtpd_reject_footer"), "[M] [M] [$] [M.x]",
	       "$name, ${name}, $(name), $$");
	is_str(cfg_str(c, "smtpd_banner"), "yesempty", "${name?text} and ${name:text}");
	is_str(cfg_str(c, "syslog_name"), "o.example", "${name?{text}}, text expanded");
	is_str(cfg_str(c, "mail_owner"), "noyes", "${name?{a}:{b}}");
	is_str(cfg_str(c, "syslog_facility"), "a x:y", "$(name?{a}) and a plain colon");
	is_str(cfg_str(c, "inet_interfaces"), "custom M",
	       "a user-defined parameter that is referred to");
	is_str(cfg_lookup(c, "my_custom"), "custom M", "cfg_lookup finds it");
	ok(cfg_lookup(c, "no_such_thing") == NULL, "cfg_lookup: NULL when unknown");
	config_free(sc);
}

static void test_paths(void)
{
	struct sluice_config *sc = load_ok(
		"queue_directory = ../var/./spool/\n"
		"maillog_file = log/sluice.log\n"
		"plugin_directory = /abs/plugins\n", NULL);
	char want[512];
	char *parent = strdup(tmp);

	*strrchr(parent, '/') = 0;
	snprintf(want, sizeof want, "%s/var/spool", parent);
	is_str(cfg_str(sc->main, "queue_directory"), want,
	       "a relative queue_directory is under the config directory");
	snprintf(want, sizeof want, "%s/log/sluice.log", tmp);
	is_str(cfg_str(sc->main, "maillog_file"), want, "so is maillog_file");
	is_str(cfg_str(sc->main, "plugin_directory"), "/abs/plugins",
	       "an absolute path stays");
	free(parent);
	config_free(sc);
}

static void test_listeners(void)
{
	struct sluice_config *sc = load_ok(
		"mynetworks = 10.0.0.0/8\n"
		"mua_restrictions = permit\n",
		"# listeners\n"
		"smtp      inet  -  -  -  -  -  smtpd\n"
		"127.0.0.1:2525 inet - - - - 10 smtpd -o smtpd_timeout=60s\n"
		"  -o mynetworks=192.0.2.0/24\n"
		"  -o { smtpd_banner = test listener $mua_restrictions }\n"
		"[::1]:2526 inet - - - - - smtpd -osmtpd_timeout=1m\n"
		"submission inet - - - - - smtpd\n"
		"pickup    unix  -  -  -  60 1 pickup\n"
		"relay     unix  -  -  -  -  - smtp -o syslog_name=x\n");
	struct listener *l = sc->listeners;

	is_int(sc->nlisteners, 4, "four smtpd listeners, other services ignored");
	is_int(cfg_time(l[0].cfg, "smtpd_timeout"), 300, "listener 1: main.cf value");
	is_int(cfg_time(l[1].cfg, "smtpd_timeout"), 60, "listener 2: -o value");
	is_int(cfg_time(l[2].cfg, "smtpd_timeout"), 60, "listener 3: -oname=value");
	is_str(l[1].host, "127.0.0.1", "host of host:port");
	is_str(l[1].port, "2525", "port of host:port");
	is_int(l[1].maxproc, 10, "maxproc column");
	is_int(l[1].line, 3, "declared at line 3");
	is_str(l[1].service, "127.0.0.1:2525", "service column kept");
	is_str(l[1].command, "smtpd", "command");
	is_str(cfg_str(l[1].cfg, "smtpd_banner"), "test listener permit",
	       "-o { name = value with spaces }, expanded");
	is_str(cfg_str(l[1].cfg, "smtpd_forbid_bare_newline_exclusions"), "192.0.2.0/24",
	       "-o mynetworks changes $mynetworks in that listener");
	is_str(cfg_str(l[0].cfg, "smtpd_forbid_bare_newline_exclusions"), "10.0.0.0/8",
	       "but not in another");
	is_str(cfg_str(sc->main, "mynetworks"), "10.0.0.0/8", "nor in main");
	ok(cfg_is_set(l[1].cfg, "smtpd_timeout"), "an -o value is set");
	is_str(l[2].host, "::1", "[ipv6]:port host");
	is_str(l[2].port, "2526", "[ipv6]:port port");
	is_str(l[3].port, "587", "submission is 587");
	config_free(sc);
}

static void test_errors(void)
{
	expect_diag("Mynetworks = 10.0.0.0/8\n", NULL,
		    "main.cf:1: unknown parameter \"Mynetworks\"; did you mean \"mynetworks\"?",
		    false);
	expect_diag("smtpd_timeout = 5x\n", NULL,
		    "main.cf:1: bad value \"5x\" for \"smtpd_timeout\"; expected a time", false);
	expect_diag("a = $b\nb = $c\nc = $a\nsmtpd_banner = $a\n", NULL,
		    "main.cf:1: parameter \"a\" refers to itself through \"b\" and \"c\"",
		    false);
	expect_diag("myhostname = $myorigin\n", NULL,
		    "main.cf:1: parameter \"myhostname\" refers to itself through \"myorigin\"",
		    false);
	expect_diag("smtpd_banner = $nosuch\n", NULL,
		    "main.cf:1: undefined parameter \"$nosuch\" in the value of \"smtpd_banner\"",
		    false);
	expect_diag("mynetworks = a\nmynetworks = b\n", NULL,
		    "main.cf:2: \"mynetworks\" is also set at line 1; this last setting wins",
		    false);
	expect_diag("myhostname = x\n  mynetworks = y\n", NULL,
		    "main.cf:2: this line starts with whitespace, so it continues \"myhostname\" from line 1 instead of setting \"mynetworks\"",
		    false);
	expect_diag("  mynetworks = y\n", NULL,
		    "main.cf:1: line starts with whitespace but there is no setting before it",
		    false);
	expect_diag("mynetworks\n", NULL,
		    "main.cf:1: missing \"=\" after \"mynetworks\"", false);
	expect_diag("mail_name = cost $-5\n", NULL,
		    "main.cf:1: the value of \"mail_name\" has a \"$\" that is not followed by a parameter name; write \"$$\"",
		    false);
	expect_diag("mail_name = ${mail_owner\n", NULL,
		    "without its closing \"}\"", false);
	expect_diag("", "smtp inet - - - - - smtpd -o smtpd_timout=5\n",
		    "master.cf:1: unknown parameter \"smtpd_timout\" in -o; did you mean \"smtpd_timeout\"?",
		    false);
	expect_diag("", "smtp inet - - - - - smtpd -o smtpd_timeout=x\n",
		    "master.cf:1: bad value \"x\" for \"smtpd_timeout\"", false);
	expect_diag("", "smtp inet n - y - - smtpd\n",
		    "master.cf:1: the private (n) and chroot (y) columns have no meaning in sluice and are ignored",
		    true);
	expect_diag("", "smtp inet - - - - - smtpd\n25 inet - - - - - smtpd\n",
		    "master.cf:2: service \"25\" listens on the same address and port as \"smtp\" at line 1",
		    false);
	expect_diag("", "nosuchservice inet - - - - - smtpd\n",
		    "master.cf:1: service \"nosuchservice\" has an unknown port", false);
	expect_diag("", "smtp inet - - - - smtpd\n",
		    "master.cf:1: the line has 7 fields but a service needs 8", false);
	expect_diag("biff = no\n", NULL,
		    "main.cf:1: \"biff\" is a Postfix parameter with no meaning in sluice", true);
}

static void test_lenient(void)
{
	struct diag d;
	struct sluice_config *sc = load("Mynetworks = 1\nmynetworks = a\nmynetworks = b\n",
					NULL, &d, CONFIG_LENIENT);

	ok(sc != NULL && d.errors == 0 && d.n == 2,
	   "CONFIG_LENIENT: unknown names and duplicates are warnings");
	if (sc)
		is_str(cfg_str(sc->main, "mynetworks"), "b", "the last setting wins");
	config_free(sc);
	diag_free(&d);
}

static void test_limits(void)
{
	size_t n = 70000;
	char *big = malloc(n + 32);
	char *chain = malloc(150 * 64 + 4096);
	size_t len = 0;

	memcpy(big, "mail_name = ", 12);
	memset(big + 12, 'x', n);
	strcpy(big + 12 + n, "\n");
	expect_diag(big, NULL, "main.cf:1: line is longer than 65536 bytes", false);
	/* 150 user parameters, each referring to the next */
	len += (size_t)sprintf(chain + len, "mail_name = $p0\n");
	for (int i = 0; i < 149; i++)
		len += (size_t)sprintf(chain + len, "p%d = $p%d\n", i, i + 1);
	sprintf(chain + len, "p149 = end\n");
	expect_diag(chain, NULL, "chain of more than 100 $name references", false);
	/* conditionals nested 150 deep */
	len = (size_t)sprintf(chain, "mail_name = ");
	for (int i = 0; i < 150; i++)
		len += (size_t)sprintf(chain + len, "${mail_owner?");
	for (int i = 0; i < 150; i++)
		chain[len++] = '}';
	strcpy(chain + len, "\n");
	expect_diag(chain, NULL, "nests ${name?...} deeper than 100 levels", false);
	free(big);
	free(chain);
}

static void test_unreadable(void)
{
	struct diag d;
	char path[512];
	struct sluice_config *sc;

	write_file("main.cf", "");
	snprintf(path, sizeof path, "%s/master.cf", tmp);
	unlink(path);
	diag_init(&d);
	sc = config_load(tmp, &d);
	ok(sc == NULL && has_diag(&d, "master.cf: cannot read: No such file or directory; create it"),
	   "a missing master.cf is an error");
	config_free(sc);
	diag_free(&d);
	diag_init(&d);
	snprintf(path, sizeof path, "%s/nonexistent", tmp);
	ok(config_load(path, &d) == NULL &&
	   has_diag(&d, "cannot open the configuration directory"),
	   "a missing configuration directory is an error");
	diag_free(&d);
}

static void test_panic(void)
{
	struct sluice_config *sc = load_ok("", NULL);
	pid_t pid = fork();
	int status = 0;

	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 2);
		(void)cfg_str(sc->main, "no_such_parameter");
		_exit(0);
	}
	waitpid(pid, &status, 0);
	ok(!(WIFEXITED(status) && WEXITSTATUS(status) == 0),
	   "cfg_str on an unknown name panics");
	config_free(sc);
}

int main(void)
{
	fixture_tmpdir("sluice-config-test");
	test_parsers();
	test_split();
	test_registry();
	test_defaults();
	test_syntax();
	test_expansion();
	test_paths();
	test_listeners();
	test_errors();
	test_lenient();
	test_limits();
	test_unreadable();
	test_panic();
	remove_tmp();
	return tap_done();
}
