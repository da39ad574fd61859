/* link: the ROUTER socket all frontends connect to (docs/PROTOCOL.md): hello and
 * heartbeats (frontend liveness), sends, and the hand-over of every other message to the
 * router's dispatch table (dispatch.h). */
#ifndef ROUTER_LINK_H
#define ROUTER_LINK_H

#include "ipc.h"
#include "router.h"

/* A message from a known frontend (not hello or heartbeat), and a frontend gone. */
typedef void (*link_msg_fn)(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload);
typedef void (*link_gone_fn)(rt_frontend_t *f);
/* A message sent to a frontend that never left: the batch it was in found the frontend
 * gone (docs/PROTOCOL.md, "Batches"). */
typedef void (*link_lost_fn)(const ipc_hdr_t *h, const zpart_t *payload);

/* Binds the socket (with CURVE when configured) and joins it to the loop; messages of
 * known frontends go to on_msg, and on_gone is told of a frontend that stopped sending
 * heartbeats or came back with a new epoch (its sessions are over); on_lost of each
 * message a lost batch held. */
void link_open(const char *endpoint, link_msg_fn on_msg, link_gone_fn on_gone,
               link_lost_fn on_lost);
void link_close(void);
/* Sends header (+ payload) to a frontend without blocking; 0, or -1 with errno kept:
 * EAGAIN when the frontend's pipe is full (it stopped reading: the high-water mark,
 * link_hwm, is reached), EHOSTUNREACH when the frontend is not connected
 * (ZMQ_ROUTER_MANDATORY). The low-level primitive; the helpers below build on it. */
int link_send(rt_frontend_t *f, const ipc_hdr_t *h, const char *payload, size_t len);

/* A message of a known type that its reader refused (ipc.h): logged and dropped, and a
 * request is answered at once, so that no client waits for request_timeout. */
void link_malformed(rt_frontend_t *f, const ipc_hdr_t *h);

/* Typed sends (ipc.h builders, then link_send): 0, or -1 as link_send (also when a
 * string does not fit a header field). */
/* `text` (NULL or "": none) becomes the stream error's <text/> (xmppctl kick). */
static inline int link_send_close_text(rt_frontend_t *f, uint64_t conn, const char *condition,
                                       const char *text)
{
    ipc_hdr_t h;
    if (ipc_close_build(&h, &(ipc_close_t){.conn = conn, .condition = condition,
                                           .text = text}) < 0)
        return -1;
    return link_send(f, &h, NULL, 0);
}

static inline int link_send_close(rt_frontend_t *f, uint64_t conn, const char *condition)
{
    return link_send_close_text(f, conn, condition, NULL);
}

static inline int link_send_deliver(rt_frontend_t *f, uint64_t conn, const char *stanza,
                                    size_t len)
{
    ipc_hdr_t h;
    ipc_deliver_build(&h, &(ipc_deliver_t){.conn = conn, .numbered = 0, .h = 0});
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

static inline int link_send_register_reply(rt_frontend_t *f, const ipc_register_reply_t *m)
{
    ipc_hdr_t h;
    ipc_register_reply_build(&h, m);
    return link_send(f, &h, NULL, 0);
}

/* Answers a stream-management request (IPC_SM_ENABLE or IPC_SM_RESUME) with a failure
 * (IPC_REFUSED for a malformed one; IPC_TEMPORARY). */
static inline int link_send_sm_refused(rt_frontend_t *f, const ipc_hdr_t *req, ipc_status_t st)
{
    ipc_hdr_t h;
    if (req->type == IPC_SM_ENABLE)
        ipc_sm_enabled_build(&h, &(ipc_sm_enabled_t){.conn = req->conn, .seq = req->seq,
                                                     .status = st, .id = ""});
    else
        ipc_sm_resumed_build(&h, &(ipc_sm_resumed_t){.conn = req->conn, .seq = req->seq,
                                                     .status = st == IPC_REFUSED ? IPC_NOT_FOUND : st,
                                                     .jid = ""});
    return link_send(f, &h, NULL, 0);
}

#endif
