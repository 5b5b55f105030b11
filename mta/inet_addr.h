/*
 * inet_addr.h - IP addresses as text, and matching them against
 * network/mask lists ("127.0.0.0/8 [::1]/128 192.0.2.7").
 *
 * The full lookup-table family (cidr:, hash:, ...) comes with maps; this
 * is the small piece the core needs now for parameters like
 * smtpd_forbid_bare_newline_exclusions = $mynetworks.
 */
#ifndef SLUICE_INET_ADDR_H
#define SLUICE_INET_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct config;

/* Numeric text of a socket address (IPv4-mapped IPv6 shown as IPv4),
 * and its port (port may be NULL). */
void inet_sockaddr_text(const struct sockaddr *sa, char *buf, size_t len,
			int *port);
/* Does `addr` match one "net/len", "[v6net]/len" or address pattern? */
bool inet_match_pattern(const char *pattern, const char *addr);
/* Does `addr` match any entry of list parameter `param`?  Entries that are
 * not addresses or networks (e.g. a type:table) never match here. */
bool inet_match_list(const struct config *c, const char *param,
		     const char *addr);

#endif
