/*
 * t/unit/restrict_builtin.c - unit tests (TAP) of the built-in
 * restrictions where the SMTP dialogue cannot reach them:
 *   - secure routing: permit_auth_destination and reject_unauth_destination
 *     on addresses with sender-specified routing (user%host@domain,
 *     host!user@domain, "user@host"@domain), which the SMTP server
 *     already refuses before any restriction runs, so that the
 *     restrictions are safe on their own (and under allow_untrusted_routing);
 *   - mynetworks_style host / subnet / class, which only differ for
 *     addresses of this machine's non-loopback interfaces;
 *   - the trace `sluice explain` prints.
 * Each case writes main.cf and master.cf into a fresh temporary directory
 * and loads them with config_load(), as the daemon does; the session is a
 * bare struct with the fields the restrictions read.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "restriction.h"
#include "restriction_int.h"
#include "smtp_session.h"
#include "tap.h"
#include "config_fixture.h"

static char logpath[300];

static const char *base_cf =
	"myhostname = mx.example.test\n"
	"mydestination = $myhostname, localhost\n"
	"relay_domains = relay.example.test\n"
	"inet_interfaces = 127.0.0.1\n"
	"local_recipient_maps =\n"
	"queue_directory = spool\n";

static struct sluice_config *load(const char *extra)
{
	char text[2048];

	snprintf(text, sizeof text, "%s%s", base_cf, extra);
	return load_config(text, "127.0.0.1:2525 inet n - n - - smtpd\n", false);
}

static char trace_buf[4096];

static void trace_line(void *arg, const char *line)
{
	size_t n = strlen(trace_buf);

	(void)arg;
	snprintf(trace_buf + n, sizeof trace_buf - n, "%s%s", n ? "; " : "", line);
}

/* Evaluate one restriction for a session with this client and recipient. */
static int eval(struct sluice_config *sc, const char *name, const char *client,
		const char *rcpt)
{
	const struct restriction_def *def = restriction_find(name);
	struct smtp_session *s = calloc(1, sizeof *s);
	int verdict;

	if (def == NULL) {
		printf("Bail out! no restriction %s\n", name);
		exit(1);
	}
	s->cfg = sc->main;
	snprintf(s->client_addr, sizeof s->client_addr, "%s", client);
	snprintf(s->client_name, sizeof s->client_name, "unknown");
	snprintf(s->reverse_name, sizeof s->reverse_name, "unknown");
	snprintf(s->client_id, sizeof s->client_id, "unknown[%s]", client);
	s->txn.active = true;
	s->txn.env.sender = "sender@example.org";
	s->txn.cur_rcpt = rcpt;
	trace_buf[0] = 0;
	rcheck_set_trace(s, trace_line, NULL);
	verdict = def->eval(rcheck_of(s), NULL, def->data);
	rcheck_session_free(s);
	free(s);
	return verdict;
}

static const char *const routed[] = {
	"user%elsewhere.example@localhost",
	"user%elsewhere.example@relay.example.test",
	"elsewhere.example!user@mx.example.test",
	"elsewhere.example!user@relay.example.test",
	"\"user@elsewhere.example\"@mx.example.test",
	"\"user@elsewhere.example\"@relay.example.test",
	"user\\@elsewhere.example@relay.example.test",
	NULL
};

static void test_routing(void)
{
	struct sluice_config *sc = load("");
	struct sluice_config *open_sc = load("allow_untrusted_routing = yes\n");

	for (int i = 0; routed[i]; i++) {
		ok(eval(sc, "permit_auth_destination", "203.0.113.9", routed[i]) == RV_DUNNO,
		   "permit_auth_destination: %s is not an authorized destination", routed[i]);
		ok(eval(sc, "reject_unauth_destination", "203.0.113.9", routed[i]) == RV_REJECT,
		   "reject_unauth_destination: %s is rejected", routed[i]);
		ok(eval(sc, "defer_unauth_destination", "203.0.113.9", routed[i]) == RV_DEFER,
		   "defer_unauth_destination: %s is deferred", routed[i]);
	}
	eval(sc, "permit_auth_destination", "203.0.113.9", routed[1]);
	ok(strstr(trace_buf, "sender-specified routing") != NULL,
	   "the trace says why: %s", trace_buf);
	ok(eval(open_sc, "permit_auth_destination", "203.0.113.9", routed[1]) == RV_OK,
	   "allow_untrusted_routing = yes: routing through a relay domain is authorized");
	ok(eval(open_sc, "permit_auth_destination", "203.0.113.9", "x@elsewhere.example") == RV_DUNNO,
	   "allow_untrusted_routing = yes: other destinations still are not");

	ok(eval(sc, "permit_auth_destination", "203.0.113.9", "alice@localhost") == RV_OK,
	   "a local destination is authorized");
	ok(strstr(trace_buf, "local domain") != NULL, "... the trace names its class: %s", trace_buf);
	ok(eval(sc, "permit_auth_destination", "203.0.113.9", "x@relay.example.test") == RV_OK,
	   "relay_domains is authorized");
	ok(eval(sc, "permit_auth_destination", "203.0.113.9", "x@sub.relay.example.test") == RV_OK,
	   "... with its subdomains");
	ok(eval(sc, "permit_auth_destination", "203.0.113.9", "x@[127.0.0.1]") == RV_OK,
	   "an address literal of inet_interfaces is local");
	ok(eval(sc, "permit_auth_destination", "203.0.113.9", "x@[192.0.2.1]") == RV_DUNNO,
	   "another address literal is not");
	ok(eval(sc, "reject_unauth_destination", "203.0.113.9", "x@elsewhere.example") == RV_REJECT,
	   "reject_unauth_destination: elsewhere is rejected");
	config_free(sc);
	config_free(open_sc);
}

/* A non-loopback IPv4 interface address and its prefix length, or false. */
static bool interface_v4(struct in_addr *addr, int *bits)
{
	struct ifaddrs *ifa = NULL;
	bool found = false;

	if (getifaddrs(&ifa) < 0)
		return false;
	for (struct ifaddrs *p = ifa; p && !found; p = p->ifa_next) {
		const struct sockaddr_in *a = (const void *)p->ifa_addr;
		const struct sockaddr_in *m = (const void *)p->ifa_netmask;

		if (a == NULL || m == NULL || a->sin_family != AF_INET ||
		    (ntohl(a->sin_addr.s_addr) >> 24) == 127)
			continue;
		*addr = a->sin_addr;
		*bits = __builtin_popcount(m->sin_addr.s_addr);
		found = *bits > 0 && *bits < 31;
	}
	freeifaddrs(ifa);
	return found;
}

static void text_of(struct in_addr a, uint32_t plus, char *buf, size_t len)
{
	a.s_addr = htonl(ntohl(a.s_addr) + plus);
	inet_ntop(AF_INET, &a, buf, (socklen_t)len);
}

static void test_style(void)
{
	struct in_addr a;
	int bits;
	char self[32], peer[32];
	struct sluice_config *host, *subnet, *class, *set;

	if (!interface_v4(&a, &bits)) {
		for (int i = 0; i < 9; i++)
			ok(true, "# SKIP no non-loopback IPv4 interface with a subnet");
		return;
	}
	host = load("mynetworks_style = host\n");
	subnet = load("mynetworks_style = subnet\n");
	class = load("mynetworks_style = class\n");
	set = load("mynetworks_style = subnet\nmynetworks = 127.0.0.0/8\n");
	text_of(a, 0, self, sizeof self);
	/* another address of the same subnet: flip the lowest host bit */
	text_of(a, (ntohl(a.s_addr) & 1) ? (uint32_t)-1 : 1, peer, sizeof peer);
	ok(eval(host, "permit_mynetworks", self, "x@elsewhere.example") == RV_OK,
	   "style host: this machine's address %s is trusted", self);
	ok(eval(host, "permit_mynetworks", peer, "x@elsewhere.example") == RV_DUNNO,
	   "style host: its neighbour %s is not", peer);
	ok(eval(subnet, "permit_mynetworks", peer, "x@elsewhere.example") == RV_OK,
	   "style subnet: the neighbour %s (/%d) is", peer, bits);
	ok(eval(class, "permit_mynetworks", peer, "x@elsewhere.example") == RV_OK,
	   "style class: so is it in the whole class network");
	ok(eval(set, "permit_mynetworks", self, "x@elsewhere.example") == RV_DUNNO,
	   "mynetworks set: mynetworks_style is not used");
	ok(eval(host, "permit_mynetworks", "127.0.0.1", "x@elsewhere.example") == RV_OK,
	   "style host: 127.0.0.1 is trusted");
	ok(strstr(trace_buf, "in mynetworks (127.0.0.1/32)") != NULL,
	   "the trace names the entry that matched: %s", trace_buf);
	ok(eval(host, "permit_mynetworks", "127.0.0.2", "x@elsewhere.example") == RV_DUNNO,
	   "style host: 127.0.0.2 is not (Postfix)");
	ok(eval(subnet, "permit_mynetworks", "127.0.0.2", "x@elsewhere.example") == RV_OK,
	   "style subnet: 127.0.0.2 is, in 127.0.0.0/8");
	config_free(host);
	config_free(subnet);
	config_free(class);
	config_free(set);
}

int main(void)
{
	fixture_tmpdir("restrict-builtin");
	snprintf(logpath, sizeof logpath, "%s/log", tmp);
	log_open("restrict-test", LOG_DEST_FILE, logpath);
	test_routing();
	test_style();
	return tap_done();
}
