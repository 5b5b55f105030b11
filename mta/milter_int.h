/*
 * milter_int.h - internal interfaces of the milter client, shared by
 * milter.c (the list of milters, stage dispatch), milter8.c (the protocol
 * state machine of one milter connection), milter_macros.c (macro values)
 * and milter_edit.c (end-of-message content and modifications).  Nothing
 * else includes it; the core's interface is milter.h.
 *
 * One `struct milter8` is one connection to one milter for one SMTP
 * session (as Postfix: a connection per session), driven in the worker's
 * event loop with a non-blocking socket.  Every wait has a deadline (the
 * connect, command or content timeout); SMFIR_PROGRESS restarts it.
 */
#ifndef SLUICE_MILTER_INT_H
#define SLUICE_MILTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "milter.h"

struct event_base;
struct bufferevent;
struct event;
struct evbuffer;
struct smtp_session;
struct config;

/* milter_default_action */
enum milter_def_action { MDA_ACCEPT, MDA_REJECT, MDA_TEMPFAIL, MDA_QUARANTINE };

/* One entry of smtpd_milters / non_smtpd_milters, parsed. */
struct milter_conf {
	char *name;                 /* "inet:127.0.0.1:8891", "unix:/path" */
	long long conn_timeout, cmd_timeout, content_timeout;   /* seconds */
	enum milter_def_action def_action;
	int protocol;               /* milter_protocol: 2..6 */
};

/* Parse a list value; NULL when empty.  Errors are logged and the bad
 * entry is skipped (sluice check reports them through milter_check()). */
struct milter_conf *milter_conf_parse(const struct config *c,
				      const char *param, int *n);
void milter_conf_free(struct milter_conf *mc, int n);

enum m8_state {
	M8_CLOSED,          /* not connected yet */
	M8_OPENING,         /* connecting or negotiating */
	M8_READY,           /* talking */
	M8_ACCEPT_CONN,     /* accepted the session: no more events */
	M8_ACCEPT_MSG,      /* accepted this message: none until the next */
	M8_REJECT_CONN,     /* rejected or tempfailed the connect or HELO:
			     * its reply answers MAIL, RCPT, DATA and unknown
			     * commands for the rest of the session (Postfix's
			     * MILTER8_STAT_REJECT_CON) */
	M8_ERROR,           /* failed; its default action applies */
	M8_DONE             /* closed on purpose (quit), or disabled */
};

/* Macro lists by SMFIM_* index (connect, helo, envfrom, envrcpt, data,
 * eom, eoh). */
#define M8_NMACRO_LISTS 7

/* A reply (cmd is the SMFIR_* letter) or a failure (cmd -1; the
 * connection is closed and the warning logged). */
typedef void (*milter8_fn)(struct milter8 *m, int cmd, const char *data,
			   size_t len, void *arg);

struct milter8 {
	const struct milter_conf *conf;
	struct event_base *base;
	struct bufferevent *bev;
	struct event *timer;
	enum m8_state state;
	uint32_t version, actions, pflags;  /* negotiated */
	char *macros[M8_NMACRO_LISTS];      /* lists the milter asked for */
	bool in_message;                    /* MAIL sent, no eom/abort yet */
	/* M8_REJECT_CONN: the reply that persists */
	int rej_code; char rej_dsn[16]; char *rej_text;
	/* the wait in progress */
	milter8_fn fn;
	void *arg;
	const char *waiting_for;            /* "SMFIC_RCPT", for warnings */
	long long timeout;
	/* negotiation */
	milter8_fn open_fn;
	void *open_arg;
};

struct milter8 *milter8_create(const struct milter_conf *conf,
			       struct event_base *base);
/* Send SMFIC_QUIT when connected, close, free. */
void milter8_free(struct milter8 *m);
/* Connect and negotiate; fn gets SMFIC_OPTNEG, or -1. */
void milter8_open(struct milter8 *m, milter8_fn fn, void *arg);
/* Queue one packet; no reply is read. */
void milter8_send(struct milter8 *m, int cmd, const void *data, size_t len);
/* Wait for the next reply packet (PROGRESS restarts the deadline). */
void milter8_expect(struct milter8 *m, const char *what, long long timeout,
		    milter8_fn fn, void *arg);
/* Close with a failure already logged by the caller: state M8_ERROR. */
void milter8_fail(struct milter8 *m);
/* The SMFIC_* name of a command letter, for warnings. */
const char *milter8_cmd_name(int cmd);

/* ---- macros (milter_macros.c) ---- */
/* Send the SMFIC_MACRO packet for event `cmd` (SMFIC_CONNECT...), with
 * the configured list for the stage plus what the milter asked for. */
void milter_send_macros(struct milter8 *m, struct smtp_session *s, int cmd);
/* The value of one macro for s, or NULL when it has none. */
const char *milter_macro_value(struct smtp_session *s, const char *name);

/* ---- the per-session list (milter.c) ---- */
/* Milter events beyond the filter stages (enum filter_stage): an unknown
 * SMTP command (SMFIC_UNKNOWN), and a recipient the restrictions
 * rejected (SMFIC_RCPT to milters that asked for SMFIP_RCPT_REJ). */
#define MS_UNKNOWN  7
#define MS_RCPT_REJ 8
struct milter_session {
	struct smtp_session *s;
	struct milter_conf *conf; int n;
	struct milter8 **m;
	int cur;                    /* milter asked now */
	int stage;                  /* enum filter_stage */
	milter_done_fn done;
	bool running;
	char *unknown_cmd;          /* MS_UNKNOWN: the command's verb */
	const char *rej_reply;      /* MS_RCPT_REJ: "550 5.7.1 text" */
	/* the client's ESMTP parameters of MAIL and of the RCPT being
	 * asked, as it sent them (SMFIC_MAIL / SMFIC_RCPT arguments) */
	char **mail_args; int nmail_args;
	char **rcpt_args; int nrcpt_args;
	/* end of message (milter_edit.c) */
	int hdr;                    /* header being sent */
	long long body_off;         /* body offset being sent */
	bool skip_body;
	struct evbuffer *new_body;  /* body replaced by a milter (LF ends) */
	struct evbuffer *repl;      /* SMFIR_REPLBODY chunks of this milter */
	bool body_replaced;
	char *chunk;
};

/* The end-of-message exchange with milter i (milter_edit.c): headers,
 * eoh, body, eom, modifications.  Ends with milter_eom_reply(). */
void milter_eom_start(struct milter_session *ms);
/* The final verdict of the current milter's eom exchange (milter.c). */
void milter_stage_reply(struct milter_session *ms, int cmd,
			const char *data, size_t len);
/* Apply the default action of milter ms->cur after a failure. */
void milter_stage_failed(struct milter_session *ms);

#endif
