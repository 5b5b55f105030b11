/*
 * delivery_proto.h - the requests the queue manager sends the delivery
 * process (sluice/delivery, delivery_server.c) and the results it gets
 * back, over the unix socket queue_directory/private/delivery.
 *
 * The stream is text, one record per line, "key token token...\n"; a
 * frame is a run of records ending with "end".  A token is a value with
 * every byte below '!' (space and control characters), DEL and '%'
 * written as %XX; the empty value is "-" (and the value "-" is "%2D").
 *
 *   request SEQ                  qmgr -> delivery; SEQ a number > 0,
 *   queue_id ID                  unique on the connection
 *   transport NAME
 *   nexthop VALUE
 *   rcpt INDEX ADDRESS ORIGINAL  1 to DP_RCPT_MAX of them: the queue
 *   end                          file's recipient number INDEX, as
 *                                received (ORIGINAL) and as rewritten
 *                                (ADDRESS, where it is delivered)
 *
 *   result SEQ                   delivery -> qmgr, in any order
 *   relay VALUE
 *   times T_CONN T_DONE          seconds.microseconds
 *   rcpt N STATUS DSN TEXT       the Nth recipient of the request
 *   error DSN TEXT               or: the request was refused, or could
 *   end                          not be run: this for every recipient
 *
 * Everything else - the sender, the DSN fields, the size, the content -
 * the delivery process reads from the queue file itself, and the
 * transport's definition (pipe's user= and argv=) from its own copy of
 * the configuration.
 *
 * The readers bound everything: a line longer than DP_LINE_MAX, a NUL,
 * or a first line that is not "request SEQ" / "result SEQ" breaks the
 * stream (the connection is closed); anything else wrong in a request
 * (an unknown record, a missing or repeated one, a bad queue ID, a bad
 * address, too many recipients) is remembered as the reason to refuse
 * it, and the frame is read to its end.
 */
#ifndef SLUICE_DELIVERY_PROTO_H
#define SLUICE_DELIVERY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/time.h>

#include "queue.h"

struct evbuffer;
struct delivery_request;

#define DP_SOCKET_DIR		"private"       /* under queue_directory */
#define DP_SOCKET_NAME		"delivery"
#define DP_SOCKET		DP_SOCKET_DIR "/" DP_SOCKET_NAME
#define DP_LINE_MAX		8192    /* one record, encoded */
#define DP_RCPT_MAX		1000    /* recipients in one request */
#define DP_ADDR_MAX		1000    /* bytes of an address */
#define DP_NEXTHOP_MAX		1024
#define DP_TRANSPORT_MAX	64
#define DP_TEXT_MAX		1000    /* a result text */
#define DP_RELAY_MAX		299
#define DP_REASON_MAX		256

/* ---- values ---------------------------------------------------------- */

/* A queue ID as queue_id.c makes them: 14 to QUEUE_ID_MAX - 1 upper-case
 * hex digits (so never "/" or ".."). */
bool dp_queue_id_ok(const char *id);
/* An address the delivery process takes: 1 to DP_ADDR_MAX bytes, no
 * control character, no "<" or ">", a local part (spaces only inside a
 * quoted one) and, after the last "@", a domain of letters, digits, "-",
 * "_", "." and UTF-8, or an address literal "[...]". */
bool dp_addr_ok(const char *addr);
/* A master.cf service name: 1 to DP_TRANSPORT_MAX letters, digits, "-",
 * "_", ".", "+". */
bool dp_transport_ok(const char *name);
/* Copy s into buf (size > 0) for a log line: bytes outside '!'..'~'
 * become '?', and a long one ends with "...". */
const char *dp_printable(const char *s, char *buf, size_t size);

/* ---- writing --------------------------------------------------------- */

/* The request: the recipients of req whose status is still 0 (the
 * others were settled by the caller), in order; their count in *n.
 * Nothing is written when there are none. */
void dp_request_write(struct evbuffer *out, unsigned long long seq,
		      const struct delivery_request *req, int *n);
/* The results of every recipient of req (status 0 is sent as 4). */
void dp_result_write(struct evbuffer *out, unsigned long long seq,
		     const struct delivery_request *req);
/* One result for the whole request. */
void dp_error_write(struct evbuffer *out, unsigned long long seq,
		    const char *dsn, const char *text);

/* ---- reading --------------------------------------------------------- */

enum dp_feed { DP_MORE, DP_DONE, DP_BROKEN };

struct dp_rcpt {
	int index;                      /* in the queue file */
	char *addr;                     /* as rewritten */
	char *orig;                     /* as received */
};

struct dp_request {
	unsigned long long seq;
	char queue_id[QUEUE_ID_MAX];
	char transport[DP_TRANSPORT_MAX + 1];
	char *nexthop;
	struct dp_rcpt *rcpt;
	int nrcpt;
	char refused[DP_REASON_MAX];    /* why it is refused; "" when not */
	/* the reader's state */
	int lines;
	unsigned have;                  /* records seen, as bits */
};

struct dp_rcpt_result {
	int status;                     /* 2, 4, 5 */
	char dsn[16];
	char *text;
};

struct dp_result {
	unsigned long long seq;
	char relay[DP_RELAY_MAX + 1];
	struct timeval t_conn, t_done;
	struct dp_rcpt_result *v;       /* by position in the request */
	int n;                          /* positions filled: 0 .. n - 1 */
	bool error;                     /* one result for all: */
	struct dp_rcpt_result all;
	int lines;
};

/* Feed one line (without its "\n"; len bytes, which may hold a NUL).
 * DP_DONE: the frame is complete (a request may be refused: see
 * r->refused); DP_BROKEN: close the connection, with the reason in
 * `why`.  After DP_DONE or DP_BROKEN, free and start again. */
enum dp_feed dp_request_feed(struct dp_request *r, const char *line,
			     size_t len, char *why, size_t whylen);
void dp_request_free(struct dp_request *r);
enum dp_feed dp_result_feed(struct dp_result *r, const char *line,
			    size_t len, char *why, size_t whylen);
void dp_result_free(struct dp_result *r);

#endif
