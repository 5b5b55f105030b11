/*
 * params_route.c - the main.cf parameters of address rewriting and routing (rewrite*.c, resolve*.c):
 * name, type, Postfix's default, one line of description.  Part of the one
 * registry (param_table.c); keep in name order, end with { NULL }.
 *
 * Read by name but registered elsewhere (or not at all, reading as
 * Postfix's default): mydestination, myorigin, mydomain, myhostname,
 * inet_interfaces (core); recipient_delimiter (local delivery);
 * proxy_interfaces, allow_min_user, empty_address_recipient,
 * double_bounce_sender.
 */
#include "config.h"

const struct param_def params_route[] = {
	{ "append_at_myorigin", PT_BOOL, "yes",
	  "Append @$myorigin to envelope addresses without a domain.", NULL },
	{ "append_dot_mydomain", PT_BOOL, "no",
	  "Append .$mydomain to envelope address domains without a dot (Postfix 3's default is no).", NULL },
	{ "canonical_maps", PT_MAP, "",
	  "Tables that rewrite sender and recipient envelope addresses, after sender_ and recipient_canonical_maps (canonical(5)).", NULL },
	{ "default_transport", PT_STRING, "smtp",
	  "The transport[:nexthop] for domains of no other address class.", NULL },
	{ "local_transport", PT_STRING, "local:$myhostname",
	  "The transport[:nexthop] for domains in mydestination and [address literals] of inet_interfaces.", NULL },
	{ "parent_domain_matches_subdomains", PT_LIST,
	  "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps",
	  "Parameters whose \"example.com\" entries also match subdomains; elsewhere write \".example.com\" for that.", NULL },
	{ "propagate_unmatched_extensions", PT_LIST, "canonical, virtual",
	  "Which mappings keep an address extension (user+ext) that the table key did not include: canonical, virtual, alias, forward, include.", NULL },
	{ "recipient_canonical_maps", PT_MAP, "",
	  "Tables that rewrite envelope recipient addresses, before canonical_maps (canonical(5)).", NULL },
	{ "relay_domains", PT_LIST, "",
	  "Domains (and subdomains) this host relays to: names, type:table or /file entries; routed by relay_transport.", NULL },
	{ "relay_transport", PT_STRING, "relay",
	  "The transport[:nexthop] for domains in relay_domains.", NULL },
	{ "relayhost", PT_STRING, "",
	  "The next hop for relay and default mail instead of the recipient domain: host, host:port, [host]:port (no MX lookup).", NULL },
	{ "sender_canonical_maps", PT_MAP, "",
	  "Tables that rewrite envelope sender addresses, before canonical_maps (canonical(5)).", NULL },
	{ "transport_maps", PT_MAP, "",
	  "Tables of transport:nexthop by address, domain and .parent domain, overriding the address class (transport(5)).", NULL },
	{ "virtual_alias_address_length_limit", PT_INT, "1000",
	  "The longest address a virtual alias expansion may produce.", NULL },
	{ "virtual_alias_domains", PT_LIST, "$virtual_alias_maps",
	  "Domains whose every address is a virtual alias; one without a mapping is \"User unknown in virtual alias table\".", NULL },
	{ "virtual_alias_expansion_limit", PT_INT, "1000",
	  "The most addresses one recipient may expand into through virtual_alias_maps.", NULL },
	{ "virtual_alias_maps", PT_MAP, "",
	  "Tables that redirect recipients of any domain to one or more addresses, recursively (virtual(5)).", NULL },
	{ "virtual_alias_recursion_limit", PT_INT, "1000",
	  "The deepest nesting of virtual_alias_maps expansions.", NULL },
	{ "virtual_mailbox_base", PT_STRING, "",
	  "The directory virtual_mailbox_maps results are relative to.", NULL },
	{ "virtual_mailbox_domains", PT_LIST, "$virtual_mailbox_maps",
	  "Domains whose mail is delivered to mailboxes by virtual_transport.", NULL },
	{ "virtual_mailbox_maps", PT_MAP, "",
	  "Tables of the valid virtual mailbox recipients and their mailbox paths (a trailing / means maildir).", NULL },
	{ "virtual_transport", PT_STRING, "virtual",
	  "The transport[:nexthop] for domains in virtual_mailbox_domains.", NULL },
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
