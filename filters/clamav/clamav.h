/*
 * clamav.h - shared between the files of the clamav plugin: the scan
 * request a thread-pool job works on, and the two scanners behind it
 * (libclamav in process, clamd over its socket).
 *
 * Promises: a scanner's scan function runs on a thread-pool thread, calls
 * no sluice_* function, never touches the session, and fills in exactly
 * one outcome (clean, infected with a name, or an error with a reason).
 */
#ifndef CLAMAV_H
#define CLAMAV_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice_plugin.h"

enum clamav_result { CLAMAV_CLEAN = 0, CLAMAV_INFECTED, CLAMAV_ERROR };

/* One message to scan: the bytes (headers, blank line, body, LF line
 * ends), and what the scan found. */
struct clamav_scan {
	unsigned char *buf;
	size_t len, cap;
	size_t max;                /* clamav_max_scan_size; 0: no limit */
	bool truncated;            /* longer than max: not scanned */
	enum clamav_result result;
	char virus[256];           /* the signature name, when infected */
	char error[256];           /* why, on error */
	/* session side, owned by the event loop */
	sluice_txn *txn;
	bool orphaned;             /* the session closed while scanning */
};

/* libclamav (clamav_engine.c): load the engine from clamav_database_directory
 * once per process; 0, or -1 with the reason in err (the plugin still
 * loads: clamav_failure_action then applies to every message). */
int clamav_engine_load(const char *dbdir, long long max_scan_size,
		       char *err, size_t errlen);
void clamav_engine_free(void);
void clamav_engine_scan(struct clamav_scan *sc);   /* thread pool */
const char *clamav_engine_version(void);

/* clamd (clamav_clamd.c): INSTREAM to the socket ("unix:/path",
 * "inet:host:port", or a bare path), with a timeout per read/write. */
void clamav_clamd_scan(struct clamav_scan *sc, const char *socket_spec,
		       int timeout_sec);               /* thread pool */

#endif /* CLAMAV_H */
