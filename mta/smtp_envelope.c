/*
 * smtp_envelope.c - syntax of MAIL FROM / RCPT TO paths and their ESMTP
 * parameters (RFC 5321 4.1.2, RFC 3461 xtext).
 *
 * Accepts what Postfix accepts: "FROM:<addr>", "FROM: <addr>", and with
 * strict_rfc821_envelopes = no also "FROM:addr" without brackets.  Source
 * routes ("<@a,@b:user@host>") are stripped, as RFC 5321 allows.  The
 * address keeps its external form (a quoted local part stays quoted).
 *
 * Limits: an address is at most SMTP_ADDRESS_MAX bytes, a command at most
 * the number of parameters the caller allows; control characters are
 * never accepted, non-ASCII only with SMTPUTF8.
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

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
		if (!isalnum((unsigned char)*name))
			return -1;
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
			return -1;
		*end = 0;
		*addr = strip_source_route(p + 1);
		p = end + 1;
		if (*p && *p != ' ')
			return -1;
	} else {
		if (strict || *p == 0)
			return -1;
		*addr = p;
		p += strcspn(p, " ");
		if (*p)
			*p++ = 0;
	}
	if (strlen(*addr) > SMTP_ADDRESS_MAX)
		return -1;
	return parse_params(p, params, nparams, maxparams);
}

/* Where the local part ends: the last '@' outside quotes, or NULL. */
static const char *domain_at(const char *addr)
{
	const char *at = NULL;
	bool quoted = false;

	for (const char *p = addr; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '@' && !quoted)
			at = p;
	}
	return at;
}

bool smtp_address_valid(const char *addr, bool smtputf8)
{
	bool quoted = false;
	int unquoted_at = 0;

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
		else if (!quoted && *p == '@')
			unquoted_at++;
	}
	if (quoted || unquoted_at > 1)
		return false;
	if (unquoted_at == 1) {
		const char *at = domain_at(addr);

		if (at == addr || at[1] == 0 || at[1] == '.')
			return false;
	}
	return true;
}

bool smtp_address_routes(const char *addr, bool had_source_route)
{
	const char *at = domain_at(addr);
	size_t local_len = at ? (size_t)(at - addr) : strlen(addr);
	bool quoted = false;

	if (had_source_route)
		return true;
	for (size_t i = 0; i < local_len; i++) {
		char c = addr[i];

		if (c == '\\' && i + 1 < local_len) {
			if (addr[i + 1] == '@' || addr[i + 1] == '%' || addr[i + 1] == '!')
				return true;
			i++;
		} else if (c == '"') {
			quoted = !quoted;
		} else if (c == '%' || c == '!' || (c == '@' && quoted)) {
			return true;
		}
	}
	return false;
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
