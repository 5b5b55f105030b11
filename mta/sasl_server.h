/*
 * sasl_server.h - the SMTP server's SASL authentication, one interface
 * over the backends smtpd_sasl_type names: "cyrus" (libsasl2, sasl_cyrus.c:
 * sasldb, saslauthd, whatever smtpd.conf's pwcheck_method says) and
 * "dovecot" (Dovecot's auth socket protocol, sasl_dovecot.c).  Each
 * backend is a small vtable, as the table types behind map.h are.
 *
 * One sasl_server per SMTP session.  A step (start, next) answers through
 * a callback: at once (Cyrus, whose checks are synchronous) or later from
 * the event loop (Dovecot, whose socket is read without blocking).  After
 * xsasl_server_free() no callback comes.
 *
 * Promises: the mechanism list honours smtpd_sasl_security_options
 * (smtpd_sasl_tls_security_options under TLS); texts handed to callbacks
 * are single lines; a backend that cannot be reached gives a NULL server
 * with the reason, never a crash.
 */
#ifndef SLUICE_SASL_SERVER_H
#define SLUICE_SASL_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct event_base;

enum sasl_result {
	SASL_R_DONE,    /* authenticated: xsasl_server_username() */
	SASL_R_MORE,    /* text: the base64 challenge for a 334 reply */
	SASL_R_FAIL,    /* text: the reason (535) */
	SASL_R_TEMP,    /* text: the reason (454) */
	SASL_R_FORM,    /* text: what is malformed (501 5.5.2) */
	SASL_R_NOUSER   /* as FAIL, and the backend said the login name is
			 * unknown (for the case hint) */
};

typedef void (*xsasl_server_fn)(void *ctx, enum sasl_result r,
			       const char *text);

struct xsasl_server_params {
	const struct config *cfg;       /* the listener's */
	struct event_base *base;
	const char *client_addr; int client_port;
	const char *server_addr; int server_port;
	bool tls;                       /* the session is under TLS */
};

/* Security options (smtpd_sasl_security_options and friends). */
#define SASL_OPT_NOPLAINTEXT    0x01
#define SASL_OPT_NOACTIVE       0x02
#define SASL_OPT_NODICTIONARY   0x04
#define SASL_OPT_NOANONYMOUS    0x08
#define SASL_OPT_MUTUAL_AUTH    0x10
#define SASL_OPT_FORWARD_SECRECY 0x20

/* Parse a security options list; -1 with the bad word in err. */
int sasl_security_flags(char **list, int *flags, char *err, size_t errlen);

struct sasl_server;

/* A server for one session, or NULL with the reason in err ("cannot
 * connect to Dovecot auth socket private/auth: No such file or
 * directory"). */
struct sasl_server *xsasl_server_create(const struct xsasl_server_params *p,
				       char *err, size_t errlen);
/* The mechanisms offered, upper case, separated by one space; "" when
 * none is left after the security options. */
const char *xsasl_server_mechs(const struct sasl_server *srv);
/* Would `mech` be offered with the TLS security options (for the 538
 * "Encryption required" reply)? */
bool xsasl_server_mech_needs_tls(struct sasl_server *srv, const char *mech);
/* Begin: init_b64 is the initial response (NULL: none, "=": empty). */
void xsasl_server_start(struct sasl_server *srv, const char *mech,
		       const char *init_b64, xsasl_server_fn fn, void *ctx);
/* A client response (base64) to the last challenge. */
void xsasl_server_next(struct sasl_server *srv, const char *resp_b64,
		      xsasl_server_fn fn, void *ctx);
/* The login name after DONE, NULL before. */
const char *xsasl_server_username(const struct sasl_server *srv);
/* Does login `user` exist?  1, 0, or -1 when the backend cannot say. */
int xsasl_server_user_exists(struct sasl_server *srv, const char *user);
void xsasl_server_free(struct sasl_server *srv);

/* For sluice check and start-up: can the backend of this configuration
 * be reached?  0, or -1 with "problem; fix" in err (and the parameter
 * to blame in *param). */
int xsasl_server_check(const struct config *c, const char **param,
		      char *err, size_t errlen);
/* sluice check and start-up: for every listener with
 * smtpd_sasl_auth_enable = yes, can its backend be reached?  Problems go
 * to d at `level` (DIAG_ERROR for check, DIAG_WARNING at start-up, where
 * Dovecot may still be starting), as "file:line: problem; fix". */
struct diag;
struct sluice_config;
void sasl_check(struct diag *d, const struct sluice_config *sc,
		const char *main_path, int level);
/* Is SASL support in this build (for sluice version)?  The library's
 * version text, e.g. "Cyrus SASL 2.1.28". */
const char *sasl_library_version(void);

/* ---- the backend vtable (sasl_server.c, sasl_cyrus.c, sasl_dovecot.c) ---- */
struct sasl_backend {
	const char *name;
	void *(*create)(const struct xsasl_server_params *p, int secflags,
			char *err, size_t errlen);
	const char *(*mechs)(void *impl);
	bool (*mech_allowed)(void *impl, const char *mech, int secflags);
	void (*start)(void *impl, const char *mech, const char *init_b64,
		      xsasl_server_fn fn, void *ctx);
	void (*next)(void *impl, const char *resp_b64, xsasl_server_fn fn,
		     void *ctx);
	const char *(*username)(void *impl);
	int (*user_exists)(void *impl, const char *user);
	void (*free)(void *impl);
	int (*check)(const struct config *c, const char **param, char *err,
		     size_t errlen);
};
extern const struct sasl_backend sasl_backend_cyrus, sasl_backend_dovecot;

/* base64 helpers shared by the backends and the client: decode returns
 * the length or -1 (bad data); out must hold 3 * strlen(in) / 4 + 3. */
int sasl_b64_decode(const char *in, unsigned char *out, size_t outlen);
/* encode into out (4 * ((len + 2) / 3) + 1 bytes). */
void sasl_b64_encode(const unsigned char *in, size_t len, char *out);

#endif
