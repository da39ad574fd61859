/* zlink: a ZeroMQ socket taking part in the event loop. libzmq signals readiness through
 * ZMQ_FD, which is edge-triggered and may stay quiet after a send changed the socket's
 * state, so pending messages are drained on every wake-up of the fd and again before every
 * wait (a before-sleep hook), as the libzmq documentation requires. */
#ifndef COMMON_ZLINK_H
#define COMMON_ZLINK_H

#include <stddef.h>

#include "config.h"
#include "evloop.h"
#include "metrics.h"

/* The link uses at most 3 parts; a ZAP request (RFC 27) has 7. */
#define ZLINK_MAX_PARTS 8

typedef struct {
    const void *data;
    size_t len;
} zpart_t;

/* One complete multipart message (extra parts beyond ZLINK_MAX_PARTS are dropped and
 * counted in nparts as ZLINK_MAX_PARTS + 1, so the receiver can reject it). */
typedef void (*zlink_cb)(void *ud, const zpart_t *parts, int nparts);

typedef struct zlink zlink_t;

/* The key link_hwm. */
extern const config_key_t zlink_config_keys[];

/* Sets the options both ends of the frontend-router link share: linger, high-water marks
 * of `hwm` messages each way (link_hwm: how many messages may wait in ZeroMQ for one peer
 * before a send fails with EAGAIN; docs/PROTOCOL.md, "Behaviour"), and ZMTP heartbeats
 * that notice a dead TCP connection sending no FIN. */
void zlink_link_options(void *sock, int hwm);
/* Takes part in `loop` with the ZeroMQ socket `sock` (not owned). */
zlink_t *zlink_new(evloop_t *loop, void *sock, zlink_cb cb, void *ud);
void zlink_destroy(zlink_t **link_p);
/* Sends a multipart message without blocking. 0, or -1 with errno (EAGAIN when the pipe is
 * full, EHOSTUNREACH when a ROUTER_MANDATORY peer is unknown). */
int zlink_send(zlink_t *link, const zpart_t *parts, int nparts);
/* Receives what is waiting (zlink_new's callback) and asks ZMQ_EVENTS, which re-arms the
 * socket's edge-triggered descriptor: for a before-sleep hook that may have sent on the
 * link after the link's own drain (a send can take the edge an arrival raised). */
void zlink_drain(zlink_t *link);

/* The link's traffic as both ends count it: xmpp_link_messages_total and
 * xmpp_link_bytes_total by direction (header and stanza frames). */
typedef struct {
    metric_t *msgs_in, *msgs_out, *bytes_in, *bytes_out;
} zlink_metrics_t;
void zlink_metrics_register(zlink_metrics_t *m);

#endif
