/*
 * params_smtp_client.c - the main.cf parameters of the SMTP/LMTP client (smtp_client*.c):
 * name, type, Postfix's default, one line of description.  Part of the one
 * registry (param_table.c); keep in name order, end with { NULL }.
 */
#include "config.h"

const struct param_def params_smtp_client[] = {
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
