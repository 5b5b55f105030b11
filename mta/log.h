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
#include <stdbool.h>

enum log_dest { LOG_DEST_STDERR, LOG_DEST_SYSLOG, LOG_DEST_FILE };

/* (Re)configure logging for this process.  `service` is the short program
 * name ("smtpd", "master"); `path` is used with LOG_DEST_FILE.  When the
 * file cannot be opened, logging stays where it was and a warning says
 * why (log_dest() tells). */
void log_open(const char *service, enum log_dest dest, const char *path);
/* Change only the program name, e.g. after fork. */
void log_set_service(const char *service);
/* The program name in front of "/service" (syslog_name, "sluice" by
 * default) and the syslog facility by name ("mail", "local0", ...).
 * Takes effect at once.  Returns -1, changing nothing, when the facility
 * is unknown. */
int log_set_syslog(const char *syslog_name, const char *facility);
/* While on, lines sent to syslog or a file are also written to stderr:
 * start-up problems must reach the person who typed the command. */
void log_mirror_stderr(bool on);
/* The destination in use (stderr until log_open() says otherwise). */
enum log_dest log_dest(void);
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
