/*
 * params_milter.c - the main.cf parameters of the milter client
 * (milter.c, milter8.c, milter_macros.c, milter_edit.c): name, type,
 * Postfix 3.7's default, one line of description.  Part of the one
 * registry (param_table.c); keep in name order, end with { NULL }.
 *
 * mail_version is registered here because milter_macro_v's default
 * reads it ("$mail_name $mail_version", as Postfix).
 */
#include "config.h"
#include "version.h"

const struct param_def params_milter[] = {
	{ "mail_version", PT_STRING, SLUICE_VERSION,
	  "The version of this mail system (read-only in practice; milter_macro_v uses it).", NULL },
	{ "milter_command_timeout", PT_TIME, "30s",
	  "How long to wait for a milter's reply to a command other than the message content.", NULL },
	{ "milter_connect_macros", PT_STRING, "j {daemon_name} {daemon_addr} v _",
	  "Macros sent to milters with the connection (SMFIC_CONNECT), besides those a milter asks for.", NULL },
	{ "milter_connect_timeout", PT_TIME, "30s",
	  "How long to wait for a connection to a milter, and for its option negotiation.", NULL },
	{ "milter_content_timeout", PT_TIME, "300s",
	  "How long to wait for a milter's reply to message content (headers, body, end of message).", NULL },
	{ "milter_data_macros", PT_STRING, "i",
	  "Macros sent to milters with the DATA command.", NULL },
	{ "milter_default_action", PT_STRING, "tempfail",
	  "What to do when a milter is unreachable, times out or breaks the protocol: accept, reject, tempfail or quarantine.", NULL },
	{ "milter_end_of_data_macros", PT_STRING, "i",
	  "Macros sent to milters with the end of the message.", NULL },
	{ "milter_end_of_header_macros", PT_STRING, "i",
	  "Macros sent to milters with the end of the headers.", NULL },
	{ "milter_helo_macros", PT_STRING, "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
	  "Macros sent to milters with HELO or EHLO.", NULL },
	{ "milter_macro_daemon_name", PT_STRING, "$myhostname",
	  "The value of the {daemon_name} macro.", NULL },
	{ "milter_macro_v", PT_STRING, "$mail_name $mail_version",
	  "The value of the v macro.", NULL },
	{ "milter_mail_macros", PT_STRING, "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
	  "Macros sent to milters with MAIL FROM.", NULL },
	{ "milter_protocol", PT_STRING, "6",
	  "The milter protocol version sluice offers: 2, 3, 4 or 6 (negotiating down to what the milter speaks).", NULL },
	{ "milter_rcpt_macros", PT_STRING, "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
	  "Macros sent to milters with RCPT TO.", NULL },
	{ "milter_unknown_command_macros", PT_STRING, "",
	  "Macros sent to milters with an unknown SMTP command.", NULL },
	{ "non_smtpd_milters", PT_LIST, "",
	  "Milters for mail that does not arrive by SMTP (the sendmail command, pickup): unix:/path, inet:host:port or { name, option=value ... }.", NULL },
	{ "smtpd_delay_open_until_valid_rcpt", PT_BOOL, "yes",
	  "Create the queue file at the first accepted RCPT TO (yes) or at MAIL FROM (no: the queue ID, milter macro i, exists from MAIL on).", NULL },
	{ "smtpd_milters", PT_LIST, "",
	  "Milters for mail from SMTP clients, in order: unix:/path, inet:host:port or { name, connect_timeout=..., command_timeout=..., content_timeout=..., default_action=... }.", NULL },
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
