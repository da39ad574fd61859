#include "zlink.h"

#include <errno.h>
#include <stdlib.h>
#include <zmq.h>

#include "config.h"
#include "log.h"
#include "util.h"

/* Read by both ends of the frontend-router link. */
const config_key_t zlink_config_keys[] = {
    CONFIG_INT("link_hwm", "100000", 10, 10000000, "messages ZeroMQ queues for one peer of the link that does not read"),
    CONFIG_END,
};

struct zlink {
    evloop_t *loop;
    void *sock;
    int fd;
    zlink_cb cb;
    void *ud;
};

/* Receives until ZeroMQ has nothing more. ZMQ_EVENTS is asked only once the queue looks
 * empty, not before every message: each ask costs libzmq a poll() and a getpid()
 * (bench/README.md, "Where the time goes"), and it is still asked before the loop sleeps
 * (on_before_sleep), which is what re-arms the socket's edge-triggered descriptor. */
void zlink_drain(zlink_t *z)
{
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
                    return; /* the socket is closing (ETERM) or broken: nothing to read */
                if (n == 0) {
                    int events = 0;
                    size_t sz = sizeof events;
                    if (asked || zmq_getsockopt(z->sock, ZMQ_EVENTS, &events, &sz) < 0 ||
                        !(events & ZMQ_POLLIN))
                        return;
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
        z->cb(z->ud, parts, n + extra);
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
    evloop_watch(loop, z->fd, EV_READ, on_fd, z);
    evloop_before_sleep(loop, on_before_sleep, z);
    return z;
}

void zlink_destroy(zlink_t **link_p)
{
    zlink_t *z = *link_p;
    if (!z)
        return;
    evloop_unwatch(z->loop, z->fd);
    /* The before-sleep hook cannot be removed; the loop is going away with the link. */
    free(z);
    *link_p = NULL;
}

int zlink_send(zlink_t *z, const zpart_t *parts, int nparts)
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
