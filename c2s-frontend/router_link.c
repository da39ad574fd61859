/* The link to the session-router: a ZeroMQ DEALER socket whose routing id carries this
 * frontend's name and boot epoch, hello and heartbeats, and dispatch of what the router
 * sends (credentials, bind replies, deliveries, close orders). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "client.h"
#include "config.h"
#include "log.h"

static ev_timer_t *heartbeat_timer;
static long heartbeat_ms;

int router_send(const ipc_hdr_t *h, const char *payload, size_t len)
{
    unsigned char hdr[IPC_HDR_MAX];
    zpart_t parts[2] = {{hdr, ipc_encode(h, hdr)}, {payload, len}};
    if (zlink_send(fe.link, parts, payload ? 2 : 1) < 0) {
        log_warn("router link: cannot send %s: %s", ipc_type_name((ipc_type_t)h->type),
                 zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static void send_hello(ipc_type_t type)
{
    ipc_hdr_t h;
    ipc_hdr_init(&h, type, fe.epoch);
    ipc_hdr_set(&h, 0, fe.name);
    router_send(&h, NULL, 0);
}

static void on_heartbeat(evloop_t *loop, void *ud)
{
    (void)ud;
    send_hello(IPC_HEARTBEAT);
    heartbeat_timer = evloop_timer(loop, (uint64_t)heartbeat_ms, on_heartbeat, NULL);
}

static void deliver(client_t *c, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)h;
    if (!c->bound || !payload)
        return;
    client_write(c, payload->data, payload->len);
}

static void on_message(void *ud, const zpart_t *parts, int nparts)
{
    (void)ud;
    ipc_hdr_t h;
    if (nparts < 1 || nparts > 2 || ipc_decode(&h, parts[0].data, parts[0].len) < 0) {
        log_warn("router link: dropped a malformed message (%d parts)", nparts);
        return;
    }
    const zpart_t *payload = nparts == 2 ? &parts[1] : NULL;
    if (h.type == IPC_HELLO || h.type == IPC_HEARTBEAT) {
        if (h.conn != fe.router_epoch) {
            log_info("router link: router epoch %" PRIx64 " (%s)", h.conn, h.field[0]);
            /* A router we have not greeted (it restarted): say hello so it knows us. */
            if (fe.router_epoch)
                send_hello(IPC_HELLO);
            fe.router_epoch = h.conn;
        }
        return;
    }
    client_t *c = client_find(h.conn);
    if (!c || c->closed) {
        log_debug("router link: %s for unknown connection %" PRIu64,
                  ipc_type_name((ipc_type_t)h.type), h.conn);
        return;
    }
    switch (h.type) {
    case IPC_AUTH_REPLY:
        stream_on_auth_reply(c, &h);
        break;
    case IPC_BIND_REPLY:
        stream_on_bind_reply(c, &h);
        break;
    case IPC_DELIVER:
        deliver(c, &h, payload);
        break;
    case IPC_CLOSE:
        c->reported = 0; /* the router has already ended the session */
        client_stream_error(c, h.field[0][0] ? h.field[0] : "reset", NULL);
        break;
    default:
        log_warn("router link: unexpected %s", ipc_type_name((ipc_type_t)h.type));
    }
}

void router_link_open(const char *endpoint)
{
    fe.zctx = zmq_ctx_new();
    fe.zsock = zmq_socket(fe.zctx, ZMQ_DEALER);
    char ident[128];
    snprintf(ident, sizeof ident, "%s:%016" PRIx64, fe.name, fe.epoch);
    int linger = 1000, hwm = 100000, ivl = 1000, ttl = 5000, tmo = 3000;
    zmq_setsockopt(fe.zsock, ZMQ_ROUTING_ID, ident, strlen(ident));
    zmq_setsockopt(fe.zsock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(fe.zsock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(fe.zsock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    /* ZMTP heartbeats notice a dead TCP connection that sends no FIN. */
    zmq_setsockopt(fe.zsock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(fe.zsock, ZMQ_HEARTBEAT_TTL, &ttl, sizeof ttl);
    zmq_setsockopt(fe.zsock, ZMQ_HEARTBEAT_TIMEOUT, &tmo, sizeof tmo);
    if (zmq_connect(fe.zsock, endpoint) < 0)
        log_fatal("router_endpoint: cannot connect to '%s': %s", endpoint, zmq_strerror(errno));
    fe.link = zlink_new(fe.loop, fe.zsock, on_message, NULL);
    heartbeat_ms = config_int("heartbeat_interval");
    send_hello(IPC_HELLO);
    heartbeat_timer = evloop_timer(fe.loop, (uint64_t)heartbeat_ms, on_heartbeat, NULL);
    log_info("router link: connecting to %s as %s", endpoint, ident);
}

void router_link_close(void)
{
    evloop_cancel(fe.loop, &heartbeat_timer);
    zlink_destroy(&fe.link);
    if (fe.zsock)
        zmq_close(fe.zsock);
    if (fe.zctx)
        zmq_ctx_term(fe.zctx);
    fe.zsock = fe.zctx = NULL;
}
