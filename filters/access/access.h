/*
 * access.h - what the access plugin's two halves share: the table checks
 * (access.c: check_client_access, check_helo_access, ...) and the
 * server checks that need DNS (access_server.c: check_*_a_access,
 * check_*_mx_access, check_*_ns_access).
 *
 * Internal to filters/access; the plugin talks to sluice only through
 * sluice_plugin.h.
 */
#ifndef SLUICE_FILTER_ACCESS_H
#define SLUICE_FILTER_ACCESS_H

#include <stdbool.h>

#include "sluice_plugin.h"

/* What a restriction looks at (Postfix's state->name, ->helo_name, ...). */
enum access_target {
	AT_CLIENT,              /* the verified client name, then address */
	AT_REVERSE_CLIENT,      /* the unverified reverse name, then address */
	AT_HELO,
	AT_SENDER,
	AT_RECIPIENT
};

/* The facts of one target in one session. */
struct access_facts {
	enum access_target target;
	const char *key;        /* name, helo name or address looked up */
	const char *addr;       /* the client address (client targets) */
	const char *reply_class;        /* "Client host", "Helo command", ... */
	char reply_name[600];   /* quoted in replies: "host[addr]", "a@b" */
};

/* Fill f for target w; false when the session has nothing to look at yet
 * (no HELO, no MAIL, ...): the restriction then has no opinion. */
bool access_facts(sluice_txn *t, enum access_target w, struct access_facts *f);

/* The table of a restriction's argument, or NULL after logging why. */
sluice_map *access_table(sluice_txn *t, const char *restriction,
			 const char *spec);

/* The answer when a table cannot be used: Postfix's "451 4.3.5 Server
 * configuration error". */
int access_config_error(sluice_txn *t);

/* Turn what a table found into the restriction's answer: the access(5)
 * action through sluice_action(), except that
 *  ACCESS_FORBID_OK: a permit (OK, RELAY, all digits) is refused as
 *      Postfix refuses it from *_mx/_ns/_a_access and
 *      check_reverse_client_hostname_access: logged, and "451 4.3.5
 *      Server configuration error";
 *  ACCESS_ROUTED_OK: a permit for a recipient address with
 *      sender-specified routing (%, !, or a second @ in the local part)
 *      counts as DUNNO unless allow_untrusted_routing = yes.
 * `found` is sluice_access_lookup's answer (1 found, -1 table failure). */
#define ACCESS_FORBID_OK        0x1
#define ACCESS_ROUTED_OK        0x2
int access_apply(sluice_txn *t, const char *restriction, int found,
		 const char *value, const struct access_facts *f,
		 unsigned flags);

/* The server checks (access_server.c): look up the target domain's MX
 * hosts (SLUICE_DNS_MX), name servers (SLUICE_DNS_NS) or its own
 * addresses (SLUICE_DNS_ADDRS, the *_a_access ones) and check their
 * names and addresses in the table.  Answers SLUICE_PENDING. */
int access_server_check(sluice_txn *t, const char *restriction,
			const char *spec, enum access_target w, int dns_type);
/* The close hook's part: forget a pending server check. */
void access_server_close(sluice_txn *t);

#endif
