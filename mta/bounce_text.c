/*
 * bounce_text.c - the small text tools of the notices: RFC 5322 dates,
 * masking what the network sent, Postfix's line wrapping, DSN xtext,
 * header addresses.
 *
 * A notice carries text from strangers (a remote server's reply, an
 * address, an ENVID) into header fields and MIME parts: every such string
 * goes through bounce_mask() first, so a CR or LF can never start a header
 * field, a MIME boundary or a record of its own.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounce_internal.h"
#include "log.h"
#include "hex_digit.h"

#define WRAP_WIDTH      79      /* Postfix's bounce line length */
#define WRAP_INDENT     4
#define WRAP_HARD       900     /* break a longer word anyway (RFC 5322: 998) */

char *bounce_strdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (p == NULL)
		msg_fatal("out of memory");
	return p;
}

char *bounce_sprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		msg_fatal("out of memory");
	return p;
}

void bounce_date(char *buf, size_t len, time_t t)
{
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tm tm;
	long off;

	localtime_r(&t, &tm);
	off = tm.tm_gmtoff / 60;
	snprintf(buf, len, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld (%s)",
		 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60,
		 tm.tm_zone ? tm.tm_zone : "UTC");
}

char *bounce_mask(const char *s, bool eight_bit)
{
	char *out = bounce_strdup(s);
	unsigned char *p;

	for (p = (unsigned char *) out; *p; p++) {
		if (*p == '\r' || *p == '\n' || *p == '\t')
			*p = ' ';
		else if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !eight_bit))
			*p = '?';
	}
	return out;
}

bool bounce_has_8bit(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char) *s >= 0x80)
			return true;
	return false;
}

/* Where to end the line that starts at p, `room` columns wide: the last
 * space that fits, else the first one after (a long word stays whole up
 * to WRAP_HARD), else the end. */
static const char *line_end(const char *p, size_t room)
{
	size_t len = strlen(p), i;

	if (len <= room)
		return p + len;
	for (i = room; i > 0; i--)
		if (p[i] == ' ')
			return p + i;
	for (i = room; i < len && i < WRAP_HARD; i++)
		if (p[i] == ' ')
			return p + i;
	return p + (len < WRAP_HARD ? len : WRAP_HARD);
}

void bounce_put_wrapped(FILE *fp, const char *text)
{
	const char *p = text, *end;
	int indent = 0;

	do {
		end = line_end(p, (size_t) (WRAP_WIDTH - indent));
		fprintf(fp, "%*s%.*s\n", indent, "", (int) (end - p), p);
		p = end;
		while (*p == ' ')
			p++;
		indent = WRAP_INDENT;
	} while (*p);
}

char *bounce_xtext_decode(const char *s, bool eight_bit)
{
	char *out = bounce_strdup(s), *o = out;
	int hi, lo;

	for (; *s; s++) {
		unsigned char c = (unsigned char) *s;

		if (c == '+') {
			if ((hi = hex_digit_value(s[1])) < 0 || (lo = hex_digit_value(s[2])) < 0)
				break;
			c = (unsigned char) (hi << 4 | lo);
			s += 2;
		}
		if (c < 0x20 || c == 0x7f || (c >= 0x80 && !eight_bit))
			break;
		*o++ = (char) c;
	}
	if (*s != 0) {
		free(out);
		return NULL;
	}
	*o = 0;
	return out;
}

/* RFC 5322 atext, plus UTF-8 bytes (RFC 6532). */
static bool is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		|| (c >= '0' && c <= '9') || c >= 0x80
		|| (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool is_dot_atom(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] == '.' ? s[i + 1] == '.' : !is_atext((unsigned char) s[i]))
			return false;
	}
	return true;
}

char *bounce_qualify(const char *addr, const char *origin)
{
	if (strchr(addr, '@') != NULL || origin == NULL || *origin == 0)
		return bounce_strdup(addr);
	return bounce_sprintf("%s@%s", addr, origin);
}

char *bounce_header_addr(const char *addr, const char *origin)
{
	char *full = bounce_qualify(addr, origin), *at, *out, *o;
	size_t local;
	const char *p;

	at = strrchr(full, '@');
	local = at ? (size_t) (at - full) : strlen(full);
	if (is_dot_atom(full, local))
		return full;
	out = malloc(2 * local + strlen(full + local) + 3);
	if (out == NULL)
		msg_fatal("out of memory");
	o = out;
	*o++ = '"';
	for (p = full; p < full + local; p++) {
		if (*p == '"' || *p == '\\')
			*o++ = '\\';
		*o++ = *p;
	}
	*o++ = '"';
	strcpy(o, full + local);
	free(full);
	return out;
}
