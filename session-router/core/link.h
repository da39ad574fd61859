/* link: the ROUTER socket all frontends connect to (docs/PROTOCOL.md). Hello and
 * heartbeats (frontend liveness), and one table that maps each message type a frontend
 * sends to its handler, each reading its typed message (ipc.h). */
#ifndef ROUTER_LINK_H
#define ROUTER_LINK_H

#include "ipc.h"
#include "router.h"

/* Binds the socket (with CURVE when configured) and joins it to the loop. */
void link_open(const char *endpoint);
void link_close(void);
/* Sends header (+ payload) to a frontend without blocking; 0, or -1 with errno kept:
 * EAGAIN when the frontend's pipe is full (it stopped reading: the high-water mark,
 * link_hwm, is reached), EHOSTUNREACH when the frontend is not connected
 * (ZMQ_ROUTER_MANDATORY). The low-level primitive; the helpers below build on it. */
int link_send(rt_frontend_t *f, const ipc_hdr_t *h, const char *payload, size_t len);

/* Typed sends (ipc.h builders, then link_send): 0, or -1 as link_send (also when a
 * string does not fit a header field). */
static inline int link_send_close(rt_frontend_t *f, uint64_t conn, const char *condition)
{
    ipc_hdr_t h;
    if (ipc_close_build(&h, &(ipc_close_t){.conn = conn, .condition = condition}) < 0)
        return -1;
    return link_send(f, &h, NULL, 0);
}

static inline int link_send_deliver(rt_frontend_t *f, uint64_t conn, const char *stanza,
                                    size_t len)
{
    ipc_hdr_t h;
    ipc_deliver_build(&h, &(ipc_deliver_t){.conn = conn});
    return link_send(f, &h, stanza, len);
}

static inline int link_send_auth_reply(rt_frontend_t *f, const ipc_auth_reply_t *m)
{
    ipc_hdr_t h;
    if (ipc_auth_reply_build(&h, m) < 0) /* credentials too long: as if there were none */
        ipc_auth_reply_build(&h, &(ipc_auth_reply_t){m->conn, m->seq, IPC_NOT_FOUND, NULL});
    return link_send(f, &h, NULL, 0);
}

static inline int link_send_bind_reply(rt_frontend_t *f, const ipc_bind_reply_t *m)
{
    ipc_hdr_t h;
    if (ipc_bind_reply_build(&h, m) < 0)
        return -1;
    return link_send(f, &h, NULL, 0);
}

#endif
