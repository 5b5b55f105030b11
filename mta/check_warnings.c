/*
 * check_warnings.c - the semantic warnings of `sluice check` (see
 * check_warnings.h for the list).
 *
 * These are warnings, not errors: the configuration works, but it
 * probably does not do what the admin meant (an open relay, passwords in
 * clear text, a stale table).  The exception is a table that does not
 * load (a pattern with a syntax error): sluice refuses it at run time,
 * so it is an error here too, with the table's own file:line.
 *
 * Every configuration set is looked at: main.cf's and each listener's
 * (main.cf plus its -o overrides).  A problem main.cf gives every
 * listener is said once (diag keeps one copy of a text).
 *
 * Promises: reads the configuration and the files it names, changes
 * nothing; problems another check reported already (the restriction
 * compiler's "specify at least one working instance", its table errors)
 * are not repeated.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "check_warnings.h"
#include "config.h"
#include "diag.h"
#include "map.h"
#include "restriction.h"
#include "restriction_int.h"

/* This file's parameters (one registry: param_table.c lists this table). */
const struct param_def params_check[] = {
	{ "sluice_check_mynetworks_prefix", PT_INT, "24",
	  "sluice check warns about an IPv4 mynetworks entry holding public addresses when its prefix is shorter than this (wider than a /24).", NULL },
	{ "sluice_check_mynetworks_prefix6", PT_INT, "48",
	  "As sluice_check_mynetworks_prefix, for IPv6 entries.", NULL },
	{ NULL, PT_STRING, NULL, NULL, NULL }
};

/* How deep classes may nest before the walk gives up (the engine has its
 * own, larger, limit; a deeper configuration is broken anyway). */
#define WALK_DEPTH_MAX 20

/* ---- where a parameter is set --------------------------------------------- */

struct place {
	const char *file;
	int line;
};

static struct place where(const struct config *c, const char *name,
			  const char *main_path)
{
	struct place p = { NULL, 0 };

	if (cfg_lookup(c, name) != NULL)
		p.file = cfg_where(c, name, &p.line);
	if (p.file == NULL)
		p.file = main_path;
	return p;
}

/* Is any entry of d (errors included) containing `needle` there? */
static bool diag_mentions(const struct diag *d, const char *needle)
{
	for (int i = 0; i < d->n; i++)
		if (strstr(d->v[i].text, needle) != NULL)
			return true;
	return false;
}

/* ---- networks ------------------------------------------------------------- */

struct net {
	int family;                     /* AF_INET, AF_INET6 */
	unsigned char a[16];
	int len;                        /* prefix length */
};

/* "192.0.2.0/24", "192.0.2.7", "[2001:db8::]/32", "[::1]"; false for
 * anything else (names, tables, files, negations). */
static bool parse_net(const char *w, struct net *n)
{
	char text[80], *slash, *end;
	const char *p = w;
	size_t len;
	long bits;

	if (*p == '[') {
		const char *close = strchr(p, ']');

		if (close == NULL || (size_t)(close - p - 1) >= sizeof text)
			return false;
		snprintf(text, sizeof text, "%.*s%s", (int)(close - p - 1), p + 1,
			 close + 1);
	} else if (strlen(p) < sizeof text) {
		snprintf(text, sizeof text, "%s", p);
	} else {
		return false;
	}
	if ((slash = strchr(text, '/')) != NULL)
		*slash++ = 0;
	memset(n, 0, sizeof *n);
	if (inet_pton(AF_INET, text, n->a) == 1)
		n->family = AF_INET;
	else if (inet_pton(AF_INET6, text, n->a) == 1)
		n->family = AF_INET6;
	else
		return false;
	len = n->family == AF_INET ? 32 : 128;
	n->len = (int)len;
	if (slash) {
		bits = strtol(slash, &end, 10);
		if (*slash == 0 || *end != 0 || bits < 0 || bits > (long)len)
			return false;
		n->len = (int)bits;
	}
	return true;
}

/* Do the first `bits` bits of a and b agree? */
static bool same_prefix(const unsigned char *a, const unsigned char *b,
			int bits)
{
	int whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)whole) != 0)
		return false;
	return rest == 0 ||
	       ((a[whole] ^ b[whole]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* Is network `in` inside network `out`? */
static bool net_within(const struct net *in, const struct net *out)
{
	return in->family == out->family && in->len >= out->len &&
	       same_prefix(in->a, out->a, out->len);
}

typedef unsigned __int128 u128;

/* 2^bits for bits <= 127. */
static u128 pow2(int bits)
{
	return (u128)1 << bits;
}

/* Addresses of `n` that are also in `block` (CIDR blocks either nest or
 * do not meet). */
static u128 overlap(const struct net *n, const struct net *block)
{
	int width = n->family == AF_INET ? 32 : 128;

	if (net_within(block, n))
		return pow2(width - block->len);
	if (net_within(n, block))
		return pow2(width - n->len);
	return 0;
}

/* IPv4 space that is not public (RFC 6890's special-purpose blocks that
 * are not globally reachable, multicast and the reserved 240/4). */
static const char *const v4_special[] = {
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8",
	"169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24",
	"192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
	"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", NULL
};

/* Public addresses in n: IPv4 minus the blocks above; IPv6 global
 * unicast (2000::/3) minus documentation (2001:db8::/32).  Exact for
 * every entry but ::/0 (whose size does not fit; its public part does). */
static u128 public_count(const struct net *n)
{
	struct net b;
	u128 total;

	if (n->family == AF_INET6) {
		parse_net("[2000::]/3", &b);
		total = overlap(n, &b);
		parse_net("[2001:db8::]/32", &b);
		return total - overlap(n, &b);
	}
	total = pow2(32 - n->len);
	for (int i = 0; v4_special[i]; i++) {
		parse_net(v4_special[i], &b);
		total -= overlap(n, &b);
	}
	return total;
}

static const char *u128_text(u128 v, char *buf, size_t size)
{
	char tmp[48];
	int i = (int)sizeof tmp - 1;

	tmp[i] = 0;
	do {
		tmp[--i] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v != 0 && i > 0);
	snprintf(buf, size, "%s", tmp + i);
	return buf;
}

/* A count as the message shows it: exact for IPv4; for IPv6, where the
 * numbers have 30-odd digits, as a power of two ("2^96", "about 2^125"). */
static const char *count_text(int family, u128 v, char *buf, size_t size)
{
	int bits = 0;

	if (family == AF_INET)
		return u128_text(v, buf, size);
	while (bits < 127 && (v >> (bits + 1)) != 0)
		bits++;
	if (v == pow2(bits))
		snprintf(buf, size, "2^%d", bits);
	else            /* the nearer power */
		snprintf(buf, size, "about 2^%d", bits > 0 &&
			 v - pow2(bits) >= pow2(bits - 1) ? bits + 1 : bits);
	return buf;
}

/* The size of network n, as count_text() shows it. */
static const char *net_size_text(const struct net *n, char *buf, size_t size)
{
	int host_bits = (n->family == AF_INET ? 32 : 128) - n->len;

	if (host_bits == 128)
		return snprintf(buf, size, "2^128"), buf;
	return count_text(n->family, pow2(host_bits), buf, size);
}

static long long param_number(const struct config *c, const char *name,
			      long long dflt)
{
	long long v;

	return cfg_lookup_number(c, name, &v) == 0 ? v : dflt;
}

static void check_mynetworks(struct diag *d, const struct config *c,
			     const char *main_path)
{
	struct place p = where(c, "mynetworks", main_path);
	long long min4 = param_number(c, "sluice_check_mynetworks_prefix", 24);
	long long min6 = param_number(c, "sluice_check_mynetworks_prefix6", 48);
	char **w;

	if (!cfg_is_set(c, "mynetworks"))
		return;         /* the default is loopback (mynetworks_style host) */
	w = cfg_list(c, "mynetworks");
	for (int i = 0; w && w[i]; i++) {
		struct net n;
		char size[48], pub[48];
		u128 count;

		if (!parse_net(w[i], &n))
			continue;
		if (n.len >= (n.family == AF_INET ? min4 : min6))
			continue;
		if ((count = public_count(&n)) == 0)
			continue;
		diag_add(d, DIAG_WARNING, p.file, p.line,
			 "mynetworks entry %s includes public address space "
			 "(%s addresses, %s of them public), and every client "
			 "there is trusted (permit_mynetworks relays its mail); "
			 "list only your own networks (sluice_check_mynetworks_%s "
			 "= %lld allows public networks up to /%lld)",
			 w[i], net_size_text(&n, size, sizeof size),
			 count_text(n.family, count, pub, sizeof pub),
			 n.family == AF_INET ? "prefix" : "prefix6",
			 n.family == AF_INET ? min4 : min6,
			 n.family == AF_INET ? min4 : min6);
	}
	cfg_list_free(w);
}

/* Does mynetworks hold every IPv4 or every IPv6 address (0.0.0.0/0)? */
static bool mynetworks_everyone(const struct config *c)
{
	char **w = cfg_list(c, "mynetworks");
	bool all = false;
	struct net n;

	for (int i = 0; w && w[i]; i++)
		if (parse_net(w[i], &n) && n.len == 0)
			all = true;
	cfg_list_free(w);
	return all;
}

/* ---- relay control ------------------------------------------------------------ */

enum walk { W_NONE, W_GUARD, W_OPEN };

/* Postfix's list of restrictions that can refuse relaying
 * (smtpd_check.c's rcpt_required). */
static bool guards_relay(const char *name)
{
	static const char *const guard[] = {
		"reject_unauth_destination", "defer_unauth_destination",
		"reject", "defer", "defer_if_permit", "check_relay_domains", NULL
	};

	for (int i = 0; guard[i]; i++)
		if (strcasecmp(name, guard[i]) == 0)
			return true;
	return false;
}

/* A restriction that answers OK whoever the client is: its words in why,
 * and in *cause the parameter that makes it so, if another. */
static bool permits_everyone(const struct config *c, const struct ritem *it,
			     char *why, size_t size, const char **cause)
{
	if (strcasecmp(it->name, "permit") == 0) {
		snprintf(why, size, "permit");
		return true;
	}
	if (it->arg && (it->def && (it->def->flags & RF_ARG_TABLE)) &&
	    (strcasecmp(it->arg, "static:OK") == 0 ||
	     strcasecmp(it->arg, "static:PERMIT") == 0)) {
		snprintf(why, size, "%s %s", it->name, it->arg);
		return true;
	}
	if (strcasecmp(it->name, "permit_mynetworks") == 0 &&
	    mynetworks_everyone(c)) {
		snprintf(why, size, "permit_mynetworks (mynetworks holds every address)");
		*cause = "mynetworks";
		return true;
	}
	return false;
}

static struct restriction_list *compile_quietly(const struct config *c,
						const char *param)
{
	struct diag scratch;
	struct restriction_list *l;

	diag_init(&scratch);
	l = restriction_list_compile(c, param, &scratch);
	diag_free(&scratch);    /* the loader reported these already */
	return l;
}

/* Walk a list as the engine would for a client that matches nothing
 * conditional: does a relay guard or an unconditional permit come
 * first?  why gets the permit's words. */
static enum walk walk_list(const struct config *c,
			   const struct restriction_list *l, int depth,
			   char *why, size_t size, const char **cause)
{
	for (int i = 0; l && i < l->n; i++) {
		const struct ritem *it = &l->v[i];

		if (it->kind == RI_WARN_IF_REJECT) {
			i++;        /* the next one only warns */
			continue;
		}
		if (it->kind == RI_CLASS) {
			struct restriction_list *cl;
			enum walk w = W_NONE;
			char inner[200];

			if (depth >= WALK_DEPTH_MAX)
				continue;
			cl = compile_quietly(c, it->name);
			w = walk_list(c, cl, depth + 1, inner, sizeof inner,
				      cause);
			restriction_list_free(cl);
			if (w == W_OPEN)
				snprintf(why, size, "class %s (%s)", it->name, inner);
			if (w != W_NONE)
				return w;
			continue;
		}
		if (guards_relay(it->name))
			return W_GUARD;
		if (permits_everyone(c, it, why, size, cause))
			return W_OPEN;
	}
	return W_NONE;
}

static void check_relay(struct diag *d, const struct config *c,
			const char *main_path)
{
	static const char *const lists[2] = {
		"smtpd_relay_restrictions", "smtpd_recipient_restrictions"
	};
	enum walk w[2];
	char why[2][256] = { "", "" };
	const char *cause[2] = { NULL, NULL };
	int open = -1;

	for (int k = 0; k < 2; k++) {
		struct restriction_list *l = compile_quietly(c, lists[k]);

		if (l == NULL)
			return;     /* broken: reported already */
		w[k] = walk_list(c, l, 0, why[k], sizeof why[k], &cause[k]);
		restriction_list_free(l);
		if (w[k] == W_GUARD)
			return;
		if (w[k] == W_OPEN && open < 0)
			open = k;
	}
	if (diag_mentions(d, "specify at least one working instance of"))
		return;         /* the restriction compiler said it (an error) */
	if (open < 0) {
		struct place p = where(c, lists[0], main_path);

		diag_add(d, DIAG_WARNING, p.file, p.line,
			 "neither smtpd_relay_restrictions nor "
			 "smtpd_recipient_restrictions can refuse relaying, so "
			 "this server relays mail for everyone; add "
			 "reject_unauth_destination to smtpd_relay_restrictions");
		return;
	}
	/* at the list, or at what opens the default list (mynetworks) */
	struct place p = where(c, !cfg_is_set(c, lists[open]) && cause[open]
			       ? cause[open] : lists[open], main_path);

	diag_add(d, DIAG_WARNING, p.file, p.line,
		 "%s permits every client with \"%s\" before any "
		 "reject_unauth_destination, and %s does not refuse relaying "
		 "either, so this server relays mail for everyone; put "
		 "reject_unauth_destination (or defer_unauth_destination) before it",
		 lists[open], why[open], lists[1 - open]);
}

/* ---- restrictions that are never reached ---------------------------------------- */

/* The stage lists and classes.  Restrictions that can never be reached
 * ("reject, reject_unknown_client_hostname") are reported where the
 * lists are compiled (restriction_list.c), for run as for check. */
static void check_lists(struct diag *d, const struct config *c,
			const char *main_path)
{
	check_relay(d, c, main_path);
}

/* ---- AUTH without TLS ------------------------------------------------------------ */

/* A boolean looked up by name: the TLS and AUTH parameters may not be
 * registered in this build (then they read as "no"). */
static bool yes(const struct config *c, const char *name)
{
	long long v;

	return cfg_lookup_number(c, name, &v) == 0 && v != 0;
}

static void check_auth_tls(struct diag *d, const struct listener *l,
			   const char *main_path)
{
	const struct config *c = l->cfg;
	const char *level = cfg_lookup(c, "smtpd_tls_security_level");
	struct place p;

	if (!yes(c, "smtpd_sasl_auth_enable"))
		return;
	if (yes(c, "smtpd_tls_auth_only") || yes(c, "smtpd_tls_wrappermode") ||
	    yes(c, "smtpd_enforce_tls") ||
	    (level && strcasecmp(level, "encrypt") == 0))
		return;
	p = where(c, "smtpd_sasl_auth_enable", main_path);
	diag_add(d, DIAG_WARNING, l->file, l->line,
		 "listener %s offers AUTH (smtpd_sasl_auth_enable = yes, %s:%d) "
		 "without requiring TLS first, so passwords can cross the "
		 "network in clear text; add -o smtpd_tls_auth_only=yes (or "
		 "-o smtpd_tls_security_level=encrypt) to it",
		 l->service, p.file, p.line);
}

/* ---- tables ------------------------------------------------------------------ */

/* Is `type` a lookup table type of this build? */
static bool is_map_type(const char *spec, size_t n)
{
	const char *const *t = map_types();

	for (int i = 0; t[i]; i++)
		if (strlen(t[i]) == n && strncasecmp(t[i], spec, n) == 0)
			return true;
	return false;
}

/* The table spec in a list word, or NULL: "hash:/x", "pcre:/y"; not
 * sockets ("unix:private/policy", "inet:host:port"). */
static const char *table_of(const char *word)
{
	const char *colon;

	if (strncasecmp(word, "proxy:", 6) == 0)
		word += 6;
	if ((colon = strchr(word, ':')) == NULL || colon == word)
		return NULL;
	if (!is_map_type(word, (size_t)(colon - word)))
		return NULL;
	if (strncasecmp(word, "unix:", 5) == 0 && strchr(word, '/') != NULL)
		return NULL;        /* a socket, not unix:passwd.byname */
	return word;
}

/* hash:PATH: PATH.lmdb built, and not older than PATH? */
static void check_hash(struct diag *d, const char *spec, const char *param,
		       const struct place *p)
{
	const char *path = spec + 5;
	const char *build = strcmp(param, "alias_maps") == 0 ||
			    strcmp(param, "alias_database") == 0 ?
			    "sluice map build -a" : "sluice map build";
	char lmdb[4096];
	struct stat src, db;

	snprintf(lmdb, sizeof lmdb, "%s.lmdb", path);
	if (stat(lmdb, &db) < 0) {
		if (!diag_mentions(d, lmdb))
			diag_add(d, DIAG_WARNING, p->file, p->line,
				 "%s in %s was never built (%s does not exist); "
				 "run \"%s %s\"", spec, param, lmdb, build, path);
		return;
	}
	if (stat(path, &src) == 0 &&
	    (src.st_mtim.tv_sec > db.st_mtim.tv_sec ||
	     (src.st_mtim.tv_sec == db.st_mtim.tv_sec &&
	      src.st_mtim.tv_nsec > db.st_mtim.tv_nsec)))
		diag_add(d, DIAG_WARNING, p->file, p->line,
			 "%s in %s is older than its source %s, so lookups do "
			 "not see the latest changes; run \"%s %s\"",
			 spec, param, path, build, path);
}

/* Does a table's message start with "PATH:LINE:" (a line of its file)? */
static bool at_table_line(const char *text, const char *spec)
{
	const char *path = strchr(spec, ':') + 1;
	size_t n = strlen(path);

	return strncmp(text, path, n) == 0 && text[n] == ':' &&
	       text[n + 1] >= '0' && text[n + 1] <= '9';
}

/* Open the table; its problems go to d, those about a line of the table
 * as "file:line: ...", the others where the parameter naming it is set;
 * except what the restriction compiler reported already. */
static void open_table(struct diag *d, const char *spec, const char *param,
		       const struct place *p)
{
	struct diag t;
	struct map *m;

	diag_init(&t);
	if ((m = map_open_diag(spec, &t)) != NULL)
		map_close(m);
	for (int i = 0; i < t.n; i++) {
		const char *text = t.v[i].text;

		if (diag_mentions(d, text))
			continue;
		if (at_table_line(text, spec))
			diag_add(d, t.v[i].level, NULL, 0, "%s", text);
		else
			diag_add(d, t.v[i].level, p->file, p->line, "in %s: %s",
				 param, text);
	}
	diag_free(&t);
}

/* The tables named in the value of one parameter. */
static void check_param_tables(struct diag *d, const struct config *c,
			       const char *name, const char *main_path)
{
	const char *value = cfg_lookup(c, name);
	struct place p = where(c, name, main_path);
	char **w;

	if (value == NULL || strchr(value, ':') == NULL)
		return;
	w = config_split_list(value);
	for (int i = 0; w && w[i]; i++) {
		const char *spec;

		if (strcasecmp(w[i], "check_policy_service") == 0 && w[i + 1]) {
			i++;        /* a socket */
			continue;
		}
		if ((spec = table_of(w[i])) == NULL)
			continue;
		if (strncasecmp(spec, "hash:", 5) == 0) {
			check_hash(d, spec, name, &p);
			if (!diag_mentions(d, spec + 5))
				open_table(d, spec, name, &p);
			continue;
		}
		open_table(d, spec, name, &p);
	}
	cfg_list_free(w);
}

/* Every parameter set explicitly (defaults name system tables that need
 * not exist here), and the restriction classes. */
static void check_tables(struct diag *d, const struct config *c,
			 const char *main_path)
{
	const char *classes = cfg_lookup(c, "smtpd_restriction_classes");
	char **cl = config_split_list(classes ? classes : "");

	for (int i = 0; i < param_count(); i++) {
		const char *name = param_at(i)->name;

		if (cfg_lookup(c, name) != NULL && cfg_is_set(c, name))
			check_param_tables(d, c, name, main_path);
	}
	for (int i = 0; cl && cl[i]; i++)
		if (cfg_lookup(c, cl[i]) != NULL)
			check_param_tables(d, c, cl[i], main_path);
	cfg_list_free(cl);
}

/* ---- all of them ------------------------------------------------------------- */

static void check_set(struct diag *d, const struct config *c,
		      const char *main_path)
{
	check_mynetworks(d, c, main_path);
	check_lists(d, c, main_path);
	check_tables(d, c, main_path);
}

void check_warnings(struct diag *d, const struct sluice_config *sc,
		    const char *main_path)
{
	if (sc == NULL || sc->main == NULL)
		return;
	check_set(d, sc->main, main_path);
	for (int i = 0; i < sc->nlisteners; i++) {
		check_set(d, sc->listeners[i].cfg, main_path);
		check_auth_tls(d, &sc->listeners[i], main_path);
	}
}
