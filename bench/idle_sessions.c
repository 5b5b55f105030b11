/*
 * idle_sessions - open N SMTP sessions to one server, read each banner,
 * and hold them all open, idle, until told to let go.
 *
 *   idle_sessions HOST PORT N TIMEOUT_SECONDS
 *
 * bench/run compiles this into its temp dir (cc -O2) and runs it once per
 * server.  It connects with at most 256 connects in flight, waits for each
 * session's greeting, and prints one line to stdout as soon as every
 * session has either been greeted or failed, or TIMEOUT_SECONDS have
 * passed:
 *
 *   greeted G refused R failed F pending P seconds S
 *
 * greeted: a "220 " line arrived;  refused: another reply came (421 ...);
 * failed: connect error or the server closed;  pending: neither, when the
 * time ran out (a server that cannot take more leaves them in its listen
 * queue).  Then it sends nothing at all and keeps every socket open until
 * its stdin reaches end of file (bench/run closes the pipe) or it gets
 * SIGTERM; then it closes them and exits 0.
 *
 * One epoll loop, nonblocking sockets; it raises its own RLIMIT_NOFILE to
 * N + 64 when the hard limit allows (bench/run raises that first).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CONNECTING, GREETING, GREETED, REFUSED, FAILED };

struct sess {
	int fd;
	int state;
	int len;
	char buf[64];
};

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: idle_sessions HOST PORT N TIMEOUT\n");
		return 2;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(atoi(argv[2])) };
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "idle_sessions: bad address %s\n", argv[1]);
		return 2;
	}
	int n = atoi(argv[3]);
	double timeout = atof(argv[4]);
	if (n <= 0)
		return 2;

	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = (rlim_t)n + 64;
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
			rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);

	struct sess *s = calloc(n, sizeof *s);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!s || ep < 0) {
		perror("idle_sessions");
		return 1;
	}
	int opened = 0, inflight = 0, done = 0;
	int count[FAILED + 1] = { 0 };
	double t0 = now(), deadline = t0 + timeout;
	struct epoll_event evs[512];

	while (done < n && now() < deadline && !stop) {
		/* Keep up to 256 sessions between connect() and their banner. */
		while (opened < n && inflight < 256) {
			struct sess *x = &s[opened];
			x->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (x->fd < 0) {
				fprintf(stderr, "idle_sessions: socket #%d: %s\n", opened,
					strerror(errno));
				x->state = FAILED;
				count[FAILED]++;
				done++;
				opened++;
				continue;
			}
			if (connect(x->fd, (struct sockaddr *)&sa, sizeof sa) < 0 &&
			    errno != EINPROGRESS) {
				x->state = FAILED;
				count[FAILED]++;
				done++;
				close(x->fd);
				x->fd = -1;
				opened++;
				continue;
			}
			x->state = CONNECTING;
			struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT,
						  .data.u32 = (uint32_t)opened };
			epoll_ctl(ep, EPOLL_CTL_ADD, x->fd, &ev);
			opened++;
			inflight++;
		}
		int left_ms = (int)((deadline - now()) * 1000);
		if (left_ms <= 0)
			break;
		int k = epoll_wait(ep, evs, 512, left_ms < 200 ? left_ms : 200);
		for (int i = 0; i < k; i++) {
			struct sess *x = &s[evs[i].data.u32];
			int fin = -1;
			if (x->state == CONNECTING) {
				int err = 0;
				socklen_t l = sizeof err;
				getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &l);
				if (err)
					fin = FAILED;
				else {
					x->state = GREETING;
					struct epoll_event ev = { .events = EPOLLIN,
								  .data = evs[i].data };
					epoll_ctl(ep, EPOLL_CTL_MOD, x->fd, &ev);
				}
			}
			if (fin < 0 && x->state == GREETING && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				ssize_t r = read(x->fd, x->buf + x->len, sizeof x->buf - 1 - x->len);
				if (r <= 0) {
					if (r < 0 && errno == EAGAIN)
						continue;
					fin = FAILED;
				} else {
					x->len += r;
					x->buf[x->len] = 0;
					/* The greeting's last line is "220 "; a multi-line
					 * "220-" greeting is read on until then. */
					char *line = x->buf;
					char *nl;
					while ((nl = strchr(line, '\n'))) {
						if (strncmp(line, "220 ", 4) == 0) {
							fin = GREETED;
							break;
						}
						if (strncmp(line, "220-", 4) != 0) {
							fin = REFUSED;
							break;
						}
						line = nl + 1;
					}
					if (fin < 0) {
						/* keep the unfinished line */
						memmove(x->buf, line, strlen(line) + 1);
						x->len = strlen(x->buf);
						if (x->len >= (int)sizeof x->buf - 1)
							x->len = 0;
					}
				}
			}
			if (fin >= 0) {
				x->state = fin;
				count[fin]++;
				done++;
				inflight--;
				/* Held sockets stay open but out of the loop. */
				epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
				if (fin != GREETED) {
					close(x->fd);
					x->fd = -1;
				}
			}
		}
	}
	printf("greeted %d refused %d failed %d pending %d seconds %.2f\n",
	       count[GREETED], count[REFUSED], count[FAILED], n - done, now() - t0);
	fflush(stdout);

	/* Hold everything until stdin closes or SIGTERM. */
	char c;
	while (!stop && read(0, &c, 1) > 0)
		;
	for (int i = 0; i < opened; i++)
		if (s[i].fd > 0)
			close(s[i].fd);
	return 0;
}
