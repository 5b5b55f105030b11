/*
 * t/unit/delivery_proto.c - the wire format between the queue manager
 * and the delivery process (mta/delivery_proto.h), tested (TAP):
 * the value checks (queue IDs, addresses, transport names), requests and
 * results written and read back (values with spaces, "%", "-", the empty
 * value, recipients already settled left out), and what the readers
 * refuse (a request, read to its end) or give up on (the stream): wrong
 * records, repeats, missing ones, bad values, too many recipients, a
 * NUL, an empty token, a line too long, a bad first line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "delivery.h"
#include "delivery_proto.h"
#include "tap.h"

/* ---- feeding a whole text to a reader -------------------------------- */

static enum dp_feed feed_request(const char *text, struct dp_request *r,
				 char *why, size_t whylen)
{
	const char *p = text, *nl;
	enum dp_feed st = DP_MORE;

	memset(r, 0, sizeof *r);
	while (st == DP_MORE && (nl = strchr(p, '\n')) != NULL) {
		st = dp_request_feed(r, p, (size_t)(nl - p), why, whylen);
		p = nl + 1;
	}
	return st;
}

static enum dp_feed feed_result(const char *text, struct dp_result *r,
				char *why, size_t whylen)
{
	const char *p = text, *nl;
	enum dp_feed st = DP_MORE;

	memset(r, 0, sizeof *r);
	while (st == DP_MORE && (nl = strchr(p, '\n')) != NULL) {
		st = dp_result_feed(r, p, (size_t)(nl - p), why, whylen);
		p = nl + 1;
	}
	return st;
}

static char *drain(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = malloc(n + 1);

	evbuffer_remove(b, s, n);
	s[n] = 0;
	return s;
}

/* A request text with these records between its first line and "end". */
static const char *frame(const char *body)
{
	static char buf[8192];

	snprintf(buf, sizeof buf, "request 7\n%send\n", body);
	return buf;
}

#define GOOD_HEAD "queue_id 6B0140E87FC3FA80241\ntransport local\n" \
		  "nexthop example.org\n"

/* ---- values ---------------------------------------------------------- */

static void test_values(void)
{
	char big[DP_ADDR_MAX + 10], buf[16];

	ok(dp_queue_id_ok("6B0140E87FC3FA80241"), "a queue ID");
	ok(!dp_queue_id_ok("../../etc/passwd"), "... not with \"../\"");
	ok(!dp_queue_id_ok("6b0140e87fc3fa80241"), "... not in lower case");
	ok(!dp_queue_id_ok("6B0140E87FC3F"), "... not shorter than 14");
	ok(!dp_queue_id_ok("6B0140E87FC3FA802416B0140E87FC3F"), "... not longer than 31");
	ok(!dp_queue_id_ok(""), "... not empty");

	ok(dp_addr_ok("bob@example.org"), "an address");
	ok(dp_addr_ok("root"), "... unqualified");
	ok(dp_addr_ok("\"john doe\"@example.org"), "... a quoted local part with a space");
	ok(dp_addr_ok("bob@[192.0.2.1]"), "... an address literal");
	ok(dp_addr_ok("j\xc3\xbcrgen@b\xc3\xbc" "cher.example"), "... UTF-8");
	ok(!dp_addr_ok("john doe@example.org"), "not: a space outside quotes");
	ok(!dp_addr_ok("bob@"), "not: an empty domain");
	ok(!dp_addr_ok("@example.org"), "not: an empty local part");
	ok(!dp_addr_ok("bob\n@example.org"), "not: a control character");
	ok(!dp_addr_ok("<bob@example.org>"), "not: angle brackets");
	ok(!dp_addr_ok("bob@exa mple.org"), "not: a space in the domain");
	ok(!dp_addr_ok("bob@example/org"), "not: a \"/\" in the domain");
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	ok(!dp_addr_ok(big), "not: longer than DP_ADDR_MAX");

	ok(dp_transport_ok("local") && dp_transport_ok("dovecot-lda")
	   && dp_transport_ok("my_pipe.2"), "transport names");
	ok(!dp_transport_ok("../pipe") && !dp_transport_ok("") &&
	   !dp_transport_ok("a b"), "... not with \"/\", empty, or a space");
	is_str(dp_printable("a\nb c", buf, sizeof buf), "a?b?c", "dp_printable");
	is_str(dp_printable("0123456789abcdefghij", buf, sizeof buf),
	       "0123456789ab...", "... with \"...\" when cut");
}

/* ---- requests -------------------------------------------------------- */

static void test_request_roundtrip(void)
{
	struct delivery_rcpt rc[3] = {
		{ .addr = "\"a b%c\"@example.org", .orig_addr = "-", .queue_index = 2 },
		{ .addr = "settled@example.org", .queue_index = 0, .status = 5 },
		{ .addr = "x@example.org", .queue_index = 1 },
	};
	struct delivery_request req = {
		.queue_id = "6B0140E87FC3FA80241", .transport = "local",
		.nexthop = "", .rcpt = rc, .nrcpt = 3,
	};
	struct evbuffer *b = evbuffer_new();
	struct dp_request r;
	char why[128], *text;
	int n;

	dp_request_write(b, 42, &req, &n);
	text = drain(b);
	is_int(n, 2, "a request carries the recipients not settled");
	ok(strstr(text, "rcpt 2 \"a%20b%25c\"@example.org %2D\n") != NULL,
	   "... space and %% escaped, \"-\" as %%2D");
	ok(strstr(text, "nexthop -\n") != NULL, "... the empty value as \"-\"");
	is_int(feed_request(text, &r, why, sizeof why), DP_DONE, "... read back");
	ok(r.seq == 42 && !strcmp(r.queue_id, req.queue_id)
	   && !strcmp(r.transport, "local") && r.nexthop && !*r.nexthop,
	   "... sequence, queue ID, transport, next hop");
	ok(r.nrcpt == 2 && r.rcpt[0].index == 2
	   && !strcmp(r.rcpt[0].addr, "\"a b%c\"@example.org")
	   && !strcmp(r.rcpt[0].orig, "-") && r.rcpt[1].index == 1
	   && !strcmp(r.rcpt[1].orig, "x@example.org"),
	   "... the recipients: index, address, original");
	is_str(r.refused, "", "... not refused");
	dp_request_free(&r);
	free(text);
	rc[0].status = rc[2].status = 4;
	dp_request_write(b, 43, &req, &n);
	ok(n == 0 && evbuffer_get_length(b) == 0, "nothing is written without a recipient");
	evbuffer_free(b);
}

struct refusal {
	const char *body;
	const char *why;
};

static void test_request_refused(void)
{
	static const struct refusal v[] = {
		{ GOOD_HEAD "rcpt 0 a@x.org a@x.org\nsay hello\n", "unknown record" },
		{ GOOD_HEAD "queue_id 6B0140E87FC3FA80242\nrcpt 0 a@x.org a@x.org\n",
		  "record \"queue_id\" repeated" },
		{ "queue_id 6B0140E87FC3FA80241\nnexthop x\nrcpt 0 a@x.org a@x.org\n",
		  "incomplete request" },
		{ GOOD_HEAD, "incomplete request" },
		{ "queue_id ..%2Fetc%2Fpasswd\ntransport local\nnexthop x\n"
		  "rcpt 0 a@x.org a@x.org\n", "bad queue ID \"..%2Fetc%2Fpasswd\"" },
		{ GOOD_HEAD "rcpt 0 a%0A@x.org a@x.org\n", "bad address in recipient 0" },
		{ GOOD_HEAD "rcpt 0 a@x.org <a@x.org>\n", "bad address in recipient 0" },
		{ GOOD_HEAD "rcpt -1 a@x.org a@x.org\n", "bad rcpt record" },
		{ GOOD_HEAD "rcpt 01 a@x.org a@x.org\n", "bad rcpt record" },
		{ GOOD_HEAD "rcpt 0 a@x.org\n", "bad rcpt record" },
		{ "queue_id 6B0140E87FC3FA80241\ntransport ../pipe\nnexthop x\n"
		  "rcpt 0 a@x.org a@x.org\n", "bad transport name" },
		{ "queue_id 6B0140E87FC3FA80241\ntransport local\nnexthop a%00b\n"
		  "rcpt 0 a@x.org a@x.org\n", "bad next hop" },
		{ GOOD_HEAD "rcpt 0 a@x.org a@x.org\nend now\n", "bad end record" },
	};
	struct dp_request r;
	char why[128];

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		enum dp_feed st = feed_request(frame(v[i].body), &r, why, sizeof why);

		ok(st == DP_DONE && !strcmp(r.refused, v[i].why),
		   "refused, read to its end: %s", v[i].why);
		if (st != DP_DONE || strcmp(r.refused, v[i].why))
			diag("got %d \"%s\"", st, r.refused);
		dp_request_free(&r);
	}
}

static void test_request_too_many(void)
{
	size_t size = (DP_RCPT_MAX + 2) * 40 + 200;
	char *text = malloc(size), *p = text;
	struct dp_request r;
	char why[128];

	p += sprintf(p, "request 1\n" GOOD_HEAD);
	for (int i = 0; i <= DP_RCPT_MAX; i++)
		p += sprintf(p, "rcpt %d a@x.org a@x.org\n", i);
	sprintf(p, "end\n");
	is_int(feed_request(text, &r, why, sizeof why), DP_DONE,
	       "a request with DP_RCPT_MAX + 1 recipients is read to its end");
	ok(strstr(r.refused, "more than") != NULL && r.nrcpt == DP_RCPT_MAX,
	   "... refused, keeping no more than DP_RCPT_MAX");
	dp_request_free(&r);
	free(text);
}

static void test_request_broken(void)
{
	char line[DP_LINE_MAX + 2], why[128];
	struct dp_request r;

	memset(&r, 0, sizeof r);
	is_int(dp_request_feed(&r, "hello", 5, why, sizeof why), DP_BROKEN,
	       "a stream not starting with \"request SEQ\" is broken");
	dp_request_free(&r);
	is_int(dp_request_feed(&r, "request 0", 9, why, sizeof why), DP_BROKEN,
	       "... nor with sequence 0");
	dp_request_free(&r);
	is_int(dp_request_feed(&r, "request 1", 9, why, sizeof why), DP_MORE,
	       "\"request 1\" starts a request");
	is_int(dp_request_feed(&r, "nexthop a\0b", 11, why, sizeof why), DP_BROKEN,
	       "... a NUL in a record breaks the stream");
	dp_request_free(&r);
	dp_request_feed(&r, "request 1", 9, why, sizeof why);
	is_int(dp_request_feed(&r, "nexthop  a", 10, why, sizeof why), DP_BROKEN,
	       "... so does an empty token");
	dp_request_free(&r);
	dp_request_feed(&r, "request 1", 9, why, sizeof why);
	memset(line, 'a', sizeof line);
	is_int(dp_request_feed(&r, line, sizeof line, why, sizeof why), DP_BROKEN,
	       "... and a line longer than DP_LINE_MAX");
	dp_request_free(&r);
}

/* ---- results --------------------------------------------------------- */

static void test_result_roundtrip(void)
{
	struct delivery_rcpt rc[3] = { { .addr = "a@x" }, { .addr = "b@x" },
				       { .addr = "c@x" } };
	struct delivery_request req = { .rcpt = rc, .nrcpt = 3 };
	struct evbuffer *b = evbuffer_new();
	struct dp_result r;
	char why[128], *text;

	snprintf(req.relay, sizeof req.relay, "local");
	req.t_conn.tv_sec = 1700000000;
	req.t_conn.tv_usec = 5;
	req.t_done.tv_sec = 1700000001;
	delivery_set(&rc[0], 2, "2.0.0", "delivered to maildir");
	delivery_set(&rc[1], 5, "5.1.1", "unknown user: \"b\"");
	dp_result_write(b, 9, &req);
	text = drain(b);
	is_int(feed_result(text, &r, why, sizeof why), DP_DONE, "a result is read back");
	ok(r.seq == 9 && !strcmp(r.relay, "local") && r.t_conn.tv_sec == 1700000000
	   && r.t_conn.tv_usec == 5 && r.t_done.tv_sec == 1700000001,
	   "... sequence, relay, times");
	ok(r.n == 3 && r.v[0].status == 2 && !strcmp(r.v[0].dsn, "2.0.0")
	   && !strcmp(r.v[0].text, "delivered to maildir") && r.v[1].status == 5
	   && !strcmp(r.v[1].text, "unknown user: \"b\""),
	   "... each recipient's status, dsn and text");
	ok(r.v[2].status == 4 && !strcmp(r.v[2].dsn, "4.3.0"),
	   "... a recipient the agent left without a result is deferred");
	dp_result_free(&r);
	free(text);
	delivery_clear(&req);

	dp_error_write(b, 10, "4.3.0", "delivery request refused: bad queue ID");
	text = drain(b);
	ok(feed_result(text, &r, why, sizeof why) == DP_DONE && r.error
	   && r.all.status == 4 && !strcmp(r.all.text,
					   "delivery request refused: bad queue ID"),
	   "an error result is read back");
	dp_result_free(&r);
	free(text);
	evbuffer_free(b);
}

static void test_result_broken(void)
{
	static const char *const v[] = {
		"results 1\nend\n",
		"result 1\nrcpt 0 3 3.0.0 x\nend\n",
		"result 1\nrcpt 0 2 2.0 x\nend\n",
		"result 1\nrcpt 0 2 2.0.0 x\nrcpt 0 2 2.0.0 x\nend\n",
		"result 1\nrcpt 1000 2 2.0.0 x\nend\n",
		"result 1\nerror 5.0.0 x\nend\n",
		"result 1\ntimes 1.5 2.000000\nend\n",
		"result 1\nrelay a%0Ab\nend\n",
	};
	struct dp_result r;
	char why[128];

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		ok(feed_result(v[i], &r, why, sizeof why) == DP_BROKEN,
		   "a bad result breaks the stream (%zu)", i);
		dp_result_free(&r);
	}
}

int main(void)
{
	test_values();
	test_request_roundtrip();
	test_request_refused();
	test_request_too_many();
	test_request_broken();
	test_result_roundtrip();
	test_result_broken();
	return tap_done();
}
