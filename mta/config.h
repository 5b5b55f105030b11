/*
 * config.h - sluice's configuration: main.cf parameters and master.cf
 * listeners, Postfix syntax and names.
 *
 * One parameter registry (param_table.c) is the single source of every
 * parameter's name, type, default and description: the parser, `sluice
 * conf -d`, `sluice check` and docs/parameters.md all come from it.
 * Plugins add their own parameters to it before the configuration is read.
 *
 * A `struct config` is one fully resolved parameter set ($name expanded,
 * values typed and checked).  The main one comes from main.cf; each
 * listener of master.cf has its own, made from main.cf plus its
 * `-o name=value` overrides, so two listeners can differ in any parameter.
 * A config is immutable once loaded; reload builds a new one.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stdbool.h>
#include "diag.h"

enum param_type {
	PT_STRING = 0, PT_BOOL, PT_INT, PT_TIME, PT_SIZE, PT_LIST, PT_MAP
};   /* same numbering as enum sluice_param_type */

struct param_def {
	const char *name;
	enum param_type type;
	const char *defval;     /* may contain $name, as Postfix's defaults do */
	const char *desc;       /* one line */
	const char *owner;      /* NULL for the core, else the plugin's name */
};

/* ---- registry (param_table.c) ---- */
int param_count(void);
const struct param_def *param_at(int i);          /* sorted by name */
const struct param_def *param_find(const char *name);   /* exact; NULL */
/* The registered name that differs only in case, or NULL. */
const struct param_def *param_find_nocase(const char *name);
/* Register a plugin parameter; returns 0, or -1 if the name is taken. */
int param_register(const struct param_def *def);

/* ---- one resolved parameter set ---- */
struct config;

/* Lookups by name.  An unknown name is a programming error (msg_panic),
 * so typos in the core are caught by the tests. */
const char *cfg_str(const struct config *c, const char *name);
bool cfg_bool(const struct config *c, const char *name);
long long cfg_int(const struct config *c, const char *name);
long long cfg_time(const struct config *c, const char *name);  /* seconds */
long long cfg_size(const struct config *c, const char *name);  /* bytes */
/* Split a list value on commas and whitespace; returns a NULL-terminated
 * malloc'ed array of malloc'ed strings (free with cfg_list_free). */
char **cfg_list(const struct config *c, const char *name);
void cfg_list_free(char **list);
/* Is `name` set explicitly (main.cf or -o) rather than defaulted? */
bool cfg_is_set(const struct config *c, const char *name);

/* ---- the whole configuration ---- */
enum listener_kind { LISTEN_INET, LISTEN_UNIX };

struct listener {
	char *service;          /* master.cf column 1: "smtp", "submission", "127.0.0.1:2525" */
	enum listener_kind kind;
	char *host;             /* NULL or "" = all addresses (inet_interfaces) */
	char *port;             /* numeric or a service name ("smtp" -> 25) */
	char *command;          /* column 8: "smtpd" */
	char *file; int line;   /* where it was declared */
	struct config *cfg;     /* main.cf + this listener's -o overrides */
	int maxproc;            /* column 7, parsed; informational */
	int fd;                 /* listening socket, opened by the master; -1 */
};

struct sluice_config {
	char *config_dir;
	struct config *main;
	struct listener *listeners;
	int nlisteners;
};

/* Read config_dir/main.cf and config_dir/master.cf, register the
 * parameters of the plugins named in sluice_plugins, resolve and check
 * everything.  Problems go to `d`; returns NULL when any is an error. */
struct sluice_config *config_load(const char *config_dir, struct diag *d);
void config_free(struct sluice_config *sc);

/* The configuration this process works with (set by the master after
 * loading, inherited by workers across fork). */
extern struct sluice_config *sluice_conf;

/* Parsing helpers shared with plugins' values. Return 0 or -1. */
int parse_time(const char *s, char default_unit, long long *secs);
int parse_size(const char *s, long long *bytes);
int parse_bool(const char *s, bool *b);

#endif
