/*
 * sasl_client.c - SMTP AUTH in the SMTP client (sasl_client.h) through
 * libsasl2's client side, as Postfix's smtp(8): the credentials come
 * from smtp_sasl_password_maps ("username:password", looked up by the
 * next-hop destination as routed - "[relay.example]:587" - then by the
 * server's name), libsasl2 picks the mechanism among those the server
 * offers, smtp_sasl_mechanism_filter keeps and the security options
 * allow (by default no plaintext mechanism over a cleartext connection).
 *
 * Postfix's log and status texts:
 *   SASL authentication failed; server relay[ip] said: 535 5.7.8 ...
 *   SASL authentication failed; cannot authenticate to server relay[ip]: no mechanism available
 * Both defer the mail (4.7.x: smtp_sasl_auth_soft_bounce's default) and
 * the next server is tried.
 *
 * libsasl2's client library is initialised once per process (state
 * owned here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sasl/sasl.h>

#include "config.h"
#include "log.h"
#include "map.h"
#include "sasl_client.h"
#include "sasl_server.h"
#include "smtp_client.h"

static bool client_ready;

struct smtpc_sasl {
	char mechs[512];                /* offered in the EHLO reply */
	sasl_conn_t *conn;
	char *user;
	sasl_secret_t *secret;
	sasl_callback_t cb[4];
};

typedef int (*sasl_cb_fn)(void);

static int get_user(void *ctx, int id, const char **result, unsigned *len)
{
	struct smtpc_sasl *ss = ctx;

	if (id != SASL_CB_USER && id != SASL_CB_AUTHNAME)
		return SASL_FAIL;
	*result = ss->user;
	if (len)
		*len = (unsigned)strlen(ss->user);
	return SASL_OK;
}

static int get_secret(sasl_conn_t *conn, void *ctx, int id,
		      sasl_secret_t **psecret)
{
	struct smtpc_sasl *ss = ctx;

	if (id != SASL_CB_PASS)
		return SASL_FAIL;
	*psecret = ss->secret;
	return SASL_OK;
}

static struct smtpc_sasl *sasl_of(struct smtpc_conn *c)
{
	if (c->sasl == NULL && (c->sasl = calloc(1, sizeof *c->sasl)) == NULL)
		msg_fatal("out of memory");
	return c->sasl;
}

void smtpc_sasl_free(struct smtpc_conn *c)
{
	struct smtpc_sasl *ss = c->sasl;

	if (ss == NULL)
		return;
	if (ss->conn)
		sasl_dispose(&ss->conn);
	free(ss->user);
	if (ss->secret) {
		memset(ss->secret->data, 0, ss->secret->len);
		free(ss->secret);
	}
	free(ss);
	c->sasl = NULL;
}

/* Is `mech` kept by smtp_sasl_mechanism_filter (empty: all)? */
static bool filter_keeps(char **filter, const char *mech)
{
	if (filter == NULL || filter[0] == NULL)
		return true;
	for (int i = 0; filter[i]; i++)
		if (strcasecmp(filter[i], mech) == 0)
			return true;
	return false;
}

void smtpc_sasl_ehlo(struct smtpc_conn *c)
{
	const struct config *cfg = smtpc_cfg(c->d);
	struct smtpc_sasl *ss;
	char **filter;
	size_t n = 0;

	if (c->d == NULL || !cfg_bool(cfg, "smtp_sasl_auth_enable"))
		return;
	ss = sasl_of(c);
	ss->mechs[0] = 0;
	filter = cfg_list(cfg, "smtp_sasl_mechanism_filter");
	for (const char *p = strchr(c->reply.text, '\n'); p; p = strchr(p + 1, '\n')) {
		const char *line = p + 1 + 4;   /* past "250-" */
		char word[64];
		const char *w;

		if (strlen(p + 1) < 9 || strncasecmp(line, "AUTH", 4) != 0
		    || (line[4] != ' ' && line[4] != '='))
			continue;
		for (w = line + 5; *w && *w != '\n'; ) {
			size_t wl = strcspn(w, " \n");

			if (wl > 0 && wl < sizeof word) {
				memcpy(word, w, wl);
				word[wl] = 0;
				if (filter_keeps(filter, word) && strstr(ss->mechs, word) == NULL
				    && n + wl + 2 < sizeof ss->mechs)
					n += (size_t)snprintf(ss->mechs + n, sizeof ss->mechs - n,
							      "%s%s", n ? " " : "", word);
			}
			w += wl;
			w += *w == ' ';
		}
	}
	cfg_list_free(filter);
}

/* "user:password" for this next hop or server, or false. */
static bool find_password(struct smtpc_conn *c, const struct config *cfg,
			  struct smtpc_sasl *ss)
{
	const char *keys[2] = { smtpc_req(c->d)->nexthop, c->host };
	struct map_list *ml;
	const char *v = NULL, *colon;
	char err[512];
	bool found = false;

	if (*cfg_str(cfg, "smtp_sasl_password_maps") == 0)
		return false;
	if ((ml = map_list_open(cfg_str(cfg, "smtp_sasl_password_maps"), err,
				sizeof err)) == NULL) {
		msg_warn("smtp_sasl_password_maps: %s", err);
		return false;
	}
	for (int i = 0; i < 2 && !found; i++)
		found = keys[i] && map_list_lookup(ml, keys[i], &v) == MAP_FOUND;
	if (found && (colon = strchr(v, ':')) != NULL) {
		size_t plen = strlen(colon + 1);

		free(ss->user);
		if ((ss->user = strndup(v, (size_t)(colon - v))) == NULL
		    || (ss->secret = calloc(1, sizeof *ss->secret + plen + 1)) == NULL)
			msg_fatal("out of memory");
		ss->secret->len = plen;
		memcpy(ss->secret->data, colon + 1, plen);
	} else {
		found = false;
	}
	map_list_free(ml);
	return found;
}

/* The mail waits for another try (Postfix's smtp_sasl_auth_soft_bounce). */
static int auth_failed(struct smtpc_conn *c, const char *dsn, const char *text)
{
	msg_warn("%s", text);
	smtpc_site_fail(c->d, 4, dsn, "%s", text);
	smtpc_end(c, SMTPC_END_SITE_SOFT, false);
	return SMTPC_SASL_GONE;
}

static void send_b64(struct smtpc_conn *c, const char *prefix, const char *out,
		     unsigned outlen)
{
	char *b64 = malloc(4 * ((outlen + 2) / 3) + 2);

	if (b64 == NULL)
		msg_fatal("out of memory");
	sasl_b64_encode((const unsigned char *)(out ? out : ""), outlen, b64);
	if (*prefix)
		smtpc_send(c, "%s %s", prefix, outlen ? b64 : "=");
	else
		smtpc_send(c, "%s", b64);
	free(b64);
}

static int new_conn(struct smtpc_conn *c, const struct config *cfg,
		    struct smtpc_sasl *ss, char *err, size_t errlen)
{
	sasl_security_properties_t sec;
	char **opts;
	int flags = 0, rc;

	if (!client_ready) {
		if ((rc = sasl_client_init(NULL)) != SASL_OK) {
			snprintf(err, errlen, "SASL library initialization: %s",
				 sasl_errstring(rc, NULL, NULL));
			return -1;
		}
		client_ready = true;
	}
	ss->cb[0] = (sasl_callback_t){ SASL_CB_USER, (sasl_cb_fn)(void (*)(void))get_user, ss };
	ss->cb[1] = (sasl_callback_t){ SASL_CB_AUTHNAME, (sasl_cb_fn)(void (*)(void))get_user, ss };
	ss->cb[2] = (sasl_callback_t){ SASL_CB_PASS, (sasl_cb_fn)(void (*)(void))get_secret, ss };
	ss->cb[3] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };
	if ((rc = sasl_client_new("smtp", c->host, NULL, NULL, ss->cb, 0,
				  &ss->conn)) != SASL_OK) {
		snprintf(err, errlen, "per-session SASL client initialization: %s",
			 sasl_errstring(rc, NULL, NULL));
		return -1;
	}
	opts = cfg_list(cfg, smtpc_tls_active(c) ? "smtp_sasl_tls_security_options"
			: "smtp_sasl_security_options");
	rc = sasl_security_flags(opts, &flags, err, errlen);
	cfg_list_free(opts);
	if (rc < 0)
		return -1;
	/* Under TLS nothing is plaintext any more (libsasl2's rule for an
	 * external security layer: Postfix sets SASL_SSF_EXTERNAL) */
	if (smtpc_tls_active(c))
		flags &= ~SASL_OPT_NOPLAINTEXT;
	memset(&sec, 0, sizeof sec);
	sec.security_flags = (flags & SASL_OPT_NOPLAINTEXT ? SASL_SEC_NOPLAINTEXT : 0)
		| (flags & SASL_OPT_NOACTIVE ? SASL_SEC_NOACTIVE : 0)
		| (flags & SASL_OPT_NODICTIONARY ? SASL_SEC_NODICTIONARY : 0)
		| (flags & SASL_OPT_NOANONYMOUS ? SASL_SEC_NOANONYMOUS : 0)
		| (flags & SASL_OPT_MUTUAL_AUTH ? SASL_SEC_MUTUAL_AUTH : 0)
		| (flags & SASL_OPT_FORWARD_SECRECY ? SASL_SEC_FORWARD_SECRECY : 0);
	sasl_setprop(ss->conn, SASL_SEC_PROPS, &sec);
	return 0;
}

int smtpc_sasl_start(struct smtpc_conn *c)
{
	const struct config *cfg = smtpc_cfg(c->d);
	struct smtpc_sasl *ss = c->sasl;
	const char *out = NULL, *mech = NULL;
	unsigned outlen = 0;
	char err[512], text[1200];
	int rc;

	if (c->lmtp || ss == NULL || ss->mechs[0] == 0
	    || !cfg_bool(cfg, "smtp_sasl_auth_enable") || ss->conn != NULL
	    || !find_password(c, cfg, ss))
		return SMTPC_SASL_GO;
	if (new_conn(c, cfg, ss, err, sizeof err) < 0) {
		snprintf(text, sizeof text, "SASL authentication failed; cannot "
			 "authenticate to server %s: %s", c->namaddr, err);
		return auth_failed(c, "4.7.0", text);
	}
	rc = sasl_client_start(ss->conn, ss->mechs, NULL, &out, &outlen, &mech);
	if (rc != SASL_OK && rc != SASL_CONTINUE) {
		snprintf(text, sizeof text, "SASL authentication failed; cannot "
			 "authenticate to server %s: %s", c->namaddr,
			 rc == SASL_NOMECH ? "no mechanism available"
			 : sasl_errdetail(ss->conn));
		return auth_failed(c, "4.7.0", text);
	}
	if (out) {              /* with an initial response */
		char prefix[80];

		snprintf(prefix, sizeof prefix, "AUTH %s", mech);
		send_b64(c, prefix, out, outlen);
	} else {
		smtpc_send(c, "AUTH %s", mech);
	}
	c->state = SMTPC_AUTH;
	smtpc_timeouts(c, c->par->helo_timeout, c->par->helo_timeout);
	return SMTPC_SASL_WAIT;
}

int smtpc_sasl_reply(struct smtpc_conn *c)
{
	struct smtpc_sasl *ss = c->sasl;
	char text[SMTPC_REPLY_TEXT_MAX + 400], said[SMTPC_REPLY_TEXT_MAX], dsn[16];
	const char *out = NULL;
	unsigned outlen = 0;
	unsigned char *in;
	int inlen, rc;

	if (c->reply.code == 235)
		return SMTPC_SASL_GO;
	if (c->reply.code == 334) {
		const char *b64 = c->reply.text + (strlen(c->reply.text) > 4 ? 4 : strlen(c->reply.text));
		size_t cap = 3 * strlen(b64) / 4 + 3;

		if ((in = malloc(cap)) == NULL)
			msg_fatal("out of memory");
		inlen = sasl_b64_decode(b64, in, cap);
		rc = inlen < 0 ? SASL_BADPROT
			: sasl_client_step(ss->conn, (const char *)in, (unsigned)inlen,
					   NULL, &out, &outlen);
		free(in);
		if (rc != SASL_OK && rc != SASL_CONTINUE) {
			smtpc_send(c, "*");
			snprintf(text, sizeof text, "SASL authentication failed; cannot "
				 "authenticate to server %s: %s", c->namaddr,
				 sasl_errdetail(ss->conn));
			return auth_failed(c, "4.7.0", text);
		}
		send_b64(c, "", out, outlen);
		return SMTPC_SASL_WAIT;
	}
	snprintf(dsn, sizeof dsn, "%s", c->reply.dsn);
	dsn[0] = '4';
	snprintf(text, sizeof text, "SASL authentication failed; server %s said: %s",
		 c->namaddr, smtpc_reply_oneline(&c->reply, said, sizeof said));
	return auth_failed(c, dsn, text);
}
