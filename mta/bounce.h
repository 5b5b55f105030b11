/*
 * bounce.h - delivery status notifications: bounces, delay warnings and
 * success reports to the envelope sender, and the postmaster's copies.
 *
 * The queue manager decides that a notice is due (recipients failed for
 * good or expired, a message waited delay_warning_time, a recipient asked
 * for NOTIFY=SUCCESS) and calls bounce_send() with the message's queue
 * file and the recipients concerned.  bounce_send() writes each notice as
 * a new queue file (the queue API: sender "<>", one recipient), an RFC
 * 3464 multipart/report, and commits it; the queue manager then marks
 * the recipients done and delivers the notice like any other message.
 *
 * The rules, as Postfix's bounce(8) (docs/bounces.md tells the whole of it):
 *   - a notice goes to the envelope sender, never to an address found in
 *     the headers; its envelope sender is the null sender;
 *   - NOTIFY decides who is reported: a recipient without NOTIFY is
 *     reported on failure and delay, NOTIFY=NEVER never, otherwise only
 *     for the kinds it lists (success only when it lists SUCCESS);
 *   - RET=HDRS, a message over bounce_size_limit, delay warnings and
 *     success reports return the headers only; a failure otherwise
 *     returns the whole message;
 *   - a bounce of a bounce (null sender) goes to 2bounce_notice_recipient
 *     when notify_classes lists 2bounce or bounce, with the envelope
 *     sender double_bounce_sender@$myhostname; if that one fails too it
 *     is discarded (logged): mail never loops;
 *   - notify_classes "bounce" (and "delay") send the postmaster a copy,
 *     headers only, of each non-delivery (delay) notice.
 *
 * Everything runs in the caller's event loop thread; nothing here keeps
 * state between calls.
 */
#ifndef SLUICE_BOUNCE_H
#define SLUICE_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>

#include "queue.h"

struct config;

enum bounce_kind {
	BOUNCE_FAILURE,         /* "Undelivered Mail Returned to Sender" */
	BOUNCE_DELAY,           /* "Delayed Mail (still being retried)" */
	BOUNCE_SUCCESS          /* "Successful Mail Delivery Report" */
};

/* RFC 3464 Action: values.  AUTO is the kind's own: failed, delayed,
 * delivered.  A failure notice always says "failed". */
enum bounce_action {
	BOUNCE_ACTION_AUTO = 0,
	BOUNCE_ACTION_FAILED,
	BOUNCE_ACTION_DELAYED,
	BOUNCE_ACTION_DELIVERED,        /* into a mailbox, or by a pipe */
	BOUNCE_ACTION_RELAYED,          /* to a next hop that takes no DSN */
	BOUNCE_ACTION_EXPANDED          /* to an alias's members */
};

/* One recipient to report.  Every string may contain anything the
 * network sent: it is masked and wrapped before it goes into the notice. */
struct bounce_rcpt {
	const char *addr;       /* Final-Recipient: the address tried (after
				 * rewriting); required */
	const char *orig_addr;  /* the address as received, when rewriting
				 * changed it ("expanded from"), or NULL */
	const char *orcpt;      /* DSN ORCPT as queued ("rfc822;xtext"), or NULL */
	int notify;             /* DSN_NOTIFY_* bits as queued */
	enum bounce_action action;
	const char *dsn;        /* enhanced status "5.1.1"; NULL: 5.0.0,
				 * 4.0.0 or 2.0.0 by kind */
	const char *reason;     /* for people, as logged after status=:
				 * "host mx.example.net[192.0.2.1] said: 550 5.1.1
				 * <bob@example.net>: unknown (in reply to RCPT TO
				 * command)" */
	const char *diag;       /* Diagnostic-Code "type; text", e.g. "smtp; 550
				 * 5.1.1 <bob@example.net>: unknown"; NULL:
				 * "X-Sluice; " + reason */
	const char *relay;      /* the next hop as logged after relay=
				 * ("mx.example.net[192.0.2.1]:25"): gives
				 * Remote-MTA; NULL, "none" or "local": none */
};

/*
 * Queue the notices due about message `queue_id` (its queue file open as
 * `fd`, its envelope `env` as queue_read_envelope_fd() gave it, segments
 * included) for the recipients r[0..n).  Recipients whose NOTIFY excludes
 * `kind` are left out; when none is left (and no postmaster copy is due)
 * nothing is written.
 *
 * Returns 0, and done(arg, err) then runs exactly once: err 0 once the
 * notice is on stable storage, or when none was due; an errno when it
 * could not be committed (the file is removed; try again later).  As
 * queue_commit(), done runs from the event loop when a job pool runs,
 * never inside bounce_send(); without one (a command-line tool) it runs
 * before bounce_send() returns.  A postmaster copy is committed after the
 * notice; its failure is logged, not reported.
 *
 * Returns -1 with errno (EINVAL for bad arguments, else why the notice
 * could not be written: ENOSPC, EIO...) when nothing was queued; done is
 * then never called.
 *
 * new_id_out (QUEUE_ID_MAX bytes, or NULL) receives the queue ID of the
 * notice to the sender, or of the double bounce to the postmaster, or ""
 * when none was due.  On success the log says, as Postfix:
 *   ID: sender non-delivery notification: NEWID
 *   ID: sender delay notification: NEWID
 *   ID: sender delivery status notification: NEWID
 *   ID: postmaster non-delivery notification: NEWID
 *   ID: postmaster delay notification: NEWID
 * Nothing is kept from the arguments once bounce_send() returns.
 */
int bounce_send(const struct config *c, const char *queue_dir,
		enum bounce_kind kind, const char *queue_id, int fd,
		const struct queue_envelope *env,
		const struct bounce_rcpt *r, int n,
		queue_done_fn done, void *arg, char *new_id_out);

/*
 * A postmaster notice about a problem of one of Postfix's notify_classes
 * that are not about a message's recipients ("resource", "software",
 * "policy", "protocol", "data"): sent to error_notice_recipient only when
 * notify_classes lists `class_name`, from double_bounce_sender, as a
 * plain text message with `subject` and `text` (a transcript, an
 * explanation; masked and kept as lines).  `queue_id` (or NULL) names the
 * message concerned in the log line "ID: postmaster CLASS notification:
 * NEWID".  Returns and completes as bounce_send().
 */
int bounce_error_notice(const struct config *c, const char *queue_dir,
			const char *class_name, const char *queue_id,
			const char *subject, const char *text,
			queue_done_fn done, void *arg, char *new_id_out);

/* Is addr the double-bounce address (double_bounce_sender@$myhostname),
 * the sender of postmaster notices?  Mail to it should be discarded by
 * whoever delivers locally, and a bounce of mail from it is never sent. */
bool bounce_is_double_bounce(const struct config *c, const char *addr);

/* notify_classes as a mask of BOUNCE_CLASS_* bits.  Names are Postfix's
 * (case-insensitive); an unknown one is ignored and copied to `bad` (when
 * not NULL; "" when all are known), so `sluice check` can name it. */
enum {
	BOUNCE_CLASS_BOUNCE = 1 << 0, BOUNCE_CLASS_2BOUNCE = 1 << 1,
	BOUNCE_CLASS_DATA = 1 << 2, BOUNCE_CLASS_DELAY = 1 << 3,
	BOUNCE_CLASS_POLICY = 1 << 4, BOUNCE_CLASS_PROTOCOL = 1 << 5,
	BOUNCE_CLASS_RESOURCE = 1 << 6, BOUNCE_CLASS_SOFTWARE = 1 << 7
};
int bounce_notify_classes(const struct config *c, char *bad, size_t badlen);

#endif
