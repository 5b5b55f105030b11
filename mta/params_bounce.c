/*
 * params_bounce.c - the main.cf parameters of bounces and DSN notices (bounce*.c):
 * name, type, Postfix's default, one line of description.  Part of the one
 * registry (param_table.c); keep in name order, end with { NULL }.
 */
#include "config.h"

const struct param_def params_bounce[] = {
	{ "2bounce_notice_recipient", PT_STRING, "postmaster",
	  "The recipient of undeliverable bounces (notify_classes 2bounce or bounce): the whole bounce, with its reasons.", NULL },
	{ "bounce_notice_recipient", PT_STRING, "postmaster",
	  "The recipient of postmaster copies (headers only) of non-delivery notices (notify_classes bounce).", NULL },
	{ "bounce_size_limit", PT_SIZE, "50000",
	  "The largest original message in bytes returned whole in a non-delivery notice; larger ones return their headers only (0: no limit).", NULL },
	{ "delay_notice_recipient", PT_STRING, "postmaster",
	  "The recipient of postmaster copies (headers only) of delay notices (notify_classes delay).", NULL },
	{ "double_bounce_sender", PT_STRING, "double-bounce",
	  "The sender of postmaster notices (@$myhostname is appended); a notice from it that fails is discarded, so bounces never loop.", NULL },
	{ "error_notice_recipient", PT_STRING, "postmaster",
	  "The recipient of postmaster notices about resource, software, policy, protocol and data problems (notify_classes).", NULL },
	{ "notify_classes", PT_LIST, "resource, software",
	  "The problems reported to the postmaster: bounce, 2bounce, data, delay, policy, protocol, resource, software.", NULL },
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
