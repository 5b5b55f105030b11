/*
 * local_int.h - what the local(8), virtual(8) and pipe(8) delivery
 * agents share inside sluice (local_*.c, virtual_deliver.c,
 * pipe_deliver.c); not an interface for anyone else.
 *
 * The pieces, each in its own file:
 *   local_agent.c    the agent shell: a child process started from the
 *                    caller's event loop, its result lines read back over
 *                    a pipe, waitpid, a time limit
 *   local_result.c   the result lines a child writes, and their reading
 *   local_copy.c     the message as written to a mailbox, file or
 *                    command: From_ line, Return-Path:, Delivered-To:,
 *                    ">From " quoting, dot stuffing, CRLF; and the
 *                    Delivered-To: headers already in the message
 *   local_priv.c     whose privileges a delivery runs with (never root)
 *   local_command.c  a command fed the message, its output kept, its
 *                    exit status mapped (sysexits), its time limited
 *   local_mbox.c     mbox and /file delivery, with locking
 *   local_maildir.c  maildir delivery
 *   local_alias.c    alias expansion (alias_maps, :include:)
 *   local_user.c     delivery to a user: passwd, .forward, mailbox
 *   local_forward.c  addresses that leave the machine: a new queue file
 *   local_deliver.c  local_deliver(): one recipient after another
 *   virtual_deliver.c
 *                    virtual_deliver(): virtual(8), with the mailbox
 *                    writers and the child shell above
 *
 * Promises kept together: nothing a recipient, an alias, a .forward or a
 * command controls ever runs or writes as root; every child reports each
 * delivery it tried, and a child that dies or overruns its time is a
 * temporary failure, never a success.
 */
#ifndef SLUICE_LOCAL_INT_H
#define SLUICE_LOCAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "delivery.h"

struct event_base;
struct config;

#define LOCAL_TEXT_MAX		512     /* one result text */
#define LOCAL_OUTPUT_MAX	400     /* command output kept for a bounce */
#define LOCAL_EXPAND_DEPTH	20      /* nested aliases and :include:s */
#define LOCAL_TARGETS_MAX	1000    /* destinations of one recipient */

/* ---- one delivery's result ------------------------------------------- */

struct local_result {
	int status;                     /* 2, 4, 5 */
	char dsn[16];
	char text[LOCAL_TEXT_MAX];
};

void lres_set(struct local_result *r, int status, const char *dsn,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A system error as Postfix classes it: EDQUOT 4.2.2 mailbox full,
 * EFBIG 5.2.2 (over mailbox_size_limit or virtual_mailbox_limit),
 * ENOSPC 4.3.0, else 4.2.0. */
void lres_errno(struct local_result *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- result lines, child to parent (local_result.c) ------------------ */

/* The child writes "R status dsn text", "F address" (an address to
 * forward to), and "E" last.  The parent knows a child finished when it
 * sees "E": anything else is a crash. */
void lres_write(int fd, const struct local_result *r);
void lres_write_forward(int fd, const char *addr);
void lres_write_end(int fd);

struct lres_list {
	struct local_result *v;
	int n, cap;
	char **fwd;                     /* addresses to forward to */
	int nfwd, capfwd;
	bool complete;                  /* "E" seen */
};

/* Parse a child's whole output into `l` (appending). */
void lres_parse(struct lres_list *l, const char *buf, size_t len);
void lres_add(struct lres_list *l, const struct local_result *r);
void lres_add_forward(struct lres_list *l, const char *addr);
void lres_list_free(struct lres_list *l);
/* Fold the results of one recipient into its delivery_rcpt: any 4 wins,
 * then any 5, else 2 with the texts of what was delivered. */
void lres_fold(const struct lres_list *l, struct delivery_rcpt *r);

/* ---- the agent shell (local_agent.c) ---------------------------------- */

/* Runs in the child, as root if the caller is; writes result lines to
 * out_fd.  The child _exit()s when it returns. */
typedef void (*lagent_child_fn)(void *arg, int out_fd);
/* In the parent's loop once the child is gone: its result lines, and
 * whether it was killed for overrunning its time. */
typedef void (*lagent_done_fn)(void *arg, const char *out, size_t len,
			       bool timed_out);

/* Start fn(child_arg) in a child process; done(arg, ...) runs once, from
 * the loop.  time_limit in seconds (0: none).  Returns 0, or -1 with
 * errno (fork or pipe failed; done will not run). */
int lagent_spawn(struct event_base *base, long long time_limit,
		 lagent_child_fn fn, void *child_arg,
		 lagent_done_fn done, void *arg);
/* Call fn(arg) from the loop, soon (for results known at once). */
void lagent_later(struct event_base *base, void (*fn)(void *), void *arg);

/* ---- the message as delivered (local_copy.c) -------------------------- */

struct local_msg {
	int fd;                         /* the queue file */
	const struct queue_envelope *env;
	const char *queue_id;
};

struct lcopy_opts {
	bool from_line;                 /* mbox "From sender date" first */
	bool quote_from;                /* ">From " for body lines "From " */
	bool dot_stuff;                 /* "." doubled at a line start */
	bool crlf;                      /* CRLF line ends */
	bool blank_end;                 /* an empty line after the message */
	const char *return_path;        /* Return-Path: <x> when not NULL */
	const char *orig_to;            /* X-Original-To: x */
	const char *const *delivered_to; /* Delivered-To: each, NULL-ended */
};

struct lcopy;
struct lcopy *lcopy_new(const struct local_msg *m, const struct lcopy_opts *o);
/* The next piece of the output: 1 with *buf and *len set, 0 at the end, -1 on
 * a read error (errno). */
int lcopy_next(struct lcopy *c, const char **buf, size_t *len);
void lcopy_free(struct lcopy *c);
/* Write the whole output to fd.  0 or -1 (errno). */
int lcopy_to_fd(const struct local_msg *m, const struct lcopy_opts *o, int fd);
/* The Delivered-To: values of the message's header (lower case),
 * NULL-terminated, malloc'ed; NULL only on a read error (errno). */
char **lcopy_delivered_to(const struct local_msg *m);
/* Offset of the empty line that ends the header block (or the size). */
long long lcopy_header_end(const struct local_msg *m);
/* "MAILER-DAEMON" for the null sender, as mbox From_ lines say. */
const char *lcopy_from_sender(const char *sender);

/* ---- privileges (local_priv.c) ---------------------------------------- */

struct lpriv {
	uid_t uid;
	gid_t gid;
	char name[64];
	char home[4096];
	char shell[256];
};

/* The passwd entry of `name`: 1 found, 0 unknown, -1 error (errno). */
int lpriv_lookup(const char *name, struct lpriv *p);
/* The account of a uid: 1 from passwd (gid, unless it is (gid_t)-1,
 * replaces the account's group), 0 a uid without an account (named
 * "#uid"), -1 when it has no account and gid is (gid_t)-1. */
int lpriv_lookup_uid(uid_t uid, gid_t gid, struct lpriv *p);
/* default_privs, refused when it is root.  0, or -1 with res set. */
int lpriv_default(const struct config *cfg, struct lpriv *p,
		  struct local_result *res);
/* Can this process change ids at all (it is, or was, root)? */
bool lpriv_capable(void);
/* Take p's ids as effective ids (the saved uid stays root, so the
 * process can come back with lpriv_root).  0 or -1 (errno). */
int lpriv_become(const struct lpriv *p);
int lpriv_root(void);
/* Take p's ids for good (before exec); refuses to leave uid 0 in place. */
int lpriv_drop(const struct lpriv *p);

/* ---- commands (local_command.c) --------------------------------------- */

struct lcmd {
	char *const *argv;              /* argv[0] is the program's path */
	char *const *envp;
	const struct lpriv *priv;       /* run as; NULL: as the caller */
	const char *cwd;                /* NULL: "/" */
	long long time_limit;           /* seconds */
	const struct local_msg *msg;
	const struct lcopy_opts *copy;
	const char *what;               /* for texts: the command as written */
};

/* Run the command with the message on stdin.  res: 2 on exit 0 (the
 * caller rewrites the text), 4.3.0 for EX_TEMPFAIL (75) and a time limit,
 * the sysexits class otherwise, with the output in the text. */
void lcmd_run(const struct lcmd *c, struct local_result *res);
/* Close every descriptor from `low` up (before exec). */
void lcmd_close_from(int low);

/* ---- mailbox settings: local(8)'s or virtual(8)'s ---------------------- */

/* What the mailbox writers (local_mbox.c, local_maildir.c) read that
 * differs between the agents: the names of the parameters for the lock
 * methods and the size limit, and whether a mail spool that is not
 * world-writable is opened (and dot-locked) as root. */
struct lbox_params {
	const char *lock;               /* "mailbox_delivery_lock" */
	const char *size_limit;         /* "mailbox_size_limit" */
	bool spool_as_root;             /* local(8): yes; virtual(8): never */
};

extern const struct lbox_params lbox_local;     /* local_deliver.c */
extern const struct lbox_params lbox_virtual;   /* virtual_deliver.c */

/* ---- what a delivery knows about its recipient ------------------------- */

struct ldeliv {
	const struct delivery_request *req;
	const struct config *cfg;
	struct local_msg msg;
	const char *rcpt;               /* as given: user+ext@domain */
	const char *orig_rcpt;          /* X-Original-To */
	char local[256];                /* local part, lower case, with extension */
	char user[256];                 /* without the extension */
	char extension[256];            /* "" when none */
	char domain[256];
	char delivered[1024];           /* Delivered-To: value, lower case */
	int out_fd;                     /* result lines (in a child) */
	const struct lbox_params *box;  /* NULL: lbox_local */
};

/* Split rcpt into local part, user, extension (recipient_delimiter) and
 * domain; 0, or -1 when it is not usable (too long). */
int ldeliv_init(struct ldeliv *d, const struct delivery_request *req,
		const struct delivery_rcpt *r);
/* Is `domain` one this machine delivers to itself (empty, mydestination,
 * localhost)? */
bool local_domain(const struct config *cfg, const char *domain);
/* Does the message already carry "Delivered-To: d->delivered"?
 * seen_dt: lcopy_delivered_to()'s values. */
bool ldeliv_looped(const struct ldeliv *d, char *const *seen_dt);
/* The mailbox settings of d's agent (d->box, or lbox_local). */
const struct lbox_params *ldeliv_box(const struct ldeliv *d);
/* Postfix's start-up check of local(8) and virtual(8): a mailbox size
 * limit `param` (mailbox_size_limit, virtual_mailbox_limit) that is set
 * but below message_size_limit, or set while message_size_limit is 0,
 * lets in mail that can never be delivered.  true, with the warning
 * "main.cf configuration error: PARAM is smaller than
 * message_size_limit", when that is so; the agent then defers everything
 * (4.3.5) instead of exiting as Postfix's does. */
bool local_size_misconfigured(const struct config *cfg, const char *param);
/* In a delivery child: RLIMIT_FSIZE at `limit` bytes (0: none), SIGXFSZ
 * ignored, so that a write past it fails with EFBIG (5.2.2). */
void local_child_limits(long long limit);

/* ---- destinations ------------------------------------------------------ */

enum ltarget_kind { LT_USER, LT_FILE, LT_COMMAND, LT_FORWARD };

struct ltarget {
	enum ltarget_kind kind;
	char *value;                    /* user name, path, command, address */
	bool no_forward;                /* "\user": no .forward */
	bool default_privs;             /* file/command: default_privs ... */
	uid_t uid; gid_t gid;           /* ... else these (gid -1: uid's group) */
};

struct ltargets {
	struct ltarget *v;
	int n, cap;
};

/* Expand the recipient through alias_maps (local_alias.c).  Fills `t`
 * (a user with no alias is one LT_USER target).  0, or -1 with the
 * failure in res (loop, table unavailable, no permission). */
int lalias_expand(const struct ldeliv *d, struct ltargets *t,
		  struct local_result *res);
void ltargets_free(struct ltargets *t);

/* Split an alias value or a .forward file into items (commas, new
 * lines, quotes); calls fn for each item, trimmed and unquoted. */
void lalias_items(const char *value, void (*fn)(const char *item, void *arg),
		  void *arg);
/* "allow_mail_to_commands" / "allow_mail_to_files" names `context`? */
bool lalias_allowed(const struct config *cfg, const char *param,
		    const char *context);

/* ---- deliveries, in a child (result lines to d->out_fd) ---------------- */

/* mbox at path, written as p.  owner: the mailbox's owner (a new one
 * is given to it; strict_mailbox_ownership checks an old one), or NULL
 * for a /file destination ("delivered to file: path", no owner check). */
void lmbox_deliver(const struct ldeliv *d, const char *path,
		   const struct lpriv *p, const struct lpriv *owner,
		   struct local_result *res);
/* maildir at dir (a trailing "/" allowed), written as p.  as_file: a
 * "/path/" destination (Delivered-To: as prepend_delivered_header says),
 * else the user's mailbox. */
void lmaildir_deliver(const struct ldeliv *d, const char *dir,
		      const struct lpriv *p, bool as_file,
		      struct local_result *res);
/* |command through local_command_shell as p, in dir home (or "/"). */
void lcommand_deliver(const struct ldeliv *d, const char *command,
		      const struct lpriv *p, struct local_result *res);
/* A user's destination (LT_USER): passwd, .forward, mailbox. */
void luser_deliver(const struct ldeliv *d, const struct ltarget *t);
/* A /file or |command destination from an alias or :include:. */
void ltarget_deliver(const struct ldeliv *d, const struct ltarget *t);

/* Add the Delivered-To: header here (prepend_delivered_header)? */
bool local_prepend_delivered(const struct config *cfg, const char *context);

/* ---- forwarding (local_forward.c), in the parent ----------------------- */

typedef void (*lforward_done_fn)(void *arg, const char *queue_id, int err);
/* Queue a copy of the message for `addrs` (Delivered-To: added as the
 * configuration says).  done(arg, id, 0) once the new file is durable,
 * or done(arg, NULL, errno); always from the loop, never from inside. */
void lforward_queue(struct event_base *base, const struct ldeliv *d,
		    const struct delivery_rcpt *r, char *const *addrs, int n,
		    lforward_done_fn done, void *arg);

#endif
