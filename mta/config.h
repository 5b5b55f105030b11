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
/* (Registering a name again for the same owner - a plugin's parameters on
 * reload - updates the definition and returns 0.  The strings are copied.) */

/* The default as the reference shows it: the same as defval except for
 * defaults computed from the machine (myhostname, mydomain), which read
 * as a phrase ("the machine's fully qualified host name"). */
const char *param_default_doc(const struct param_def *p);
/* "string", "boolean", "integer", "time", "size", "list", "lookup table". */
const char *param_type_name(enum param_type t);
/* What a value of this type looks like, for messages:
 * "a size in bytes, e.g. \"10240000\"". */
const char *param_type_hint(enum param_type t);
/* The closest registered name to a misspelt one (case-insensitive match
 * first, then a small edit distance), or NULL. */
const char *param_suggest(const char *name);
/* Is this a path-like parameter whose relative value is taken relative
 * to the configuration directory? */
bool param_is_path(const char *name);
/* Is this a Postfix parameter that has no meaning in sluice at all
 * (installation paths, biff, compatibility_level, ...)?  Such a name in
 * main.cf is a warning, not an unknown-name error, so a Postfix main.cf
 * can be used as it is. */
bool param_postfix_only(const char *name);

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
/* Where `name` was set: the file as messages show it ("conf/main.cf" or
 * "conf/master.cf" for a -o override) and *line; NULL (and *line 0) for a
 * defaulted parameter.  Lets later checks report "file:line: ...". */
const char *cfg_where(const struct config *c, const char *name, int *line);
/* Non-panicking lookups for names that come from outside the core (a
 * plugin asking by name, a restriction class): the expanded value or
 * NULL when the name is unknown; cfg_lookup_number gives 0 and the value
 * of a boolean (1/0), integer, time (seconds) or size parameter, -1 when
 * the name is unknown or not numeric. */
const char *cfg_lookup(const struct config *c, const char *name);
int cfg_lookup_number(const struct config *c, const char *name,
		      long long *value);

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

/* A delivery transport: a master.cf service (of any type but inet) whose
 * command is a delivery agent, as Postfix's
 *   relay     unix  -  -  n  -  -  smtp -o syslog_name=postfix/$service_name
 *   maildrop  unix  -  n  n  -  -  pipe flags=DRXhu user=vmail argv=/usr/bin/maildrop -d ${recipient}
 * The queue manager delivers to it by name (transport_maps, *_transport). */
struct transport {
	char *name;             /* column 1: "smtp", "relay", "maildrop" */
	char *command;          /* column 8: smtp, lmtp, local, virtual, pipe, discard, error */
	char **args;            /* the arguments after the -o options (pipe's
				 * flags=, user=, argv=...), NULL-terminated */
	char *file; int line;   /* where it was declared */
	int maxproc;            /* column 7; 0 for "-" (default_process_limit) */
	struct config *cfg;     /* main.cf + this transport's -o overrides */
};

struct sluice_config {
	char *config_dir;
	struct config *main;
	struct listener *listeners;
	int nlisteners;
	struct transport *transports;
	int ntransports;
	bool qmgr;              /* master.cf has a "qmgr" (or "oqmgr") service:
				 * the master runs the queue manager */
};

/* The transport named `name`, or NULL when master.cf declares none
 * (master_cf.c). */
const struct transport *config_transport(const struct sluice_config *sc,
					 const char *name);
/* Postfix's per-transport parameters, "TRANSPORT" + one of these suffixes
 * ("_destination_concurrency_limit", ...), NULL-terminated: main.cf may
 * set them for any transport master.cf declares (params_qmgr.c). */
extern const char *const transport_param_suffixes[];

/* Read config_dir/main.cf and config_dir/master.cf, register the
 * parameters of the plugins named in sluice_plugins, resolve and check
 * everything.  Problems go to `d`; returns NULL when any is an error. */
struct sluice_config *config_load(const char *config_dir, struct diag *d);
void config_free(struct sluice_config *sc);

/*
 * config_load() is strict: an unknown parameter name, a parameter set
 * twice and an indented "name = value" continuation line are errors, for
 * `sluice check` as for `sluice run` and reload (a misspelt restriction
 * list that is silently ignored can open a relay).  config_load_flags()
 * lets a tool relax that:
 *   CONFIG_LENIENT      those three become warnings (Postfix's reading:
 *                       unknown names ignored, the last setting wins);
 *   CONFIG_BEST_EFFORT  return the configuration even when there are
 *                       errors (bad values read as 0 / empty), so a
 *                       checker can go on to look at paths; still NULL
 *                       when main.cf or master.cf cannot be read.
 */
#define CONFIG_LENIENT          0x1
#define CONFIG_BEST_EFFORT      0x2
struct sluice_config *config_load_flags(const char *config_dir,
					struct diag *d, int flags);

/* The configuration this process works with (set by the master after
 * loading, inherited by workers across fork). */
extern struct sluice_config *sluice_conf;

/* Parsing helpers shared with plugins' values. Return 0 or -1. */
int parse_time(const char *s, char default_unit, long long *secs);
int parse_size(const char *s, long long *bytes);
int parse_bool(const char *s, bool *b);
/* Check a value against a type (after expansion): 0, or -1. */
int param_value_ok(enum param_type t, const char *value);
/* Split a list value: commas and whitespace separate items, a {...}
 * group (with nested braces) stays one item.  As cfg_list. */
char **config_split_list(const char *value);
/* Is this list item a lookup table, "type:name" (a lower-case type)? */
bool config_is_table(const char *item);
/* s without its leading and trailing whitespace, trimmed in place (the
 * end is cut, the start is a pointer into s). */
char *config_trim(char *s);

/* ---- internals shared by config*.c, master_cf.c and the commands ---- */

/* One "name = value" of main.cf (continuation lines joined). */
struct cf_setting {
	char *name;
	char *value;
	int line;               /* first line */
	int last_line;          /* last continuation line */
};

/* main.cf as read: every setting in file order, duplicates included. */
struct cf_file {
	char *path;             /* as shown in messages: "conf/main.cf" */
	struct cf_setting *v;
	int n, cap;
	bool unreadable;        /* could not be opened or read */
};

/* Read and split main.cf.  Syntax problems go to d; an indented
 * "name = value" continuation line is reported at level `lint`.
 * Returns 0, or -1 when the file cannot be read (f->unreadable is set and
 * errno says why; the caller reports it, with the fix that fits). */
int cf_read_main(const char *path, struct cf_file *f, struct diag *d,
		 enum diag_level lint);
/* Logical lines of a Postfix-syntax file (main.cf, master.cf), with
 * continuation lines joined by one space and comment and blank lines
 * dropped.  `continued` (may be NULL) sees each continuation line first,
 * with the start of the logical line it continues.  Over-long lines and
 * NUL bytes are reported to d and skipped.  Returns 0, or -1 with errno
 * set when the file can't be read (the caller says so, with its fix). */
struct cf_reader {
	void (*logical)(const char *text, int first, int last, void *arg);
	void (*continued)(const char *line, int lineno, const char *start,
			  int start_line, void *arg);
	void *arg;
};
int cf_logical_lines(const char *path, struct diag *d,
		     const struct cf_reader *r);
void cf_file_free(struct cf_file *f);
/* The last (winning) setting of name, or NULL. */
const struct cf_setting *cf_last(const struct cf_file *f, const char *name);

/* Physical-line classification used by `sluice conf -e`, with Postfix's
 * rules: blank and comment lines stand alone, a line starting with
 * whitespace continues the previous logical line. */
enum cf_line_kind { CFL_BLANK, CFL_COMMENT, CFL_START, CFL_CONT };
enum cf_line_kind cf_classify_line(const char *line);

/* One parameter while a set is resolved (config_expand.c). */
struct cf_var {
	const char *name;
	const char *raw;        /* before expansion */
	enum param_type type;
	const char *file;       /* where set; NULL for a default */
	int line;
	bool path;              /* relative value -> under base_dir */
	/* filled by cf_expand_all */
	char *value;
	int state;              /* internal */
	bool broken;            /* expansion failed (already reported) */
};

struct cf_vars {
	struct cf_var *v;       /* sorted by name */
	int n;
	const char *base_dir;   /* absolute config directory */
};

/* Expand every variable: $name, ${name}, $(name), $$, ${name?text},
 * ${name:text} and Postfix 3's ${name?{a}:{b}}; recursion with loop
 * detection and depth limits.
 * Problems (undefined names, loops, syntax) go to d at the variable's
 * file:line.  Returns the number of problems reported. */
int cf_expand_all(struct cf_vars *vs, struct diag *d);
/* Names referenced with $ anywhere in s are passed to fn. */
void cf_references(const char *s, void (*fn)(const char *name, size_t len,
					      void *arg), void *arg);
/* Join dir and a relative path, folding "." and ".." (lexically);
 * an absolute path is only normalized.  malloc'ed. */
char *cf_path_join(const char *dir, const char *path);
/* The path of a file in the config directory as the user would type it:
 * "conf/main.cf", "/etc/sluice/main.cf", "main.cf" for ".". malloc'ed. */
char *cf_display_path(const char *config_dir, const char *file);

/* master.cf (master_cf.c).  "inet" services running "smtpd" become
 * listeners, services running a delivery agent become transports
 * (`transport` set, `args` the arguments after the -o options); each
 * keeps its -o overrides until config.c resolves them.  The listener's
 * service, command, file, line and maxproc fields serve both kinds. */
struct cf_override {
	char *name;
	char *value;
	int line;
};

struct cf_service {
	struct listener l;      /* cfg not yet filled */
	struct cf_override *o;
	int no;
	bool transport;         /* a transport, not a listener */
	char **args;            /* transports: NULL-terminated */
};

struct cf_master {
	char *path;
	struct cf_service *v;
	int n, cap;
	bool unreadable;
	bool qmgr;              /* a qmgr service is declared */
};

/* Read master.cf: problems go to d (at level error, or warning for what
 * is only ignored).  Returns 0, or -1 as cf_read_main(). */
int cf_read_master(const char *path, struct cf_master *m, struct diag *d);
void cf_master_free(struct cf_master *m);

#endif
