/*
 * rbl.h - what the rbl plugin's files share: the reply of a listing
 * (rbl_reply.c: default_rbl_reply / rbl_reply_maps, Postfix's $name
 * expansion) and the answer-address filter "=127.0.0.[2..11]"
 * (rbl_match.c, Postfix's ip_match syntax).
 *
 * Internal to filters/rbl; the plugin talks to sluice only through
 * sluice_plugin.h.
 */
#ifndef SLUICE_FILTER_RBL_H
#define SLUICE_FILTER_RBL_H

#include <stdbool.h>

#include "sluice_plugin.h"

/* What a listing is about: Postfix's $rbl_* values. */
struct rbl_listing {
	const char *arg;        /* the restriction's argument as written:
				 * "zen.example=127.0.0.2" (rbl_reply_maps key) */
	const char *domain;     /* the list's domain, without "=...":
				 * $rbl_domain */
	const char *what;       /* the address or name listed: $rbl_what */
	const char *reply_class;        /* "Client host", ...: $rbl_class */
	const char *txt;        /* the TXT reason, or NULL: $rbl_reason */
};

/* The answer to a listed target: the reply template (rbl_reply_maps for
 * l->arg, else default_rbl_reply) expanded and checked as Postfix's
 * rbl_reject_reply() does, given with sluice_reply().  Returns
 * SLUICE_REJECT (a 4xx reply then defers) or SLUICE_DEFER. */
int rbl_reply(sluice_txn *t, const struct rbl_listing *l);

/* Does pattern ("127.0.0.2", "127.0.0.[2..11]", "127.0.[0;1].[2;4..7]")
 * match the IPv4 address addr?  rbl_pattern_ok() says whether pattern
 * is well formed (Postfix's ip_match_parse), with the reason in err. */
bool rbl_pattern_ok(const char *pattern, char *err, size_t errlen);
bool rbl_pattern_match(const char *pattern, const char *addr);

#endif
