/*
 * tool_common.c - configuration and logging for the command-line tools
 * (see tool_common.h).
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "log.h"
#include "tool_common.h"

struct sluice_config *tool_load_config(const char *config_dir,
				       const char *prog)
{
	struct sluice_config *sc;
	struct diag d;

	diag_init(&d);
	sc = config_load_flags(config_dir, &d, CONFIG_LENIENT
			       | CONFIG_BEST_EFFORT);
	if (sc == NULL) {
		diag_print(&d, stderr);
		fprintf(stderr, "%s: cannot read the configuration in %s\n",
			prog, config_dir);
	}
	diag_free(&d);
	return sc;
}

struct sluice_config *tool_load_config_strict(const char *config_dir)
{
	struct sluice_config *sc;
	struct diag d;

	diag_init(&d);
	sc = config_load(config_dir, &d);
	diag_print(&d, stderr);
	diag_free(&d);
	return sc;
}

/* Can this user append to the file (without creating it)? */
static int appendable(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

void tool_open_log(const struct sluice_config *sc, const char *service)
{
	const char *file = cfg_str(sc->main, "maillog_file");

	(void) log_set_syslog(cfg_str(sc->main, "syslog_name"),
			      cfg_str(sc->main, "syslog_facility"));
	if (*file && appendable(file))
		log_open(service, LOG_DEST_FILE, file);
	else
		log_open(service, LOG_DEST_SYSLOG, NULL);
}
