/*
 * conf_cmd.c - `sluice conf`: show and edit parameters, like postconf.
 *
 *   sluice conf [-n | -d] [-h] [-x] [name ...]
 *       every parameter (or the named ones) as "name = value":
 *       -n only those set in main.cf, -d the defaults, -h values only,
 *       -x with $names expanded (as the running server sees them)
 *   sluice conf -e name=value ...   set parameters in main.cf
 *   sluice conf -X name ...         remove parameters from main.cf
 *   sluice conf --docs              the parameter reference (markdown)
 *
 * Values are shown as written (not expanded) unless -x, as postconf does.
 * conf reads the configuration leniently: a main.cf with mistakes can
 * still be shown and fixed with -e (`sluice check` is the strict judge).
 *
 * The editing promise: main.cf is rewritten with every other line as it
 * was, comments included; an edited parameter's first setting is
 * replaced where it stands (with its continuation lines), later settings
 * of it are removed, a new one is appended; the new file is written
 * beside the old, flushed to disk and renamed over it, so a crash leaves
 * the old or the new main.cf, never half of one.  -e refuses unknown
 * names (with a did-you-mean) and values that are not of the parameter's
 * type, and then changes nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"

enum conf_mode { SHOW_ALL, SHOW_SET, SHOW_DEFAULTS };

struct conf_opts {
	enum conf_mode mode;
	bool values_only;       /* -h */
	bool expand;            /* -x */
	bool edit;              /* -e */
	bool remove;            /* -X */
	bool docs;              /* --docs */
	int first_arg;
};

struct conf_ctx {
	struct conf_opts o;
	const char *config_dir;
	char *main_path;
	struct cf_file mf;
	struct sluice_config *sc;       /* for -x and plugin parameters */
	struct diag d;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: sluice conf [-n | -d] [-h] [-x] [name ...]\n"
		"       sluice conf -e name=value ...\n"
		"       sluice conf -X name ...\n"
		"       sluice conf --docs\n");
}

static int parse_opts(int argc, char **argv, struct conf_opts *o)
{
	int i;

	memset(o, 0, sizeof *o);
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "--docs") == 0) {
			o->docs = true;
			continue;
		}
		for (const char *f = argv[i] + 1; *f; f++) {
			switch (*f) {
			case 'n': o->mode = SHOW_SET; break;
			case 'd': o->mode = SHOW_DEFAULTS; break;
			case 'h': o->values_only = true; break;
			case 'x': o->expand = true; break;
			case 'e': o->edit = true; break;
			case 'X': o->remove = true; break;
			default:
				fprintf(stderr, "sluice conf: unknown option -%c\n", *f);
				usage();
				return -1;
			}
		}
	}
	o->first_arg = i;
	if ((o->edit || o->remove) && (i == argc || o->mode != SHOW_ALL ||
				       (o->edit && o->remove))) {
		usage();
		return -1;
	}
	return 0;
}

/* ---- showing ---------------------------------------------------------------- */

static void show(const struct conf_opts *o, const char *name, const char *value)
{
	if (o->values_only)
		printf("%s\n", value);
	else if (*value)
		printf("%s = %s\n", name, value);
	else
		printf("%s =\n", name);
}

/* The value of a parameter in the chosen mode; NULL when it has none
 * there (not set, for -n). */
static const char *value_of(struct conf_ctx *c, const char *name)
{
	const struct param_def *p = param_find(name);
	const struct cf_setting *s = cf_last(&c->mf, name);
	const char *x;

	if (c->o.mode == SHOW_DEFAULTS)
		return p ? p->defval : NULL;
	if (c->o.expand && c->sc && c->sc->main &&
	    (x = cfg_lookup(c->sc->main, name)) != NULL)
		return (c->o.mode == SHOW_SET && !s) ? NULL : x;
	if (s)
		return s->value;
	if (c->o.mode == SHOW_SET)
		return NULL;
	if (strcmp(name, "config_directory") == 0 && c->sc)
		return c->sc->config_dir;
	/* A default computed from the machine (mydomain) may follow what
	 * main.cf says (myhostname): show the value in force. */
	if (p && param_default_doc(p) != p->defval && c->sc && c->sc->main &&
	    (x = cfg_lookup(c->sc->main, name)) != NULL)
		return x;
	return p ? p->defval : NULL;
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* -n: every name set in main.cf, once, sorted. */
static void show_set(struct conf_ctx *c)
{
	const char **names = calloc((size_t)c->mf.n + 1, sizeof *names);
	int n = 0;

	if (names == NULL)
		return;
	for (int i = 0; i < c->mf.n; i++)
		if (cf_last(&c->mf, c->mf.v[i].name) == &c->mf.v[i])
			names[n++] = c->mf.v[i].name;
	qsort(names, (size_t)n, sizeof *names, by_str);
	for (int i = 0; i < n; i++)
		show(&c->o, names[i], value_of(c, names[i]));
	free(names);
}

static void show_all(struct conf_ctx *c)
{
	for (int i = 0; i < param_count(); i++)
		show(&c->o, param_at(i)->name, value_of(c, param_at(i)->name));
}

static void unknown(const char *name)
{
	const char *sug = param_suggest(name);

	if (sug)
		fprintf(stderr, "sluice conf: unknown parameter \"%s\"; did you mean \"%s\"?\n",
			name, sug);
	else
		fprintf(stderr, "sluice conf: unknown parameter \"%s\"; \"sluice conf -d\" lists them all\n",
			name);
}

static int show_named(struct conf_ctx *c, int argc, char **argv)
{
	int rc = 0;

	for (int i = c->o.first_arg; i < argc; i++) {
		const char *v = value_of(c, argv[i]);

		if (v != NULL)
			show(&c->o, argv[i], v);
		else if (!param_find(argv[i]) && !cf_last(&c->mf, argv[i])) {
			unknown(argv[i]);
			rc = 1;
		}
	}
	return rc;
}

/* ---- --docs --------------------------------------------------------------- */

/* Markdown table cell text: "|" escaped, nothing else touched. */
static void cell(const char *s, bool code)
{
	if (*s == 0 && code) {
		fputs("(empty)", stdout);
		return;
	}
	if (code)
		putchar('`');
	for (; *s; s++) {
		if (*s == '|')
			putchar('\\');
		putchar(*s);
	}
	if (code)
		putchar('`');
}

static int show_docs(void)
{
	printf("# sluice parameters\n\n"
	       "Generated by `sluice conf --docs` from the parameter registry "
	       "(mta/param_table.c); do not edit by hand.\n\n"
	       "Parameters go in `main.cf` as `name = value`, or per listener in "
	       "`master.cf` as `-o name=value`. Times take a unit (s, m, h, d, w; "
	       "seconds when none); sizes are bytes. Values may refer to other "
	       "parameters as `$name`.\n\n"
	       "| Parameter | Type | Default | Description |\n"
	       "|---|---|---|---|\n");
	for (int i = 0; i < param_count(); i++) {
		const struct param_def *p = param_at(i);
		const char *dflt = param_default_doc(p);

		if (p->owner)
			continue;       /* plugins document their own */
		printf("| `%s` | %s | ", p->name, param_type_name(p->type));
		cell(dflt, dflt == p->defval);
		printf(" | ");
		cell(p->desc, false);
		printf(" |\n");
	}
	return 0;
}

/* ---- editing ---------------------------------------------------------------- */

struct edit {
	char *name;
	char *value;            /* NULL: remove */
	bool done;
};

/* Check one "name=value" (or name for -X) against the registry. */
static int edit_ok(struct conf_ctx *c, const struct edit *e)
{
	const struct param_def *p = param_find(e->name);

	if (!p && !cf_last(&c->mf, e->name)) {
		unknown(e->name);
		return -1;
	}
	if (e->value && strchr(e->value, '\n')) {
		fprintf(stderr, "sluice conf: the value of \"%s\" has a line break; give it on one line\n",
			e->name);
		return -1;
	}
	if (p && e->value && !strchr(e->value, '$') &&
	    param_value_ok(p->type, e->value) < 0) {
		fprintf(stderr, "sluice conf: bad value \"%s\" for \"%s\"; expected %s\n",
			e->value, e->name, param_type_hint(p->type));
		return -1;
	}
	return 0;
}

static int parse_edits(struct conf_ctx *c, int argc, char **argv,
		       struct edit *ed)
{
	int n = 0;

	for (int i = c->o.first_arg; i < argc; i++, n++) {
		char *eq = strchr(argv[i], '=');

		if (c->o.edit && eq == NULL) {
			fprintf(stderr, "sluice conf: \"%s\" has no \"=\"; write -e name=value\n",
				argv[i]);
			return -1;
		}
		if (eq)
			*eq = 0;
		ed[n].name = config_trim(argv[i]);
		ed[n].value = c->o.edit ? config_trim(eq + 1) : NULL;
		ed[n].done = false;
		if (edit_ok(c, &ed[n]) < 0)
			return -1;
		/* the same name twice: the last one counts */
		for (int k = 0; k < n; k++)
			if (strcmp(ed[k].name, ed[n].name) == 0)
				ed[k].done = true;
	}
	return n;
}

static struct edit *edit_for(struct edit *ed, int n, const char *line)
{
	size_t len = strcspn(line, " \t=");

	for (int i = n - 1; i >= 0; i--)
		if (strlen(ed[i].name) == len && strncmp(ed[i].name, line, len) == 0)
			return &ed[i];
	return NULL;
}

static void put_setting(FILE *out, const struct edit *e)
{
	if (e->value == NULL)
		return;
	if (*e->value)
		fprintf(out, "%s = %s\n", e->name, e->value);
	else
		fprintf(out, "%s =\n", e->name);
}

/* Copy main.cf to out with the edits applied (Postfix's postconf -e). */
static int rewrite(FILE *in, FILE *out, struct edit *ed, int n)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	bool skipping = false, newline = true;

	while (in && (len = getline(&line, &cap, in)) >= 0) {
		struct edit *e;

		newline = len > 0 && line[len - 1] == '\n';
		switch (cf_classify_line(line)) {
		case CFL_CONT:
			if (skipping)
				continue;
			break;
		case CFL_START:
			skipping = false;
			if ((e = edit_for(ed, n, line)) != NULL) {
				skipping = true;
				if (!e->done)
					put_setting(out, e);
				e->done = true;
				newline = true;
				continue;
			}
			break;
		default:
			break;
		}
		fputs(line, out);
	}
	free(line);
	if (in && ferror(in))
		return -1;
	for (int i = 0; i < n; i++) {
		if (ed[i].done || ed[i].value == NULL)
			continue;
		if (!newline)
			fputc('\n', out);
		newline = true;
		put_setting(out, &ed[i]);
		ed[i].done = true;
	}
	return 0;
}

/* Write main.cf anew through a temporary file and rename(2). */
static int replace_main(struct conf_ctx *c, struct edit *ed, int n)
{
	char *tmp = cf_display_path(c->config_dir, ".main.cf.XXXXXX");
	FILE *in = fopen(c->main_path, "r"), *out = NULL;
	struct stat st;
	int fd = -1, rc = -1;

	if (in == NULL && errno != ENOENT) {
		fprintf(stderr, "sluice conf: cannot read %s: %s\n", c->main_path,
			strerror(errno));
		goto out;
	}
	if (tmp == NULL || (fd = mkstemp(tmp)) < 0 || (out = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "sluice conf: cannot create a file beside %s: %s\n",
			c->main_path, strerror(errno));
		goto out;
	}
	fd = -1;
	if (in && fstat(fileno(in), &st) == 0) {
		(void)!fchown(fileno(out), st.st_uid, st.st_gid);
		fchmod(fileno(out), st.st_mode & 07777);
	} else {
		fchmod(fileno(out), 0644);
	}
	if (rewrite(in, out, ed, n) < 0 || fflush(out) != 0 ||
	    fsync(fileno(out)) < 0 || ferror(out)) {
		fprintf(stderr, "sluice conf: cannot write %s: %s\n", tmp,
			strerror(errno));
		goto out;
	}
	if (rename(tmp, c->main_path) < 0) {
		fprintf(stderr, "sluice conf: cannot rename %s to %s: %s\n", tmp,
			c->main_path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (out)
		fclose(out);
	if (in)
		fclose(in);
	if (rc < 0 && tmp)
		unlink(tmp);
	free(tmp);
	return rc;
}

static int edit_main(struct conf_ctx *c, int argc, char **argv)
{
	struct edit *ed = calloc((size_t)argc, sizeof *ed);
	int n, rc = 1;

	if (ed == NULL)
		return 1;
	if ((n = parse_edits(c, argc, argv, ed)) >= 0) {
		/* An edit superseded by a later one of the same name writes
		 * nothing (edit_for() finds the later one first). */
		for (int i = 0; i < n; i++)
			if (ed[i].done)
				ed[i].value = NULL;
		for (int i = 0; i < n; i++)
			ed[i].done = false;
		rc = replace_main(c, ed, n) < 0 ? 1 : 0;
	}
	free(ed);
	return rc;
}

/* ---- the command ----------------------------------------------------------- */

static int load(struct conf_ctx *c)
{
	struct diag quiet;

	diag_init(&c->d);
	diag_init(&quiet);
	/* Reads main.cf for plugin parameters and -x; its complaints are
	 * for `sluice check`. */
	c->sc = config_load_flags(c->config_dir, &quiet,
				  CONFIG_LENIENT | CONFIG_BEST_EFFORT);
	diag_free(&quiet);
	c->main_path = cf_display_path(c->config_dir, "main.cf");
	if (c->main_path == NULL)
		return -1;
	if (cf_read_main(c->main_path, &c->mf, &c->d, DIAG_WARNING) < 0 &&
	    c->mf.unreadable) {
		if (errno == ENOENT && (c->o.mode == SHOW_DEFAULTS || c->o.edit))
			return 0;       /* -d needs no main.cf; -e creates it */
		fprintf(stderr, "sluice conf: cannot read %s: %s\n",
			c->main_path, strerror(errno));
		return -1;
	}
	return 0;
}

int cmd_conf(const char *config_dir, int argc, char **argv)
{
	struct conf_ctx c = { .config_dir = config_dir };
	int rc = 0;

	if (parse_opts(argc, argv, &c.o) < 0)
		return 2;
	if (c.o.docs)
		return show_docs();
	if (load(&c) < 0)
		rc = 1;
	else if (c.o.edit || c.o.remove)
		rc = edit_main(&c, argc, argv);
	else if (c.o.first_arg < argc)
		rc = show_named(&c, argc, argv);
	else if (c.o.mode == SHOW_SET)
		show_set(&c);
	else
		show_all(&c);
	if (fflush(stdout) != 0)
		rc = 1;
	cf_file_free(&c.mf);
	config_free(c.sc);
	diag_free(&c.d);
	free(c.main_path);
	return rc;
}
