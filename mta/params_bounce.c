/*
 * params_bounce.c - the main.cf parameters of bounces and DSN notices (bounce*.c):
 * name, type, Postfix's default, one line of description.  Part of the one
 * registry (param_table.c); keep in name order, end with { NULL }.
 */
#include "config.h"

const struct param_def params_bounce[] = {
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
