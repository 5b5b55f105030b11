/*
 * access_action.c - parse access(5) actions (see access_action.h).
 *
 * Promises: the value is never modified; every value maps to exactly one
 * kind; the command word is matched case-insensitively and must be the
 * whole first word (REJECTED is not REJECT); an enhanced code is taken
 * only when it is a valid RFC 3463 code followed by whitespace or the end
 * of the text.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "access_action.h"

static const struct { const char *name; enum access_kind kind; } commands[] = {
	{ "OK", AA_OK }, { "RELAY", AA_OK }, { "DUNNO", AA_DUNNO },
	{ "REJECT", AA_REJECT }, { "DEFER", AA_DEFER },
	{ "DEFER_IF_PERMIT", AA_DEFER_IF_PERMIT },
	{ "DEFER_IF_REJECT", AA_DEFER_IF_REJECT },
	{ "DISCARD", AA_DISCARD }, { "HOLD", AA_HOLD }, { "FILTER", AA_FILTER },
	{ "PREPEND", AA_PREPEND }, { "REDIRECT", AA_REDIRECT }, { "BCC", AA_BCC },
	{ "WARN", AA_WARN }, { "INFO", AA_INFO },
};

const char *access_kind_name(enum access_kind k)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (commands[i].kind == k)
			return commands[i].name;
	return k == AA_NUMERIC ? "NNN" : k == AA_TABLE ? "type:table"
		: "restriction";
}

int access_dsn_valid(const char *d)
{
	int n = 0;

	if ((d[0] != '2' && d[0] != '4' && d[0] != '5') || d[1] != '.')
		return 0;
	for (d += 2; isdigit((unsigned char)*d); d++)
		n++;
	if (n < 1 || n > 3 || *d++ != '.')
		return 0;
	for (n = 0; isdigit((unsigned char)*d); d++)
		n++;
	return n >= 1 && n <= 3 && *d == 0;
}

void access_dsn_fix(char *dsn, const char *reply_class)
{
	/* detail digit -> sender form, recipient form (RFC 3463 X.1.Y);
	 * mailbox problems without a sender flavour become 1.7 ("bad
	 * sender address syntax"), as Postfix's SND_DSN, so that a
	 * sender problem never reads as a recipient one */
	static const struct { char detail; const char *snd, *rcpt; } map[] = {
		{ '1', "1.7", "1.1" }, { '2', "1.8", "1.2" }, { '3', "1.7", "1.3" },
		{ '4', "1.7", "1.4" }, { '5', "1.0", "1.5" }, { '6', "1.7", "1.6" },
		{ '7', "1.7", "1.3" }, { '8', "1.8", "1.2" },
	};
	bool sender = strcmp(reply_class, "Sender address") == 0;
	bool rcpt = strcmp(reply_class, "Recipient address") == 0;
	const char *to = "1.0";

	if (!isdigit((unsigned char)dsn[0]) || strncmp(dsn + 1, ".1.", 3) != 0)
		return;                 /* not an address status: kept */
	if (!sender && !rcpt) {
		strcpy(dsn + 2, "0.0");
		return;
	}
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (dsn[4] == map[i].detail && dsn[5] == 0)
			to = sender ? map[i].snd : map[i].rcpt;
	strcpy(dsn + 2, to);
}

/* Take a leading enhanced code off the text (Postfix's dsn_split). */
static void split_dsn(struct access_action *a, const char *text)
{
	size_t n = strcspn(text, " \t");
	char word[16];

	a->dsn[0] = 0;
	if (n > 0 && n < sizeof word) {
		memcpy(word, text, n);
		word[n] = 0;
		if (access_dsn_valid(word) && word[0] != '2') {
			strcpy(a->dsn, word);
			text += n;
			text += strspn(text, " \t");
		}
	}
	snprintf(a->text, sizeof a->text, "%s", text);
}

static int all_digits(const char *s)
{
	if (*s == 0)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

void access_action_parse(const char *value, struct access_action *a)
{
	size_t cmd_len;
	const char *text;

	memset(a, 0, sizeof *a);
	a->value = value;
	value += strspn(value, " \t");
	cmd_len = strcspn(value, " \t");
	text = value + cmd_len;
	text += strspn(text, " \t");
	snprintf(a->command, sizeof a->command, "%.*s",
		 (int)(cmd_len < sizeof a->command ? cmd_len : sizeof a->command - 1),
		 value);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strlen(commands[i].name) == cmd_len
		    && strncasecmp(value, commands[i].name, cmd_len) == 0) {
			a->kind = commands[i].kind;
			if (a->kind == AA_REJECT || a->kind == AA_DEFER
			    || a->kind == AA_DEFER_IF_PERMIT
			    || a->kind == AA_DEFER_IF_REJECT)
				split_dsn(a, text);
			else
				snprintf(a->text, sizeof a->text, "%s", text);
			return;
		}
	}
	if (all_digits(value)) {
		a->kind = AA_OK;
		return;
	}
	if (cmd_len == 3 && *text && (value[0] == '4' || value[0] == '5')
	    && isdigit((unsigned char)value[1]) && isdigit((unsigned char)value[2])) {
		a->kind = AA_NUMERIC;
		a->code = (value[0] - '0') * 100 + (value[1] - '0') * 10
			+ (value[2] - '0');
		split_dsn(a, text);
		return;
	}
	if (strchr(value, ':') != NULL) {
		a->kind = AA_TABLE;
		return;
	}
	a->kind = AA_RESTRICTIONS;
	snprintf(a->text, sizeof a->text, "%s", value);
}
