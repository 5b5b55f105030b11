/*
 * pickup.h - turn the maildrop files of local submissions (sendmail)
 * into queue files, as Postfix's pickup(8) does.
 *
 * The queue manager calls pickup_run() from its loop: at start-up (mail
 * dropped while sluice was down), when the FIFO says QMGR_REQ_WAKEUP
 * (qmgr_trigger.h), and every so often in case a wake-up was lost.
 *
 * Each complete file in queue_directory/maildrop/ is checked strictly
 * (maildrop.h), becomes a committed queue file in incoming/ (proto
 * "sendmail", client "local", our Received: header first; Date:,
 * Message-ID: and From: added when missing; sender and recipients
 * without a domain get @$myorigin), and is removed once the queue file
 * is on stable storage.  The submitting user is the file's owner, never
 * anything the file says; it is logged as Postfix's pickup does:
 * "ID: uid=1000 from=<alice@example.org>".  A file that fails the checks
 * goes to corrupt/ with a warning; a file left incomplete for a day is
 * removed.
 */
#ifndef SLUICE_PICKUP_H
#define SLUICE_PICKUP_H

struct config;

/* At most this many files are taken per call, so a flood of submissions
 * does not hold up the caller's loop: call again when it returns it. */
#define PICKUP_BATCH_MAX        100

/* Take what waits in queue_dir/maildrop/.  Returns the number of files
 * handed to the queue (their commits may complete later, in the caller's
 * event loop, when a queue committer runs), or -1 with errno when
 * maildrop/ cannot be read.  Each completed commit also sends
 * QMGR_REQ_SCAN_INCOMING to the queue manager's FIFO. */
int pickup_run(const struct config *c, const char *queue_dir);

#endif
