/*
 * params_qmgr.c - the main.cf parameters of the queue manager (qmgr*.c):
 * name, type, Postfix's default, one line of description.  Part of the one
 * registry (param_table.c); keep in name order, end with { NULL }.
 */
#include "config.h"

const struct param_def params_qmgr[] = {
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
