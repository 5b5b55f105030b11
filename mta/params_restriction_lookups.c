/*
 * params_restriction_lookups.c - the main.cf parameters of the built-in
 * client, HELO, sender and recipient restrictions (restriction_client.c,
 * restriction_helo.c, restriction_sender.c, restriction_recipient.c,
 * restriction_dns.c): what they look up and where.  Name, type,
 * Postfix's default, one line of description.  Part of the one registry
 * (param_table.c); keep in name order, end with { NULL }.
 *
 * Read by name but registered elsewhere: the reply codes,
 * *_tempfail_action and show_user_unknown_table_name (params_restrictions.c), mynetworks,
 * inet_interfaces (core), relay_domains, virtual_*, canonical maps
 * (params_route.c), alias_maps, double_bounce_sender.
 */
#include "config.h"

const struct param_def params_restriction_lookups[] = {
	{ "allow_untrusted_routing", PT_BOOL, "no",
	  "Let addresses with sender-specified routing (user%host@domain, host!user@domain, \"user@host\"@domain) count as local or relay_domains destinations.", NULL },
	{ "local_recipient_maps", PT_MAP, "proxy:unix:passwd.byname $alias_maps",
	  "The valid recipients of local domains (mydestination); others get \"User unknown in local recipient table\" (empty: accept every local recipient).", NULL },
	{ "mynetworks_style", PT_STRING, "host",
	  "When mynetworks is not set, permit_mynetworks trusts what this derives from the machine's interfaces (loopback included): host (their addresses), subnet (their subnets) or class (their class A/B/C networks).", NULL },
	{ "relay_recipient_maps", PT_MAP, "",
	  "The valid recipients of relay_domains; others get \"User unknown in relay recipient table\" (empty: accept every relay recipient).", NULL },
	{ "sluice_smtpd_dns_timeout", PT_TIME, "10s",
	  "How long a DNS-based restriction (reject_unknown_helo_hostname, reject_unknown_sender_domain, ...) waits for all its lookups before it counts as a temporary DNS failure.", NULL },
	{ "smtpd_sender_login_maps", PT_MAP, "",
	  "Tables of the SASL login names (comma or space separated) that own each envelope sender address, for the reject_*_sender_login_mismatch restrictions.", NULL },
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
