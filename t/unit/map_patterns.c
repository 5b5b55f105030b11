/*
 * t/unit/map_patterns.c - pattern tables (cidr:, pcre:, regexp:) and
 * unix: through the map.h interface, tested (TAP).
 *
 * What t/map_patterns.t (which compares with postmap) cannot see from
 * outside: pattern tables are MAP_TYPE_PATTERN and skipped by lookups
 * with MAP_LOOKUP_FIXED in a list; keys reach them unfolded and of any
 * length; $n of a group past the ninth and of many groups; the answer
 * buffer growing with the key; warnings and errors collected in a diag;
 * nested if..endif jumping correctly; unix: folding its keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "map.h"
#include "tap.h"

static char dir[] = "/tmp/sluice-mappat-XXXXXX";

static const char *table(const char *name, const char *text)
{
	static char path[4][256];
	static int next;
	char *p = path[next++ % 4];
	FILE *fp;

	snprintf(p, sizeof path[0], "%s/%s", dir, name);
	if ((fp = fopen(p, "w")) == NULL || fputs(text, fp) < 0 || fclose(fp) != 0) {
		perror(p);
		exit(1);
	}
	return p;
}

static char *spec_of(const char *type, const char *path)
{
	static char buf[300];

	snprintf(buf, sizeof buf, "%s:%s", type, path);
	return buf;
}

/* The value for key, or "(not found)" / "(tempfail)". */
static const char *ask(struct map *m, const char *key)
{
	const char *v = NULL;

	switch (map_lookup(m, key, &v)) {
	case MAP_FOUND: return v;
	case MAP_NOTFOUND: return "(not found)";
	default: return "(tempfail)";
	}
}

static void test_pattern_flag(void)
{
	const char *p = table("a.pcre", "/^x/ pcre-x\n");
	const char *c = table("a.cidr", "10.0.0.0/8 cidr-ten\n");
	const char *t = table("a.txt", "x texthash-x\n10.1.2.3 texthash-ip\n");
	char list[1024];
	struct map_list *ml;
	const char *v = NULL;
	char err[256] = "";

	snprintf(list, sizeof list, "pcre:%s, cidr:%s, texthash:%s", p, c, t);
	ml = map_list_open(list, err, sizeof err);
	ok(ml != NULL, "a list of pcre, cidr and texthash opens (%s)", err);
	if (ml == NULL)
		return;
	ok(map_list_found(ml) == NULL, "no table has answered before a lookup");
	ok(map_list_lookup(ml, "x", &v) == MAP_FOUND && strcmp(v, "pcre-x") == 0,
	   "a full lookup asks the pcre table first");
	ok(map_is_pattern(map_list_found(ml)), "... which is a pattern table");
	ok(map_list_lookup_flags(ml, "x", MAP_LOOKUP_FIXED, &v) == MAP_FOUND
	   && strcmp(v, "texthash-x") == 0,
	   "MAP_LOOKUP_FIXED skips pcre: the texthash answers");
	ok(map_list_lookup_flags(ml, "10.1.2.3", MAP_LOOKUP_FIXED, &v) == MAP_FOUND
	   && strcmp(v, "texthash-ip") == 0, "MAP_LOOKUP_FIXED skips cidr too");
	ok(map_list_lookup(ml, "10.1.2.3", &v) == MAP_FOUND
	   && strcmp(v, "cidr-ten") == 0, "without it cidr answers");
	ok(map_is_pattern(map_list_found(ml)), "... and is a pattern table");
	map_list_free(ml);
}

static void test_keys_unfolded(void)
{
	const char *p = table("case.pcre", "/^(.*)@(.*)$/ user=$1 domain=$2\n");
	struct map *m = map_open(spec_of("pcre", p), NULL, 0);
	char big[4096];

	ok(m != NULL, "pcre table opens");
	if (m == NULL)
		return;
	is_str(ask(m, "Joe@Example.COM"), "user=Joe domain=Example.COM",
	       "pattern tables get the key as given, not folded");
	memset(big, 'a', sizeof big - 20);
	strcpy(big + sizeof big - 20, "@example.org");
	ok(strlen(ask(m, big)) == strlen("user= domain=example.org") + sizeof big - 20,
	   "a key longer than MAP_KEY_MAX reaches a pattern table, and the answer grows with it");
	map_close(m);
}

static void test_many_groups(void)
{
	const char *p = table("groups.pcre",
		"/^(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)(m)(n)(o)(p)(q)(r)(s)(t)$/ ${10}-${20}-$1${2}0\n");
	const char *r = table("groups.regexp",
		"/^(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)$/ ${11}$10$9\n");
	struct map *m = map_open(spec_of("pcre", p), NULL, 0);
	struct map *mr = map_open(spec_of("regexp", r), NULL, 0);

	ok(m != NULL && mr != NULL, "tables with 20 and 11 groups open");
	if (m != NULL)
		is_str(ask(m, "abcdefghijklmnopqrst"), "j-t-ab0",
		       "pcre: ${10} and ${20}; ${2}0 is group 2 then a 0");
	if (mr != NULL)
		is_str(ask(mr, "abcdefghijk"), "kji", "regexp: $10 is group 10, ${11} group 11");
	map_close(m);
	map_close(mr);
}

static void test_nesting(void)
{
	const char *c = table("nest.cidr",
		"if 10.0.0.0/8\n"
		"if 10.1.0.0/16\n"
		"if !10.1.1.0/24\n"
		"10.1.0.0/16 ten-one-not-one-one\n"
		"endif\n"
		"10.0.0.0/8 ten-one\n"
		"endif\n"
		"10.0.0.0/8 ten\n"
		"endif\n"
		"0.0.0.0/0 any\n");
	struct map *m = map_open(spec_of("cidr", c), NULL, 0);

	ok(m != NULL, "nested if..endif cidr table opens");
	if (m == NULL)
		return;
	is_str(ask(m, "10.1.2.3"), "ten-one-not-one-one", "innermost block");
	is_str(ask(m, "10.1.1.3"), "ten-one", "a false inner if skips to its endif only");
	is_str(ask(m, "10.2.0.1"), "ten", "a false middle if skips its whole block");
	is_str(ask(m, "11.0.0.1"), "any", "a false outer if skips everything inside");
	is_str(ask(m, "::1"), "(not found)", "an IPv6 key matches no IPv4 rule");
	map_close(m);
}

static void test_diag(void)
{
	const char *p = table("diag.pcre", "/^a/X fine\n/^b/ also\n");
	const char *bad = table("diag-bad.regexp", "/^a/ ok\n/(/ broken\n/^c/z odd\n");
	struct diag d;
	struct map *m;

	diag_init(&d);
	m = map_open_diag(spec_of("pcre", p), &d);
	ok(m != NULL && d.errors == 0 && d.n == 1 && d.v[0].level == DIAG_WARNING,
	   "the X flag: one warning, the table opens");
	map_close(m);
	diag_free(&d);
	diag_init(&d);
	m = map_open_diag(spec_of("regexp", bad), &d);
	ok(m == NULL && d.errors == 2, "two bad rules: two errors, the table does not open");
	if (d.n == 2)
		ok(strstr(d.v[0].text, "diag-bad.regexp:2: error in regex") != NULL
		   && strstr(d.v[1].text, "diag-bad.regexp:3: unknown regexp option \"z\"") != NULL,
		   "each error names its line");
	diag_free(&d);
}

static void test_unix(void)
{
	struct map *m = map_open("unix:passwd.byname", NULL, 0);
	struct map *g = map_open("proxy:unix:group.byname", NULL, 0);

	ok(m != NULL && g != NULL, "unix:passwd.byname and proxy:unix:group.byname open");
	if (m != NULL) {
		ok(strncmp(ask(m, "ROOT"), "root:", 5) == 0
		   && strstr(ask(m, "root"), ":0:0:") != NULL,
		   "passwd.byname folds the key and answers the passwd line");
		is_str(ask(m, "no-such-user-xyzzy"), "(not found)", "an unknown user is not found");
		ok(!map_is_pattern(m), "unix: is not a pattern table");
	}
	if (g != NULL)
		ok(strncmp(ask(g, "root"), "root:", 5) == 0, "group.byname answers the group line");
	map_close(m);
	map_close(g);
}

int main(void)
{
	char cmd[300];

	if (mkdtemp(dir) == NULL) {
		perror(dir);
		return 1;
	}
	test_pattern_flag();
	test_keys_unfolded();
	test_many_groups();
	test_nesting();
	test_diag();
	test_unix();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return tap_done();
}
