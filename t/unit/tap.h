/*
 * t/unit/tap.h - the TAP helpers shared by the C unit tests.
 *
 * Header-only: the Makefile builds each t/unit/NAME.c on its own into
 * build/t/NAME, so everything here is static (and marked unused, since no
 * test needs every helper).  Output is TAP on stdout:
 *
 *	ok(cond, fmt, ...)	"ok N - name" or "not ok N - name"; returns cond
 *	is_str(got, want, name)	ok() on strcmp, both non-NULL; got/expected on failure
 *	is_int(got, want, name)	ok() on ==; got/expected on failure
 *	diag(fmt, ...)		a "# " comment line
 *	tap_done()		prints the plan "1..N"; returns the exit status
 *
 * tap_tests and tap_failures count what ok() has seen so far.  stdout is
 * flushed after every test line, so a test that forks or crashes neither
 * repeats nor loses lines.
 */
#ifndef SLUICE_T_UNIT_TAP_H
#define SLUICE_T_UNIT_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define TAP_UNUSED __attribute__((unused))

static int tap_tests, tap_failures;

static bool ok(bool cond, const char *fmt, ...)
	__attribute__((format(printf, 2, 3))) TAP_UNUSED;

static bool ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++tap_tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!cond)
		tap_failures++;
	return cond;
}

static void diag(const char *fmt, ...)
	__attribute__((format(printf, 1, 2))) TAP_UNUSED;

static void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static TAP_UNUSED void is_str(const char *got, const char *want,
			      const char *name)
{
	if (!ok(got && want && strcmp(got, want) == 0, "%s", name))
		printf("#      got: %s\n# expected: %s\n", got ? got : "(null)",
		       want ? want : "(null)");
}

static TAP_UNUSED void is_int(long long got, long long want, const char *name)
{
	if (!ok(got == want, "%s", name))
		printf("#      got: %lld\n# expected: %lld\n", got, want);
}

/* The plan, last ("1..N"), and the exit status: 0 if every test passed. */
static TAP_UNUSED int tap_done(void)
{
	printf("1..%d\n", tap_tests);
	return tap_failures != 0;
}

#endif
