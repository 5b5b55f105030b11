/*
 * anvil.h - connection counts per client, shared by all workers.
 *
 * Postfix's anvil server keeps per-client counters for
 * smtpd_client_connection_count_limit; sluice keeps them in a small
 * shared-memory table that the master maps before forking workers, updated
 * with atomic operations, so a limit holds across workers and reloads.
 */
#ifndef SLUICE_ANVIL_H
#define SLUICE_ANVIL_H

/* In the master, before any worker exists.  0 or -1. */
int anvil_init(int slots);
/* Count a new connection from addr; returns the count including it. */
int anvil_connect(const char *addr);
void anvil_disconnect(const char *addr);

#endif
