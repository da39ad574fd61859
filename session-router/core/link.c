/* The ROUTER socket all frontends connect to: hello and heartbeats (frontend liveness);
 * every other message of a known frontend goes to the handler given to link_open
 * (dispatch.c). ZMQ_ROUTER_MANDATORY makes a send to a vanished frontend, or
 * to one whose pipe is full, fail loudly instead of being dropped in silence; the callers
 * decide what becomes of a stanza that could not be sent (session.c, route.c). */
#include "link.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "config.h"
#include "log.h"
#include "util.h"
#include "zap.h"

static ev_timer_t *sweep_timer;
static link_msg_fn on_frontend_msg;   /* a message of a known frontend */
static link_gone_fn on_frontend_gone; /* a frontend stopped or restarted */

/* Failed sends are logged at most once a second (a frontend that stopped reading makes
 * every delivery to it fail), with the number left out. */
static struct {
    uint64_t last_ms;
    unsigned long skipped;
} send_log;

int link_send(rt_frontend_t *f, const ipc_hdr_t *h, const char *payload, size_t len)
{
    unsigned char hdr[IPC_HDR_MAX];
    zpart_t parts[3] = {{f->ident, f->ident_len}, {hdr, ipc_encode(h, hdr)}, {payload, len}};
    if (zlink_send(rt.link, parts, payload ? 3 : 2) < 0) {
        int err = errno;
        metric_inc(rt.m.link_send_failed);
        uint64_t now = now_ms();
        if (now - send_log.last_ms >= 1000) {
            log_warn("link: cannot send %s to %s: %s%s (%lu more failed sends not logged)",
                     ipc_type_name((ipc_type_t)h->type), f->ident, zmq_strerror(err),
                     err == EAGAIN ? ": its pipe is full" : "", send_log.skipped);
            send_log.last_ms = now;
            send_log.skipped = 0;
        } else {
            send_log.skipped++;
        }
        errno = err;
        return -1;
    }
    metric_inc(rt.m.link.msgs_out);
    metric_add(rt.m.link.bytes_out, (double)(parts[1].len + (payload ? len : 0)));
    return 0;
}

static void reply_hello(rt_frontend_t *f, ipc_type_t type)
{
    ipc_hdr_t h;
    ipc_hello_t m = {.epoch = rt.epoch, .name = "router", .batch = 1};
    if (type == IPC_HELLO)
        ipc_hello_build(&h, &m);
    else
        ipc_heartbeat_build(&h, &m);
    link_send(f, &h, NULL, 0);
}

static void frontend_drop(rt_frontend_t *f, const char *why)
{
    log_info("link: frontend %s gone (%s), ending its %zu sessions", f->ident, why,
             f->nsessions);
    on_frontend_gone(f);
    zlink_forget(rt.link, f->ident, f->ident_len);
    hmap_del(rt.frontends, f->ident, f->ident_len);
    free(f);
}

/* A hello from a frontend: a new epoch under a known name means that frontend restarted,
 * so the sessions of its earlier run are over. */
static rt_frontend_t *frontend_hello(const zpart_t *id, const ipc_hello_t *h)
{
    const char *name = h->name;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    rt_frontend_t *stale = NULL;
    while (hmap_next(rt.frontends, &pos, &k, &kl, &v)) {
        rt_frontend_t *o = v;
        if (strcmp(o->name, name) == 0 && o->epoch != h->epoch) {
            stale = o;
            break;
        }
    }
    rt_frontend_t *f = xcalloc(1, sizeof *f);
    memcpy(f->ident, id->data, id->len);
    f->ident_len = id->len;
    snprintf(f->name, sizeof f->name, "%s", name);
    f->epoch = h->epoch;
    f->s2s = h->s2s;
    f->last_seen = now_ms();
    char label[METRICS_LABELS_MAX];
    if (metrics_label(label, sizeof label, "frontend", f->name) == 0)
        f->m_sessions = metrics_gauge("xmpp_router_sessions", label,
                                      "sessions bound on the router, by frontend_name");
    hmap_put(rt.frontends, f->ident, f->ident_len, f);
    log_info("link: frontend %s joined (epoch %016" PRIx64 ")%s", f->ident, f->epoch,
             f->s2s ? ", serving server-to-server connections" : "");
    /* The new run is in the table, with its s2s flag, before the old one goes: what the
     * old run held for other domains goes to the frontend that carries them now, the new
     * run of the same name (remote.h). */
    if (stale)
        frontend_drop(stale, "restarted with a new epoch");
    return f;
}

/* A message of a known type that its reader refused (ipc.h): logged and dropped, and a
 * request is answered at once, so that no client waits for request_timeout. */
void link_malformed(rt_frontend_t *f, const ipc_hdr_t *h)
{
    log_warn("link: dropped a malformed %s from %s (conn %" PRIu64 ")",
             ipc_type_name((ipc_type_t)h->type), f->ident, h->conn);
    if (h->type == IPC_AUTH && h->seq)
        link_send_auth_reply(f, &(ipc_auth_reply_t){h->conn, h->seq, IPC_TEMPORARY, NULL});
    else if (h->type == IPC_BIND && h->seq)
        link_send_bind_reply(f, &(ipc_bind_reply_t){h->conn, h->seq, IPC_REFUSED, ""});
    else if (h->type == IPC_RESYNC)
        link_send_close(f, h->conn, "reset"); /* as for a resync the router cannot take */
    else if (h->type == IPC_REGISTER && h->seq)
        link_send_register_reply(f, &(ipc_register_reply_t){h->conn, h->seq, IPC_REFUSED});
    else if ((h->type == IPC_SM_ENABLE || h->type == IPC_SM_RESUME) && h->seq)
        link_send_sm_refused(f, h, IPC_REFUSED);
}

static void on_heartbeat(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_heartbeat_t m;
    if (ipc_heartbeat_read(h, &m) < 0) {
        link_malformed(f, h);
        return;
    }
    reply_hello(f, IPC_HEARTBEAT);
}

static void on_message(void *ud, const zpart_t *parts, int nparts)
{
    (void)ud;
    ipc_hdr_t h;
    metric_inc(rt.m.link.msgs_in);
    for (int i = 1; i < nparts && i < ZLINK_MAX_PARTS; i++)
        metric_add(rt.m.link.bytes_in, (double)parts[i].len);
    if (nparts < 2 || nparts > 3 || parts[0].len == 0 || parts[0].len >= 128 ||
        ipc_decode(&h, parts[1].data, parts[1].len) < 0) {
        log_warn("link: dropped a malformed message (%d parts)", nparts);
        return;
    }
    rt_frontend_t *f = hmap_get(rt.frontends, parts[0].data, parts[0].len);
    if (h.type == IPC_HELLO) {
        ipc_hello_t hello;
        if (ipc_hello_read(&h, &hello) < 0) {
            log_warn("link: dropped a hello without a name (%zu-byte routing id)", parts[0].len);
            return;
        }
        if (!f)
            f = frontend_hello(&parts[0], &hello);
        if (f->s2s != hello.s2s)
            log_info("link: frontend %s %s server-to-server connections", f->ident,
                     hello.s2s ? "serves" : "does not serve");
        f->s2s = hello.s2s; /* remote.c sends it stanzas for other domains */
        /* A frontend that takes batches gets its messages of one loop pass as one
         * (zlink.h); its hello says so. */
        if (hello.batch)
            zlink_batch_to(rt.link, f->ident, f->ident_len);
        else
            zlink_forget(rt.link, f->ident, f->ident_len);
        f->last_seen = now_ms();
        reply_hello(f, IPC_HELLO);
        return;
    }
    if (!f) {
        /* The router restarted and this frontend has not said hello yet: ask it to, and
         * answer a request at once so that its client is not left waiting. */
        rt_frontend_t tmp = {0};
        memcpy(tmp.ident, parts[0].data, parts[0].len);
        tmp.ident_len = parts[0].len;
        reply_hello(&tmp, IPC_HELLO);
        if (h.type == IPC_AUTH)
            link_send_auth_reply(&tmp, &(ipc_auth_reply_t){h.conn, h.seq, IPC_TEMPORARY, NULL});
        else if (h.type == IPC_BIND)
            link_send_bind_reply(&tmp, &(ipc_bind_reply_t){h.conn, h.seq, IPC_TEMPORARY, ""});
        else if (h.type == IPC_REGISTER && h.seq)
            link_send_register_reply(&tmp, &(ipc_register_reply_t){h.conn, h.seq, IPC_TEMPORARY});
        else if ((h.type == IPC_SM_ENABLE || h.type == IPC_SM_RESUME) && h.seq)
            link_send_sm_refused(&tmp, &h, IPC_TEMPORARY);
        log_debug("link: %s from unknown frontend %s", ipc_type_name((ipc_type_t)h.type),
                  tmp.ident);
        return;
    }
    f->last_seen = now_ms();
    if (h.type == IPC_HEARTBEAT)
        on_heartbeat(f, &h, NULL);
    else
        on_frontend_msg(f, &h, nparts == 3 ? &parts[2] : NULL);
}

static link_lost_fn on_frontend_lost; /* a message of a batch that found its frontend gone */

/* A batch to a frontend that turned out gone (zlink_on_lost): each message to on_lost,
 * counted as a failed send. */
static void on_lost(void *ud, const zpart_t *parts, int nparts)
{
    (void)ud;
    static ipc_hdr_t h;
    metric_inc(rt.m.link_send_failed);
    if (nparts >= 2 && ipc_decode(&h, parts[1].data, parts[1].len) == 0)
        on_frontend_lost(&h, nparts == 3 ? &parts[2] : NULL);
}

/* Frontends that stopped sending heartbeats are gone: end their sessions. */
static void on_sweep(evloop_t *loop, void *ud)
{
    (void)ud;
    uint64_t now = now_ms();
    for (;;) {
        size_t pos = 0, kl;
        const void *k;
        void *v;
        rt_frontend_t *dead = NULL;
        while (hmap_next(rt.frontends, &pos, &k, &kl, &v)) {
            rt_frontend_t *f = v;
            if (now - f->last_seen > rt.frontend_timeout_ms) {
                dead = f;
                break;
            }
        }
        if (!dead)
            break;
        frontend_drop(dead, "missed heartbeats");
    }
    sweep_timer = evloop_timer(loop, 500, on_sweep, NULL);
}

void link_open(const char *endpoint, link_msg_fn on_msg, link_gone_fn on_gone,
               link_lost_fn on_lost_msg)
{
    on_frontend_lost = on_lost_msg;
    on_frontend_msg = on_msg;
    on_frontend_gone = on_gone;
    rt.zctx = zmq_ctx_new();
    rt.zsock = zmq_socket(rt.zctx, ZMQ_ROUTER);
    int one = 1;
    zmq_setsockopt(rt.zsock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(rt.zsock, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    zlink_link_options(rt.zsock, (int)config_int("link_hwm"));
    /* Anyone who reaches the port could announce a frame of any size and have libzmq
     * allocate it: no message from a frontend is longer than a header and a stanza frame
     * (IPC_STANZA_FACTOR). A longer frame drops that connection. */
    int64_t maxmsg = IPC_STANZA_FACTOR * config_int("max_stanza_size") + IPC_HDR_MAX;
    if (maxmsg < ZLINK_BATCH_MAX)
        maxmsg = ZLINK_BATCH_MAX; /* a batch of messages (zlink.h) */
    zmq_setsockopt(rt.zsock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    /* CURVE and ZAP (link_curve), before the bind: nobody gets in unchecked. */
    zap_open(rt.loop, rt.zctx, rt.zsock);
    if (zmq_bind(rt.zsock, endpoint) < 0)
        log_fatal("router_bind: cannot bind '%s': %s", endpoint, zmq_strerror(errno));
    rt.link = zlink_new(rt.loop, rt.zsock, on_message, NULL);
    zlink_batches(rt.link); /* our hello says we take them */
    zlink_on_lost(rt.link, on_lost, NULL);
    sweep_timer = evloop_timer(rt.loop, 500, on_sweep, NULL);
    log_info("link: listening for frontends on %s", endpoint);
}

void link_close(void)
{
    evloop_cancel(rt.loop, &sweep_timer);
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(rt.frontends, &pos, &k, &kl, &v))
        free(v);
    zlink_destroy(&rt.link);
    zap_close();
    zmq_close(rt.zsock);
    zmq_ctx_term(rt.zctx);
}
