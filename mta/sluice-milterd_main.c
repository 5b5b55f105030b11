/*
 * sluice-milterd_main.c - sluice-milterd: the plugins named in
 * sluice_plugins, hosted as a milter (libmilter), so a Postfix or Sendmail
 * that stays can use sluice's filters.
 *
 *   sluice-milterd [-c CONFIG_DIR] [-p inet:PORT@ADDR | unix:/path] [-v]
 *
 * Reads the same main.cf as sluice (sluice_plugins, plugin_directory, the
 * plugins' parameters and tables), loads and initialises the plugins,
 * starts the event loop thread that runs them (milterd_loop.c) with DNS
 * and a job pool, and serves the milter protocol (smfi_register,
 * smfi_setconn, smfi_main) in the foreground, logging to stderr, or to
 * maillog_file when that is set.  docs/milterd.md.
 *
 * Promises: exits non-zero with a message when the configuration, a
 * plugin or the socket is unusable; SIGTERM/SIGINT stop it cleanly
 * (libmilter's own signal handling).
 */
#include <event2/event.h>
#include <event2/thread.h>
#include <libmilter/mfapi.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dns.h"
#include "filter_chain.h"
#include "jobpool.h"
#include "log.h"
#include "milterd.h"
#include "plugin_loader.h"
#include "plugin_names.h"
#include "tool_common.h"

static int usage(void)
{
	fprintf(stderr, "usage: sluice-milterd [-c CONFIG_DIR] "
		"[-p inet:PORT@ADDRESS | unix:/path] [-v]\n");
	return 2;
}

static int start_plugins(const struct sluice_config *sc)
{
	char **names = plugin_names(sc->main);
	int rc = plugins_load(cfg_str(sc->main, "plugin_directory"), names);

	cfg_list_free(names);
	return rc;
}

/* The loop and what runs in it: DNS, the job pool, the plugins.  The
 * threads started here inherit a mask blocking the signals libmilter's
 * signal thread waits for (it stops smfi_main cleanly); delivered to
 * one of them instead, SIGTERM would kill the process outright. */
static int start_loop(const struct sluice_config *sc)
{
	struct event_base *base;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (evthread_use_pthreads() < 0 || (base = event_base_new()) == NULL) {
		msg_error("cannot create the event loop");
		return -1;
	}
	filter_set_event_base(base);
	if (dns_start_config(base, sc->main) < 0) {
		msg_error("cannot start the DNS resolver");
		return -1;
	}
	if (jobpool_start(base, (int)cfg_int(sc->main,
					     "milterd_job_threads")) < 0) {
		msg_error("cannot start the job threads");
		return -1;
	}
	if (start_plugins(sc) < 0) {
		msg_error("cannot load the plugins named in sluice_plugins");
		return -1;
	}
	if (milterd_spool_init(cfg_str(sc->main, "milterd_spool_directory")) < 0)
		return -1;
	return milterd_loop_start(base, cfg_time(sc->main, "milterd_plugin_timeout"));
}

int main(int argc, char **argv)
{
	const char *config_dir = SLUICE_CONFIG_DIR, *listen = NULL;
	struct sluice_config *sc;
	int ch, verbose = 0;

	while ((ch = getopt(argc, argv, "c:p:v")) != -1) {
		switch (ch) {
		case 'c': config_dir = optarg; break;
		case 'p': listen = optarg; break;
		case 'v': verbose++; break;
		default: return usage();
		}
	}
	if (optind != argc)
		return usage();
	if ((sc = tool_load_config_strict(config_dir)) == NULL) {
		fprintf(stderr, "sluice-milterd: the configuration has errors; "
			"\"sluice check\" lists them\n");
		return 1;
	}
	sluice_conf = sc;
	/* a foreground program: stderr, unless maillog_file says where */
	if (*cfg_str(sc->main, "maillog_file"))
		tool_open_log(sc, "milterd");
	else
		log_open("milterd", LOG_DEST_STDERR, NULL);
	if (verbose)
		log_set_verbose(verbose);
	if (listen == NULL)
		listen = cfg_str(sc->main, "milterd_listen");
	if (start_loop(sc) < 0)
		return 1;
	if (smfi_setconn((char *)listen) != MI_SUCCESS
	    || smfi_settimeout((int)cfg_time(sc->main, "milterd_timeout"))
	       != MI_SUCCESS
	    || smfi_register(*milterd_descriptor()) != MI_SUCCESS
	    || smfi_opensocket(1) != MI_SUCCESS) {
		msg_error("cannot listen on %s", listen);
		return 1;
	}
	msg_info("listening on %s, %d plugin%s", listen, plugin_count(),
		 plugin_count() == 1 ? "" : "s");
	if (smfi_main() != MI_SUCCESS)
		return 1;
	msg_info("stopped");
	return 0;
}
