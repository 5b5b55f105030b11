/*
 * privilege.h - how a child of the master settles in: enter the queue
 * directory while still privileged (so mail_owner needs no search
 * permission above it, as Postfix's daemons do), then become mail_owner
 * for good.  Shared by the smtpd workers, the qmgr and the delivery
 * process.
 */
#ifndef SLUICE_PRIVILEGE_H
#define SLUICE_PRIVILEGE_H

#include <stdbool.h>
#include <sys/types.h>

struct config;

/* chdir(queue_directory) or msg_fatal. */
void privilege_enter_queue_directory(const struct config *c);
/* With `drop`: setgid, initgroups, setuid to user; msg_fatal unless
 * setuid(0) fails afterwards.  Without: nothing (not started as root). */
void privilege_drop(bool drop, uid_t uid, gid_t gid, const char *user);

#endif
