/*
 * access_action.c - unit test of access(5) action parsing
 * (mta/access_action.c): every command word, case, enhanced codes,
 * numeric replies, and Postfix's DSN mapping by reply class.
 */
#include <string.h>

#include "access_action.h"
#include "tap.h"

static void check(const char *value, enum access_kind kind, int code,
		  const char *dsn, const char *text)
{
	struct access_action a;

	access_action_parse(value, &a);
	is_int(a.kind, kind, value);
	is_int(a.code, code, "  code");
	is_str(a.dsn, dsn, "  enhanced code");
	is_str(a.text, text, "  text");
}

static void fix(const char *in, const char *cls, const char *want)
{
	char dsn[16];

	strcpy(dsn, in);
	access_dsn_fix(dsn, cls);
	is_str(dsn, want, in);
}

int main(void)
{
	check("OK", AA_OK, 0, "", "");
	check("ok trailing text", AA_OK, 0, "", "trailing text");
	check("RELAY", AA_OK, 0, "", "");
	check("1700000000", AA_OK, 0, "", "");
	check("DUNNO", AA_DUNNO, 0, "", "");
	check("REJECT", AA_REJECT, 0, "", "");
	check("reject go away", AA_REJECT, 0, "", "go away");
	check("REJECT 5.7.2 go away", AA_REJECT, 0, "5.7.2", "go away");
	check("REJECT 5.7 not a code", AA_REJECT, 0, "", "5.7 not a code");
	check("DEFER 4.3.2 later", AA_DEFER, 0, "4.3.2", "later");
	check("550 5.1.1 no such user", AA_NUMERIC, 550, "5.1.1", "no such user");
	check("450 busy", AA_NUMERIC, 450, "", "busy");
	check("550", AA_OK, 0, "", "");        /* all digits: OK, as Postfix */
	check("250 fine", AA_RESTRICTIONS, 0, "", "250 fine");
	check("DEFER_IF_PERMIT maybe", AA_DEFER_IF_PERMIT, 0, "", "maybe");
	check("DEFER_IF_REJECT 4.7.5 hmm", AA_DEFER_IF_REJECT, 0, "4.7.5", "hmm");
	check("DISCARD", AA_DISCARD, 0, "", "");
	check("HOLD look at it", AA_HOLD, 0, "", "look at it");
	check("FILTER smtp:[127.0.0.1]:10025", AA_FILTER, 0, "", "smtp:[127.0.0.1]:10025");
	check("PREPEND X-Tag: yes", AA_PREPEND, 0, "", "X-Tag: yes");
	check("REDIRECT a@example.net", AA_REDIRECT, 0, "", "a@example.net");
	check("BCC b@example.net", AA_BCC, 0, "", "b@example.net");
	check("WARN careful", AA_WARN, 0, "", "careful");
	check("INFO noted", AA_INFO, 0, "", "noted");
	check("REJECTED", AA_RESTRICTIONS, 0, "", "REJECTED");
	check("permit_mynetworks, reject", AA_RESTRICTIONS, 0, "",
	      "permit_mynetworks, reject");
	check("hash:/etc/x", AA_TABLE, 0, "", "");

	fix("5.1.1", "Sender address", "5.1.7");
	fix("4.1.6", "Sender address", "4.1.7");
	fix("5.1.5", "Sender address", "5.1.0");
	fix("5.1.2", "Sender address", "5.1.8");
	fix("5.1.8", "Recipient address", "5.1.2");
	fix("4.1.7", "Recipient address", "4.1.3");
	fix("5.1.1", "Recipient address", "5.1.1");
	fix("5.1.1", "Client host", "5.0.0");
	fix("5.7.1", "Client host", "5.7.1");
	fix("4.1.9", "Recipient address", "4.1.0");
	return tap_done();
}
