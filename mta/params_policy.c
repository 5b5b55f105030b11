/*
 * params_policy.c - the main.cf parameters of the policy delegation
 * client (policy/policy_client.c, check_policy_service): name, type,
 * Postfix's default, one line of description.  Part of the one registry
 * (param_table.c); keep in name order, end with { NULL }.
 *
 * Each is the default of a per-service option of the same name without
 * the prefix ("check_policy_service { inet:host:port, timeout=10s }").
 */
#include "config.h"

const struct param_def params_policy[] = {
	{ "smtpd_policy_service_default_action", PT_STRING,
	  "451 4.3.5 Server configuration problem",
	  "The access(5) action taken when a policy server cannot be reached, times out or answers garbage.", NULL },
	{ "smtpd_policy_service_max_idle", PT_TIME, "300s",
	  "Close a policy server connection unused for this long.", NULL },
	{ "smtpd_policy_service_max_ttl", PT_TIME, "1000s",
	  "Close a policy server connection this long after it was opened, once it is idle.", NULL },
	{ "smtpd_policy_service_policy_context", PT_STRING, "",
	  "The policy_context attribute sent with every policy request (an opaque label for the server).", NULL },
	{ "smtpd_policy_service_request_limit", PT_INT, "0",
	  "Close a policy server connection after this many requests (0: no limit).", NULL },
	{ "smtpd_policy_service_retry_delay", PT_TIME, "1s",
	  "The delay between two attempts to talk to a policy server.", NULL },
	{ "smtpd_policy_service_timeout", PT_TIME, "100s",
	  "The time limit of one attempt to connect to, write to and read a reply from a policy server.", NULL },
	{ "smtpd_policy_service_try_limit", PT_INT, "2",
	  "The most attempts made for one policy request before the default action applies.", NULL },
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
