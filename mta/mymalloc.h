/*
 * mymalloc.h - memory that is there or the process is gone, after
 * Postfix's mymalloc(3).
 *
 * Out of memory there is no sane way on for a daemon: these log and exit
 * (msg_fatal) instead of returning NULL, so their callers never check.
 * Unlike Postfix's mystrdup(), which panics on a null pointer, a NULL
 * string is copied as "".
 */
#ifndef SLUICE_MYMALLOC_H
#define SLUICE_MYMALLOC_H

#include <stddef.h>

/* A malloc'ed copy of s ("" for NULL); never NULL. */
char *mystrdup(const char *s);
/* n zeroed bytes (at least one); never NULL. */
void *mycalloc(size_t n);

#endif
