/*
 * params_milterd.c - the main.cf parameters of sluice-milterd (the bundled
 * plugins hosted behind libmilter, plugins/milterd_*.c): name, type,
 * default, one line of description.  Part of the one registry
 * (param_table.c); keep in name order, end with { NULL }.
 *
 * sluice-milterd also reads sluice_plugins, plugin_directory, the
 * plugins' own parameters and the DNS settings, as an smtpd worker does.
 */
#include "config.h"

const struct param_def params_milterd[] = {
	{ "milterd_job_threads", PT_INT, "4",
	  "Threads sluice-milterd runs plugins' blocking jobs on (sluice_job_submit).", NULL },
	{ "milterd_listen", PT_STRING, "inet:10029@127.0.0.1",
	  "Where sluice-milterd listens, in libmilter's form: inet:PORT@ADDRESS, inet6:PORT@ADDRESS or unix:/path (-p overrides).", NULL },
	{ "milterd_plugin_timeout", PT_TIME, "300s",
	  "How long sluice-milterd waits for a plugin's verdict (a hook that returned PENDING); then the session is closed and the MTA gets 451 4.3.0.", NULL },
	{ "milterd_spool_directory", PT_STRING, "$queue_directory/milterd",
	  "Where sluice-milterd keeps the message being filtered while plugins' body hooks read it (removed at end of message); only sluice-milterd's own files live there.", NULL },
	{ "milterd_timeout", PT_TIME, "7210s",
	  "How long sluice-milterd waits on the MTA before dropping the connection (libmilter's smfi_settimeout).", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};
