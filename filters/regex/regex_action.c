/*
 * regex_action.c - what a header_checks / body_checks table answered, as
 * Postfix's cleanup(8) reads it (header_checks(5) ACTIONS): the first
 * word is the command (case-insensitive), the rest the optional text.
 *
 * Promises, each Postfix's:
 *   - log lines have cleanup's shape: "ID: ACTION: header|body LINE from
 *     NAME[ADDR]; from=<S> to=<R> proto=P helo=<H>: TEXT" (LINE cut at
 *     200 characters), through sluice_txn_log;
 *   - REJECT answers "550 5.7.1 message content rejected" (Postfix's
 *     lowercase text) or its text
 *     (an enhanced code at the start of the text is kept; a 4.X.X one
 *     gives 451) and stops all further inspection, as DISCARD does;
 *   - HOLD, REDIRECT, BCC and FILTER are recorded for the end of message;
 *     IGNORE, REPLACE and PREPEND of a primary header are recorded as
 *     edits; anything that needs a syntax (user@domain, transport:dest,
 *     "name: value") and lacks it is logged as Postfix's warning and
 *     ignored; an unknown command is a warning and DUNNO.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "regex.h"

static const char *class_map[] = {
	"header_checks", "mime_header_checks", "nested_header_checks",
	"body_checks"
};

static void add_string(char ***v, int *n, const char *s)
{
	char **nv = realloc(*v, (size_t)(*n + 1) * sizeof **v);

	if (nv == NULL)
		abort();
	*v = nv;
	nv[(*n)++] = sluice_strdup(s);
}

/* cleanup_act_log(): the line about one matched header or body line. */
static void act_log(sluice_txn *t, enum regex_class cls, const char *action,
		    const char *line, const char *text)
{
	char content[201], from[600] = "", to[600] = "", helo[600] = "";
	const char *sender = sluice_sender(t), *proto = sluice_attr(t, "protocol");
	const char *h = sluice_helo_name(t);
	size_t i;

	for (i = 0; i < 200 && line[i]; i++)     /* %.200s, one log line */
		content[i] = (unsigned char)line[i] < ' ' || line[i] == 0x7f ? '?' : line[i];
	content[i] = 0;
	if (sender)
		snprintf(from, sizeof from, " from=<%s>", sender);
	if (sluice_recipient_count(t) > 0)
		snprintf(to, sizeof to, " to=<%s>", sluice_recipient_at(t, 0));
	if (h)
		snprintf(helo, sizeof helo, " helo=<%s>", h);
	sluice_txn_log(t, SLUICE_LOG_INFO, "%s: %s %s from %s[%s];%s%s proto=%s%s%s%s",
		       action, cls == RC_BODY ? "body" : "header", content,
		       sluice_client_name(t), sluice_client_addr(t), from, to,
		       proto ? proto : "SMTP", helo, text && *text ? ": " : "",
		       text ? text : "");
}

/* "Name: value" with a valid field name (Postfix's is_header()). */
static bool header_text(const char *s)
{
	const char *p = s;

	while (*p && *p != ':' && (unsigned char)*p > ' ' && *p != 0x7f)
		p++;
	return *p == ':' && p > s;
}

/* Postfix's dsn_prepend("5.7.1", text): a valid enhanced code at the
 * start of the text is kept, else the default goes in front. */
static void reject_reason(const char *text, char *out, size_t len)
{
	const char *p = text;
	int parts = 0;

	if (*text == 0)
		text = "message content rejected";
	if ((*p == '4' || *p == '5') && p[1] == '.') {
		for (p += 2, parts = 1; isdigit((unsigned char)*p) || *p == '.'; p++)
			if (*p == '.')
				parts++;
		if (parts == 2 && (*p == ' ' || *p == 0) && p[-1] != '.') {
			snprintf(out, len, "%s", text);
			return;
		}
	}
	snprintf(out, len, "5.7.1 %s", text);
}

static int act_reject(sluice_txn *t, struct regex_state *st,
		      enum regex_class cls, const char *line, const char *text)
{
	char reason[600], dsn[16];
	size_t n;

	reject_reason(text, reason, sizeof reason);
	act_log(t, cls, "reject", line, reason);
	n = strcspn(reason, " ");
	snprintf(dsn, sizeof dsn, "%.*s", (int)(n < 15 ? n : 15), reason);
	sluice_reply(t, *reason == '4' ? 451 : 550, dsn, "%s",
		     reason[n] ? reason + n + 1 : "");
	st->stop = true;
	return SLUICE_REJECT;
}

static void add_edit(struct regex_state *st, enum regex_edit_kind kind,
		     int pos, const char *name, const char *text)
{
	struct regex_edit *e;
	int nth = 0;

	for (int i = 0; i <= pos && i < st->nhdr; i++)
		if (strcasecmp(st->hdr_names[i], name) == 0)
			nth++;
	e = realloc(st->edit, (size_t)(st->nedit + 1) * sizeof *e);
	if (e == NULL)
		abort();
	st->edit = e;
	e = &st->edit[st->nedit++];
	e->kind = kind;
	e->pos = pos;
	e->nth = nth;
	e->name = sluice_strdup(name);
	e->text = text ? sluice_strdup(text) : NULL;
}

/* IGNORE, REPLACE, PREPEND: only primary headers can be edited through
 * the plugin ABI; elsewhere the action is logged and not applied. */
static int act_edit(sluice_txn *t, struct regex_state *st,
		    enum regex_class cls, const char *cmd, const char *line,
		    const char *text, int hdr_pos, const char *name)
{
	enum regex_edit_kind kind = !strcasecmp(cmd, "IGNORE") ? RE_IGNORE
		: !strcasecmp(cmd, "REPLACE") ? RE_REPLACE : RE_PREPEND;

	if (kind != RE_IGNORE && *text == 0) {
		sluice_txn_log(t, SLUICE_LOG_WARN, "%s action without text in "
			       "%s map", cmd, class_map[cls]);
		return SLUICE_DUNNO;
	}
	if (kind != RE_IGNORE && cls != RC_BODY && !header_text(text)) {
		sluice_txn_log(t, SLUICE_LOG_WARN, "bad %s header text \"%s\" in "
			       "%s map -- need \"headername: headervalue\"",
			       cmd, text, class_map[cls]);
		return SLUICE_DUNNO;
	}
	if (kind != RE_IGNORE)
		act_log(t, cls, kind == RE_REPLACE ? "replace" : "prepend",
			line, text);
	if (hdr_pos < 0) {
		sluice_txn_log(t, SLUICE_LOG_WARN, "%s in %s: only the message's "
			       "own headers can be changed; not applied", cmd,
			       class_map[cls]);
		return SLUICE_DUNNO;
	}
	add_edit(st, kind, hdr_pos, name, kind == RE_IGNORE ? NULL : text);
	return SLUICE_DUNNO;
}

static int act_address(sluice_txn *t, struct regex_state *st,
		       enum regex_class cls, const char *cmd, const char *line,
		       const char *text)
{
	if (strchr(text, '@') == NULL) {
		sluice_txn_log(t, SLUICE_LOG_WARN, "bad %s %s \"%s\" in %s map -- "
			       "need \"user@domain\"", cmd,
			       !strcasecmp(cmd, "BCC") ? "address" : "target",
			       text, class_map[cls]);
		return SLUICE_DUNNO;
	}
	if (!strcasecmp(cmd, "BCC")) {
		add_string(&st->bcc, &st->nbcc, text);
		return SLUICE_DUNNO;
	}
	act_log(t, cls, "redirect", line, text);
	free(st->redirect);
	st->redirect = sluice_strdup(text);
	return SLUICE_DUNNO;
}

static int act_other(sluice_txn *t, struct regex_state *st,
		     enum regex_class cls, const char *cmd, const char *line,
		     const char *text)
{
	if (!strcasecmp(cmd, "DISCARD")) {
		act_log(t, cls, "discard", line, text);
		sluice_reply(t, 0, NULL, "%s", *text ? text : line);
		st->stop = true;
		return SLUICE_DISCARD;
	}
	if (!strcasecmp(cmd, "HOLD")) {
		if (!st->hold) {
			act_log(t, cls, "hold", line, text);
			st->hold = true;
			st->hold_text = sluice_strdup(*text ? text : line);
		}
		return SLUICE_DUNNO;
	}
	if (!strcasecmp(cmd, "FILTER")) {
		if (strchr(text, ':') == NULL) {
			sluice_txn_log(t, SLUICE_LOG_WARN, "bad FILTER syntax \"%s\" "
				       "in %s map -- need \"transport:destination\"",
				       text, class_map[cls]);
			return SLUICE_DUNNO;
		}
		act_log(t, cls, "filter", line, text);
		free(st->filter);
		st->filter = sluice_strdup(text);
		return SLUICE_DUNNO;
	}
	if (!strcasecmp(cmd, "WARN") || !strcasecmp(cmd, "INFO")) {
		act_log(t, cls, toupper((unsigned char)*cmd) == 'W' ? "warning"
			: "info", line, text);
		return SLUICE_DUNNO;
	}
	if (strcasecmp(cmd, "DUNNO") && strcasecmp(cmd, "OK"))
		sluice_txn_log(t, SLUICE_LOG_WARN, "unknown command in %s map: %s",
			       class_map[cls], cmd);
	return SLUICE_DUNNO;
}

/* One answer of a table for `line`. */
static int act(sluice_txn *t, struct regex_state *st, enum regex_class cls,
	       const char *value, const char *line, int hdr_pos,
	       const char *name)
{
	char cmd[32];
	size_t n = strcspn(value, " \t");
	const char *text = value + n;

	snprintf(cmd, sizeof cmd, "%.*s", (int)(n < 31 ? n : 31), value);
	text += strspn(text, " \t");
	if (!strcasecmp(cmd, "REJECT"))
		return act_reject(t, st, cls, line, text);
	if (!strcasecmp(cmd, "IGNORE") || !strcasecmp(cmd, "REPLACE")
	    || !strcasecmp(cmd, "PREPEND"))
		return act_edit(t, st, cls, cmd, line, text, hdr_pos, name);
	if (!strcasecmp(cmd, "REDIRECT") || !strcasecmp(cmd, "BCC"))
		return act_address(t, st, cls, cmd, line, text);
	return act_other(t, st, cls, cmd, line, text);
}

int regex_check(sluice_txn *t, struct regex_state *st, enum regex_class cls,
		const char *line, int hdr_pos, const char *name)
{
	sluice_map **m = regex_tables(cls);
	const char *value;
	int r;

	if (st->stop)
		return SLUICE_DUNNO;
	for (; m && *m; m++) {
		r = sluice_map_lookup(*m, line, &value);
		if (r < 0) {
			sluice_txn_log(t, SLUICE_LOG_WARN, "%s: table lookup problem",
				       class_map[cls]);
			sluice_reply(t, 451, "4.3.0", "Error: queue file write error");
			st->stop = true;
			return SLUICE_REJECT;
		}
		if (r > 0)
			return act(t, st, cls, value, line, hdr_pos, name);
	}
	return SLUICE_DUNNO;
}
