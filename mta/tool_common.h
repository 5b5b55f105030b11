/*
 * tool_common.h - what the command-line tools share: `sluice queue`,
 * `sendmail` (and mailq, newaliases); `sluice explain` and `sluice
 * reload` load the configuration strictly, as the master does.
 *
 * They read the configuration leniently (a main.cf that `sluice run`
 * would refuse still lets an administrator look at the queue or submit
 * mail) and log, as Postfix's postsuper and sendmail do, to the mail log:
 * maillog_file when set and writable by the user running the tool, else
 * syslog.  What the person at the terminal must see goes to stderr.
 */
#ifndef SLUICE_TOOL_COMMON_H
#define SLUICE_TOOL_COMMON_H

struct sluice_config;

/* Load config_dir leniently.  On failure print the problems, prefixed
 * with `prog` ("sluice: queue", "sendmail"), and return NULL. */
struct sluice_config *tool_load_config(const char *config_dir,
				       const char *prog);
/* Load config_dir strictly, as the master does, printing every problem
 * and warning to stderr: the configuration, or NULL on an error. */
struct sluice_config *tool_load_config_strict(const char *config_dir);
/* Log as sluice/SERVICE (the program name is syslog_name) to the mail
 * log, never to stderr. */
void tool_open_log(const struct sluice_config *sc, const char *service);

#endif
