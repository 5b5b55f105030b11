/*
 * access_action.h - parse an access(5) action: the right-hand side of an
 * access table, a policy service's action=, a plugin's sluice_action().
 *
 * Parsing only: what the action does is the engine's (rcheck_action() in
 * restriction_eval.c).  The policy client (issue 6) parses its replies
 * with the same function, so both read actions identically.
 *
 * Postfix's reading (smtpd_check.c check_table_result): the first word is
 * the command, case-insensitive; the text after it (whitespace skipped)
 * is its argument.  REJECT, DEFER, DEFER_IF_PERMIT, DEFER_IF_REJECT and
 * "4NN/5NN text" accept an optional RFC 3463 enhanced code at the start
 * of the text ("REJECT 5.7.1 go away").  An all-digit value is OK (some
 * out-of-band schemes store a time stamp), "550" alone included; a reply
 * code needs text after it.
 */
#ifndef SLUICE_ACCESS_ACTION_H
#define SLUICE_ACCESS_ACTION_H

enum access_kind {
	AA_OK,              /* OK, RELAY, all digits */
	AA_DUNNO,
	AA_REJECT,          /* REJECT [text] */
	AA_DEFER,           /* DEFER [text] */
	AA_NUMERIC,         /* 4NN/5NN [d.d.d] text */
	AA_DEFER_IF_PERMIT,
	AA_DEFER_IF_REJECT,
	AA_DISCARD,         /* DISCARD [text] */
	AA_HOLD,            /* HOLD [text] */
	AA_FILTER,          /* FILTER transport:destination */
	AA_PREPEND,         /* PREPEND header: value */
	AA_REDIRECT,        /* REDIRECT user@domain */
	AA_BCC,             /* BCC user@domain */
	AA_WARN,            /* WARN [text] */
	AA_INFO,            /* INFO [text] */
	AA_TABLE,           /* contains ':' - a lookup table: refused */
	AA_RESTRICTIONS     /* anything else: restriction names or classes */
};

#define ACCESS_TEXT_MAX 512

struct access_action {
	enum access_kind kind;
	char command[32];           /* the first word as written (truncated) */
	int code;                   /* AA_NUMERIC: the code; else 0 */
	char dsn[16];               /* enhanced code given, or "" */
	char text[ACCESS_TEXT_MAX]; /* the text after command (and dsn) */
	const char *value;          /* the whole value (caller's string) */
};

/* Parse value into a.  Never fails: every value is some kind. */
void access_action_parse(const char *value, struct access_action *a);
/* The name of a kind as written in tables ("DEFER_IF_PERMIT"). */
const char *access_kind_name(enum access_kind k);
/* Is d an RFC 3463 code "4.7.1" / "5.1.10"? */
int access_dsn_valid(const char *d);
/* Postfix's smtpd_dsn_fix(): an address status (X.1.Y) given for what
 * the reply is not about is mapped: to the sender form ("Sender
 * address"), the recipient form ("Recipient address"), or X.0.0 for
 * anything else.  dsn (at least 16 bytes) is changed in place; its class
 * digit is left alone (the reply code sets it). */
void access_dsn_fix(char *dsn, const char *reply_class);

#endif
