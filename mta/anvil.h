/*
 * anvil.h - connection counts and event rates per client, shared by all
 * workers.
 *
 * Postfix's anvil server keeps per-client counters for
 * smtpd_client_connection_count_limit and the per-time-unit rates
 * (smtpd_client_auth_rate_limit, ...); sluice keeps them in a small
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

/* The events counted per (service, client) and time unit, as Postfix's
 * anvil counts them. */
enum anvil_event {
	ANVIL_EV_CONN,			/* smtpd_client_connection_rate_limit */
	ANVIL_EV_MAIL,			/* smtpd_client_message_rate_limit */
	ANVIL_EV_RCPT,			/* smtpd_client_recipient_rate_limit */
	ANVIL_EV_AUTH,			/* smtpd_client_auth_rate_limit */
	ANVIL_EV_COUNT
};

/* Count one `ev` from addr on `service` in the current time unit of
 * `unit` seconds (anvil_rate_time_unit); returns how many such events
 * all workers counted in this unit, this one included.  Without a table
 * (or with no room) it returns 1: the limits fail open. */
int anvil_rate(const char *service, const char *addr, enum anvil_event ev,
	       long long unit);

#endif
