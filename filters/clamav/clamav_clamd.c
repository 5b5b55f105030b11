/*
 * clamav_clamd.c - the clamd scanner: the message goes to clamd's
 * INSTREAM command (clamd(8)) over a unix or TCP socket, from a
 * thread-pool thread.
 *
 * Promises: the socket is "unix:/path", "inet:host:port" or a bare
 * absolute path (as clamav-milter's ClamdSocket); every connect, write
 * and read is bounded by clamav_clamd_timeout, so a stuck clamd costs a
 * pool thread at most that long and the message gets
 * clamav_failure_action; clamd's answers are mapped exactly: "stream: OK"
 * clean, "stream: NAME FOUND" infected, anything else (ERROR, "INSTREAM
 * size limit exceeded", a closed socket) an error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "clamav.h"

#define CLAMD_CHUNK 65536

static void fail(struct clamav_scan *sc, const char *what, const char *why)
{
	sc->result = CLAMAV_ERROR;
	snprintf(sc->error, sizeof sc->error, "clamd %.100s: %.140s", what, why);
}

static void set_timeouts(int fd, int timeout_sec)
{
	struct timeval tv = { .tv_sec = timeout_sec, .tv_usec = 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int connect_unix(const char *path, int timeout_sec)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	set_timeouts(fd, timeout_sec);
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int connect_inet(const char *hostport, int timeout_sec)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char host[256];
	const char *colon = strrchr(hostport, ':');
	int fd = -1;

	if (colon == NULL || (size_t)(colon - hostport) >= sizeof host) {
		errno = EINVAL;
		return -1;
	}
	snprintf(host, sizeof host, "%.*s", (int)(colon - hostport), hostport);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
		errno = EHOSTUNREACH;
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
			continue;
		set_timeouts(fd, timeout_sec);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static int clamd_connect(const char *spec, int timeout_sec)
{
	if (!strncmp(spec, "unix:", 5))
		return connect_unix(spec + 5, timeout_sec);
	if (!strncmp(spec, "inet:", 5))
		return connect_inet(spec + 5, timeout_sec);
	if (spec[0] == '/')
		return connect_unix(spec, timeout_sec);
	return connect_inet(spec, timeout_sec);
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_stream(int fd, const struct clamav_scan *sc)
{
	static const char cmd[] = "zINSTREAM";   /* sent with its NUL */
	uint32_t nlen;

	if (write_all(fd, cmd, sizeof cmd) < 0)
		return -1;
	for (size_t off = 0; off < sc->len; off += CLAMD_CHUNK) {
		size_t n = sc->len - off < CLAMD_CHUNK ? sc->len - off : CLAMD_CHUNK;

		nlen = htonl((uint32_t)n);
		if (write_all(fd, &nlen, 4) < 0 || write_all(fd, sc->buf + off, n) < 0)
			return -1;
	}
	nlen = 0;
	return write_all(fd, &nlen, 4);
}

/* clamd's answer, up to its NUL (z-commands) or the connection's end. */
static int read_reply(int fd, char *buf, size_t size)
{
	size_t got = 0;

	while (got + 1 < size) {
		ssize_t r = recv(fd, buf + got, size - 1 - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0 || memchr(buf + got, 0, (size_t)r)) {
			got += (size_t)r;
			break;
		}
		got += (size_t)r;
	}
	buf[got] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static void parse_reply(struct clamav_scan *sc, const char *reply)
{
	const char *p = strncmp(reply, "stream: ", 8) ? reply : reply + 8;
	size_t n = strlen(p);

	if (!strcmp(p, "OK")) {
		sc->result = CLAMAV_CLEAN;
	} else if (n > 6 && !strcmp(p + n - 6, " FOUND")) {
		sc->result = CLAMAV_INFECTED;
		snprintf(sc->virus, sizeof sc->virus, "%.*s", (int)(n - 6), p);
	} else {
		fail(sc, "answered", *reply ? reply : "nothing");
	}
}

void clamav_clamd_scan(struct clamav_scan *sc, const char *spec,
		       int timeout_sec)
{
	char reply[512];
	int fd;

	if ((fd = clamd_connect(spec, timeout_sec)) < 0) {
		fail(sc, spec, strerror(errno));
		return;
	}
	if (send_stream(fd, sc) < 0)
		fail(sc, "write", strerror(errno));
	else if (read_reply(fd, reply, sizeof reply) < 0)
		fail(sc, "read", strerror(errno));
	else
		parse_reply(sc, reply);
	close(fd);
}
