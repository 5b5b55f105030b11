/*
 * master_listen.c - bind the listening sockets of master.cf's listeners.
 *
 * A listener with an address in its service name ("127.0.0.1:2525",
 * "[::1]:587") listens on that address; the others ("smtp", "submission")
 * on every address of inet_interfaces ("all", "loopback-only", or a list
 * of addresses and host names), in the families inet_protocols allows.
 * Every socket has SO_REUSEADDR, is nonblocking and close-on-exec, and
 * listens with a LISTEN_BACKLOG backlog (the kernel caps it at
 * net.core.somaxconn); IPv6 sockets are IPV6_V6ONLY, since the IPv4
 * wildcard gets a socket of its own.
 *
 * The promise for reload: a socket is known by its numeric address and
 * port ("127.0.0.1:25", "[::1]:25").  When the new configuration wants an
 * address that is already bound, the same socket is carried over, so the
 * connections waiting in its backlog are served by the new workers; and a
 * reload that cannot bind everything changes nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "config.h"
#include "master.h"

#define LISTEN_BACKLOG	4096	/* bursts of connections wait, not retry */

static const struct {
	const char *name;
	const char *port;
} well_known_ports[] = {	/* when /etc/services lacks them */
	{ "smtp", "25" }, { "submission", "587" }, { "smtps", "465" },
	{ "submissions", "465" }, { "lmtp", "24" },
};

/* ---- resolving ----------------------------------------------------- */

static const char *numeric_port(const char *port, char *buf, size_t len)
{
	const struct servent *se;
	const char *p;

	for (p = port; *p && isdigit((unsigned char)*p); p++)
		;
	if (*port && *p == 0)
		return port;
	if ((se = getservbyname(port, "tcp")) != NULL) {
		snprintf(buf, len, "%d", ntohs((unsigned short)se->s_port));
		return buf;
	}
	for (size_t i = 0; i < sizeof well_known_ports / sizeof well_known_ports[0]; i++)
		if (strcasecmp(port, well_known_ports[i].name) == 0)
			return well_known_ports[i].port;
	return NULL;
}

/* May this listener use address family `family` (inet_protocols)? */
static bool family_allowed(const struct config *c, int family)
{
	const char *protocols = cfg_str(c, "inet_protocols");

	if (*protocols == 0 || strcasecmp(protocols, "all") == 0)
		return true;
	if (family == AF_INET)
		return strstr(protocols, "ipv4") != NULL;
	if (family == AF_INET6)
		return strstr(protocols, "ipv6") != NULL;
	return false;
}

/* "[::1]" -> "::1", in place. */
static char *strip_brackets(char *host)
{
	size_t len = strlen(host);

	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		host[len - 1] = 0;
		return host + 1;
	}
	return host;
}

/* A NULL-terminated malloc'ed list of one or two hosts (as cfg_list). */
static char **host_list(const char *first, const char *second)
{
	char **list = calloc(3, sizeof *list);

	if (list == NULL)
		return NULL;
	if ((list[0] = strdup(first)) == NULL
	    || (second != NULL && (list[1] = strdup(second)) == NULL)) {
		cfg_list_free(list);
		return NULL;
	}
	return list;
}

/* The hosts a listener binds; "" stands for the wildcard addresses.
 * *implied: they come from "all" or "loopback-only", where an address
 * of a family this host or inet_protocols lacks is skipped quietly. */
static char **listener_hosts(const struct listener *l, bool *implied)
{
	const char *ifaces;

	*implied = false;
	if (l->host != NULL && *l->host != 0)
		return host_list(l->host, NULL);
	ifaces = cfg_str(l->cfg, "inet_interfaces");
	*implied = true;
	if (*ifaces == 0 || strcasecmp(ifaces, "all") == 0)
		return host_list("", NULL);
	if (strcasecmp(ifaces, "loopback-only") == 0)
		return host_list("127.0.0.1", "::1");
	*implied = false;
	return cfg_list(l->cfg, "inet_interfaces");
}

/* "127.0.0.1:25" or "[::1]:25" */
static int address_key(const struct addrinfo *ai, char *key, size_t len)
{
	char host[64], serv[16];	/* numeric, with an IPv6 scope */

	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof host,
			serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return -1;
	if (ai->ai_family == AF_INET6)
		snprintf(key, len, "[%s]:%s", host, serv);
	else
		snprintf(key, len, "%s:%s", host, serv);
	return 0;
}

/* ---- the set ------------------------------------------------------- */

static struct master_socket *set_find(struct socket_set *set, const char *key)
{
	if (set == NULL)
		return NULL;
	for (int i = 0; i < set->n; i++)
		if (strcmp(set->v[i].key, key) == 0)
			return &set->v[i];
	return NULL;
}

static struct master_socket *set_add(struct socket_set *set)
{
	struct master_socket *v;

	if (set->n == set->cap) {
		int cap = set->cap ? 2 * set->cap : 8;

		if ((v = realloc(set->v, (size_t)cap * sizeof *v)) == NULL)
			return NULL;
		set->v = v;
		set->cap = cap;
	}
	v = &set->v[set->n++];
	memset(v, 0, sizeof *v);
	v->ws.fd = -1;
	return v;
}

/* Undo a failed listen_open(): close what it bound, give back what it
 * took from prev. */
static void set_abandon(struct socket_set *next, struct socket_set *prev)
{
	for (int i = 0; i < next->n; i++)
		if (!next->v[i].kept && next->v[i].ws.fd >= 0)
			close(next->v[i].ws.fd);
	for (int i = 0; prev != NULL && i < prev->n; i++)
		prev->v[i].kept = false;
	free(next->v);
	memset(next, 0, sizeof *next);
}

void listen_close_unused(struct socket_set *set)
{
	for (int i = 0; i < set->n; i++)
		if (!set->v[i].kept && set->v[i].ws.fd >= 0)
			close(set->v[i].ws.fd);
	free(set->v);
	memset(set, 0, sizeof *set);
}

/* ---- binding ------------------------------------------------------- */

static int bind_socket(const struct addrinfo *ai)
{
	int fd, one = 1, saved;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0
	    || (ai->ai_family == AF_INET6
		&& setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
	    || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0
	    || listen(fd, LISTEN_BACKLOG) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static void bind_error(const struct listener *l, const char *key,
		       const char *why, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s:%d: service %s: listen on %s: %s",
		 l->file ? l->file : "master.cf", l->line, l->service, key, why);
}

/* Add the socket for one resolved address of listener l. */
static int add_address(struct socket_set *next, struct socket_set *prev,
		       struct listener *l, const struct addrinfo *ai,
		       bool implied, char *err, size_t errlen)
{
	struct master_socket *ms, *old;
	char key[sizeof ms->key];
	int fd;

	if (address_key(ai, key, sizeof key) < 0) {
		bind_error(l, "an address", "cannot convert it to text", err, errlen);
		return -1;
	}
	if ((ms = set_find(next, key)) != NULL) {
		if (ms->ws.listener == l)
			return 0;	/* the resolver said it twice */
		snprintf(err, errlen, "%s:%d: service %s: %s is already used by "
			 "service %s", l->file ? l->file : "master.cf", l->line,
			 l->service, key, ms->ws.listener->service);
		return -1;
	}
	if ((old = set_find(prev, key)) != NULL && !old->kept) {
		old->kept = true;
		fd = old->ws.fd;
	} else if ((fd = bind_socket(ai)) < 0) {
		if (implied && ai->ai_family == AF_INET6
		    && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL))
			return 0;	/* no IPv6 here: IPv4 serves */
		bind_error(l, key, strerror(errno), err, errlen);
		return -1;
	}
	if ((ms = set_add(next)) == NULL) {
		if (old == NULL || old->ws.fd != fd)
			close(fd);
		bind_error(l, key, "out of memory", err, errlen);
		return -1;
	}
	snprintf(ms->key, sizeof ms->key, "%s", key);
	ms->ws.fd = fd;
	ms->ws.listener = l;
	ms->kept = (old != NULL && old->ws.fd == fd);
	if (l->fd < 0)
		l->fd = fd;
	return 0;
}

/* Bind every address of one host (or of the wildcard, host ""). */
static int open_host(struct socket_set *next, struct socket_set *prev,
		     struct listener *l, char *host, const char *port,
		     bool implied, char *err, size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	const char *shown = *host ? host : "*";
	int rc, status = 0;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	host = strip_brackets(host);
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		bind_error(l, shown, gai_strerror(rc), err, errlen);
		return -1;
	}
	for (ai = res; ai != NULL && status == 0; ai = ai->ai_next)
		if (family_allowed(l->cfg, ai->ai_family))
			status = add_address(next, prev, l, ai, implied, err, errlen);
	freeaddrinfo(res);
	return status;
}

static int open_listener(struct socket_set *next, struct socket_set *prev,
			 struct listener *l, char *err, size_t errlen)
{
	char portbuf[16];
	const char *port = numeric_port(l->port ? l->port : "smtp",
					portbuf, sizeof portbuf);
	int status = 0, before = next->n;
	char **hosts;
	bool implied;

	if (port == NULL) {
		bind_error(l, l->port, "unknown service name; use a port number",
			   err, errlen);
		return -1;
	}
	if ((hosts = listener_hosts(l, &implied)) == NULL) {
		bind_error(l, l->service, "out of memory", err, errlen);
		return -1;
	}
	for (int i = 0; hosts[i] != NULL && status == 0; i++)
		status = open_host(next, prev, l, hosts[i], port, implied,
				   err, errlen);
	cfg_list_free(hosts);
	if (status == 0 && next->n == before) {
		bind_error(l, l->service, "no address to listen on (see "
			   "inet_interfaces and inet_protocols)", err, errlen);
		return -1;
	}
	return status;
}

int listen_open(struct socket_set *next, struct sluice_config *sc,
		struct socket_set *prev, char *err, size_t errlen)
{
	memset(next, 0, sizeof *next);
	for (int i = 0; i < sc->nlisteners; i++)
		sc->listeners[i].fd = -1;
	for (int i = 0; i < sc->nlisteners; i++) {
		if (open_listener(next, prev, &sc->listeners[i], err, errlen) < 0) {
			set_abandon(next, prev);
			for (int j = 0; j < sc->nlisteners; j++)
				sc->listeners[j].fd = -1;
			return -1;
		}
	}
	for (int i = 0; i < next->n; i++)
		next->v[i].kept = false;
	return 0;
}
