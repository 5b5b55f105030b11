/*
 * qmgr_trigger.h - waking the queue manager: one-byte requests through a
 * FIFO, queue_directory/public/qmgr, as Postfix's public/qmgr.
 *
 * Writers are `sluice queue flush`, `sendmail -q` and `sendmail` after it
 * dropped a message into maildrop/ (any local user: public/ is mode 0711
 * and the FIFO 0622).  The reader is the queue manager, which keeps the
 * FIFO open read-write (so it never sees end-of-file when a writer
 * closes) in its event loop.
 *
 * A request is a hint, never a command that carries data: the reader
 * treats every byte as untrusted, ignores unknown ones, and coalesces
 * repeats (a thousand 'W's mean one pickup run).  Writing never blocks:
 * a full FIFO already holds a pending wake-up.
 */
#ifndef SLUICE_QMGR_TRIGGER_H
#define SLUICE_QMGR_TRIGGER_H

#define QMGR_PUBLIC_DIR         "public"
#define QMGR_TRIGGER_FIFO       "public/qmgr"   /* under queue_directory */

/* Request bytes (Postfix's qmgr uses the same letters). */
#define QMGR_REQ_WAKEUP         'W'     /* new mail in maildrop/: run pickup,
					 * then scan incoming/ */
#define QMGR_REQ_SCAN_INCOMING  'I'     /* scan incoming/ now */
#define QMGR_REQ_SCAN_ALL       'A'     /* flush: scan deferred/ too, try
					 * everything now, backoff ignored */
#define QMGR_REQ_FLUSH_DEAD     'F'     /* forget the dead-destination cache */

/* What qmgr_trigger_read() found, as bits. */
#define QMGR_WANT_WAKEUP        0x1
#define QMGR_WANT_SCAN_INCOMING 0x2
#define QMGR_WANT_SCAN_ALL      0x4
#define QMGR_WANT_FLUSH_DEAD    0x8

/* Send one request byte.  0, or -1 with errno: ENXIO or ENOENT when no
 * queue manager is listening (the mail system is down), EINVAL for an
 * unknown request, others from open(2)/write(2). */
int qmgr_trigger_send(const char *queue_dir, char what);

/* The reader's side: create public/ (0711) and the FIFO (0622) when
 * missing, replacing anything else found at its name, and open it
 * O_RDWR | O_NONBLOCK | O_CLOEXEC.  The descriptor, or -1 with errno. */
int qmgr_trigger_open(const char *queue_dir);

/* Drain every byte waiting on the FIFO; the QMGR_WANT_* bits of the
 * requests seen (0 when none or only unknown bytes). */
unsigned qmgr_trigger_read(int fd);

#endif
