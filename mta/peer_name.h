/*
 * peer_name.h - the SMTP client's host name, as Postfix determines it.
 *
 * The reverse name comes from a PTR lookup of the client's address; the
 * verified name is that name only when its forward lookup (A/AAAA) leads
 * back to the same address.  Either is "unknown" otherwise, as in
 * Postfix's "connect from unknown[192.0.2.1]".
 */
#ifndef SLUICE_PEER_NAME_H
#define SLUICE_PEER_NAME_H

struct peer_lookup;

/* name: verified client name or "unknown"; reverse: PTR name or "unknown". */
typedef void (*peer_name_fn)(void *arg, const char *name, const char *reverse);

/* Start the lookups.  The callback runs exactly once, perhaps before this
 * returns (then the result is NULL), unless cancelled. */
struct peer_lookup *peer_name_lookup(const char *addr, peer_name_fn fn,
				     void *arg);
void peer_name_cancel(struct peer_lookup *pl);

#endif
