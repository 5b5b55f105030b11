/*
 * sendmail_addr.c - pick the addresses out of an RFC 5322 address list,
 * for `sendmail -t` (To:, Cc:, Bcc:) and for recipients on the command
 * line ("sendmail 'ann@x, bob@y'" works, as with Postfix).
 *
 * One pass, no allocation beyond the current address: quoted strings are
 * kept (a quoted local part is part of the address), comments dropped,
 * whitespace outside quotes dropped (folded headers), "<...>" wins over
 * the text around it (the display name), a source route in it is cut
 * ("<@a,@b:u@d>" is u@d), "name:" opens a group and ';' closes it.
 * Malformed input never fails: what cannot be an address is skipped.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sendmail.h"

#define ADDR_MAX 1000           /* longer addresses are cut, then refused */

struct addr_state {
	char bare[ADDR_MAX + 1];        /* text outside <> */
	size_t nbare;
	char angle[ADDR_MAX + 1];       /* text inside <> */
	size_t nangle;
	bool in_angle, saw_angle;
	int (*add)(const char *, void *);
	void *arg;
};

static void put_char(struct addr_state *st, char c)
{
	if (st->in_angle) {
		if (st->nangle < ADDR_MAX)
			st->angle[st->nangle++] = c;
	} else if (st->nbare < ADDR_MAX) {
		st->bare[st->nbare++] = c;
	}
}

/* The address collected so far, if any, to add(); then start afresh. */
static int emit(struct addr_state *st)
{
	char *a = st->saw_angle ? st->angle : st->bare;
	size_t n = st->saw_angle ? st->nangle : st->nbare;
	char *colon;
	int rc = 0;

	a[n] = 0;
	if (a[0] == '@' && (colon = strchr(a, ':')) != NULL)
		a = colon + 1;          /* source route */
	if (*a != 0)
		rc = st->add(a, st->arg);
	st->nbare = st->nangle = 0;
	st->in_angle = st->saw_angle = false;
	return rc;
}

/* A quoted string starting at *p (on the '"'): copied, quotes included. */
static const char *quoted(struct addr_state *st, const char *p)
{
	put_char(st, *p++);
	while (*p && *p != '"') {
		if (*p == '\\' && p[1]) {
			put_char(st, *p++);
		}
		put_char(st, *p++);
	}
	if (*p == '"')
		put_char(st, *p++);
	return p;
}

/* A comment starting at *p (on the '('), nested ones included: skipped. */
static const char *comment(const char *p)
{
	int depth = 0;

	for (; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0)
			return p + 1;
	}
	return p;
}

int addr_list_parse(const char *text, int (*add)(const char *addr,
						  void *arg), void *arg)
{
	struct addr_state *st = calloc(1, sizeof *st);
	const char *p = text;
	int rc = 0;

	if (st == NULL)
		return -1;
	st->add = add;
	st->arg = arg;
	while (*p && rc == 0) {
		if (*p == '"') {
			p = quoted(st, p);
			continue;
		}
		if (*p == '(') {
			p = comment(p);
			continue;
		}
		if (*p == '<' && !st->in_angle) {
			st->in_angle = st->saw_angle = true;
			st->nangle = 0;
		} else if (*p == '>' && st->in_angle) {
			st->in_angle = false;
		} else if ((*p == ',' || *p == ';') && !st->in_angle) {
			rc = emit(st);
		} else if (*p == ':' && !st->in_angle && !st->saw_angle) {
			st->nbare = 0;          /* a group's name */
		} else if (strchr(" \t\r\n", *p) == NULL) {
			put_char(st, *p);
		}
		p++;
	}
	if (rc == 0)
		rc = emit(st);
	free(st);
	return rc;
}
