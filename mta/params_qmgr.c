/*
 * params_qmgr.c - the main.cf parameters of the queue manager (qmgr*.c):
 * name, type, Postfix's default, one line of description.  Part of the one
 * registry (param_table.c); keep in name order, end with { NULL }.
 *
 * Only what the queue manager honours is here.  Postfix's per-transport
 * parameters (TRANSPORT_destination_concurrency_limit, ...) exist for
 * every transport master.cf declares; config.c accepts them by the
 * suffixes below, and only local's, whose defaults differ, are registered.
 */
#include <stddef.h>

#include "config.h"

const char *const transport_param_suffixes[] = {
	"_destination_concurrency_limit",
	"_destination_recipient_limit",
	"_initial_destination_concurrency",
	NULL
};

const struct param_def params_qmgr[] = {
	{ "bounce_queue_lifetime", PT_TIME, "5d",
	  "How long a bounce or other message from the null sender may stay deferred before it is given up.", NULL },
	{ "default_destination_concurrency_limit", PT_INT, "20",
	  "The most parallel deliveries to one destination (transport and next hop); TRANSPORT_destination_concurrency_limit overrides it.", NULL },
	{ "default_destination_recipient_limit", PT_INT, "50",
	  "The most recipients in one delivery; TRANSPORT_destination_recipient_limit overrides it.", NULL },
	{ "default_process_limit", PT_INT, "100",
	  "The most parallel deliveries of one transport whose master.cf maxproc column is \"-\".", NULL },
	{ "defer_transports", PT_LIST, "",
	  "Transports that deliver nothing until sluice queue flush (or sendmail -q): their mail is deferred.", NULL },
	{ "delay_logging_resolution_limit", PT_INT, "2",
	  "The most digits after the decimal point in the delay= and delays= values of delivery log lines (0 to 6).", NULL },
	{ "delay_warning_time", PT_TIME, "0h",
	  "After how long in the queue the sender gets one \"delayed mail\" notice (0: never).", NULL },
	{ "initial_destination_concurrency", PT_INT, "5",
	  "The parallel deliveries to a destination to start with; it grows to the limit while deliveries succeed.", NULL },
	{ "local_destination_concurrency_limit", PT_INT, "2",
	  "The most parallel local deliveries to one recipient.", NULL },
	{ "local_destination_recipient_limit", PT_INT, "1",
	  "The most recipients in one local delivery.", NULL },
	{ "maximal_backoff_time", PT_TIME, "4000s",
	  "The longest time between two attempts to deliver a deferred message.", NULL },
	{ "maximal_queue_lifetime", PT_TIME, "5d",
	  "How long a message may stay deferred before it is returned to the sender as undeliverable.", NULL },
	{ "minimal_backoff_time", PT_TIME, "300s",
	  "The shortest time between two attempts to deliver a deferred message; also how long a dead destination is left alone.", NULL },
	{ "qmgr_message_active_limit", PT_INT, "20000",
	  "The most messages the queue manager holds in active/ at once.", NULL },
	{ "queue_run_delay", PT_TIME, "300s",
	  "How often the queue manager scans deferred/ for messages whose retry time has come.", NULL },
	{ "service_name", PT_STRING, "",
	  "The master.cf name of the service whose -o settings are being read (read-only), as in -o syslog_name=postfix/$service_name.", NULL },
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
