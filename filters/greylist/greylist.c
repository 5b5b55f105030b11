/*
 * greylist.c - the greylist plugin: the restriction check_greylist, with
 * postgrey's semantics, built on the public plugin ABI.  docs/greylist.md
 * is the admin's page.
 *
 * Placed in smtpd_recipient_restrictions after reject_unauth_destination
 * (where admins put check_policy_service for postgrey), it keys each
 * recipient on the triplet (client network, sender, recipient): the
 * client address cut to greylist_ipv4_prefix (/24) or
 * greylist_ipv6_prefix (/64) bits, the sender and recipient lowercased.
 *
 * The promises, each postgrey's:
 *   - a triplet not seen within greylist_max_age is recorded and the
 *     recipient deferred: DEFER_IF_PERMIT "4.2.0 <greylist_reply_text>"
 *     (450 4.2.0 <rcpt>: Recipient address rejected: Greylisted, see
 *     ..., unless a later restriction rejects), %r in the text standing
 *     for the recipient's domain and %s for the seconds still to wait;
 *   - a retry before greylist_delay has passed is deferred again (the
 *     first-seen time stays); a first retry later than greylist_delay +
 *     greylist_retry_window starts over as a new triplet;
 *   - a retry in between passes (no opinion: the next restrictions
 *     decide), and once per triplet, with greylist_add_header, the
 *     message gets "X-Greylist: delayed N seconds by sluice-greylist at
 *     HOST; DATE" (a PREPEND action); later mail of the triplet passes
 *     without delay while it is seen within greylist_max_age;
 *   - a client network whose mail passed greylist_auto_whitelist_clients
 *     times (0: never) is no longer greylisted;
 *   - clients found in greylist_client_whitelist_maps (address, then
 *     verified name, access(5) search order) and recipients found in
 *     greylist_recipient_whitelist_maps are not greylisted;
 *   - the null sender is greylisted like any other (postgrey does too;
 *     DSNs retry);
 *   - the store (greylist_store.h) is only touched on the thread pool
 *     (sluice_job_submit): the session waits, the worker never does; a
 *     store that fails logs a warning and, per
 *     greylist_store_failure_action, the recipient passes (dunno, the
 *     default: fail open) or is deferred (defer: 451 4.3.0);
 *   - each decision is logged: "greylist: action=greylist|pass,
 *     reason=..., client_address=..., sender=..., recipient=...".
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "plugins/sluice_plugin.h"
#include "greylist_store.h"

#define GL_MAX_MAPS     16
#define GL_KEY_MAX      1200

static const struct sluice_param greylist_params[] = {
	{ "greylist_store", SLUICE_PARAM_STRING,
	  "lmdb:$queue_directory/private/greylist.lmdb",
	  "Where check_greylist keeps its triplets: lmdb:/path (one file shared by the workers of this node; the default) or redis:host:port[/db] (shared by several nodes)." },
	{ "greylist_delay", SLUICE_PARAM_TIME, "300s",
	  "How long a new (client network, sender, recipient) triplet is deferred before a retry passes (postgrey's --delay)." },
	{ "greylist_max_age", SLUICE_PARAM_TIME, "35d",
	  "Triplets and auto-whitelisted clients not seen for this long are forgotten (postgrey's --max-age)." },
	{ "greylist_retry_window", SLUICE_PARAM_TIME, "2d",
	  "A first retry must come within this time after greylist_delay, or the triplet is greylisted anew (postgrey's --retry-window)." },
	{ "greylist_auto_whitelist_clients", SLUICE_PARAM_INT, "5",
	  "Stop greylisting a client network after this many messages passed the greylist; 0 turns auto-whitelisting off (postgrey's --auto-whitelist-clients)." },
	{ "greylist_ipv4_prefix", SLUICE_PARAM_INT, "24",
	  "Prefix length of the client network in an IPv4 triplet (postgrey's --ipv4cidr)." },
	{ "greylist_ipv6_prefix", SLUICE_PARAM_INT, "64",
	  "Prefix length of the client network in an IPv6 triplet (postgrey's --ipv6cidr)." },
	{ "greylist_client_whitelist_maps", SLUICE_PARAM_MAP, "",
	  "Lookup tables of clients never greylisted: the client address (access(5) order: address, then shorter prefixes; cidr tables) then its verified name and parent domains; any value whitelists." },
	{ "greylist_recipient_whitelist_maps", SLUICE_PARAM_MAP, "",
	  "Lookup tables of recipients never greylisted: address, domain, parent domains, user@ (access(5) order); any value whitelists." },
	{ "greylist_reply_text", SLUICE_PARAM_STRING,
	  "Greylisted, see http://postgrey.schweikert.ch/help/%r.html",
	  "The text of the 450 4.2.0 reply to a greylisted recipient (postgrey's --greylist-text): %r is the recipient's domain, %s the seconds left to wait." },
	{ "greylist_add_header", SLUICE_PARAM_BOOL, "yes",
	  "Prepend \"X-Greylist: delayed N seconds by sluice-greylist at HOST; DATE\" to mail that passed after a delay, as postgrey does." },
	{ "greylist_store_failure_action", SLUICE_PARAM_STRING, "dunno",
	  "When the greylist store fails (Redis down): dunno lets the recipient pass (fail open, with a warning), defer answers 451 4.3.0." },
	{ "greylist_redis_timeout", SLUICE_PARAM_TIME, "1s",
	  "Timeout to connect to the Redis greylist store and for each command." },
	{ "greylist_lmdb_map_size", SLUICE_PARAM_SIZE, "67108864",
	  "The largest size the LMDB greylist file may grow to, in bytes." },
	{ NULL, 0, NULL, NULL }
};

/* The plugin's per-process state. */
struct gl_conf {
	const struct gl_store_ops *ops;
	char *store_name;               /* greylist_store after "type:" */
	struct gl_store_opts opts;
	pthread_mutex_t open_lock;      /* guards the first open */
	void *store;                    /* NULL until opened */
	long long delay, max_age, window, awl;
	int v4prefix, v6prefix;
	bool header, fail_defer;
	sluice_map *client_wl[GL_MAX_MAPS];
	sluice_map *rcpt_wl[GL_MAX_MAPS];
};

enum gl_outcome { GL_GREYLIST, GL_PASS, GL_PASS_DELAYED, GL_PASS_AWL,
		  GL_FAIL };

/* One check on the pool; freed by its done() callback. */
struct gl_job {
	sluice_txn *t;          /* NULL once the session closed */
	struct gl_conf *conf;
	char tkey[GL_KEY_MAX];  /* the triplet */
	char ckey[128];         /* the client network */
	enum gl_outcome outcome;
	const char *reason;
	long long seconds;      /* delayed by / left to wait */
	char err[256];
};

/* ---- keys ---------------------------------------------------------------- */

/* The client network "192.0.2.0/24"; -1 for an unparsable address. */
static int client_net(const struct gl_conf *c, const char *addr,
		      char *out, size_t outlen)
{
	unsigned char b[16];
	char text[INET6_ADDRSTRLEN];
	int af = strchr(addr, ':') ? AF_INET6 : AF_INET;
	int bits = af == AF_INET ? c->v4prefix : c->v6prefix;
	int len = af == AF_INET ? 4 : 16;

	if (inet_pton(af, addr, b) != 1)
		return -1;
	if (bits < 0 || bits > len * 8)
		bits = len * 8;
	for (int i = 0; i < len; i++) {
		int keep = bits - i * 8;
		if (keep <= 0)
			b[i] = 0;
		else if (keep < 8)
			b[i] &= (unsigned char)(0xff << (8 - keep));
	}
	inet_ntop(af, b, text, sizeof text);
	snprintf(out, outlen, "%s/%d", text, bits);
	return 0;
}

static void lower_into(char *dst, size_t dstlen, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < dstlen; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = 0;
}

/* ---- the decision, on a pool thread ------------------------------------- */

static int save(struct gl_job *j, const char *key, const struct gl_rec *r)
{
	struct gl_conf *c = j->conf;

	return c->ops->put(c->store, key, r, c->max_age, j->err, sizeof j->err);
}

/* Count a pass for the client network (auto-whitelisting). */
static int count_client(struct gl_job *j, long long now)
{
	struct gl_conf *c = j->conf;
	struct gl_rec r;
	int found = c->ops->get(c->store, j->ckey, &r, j->err, sizeof j->err);

	if (found < 0)
		return -1;
	if (found == 0 || now - r.last > c->max_age)
		r = (struct gl_rec){ now, now, 0 };
	r.count++;
	r.last = now;
	return save(j, j->ckey, &r);
}

/* The store, opened by the first job of the process. */
static bool store_ready(struct gl_job *j)
{
	struct gl_conf *c = j->conf;
	bool ok;

	pthread_mutex_lock(&c->open_lock);
	if (c->store == NULL)
		c->store = c->ops->open(c->store_name, &c->opts, j->err,
					sizeof j->err);
	ok = c->store != NULL;
	pthread_mutex_unlock(&c->open_lock);
	return ok;
}

static enum gl_outcome decide(struct gl_job *j)
{
	struct gl_conf *c = j->conf;
	long long now = (long long)time(NULL);
	struct gl_rec r;
	int found;

	if (!store_ready(j))
		return GL_FAIL;

	if (c->awl > 0) {
		found = c->ops->get(c->store, j->ckey, &r, j->err, sizeof j->err);
		if (found < 0)
			return GL_FAIL;
		if (found && now - r.last <= c->max_age && r.count >= c->awl) {
			j->reason = "client AWL";
			r.last = now;
			return save(j, j->ckey, &r) < 0 ? GL_FAIL : GL_PASS_AWL;
		}
	}
	if ((found = c->ops->get(c->store, j->tkey, &r, j->err, sizeof j->err)) < 0)
		return GL_FAIL;
	if (found == 0 || now - r.last > c->max_age
	    || (r.count == 0 && now - r.first > c->delay + c->window)) {
		j->reason = found == 0 || now - r.last > c->max_age
			    ? "new" : "retry after the retry window";
		r = (struct gl_rec){ now, now, 0 };
		j->seconds = c->delay;
		return save(j, j->tkey, &r) < 0 ? GL_FAIL : GL_GREYLIST;
	}
	if (r.count == 0 && now - r.first < c->delay) {
		j->reason = "early-retry";
		j->seconds = c->delay - (now - r.first);
		r.last = now;
		return save(j, j->tkey, &r) < 0 ? GL_FAIL : GL_GREYLIST;
	}
	j->reason = r.count == 0 ? "triplet found, delayed" : "triplet found";
	j->seconds = now - r.first;
	enum gl_outcome o = r.count == 0 ? GL_PASS_DELAYED : GL_PASS;
	r.count++;
	r.last = now;
	if (save(j, j->tkey, &r) < 0)
		return GL_FAIL;
	if (c->awl > 0 && count_client(j, now) < 0)
		return GL_FAIL;
	return o;
}

static void gl_work(void *arg)
{
	struct gl_job *j = arg;

	j->outcome = decide(j);
}

/* ---- answers, in the event loop ----------------------------------------- */

/* greylist_reply_text with %r and %s expanded. */
static void reply_text(sluice_txn *t, const struct gl_job *j,
		       char *out, size_t outlen)
{
	const char *fmt = sluice_txn_conf_str(t, "greylist_reply_text");
	const char *rcpt = sluice_recipient(t), *at;
	const char *domain = rcpt && (at = strrchr(rcpt, '@')) ? at + 1 : "";
	size_t n = 0;

	for (const char *p = fmt ? fmt : ""; *p && n + 1 < outlen; p++) {
		char tmp[32];
		const char *ins = NULL;

		if (*p == '%' && p[1] == 'r')
			ins = domain;
		else if (*p == '%' && p[1] == 's')
			snprintf(tmp, sizeof tmp, "%lld", j->seconds), ins = tmp;
		else if (*p == '%' && p[1] == '%')
			ins = "%";
		if (ins == NULL) {
			out[n++] = *p;
			continue;
		}
		p++;
		n += (size_t)snprintf(out + n, outlen - n, "%s", ins);
		if (n >= outlen)
			n = outlen - 1;
	}
	out[n] = 0;
}

static void log_decision(sluice_txn *t, const char *action, const char *reason)
{
	const char *s = sluice_sender(t);

	sluice_txn_log(t, SLUICE_LOG_INFO, "action=%s, reason=%s, "
		       "client_name=%s, client_address=%s, sender=%s, "
		       "recipient=%s", action, reason, sluice_client_name(t),
		       sluice_client_addr(t), s && *s ? s : "<>",
		       sluice_recipient(t));
}

static int answer(sluice_txn *t, struct gl_job *j)
{
	char text[1024], action[1200], date[64];
	time_t now = time(NULL);
	struct tm tm;

	switch (j->outcome) {
	case GL_GREYLIST:
		log_decision(t, "greylist", j->reason);
		reply_text(t, j, text, sizeof text);
		snprintf(action, sizeof action, "DEFER_IF_PERMIT 4.2.0 %s", text);
		return sluice_action(t, action, NULL, NULL);
	case GL_FAIL:
		sluice_txn_log(t, SLUICE_LOG_WARN, "greylist store %s failed: "
			       "%s; %s", j->conf->ops->type, j->err,
			       j->conf->fail_defer ? "deferring"
			       : "passing (greylist_store_failure_action = dunno)");
		if (j->conf->fail_defer)
			return sluice_action(t, "451 4.3.0 Temporary lookup failure",
					     NULL, NULL);
		return SLUICE_DUNNO;
	case GL_PASS_DELAYED:
		log_decision(t, "pass", j->reason);
		if (!j->conf->header)
			return SLUICE_DUNNO;
		gmtime_r(&now, &tm);
		strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S UTC", &tm);
		snprintf(action, sizeof action, "PREPEND X-Greylist: delayed "
			 "%lld seconds by sluice-greylist at %s; %s", j->seconds,
			 sluice_txn_conf_str(t, "myhostname"), date);
		return sluice_action(t, action, NULL, NULL);
	case GL_PASS_AWL:
	case GL_PASS:
		log_decision(t, "pass", j->reason);
		return SLUICE_DUNNO;
	}
	return SLUICE_DUNNO;
}

static void gl_done(void *arg)
{
	struct gl_job *j = arg;
	sluice_txn *t = j->t;

	if (t == NULL) {        /* the session closed meanwhile */
		free(j);
		return;
	}
	sluice_set_data(t, NULL);
	int v = answer(t, j);
	free(j);
	sluice_resume(t, v);
}

/* ---- whitelists ---------------------------------------------------------- */

static bool listed(sluice_txn *t, sluice_map **maps, int kind,
		   const char *key)
{
	const char *value;

	for (int i = 0; i < GL_MAX_MAPS && maps[i]; i++)
		if (sluice_access_lookup(t, maps[i], kind, key, &value) == 1)
			return true;
	return false;
}

static bool whitelisted(sluice_txn *t, struct gl_conf *c, const char **why)
{
	const char *name = sluice_client_name(t);
	const char *rcpt = sluice_recipient(t);

	if (listed(t, c->client_wl, SLUICE_KEY_ADDR, sluice_client_addr(t))
	    || (name && strcmp(name, "unknown") != 0
		&& listed(t, c->client_wl, SLUICE_KEY_HOSTNAME, name))) {
		*why = "client whitelist";
		return true;
	}
	if (rcpt && listed(t, c->rcpt_wl, SLUICE_KEY_ADDRESS, rcpt)) {
		*why = "recipient whitelist";
		return true;
	}
	return false;
}

/* ---- the restriction ------------------------------------------------------ */

static int check_greylist(sluice_txn *t, const char *arg, void *pdata)
{
	struct gl_conf *c = pdata;
	const char *why, *sender = sluice_sender(t), *rcpt = sluice_recipient(t);
	char net[96], s[512], r[512];
	struct gl_job *j;

	if (rcpt == NULL || strcmp(sluice_stage(t), "RCPT") != 0) {
		sluice_explain(t, "check_greylist applies at RCPT only");
		return SLUICE_DUNNO;
	}
	if (client_net(c, sluice_client_addr(t), net, sizeof net) < 0)
		return SLUICE_DUNNO;
	if (whitelisted(t, c, &why)) {
		sluice_explain(t, "%s: not greylisted", why);
		log_decision(t, "pass", why);
		return SLUICE_DUNNO;
	}
	if ((j = calloc(1, sizeof *j)) == NULL)
		return SLUICE_DUNNO;
	lower_into(s, sizeof s, sender ? sender : "");
	lower_into(r, sizeof r, rcpt);
	snprintf(j->tkey, sizeof j->tkey, "t:%s/%s/%s", net, s, r);
	snprintf(j->ckey, sizeof j->ckey, "c:%s", net);
	j->t = t;
	j->conf = c;
	sluice_explain(t, "triplet %s", j->tkey + 2);
	if (sluice_job_submit(gl_work, gl_done, j) < 0) {
		/* sluice explain has no pool: it never touches the store */
		sluice_explain(t, "the store is not consulted here (no thread "
			       "pool): %s", j->conf->fail_defer ? "as if it failed"
			       : "no opinion");
		snprintf(j->err, sizeof j->err, "cannot start a pool job");
		j->outcome = GL_FAIL;
		int v = answer(t, j);
		free(j);
		return v;
	}
	sluice_set_data(t, j);
	return SLUICE_PENDING;
}

static void greylist_close(sluice_txn *t, void *pdata)
{
	struct gl_job *j = sluice_get_data(t);

	if (j != NULL) {
		j->t = NULL;    /* done() frees it without resuming */
		sluice_set_data(t, NULL);
	}
}

/* ---- set-up ----------------------------------------------------------------- */

/* The tables of a list "a:b, inline:{ k=v, k2=v2 } c:d", split as the
 * core splits lists (sluice_split_list: braces respected). */
static int open_maps(const char *param, sluice_map **maps)
{
	char **items = sluice_split_list(sluice_conf_str(param)), err[256];
	int n = 0, rc = 0;

	for (char **spec = items; *spec; spec++) {
		if (n >= GL_MAX_MAPS - 1) {
			sluice_log(SLUICE_LOG_ERR, "%s: more than %d tables", param,
				   GL_MAX_MAPS - 1);
			rc = -1;
			break;
		}
		if ((maps[n++] = sluice_map_open(*spec, err, sizeof err)) == NULL) {
			sluice_log(SLUICE_LOG_ERR, "%s: %s", param, err);
			rc = -1;
			break;
		}
	}
	sluice_list_free(items);
	return rc;
}

/* The enum-like parameters, checked by `sluice check` and before init()
 * (sluice_plugin.h: SLUICE_PLUGIN_CHECK). */
SLUICE_PLUGIN_CHECK
{
	const char *spec = sluice_conf_str("greylist_store");
	int bad = sluice_param_one_of("greylist_store_failure_action",
				      "dunno defer");

	if (spec == NULL || (strncmp(spec, "lmdb:", 5) != 0
			     && strncmp(spec, "redis:", 6) != 0)) {
		sluice_param_error("greylist_store", "unknown store \"%s\"; use "
				   "lmdb:/path or redis:host:port[/db]",
				   spec ? spec : "");
		bad = -1;
	}
	return bad;
}

static int greylist_init(void **pdata)
{
	struct gl_conf *c = calloc(1, sizeof *c);
	const char *spec = sluice_conf_str("greylist_store");
	const char *fail = sluice_conf_str("greylist_store_failure_action");
	if (c == NULL)
		return -1;
	c->delay = sluice_conf_int("greylist_delay");
	c->max_age = sluice_conf_int("greylist_max_age");
	c->window = sluice_conf_int("greylist_retry_window");
	c->awl = sluice_conf_int("greylist_auto_whitelist_clients");
	c->v4prefix = (int)sluice_conf_int("greylist_ipv4_prefix");
	c->v6prefix = (int)sluice_conf_int("greylist_ipv6_prefix");
	c->header = sluice_conf_int("greylist_add_header") != 0;
	if (fail && strcasecmp(fail, "defer") == 0)
		c->fail_defer = true;
	else if (fail && *fail && strcasecmp(fail, "dunno") != 0) {
		sluice_log(SLUICE_LOG_ERR, "greylist_store_failure_action = %s: "
			   "expected dunno or defer", fail);
		free(c);
		return -1;
	}
	if (spec && strncmp(spec, "lmdb:", 5) == 0)
		c->ops = &gl_store_lmdb;
	else if (spec && strncmp(spec, "redis:", 6) == 0)
		c->ops = &gl_store_redis;
	else {
		sluice_log(SLUICE_LOG_ERR, "greylist_store = %s: expected "
			   "lmdb:/path or redis:host:port[/db]", spec ? spec : "");
		free(c);
		return -1;
	}
	c->store_name = strdup(strchr(spec, ':') + 1);
	c->opts.lmdb_map_size = sluice_conf_int("greylist_lmdb_map_size");
	c->opts.redis_timeout_ms = sluice_conf_int("greylist_redis_timeout") * 1000;
	pthread_mutex_init(&c->open_lock, NULL);
	if (c->store_name == NULL
	    || open_maps("greylist_client_whitelist_maps", c->client_wl) < 0
	    || open_maps("greylist_recipient_whitelist_maps", c->rcpt_wl) < 0) {
		free(c->store_name);
		free(c);
		return -1;
	}
	*pdata = c;
	return 0;
}

static void greylist_fini(void *pdata)
{
	struct gl_conf *c = pdata;

	if (c != NULL) {
		if (c->store != NULL)
			c->ops->close(c->store);
		pthread_mutex_destroy(&c->open_lock);
		free(c->store_name);
		free(c);
	}
}

static const struct sluice_restriction greylist_restrictions[] = {
	{ "check_greylist", 0, check_greylist },
	{ NULL, 0, NULL }
};

SLUICE_PLUGIN_DECLARE = {
	.abi = SLUICE_PLUGIN_ABI,
	.name = "greylist",
	.version = "1.0",
	.description = "Greylisting (check_greylist) with postgrey's semantics, "
		       "triplets in LMDB or Redis",
	.params = greylist_params,
	.init = greylist_init,
	.fini = greylist_fini,
	.close = greylist_close,
	.restrictions = greylist_restrictions,
};
