#include "zlink.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "buf.h"
#include "config.h"
#include "hmap.h"
#include "log.h"
#include "util.h"

/* Read by both ends of the frontend-router link. */
const config_key_t zlink_config_keys[] = {
    CONFIG_INT("link_hwm", "3000", 10, 10000000, "messages (a batch counts once) ZeroMQ queues for one peer of the link that does not read"),
    CONFIG_END,
};

/* Batches (zbatch.h). On a ROUTER socket the peer's routing id precedes the batch frame
 * and the messages inside leave it out. A batch that reaches this size goes out at once, without waiting for the loop's wait;
 * a message at least this big goes alone. So a batch is under twice this size, and what
 * ZeroMQ queues for a peer (link_hwm messages) stays bounded in bytes. While a batch this
 * big is refused by a full pipe, sends to that peer fail with EAGAIN, as an unbatched send
 * to a full pipe does. */
#define ZBATCH_FLUSH_BYTES (8u * 1024)
/* Retry of batches a full pipe refused. */
#define ZBATCH_RETRY_MS 5

/* A peer whose messages are batched. */
typedef struct zpeer {
    struct zpeer *next; /* in the link's list of peers with a batch waiting */
    int queued;         /* on that list */
    int unreachable;    /* a batch found it gone (EHOSTUNREACH): sends fail at once until
                           a message comes from it again */
    size_t count;       /* messages in buf */
    buf_t buf;
    size_t ident_len;
    unsigned char ident[]; /* routing id (ROUTER sockets) */
} zpeer_t;

struct zlink {
    evloop_t *loop;
    void *sock;
    int fd;
    zlink_cb cb;
    void *ud;
    int routed;       /* a ROUTER socket: part 0 of every message is the peer's routing id */
    int batches;      /* zlink_batches: batches that come are opened */
    zpeer_t *single;  /* not routed: the one peer, when it takes batches */
    hmap_t *peers;    /* routed: routing id -> zpeer_t, the peers that take batches */
    size_t nunreachable;
    zpeer_t *queue;   /* peers with a batch waiting */
    zlink_cb lost_cb; /* zlink_on_lost */
    void *lost_ud;
    ev_timer_t *retry;
};

static void clear_unreachable(zlink_t *z, const zpart_t *id)
{
    zpeer_t *p = hmap_get(z->peers, id->data, id->len);
    if (p && p->unreachable) {
        p->unreachable = 0;
        z->nunreachable--;
    }
}

/* A complete message received: opened when it is a batch. */
static void dispatch(zlink_t *z, const zpart_t *parts, int n)
{
    if (z->batches) {
        const zpart_t *id = z->routed ? &parts[0] : NULL;
        if (id && z->nunreachable)
            clear_unreachable(z, id);
        const zpart_t *body = &parts[id ? 1 : 0];
        if (n == (id ? 2 : 1) && body->len > 0 &&
            *(const unsigned char *)body->data == ZBATCH_MAGIC) {
            if (zbatch_open(body->data, body->len, id, z->cb, z->ud) < 0)
                log_warn("zlink: dropped the rest of a malformed batch (%zu bytes)", body->len);
            return;
        }
    }
    z->cb(z->ud, parts, n);
}

/* Receives until ZeroMQ has nothing more. ZMQ_EVENTS is asked only once the queue looks
 * empty, not before every message: each ask costs libzmq a poll() and a getpid()
 * (bench/README.md, "Where the time goes"), and it is still asked before the loop sleeps
 * (on_before_sleep), which is what re-arms the socket's edge-triggered descriptor. */
int zlink_drain(zlink_t *z)
{
    int got = 0;
    int asked = 0; /* ZMQ_EVENTS said more is there, and nothing was received since */
    for (;;) {
        zmq_msg_t msgs[ZLINK_MAX_PARTS];
        zpart_t parts[ZLINK_MAX_PARTS];
        int n = 0, more = 1, extra = 0;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, z->sock, ZMQ_DONTWAIT) < 0) {
                int err = errno;
                zmq_msg_close(&m);
                if (n == 0 && err != EAGAIN)
                    return got; /* the socket is closing (ETERM) or broken */
                if (n == 0) {
                    int events = 0;
                    size_t sz = sizeof events;
                    if (asked || zmq_getsockopt(z->sock, ZMQ_EVENTS, &events, &sz) < 0 ||
                        !(events & ZMQ_POLLIN))
                        return got;
                    asked = 1; /* it came meanwhile: once more */
                    continue;
                }
                break;
            }
            asked = 0;
            more = zmq_msg_more(&m);
            if (n < ZLINK_MAX_PARTS) {
                msgs[n] = m;
                parts[n].data = zmq_msg_data(&msgs[n]);
                parts[n].len = zmq_msg_size(&msgs[n]);
                n++;
            } else {
                extra = 1;
                zmq_msg_close(&m);
            }
        }
        got = 1;
        if (extra)
            z->cb(z->ud, parts, n + extra);
        else
            dispatch(z, parts, n);
        for (int i = 0; i < n; i++)
            zmq_msg_close(&msgs[i]);
    }
}

static void on_fd(evloop_t *loop, int fd, unsigned events, void *ud)
{
    (void)loop;
    (void)fd;
    (void)events;
    zlink_drain(ud);
}

static void on_before_sleep(evloop_t *loop, void *ud)
{
    (void)loop;
    zlink_drain(ud);
}

/* One message now, as it is (0, or -1 with errno). */
static int send_now(zlink_t *z, const zpart_t *parts, int nparts)
{
    for (int i = 0; i < nparts; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < nparts ? ZMQ_SNDMORE : 0);
        if (zmq_send(z->sock, parts[i].data, parts[i].len, flags) < 0) {
            if (i > 0)
                log_error("zmq_send failed inside a multipart message: %s", zmq_strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void batch_reset(zpeer_t *p)
{
    p->count = 0;
    if (p->buf.cap > 2 * ZBATCH_FLUSH_BYTES)
        buf_free(&p->buf); /* what a backlog grew is not kept */
    else
        buf_clear(&p->buf);
}

struct one {
    zpart_t *parts;
    int n;
};

static void take_one(void *ud, const zpart_t *parts, int n)
{
    struct one *one = ud;
    for (int i = 0; i < n; i++)
        one->parts[i] = parts[i];
    one->n = n;
}

/* Sends p's batch (a message alone as itself). 0 when it went or was dropped; -1 with
 * errno when it is kept (EAGAIN: the peer's pipe is full). A peer found gone loses the
 * batch, as messages in its pipe are lost when it goes (docs/PROTOCOL.md, "Batches"). */
static int batch_send(zlink_t *z, zpeer_t *p)
{
    if (!p->count)
        return 0;
    zpart_t parts[ZLINK_MAX_PARTS];
    int n = 0;
    if (z->routed)
        parts[n++] = (zpart_t){p->ident, p->ident_len};
    if (p->count == 1) {
        /* A batch of one goes as itself: its parts after the routing id. */
        struct one one = {parts + n, 0};
        zbatch_open(p->buf.data, p->buf.len, NULL, take_one, &one);
        n += one.n;
    } else {
        parts[n++] = (zpart_t){p->buf.data, p->buf.len};
    }
    if (send_now(z, parts, n) == 0) {
        batch_reset(p);
        return 0;
    }
    int err = errno;
    if (err == EAGAIN)
        return -1;
    log_warn("zlink: a batch of %zu messages to %.*s not sent: %s", p->count,
             (int)p->ident_len, (const char *)p->ident, zmq_strerror(err));
    if (err == EHOSTUNREACH && !p->unreachable) {
        p->unreachable = 1;
        z->nunreachable++;
    }
    if (z->lost_cb) {
        zpart_t id = {p->ident, p->ident_len};
        zbatch_open(p->buf.data, p->buf.len, z->routed ? &id : NULL, z->lost_cb, z->lost_ud);
    }
    batch_reset(p);
    errno = err;
    return -1;
}

static void on_retry(evloop_t *loop, void *ud);

/* Sends every batch waiting; what a full pipe refused is tried again soon. Then the link
 * is drained: a send can take the edge an arrival raised (module comment), and what came
 * is handled by the other hooks in one more pass. */
static void flush_all(evloop_t *loop, void *ud)
{
    zlink_t *z = ud;
    zpeer_t *keep = NULL, **tail = &keep;
    int sent = 0;
    while (z->queue) {
        zpeer_t *p = z->queue;
        z->queue = p->next;
        if (batch_send(z, p) < 0 && errno == EAGAIN) {
            *tail = p;
            tail = &p->next;
        } else {
            p->queued = 0;
            sent = 1;
        }
    }
    *tail = NULL;
    z->queue = keep;
    if (keep && !z->retry)
        z->retry = evloop_timer(loop, ZBATCH_RETRY_MS, on_retry, z);
    if (sent && zlink_drain(z))
        evloop_again(loop);
}

static void on_retry(evloop_t *loop, void *ud)
{
    zlink_t *z = ud;
    z->retry = NULL;
    flush_all(loop, z);
}

zlink_t *zlink_new(evloop_t *loop, void *sock, zlink_cb cb, void *ud)
{
    zlink_t *z = xcalloc(1, sizeof *z);
    z->loop = loop;
    z->sock = sock;
    z->cb = cb;
    z->ud = ud;
    size_t sz = sizeof z->fd;
    if (zmq_getsockopt(sock, ZMQ_FD, &z->fd, &sz) < 0)
        log_fatal("zmq_getsockopt(ZMQ_FD): %s", zmq_strerror(errno));
    int type = 0;
    sz = sizeof type;
    z->routed = zmq_getsockopt(sock, ZMQ_TYPE, &type, &sz) == 0 && type == ZMQ_ROUTER;
    evloop_watch(loop, z->fd, EV_READ, on_fd, z);
    evloop_before_sleep(loop, on_before_sleep, z);
    return z;
}

static void peer_free(void *v)
{
    zpeer_t *p = v;
    buf_free(&p->buf);
    free(p);
}

void zlink_destroy(zlink_t **link_p)
{
    zlink_t *z = *link_p;
    if (!z)
        return;
    /* What waits goes now (the socket's linger delivers it), or is lost as it would be
     * in a full pipe. */
    for (zpeer_t *p = z->queue; p; p = p->next)
        batch_send(z, p);
    evloop_cancel(z->loop, &z->retry);
    evloop_unwatch(z->loop, z->fd);
    /* The before-sleep hooks cannot be removed; the loop is going away with the link. */
    hmap_destroy_all(&z->peers, peer_free);
    if (z->single)
        peer_free(z->single);
    free(z);
    *link_p = NULL;
}

void zlink_batches(zlink_t *z)
{
    if (z->batches)
        return;
    z->batches = 1;
    evloop_before_sleep_last(z->loop, flush_all, z);
}

static zpeer_t *peer_new(const void *ident, size_t len)
{
    zpeer_t *p = xcalloc(1, sizeof *p + len);
    memcpy(p->ident, ident, len);
    p->ident_len = len;
    return p;
}

void zlink_batch_to(zlink_t *z, const void *ident, size_t len)
{
    zlink_batches(z);
    if (!z->routed) {
        if (!z->single)
            z->single = peer_new("", 0);
        return;
    }
    if (!z->peers)
        z->peers = hmap_new();
    if (!hmap_get(z->peers, ident, len))
        hmap_put(z->peers, ident, len, peer_new(ident, len));
}

void zlink_on_lost(zlink_t *z, zlink_cb cb, void *ud)
{
    z->lost_cb = cb;
    z->lost_ud = ud;
}

void zlink_take_back(zlink_t *z, const void *ident, size_t len, zlink_cb cb, void *ud)
{
    zpeer_t *p = !z ? NULL : z->routed ? hmap_get(z->peers, ident, len) : z->single;
    if (!p || !p->count)
        return;
    zbatch_open(p->buf.data, p->buf.len, NULL, cb, ud);
    batch_reset(p);
}

void zlink_forget(zlink_t *z, const void *ident, size_t len)
{
    if (!z)
        return;
    zpeer_t *p = z->routed ? hmap_del(z->peers, ident, len) : z->single;
    if (!p)
        return;
    if (!z->routed)
        z->single = NULL;
    batch_send(z, p);
    for (zpeer_t **pp = &z->queue; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    if (p->unreachable)
        z->nunreachable--;
    peer_free(p);
}

int zlink_send(zlink_t *z, const zpart_t *parts, int nparts)
{
    zpeer_t *p = NULL;
    int skip = z->routed ? 1 : 0;
    if (z->routed && z->peers && nparts > 1)
        p = hmap_get(z->peers, parts[0].data, parts[0].len);
    else if (!z->routed)
        p = z->single;
    if (!p || nparts > ZLINK_MAX_PARTS || nparts <= skip)
        return send_now(z, parts, nparts);
    if (p->unreachable) {
        errno = EHOSTUNREACH;
        return -1;
    }
    size_t size = 1;
    for (int i = skip; i < nparts; i++)
        size += 4 + parts[i].len;
    if (p->buf.len >= ZBATCH_FLUSH_BYTES || size >= ZBATCH_FLUSH_BYTES) {
        if (batch_send(z, p) < 0)
            return -1; /* EAGAIN: the pipe is full; EHOSTUNREACH: the peer is gone */
        if (size >= ZBATCH_FLUSH_BYTES)
            return send_now(z, parts, nparts); /* nothing waits before it: alone */
    }
    zbatch_append(&p->buf, parts + skip, nparts - skip);
    p->count++;
    if (!p->queued) {
        p->queued = 1;
        p->next = z->queue;
        z->queue = p;
    }
    if (p->buf.len >= ZBATCH_FLUSH_BYTES)
        batch_send(z, p); /* kept when the pipe is full: the hook tries again */
    return 0;
}

void zlink_link_options(void *sock, int hwm)
{
    int linger = 1000, ivl = 1000, ttl = 5000, tmo = 3000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(sock, ZMQ_HEARTBEAT_TTL, &ttl, sizeof ttl);
    zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &tmo, sizeof tmo);
}

void zlink_metrics_register(zlink_metrics_t *m)
{
    const char *lm = "messages on the frontend-router link, by direction";
    const char *lb = "bytes (header and stanza frames) on the frontend-router link, by direction";
    m->msgs_in = metrics_counter("xmpp_link_messages_total", "direction=\"in\"", lm);
    m->msgs_out = metrics_counter("xmpp_link_messages_total", "direction=\"out\"", lm);
    m->bytes_in = metrics_counter("xmpp_link_bytes_total", "direction=\"in\"", lb);
    m->bytes_out = metrics_counter("xmpp_link_bytes_total", "direction=\"out\"", lb);
}
