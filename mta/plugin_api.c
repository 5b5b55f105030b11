/*
 * plugin_api.c - the sluice_* functions of plugins/sluice_plugin.h, as the
 * smtpd worker provides them.
 *
 * A sluice_txn is the session itself (struct smtp_session); nothing here
 * keeps a pointer to one beyond the call, except through a filter_ctx
 * anchor, which survives the session (see filter_chain.h).
 *
 * Promises:
 *  - every accessor tolerates the states a session goes through (no HELO
 *    yet, no transaction, no queue file) and answers NULL/0 there;
 *  - edits of headers and recipients are refused (-1, with a warning
 *    naming the plugin) outside the eom stage, and a header whose name or
 *    value would break the message (a colon or a space in the name, a
 *    line break not followed by whitespace in the value) is refused;
 *  - a timer or job callback runs in the context of the hook that started
 *    it, and a timer handle is freed by the core once its callback
 *    returns (or by sluice_timer_cancel before that);
 *  - log lines carry the plugin's name after the queue ID:
 *    "6741A3F20A3E5001: example: text", "NOQUEUE: example: text", or
 *    "example: text" without a session.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <event2/event.h>

#include "config.h"
#include "filter_chain.h"
#include "jobpool.h"
#include "log.h"
#include "mymalloc.h"
#include "plugin_loader.h"
#include "smtp_session.h"
#include "sluice_plugin.h"
#include "version.h"

#define REPLY_TEXT_MAX  450     /* keeps "ddd d.d.d text" within 512 */

static struct smtp_session *session(sluice_txn *t)
{
	return (struct smtp_session *)t;
}

/* The name of the plugin whose code runs now, or NULL. */
static const char *running_plugin(void)
{
	struct loaded_plugin *lp = plugin_at(filter_ctx_current().plugin);

	return lp ? lp->p->name : NULL;
}

/* ---- logging -------------------------------------------------------- */

static int log_level(int level)
{
	return level < SLUICE_LOG_ERR ? 0 : level > SLUICE_LOG_DEBUG ? 3 : level;
}

static void log_line(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void log_line(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msg_vlog(level, fmt, ap);
	va_end(ap);
}

/* Log the plugin's text with the optional queue-ID prefix and the
 * plugin's name, as one line. */
static void plugin_log(const char *queue_prefix, int level, const char *fmt,
		       va_list ap)
{
	const char *name = running_plugin();
	char text[2048];

	if (level >= SLUICE_LOG_DEBUG && log_verbose_level() <= 0)
		return;
	vsnprintf(text, sizeof text, fmt, ap);
	log_line(log_level(level), "%s%s%s%s%s",
		 queue_prefix ? queue_prefix : "", queue_prefix ? ": " : "",
		 name ? name : "", name ? ": " : "", text);
}

void sluice_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	plugin_log(NULL, level, fmt, ap);
	va_end(ap);
}

void sluice_txn_log(sluice_txn *t, int level, const char *fmt, ...)
{
	struct smtp_session *s = session(t);
	va_list ap;

	va_start(ap, fmt);
	plugin_log(s->queue_id[0] ? s->queue_id : "NOQUEUE", level, fmt, ap);
	va_end(ap);
}

/* ---- reply and completion ------------------------------------------- */

void sluice_reply(sluice_txn *t, int code, const char *dsn,
		  const char *fmt, ...)
{
	struct smtp_session *s = session(t);
	char text[REPLY_TEXT_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	/* One reply line: no control characters may reach the client. */
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	s->reply_code = code;
	s->reply_dsn[0] = 0;
	if (dsn && strlen(dsn) < sizeof s->reply_dsn)
		strcpy(s->reply_dsn, dsn);      /* checked by the chain */
	free(s->reply_text);
	s->reply_text = mystrdup(text);
}

void sluice_resume(sluice_txn *t, int verdict)
{
	filter_resume(session(t), verdict);
}

/* ---- per-session plugin state --------------------------------------- */

void *sluice_get_data(sluice_txn *t)
{
	struct smtp_session *s = session(t);
	int i = filter_plugin_for(s);

	return i >= 0 && s->plugin_data ? s->plugin_data[i] : NULL;
}

void sluice_set_data(sluice_txn *t, void *data)
{
	struct smtp_session *s = session(t);
	void **slot = filter_data_slot(s, filter_plugin_for(s));

	if (slot == NULL) {
		msg_warn("plugin %s: sluice_set_data() outside the plugin's hooks "
			 "and callbacks; ignored", running_plugin() ?
			 running_plugin() : "?");
		return;
	}
	*slot = data;
}

/* ---- what the transaction looks like ------------------------------- */

const char *sluice_client_addr(sluice_txn *t)
{
	return session(t)->client_addr;
}

const char *sluice_client_name(sluice_txn *t)
{
	struct smtp_session *s = session(t);

	return s->client_name[0] ? s->client_name : "unknown";
}

int sluice_client_port(sluice_txn *t)
{
	return session(t)->client_port;
}

const char *sluice_helo_name(sluice_txn *t)
{
	return session(t)->helo_name;
}

const char *sluice_sender(sluice_txn *t)
{
	return session(t)->txn.env.sender;
}

const char *sluice_recipient(sluice_txn *t)
{
	return session(t)->txn.cur_rcpt;
}

int sluice_recipient_count(sluice_txn *t)
{
	return session(t)->txn.env.nrcpt;
}

const char *sluice_recipient_at(sluice_txn *t, int i)
{
	struct smtp_session *s = session(t);

	return i >= 0 && i < s->txn.env.nrcpt ? s->txn.env.rcpt[i].addr : NULL;
}

const char *sluice_queue_id(sluice_txn *t)
{
	struct smtp_session *s = session(t);

	return s->queue_id[0] ? s->queue_id : NULL;
}

const char *sluice_listener(sluice_txn *t)
{
	struct smtp_session *s = session(t);

	return s->listener ? s->listener->service : NULL;
}

static const struct config *txn_config(const struct smtp_session *s)
{
	if (s->cfg)
		return s->cfg;
	return sluice_conf ? sluice_conf->main : NULL;
}

/*
 * sluice_attr: the milter macro names Postfix gives its milters, so a
 * plugin hosted by sluice-milterd asks for the same names.  Formatted
 * values live in one buffer, valid until the next call.
 */
static char attr_buf[512];

static const char *attr_printf(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static const char *attr_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(attr_buf, sizeof attr_buf, fmt, ap);
	va_end(ap);
	return attr_buf;
}

static const char *attr_config(const struct smtp_session *s, const char *name)
{
	const struct config *c = txn_config(s);

	return c ? cfg_lookup(c, name) : NULL;
}

const char *sluice_attr(sluice_txn *t, const char *name)
{
	struct smtp_session *s = session(t);

	if (!strcmp(name, "j") || !strcmp(name, "{myhostname}"))
		return attr_config(s, "myhostname");
	if (!strcmp(name, "v"))
		return SLUICE_MAIL_NAME " " SLUICE_VERSION;
	if (!strcmp(name, "_"))
		return attr_printf("%s [%s]", sluice_client_name(t), s->client_addr);
	if (!strcmp(name, "{client_addr}"))
		return s->client_addr;
	if (!strcmp(name, "{client_name}"))
		return sluice_client_name(t);
	if (!strcmp(name, "{client_ptr}"))
		return s->reverse_name[0] ? s->reverse_name : "unknown";
	if (!strcmp(name, "{client_port}"))
		return attr_printf("%d", s->client_port);
	if (!strcmp(name, "{daemon_name}"))
		return sluice_listener(t);
	if (!strcmp(name, "{daemon_addr}") || !strcmp(name, "{if_addr}"))
		return s->server_addr[0] ? s->server_addr : NULL;
	if (!strcmp(name, "{daemon_port}"))
		return attr_printf("%d", s->server_port);
	if (!strcmp(name, "s"))
		return s->helo_name;
	if (!strcmp(name, "protocol") || !strcmp(name, "{protocol}"))
		return s->esmtp ? "ESMTP" : "SMTP";
	if (!strcmp(name, "i") || !strcmp(name, "{queue_id}"))
		return sluice_queue_id(t);
	if (!strcmp(name, "{mail_addr}"))
		return s->txn.env.sender;
	if (!strcmp(name, "{rcpt_addr}"))
		return s->txn.cur_rcpt;
	return NULL;    /* unknown, or not available (AUTH, TLS: later) */
}

/* ---- modifications (eom only) ----------------------------------------- */

/* The session, when edits are allowed now; NULL (and a warning) if not. */
static struct smtp_session *editable(sluice_txn *t, const char *what)
{
	struct smtp_session *s = session(t);
	const char *name = running_plugin();

	if (filter_running_stage(s) == FS_EOM)
		return s;
	msg_warn("plugin %s: %s refused: messages can be changed only while "
		 "the eom stage runs", name ? name : "?", what);
	return NULL;
}

/* RFC 5322 field name: printable US-ASCII except ':'. */
static bool header_name_ok(const char *name)
{
	if (name == NULL || *name == 0 || strlen(name) > 998)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p <= 32 || *p >= 127 || *p == ':')
			return false;
	return true;
}

/*
 * The stored form of a header value: " value" (the session writes
 * "Name:" then the stored value), CRLF turned into LF, and every line
 * break followed by whitespace (a folded header, never a new header).
 * NULL when the value cannot be a header value.
 */
static char *header_value_copy(const char *value)
{
	size_t n = strlen(value);
	char *out = malloc(n + 2), *o = out;

	if (out == NULL)
		msg_fatal("plugin api: out of memory");
	*o++ = ' ';
	for (const char *p = value; *p; p++) {
		if (*p == '\r' && p[1] == '\n')
			continue;
		if (*p == '\r' || (*p == '\n' && p[1] != ' ' && p[1] != '\t')) {
			free(out);
			return NULL;
		}
		*o++ = *p;
	}
	*o = 0;
	return out;
}

static void headers_grow(struct smtp_txn *tx)
{
	if (tx->nhdr < tx->hdr_alloc)
		return;
	tx->hdr_alloc = tx->hdr_alloc ? 2 * tx->hdr_alloc : 16;
	tx->hdr = realloc(tx->hdr, tx->hdr_alloc * sizeof *tx->hdr);
	if (tx->hdr == NULL)
		msg_fatal("plugin api: out of memory");
}

/* Insert a checked header at position pos (0..nhdr). */
static int header_put(struct smtp_session *s, int pos, const char *name,
		      const char *value)
{
	struct smtp_txn *tx = &s->txn;
	char *v;

	if (!header_name_ok(name) || value == NULL
	    || (v = header_value_copy(value)) == NULL) {
		msg_warn("plugin %s: header \"%s\" refused: invalid name or "
			 "value", running_plugin() ? running_plugin() : "?",
			 name ? name : "(null)");
		return -1;
	}
	headers_grow(tx);
	memmove(&tx->hdr[pos + 1], &tx->hdr[pos],
		(size_t)(tx->nhdr - pos) * sizeof *tx->hdr);
	tx->hdr[pos].name = mystrdup(name);
	tx->hdr[pos].value = v;
	tx->nhdr++;
	tx->hdr_modified = true;
	return 0;
}

int sluice_header_add(sluice_txn *t, const char *name, const char *value)
{
	struct smtp_session *s = editable(t, "sluice_header_add");

	return s ? header_put(s, s->txn.nhdr, name, value) : -1;
}

int sluice_header_insert(sluice_txn *t, int pos, const char *name,
			 const char *value)
{
	struct smtp_session *s = editable(t, "sluice_header_insert");

	if (s == NULL || pos < 0)
		return -1;
	return header_put(s, pos > s->txn.nhdr ? s->txn.nhdr : pos, name, value);
}

/* Index in s->txn.hdr of the nth (1-based) header called name, or -1. */
static int header_find(const struct smtp_txn *tx, const char *name, int nth)
{
	for (int i = 0; i < tx->nhdr; i++)
		if (strcasecmp(tx->hdr[i].name, name) == 0 && --nth == 0)
			return i;
	return -1;
}

static void header_remove(struct smtp_txn *tx, int i)
{
	free(tx->hdr[i].name);
	free(tx->hdr[i].value);
	memmove(&tx->hdr[i], &tx->hdr[i + 1],
		(size_t)(tx->nhdr - i - 1) * sizeof *tx->hdr);
	tx->nhdr--;
	tx->hdr_modified = true;
}

int sluice_header_change(sluice_txn *t, const char *name, int nth,
			 const char *value)
{
	struct smtp_session *s = editable(t, "sluice_header_change");
	char *v;
	int i;

	if (s == NULL || nth < 1 || name == NULL)
		return -1;
	if ((i = header_find(&s->txn, name, nth)) < 0)   /* as milters: add */
		return value ? header_put(s, s->txn.nhdr, name, value) : 0;
	if (value == NULL) {
		header_remove(&s->txn, i);
		return 0;
	}
	if ((v = header_value_copy(value)) == NULL) {
		msg_warn("plugin %s: header \"%s\" refused: invalid value",
			 running_plugin() ? running_plugin() : "?", name);
		return -1;
	}
	free(s->txn.hdr[i].value);
	s->txn.hdr[i].value = v;
	s->txn.hdr_modified = true;
	return 0;
}

/* An address as the envelope keeps it: without <>.  NULL if unusable. */
static char *envelope_address(const char *addr)
{
	size_t n;

	if (addr == NULL)
		return NULL;
	n = strlen(addr);
	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>') {
		addr++;
		n -= 2;
	}
	if (n == 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)addr[i] < 0x20 || addr[i] == 0x7f
		    || addr[i] == '<' || addr[i] == '>')
			return NULL;
	return strndup(addr, n);
}

int sluice_rcpt_add(sluice_txn *t, const char *addr)
{
	struct smtp_session *s = editable(t, "sluice_rcpt_add");
	struct smtp_txn *tx;
	struct queue_rcpt *r;
	char *a;

	if (s == NULL)
		return -1;
	if ((a = envelope_address(addr)) == NULL) {
		msg_warn("plugin %s: recipient \"%s\" refused: not an address",
			 running_plugin() ? running_plugin() : "?",
			 addr ? addr : "(null)");
		return -1;
	}
	tx = &s->txn;
	if (tx->env.nrcpt == tx->rcpt_alloc) {
		tx->rcpt_alloc = tx->rcpt_alloc ? 2 * tx->rcpt_alloc : 8;
		tx->env.rcpt = realloc(tx->env.rcpt,
				       tx->rcpt_alloc * sizeof *tx->env.rcpt);
		if (tx->env.rcpt == NULL)
			msg_fatal("plugin api: out of memory");
	}
	r = &tx->env.rcpt[tx->env.nrcpt++];
	memset(r, 0, sizeof *r);
	r->addr = a;
	r->notify = DSN_NOTIFY_NONE;
	r->status = 'P';
	return 0;
}

int sluice_rcpt_delete(sluice_txn *t, const char *addr)
{
	struct smtp_session *s = editable(t, "sluice_rcpt_delete");
	struct queue_envelope *env;
	char *a;
	int kept = 0, removed;

	if (s == NULL || (a = envelope_address(addr)) == NULL)
		return -1;
	env = &s->txn.env;
	for (int i = 0; i < env->nrcpt; i++) {
		if (strcasecmp(env->rcpt[i].addr, a) == 0) {
			free(env->rcpt[i].addr);
			free(env->rcpt[i].orcpt);
			continue;
		}
		env->rcpt[kept++] = env->rcpt[i];
	}
	removed = env->nrcpt - kept;
	env->nrcpt = kept;
	free(a);
	return removed > 0 ? 0 : -1;
}

/* ---- configuration ----------------------------------------------------- */

/* Before a configuration is loaded (unit tests, early init), a parameter
 * reads as its registered default. */
static const char *default_str(const char *name)
{
	const struct param_def *d = param_find(name);

	return d ? d->defval : NULL;
}

static long long default_int(const char *name)
{
	const struct param_def *d = param_find(name);
	long long v = 0;
	bool b;

	if (d == NULL || d->defval == NULL)
		return 0;
	switch (d->type) {
	case PT_BOOL:
		return parse_bool(d->defval, &b) == 0 && b;
	case PT_TIME:
		return parse_time(d->defval, 's', &v) == 0 ? v : 0;
	case PT_SIZE:
		return parse_size(d->defval, &v) == 0 ? v : 0;
	default:
		return strtoll(d->defval, NULL, 10);
	}
}

static const char *config_str(const struct config *c, const char *name)
{
	return c ? cfg_lookup(c, name) : default_str(name);
}

static long long config_int(const struct config *c, const char *name)
{
	long long v;

	if (c == NULL)
		return default_int(name);
	return cfg_lookup_number(c, name, &v) == 0 ? v : 0;
}

const char *sluice_conf_str(const char *name)
{
	return config_str(sluice_conf ? sluice_conf->main : NULL, name);
}

long long sluice_conf_int(const char *name)
{
	return config_int(sluice_conf ? sluice_conf->main : NULL, name);
}

const char *sluice_txn_conf_str(sluice_txn *t, const char *name)
{
	return config_str(txn_config(session(t)), name);
}

long long sluice_txn_conf_int(sluice_txn *t, const char *name)
{
	return config_int(txn_config(session(t)), name);
}

/* ---- timers ----------------------------------------------------------- */

struct sluice_timer {
	struct event *ev;
	sluice_timer_fn fn;
	void *arg;
	struct filter_ctx ctx;      /* the hook (session, plugin) that started it */
	bool firing;                /* the callback runs: freed when it returns */
};

static void timer_free(struct sluice_timer *tm)
{
	event_free(tm->ev);
	filter_ctx_release(&tm->ctx);
	free(tm);
}

static void timer_fire(evutil_socket_t fd, short what, void *arg)
{
	struct sluice_timer *tm = arg;
	struct filter_ctx previous;

	tm->firing = true;
	previous = filter_ctx_enter(tm->ctx);
	tm->fn(tm->arg);
	filter_ctx_leave(previous);
	timer_free(tm);
}

/* The loop timers run in: the worker's, or the session's. */
static struct event_base *timer_base(void)
{
	struct smtp_session *s = filter_ctx_session(filter_ctx_current());

	if (filter_event_base())
		return filter_event_base();
	return s ? s->base : NULL;
}

sluice_timer *sluice_timer_start(unsigned msec, sluice_timer_fn fn, void *arg)
{
	struct event_base *base = timer_base();
	struct timeval tv = { msec / 1000, (msec % 1000) * 1000 };
	struct sluice_timer *tm;

	if (base == NULL || fn == NULL) {
		msg_error("plugin %s: sluice_timer_start(): %s",
			  running_plugin() ? running_plugin() : "?",
			  fn ? "no event loop in this process" : "no callback");
		return NULL;
	}
	if ((tm = calloc(1, sizeof *tm)) == NULL
	    || (tm->ev = evtimer_new(base, timer_fire, tm)) == NULL)
		msg_fatal("plugin api: out of memory");
	tm->fn = fn;
	tm->arg = arg;
	tm->ctx = filter_ctx_current();
	filter_ctx_hold(&tm->ctx);
	/* The loop's cached time may be stale after a long callback: a
	 * plugin's "wait N ms" means N ms from now. */
	event_base_update_cache_time(base);
	evtimer_add(tm->ev, &tv);
	return tm;
}

void sluice_timer_cancel(sluice_timer *tm)
{
	if (tm == NULL || tm->firing)
		return;             /* a firing timer is freed when it returns */
	timer_free(tm);
}

/* ---- thread-pool jobs ------------------------------------------------- */

struct plugin_job {
	void (*work)(void *arg);
	void (*done)(void *arg);
	void *arg;
	struct filter_ctx ctx;      /* touched in the event loop only */
};

static void job_work(void *arg)
{
	struct plugin_job *j = arg;

	j->work(j->arg);
}

static void job_done(void *arg)
{
	struct plugin_job *j = arg;
	struct filter_ctx previous;

	if (j->done) {
		previous = filter_ctx_enter(j->ctx);
		j->done(j->arg);
		filter_ctx_leave(previous);
	}
	filter_ctx_release(&j->ctx);
	free(j);
}

int sluice_job_submit(void (*work)(void *arg), void (*done)(void *arg),
		      void *arg)
{
	struct plugin_job *j;

	if (work == NULL || (j = calloc(1, sizeof *j)) == NULL)
		return -1;
	j->work = work;
	j->done = done;
	j->arg = arg;
	j->ctx = filter_ctx_current();
	filter_ctx_hold(&j->ctx);
	if (jobpool_submit(job_work, job_done, j) < 0) {
		filter_ctx_release(&j->ctx);
		free(j);
		return -1;
	}
	return 0;
}

/* ---- declining content ------------------------------------------------------ */

void sluice_no_content(void)
{
	struct loaded_plugin *lp = plugin_in_init();

	if (lp == NULL) {
		const char *name = running_plugin();

		msg_warn("plugin %s: sluice_no_content() called outside "
			 "init(); ignored", name ? name : "?");
		return;
	}
	lp->no_content = true;
}

/* ---- memory ---------------------------------------------------------------- */

void *sluice_calloc(size_t n)
{
	return mycalloc(n);
}

char *sluice_strdup(const char *s)
{
	return mystrdup(s);
}

/* ---- lists -------------------------------------------------------------------- */

/* The core's own list splitter (config_split_list: commas and whitespace
 * separate, a {...} group stays one item), so a plugin reads a list
 * parameter exactly as the core reads its own. */
char **sluice_split_list(const char *value)
{
	char **v = config_split_list(value ? value : "");

	if (v == NULL)
		msg_fatal("plugin api: out of memory splitting a list");
	return v;
}

void sluice_list_free(char **list)
{
	cfg_list_free(list);
}
