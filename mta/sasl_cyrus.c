/*
 * sasl_cyrus.c - the "cyrus" SASL server backend: libsasl2, configured as
 * Postfix configures it.  smtpd_sasl_path is the application name (smtpd
 * -> smtpd.conf), read from cyrus_sasl_config_path before libsasl2's own
 * search path; smtpd.conf's pwcheck_method picks sasldb (auxprop),
 * saslauthd or anything else libsasl2 has, and mech_list the mechanisms.
 *
 * libsasl2 verifies synchronously (a saslauthd round trip is a local
 * socket exchange), so every step answers its callback before returning.
 * The library is initialised once per process, on first use, with the
 * application name and configuration path of that first configuration
 * (libsasl2 has one per process; see docs/auth.md).
 *
 * Promise: what libsasl2 logs goes to our log as warnings, and every
 * failure is a reason text, never a crash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sasl/sasl.h>

#include "config.h"
#include "log.h"
#include "sasl_server.h"

/* Process-wide libsasl2 state (owned here). */
static bool cyrus_ready;
static char cyrus_confpath[1024];

struct cyrus_srv {
	sasl_conn_t *conn;
	char *mechs;
	char *service, *fqdn, *realm, *iplocal, *ipremote;
	bool done;
};

static int cyrus_log(void *ctx, int level, const char *message)
{
	if (level <= SASL_LOG_WARN && message)
		msg_warn("SASL authentication problem: %s", message);
	else if (level <= SASL_LOG_NOTE && message)
		msg_info("SASL: %s", message);
	return SASL_OK;
}

static int cyrus_getconfpath(void *ctx, const char **path)
{
	*path = cyrus_confpath;
	return SASL_OK;
}

typedef int (*sasl_cb_fn)(void);

static int cyrus_init(const struct config *c, char *err, size_t errlen)
{
	static sasl_callback_t callbacks[] = {
		{ SASL_CB_LOG, (sasl_cb_fn)(void (*)(void))cyrus_log, NULL },
		{ SASL_CB_GETCONFPATH, (sasl_cb_fn)(void (*)(void))cyrus_getconfpath, NULL },
		{ SASL_CB_LIST_END, NULL, NULL },
	};
	static char app[256];
	int rc;

	if (cyrus_ready)
		return 0;
	snprintf(cyrus_confpath, sizeof cyrus_confpath, "%s",
		 cfg_str(c, "cyrus_sasl_config_path"));
	if (cyrus_confpath[0] == 0)     /* libsasl2's own search path */
		callbacks[1].id = SASL_CB_LIST_END;
	snprintf(app, sizeof app, "%s", cfg_str(c, "smtpd_sasl_path"));
	if ((rc = sasl_server_init(callbacks, app)) != SASL_OK) {
		snprintf(err, errlen, "SASL per-process initialization failed: %s",
			 sasl_errstring(rc, NULL, NULL));
		return -1;
	}
	cyrus_ready = true;
	return 0;
}

static unsigned cyrus_flags(int secflags)
{
	unsigned f = 0;

	if (secflags & SASL_OPT_NOPLAINTEXT) f |= SASL_SEC_NOPLAINTEXT;
	if (secflags & SASL_OPT_NOACTIVE) f |= SASL_SEC_NOACTIVE;
	if (secflags & SASL_OPT_NODICTIONARY) f |= SASL_SEC_NODICTIONARY;
	if (secflags & SASL_OPT_NOANONYMOUS) f |= SASL_SEC_NOANONYMOUS;
	if (secflags & SASL_OPT_MUTUAL_AUTH) f |= SASL_SEC_MUTUAL_AUTH;
	if (secflags & SASL_OPT_FORWARD_SECRECY) f |= SASL_SEC_FORWARD_SECRECY;
	return f;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

/* A libsasl2 connection with these security flags; its mechanism list in
 * *mechs (malloc'ed) when mechs is not NULL. */
static int cyrus_conn(struct cyrus_srv *cs, int secflags, sasl_conn_t **conn,
		      char **mechs, char *err, size_t errlen)
{
	sasl_security_properties_t sec;
	const char *list;
	unsigned len;
	int count, rc;

	rc = sasl_server_new(cs->service, cs->fqdn, cs->realm, cs->iplocal,
			     cs->ipremote, NULL, 0, conn);
	if (rc != SASL_OK) {
		snprintf(err, errlen, "SASL per-connection server initialization: %s",
			 sasl_errstring(rc, NULL, NULL));
		return -1;
	}
	memset(&sec, 0, sizeof sec);
	sec.min_ssf = 0;
	sec.max_ssf = 0;        /* no security layer: TLS is the one */
	sec.security_flags = cyrus_flags(secflags);
	sasl_setprop(*conn, SASL_SEC_PROPS, &sec);
	if (mechs == NULL)
		return 0;
	rc = sasl_listmech(*conn, NULL, "", " ", "", &list, &len, &count);
	if (rc != SASL_OK || count == 0) {
		snprintf(err, errlen, "no SASL authentication mechanisms: %s",
			 rc != SASL_OK ? sasl_errdetail(*conn) : "none left");
		sasl_dispose(conn);
		return -1;
	}
	if ((*mechs = strdup(list)) == NULL)
		msg_fatal("out of memory");
	return 0;
}

static void cyrus_free(void *impl)
{
	struct cyrus_srv *cs = impl;

	if (cs->conn)
		sasl_dispose(&cs->conn);
	free(cs->mechs);
	free(cs->service);
	free(cs->fqdn);
	free(cs->realm);
	free(cs->iplocal);
	free(cs->ipremote);
	free(cs);
}

static char *ip_port(const char *addr, int port)
{
	char *s;

	if (asprintf(&s, "%s;%d", addr, port) < 0)
		msg_fatal("out of memory");
	return s;
}

static void *cyrus_create(const struct xsasl_server_params *p, int secflags,
			  char *err, size_t errlen)
{
	struct cyrus_srv *cs;

	if (cyrus_init(p->cfg, err, errlen) < 0)
		return NULL;
	if ((cs = calloc(1, sizeof *cs)) == NULL)
		msg_fatal("out of memory");
	cs->service = strdup(cfg_str(p->cfg, "smtpd_sasl_service"));
	cs->fqdn = strdup(cfg_str(p->cfg, "myhostname"));
	cs->realm = dup_or_null(cfg_str(p->cfg, "smtpd_sasl_local_domain"));
	cs->iplocal = ip_port(p->server_addr, p->server_port);
	cs->ipremote = ip_port(p->client_addr, p->client_port);
	if (cyrus_conn(cs, secflags, &cs->conn, &cs->mechs, err, errlen) < 0) {
		cyrus_free(cs);
		return NULL;
	}
	return cs;
}

static const char *cyrus_mechs(void *impl)
{
	return ((struct cyrus_srv *)impl)->mechs;
}

static bool word_in(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; p && *p; p += strcspn(p, " "), p += *p == ' ') {
		if (strncasecmp(p, word, n) == 0 && (p[n] == 0 || p[n] == ' '))
			return true;
	}
	return false;
}

static bool cyrus_mech_allowed(void *impl, const char *mech, int secflags)
{
	struct cyrus_srv *cs = impl;
	sasl_conn_t *conn = NULL;
	char *mechs = NULL, err[256];
	bool ok;

	if (cyrus_conn(cs, secflags, &conn, &mechs, err, sizeof err) < 0)
		return false;
	ok = word_in(mechs, mech);
	free(mechs);
	sasl_dispose(&conn);
	return ok;
}

/* Turn a libsasl2 status and its output into our result. */
static void cyrus_answer(struct cyrus_srv *cs, int rc, const char *out,
			 unsigned outlen, xsasl_server_fn fn, void *ctx)
{
	char *b64;

	switch (rc) {
	case SASL_OK:
		cs->done = true;
		fn(ctx, SASL_R_DONE, "");
		return;
	case SASL_CONTINUE:
		if ((b64 = malloc(4 * ((outlen + 2) / 3) + 1)) == NULL)
			msg_fatal("out of memory");
		sasl_b64_encode((const unsigned char *)out, outlen, b64);
		fn(ctx, SASL_R_MORE, b64);
		free(b64);
		return;
	case SASL_NOUSER:
		fn(ctx, SASL_R_NOUSER, sasl_errstring(rc, NULL, NULL));
		return;
	case SASL_TRYAGAIN:
	case SASL_UNAVAIL:
		fn(ctx, SASL_R_TEMP, sasl_errstring(rc, NULL, NULL));
		return;
	default:
		fn(ctx, SASL_R_FAIL, sasl_errstring(rc, NULL, NULL));
		return;
	}
}

/* Decode a client response; -1 when it is not base64. */
static int decode(const char *b64, unsigned char **out)
{
	size_t cap = 3 * strlen(b64) / 4 + 3;
	int n;

	if ((*out = malloc(cap)) == NULL)
		msg_fatal("out of memory");
	if (strcmp(b64, "=") == 0)
		return 0;
	if ((n = sasl_b64_decode(b64, *out, cap)) < 0) {
		free(*out);
		*out = NULL;
	}
	return n;
}

static void cyrus_start(void *impl, const char *mech, const char *init_b64,
			xsasl_server_fn fn, void *ctx)
{
	struct cyrus_srv *cs = impl;
	unsigned char *in = NULL;
	const char *out = NULL;
	unsigned outlen = 0;
	int inlen = 0, rc;

	if (init_b64 && (inlen = decode(init_b64, &in)) < 0) {
		fn(ctx, SASL_R_FORM, "Invalid base64 data in initial response");
		return;
	}
	rc = sasl_server_start(cs->conn, mech, init_b64 ? (char *)in : NULL,
			       (unsigned)inlen, &out, &outlen);
	free(in);
	cyrus_answer(cs, rc, out, outlen, fn, ctx);
}

static void cyrus_next(void *impl, const char *resp_b64, xsasl_server_fn fn,
		       void *ctx)
{
	struct cyrus_srv *cs = impl;
	unsigned char *in = NULL;
	const char *out = NULL;
	unsigned outlen = 0;
	int inlen, rc;

	if ((inlen = decode(resp_b64, &in)) < 0) {
		fn(ctx, SASL_R_FORM, "Invalid base64 data in continued response");
		return;
	}
	rc = sasl_server_step(cs->conn, (char *)in, (unsigned)inlen, &out, &outlen);
	free(in);
	cyrus_answer(cs, rc, out, outlen, fn, ctx);
}

static const char *cyrus_username(void *impl)
{
	struct cyrus_srv *cs = impl;
	const void *user = NULL;

	if (!cs->done || sasl_getprop(cs->conn, SASL_USERNAME, &user) != SASL_OK)
		return NULL;
	return user;
}

/* libsasl2 answers SASL_OK for password checks it cannot look into
 * (saslauthd), so only a NOUSER is a sure "no". */
static int cyrus_user_exists(void *impl, const char *user)
{
	struct cyrus_srv *cs = impl;
	int rc = sasl_user_exists(cs->conn, cs->service, cs->realm, user);

	if (rc == SASL_NOUSER)
		return 0;
	return rc == SASL_OK ? 1 : -1;
}

/* ---- sluice check ---------------------------------------------------------- */

/* The application file libsasl2 will read: in cyrus_sasl_config_path,
 * or the first one found on its built-in search path. */
static bool find_app_conf(const struct config *c, char *path, size_t len)
{
	static const char *const builtin[] = {
		"/etc/sasl2", "/usr/lib/x86_64-linux-gnu/sasl2", "/usr/lib/sasl2",
		"/usr/local/lib/sasl2", NULL
	};
	const char *dir = cfg_str(c, "cyrus_sasl_config_path");
	const char *app = cfg_str(c, "smtpd_sasl_path");

	if (*dir) {
		snprintf(path, len, "%s/%s.conf", dir, app);
		return true;
	}
	for (int i = 0; builtin[i]; i++) {
		snprintf(path, len, "%s/%s.conf", builtin[i], app);
		if (access(path, F_OK) == 0)
			return true;
	}
	return false;
}

/* Value of `key:` in the application file, or "" (in buf). */
static int conf_value(FILE *f, const char *key, char *buf, size_t len)
{
	char line[1024];
	size_t kl = strlen(key);
	int lineno = 0;

	rewind(f);
	buf[0] = 0;
	while (fgets(line, sizeof line, f)) {
		char *v;

		lineno++;
		if (strncmp(line, key, kl) != 0 || line[kl] != ':')
			continue;
		v = line + kl + 1;
		v += strspn(v, " \t");
		v[strcspn(v, "\r\n")] = 0;
		snprintf(buf, len, "%s", v);
		return lineno;
	}
	return 0;
}

static int socket_reachable(const char *path)
{
	struct sockaddr_un sun;
	int fd, rc;

	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		return -1;
	rc = connect(fd, (struct sockaddr *)&sun, sizeof sun);
	close(fd);
	return rc;
}

static int cyrus_check_conf(FILE *f, const char *path, char *err, size_t errlen)
{
	char method[256], value[1024], sock[1100];
	int line;

	line = conf_value(f, "pwcheck_method", method, sizeof method);
	if (strstr(method, "saslauthd")) {
		int l2 = conf_value(f, "saslauthd_path", value, sizeof value);

		if (l2)
			line = l2;
		snprintf(sock, sizeof sock, "%s", *value ? value : "/var/run/saslauthd/mux");
		if (socket_reachable(sock) < 0) {
			snprintf(err, errlen, "%s:%d: saslauthd socket %s cannot be reached: %s; "
				 "start saslauthd (saslauthd -a METHOD -m DIR) or set saslauthd_path",
				 path, line, sock, strerror(errno));
			return -1;
		}
	}
	if (*method == 0 || strstr(method, "auxprop")) {
		int l2 = conf_value(f, "sasldb_path", value, sizeof value);
		char plugin[256];

		conf_value(f, "auxprop_plugin", plugin, sizeof plugin);
		if ((*plugin == 0 || strstr(plugin, "sasldb"))
		    && access(*value ? value : "/etc/sasldb2", R_OK) < 0) {
			snprintf(err, errlen, "%s:%d: sasldb %s cannot be read: %s; "
				 "create it with saslpasswd2 -f FILE -c USER or fix sasldb_path",
				 path, l2 ? l2 : line, *value ? value : "/etc/sasldb2",
				 strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int cyrus_check(const struct config *c, const char **param,
		       char *err, size_t errlen)
{
	char path[1200];
	FILE *f;
	int rc;

	if (!find_app_conf(c, path, sizeof path))
		return 0;       /* libsasl2's defaults: auxprop, /etc/sasldb2 */
	if ((f = fopen(path, "r")) == NULL) {
		*param = *cfg_str(c, "cyrus_sasl_config_path") ? "cyrus_sasl_config_path"
			: "smtpd_sasl_path";
		snprintf(err, errlen, "cannot read the Cyrus SASL application file %s: %s; "
			 "create it (pwcheck_method, mech_list) or fix %s",
			 path, strerror(errno), *param);
		return -1;
	}
	rc = cyrus_check_conf(f, path, err, errlen);
	fclose(f);
	if (rc < 0)
		*param = NULL;  /* the message carries smtpd.conf's place */
	return rc;
}

const struct sasl_backend sasl_backend_cyrus = {
	"cyrus", cyrus_create, cyrus_mechs, cyrus_mech_allowed, cyrus_start,
	cyrus_next, cyrus_username, cyrus_user_exists, cyrus_free, cyrus_check,
};
