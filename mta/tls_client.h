/*
 * tls_client.h - the OpenSSL side of TLS in the SMTP client (delivery):
 * per-destination policy (smtp_tls_security_level, smtp_tls_policy_maps),
 * client contexts, the in-process session cache, and what a finished
 * handshake proves about the server (trust, name match, fingerprint).
 * The SMTP side - STARTTLS, when to fall back, what to defer - is
 * smtp_client_tls.c.
 *
 * What it promises:
 *   - tlsc_policy_get() answers as Postfix's smtp_tls_policy_maps do: the
 *     next hop as written ("[host]:port", "host:port", "domain"), then for
 *     a bare domain its parent domains (".example.com", ".com"); the
 *     first entry found is the policy; none found: smtp_tls_security_level.
 *     "dane" and "dane-only" are "may" (there is no DNSSEC here), with a
 *     warning.  A bad entry makes the policy invalid (the delivery is
 *     deferred), never weaker.
 *   - tlsc_ssl_new() makes an SSL object for one connection with the
 *     protocols and cipher grade of the level (mandatory_* from encrypt
 *     up, or the policy's protocols=/ciphers=), the CA of smtp_tls_CAfile
 *     / CApath, the client certificate if configured, and a session from
 *     the cache for the same server when there is one that has not
 *     expired (smtp_tls_session_cache_timeout).  Contexts and sessions are
 *     kept per process (this file owns them; tlsc_shutdown() frees them).
 *   - tlsc_peer_check() never fails a handshake itself: it records the
 *     chain verification result and matches the certificate's names
 *     (subjectAltName DNS names, else the CommonName) against the match
 *     list (hostname, nexthop, dot-nexthop, literal names, .domain), or
 *     the fingerprints of the fingerprint level, and logs as Postfix
 *     does: "Verified/Trusted/Untrusted/Anonymous TLS connection
 *     established to host[addr]:port: TLSv1.3 with cipher ..." (loglevel
 *     1 and up), and "server certificate verification failed for
 *     host[addr]:port: ..." where the level requires trust (or loglevel
 *     2 and up).  The caller decides what to do with the result.
 */
#ifndef SLUICE_TLS_CLIENT_H
#define SLUICE_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

#include "tls_common.h"

struct config;

#define TLSC_MATCH_MAX		16	/* match= names of one policy */
#define TLSC_CTX_MAX		8	/* distinct client contexts kept */
#define TLSC_SESSION_MAX	256	/* servers with a cached session */
#define TLSC_SERVERID_MAX	400

/* The TLS policy of one destination. */
struct tlsc_policy {
	int level;                      /* enum tls_level (dane -> may) */
	bool invalid;                   /* defer: why says why */
	char why[300];
	char protocols[128];            /* "" : the parameter's */
	char grade[32];                 /* "" : the parameter's */
	char exclude[256];              /* extra exclusions, or "" */
	char *match[TLSC_MATCH_MAX + 1]; /* NULL-terminated; NULL[0]: the
					 * level's default list */
	char source[80];                /* "smtp_tls_policy_maps" or the level
					 * parameter, for messages */
};

/* The policy for next hop `nexthop` as written; `domain` when it is a
 * bare domain (parent domains are tried too).  Free with
 * tlsc_policy_free(). */
void tlsc_policy_get(struct tlsc_policy *p, const struct config *cfg,
		     const char *nexthop, bool domain);
void tlsc_policy_free(struct tlsc_policy *p);
/* "none", "may", "encrypt", ... */
const char *tlsc_level_name(int level);

/* A new client SSL object for a connection to the server named by
 * `serverid` (the session cache key), or NULL with err. */
SSL *tlsc_ssl_new(const struct config *cfg, const struct tlsc_policy *p,
		  const char *serverid, char *err, size_t errlen);

/* What a finished handshake showed. */
struct tlsc_peer {
	struct tls_info info;
	bool trusted;                   /* chain verified (or fingerprint) */
	bool matched;                   /* names (or fingerprint) matched */
};
/* Evaluate the server after the handshake and log as the policy and
 * smtp_tls_loglevel say.  `host`: the server's name as routed;
 * `nexthop`: the destination without [] and port; `namaddrport`:
 * "host[addr]:port". */
void tlsc_peer_check(struct tlsc_peer *pr, SSL *ssl, const struct config *cfg,
		     const struct tlsc_policy *p, const char *host,
		     const char *nexthop, const char *namaddrport);
void tlsc_peer_free(struct tlsc_peer *pr);

/* Free the contexts and the session cache (at exit). */
void tlsc_shutdown(void);

#endif
