/*
 * tls_client.c - the OpenSSL side of TLS in the SMTP client: policy per
 * destination, client contexts, the in-process session cache, and the
 * verdict on a server's certificate.  The promises are in tls_client.h.
 *
 * Decisions:
 *   - Contexts come from tls_common.c (tls_settings_from_config() with
 *     the "smtp" prefix, then tls_ctx_create()), one per distinct set of
 *     protocols, cipher grade, exclusions, CA and client certificate, kept
 *     for the life of the process (at most TLSC_CTX_MAX; the oldest goes).
 *   - Sessions are cached in this process only (sluice has no tlsmgr):
 *     keyed by the server's address and port, salted with the context
 *     (so a session verified under one CAfile is never resumed under
 *     another), each kept smtp_tls_session_cache_timeout seconds.
 *   - Chain verification never stops a handshake (SSL_VERIFY_NONE with a
 *     callback that only records the first error, nearest the leaf), as
 *     in Postfix: the level decides afterwards.
 *   - Name matching is Postfix's match_servername(): "hostname" is the
 *     server's name as routed, "nexthop" the destination, "dot-nexthop"
 *     any subdomain of it, ".domain" any subdomain of domain, other words
 *     literal names; a certificate name "*.example.com" matches exactly
 *     one more label.  Names come from the subjectAltName DNS entries,
 *     or from the CommonName when there are none.
 *
 * This file owns the contexts, the session cache and the policy tables it
 * opened (process-wide; freed by tlsc_shutdown()).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "log.h"
#include "map.h"
#include "tls_client.h"

/* ---- process-wide state (this file's only) ------------------------------ */

struct ctx_slot {
	char *key;
	SSL_CTX *ctx;
	unsigned long salt;         /* hash of key, salts session ids */
	time_t made;
};

struct sess_slot {
	char id[TLSC_SERVERID_MAX];
	SSL_SESSION *sess;
	time_t expires;
};

static struct {
	struct ctx_slot ctx[TLSC_CTX_MAX];
	struct sess_slot sess[TLSC_SESSION_MAX];
	int exdata_index;           /* SSL ex_data: struct tlsc_ex */
	bool exdata_ready;
	char *maps_spec;            /* smtp_tls_policy_maps as opened */
	struct map_list *maps;
} st;

/* What a connection's SSL object carries for the callbacks. */
struct tlsc_ex {
	char id[TLSC_SERVERID_MAX];
	long long timeout;          /* session cache timeout */
	int err_code, err_depth;    /* first verification error, nearest leaf */
	char err_issuer[256];       /* issuer of the certificate at fault */
};

/* ---- levels and policy --------------------------------------------------- */

const char *tlsc_level_name(int level)
{
	static const char *const names[] = {
		"none", "may", "encrypt", "dane", "fingerprint", "verify", "secure"
	};

	return level >= 0 && level <= TLS_LEV_SECURE ? names[level] : "invalid";
}

static void policy_invalid(struct tlsc_policy *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void policy_invalid(struct tlsc_policy *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->why, sizeof p->why, fmt, ap);
	va_end(ap);
	p->invalid = true;
	msg_warn("%s", p->why);
}

/* The level word of a policy: dane (no DNSSEC here) reads as may. */
static int level_of(struct tlsc_policy *p, const char *word, const char *where)
{
	int level;

	if (strcasecmp(word, "dane") == 0 || strcasecmp(word, "dane-only") == 0) {
		msg_warn("%s: %s configured with dnssec lookups disabled; "
			 "using \"may\"", where, word);
		return TLS_LEV_MAY;
	}
	if ((level = tls_level_parse(word)) < 0)
		policy_invalid(p, "%s: unknown TLS security level \"%s\"", where,
			       word);
	return level;
}

/* "a:b:c" (or "a|b|c" for fingerprints) into p->match. */
static void set_match(struct tlsc_policy *p, const char *value, char sep)
{
	char *copy = strdup(value), *save = NULL, *tok;
	char seps[3] = { sep, 0, 0 };
	int n = 0;

	if (copy == NULL)
		msg_fatal("smtp: out of memory");
	for (tok = strtok_r(copy, seps, &save); tok && n < TLSC_MATCH_MAX;
	     tok = strtok_r(NULL, seps, &save))
		if ((p->match[n] = strdup(tok)) != NULL)
			n++;
	p->match[n] = NULL;
	free(copy);
}

static void copy_colons(char *dst, size_t len, const char *value)
{
	snprintf(dst, len, "%s", value);
	for (char *s = dst; *s; s++)
		if (*s == ':')
			*s = ' ';
}

/* One policy table entry: "level attr=value ...". */
static void parse_entry(struct tlsc_policy *p, const char *value,
			const char *where)
{
	char *copy = strdup(value), *save = NULL, *tok;
	const char *match = NULL;

	if (copy == NULL)
		msg_fatal("smtp: out of memory");
	tok = strtok_r(copy, " \t,", &save);
	p->level = level_of(p, tok ? tok : "", where);
	while (!p->invalid && (tok = strtok_r(NULL, " \t,", &save)) != NULL) {
		char *eq = strchr(tok, '=');

		if (eq == NULL) {
			policy_invalid(p, "%s: malformed attribute \"%s\" (expected "
				       "name=value)", where, tok);
			break;
		}
		*eq++ = 0;
		if (strcasecmp(tok, "match") == 0)
			match = value + (eq - copy);
		else if (strcasecmp(tok, "protocols") == 0)
			copy_colons(p->protocols, sizeof p->protocols, eq);
		else if (strcasecmp(tok, "ciphers") == 0)
			snprintf(p->grade, sizeof p->grade, "%s", eq);
		else if (strcasecmp(tok, "exclude") == 0)
			copy_colons(p->exclude, sizeof p->exclude, eq);
		else
			policy_invalid(p, "%s: unknown attribute \"%s\"", where, tok);
	}
	if (!p->invalid && match) {
		char m[512];

		snprintf(m, sizeof m, "%.*s", (int)strcspn(match, " \t,"), match);
		set_match(p, m, p->level == TLS_LEV_FINGERPRINT ? '|' : ':');
	}
	free(copy);
}

static struct map_list *policy_maps(const char *spec)
{
	char err[512];

	if (st.maps && strcmp(st.maps_spec, spec) == 0)
		return st.maps;
	if (st.maps)
		map_list_free(st.maps);
	free(st.maps_spec);
	st.maps = map_list_open(spec, err, sizeof err);
	st.maps_spec = strdup(spec);
	if (st.maps == NULL)
		msg_warn("smtp_tls_policy_maps: %s", err);
	return st.maps;
}

/* Look the next hop up, then a bare domain's parents.  1 found, 0 not,
 * -1 the table failed. */
static int policy_lookup(struct tlsc_policy *p, struct map_list *ml,
			 const char *nexthop, bool domain)
{
	const char *key = nexthop, *value;
	char where[600];
	enum map_status s;

	for (;;) {
		s = map_list_lookup(ml, key, &value);
		if (s == MAP_TEMPFAIL)
			return -1;
		if (s == MAP_FOUND) {
			snprintf(where, sizeof where, "smtp_tls_policy_maps, "
				 "next-hop destination \"%s\"", key);
			parse_entry(p, value, where);
			return 1;
		}
		if (!domain || (key = strchr(key + 1, '.')) == NULL)
			return 0;
	}
}

void tlsc_policy_get(struct tlsc_policy *p, const struct config *cfg,
		     const char *nexthop, bool domain)
{
	const char *spec = cfg_str(cfg, "smtp_tls_policy_maps");
	struct map_list *ml;

	memset(p, 0, sizeof *p);
	if (spec && *spec) {
		snprintf(p->source, sizeof p->source, "smtp_tls_policy_maps");
		if ((ml = policy_maps(spec)) == NULL) {
			policy_invalid(p, "TLS policy lookup for %s: table %s is "
				       "unavailable", nexthop, spec);
			return;
		}
		switch (policy_lookup(p, ml, nexthop, domain)) {
		case 1:
			return;
		case -1:
			policy_invalid(p, "TLS policy lookup for %s: table lookup "
				       "failed", nexthop);
			return;
		}
	}
	snprintf(p->source, sizeof p->source, "smtp_tls_security_level");
	p->level = level_of(p, cfg_str(cfg, "smtp_tls_security_level"),
			    "smtp_tls_security_level");
}

void tlsc_policy_free(struct tlsc_policy *p)
{
	for (int i = 0; p->match[i]; i++)
		free(p->match[i]);
	memset(p, 0, sizeof *p);
}

/* ---- contexts ------------------------------------------------------------ */

static unsigned long hash_text(const char *s)
{
	unsigned long h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static void ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
		    long argl, void *argp)
{
	free(ptr);
}

static int ex_index(void)
{
	if (!st.exdata_ready) {
		st.exdata_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ex_free);
		st.exdata_ready = true;
	}
	return st.exdata_index;
}

static struct sess_slot *sess_find(const char *id, bool make)
{
	struct sess_slot *free_slot = NULL, *oldest = &st.sess[0];
	time_t now = time(NULL);

	for (int i = 0; i < TLSC_SESSION_MAX; i++) {
		struct sess_slot *s = &st.sess[i];

		if (s->sess && s->expires <= now) {
			SSL_SESSION_free(s->sess);
			s->sess = NULL;
		}
		if (s->sess && strcmp(s->id, id) == 0)
			return s;
		if (s->sess == NULL && free_slot == NULL)
			free_slot = s;
		if (s->sess && s->expires < oldest->expires)
			oldest = s;
	}
	if (!make)
		return NULL;
	if (free_slot == NULL) {
		free_slot = oldest;
		SSL_SESSION_free(free_slot->sess);
		free_slot->sess = NULL;
	}
	snprintf(free_slot->id, sizeof free_slot->id, "%s", id);
	return free_slot;
}

/* OpenSSL hands over each new session (TLS 1.3: after the handshake). */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tlsc_ex *ex = SSL_get_ex_data(ssl, ex_index());
	struct sess_slot *s;

	if (ex == NULL || ex->timeout <= 0 || !SSL_SESSION_is_resumable(sess))
		return 0;
	s = sess_find(ex->id, true);
	SSL_SESSION_free(s->sess);
	s->sess = sess;
	s->expires = time(NULL) + (time_t)ex->timeout;
	return 1;               /* the cache holds the reference now */
}

/* Settings for this policy: the level's lists, or the policy's own. */
static void policy_settings(struct tls_settings *ts, const struct config *cfg,
			    const struct tlsc_policy *p)
{
	bool mandatory = p->level >= TLS_LEV_ENCRYPT;

	tls_settings_from_config(ts, cfg, "smtp", TLS_ROLE_CLIENT, mandatory);
	if (*p->protocols)
		ts->protocols = p->protocols;
	if (*p->grade) {
		char pn[64];
		const char *v;

		snprintf(pn, sizeof pn, "tls_%s_cipherlist", p->grade);
		free(ts->cipherlist);
		v = cfg_lookup(cfg, pn);
		ts->cipherlist = strdup(v ? v : "");
		ts->grade = p->grade;
	}
	if (*p->exclude) {
		char *both;

		if (asprintf(&both, "%s %s", ts->exclude ? ts->exclude : "",
			     p->exclude) < 0)
			msg_fatal("smtp: out of memory");
		free((char *)ts->exclude);
		ts->exclude = both;
	}
}

static char *settings_key(const struct tls_settings *ts)
{
	char *key;

	if (asprintf(&key, "%d|%s|%s|%s|%s|%s|%s|%s", ts->mandatory,
		     ts->protocols, ts->cipherlist ? ts->cipherlist : "",
		     ts->exclude ? ts->exclude : "", ts->CAfile ? ts->CAfile : "",
		     ts->CApath ? ts->CApath : "", ts->cert_file ? ts->cert_file : "",
		     ts->key_file ? ts->key_file : "") < 0)
		msg_fatal("smtp: out of memory");
	return key;
}

static struct ctx_slot *ctx_for(const struct tls_settings *ts, char *err,
				size_t errlen)
{
	char *key = settings_key(ts);
	struct ctx_slot *slot = &st.ctx[0];
	const char *bad;
	SSL_CTX *ctx;

	for (int i = 0; i < TLSC_CTX_MAX; i++) {
		if (st.ctx[i].key && strcmp(st.ctx[i].key, key) == 0) {
			free(key);
			return &st.ctx[i];
		}
		if (st.ctx[i].key == NULL || st.ctx[i].made < slot->made)
			slot = &st.ctx[i];
	}
	if ((ctx = tls_ctx_create(ts, err, errlen, &bad)) == NULL) {
		if (bad) {
			size_t n = strlen(err);

			snprintf(err + n, errlen - n, " (%s)", bad);
		}
		free(key);
		return NULL;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT
				       | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
	if (ts->session_timeout > 0)
		SSL_CTX_set_timeout(ctx, 2 * ts->session_timeout);
	if (slot->ctx)
		SSL_CTX_free(slot->ctx);
	free(slot->key);
	slot->key = key;
	slot->ctx = ctx;
	slot->salt = hash_text(key);
	slot->made = time(NULL);
	return slot;
}

/* Record the first verification error nearest the leaf; go on anyway. */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs,
		SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tlsc_ex *ex = ssl ? SSL_get_ex_data(ssl, ex_index()) : NULL;
	int depth = X509_STORE_CTX_get_error_depth(xs);
	X509 *cert = X509_STORE_CTX_get_current_cert(xs);

	if (!ok && ex && (ex->err_code == X509_V_OK || depth < ex->err_depth)) {
		ex->err_code = X509_STORE_CTX_get_error(xs);
		ex->err_depth = depth;
		ex->err_issuer[0] = 0;
		if (cert)
			X509_NAME_oneline(X509_get_issuer_name(cert), ex->err_issuer,
					  sizeof ex->err_issuer);
	}
	return 1;
}

SSL *tlsc_ssl_new(const struct config *cfg, const struct tlsc_policy *p,
		  const char *serverid, char *err, size_t errlen)
{
	struct tls_settings ts;
	struct ctx_slot *slot;
	struct tlsc_ex *ex;
	struct sess_slot *s;
	SSL *ssl;

	policy_settings(&ts, cfg, p);
	slot = ctx_for(&ts, err, errlen);
	if (slot == NULL) {
		tls_settings_free(&ts);
		return NULL;
	}
	if ((ssl = SSL_new(slot->ctx)) == NULL
	    || (ex = calloc(1, sizeof *ex)) == NULL) {
		tls_error_text(err, errlen);
		SSL_free(ssl);
		tls_settings_free(&ts);
		return NULL;
	}
	snprintf(ex->id, sizeof ex->id, "%lx:%s", slot->salt, serverid);
	ex->timeout = ts.session_timeout;
	ex->err_code = X509_V_OK;
	SSL_set_ex_data(ssl, ex_index(), ex);
	SSL_set_verify(ssl, SSL_VERIFY_NONE, verify_cb);
	if ((s = sess_find(ex->id, false)) != NULL)
		SSL_set_session(ssl, s->sess);
	tls_settings_free(&ts);
	return ssl;
}

/* ---- the verdict --------------------------------------------------------- */

/* Postfix's match_servername(): does certificate name `certid` satisfy
 * one of the patterns? */
static bool name_matches(const char *certid, char *const *patterns,
			 const char *host, const char *nexthop)
{
	for (int i = 0; patterns && patterns[i]; i++) {
		const char *want = patterns[i], *parent;
		bool sub = false;
		size_t idlen = strlen(certid), dlen;

		if (strcasecmp(want, "nexthop") == 0)
			want = nexthop;
		else if (strcasecmp(want, "hostname") == 0)
			want = host;
		else if (strcasecmp(want, "dot-nexthop") == 0) {
			want = nexthop;
			sub = true;
		} else if (want[0] == '.' && want[1]) {
			want++;
			sub = true;
		}
		dlen = strlen(want);
		if (sub) {
			if (idlen > dlen + 1 && certid[idlen - dlen - 1] == '.'
			    && strcasecmp(certid + idlen - dlen, want) == 0)
				return true;
			continue;
		}
		if (strcasecmp(certid, want) == 0)
			return true;
		if (certid[0] == '*' && certid[1] == '.' && certid[2]
		    && (parent = strchr(want, '.')) != NULL
		    && strcasecmp(parent, certid + 1) == 0)
			return true;
	}
	return false;
}

/* Match the subjectAltName DNS names (or the CN without them). */
static bool cert_names_match(X509 *cert, char *const *patterns,
			     const char *host, const char *nexthop,
			     const char *namaddrport, bool verbose)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name,
					       NULL, NULL);
	bool matched = false, any_dns = false;
	char cn[256];

	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		const char *dns;

		if (gn->type != GEN_DNS)
			continue;
		any_dns = true;
		dns = (const char *)ASN1_STRING_get0_data(gn->d.dNSName);
		if ((size_t)ASN1_STRING_length(gn->d.dNSName) != strlen(dns))
			continue;       /* an embedded NUL: never a match */
		if (name_matches(dns, patterns, host, nexthop)) {
			matched = true;
			if (verbose)
				msg_info("%s: Matched subjectAltName: %s", namaddrport,
					 dns);
			break;
		}
		if (verbose)
			msg_info("%s: subjectAltName: %s", namaddrport, dns);
	}
	GENERAL_NAMES_free(gens);
	if (any_dns)
		return matched;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
				      NID_commonName, cn, sizeof cn) <= 0)
		return false;
	matched = name_matches(cn, patterns, host, nexthop);
	if (verbose)
		msg_info("%s %sCommonName %s", namaddrport,
			 matched ? "Matched " : "", cn);
	return matched;
}

static bool fingerprint_matches(const struct tls_info *ti,
				char *const *patterns)
{
	for (int i = 0; patterns && patterns[i]; i++)
		if ((ti->peer_cert_fprint
		     && strcasecmp(patterns[i], ti->peer_cert_fprint) == 0)
		    || (ti->peer_pkey_fprint
			&& strcasecmp(patterns[i], ti->peer_pkey_fprint) == 0))
			return true;
	return false;
}

/* Postfix's tls_log_verify_error(), with the "server" prefix. */
static void log_verify_error(SSL *ssl, const char *namaddrport)
{
	struct tlsc_ex *ex = SSL_get_ex_data(ssl, ex_index());
	long err = SSL_get_verify_result(ssl);
	const char *purpose;

	if (err == X509_V_OK)
		return;
	if (SSL_session_reused(ssl) || ex == NULL || ex->err_code == X509_V_OK) {
		msg_info("%s: re-using session with untrusted certificate, "
			 "look for details earlier in the log", namaddrport);
		return;
	}
	err = ex->err_code;
	purpose = ex->err_depth > 0 ? "CA" : "server";
	switch (err) {
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		msg_info("server certificate verification failed for %s: "
			 "self-signed certificate", namaddrport);
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		msg_info("server certificate verification failed for %s: "
			 "untrusted issuer %s", namaddrport, ex->err_issuer);
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		msg_info("%s certificate verification failed for %s: "
			 "certificate not yet valid", purpose, namaddrport);
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		msg_info("%s certificate verification failed for %s: "
			 "certificate has expired", purpose, namaddrport);
		break;
	default:
		msg_info("%s certificate verification failed for %s: num=%ld:%s",
			 purpose, namaddrport, err,
			 X509_verify_cert_error_string(err));
		break;
	}
}

static char **default_match(const struct config *cfg, int level)
{
	return cfg_list(cfg, level == TLS_LEV_SECURE ? "smtp_tls_secure_cert_match"
			: "smtp_tls_verify_cert_match");
}

void tlsc_peer_check(struct tlsc_peer *pr, SSL *ssl, const struct config *cfg,
		     const struct tlsc_policy *p, const char *host,
		     const char *nexthop, const char *namaddrport)
{
	int loglevel = (int)cfg_int(cfg, "smtp_tls_loglevel");
	const char *digest = cfg_str(cfg, "smtp_tls_fingerprint_digest");
	bool must_trust = p->level >= TLS_LEV_VERIFY;
	X509 *peer = SSL_get0_peer_certificate(ssl);
	char summary[600];

	memset(pr, 0, sizeof *pr);
	tls_info_get(&pr->info, ssl, tls_digest_known(digest) ? digest : "sha256");
	pr->trusted = pr->info.peer_trusted;
	if (p->level == TLS_LEV_FINGERPRINT)
		pr->trusted = pr->matched = peer
			&& fingerprint_matches(&pr->info, p->match);
	else if (peer && pr->trusted && must_trust) {
		char **dflt = p->match[0] ? NULL : default_match(cfg, p->level);

		pr->matched = cert_names_match(peer, dflt ? dflt : p->match, host,
					       nexthop, namaddrport, loglevel >= 2);
		cfg_list_free(dflt);
	}
	if (pr->info.reused && loglevel >= 2)
		msg_info("%s: Reusing old session", namaddrport);
	if (peer && loglevel >= 2)
		msg_info("%s: subject_CN=%s, issuer_CN=%s, fingerprint=%s, "
			 "pkey_fingerprint=%s", namaddrport, pr->info.peer_CN,
			 pr->info.issuer_CN, pr->info.peer_cert_fprint
			 ? pr->info.peer_cert_fprint : "",
			 pr->info.peer_pkey_fprint ? pr->info.peer_pkey_fprint : "");
	if (peer && !pr->info.peer_trusted && p->level != TLS_LEV_FINGERPRINT
	    && (must_trust || loglevel >= 2))
		log_verify_error(ssl, namaddrport);
	if (loglevel >= 1) {
		tls_summary(summary, sizeof summary, ssl, &pr->info);
		msg_info("%s TLS connection established to %s: %s",
			 !peer ? "Anonymous" : pr->matched ? "Verified"
			 : pr->trusted ? "Trusted" : "Untrusted",
			 namaddrport, summary);
	}
}

void tlsc_peer_free(struct tlsc_peer *pr)
{
	tls_info_free(&pr->info);
}

void tlsc_shutdown(void)
{
	for (int i = 0; i < TLSC_SESSION_MAX; i++)
		if (st.sess[i].sess) {
			SSL_SESSION_free(st.sess[i].sess);
			st.sess[i].sess = NULL;
		}
	for (int i = 0; i < TLSC_CTX_MAX; i++) {
		if (st.ctx[i].ctx)
			SSL_CTX_free(st.ctx[i].ctx);
		free(st.ctx[i].key);
		st.ctx[i].ctx = NULL;
		st.ctx[i].key = NULL;
	}
	if (st.maps)
		map_list_free(st.maps);
	free(st.maps_spec);
	st.maps = NULL;
	st.maps_spec = NULL;
}
