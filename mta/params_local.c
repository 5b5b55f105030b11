/*
 * params_local.c - the main.cf parameters of local and pipe delivery (local_*.c, pipe_deliver.c):
 * name, type, Postfix's default, one line of description.  Part of the one
 * registry (param_table.c); keep in name order, end with { NULL }.
 */
#include "config.h"

const struct param_def params_local[] = {
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
