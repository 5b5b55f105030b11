/*
 * delivery_client.h - the queue manager's side of the delivery process
 * (delivery_server.h): local, virtual and pipe deliveries, which need
 * root, are sent there as requests (delivery_proto.h) instead of running
 * in the queue manager, which has no root at all.
 *
 * delivery_client_deliver() has the shape of an agent (delivery.h): it
 * starts the delivery without blocking, and calls done(req, arg) once,
 * from the loop, with every recipient's result.  Many requests are in
 * flight at once on one connection, made when the first is sent and made
 * again after it is lost.  When the delivery process cannot be reached,
 * or the connection breaks with requests in flight (the process died or
 * was restarted), those recipients are deferred (4.3.0): a delivery cut
 * off in flight may be repeated, never lost.
 */
#ifndef SLUICE_DELIVERY_CLIENT_H
#define SLUICE_DELIVERY_CLIENT_H

#include "delivery.h"

struct event_base;
struct delivery_client;

/* A client for the socket at `path` (relative to the working directory,
 * queue_directory); nothing is connected yet. */
struct delivery_client *delivery_client_new(struct event_base *base,
					    const char *path);
/* Close the connection; requests still in flight are forgotten (their
 * done() is never called). */
void delivery_client_free(struct delivery_client *c);
/* Send req: req->queue_id, transport, nexthop and each recipient's
 * address, original address and queue_index go; results come back into
 * req (status, dsn, text, relay, t_conn, t_done).  A recipient whose
 * address the delivery process would refuse (dp_addr_ok) bounces here
 * with 5.1.3, as local(8) bounces a bad address. */
void delivery_client_deliver(struct delivery_client *c,
			     struct delivery_request *req,
			     delivery_done_fn done, void *arg);
/* The most recipients one request may carry (DP_RCPT_MAX). */
int delivery_client_rcpt_max(void);

#endif
