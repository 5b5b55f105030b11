/*
 * check_cmd.c - `sluice check`: validate the configuration.
 *
 * Loads the configuration as `sluice run` would (config_load is strict),
 * then looks at what the loader does not: the queue, plugin and log
 * paths, and the mail_owner account.  Every problem is printed to stderr
 * as "file:line: problem; fix", main.cf's first, then master.cf's, each
 * in line order; warnings start with "warning: ".
 *
 * The promise: exit status 1 when there is any error, 0 otherwise, and
 * on a clean configuration no output at all.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_warnings.h"
#include "commands.h"
#include "config.h"
#include "milter.h"
#include "plugin_loader.h"
#include "plugin_names.h"
#include "tls_server.h"
#include "sasl_server.h"

struct place {
	const char *file;       /* where the parameter is set, else main.cf */
	int line;
	const char *dflt;       /* " (the default)" or "" */
};

static struct place where(const struct config *c, const char *name,
			  const char *main_path)
{
	struct place p;

	p.file = cfg_where(c, name, &p.line);
	p.dflt = p.file ? "" : " (the default)";
	if (p.file == NULL)
		p.file = main_path;
	return p;
}

/* The directory part of an absolute path, in buf. */
static const char *parent_of(const char *path, char *buf, size_t size)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL || slash == path)
		snprintf(buf, size, "/");
	else
		snprintf(buf, size, "%.*s", (int)(slash - path), path);
	return buf;
}

/*
 * What queue_directory and plugin_directory share: DIR, the value of the
 * parameter NAME, must be a directory we can read and search.  Reports
 * "NAME "DIR"[ (the default)] is not a directory; NOT_DIR_FIX" or
 * "... is not readable (why); UNREADABLE_FIX" and returns 0, or returns
 * -1 with errno from stat() when DIR cannot be examined, which each
 * caller words itself.
 */
static int check_dir(struct diag *d, const struct place *p, const char *name,
		     const char *dir, const char *not_dir_fix,
		     const char *unreadable_fix)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode))
		diag_add(d, DIAG_ERROR, p->file, p->line,
			 "%s \"%s\"%s is not a directory; %s",
			 name, dir, p->dflt, not_dir_fix);
	else if (access(dir, R_OK | X_OK) < 0)
		diag_add(d, DIAG_ERROR, p->file, p->line,
			 "%s \"%s\"%s is not readable (%s); %s",
			 name, dir, p->dflt, strerror(errno), unreadable_fix);
	return 0;
}

/* ---- queue_directory --------------------------------------------------- */

static void check_queue_parent(struct diag *d, const struct place *p,
			       const char *q)
{
	char parent[4096];
	struct stat st;

	parent_of(q, parent, sizeof parent);
	if (stat(parent, &st) < 0)
		diag_add(d, DIAG_ERROR, p->file, p->line,
			 "queue_directory \"%s\"%s cannot be created: its parent %s: %s; create the parent, or point queue_directory elsewhere",
			 q, p->dflt, parent, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		diag_add(d, DIAG_ERROR, p->file, p->line,
			 "queue_directory \"%s\"%s cannot be created: its parent %s is not a directory; point queue_directory elsewhere",
			 q, p->dflt, parent);
	else if (access(parent, W_OK | X_OK) < 0)
		diag_add(d, DIAG_ERROR, p->file, p->line,
			 "queue_directory \"%s\"%s cannot be created: its parent %s is not writable (%s); create the queue directory yourself, or point queue_directory elsewhere",
			 q, p->dflt, parent, strerror(errno));
}

static void check_queue(struct diag *d, const struct config *c,
			const char *main_path)
{
	struct place p = where(c, "queue_directory", main_path);
	const char *q = cfg_str(c, "queue_directory");

	if (check_dir(d, &p, "queue_directory", q,
		      "point queue_directory at a directory (sluice creates it when missing)",
		      "fix its permissions, or point queue_directory elsewhere") == 0)
		return;
	if (errno == ENOENT)
		check_queue_parent(d, &p, q);
	else
		diag_add(d, DIAG_ERROR, p.file, p.line,
			 "queue_directory \"%s\"%s cannot be examined: %s; fix the permissions of the directories above it",
			 q, p.dflt, strerror(errno));
}

/* ---- plugin_directory -------------------------------------------------- */

static void check_plugin_dir(struct diag *d, const struct config *c,
			     const char *main_path)
{
	static const char fix[] =
		"point plugin_directory at the directory holding the plugins (NAME.so)";
	struct place p = where(c, "plugin_directory", main_path);
	const char *dir = cfg_str(c, "plugin_directory");
	char **plugins = plugin_names(c);
	bool used = plugins[0] != NULL;

	cfg_list_free(plugins);
	if (!used)
		return;         /* no plugin: the directory does not matter */
	if (check_dir(d, &p, "plugin_directory", dir, fix,
		      "fix its permissions") < 0)
		diag_add(d, DIAG_ERROR, p.file, p.line,
			 "plugin_directory \"%s\"%s: %s; %s",
			 dir, p.dflt, strerror(errno), fix);
}

/* ---- maillog_file --------------------------------------------------------- */

static void check_maillog(struct diag *d, const struct config *c,
			  const char *main_path)
{
	struct place p = where(c, "maillog_file", main_path);
	const char *file = cfg_str(c, "maillog_file");
	char dir[4096];
	struct stat st;

	if (*file == 0)
		return;         /* syslog */
	if (stat(file, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			diag_add(d, DIAG_ERROR, p.file, p.line,
				 "maillog_file \"%s\" is a directory; name a file in it, e.g. \"%s/sluice.log\"",
				 file, file);
		else if (access(file, W_OK) < 0)
			diag_add(d, DIAG_ERROR, p.file, p.line,
				 "maillog_file \"%s\" is not writable (%s); fix its permissions, or choose another file",
				 file, strerror(errno));
		return;
	}
	parent_of(file, dir, sizeof dir);
	if (stat(dir, &st) < 0)
		diag_add(d, DIAG_ERROR, p.file, p.line,
			 "maillog_file \"%s\" cannot be created: its directory %s: %s; create the directory, or choose another file",
			 file, dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) < 0)
		diag_add(d, DIAG_ERROR, p.file, p.line,
			 "maillog_file \"%s\" cannot be created: its directory %s is not writable; fix its permissions, or choose another file",
			 file, dir);
}

/* ---- mail_owner (only matters when started as root) ---------------------- */

static void check_mail_owner(struct diag *d, const struct config *c,
			     const char *main_path)
{
	struct place p = where(c, "mail_owner", main_path);
	const char *owner = cfg_str(c, "mail_owner");
	struct passwd *pw;

	if (geteuid() != 0)
		return;         /* not root: sluice runs as the invoking user */
	if ((pw = getpwnam(owner)) == NULL)
		diag_add(d, DIAG_ERROR, p.file, p.line,
			 "mail_owner \"%s\"%s is not a user on this system; create it (useradd --system %s) or set mail_owner to an unprivileged user",
			 owner, p.dflt, owner);
	else if (pw->pw_uid == 0)
		diag_add(d, DIAG_ERROR, p.file, p.line,
			 "mail_owner \"%s\" is the super-user; set mail_owner to an unprivileged user, the workers run as it",
			 owner);
}

/* ---- output order ----------------------------------------------------------- */

struct sort_key {
	int rank, line, index;
};

/* main.cf first, master.cf next, the rest last; then by line. */
static struct sort_key key_of(const struct diag_entry *e, int index,
			      const char *main_path, const char *master_path)
{
	struct sort_key k = { 2, 0, index };
	const char *paths[2] = { main_path, master_path };

	for (int r = 0; r < 2; r++) {
		size_t n = strlen(paths[r]);

		if (strncmp(e->text, paths[r], n) == 0 && e->text[n] == ':') {
			k.rank = r;
			k.line = atoi(e->text + n + 1);
		}
	}
	return k;
}

static bool before(struct sort_key a, struct sort_key b)
{
	if (a.rank != b.rank)
		return a.rank < b.rank;
	if (a.line != b.line)
		return a.line < b.line;
	return a.index < b.index;
}

static void sort_diags(struct diag *d, const char *main_path,
		       const char *master_path)
{
	for (int i = 1; i < d->n; i++) {
		struct diag_entry e = d->v[i];
		struct sort_key k = key_of(&e, i, main_path, master_path);
		int j = i;

		while (j > 0 && before(k, key_of(&d->v[j - 1], j - 1, main_path,
						 master_path))) {
			d->v[j] = d->v[j - 1];
			j--;
		}
		d->v[j] = e;
	}
}

int cmd_check(const char *config_dir, int argc, char **argv)
{
	struct diag d;
	struct sluice_config *sc;
	char *main_path = cf_display_path(config_dir, "main.cf");
	char *master_path = cf_display_path(config_dir, "master.cf");
	int rc;

	if (argc > 1) {
		fprintf(stderr, "usage: sluice [-c CONFIG_DIR] check\n");
		free(main_path);
		free(master_path);
		return 2;
	}
	if (main_path == NULL || master_path == NULL) {
		fprintf(stderr, "sluice check: out of memory\n");
		return 1;
	}
	diag_init(&d);
	sc = config_load_flags(config_dir, &d, CONFIG_BEST_EFFORT);
	if (sc && sc->main) {
		check_queue(&d, sc->main, main_path);
		check_plugin_dir(&d, sc->main, main_path);
		check_maillog(&d, sc->main, main_path);
		check_mail_owner(&d, sc->main, main_path);
		check_warnings(&d, sc, main_path);
		tls_server_check(&d, sc, main_path);   /* certificates, keys */
		sasl_check(&d, sc, main_path, DIAG_ERROR);
		milter_check(&d, sc, main_path);       /* smtpd_milters, ... */
		plugins_check(&d, sc, main_path);      /* plugins' own values */
	}
	config_free(sc);
	sort_diags(&d, main_path, master_path);
	diag_print(&d, stderr);
	rc = d.errors > 0 ? 1 : 0;
	diag_free(&d);
	free(main_path);
	free(master_path);
	return rc;
}
