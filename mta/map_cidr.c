/*
 * map_cidr.c - cidr:/path, Postfix's cidr_table(5): IPv4 and IPv6
 * network blocks, first match wins.
 *
 * The table syntax ("PATTERN result", "!PATTERN result", if/endif,
 * continuation lines) is map_pattern.c's; a pattern here is one word:
 * "address" (that address only) or "address/prefix", IPv4 in dotted
 * quad (four decimal octets, no leading zeros: inet_pton(3), as Postfix)
 * or IPv6 (any form inet_pton takes, "::ffff:1.2.3.4" included), with
 * optional brackets ("[2001:db8::]/32", "[2001:db8::/32]").  Errors, with
 * Postfix's words: "bad address pattern", "bad mask value" (not a
 * number), "bad mask length" (over 32 or 128), "non-null host address
 * bits in "1.2.3.4/24", perhaps you should use "1.2.3.0/24" instead".
 * Results are taken as they are (no $1).
 *
 * A key is an address in the same forms without brackets; it matches
 * only patterns of its own family (an IPv4-mapped IPv6 key matches
 * "::ffff:0:0/96", not "1.2.3.0/24", as in Postfix).  A rule of the
 * other family does not apply to a key: neither it nor its negation
 * matches, and an "if" of the other family skips its block (Postfix's
 * behaviour).  A key that is not an address matches nothing.  Global state: none.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "diag.h"
#include "map_pattern.h"

#define CIDR_ADDR_MAX	16	/* bytes of an IPv6 address */

struct cidr_one {
	int family;
	int bits;		/* prefix length */
	unsigned char addr[CIDR_ADDR_MAX];
};

static int addr_len(int family)
{
	return family == AF_INET6 ? 16 : 4;
}

/* The address of a key or pattern: 0, or -1. */
static int parse_addr(const char *s, int *family, unsigned char *addr)
{
	*family = strchr(s, ':') != NULL ? AF_INET6 : AF_INET;
	return inet_pton(*family, s, addr) == 1 ? 0 : -1;
}

static bool host_bits_clear(const struct cidr_one *c)
{
	int len = addr_len(c->family);

	for (int i = 0; i < len * 8; i++) {
		bool set = (c->addr[i / 8] >> (7 - i % 8)) & 1;

		if (i >= c->bits && set)
			return false;
	}
	return true;
}

/* "perhaps you should use ..." for a pattern with host bits set. */
static void suggest(const struct cidr_one *c, char *buf, size_t len)
{
	unsigned char net[CIDR_ADDR_MAX] = { 0 };
	char text[INET6_ADDRSTRLEN];

	for (int i = 0; i < c->bits; i++)
		net[i / 8] |= (unsigned char)(c->addr[i / 8] & (0x80 >> (i % 8)));
	inet_ntop(c->family, net, text, sizeof text);
	snprintf(buf, len, "%s/%d", text, c->bits);
}

/* Split "[addr]/len", "[addr/len]", "addr/len", "addr" into copy; the
 * mask (or NULL) points into it. */
static char *unbracket(const char *pattern, char **mask)
{
	char *copy = strdup(pattern), *p, *close;

	*mask = NULL;
	if (copy == NULL)
		return NULL;
	p = copy;
	if (p[0] == '[' && (close = strchr(p, ']')) != NULL
	    && (close[1] == 0 || close[1] == '/')) {
		memmove(close, close + 1, strlen(close + 1) + 1);
		memmove(p, p + 1, strlen(p + 1) + 1);
	}
	if ((*mask = strchr(copy, '/')) != NULL)
		*(*mask)++ = 0;
	return copy;
}

static void *cidr_compile_one(const char *pattern, const char *flags,
			      int *ngroups, const struct map_pattern_where *w)
{
	struct cidr_one *c = calloc(1, sizeof *c);
	char *mask, *addr = unbracket(pattern, &mask), *end;
	char better[INET6_ADDRSTRLEN + 8];
	long bits;

	*ngroups = 0;
	if (c == NULL || addr == NULL) {
		diag_add(w->d, DIAG_ERROR, w->file, w->line, "out of memory; free some memory");
		goto fail;
	}
	if (parse_addr(addr, &c->family, c->addr) < 0) {
		diag_add(w->d, DIAG_ERROR, w->file, w->line,
			 "bad address pattern: \"%.60s\"; write an IPv4 or IPv6 address, or address/prefix",
			 pattern);
		goto fail;
	}
	c->bits = addr_len(c->family) * 8;
	if (mask != NULL) {
		if (!isdigit((unsigned char)mask[0])
		    || (bits = strtol(mask, &end, 10), *end != 0)) {
			diag_add(w->d, DIAG_ERROR, w->file, w->line,
				 "bad mask value in \"%.60s\"; write address/prefix with a prefix length in bits",
				 pattern);
			goto fail;
		}
		if (bits > c->bits) {
			diag_add(w->d, DIAG_ERROR, w->file, w->line,
				 "bad mask length in \"%.60s\"; the prefix length is at most %d",
				 pattern, c->bits);
			goto fail;
		}
		c->bits = (int)bits;
	}
	if (!host_bits_clear(c)) {
		suggest(c, better, sizeof better);
		diag_add(w->d, DIAG_ERROR, w->file, w->line,
			 "non-null host address bits in \"%.60s\", perhaps you should use \"%s\" instead",
			 pattern, better);
		goto fail;
	}
	free(addr);
	return c;
fail:
	free(addr);
	free(c);
	return NULL;
}

static int cidr_match_one(void *state, const char *key, size_t len,
			  size_t *ov, int ngroups)
{
	const struct cidr_one *c = state;
	unsigned char addr[CIDR_ADDR_MAX];
	int family, full = c->bits / 8, rest = c->bits % 8;

	if (parse_addr(key, &family, addr) < 0 || family != c->family)
		return MAP_PATTERN_NA;
	if (memcmp(addr, c->addr, (size_t)full) != 0)
		return 0;
	if (rest && ((addr[full] ^ c->addr[full]) & (0xff00 >> rest) & 0xff))
		return 0;
	if (ov != NULL)
		ov[0] = ov[1] = MAP_PATTERN_UNSET;
	return 1;
}

static const struct map_pattern_ops cidr_ops = {
	.type = "cidr",
	.delimited = false,
	.substitute = false,
	.compile = cidr_compile_one,
	.match = cidr_match_one,
	.free = free,
};

static void *cidr_open(const char *name, struct map_source *src,
		       struct diag *d)
{
	return map_pattern_open(&cidr_ops, name, src, d);
}

const struct map_type map_type_cidr = {
	.name = "cidr",
	.flags = MAP_TYPE_PATTERN,
	.open = cidr_open,
	.lookup = map_pattern_lookup,
	.close = map_pattern_close,
};
