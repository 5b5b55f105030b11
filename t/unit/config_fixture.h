/*
 * t/unit/config_fixture.h - the fixture shared by the unit tests that
 * load a configuration as the daemon does: main.cf and master.cf (and any
 * table they name) written into a temporary directory and read with
 * config_load().
 *
 * Header-only, like tap.h: each test is built on its own, so everything
 * here is static (and marked unused where a test may not need it).
 * Include it after tap.h.  It gives:
 *
 *	tmp			the temporary (configuration) directory
 *	fixture_tmpdir(prefix)	mkdtemp /tmp/PREFIX-XXXXXX into tmp
 *	write_file(name, text)	a file in tmp
 *	remove_file(name)	unlink a file of tmp
 *	remove_tmp()		remove tmp with all in it
 *	show_diags(d)		every diagnostic as a TAP comment
 *	load_config(main_cf, master_cf, clean)
 *				write both files and load tmp; NULL master_cf
 *				is one smtpd listener; the configuration, or
 *				a bail-out when it does not load (or, with
 *				clean, when loading says anything)
 *
 * It also stands in (weakly) for the plugin loader's registration of
 * plugin parameters, for a test linked without the plugins.
 *
 * A failure to set the fixture up is a TAP "Bail out!": the test cannot
 * say anything after it.
 */
#ifndef SLUICE_T_UNIT_CONFIG_FIXTURE_H
#define SLUICE_T_UNIT_CONFIG_FIXTURE_H

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"

static char tmp[256];

__attribute__((weak)) int plugins_register_params(const char *dir, char **names,
						  struct diag *d, const char *file,
						  int line)
{
	return 0;
}

static TAP_UNUSED void fixture_tmpdir(const char *prefix)
{
	snprintf(tmp, sizeof tmp, "/tmp/%s-XXXXXX", prefix);
	if (mkdtemp(tmp) == NULL) {
		printf("Bail out! mkdtemp %s\n", tmp);
		exit(1);
	}
}

static TAP_UNUSED void write_file(const char *name, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s", tmp, name);
	if ((fp = fopen(path, "w")) == NULL || fputs(text, fp) < 0 ||
	    fclose(fp) != 0) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
}

static TAP_UNUSED void remove_file(const char *name)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", tmp, name);
	unlink(path);
}

static int fixture_rm_one(const char *p, const struct stat *st, int flag,
			  struct FTW *f)
{
	return remove(p);
}

static TAP_UNUSED void remove_tmp(void)
{
	if (tmp[0])
		nftw(tmp, fixture_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static TAP_UNUSED void show_diags(const struct diag *d)
{
	for (int i = 0; i < d->n; i++)
		printf("#   diag: %s\n", d->v[i].text);
}

static TAP_UNUSED struct sluice_config *
load_config(const char *main_cf, const char *master_cf, bool clean)
{
	struct sluice_config *sc;
	struct diag d;

	write_file("main.cf", main_cf);
	write_file("master.cf", master_cf ? master_cf
		   : "smtp inet - - - - - smtpd\n");
	diag_init(&d);
	if ((sc = config_load(tmp, &d)) == NULL || (clean && d.n != 0)) {
		show_diags(&d);
		printf("Bail out! configuration does not load%s\n",
		       clean ? " cleanly" : "");
		exit(1);
	}
	diag_free(&d);
	return sc;
}

#endif
