/*
 * params_sasl.c - the main.cf parameters of SMTP AUTH, server side
 * (smtp_auth.c, sasl_server.c, sasl_cyrus.c, sasl_dovecot.c) and client
 * side (sasl_client.c): name, type, Postfix's default, one line of
 * description.  Part of the one registry (param_table.c); keep in name
 * order, end with { NULL }.
 *
 * Read by name but registered elsewhere: smtpd_tls_auth_only (server
 * TLS; reads as "no" while it is not registered), smtpd_sender_login_maps
 * (restriction lookups), smtpd_client_event_limit_exceptions (core).
 */
#include "config.h"

const struct param_def params_sasl[] = {
	{ "anvil_rate_time_unit", PT_TIME, "60s",
	  "The time unit of the per-client rate limits (smtpd_client_connection_rate_limit, smtpd_client_message_rate_limit, smtpd_client_recipient_rate_limit, smtpd_client_auth_rate_limit).", NULL },
	{ "broken_sasl_auth_clients", PT_BOOL, "no",
	  "Also announce AUTH in the obsolete form \"AUTH=PLAIN LOGIN\" for clients (old Outlook) that understand only that.", NULL },
	{ "cyrus_sasl_config_path", PT_STRING, "",
	  "The directory Cyrus SASL reads its application file (smtpd_sasl_path + \".conf\") from, before its built-in search path.", NULL },
	{ "smtp_sasl_auth_enable", PT_BOOL, "no",
	  "Authenticate (AUTH) to remote SMTP servers that offer it, with the credentials of smtp_sasl_password_maps.", NULL },
	{ "smtp_sasl_mechanism_filter", PT_LIST, "",
	  "Offered mechanisms the SMTP client may use: empty means any; else a list of names (and type:table entries) that keep the matching ones.", NULL },
	{ "smtp_sasl_password_maps", PT_MAP, "",
	  "Tables of \"username:password\" by next-hop destination ([host]:port, host:port, host), then by remote host name.", NULL },
	{ "smtp_sasl_security_options", PT_LIST, "noplaintext, noanonymous",
	  "Mechanisms the SMTP client refuses over a cleartext connection: noplaintext, noactive, nodictionary, noanonymous, mutual_auth.", NULL },
	{ "smtp_sasl_tls_security_options", PT_LIST, "$smtp_sasl_security_options",
	  "As smtp_sasl_security_options, for connections protected by TLS.", NULL },
	{ "smtpd_client_auth_rate_limit", PT_INT, "0",
	  "The most AUTH commands one client address may send per anvil_rate_time_unit (60s); 0 means no limit.", NULL },
	{ "smtpd_sasl_auth_enable", PT_BOOL, "no",
	  "Offer SMTP AUTH (RFC 4954) to clients, verified by the smtpd_sasl_type backend.", NULL },
	{ "smtpd_sasl_authenticated_header", PT_BOOL, "no",
	  "Put the login name into the Received: header: \"(Authenticated sender: user)\".", NULL },
	{ "smtpd_sasl_exceptions_networks", PT_LIST, "",
	  "Clients (network/mask, addresses, type:table) that are not offered AUTH in the EHLO reply.", NULL },
	{ "smtpd_sasl_local_domain", PT_STRING, "",
	  "The realm Cyrus SASL puts logins without @realm into (sasldb user@realm).", NULL },
	{ "smtpd_sasl_path", PT_STRING, "smtpd",
	  "cyrus: the application name (smtpd -> smtpd.conf); dovecot: the auth socket, relative to queue_directory unless absolute.", NULL },
	{ "smtpd_sasl_response_limit", PT_INT, "12288",
	  "The longest AUTH client response line, in bytes.", NULL },
	{ "smtpd_sasl_security_options", PT_LIST, "noanonymous",
	  "Mechanisms not offered over a cleartext connection: noplaintext, noactive, nodictionary, noanonymous, mutual_auth, forward_secrecy.", NULL },
	{ "smtpd_sasl_service", PT_STRING, "smtp",
	  "The service name passed to the SASL backend (PAM service, Dovecot service).", NULL },
	{ "smtpd_sasl_tls_security_options", PT_LIST, "$smtpd_sasl_security_options",
	  "As smtpd_sasl_security_options, for sessions protected by TLS.", NULL },
	{ "smtpd_sasl_type", PT_STRING, "cyrus",
	  "The server SASL backend: cyrus (libsasl2: sasldb, saslauthd) or dovecot (Dovecot's auth socket).", NULL },
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
