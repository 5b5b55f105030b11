/*
 * map_cmd.c - `sluice map query|build|list`, Postfix's postmap(1),
 * postalias(1) and `postconf -m` in one command.
 *
 *   sluice map query TYPE:NAME KEY	print the value (postmap -q KEY)
 *   sluice map query TYPE:NAME KEY...	"key<TAB>value" for each key found
 *   sluice map query TYPE:NAME -	the same for keys read from stdin,
 *					one per line (postmap -q -)
 *   sluice map build [-a] FILE...	make FILE.lmdb for hash:FILE; -a
 *					reads aliases(5) syntax (postalias)
 *   sluice map list			the table types, one per line
 *
 * Keys are looked up exactly as given (after the table's case folding):
 * no access(5) search order.  For every type (texthash, hash, cidr,
 * pcre, regexp, unix, inline, static) the output is what Postfix's
 * `postmap -q KEY TYPE:NAME` and `postmap -q - TYPE:NAME` print for the
 * same table (t/map_patterns.t runs both side by side).  Exit status: query 0 when a key was found,
 * 1 when none was, 2 on any problem (so a script can tell "not found"
 * from "broken"); build and list 0, or 1 when a table was not built, 2
 * on a usage error.  Problems with a table are printed as
 * "file:line: what; fix", warnings with "warning: " in front.  The
 * configuration directory is not read: no map parameter needs it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "diag.h"
#include "map.h"

#define STDIN_KEY_MAX	(64 * 1024)	/* a longer line is not a key */

static int usage(void)
{
	fprintf(stderr,
		"usage: sluice map query TYPE:NAME KEY...   (KEY - reads keys from stdin)\n"
		"       sluice map build [-a] FILE...\n"
		"       sluice map list\n");
	return 2;
}

/* ---- query ------------------------------------------------------------- */

/* 0 found, 1 not found, 2 trouble. */
static int query_one(struct map *m, const char *key, bool with_key)
{
	const char *value;

	switch (map_lookup(m, key, &value)) {
	case MAP_FOUND:
		if (with_key)
			printf("%s\t%s\n", key, value);
		else
			printf("%s\n", value);
		return 0;
	case MAP_NOTFOUND:
		return 1;
	default:
		fprintf(stderr, "sluice map: %s: the lookup of \"%s\" failed; try again, or check the table\n",
			map_spec(m), key);
		return 2;
	}
}

static int merge(int status, int one)
{
	if (status == 2 || one == 2)
		return 2;
	return status == 0 || one == 0 ? 0 : 1;
}

static int query_stdin(struct map *m)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int status = 1;

	while ((n = getline(&line, &cap, stdin)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = 0;
		if (n > STDIN_KEY_MAX || memchr(line, 0, (size_t)n) != NULL) {
			fprintf(stderr, "sluice map: a key on stdin is longer than %d bytes or has a NUL byte; it is skipped\n",
				STDIN_KEY_MAX);
			status = 2;
			continue;
		}
		status = merge(status, query_one(m, line, true));
		fflush(stdout);		/* a program may be waiting on it */
	}
	free(line);
	return status;
}

static int cmd_query(int argc, char **argv)
{
	struct diag d;
	struct map *m;
	int status = 1;

	if (argc < 3)
		return usage();
	diag_init(&d);
	m = map_open_diag(argv[1], &d);
	diag_print(&d, stderr);
	diag_free(&d);
	if (m == NULL)
		return 2;
	if (argc == 3 && strcmp(argv[2], "-") == 0)
		status = query_stdin(m);
	else if (argc == 3)
		status = query_one(m, argv[2], false);
	else
		for (int i = 2; i < argc; i++)
			status = merge(status, query_one(m, argv[i], true));
	fflush(stdout);
	map_close(m);
	return status;
}

/* ---- build ------------------------------------------------------------- */

/* "hash:FILE" or "FILE": the file; NULL (said why) for other types. */
static const char *build_path(const char *arg)
{
	size_t len = strcspn(arg, ":/");

	if (strncmp(arg, "hash:", 5) == 0 && arg[5] == 0) {
		fprintf(stderr, "sluice map: \"hash:\" names no file; write hash:/path/to/file\n");
		return NULL;
	}
	if (strncmp(arg, "hash:", 5) == 0)
		return arg + 5;
	if (arg[len] == ':' && len > 0) {
		fprintf(stderr, "sluice map: %s: only hash: tables are built; %.*s: tables are read as they are\n",
			arg, (int)len, arg);
		return NULL;
	}
	return arg;
}

static int cmd_build(int argc, char **argv)
{
	int flags = 0, i = 1, status = 0;

	for (; i < argc && argv[i][0] == '-' && argv[i][1] != 0; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "-a") != 0) {
			fprintf(stderr, "sluice map: unknown option %s\n", argv[i]);
			return usage();
		}
		flags |= MAP_BUILD_ALIASES;
	}
	if (i >= argc)
		return usage();
	for (; i < argc; i++) {
		const char *path = build_path(argv[i]);
		struct diag d;

		if (path == NULL) {
			status = 1;
			continue;
		}
		diag_init(&d);
		if (map_build(path, flags, &d) < 0)
			status = 1;
		diag_print(&d, stderr);
		diag_free(&d);
	}
	return status;
}

/* ---- list -------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmd_list(int argc, char **argv)
{
	const char *const *types = map_types();
	const char *sorted[64];
	size_t n = 0;

	if (argc != 1)
		return usage();
	while (types[n] && n < sizeof sorted / sizeof sorted[0]) {
		sorted[n] = types[n];
		n++;
	}
	qsort(sorted, n, sizeof sorted[0], by_name);
	for (size_t i = 0; i < n; i++)
		printf("%s\n", sorted[i]);
	return 0;
}

int cmd_map(const char *config_dir, int argc, char **argv)
{
	if (argc < 2)
		return usage();
	argc--, argv++;
	if (strcmp(argv[0], "query") == 0)
		return cmd_query(argc, argv);
	if (strcmp(argv[0], "build") == 0)
		return cmd_build(argc, argv);
	if (strcmp(argv[0], "list") == 0)
		return cmd_list(argc, argv);
	fprintf(stderr, "sluice map: unknown command \"%s\"; use query, build or list\n",
		argv[0]);
	return 2;
}
