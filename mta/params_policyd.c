/*
 * params_policyd.c - the main.cf parameters of sluice-policyd
 * (policy/policyd_main.c), the policy server hosting the restriction
 * engine and the bundled plugins' restrictions for a Postfix that stays:
 * name, type, default, one line of description.  Part of the one registry
 * (param_table.c); keep in name order, end with { NULL }.
 */
#include "config.h"

const struct param_def params_policyd[] = {
	{ "policyd_client_limit", PT_INT, "1000",
	  "The most policy clients (smtpd processes) sluice-policyd serves at once; more are refused until one leaves.", NULL },
	{ "policyd_idle_timeout", PT_TIME, "3600s",
	  "How long sluice-policyd keeps a policy connection that sends nothing (Postfix closes its own after smtpd_policy_service_max_idle).", NULL },
	{ "policyd_job_threads", PT_INT, "4",
	  "Threads sluice-policyd runs plugins' blocking work on (the LMDB greylist store, sluice_job_submit).", NULL },
	{ "policyd_listen", PT_STRING, "inet:127.0.0.1:10040",
	  "Where sluice-policyd listens when -l is not given: inet:HOST:PORT or unix:/path.", NULL },
	{ "policyd_request_size_limit", PT_SIZE, "102400",
	  "The longest policy request (all its name=value lines) sluice-policyd accepts; a longer one closes the connection.", NULL },
	{ "policyd_restrictions", PT_STRING, "",
	  "The restrictions sluice-policyd evaluates for each policy request (any smtpd restriction, e.g. check_client_access, reject_rbl_client, check_greylist); empty answers DUNNO.", NULL },
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
