/*
 * params_smtp_tls.c - the main.cf parameters of TLS in the SMTP client
 * (delivery: tls_client.c, smtp_client_tls.c): name, type, Postfix's
 * default, one line of description.  Part of the one registry
 * (param_table.c); keep in name order, end with { NULL }.
 *
 * Names and defaults are Postfix's, except smtp_tls_mandatory_protocols
 * (">=TLSv1.2" here, ">=TLSv1" in Postfix 3.6+): where TLS is mandatory,
 * the protocols that the IETF has deprecated (RFC 8996) are not offered.
 * The LMTP client does not use TLS (no lmtp_tls_* parameters).
 */
#include "config.h"

#define P(name, type, def, desc) { name, type, def, desc, NULL }

const struct param_def params_smtp_tls[] = {
	P("smtp_starttls_timeout", PT_TIME, "300s",
	  "The SMTP client's time limit for the reply to STARTTLS and for completing the TLS handshake."),
	P("smtp_tls_CAfile", PT_STRING, "",
	  "A file of trusted CA certificates (PEM) with which the SMTP client verifies server certificates."),
	P("smtp_tls_CApath", PT_STRING, "",
	  "A directory of trusted CA certificates (OpenSSL c_rehash layout) with which the SMTP client verifies server certificates."),
	P("smtp_tls_cert_file", PT_STRING, "",
	  "The SMTP client's own certificate (PEM, with its chain), presented when a server asks for one; empty: none."),
	P("smtp_tls_ciphers", PT_STRING, "medium",
	  "The cipher grade of opportunistic TLS (level may): high, medium, low, export or null."),
	P("smtp_tls_exclude_ciphers", PT_LIST, "",
	  "Ciphers or cipher types the SMTP client never uses, at every TLS level."),
	P("smtp_tls_fingerprint_digest", PT_STRING, "sha256",
	  "The digest of server certificate fingerprints, for the fingerprint level and the logs."),
	P("smtp_tls_key_file", PT_STRING, "$smtp_tls_cert_file",
	  "The private key of smtp_tls_cert_file (the same file may hold both)."),
	P("smtp_tls_loglevel", PT_INT, "0",
	  "How much the SMTP client logs about TLS: 0 only failures that matter, 1 a summary line per handshake, 2 also certificate details, more for debugging."),
	P("smtp_tls_mandatory_ciphers", PT_STRING, "medium",
	  "The cipher grade where TLS is mandatory (levels encrypt and above)."),
	P("smtp_tls_mandatory_exclude_ciphers", PT_LIST, "",
	  "Ciphers or cipher types the SMTP client excludes where TLS is mandatory, in addition to smtp_tls_exclude_ciphers."),
	P("smtp_tls_mandatory_protocols", PT_STRING, ">=TLSv1.2",
	  "The TLS protocols the SMTP client accepts where TLS is mandatory (levels encrypt and above), in Postfix syntax."),
	P("smtp_tls_note_starttls_offer", PT_BOOL, "no",
	  "Log \"Host offered STARTTLS: [name]\" when a server offers STARTTLS and the TLS level is none."),
	P("smtp_tls_policy_maps", PT_MAP, "",
	  "Per-destination TLS policy: \"destination level [match=...] [protocols=...] [ciphers=...] [exclude=...]\", looked up by the next hop as written ([host]:port), then for a domain by its parent domains (.example.com)."),
	P("smtp_tls_protocols", PT_STRING, ">=TLSv1",
	  "The TLS protocols the SMTP client accepts with opportunistic TLS (level may), in Postfix syntax."),
	P("smtp_tls_secure_cert_match", PT_LIST, "nexthop, dot-nexthop",
	  "How a server certificate's names must match at the secure level: nexthop, dot-nexthop, hostname, or literal names (.domain for subdomains)."),
	P("smtp_tls_security_level", PT_STRING, "",
	  "The SMTP client's default TLS level: none (empty), may, encrypt, verify, secure, fingerprint (dane is treated as may: no DNSSEC here)."),
	P("smtp_tls_session_cache_timeout", PT_TIME, "3600s",
	  "How long the SMTP client keeps a TLS session for resumption with the same server (in the delivering process; 0 disables)."),
	P("smtp_tls_verify_cert_match", PT_LIST, "hostname",
	  "How a server certificate's names must match at the verify level: hostname (the MX host's name), nexthop, dot-nexthop, or literal names."),
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
