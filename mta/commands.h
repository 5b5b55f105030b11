/*
 * commands.h - the `sluice COMMAND` entry points, one file each.
 *
 * Each takes the config directory and the arguments after the command
 * name, and returns the process exit status.
 */
#ifndef SLUICE_COMMANDS_H
#define SLUICE_COMMANDS_H

int cmd_run(const char *config_dir, int argc, char **argv);      /* master.c, foreground */
int cmd_start(const char *config_dir, int argc, char **argv);    /* master.c, daemon */
int cmd_stop(const char *config_dir, int argc, char **argv);     /* master_control.c */
int cmd_reload(const char *config_dir, int argc, char **argv);   /* master_control.c */
int cmd_status(const char *config_dir, int argc, char **argv);   /* master_control.c */
int cmd_check(const char *config_dir, int argc, char **argv);    /* check_cmd.c */
int cmd_conf(const char *config_dir, int argc, char **argv);     /* conf_cmd.c */
int cmd_version(const char *config_dir, int argc, char **argv);  /* version_cmd.c */
int cmd_map(const char *config_dir, int argc, char **argv);      /* map_cmd.c */
int cmd_queue(const char *config_dir, int argc, char **argv);    /* queue_cmd.c */
int cmd_explain(const char *config_dir, int argc, char **argv);  /* explain_cmd.c */
int cmd_tls(const char *config_dir, int argc, char **argv);      /* tls_cmd.c */

#endif
