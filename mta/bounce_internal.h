/*
 * bounce_internal.h - internal interfaces of the notices, shared by
 * bounce.c (which notices are due, committing them, logging),
 * bounce_notice.c (writing one notice into a queue file) and
 * bounce_text.c (dates, masking, wrapping, xtext, addresses).  Nothing
 * else includes it; the public interface is bounce.h.
 */
#ifndef SLUICE_BOUNCE_INTERNAL_H
#define SLUICE_BOUNCE_INTERNAL_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "bounce.h"
#include "queue.h"

/* Postfix's default diagnostic type for reasons that are not a reply. */
#define BOUNCE_DIAG_TYPE        "X-Sluice"

/* The message a notice is about. */
struct bounce_source {
	const struct config *cfg;
	const char *queue_id;
	int fd;
	const struct queue_envelope *env;
	const struct bounce_rcpt *rcpt;
	int nrcpt;
	time_t now;
};

/* One notice to write and commit. */
struct bounce_notice {
	enum bounce_kind kind;
	bool postmaster;        /* postmaster copy: Postmaster-Subject, no
				 * boilerplate text, Auto-Submitted:
				 * auto-generated */
	int filter;             /* the DSN_NOTIFY_* bit a recipient needs
				 * (none given also counts), or 0: all */
	int ret;                /* DSN_RET_FULL or DSN_RET_HDRS */
	char *to;               /* recipient, qualified (malloc'ed) */
	char *sender;           /* envelope sender: "" or double-bounce@ */
	char what[64];          /* "sender non-delivery notification" */
	bool critical;          /* its failure is the caller's failure */
	/* filled by bounce_notice_write() */
	struct queue_file *qf;  /* written, not yet committed */
	struct queue_envelope env;
	struct queue_rcpt env_rcpt;
	char *message_id;
	char id[QUEUE_ID_MAX];
};

/* ---- bounce_notice.c ---- */
/* Does recipient r belong in a notice with this filter? */
bool bounce_rcpt_wanted(const struct bounce_rcpt *r, int filter);
/* How many of the source's recipients belong in it? */
int bounce_rcpt_count(const struct bounce_source *src, int filter);
/* Write the notice into a new queue file (bn->qf, bn->env, bn->id).
 * 0, or -1 with errno; nothing is left behind on failure. */
int bounce_notice_write(const struct bounce_source *src,
			struct bounce_notice *bn, const char *queue_dir);
/* Write a plain-text postmaster notice (bounce_error_notice). */
int bounce_notice_write_text(const struct config *c,
			     struct bounce_notice *bn, const char *queue_dir,
			     const char *subject, const char *text);
/* Drop what bounce_notice_write() made (removing an uncommitted file). */
void bounce_notice_free(struct bounce_notice *bn);

/* ---- bounce_text.c ---- */
/* RFC 5322 date in local time: "Sat, 21 Nov 2026 05:38:36 +0000 (UTC)". */
void bounce_date(char *buf, size_t len, time_t t);
/* A copy of s fit for one line of a notice: CR, LF and TAB become
 * spaces, other control bytes '?', and so do bytes >= 0x80 unless
 * eight_bit.  Never NULL (msg_fatal when out of memory). */
char *bounce_mask(const char *s, bool eight_bit);
/* Print text (already masked) as lines of at most 79 columns, broken at
 * spaces, each continuation line indented by 4 (Postfix's line_wrap). */
void bounce_put_wrapped(FILE *fp, const char *text);
/* Decode DSN xtext ("+2B" is '+'); NULL when malformed, or when the
 * result holds a control byte, or a byte >= 0x80 unless eight_bit. */
char *bounce_xtext_decode(const char *s, bool eight_bit);
/* Does s hold a byte >= 0x80? */
bool bounce_has_8bit(const char *s);
/* addr as a header address: qualified with @origin when it has no
 * domain, its local part quoted when it is not a dot-atom (malloc'ed). */
char *bounce_header_addr(const char *addr, const char *origin);
/* addr qualified with @origin when it has no '@' (malloc'ed). */
char *bounce_qualify(const char *addr, const char *origin);
/* strdup() or msg_fatal. */
char *bounce_strdup(const char *s);
/* asprintf() or msg_fatal. */
char *bounce_sprintf(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

#endif
