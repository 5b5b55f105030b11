/*
 * clamav_engine.c - the in-process scanner: one libclamav engine per
 * worker process, loaded and compiled once at init, shared read-only by
 * the thread-pool threads that scan (libclamav allows concurrent scans on
 * a compiled engine).
 *
 * Promises: the engine's limits follow clamav_max_scan_size (as clamd's
 * MaxScanSize/MaxFileSize); every parser is on (mail, archives such as
 * zip, OLE2, PDF, HTML ...) and heuristics are off, as clamd's defaults
 * detect; a message is scanned from memory (an fmap), never written to
 * disk by us; `sluice reload` starts fresh workers, which load the
 * database as it is then.
 */
#include <stdio.h>
#include <string.h>

#include <clamav.h>

#include "clamav.h"

/* Written once by the loop thread at init, read-only while jobs run. */
static struct cl_engine *engine;

const char *clamav_engine_version(void)
{
	return cl_retver();
}

static int set_limits(long long max_scan_size, char *err, size_t errlen)
{
	cl_error_t rc;

	if (max_scan_size <= 0)
		return 0;
	if ((rc = cl_engine_set_num(engine, CL_ENGINE_MAX_SCANSIZE, max_scan_size)) != CL_SUCCESS
	    || (rc = cl_engine_set_num(engine, CL_ENGINE_MAX_FILESIZE, max_scan_size)) != CL_SUCCESS) {
		snprintf(err, errlen, "cl_engine_set_num: %s", cl_strerror(rc));
		return -1;
	}
	return 0;
}

/* libclamav prints its own messages to stderr, from any thread; the
 * plugin reports every failure itself, in the log, so they are dropped. */
static void quiet(enum cl_msg severity, const char *fullmsg, const char *msg,
		  void *context)
{
}

int clamav_engine_load(const char *dbdir, long long max_scan_size,
		       char *err, size_t errlen)
{
	unsigned int sigs = 0;
	cl_error_t rc;

	cl_set_clcb_msg(quiet);
	if ((rc = cl_init(CL_INIT_DEFAULT)) != CL_SUCCESS) {
		snprintf(err, errlen, "cl_init: %s", cl_strerror(rc));
		return -1;
	}
	if ((engine = cl_engine_new()) == NULL) {
		snprintf(err, errlen, "cl_engine_new failed");
		return -1;
	}
	if (set_limits(max_scan_size, err, errlen) < 0)
		goto fail;
	if ((rc = cl_load(dbdir, engine, &sigs, CL_DB_STDOPT)) != CL_SUCCESS) {
		snprintf(err, errlen, "cannot load the signature database %s: %s",
			 dbdir, cl_strerror(rc));
		goto fail;
	}
	if (sigs == 0) {
		snprintf(err, errlen, "no signatures in %s", dbdir);
		goto fail;
	}
	if ((rc = cl_engine_compile(engine)) != CL_SUCCESS) {
		snprintf(err, errlen, "cl_engine_compile: %s", cl_strerror(rc));
		goto fail;
	}
	snprintf(err, errlen, "%u signatures from %s", sigs, dbdir);
	return 0;
fail:
	cl_engine_free(engine);
	engine = NULL;
	return -1;
}

void clamav_engine_free(void)
{
	if (engine)
		cl_engine_free(engine);
	engine = NULL;
}

void clamav_engine_scan(struct clamav_scan *sc)
{
	struct cl_scan_options opts;
	const char *virname = NULL;
	unsigned long scanned = 0;
	cl_fmap_t *map;
	cl_error_t rc;

	if (engine == NULL) {
		sc->result = CLAMAV_ERROR;
		snprintf(sc->error, sizeof sc->error, "no signature database loaded");
		return;
	}
	memset(&opts, 0, sizeof opts);
	opts.parse = ~0u;          /* every parser: mail, archives, documents */
	if ((map = cl_fmap_open_memory(sc->buf ? (const void *)sc->buf : "", sc->len)) == NULL) {
		sc->result = CLAMAV_ERROR;
		snprintf(sc->error, sizeof sc->error, "cl_fmap_open_memory failed");
		return;
	}
	rc = cl_scanmap_callback(map, "message", &virname, &scanned, engine,
				 &opts, NULL);
	cl_fmap_close(map);
	if (rc == CL_VIRUS) {
		sc->result = CLAMAV_INFECTED;
		snprintf(sc->virus, sizeof sc->virus, "%s", virname ? virname : "unknown");
	} else if (rc == CL_CLEAN) {
		sc->result = CLAMAV_CLEAN;
	} else {
		sc->result = CLAMAV_ERROR;
		snprintf(sc->error, sizeof sc->error, "scan error: %s", cl_strerror(rc));
	}
}
