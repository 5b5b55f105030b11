/*
 * restriction_tls.c - Postfix's TLS client certificate restrictions.
 *
 *   permit_tls_clientcerts      OK when the client's certificate
 *                               fingerprint, or the fingerprint of its
 *                               public key, is a key of relay_clientcerts
 *                               (digest smtpd_tls_fingerprint_digest,
 *                               "AB:CD:..." as Postfix prints it)
 *   permit_tls_all_clientcerts  OK for any client certificate that
 *                               verifies against smtpd_tls_CAfile/CApath
 *
 * Both answer DUNNO in plaintext and when the client sent no certificate
 * (smtpd_tls_ask_ccert = yes makes the server ask for one).  A table that
 * fails answers "451 4.3.0 <client>: Temporary lookup failure", as
 * Postfix does.  With smtpd_tls_loglevel >= 1 a permit is logged:
 * "relay_clientcerts: host[addr]: accepted by fingerprint ...".
 */
#include <stdio.h>

#include "config.h"
#include "log.h"
#include "map.h"
#include "restriction.h"
#include "restriction_builtin.h"
#include "smtp_session.h"
#include "tls_common.h"

static bool tls_logging(struct rcheck *c)
{
	long long v;

	return cfg_lookup_number(rcheck_config(c), "smtpd_tls_loglevel", &v) == 0
		&& v >= 1;
}

/* Look the certificate's, then its public key's fingerprint up. */
static int clientcert_listed(struct rcheck *c, const struct tls_info *ti)
{
	struct smtp_session *s = rcheck_session(c);
	const char *spec = cfg_str(rcheck_config(c), "relay_clientcerts");
	const char *fp[2] = { ti->peer_cert_fprint, ti->peer_pkey_fprint };
	const char *value;
	struct map_list *ml;
	char err[512];

	if (*spec == 0)
		return RV_DUNNO;
	if ((ml = map_list_open(spec, err, sizeof err)) == NULL) {
		msg_warn("relay_clientcerts: %s", err);
		return rb_lookup_failure(c, s->client_id);
	}
	for (int i = 0; i < 2; i++) {
		enum map_status st = fp[i] ? map_list_lookup(ml, fp[i], &value)
			: MAP_NOTFOUND;

		if (st == MAP_TEMPFAIL) {
			map_list_free(ml);
			return rb_lookup_failure(c, s->client_id);
		}
		if (st == MAP_FOUND) {
			rcheck_trace(c, "%s: %sfingerprint %s in relay_clientcerts",
				     s->client_id, i ? "public key " : "", fp[i]);
			if (tls_logging(c))
				msg_info("relay_clientcerts: %s: accepted by %sfingerprint %s",
					 s->client_id, i ? "public key " : "", fp[i]);
			map_list_free(ml);
			return RV_OK;
		}
	}
	map_list_free(ml);
	rcheck_trace(c, "%s: certificate fingerprint %s not in relay_clientcerts",
		     s->client_id, fp[0] ? fp[0] : "");
	return RV_DUNNO;
}

static int permit_tls_clientcerts(struct rcheck *c, const char *arg, void *data)
{
	struct smtp_session *s = rcheck_session(c);

	(void)arg, (void)data;
	if (s->tls == NULL || !s->tls->peer_cert) {
		rcheck_trace(c, "%s: no TLS client certificate", s->client_id);
		return RV_DUNNO;
	}
	return clientcert_listed(c, s->tls);
}

static int permit_tls_all_clientcerts(struct rcheck *c, const char *arg,
				      void *data)
{
	struct smtp_session *s = rcheck_session(c);

	(void)arg, (void)data;
	if (s->tls == NULL || !s->tls->peer_cert || !s->tls->peer_trusted) {
		rcheck_trace(c, "%s: no trusted TLS client certificate",
			     s->client_id);
		return RV_DUNNO;
	}
	if (tls_logging(c))
		msg_info("%s: trusted client certificate, subject_CN=%s, issuer=%s",
			 s->client_id, s->tls->peer_CN, s->tls->issuer_CN);
	return RV_OK;
}

const struct restriction_def restrictions_tls[] = {
	{ "permit_tls_clientcerts", 0, permit_tls_clientcerts, NULL },
	{ "permit_tls_all_clientcerts", 0, permit_tls_all_clientcerts, NULL },
	{ NULL, 0, NULL, NULL }
};
