/*
 * rbl_match.c - the filter on a DNSBL's answer address, Postfix's
 * ip_match(3) syntax after "=" in "reject_rbl_client zen.example=
 * 127.0.0.[2..11]": four octets separated by ".", each a number (0-255)
 * or a list in brackets of numbers and ranges separated by ";"
 * ("[2;4..7]").  A pattern either is well formed or is refused as a
 * whole (rbl_pattern_ok); matching is plain string scanning, no state.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbl.h"

/* A number 0-255 at *p; advances *p.  -1 when there is none. */
static int octet_number(const char **p)
{
	long v = 0;
	int digits = 0;

	while (isdigit((unsigned char)**p) && digits < 4) {
		v = v * 10 + (**p - '0');
		(*p)++;
		digits++;
	}
	return digits == 0 || digits > 3 || v > 255 ? -1 : (int)v;
}

/* One octet of the pattern at *p against value (-1: just parse).
 * Returns 1 match, 0 no match, -1 syntax error; advances *p. */
static int octet_match(const char **p, int value)
{
	int lo, hi, hit = 0;

	if (**p != '[') {
		if ((lo = octet_number(p)) < 0)
			return -1;
		return lo == value;
	}
	(*p)++;
	for (;;) {
		if ((lo = octet_number(p)) < 0)
			return -1;
		hi = lo;
		if (strncmp(*p, "..", 2) == 0) {
			*p += 2;
			if ((hi = octet_number(p)) < 0 || hi < lo)
				return -1;
		}
		if (value >= lo && value <= hi)
			hit = 1;
		if (**p == ']') {
			(*p)++;
			return hit;
		}
		if (**p != ';')
			return -1;
		(*p)++;
	}
}

/* Scan the whole pattern against the four octets (NULL: parse only).
 * 1 match, 0 no match, -1 syntax error. */
static int scan(const char *pattern, const int *octets)
{
	const char *p = pattern;
	int all = 1, r;

	for (int i = 0; i < 4; i++) {
		if (i > 0 && *p++ != '.')
			return -1;
		if ((r = octet_match(&p, octets ? octets[i] : -1)) < 0)
			return -1;
		all &= r;
	}
	return *p == 0 ? all : -1;
}

bool rbl_pattern_ok(const char *pattern, char *err, size_t errlen)
{
	if (scan(pattern, NULL) >= 0)
		return true;
	snprintf(err, errlen, "bad address pattern \"%s\": need four octets, "
		 "each a number or [n;n..m]", pattern);
	return false;
}

bool rbl_pattern_match(const char *pattern, const char *addr)
{
	int o[4];
	char tail;

	if (sscanf(addr, "%d.%d.%d.%d%c", &o[0], &o[1], &o[2], &o[3],
		   &tail) != 4)
		return false;
	return scan(pattern, o) == 1;
}
