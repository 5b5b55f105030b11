/*
 * sendmail.h - between the pieces of build/bin/sendmail (also mailq and
 * newaliases): sendmail_main.c (names, options, dispatch),
 * sendmail_submit.c (a message on stdin into maildrop/),
 * sendmail_smtp.c (-bs: SMTP on stdin and stdout) and sendmail_addr.c
 * (address lists in headers and arguments).  Nothing else includes it.
 *
 * sendmail runs as whoever calls it, with no privileges: everything it
 * writes goes into a maildrop file (maildrop.h), which the queue
 * manager's pickup checks and queues.  So it works while sluice is down.
 */
#ifndef SLUICE_SENDMAIL_H
#define SLUICE_SENDMAIL_H

#include <stdbool.h>

struct sluice_config;

enum sendmail_mode {
	SM_DELIVER,             /* -bm, the default: a message on stdin */
	SM_MAILQ,               /* -bp, or called as mailq */
	SM_NEWALIASES,          /* -bi, or called as newaliases */
	SM_FLUSH,               /* -q */
	SM_SMTP                 /* -bs */
};

struct sendmail_opts {
	enum sendmail_mode mode;
	const char *config_dir;
	const char *sender;     /* -f (or -r), NULL: the calling user */
	const char *fullname;   /* -F, NULL: $NAME or the passwd entry */
	bool extract;           /* -t: recipients from To:, Cc:, Bcc: */
	bool ignore_dots;       /* -i, -oi: a lone "." is not the end */
	int verbose;            /* -v */
	char **rcpt;            /* the command line's recipients */
	int nrcpt;
};

/* sendmail_submit.c: "sendmail: fatal: TEXT" on stderr and in the mail
 * log; returns `status` (a sysexits.h code) for the caller to exit. */
int sendmail_fail(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* sendmail_submit.c: read the message from stdin into maildrop/. */
int sendmail_deliver(const struct sluice_config *sc,
		     const struct sendmail_opts *o);
/* The envelope sender for a submission without -f: the user's login
 * name (malloc'ed; a number when the uid has no name). */
char *sendmail_login_name(void);
/* The full name: -F, else $NAME, else the passwd entry's (malloc'ed,
 * control characters made spaces; NULL when none). */
char *sendmail_full_name(const char *given);

/* sendmail_smtp.c: an SMTP dialogue on stdin/stdout, each message into
 * maildrop/.  Returns the exit status. */
int sendmail_smtp(const struct sluice_config *sc,
		  const struct sendmail_opts *o);

/* sendmail_addr.c: the addresses of an RFC 5322 address list ("Ann
 * <ann@x>, bob@y (Bob), team: c@z, d@z;"), display names, comments and
 * group names dropped, each passed to add().  Stops at the first add()
 * that fails (-1) and returns -1, else 0. */
int addr_list_parse(const char *text, int (*add)(const char *addr,
						  void *arg), void *arg);

#endif
