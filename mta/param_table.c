/*
 * param_table.c - the parameter registry: every main.cf parameter sluice
 * knows, with its type, default and one-line description.
 *
 * The core's parameters are the table below (kept in name order for the
 * reader; sorted again at start-up so a misplaced line cannot break the
 * lookups); each delivery-side subsystem keeps its own in params_*.c,
 * listed in subsystem_params.  Plugins add theirs with param_register(), which copies the
 * strings, so a plugin may be dlclose()d afterwards.  Names and defaults
 * are Postfix's wherever Postfix has the feature; sluice's own parameters
 * start with "sluice_".
 *
 * This file owns the registry; nothing else keeps a list of parameters.
 * Lookups are a binary search.  The registry is built on first use and
 * only grows (plugin parameters), from the master's single thread.
 */
#include <ctype.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"

#ifndef SLUICE_CONFIG_DIR
#define SLUICE_CONFIG_DIR "/etc/sluice"
#endif
#ifndef SLUICE_PLUGIN_DIR
#define SLUICE_PLUGIN_DIR "/usr/local/lib/sluice/plugins"
#endif

#define DEFAULT_FROM_HOST	"\001host"	/* computed defaults */
#define DEFAULT_FROM_DOMAIN	"\001domain"

static const struct param_def core_params[] = {
	{ "config_directory", PT_STRING, SLUICE_CONFIG_DIR,
	  "The directory main.cf and master.cf are read from (set with sluice -c DIR).", NULL },
	{ "dns_servers", PT_LIST, "",
	  "DNS servers to ask instead of /etc/resolv.conf's, as ip or ip:port or [ipv6]:port (sluice's own; used by tests and split-horizon sites).", NULL },
	{ "disable_vrfy_command", PT_BOOL, "yes",
	  "Refuse the SMTP VRFY command (502), so recipients cannot be probed.", NULL },
	{ "header_size_limit", PT_SIZE, "102400",
	  "The largest size in bytes of one message header, continuation lines included.", NULL },
	{ "inet_interfaces", PT_LIST, "all",
	  "The addresses smtpd listeners bind to when master.cf gives none: all, loopback-only, or a list.", NULL },
	{ "inet_protocols", PT_LIST, "all",
	  "The IP versions to use: all, ipv4, ipv6, or \"ipv4, ipv6\".", NULL },
	{ "line_length_limit", PT_INT, "2048",
	  "The longest SMTP command or message line in bytes accepted before it is cut (at least 512).", NULL },
	{ "mail_name", PT_STRING, "sluice",
	  "The mail system's name, as shown in the greeting banner and in bounces.", NULL },
	{ "mail_owner", PT_STRING, "sluice",
	  "The unprivileged user the workers run as when sluice is started as root.", NULL },
	{ "maillog_file", PT_STRING, "",
	  "Log to this file instead of syslog (empty: syslog, or stderr under sluice run).", NULL },
	{ "message_size_limit", PT_SIZE, "10240000",
	  "The largest message in bytes, envelope and headers included (0: no limit).", NULL },
	{ "mydestination", PT_LIST, "$myhostname, localhost.$mydomain, localhost",
	  "The domains this machine delivers locally.", NULL },
	{ "mydomain", PT_STRING, DEFAULT_FROM_DOMAIN,
	  "The machine's internet domain name.", NULL },
	{ "myhostname", PT_STRING, DEFAULT_FROM_HOST,
	  "The machine's fully qualified host name, used in the banner, HELO and Received: headers.", NULL },
	{ "mynetworks", PT_LIST, "127.0.0.0/8 [::1]/128",
	  "The trusted client networks (network/length), e.g. for permit_mynetworks.", NULL },
	{ "myorigin", PT_STRING, "$myhostname",
	  "The domain that locally posted mail appears to come from.", NULL },
	{ "plugin_directory", PT_STRING, SLUICE_PLUGIN_DIR,
	  "Where the plugins named in sluice_plugins are loaded from (NAME.so).", NULL },
	{ "queue_directory", PT_STRING, "/var/spool/sluice",
	  "The mail queue: one file per message in incoming/, active/, deferred/, hold/, corrupt/.", NULL },
	{ "queue_minfree", PT_SIZE, "0",
	  "The free space in bytes the queue file system must keep; below it mail is refused with 452.", NULL },
	{ "sluice_plugins", PT_LIST, "",
	  "The plugins to load from plugin_directory, in the order their hooks run.", NULL },
	{ "sluice_smtpd_workers", PT_INT, "0",
	  "The number of smtpd worker processes (0: one per CPU core).", NULL },
	{ "smtpd_banner", PT_STRING, "$myhostname ESMTP $mail_name",
	  "The text after \"220\" in the SMTP greeting; it must start with $myhostname.", NULL },
	{ "smtpd_client_connection_count_limit", PT_INT, "50",
	  "How many simultaneous connections one client IP address may have (0: no limit).", NULL },
	{ "smtpd_client_event_limit_exceptions", PT_LIST, "$mynetworks",
	  "Clients (address or network/mask) excluded from smtpd_client_connection_count_limit.", NULL },
	{ "smtpd_client_port_logging", PT_BOOL, "no",
	  "Log the client's port number along with its address.", NULL },
	{ "smtpd_discard_ehlo_keywords", PT_LIST, "",
	  "EHLO keywords not to announce (e.g. pipelining, chunking, silent-discard).", NULL },
	{ "smtpd_error_sleep_time", PT_TIME, "1s",
	  "How long to pause before each reply once the client has made more than smtpd_soft_error_limit errors.", NULL },
	{ "smtpd_forbid_bare_newline", PT_BOOL, "yes",
	  "Reject bare LF line endings and a bare-LF \".\", as used in SMTP smuggling.", NULL },
	{ "smtpd_forbid_bare_newline_exclusions", PT_LIST, "$mynetworks",
	  "Clients that smtpd_forbid_bare_newline does not apply to.", NULL },
	{ "smtpd_forbid_unauth_pipelining", PT_BOOL, "yes",
	  "Disconnect clients that pipeline commands before EHLO showed PIPELINING.", NULL },
	{ "smtpd_hard_error_limit", PT_INT, "20",
	  "The number of errors after which the client is disconnected.", NULL },
	{ "smtpd_helo_required", PT_BOOL, "no",
	  "Require HELO or EHLO before MAIL FROM.", NULL },
	{ "smtpd_junk_command_limit", PT_INT, "100",
	  "The number of NOOP, VRFY, ETRN and RSET commands counted as errors past this limit.", NULL },
	{ "smtpd_peername_lookup", PT_BOOL, "yes",
	  "Look up the client's host name (reverse, then verified forward DNS).", NULL },
	{ "smtpd_recipient_limit", PT_INT, "1000",
	  "The most recipients accepted for one message.", NULL },
	{ "smtpd_reject_footer", PT_STRING, "",
	  "Text appended as a last line to every 4xx and 5xx reply of the SMTP server (e.g. a help URL).", NULL },
	{ "smtpd_soft_error_limit", PT_INT, "10",
	  "The number of errors after which every reply is delayed by smtpd_error_sleep_time (counts reset after a delivered message).", NULL },
	{ "smtpd_timeout", PT_TIME, "300s",
	  "How long to wait for the client to send a command or data, or to take a reply.", NULL },
	{ "smtputf8_enable", PT_BOOL, "yes",
	  "Announce SMTPUTF8 and accept UTF-8 addresses (RFC 6531).", NULL },
	{ "strict_rfc821_envelopes", PT_BOOL, "no",
	  "Require <> around MAIL FROM and RCPT TO addresses.", NULL },
	{ "syslog_facility", PT_STRING, "mail",
	  "The syslog facility of sluice's log lines.", NULL },
	{ "syslog_name", PT_STRING, "sluice",
	  "The program name at the start of log lines (sluice/smtpd[pid]: ...).", NULL },
};

/* Postfix parameters with no meaning in sluice (installation paths and
 * the like), accepted in main.cf with a warning. */
static const char *const postfix_only[] = {
	"biff", "command_directory",
	"compatibility_level", "daemon_directory", "data_directory",
	"html_directory", "mailq_path", "manpage_directory",
	"meta_directory", "newaliases_path", "readme_directory",
	"sample_directory", "sendmail_path", "setgid_group",
	"shlib_directory",
};

static const char *const path_params[] = {
	"config_directory", "maillog_file", "plugin_directory",
	"queue_directory",
};

static struct param_def *reg;
static int nreg, capreg;
static char default_host[256], default_domain[256];

/* ---- computed defaults ---------------------------------------------- */

/* Postfix: gethostname(); when that is not fully qualified, we also try
 * the canonical name (getaddrinfo, as /etc/hosts or DNS says), and fall
 * back to NAME.localdomain. */
static void compute_host_defaults(void)
{
	char name[256];
	struct addrinfo hints = { .ai_flags = AI_CANONNAME };
	struct addrinfo *res = NULL;
	const char *dot;

	if (gethostname(name, sizeof name) < 0 || name[0] == 0)
		strcpy(name, "localhost");
	name[sizeof name - 1] = 0;
	if (strchr(name, '.') != NULL) {
		snprintf(default_host, sizeof default_host, "%s", name);
	} else if (getaddrinfo(name, NULL, &hints, &res) == 0 && res &&
		   res->ai_canonname && strchr(res->ai_canonname, '.')) {
		snprintf(default_host, sizeof default_host, "%s",
			 res->ai_canonname);
	} else {
		snprintf(default_host, sizeof default_host, "%.200s.localdomain",
			 name);
	}
	if (res)
		freeaddrinfo(res);
	/* Postfix: $myhostname minus its first label, if what is left
	 * still has a dot; else "localdomain". */
	dot = strchr(default_host, '.');
	snprintf(default_domain, sizeof default_domain, "%s",
		 dot && strchr(dot + 1, '.') ? dot + 1 : "localdomain");
}

/* ---- the registry --------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct param_def *)a)->name,
		      ((const struct param_def *)b)->name);
}

/* The parameters of the delivery side, each table in the file of the
 * subsystem that honours them (params_*.c), terminated by { NULL }. */
extern const struct param_def params_maps[], params_smtp_client[],
	params_local[], params_qmgr[], params_route[], params_bounce[],
	params_tools[];
extern const struct param_def params_plugins[];
extern const struct param_def params_restriction_lookups[];
extern const struct param_def params_restrictions[];
extern const struct param_def params_check[];	/* check_warnings.c */
extern const struct param_def params_smtp_tls[];	/* params_smtp_tls.c */
extern const struct param_def params_sasl[];	/* SMTP AUTH */
extern const struct param_def params_milter[];	/* params_milter.c */
extern const struct param_def params_policy[];	/* params_policy.c */
extern const struct param_def params_policyd[];	/* params_policyd.c: sluice-policyd */
extern const struct param_def params_milterd[];	/* params_milterd.c: sluice-milterd */
extern const struct param_def params_tls[];	/* params_tls.c: server TLS */
extern const struct param_def params_anvil[];	/* smtp_anvil.c: rate limits */
static const struct param_def *const subsystem_params[] = {
	params_plugins,
	params_restriction_lookups,
	params_restrictions,
	params_maps, params_smtp_client, params_local, params_qmgr,
	params_route, params_bounce, params_tools, params_check,
	params_smtp_tls,
	params_milter, params_policy, params_sasl, params_tls,
	params_anvil, params_policyd, params_milterd, NULL
};

static void registry_add_table(const struct param_def *table, size_t n)
{
	memcpy(reg + nreg, table, n * sizeof *table);
	nreg += (int)n;
}

static size_t table_length(const struct param_def *table)
{
	size_t n = 0;

	while (table[n].name != NULL)
		n++;
	return n;
}

static void registry_init(void)
{
	size_t n = sizeof core_params / sizeof core_params[0];

	if (reg != NULL)
		return;
	compute_host_defaults();
	for (int t = 0; subsystem_params[t]; t++)
		n += table_length(subsystem_params[t]);
	capreg = (int)n + 64;
	reg = calloc((size_t)capreg, sizeof *reg);
	if (reg == NULL)
		abort();        /* before anything runs: nothing to save */
	registry_add_table(core_params, sizeof core_params / sizeof core_params[0]);
	for (int t = 0; subsystem_params[t]; t++)
		registry_add_table(subsystem_params[t],
				   table_length(subsystem_params[t]));
	for (int i = 0; i < nreg; i++) {
		if (strcmp(reg[i].defval, DEFAULT_FROM_HOST) == 0)
			reg[i].defval = default_host;
		else if (strcmp(reg[i].defval, DEFAULT_FROM_DOMAIN) == 0)
			reg[i].defval = default_domain;
	}
	qsort(reg, (size_t)nreg, sizeof *reg, by_name);
}

int param_count(void)
{
	registry_init();
	return nreg;
}

const struct param_def *param_at(int i)
{
	registry_init();
	return i >= 0 && i < nreg ? &reg[i] : NULL;
}

const struct param_def *param_find(const char *name)
{
	struct param_def key = { .name = name };

	registry_init();
	return bsearch(&key, reg, (size_t)nreg, sizeof *reg, by_name);
}

const struct param_def *param_find_nocase(const char *name)
{
	registry_init();
	for (int i = 0; i < nreg; i++)
		if (strcasecmp(reg[i].name, name) == 0)
			return &reg[i];
	return NULL;
}

static void free_plugin_strings(struct param_def *p)
{
	free((char *)p->name);
	free((char *)p->defval);
	free((char *)p->desc);
	free((char *)p->owner);
}

static int copy_def(struct param_def *dst, const struct param_def *src)
{
	dst->type = src->type;
	dst->name = strdup(src->name);
	dst->defval = strdup(src->defval ? src->defval : "");
	dst->desc = strdup(src->desc ? src->desc : "");
	dst->owner = src->owner ? strdup(src->owner) : NULL;
	if (!dst->name || !dst->defval || !dst->desc ||
	    (src->owner && !dst->owner)) {
		free_plugin_strings(dst);
		return -1;
	}
	return 0;
}

static int registry_insert(const struct param_def *def)
{
	struct param_def copy;
	int at = 0;

	if (nreg == capreg) {
		struct param_def *v = realloc(reg, (size_t)capreg * 2 * sizeof *v);

		if (v == NULL)
			return -1;
		reg = v;
		capreg *= 2;
	}
	if (copy_def(&copy, def) < 0)
		return -1;
	while (at < nreg && strcmp(reg[at].name, def->name) < 0)
		at++;
	memmove(&reg[at + 1], &reg[at], (size_t)(nreg - at) * sizeof *reg);
	reg[at] = copy;
	nreg++;
	return 0;
}

int param_register(const struct param_def *def)
{
	struct param_def *old;
	struct param_def copy;

	if (def == NULL || def->name == NULL || def->name[0] == 0 ||
	    (unsigned)def->type > PT_MAP)
		return -1;
	registry_init();
	old = (struct param_def *)param_find(def->name);
	if (old == NULL)
		return registry_insert(def);
	/* The same plugin registering again (reload) updates its entry. */
	if (old->owner == NULL || def->owner == NULL ||
	    strcmp(old->owner, def->owner) != 0)
		return -1;
	if (copy_def(&copy, def) < 0)
		return -1;
	free_plugin_strings(old);
	*old = copy;
	return 0;
}

/* ---- facts about names and types ------------------------------------ */

const char *param_default_doc(const struct param_def *p)
{
	if (p->defval == default_host)
		return "the machine's fully qualified host name";
	if (p->defval == default_domain)
		return "$myhostname without its first label";
	return p->defval;
}

const char *param_type_name(enum param_type t)
{
	static const char *const names[] = {
		[PT_STRING] = "string", [PT_BOOL] = "boolean",
		[PT_INT] = "integer", [PT_TIME] = "time", [PT_SIZE] = "size",
		[PT_LIST] = "list", [PT_MAP] = "lookup table",
	};

	return (unsigned)t <= PT_MAP ? names[t] : "?";
}

const char *param_type_hint(enum param_type t)
{
	switch (t) {
	case PT_BOOL:
		return "yes or no";
	case PT_INT:
		return "a whole number, e.g. \"100\"";
	case PT_TIME:
		return "a time: a number with an optional unit s, m, h, d or w, e.g. \"300s\" or \"5m\"";
	case PT_SIZE:
		return "a size in bytes, e.g. \"10240000\" (k, m and g suffixes are also understood)";
	case PT_MAP:
		return "lookup tables written type:name, e.g. \"hash:/etc/sluice/access\"";
	case PT_LIST:
		return "a list separated by commas or spaces";
	default:
		return "text";
	}
}

static bool name_in(const char *name, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], name) == 0)
			return true;
	return false;
}

bool param_is_path(const char *name)
{
	return name_in(name, path_params,
		       sizeof path_params / sizeof path_params[0]);
}

bool param_postfix_only(const char *name)
{
	return name_in(name, postfix_only,
		       sizeof postfix_only / sizeof postfix_only[0]);
}

/* ---- did you mean ---------------------------------------------------- */

#define SUGGEST_MAX_LEN 64

/* Optimal string alignment distance (edits plus adjacent swaps), case
 * folded; names longer than SUGGEST_MAX_LEN are not compared. */
static int edit_distance(const char *a, const char *b)
{
	int la = (int)strlen(a), lb = (int)strlen(b);
	int d[SUGGEST_MAX_LEN + 1][SUGGEST_MAX_LEN + 1];

	if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN)
		return 1000;
	for (int i = 0; i <= la; i++)
		d[i][0] = i;
	for (int j = 0; j <= lb; j++)
		d[0][j] = j;
	for (int i = 1; i <= la; i++) {
		for (int j = 1; j <= lb; j++) {
			int cost = tolower((unsigned char)a[i - 1]) !=
				   tolower((unsigned char)b[j - 1]);
			int best = d[i - 1][j - 1] + cost;

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

const char *param_suggest(const char *name)
{
	const struct param_def *p = param_find_nocase(name);
	size_t len = strlen(name);
	int limit = len <= 4 ? 1 : len <= 10 ? 2 : 3;
	int best = limit + 1;
	const char *pick = NULL;

	if (p != NULL)
		return p->name;
	for (int i = 0; i < nreg; i++) {
		int dist = edit_distance(name, reg[i].name);

		if (dist < best) {
			best = dist;
			pick = reg[i].name;
		}
	}
	return pick;
}
