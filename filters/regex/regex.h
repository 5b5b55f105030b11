/*
 * regex.h - the regex plugin's internals: Postfix's header_checks,
 * mime_header_checks, nested_header_checks and body_checks (cleanup(8)'s
 * content inspection, header_checks(5)), built on the public plugin ABI
 * only.  docs/header-checks.md is the admin's page.
 *
 * The pieces:
 *   regex.c         the plugin: parameters, tables, hooks, and the
 *                   end-of-message hook that applies the recorded effects;
 *   regex_action.c  one table answer -> one action, with Postfix's log
 *                   line ("ID: reject: header Subject: x from h[a]; ...");
 *   regex_mime.c    the body as lines: MIME boundaries, part headers and
 *                   attached message/rfc822 headers, body_checks_size_limit.
 *
 * Promises: every lookup is one logical header ("Name: value", folded
 * lines kept with their "\n") or one body line; the first table of a
 * list that matches decides; effects on the message are recorded while
 * the content streams by and applied once, at end of message, through
 * the ABI's header and recipient edits; REJECT and DISCARD stop all
 * further inspection, as in Postfix.
 */
#ifndef SLUICE_REGEX_H
#define SLUICE_REGEX_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice_plugin.h"

/* What is being looked at: chooses the table and the log word. */
enum regex_class {
	RC_HEADER,          /* header_checks: primary message headers */
	RC_MIME,            /* mime_header_checks */
	RC_NESTED,          /* nested_header_checks */
	RC_BODY             /* body_checks */
};

/* An edit of a primary header, applied at end of message. */
enum regex_edit_kind { RE_IGNORE, RE_REPLACE, RE_PREPEND };
struct regex_edit {
	enum regex_edit_kind kind;
	int pos;            /* 0-based index among the message's headers */
	int nth;            /* 1-based occurrence of `name` */
	char *name;         /* the matched header's name */
	char *text;         /* REPLACE / PREPEND: "Name: value" */
};

/* Per-session state (sluice_set_data). */
struct regex_state {
	/* primary headers seen so far, for positions */
	int nhdr;
	char **hdr_names; int hdr_alloc;
	struct regex_edit *edit; int nedit;
	/* the message's fate */
	bool stop;                  /* REJECT or DISCARD: inspect no more */
	bool hold; char *hold_text;
	char *redirect;
	char **bcc; int nbcc;
	char *filter;
	/* the body, as a MIME parser (regex_mime.c) */
	struct regex_mime *mime;
	/* top-level Content-Type, seen among the primary headers */
	char *top_ctype;
};

/* The tables of a class (NULL-terminated; NULL when none configured). */
sluice_map **regex_tables(enum regex_class cls);

/* Look `line` up in the class's tables and act on the first match.
 * `hdr_pos` is the primary header's index (-1 for anything else),
 * `name` its name.  Returns a hook verdict: SLUICE_DUNNO, SLUICE_REJECT
 * (after sluice_reply) or SLUICE_DISCARD. */
int regex_check(sluice_txn *t, struct regex_state *st, enum regex_class cls,
		const char *line, int hdr_pos, const char *name);

/* The body parser. */
struct regex_mime *regex_mime_new(const char *top_content_type);
void regex_mime_free(struct regex_mime *m);
/* Feed body bytes; returns a verdict as regex_check does. */
int regex_mime_feed(sluice_txn *t, struct regex_state *st,
		    const unsigned char *p, size_t len);
/* End of body: the last line without its newline. */
int regex_mime_end(sluice_txn *t, struct regex_state *st);

/* Is this one of the MIME headers (Content-*, MIME-Version)?  */
bool regex_is_mime_header(const char *name, size_t len);
/* The boundary= parameter of a Content-Type value, malloc'd, or NULL. */
char *regex_boundary(const char *ctype);

#endif
