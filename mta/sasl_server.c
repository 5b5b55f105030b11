/*
 * sasl_server.c - the backend-independent half of the SMTP server's SASL
 * (sasl_server.h): picks the backend smtpd_sasl_type names, applies the
 * security options (smtpd_sasl_security_options, or
 * smtpd_sasl_tls_security_options under TLS), and offers the base64
 * helpers the backends and the client share.
 *
 * Promise: an unknown smtpd_sasl_type or a bad security option is a
 * NULL server with a reason (sluice check reports them first), never a
 * crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sasl/sasl.h>

#include "config.h"
#include "diag.h"
#include "sasl_server.h"

struct sasl_server {
	const struct sasl_backend *be;
	void *impl;
	int secflags;           /* of this session (TLS or not) */
	int tls_secflags;       /* what TLS would allow */
};

static const struct sasl_backend *backend_named(const char *type)
{
	if (strcasecmp(type, "cyrus") == 0)
		return &sasl_backend_cyrus;
	if (strcasecmp(type, "dovecot") == 0)
		return &sasl_backend_dovecot;
	return NULL;
}

int sasl_security_flags(char **list, int *flags, char *err, size_t errlen)
{
	static const struct { const char *name; int flag; } words[] = {
		{ "noplaintext", SASL_OPT_NOPLAINTEXT },
		{ "noactive", SASL_OPT_NOACTIVE },
		{ "nodictionary", SASL_OPT_NODICTIONARY },
		{ "noanonymous", SASL_OPT_NOANONYMOUS },
		{ "mutual_auth", SASL_OPT_MUTUAL_AUTH },
		{ "forward_secrecy", SASL_OPT_FORWARD_SECRECY },
	};

	*flags = 0;
	for (int i = 0; list && list[i]; i++) {
		size_t k;

		for (k = 0; k < sizeof words / sizeof words[0]; k++)
			if (strcasecmp(list[i], words[k].name) == 0)
				break;
		if (k == sizeof words / sizeof words[0]) {
			snprintf(err, errlen, "unknown SASL security option \"%s\"",
				 list[i]);
			return -1;
		}
		*flags |= words[k].flag;
	}
	return 0;
}

static int flags_of(const struct config *c, const char *param, int *flags,
		    char *err, size_t errlen)
{
	char **list = cfg_list(c, param);
	int rc = sasl_security_flags(list, flags, err, errlen);

	cfg_list_free(list);
	return rc;
}

struct sasl_server *xsasl_server_create(const struct xsasl_server_params *p,
				       char *err, size_t errlen)
{
	const char *type = cfg_str(p->cfg, "smtpd_sasl_type");
	struct sasl_server *srv;
	int plain_flags, tls_flags;

	if ((srv = calloc(1, sizeof *srv)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((srv->be = backend_named(type)) == NULL) {
		snprintf(err, errlen, "unsupported smtpd_sasl_type \"%s\"", type);
		free(srv);
		return NULL;
	}
	if (flags_of(p->cfg, "smtpd_sasl_security_options", &plain_flags, err,
		     errlen) < 0
	    || flags_of(p->cfg, "smtpd_sasl_tls_security_options", &tls_flags,
			err, errlen) < 0) {
		free(srv);
		return NULL;
	}
	/* Under TLS nothing is plaintext any more (libsasl2's rule for an
	 * external security layer, which Postfix relies on) */
	tls_flags &= ~SASL_OPT_NOPLAINTEXT;
	srv->secflags = p->tls ? tls_flags : plain_flags;
	srv->tls_secflags = tls_flags;
	if ((srv->impl = srv->be->create(p, srv->secflags, err, errlen)) == NULL) {
		free(srv);
		return NULL;
	}
	return srv;
}

const char *xsasl_server_mechs(const struct sasl_server *srv)
{
	return srv->be->mechs(srv->impl);
}

bool xsasl_server_mech_needs_tls(struct sasl_server *srv, const char *mech)
{
	return srv->secflags != srv->tls_secflags
		&& srv->be->mech_allowed(srv->impl, mech, srv->tls_secflags);
}

void xsasl_server_start(struct sasl_server *srv, const char *mech,
		       const char *init_b64, xsasl_server_fn fn, void *ctx)
{
	srv->be->start(srv->impl, mech, init_b64, fn, ctx);
}

void xsasl_server_next(struct sasl_server *srv, const char *resp_b64,
		      xsasl_server_fn fn, void *ctx)
{
	srv->be->next(srv->impl, resp_b64, fn, ctx);
}

const char *xsasl_server_username(const struct sasl_server *srv)
{
	return srv->be->username(srv->impl);
}

int xsasl_server_user_exists(struct sasl_server *srv, const char *user)
{
	return srv->be->user_exists(srv->impl, user);
}

void xsasl_server_free(struct sasl_server *srv)
{
	if (srv == NULL)
		return;
	srv->be->free(srv->impl);
	free(srv);
}

int xsasl_server_check(const struct config *c, const char **param,
		      char *err, size_t errlen)
{
	const struct sasl_backend *be = backend_named(cfg_str(c, "smtpd_sasl_type"));
	int flags;

	if (be == NULL) {
		*param = "smtpd_sasl_type";
		snprintf(err, errlen, "unsupported smtpd_sasl_type \"%s\"; use cyrus or dovecot",
			 cfg_str(c, "smtpd_sasl_type"));
		return -1;
	}
	*param = "smtpd_sasl_security_options";
	if (flags_of(c, *param, &flags, err, errlen) < 0)
		return -1;
	*param = "smtpd_sasl_tls_security_options";
	if (flags_of(c, *param, &flags, err, errlen) < 0)
		return -1;
	*param = "smtpd_sasl_path";
	return be->check(c, param, err, errlen);
}

/* One check per distinct backend (type and path): listeners usually
 * share it. */
void sasl_check(struct diag *d, const struct sluice_config *sc,
		const char *main_path, int level)
{
	char seen[16][600];
	int nseen = 0;

	for (int i = 0; i < sc->nlisteners; i++) {
		const struct config *c = sc->listeners[i].cfg;
		const char *param = NULL, *file;
		char key[600], err[1024];
		int line = 0, k;

		if (!cfg_bool(c, "smtpd_sasl_auth_enable"))
			continue;
		snprintf(key, sizeof key, "%s:%s:%s", cfg_str(c, "smtpd_sasl_type"),
			 cfg_str(c, "smtpd_sasl_path"),
			 cfg_str(c, "cyrus_sasl_config_path"));
		for (k = 0; k < nseen && strcmp(seen[k], key) != 0; k++)
			;
		if (k < nseen)
			continue;
		if (nseen < 16)
			snprintf(seen[nseen++], sizeof seen[0], "%s", key);
		if (xsasl_server_check(c, &param, err, sizeof err) == 0)
			continue;
		file = param ? cfg_where(c, param, &line) : NULL;
		if (param && file == NULL)
			file = main_path;
		if (param)
			diag_add(d, (enum diag_level)level, file, line, "%s%s", err,
				 line ? "" : " (smtpd_sasl_auth_enable = yes)");
		else
			diag_add(d, (enum diag_level)level, NULL, 0, "%s", err);
	}
}

const char *sasl_library_version(void)
{
	static char buf[64];
	const char *impl = NULL, *ver = NULL;

	if (buf[0] == 0) {
		sasl_version_info(&impl, &ver, NULL, NULL, NULL, NULL);
		snprintf(buf, sizeof buf, "%s %s", impl ? impl : "Cyrus SASL",
			 ver ? ver : "");
	}
	return buf;
}

/* ---- base64 ------------------------------------------------------------ */

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void sasl_b64_encode(const unsigned char *in, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		out[o++] = b64[in[i] >> 2];
		out[o++] = b64[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		out[o++] = b64[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		out[o++] = b64[in[i + 2] & 63];
	}
	if (i < len) {
		out[o++] = b64[in[i] >> 2];
		if (i + 1 < len) {
			out[o++] = b64[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
			out[o++] = b64[(in[i + 1] & 15) << 2];
		} else {
			out[o++] = b64[(in[i] & 3) << 4];
			out[o++] = '=';
		}
		out[o++] = '=';
	}
	out[o] = 0;
}

static int b64_value(char ch)
{
	const char *p = ch ? strchr(b64, ch) : NULL;

	return p ? (int)(p - b64) : -1;
}

int sasl_b64_decode(const char *in, unsigned char *out, size_t outlen)
{
	size_t len = strlen(in), o = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
			} else if (pad || (v[k] = b64_value(in[i + k])) < 0) {
				return -1;
			}
		}
		if (o + 3 - pad > outlen)
			return -1;
		out[o++] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
		if (pad < 2)
			out[o++] = (unsigned char)((v[1] << 4) | (v[2] >> 2));
		if (pad < 1)
			out[o++] = (unsigned char)((v[2] << 6) | v[3]);
	}
	return (int)o;
}
