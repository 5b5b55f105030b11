/*
 * params_local.c - the main.cf parameters of local, virtual and pipe
 * delivery (local_*.c, virtual_deliver.c, pipe_deliver.c):
 * name, type, Postfix's default, one line of description.  Part of the one
 * registry (param_table.c); keep in name order, end with { NULL }.
 *
 * Only what the agents honour is here.  A pipe(8) transport takes its
 * time limit from command_time_limit (set per transport with -o in
 * master.cf).  virtual_mailbox_base, _maps and _domains are routing's
 * (params_route.c).
 */
#include "config.h"

const struct param_def params_local[] = {
	{ "alias_maps", PT_MAP, "hash:/etc/aliases",
	  "The alias tables local delivery looks recipients up in (aliases(5): addresses, /file, |command, :include:).", NULL },
	{ "allow_mail_to_commands", PT_LIST, "alias, forward",
	  "Where local delivery may run |command destinations: alias, forward, include.", NULL },
	{ "allow_mail_to_files", PT_LIST, "alias, forward",
	  "Where local delivery may write /file destinations: alias, forward, include.", NULL },
	{ "command_time_limit", PT_TIME, "1000s",
	  "The time a command run by local or pipe delivery may take before it is killed and the mail deferred.", NULL },
	{ "default_privs", PT_STRING, "nobody",
	  "The user (never root) that files and commands of root-owned aliases, and mail for root, are delivered as.", NULL },
	{ "deliver_lock_attempts", PT_INT, "20",
	  "How many times local delivery tries to lock a mailbox or file before it defers the mail.", NULL },
	{ "deliver_lock_delay", PT_TIME, "1s",
	  "The time between two attempts to lock a mailbox or file.", NULL },
	{ "home_mailbox", PT_STRING, "",
	  "The mailbox under the home directory (\"Maildir/\" with a trailing slash is a maildir); empty: mail_spool_directory.", NULL },
	{ "local_command_shell", PT_STRING, "",
	  "The shell, with its options, that runs |command destinations (empty: /bin/sh -c).", NULL },
	{ "luser_relay", PT_STRING, "",
	  "Where local delivery sends mail for users passwd does not know, after $user, $local, $recipient, $extension, $domain, $recipient_delimiter, ${name?text} and ${name:text} expansion (empty: bounce).", NULL },
	{ "mail_spool_directory", PT_STRING, "/var/mail",
	  "Where mbox mailboxes named after the users are, when home_mailbox is empty.", NULL },
	{ "mailbox_delivery_lock", PT_LIST, "fcntl, dotlock",
	  "How local delivery locks an mbox file: any of fcntl, flock, dotlock.", NULL },
	{ "mailbox_size_limit", PT_SIZE, "51200000",
	  "The largest size in bytes of a mailbox, maildir message or file local delivery writes (0: no limit).", NULL },
	{ "prepend_delivered_header", PT_LIST, "command, file, forward",
	  "Besides mailboxes, where local delivery adds Delivered-To: command, file, forward.", NULL },
	{ "recipient_delimiter", PT_STRING, "",
	  "The characters that separate a user name from an address extension (user+extension).", NULL },
	{ "stale_lock_time", PT_TIME, "500s",
	  "The age after which a mailbox dot-lock file is taken to be left over and removed.", NULL },
	{ "strict_mailbox_ownership", PT_BOOL, "yes",
	  "Defer delivery to an mbox mailbox that is not owned by its recipient.", NULL },
	{ "virtual_gid_maps", PT_MAP, "",
	  "Tables of the numeric group ID virtual delivery writes a virtual mailbox recipient's mailbox with (static:5000 for all).", NULL },
	{ "virtual_mailbox_limit", PT_SIZE, "51200000",
	  "The largest size in bytes of a virtual mailbox or maildir message virtual delivery writes (0: no limit).", NULL },
	{ "virtual_mailbox_lock", PT_LIST, "fcntl, dotlock",
	  "How virtual delivery locks an mbox mailbox: any of fcntl, flock, dotlock.", NULL },
	{ "virtual_minimum_uid", PT_INT, "100",
	  "The lowest user ID virtual_uid_maps may give; a lower one defers the mail.", NULL },
	{ "virtual_uid_maps", PT_MAP, "",
	  "Tables of the numeric user ID virtual delivery writes a virtual mailbox recipient's mailbox as (static:5000 for all).", NULL },
	{ NULL, PT_STRING, NULL, NULL, NULL }
};
