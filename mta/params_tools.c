/*
 * params_tools.c - the main.cf parameters of the queue tools, sendmail and
 * pickup (queue_*.c, sendmail_*.c, pickup*.c): name, type, Postfix's
 * default, one line of description.  Part of the one registry
 * (param_table.c); keep in name order, end with { NULL }.
 *
 * Besides these, the tools honour core parameters: queue_directory,
 * message_size_limit and header_size_limit (sendmail, -bs and pickup);
 * myhostname, myorigin, append_at_myorigin, smtputf8_enable and mail_name
 * (pickup's Received:, Message-Id:, From:, address qualification and
 * SMTPUTF8 detection); smtpd_banner and smtpd_recipient_limit (sendmail
 * -bs); maillog_file, syslog_name and syslog_facility (where they log).
 */
#include "config.h"

const struct param_def params_tools[] = {
	{ "alias_database", PT_LIST, "hash:/etc/aliases",
	  "The alias tables newaliases (sendmail -bi) builds; hash: ones are made with sluice map build -a.", NULL },
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
