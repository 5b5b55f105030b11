/*
 * params_tools.c - the main.cf parameters of queue tools, sendmail and pickup (queue_cmd.c, sendmail.c, pickup.c):
 * name, type, Postfix's default, one line of description.  Part of the one
 * registry (param_table.c); keep in name order, end with { NULL }.
 */
#include "config.h"

const struct param_def params_tools[] = {
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
