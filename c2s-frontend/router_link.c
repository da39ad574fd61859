/* The link to the session-router: a ZeroMQ DEALER socket whose routing id carries this
 * frontend's name and boot epoch, hello and heartbeats, and dispatch of what the router
 * sends (credentials, bind replies, deliveries, close orders): one table of message types
 * and their handlers, each reading its typed message (ipc.h).
 *
 * Router liveness (docs/PROTOCOL.md, "Behaviour"): the router is *up* once it answered our
 * hello, and *down* when its TCP connection drops (a socket monitor reports it at once), a
 * send fails (not connected, or the pipe to it is full: ZMQ_IMMEDIATE and the high-water
 * mark make both EAGAIN), or it is silent for router_timeout. While it is down, clients stay connected,
 * their stanzas wait in a bounded buffer, pending auth/bind requests fail as temporary, and
 * heartbeats go five times as often. When a router answers (a restarted one has a new
 * epoch), every bound session is resent (IPC_RESYNC) before the buffer is flushed, on the
 * same pipe, so the router knows the sessions before it sees their stanzas. */
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "client.h"
#include "config.h"
#include "curve.h"
#include "log.h"
#include "s2s_out.h"
#include "util.h"

#define MONITOR_ENDPOINT "inproc://c2s-router-link-monitor"

/* A client message waiting for the router, in the order the clients sent them. */
typedef struct pending_msg {
    struct pending_msg *next;
    uint64_t conn;
    uint8_t type;
    uint32_t seq;
    int is_unbind; /* no payload: an unbind, or a client state (sent even when the client
                      left: the router ignores it for a session it does not know) */
    size_t hdr_len, len; /* len: payload bytes; an unbind has none */
    char data[];         /* the encoded header, then the payload */
} pending_msg_t;

static struct {
    ev_timer_t *tick;
    long heartbeat_ms, timeout_ms, request_ms;
    size_t buffer_max, nbuffered;
    pending_msg_t *head, *tail;
    int up;
    /* After a resync the buffer is held for one heartbeat interval: the other frontends
     * resend their sessions meanwhile, so that a buffered message to a user on another
     * frontend finds that user's session back in the router's table. */
    ev_timer_t *hold;
    uint64_t seen_ms;      /* last message from the router */
    uint64_t hello_ms;     /* last hello we sent */
    uint64_t down_ms;      /* when the router went away (for the log) */
    void *monitor;         /* ZMQ_PAIR receiving the DEALER's connection events */
    zlink_t *monitor_link;
    /* A refused handshake is logged once until one succeeds: libzmq retries every 100 ms.
     * A connection lost during a handshake (no detail) also happens when the router stops,
     * so only a run of them is worth a line. */
    int handshake_failed;
    int handshake_lost;
    int connected;         /* the monitor's last word: handshake done, no disconnect since */
    ev_timer_t *retry;     /* the buffer waits for room in a full pipe */
    uint64_t full_log_ms;  /* the last "link full" line */
    unsigned long full_times;
    char curve_public[CURVE_Z85_LEN + 1]; /* ours, when link_curve is on */
} rl;

/* The keys of the link to the router. */
const config_key_t router_link_config_keys[] = {
    CONFIG_INT("heartbeat_interval", "1000", 100, 60000, "ms between link heartbeats"),
    CONFIG_INT("router_timeout", "3000", 200, 600000, "ms without an answer before the router counts as down"),
    CONFIG_INT("router_buffer", "10000", 0, 1000000, "client stanzas kept while the router is down (past it: bounced, type wait)"),
    CONFIG_INT("request_timeout", "10000", 100, 600000, "ms an auth or bind request may wait for the router"),
    CONFIG_STR("frontend_curve_secret", "", "this frontend's CURVE secret key (xmppctl keygen frontend)"),
    CONFIG_STR("frontend_curve_secret_file", "", "a file holding that key instead"),
    CONFIG_STR("frontend_curve_public", "", "optional; checked against frontend_curve_secret"),
    CONFIG_END,
};

int router_is_up(void)
{
    return rl.up;
}

size_t router_buffered(void)
{
    return rl.nbuffered;
}

static int send_parts(const void *hdr, size_t hdr_len, const char *payload, size_t len,
                      int quiet)
{
    zpart_t parts[2] = {{hdr, hdr_len}, {payload, len}};
    if (zlink_send(fe.link, parts, payload ? 2 : 1) < 0) {
        if (!quiet)
            log_warn("router link: cannot send: %s", zmq_strerror(errno));
        return -1;
    }
    metric_inc(fe.m.link.msgs_out);
    metric_add(fe.m.link.bytes_out, (double)(hdr_len + (payload ? len : 0)));
    return 0;
}

int router_send(const ipc_hdr_t *h, const char *payload, size_t len)
{
    unsigned char hdr[IPC_HDR_MAX];
    return send_parts(hdr, ipc_encode(h, hdr), payload, len, !rl.up);
}

static void send_hello(ipc_type_t type)
{
    ipc_hdr_t h;
    /* A frontend with s2s_listen says so: the router may send it IPC_S2S_OUT. */
    ipc_hello_t m = {.epoch = fe.epoch, .name = fe.name, .s2s = s2s_enabled(), .batch = 1};
    if (type == IPC_HELLO)
        ipc_hello_build(&h, &m);
    else
        ipc_heartbeat_build(&h, &m);
    if (router_send(&h, NULL, 0) == 0 && type == IPC_HELLO)
        rl.hello_ms = now_ms();
}

/* Collects the connected clients first: callbacks may close clients and change the map. */
static client_t **all_clients(size_t *n_out)
{
    size_t pos = 0, kl, n = 0, cap = hmap_count(fe.clients);
    const void *k;
    void *v;
    client_t **all = xcalloc(cap ? cap : 1, sizeof *all);
    while (n < cap && hmap_next(fe.clients, &pos, &k, &kl, &v))
        all[n++] = v;
    *n_out = n;
    return all;
}

/* Builds a buffered message (payload NULL: none). */
static pending_msg_t *pending_new(const ipc_hdr_t *h, const void *hdr, size_t hl,
                                  const char *payload, size_t len)
{
    size_t plen = payload ? len : 0;
    pending_msg_t *m = xmalloc(sizeof *m + hl + plen);
    m->next = NULL;
    m->conn = h->conn;
    m->type = h->type;
    m->seq = h->seq;
    m->is_unbind = payload == NULL;
    m->hdr_len = hl;
    m->len = plen;
    memcpy(m->data, hdr, hl);
    if (plen)
        memcpy(m->data + hl, payload, plen);
    return m;
}

/* A message of the batch the router did not get (zlink_take_back), in order: what
 * router_submit would keep goes back to the buffer, ahead of what it holds. Hello,
 * heartbeats and the resync are sent again anyway, and requests are failed by
 * router_down (their clients hear "temporary"). */
typedef struct {
    pending_msg_t *head, *last;
} pending_list_t;

static void take_back(void *ud, const zpart_t *parts, int n)
{
    pending_list_t *list = ud;
    static ipc_hdr_t h;
    if (ipc_decode(&h, parts[0].data, parts[0].len) < 0)
        return;
    switch (h.type) {
    case IPC_HELLO:
    case IPC_HEARTBEAT:
    case IPC_RESYNC:
    case IPC_SM_STATE:
    case IPC_AUTH:
    case IPC_BIND:
    case IPC_REGISTER:
    case IPC_SM_ENABLE:
    case IPC_SM_RESUME:
        return;
    default:
        break;
    }
    pending_msg_t *m = pending_new(&h, parts[0].data, parts[0].len,
                                   n > 1 ? parts[1].data : NULL, n > 1 ? parts[1].len : 0);
    if (list->last)
        list->last->next = m;
    else
        list->head = m;
    list->last = m;
    rl.nbuffered++;
}

static void router_down(const char *why)
{
    if (!rl.up)
        return;
    rl.up = 0;
    evloop_cancel(fe.loop, &rl.hold);
    rl.down_ms = now_ms();
    /* What waits in our batch is not sent: it goes back to the buffer, ahead of what comes
     * next, behind the resync. Batching goes on (a router's hello says whether it takes
     * batches, and a restarted router's hello comes before anything else). */
    pending_list_t back = {0};
    zlink_take_back(fe.link, NULL, 0, take_back, &back);
    if (back.head) {
        back.last->next = rl.head;
        if (!rl.head)
            rl.tail = back.last;
        rl.head = back.head;
    }
    log_warn("router link: router unreachable (%s); keeping clients, buffering up to %zu "
             "stanzas",
             why, rl.buffer_max);
    /* Requests in flight will not be answered: fail them now (temporary), so no client
     * waits on a router that is gone. */
    size_t n;
    client_t **all = all_clients(&n);
    for (size_t i = 0; i < n; i++)
        if (!all[i]->closed && all[i]->pending_seq)
            stream_fail_request(all[i]);
    free(all);
}

static void flush_buffer(int outage);

static void on_retry(evloop_t *loop, void *ud)
{
    (void)loop;
    (void)ud;
    rl.retry = NULL;
    if (!rl.hold)
        flush_buffer(0);
}

/* A send failed. With the router connected that is a full pipe (ZMQ_IMMEDIATE makes a
 * send without a connection fail the same way, EAGAIN, but then the monitor said
 * disconnected): the router is slower than this frontend's clients, not gone. What comes
 * next waits in the buffer, in order, and goes as the pipe makes room, without a resync;
 * past router_buffer it is bounced (type wait). Anything else: the router is down. */
static void send_failed(const char *why)
{
    if (errno != EAGAIN || !rl.connected || !rl.up) {
        router_down(why);
        return;
    }
    uint64_t now = now_ms();
    rl.full_times++;
    if (now - rl.full_log_ms >= 10000) {
        log_warn("router link: the pipe to the router is full (link_hwm): it reads slower "
                 "than clients send; buffering (%lu times since the last line)", rl.full_times);
        rl.full_log_ms = now;
        rl.full_times = 0;
    }
    if (!rl.retry)
        rl.retry = evloop_timer(fe.loop, 5, on_retry, NULL);
}

/* Resends every bound session (RFC 6120 7.7: the bound full JID) with the state the
 * router keeps for it: availability, priority, last presence, interest in the roster.
 * `announce`: the router has probably ended these sessions (it did not hear from us for
 * frontend_timeout) and told their contacts they left; the last presence is sent again as
 * a presence update (RFC 6121 4.4) so that they see the resource available again. */
static size_t resync_all(int announce)
{
    size_t n, sent = 0;
    client_t **all = all_clients(&n);
    for (size_t i = 0; i < n; i++) {
        client_t *c = all[i];
        if (c->closed || !c->bound || !c->reported)
            continue;
        int avail = c->available && c->last_presence;
        ipc_resync_t m = {
            .conn = c->id,
            .full_jid = c->jid,
            .flags = (uint8_t)((avail ? IPC_RESYNC_AVAILABLE : 0) |
                               (c->interested ? IPC_RESYNC_INTERESTED : 0) |
                               (c->carbons ? IPC_RESYNC_CARBONS : 0) |
                               (c->sm_on ? IPC_RESYNC_SM : 0) |
                               (c->blocklist ? IPC_RESYNC_BLOCKLIST : 0) |
                               (c->inactive ? IPC_RESYNC_INACTIVE : 0)),
            .priority = avail ? c->priority : 0,
            .addr = c->addr,
            .tls = stream_tls_version(c),
            .since = c->bound_time,
        };
        ipc_hdr_t h;
        ipc_resync_build(&h, &m);
        const char *p = avail ? c->last_presence : NULL;
        buf_t payload = BUF_INIT;
        stream_resync_payload(c, &payload);
        int rc = router_send(&h, payload.len ? payload.data : NULL, payload.len);
        buf_free(&payload);
        if (rc < 0) {
            /* The rest is resent when the router answers again (a router that does not
             * know a session would drop its stanzas). */
            router_down("send failed during resync");
            break;
        }
        if (sm_resync(c) < 0) {
            router_down("send failed during resync");
            break;
        }
        sent++;
        if (announce && p) {
            ipc_hdr_t st;
            ipc_stanza_build(&st, &(ipc_stanza_t){.conn = c->id, .kind = IPC_KIND_PRESENCE,
                                                  .stype = IPC_ST_NONE, .to = "", .from = c->jid});
            if (router_send(&st, p, strlen(p)) < 0) {
                /* Queued, not lost: it follows the next resync. */
                router_down("send failed during resync");
                router_submit(&st, p, strlen(p), 1);
                break;
            }
        }
    }
    free(all);
    return sent;
}

/* A client's stanza (or echo) reached the link: with stream management, its count is what
 * a restarted router may take as handled (sm-state), not what still waits in the buffer. */
static void note_sent(uint8_t type, uint64_t conn, uint32_t h)
{
    if (type != IPC_STANZA && type != IPC_ECHO)
        return;
    client_t *c = client_find(conn);
    if (c && c->sm_on)
        c->sm_in_sent = h;
}

/* Sends the buffered messages in order (`outage`: the router is back, say so). A stanza of
 * a client that left meanwhile is dropped (its session is not resent, so the router could
 * not route it); its unbind is still sent, for a router that kept the session. */
static void flush_buffer(int outage)
{
    size_t sent = 0, orphaned = 0;
    while (rl.head && rl.up) {
        pending_msg_t *m = rl.head;
        /* A server's stanza (or our error for one) needs no session: it is routed by its
         * addresses, whether or not its connection is still open. */
        int orphan_ok = m->is_unbind || m->type == IPC_S2S_IN;
        client_t *c = orphan_ok ? NULL : client_find(m->conn);
        if (!orphan_ok && (!c || c->closed)) {
            orphaned++;
        } else if (send_parts(m->data, m->hdr_len, m->is_unbind ? NULL : m->data + m->hdr_len,
                              m->len, 1) < 0) {
            send_failed("send failed while flushing the buffer");
            break;
        } else {
            note_sent(m->type, m->conn, m->seq);
            sent++;
        }
        rl.head = m->next;
        if (!rl.head)
            rl.tail = NULL;
        rl.nbuffered--;
        free(m);
    }
    /* After a full pipe this runs every few ms: only the end of an outage is worth a line. */
    if ((sent || orphaned) && outage)
        log_info("router link: flushed %zu buffered messages%s", sent,
                 orphaned ? " (dropped the stanzas of clients that left meanwhile)" : "");
}

static void on_hold_end(evloop_t *loop, void *ud)
{
    (void)loop;
    (void)ud;
    rl.hold = NULL;
    flush_buffer(1);
}

/* The router answered: `epoch` is its boot epoch. It answers a heartbeat with a heartbeat
 * when it knows this frontend, and with a hello when it does not: it restarted (new epoch)
 * or it ended our sessions after frontend_timeout (same epoch). That answer, not timing,
 * tells the cases apart. */
static void router_seen(ipc_type_t type, uint64_t epoch)
{
    uint64_t now = now_ms();
    rl.seen_ms = now;
    int same = epoch == fe.router_epoch;
    if (rl.up && same && type == IPC_HEARTBEAT)
        return;
    int recent_hello = now - rl.hello_ms < (uint64_t)(2 * rl.heartbeat_ms);
    /* The answer to a hello of ours: nothing more to do. */
    if (rl.up && same && recent_hello && type == IPC_HELLO)
        return;
    if (!same)
        log_info("router link: router epoch %016" PRIx64 "%s", epoch,
                 fe.router_epoch ? " (the router restarted)" : "");
    int announce = 0;
    if (type == IPC_HELLO && !(recent_hello && (same || !fe.router_epoch))) {
        /* A hello we did not ask for: greet that router first, so that it registers us
         * before our resync. From our known router (same epoch) it means it ended our
         * sessions and told their contacts they left. */
        send_hello(IPC_HELLO);
        announce = same && fe.router_epoch;
    }
    fe.router_epoch = epoch;
    int was_up = rl.up;
    rl.up = 1;
    size_t n = resync_all(announce);
    if (!was_up && rl.down_ms)
        log_info("router link: router back after %" PRIu64 " ms; resent %zu sessions%s",
                 now - rl.down_ms, n, announce ? " and their presence" : "");
    else if (n)
        log_info("router link: resent %zu sessions%s", n, announce ? " and their presence" : "");
    evloop_cancel(fe.loop, &rl.hold);
    if (rl.head || n)
        rl.hold = evloop_timer(fe.loop, (uint64_t)rl.heartbeat_ms, on_hold_end, NULL);
}

/* Heartbeats, every interval while the router is up and five times as often while it is
 * down, so that a router that comes back is found at once; its answer (router_seen) says
 * whether it still knows us. */
static void on_tick(evloop_t *loop, void *ud)
{
    (void)ud;
    uint64_t now = now_ms();
    if (rl.up && now - rl.seen_ms > (uint64_t)rl.timeout_ms)
        router_down("no heartbeat within router_timeout");
    send_hello(IPC_HEARTBEAT);
    long next = rl.up ? rl.heartbeat_ms : rl.heartbeat_ms / 5;
    rl.tick = evloop_timer(loop, (uint64_t)(next < 20 ? 20 : next), on_tick, NULL);
}

int router_submit(const ipc_hdr_t *h, const char *payload, size_t len, int always)
{
    unsigned char hdr[IPC_HDR_MAX];
    size_t hl = ipc_encode(h, hdr);
    if (rl.up && !rl.head && !rl.hold) {
        if (send_parts(hdr, hl, payload, len, 1) == 0) {
            note_sent(h->type, h->conn, h->seq);
            return 0;
        }
        send_failed("send failed");
    }
    if (!always && rl.nbuffered >= rl.buffer_max)
        return -1;
    pending_msg_t *m = pending_new(h, hdr, hl, payload, len);
    if (rl.tail)
        rl.tail->next = m;
    else
        rl.head = m;
    rl.tail = m;
    rl.nbuffered++;
    return 0;
}

static void on_request_timeout(evloop_t *loop, void *ud)
{
    (void)loop;
    client_t *c = ud;
    c->req_timer = NULL;
    if (c->closed || !c->pending_seq)
        return;
    log_warn("conn %llu: no answer from the router within request_timeout",
             (unsigned long long)c->id);
    stream_fail_request(c);
}

int router_request(client_t *c, const ipc_hdr_t *h, uint32_t seq)
{
    if (!rl.up || router_send(h, NULL, 0) < 0)
        return -1;
    c->pending_seq = seq;
    evloop_cancel(fe.loop, &c->req_timer);
    c->req_timer = evloop_timer(fe.loop, (uint64_t)rl.request_ms, on_request_timeout, c);
    return 0;
}

/* A message for one connection: its client, or NULL when it is gone (the router sent it
 * before it saw the unbind). */
static client_t *client_of(ipc_type_t type, uint64_t conn)
{
    client_t *c = client_find(conn);
    if (!c || c->closed) {
        log_debug("router link: %s for unknown connection %" PRIu64, ipc_type_name(type), conn);
        return NULL;
    }
    return c;
}

static void malformed(const ipc_hdr_t *h)
{
    log_warn("router link: dropped a malformed %s (conn %" PRIu64 ")",
             ipc_type_name((ipc_type_t)h->type), h->conn);
}

static void on_hello(const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_hello_t m;
    if (ipc_hello_read(h, &m) < 0) {
        malformed(h);
        return;
    }
    /* A router that takes batches gets ours (zlink.h); one that does not, single messages. */
    if (m.batch)
        zlink_batch_to(fe.link, NULL, 0);
    else
        zlink_forget(fe.link, NULL, 0);
    router_seen(IPC_HELLO, m.epoch);
}

static void on_heartbeat(const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_heartbeat_t m;
    if (ipc_heartbeat_read(h, &m) < 0) {
        malformed(h);
        return;
    }
    router_seen(IPC_HEARTBEAT, m.epoch);
}

static void on_auth_reply(const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_auth_reply_t m;
    if (ipc_auth_reply_read(h, &m) < 0) {
        malformed(h); /* the request times out (request_timeout) */
        return;
    }
    client_t *c = client_of(IPC_AUTH_REPLY, m.conn);
    if (!c)
        return;
    if (m.seq == c->pending_seq)
        evloop_cancel(fe.loop, &c->req_timer);
    stream_on_auth_reply(c, &m);
}

static void on_bind_reply(const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_bind_reply_t m;
    if (ipc_bind_reply_read(h, &m) < 0) {
        malformed(h);
        return;
    }
    client_t *c = client_of(IPC_BIND_REPLY, m.conn);
    if (!c)
        return;
    if (m.seq == c->pending_seq)
        evloop_cancel(fe.loop, &c->req_timer);
    stream_on_bind_reply(c, &m);
}

static void on_register_reply(const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_register_reply_t m;
    if (ipc_register_reply_read(h, &m) < 0) {
        malformed(h); /* the request times out (request_timeout) */
        return;
    }
    client_t *c = client_of(IPC_REGISTER_REPLY, m.conn);
    if (!c)
        return;
    if (m.seq == c->pending_seq)
        evloop_cancel(fe.loop, &c->req_timer);
    stream_on_register_reply(c, &m);
}

/* A stanza the router routed to this connection. Once the stream's closing tag is written
 * nothing may follow it (RFC 6120 4.4): what the router sent before it saw the session end
 * is not written, as for a connection that is gone already. It goes back to the router
 * (IPC_RETURN), which routes it as for a resource that is not online (RFC 6121 8.5.3.2:
 * a message to the user's other resources or offline storage, an iq request answered
 * with an error): a client that closes while a message is on its way loses nothing the
 * server still holds. A numbered stanza (stream management) is the router's already: its
 * queue of unacknowledged stanzas has it. */
static void on_deliver(const ipc_hdr_t *h, const zpart_t *payload)
{
    ipc_deliver_t m;
    if (ipc_deliver_read(h, &m) < 0 || !payload) {
        malformed(h);
        return;
    }
    client_t *c = client_of(IPC_DELIVER, m.conn);
    if ((!c || c->stream_done) && !m.numbered) {
        /* In order behind the unbind, which may wait in the router buffer. */
        ipc_hdr_t rh;
        ipc_return_build(&rh, &(ipc_return_t){.conn = m.conn});
        router_submit(&rh, payload->data, payload->len, 0); /* buffer full: dropped */
        return;
    }
    if (!c || !c->bound || c->stream_done || (m.numbered && sm_check_number(c, m.h) < 0))
        return;
    client_write(c, payload->data, payload->len);
    client_count_out(payload->data, payload->len);
    if (m.numbered)
        sm_on_written(c, m.h);
}

/* The answer to a client's <r/> (sm-request). */
static void on_sm_ack(const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_sm_ack_t m;
    if (ipc_sm_ack_read(h, &m) < 0) {
        malformed(h);
        return;
    }
    client_t *c = client_of(IPC_SM_ACK, m.conn);
    if (c)
        sm_on_router_ack(c, m.h);
}

static void on_sm_enabled(const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_sm_enabled_t m;
    if (ipc_sm_enabled_read(h, &m) < 0) {
        malformed(h); /* the request times out (request_timeout) */
        return;
    }
    client_t *c = client_of(IPC_SM_ENABLED, m.conn);
    if (!c)
        return;
    if (m.seq == c->pending_seq)
        evloop_cancel(fe.loop, &c->req_timer);
    sm_on_enabled(c, &m);
}

static void on_sm_resumed(const ipc_hdr_t *h, const zpart_t *payload)
{
    ipc_sm_resumed_t m;
    if (ipc_sm_resumed_read(h, &m) < 0) {
        malformed(h); /* the request times out (request_timeout) */
        return;
    }
    client_t *c = client_of(IPC_SM_RESUMED, m.conn);
    if (!c)
        return;
    if (m.seq == c->pending_seq)
        evloop_cancel(fe.loop, &c->req_timer);
    sm_on_resumed(c, &m, payload ? payload->data : NULL, payload ? payload->len : 0);
}

static void on_close(const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_close_t m;
    if (ipc_close_read(h, &m) < 0) {
        malformed(h);
        return;
    }
    client_t *c = client_of(IPC_CLOSE, m.conn);
    if (!c)
        return;
    c->reported = 0; /* the router has already ended the session */
    client_stream_error(c, m.condition, *m.text ? m.text : NULL);
}

/* A stanza for another domain (s2s_out.c sends it on, or bounces it). */
static void on_s2s_out(const ipc_hdr_t *h, const zpart_t *payload)
{
    ipc_s2s_t m;
    if (ipc_s2s_out_read(h, &m) < 0 || !payload) {
        malformed(h);
        return;
    }
    s2s_out_route(&m, payload->data, payload->len);
}

/* What the router may send, and who handles it. Each handler reads its typed message
 * (ipc.h); one its reader refuses is logged and dropped. */
typedef void (*router_handler_fn)(const ipc_hdr_t *h, const zpart_t *payload);
static const router_handler_fn handlers[IPC_TYPE_MAX + 1] = {
    [IPC_HELLO] = on_hello,
    [IPC_HEARTBEAT] = on_heartbeat,
    [IPC_AUTH_REPLY] = on_auth_reply,
    [IPC_BIND_REPLY] = on_bind_reply,
    [IPC_REGISTER_REPLY] = on_register_reply,
    [IPC_DELIVER] = on_deliver,
    [IPC_CLOSE] = on_close,
    [IPC_SM_ENABLED] = on_sm_enabled,
    [IPC_SM_RESUMED] = on_sm_resumed,
    [IPC_SM_ACK] = on_sm_ack,
    [IPC_S2S_OUT] = on_s2s_out,
};

static void on_message(void *ud, const zpart_t *parts, int nparts)
{
    (void)ud;
    ipc_hdr_t h;
    metric_inc(fe.m.link.msgs_in);
    for (int i = 0; i < nparts && i < ZLINK_MAX_PARTS; i++)
        metric_add(fe.m.link.bytes_in, (double)parts[i].len);
    if (nparts < 1 || nparts > 2 || ipc_decode(&h, parts[0].data, parts[0].len) < 0) {
        log_warn("router link: dropped a malformed message (%d parts)", nparts);
        return;
    }
    router_handler_fn fn = h.type <= IPC_TYPE_MAX ? handlers[h.type] : NULL;
    if (!fn) {
        log_warn("router link: unexpected %s", ipc_type_name((ipc_type_t)h.type));
        return;
    }
    /* Any message shows the router alive; hello and heartbeat also say which router. */
    if (h.type != IPC_HELLO && h.type != IPC_HEARTBEAT)
        rl.seen_ms = now_ms();
    fn(&h, nparts == 2 ? &parts[1] : NULL);
}

/* Connection events of the DEALER socket (zmq_socket_monitor): a dropped TCP connection
 * means the router is gone now, not after router_timeout; a new one is greeted at once. */
static void on_monitor(void *ud, const zpart_t *parts, int nparts)
{
    (void)ud;
    if (nparts != 2 || parts[0].len != 6)
        return;
    uint16_t event;
    memcpy(&event, parts[0].data, sizeof event);
    uint32_t value;
    memcpy(&value, (const char *)parts[0].data + 2, sizeof value);
    if (event == ZMQ_EVENT_DISCONNECTED) {
        rl.connected = 0;
        router_down("connection lost");
    } else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        rl.connected = 1;
        log_debug("router link: connected");
        if (rl.handshake_failed)
            log_info("router link: handshake with the router succeeded");
        rl.handshake_failed = rl.handshake_lost = 0;
        if (!rl.up)
            send_hello(IPC_HEARTBEAT);
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL && !rl.handshake_failed) {
        if (++rl.handshake_lost == 10) {
            rl.handshake_failed = 1;
            log_warn("router link: the router keeps ending the handshake (%s): check "
                     "link_curve, router_curve_public and frontend_curve_secret against the "
                     "router's",
                     strerror((int)value));
        }
    } else if (event != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL && !rl.handshake_failed) {
        /* The router refused us: no request can be served until the keys are fixed. */
        rl.handshake_failed = 1;
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            log_error("router link: the router refused our CURVE key %s (ZAP status %u): it "
                      "must be in the router's router_curve_allow or router_curve_allow_file",
                      rl.curve_public, (unsigned)value);
        else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            log_error("router link: handshake refused: the router and this frontend do not "
                      "agree on link_curve");
        else
            log_error("router link: handshake with the router failed (protocol error 0x%x): "
                      "check link_curve, router_curve_public and frontend_curve_secret",
                      (unsigned)value);
    }
}

/* link_curve: this frontend is a CURVE client of the router, with its own key pair
 * (frontend_curve_secret) and the router's public key (router_curve_public). */
static void link_curve_client(void *sock)
{
    static const char *const keys[] = {"router_curve_public", "frontend_curve_secret",
                                       "frontend_curve_secret_file"};
    if (!config_bool("link_curve")) {
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (*config_str(keys[i])) {
                log_warn("router link: link_curve is false, so '%s' is ignored: the link to "
                         "the router is neither encrypted nor authenticated",
                         keys[i]);
                break;
            }
        return;
    }
    char server[CURVE_Z85_LEN + 1], secret[CURVE_Z85_LEN + 1], given[CURVE_Z85_LEN + 1];
    if (!curve_key_config("router_curve_public", 0, server))
        log_fatal("config: link_curve is on but key 'router_curve_public' (the router's "
                  "public key) is not set");
    if (!curve_key_config("frontend_curve_secret", 1, secret))
        log_fatal("config: link_curve is on but key 'frontend_curve_secret' (or "
                  "frontend_curve_secret_file) is not set; make a key pair with xmppctl "
                  "keygen frontend");
    curve_public_of(secret, rl.curve_public);
    if (curve_key_config("frontend_curve_public", 0, given) && strcmp(given, rl.curve_public))
        log_fatal("config: key 'frontend_curve_public' is not the public key of "
                  "frontend_curve_secret (that is %s)",
                  rl.curve_public);
    unsigned char sk[CURVE_KEY_LEN], pk[CURVE_KEY_LEN], srv[CURVE_KEY_LEN];
    curve_key_parse(server, srv);
    curve_key_parse(secret, sk);
    curve_key_parse(rl.curve_public, pk);
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, srv, sizeof srv) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pk, sizeof pk) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sk, sizeof sk) < 0)
        log_fatal("router link: cannot enable CURVE: %s", zmq_strerror(errno));
    OPENSSL_cleanse(sk, sizeof sk);
    OPENSSL_cleanse(secret, sizeof secret);
    log_info("router link: CURVE on, our public key %s, router key %s", rl.curve_public,
             server);
}

void router_link_open(const char *endpoint)
{
    rl.heartbeat_ms = config_int("heartbeat_interval");
    rl.timeout_ms = config_int("router_timeout");
    rl.request_ms = config_int("request_timeout");
    rl.buffer_max = (size_t)config_int("router_buffer");
    fe.zctx = zmq_ctx_new();
    fe.zsock = zmq_socket(fe.zctx, ZMQ_DEALER);
    char ident[128];
    snprintf(ident, sizeof ident, "%s:%016" PRIx64, fe.name, fe.epoch);
    int one = 1;
    zmq_setsockopt(fe.zsock, ZMQ_ROUTING_ID, ident, strlen(ident));
    zlink_link_options(fe.zsock, (int)config_int("link_hwm"));
    link_curve_client(fe.zsock);
    /* Nothing is queued towards a router that is not connected: such a send fails at once
     * and the message goes to our own buffer, where resync can be put ahead of it. */
    zmq_setsockopt(fe.zsock, ZMQ_IMMEDIATE, &one, sizeof one);
    if (zmq_socket_monitor(fe.zsock, MONITOR_ENDPOINT,
                           ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) < 0)
        log_fatal("router link: cannot monitor the socket: %s", zmq_strerror(errno));
    rl.monitor = zmq_socket(fe.zctx, ZMQ_PAIR);
    if (!rl.monitor || zmq_connect(rl.monitor, MONITOR_ENDPOINT) < 0)
        log_fatal("router link: cannot open the monitor: %s", zmq_strerror(errno));
    rl.monitor_link = zlink_new(fe.loop, rl.monitor, on_monitor, NULL);
    if (zmq_connect(fe.zsock, endpoint) < 0)
        log_fatal("router_endpoint: cannot connect to '%s': %s", endpoint, zmq_strerror(errno));
    fe.link = zlink_new(fe.loop, fe.zsock, on_message, NULL);
    zlink_batches(fe.link); /* our hello says we take them */
    send_hello(IPC_HELLO);
    rl.tick = evloop_timer(fe.loop, 20, on_tick, NULL);
    log_info("router link: connecting to %s as %s", endpoint, ident);
}

void router_link_close(void)
{
    evloop_cancel(fe.loop, &rl.tick);
    evloop_cancel(fe.loop, &rl.retry);
    evloop_cancel(fe.loop, &rl.hold);
    if (rl.nbuffered)
        log_warn("router link: %zu buffered messages not sent (shutting down)", rl.nbuffered);
    while (rl.head) {
        pending_msg_t *m = rl.head;
        rl.head = m->next;
        free(m);
    }
    rl.tail = NULL;
    rl.nbuffered = 0;
    zlink_destroy(&rl.monitor_link);
    zlink_destroy(&fe.link);
    if (fe.zsock) {
        zmq_socket_monitor(fe.zsock, NULL, 0);
        zmq_close(fe.zsock);
    }
    if (rl.monitor)
        zmq_close(rl.monitor);
    if (fe.zctx)
        zmq_ctx_term(fe.zctx);
    rl.monitor = fe.zsock = fe.zctx = NULL;
}
