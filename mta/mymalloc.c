/*
 * mymalloc.c - memory that is there or the process is gone (mymalloc.h).
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mymalloc.h"

char *mystrdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (p == NULL)
		msg_fatal("out of memory");
	return p;
}

void *mycalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (p == NULL)
		msg_fatal("out of memory");
	return p;
}
