/*
 * smtp_client.h - the SMTP/LMTP delivery agent's inside (smtp_client*.c);
 * what the rest of sluice calls is smtp_deliver() in delivery.h, plus
 * smtp_client_shutdown() below.
 *
 * Two objects:
 *   - a delivery (struct smtpc_delivery, smtp_client.c): one request, its
 *     next hop, the hosts and addresses still to try, the recipients'
 *     results so far.  It walks MX hosts and their addresses and ends
 *     with exactly one call of the request's done().
 *   - a connection (struct smtpc_conn, smtp_client_proto.c): one SMTP or
 *     LMTP session with one server.  While it carries a delivery's mail
 *     it points at the delivery and the delivery at it; when it is done
 *     it hands itself to the pool (smtp_client_cache.c) to be kept for
 *     reuse or closed politely, and tells the delivery how it went.
 *
 * The promise: everything runs in the caller's libevent loop and nothing
 * blocks it except reading the queue file; whatever the remote side
 * sends is bounded (reply line length, lines per reply, time per stage).
 */
#ifndef SLUICE_SMTP_CLIENT_H
#define SLUICE_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/time.h>

#include "delivery.h"

struct bufferevent;
struct evbuffer;
struct event;
struct dns_req;

/* Close every cached or closing connection of this process (at exit). */
void smtp_client_shutdown(void);

/* ---- limits on what the remote side controls ---- */
#define SMTPC_LINE_MAX          2048    /* a reply line; longer is cut */
#define SMTPC_REPLY_LINES_MAX   200     /* lines of one reply */
#define SMTPC_REPLY_TEXT_MAX    4096    /* reply text kept */
#define SMTPC_MAX_HOSTS         32      /* MX hosts considered */
#define SMTPC_MAX_ADDRS         32      /* addresses of one host */
#define SMTPC_BODY_CHUNK        16384   /* queue file bytes read at once */
#define SMTPC_BODY_HIGH         262144  /* output queued before waiting */
#define SMTPC_HOST_MAX          256
#define SMTPC_ADDR_MAX          112     /* an IPv6 address or a unix path */
#define SMTPC_POOL_MAX          64      /* idle connections kept */

/* ---- the transport's parameters (smtp_* or lmtp_*), read once ---- */
struct smtpc_params {
	long long connect_timeout, helo_timeout, mail_timeout, rcpt_timeout,
		data_init_timeout, data_xfer_timeout, data_done_timeout,
		quit_timeout;
	const char *helo_name;
	const char *myhostname;
	bool skip_5xx_greeting, skip_quit_response, never_send_ehlo;
	bool cache_on_demand, randomize;
	bool assume_final;              /* lmtp_assume_final */
	bool mime_conversion;           /* !disable_mime_output_conversion */
	long long cache_time_limit, reuse_time_limit;
	long long reuse_count_limit;
	long long mx_address_limit, mx_session_limit;
	int default_port;
	bool ipv4, ipv6;                /* inet_protocols */
	long long starttls_timeout;     /* smtp_starttls_timeout */
};

/* ---- one server reply (smtp_client_reply.c) ---- */
struct smtpc_reply {
	int code;                       /* 0 while incomplete */
	char dsn[16];                   /* enhanced code, or "X.0.0" */
	char text[SMTPC_REPLY_TEXT_MAX]; /* lines joined with '\n' */
	size_t len;
	int nlines;
	bool cut;                       /* inside a line longer than the limit */
	char line[SMTPC_LINE_MAX + 1];  /* the line being read */
	size_t line_len;
	size_t bytes;                   /* read for this reply, cut or not */
};

enum { SMTPC_REPLY_MORE = 0, SMTPC_REPLY_DONE = 1, SMTPC_REPLY_BAD = -1 };

void smtpc_reply_reset(struct smtpc_reply *r);
/* Take input from `in` until one reply is complete.  SMTPC_REPLY_DONE
 * (r->code set), SMTPC_REPLY_MORE (need more input) or SMTPC_REPLY_BAD (a
 * malformed line or too many lines; r->text says what). */
int smtpc_reply_read(struct evbuffer *in, struct smtpc_reply *r);
/* The reply on one line ("250 2.0.0 Ok: queued as X") into buf. */
const char *smtpc_reply_oneline(const struct smtpc_reply *r, char *buf,
				size_t len);
/* The first word of the reply's first line (the server's name in a
 * greeting or EHLO reply) into buf. */
const char *smtpc_reply_first_word(const struct smtpc_reply *r, char *buf,
				   size_t len);

/* EHLO keywords the client uses. */
enum {
	SMTPC_F_ESMTP = 1 << 0, SMTPC_F_PIPELINING = 1 << 1,
	SMTPC_F_SIZE = 1 << 2, SMTPC_F_8BITMIME = 1 << 3,
	SMTPC_F_DSN = 1 << 4, SMTPC_F_SMTPUTF8 = 1 << 5,
	SMTPC_F_ENHANCED = 1 << 6
};
/* Features of an EHLO reply, and SIZE's limit (0 = none given). */
unsigned smtpc_ehlo_features(const struct smtpc_reply *r, long long *size);
/* Append `value` to buf as RFC 3461 xtext, passing through what is
 * already xtext; false when it does not fit. */
bool smtpc_xtext(char *buf, size_t len, const char *value);

/* ---- a delivery (smtp_client.c) ---- */

/* What a recipient's last soft failure was, while other servers may
 * still take it. */
struct smtpc_rstate {
	char dsn[16];
	char *text;                     /* NULL: not tried yet */
	bool accepted;                  /* RCPT accepted in this session */
	bool sent;                      /* RCPT sent in this session */
	bool answered;                  /* its own failure reply, this session */
};

struct smtpc_delivery;
struct smtpc_conn;

/* How a session ended, for the delivery to go on. */
enum smtpc_end {
	SMTPC_END_OK,                   /* talked; results are set */
	SMTPC_END_SITE_SOFT,            /* this server failed softly: next */
	SMTPC_END_FINAL,                /* a hard failure settled everything */
	SMTPC_END_STALE,                /* a reused connection was dead */
	SMTPC_END_PLAINTEXT             /* TLS handshake failed at level may:
					 * this server again, without TLS */
};

/* Accessors the protocol code uses on its delivery. */
struct delivery_request *smtpc_req(struct smtpc_delivery *d);
const struct smtpc_params *smtpc_par(struct smtpc_delivery *d);
struct smtpc_rstate *smtpc_rs(struct smtpc_delivery *d, int i);
bool smtpc_is_lmtp(struct smtpc_delivery *d);
struct event_base *smtpc_base(struct smtpc_delivery *d);
/* The connection now carries this delivery's mail. */
void smtpc_attach(struct smtpc_delivery *d, struct smtpc_conn *c);
/* A recipient still without a final result (2 or 5, or 4 at the end). */
bool smtpc_rcpt_open(struct smtpc_delivery *d, int i);
/* Results: final now (2, or 5), or soft (kept for the next server). */
void smtpc_rcpt_final(struct smtpc_delivery *d, int i, int status,
		      const char *dsn, const char *text);
void smtpc_rcpt_soft(struct smtpc_delivery *d, int i, const char *dsn,
		     const char *text);
/* The same for every open recipient. */
void smtpc_site_fail(struct smtpc_delivery *d, int status, const char *dsn,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The session has completed its handshake (delays= c ends here). */
void smtpc_session_ready(struct smtpc_delivery *d);
/* The session ended (the connection is no longer the delivery's). */
void smtpc_session_end(struct smtpc_delivery *d, enum smtpc_end how);

/* ---- a connection (smtp_client_proto.c) ---- */
struct smtpc_conn {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *connect_ev;       /* waiting for a non-blocking connect */
	int fd;                         /* until the bufferevent owns it */
	bool lmtp;
	char host[SMTPC_HOST_MAX];      /* the server's name, as routed */
	char addr[SMTPC_ADDR_MAX];      /* numeric address, or a unix path */
	int port;                       /* 0 for a unix socket */
	char namaddr[SMTPC_HOST_MAX + SMTPC_ADDR_MAX + 4];  /* host[addr] */
	char key[300];                  /* pool key: transport + next hop */
	unsigned features;
	long long size_limit;
	struct smtpc_reply reply;
	int state;                      /* enum in smtp_client_proto.c */
	/* the transaction */
	struct smtpc_delivery *d;       /* NULL when idle */
	int *expect;                    /* pipelined replies expected: -1 MAIL,
					 * i >= 0 RCPT of recipient i */
	int nexpect, expect_head;
	int next_rcpt;                  /* next RCPT to send without pipelining */
	int naccepted;
	bool mail_failed;
	int lmtp_next;                  /* next accepted recipient's reply */
	long long body_off;             /* message bytes sent */
	bool body_bol, body_cr;         /* at a line start; last byte CR */
	bool body_done;
	struct mime_dg *dg;             /* 8-bit -> 7-bit conversion, or NULL */
	/* reuse */
	bool reused;
	bool got_reply;                 /* a reply came in this transaction */
	int uses;
	struct timeval t_open;
	struct event *idle_ev;          /* pool: idle or closing timer */
	struct smtpc_conn *pool_next;
	int pool_where;                 /* 0 none, 1 idle, 2 closing */
	const struct smtpc_params *par; /* while carrying a delivery */
	long long quit_timeout;
	bool quit_wait_reply;
	struct smtpc_tls *tls;          /* STARTTLS state (smtp_client_tls.c);
					 * NULL: never tried on this one */
	struct smtpc_sasl *sasl;        /* AUTH state (sasl_client.c), or NULL */
};

/* Connect to addr:port (or the unix path in addr when port is 0) for
 * delivery d; the session runs by itself and ends with
 * smtpc_session_end(). */
void smtpc_conn_start(struct smtpc_delivery *d, const char *host,
		      const char *addr, int port, const char *key);
/* Carry delivery d's mail over an idle cached connection. */
void smtpc_conn_reuse(struct smtpc_conn *c, struct smtpc_delivery *d);
/* Free the connection now (no QUIT). */
void smtpc_conn_free(struct smtpc_conn *c);
/* Send QUIT, then free (by the pool), without a delivery. */
void smtpc_conn_quit(struct smtpc_conn *c);

/* Inside the protocol code (smtp_client_proto.c, smtp_client_txn.c). */
enum smtpc_state {
	SMTPC_CONNECT, SMTPC_GREET, SMTPC_EHLO, SMTPC_HELO, SMTPC_MAIL,
	SMTPC_DATA, SMTPC_BODY, SMTPC_DOT, SMTPC_IDLE, SMTPC_QUIT,
	SMTPC_STARTTLS,                 /* STARTTLS sent, or the handshake */
	SMTPC_AUTH                      /* AUTH sent (sasl_client.c) */
};
/* Queue one command line (CRLF added). */
void smtpc_send(struct smtpc_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Read and write time limits of the stage, in seconds (0: none). */
void smtpc_timeouts(struct smtpc_conn *c, long long rd, long long wr);
/* The session is over: keep the connection for reuse (keep) or say
 * QUIT, then tell the delivery. */
void smtpc_end(struct smtpc_conn *c, enum smtpc_end how, bool keep);
/* The session broke: free the connection, then tell the delivery. */
void smtpc_drop(struct smtpc_conn *c, enum smtpc_end how);
/* A failure of this server that ends the session at once: results for
 * the open recipients (status 4: kept for the next server), then the
 * end, after QUIT when the conversation is still sane (quit). */
void smtpc_fail_site(struct smtpc_conn *c, int status, const char *dsn,
		     const char *text, bool quit);
/* The transaction (smtp_client_txn.c): start it after the handshake or
 * on a reused connection; take one reply (MAIL, RCPT, DATA, end of
 * data), 0 to go on reading or -1 when the connection is gone; go on
 * with the body when the output drained. */
void smtpc_txn_begin(struct smtpc_conn *c);
int smtpc_txn_reply(struct smtpc_conn *c);
void smtpc_txn_body(struct smtpc_conn *c);
/* "host X[ip] said: <the reply in hand on one line>" into buf. */
void smtpc_said(struct smtpc_conn *c, char *buf, size_t len);
/* What the session was doing, for "lost connection with X while ...". */
const char *smtpc_stage_text(const struct smtpc_conn *c);

/* The message body, LF -> CRLF and dot-stuffed (smtp_client_data.c).
 * Fills the connection's output up to a high-water mark; returns 1 when
 * the whole message and the final "." are queued, 0 when more is to
 * come (call again when the output drains), -1 on a read error (errno). */
int smtpc_body_fill(struct smtpc_conn *c, struct delivery_request *req);
/* Convert the content to 7-bit on its way (mime_downgrade.h) when the
 * server does not announce 8BITMIME, unless disable_mime_output_conversion
 * says no; call before the first smtpc_body_fill(). */
void smtpc_body_begin(struct smtpc_conn *c);
/* Drop what the body transfer holds (the conversion state). */
void smtpc_body_end(struct smtpc_conn *c);

/* ---- TLS (smtp_client_tls.c; the OpenSSL side is tls_client.h) ---- */
struct tlsc_policy;
struct config;
/* The destination's TLS policy, the configuration, the next hop's name
 * (no [] or port), and whether this server is being tried again in
 * plaintext after a failed handshake (smtp_client.c). */
const struct tlsc_policy *smtpc_tls_policy(struct smtpc_delivery *d);
const struct config *smtpc_cfg(struct smtpc_delivery *d);
const char *smtpc_nexthop_domain(struct smtpc_delivery *d);
bool smtpc_tls_plaintext(struct smtpc_delivery *d);
/* What the TLS steps tell the protocol code. */
enum { SMTPC_TLS_GO = 0, SMTPC_TLS_WAIT = 1, SMTPC_TLS_GONE = -1 };
/* After the EHLO/HELO reply in hand: GO on with the transaction, WAIT
 * for the STARTTLS reply (sent), or GONE (the session ended). */
int smtpc_tls_after_hello(struct smtpc_conn *c);
/* The reply to STARTTLS; the same answers (WAIT: the handshake runs,
 * then EHLO is sent again). */
int smtpc_tls_reply(struct smtpc_conn *c);
bool smtpc_tls_active(const struct smtpc_conn *c);
void smtpc_tls_free(struct smtpc_conn *c);
/* For smtp_client_tls.c (smtp_client_proto.c): send EHLO/LHLO/HELO
 * again, and put the protocol's callbacks on c->bev (the TLS filter). */
void smtpc_send_hello(struct smtpc_conn *c);
void smtpc_conn_setcb(struct smtpc_conn *c);

/* ---- the pool of idle and closing connections (smtp_client_cache.c) ---- */
/* Keep an idle connection for reuse under c->key. */
void smtpc_pool_keep(struct smtpc_conn *c, const struct smtpc_params *par);
/* Take an idle connection for `key`, or NULL. */
struct smtpc_conn *smtpc_pool_take(const char *key,
				   const struct smtpc_params *par);
/* Track a connection that is saying QUIT; the pool frees it. */
void smtpc_pool_closing(struct smtpc_conn *c);
/* Forget a connection the pool tracks (before freeing it). */
void smtpc_pool_forget(struct smtpc_conn *c);

#endif
