/*
 * regex.c - the regex plugin: Postfix's header_checks,
 * mime_header_checks, nested_header_checks and body_checks, with
 * Postfix's parameter names and defaults (header_checks(5),
 * postconf(5)).  Loaded by default (sluice_builtin_plugins); with no
 * table configured its init() declines the content (sluice_no_content()),
 * so the core skips the content stage for it.
 *
 * Promises:
 *   - each primary header goes to header_checks (MIME headers -
 *     Content-*, MIME-Version - to mime_header_checks) as one logical
 *     "Name: value" line, folded lines joined with their "\n" kept;
 *     part headers and attached messages' headers are regex_mime.c's;
 *   - a parameter may list several tables: they are searched in order
 *     and the first that matches decides;
 *   - tables open once per worker (init); one that cannot be opened is
 *     an error that stops the worker's start, with its reason;
 *   - the effects land at end of message through the ABI only: IGNORE
 *     deletes the header, REPLACE replaces it in place, PREPEND inserts
 *     before it; REDIRECT replaces the recipients, BCC adds one; HOLD
 *     holds the message (hold/); FILTER gives the message its content
 *     filter (sluice_action() at end of message: the envelope's filter
 *     record the queue manager honours, as an access action's);
 *   - per-message state starts afresh at DATA and is dropped after the
 *     eom hook, so nothing leaks into the session's next message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "regex.h"

static const struct sluice_param regex_params[] = {
	{ "header_checks", SLUICE_PARAM_MAP, "",
	  "Tables (pcre:, regexp:) matched against each primary message header, as one logical line; the first match decides (header_checks(5))." },
	{ "mime_header_checks", SLUICE_PARAM_MAP, "$header_checks",
	  "Tables matched against MIME headers (Content-*, MIME-Version) and the headers of MIME parts." },
	{ "nested_header_checks", SLUICE_PARAM_MAP, "$header_checks",
	  "Tables matched against the non-MIME headers of attached messages (message/rfc822)." },
	{ "body_checks", SLUICE_PARAM_MAP, "",
	  "Tables matched against each line of the message body (each MIME part's lines, boundaries included)." },
	{ "body_checks_size_limit", SLUICE_PARAM_SIZE, "51200",
	  "How many bytes of each body segment (MIME part) body_checks look at." },
	{ NULL, 0, NULL, NULL }
};

static const char *class_param[] = {
	"header_checks", "mime_header_checks", "nested_header_checks",
	"body_checks"
};

/* The worker's tables, per class; opened by init(), read-only after. */
static sluice_map **tables[4];

sluice_map **regex_tables(enum regex_class cls)
{
	return tables[cls];
}

/* Open every table named in a list ("pcre:/a, regexp:/b"), split as
 * the core splits its own lists. */
static int open_tables(enum regex_class cls)
{
	char **list = sluice_split_list(sluice_conf_str(class_param[cls]));
	char err[512];
	int n = 0;

	for (int i = 0; list[i]; i++) {
		sluice_map **nt = realloc(tables[cls], (size_t)(n + 2) * sizeof *nt);

		if (nt == NULL)
			abort();
		tables[cls] = nt;
		err[0] = 0;
		if ((nt[n] = sluice_map_open(list[i], err, sizeof err)) == NULL) {
			sluice_log(SLUICE_LOG_ERR, "%s: %s: %s", class_param[cls],
				   list[i], err);
			sluice_list_free(list);
			return -1;
		}
		nt[++n] = NULL;
	}
	sluice_list_free(list);
	return 0;
}

static bool any_tables(void)
{
	for (int c = RC_HEADER; c <= RC_BODY; c++)
		if (tables[c] && tables[c][0])
			return true;
	return false;
}

static int regex_init(void **pdata)
{
	*pdata = NULL;
	for (int c = RC_HEADER; c <= RC_BODY; c++)
		if (open_tables((enum regex_class)c) < 0)
			return -1;
	if (!any_tables())
		sluice_no_content();    /* no table: no per-message work */
	return 0;
}

static void regex_fini(void *pdata)
{
	(void)pdata;
	for (int c = RC_HEADER; c <= RC_BODY; c++) {
		free(tables[c]);
		tables[c] = NULL;
	}
}

/* ---- per-transaction state ------------------------------------------- */

static void state_free(struct regex_state *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < st->nhdr; i++)
		free(st->hdr_names[i]);
	free(st->hdr_names);
	for (int i = 0; i < st->nedit; i++) {
		free(st->edit[i].name);
		free(st->edit[i].text);
	}
	free(st->edit);
	for (int i = 0; i < st->nbcc; i++)
		free(st->bcc[i]);
	free(st->bcc);
	free(st->hold_text);
	free(st->redirect);
	free(st->filter);
	free(st->top_ctype);
	regex_mime_free(st->mime);
	free(st);
}

static struct regex_state *state(sluice_txn *t)
{
	struct regex_state *st = sluice_get_data(t);

	if (st == NULL) {
		st = sluice_calloc(sizeof *st);
		sluice_set_data(t, st);
	}
	return st;
}

static void regex_reset(sluice_txn *t, void *pdata)
{
	(void)pdata;
	state_free(sluice_get_data(t));
	sluice_set_data(t, NULL);
}

/* A new message starts afresh, whatever the last one left: the reset
 * hook does not run after a message that ended (accepted or refused). */
static int regex_data(sluice_txn *t, void *pdata)
{
	regex_reset(t, pdata);
	return SLUICE_DUNNO;
}

/* ---- content hooks ------------------------------------------------------ */

static void note_header(struct regex_state *st, const char *name)
{
	if (st->nhdr == st->hdr_alloc) {
		char **n;

		st->hdr_alloc = st->hdr_alloc ? 2 * st->hdr_alloc : 16;
		n = realloc(st->hdr_names, (size_t)st->hdr_alloc * sizeof *n);
		if (n == NULL)
			abort();
		st->hdr_names = n;
	}
	st->hdr_names[st->nhdr++] = sluice_strdup(name);
}

static int regex_header(sluice_txn *t, const char *name, const char *value,
			void *pdata)
{
	struct regex_state *st;
	bool mime = regex_is_mime_header(name, strlen(name));
	size_t len = strlen(name) + strlen(value) + 3;
	char *line;
	int v;

	(void)pdata;
	st = state(t);
	note_header(st, name);
	if (strcasecmp(name, "Content-Type") == 0 && st->top_ctype == NULL)
		st->top_ctype = sluice_strdup(value);
	if ((line = malloc(len)) == NULL)
		abort();
	snprintf(line, len, "%s:%s%s", name, *value ? " " : "", value);
	v = regex_check(t, st, mime ? RC_MIME : RC_HEADER, line, st->nhdr - 1,
			name);
	free(line);
	return v;
}

static int regex_body(sluice_txn *t, const unsigned char *chunk, size_t len,
		      void *pdata)
{
	struct regex_state *st;

	(void)pdata;
	st = state(t);
	if (st->stop)
		return SLUICE_DUNNO;
	if (st->mime == NULL)
		st->mime = regex_mime_new(st->top_ctype);
	return regex_mime_feed(t, st, chunk, len);
}

/* ---- end of message: the effects --------------------------------------- */

/* Split "Name: value" for the ABI (value without the space). */
static void put_header(sluice_txn *t, int pos, const char *text)
{
	const char *colon = strchr(text, ':');
	char name[256];
	const char *v;

	snprintf(name, sizeof name, "%.*s", (int)(colon - text), text);
	v = colon + 1;
	v += strspn(v, " \t");
	if (sluice_header_insert(t, pos, name, v) < 0)
		sluice_txn_log(t, SLUICE_LOG_WARN, "header \"%s\" refused", name);
}

/* Edits from the last header up, so that the positions and occurrence
 * numbers of the ones above stay right. */
static void apply_edits(sluice_txn *t, struct regex_state *st)
{
	for (int i = st->nedit - 1; i >= 0; i--) {
		const struct regex_edit *e = &st->edit[i];

		if (e->kind != RE_PREPEND)
			sluice_header_change(t, e->name, e->nth, NULL);
		if (e->kind != RE_IGNORE)
			put_header(t, e->pos, e->text);
	}
}

static void apply_recipients(sluice_txn *t, struct regex_state *st)
{
	if (st->redirect) {
		int n = sluice_recipient_count(t);
		char **old = sluice_calloc(((size_t)n + 1) * sizeof *old);

		for (int i = 0; i < n; i++)
			old[i] = sluice_strdup(sluice_recipient_at(t, i));
		sluice_rcpt_add(t, st->redirect);
		for (int i = 0; i < n; i++) {
			if (strcasecmp(old[i], st->redirect) != 0)
				sluice_rcpt_delete(t, old[i]);
			free(old[i]);
		}
		free(old);
	}
	for (int i = 0; i < st->nbcc; i++)
		sluice_rcpt_add(t, st->bcc[i]);
}

static int regex_eom(sluice_txn *t, void *pdata)
{
	struct regex_state *st = sluice_get_data(t);
	int v;

	(void)pdata;
	if (st == NULL)
		return SLUICE_DUNNO;
	if (st->mime && (v = regex_mime_end(t, st)) != SLUICE_DUNNO)
		return v;
	apply_edits(t, st);
	apply_recipients(t, st);
	if (st->filter) {
		char action[600];

		snprintf(action, sizeof action, "FILTER %s", st->filter);
		sluice_action(t, action, NULL, NULL);
	}
	v = SLUICE_DUNNO;
	if (st->hold) {
		sluice_reply(t, 0, NULL, "%s", st->hold_text);
		v = SLUICE_HOLD;
	}
	regex_reset(t, pdata);      /* this message is done */
	return v;
}

static void regex_close(sluice_txn *t, void *pdata)
{
	regex_reset(t, pdata);
}

SLUICE_PLUGIN_DECLARE = {
	.abi = SLUICE_PLUGIN_ABI,
	.name = "regex",
	.version = "1.0",
	.description = "Postfix's header_checks, mime_header_checks, "
		"nested_header_checks and body_checks",
	.params = regex_params,
	.init = regex_init,
	.fini = regex_fini,
	.data = regex_data,
	.header = regex_header,
	.body = regex_body,
	.eom = regex_eom,
	.reset = regex_reset,
	.close = regex_close,
};
