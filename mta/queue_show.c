/*
 * queue_show.c - `sluice queue show [-e|-h|-b] ID`: one queued message,
 * envelope, headers and body, in the shape of Postfix's postcat -q:
 *
 *   *** ENVELOPE RECORDS deferred/6B012F0CC3C02A72621 ***
 *   message_size: 268
 *   message_arrival_time: Sat Nov 21 05:38:36 2026
 *   sender: alice@example.org
 *   ...
 *   recipient: bob@example.net
 *   done_recipient: carol@example.net
 *   *** MESSAGE CONTENTS deferred/6B012F0CC3C02A72621 ***
 *   Received: ...
 *   *** MESSAGE FILE END deferred/6B012F0CC3C02A72621 ***
 *
 * -e shows only the envelope, -h only the header block, -b only the
 * body.  The message is looked for in every queue, corrupt/ included;
 * envelope values are printed with control characters as '?'.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue.h"
#include "queue_reason.h"
#include "queue_tools.h"

enum show_part { SHOW_ALL, SHOW_ENVELOPE, SHOW_HEADERS, SHOW_BODY };

static void put_field(const char *name, const char *value)
{
	if (value == NULL)
		return;
	printf("%s: ", name);
	qt_put_safe(stdout, value);
	putchar('\n');
}

static const char *body_name(int body)
{
	return body == BODY_8BITMIME ? "8BITMIME"
		: body == BODY_BINARYMIME ? "BINARYMIME" : "7BIT";
}

static void put_notify(int notify)
{
	static const struct { int bit; const char *name; } n[] = {
		{ DSN_NOTIFY_NEVER, "NEVER" },
		{ DSN_NOTIFY_SUCCESS, "SUCCESS" },
		{ DSN_NOTIFY_FAILURE, "FAILURE" },
		{ DSN_NOTIFY_DELAY, "DELAY" },
	};
	const char *sep = "";
	size_t i;

	if (notify == DSN_NOTIFY_NONE)
		return;
	printf("dsn_notify_flags: ");
	for (i = 0; i < sizeof n / sizeof n[0]; i++)
		if (notify & n[i].bit) {
			printf("%s%s", sep, n[i].name);
			sep = ",";
		}
	putchar('\n');
}

static void put_recipients(const char *qdir, const char *id,
			   const struct queue_envelope *env)
{
	char **reasons = queue_reason_load(qdir, id, env->nrcpt);
	int i;

	for (i = 0; i < env->nrcpt; i++) {
		put_field("original_recipient", env->rcpt[i].orcpt);
		put_notify(env->rcpt[i].notify);
		put_field(env->rcpt[i].status == 'D' ? "done_recipient"
			  : "recipient", env->rcpt[i].addr);
		if (reasons != NULL)
			put_field("defer_reason", reasons[i]);
	}
	queue_reason_free(reasons, env->nrcpt);
}

static void put_envelope(const char *qdir, const char *id,
			 const struct queue_envelope *env)
{
	char when[32], port[16];

	qt_time(when, sizeof when, env->arrival_sec);
	printf("message_size: %lld\n", env->size);
	printf("message_arrival_time: %s\n", when);
	put_field("sender", env->sender);
	put_field("body_type", body_name(env->body));
	put_field("smtputf8", env->smtputf8 ? "yes" : NULL);
	put_field("dsn_envid", env->envid);
	put_field("dsn_ret", env->ret == DSN_RET_FULL ? "FULL"
		  : env->ret == DSN_RET_HDRS ? "HDRS" : NULL);
	put_field("client_name", env->client_name);
	put_field("client_address", env->client_addr);
	snprintf(port, sizeof port, "%d", env->client_port);
	put_field("client_port", env->client_port ? port : NULL);
	put_field("helo_name", env->helo);
	put_field("protocol_name", env->proto);
	put_field("listener", env->listener);
	put_field("sasl_method", env->sasl_method);
	put_field("sasl_username", env->sasl_username);
	put_field("message_id", env->message_id);
	if (env->hold)
		put_field("hold_reason",
			  env->hold_reason ? env->hold_reason : "");
	put_recipients(qdir, id, env);
}

/* Where the header block ends in buf[0..n), given the last byte before
 * it (prev); -1 when not in this chunk. */
static long header_end(const char *buf, long n, char *prev)
{
	long i;

	for (i = 0; i < n; i++) {
		if (buf[i] == '\n' && *prev == '\n')
			return i;
		*prev = buf[i];
	}
	return -1;
}

/* Copy the message, or the part asked for, to stdout. */
static int put_message(int fd, const struct queue_envelope *env,
		       enum show_part part)
{
	char buf[65536], prev = '\n';
	bool in_body = false;
	long long off = 0;
	long n, end, from, to;

	while ((n = queue_message_pread(fd, env, buf, sizeof buf, off)) > 0) {
		off += n;
		from = 0;
		to = n;
		if (!in_body && (end = header_end(buf, n, &prev)) >= 0) {
			in_body = true;
			if (part == SHOW_HEADERS)
				to = end;
			else if (part == SHOW_BODY)
				from = end + 1;
		} else if (!in_body && part == SHOW_BODY) {
			continue;
		} else if (in_body && part == SHOW_HEADERS) {
			break;
		}
		fwrite(buf + from, 1, (size_t) (to - from), stdout);
	}
	return n < 0 ? -1 : 0;
}

/* The queue holding id, and the file open on it; -1 when none. */
static int find_message(const char *qdir, const char *id, const char **sub)
{
	const struct qt_queue *q;
	struct stat st;
	int fd;

	for (q = qt_queues; q->name != NULL; q++)
		if ((fd = qt_open(qdir, q->name, id, &st)) >= 0) {
			*sub = q->name;
			return fd;
		}
	return -1;
}

static int show_one(const char *qdir, const char *id, enum show_part part)
{
	struct queue_envelope env;
	const char *sub = NULL;
	char err[256];
	int fd, rc = 0;

	if (!qt_id_ok(id) || (fd = find_message(qdir, id, &sub)) < 0) {
		fprintf(stderr, "sluice: queue: %s: no such message in the "
			"queue\n", id);
		return 1;
	}
	memset(&env, 0, sizeof env);
	if (queue_read_envelope_fd(fd, &env, err, sizeof err) < 0) {
		fprintf(stderr, "sluice: queue: %s/%s: %s\n", sub, id, err);
		close(fd);
		return 1;
	}
	if (part == SHOW_ALL || part == SHOW_ENVELOPE) {
		printf("*** ENVELOPE RECORDS %s/%s ***\n", sub, id);
		put_envelope(qdir, id, &env);
	}
	if (part == SHOW_ALL)
		printf("*** MESSAGE CONTENTS %s/%s ***\n", sub, id);
	if (part != SHOW_ENVELOPE && put_message(fd, &env, part) < 0) {
		fprintf(stderr, "sluice: queue: %s/%s: read error: %s\n", sub,
			id, strerror(errno));
		rc = 1;
	}
	if (part == SHOW_ALL)
		printf("*** MESSAGE FILE END %s/%s ***\n", sub, id);
	queue_envelope_free(&env);
	close(fd);
	return rc;
}

int queue_show(const char *qdir, int argc, char **argv)
{
	enum show_part part = SHOW_ALL;
	int i = 1, rc = 0;

	for (; i < argc && argv[i][0] == '-' && argv[i][1] != 0; i++) {
		if (strcmp(argv[i], "-e") == 0)
			part = SHOW_ENVELOPE;
		else if (strcmp(argv[i], "-h") == 0)
			part = SHOW_HEADERS;
		else if (strcmp(argv[i], "-b") == 0)
			part = SHOW_BODY;
		else
			break;
	}
	if (i >= argc || argv[i][0] == '-') {
		fprintf(stderr, "usage: sluice queue show [-e|-h|-b] ID...\n");
		return 2;
	}
	for (; i < argc; i++)
		rc |= show_one(qdir, argv[i], part);
	return rc;
}
