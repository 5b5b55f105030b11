/*
 * smtp_envelope.c - syntax of MAIL FROM / RCPT TO paths and their ESMTP
 * parameters (RFC 5321 4.1.2, RFC 3461 xtext), and the address checks
 * Postfix's smtpd makes before any restriction list.
 *
 * Accepts what Postfix accepts: "FROM:<addr>", "FROM: <addr>", and with
 * strict_rfc821_envelopes = no also "FROM:addr" without brackets (with
 * it, or with a '<' never closed, the address is what is wrong: Postfix's
 * 501 5.1.7 / 5.1.3, not the command syntax's 501 5.5.4).  Any word after
 * the path is a parameter; the caller refuses the ones it does not know
 * ("555 5.5.4 Unsupported option: WORD").  Source
 * routes ("<@a,@b:user@host>") are stripped, as RFC 5321 allows.  The
 * address keeps its external form (a quoted local part stays quoted).
 * Sender-specified routing in the local part (user%host@x, host!user@x,
 * "user@host"@x, user@host@x) is syntax Postfix accepts: the restrictions
 * decide about it (restriction_recipient.c never counts it as a local or
 * relay destination for an untrusted client).
 *
 * The domain check is Postfix's smtpd_check_addr(): the domain the
 * address resolves to - after trivial-rewrite strips the local domains
 * (mydestination, local address literals) and opens routing in the local
 * part ("site!user", "user%site", a quoted "user@site"; swap_bangpath,
 * allow_percent_hack and resolve_dequoted_address as their default yes)
 * - must be a valid host name (letters, digits, '-', '_', not all
 * numeric; UTF-8 labels with SMTPUTF8) or address literal ([192.0.2.1],
 * [IPv6:2001:db8::1]); "user@" has none.  Otherwise 501 5.1.7 / 5.1.3.
 *
 * Limits: an address is at most SMTP_ADDRESS_MAX bytes, a command at most
 * the number of parameters the caller allows; control characters are
 * never accepted, non-ASCII only with SMTPUTF8.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "restriction_builtin.h"
#include "route_internal.h"
#include "smtp_proto.h"

#define SMTP_ADDRESS_MAX 512

static char *skip_spaces(char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

/* Find the '>' closing an address that starts after '<', honouring
 * quoted strings and backslash escapes. */
static char *closing_bracket(char *p)
{
	bool quoted = false;

	for (; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '>' && !quoted)
			return p;
	}
	return NULL;
}

static char *strip_source_route(char *addr)
{
	char *colon;

	if (*addr != '@')
		return addr;
	colon = strchr(addr, ':');
	return colon ? colon + 1 : addr;
}

static int parse_params(char *p, struct esmtp_param *params, int *nparams,
			int maxparams)
{
	*nparams = 0;
	for (p = skip_spaces(p); *p; p = skip_spaces(p)) {
		char *name = p, *eq;

		if (*nparams >= maxparams)
			return -1;
		p += strcspn(p, " ");
		if (*p)
			*p++ = 0;
		eq = strchr(name, '=');
		if (eq)
			*eq++ = 0;
		params[*nparams].name = name;
		params[*nparams].value = eq;
		(*nparams)++;
	}
	return 0;
}

int smtp_parse_path(char *arg, const char *keyword, bool strict,
		    char **addr, struct esmtp_param *params, int *nparams,
		    int maxparams)
{
	size_t klen = strlen(keyword);
	char *p = skip_spaces(arg), *end;

	if (strncasecmp(p, keyword, klen) != 0 || p[klen] != ':')
		return -1;
	p = skip_spaces(p + klen + 1);
	if (*p == '<') {
		end = closing_bracket(p + 1);
		if (end == NULL)
			return SMTP_PATH_ADDRESS;       /* "<addr" */
		*end = 0;
		*addr = strip_source_route(p + 1);
		p = end + 1;
		if (*p && *p != ' ')
			return -1;
	} else {
		if (*p == 0)
			return -1;
		if (strict)
			return SMTP_PATH_ADDRESS;       /* no <> */
		*addr = p;
		p += strcspn(p, " ");
		if (*p)
			*p++ = 0;
	}
	if (strlen(*addr) > SMTP_ADDRESS_MAX)
		return -1;
	return parse_params(p, params, nparams, maxparams);
}

bool smtp_address_valid(const char *addr, bool smtputf8)
{
	bool quoted = false;

	for (const unsigned char *p = (const unsigned char *)addr; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
		if (*p >= 0x80 && !smtputf8)
			return false;
		if (*p == '\\' && p[1]) {
			p++;
			continue;
		}
		if (*p == '"')
			quoted = !quoted;
		else if (!quoted && (*p == ' ' || *p == '<' || *p == '>'
				     || *p == '(' || *p == ')' || *p == ','
				     || *p == ';'))
			return false;
	}
	return !quoted;
}

/* ---- the domain the address resolves to --------------------------------- */

/* Postfix's valid_mailhost_literal(): "[192.0.2.1]", "[IPv6:2001:db8::1]". */
static bool literal_valid(const char *d)
{
	unsigned char bin[16];
	char buf[64];
	size_t n = strlen(d);

	if (n < 3 || d[0] != '[' || d[n - 1] != ']' || n - 2 >= sizeof buf)
		return false;
	memcpy(buf, d + 1, n - 2);
	buf[n - 2] = 0;
	if (strncasecmp(buf, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, buf + 5, bin) == 1;
	return inet_pton(AF_INET, buf, bin) == 1;
}

bool smtp_domain_valid(const char *domain, bool smtputf8)
{
	char buf[256];
	size_t n = strlen(domain);

	if (domain[0] == '[')
		return literal_valid(domain);
	if (n >= sizeof buf)
		return false;
	/* an UTF-8 label is checked as if its non-ASCII bytes were letters */
	for (size_t i = 0; i <= n; i++)
		buf[i] = smtputf8 && (unsigned char)domain[i] >= 0x80 ? 'x' : domain[i];
	return rb_valid_hostname(buf);
}

/* The first (or last) occurrence of c outside quotes and escapes. */
static char *unquoted_char(const char *s, char c, bool last)
{
	bool quoted = false;
	const char *hit = NULL;

	for (const char *p = s; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == c && !quoted) {
			hit = p;
			if (!last)
				break;
		}
	}
	return (char *)hit;
}

/* A local part that is one quoted string holding '@', '%' or '!':
 * unquoted in place (resolve_dequoted_address), '%' made the '@' when
 * there is no '@'.  False when it is not such a string. */
static bool open_quoted(char *local)
{
	size_t n = strlen(local), o = 0;
	char *pct;

	if (n < 2 || local[0] != '"' || local[n - 1] != '"'
	    || strpbrk(local, "@%!") == NULL)
		return false;
	for (size_t i = 1; i + 1 < n; i++) {
		if (local[i] == '"')
			return false;           /* not one quoted string */
		if (local[i] == '\\' && i + 2 < n)
			i++;
		local[o++] = local[i];
	}
	local[o] = 0;
	if (strchr(local, '@') == NULL && (pct = strrchr(local, '%')) != NULL)
		*pct = '@';
	return true;
}

/* One rewrite of the routing in a local part, as trivial-rewrite does it:
 * "site!user" -> "user@site" (the first '!'), "user%site" -> "user@site"
 * (the last '%'), a quoted local part opened.  False when there is none. */
static bool unroute(char *local)
{
	char tmp[SMTP_ADDRESS_MAX + 1], *op;

	if ((op = unquoted_char(local, '!', false)) != NULL) {
		*op = 0;
		snprintf(tmp, sizeof tmp, "%s@%s", op + 1, local);
		strcpy(local, tmp);
		return true;
	}
	if ((op = unquoted_char(local, '%', true)) != NULL) {
		*op = '@';
		return true;
	}
	return open_quoted(local);
}

bool smtp_address_resolvable(const struct config *c, const char *addr,
			     bool smtputf8)
{
	char buf[SMTP_ADDRESS_MAX + 1];

	if (strlen(addr) > SMTP_ADDRESS_MAX)
		return false;
	strcpy(buf, addr);
	/* each round removes a domain or turns an operator into the '@' */
	for (size_t round = 0; round <= SMTP_ADDRESS_MAX; round++) {
		char *at = unquoted_char(buf, '@', true), *domain;
		size_t n;

		if (at == NULL) {
			if (!unroute(buf))
				return true;    /* a local part: $myhostname */
			continue;
		}
		domain = at + 1;
		n = strlen(domain);
		/* one trailing dot goes, but not ".." or "@." */
		if (n > 1 && domain[n - 1] == '.' && domain[n - 2] != '.')
			domain[n - 1] = 0;
		if (*domain == 0)
			return false;
		if (route_domain_is_local(c, domain) != ROUTE_FOUND)
			return smtp_domain_valid(domain, smtputf8);
		*at = 0;                        /* strip the local domain */
		if (unquoted_char(buf, '@', true) == NULL && !unroute(buf))
			return true;
	}
	return true;
}

const char *smtp_address_check(const struct config *c, const char *addr,
			       bool sender, bool strict, bool smtputf8)
{
	if (*addr == 0 && sender)
		return NULL;                    /* the null sender */
	if (*addr == 0 || !smtp_address_valid(addr, smtputf8)
	    || (strict && *addr == '@')
	    || !smtp_address_resolvable(c, addr, smtputf8))
		return sender ? "501 5.1.7 Bad sender address syntax"
			: "501 5.1.3 Bad recipient address syntax";
	return NULL;
}

bool smtp_address_internal(const char *addr, char *buf, size_t len)
{
	const char *at = unquoted_char(addr, '@', true);
	size_t n = at ? (size_t)(at - addr) : strlen(addr), o = 0;

	if (strlen(addr) >= len)        /* the internal form is never longer */
		return false;
	for (size_t i = 0; i < n; i++) {
		if (addr[i] == '"')
			continue;
		if (addr[i] == '\\' && i + 1 < n)
			i++;
		buf[o++] = addr[i];
	}
	strcpy(buf + o, at ? at : "");
	/* still a quote or backslash: the routing code would read it with
	 * quoting in mind, and see another domain */
	return strpbrk(buf, "\"\\") == NULL;
}

bool smtp_xtext_valid(const char *s)
{
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '+') {
			if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2])
			    || islower((unsigned char)s[1]) || islower((unsigned char)s[2]))
				return false;
			s += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return false;
		}
	}
	return true;
}
