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
#include "zbatch.h" /* zpart_t, zlink_cb, ZLINK_MAX_PARTS */

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
 * full, EHOSTUNREACH when a ROUTER_MANDATORY peer is unknown). To a peer that takes
 * batches (zlink_batch_to) the message joins that peer's batch, sent before the loop
 * waits (or at once when it reaches 8 KiB); -1 EAGAIN then means that a full batch waits
 * for a full pipe, and EHOSTUNREACH that an earlier batch found the peer gone (until a message
 * comes from it again). */
int zlink_send(zlink_t *link, const zpart_t *parts, int nparts);
/* Receives what is waiting (zlink_new's callback) and asks ZMQ_EVENTS, which re-arms the
 * socket's edge-triggered descriptor: for a before-sleep hook that may have sent on the
 * link after the link's own drain (a send can take the edge an arrival raised). 1 when
 * something was received. */
int zlink_drain(zlink_t *link);

/* Batches (docs/PROTOCOL.md, "Batches"): the messages sent to one peer in one pass of the
 * loop travel as one ZeroMQ message, which saves libzmq's per-message signalling between
 * threads (bench/README.md, "Where the time goes"). Both ends must agree: the link's hello
 * says so (IPC_HELLO_BATCH). */
/* The longest batch frame: a receiver that limits message sizes (ZMQ_MAXMSGSIZE) allows
 * at least this. */
#define ZLINK_BATCH_MAX (16 * 1024 + 64)
/* Opens the batches that come (a message that is not one passes as it is). */
void zlink_batches(zlink_t *link);
/* From now on, messages to this peer are batched (a ROUTER socket: the peer's routing id;
 * a DEALER: ident is ignored). Also calls zlink_batches. */
void zlink_batch_to(zlink_t *link, const void *ident, size_t len);
/* A batch found its peer gone (EHOSTUNREACH) or failed otherwise: each message in it goes
 * to cb (parts with the routing id first on a ROUTER socket), so that its sender can do
 * what it does for a send that fails at once (the router bounces deliveries). */
void zlink_on_lost(zlink_t *link, zlink_cb cb, void *ud);
/* What waits unsent in the batch for this peer goes to cb instead, message by message in
 * order (parts without the routing id, valid during the call); the batch is then empty.
 * For a sender that keeps its own buffer for a peer that went away. */
void zlink_take_back(zlink_t *link, const void *ident, size_t len, zlink_cb cb, void *ud);
/* The peer is gone or restarted: what waits for it is sent (or lost), and its messages are
 * no longer batched. */
void zlink_forget(zlink_t *link, const void *ident, size_t len);

/* The link's traffic as both ends count it: xmpp_link_messages_total and
 * xmpp_link_bytes_total by direction (header and stanza frames). */
typedef struct {
    metric_t *msgs_in, *msgs_out, *bytes_in, *bytes_out;
} zlink_metrics_t;
void zlink_metrics_register(zlink_metrics_t *m);

#endif
