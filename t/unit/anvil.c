/*
 * anvil.c (unit) - the per-client rate counters of mta/anvil.c across
 * processes: two processes counting into their own regions of the shared
 * table see each other's events; counts are per (service, address, event
 * kind); a released region's events are forgotten; a new time unit starts
 * at 0; without a table or a region the limits fail open (1).
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "anvil.h"
#include "tap.h"

#define HOUR 3600

/* In a child: attach to `owner`, count `n` AUTH events, exit with the
 * last count. */
static int child_counts(int owner, int n, const char *service, const char *addr)
{
	pid_t pid = fork();
	int status, last = 0;

	if (pid == 0) {
		anvil_attach(owner);
		for (int i = 0; i < n; i++)
			last = anvil_rate(service, addr, ANVIL_EV_AUTH, HOUR);
		_exit(last);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

int main(void)
{
	time_t t0;
	int got;

	is_int(anvil_rate("smtp", "192.0.2.1", ANVIL_EV_AUTH, HOUR), 1,
	       "no table: fails open (1)");
	ok(anvil_init(64) == 0, "anvil_init");
	is_int(anvil_rate("smtp", "192.0.2.1", ANVIL_EV_AUTH, HOUR), 1,
	       "no region attached: fails open (1)");
	anvil_attach(0);
	for (int i = 1; i <= 3; i++)
		ok(anvil_rate("smtp", "192.0.2.1", ANVIL_EV_AUTH, HOUR) == i,
		   "AUTH %d from 192.0.2.1 in this process", i);
	is_int(anvil_rate("smtp", "192.0.2.1", ANVIL_EV_MAIL, HOUR), 1,
	       "MAIL is counted apart from AUTH");
	is_int(anvil_rate("submission", "192.0.2.1", ANVIL_EV_AUTH, HOUR), 1,
	       "another service is counted apart");
	is_int(anvil_rate("smtp", "192.0.2.2", ANVIL_EV_AUTH, HOUR), 1,
	       "another address is counted apart");
	is_int(anvil_rate("smtp", "2001:db8:ffff:ffff:ffff:ffff:ffff:fff1",
			  ANVIL_EV_AUTH, HOUR), 1, "a long IPv6 address");

	got = child_counts(1, 2, "smtp", "192.0.2.1");
	is_int(got, 5, "a second process (region 1) sees the first's 3 and its own 2");
	is_int(anvil_rate("smtp", "192.0.2.1", ANVIL_EV_AUTH, HOUR), 6,
	       "and the first sees the second's after it ended");
	anvil_release(1);
	is_int(anvil_rate("smtp", "192.0.2.1", ANVIL_EV_AUTH, HOUR), 5,
	       "a released region's events are forgotten");

	/* many addresses: never more than the table holds, never a crash */
	got = 0;
	for (int i = 0; i < 300; i++) {
		char addr[32];

		snprintf(addr, sizeof addr, "198.51.100.%d", i % 256 + i / 256);
		if (anvil_rate("smtp", addr, ANVIL_EV_RCPT, HOUR) >= 1)
			got++;
	}
	is_int(got, 300, "a full region fails open (every answer >= 1)");

	/* a new unit of 1 second starts at 0: wait for the clock to tick */
	anvil_rate("smtp", "192.0.2.9", ANVIL_EV_CONN, 1);
	anvil_rate("smtp", "192.0.2.9", ANVIL_EV_CONN, 1);
	t0 = time(NULL);
	while (time(NULL) == t0)
		usleep(10000);
	is_int(anvil_rate("smtp", "192.0.2.9", ANVIL_EV_CONN, 1), 1,
	       "a new time unit starts at 0");
	return tap_done();
}
