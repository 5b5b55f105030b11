/*
 * sluice.c - the `sluice` command: parse the global options and dispatch
 * to one of the commands in commands.h.
 *
 * Usage: sluice [-c CONFIG_DIR] [-v] COMMAND [args...]
 * The default CONFIG_DIR is SLUICE_CONFIG_DIR (/etc/sluice once installed),
 * or $SLUICE_CONFIG_DIR when set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "log.h"

#ifndef SLUICE_CONFIG_DIR
#define SLUICE_CONFIG_DIR "/etc/sluice"
#endif

static const struct {
	const char *name;
	int (*fn)(const char *, int, char **);
	const char *help;
} commands[] = {
	{ "run", cmd_run, "start in the foreground, logging to stderr" },
	{ "start", cmd_start, "start as a daemon" },
	{ "stop", cmd_stop, "stop the daemon (sessions finish first)" },
	{ "reload", cmd_reload, "re-read the configuration without dropping sessions" },
	{ "status", cmd_status, "say whether the daemon runs" },
	{ "check", cmd_check, "validate the configuration" },
	{ "conf", cmd_conf, "show or edit parameters, like postconf" },
	{ "map", cmd_map, "query, build and list lookup tables, like postmap" },
	{ "queue", cmd_queue, "list, show, hold, release, requeue, delete, flush queued mail" },
	{ "explain", cmd_explain, "replay a described transaction against the restrictions" },
	{ "tls", cmd_tls, "tls selfsigned: make a key and a self-signed certificate" },
	{ "version", cmd_version, "version and compiled-in features" },
};

static void usage(FILE *fp)
{
	fprintf(fp, "usage: sluice [-c CONFIG_DIR] [-v] COMMAND [args]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(fp, "  %-8s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
	const char *config_dir = getenv("SLUICE_CONFIG_DIR");
	int ch;

	if (config_dir == NULL || *config_dir == 0)
		config_dir = SLUICE_CONFIG_DIR;
	while ((ch = getopt(argc, argv, "+c:vh")) != -1) {
		switch (ch) {
		case 'c': config_dir = optarg; break;
		case 'v': log_set_verbose(log_verbose_level() + 1); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			return commands[i].fn(config_dir, argc - optind, argv + optind);
	fprintf(stderr, "sluice: unknown command '%s'; run 'sluice -h' for the list\n",
		argv[optind]);
	return 2;
}
