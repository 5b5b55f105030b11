/*
 * smtp_proto.h - internal interfaces of the SMTP server, shared by
 * smtp_session.c (life cycle, input, replies), smtp_commands.c (the
 * command handlers), smtp_envelope.c (MAIL/RCPT parsing), smtp_data.c
 * (DATA/BDAT content) and smtp_log.c (Postfix-shaped log lines); the
 * restriction engine (restriction_eval.c) and `sluice explain` use its
 * log line shapes too.  Nothing else includes it.
 */
#ifndef SLUICE_SMTP_PROTO_H
#define SLUICE_SMTP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include "smtp_session.h"

/* ---- replies (smtp_session.c) ---- */
/* Queue one reply line (CRLF added); counts 4xx/5xx as errors. */
void smtp_reply(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Queue a reply without error accounting (multi-line continuation). */
void smtp_reply_raw(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Reply, then close once the output has drained. */
void smtp_reply_close(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Resume reading input after a wait (filter, commit, tarpit). */
void smtp_resume_input(struct smtp_session *s);
/* Stop reading input while waiting. */
void smtp_pause_input(struct smtp_session *s);
/* The most recent command name, for "timeout after X" lines. */
void smtp_set_last_command(struct smtp_session *s, const char *name);
const char *smtp_hostname(const struct smtp_session *s);   /* myhostname */

/* ---- commands (smtp_commands.c) ---- */
/* Handle one complete command line (without CRLF). */
void smtp_command(struct smtp_session *s, char *line, size_t len);
/* End the current transaction: abort a queue file in progress, free the
 * envelope, run reset hooks when `notify_filters`. */
void smtp_txn_reset(struct smtp_session *s, bool notify_filters);
/* smtpd_discard_ehlo_keywords names `kw` (case-insensitive): not in the
 * EHLO reply (and AUTH, STARTTLS not accepted either). */
bool smtp_ehlo_keyword_discarded(const struct smtp_session *s, const char *kw);
/* After a connect or HELO stage: keep its DISCARD/HOLD for the session. */
void smtp_keep_session_decisions(struct smtp_session *s);
/* Apply the verdict of a filter run at a stage to a reply: fills code,
 * dsn and text with the filter's or the default; returns true when the
 * verdict rejects or defers. */
bool smtp_verdict_reply(struct smtp_session *s, int verdict, int *code,
			const char **dsn, const char **text,
			const char *default_text);

/* ---- envelope syntax (smtp_envelope.c) ---- */
struct esmtp_param { char *name; char *value; };
/* Parse "FROM:<addr> params" / "TO:<addr> params".  On success the
 * address (without <>, source route stripped) goes to *addr and the
 * parameters to params[] (max nparams); returns 0, -1 when the command's
 * syntax is wrong ("501 5.5.4 Syntax: ..."), or SMTP_PATH_ADDRESS when
 * the address is (no closing '>', no <> with strict_rfc821_envelopes:
 * "501 5.1.7 Bad sender address syntax" / "501 5.1.3 ..."). */
#define SMTP_PATH_ADDRESS	(-2)
int smtp_parse_path(char *arg, const char *keyword, bool strict,
		    char **addr, struct esmtp_param *params, int *nparams,
		    int maxparams);
/* Address syntax: no control characters, no unquoted specials (space
 * < > ( ) , ;), balanced quotes, non-ASCII only with smtputf8.  Several
 * '@' and an empty local part are syntax Postfix accepts. */
bool smtp_address_valid(const char *addr, bool smtputf8);
/* Postfix's smtpd_check_addr(): does the domain the address resolves to
 * (local domains stripped, routing in the local part opened, as
 * trivial-rewrite does) pass as a host name or address literal?  False
 * gives Postfix's "501 5.1.7 Bad sender address syntax" / "501 5.1.3 Bad
 * recipient address syntax". */
struct config;
bool smtp_address_resolvable(const struct config *c, const char *addr,
			     bool smtputf8);
/* Postfix's internal form, which its restrictions look up and show in
 * their replies: the local part without quotes and backslash escapes
 * ("user@host"@x -> user@host@x).  In buf (at least strlen(addr) + 1);
 * false when the external form must stand in for it (a quote or
 * backslash would remain, or buf is too small). */
bool smtp_address_internal(const char *addr, char *buf, size_t len);
/* All of Postfix's checks of a MAIL (sender) or RCPT address before any
 * restriction: NULL, or the 501 reply.  "" is fine for a sender only;
 * with strict (strict_rfc821_envelopes) an address may not start with
 * '@'.  (A non-ASCII address without SMTPUTF8 is the caller's 553.) */
const char *smtp_address_check(const struct config *c, const char *addr,
			       bool sender, bool strict, bool smtputf8);
/* A valid host name (UTF-8 labels with smtputf8) or address literal. */
bool smtp_domain_valid(const char *domain, bool smtputf8);
/* xtext (RFC 3461) syntax check. */
bool smtp_xtext_valid(const char *s);

/* ---- content (smtp_data.c) ---- */
/* Begin content: write our Received: header.  0 or -1 (write error). */
int smtp_data_begin(struct smtp_session *s);
/* Consume DATA content from the input buffer; returns when more input is
 * needed or the message ended (then it continues to end-of-message). */
void smtp_data_input(struct smtp_session *s);
/* Consume BDAT chunk bytes from the input buffer. */
void smtp_bdat_input(struct smtp_session *s);
/* The last BDAT chunk arrived, or "." ended DATA. */
void smtp_data_end(struct smtp_session *s);
/* A commit completed for a session whose client went away: free it. */
void smtp_session_gone(struct smtp_session *s);

/* ---- logging (smtp_log.c) ---- */
const char *smtp_client_id(const struct smtp_session *s);  /* "host[ip]" */
const char *smtp_queue_id_or_noqueue(const struct smtp_session *s);
/* "NOQUEUE: reject: RCPT from host[ip]: 554 5.7.1 ...; from=<> to=<> proto=ESMTP helo=<>" */
void smtp_log_reject(struct smtp_session *s, const char *action,
		     const char *stage, int code, const char *dsn,
		     const char *text);
void smtp_log_disconnect(struct smtp_session *s);

#endif
