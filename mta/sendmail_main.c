/*
 * sendmail_main.c - build/bin/sendmail, the Sendmail-compatible way to
 * submit mail locally; also mailq and newaliases (links to it).
 *
 *   sendmail [-t] [-i|-oi] [-f SENDER] [-F NAME] [-v] [RECIPIENT...]
 *   sendmail -bp | mailq          the queue, as `sluice queue list`
 *   sendmail -bi | newaliases     build alias_database (sluice map build -a)
 *   sendmail -q                   flush, as `sluice queue flush`
 *   sendmail -bs                  SMTP on stdin and stdout
 *
 * The configuration directory is -C DIR (or the directory of -C FILE),
 * else $MAIL_CONFIG (Postfix's), else $SLUICE_CONFIG_DIR, else the
 * built-in default.  Options Sendmail and Postfix accept that mean
 * nothing here (-oX other than -oi, -B, -h, -L, -m, -n, -N, -O, -R, -U,
 * -V, -X, -qTIME...) are ignored, with a note on stderr under -v.
 * Exit status: sysexits.h codes (EX_USAGE, EX_TEMPFAIL, ...), 0 when the
 * message is safely in maildrop/.
 */
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "log.h"
#include "sendmail.h"
#include "tool_common.h"

/* Sendmail's and Postfix's options; '+': stop at the first recipient. */
#define SENDMAIL_OPTIONS "+A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:q::r:tvx"

#ifndef SLUICE_CONFIG_DIR
#define SLUICE_CONFIG_DIR "/etc/sluice"
#endif

static int usage(void)
{
	fprintf(stderr,
		"usage: sendmail [-t] [-i] [-f sender] [-F full_name] [-v] "
		"[recipient ...]\n"
		"       sendmail -bp | -bi | -bs | -q\n"
		"       mailq\n"
		"       newaliases\n");
	return EX_USAGE;
}

static void note(const struct sendmail_opts *o, int opt, const char *arg)
{
	if (o->verbose)
		fprintf(stderr, "sendmail: note: -%c%s ignored\n", opt,
			arg ? arg : "");
}

/* -C FILE means its directory, as Postfix reads it. */
static const char *config_dir_of(const char *arg)
{
	struct stat st;
	char *copy;

	if (stat(arg, &st) == 0 && !S_ISDIR(st.st_mode)
	    && (copy = strdup(arg)) != NULL)
		return dirname(copy);   /* kept for the process' life */
	return arg;
}

static int mode_b(struct sendmail_opts *o, const char *arg)
{
	if (strcmp(arg, "p") == 0)
		o->mode = SM_MAILQ;
	else if (strcmp(arg, "i") == 0)
		o->mode = SM_NEWALIASES;
	else if (strcmp(arg, "s") == 0)
		o->mode = SM_SMTP;
	else if (strcmp(arg, "m") == 0)
		o->mode = SM_DELIVER;
	else {
		fprintf(stderr, "sendmail: -b%s is not supported\n", arg);
		return -1;
	}
	return 0;
}

/* One option; -1 on a usage error. */
static int option(struct sendmail_opts *o, int opt, const char *arg)
{
	switch (opt) {
	case 'b': return mode_b(o, arg);
	case 'C': o->config_dir = config_dir_of(arg); break;
	case 'F': o->fullname = arg; break;
	case 'f': case 'r': o->sender = arg; break;
	case 'i': o->ignore_dots = true; break;
	case 't': o->extract = true; break;
	case 'v': o->verbose++; break;
	case 'o':
		if (strcmp(arg, "i") == 0)
			o->ignore_dots = true;
		else
			note(o, opt, arg);
		break;
	case 'q':
		if (arg == NULL || *arg == 0)
			o->mode = SM_FLUSH;
		else
			note(o, opt, arg);
		break;
	case '?': return -1;
	default: note(o, opt, arg); break;
	}
	return 0;
}

static int parse_args(struct sendmail_opts *o, int argc, char **argv)
{
	const char *me = basename(argv[0]);
	int c;

	if (strcmp(me, "mailq") == 0)
		o->mode = SM_MAILQ;
	else if (strcmp(me, "newaliases") == 0)
		o->mode = SM_NEWALIASES;
	while ((c = getopt(argc, argv, SENDMAIL_OPTIONS)) != -1)
		if (option(o, c, optarg) < 0)
			return -1;
	o->rcpt = argv + optind;
	o->nrcpt = argc - optind;
	return 0;
}

static const char *default_config_dir(void)
{
	const char *env = getenv("MAIL_CONFIG");

	if (env == NULL || *env == 0)
		env = getenv("SLUICE_CONFIG_DIR");
	return env != NULL && *env != 0 ? env : SLUICE_CONFIG_DIR;
}

/* newaliases: build every hash: table of alias_database, as postalias. */
static int newaliases(const struct sendmail_opts *o,
		      const struct sluice_config *sc)
{
	const char *value = cfg_lookup(sc->main, "alias_database");
	char **tables = config_split_list(value ? value : "");
	char *argv[5] = { "map", "build", "-a", NULL, NULL };
	const char *name;
	int i, rc = 0, r;

	for (i = 0; tables != NULL && tables[i] != NULL; i++) {
		name = strchr(tables[i], ':');
		if (name != NULL && strncmp(tables[i], "hash:", 5) != 0) {
			note(o, 'b', "i: only hash: tables are built");
			continue;
		}
		argv[3] = (char *) (name != NULL ? name + 1 : tables[i]);
		if ((r = cmd_map(o->config_dir, 4, argv)) != 0)
			rc = r;
	}
	cfg_list_free(tables);
	return rc == 0 ? EX_OK : EX_SOFTWARE;
}

static int run(struct sendmail_opts *o, const struct sluice_config *sc)
{
	char *argv[3] = { "queue", NULL, NULL };

	switch (o->mode) {
	case SM_MAILQ:
		argv[1] = "list";
		return cmd_queue(o->config_dir, 2, argv);
	case SM_FLUSH:
		argv[1] = "flush";
		return cmd_queue(o->config_dir, 2, argv) == 0 ? EX_OK
			: EX_UNAVAILABLE;
	case SM_NEWALIASES:
		return newaliases(o, sc);
	case SM_SMTP:
		return sendmail_smtp(sc, o);
	default:
		return sendmail_deliver(sc, o);
	}
}

int main(int argc, char **argv)
{
	struct sendmail_opts o;
	struct sluice_config *sc;
	int rc;

	memset(&o, 0, sizeof o);
	o.config_dir = default_config_dir();
	if (parse_args(&o, argc, argv) < 0)
		return usage();
	if ((sc = tool_load_config(o.config_dir, "sendmail")) == NULL)
		return EX_CONFIG;
	tool_open_log(sc, "sendmail");
	if (o.verbose)
		log_set_verbose(o.verbose);
	rc = run(&o, sc);
	config_free(sc);
	return rc;
}
