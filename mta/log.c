/*
 * log.c - logging in Postfix's line shape, to stderr, syslog or a file.
 *
 * A line reads "PROGRAM/SERVICE[pid]: text" (sluice/smtpd[4711]: connect
 * from ...).  Written to stderr or to maillog_file it is preceded by
 * "Mon DD HH:MM:SS host ", as a syslog daemon writes it, so the tools that
 * read mail logs (pflogsumm, log exporters) read sluice's unchanged.
 * Errors, warnings, fatal errors and panics carry Postfix's "error: ",
 * "warning: ", "fatal: " and "panic: " in front of the text.
 *
 * The promises:
 *  - each line leaves in ONE write(2), on a descriptor opened with
 *    O_APPEND, so any number of processes and threads can share stderr
 *    or the file without lines mixing;
 *  - a line is always one line: control characters in the text become
 *    '?', and text longer than LOG_TEXT_MAX is cut, ending in "...";
 *  - errno is the same after a msg_*() call as before it.
 *
 * The destination is set per process (log_open() and friends, called
 * before threads start); writing a line changes no state, so msg_*() may
 * be called from any thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_TEXT_MAX	2048	/* of the message text itself */
#define LOG_LINE_MAX	(LOG_TEXT_MAX + 256)	/* with stamp, host, ident */

enum { LVL_ERROR = 0, LVL_WARN, LVL_INFO, LVL_DEBUG, LVL_FATAL, LVL_PANIC };

static struct log_state {
	enum log_dest dest;
	int fd;			/* maillog_file with LOG_DEST_FILE, else -1 */
	bool mirror;		/* also to stderr (start-up) */
	int facility;
	int verbose;
	char program[64];	/* syslog_name: "sluice" */
	char service[64];	/* "master", "smtpd" */
	char ident[132];	/* "sluice/smtpd"; openlog() keeps a pointer */
	char host[64];		/* short host name for the file prefix */
} log_state = {
	.dest = LOG_DEST_STDERR, .fd = -1, .facility = LOG_MAIL,
	.program = "sluice", .ident = "sluice",
};

static const struct {
	const char *name;
	int code;
} facilities[] = {
	{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "auth", LOG_AUTH }, { "authpriv", LOG_AUTHPRIV },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

/* ---- configuration ------------------------------------------------- */

static void update_ident(void)
{
	if (log_state.service[0])
		snprintf(log_state.ident, sizeof log_state.ident, "%s/%s",
			 log_state.program, log_state.service);
	else
		snprintf(log_state.ident, sizeof log_state.ident, "%s",
			 log_state.program);
}

static void syslog_reopen(void)
{
	closelog();
	openlog(log_state.ident, LOG_PID | LOG_NDELAY, log_state.facility);
}

static void learn_host_name(void)
{
	char *dot;

	if (gethostname(log_state.host, sizeof log_state.host) < 0
	    || log_state.host[0] == 0)
		snprintf(log_state.host, sizeof log_state.host, "localhost");
	log_state.host[sizeof log_state.host - 1] = 0;
	if ((dot = strchr(log_state.host, '.')) != NULL)
		*dot = 0;		/* syslog shows the short name */
}

static void close_file(void)
{
	if (log_state.fd >= 0)
		close(log_state.fd);
	log_state.fd = -1;
}

void log_open(const char *service, enum log_dest dest, const char *path)
{
	int fd = -1;

	tzset();		/* read the zone once, before any chroot/setuid */
	learn_host_name();
	if (dest == LOG_DEST_FILE) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0) {
			msg_warn("cannot open maillog_file %s: %s", path,
				 strerror(errno));
			return;		/* keep logging where we did */
		}
	}
	close_file();
	log_state.fd = fd;
	if (log_state.dest == LOG_DEST_SYSLOG && dest != LOG_DEST_SYSLOG)
		closelog();
	log_state.dest = dest;
	snprintf(log_state.service, sizeof log_state.service, "%s", service);
	update_ident();
	if (dest == LOG_DEST_SYSLOG)
		syslog_reopen();
}

void log_set_service(const char *service)
{
	snprintf(log_state.service, sizeof log_state.service, "%s", service);
	update_ident();
	if (log_state.dest == LOG_DEST_SYSLOG)
		syslog_reopen();
}

int log_set_syslog(const char *syslog_name, const char *facility)
{
	size_t i;

	for (i = 0; i < sizeof facilities / sizeof facilities[0]; i++)
		if (strcasecmp(facility, facilities[i].name) == 0)
			break;
	if (i == sizeof facilities / sizeof facilities[0])
		return -1;
	log_state.facility = facilities[i].code;
	if (syslog_name != NULL && *syslog_name != 0)
		snprintf(log_state.program, sizeof log_state.program, "%s",
			 syslog_name);
	update_ident();
	if (log_state.dest == LOG_DEST_SYSLOG)
		syslog_reopen();
	return 0;
}

void log_mirror_stderr(bool on)
{
	log_state.mirror = on;
}

enum log_dest log_dest(void)
{
	return log_state.dest;
}

int log_verbose_level(void)
{
	return log_state.verbose;
}

void log_set_verbose(int level)
{
	log_state.verbose = level;
}

/* ---- writing one line ---------------------------------------------- */

static const char *level_label(int level)
{
	switch (level) {
	case LVL_ERROR: return "error: ";
	case LVL_WARN: return "warning: ";
	case LVL_FATAL: return "fatal: ";
	case LVL_PANIC: return "panic: ";
	default: return "";
	}
}

static int syslog_priority(int level)
{
	switch (level) {
	case LVL_ERROR: return LOG_ERR;
	case LVL_WARN: return LOG_WARNING;
	case LVL_DEBUG: return LOG_DEBUG;
	case LVL_FATAL: return LOG_CRIT;
	case LVL_PANIC: return LOG_CRIT;
	default: return LOG_INFO;
	}
}

/* Format the text, cut it to size and make it printable. */
static void format_text(char *buf, size_t size, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf, size, fmt, ap);
	unsigned char *p;

	if (n < 0)
		snprintf(buf, size, "(unformattable log message: %s)", fmt);
	else if ((size_t)n >= size)
		memcpy(buf + size - 4, "...", 4);
	for (p = (unsigned char *)buf; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* Write all of buf; a regular file or a pipe takes it in one write. */
static void write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;		/* nowhere left to complain */
		buf += n;
		len -= (size_t)n;
	}
}

/* "Mar  5 12:00:01 host sluice/smtpd[4711]: warning: text\n" */
static void write_file_line(int fd, int level, const char *text)
{
	char line[LOG_LINE_MAX];
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	int n;

	if (log_state.host[0] == 0)
		learn_host_name();	/* log_open() was never called */
	if (localtime_r(&now, &tm) == NULL
	    || strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm) == 0)
		snprintf(stamp, sizeof stamp, "%lld", (long long)now);
	n = snprintf(line, sizeof line, "%s %s %s[%ld]: %s%s\n", stamp,
		     log_state.host, log_state.ident, (long)getpid(),
		     level_label(level), text);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line) {
		n = sizeof line - 1;
		line[n - 1] = '\n';
	}
	write_all(fd, line, (size_t)n);
}

static void emit(int level, const char *fmt, va_list ap)
{
	char text[LOG_TEXT_MAX];
	int saved_errno = errno;

	format_text(text, sizeof text, fmt, ap);
	switch (log_state.dest) {
	case LOG_DEST_SYSLOG:
		syslog(syslog_priority(level), "%s%s", level_label(level), text);
		break;
	case LOG_DEST_FILE:
		write_file_line(log_state.fd, level, text);
		break;
	case LOG_DEST_STDERR:
		write_file_line(STDERR_FILENO, level, text);
		break;
	}
	if (log_state.mirror && log_state.dest != LOG_DEST_STDERR)
		write_file_line(STDERR_FILENO, level, text);
	errno = saved_errno;
}

/* ---- the msg_*() family -------------------------------------------- */

void msg_vlog(int level, const char *fmt, va_list ap)
{
	if (level < LVL_ERROR || level > LVL_DEBUG)
		level = LVL_INFO;
	if (level == LVL_DEBUG && log_state.verbose <= 0)
		return;
	emit(level, fmt, ap);
}

#define DEFINE_MSG(fn, level) \
void fn(const char *fmt, ...) \
{ \
	va_list ap; \
	va_start(ap, fmt); \
	msg_vlog(level, fmt, ap); \
	va_end(ap); \
}

DEFINE_MSG(msg_error, LVL_ERROR)
DEFINE_MSG(msg_warn, LVL_WARN)
DEFINE_MSG(msg_info, LVL_INFO)
DEFINE_MSG(msg_debug, LVL_DEBUG)

void msg_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(LVL_FATAL, fmt, ap);
	va_end(ap);
	exit(1);
}

void msg_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(LVL_PANIC, fmt, ap);
	va_end(ap);
	abort();
}
