/*
 * smtp_session.h - one SMTP server session (RFC 5321 + ESMTP extensions).
 *
 * A session lives in one worker's event loop.  It reads commands from a
 * bufferevent, answers them (replies to pipelined commands go out in one
 * write), asks the filter chain (plugins, later restrictions, milters and
 * policy services) at every stage, streams DATA/BDAT content into a queue
 * file, and answers 250 only when queue_commit() says the message is on
 * stable storage.
 *
 * While a filter is pending the session stops reading input (what the
 * client already sent stays buffered) and resumes when the verdict comes.
 *
 * This struct is the core's; plugins see it only as the opaque sluice_txn
 * through plugin_api.c.
 */
#ifndef SLUICE_SMTP_SESSION_H
#define SLUICE_SMTP_SESSION_H

#include <stdbool.h>
#include <sys/socket.h>
#include "queue.h"

struct event_base;
struct bufferevent;
struct event;
struct listener;
struct config;
struct filter_run;

enum smtp_state {
	SS_GREETING,    /* banner not yet sent (connect filters pending) */
	SS_COMMAND,     /* reading commands */
	SS_DATA,        /* reading DATA content */
	SS_BDAT,        /* reading a BDAT chunk */
	SS_FILTER,      /* waiting on a filter verdict */
	SS_COMMIT,      /* waiting for the queue commit */
	SS_CLOSING      /* output drains, then free */
};

/* Command counters for the "disconnect from" line. */
enum smtp_cmd_id {
	CMD_HELO, CMD_EHLO, CMD_MAIL, CMD_RCPT, CMD_DATA, CMD_BDAT, CMD_RSET,
	CMD_NOOP, CMD_QUIT, CMD_VRFY, CMD_HELP, CMD_STARTTLS, CMD_AUTH,
	CMD_ETRN, CMD_UNKNOWN, CMD__COUNT
};

struct smtp_limits {            /* copied from the listener's config at connect */
	long long message_size_limit, header_size_limit, line_length_limit;
	long long recipient_limit, timeout, error_sleep_time;
	long long soft_error_limit, hard_error_limit, junk_command_limit;
	bool forbid_bare_newline, strict_rfc821_envelopes, disable_vrfy;
	bool helo_required;
};

struct smtp_txn {               /* one mail transaction (MAIL .. end of DATA) */
	bool active;                /* MAIL accepted */
	struct queue_envelope env;  /* sender, recipients, DSN, ... */
	int rcpt_alloc;
	const char *cur_rcpt;       /* RCPT being checked by filters */
	void *cur_rcpt_ctx;         /* its parameters, until the verdict */
	struct queue_file *qf;      /* open while content is received */
	long long declared_size;
	bool discard, hold;         /* filter decisions for this message */
	bool discard_logged, hold_logged;   /* the restriction engine logged
					     * its DISCARD / HOLD action */
	char *hold_reason;
	/* headers of the received message, for header hooks and eom edits */
	struct smtp_header { char *name; char *value; } *hdr; int nhdr, hdr_alloc;
	bool hdr_modified;
	bool bdat_used;             /* BDAT started: DATA no longer allowed */
	bool content_error;         /* message rejected during content (size...) */
	int content_err_code; char content_err_text[128];
	/* access(5) actions of the restriction lists, applied to the
	 * message (restriction_eval.c records them, smtp_data.c applies
	 * them): PREPEND headers go on top of the message, REDIRECT
	 * replaces the recipients, BCC adds recipients; FILTER is
	 * env.filter, HOLD and DISCARD the flags above. */
	char **prepend; int nprepend;
	char *redirect;
	char **bcc; int nbcc;
};

struct smtp_session {
	struct event_base *base;
	struct bufferevent *bev;
	const struct listener *listener;
	const struct config *cfg;       /* the listener's resolved config */
	struct smtp_limits lim;
	enum smtp_state state;

	char client_addr[64];       /* numeric, no brackets */
	char client_id[330];        /* "name[addr]" for logs */
	char client_name[256];      /* "unknown" until a verified name exists */
	char reverse_name[256];
	int client_port;
	char server_addr[64]; int server_port;
	char *helo_name;
	bool esmtp;                 /* EHLO seen: protocol ESMTP */
	/* SMTP AUTH (filled by the AUTH command once it exists; NULL until
	 * then): mechanism, login name, and the MAIL AUTH= sender */
	char *sasl_method, *sasl_username, *sasl_sender;
	struct smtp_auth *auth;         /* the AUTH exchange (smtp_auth.c) */
	struct rcheck_state *rstate;    /* restriction engine, per session */

	struct smtp_txn txn;
	char queue_id[QUEUE_ID_MAX];    /* of the current transaction, or "" */

	/* counters */
	int errors;                 /* soft/hard error counting */
	int junk;                   /* junk commands */
	int cmd_count[CMD__COUNT], cmd_total;
	int cmd_bad[CMD__COUNT];    /* commands answered with an error */
	enum smtp_cmd_id cur_cmd;   /* command whose reply is being produced */

	/* BDAT */
	long long bdat_remaining; bool bdat_last;

	/* filter chain state */
	struct filter_run *frun;
	void **plugin_data;         /* one slot per loaded plugin */
	int cur_plugin;             /* plugin whose hook is running, for set_data */
	int reply_code; char reply_dsn[16]; char *reply_text;   /* set by a filter */

	struct event *tarpit;       /* smtpd_error_sleep_time delay */
	struct event *resume_ev;    /* re-process buffered input after a wait */
	struct evbuffer *out;       /* replies not yet handed to the socket */
	bool paused;                /* input processing suspended */
	bool tarpitting;            /* replies held until the tarpit timer */
	bool closing;               /* close once `out` has drained */
	bool dead;                  /* connection gone; free when safe */
	bool reject_all;            /* connect filter rejected: answer every command */
	char *reject_all_reply;
	const char *last_cmd;       /* for "timeout after X" / "lost connection after X" */
	bool anvil_counted;
	/* DISCARD/HOLD decided at connect or HELO apply to every message of
	 * the session (as a milter's); copied into each new transaction. */
	bool discard_all, hold_all;
	char *hold_all_reason;
	struct peer_lookup *peer_lookup;   /* client name lookup in flight */
	bool bare_lf_excluded;      /* client in smtpd_forbid_bare_newline_exclusions */
	bool forbid_unauth_pipelining;
	bool pipelining_offered;    /* EHLO advertised PIPELINING */
	bool ill_pipelining;        /* the client sent ahead where it must
				     * not (reject_unauth_pipelining) */
	/* DATA/BDAT content parsing */
	struct content_state {
		bool in_headers;        /* still reading the header block */
		bool mid_line;          /* previous chunk ended inside a line */
		bool skip;              /* discarding (size exceeded, write error) */
		bool pending_cr;        /* BDAT: a CR waiting for a possible LF */
		long long hdr_bytes;
		char *hline; size_t hlen, halloc;   /* header being collected */
		char *message_id;
	} content;
	char *received_for;         /* single recipient for Received: ... for <x> */
	/* TLS (tls_server.c, smtp_starttls.c).  `tls` is NULL in plaintext;
	 * once a handshake completed it says what the policy protocol and
	 * milters need (struct tls_info, tls_common.h): tls->protocol
	 * ("TLSv1.3"), tls->cipher, tls->cipher_bits and alg_bits,
	 * tls->peer_cert / peer_trusted, tls->peer_CN, peer_subject,
	 * peer_issuer, issuer_CN, peer_cert_fprint and peer_pkey_fprint
	 * (smtpd_tls_fingerprint_digest). */
	struct tls_info *tls;
	struct ssl_st *ssl;         /* the session's SSL, owned by s->bev */
	bool tls_handshaking;       /* a handshake is running: input paused */
	bool tls_wrapper;           /* smtpd_tls_wrappermode: TLS at connect */
	bool tls_linger;            /* closing: waiting for the socket to drain */
	struct event *tls_timer;    /* smtpd_starttls_timeout */
};

/* Start a session on an accepted socket.  Takes ownership of fd. */
void smtp_session_start(struct event_base *base, int fd,
			const struct sockaddr *peer, socklen_t peerlen,
			const struct listener *l);
/* The queue directory as this process reaches it: the worker enters it
 * before dropping privileges and sets "." (default: queue_directory). */
void smtp_set_queue_dir(const char *dir);
const char *smtp_queue_dir(const struct smtp_session *s);
/* Number of sessions alive in this process (for graceful shutdown). */
int smtp_session_count(void);

#endif
