/* The ROUTER socket all frontends connect to: hello and heartbeats (frontend liveness),
 * and dispatch of their requests and stanzas. ZMQ_ROUTER_MANDATORY makes a send to a
 * vanished frontend fail loudly instead of being dropped in silence. */
#include "link.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "authlimit.h"
#include "config.h"
#include "log.h"
#include "resync.h"
#include "route.h"
#include "session.h"
#include "util.h"
#include "zap.h"

static ev_timer_t *sweep_timer;

int link_send(rt_frontend_t *f, const ipc_hdr_t *h, const char *payload, size_t len)
{
    unsigned char hdr[IPC_HDR_MAX];
    zpart_t parts[3] = {{f->ident, f->ident_len}, {hdr, ipc_encode(h, hdr)}, {payload, len}};
    if (zlink_send(rt.link, parts, payload ? 3 : 2) < 0) {
        log_warn("link: cannot send %s to %s: %s", ipc_type_name((ipc_type_t)h->type), f->ident,
                 zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static void reply_hello(rt_frontend_t *f, ipc_type_t type)
{
    ipc_hdr_t h;
    ipc_hdr_init(&h, type, rt.epoch);
    ipc_hdr_set(&h, 0, "router");
    link_send(f, &h, NULL, 0);
}

static void frontend_drop(rt_frontend_t *f, const char *why)
{
    log_info("link: frontend %s gone (%s), ending its %zu sessions", f->ident, why,
             f->nsessions);
    session_end_frontend(f);
    hmap_del(rt.frontends, f->ident, f->ident_len);
    free(f);
}

/* A hello from a frontend: a new epoch under a known name means that frontend restarted,
 * so the sessions of its earlier run are over. */
static rt_frontend_t *frontend_hello(const zpart_t *id, const ipc_hdr_t *h)
{
    const char *name = h->field[0];
    size_t pos = 0, kl;
    const void *k;
    void *v;
    rt_frontend_t *stale = NULL;
    while (hmap_next(rt.frontends, &pos, &k, &kl, &v)) {
        rt_frontend_t *o = v;
        if (strcmp(o->name, name) == 0 && o->epoch != h->conn) {
            stale = o;
            break;
        }
    }
    if (stale)
        frontend_drop(stale, "restarted with a new epoch");
    rt_frontend_t *f = xcalloc(1, sizeof *f);
    memcpy(f->ident, id->data, id->len);
    f->ident_len = id->len;
    snprintf(f->name, sizeof f->name, "%s", name);
    f->epoch = h->conn;
    hmap_put(rt.frontends, f->ident, f->ident_len, f);
    log_info("link: frontend %s joined (epoch %016" PRIx64 ")", f->ident, f->epoch);
    return f;
}

static void on_heartbeat(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)h;
    (void)payload;
    reply_hello(f, IPC_HEARTBEAT);
}

static void bind_reply(rt_frontend_t *f, const ipc_hdr_t *req, ipc_status_t status)
{
    ipc_hdr_t h;
    ipc_hdr_init(&h, IPC_BIND_REPLY, req->conn);
    h.seq = req->seq;
    h.status = (uint8_t)status;
    ipc_hdr_set(&h, 0, req->field[0]);
    link_send(f, &h, NULL, 0);
}

static void on_bind(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    if (session_over_limit(h->field[0])) {
        log_info("bind: %s refused: max_resources (%ld) reached", h->field[0], rt.max_resources);
        bind_reply(f, h, IPC_LIMIT);
        return;
    }
    session_t *s = session_attach(f, h->conn, h->field[0]);
    if (!s) {
        log_warn("bind: refused '%s' from %s", h->field[0], f->ident);
        bind_reply(f, h, IPC_REFUSED);
        return;
    }
    bind_reply(f, h, IPC_OK);
    log_debug("bind: %s on %s conn %" PRIu64, s->full, f->ident, s->conn);
}

static void on_unbind(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    session_t *s = session_find_conn(f, h->conn);
    if (s)
        session_end(s);
}

static void on_stanza(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    session_t *s = session_find_conn(f, h->conn);
    if (!s || !payload) {
        log_debug("link: stanza from unbound connection %" PRIu64 " of %s", h->conn, f->ident);
        return;
    }
    route_stanza(s, h, payload->data, payload->len);
}

static void on_auth(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    authlimit_on_auth(f, h);
}

static void on_auth_result(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    authlimit_on_result(f, h);
}

/* What a frontend may send once it said hello, and who handles it. */
typedef void (*link_handler_fn)(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload);
static const link_handler_fn handlers[IPC_TYPE_MAX + 1] = {
    [IPC_HEARTBEAT] = on_heartbeat,
    [IPC_AUTH] = on_auth,
    [IPC_AUTH_RESULT] = on_auth_result,
    [IPC_BIND] = on_bind,
    [IPC_UNBIND] = on_unbind,
    [IPC_RESYNC] = resync_session,
    [IPC_STANZA] = on_stanza,
};

static void handle(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    link_handler_fn fn = h->type <= IPC_TYPE_MAX ? handlers[h->type] : NULL;
    if (fn)
        fn(f, h, payload);
    else
        log_warn("link: unexpected %s from %s", ipc_type_name((ipc_type_t)h->type), f->ident);
}

static void on_message(void *ud, const zpart_t *parts, int nparts)
{
    (void)ud;
    ipc_hdr_t h;
    if (nparts < 2 || nparts > 3 || parts[0].len == 0 || parts[0].len >= 128 ||
        ipc_decode(&h, parts[1].data, parts[1].len) < 0) {
        log_warn("link: dropped a malformed message (%d parts)", nparts);
        return;
    }
    rt_frontend_t *f = hmap_get(rt.frontends, parts[0].data, parts[0].len);
    if (h.type == IPC_HELLO) {
        if (!f)
            f = frontend_hello(&parts[0], &h);
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
        if (h.type == IPC_AUTH || h.type == IPC_BIND) {
            ipc_hdr_t r;
            ipc_hdr_init(&r, h.type == IPC_AUTH ? IPC_AUTH_REPLY : IPC_BIND_REPLY, h.conn);
            r.seq = h.seq;
            r.status = IPC_TEMPORARY;
            link_send(&tmp, &r, NULL, 0);
        }
        log_debug("link: %s from unknown frontend %s", ipc_type_name((ipc_type_t)h.type),
                  tmp.ident);
        return;
    }
    f->last_seen = now_ms();
    handle(f, &h, nparts == 3 ? &parts[2] : NULL);
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

void link_open(const char *endpoint)
{
    rt.zctx = zmq_ctx_new();
    rt.zsock = zmq_socket(rt.zctx, ZMQ_ROUTER);
    int one = 1;
    zmq_setsockopt(rt.zsock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(rt.zsock, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    zlink_link_options(rt.zsock);
    /* Anyone who reaches the port could announce a frame of any size and have libzmq
     * allocate it: no message from a frontend is longer than a header and a stanza frame
     * (IPC_STANZA_FACTOR). A longer frame drops that connection. */
    int64_t maxmsg = IPC_STANZA_FACTOR * config_int("max_stanza_size") + IPC_HDR_MAX;
    zmq_setsockopt(rt.zsock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    /* CURVE and ZAP (link_curve), before the bind: nobody gets in unchecked. */
    zap_open(rt.loop, rt.zctx, rt.zsock);
    if (zmq_bind(rt.zsock, endpoint) < 0)
        log_fatal("router_bind: cannot bind '%s': %s", endpoint, zmq_strerror(errno));
    rt.link = zlink_new(rt.loop, rt.zsock, on_message, NULL);
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
