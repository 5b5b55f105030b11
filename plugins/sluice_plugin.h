/*
 * sluice_plugin.h - the public plugin ABI of sluice (version 1).
 *
 * This is the only header a plugin author includes.  It is plain C, hides
 * every core structure behind an opaque handle and accessor functions, and
 * is versioned: a plugin records the SLUICE_PLUGIN_ABI it was built against
 * in its descriptor, and the loader refuses a plugin of another version with
 * a clear message instead of crashing on a changed layout.
 *
 * A plugin is a shared object exporting one symbol, `sluice_plugin`, a
 * `struct sluice_plugin` (use the SLUICE_PLUGIN_DECLARE macro).  It names
 * itself, declares its main.cf parameters (they take part in `sluice check`
 * and `sluice conf` like the core's), and sets the hooks it wants.
 *
 * Hooks run inside the worker's event loop and must never block.  A hook
 * returns a verdict (SLUICE_DUNNO lets the next filter decide).  A hook that
 * must wait - for DNS, a timer, a thread-pool job - returns SLUICE_PENDING
 * and later calls sluice_resume() exactly once with the verdict; the session
 * is suspended meanwhile, the worker is not.  If the session goes away while
 * a hook is pending, the close hook still runs: cancel the outstanding work
 * there (sluice_timer_cancel, ...) so that sluice_resume is never called on a
 * closed transaction.  (As a safety net, a sluice_resume() made from a timer
 * or job callback started for a session that has closed is ignored.)
 *
 * docs/plugin-guide.md is the author's guide; plugins/example/example.c is
 * a complete plugin to start from.
 *
 * Versioning: SLUICE_PLUGIN_ABI changes whenever a change could break a
 * built plugin (a struct layout, a function's meaning or signature).
 * Adding a function is not such a change.  `abi` stays the first member
 * of struct sluice_plugin in every version, so any sluice can read it and
 * refuse a plugin of another version by name.
 *
 * The promise: the same plugin runs unchanged under sluice, sluice-milterd
 * and sluice-policyd (the latter calls the envelope hooks only).
 */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stddef.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_PLUGIN_ABI 1

/* Opaque handles. */
typedef struct sluice_txn sluice_txn;     /* one SMTP session and its transaction */
typedef struct sluice_timer sluice_timer; /* a one-shot timer */

/* Verdicts, with Postfix access(5) meanings. */
enum sluice_verdict {
	SLUICE_DUNNO = 0,   /* no opinion: continue with the next filter */
	SLUICE_OK,          /* accept this stage; later filters of the stage are skipped */
	SLUICE_REJECT,      /* permanent failure (5xx) */
	SLUICE_DEFER,       /* temporary failure (4xx) */
	SLUICE_DISCARD,     /* accept, then silently drop the message */
	SLUICE_HOLD,        /* accept and put the message on hold */
	SLUICE_PENDING      /* the answer comes later through sluice_resume() */
};

/* Parameter types, as in main.cf. */
enum sluice_param_type {
	SLUICE_PARAM_STRING = 0,
	SLUICE_PARAM_BOOL,
	SLUICE_PARAM_INT,
	SLUICE_PARAM_TIME,   /* with units s, m, h, d, w; value in seconds */
	SLUICE_PARAM_SIZE,   /* bytes */
	SLUICE_PARAM_LIST,   /* comma or space separated */
	SLUICE_PARAM_MAP     /* type:name lookup table(s) */
};

/* A main.cf parameter a plugin owns.  Name it after the plugin, e.g.
 * `example_reject_recipient`. */
struct sluice_param {
	const char *name;
	enum sluice_param_type type;
	const char *default_value;
	const char *description;
};

/* The hooks.  `pdata` is what init() stored for the plugin.  Every hook
 * may return SLUICE_PENDING, except close(), reset() and fini(). */
typedef int (*sluice_stage_fn)(sluice_txn *t, void *pdata);
typedef int (*sluice_header_fn)(sluice_txn *t, const char *name,
				const char *value, void *pdata);
typedef int (*sluice_body_fn)(sluice_txn *t, const unsigned char *chunk,
			      size_t len, void *pdata);
typedef void (*sluice_void_fn)(sluice_txn *t, void *pdata);

struct sluice_plugin {
	unsigned abi;                       /* SLUICE_PLUGIN_ABI; always first */
	const char *name;                   /* as listed in sluice_plugins */
	const char *version;
	const char *description;
	const struct sluice_param *params;  /* terminated by {NULL} */

	/* Once per worker process, after the configuration is read.  Return 0,
	 * or -1 after sluice_log(SLUICE_LOG_ERR, ...) saying why. */
	int (*init)(void **pdata);
	void (*fini)(void *pdata);

	sluice_stage_fn connect;   /* client connected */
	sluice_stage_fn helo;      /* HELO/EHLO: sluice_helo_name() */
	sluice_stage_fn mail;      /* MAIL FROM: sluice_sender() */
	sluice_stage_fn rcpt;      /* RCPT TO: sluice_recipient() is the current one */
	sluice_stage_fn data;      /* DATA / first BDAT, before the content */
	/* each header of the message, in order (ours, Received:, first):
	 * the name as received, the value without the whitespace after the
	 * colon, folded lines kept as "\n" + whitespace */
	sluice_header_fn header;
	sluice_stage_fn eoh;       /* end of headers */
	/* body chunks: the body as queued (LF line ends, dot-unstuffed), in
	 * pieces of up to 64 KiB that need not end at a line end */
	sluice_body_fn body;
	sluice_stage_fn eom;       /* end of message: modifications allowed here */
	/* transaction over (RSET, new MAIL, end of message): forget
	 * per-transaction state */
	sluice_void_fn reset;
	/* session closed, even with one of your hooks pending: cancel your
	 * timers and free per-session state */
	sluice_void_fn close;
};

#define SLUICE_PLUGIN_DECLARE \
	extern const struct sluice_plugin sluice_plugin; \
	const struct sluice_plugin sluice_plugin

/* ---- Reply and completion ------------------------------------------- */

/* Set the reply the client gets if this hook's verdict rejects or defers.
 * The text is the whole text after the codes (Postfix's shape for a
 * recipient is "<addr>: Recipient address rejected: why"); without a call,
 * the client gets Postfix's text for the stage ("... Access denied").
 * code 0 and dsn NULL take the defaults (554 5.7.1 / 450 4.7.1).  A 4xx
 * code with SLUICE_REJECT defers, as a numeric access(5) action does. */
void sluice_reply(sluice_txn *t, int code, const char *dsn,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Complete a hook that returned SLUICE_PENDING.  Call once, from the event
 * loop (timer callbacks, DNS callbacks and job completions all run there),
 * or from the hook itself before it returns SLUICE_PENDING.  It may run the
 * next hooks and even end the session before it returns: call it last,
 * and do not touch `t` or your session state afterwards. */
void sluice_resume(sluice_txn *t, int verdict);

/* ---- Per-session plugin state ---------------------------------------- */
/* One pointer per plugin and session, for your hooks and the callbacks
 * they start; free what it points to in the close hook. */
void *sluice_get_data(sluice_txn *t);
void sluice_set_data(sluice_txn *t, void *data);

/* ---- What the transaction looks like --------------------------------- */
const char *sluice_client_addr(sluice_txn *t);   /* "192.0.2.1" */
const char *sluice_client_name(sluice_txn *t);   /* verified name or "unknown" */
int sluice_client_port(sluice_txn *t);
const char *sluice_helo_name(sluice_txn *t);     /* NULL before HELO */
const char *sluice_sender(sluice_txn *t);        /* "" for <>, NULL before MAIL */
const char *sluice_recipient(sluice_txn *t);     /* the RCPT being checked */
int sluice_recipient_count(sluice_txn *t);       /* accepted so far */
const char *sluice_recipient_at(sluice_txn *t, int i);
const char *sluice_queue_id(sluice_txn *t);      /* NULL before the queue file exists */
const char *sluice_listener(sluice_txn *t);      /* master.cf service name */
/* A macro-like attribute by name, with the milter macro names Postfix
 * uses ("j", "_", "{client_addr}", "{client_port}", "{daemon_name}",
 * "i", "{mail_addr}", "{rcpt_addr}", "{auth_authen}", "protocol", ...);
 * NULL if unset.  Valid until the next sluice_attr() call. */
const char *sluice_attr(sluice_txn *t, const char *name);

/* ---- Modifications, valid in the eom hook only ----------------------- */
/* ...or in a callback of a pending eom hook.  Each returns 0, or -1 when
 * not allowed at this point or invalid (a name with ':' or whitespace, a
 * line break in a value not followed by whitespace).  Values are given
 * without the space after the colon; "\n\t" folds. */
int sluice_header_add(sluice_txn *t, const char *name, const char *value);
/* Insert at a 0-based position among the headers (0: on top, above our
 * Received:; past the end: append). */
int sluice_header_insert(sluice_txn *t, int index, const char *name,
			 const char *value);
/* Change the index-th (1-based) header called `name` (case-insensitive);
 * value NULL deletes it.  Without such a header, a value is added (as
 * smfi_chgheader does) and a delete does nothing. */
int sluice_header_change(sluice_txn *t, const char *name, int index,
			 const char *value);
/* Addresses with or without <>.  Delete removes every recipient of that
 * address (case-insensitive) and returns -1 when there was none. */
int sluice_rcpt_add(sluice_txn *t, const char *addr);
int sluice_rcpt_delete(sluice_txn *t, const char *addr);

/* ---- Configuration ---------------------------------------------------- */
/* The value of a main.cf parameter (the plugin's own or the core's);
 * NULL if unknown.  The _txn forms give the value as it applies to the
 * session's listener (main.cf plus its master.cf -o overrides). */
const char *sluice_conf_str(const char *name);
long long sluice_conf_int(const char *name);   /* int, time (s), size, bool */
const char *sluice_txn_conf_str(sluice_txn *t, const char *name);
long long sluice_txn_conf_int(sluice_txn *t, const char *name);

/* ---- Logging ---------------------------------------------------------- */
enum sluice_log_level { SLUICE_LOG_ERR = 0, SLUICE_LOG_WARN, SLUICE_LOG_INFO,
			SLUICE_LOG_DEBUG };
void sluice_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Same, prefixed with the transaction's queue id (or NOQUEUE) as in
 * Postfix's logs.  Both put the plugin's name before the text:
 * "6741A3F20A3E5001: example: text". */
void sluice_txn_log(sluice_txn *t, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- Asynchronous services -------------------------------------------- */
typedef void (*sluice_timer_fn)(void *arg);
/* Run fn(arg) once in the event loop after `msec` milliseconds; NULL on
 * failure (logged).  The handle belongs to the core: it is freed when the
 * callback returns, so forget it in the callback and never cancel a timer
 * that has fired.  The callback runs in the context of the hook that
 * started the timer (sluice_get_data works there). */
sluice_timer *sluice_timer_start(unsigned msec, sluice_timer_fn fn, void *arg);
/* Stop a timer that has not fired, and free it; NULL is fine, and so is a
 * call from the timer's own callback. */
void sluice_timer_cancel(sluice_timer *tm);

/* Run work(arg) on a thread-pool thread, then done(arg) in the event loop.
 * work() must not call any sluice_* function.  Returns 0 or -1.  A job
 * cannot be cancelled: if the session closes first, the close hook marks
 * the job's state as orphaned and done() frees it without resuming. */
int sluice_job_submit(void (*work)(void *arg), void (*done)(void *arg),
		      void *arg);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_PLUGIN_H */
