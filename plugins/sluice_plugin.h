/*
 * sluice_plugin.h - the public plugin ABI of sluice (version 2).
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
 * Adding a function is not such a change.  Members are never appended
 * to struct sluice_plugin within a version: a plugin's descriptor is a
 * const object of the size it was built with, so the core cannot read a
 * member past its end.  What a plugin may optionally provide within a
 * version is an extra exported symbol the loader looks up by name
 * (sluice_plugin_check, below), absent from plugins built earlier.  `abi` stays the first member
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

#define SLUICE_PLUGIN_ABI 2

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
	SLUICE_PENDING,     /* the answer comes later through sluice_resume() */
	SLUICE_ACTION       /* a restriction answered with sluice_action() */
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

/* A restriction the plugin provides, usable in any smtpd_*_restrictions
 * list and restriction class by its name (e.g. "check_client_access
 * hash:/etc/sluice/access").  check() runs when the list reaches it, with
 * the argument written after the name (NULL when takes_arg is 0).  It
 * returns SLUICE_DUNNO (no opinion), SLUICE_OK, SLUICE_REJECT or
 * SLUICE_DEFER (with sluice_reply()), SLUICE_ACTION after
 * sluice_action(), or SLUICE_PENDING and later sluice_resume(t, v) with
 * one of these.  `takes_arg`: 0 none, 1 a word, 2 a type:name table
 * (which `sluice check` opens and checks). */
typedef int (*sluice_restriction_fn)(sluice_txn *t, const char *arg,
				     void *pdata);
struct sluice_restriction {
	const char *name;
	int takes_arg;
	sluice_restriction_fn check;
};

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

	/* restrictions provided, terminated by {NULL}; may be NULL (ABI 2) */
	const struct sluice_restriction *restrictions;
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

/* In a restriction's check (or before its sluice_resume): answer with an
 * access(5) action, exactly as if a table had returned it: "OK",
 * "REJECT text", "DEFER_IF_PERMIT text", "550 5.7.1 text", "PREPEND
 * X-Header: value", "REDIRECT a@b", "HOLD why", a restriction class
 * name, ...  `reply_class` says what was checked, for Postfix's reply
 * text ("Client host", "Helo command", "Sender address", "Recipient
 * address"); `name` is what is quoted in it ("<a@b>", "host[addr]").
 * NULL for either stands for what the list being evaluated checks (the
 * recipient in smtpd_recipient_restrictions, ...).
 * Returns SLUICE_ACTION, to be returned (or passed to sluice_resume).
 *
 * In an eom hook (outside any restriction) the actions that change the
 * message may be given too, with the restriction engine's effects:
 * "FILTER transport:destination" (the content filter the queue manager
 * delivers to), "HOLD [why]", "DISCARD [why]", "REDIRECT user@domain",
 * "BCC user@domain"; name and reply_class are unused there.  It then
 * returns the verdict for the hook to return (SLUICE_DISCARD for
 * DISCARD, else SLUICE_DUNNO, so the hook may also go on and return its
 * own); other actions are ignored with a warning (answer with a verdict
 * instead).  HOLD and DISCARD are logged by the core (END-OF-MESSAGE);
 * FILTER, REDIRECT and BCC by the plugin, which knows what matched. */
int sluice_action(sluice_txn *t, const char *action, const char *name,
		  const char *reply_class);

/* The stage of the restriction list being evaluated: "CONNECT", "HELO",
 * "MAIL", "RCPT", "DATA", "END-OF-MESSAGE", "ETRN". */
const char *sluice_stage(sluice_txn *t);

/* For `sluice explain`: say what the restriction looked at ("key
 * example.com: found: REJECT").  Costs nothing in a real session. */
void sluice_explain(sluice_txn *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

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

/* ---- Memory ------------------------------------------------------------ */
/* Memory that is there or the process is gone: out of memory, these log
 * and end the worker (a daemon has no sane way on), so callers never
 * check for NULL.  Free the results with free(). */
void *sluice_calloc(size_t n);                /* n zeroed bytes */
char *sluice_strdup(const char *s);           /* a copy; "" for NULL */

/* ---- Declining the message content ------------------------------------ */
/* Called from init(): in this process the plugin has nothing to do with
 * message content (say, no header or body table is configured), so its
 * header, eoh and body hooks are not called, and when no loaded plugin
 * wants content the content stage is skipped altogether (no per-message
 * work for hooks that would only answer SLUICE_DUNNO).  Its other hooks,
 * eom included, run as before.  Outside init() it logs a warning and does
 * nothing.  (A function, not a struct member, so ABI 2's layout stays.) */
void sluice_no_content(void);

/* ---- Checking parameter values ----------------------------------------- */
/* A plugin may export, beside its descriptor, a function named
 * sluice_plugin_check (declare it with SLUICE_PLUGIN_CHECK):
 *
 *     SLUICE_PLUGIN_CHECK
 *     {
 *         return sluice_param_one_of("myplugin_mode", "fast safe");
 *     }
 *
 * `sluice check` runs it (so a bad value is found before anything
 * starts), and every process that loads the plugin runs it before
 * init().  It may call sluice_conf_str(), sluice_conf_int(),
 * sluice_param_error() and sluice_param_one_of() only (no session, no
 * sluice_log).  It returns 0, or non-zero after reporting each bad value
 * with sluice_param_error(): `sluice check` then prints
 * "main.cf:LINE: name: text" and exits 1, and a worker refuses to start
 * the plugin, logging the same lines.  It is found by name (dlsym), not
 * through struct sluice_plugin, so the descriptor keeps ABI 2's layout
 * and plugins built without it load as before. */
#define SLUICE_PLUGIN_CHECK \
	int sluice_plugin_check(void); \
	int sluice_plugin_check(void)
/* Report that main.cf parameter `name` has a bad value: the text says
 * what is wrong and how to fix it ("unknown value \"x\"; use one of: a
 * b").  Outside sluice_plugin_check() (in init()) it logs the same
 * "FILE:LINE: name: text" line as an error. */
void sluice_param_error(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* 0 when parameter `name`'s value is one of `words` (space separated,
 * case-insensitive), else reports it with sluice_param_error() and
 * returns -1. */
int sluice_param_one_of(const char *name, const char *words);

/* ---- Lists -------------------------------------------------------------- */
/* Split a list parameter's value as the core splits its own: items are
 * separated by commas and whitespace, and a {...} group (with nested
 * braces) stays one item, so "hash:/a, inline:{ k=v, k2=v2 }" is two
 * tables.  Returns a NULL-terminated array (never NULL; NULL value gives
 * an empty list); free it with sluice_list_free(). */
char **sluice_split_list(const char *value);
void sluice_list_free(char **list);

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

/* ---- Lookup tables ----------------------------------------------------- */
/* Tables in Postfix's "type:name" form (any type `sluice map list`
 * shows), opened once per process and shared; a table rebuilt on disk is
 * re-read on its next lookup.  NULL on error, with the reason in err. */
typedef struct sluice_map sluice_map;
sluice_map *sluice_map_open(const char *spec, char *err, size_t errlen);
/* Exact lookup of one key.  1 found (*value valid until the next lookup
 * in this table), 0 not found, -1 temporary failure. */
int sluice_map_lookup(sluice_map *m, const char *key, const char **value);
/* Lookup in Postfix's access(5) order for a kind of key:
 *  SLUICE_KEY_ADDRESS  "user@domain": the address, the domain and (per
 *                      parent_domain_matches_subdomains) its parents,
 *                      then "user@" (with recipient_delimiter handling);
 *                      "" (the null sender) looks up <> per
 *                      smtpd_null_access_lookup_key;
 *  SLUICE_KEY_DOMAIN   a domain and its parents;
 *  SLUICE_KEY_HOSTNAME a host name and its parents;
 *  SLUICE_KEY_ADDR     an IP address, then shorter prefixes (IPv4 octets,
 *                      IPv6 per Postfix).
 * Pattern tables (cidr, pcre, regexp) get the full key only.  Every key
 * tried is reported to sluice_explain when `t` is not NULL.  Returns as
 * sluice_map_lookup. */
enum sluice_key_kind { SLUICE_KEY_ADDRESS, SLUICE_KEY_DOMAIN,
		       SLUICE_KEY_HOSTNAME, SLUICE_KEY_ADDR };
int sluice_access_lookup(sluice_txn *t, sluice_map *m, int kind,
			 const char *key, const char **value);

/* ---- DNS ---------------------------------------------------------------- */
/* Asynchronous lookups in the event loop (c-ares).  status: 0 found,
 * 1 the name has no such records (or does not exist), -1 temporary
 * failure.  answers: n strings (addresses in numeric form, host names
 * without the trailing dot), valid during the call.  The callback runs in
 * the hook's context, exactly once unless cancelled; it may run before
 * sluice_dns_lookup returns (then NULL is returned). */
enum sluice_dns_type { SLUICE_DNS_A, SLUICE_DNS_AAAA, SLUICE_DNS_ADDRS,
		       SLUICE_DNS_MX, SLUICE_DNS_NS, SLUICE_DNS_PTR,
		       SLUICE_DNS_TXT };
typedef struct sluice_dns sluice_dns;
typedef void (*sluice_dns_fn)(void *arg, int status, char **answers, int n);
sluice_dns *sluice_dns_lookup(const char *name, int type, sluice_dns_fn fn,
			      void *arg);
void sluice_dns_cancel(sluice_dns *q);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_PLUGIN_H */
