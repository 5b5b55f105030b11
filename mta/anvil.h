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

/* How many processes can count at once (workers of all generations). */
#define ANVIL_MAX_OWNERS 128

/* In the master, before any worker exists: map the table, `slots` slots
 * per owner.  0, or -1 with errno set. */
int anvil_init(int slots);
/* In a worker, after fork: count into region `owner` (0 ..
 * ANVIL_MAX_OWNERS - 1), which nobody else writes. */
void anvil_attach(int owner);
/* In the master, once the process that owned `owner` has been reaped:
 * forget its counts (a killed worker never disconnected its clients). */
void anvil_release(int owner);

/* Count a new connection from addr (numeric text); returns the number of
 * connections from addr across all workers, this one included.  Call
 * from one thread per process (the event loop). */
int anvil_connect(const char *addr);
void anvil_disconnect(const char *addr);

#endif
