/*
 * tls_common.c - TLS contexts, key/certificate loading, fingerprints and
 * handshake summaries shared by the SMTP server and client (OpenSSL 3).
 *
 * The promises are in tls_common.h.  Decisions:
 *   - Protocols: Postfix's grammar.  A list of names enables exactly
 *     those; "!name" disables one; ">=name" and "<=name" bound the range.
 *     The result is a min/max version plus SSL_OP_NO_* for holes.  SSLv2
 *     and SSLv3 are never enabled (OpenSSL 3 has neither).
 *   - Ciphers: the grade picks tls_GRADE_cipherlist (Postfix's strings),
 *     each excluded cipher is appended as ":!NAME".  TLS 1.3 suites are
 *     OpenSSL's defaults, as in Postfix.
 *   - Renegotiation is off and compression is off (CRIME).
 *   - Server session resumption: RFC 5077 tickets (OpenSSL's default)
 *     and the internal session cache, both with
 *     PREFIX_tls_session_cache_timeout; a fixed session id context so a
 *     resumed session keeps its client certificate.
 *   - Peer certificates are accepted by the verify callback whatever the
 *     chain says; the chain's verdict is read afterwards (peer_trusted),
 *     so the caller decides (Postfix's way: "Untrusted" is logged, not
 *     refused, unless the level requires trust).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "log.h"
#include "tls_common.h"

#define TLS_SESSION_ID_CONTEXT	"sluice"
#define TLS_MAX_CHAIN_GROUPS	4

/* ---- levels and protocols ------------------------------------------------ */

int tls_level_parse(const char *word)
{
	static const char *const names[] = {
		"none", "may", "encrypt", "dane", "fingerprint", "verify",
		"secure", NULL
	};

	if (word == NULL || *word == 0)
		return TLS_LEV_NONE;
	for (int i = 0; names[i]; i++)
		if (strcasecmp(word, names[i]) == 0)
			return i;
	return -1;
}

static const struct {
	const char *name;
	int version;                /* 0: not supported by this OpenSSL */
} protocol_names[] = {
	{ "SSLv2", 0 }, { "SSLv3", 0 },
	{ "TLSv1", TLS1_VERSION }, { "TLSv1.1", TLS1_1_VERSION },
	{ "TLSv1.2", TLS1_2_VERSION }, { "TLSv1.3", TLS1_3_VERSION },
};
#define NPROTO ((int)(sizeof protocol_names / sizeof protocol_names[0]))

static int protocol_index(const char *name)
{
	for (int i = 0; i < NPROTO; i++)
		if (strcasecmp(name, protocol_names[i].name) == 0)
			return i;
	return -1;
}

/* Apply one token to the enabled set; -1 for an unknown name. */
static int protocol_token(const char *tok, bool enabled[], bool *listed)
{
	int i;

	if (tok[0] == '>' && tok[1] == '=') {
		if ((i = protocol_index(tok + 2)) < 0)
			return -1;
		for (int j = 0; j < i; j++)
			enabled[j] = false;
	} else if (tok[0] == '<' && tok[1] == '=') {
		if ((i = protocol_index(tok + 2)) < 0)
			return -1;
		for (int j = i + 1; j < NPROTO; j++)
			enabled[j] = false;
	} else if (tok[0] == '!') {
		if ((i = protocol_index(tok + 1)) < 0)
			return -1;
		enabled[i] = false;
	} else {
		if ((i = protocol_index(tok)) < 0)
			return -1;
		if (!*listed) {         /* a plain list: only what it names */
			*listed = true;
			for (int j = 0; j < NPROTO; j++)
				enabled[j] = false;
		}
		enabled[i] = true;
	}
	return 0;
}

int tls_parse_protocols(const char *spec, struct tls_protocols *out,
			char *err, size_t errlen)
{
	bool enabled[NPROTO], listed = false;
	char *copy = strdup(spec ? spec : ""), *save = NULL, *tok;
	int lo = -1, hi = -1;

	for (int i = 0; i < NPROTO; i++)
		enabled[i] = protocol_names[i].version != 0;
	for (tok = strtok_r(copy, " ,:\t", &save); tok;
	     tok = strtok_r(NULL, " ,:\t", &save)) {
		if (protocol_token(tok, enabled, &listed) < 0) {
			size_t skip = strspn(tok, "<>=!");

			snprintf(err, errlen, "unknown TLS protocol \"%s\" (known: "
				 "SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)",
				 tok + skip);
			free(copy);
			return -1;
		}
	}
	free(copy);
	out->no_options = 0;
	for (int i = 0; i < NPROTO; i++) {
		if (!enabled[i] || protocol_names[i].version == 0)
			continue;
		if (lo < 0)
			lo = i;
		hi = i;
	}
	if (lo < 0) {
		snprintf(err, errlen, "\"%s\" leaves no TLS protocol enabled",
			 spec ? spec : "");
		return -1;
	}
	for (int i = lo; i <= hi; i++) {
		static const long no_op[NPROTO] = {
			0, 0, SSL_OP_NO_TLSv1, SSL_OP_NO_TLSv1_1,
			SSL_OP_NO_TLSv1_2, SSL_OP_NO_TLSv1_3
		};
		if (!enabled[i])
			out->no_options |= no_op[i];
	}
	out->min_version = protocol_names[lo].version;
	out->max_version = protocol_names[hi].version;
	return 0;
}

/* ---- settings ------------------------------------------------------------- */

static const char *lookup(const struct config *c, char *pname, size_t plen,
			  const char *prefix, const char *suffix,
			  const char *dflt)
{
	const char *v;

	snprintf(pname, plen, "%s_%s", prefix, suffix);
	v = cfg_lookup(c, pname);
	return v ? v : dflt;
}

static long long lookup_number(const struct config *c, const char *prefix,
			       const char *suffix, long long dflt)
{
	char name[96];
	long long v;

	snprintf(name, sizeof name, "%s_%s", prefix, suffix);
	return cfg_lookup_number(c, name, &v) == 0 ? v : dflt;
}

/* A file name relative to config_directory; NULL for "". */
static char *tls_path(const struct config *c, const char *v)
{
	const char *dir = cfg_lookup(c, "config_directory");
	char *p;

	if (v == NULL || *v == 0)
		return NULL;
	if (v[0] == '/' || dir == NULL || *dir == 0)
		return strdup(v);
	if (asprintf(&p, "%s/%s", dir, v) < 0)
		return NULL;
	return p;
}

static char **split_files(const struct config *c, const char *v)
{
	char *copy = strdup(v ? v : ""), *save = NULL, *tok;
	char **out = calloc(strlen(copy) / 2 + 2, sizeof *out);
	int n = 0;

	for (tok = strtok_r(copy, " ,\t", &save); tok;
	     tok = strtok_r(NULL, " ,\t", &save))
		out[n++] = tls_path(c, tok);
	free(copy);
	if (n == 0) {
		free(out);
		return NULL;
	}
	return out;
}

static char *join_excludes(const char *a, const char *b)
{
	char *s;

	if (asprintf(&s, "%s %s", a ? a : "", b ? b : "") < 0)
		return NULL;
	return s;
}

/* An empty key file setting means the key is in the certificate file. */
static char *key_path(const struct config *c, const char *key,
		      const char *cert_file)
{
	if (*key)
		return tls_path(c, key);
	return cert_file ? strdup(cert_file) : NULL;
}

void tls_settings_from_config(struct tls_settings *ts, const struct config *c,
			      const char *prefix, enum tls_role role,
			      bool mandatory)
{
	char pn[96];
	const char *v;

	memset(ts, 0, sizeof *ts);
	ts->role = role;
	ts->mandatory = mandatory;
	ts->protocols = lookup(c, ts->pname_protocols, sizeof ts->pname_protocols,
			       prefix, mandatory ? "tls_mandatory_protocols"
			       : "tls_protocols", ">=TLSv1.2");
	ts->grade = lookup(c, ts->pname_grade, sizeof ts->pname_grade, prefix,
			   mandatory ? "tls_mandatory_ciphers" : "tls_ciphers",
			   "medium");
	snprintf(pn, sizeof pn, "tls_%s_cipherlist", ts->grade);
	v = cfg_lookup(c, pn);
	ts->cipherlist = strdup(v ? v : "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH");
	v = lookup(c, pn, sizeof pn, prefix, "tls_exclude_ciphers", "");
	ts->exclude = join_excludes(v, mandatory ? lookup(c, pn, sizeof pn,
		prefix, "tls_mandatory_exclude_ciphers", "") : "");
	ts->chain_files = split_files(c, lookup(c, ts->pname_chain,
		sizeof ts->pname_chain, prefix, "tls_chain_files", ""));
	ts->cert_file = tls_path(c, lookup(c, ts->pname_cert, sizeof ts->pname_cert,
					   prefix, "tls_cert_file", ""));
	ts->key_file = key_path(c, lookup(c, ts->pname_key, sizeof ts->pname_key,
					  prefix, "tls_key_file", ""),
				ts->cert_file);
	ts->eccert_file = tls_path(c, lookup(c, ts->pname_eccert,
		sizeof ts->pname_eccert, prefix, "tls_eccert_file", ""));
	ts->eckey_file = key_path(c, lookup(c, ts->pname_eckey,
		sizeof ts->pname_eckey, prefix, "tls_eckey_file", ""),
				  ts->eccert_file);
	ts->CAfile = tls_path(c, lookup(c, ts->pname_CAfile,
		sizeof ts->pname_CAfile, prefix, "tls_CAfile", ""));
	ts->CApath = tls_path(c, lookup(c, ts->pname_CApath,
		sizeof ts->pname_CApath, prefix, "tls_CApath", ""));
	ts->session_timeout = lookup_number(c, prefix,
					    "tls_session_cache_timeout", 3600);
	ts->verify_depth = (int)lookup_number(c, prefix, role == TLS_ROLE_SERVER
		? "tls_ccert_verifydepth" : "tls_scert_verifydepth", 9);
	ts->ask_ccert = lookup_number(c, prefix, "tls_ask_ccert", 0) == 1;
	ts->req_ccert = lookup_number(c, prefix, "tls_req_ccert", 0) == 1;
	if (ts->req_ccert)
		ts->ask_ccert = true;
	ts->digest = lookup(c, ts->pname_digest, sizeof ts->pname_digest,
			    prefix, "tls_fingerprint_digest", "sha256");
	ts->loglevel = (int)lookup_number(c, prefix, "tls_loglevel", 0);
}

void tls_settings_free(struct tls_settings *ts)
{
	if (ts->chain_files)
		for (int i = 0; ts->chain_files[i]; i++)
			free(ts->chain_files[i]);
	free(ts->chain_files);
	free(ts->cipherlist);
	free((char *)ts->exclude);
	free(ts->cert_file);
	free(ts->key_file);
	free(ts->eccert_file);
	free(ts->eckey_file);
	free(ts->CAfile);
	free(ts->CApath);
	memset(ts, 0, sizeof *ts);
}

bool tls_settings_have_cert(const struct tls_settings *ts)
{
	return ts->chain_files || ts->cert_file || ts->eccert_file;
}

/* ---- errors ------------------------------------------------------------- */

void tls_error_text(char *buf, size_t len)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0) {
		snprintf(buf, len, "unknown TLS library error");
		return;
	}
	ERR_error_string_n(last, buf, len);
}

void tls_log_errors(void)
{
	unsigned long e;
	const char *file, *data;
	int line, flags;
	char buf[256];

	while ((e = ERR_get_error_all(&file, &line, NULL, &data, &flags)) != 0) {
		ERR_error_string_n(e, buf, sizeof buf);
		msg_warn("TLS library problem: %s:%s:%d:%s", buf, file, line,
			 (flags & ERR_TXT_STRING) ? data : "");
	}
}

/* ---- reading keys and certificates ----------------------------------------- */

void tls_keycert_free(struct tls_keycert *kc)
{
	EVP_PKEY_free(kc->key);
	X509_free(kc->cert);
	if (kc->chain)
		sk_X509_pop_free(kc->chain, X509_free);
	memset(kc, 0, sizeof *kc);
}

static bool pem_is_key(const char *name)
{
	size_t n = strlen(name);

	return n >= 11 && strcmp(name + n - 11, "PRIVATE KEY") == 0;
}

/* Decode one PEM block (already split) into a key or a certificate. */
static int pem_block(const char *name, const char *header,
		     const unsigned char *data, long len,
		     EVP_PKEY **key, X509 **cert)
{
	BIO *b = BIO_new(BIO_s_mem());
	int ok;

	PEM_write_bio(b, name, header, data, len);
	if (pem_is_key(name))
		ok = (*key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) != NULL;
	else
		ok = (*cert = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL;
	BIO_free(b);
	return ok ? 0 : -1;
}

static int add_to_group(struct tls_keycert *out, int *n, int max,
			EVP_PKEY *key, X509 *cert)
{
	struct tls_keycert *g = &out[*n];

	/* a second key starts the next group */
	if (key && g->key) {
		if (++*n >= max)
			return -1;
		g = &out[*n];
	}
	if (key)
		g->key = key;
	if (cert && g->cert == NULL)
		g->cert = cert;
	else if (cert) {
		if (g->chain == NULL)
			g->chain = sk_X509_new_null();
		sk_X509_push(g->chain, cert);
	}
	return 0;
}

int tls_read_chain_file(const char *path, struct tls_keycert *out, int max,
			char *err, size_t errlen)
{
	BIO *b = BIO_new_file(path, "r");
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len;
	int n = 0;

	memset(out, 0, max * sizeof *out);
	if (b == NULL) {
		snprintf(err, errlen, "cannot open %s: %m", path);
		ERR_clear_error();
		return -1;
	}
	while (PEM_read_bio(b, &name, &header, &data, &len)) {
		EVP_PKEY *key = NULL;
		X509 *cert = NULL;
		int bad = (pem_is_key(name) || strcmp(name, "CERTIFICATE") == 0
			   || strcmp(name, "TRUSTED CERTIFICATE") == 0)
			&& (pem_block(name, header, data, len, &key, &cert) < 0
			    || add_to_group(out, &n, max, key, cert) < 0);

		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		if (bad) {
			snprintf(err, errlen, "cannot read the keys and "
				 "certificates in %s", path);
			BIO_free(b);
			for (int i = 0; i <= n && i < max; i++)
				tls_keycert_free(&out[i]);
			return -1;
		}
	}
	ERR_clear_error();          /* end of file */
	BIO_free(b);
	if (out[0].key == NULL && out[0].cert == NULL) {
		snprintf(err, errlen, "no PEM key or certificate in %s", path);
		return -1;
	}
	for (int i = 0; i <= n; i++) {
		if (out[i].key == NULL || out[i].cert == NULL) {
			snprintf(err, errlen, "%s: a %s without its %s", path,
				 out[i].key ? "private key" : "certificate",
				 out[i].key ? "certificate" : "private key");
			for (int j = 0; j <= n; j++)
				tls_keycert_free(&out[j]);
			return -1;
		}
	}
	return n + 1;
}

int tls_read_cert_key(const char *cert_file, const char *key_file,
		      struct tls_keycert *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (strcmp(cert_file, key_file) == 0)
		return tls_read_chain_file(cert_file, out, 1, err, errlen) == 1
			? 0 : -1;
	/* separate files: certificates from one, the key from the other */
	{
		BIO *b = BIO_new_file(cert_file, "r");
		X509 *x;

		if (b == NULL) {
			snprintf(err, errlen, "cannot open %s: %m", cert_file);
			ERR_clear_error();
			return -1;
		}
		out->cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
		while (out->cert && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
			if (out->chain == NULL)
				out->chain = sk_X509_new_null();
			sk_X509_push(out->chain, x);
		}
		BIO_free(b);
		ERR_clear_error();
		if (out->cert == NULL) {
			snprintf(err, errlen, "no PEM certificate in %s", cert_file);
			return -1;
		}
		b = BIO_new_file(key_file, "r");
		if (b == NULL) {
			snprintf(err, errlen, "cannot open %s: %m", key_file);
			ERR_clear_error();
			tls_keycert_free(out);
			return -1;
		}
		out->key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
		ERR_clear_error();
		if (out->key == NULL) {
			snprintf(err, errlen, "no PEM private key in %s", key_file);
			tls_keycert_free(out);
			return -1;
		}
	}
	return 0;
}

/* ---- contexts ---------------------------------------------------------------- */

static int accept_any_cert(int ok, X509_STORE_CTX *ctx)
{
	return 1;                   /* the verdict is read after the handshake */
}

static int use_keycert(SSL_CTX *ctx, struct tls_keycert *kc, const char *file,
		       char *err, size_t errlen)
{
	if (!X509_check_private_key(kc->cert, kc->key)) {
		ERR_clear_error();
		snprintf(err, errlen, "the private key in %s does not match "
			 "its certificate", file);
		return -1;
	}
	if (!SSL_CTX_use_cert_and_key(ctx, kc->cert, kc->key, kc->chain, 1)) {
		char e[256];

		tls_error_text(e, sizeof e);
		snprintf(err, errlen, "cannot use the key and certificate of %s: %s",
			 file, e);
		return -1;
	}
	return 0;
}

static int load_chain_files(SSL_CTX *ctx, const struct tls_settings *ts,
			    char *err, size_t errlen)
{
	for (int i = 0; ts->chain_files[i]; i++) {
		struct tls_keycert kc[TLS_MAX_CHAIN_GROUPS];
		int n = tls_read_chain_file(ts->chain_files[i], kc,
					    TLS_MAX_CHAIN_GROUPS, err, errlen);
		int rc = 0;

		if (n < 0)
			return -1;
		for (int j = 0; j < n; j++) {
			if (rc == 0)
				rc = use_keycert(ctx, &kc[j], ts->chain_files[i],
						 err, errlen);
			tls_keycert_free(&kc[j]);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int load_pair(SSL_CTX *ctx, const char *cert, const char *key,
		     char *err, size_t errlen)
{
	struct tls_keycert kc;
	int rc;

	if (tls_read_cert_key(cert, key, &kc, err, errlen) < 0)
		return -1;
	rc = use_keycert(ctx, &kc, key, err, errlen);
	tls_keycert_free(&kc);
	return rc;
}

static int load_certs(SSL_CTX *ctx, const struct tls_settings *ts,
		      char *err, size_t errlen, const char **bad)
{
	if (ts->chain_files) {
		*bad = ts->pname_chain;
		return load_chain_files(ctx, ts, err, errlen);
	}
	if (ts->cert_file) {
		*bad = ts->pname_cert;
		if (load_pair(ctx, ts->cert_file, ts->key_file, err, errlen) < 0)
			return -1;
	}
	if (ts->eccert_file) {
		*bad = ts->pname_eccert;
		if (load_pair(ctx, ts->eccert_file, ts->eckey_file, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int set_ciphers(SSL_CTX *ctx, const struct tls_settings *ts,
		       char *err, size_t errlen)
{
	char list[2048], *copy, *save = NULL, *tok;
	size_t n = snprintf(list, sizeof list, "%s", ts->cipherlist);

	copy = strdup(ts->exclude ? ts->exclude : "");
	for (tok = strtok_r(copy, " ,:\t", &save); tok && n < sizeof list;
	     tok = strtok_r(NULL, " ,:\t", &save))
		n += snprintf(list + n, sizeof list - n, ":!%s", tok);
	free(copy);
	if (!SSL_CTX_set_cipher_list(ctx, list)) {
		ERR_clear_error();
		snprintf(err, errlen, "cipher grade \"%s\" (\"%s\") selects no "
			 "cipher", ts->grade, list);
		return -1;
	}
	return 0;
}

static int set_protocols(SSL_CTX *ctx, const struct tls_settings *ts,
			 char *err, size_t errlen)
{
	struct tls_protocols p;

	if (tls_parse_protocols(ts->protocols, &p, err, errlen) < 0)
		return -1;
	SSL_CTX_set_min_proto_version(ctx, p.min_version);
	SSL_CTX_set_max_proto_version(ctx, p.max_version);
	SSL_CTX_set_options(ctx, p.no_options);
	return 0;
}

static int load_CA(SSL_CTX *ctx, const struct tls_settings *ts, char *err,
		   size_t errlen, const char **bad)
{
	if (ts->CAfile == NULL && ts->CApath == NULL)
		return 0;
	*bad = ts->CAfile ? ts->pname_CAfile : ts->pname_CApath;
	if (!SSL_CTX_load_verify_locations(ctx, ts->CAfile, ts->CApath)) {
		char e[256];

		tls_error_text(e, sizeof e);
		snprintf(err, errlen, "cannot load CA certificates from %s: %s",
			 ts->CAfile ? ts->CAfile : ts->CApath, e);
		return -1;
	}
	if (ts->role == TLS_ROLE_SERVER && ts->CAfile) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ts->CAfile);

		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
		ERR_clear_error();
	}
	return 0;
}

static void set_server_options(SSL_CTX *ctx, const struct tls_settings *ts)
{
	SSL_CTX_set_session_id_context(ctx,
		(const unsigned char *)TLS_SESSION_ID_CONTEXT,
		sizeof TLS_SESSION_ID_CONTEXT - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_timeout(ctx, ts->session_timeout > 0
			    ? ts->session_timeout : 3600);
	/* req_ccert asks too, but the handshake goes through without a
	 * certificate: the server then says why in SMTP (421 4.7.1 ...) */
	if (ts->ask_ccert)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE,
				   accept_any_cert);
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
}

SSL_CTX *tls_ctx_create(const struct tls_settings *ts, char *err,
			size_t errlen, const char **bad_param)
{
	SSL_CTX *ctx = SSL_CTX_new(ts->role == TLS_ROLE_SERVER
				   ? TLS_server_method() : TLS_client_method());
	const char *bad = NULL;

	*bad_param = NULL;
	if (ctx == NULL) {
		tls_error_text(err, errlen);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	bad = ts->pname_protocols;
	if (set_protocols(ctx, ts, err, errlen) < 0)
		goto fail;
	bad = ts->pname_grade;
	if (set_ciphers(ctx, ts, err, errlen) < 0)
		goto fail;
	bad = ts->pname_digest;
	if (!tls_digest_known(ts->digest)) {
		snprintf(err, errlen, "unknown message digest \"%s\"", ts->digest);
		goto fail;
	}
	bad = NULL;
	if (load_certs(ctx, ts, err, errlen, &bad) < 0)
		goto fail;
	if (load_CA(ctx, ts, err, errlen, &bad) < 0)
		goto fail;
	SSL_CTX_set_verify_depth(ctx, ts->verify_depth + 1);
	if (ts->role == TLS_ROLE_SERVER)
		set_server_options(ctx, ts);
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
fail:
	*bad_param = bad;
	SSL_CTX_free(ctx);
	return NULL;
}

/* ---- fingerprints --------------------------------------------------------- */

bool tls_digest_known(const char *digest)
{
	return digest && EVP_get_digestbyname(digest) != NULL;
}

static char *hex_colons(const unsigned char *md, unsigned int len)
{
	char *s = malloc(len * 3 + 1);

	if (s == NULL)
		return NULL;
	for (unsigned int i = 0; i < len; i++)
		snprintf(s + i * 3, 4, "%02X%s", md[i], i + 1 < len ? ":" : "");
	s[len ? len * 3 - 1 : 0] = 0;
	return s;
}

/* The digest (X509_digest or X509_pubkey_digest) of cert, in hex with
 * colons; sha256 unless digest names another. */
static char *fprint(X509 *cert, const char *digest,
		    int (*digest_fn)(const X509 *, const EVP_MD *,
				     unsigned char *, unsigned int *))
{
	const EVP_MD *md = EVP_get_digestbyname(digest ? digest : "sha256");
	unsigned char buf[EVP_MAX_MD_SIZE];
	unsigned int n;

	if (md == NULL || cert == NULL || !digest_fn(cert, md, buf, &n))
		return NULL;
	return hex_colons(buf, n);
}

char *tls_cert_fprint(X509 *cert, const char *digest)
{
	return fprint(cert, digest, X509_digest);
}

char *tls_pkey_fprint(X509 *cert, const char *digest)
{
	return fprint(cert, digest, X509_pubkey_digest);
}

/* ---- handshake results ---------------------------------------------------------- */

static char *name_text(const X509_NAME *name)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;
	long n;
	char *p;

	X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	n = BIO_get_mem_data(b, &p);
	s = strndup(p, n);
	BIO_free(b);
	return s;
}

/* The CN (or, failing that, the O) of a name; "" when neither. */
static char *name_cn(const X509_NAME *name, bool org_fallback)
{
	char buf[256];

	if (X509_NAME_get_text_by_NID((X509_NAME *)name, NID_commonName,
				      buf, sizeof buf) > 0)
		return strdup(buf);
	if (org_fallback && X509_NAME_get_text_by_NID((X509_NAME *)name,
		NID_organizationName, buf, sizeof buf) > 0)
		return strdup(buf);
	return strdup("");
}

static void peer_info(struct tls_info *ti, SSL *ssl, const char *digest)
{
	X509 *peer = SSL_get1_peer_certificate(ssl);
	BIO *b;
	char *p;
	long n;

	if (peer == NULL)
		return;
	ti->peer_cert = true;
	ti->peer_trusted = SSL_get_verify_result(ssl) == X509_V_OK;
	ti->peer_CN = name_cn(X509_get_subject_name(peer), false);
	ti->peer_subject = name_text(X509_get_subject_name(peer));
	ti->peer_issuer = name_text(X509_get_issuer_name(peer));
	ti->issuer_CN = name_cn(X509_get_issuer_name(peer), true);
	ti->peer_cert_fprint = tls_cert_fprint(peer, digest);
	ti->peer_pkey_fprint = tls_pkey_fprint(peer, digest);
	b = BIO_new(BIO_s_mem());
	ASN1_TIME_print(b, X509_get0_notAfter(peer));
	n = BIO_get_mem_data(b, &p);
	ti->peer_not_after = strndup(p, n);
	BIO_free(b);
	X509_free(peer);
}

void tls_info_get(struct tls_info *ti, SSL *ssl, const char *digest)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int group;

	memset(ti, 0, sizeof *ti);
	snprintf(ti->protocol, sizeof ti->protocol, "%s", SSL_get_version(ssl));
	if (c) {
		snprintf(ti->cipher, sizeof ti->cipher, "%s", SSL_CIPHER_get_name(c));
		ti->cipher_bits = SSL_CIPHER_get_bits(c, &ti->alg_bits);
	}
	group = SSL_get_negotiated_group(ssl);
	if (group != 0) {
		const char *g = SSL_group_to_name(ssl, group);

		snprintf(ti->kex, sizeof ti->kex, "%s", g ? g : OBJ_nid2sn(group));
	}
	ti->reused = SSL_session_reused(ssl);
	peer_info(ti, ssl, digest);
}

void tls_info_free(struct tls_info *ti)
{
	free(ti->peer_CN);
	free(ti->peer_subject);
	free(ti->peer_issuer);
	free(ti->issuer_CN);
	free(ti->peer_cert_fprint);
	free(ti->peer_pkey_fprint);
	free(ti->peer_not_after);
	memset(ti, 0, sizeof *ti);
}

const char *tls_trust_word(const struct tls_info *ti)
{
	if (!ti->peer_cert)
		return "Anonymous";
	return ti->peer_trusted ? "Trusted" : "Untrusted";
}

/* "RSA-PSS (2048 bits)", "ECDSA (P-256)" for a key and signature type. */
static size_t sig_text(char *buf, size_t len, EVP_PKEY *key, int sig_type)
{
	const char *alg;
	char curve[64];
	size_t clen = 0;

	if (key == NULL)
		return 0;
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		alg = sig_type == EVP_PKEY_RSA_PSS ? "RSA-PSS" : "RSA";
		return snprintf(buf, len, "%s (%d bits)", alg, EVP_PKEY_get_bits(key));
	case EVP_PKEY_EC:
		if (!EVP_PKEY_get_group_name(key, curve, sizeof curve, &clen))
			snprintf(curve, sizeof curve, "%d bits", EVP_PKEY_get_bits(key));
		else {
			int nid = OBJ_sn2nid(curve);
			const char *nist = nid ? EC_curve_nid2nist(nid) : NULL;

			if (nist)
				snprintf(curve, sizeof curve, "%s", nist);
		}
		return snprintf(buf, len, "ECDSA (%s)", curve);
	case EVP_PKEY_ED25519:
		return snprintf(buf, len, "ED25519");
	case EVP_PKEY_ED448:
		return snprintf(buf, len, "ED448");
	default:
		return snprintf(buf, len, "%s", OBJ_nid2sn(EVP_PKEY_get_base_id(key)));
	}
}

static size_t add_signature(char *buf, size_t len, const char *who,
			    EVP_PKEY *key, int sig_type, int md_nid)
{
	size_t n = 0;
	char text[96];

	if (sig_text(text, sizeof text, key, sig_type) == 0)
		return 0;
	n += snprintf(buf + n, len - n, " %s-signature %s", who, text);
	if (md_nid != NID_undef && n < len)
		n += snprintf(buf + n, len - n, " %s-digest %s", who,
			      OBJ_nid2sn(md_nid));
	return n;
}

void tls_summary(char *buf, size_t len, SSL *ssl, const struct tls_info *ti)
{
	bool server = SSL_is_server(ssl);
	X509 *peer = SSL_get0_peer_certificate(ssl);
	int type = NID_undef, md = NID_undef;
	size_t n = snprintf(buf, len, "%s with cipher %s (%d/%d bits)",
			    ti->protocol, ti->cipher, ti->cipher_bits, ti->alg_bits);

	if (*ti->kex && n < len)
		n += snprintf(buf + n, len - n, " key-exchange %s", ti->kex);
	/* our own signature: the server's on a server, the client's on a
	 * client with a certificate; then the peer's */
	if (n < len && SSL_get_certificate(ssl) && !ti->reused
	    && SSL_get_signature_type_nid(ssl, &type)) {
		if (!SSL_get_signature_nid(ssl, &md))
			md = NID_undef;
		n += add_signature(buf + n, len - n, server ? "server" : "client",
				   X509_get0_pubkey(SSL_get_certificate(ssl)),
				   type, md);
	}
	if (n < len && peer && !ti->reused) {
		type = NID_undef;
		md = NID_undef;
		SSL_get_peer_signature_type_nid(ssl, &type);
		if (!SSL_get_peer_signature_nid(ssl, &md))
			md = NID_undef;
		add_signature(buf + n, len - n, server ? "client" : "server",
			      X509_get0_pubkey(peer), type, md);
	}
}

/* ---- certificate checks ----------------------------------------------------- */

bool tls_cert_covers_host(X509 *cert, const char *host)
{
	return X509_check_host(cert, host, 0, 0, NULL) == 1;
}

bool tls_cert_expired(X509 *cert)
{
	return X509_cmp_current_time(X509_get0_notAfter(cert)) < 0
		|| X509_cmp_current_time(X509_get0_notBefore(cert)) > 0;
}
