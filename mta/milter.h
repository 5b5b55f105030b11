/*
 * milter.h - the milter client (Sendmail milter protocol, version 6,
 * negotiating down to 2) as the filter chain calls it: after the
 * restriction lists and the plugins of each stage, the session's milters
 * (smtpd_milters) are asked in order, each over its own non-blocking
 * connection; the session is suspended while a milter answers.
 *
 * Promises:
 *  - `done` runs exactly once per milter_run_stage(), possibly before it
 *    returns, with SLUICE_DUNNO (go on), SLUICE_REJECT / SLUICE_DEFER
 *    (reply in s->reply_code / reply_dsn / reply_text; the reject is
 *    logged here as "milter-reject"), SLUICE_DISCARD or SLUICE_HOLD
 *    (logged here as milter-discard / milter-hold);
 *  - a milter that is down, slow, or breaks the protocol gets its
 *    default_action (milter_default_action or the per-milter option),
 *    logged as Postfix's warnings are; the next milters still run;
 *  - at end of message every milter gets the headers and body as the
 *    milters before it left them, and its modifications are applied to
 *    the transaction before the next milter runs;
 *  - milter_session_free() never calls back into the session.
 */
#ifndef SLUICE_MILTER_H
#define SLUICE_MILTER_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct queue_file;
struct smtp_session;
struct milter_session;
struct milter8;

typedef void (*milter_done_fn)(struct smtp_session *s, int verdict);

/* Does this session have milters (smtpd_milters of its listener)? */
bool milter_session_wanted(const struct smtp_session *s);
/* Run the milters for a stage (enum filter_stage). */
void milter_run_stage(struct smtp_session *s, struct milter_session **msp,
		      int stage, milter_done_fn done);
/* An unknown SMTP command (its first word): SMFIC_UNKNOWN to the
 * session's milters, outside the filter chain.  done gets SLUICE_DUNNO,
 * or SLUICE_REJECT / SLUICE_DEFER with the milter's reply in s->reply_*
 * (not logged: the caller logs it as "milter-reject: UNKNOWN"). */
void milter_run_unknown(struct smtp_session *s, const char *verb,
			milter_done_fn done);
/* Does a milter of s want the recipients the restrictions reject
 * (SMFIP_RCPT_REJ)? */
bool milter_wants_rcpt_rej(const struct smtp_session *s);
/* The restrictions rejected s->txn.cur_rcpt with `reply` ("550 5.7.1
 * text"): SMFIC_RCPT with {rcpt_mailer} "error" to the milters that
 * asked, as Postfix sends it; their answers are ignored and s->reply_*
 * is left alone.  done gets SLUICE_DUNNO. */
void milter_run_rcpt_rej(struct smtp_session *s, const char *reply,
			 milter_done_fn done);
/* The client's ESMTP parameters of MAIL (rcpt false) or of the RCPT about
 * to be asked, as sent ("NAME=value", "NAME"): the arguments of
 * SMFIC_MAIL / SMFIC_RCPT after the address. */
struct esmtp_param;
void milter_note_params(struct smtp_session *s, bool rcpt,
			const struct esmtp_param *p, int n);
/* A milter rejected the connect or HELO (its reply persists), or failed
 * with default_action reject or tempfail: what AUTH and STARTTLS answer,
 * as Postfix's milter_other_event() - the reply of a 5xx, "454 4.3.0 Try
 * again later" for a 4xx - in buf; else NULL.  A 5xx also makes EHLO
 * announce ENHANCEDSTATUSCODES only, as Postfix's. */
const char *milter_other_event(const struct smtp_session *s, char *buf,
			       size_t len);
/* The transaction ended without end of message: SMFIC_ABORT. */
void milter_abort(struct milter_session *ms);
/* The session ends: SMFIC_QUIT, close, free.  NULL is fine. */
void milter_session_free(struct milter_session *ms);
/* Did a milter replace the body?  (NULL: no.) */
bool milter_body_replaced(const struct milter_session *ms);
/* Before the commit: the modified headers (LF-terminated lines), and the
 * body a milter replaced, into the queue file (queue_replace_headers()
 * when the body is as received).  0, or -1 with errno. */
int milter_replace_content(struct milter_session *ms, struct queue_file *qf,
			   const char *hdrs, size_t hlen);

/* `sluice check`: malformed smtpd_milters / non_smtpd_milters entries,
 * milter_default_action and milter_protocol values, as errors with
 * their file and line (main.cf or a master.cf -o). */
struct diag;
struct sluice_config;
void milter_check(struct diag *d, const struct sluice_config *sc,
		  const char *main_path);
/* "" when every entry of smtpd_milters and
 * non_smtpd_milters parses, else the first problem. */
const char *milter_conf_problem(const struct config *c, char *buf,
				unsigned len);

#endif
