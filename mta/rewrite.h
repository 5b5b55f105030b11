/*
 * rewrite.h - envelope address rewriting, the part of Postfix's
 * cleanup(8) and trivial-rewrite(8) that runs before routing:
 * canonical form (myorigin, append_dot_mydomain), canonical_maps,
 * sender_canonical_maps, recipient_canonical_maps, and virtual alias
 * expansion (virtual_alias_maps).
 *
 * The queue manager calls these for each message it picks up, in this
 * order: rewrite_sender() on the envelope sender, rewrite_recipient()
 * then virtual_alias_expand() on each recipient, then resolve_route()
 * (resolve.h) on each address that comes out; route_recipient() in
 * resolve.h does the recipient chain in one call.
 *
 * Addresses are in the queue's form (the local part as the client sent
 * it, quoted if it was quoted; no <>).  The functions have no state of
 * their own: tables come from map.h, parameters from the config given.
 *
 * Return values: 0, or 4 with `why` set to "4.x.x text" when a table
 * failed or a limit was hit (Postfix defers the message: "try again
 * later").  Results are malloc'ed and belong to the caller.
 */
#ifndef SLUICE_REWRITE_H
#define SLUICE_REWRITE_H

#include <stddef.h>

struct config;

/* Postfix's rewrite in the "local" context: an unqualified address gets
 * "@$myorigin" (append_at_myorigin), a domain without a dot gets
 * ".$mydomain" when append_dot_mydomain = yes, one trailing dot of the
 * domain goes.  "" stays "".  Never fails. */
char *rewrite_canonical_form(const struct config *c, const char *addr);

/* Canonical form, then sender_canonical_maps, then canonical_maps, each
 * applied until it no longer changes the address (at most 10 rounds).
 * The null sender "" is left alone.  *out is set when 0 is returned. */
int rewrite_sender(const struct config *c, const char *addr, char **out,
		   char *why, size_t whylen);
/* The same with recipient_canonical_maps, then canonical_maps. */
int rewrite_recipient(const struct config *c, const char *addr, char **out,
		      char *why, size_t whylen);

/*
 * virtual_alias_maps expansion of one (rewritten) recipient, recursive
 * and one-to-many, as Postfix's cleanup: each result address is expanded
 * again; an address that lists itself among its results is kept and not
 * expanded again; unmapped addresses stay as they are.  Limits:
 * virtual_alias_recursion_limit (depth), virtual_alias_expansion_limit
 * (addresses), virtual_alias_address_length_limit; a loop (a -> b -> a)
 * is caught as soon as it repeats.  Any of these, or a table failure,
 * returns 4 with why "4.6.0 Alias expansion error" (details are logged).
 *
 * On 0, *out is a NULL-terminated array of *n >= 1 addresses, duplicates
 * removed (case-insensitively), first occurrence first; free it with
 * virtual_alias_free().  An address without a mapping expands to itself.
 */
int virtual_alias_expand(const struct config *c, const char *addr,
			 char ***out, int *n, char *why, size_t whylen);
void virtual_alias_free(char **list);

#endif
