/*
 * tls_common.h - TLS (OpenSSL 3) pieces shared by the SMTP server
 * (tls_server.c, smtp_starttls.c) and the SMTP client (delivery).
 *
 * What it promises:
 *   - tls_settings_from_config() reads one side's parameters by prefix
 *     ("smtpd" or "smtp": PREFIX_tls_protocols, PREFIX_tls_cert_file, ...)
 *     tolerantly: a name that is not registered reads as Postfix's
 *     default, so the client side may register only what it uses.
 *     Relative file names are taken relative to config_directory.
 *   - tls_ctx_create() builds an SSL_CTX from settings: protocols in
 *     Postfix syntax ("!SSLv2, !SSLv3, !TLSv1", ">=TLSv1.2",
 *     "TLSv1.2 TLSv1.3"), cipher grade (high/medium/low/export/null,
 *     OpenSSL strings from tls_*_cipherlist) minus exclude_ciphers,
 *     key+certificate chains (PREFIX_tls_chain_files, or cert/key and
 *     eccert/eckey pairs; RSA and ECDSA side by side), CAfile/CApath,
 *     session resumption (tickets and the internal cache, server side).
 *     On failure it returns NULL with a one-line reason and the name of
 *     the parameter at fault (for "file:line: problem; fix" messages).
 *   - Fingerprints as Postfix prints them: upper-case hex bytes joined by
 *     ':' of the DER certificate (tls_cert_fprint) or of its public key
 *     (tls_pkey_fprint), with a digest by name (sha256 by default,
 *     Postfix's *_tls_fingerprint_digest).
 *   - struct tls_info: what a finished handshake negotiated and who the
 *     peer is (protocol, cipher, bits, key exchange, peer CN, subject,
 *     issuer, fingerprints, trust), for logs, Received: headers, the
 *     policy protocol and milter macros.
 *   - tls_summary(): Postfix's log phrase "TLSv1.3 with cipher
 *     TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519
 *     server-signature RSA-PSS (2048 bits) server-digest SHA256", and
 *     tls_log_errors(): OpenSSL's error queue as "warning: TLS library
 *     problem: ..." lines.
 *
 * Nothing here keeps global state except OpenSSL's own.
 */
#ifndef SLUICE_TLS_COMMON_H
#define SLUICE_TLS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct config;

enum tls_role { TLS_ROLE_SERVER, TLS_ROLE_CLIENT };

/* Postfix's TLS security levels (smtpd_ and smtp_tls_security_level). */
enum tls_level {
	TLS_LEV_NONE, TLS_LEV_MAY, TLS_LEV_ENCRYPT, TLS_LEV_DANE,
	TLS_LEV_FINGERPRINT, TLS_LEV_VERIFY, TLS_LEV_SECURE
};
/* "none", "may", "encrypt", ...; -1 for an unknown word.  "" is none. */
int tls_level_parse(const char *word);

struct tls_protocols {
	int min_version, max_version;   /* TLS1_VERSION .. TLS1_3_VERSION */
	long no_options;                /* SSL_OP_NO_TLSv1_1 ... for holes */
};
/* Parse a Postfix protocol list.  Returns 0, or -1 with err set. */
int tls_parse_protocols(const char *spec, struct tls_protocols *out,
			char *err, size_t errlen);

struct tls_settings {
	enum tls_role role;
	bool mandatory;             /* security level encrypt or higher:
				     * the mandatory_* lists apply */
	const char *protocols;      /* Postfix syntax */
	const char *grade;          /* high, medium, low, export, null */
	char *cipherlist;           /* OpenSSL string for the grade */
	const char *exclude;        /* cipher names to exclude (list) */
	char **chain_files;         /* NULL-terminated, or NULL */
	char *cert_file, *key_file, *eccert_file, *eckey_file;
	char *CAfile, *CApath;
	long long session_timeout;  /* seconds */
	int verify_depth;
	bool ask_ccert;             /* server: request a client certificate */
	bool req_ccert;             /* server: require a verified one */
	const char *digest;         /* fingerprint digest: "sha256" */
	int loglevel;
	/* which parameter each field came from, for messages */
	char pname_protocols[64], pname_grade[64], pname_chain[64],
	     pname_cert[64], pname_key[64], pname_eccert[64], pname_eckey[64],
	     pname_CAfile[64], pname_CApath[64], pname_digest[64];
};
/* Fill `ts` from the config, for role and prefix ("smtpd", "smtp"). */
void tls_settings_from_config(struct tls_settings *ts, const struct config *c,
			      const char *prefix, enum tls_role role,
			      bool mandatory);
void tls_settings_free(struct tls_settings *ts);
/* Does the config give this side a certificate (chain_files or
 * cert_file or eccert_file set)? */
bool tls_settings_have_cert(const struct tls_settings *ts);

/* Build a context; NULL with err (one line) and *bad_param (the name of
 * the parameter at fault, or NULL) on failure. */
SSL_CTX *tls_ctx_create(const struct tls_settings *ts, char *err,
			size_t errlen, const char **bad_param);

/* A key with its certificate chain as read from PEM files. */
struct tls_keycert {
	EVP_PKEY *key;
	X509 *cert;
	STACK_OF(X509) *chain;      /* intermediates, may be empty */
};
/* Read the key+chain groups of one PEM file (chain_files syntax: each
 * key followed or preceded by its certificate, then the chain).  Returns
 * the number of groups (0..max) or -1 with err set. */
int tls_read_chain_file(const char *path, struct tls_keycert *out, int max,
			char *err, size_t errlen);
/* Read a certificate chain file and a key file (the same file allowed). */
int tls_read_cert_key(const char *cert_file, const char *key_file,
		      struct tls_keycert *out, char *err, size_t errlen);
void tls_keycert_free(struct tls_keycert *kc);

/* Fingerprints, malloc'ed "AB:CD:..."; NULL for an unknown digest. */
char *tls_cert_fprint(X509 *cert, const char *digest);
char *tls_pkey_fprint(X509 *cert, const char *digest);
/* Is this a digest name OpenSSL knows ("sha256", "sha1", "md5")? */
bool tls_digest_known(const char *digest);

struct tls_info {
	char protocol[16];          /* "TLSv1.3" */
	char cipher[64];            /* "TLS_AES_256_GCM_SHA384" */
	int cipher_bits, alg_bits;  /* 256, 256 */
	char kex[32];               /* "X25519", "" when unknown */
	bool reused;                /* session resumed */
	bool peer_cert;             /* the peer presented a certificate */
	bool peer_trusted;          /* ... whose chain verified */
	char *peer_CN, *peer_subject, *peer_issuer, *issuer_CN;
	char *peer_cert_fprint, *peer_pkey_fprint;   /* with `digest` */
	char *peer_not_after;       /* "Nov 21 08:00:00 2027 GMT" */
};
/* Fill from a finished handshake; free with tls_info_free. */
void tls_info_get(struct tls_info *ti, SSL *ssl, const char *digest);
void tls_info_free(struct tls_info *ti);
/* "Anonymous", "Untrusted" or "Trusted" as Postfix words a peer. */
const char *tls_trust_word(const struct tls_info *ti);
/* "TLSv1.3 with cipher X (256/256 bits) key-exchange X25519
 * server-signature RSA-PSS (2048 bits) server-digest SHA256" */
void tls_summary(char *buf, size_t len, SSL *ssl, const struct tls_info *ti);
/* One "TLS library problem" warning per queued OpenSSL error (cleared). */
void tls_log_errors(void);
/* The last queued OpenSSL error as text (queue cleared), for messages. */
void tls_error_text(char *buf, size_t len);

/* A certificate's name and lifetime checks (for sluice check):
 * does a SAN DNS name (or, without SANs, the CN) cover `host`
 * (wildcards as RFC 6125)?  Has it expired, or not yet started? */
bool tls_cert_covers_host(X509 *cert, const char *host);
bool tls_cert_expired(X509 *cert);

#endif
