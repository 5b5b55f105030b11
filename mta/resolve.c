/*
 * resolve.c - address classes, main.cf transports, relayhost and
 * transport_maps: Postfix's trivial-rewrite(8) "resolve" and transport(5).
 * Interface and rules: resolve.h.
 *
 * The steps of resolve_route(), each a function below:
 *   normalize   the address as Postfix resolves it (user@domain form,
 *               syntax checks);
 *   classify    local, virtual alias, virtual mailbox, relay, default,
 *               with the class's transport parameter and default next hop;
 *   transport   transport_maps lookups and Postfix's update rules;
 *   finish      the error and retry transports become a status.
 * Sender-dependent transports and relayhosts, relocated_maps and the
 * percent/bang-path hacks are not implemented (the SMTP server refuses
 * sender-specified routing).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "resolve.h"
#include "rewrite.h"
#include "route_internal.h"

#define ERROR_TRANSPORT		"error"
#define RETRY_TRANSPORT		"retry"
#define UNDELIVERABLE		"Address is undeliverable"
#define ALIAS_UNKNOWN		"5.1.1 User unknown in virtual alias table"
#define MAILBOX_UNKNOWN		"User unknown in virtual mailbox table"
#define RESOLVER_FAILURE	"4.3.0 address resolver failure"
#define BAD_SYNTAX		"5.1.3 bad address syntax"

enum { FIELD_OK = 0, FIELD_TOO_LONG = -1 };

static int set_field(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		return FIELD_TOO_LONG;
	memcpy(dst, src, n + 1);
	return FIELD_OK;
}

static void set_why(char *why, size_t whylen, const char *dsn,
		    const char *reason)
{
	if (why != NULL && whylen > 0)
		snprintf(why, whylen, "%s %s", dsn, reason);
}

const char *addr_class_name(enum addr_class cls)
{
	static const char *const names[] = {
		[ADDR_CLASS_LOCAL] = "local",
		[ADDR_CLASS_ALIAS] = "virtual alias",
		[ADDR_CLASS_VIRTUAL] = "virtual mailbox",
		[ADDR_CLASS_RELAY] = "relay",
		[ADDR_CLASS_DEFAULT] = "default",
	};

	return (unsigned)cls <= ADDR_CLASS_DEFAULT ? names[cls] : "?";
}

/* The transports whose next hop is a reason, not a destination. */
static bool failure_transport(const char *transport)
{
	return strcmp(transport, ERROR_TRANSPORT) == 0 ||
	       strcmp(transport, RETRY_TRANSPORT) == 0;
}

/* ---- status texts ------------------------------------------------------- */

/* Postfix's dsn_valid(): "5.1.1" - class 2, 4 or 5, then 1-3 digits
 * twice.  The length of the status, or 0. */
static size_t dsn_length(const char *s)
{
	size_t i = 1, digits;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return 0;
	for (int part = 0; part < 2; part++) {
		if (s[i++] != '.')
			return 0;
		for (digits = 0; isdigit((unsigned char)s[i]); digits++)
			i++;
		if (digits < 1 || digits > 3)
			return 0;
	}
	return s[i] == 0 || isspace((unsigned char)s[i]) ? i : 0;
}

/* Split "5.1.1 text" (or "text", with the default status) into r. */
static void split_status(struct route *r, const char *text, const char *def)
{
	size_t n = dsn_length(text);
	const char *rest = text + n;

	if (n == 0 || text[0] == '2')
		snprintf(r->dsn, sizeof r->dsn, "%s", def);
	else
		snprintf(r->dsn, sizeof r->dsn, "%.*s", (int)n, text);
	while (isspace((unsigned char)*rest))
		rest++;
	snprintf(r->reason, sizeof r->reason, "%s", *rest ? rest : UNDELIVERABLE);
	r->status = r->dsn[0] - '0';
}

/* A route that cannot be delivered: "error" (5) or "retry" (4). */
static int fail_route(struct route *r, const char *text, char *why,
		      size_t whylen)
{
	bool soft = text[0] == '4';

	snprintf(r->transport, sizeof r->transport, "%s",
		 soft ? RETRY_TRANSPORT : ERROR_TRANSPORT);
	snprintf(r->nexthop, sizeof r->nexthop, "%s", text);
	split_status(r, text, soft ? "4.0.0" : "5.0.0");
	set_why(why, whylen, r->dsn, r->reason);
	return r->status;
}

/* ---- the address ---------------------------------------------------------- */

/* Postfix's valid_hostname(), allowing UTF-8 for SMTPUTF8 domains. */
static bool valid_hostname(const char *name)
{
	size_t len = strlen(name), label = 0;
	bool alpha = false;

	if (len == 0 || len > 255)
		return false;
	for (const char *p = name; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(ch) && ch != '-' && ch != '_' && ch < 0x80)
			return false;
		if ((ch == '-' && label == 0) || ++label > 63)
			return false;
		alpha |= !isdigit(ch);
	}
	return label > 0 && name[len - 1] != '-' && alpha;
}

static bool valid_domain(const char *domain)
{
	char buf[64];

	if (domain[0] == '[')
		return route_literal_address(domain, buf, sizeof buf);
	return valid_hostname(domain);
}

/* The empty local part "" or "\"\"" becomes empty_address_recipient. */
static const char *local_or_daemon(const struct config *c, const char *local,
				   size_t len)
{
	const char *daemon = cfg_lookup(c, "empty_address_recipient");

	if (len == 0 || (len == 2 && local[0] == '"' && local[1] == '"'))
		return daemon ? daemon : "MAILER-DAEMON";
	return NULL;
}

static bool min_user_allowed(const struct config *c)
{
	long long v = 0;

	return cfg_lookup_number(c, "allow_min_user", &v) == 0 && v != 0;
}

/* The domain to resolve with: the address's, without one trailing dot,
 * or $myhostname for "user" and "user@". */
static char *domain_part(const struct config *c, const char *at)
{
	char *domain = route_strdup(at && at[1] ? at + 1 : cfg_str(c, "myhostname"));
	size_t n = strlen(domain);

	if (n > 1 && domain[n - 1] == '.' && domain[n - 2] != '.')
		domain[n - 1] = 0;
	return domain;
}

/* The user@domain form Postfix resolves; -1 on bad syntax. */
static int normalize(const struct config *c, const char *addr, struct route *r)
{
	const char *at = route_at(addr);
	size_t llen = at ? (size_t)(at - addr) : strlen(addr);
	const char *daemon = local_or_daemon(c, addr, llen);
	char *domain = domain_part(c, at);
	int n;

	if (daemon != NULL)
		n = snprintf(r->addr, sizeof r->addr, "%s@%s", daemon, domain);
	else
		n = snprintf(r->addr, sizeof r->addr, "%.*s@%s", (int)llen,
			     addr, domain);
	if (n < 0 || (size_t)n >= sizeof r->addr || !valid_domain(domain) ||
	    (r->addr[0] == '-' && !min_user_allowed(c)))
		n = -1;
	free(domain);
	return n < 0 ? -1 : 0;
}

/* ---- address classes -------------------------------------------------------- */

struct class_info {
	enum addr_class cls;
	const char *param;              /* its transport parameter */
};

/* Postfix's "do not list domain X in BOTH a and b" (helpful_warnings). */
static void warn_both(const struct config *c, const char *domain,
		      const char *in, const char *other, enum list_style st)
{
	if (route_list_match(c, other, domain, st) == ROUTE_FOUND)
		msg_warn("do not list domain %s in BOTH %s and %s", domain, in,
			 other);
}

static int classify(const struct config *c, const char *domain,
		    struct class_info *ci)
{
	static const struct {
		enum addr_class cls;
		const char *list, *param;
		enum list_style style;
	} classes[] = {
		{ ADDR_CLASS_ALIAS, "virtual_alias_domains", NULL, LIST_STRING },
		{ ADDR_CLASS_VIRTUAL, "virtual_mailbox_domains", "virtual_transport", LIST_STRING },
		{ ADDR_CLASS_RELAY, "relay_domains", "relay_transport", LIST_DOMAIN },
	};
	int rc = route_domain_is_local(c, domain);

	*ci = (struct class_info){ ADDR_CLASS_LOCAL, "local_transport" };
	if (rc == ROUTE_FOUND) {
		warn_both(c, domain, "mydestination", "virtual_alias_domains", LIST_STRING);
		warn_both(c, domain, "mydestination", "virtual_mailbox_domains", LIST_STRING);
	}
	for (size_t i = 0; i < 3 && rc == ROUTE_NOTFOUND; i++) {
		rc = route_list_match(c, classes[i].list, domain, classes[i].style);
		*ci = (struct class_info){ classes[i].cls, classes[i].param };
	}
	if (rc == ROUTE_NOTFOUND)
		*ci = (struct class_info){ ADDR_CLASS_DEFAULT, "default_transport" };
	if (rc == ROUTE_FOUND && ci->cls == ADDR_CLASS_ALIAS)
		warn_both(c, domain, "virtual_alias_domains", "virtual_mailbox_domains", LIST_STRING);
	return rc == ROUTE_FAIL ? ROUTE_FAIL : ROUTE_FOUND;
}

/* The class's transport and next hop from main.cf; -1 (logged) when the
 * transport parameter is unusable. */
static int class_transport(const struct config *c, const struct class_info *ci,
			   const char *domain, struct route *r)
{
	const char *value = cfg_str(c, ci->param);
	const char *colon = strchr(value, ':');
	size_t tlen = colon ? (size_t)(colon - value) : strlen(value);
	const char *relayhost = cfg_str(c, "relayhost");
	const char *hop = domain;

	if (tlen == 0 || tlen >= sizeof r->transport) {
		msg_warn("parameter %s: %s transport is not allowed", ci->param,
			 tlen ? "an over-long" : "a null");
		return -1;
	}
	memcpy(r->transport, value, tlen);
	r->transport[tlen] = 0;
	if ((ci->cls == ADDR_CLASS_RELAY || ci->cls == ADDR_CLASS_DEFAULT) &&
	    *relayhost != 0)
		hop = relayhost;
	if (failure_transport(r->transport))
		hop = UNDELIVERABLE;
	if (colon != NULL && colon[1] != 0)
		hop = colon + 1;
	if (set_field(r->nexthop, sizeof r->nexthop, hop) != FIELD_OK) {
		msg_warn("parameter %s: next hop too long", ci->param);
		return -1;
	}
	return 0;
}

/* ---- transport_maps ----------------------------------------------------------- */

#define TP_PARAM	"transport_maps"

/* Postfix's transport_lookup() search order; *value on ROUTE_FOUND. */
static int transport_find(const struct config *c, const char *addr,
			  const char *domain, char **value)
{
	bool parent = route_parent_style(c, TP_PARAM);
	char *ext = NULL, *bare;
	int rc = route_table_find(c, TP_PARAM, addr, false, value);

	if (rc != ROUTE_NOTFOUND)
		return rc;
	if ((bare = route_strip_ext(c, addr, &ext)) != NULL) {
		rc = route_table_find(c, TP_PARAM, bare, true, value);
		free(bare);
		free(ext);
		if (rc != ROUTE_NOTFOUND)
			return rc;
	}
	for (const char *name = domain; *name;) {
		const char *next;

		if ((rc = route_table_find(c, TP_PARAM, name, true, value)) != ROUTE_NOTFOUND)
			return rc;
		if ((next = strchr(name + 1, '.')) == NULL)
			break;
		name = parent ? next + 1 : next;
	}
	return route_table_find(c, TP_PARAM, "*", false, value);
}

/* Postfix's update_entry(): apply "transport:nexthop" to r. */
static int transport_update(struct route *r, const char *value,
			    const char *domain)
{
	const char *colon = strchr(value, ':');
	size_t tlen = colon ? (size_t)(colon - value) : strlen(value);
	const char *hop = colon ? colon + 1 : "";

	if (tlen >= sizeof r->transport)
		return -1;
	if (tlen > 0) {
		memcpy(r->transport, value, tlen);
		r->transport[tlen] = 0;
		if (*hop == 0)
			hop = failure_transport(r->transport) ? UNDELIVERABLE : domain;
	}
	if (*hop != 0 && set_field(r->nexthop, sizeof r->nexthop, hop) != FIELD_OK)
		return -1;
	return 0;
}

static int transport_override(const struct config *c, struct route *r,
			      const char *domain)
{
	char *value = NULL;
	int rc;

	if (*cfg_str(c, TP_PARAM) == 0)
		return 0;
	rc = transport_find(c, r->addr, domain, &value);
	if (rc == ROUTE_FOUND && transport_update(r, value, domain) < 0) {
		msg_warn("%s: result for %s too long: %.100s...", TP_PARAM,
			 r->addr, value);
		rc = ROUTE_FAIL;
	}
	free(value);
	return rc == ROUTE_FAIL ? -1 : 0;
}

/* ---- resolve ---------------------------------------------------------------- */

static int finish(struct route *r, char *why, size_t whylen)
{
	bool soft = strcmp(r->transport, RETRY_TRANSPORT) == 0;

	if (!failure_transport(r->transport))
		return 0;
	split_status(r, r->nexthop, soft ? "4.0.0" : "5.0.0");
	set_why(why, whylen, r->dsn, r->reason);
	return r->status;
}

int resolve_route(const struct config *c, const char *addr, struct route *r,
		  char *why, size_t whylen)
{
	struct class_info ci;
	char *domain;
	int rc = 0;

	memset(r, 0, sizeof *r);
	if (normalize(c, addr, r) < 0) {
		snprintf(r->addr, sizeof r->addr, "%s", addr);
		r->cls = ADDR_CLASS_DEFAULT;
		return fail_route(r, BAD_SYNTAX, why, whylen);
	}
	domain = route_fold(route_domain_of(r->addr));
	if (classify(c, domain, &ci) == ROUTE_FAIL) {
		ci.cls = ADDR_CLASS_DEFAULT;
		rc = -1;
	}
	r->cls = ci.cls;
	if (rc == 0 && ci.cls == ADDR_CLASS_ALIAS) {
		free(domain);
		return fail_route(r, ALIAS_UNKNOWN, why, whylen);
	}
	if (rc == 0)
		rc = class_transport(c, &ci, domain, r);
	if (rc == 0)
		rc = transport_override(c, r, domain);
	free(domain);
	if (rc < 0)
		return fail_route(r, RESOLVER_FAILURE, why, whylen);
	return finish(r, why, whylen);
}

/* ---- the recipient chain -------------------------------------------------------- */

int route_recipient(const struct config *c, const char *rcpt,
		    struct route **routes, int *n, char *why, size_t whylen)
{
	char *canon = NULL;
	char **list = NULL;
	int count = 0, rc;
	struct route *r;

	*routes = NULL;
	*n = 0;
	if ((rc = rewrite_recipient(c, rcpt, &canon, why, whylen)) != 0)
		return rc;
	rc = virtual_alias_expand(c, canon, &list, &count, why, whylen);
	free(canon);
	if (rc != 0)
		return rc;
	r = route_alloc((size_t)count * sizeof *r);
	for (int i = 0; i < count; i++)
		(void)resolve_route(c, list[i], &r[i], NULL, 0);
	virtual_alias_free(list);
	*routes = r;
	*n = count;
	return 0;
}

void route_free(struct route *routes)
{
	free(routes);
}

/* ---- virtual mailboxes ------------------------------------------------------------ */

/* Is the mailbox path safe to put under the base: relative, no ".."? */
static bool mailbox_path_ok(const char *value)
{
	if (*value == 0 || *value == '/')
		return false;
	for (const char *p = value; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += n + (p[n] == '/');
	}
	return true;
}

int resolve_virtual_mailbox(const struct config *c, const char *addr,
			    char *path, size_t pathlen, char *why,
			    size_t whylen)
{
	const char *base = cfg_str(c, "virtual_mailbox_base");
	char *value = NULL;
	int rc = ROUTE_NOTFOUND, n = -1;

	if (*cfg_str(c, "virtual_mailbox_maps") != 0)
		rc = route_addr_find(c, "virtual_mailbox_maps", addr, &value, NULL);
	if (rc == ROUTE_NOTFOUND) {
		set_why(why, whylen, "5.1.1", MAILBOX_UNKNOWN);
		return 5;
	}
	if (rc == ROUTE_FOUND && base[0] != '/')
		msg_warn("virtual_mailbox_base must be an absolute path, not \"%s\"", base);
	else if (rc == ROUTE_FOUND && !mailbox_path_ok(value))
		msg_warn("virtual_mailbox_maps: unsafe mailbox path \"%s\" for %s",
			 value, addr);
	else if (rc == ROUTE_FOUND)
		n = snprintf(path, pathlen, "%s%s%s", base,
			     base[strlen(base) - 1] != '/' ? "/" : "", value);
	free(value);
	if (n < 0 || (size_t)n >= pathlen) {
		set_why(why, whylen, "4.3.0", "virtual mailbox lookup failure");
		return 4;
	}
	return 0;
}

int resolve_virtual_lookup(const struct config *c, const char *param,
			   const char *addr, char **value)
{
	int rc = ROUTE_NOTFOUND;

	*value = NULL;
	if (*cfg_str(c, param) != 0)
		rc = route_addr_find(c, param, addr, value, NULL);
	if (rc == ROUTE_FOUND)
		return 0;
	free(*value);
	*value = NULL;
	return rc == ROUTE_NOTFOUND ? 5 : 4;
}
