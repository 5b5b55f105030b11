/*
 * t/unit/map.c - lookup tables (map.h), tested (TAP).
 *
 * Runs in a fresh temporary directory, removed at the end.  Covers: the
 * type registry; texthash syntax (continuation lines, comments, case
 * folding, "key: value", IPv6 keys, "#" inside a value) and its errors
 * as file:line, with a table that has errors refusing to open; duplicate
 * keys (a warning, the first wins); the open-table cache and its
 * references; a table rewritten on disk answering the next lookup, and
 * one rewritten with errors still answering from what it read before
 * (said once in the log); hash: building, lookups, atomic rebuilds, a
 * failed rebuild leaving the old table, aliases syntax, a missing or
 * foreign .lmdb file, a table used in a child after fork(); static: and
 * inline: with their errors; lists of tables; over-long keys.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diag.h"
#include "map.h"
#include "tap.h"

static char dir[] = "/tmp/sluice-map-XXXXXX";

static const char *path_of(const char *name)
{
	static char buf[4][256];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof buf[0], "%s/%s", dir, name);
	return p;
}

static void spew(const char *name, const char *text)
{
	FILE *fp = fopen(path_of(name), "w");

	if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0) {
		printf("Bail out! cannot write %s: %s\n", path_of(name), strerror(errno));
		exit(1);
	}
}

/* Replace a file the way editors and sluice map build do: rename. */
static void replace(const char *name, const char *text)
{
	char tmp[64];

	snprintf(tmp, sizeof tmp, "%s.new", name);
	spew(tmp, text);
	if (rename(path_of(tmp), path_of(name)) < 0) {
		printf("Bail out! rename: %s\n", strerror(errno));
		exit(1);
	}
}

static const char *lookup(struct map *m, const char *key)
{
	const char *value = NULL;
	enum map_status st = map_lookup(m, key, &value);

	return st == MAP_FOUND ? value : st == MAP_NOTFOUND ? "(none)" : "(tempfail)";
}

/* The diag entries, one per line ("W " before warnings). */
static const char *diag_text(const struct diag *d)
{
	static char buf[4096];
	size_t n = 0;

	buf[0] = 0;
	for (int i = 0; i < d->n && n < sizeof buf; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s\n",
				      d->v[i].level == DIAG_WARNING ? "W " : "",
				      d->v[i].text);
	return buf;
}

/* What a spec opens to: the map, and the diagnostics in *text. */
static struct map *open_diag(const char *spec, const char **text)
{
	struct diag d;
	struct map *m;

	diag_init(&d);
	m = map_open_diag(spec, &d);
	*text = diag_text(&d);
	diag_free(&d);
	return m;
}

/* Run fn with stderr (where the log goes) captured; returns the text. */
static const char *with_log(void (*fn)(void *), void *arg)
{
	static char buf[4096];
	int saved = dup(2), fd = open(path_of("log"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	ssize_t n;

	fflush(stderr);
	dup2(fd, 2);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, buf, sizeof buf - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
	return buf;
}

/* ---- the registry ---- */

static void test_types(void)
{
	const char *const *t = map_types();
	char all[256] = "";

	for (; *t; t++)
		snprintf(all + strlen(all), sizeof all - strlen(all), "%s ", *t);
	is_str(all, "cidr hash inline pcre regexp static texthash unix ", "map_types: the types of this build");
}

/* ---- texthash ---- */

static const char TABLE[] =
	"# a comment\n"
	"Foo.Example   first value\n"
	"  continued   here\n"
	"   # a comment between continuation lines\n"
	"\tand here\n"
	"\n"
	"root: admin@example.com\n"
	"2001:db8:: REJECT ipv6\n"
	"hash#tag  a # is text here\n"
	"foo.example  second\n";

/* TABLE without its duplicate, for tests that open it with map_open(),
 * which logs warnings. */
static void spew_clean(void)
{
	char clean[sizeof TABLE];

	snprintf(clean, sizeof clean, "%s", TABLE);
	*strstr(clean, "foo.example  second") = 0;
	spew("clean", clean);
}

static void test_texthash(void)
{
	const char *dtext;
	char spec[256], want[512];
	struct map *m;

	spew("t1", TABLE);
	snprintf(spec, sizeof spec, "texthash:%s", path_of("t1"));
	m = open_diag(spec, &dtext);
	if (!ok(m != NULL, "texthash: a good table opens"))
		return;
	is_str(map_spec(m), spec, "map_spec: the spec as opened");
	is_str(lookup(m, "foo.example"), "first value continued   here and here",
	       "texthash: continuation lines joined by one space, comments skipped, inner spacing kept");
	is_str(lookup(m, "FOO.EXAMPLE"), "first value continued   here and here",
	       "texthash: keys and queries are folded to lower case");
	is_str(lookup(m, "root"), "admin@example.com", "texthash: \"key: value\" reads as \"key value\"");
	is_str(lookup(m, "root:"), "(none)", "texthash: ... and the colon is not part of the key");
	is_str(lookup(m, "2001:db8::"), "REJECT ipv6", "texthash: an IPv6 key keeps its trailing colon");
	is_str(lookup(m, "hash#tag"), "a # is text here", "texthash: \"#\" inside a line is text");
	is_str(lookup(m, "nothere"), "(none)", "texthash: an absent key is not found");
	snprintf(want, sizeof want, "W %s:10: duplicate key \"foo.example\"; the first entry wins, remove this one or the other\n",
		 path_of("t1"));
	is_str(dtext, want, "texthash: a duplicate key is a warning at file:line, the first wins");
	map_close(m);
}

static void test_texthash_errors(void)
{
	const char *dtext;
	char spec[256], want[1024], err[512] = "";
	struct map *m;

	spew("bad", "good value\nnovalue\n  \n  continued? no: a new key has no value\n"
	     "k: \nok fine\n");
	snprintf(spec, sizeof spec, "texthash:%s", path_of("bad"));
	m = open_diag(spec, &dtext);
	ok(m == NULL, "texthash: a table with errors refuses to open");
	/* line 4 continues line 2, giving "novalue" a value: only 5 is bad */
	snprintf(want, sizeof want,
		 "%s:5: \"k:\" has no value; write \"key value\", or remove the line\n",
		 path_of("bad"));
	is_str(dtext, want, "texthash: a key without a value is an error at file:line");

	spew("lead", "  leading\nk v\n");
	snprintf(spec, sizeof spec, "texthash:%s", path_of("lead"));
	m = map_open(spec, err, sizeof err);
	snprintf(want, sizeof want, "%s:1: line starts with whitespace but there is no setting before it to continue; remove the leading whitespace",
		 path_of("lead"));
	if (!ok(m == NULL && strcmp(err, want) == 0, "texthash: a continuation line with nothing before it"))
		diag("%s", err);

	snprintf(spec, sizeof spec, "texthash:%s", path_of("missing"));
	m = map_open(spec, err, sizeof err);
	snprintf(want, sizeof want, "texthash:%1$s: cannot read %1$s: No such file or directory; check the file name and its permissions",
		 path_of("missing"));
	ok(m == NULL && strcmp(err, want) == 0, "texthash: a missing file");

	spew("two", "a\nb\n");
	snprintf(spec, sizeof spec, "texthash:%s", path_of("two"));
	m = map_open(spec, err, sizeof err);
	ok(m == NULL && strstr(err, ":1: \"a\" has no value") && strstr(err, "(and 1 more error)"),
	   "map_open: the first error, and how many more");
}

static void test_cache(void)
{
	char spec[256], proxied[300], err[256];
	struct map *a, *b, *c;

	spew_clean();
	snprintf(spec, sizeof spec, "texthash:%s", path_of("clean"));
	snprintf(proxied, sizeof proxied, "proxy:%s", spec);
	a = map_open(spec, err, sizeof err);
	b = map_open(proxied, err, sizeof err);
	ok(a != NULL && a == b, "cache: the same spec (proxy: ignored) is the same open table");
	if (a == NULL)
		return;
	is_str(map_spec(b), spec, "cache: map_spec has no proxy:");
	map_close(b);
	is_str(lookup(a, "root"), "admin@example.com", "cache: closing one reference keeps the table");
	map_close(a);
	c = map_open(spec, err, sizeof err);
	ok(c != NULL, "cache: opens again after the last close");
	map_close(c);
}

struct reload_arg {
	struct map *m;
	const char *got;
};

static void lookup_x(void *arg)
{
	struct reload_arg *r = arg;

	r->got = lookup(r->m, "x");
}

static void test_texthash_reload(void)
{
	char spec[256], err[256];
	struct reload_arg r;
	const char *v1, *v2, *log;

	spew("live", "x one\n");
	snprintf(spec, sizeof spec, "texthash:%s", path_of("live"));
	if (!ok((r.m = map_open(spec, err, sizeof err)) != NULL, "reload: open"))
		return;
	v1 = lookup(r.m, "x");
	v2 = lookup(r.m, "x");
	ok(v1 == v2 && strcmp(v1, "one") == 0, "reload: an unchanged file is not read again");

	spew("live", "x two, rewritten in place\n");
	is_str(lookup(r.m, "x"), "two, rewritten in place", "reload: a file rewritten in place answers the next lookup");
	replace("live", "x three\n");
	is_str(lookup(r.m, "x"), "three", "reload: a file renamed into place answers the next lookup");

	replace("live", "x\n");
	log = with_log(lookup_x, &r);
	is_str(r.got, "three", "reload: a changed file with errors: the old contents still answer");
	ok(strstr(log, ":1: \"x\" has no value") && strstr(log, "changed on disk but does not load; still answering from the previous version until it is fixed"),
	   "reload: ... and the log says why");
	log = with_log(lookup_x, &r);
	ok(strcmp(r.got, "three") == 0 && log[0] == 0, "reload: ... once, not at every lookup");
	{
		const char *dtext;
		struct map *again = open_diag(spec, &dtext);

		ok(again == r.m && strstr(dtext, "W ") == dtext && strstr(dtext, ":1: \"x\" has no value")
		   && strstr(dtext, "changed on disk but does not load"),
		   "reload: ... but map_open_diag of the open table says so, as warnings");
		map_close(again);
	}
	replace("live", "x four\n");
	is_str(lookup(r.m, "x"), "four", "reload: once fixed, the new contents answer");

	unlink(path_of("live"));
	log = with_log(lookup_x, &r);
	ok(strcmp(r.got, "four") == 0 && strstr(log, "cannot check"), "reload: a deleted file: the old contents answer, with a warning");
	map_close(r.m);
}

/* ---- hash ---- */

static int build(const char *name, int flags, const char **text)
{
	struct diag d;
	int rc;

	diag_init(&d);
	rc = map_build(path_of(name), flags, &d);
	*text = diag_text(&d);
	diag_free(&d);
	return rc;
}

static void test_hash(void)
{
	char spec[256], err[512], want[512];
	const char *dtext;
	struct map *m;
	struct stat st;

	spew("h", TABLE);
	ok(build("h", 0, &dtext) == 0, "hash: build");
	snprintf(want, sizeof want, "W %s:10: duplicate key \"foo.example\"; the first entry wins, remove this one or the other\n",
		 path_of("h"));
	is_str(dtext, want, "hash: build warns of duplicates as texthash does");
	ok(stat(path_of("h.lmdb"), &st) == 0 && (st.st_mode & 0777) == 0644,
	   "hash: PATH.lmdb has the source's read permissions");
	snprintf(spec, sizeof spec, "hash:%s", path_of("h"));
	if (!ok((m = map_open(spec, err, sizeof err)) != NULL, "hash: open"))
		{ diag("%s", err); return; }
	is_str(lookup(m, "Foo.Example"), "first value continued   here and here", "hash: lookup, folded");
	is_str(lookup(m, "2001:db8::"), "REJECT ipv6", "hash: same syntax as texthash");
	is_str(lookup(m, "nothere"), "(none)", "hash: an absent key");

	spew("h", "foo.example rebuilt\n");
	is_str(lookup(m, "foo.example"), "first value continued   here and here",
	       "hash: editing the source changes nothing until it is built");
	ok(build("h", 0, &dtext) == 0, "hash: rebuild");
	is_str(lookup(m, "foo.example"), "rebuilt", "hash: a rebuilt table answers the next lookup");

	spew("h", "foo.example\n");
	snprintf(want, sizeof want, "%s:1: \"foo.example\" has no value; write \"key value\", or remove the line\n",
		 path_of("h"));
	ok(build("h", 0, &dtext) < 0, "hash: a source with errors is not built");
	is_str(dtext, want, "hash: ... said as file:line");
	is_str(lookup(m, "foo.example"), "rebuilt", "hash: ... and the old table stays");
	ok(access(path_of("h.lmdb"), F_OK) == 0, "hash: ... the old file is still there");
	map_close(m);
}

static void test_hash_errors(void)
{
	char spec[256], err[512], want[512];

	snprintf(spec, sizeof spec, "hash:%s", path_of("never"));
	ok(map_open(spec, err, sizeof err) == NULL, "hash: a table never built does not open");
	snprintf(want, sizeof want, "hash:%1$s: cannot open %1$s.lmdb: No such file or directory; run \"sluice map build %1$s\"",
		 path_of("never"));
	is_str(err, want, "hash: ... and says to build it");

	spew("junk.lmdb", "this is not an LMDB file, but it is long enough to be read as one... or is it? "
	     "Pad it out a little more so LMDB reads a whole meta page worth of garbage.\n");
	snprintf(spec, sizeof spec, "hash:%s", path_of("junk"));
	ok(map_open(spec, err, sizeof err) == NULL && strstr(err, "is not a table sluice built")
	   && strstr(err, "rebuild it with"), "hash: a foreign file is refused");
}

static void test_hash_aliases(void)
{
	char spec[256], err[256];
	const char *dtext;
	struct map *m;

	spew("aliases", "# aliases(5)\nPostmaster: root\nroot:admin, bob,\n  carol\n\"Big Boss\": boss\n");
	ok(build("aliases", MAP_BUILD_ALIASES, &dtext) == 0, "aliases: build -a");
	snprintf(spec, sizeof spec, "hash:%s", path_of("aliases"));
	if ((m = map_open(spec, err, sizeof err)) == NULL)
		return (void)ok(false, "aliases: open: %s", err);
	is_str(lookup(m, "postmaster"), "root", "aliases: name: value");
	is_str(lookup(m, "root"), "admin, bob, carol", "aliases: no space after the colon, continuation line");
	is_str(lookup(m, "big boss"), "boss", "aliases: a quoted name");
	map_close(m);

	spew("aliases", "root admin\n");
	ok(build("aliases", MAP_BUILD_ALIASES, &dtext) < 0 && strstr(dtext, ":1: \"root admin\" has no \":\"; write \"name: value\""),
	   "aliases: a line without a colon is an error");
}

static void test_hash_fork(void)
{
	char spec[256], err[256];
	struct map *m;
	pid_t pid;
	int status = -1;

	snprintf(spec, sizeof spec, "hash:%s", path_of("h"));
	if ((m = map_open(spec, err, sizeof err)) == NULL)
		return (void)ok(false, "fork: open: %s", err);
	lookup(m, "foo.example");
	fflush(stdout);
	if ((pid = fork()) == 0)
		_exit(strcmp(lookup(m, "foo.example"), "rebuilt") == 0 ? 0 : 1);
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork: a child uses the table its parent opened");
	map_close(m);
}

static void test_hash_big(void)
{
	FILE *fp = fopen(path_of("big"), "w");
	char spec[256], err[256], key[32], want[64];
	const char *dtext;
	struct map *m;
	int bad = 0;

	for (int i = 0; fp && i < 20000; i++)
		fprintf(fp, "key%d value%d-%0300d\n", i, i, i);
	if (fp)
		fclose(fp);
	ok(build("big", 0, &dtext) == 0, "hash: a table of 20000 entries, 6 MB, builds");
	snprintf(spec, sizeof spec, "hash:%s", path_of("big"));
	if ((m = map_open(spec, err, sizeof err)) == NULL)
		return (void)ok(false, "big: open: %s", err);
	for (int i = 0; i < 20000; i += 997) {
		snprintf(key, sizeof key, "KEY%d", i);
		snprintf(want, sizeof want, "value%d-", i);
		bad += strncmp(lookup(m, key), want, strlen(want)) != 0;
	}
	is_int(bad, 0, "hash: ... and its entries are found");
	map_close(m);
}

/* ---- static and inline ---- */

static void test_static_inline(void)
{
	const char *dtext;
	struct map *m;

	m = open_diag("static:OK", &dtext);
	ok(m && strcmp(lookup(m, "anything"), "OK") == 0, "static: every key has the value");
	map_close(m);
	m = open_diag("static:{ text with spaces }", &dtext);
	ok(m && strcmp(lookup(m, "x"), "text with spaces") == 0, "static:{...}: braces and inner space dropped");
	map_close(m);
	ok(open_diag("static:{ }", &dtext) == NULL, "static:{ } is an error");
	is_str(dtext, "static:{ } has no value; write static:VALUE or static:{text with spaces}\n", "static: ... said so");
	ok(open_diag("static:{abc", &dtext) == NULL, "static:{abc is an error");

	m = open_diag("inline:{ A=1, b=2, { c = three words, with a comma }, a=dup }", &dtext);
	ok(m != NULL, "inline: opens");
	if (m != NULL) {
		is_str(lookup(m, "a"), "1", "inline: folded, the first of two wins");
		is_str(lookup(m, "C"), "three words, with a comma", "inline: {key = value}");
		is_str(lookup(m, "d"), "(none)", "inline: absent key");
		is_str(dtext, "W inline:{ A=1, b=2, { c = three words, with a comma }, a=dup }: duplicate key \"a\"; the first entry wins, remove this one or the other\n",
		       "inline: duplicate warned");
		map_close(m);
	}
	ok(open_diag("inline:{ a=1, b }", &dtext) == NULL, "inline: an item without = is an error");
	is_str(dtext, "inline:{ a=1, b }: \"b\" has no \"=\"; write key=value, or {key = value} for a value with spaces\n",
	       "inline: ... said so");
	ok(open_diag("inline:a=1", &dtext) == NULL && strstr(dtext, "must be in braces"), "inline: braces required");
	ok(open_diag("inline:{ }", &dtext) == NULL && strstr(dtext, "the table is empty"), "inline: an empty table is an error");
	ok(open_diag("inline:{ =x }", &dtext) == NULL && strstr(dtext, "has no key"), "inline: an empty key is an error");
}

static void test_specs(void)
{
	const char *dtext;

	ok(open_diag("nosuch:/x", &dtext) == NULL, "spec: unknown type");
	is_str(dtext, "nosuch:/x: unknown table type \"nosuch\"; \"sluice map list\" shows the types this build knows\n",
	       "spec: ... said so");
	ok(open_diag("/etc/aliases", &dtext) == NULL, "spec: no type");
	is_str(dtext, "\"/etc/aliases\" is not a lookup table; write type:name, e.g. hash:/etc/sluice/access\n",
	       "spec: ... said so");
	ok(open_diag("texthash:", &dtext) == NULL && strstr(dtext, "names no table"), "spec: no name");
}

/* ---- lists and keys ---- */

static void test_list(void)
{
	char value[600], err[512], longkey[MAP_KEY_MAX + 2];
	struct map_list *ml;
	const char *v = NULL;

	snprintf(value, sizeof value, "inline:{ root=first }, texthash:%s hash:%s, static:last",
		 path_of("clean"), path_of("h"));
	if (!ok((ml = map_list_open(value, err, sizeof err)) != NULL, "list: opens"))
		{ diag("%s", err); return; }
	ok(map_list_lookup(ml, "root", &v) == MAP_FOUND && strcmp(v, "first") == 0, "list: the first table with the key answers");
	ok(map_list_lookup(ml, "hash#tag", &v) == MAP_FOUND && strcmp(v, "a # is text here") == 0, "list: then the next");
	ok(map_list_found(ml) != NULL && strncmp(map_spec(map_list_found(ml)), "texthash:", 9) == 0,
	   "list: map_list_found names the table that answered");
	ok(map_owner(map_list_found(ml)) == getuid(), "map_owner: the owner of the table's file");
	ok(map_list_lookup(ml, "nowhere", &v) == MAP_FOUND && strcmp(v, "last") == 0, "list: static at the end catches all");
	ok(map_list_lookup_flags(ml, "nowhere", MAP_LOOKUP_FIXED, &v) == MAP_FOUND,
	   "list: fixed-only lookups use fixed-string tables (all of these)");
	memset(longkey, 'a', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = 0;
	ok(map_list_lookup(ml, longkey, &v) == MAP_FOUND && strcmp(v, "last") == 0,
	   "list: a key longer than MAP_KEY_MAX is simply not in the file tables");
	ok(map_owner(map_list_found(ml)) == 0, "map_owner: 0 for a table without a file");
	map_list_free(ml);

	ok((ml = map_list_open("", err, sizeof err)) != NULL && map_list_lookup(ml, "x", &v) == MAP_NOTFOUND
	   && map_list_found(ml) == NULL, "list: an empty list finds nothing");
	map_list_free(ml);
	snprintf(value, sizeof value, "static:x, texthash:%s, nosuch:y", path_of("missing"));
	ok(map_list_open(value, err, sizeof err) == NULL && strstr(err, "cannot read") && strstr(err, "(and 1 more error)"),
	   "list: one bad table and the list does not open");
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

int main(void)
{
	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	umask(022);
	test_types();
	test_texthash();
	test_texthash_errors();
	test_cache();
	test_texthash_reload();
	test_hash();
	test_hash_errors();
	test_hash_aliases();
	test_hash_fork();
	test_hash_big();
	test_static_inline();
	test_specs();
	test_list();
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
