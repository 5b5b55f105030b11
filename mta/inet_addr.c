/*
 * inet_addr.c - IP addresses as text, and network/mask matching.
 *
 * Patterns follow Postfix's mynetworks syntax: "192.0.2.0/24",
 * "[2001:db8::]/32", "192.0.2.7", "[::1]".  A malformed pattern never
 * matches (sluice check reports it when the parameter is validated).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "config.h"
#include "inet_addr.h"

void inet_sockaddr_text(const struct sockaddr *sa, char *buf, size_t len,
			int *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, buf, len);
		if (port)
			*port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, len);
		else
			inet_ntop(AF_INET6, &in6->sin6_addr, buf, len);
		if (port)
			*port = ntohs(in6->sin6_port);
	} else {
		snprintf(buf, len, "unknown");
		if (port)
			*port = 0;
	}
}

/* Parse "addr" or "[addr]" into family + 16 bytes. */
static int parse_addr(const char *text, size_t n, int *family,
		      unsigned char bytes[16])
{
	char buf[64];

	if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
		text++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, text, n);
	buf[n] = 0;
	if (inet_pton(AF_INET, buf, bytes) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, bytes) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b,
			 int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ b[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

bool inet_match_pattern(const char *pattern, const char *addr)
{
	const char *slash = strrchr(pattern, '/');
	size_t plen = slash ? (size_t)(slash - pattern) : strlen(pattern);
	unsigned char net[16], host[16];
	int nfam, hfam, maxbits, bits;
	char *end;

	if (parse_addr(pattern, plen, &nfam, net) < 0
	    || parse_addr(addr, strlen(addr), &hfam, host) < 0
	    || nfam != hfam)
		return false;
	maxbits = nfam == AF_INET ? 32 : 128;
	bits = maxbits;
	if (slash) {
		long v = strtol(slash + 1, &end, 10);

		if (*end || end == slash + 1 || v < 0 || v > maxbits)
			return false;
		bits = (int)v;
	}
	return prefix_equal(net, host, bits);
}

bool inet_match_list(const struct config *c, const char *param,
		     const char *addr)
{
	char **list = cfg_list(c, param);
	bool hit = false;

	for (int i = 0; list && list[i] && !hit; i++)
		hit = inet_match_pattern(list[i], addr);
	cfg_list_free(list);
	return hit;
}
