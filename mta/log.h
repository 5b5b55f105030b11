/*
 * log.h - logging in Postfix's line shape.
 *
 * Every line is "program[pid]: text", where program is "sluice/NAME"
 * (sluice/master, sluice/smtpd, ...).  Lines go to syslog (facility mail),
 * to a file (maillog_file) or to stderr (under `sluice run`), decided once
 * per process by log_open().  Lines about a message start with its queue ID
 * ("6741A3F20A3E5001: client=...") or "NOQUEUE:" before it has one.
 *
 * msg_fatal() logs and exits(1); msg_panic() logs and aborts.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>

enum log_dest { LOG_DEST_STDERR, LOG_DEST_SYSLOG, LOG_DEST_FILE };

/* (Re)configure logging for this process.  `service` is the short program
 * name ("smtpd", "master"); `path` is used with LOG_DEST_FILE. */
void log_open(const char *service, enum log_dest dest, const char *path);
/* Change only the program name, e.g. after fork. */
void log_set_service(const char *service);
int log_verbose_level(void);
void log_set_verbose(int level);

void msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void msg_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* level: 0 error, 1 warning, 2 info, 3 debug (as SLUICE_LOG_*). */
void msg_vlog(int level, const char *fmt, va_list ap);

#endif
