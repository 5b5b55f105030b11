/*
 * maildrop.h - maildrop files: how `sendmail`, running as any local user,
 * hands a message to the queue manager's pickup (pickup.c), also while
 * the daemon is down.
 *
 * queue_directory/maildrop/ has mode 1733 (anyone may create a file,
 * nobody but its owner may list it, the sticky bit keeps users off each
 * other's files).  A file is named by the time and 64 random bits
 * (MAILDROP_NAME_LEN hex digits), created with mode 0644, and marked
 * complete by adding the owner execute bit once written and synced, as
 * queue files are.  docs/queue-tools.md describes the format:
 *
 *	"sluice-maildrop 1 " + content length (20 digits) + LF
 *	the message: LF line ends, no dot-stuffing, any bytes
 *	"sender ADDR" LF (no value for the null sender)
 *	"fullname TEXT" LF (optional)
 *	"rcpt ADDR" LF (one or more)
 *	"end" LF, the last bytes of the file
 *
 * Values are plain text: no control bytes, '<' or '>' in addresses, at
 * most MAILDROP_VALUE_MAX bytes.  The reader (pickup) trusts nothing in
 * a maildrop file: everything the file says is checked, and who sent it
 * comes from the file's owner, never from its content.
 */
#ifndef SLUICE_MAILDROP_H
#define SLUICE_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#define MAILDROP_DIR            "maildrop"
#define MAILDROP_MAGIC          "sluice-maildrop 1 "
#define MAILDROP_PREAMBLE_LEN   39      /* magic, 20 digits, LF */
#define MAILDROP_NAME_LEN       29      /* 13 hex digits of time, 16 random */
#define MAILDROP_VALUE_MAX      1000    /* an address or the full name */
#define MAILDROP_RECORDS_MAX    (4 * 1024 * 1024)       /* after the content */

/* ---- writing (sendmail) ---- */

struct maildrop_file;

struct maildrop_env {
	const char *sender;     /* "" for the null sender */
	const char *fullname;   /* NULL or "" when none */
	char *const *rcpt;
	int nrcpt;
};

/* Create a new file in queue_dir/maildrop/.  NULL with a message in err
 * (errno kept). */
struct maildrop_file *maildrop_create(const char *queue_dir, char *err,
				      size_t errlen);
const char *maildrop_name(const struct maildrop_file *mf);
/* Append message content.  0, or -1 with errno. */
int maildrop_write(struct maildrop_file *mf, const void *buf, size_t len);
long long maildrop_size(const struct maildrop_file *mf);
/* Is this a value maildrop_finish() accepts as an address? */
bool maildrop_addr_ok(const char *addr, bool empty_ok);
/* Append the records, fill in the length, sync, mark complete, sync
 * again, close.  0, or -1 with a message in err (the file is removed).
 * The mf is consumed either way. */
int maildrop_finish(struct maildrop_file *mf, const struct maildrop_env *env,
		    char *err, size_t errlen);
/* Remove the file and free mf. */
void maildrop_abort(struct maildrop_file *mf);

/* ---- reading (pickup) ---- */

struct maildrop_msg {
	long long content_off;  /* MAILDROP_PREAMBLE_LEN */
	long long content_len;
	char *sender;           /* "" for the null sender */
	char *fullname;         /* NULL when none */
	char **rcpt;
	int nrcpt;
};

/* Parse and check the file open on fd, whose fstat() is st; its content
 * may be at most size_limit bytes (0: no limit).  0, or -1 with the
 * reason in err. */
int maildrop_read(int fd, const struct stat *st, long long size_limit,
		  struct maildrop_msg *m, char *err, size_t errlen);
void maildrop_msg_free(struct maildrop_msg *m);
/* Could `name` be a maildrop file name? */
bool maildrop_name_ok(const char *name);

#endif
