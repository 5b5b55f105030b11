/*
 * t/unit/smtp_client.c - the SMTP/LMTP delivery agent (smtp_deliver),
 * tested against real peers (TAP).
 *
 * Peers, all on loopback ports chosen at run time and stopped at the end:
 *   - Postfix's smtp-sink (delivery, dumps read back, -f RCPT for 5xx,
 *     -r CONNECT for a 4xx greeting, -h for a server that uses our name,
 *     -L for LMTP);
 *   - dnsmasq serving MX, A and a null MX record for *.test;
 *   - a small scripted server (forked from this test) for the exact
 *     replies smtp-sink cannot give: per-recipient 2xx/4xx/5xx, SIZE
 *     limits, no PIPELINING, 5xx to EHLO, hanging or closing mid-session,
 *     LMTP per-recipient replies after the dot over a unix socket.  It
 *     writes a transcript of what it received, "--" at each read(), so
 *     the test sees the bytes on the wire and how commands were batched.
 *
 * Messages are real queue files made with the queue API.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "config.h"
#include "delivery.h"
#include "dns.h"
#include "log.h"
#include "queue.h"
#include "smtp_client.h"
#include "tap.h"
#include "dir_fixture.h"

#define MYHOST "client.sluice.test"

static char tmp[256], qdir[300];
static struct sluice_config *loaded[4];
static int nloaded;
static struct event_base *base;
static pid_t children[32];
static int nchildren;

/* ---- processes and ports ---------------------------------------------- */

static pid_t spawn(char *const argv[])
{
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		if (getenv("SMTPC_TEST_VERBOSE") == NULL)
			dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid > 0 && nchildren < 32)
		children[nchildren++] = pid;
	return pid;
}

static void stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	for (int i = 0; i < nchildren; i++)
		if (children[i] == pid)
			children[i] = 0;
}

static void stop_all(void)
{
	for (int i = 0; i < nchildren; i++)
		stop(children[i]);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int tcp_socket(const char *ip, int port, int type)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, type, 0);

	inet_pton(AF_INET, ip, &sin.sin_addr);
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A TCP port free on every address given (and UDP too if asked). */
static int free_port(const char *const *ips, bool udp)
{
	for (int tries = 0; tries < 50; tries++) {
		int fd = tcp_socket(ips[0], 0, SOCK_STREAM), port;
		struct sockaddr_in sin;
		socklen_t len = sizeof sin;
		bool all = true;

		getsockname(fd, (struct sockaddr *)&sin, &len);
		port = ntohs(sin.sin_port);
		close(fd);
		for (int i = 0; ips[i] && all; i++) {
			int t = tcp_socket(ips[i], port, SOCK_STREAM);
			int u = udp ? tcp_socket(ips[i], port, SOCK_DGRAM) : 0;

			all = t >= 0 && u >= 0;
			if (t >= 0)
				close(t);
			if (udp && u >= 0)
				close(u);
		}
		if (all)
			return port;
	}
	return -1;
}

/* Wait (5 s at most) until something listens on ip:port. */
static bool wait_listening(const char *ip, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port) };

	inet_pton(AF_INET, ip, &sin.sin_addr);
	for (int i = 0; i < 500; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int rc = connect(fd, (struct sockaddr *)&sin, sizeof sin);

		close(fd);
		if (rc == 0)
			return true;
		sleep_ms(10);
	}
	return false;
}

/* Wait until a UDP port is taken (by dnsmasq). */
static bool wait_udp_bound(const char *ip, int port)
{
	for (int i = 0; i < 500; i++) {
		int fd = tcp_socket(ip, port, SOCK_DGRAM);

		if (fd < 0)
			return true;
		close(fd);
		sleep_ms(10);
	}
	return false;
}

/* ---- smtp-sink -------------------------------------------------------- */

/* Start smtp-sink on ip:port with extra options; dumps into dumpdir. */
static pid_t sink_start(const char *ip, int port, const char *dumpdir,
			const char *o1, const char *o2)
{
	char listen[64], dump[400];
	char *argv[16];
	int n = 0;
	pid_t pid;

	snprintf(listen, sizeof listen, "%s:%d", ip, port);
	argv[n++] = "/usr/sbin/smtp-sink";
	if (geteuid() == 0) {
		argv[n++] = "-u";
		argv[n++] = "nobody";
	}
	if (dumpdir) {
		mkdir(dumpdir, 0777);
		chmod(dumpdir, 0777);
		snprintf(dump, sizeof dump, "%s/%%M.", dumpdir);
		argv[n++] = "-d";
		argv[n++] = dump;
	}
	if (o1)
		argv[n++] = (char *)o1;
	if (o2)
		argv[n++] = (char *)o2;
	argv[n++] = listen;
	argv[n++] = "10";
	argv[n] = NULL;
	pid = spawn(argv);
	if (!wait_listening(ip, port))
		diag("smtp-sink did not start on %s", listen);
	return pid;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *s;
	long n;

	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	s = calloc(1, (size_t)n + 1);
	if (fread(s, 1, (size_t)n, fp) != (size_t)n)
		s[0] = 0;
	fclose(fp);
	return s;
}

/* The one dump file in dir (NULL if none); *count says how many. */
static char *read_dump(const char *dir, int *count)
{
	char path[600];
	int n = dir_entries(dir, path, sizeof path);

	*count = n > 0 ? n : 0;
	return n > 0 ? slurp(path) : NULL;
}

/* ---- the scripted server ---------------------------------------------- */

struct rule { const char *prefix; const char *reply; };

struct mini {
	const char *greeting;
	const struct rule *rules;
	bool lmtp;
	const char *log;
};

static void say(int fd, const char *reply)
{
	size_t len = strlen(reply), n = 0;
	char *buf = malloc(2 * len + 3);

	for (const char *p = reply; *p; p++) {
		if (*p == '\n')
			buf[n++] = '\r';
		buf[n++] = *p;
	}
	buf[n++] = '\r';
	buf[n++] = '\n';
	if (write(fd, buf, n) < 0)
		_exit(0);
	free(buf);
}

static const char *rule_for(const struct mini *m, const char *line)
{
	for (const struct rule *r = m->rules; r && r->prefix; r++)
		if (strncmp(line, r->prefix, strlen(r->prefix)) == 0)
			return r->reply;
	return NULL;
}

static const char *default_reply(const struct mini *m, const char *line)
{
	if (!strncmp(line, "EHLO", 4) || !strncmp(line, "LHLO", 4))
		return "250-mini.test\n250-PIPELINING\n250-SIZE 1000000\n"
			"250-8BITMIME\n250-DSN\n250 ENHANCEDSTATUSCODES";
	if (!strncmp(line, "HELO", 4))
		return "250 mini.test";
	if (!strncmp(line, "DATA", 4))
		return "354 go ahead";
	if (!strncmp(line, "QUIT", 4))
		return "221 2.0.0 Bye";
	return "250 2.0.0 Ok";
}

struct mini_state {
	char rcpt[16][256];
	int nrcpt;
	bool data;
};

/* Reply to the end of data: one reply, or one per recipient (LMTP). */
static void end_of_data(int fd, const struct mini *m, struct mini_state *st)
{
	char key[300];
	const char *r;

	if (!m->lmtp) {
		say(fd, (r = rule_for(m, ".")) ? r : "250 2.0.0 Ok: queued as MINI1");
		return;
	}
	for (int i = 0; i < st->nrcpt; i++) {
		snprintf(key, sizeof key, ".%s", st->rcpt[i]);
		say(fd, (r = rule_for(m, key)) ? r : "250 2.1.5 Ok delivered");
	}
}

/* One line (with its CRLF); false to end the session. */
static bool mini_line(int fd, const struct mini *m, struct mini_state *st,
		      char *line, size_t n, FILE *log)
{
	const char *r;

	if (st->data) {
		fprintf(log, "D:%.*s", (int)n, line);
		if (n == 3 && memcmp(line, ".\r\n", 3) == 0) {
			st->data = false;
			end_of_data(fd, m, st);
			st->nrcpt = 0;
		}
		return true;
	}
	line[n] = 0;
	line[strcspn(line, "\r\n")] = 0;
	fprintf(log, "%s\n", line);
	r = rule_for(m, line);
	if (r == NULL)
		r = default_reply(m, line);
	if (strcmp(r, "CLOSE") == 0)
		return false;
	if (strcmp(r, "HANG") == 0)
		pause();
	if (!strncmp(line, "RCPT TO:<", 9) && r[0] == '2' && st->nrcpt < 16)
		snprintf(st->rcpt[st->nrcpt++], 256, "%.*s",
			 (int)strcspn(line + 9, ">"), line + 9);
	if (!strncmp(line, "DATA", 4) && r[0] == '3')
		st->data = true;
	say(fd, r);
	return strncmp(line, "QUIT", 4) != 0;
}

static void mini_session(int fd, const struct mini *m, FILE *log)
{
	static char buf[1 << 20];
	struct mini_state st = { .nrcpt = 0 };
	size_t have = 0;

	say(fd, m->greeting);
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
		char *p = buf, *nl;

		if (n <= 0)
			return;
		fprintf(log, "--\n");
		have += (size_t)n;
		while ((nl = memchr(p, '\n', have - (size_t)(p - buf))) != NULL) {
			char save = nl[1];
			bool go_on = mini_line(fd, m, &st, p, (size_t)(nl + 1 - p), log);

			nl[1] = save;
			p = nl + 1;
			if (!go_on)
				return;
		}
		have -= (size_t)(p - buf);
		memmove(buf, p, have);
	}
}

/* Serve sessions on lfd until killed. */
static pid_t mini_start(int lfd, const struct mini *m)
{
	pid_t pid;

	listen(lfd, 16);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		FILE *log = fopen(m->log, "a");

		setvbuf(log, NULL, _IONBF, 0);
		for (;;) {
			int fd = accept(lfd, NULL, NULL);

			if (fd < 0)
				_exit(0);
			mini_session(fd, m, log);
			close(fd);
		}
	}
	close(lfd);
	if (pid > 0 && nchildren < 32)
		children[nchildren++] = pid;
	return pid;
}

static pid_t mini_tcp(int *port, const struct mini *m)
{
	const char *ips[] = { "127.0.0.1", NULL };

	*port = free_port(ips, false);
	unlink(m->log);
	return mini_start(tcp_socket("127.0.0.1", *port, SOCK_STREAM), m);
}

static pid_t mini_unix(const char *path, const struct mini *m)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	size_t len = strlen(path);

	if (len >= sizeof sun.sun_path)
		len = sizeof sun.sun_path - 1;
	memcpy(sun.sun_path, path, len);
	unlink(path);
	unlink(m->log);
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
		diag("bind %s: %s", path, strerror(errno));
	return mini_start(fd, m);
}

/* mini_tcp() with the transcript in tmp/NAME (its path left in log). */
static pid_t mini_logged(struct mini *m, char *log, size_t size,
			 const char *name, int *port)
{
	snprintf(log, size, "%s/%s", tmp, name);
	m->log = log;
	return mini_tcp(port, m);
}

/* The next hop "[127.0.0.1]:port" (a static buffer). */
static const char *hop_of(int port)
{
	static char hop[64];

	snprintf(hop, sizeof hop, "[127.0.0.1]:%d", port);
	return hop;
}

/* ---- configuration ---------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
}

static struct config *load_config(const char *name, int dns_port,
				  const char *extra)
{
	char dir[400], path[500], text[2000];
	struct sluice_config *sc;
	struct diag d;

	snprintf(dir, sizeof dir, "%s/%s", tmp, name);
	mkdir(dir, 0700);
	snprintf(text, sizeof text,
		 "myhostname = " MYHOST "\n"
		 "queue_directory = %s\n"
		 "dns_servers = 127.0.0.1:%d\n"
		 "smtp_randomize_addresses = no\n"
		 "%s", qdir, dns_port, extra);
	snprintf(path, sizeof path, "%s/main.cf", dir);
	write_file(path, text);
	snprintf(path, sizeof path, "%s/master.cf", dir);
	write_file(path, "smtp inet - - - - - smtpd\n");
	diag_init(&d);
	sc = config_load(dir, &d);
	for (int i = 0; i < d.n; i++)
		diag("config: %s", d.v[i].text);
	diag_free(&d);
	if (sc == NULL) {
		printf("Bail out! the test configuration does not load\n");
		exit(1);
	}
	if (nloaded < 4)
		loaded[nloaded++] = sc;
	return sc->main;
}

/* ---- messages and deliveries ------------------------------------------ */

struct msg {
	struct queue_envelope env;
	int fd;
	char id[QUEUE_ID_MAX];
	char path[600];
};

static void on_commit(void *arg, int err)
{
	*(int *)arg = err;
}

/* A queue file with this content for these recipients. */
static void make_msg(struct msg *m, const char *content, const char *const *rcpts,
		     bool eightbit)
{
	struct queue_rcpt qr[8];
	struct queue_envelope env = { .sender = "alice@example.org" };
	struct queue_file *qf = queue_create(qdir);
	const char *body = strstr(content, "\n\n");
	char err[256];
	int n = 0, cerr = -1;

	for (; rcpts[n] && n < 8; n++)
		qr[n] = (struct queue_rcpt) { (char *)rcpts[n], NULL,
					      DSN_NOTIFY_NONE, 'P' };
	if (n > 1) {
		qr[1].notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE;
		qr[1].orcpt = "rfc822;orig+2Bx@example.net";
	}
	env.rcpt = qr;
	env.nrcpt = n;
	env.envid = "ENV42";
	env.ret = DSN_RET_HDRS;
	env.body = eightbit ? BODY_8BITMIME : BODY_7BIT;
	snprintf(m->id, sizeof m->id, "%s", queue_file_id(qf));
	queue_write(qf, content, (size_t)(body - content + 1));
	queue_mark_body(qf);
	queue_write(qf, body + 1, strlen(body + 1));
	queue_commit(qf, &env, on_commit, &cerr);
	snprintf(m->path, sizeof m->path, "%s/incoming/%s", qdir, m->id);
	memset(&m->env, 0, sizeof m->env);
	m->fd = open(m->path, O_RDONLY);
	if (cerr != 0 || m->fd < 0
	    || queue_read_envelope_fd(m->fd, &m->env, err, sizeof err) < 0) {
		printf("Bail out! cannot make a queue file (%d): %s\n", cerr, err);
		exit(1);
	}
}

static void free_msg(struct msg *m)
{
	close(m->fd);
	unlink(m->path);
	queue_envelope_free(&m->env);
}

struct run {
	struct delivery_request req;
	struct delivery_rcpt rcpt[8];
	int calls;
};

static void on_done(struct delivery_request *req, void *arg)
{
	((struct run *)arg)->calls++;
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

/* Deliver m to nexthop and wait (30 s at most) for done(). */
static void deliver(struct run *r, struct msg *m, const struct config *cfg,
		    const char *transport, const char *nexthop)
{
	struct timeval tv = { 30, 0 };
	bool expired = false;
	struct event *guard = evtimer_new(base, on_guard, &expired);

	memset(r, 0, sizeof *r);
	for (int i = 0; i < m->env.nrcpt && i < 8; i++) {
		r->rcpt[i].addr = m->env.rcpt[i].addr;
		r->rcpt[i].queue_index = i;
	}
	r->req = (struct delivery_request) {
		.queue_id = m->id, .queue_path = m->path, .queue_fd = m->fd,
		.env = &m->env, .transport = transport, .nexthop = nexthop,
		.cfg = cfg, .rcpt = r->rcpt, .nrcpt = m->env.nrcpt };
	evtimer_add(guard, &tv);
	smtp_deliver(base, &r->req, strcmp(transport, "lmtp") == 0, on_done, r);
	if (r->calls)
		diag("done() called before smtp_deliver() returned");
	while (r->calls == 0 && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
	if (expired)
		diag("delivery to %s did not finish in 30 s", nexthop);
}

/* Let the loop run a little (connections saying QUIT, idle ones). */
static void spin(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	bool expired = false;
	struct event *t = evtimer_new(base, on_guard, &expired);

	evtimer_add(t, &tv);
	while (!expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
}

static bool has(const char *s, const char *part)
{
	return s && part && strstr(s, part) != NULL;
}

static int count(const char *s, const char *part)
{
	int n = 0;

	for (const char *p = s; p && (p = strstr(p, part)) != NULL; p++)
		n++;
	return n;
}

static void show(const struct run *r)
{
	for (int i = 0; i < r->req.nrcpt; i++)
		diag("rcpt %d <%s>: %d %s %s", i, r->rcpt[i].addr,
		     r->rcpt[i].status, r->rcpt[i].dsn,
		     r->rcpt[i].text ? r->rcpt[i].text : "(null)");
	diag("relay=%s", r->req.relay);
}

static bool result(const struct run *r, int i, int status, const char *dsn,
		   const char *text)
{
	const struct delivery_rcpt *rc = &r->rcpt[i];

	return rc->status == status && strcmp(rc->dsn, dsn) == 0
		&& has(rc->text, text);
}

#define CHECK(cond, r, ...) do { if (!ok((cond), __VA_ARGS__)) show(r); } while (0)

/* The end of a test: r's results and m freed, the server pid (if any)
 * stopped. */
static void finish(struct run *r, struct msg *m, pid_t pid)
{
	delivery_clear(&r->req);
	free_msg(m);
	stop(pid);
}

static const char *CONTENT =
	"Received: from x (x [192.0.2.1])\n"
	"Subject: dots\n"
	"\n"
	"first line\n"
	".a line that starts with a dot\n"
	"..two dots\n"
	".\n"
	"not the end\n"
	"last line without newline";

static const char *WIRE_BODY =
	"D:Received: from x (x [192.0.2.1])\r\n"
	"D:Subject: dots\r\n"
	"D:\r\n"
	"D:first line\r\n"
	"D:..a line that starts with a dot\r\n"
	"D:...two dots\r\n"
	"D:..\r\n"
	"D:not the end\r\n"
	"D:last line without newline\r\n"
	"D:.\r\n";

/* ---- the tests -------------------------------------------------------- */

static struct config *cfg, *cfg_reuse, *cfg_lmtp;

static void test_sink_delivery(void)
{
	const char *rcpts[] = { "bob@example.net", "carol@example.net", NULL };
	const char *ips[] = { "127.0.0.1", NULL };
	char dir[400], hop[64];
	int port = free_port(ips, false), n;
	struct msg m;
	struct run r;
	pid_t sink;
	char *dump;

	snprintf(dir, sizeof dir, "%s/dump1", tmp);
	sink = sink_start("127.0.0.1", port, dir, NULL, NULL);
	make_msg(&m, CONTENT, rcpts, true);
	snprintf(hop, sizeof hop, "[127.0.0.1]:%d", port);
	deliver(&r, &m, cfg, "smtp", hop);
	is_int(r.calls, 1, "smtp-sink: done() called once");
	CHECK(result(&r, 0, 2, "2.0.0", "250 2.0.0 Ok") && result(&r, 1, 2,
	      "2.0.0", "250 2.0.0 Ok"), &r, "smtp-sink: both recipients "
	      "delivered with the server's reply as text");
	snprintf(hop, sizeof hop, "127.0.0.1[127.0.0.1]:%d", port);
	is_str(r.req.relay, hop, "relay= is host[addr]:port");
	ok(timerisset(&r.req.t_conn) && timerisset(&r.req.t_done)
	   && timercmp(&r.req.t_conn, &r.req.t_done, <=),
	   "t_conn and t_done set, in order");
	spin(50);
	dump = read_dump(dir, &n);
	ok(n == 1 && has(dump, "\nfirst line\n.a line that starts with a dot\n"
			 "..two dots\n.\nnot the end\nlast line without newline\n"),
	   "smtp-sink: content arrives unchanged (dots unstuffed by the "
	   "server, missing last newline added)");
	ok(has(dump, "X-Mail-Args: <alice@example.org> BODY=8BITMIME RET=HDRS "
	       "ENVID=ENV42\n"),
	   "MAIL has BODY=8BITMIME, RET= and ENVID= (smtp-sink offers no SIZE)");
	ok(has(dump, "X-Rcpt-Args: <bob@example.net>\nX-Rcpt-Args: "
	       "<carol@example.net> NOTIFY=SUCCESS,FAILURE "
	       "ORCPT=rfc822;orig+2Bx@example.net\n"),
	   "RCPT passes DSN NOTIFY and ORCPT through");
	if (!ok(has(dump, "X-Helo-Args: " MYHOST), "EHLO sends smtp_helo_name"))
		diag("dump: %s", dump ? dump : "(none)");
	free(dump);
	finish(&r, &m, sink);
}

static void test_sink_rcpt_reject(void)
{
	const char *rcpts[] = { "bob@example.net", NULL };
	const char *ips[] = { "127.0.0.1", NULL };
	char dir[400], want[200];
	int port = free_port(ips, false), n;
	struct msg m;
	struct run r;
	pid_t sink;

	snprintf(dir, sizeof dir, "%s/dump2", tmp);
	sink = sink_start("127.0.0.1", port, dir, "-f", "RCPT");
	make_msg(&m, CONTENT, rcpts, false);
	deliver(&r, &m, cfg, "smtp", hop_of(port));
	snprintf(want, sizeof want, "host 127.0.0.1[127.0.0.1] said: 500 5.3.0 ");
	CHECK(result(&r, 0, 5, "5.3.0", want)
	      && has(r.rcpt[0].text, "(in reply to RCPT TO command)"), &r,
	      "smtp-sink -f RCPT: bounced, \"host X said: ... (in reply to RCPT "
	      "TO command)\"");
	spin(50);
	free(read_dump(dir, &n));
	is_int(n, 0, "no recipient accepted: no DATA, nothing delivered");
	finish(&r, &m, sink);
}

static void test_loop(void)
{
	const char *rcpts[] = { "bob@example.net", NULL };
	const char *ips[] = { "127.0.0.1", NULL };
	char want[200];
	int port = free_port(ips, false);
	struct msg m;
	struct run r;
	pid_t sink = sink_start("127.0.0.1", port, NULL, "-h", MYHOST);

	make_msg(&m, CONTENT, rcpts, false);
	deliver(&r, &m, cfg, "smtp", hop_of(port));
	snprintf(want, sizeof want, "mail for %s loops back to myself",
		 hop_of(port));
	CHECK(result(&r, 0, 5, "5.4.6", want), &r,
	      "a server greeting with our myhostname: 5.4.6 loops back to myself");
	finish(&r, &m, sink);
}

static void test_refused(void)
{
	const char *rcpts[] = { "bob@example.net", NULL };
	const char *ips[] = { "127.0.0.1", NULL };
	char want[200];
	int port = free_port(ips, false);
	struct msg m;
	struct run r;

	make_msg(&m, CONTENT, rcpts, false);
	deliver(&r, &m, cfg, "smtp", hop_of(port));
	snprintf(want, sizeof want, "connect to 127.0.0.1[127.0.0.1]:%d: "
		 "Connection refused", port);
	CHECK(result(&r, 0, 4, "4.4.1", want) && r.calls == 1, &r,
	      "connection refused: deferred 4.4.1 \"%s\"", want);
	is_str(r.req.relay, "none", "no connection: relay=none");
	finish(&r, &m, 0);
}

static const struct rule per_rcpt_rules[] = {
	{ "RCPT TO:<bad@", "550 5.1.1 <bad@example.net>: Recipient address rejected: User unknown" },
	{ "RCPT TO:<busy@", "450 4.2.1 <busy@example.net>: Mailbox busy" },
	{ NULL, NULL }
};

static void test_per_rcpt(void)
{
	const char *rcpts[] = { "bob@example.net", "bad@example.net",
				"busy@example.net", NULL };
	struct mini mm = { "220 mini.test ESMTP", per_rcpt_rules, false, NULL };
	char log[400];
	struct msg m;
	struct run r;
	int port;
	pid_t pid;
	char *t;

	pid = mini_logged(&mm, log, sizeof log, "mini1.log", &port);
	make_msg(&m, CONTENT, rcpts, false);
	deliver(&r, &m, cfg, "smtp", hop_of(port));
	CHECK(result(&r, 0, 2, "2.0.0", "250 2.0.0 Ok: queued as MINI1")
	      && result(&r, 1, 5, "5.1.1", "host 127.0.0.1[127.0.0.1] said: 550 "
			"5.1.1 <bad@example.net>: Recipient address rejected: User "
			"unknown (in reply to RCPT TO command)")
	      && result(&r, 2, 4, "4.2.1", "said: 450 4.2.1 <busy@example.net>: "
			"Mailbox busy (in reply to RCPT TO command)"), &r,
	      "per-recipient 2xx / 5xx / 4xx: sent, bounced, deferred");
	t = slurp(log);
	ok(has(t, "--\nMAIL FROM:<alice@example.org> SIZE=")
	   && has(t, "\nRCPT TO:<bob@example.net>\nRCPT TO:<bad@example.net> "
		  "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2Bx@example.net\n"
		  "RCPT TO:<busy@example.net>\n--\nDATA\n"),
	   "PIPELINING: MAIL and every RCPT in one write, DATA after the replies");
	if (!ok(has(t, WIRE_BODY), "the body on the wire: CRLF, dots doubled, "
		"a CRLF added to the last line, then \".\""))
		diag("transcript:\n%s", t);
	free(t);
	finish(&r, &m, pid);
}

/* A server without PIPELINING that refuses EHLO: HELO, one at a time. */
static const struct rule helo_rules[] = {
	{ "EHLO", "502 5.5.2 Error: command not recognized" },
	{ NULL, NULL }
};

static void test_helo_fallback(void)
{
	const char *rcpts[] = { "bob@example.net", "carol@example.net", NULL };
	struct mini mm = { "220 mini.test ESMTP", helo_rules, false, NULL };
	char log[400];
	struct msg m;
	struct run r;
	int port;
	pid_t pid;
	char *t;

	pid = mini_logged(&mm, log, sizeof log, "mini2.log", &port);
	make_msg(&m, CONTENT, rcpts, true);
	deliver(&r, &m, cfg, "smtp", hop_of(port));
	CHECK(result(&r, 0, 2, "2.0.0", "250") && result(&r, 1, 2, "2.0.0", "250"),
	      &r, "EHLO refused with 5xx: HELO, then delivered");
	t = slurp(log);
	ok(has(t, "HELO " MYHOST "\n--\nMAIL FROM:<alice@example.org>\n--\n"
	       "RCPT TO:<bob@example.net>\n--\nRCPT TO:<carol@example.net>\n--\n"
	       "DATA\n"),
	   "without PIPELINING each command waits; no ESMTP parameters after HELO");
	free(t);
	finish(&r, &m, pid);
}

static const struct rule size_rules[] = {
	{ "EHLO", "250-mini.test\n250-PIPELINING\n250 SIZE 100" },
	{ NULL, NULL }
};

static void test_size(void)
{
	const char *rcpts[] = { "bob@example.net", NULL };
	struct mini mm = { "220 mini.test ESMTP", size_rules, false, NULL };
	char log[400], want[200];
	struct msg m;
	struct run r;
	int port;
	pid_t pid;
	char *t;

	pid = mini_logged(&mm, log, sizeof log, "mini3.log", &port);
	make_msg(&m, CONTENT, rcpts, false);
	deliver(&r, &m, cfg, "smtp", hop_of(port));
	snprintf(want, sizeof want, "message size %lld exceeds size limit 100 of "
		 "server 127.0.0.1[127.0.0.1]", m.env.size);
	CHECK(result(&r, 0, 5, "5.3.4", want), &r, "over the server's SIZE: "
	      "5.3.4 \"%s\"", want);
	spin(100);
	t = slurp(log);
	ok(!has(t, "MAIL FROM"), "no MAIL sent for a message over the limit");
	free(t);
	finish(&r, &m, pid);
}

static const struct rule data_rules[] = {
	{ "DATA", "554 5.5.1 Error: no valid recipients" },
	{ NULL, NULL }
};
static const struct rule dot_rules[] = {
	{ ".", "451 4.3.0 Error: queue file write error" },
	{ NULL, NULL }
};
static const struct rule close_rules[] = {
	{ "RCPT", "CLOSE" },
	{ NULL, NULL }
};
static const struct rule hang_rules[] = {
	{ "MAIL", "HANG" },
	{ NULL, NULL }
};

/* Deliver to a scripted server; check recipient 0's result. */
static void scripted(const struct rule *rules, const char *greeting,
		     int status, const char *dsn, const char *text,
		     const char *name)
{
	const char *rcpts[] = { "bob@example.net", NULL };
	struct mini mm = { greeting, rules, false, NULL };
	char log[400], want[400];
	struct msg m;
	struct run r;
	int port;
	pid_t pid;

	pid = mini_logged(&mm, log, sizeof log, "mini4.log", &port);
	make_msg(&m, CONTENT, rcpts, false);
	deliver(&r, &m, cfg, "smtp", hop_of(port));
	snprintf(want, sizeof want, text, "127.0.0.1[127.0.0.1]");
	CHECK(result(&r, 0, status, dsn, want) && r.calls == 1, &r, "%s: %s",
	      name, want);
	finish(&r, &m, pid);
}

static void test_failures(void)
{
	scripted(data_rules, "220 mini.test ESMTP", 5, "5.5.1",
		 "host %s said: 554 5.5.1 Error: no valid recipients (in reply "
		 "to DATA command)", "DATA refused");
	scripted(dot_rules, "220 mini.test ESMTP", 4, "4.3.0",
		 "host %s said: 451 4.3.0 Error: queue file write error (in reply "
		 "to end of DATA command)", "end of data refused");
	scripted(close_rules, "220 mini.test ESMTP", 4, "4.4.2",
		 "lost connection with %s while sending RCPT TO",
		 "lost connection mid-transaction");
	scripted(hang_rules, "220 mini.test ESMTP", 4, "4.4.2",
		 "conversation with %s timed out while sending MAIL FROM",
		 "smtp_mail_timeout");
	scripted(NULL, "421 4.3.2 Service not available", 4, "4.3.2",
		 "host %s refused to talk to me: 421 4.3.2 Service not available",
		 "a 4xx greeting");
	scripted(NULL, "554 5.7.1 go away", 4, "4.7.1",
		 "host %s refused to talk to me: 554 5.7.1 go away",
		 "a 5xx greeting is skipped (smtp_skip_5xx_greeting)");
	scripted(NULL, "220-mini.test\n220-" MYHOST "\n220 x", 2, "2.0.0",
		 "250 2.0.0 Ok", "a multi-line greeting is read whole");
}

/* Replies bigger than the client keeps: a greeting line of 10000 bytes
 * is cut and read on; an EHLO reply of 1000 lines is refused. */
static void test_limits(void)
{
	static char long_greeting[10100], many_lines[12000];
	static struct rule many_rules[] = { { "EHLO", many_lines }, { NULL, NULL } };
	size_t n;

	n = (size_t)snprintf(long_greeting, sizeof long_greeting, "220 mini.test ");
	memset(long_greeting + n, 'x', 10000 - n);
	scripted(NULL, long_greeting, 2, "2.0.0", "250 2.0.0 Ok",
		 "a 10000-byte greeting line is cut, not fatal");
	n = 0;
	for (int i = 0; i < 1000; i++)
		n += (size_t)snprintf(many_lines + n, sizeof many_lines - n,
				      "250-X%d\n", i);
	snprintf(many_lines + n, sizeof many_lines - n, "250 END");
	scripted(many_rules, "220 mini.test ESMTP", 4, "4.5.0",
		 "host %s sent an invalid reply while performing the EHLO "
		 "handshake: reply of too many lines",
		 "an EHLO reply of 1000 lines is refused");
	scripted(NULL, "220 mini.test ESMTP\nhello there", 4, "4.5.0",
		 "host %s sent an invalid reply while performing the EHLO "
		 "handshake: malformed reply: hello there",
		 "a reply line without a code is refused");
}

/* ---- MX routing with dnsmasq ------------------------------------------ */

static int dns_port;
static pid_t dnsmasq;

static bool dnsmasq_start(void)
{
	const char *ips[] = { "127.0.0.1", NULL };
	char port[32];
	char *argv[] = {
		"/usr/sbin/dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		port, "--listen-address=127.0.0.1", "--bind-interfaces",
		"--no-resolv", "--no-hosts", "--local=/test/", "--user=root",
		"--mx-host=example.test,mx2.example.test,20",
		"--mx-host=example.test,mx1.example.test,10",
		"--mx-host=dead.test,mxdead.example.test,10",
		"--host-record=mx1.example.test,127.0.0.2",
		"--host-record=mx2.example.test,127.0.0.3",
		"--host-record=mxdead.example.test,127.0.0.5",
		"--host-record=nomx.test,127.0.0.3",
		"--dns-rr=null.test,15,000000",
		NULL
	};

	dns_port = free_port(ips, true);
	snprintf(port, sizeof port, "--port=%d", dns_port);
	if (access(argv[0], X_OK) != 0)
		return false;
	dnsmasq = spawn(argv);
	return wait_udp_bound("127.0.0.1", dns_port);
}

static void test_mx(void)
{
	const char *rcpts[] = { "bob@example.test", NULL };
	const char *ips[] = { "127.0.0.2", "127.0.0.3", "127.0.0.5", NULL };
	int port = free_port(ips, false);
	char dir[400], hop[64], want[300];
	struct msg m;
	struct run r;
	pid_t bad, good;

	snprintf(dir, sizeof dir, "%s/dump3", tmp);
	bad = sink_start("127.0.0.2", port, NULL, "-r", "CONNECT");
	good = sink_start("127.0.0.3", port, dir, NULL, NULL);
	make_msg(&m, CONTENT, rcpts, false);

	snprintf(hop, sizeof hop, "example.test:%d", port);
	deliver(&r, &m, cfg, "smtp", hop);
	snprintf(want, sizeof want, "mx2.example.test[127.0.0.3]:%d", port);
	CHECK(result(&r, 0, 2, "2.0.0", "250") && strcmp(r.req.relay, want) == 0,
	      &r, "MX in preference order; the best greets 4xx, so the next "
	      "one (%s) gets it", want);
	delivery_clear(&r.req);

	snprintf(hop, sizeof hop, "nomx.test:%d", port);
	deliver(&r, &m, cfg, "smtp", hop);
	snprintf(want, sizeof want, "nomx.test[127.0.0.3]:%d", port);
	CHECK(result(&r, 0, 2, "2.0.0", "250") && strcmp(r.req.relay, want) == 0,
	      &r, "no MX record: the domain's own address (%s)", want);
	delivery_clear(&r.req);

	snprintf(hop, sizeof hop, "dead.test:%d", port);
	deliver(&r, &m, cfg, "smtp", hop);
	snprintf(want, sizeof want, "connect to mxdead.example.test[127.0.0.5]:%d: "
		 "Connection refused", port);
	CHECK(result(&r, 0, 4, "4.4.1", want), &r, "every MX unreachable: "
	      "deferred with the last reason");
	delivery_clear(&r.req);

	deliver(&r, &m, cfg, "smtp", "null.test");
	CHECK(result(&r, 0, 5, "5.1.10", "Recipient address has null MX"), &r,
	      "null MX (RFC 7505): bounced 5.1.10");
	delivery_clear(&r.req);

	deliver(&r, &m, cfg, "smtp", "nosuchdomain.test");
	CHECK(result(&r, 0, 5, "5.4.4", "Host or domain name not found. Name "
		     "service error for name=nosuchdomain.test type=MX: Host not "
		     "found"), &r, "a domain that does not exist: bounced 5.4.4");
	delivery_clear(&r.req);

	snprintf(hop, sizeof hop, "[mx2.example.test]:%d", port);
	deliver(&r, &m, cfg, "smtp", hop);
	snprintf(want, sizeof want, "mx2.example.test[127.0.0.3]:%d", port);
	CHECK(result(&r, 0, 2, "2.0.0", "250") && strcmp(r.req.relay, want) == 0,
	      &r, "[host]:port: the host's address, no MX lookup");
	finish(&r, &m, bad);
	stop(good);
}

/* ---- LMTP ------------------------------------------------------------- */

static const struct rule lmtp_rules[] = {
	{ "RCPT TO:<dave@", "550 5.1.1 <dave@example.net> User doesn't exist" },
	{ ".carol@example.net", "452 4.2.2 <carol@example.net> Quota exceeded" },
	{ ".erin@example.net", "552 5.2.2 <erin@example.net> Mailbox full" },
	{ NULL, NULL }
};

static void test_lmtp_unix(void)
{
	const char *rcpts[] = { "bob@example.net", "carol@example.net",
				"dave@example.net", "erin@example.net", NULL };
	struct mini mm = { "220 lmtp.test LMTP ready", lmtp_rules, true, NULL };
	char log[400], sock[400], hop[500], want[500];
	struct msg m;
	struct run r;
	pid_t pid;
	char *t;

	snprintf(log, sizeof log, "%s/lmtp.log", tmp);
	snprintf(sock, sizeof sock, "%s/lmtp.sock", tmp);
	mm.log = log;
	pid = mini_unix(sock, &mm);
	make_msg(&m, CONTENT, rcpts, false);
	snprintf(hop, sizeof hop, "unix:%s", sock);
	deliver(&r, &m, cfg_lmtp, "lmtp", hop);
	CHECK(result(&r, 0, 2, "2.1.5", "250 2.1.5 Ok delivered")
	      && result(&r, 1, 4, "4.2.2", "said: 452 4.2.2 <carol@example.net> "
			"Quota exceeded (in reply to end of DATA command)")
	      && result(&r, 2, 5, "5.1.1", "(in reply to RCPT TO command)")
	      && result(&r, 3, 5, "5.2.2", "said: 552 5.2.2 <erin@example.net> "
			"Mailbox full (in reply to end of DATA command)"), &r,
	      "LMTP over a unix socket: one reply per accepted recipient after "
	      "the dot; only the failed ones fail");
	snprintf(want, sizeof want, MYHOST "[%s]", sock);
	is_str(r.req.relay, want, "LMTP unix relay= is myhostname[path]");
	t = slurp(log);
	ok(has(t, "LHLO " MYHOST "\n"), "LMTP says LHLO");
	free(t);
	finish(&r, &m, pid);
}

static void test_lmtp_sink(void)
{
	const char *rcpts[] = { "bob@example.net", "carol@example.net", NULL };
	const char *ips[] = { "127.0.0.1", NULL };
	int port = free_port(ips, false), n;
	char dir[400], hop[64];
	struct msg m;
	struct run r;
	pid_t sink;

	snprintf(dir, sizeof dir, "%s/dump4", tmp);
	sink = sink_start("127.0.0.1", port, dir, "-L", NULL);
	make_msg(&m, CONTENT, rcpts, false);
	snprintf(hop, sizeof hop, "inet:127.0.0.1:%d", port);
	deliver(&r, &m, cfg_lmtp, "lmtp", hop);
	CHECK(result(&r, 0, 2, "2.2.0", "250") && result(&r, 1, 2, "2.2.0", "250"),
	      &r, "LMTP over TCP (inet:host:port) to smtp-sink -L");
	spin(50);
	free(read_dump(dir, &n));
	is_int(n, 1, "smtp-sink -L got the message once");
	finish(&r, &m, sink);
}

/* ---- connection reuse ------------------------------------------------- */

static void test_reuse(void)
{
	const char *rcpts[] = { "bob@example.net", NULL };
	struct mini mm = { "220 mini.test ESMTP", NULL, false, NULL };
	char log[400];
	struct msg m;
	struct run r1, r2;
	int port;
	pid_t pid;
	char *t;

	pid = mini_logged(&mm, log, sizeof log, "mini5.log", &port);
	make_msg(&m, CONTENT, rcpts, false);
	deliver(&r1, &m, cfg_reuse, "smtp", hop_of(port));
	deliver(&r2, &m, cfg_reuse, "smtp", hop_of(port));
	CHECK(result(&r1, 0, 2, "2.0.0", "250") && result(&r2, 0, 2, "2.0.0", "250"),
	      &r2, "two deliveries to one next hop");
	t = slurp(log);
	ok(count(t, "EHLO ") == 1 && count(t, "MAIL FROM") == 2
	   && !has(t, "QUIT"), "the second reused the first's connection");
	free(t);
	spin(1500);             /* smtp_connection_cache_time_limit = 1s */
	t = slurp(log);
	ok(has(t, "QUIT"), "an idle cached connection says QUIT after "
	   "smtp_connection_cache_time_limit");
	free(t);
	delivery_clear(&r1.req);
	finish(&r2, &m, pid);
}

/* A cached connection whose server went away is not a failure: the
 * delivery connects afresh. */
static void test_stale_reuse(void)
{
	const char *rcpts[] = { "bob@example.net", NULL };
	struct mini mm = { "220 mini.test ESMTP", NULL, false, NULL };
	char log[400];
	struct msg m;
	struct run r1, r2;
	int port;
	pid_t pid;
	char *t;

	pid = mini_logged(&mm, log, sizeof log, "mini6.log", &port);
	make_msg(&m, CONTENT, rcpts, false);
	deliver(&r1, &m, cfg_reuse, "smtp", hop_of(port));
	stop(pid);              /* the cached connection's server is gone */
	pid = mini_start(tcp_socket("127.0.0.1", port, SOCK_STREAM), &mm);
	deliver(&r2, &m, cfg_reuse, "smtp", hop_of(port));
	CHECK(result(&r1, 0, 2, "2.0.0", "250") && result(&r2, 0, 2, "2.0.0", "250"),
	      &r2, "a dead cached connection: the next delivery connects afresh");
	t = slurp(log);
	ok(count(t, "EHLO ") == 2 && count(t, "MAIL FROM") == 2,
	   "two sessions, one delivery each");
	free(t);
	delivery_clear(&r1.req);
	finish(&r2, &m, pid);
}

/* ---- setup ------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

int main(void)
{
	char tmpl[] = "/tmp/sluice-smtpc-test.XXXXXX", err[256];

	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(tmpl) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	chmod(tmpl, 0755);
	snprintf(tmp, sizeof tmp, "%s", tmpl);
	snprintf(qdir, sizeof qdir, "%s/queue", tmp);
	if (access("/usr/sbin/smtp-sink", X_OK) != 0) {
		printf("1..0 # SKIP smtp-sink (postfix) is not installed\n");
		return 0;
	}
	if (queue_dirs_ensure(qdir, (uid_t)-1, (gid_t)-1, err, sizeof err) < 0) {
		printf("Bail out! %s\n", err);
		return 1;
	}
	base = event_base_new();
	if (getenv("SMTPC_TEST_VERBOSE"))
		log_set_verbose(1);
	bool have_dns = dnsmasq_start();

	cfg = load_config("c1", dns_port, "smtp_connection_cache_on_demand = no\n"
			  "smtp_mail_timeout = 1s\n");
	cfg_reuse = load_config("c2", dns_port,
				"smtp_connection_cache_time_limit = 1s\n");
	cfg_lmtp = load_config("c3", dns_port,
			       "lmtp_connection_cache_on_demand = no\n");
	if (dns_start(base, cfg_str(cfg, "dns_servers")) < 0) {
		printf("Bail out! cannot start the resolver\n");
		return 1;
	}

	test_sink_delivery();
	test_sink_rcpt_reject();
	test_loop();
	test_refused();
	test_per_rcpt();
	test_helo_fallback();
	test_size();
	test_failures();
	test_limits();
	if (have_dns)
		test_mx();
	else
		ok(true, "# SKIP dnsmasq is not installed or did not start");
	test_lmtp_unix();
	test_lmtp_sink();
	test_reuse();
	test_stale_reuse();

	smtp_client_shutdown();
	dns_stop();
	stop_all();
	event_base_free(base);
	for (int i = 0; i < nloaded; i++)
		config_free(loaded[i]);
	nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
