/*
 * access.c - the access plugin: Postfix's check_*_access restrictions,
 * built on the public plugin ABI like any other plugin (it includes
 * sluice_plugin.h and nothing else of sluice).  docs/access.md is the
 * admin's page.
 *
 * It provides:
 *   check_client_access, check_reverse_client_hostname_access,
 *   check_helo_access, check_sender_access, check_recipient_access
 *     (table lookups, answered at once), and
 *   check_{client,reverse_client,helo,sender,recipient}_{a,mx,ns}_access
 *     (DNS first: access_server.c).
 *
 * The promises, each Postfix's (smtpd_check.c):
 *   - the keys and their order are access(5)'s, through
 *     sluice_access_lookup(): the client's name and parent domains, then
 *     its address and shorter prefixes; a helo name and its parents; a
 *     mail address, its extension-less form, its domain and parents, and
 *     "user@"; "<>" (smtpd_null_access_lookup_key) for the null sender;
 *   - what a table says goes, unchanged, to sluice_action(), so every
 *     access(5) action means what the restriction engine says it means;
 *   - the client restrictions quote "name[address]", the others the
 *     name, helo or address, each with Postfix's reply class;
 *   - check_reverse_client_hostname_access and the DNS variants may not
 *     permit (OK): that is a configuration error (451 4.3.5), as in
 *     Postfix; check_recipient_access's OK does not permit an address
 *     with sender-specified routing (allow_untrusted_routing = no);
 *   - a table that fails to answer gives "451 4.3.5 ... Server
 *     configuration error" for that restriction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "access.h"

/* ---- the facts --------------------------------------------------------- */

static const char *reverse_name(sluice_txn *t)
{
	const char *r = sluice_attr(t, "{client_ptr}");

	return r && *r ? r : "unknown";
}

bool access_facts(sluice_txn *t, enum access_target w, struct access_facts *f)
{
	memset(f, 0, sizeof *f);
	f->target = w;
	switch (w) {
	case AT_CLIENT:
		f->key = sluice_client_name(t);
		f->addr = sluice_client_addr(t);
		f->reply_class = "Client host";
		snprintf(f->reply_name, sizeof f->reply_name, "%s[%s]", f->key,
			 f->addr);
		return true;
	case AT_REVERSE_CLIENT:
		f->key = reverse_name(t);
		f->addr = sluice_client_addr(t);
		f->reply_class = "Unverified Client host";
		break;
	case AT_HELO:
		f->key = sluice_helo_name(t);
		f->reply_class = "Helo command";
		break;
	case AT_SENDER:
		f->key = sluice_sender(t);
		f->reply_class = "Sender address";
		break;
	case AT_RECIPIENT:
		f->key = sluice_recipient(t);
		f->reply_class = "Recipient address";
		break;
	}
	if (f->key == NULL)
		return false;
	snprintf(f->reply_name, sizeof f->reply_name, "%s", f->key);
	return true;
}

/* ---- tables and answers ----------------------------------------------- */

sluice_map *access_table(sluice_txn *t, const char *restriction,
			 const char *spec)
{
	char err[512] = "";
	sluice_map *m = sluice_map_open(spec, err, sizeof err);

	if (m == NULL)
		sluice_txn_log(t, SLUICE_LOG_WARN, "%s %s: %s", restriction,
			       spec ? spec : "", err);
	return m;
}

int access_config_error(sluice_txn *t)
{
	sluice_reply(t, 451, "4.3.5", "Server configuration error");
	return SLUICE_DEFER;
}

/* Does the action permit?  OK and RELAY (text after them ignored), or
 * all digits (Postfix: an out-of-band time stamp means OK). */
static bool is_permit(const char *value)
{
	size_t len = strcspn(value, " \t");

	if ((len == 2 && strncasecmp(value, "OK", 2) == 0)
	    || (len == 5 && strncasecmp(value, "RELAY", 5) == 0))
		return true;
	return *value && value[strspn(value, "0123456789")] == 0;
}

/* Sender-specified routing in a recipient's local part: user%host,
 * user!host, "user@host"@relay (Postfix's RESOLVE_FLAG_ROUTED). */
static bool routed(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t llen = at ? (size_t)(at - addr) : strlen(addr);

	for (size_t i = 0; i < llen; i++)
		if (addr[i] == '%' || addr[i] == '!' || addr[i] == '@')
			return true;
	return false;
}

int access_apply(sluice_txn *t, const char *restriction, int found,
		 const char *value, const struct access_facts *f,
		 unsigned flags)
{
	if (found < 0) {
		sluice_txn_log(t, SLUICE_LOG_WARN, "%s: table lookup problem",
			       restriction);
		return sluice_action(t, "451 4.3.5 Server configuration error",
				     f->reply_name, f->reply_class);
	}
	if (found == 0)
		return SLUICE_DUNNO;
	if ((flags & ACCESS_FORBID_OK) && is_permit(value)) {
		sluice_txn_log(t, SLUICE_LOG_WARN, "restriction %s returns OK "
			       "for %s", restriction, f->key);
		sluice_txn_log(t, SLUICE_LOG_WARN, "this is not allowed for "
			       "security reasons");
		sluice_txn_log(t, SLUICE_LOG_WARN, "use DUNNO instead of OK if "
			       "you want to make an exception");
		return access_config_error(t);
	}
	if ((flags & ACCESS_ROUTED_OK) && is_permit(value) && routed(f->key)
	    && sluice_txn_conf_int(t, "allow_untrusted_routing") == 0)
		return SLUICE_DUNNO;
	return sluice_action(t, value, f->reply_name, f->reply_class);
}

/* ---- the table checks -------------------------------------------------- */

/* The name (and parents), then for the client ones its address. */
static int table_check(sluice_txn *t, const char *restriction,
		       const char *spec, enum access_target w, unsigned flags)
{
	static const int kinds[] = {
		[AT_CLIENT] = SLUICE_KEY_HOSTNAME,
		[AT_REVERSE_CLIENT] = SLUICE_KEY_HOSTNAME,
		[AT_HELO] = SLUICE_KEY_DOMAIN,
		[AT_SENDER] = SLUICE_KEY_ADDRESS,
		[AT_RECIPIENT] = SLUICE_KEY_ADDRESS,
	};
	struct access_facts f;
	const char *value = NULL;
	sluice_map *m;
	int found;

	if (!access_facts(t, w, &f))
		return SLUICE_DUNNO;
	if ((m = access_table(t, restriction, spec)) == NULL)
		return access_config_error(t);
	found = sluice_access_lookup(t, m, kinds[w], f.key, &value);
	if (found == 0 && f.addr != NULL)
		found = sluice_access_lookup(t, m, SLUICE_KEY_ADDR, f.addr, &value);
	return access_apply(t, restriction, found, value, &f, flags);
}

static int client_access(sluice_txn *t, const char *arg, void *pd)
{
	return table_check(t, "check_client_access", arg, AT_CLIENT, 0);
}

static int reverse_client_access(sluice_txn *t, const char *arg, void *pd)
{
	return table_check(t, "check_reverse_client_hostname_access", arg,
			   AT_REVERSE_CLIENT, ACCESS_FORBID_OK);
}

static int helo_access(sluice_txn *t, const char *arg, void *pd)
{
	return table_check(t, "check_helo_access", arg, AT_HELO, 0);
}

static int sender_access(sluice_txn *t, const char *arg, void *pd)
{
	return table_check(t, "check_sender_access", arg, AT_SENDER, 0);
}

static int recipient_access(sluice_txn *t, const char *arg, void *pd)
{
	return table_check(t, "check_recipient_access", arg, AT_RECIPIENT,
			   ACCESS_ROUTED_OK);
}

/* ---- the DNS checks ---------------------------------------------------- */

/* One function per restriction: the ABI passes no name to check(). */
#define SERVER_CHECK(fn, name, target, type) \
	static int fn(sluice_txn *t, const char *arg, void *pd) \
	{ \
		return access_server_check(t, name, arg, target, type); \
	}

SERVER_CHECK(client_a, "check_client_a_access", AT_CLIENT, SLUICE_DNS_ADDRS)
SERVER_CHECK(client_mx, "check_client_mx_access", AT_CLIENT, SLUICE_DNS_MX)
SERVER_CHECK(client_ns, "check_client_ns_access", AT_CLIENT, SLUICE_DNS_NS)
SERVER_CHECK(rclient_a, "check_reverse_client_a_access", AT_REVERSE_CLIENT,
	     SLUICE_DNS_ADDRS)
SERVER_CHECK(rclient_mx, "check_reverse_client_mx_access", AT_REVERSE_CLIENT,
	     SLUICE_DNS_MX)
SERVER_CHECK(rclient_ns, "check_reverse_client_ns_access", AT_REVERSE_CLIENT,
	     SLUICE_DNS_NS)
SERVER_CHECK(helo_a, "check_helo_a_access", AT_HELO, SLUICE_DNS_ADDRS)
SERVER_CHECK(helo_mx, "check_helo_mx_access", AT_HELO, SLUICE_DNS_MX)
SERVER_CHECK(helo_ns, "check_helo_ns_access", AT_HELO, SLUICE_DNS_NS)
SERVER_CHECK(sender_a, "check_sender_a_access", AT_SENDER, SLUICE_DNS_ADDRS)
SERVER_CHECK(sender_mx, "check_sender_mx_access", AT_SENDER, SLUICE_DNS_MX)
SERVER_CHECK(sender_ns, "check_sender_ns_access", AT_SENDER, SLUICE_DNS_NS)
SERVER_CHECK(rcpt_a, "check_recipient_a_access", AT_RECIPIENT, SLUICE_DNS_ADDRS)
SERVER_CHECK(rcpt_mx, "check_recipient_mx_access", AT_RECIPIENT, SLUICE_DNS_MX)
SERVER_CHECK(rcpt_ns, "check_recipient_ns_access", AT_RECIPIENT, SLUICE_DNS_NS)

/* ---- the descriptor ---------------------------------------------------- */

#define TABLE_ARG 2     /* takes a type:name table, checked by sluice check */

static const struct sluice_restriction access_restrictions[] = {
	{ "check_client_access", TABLE_ARG, client_access },
	{ "check_reverse_client_hostname_access", TABLE_ARG,
	  reverse_client_access },
	{ "check_helo_access", TABLE_ARG, helo_access },
	{ "check_sender_access", TABLE_ARG, sender_access },
	{ "check_recipient_access", TABLE_ARG, recipient_access },
	{ "check_client_a_access", TABLE_ARG, client_a },
	{ "check_client_mx_access", TABLE_ARG, client_mx },
	{ "check_client_ns_access", TABLE_ARG, client_ns },
	{ "check_reverse_client_a_access", TABLE_ARG, rclient_a },
	{ "check_reverse_client_mx_access", TABLE_ARG, rclient_mx },
	{ "check_reverse_client_ns_access", TABLE_ARG, rclient_ns },
	{ "check_helo_a_access", TABLE_ARG, helo_a },
	{ "check_helo_mx_access", TABLE_ARG, helo_mx },
	{ "check_helo_ns_access", TABLE_ARG, helo_ns },
	{ "check_sender_a_access", TABLE_ARG, sender_a },
	{ "check_sender_mx_access", TABLE_ARG, sender_mx },
	{ "check_sender_ns_access", TABLE_ARG, sender_ns },
	{ "check_recipient_a_access", TABLE_ARG, rcpt_a },
	{ "check_recipient_mx_access", TABLE_ARG, rcpt_mx },
	{ "check_recipient_ns_access", TABLE_ARG, rcpt_ns },
	{ NULL, 0, NULL }
};

static void access_close(sluice_txn *t, void *pdata)
{
	access_server_close(t);
}

SLUICE_PLUGIN_DECLARE = {
	.abi = SLUICE_PLUGIN_ABI,
	.name = "access",
	.version = "1.0",
	.description = "Postfix's check_*_access restrictions (access(5) tables)",
	.close = access_close,
	.restrictions = access_restrictions,
};
