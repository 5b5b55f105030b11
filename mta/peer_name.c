/*
 * peer_name.c - reverse lookup with forward confirmation of a client's
 * address (Postfix's client name / reverse client name).
 *
 * Two steps through dns.c: PTR of the address, then the addresses of the
 * name found.  The name is only trusted when one of those addresses is the
 * client's; otherwise Postfix's warning "hostname X does not resolve to
 * address Y" is logged and the client is "unknown".  A name with
 * characters no host name has is never trusted.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "log.h"
#include "peer_name.h"

struct peer_lookup {
	char addr[64];
	char *reverse;
	peer_name_fn fn;
	void *arg;
	bool cancelled;
	bool running;           /* inside a start function */
	bool finished;
};

static bool plausible_hostname(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 255)
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
			return false;
	return true;
}

static void finish(struct peer_lookup *pl, const char *name)
{
	if (!pl->cancelled)
		pl->fn(pl->arg, name, pl->reverse ? pl->reverse : "unknown");
	pl->finished = true;
	if (!pl->running) {
		free(pl->reverse);
		free(pl);
	}
}

static void forward_done(void *arg, enum dns_status st, char **addrs, int n)
{
	struct peer_lookup *pl = arg;

	for (int i = 0; i < n; i++)
		if (strcmp(addrs[i], pl->addr) == 0) {
			finish(pl, pl->reverse);
			return;
		}
	if (st != DNS_TEMPFAIL)
		msg_warn("hostname %s does not resolve to address %s",
			 pl->reverse, pl->addr);
	finish(pl, "unknown");
}

static void reverse_done(void *arg, enum dns_status st, const char *name)
{
	struct peer_lookup *pl = arg;

	if (pl->cancelled || st != DNS_OK || name == NULL
	    || !plausible_hostname(name)) {
		finish(pl, "unknown");
		return;
	}
	if ((pl->reverse = strdup(name)) == NULL)
		msg_fatal("out of memory");
	for (char *p = pl->reverse; *p; p++)
		*p = tolower((unsigned char)*p);
	dns_lookup_addrs(pl->reverse, forward_done, pl);
}

struct peer_lookup *peer_name_lookup(const char *addr, peer_name_fn fn,
				     void *arg)
{
	struct peer_lookup *pl = calloc(1, sizeof *pl);

	if (pl == NULL)
		msg_fatal("out of memory");
	strncpy(pl->addr, addr, sizeof pl->addr - 1);
	pl->fn = fn;
	pl->arg = arg;
	pl->running = true;
	dns_lookup_ptr(addr, reverse_done, pl);
	pl->running = false;
	if (pl->finished) {
		free(pl->reverse);
		free(pl);
		return NULL;
	}
	return pl;
}

void peer_name_cancel(struct peer_lookup *pl)
{
	if (pl == NULL)
		return;
	/* The dns callback still arrives and frees pl, without calling back. */
	pl->cancelled = true;
}
