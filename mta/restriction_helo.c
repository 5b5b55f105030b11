/*
 * restriction_helo.c - Postfix's built-in HELO/EHLO restrictions, and
 * its host name syntax rules (restriction_builtin.h).
 *
 *   reject_invalid_helo_hostname    501 5.5.2 "<h>: Helo command rejected:
 *                                   Invalid name" (invalid_hostname_reject_code)
 *   reject_non_fqdn_helo_hostname   504 5.5.2 "<h>: Helo command rejected:
 *                                   need fully-qualified hostname"
 *                                   (non_fqdn_reject_code)
 *   reject_unknown_helo_hostname    450 4.7.1 "<h>: Helo command rejected:
 *                                   Host not found" (unknown_hostname_reject_code)
 *                                   when DNS has no A, AAAA or MX record;
 *                                   no answer: unknown_helo_hostname_tempfail_action
 *
 * As in Postfix, an address literal ("[192.0.2.1]", "[IPv6:2001:db8::1]")
 * is only checked for syntax, by all three: "<h>: Helo command rejected:
 * invalid ip address" (invalid_hostname_reject_code).  Postfix 2's
 * names reject_invalid_hostname, reject_non_fqdn_hostname and
 * reject_unknown_hostname are accepted too.  Before HELO/EHLO these say
 * nothing.  The DNS lookup is restriction_dns.c's (A, AAAA, then MX).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "restriction_builtin.h"
#include "smtp_session.h"

#define HOSTNAME_MAX	255
#define LABEL_MAX	63

/* ---- syntax ---------------------------------------------------------------- */

bool rb_valid_hostname(const char *name)
{
	size_t label = 0, len = strlen(name);
	bool non_numeric = false;

	if (len == 0 || len > HOSTNAME_MAX)
		return false;
	for (const char *p = name; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (isalnum(ch) || ch == '_') {
			if (++label > LABEL_MAX)
				return false;
			non_numeric |= !isdigit(ch);
		} else if (ch == '.') {
			if (label == 0 || p[1] == 0)
				return false;
			label = 0;
		} else if (ch == '-') {
			non_numeric = true;
			if (++label == 1 || p[1] == 0 || p[1] == '.')
				return false;
		} else {
			return false;
		}
	}
	return non_numeric;
}

bool rb_valid_hostaddr(const char *addr)
{
	unsigned char buf[16];

	if (strchr(addr, ':') != NULL)
		return inet_pton(AF_INET6, addr, buf) == 1;
	return inet_pton(AF_INET, addr, buf) == 1;
}

bool rb_strip_dot(const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	if (n > 1 && name[n - 1] == '.' && name[n - 2] != '.')
		n--;
	if (n >= len)
		return false;
	memcpy(buf, name, n);
	buf[n] = 0;
	return true;
}

const char *rb_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

/* Postfix's valid_mailhost_addr(): "1.2.3.4" or "IPv6:2001:db8::1". */
static bool valid_mailhost_addr(const char *addr)
{
	unsigned char buf[16];

	if (strncasecmp(addr, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, addr + 5, buf) == 1;
	return inet_pton(AF_INET, addr, buf) == 1;
}

/* Postfix's reject_invalid_hostaddr() for "[...]". */
static int invalid_hostaddr(struct rcheck *c, const char *helo)
{
	size_t n = strlen(helo);
	char addr[HOSTNAME_MAX + 1];

	if (n > 2 && helo[n - 1] == ']' && n - 2 < sizeof addr) {
		memcpy(addr, helo + 1, n - 2);
		addr[n - 2] = 0;
	} else {
		snprintf(addr, sizeof addr, "%s", helo);
	}
	if (valid_mailhost_addr(addr)) {
		rcheck_trace(c, "%s: a valid address literal", helo);
		return RV_DUNNO;
	}
	rcheck_trace(c, "%s: not a valid address literal", helo);
	return rb_reject(c, "invalid_hostname_reject_code", 501, "5.5.2",
			 "<%s>: %s rejected: invalid ip address", helo, RB_HELO);
}

/* ---- the restrictions --------------------------------------------------- */

static const char *helo_of(struct rcheck *c)
{
	return rcheck_session(c)->helo_name;
}

/* The check of one restriction: helo as the client sent it, name the
 * same without a trailing dot (NULL when it is too long for a host
 * name). */
typedef int (*helo_name_fn)(struct rcheck *c, const char *helo,
			    const char *name);

/*
 * What all three restrictions do alike: before HELO/EHLO they say
 * nothing, and an address literal is checked for syntax only; any other
 * name goes to `check`.
 */
static int helo_check(struct rcheck *c, helo_name_fn check)
{
	const char *helo = helo_of(c);
	char name[HOSTNAME_MAX + 2];

	if (helo == NULL)
		return RV_DUNNO;
	if (helo[0] == '[')
		return invalid_hostaddr(c, helo);
	return check(c, helo, rb_strip_dot(helo, name, sizeof name) ? name : NULL);
}

static int invalid_name(struct rcheck *c, const char *helo, const char *name)
{
	if (name && (rb_valid_hostname(name) || rb_valid_hostaddr(name))) {
		rcheck_trace(c, "%s: a valid host name", helo);
		return RV_DUNNO;
	}
	rcheck_trace(c, "%s: not a valid host name", helo);
	return rb_reject(c, "invalid_hostname_reject_code", 501, "5.5.2",
			 "<%s>: %s rejected: Invalid name", helo, RB_HELO);
}

static int non_fqdn_name(struct rcheck *c, const char *helo, const char *name)
{
	if (name && rb_valid_hostname(name) && strchr(name, '.') != NULL) {
		rcheck_trace(c, "%s: fully qualified", helo);
		return RV_DUNNO;
	}
	rcheck_trace(c, "%s: not a fully-qualified host name", helo);
	return rb_reject(c, "non_fqdn_reject_code", 504, "5.5.2",
			 "<%s>: %s rejected: need fully-qualified hostname",
			 helo, RB_HELO);
}

static int unknown_helo_done(struct rcheck *c, enum rb_dns_result res,
			     void *arg)
{
	const char *helo = helo_of(c);

	(void)arg;
	if (helo == NULL)
		return RV_DUNNO;
	switch (res) {
	case RB_DNS_FOUND:
	case RB_DNS_NULLMX:
		rcheck_trace(c, "%s: found in DNS", helo);
		return RV_DUNNO;
	case RB_DNS_TEMPFAIL:
		rcheck_trace(c, "%s: temporary DNS failure", helo);
		return rb_tempfail(c, "unknown_helo_hostname_tempfail_action",
				   450, "4.7.1", helo, RB_HELO, "Host not found");
	default:
		rcheck_trace(c, "%s: no A, AAAA or MX record", helo);
		return rb_reject(c, "unknown_hostname_reject_code", 450, "4.7.1",
				 "<%s>: %s rejected: Host not found", helo, RB_HELO);
	}
}

static int unknown_name(struct rcheck *c, const char *helo, const char *name)
{
	if (name == NULL || name[0] == 0)
		return unknown_helo_done(c, RB_DNS_NOTFOUND, NULL);
	rcheck_trace(c, "%s: looking up A/AAAA, then MX", name);
	return rb_dns_hostname(c, name, unknown_helo_done, NULL);
}

static int invalid_helo(struct rcheck *c, const char *arg, void *data)
{
	(void)arg, (void)data;
	return helo_check(c, invalid_name);
}

static int non_fqdn_helo(struct rcheck *c, const char *arg, void *data)
{
	(void)arg, (void)data;
	return helo_check(c, non_fqdn_name);
}

static int unknown_helo(struct rcheck *c, const char *arg, void *data)
{
	(void)arg, (void)data;
	return helo_check(c, unknown_name);
}

const struct restriction_def restrictions_helo[] = {
	{ "reject_invalid_helo_hostname", RF_NEEDS_HELO, invalid_helo, NULL },
	{ "reject_invalid_hostname", RF_NEEDS_HELO, invalid_helo, NULL },
	{ "reject_non_fqdn_helo_hostname", RF_NEEDS_HELO, non_fqdn_helo, NULL },
	{ "reject_non_fqdn_hostname", RF_NEEDS_HELO, non_fqdn_helo, NULL },
	{ "reject_unknown_helo_hostname", RF_NEEDS_HELO, unknown_helo, NULL },
	{ "reject_unknown_hostname", RF_NEEDS_HELO, unknown_helo, NULL },
	{ NULL, 0, NULL, NULL }
};
