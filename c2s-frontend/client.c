/* Client connections: accept, TCP and TLS I/O, batched output, orderly close. */
#include "client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "proxy.h"
#include "util.h"

#define READ_CHUNK 16384
#define READ_PASS (4 * READ_CHUNK)

static void client_io(evloop_t *loop, int fd, unsigned events, void *ud);
static void client_read_later(client_t *c, uint64_t ms);
static void client_teardown(client_t *c);

client_t *client_find(uint64_t conn)
{
    return hmap_get(fe.clients, &conn, sizeof conn);
}

static void set_events(client_t *c, unsigned events)
{
    if (c->closed || events == c->watching)
        return;
    evloop_modify(fe.loop, c->fd, events);
    c->watching = events;
}

/* 1 while the client's input may be read: not waiting on the router, not closing, within
 * max_bytes_per_second, and not so far behind on reading its own output that more input
 * would only queue more (a client that sends without reading stalls itself). */
static int may_read(const client_t *c)
{
    return !c->read_paused && !c->closing && !c->throttled && !c->overflow && !c->connecting &&
           c->out.len <= fe.out_pause;
}

/* Which events the connection needs now: reads while may_read, writes while output is
 * blocked (whoever asks, so that no path stops waiting on a socket that still owes the
 * client its output); during a TLS handshake, what OpenSSL asked for. */
static void update_events(client_t *c, int want_write)
{
    if (c->lingering) {
        set_events(c, EV_READ | (c->notify_pending ? EV_WRITE : 0));
        return;
    }
    unsigned ev = 0;
    if (may_read(c))
        ev |= EV_READ;
    if (want_write || c->write_blocked)
        ev |= EV_WRITE;
    if (c->closing && !want_write)
        ev |= EV_READ; /* notice the peer's close while we wait to write */
    set_events(c, ev);
}

/* Counts a connection against its address's limits once the address is known (at accept,
 * or from the PROXY header); a connection over them gets a policy-violation stream error
 * (RFC 6120 4.9.3.14), or is closed at once on the direct TLS port. Returns 1 when
 * admitted. */
static int client_admit(client_t *c)
{
    addrlimit_key(c->addr, c->addr_key);
    const char *why = addrlimit_admit(c->addr_key, now_ms());
    if (!why) {
        c->admitted = 1;
        return 1;
    }
    log_info("conn %llu: refused %s: %s", (unsigned long long)c->id, c->addr, why);
    if (c->direct_tls)
        client_close(c, 0);
    else
        client_stream_error(c, "policy-violation", why);
    return 0;
}

void client_accept(int fd, unsigned flags)
{
    client_t *c = xcalloc(1, sizeof *c);
    c->id = ++fe.next_conn;
    c->fd = fd;
    /* Output is already batched once per loop pass; Nagle would only add delayed-ACK
     * waits to every small stanza. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        char host[48] = "?", port[8] = "?";
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(c->addr, sizeof c->addr, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
                 port);
    }
    hmap_put(fe.clients, &c->id, sizeof c->id, c);
    fe.nclients++;
    metric_inc(fe.m.accepted);
    evloop_watch(fe.loop, fd, EV_READ, client_io, c);
    c->watching = EV_READ;
    c->direct_tls = (flags & LISTEN_DIRECT_TLS) != 0;
    if (flags & LISTEN_WEBSOCKET)
        ws_attach(c);
    if (flags & LISTEN_S2S)
        s2s_attach_inbound(c);
    c->proxy_pending = fe.proxy_protocol != 0;
    c->rate_tokens = (double)fe.bytes_per_second;
    c->rate_refill = now_ms();
    stream_init(c);
    if (!c->proxy_pending && !client_admit(c))
        return;
    if (c->direct_tls && !c->proxy_pending)
        client_start_tls(c);
    log_debug("conn %llu: accepted from %s%s%s%s", (unsigned long long)c->id, c->addr,
              c->direct_tls ? " (direct TLS)" : "", c->ws ? " (WebSocket)" : "",
              c->s2s ? " (server)" : "");
}

client_t *client_connect(int fd, const char *addr, int direct_tls)
{
    client_t *c = xcalloc(1, sizeof *c);
    c->id = ++fe.next_conn;
    c->fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    hmap_put(fe.clients, &c->id, sizeof c->id, c);
    fe.nclients++;
    /* The connect completes (or fails) when the socket becomes writable. */
    evloop_watch(fe.loop, fd, EV_WRITE, client_io, c);
    c->watching = EV_WRITE;
    c->outbound = 1;
    c->connecting = 1;
    c->direct_tls = direct_tls != 0;
    c->rate_tokens = (double)fe.bytes_per_second;
    c->rate_refill = now_ms();
    return c;
}

/* An outbound connect finished: connected, or failed (closed: the stream layer moves on). */
static void connect_done(client_t *c, unsigned events)
{
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    if (!err && (events & EV_ERROR))
        err = ECONNREFUSED;
    if (!err && !(events & EV_WRITE))
        return;
    if (err) {
        if (c->s2s)
            snprintf(c->s2s->why, sizeof c->s2s->why, "connect: %s", strerror(err));
        log_info("conn %llu: connect to %s failed: %s", (unsigned long long)c->id, c->addr,
                 strerror(err));
        client_close(c, 0);
        return;
    }
    c->connecting = 0;
    update_events(c, 0);
    s2s_connected(c);
}

/* The PROXY header comes before any TLS or XML byte. Bytes are peeked at and only those
 * that certainly belong to the header are read (all of them while it is incomplete, since
 * a v1 line ends with CRLF and a v2 header states its length), so not one byte of what
 * follows is taken from OpenSSL or the XML parser. Returns 1 when done (the connection goes
 * on), 0 to wait for more bytes, -1 when the connection was closed. */
static int client_read_proxy(client_t *c)
{
    unsigned char hdr[PROXY_MAX_HEADER];
    size_t have = c->proxy_acc.len;
    memcpy(hdr, c->proxy_acc.data ? c->proxy_acc.data : "", have);
    ssize_t n = recv(c->fd, hdr + have, sizeof hdr - have, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n <= 0) {
        client_close(c, 0);
        return -1;
    }
    proxy_info_t info;
    int len = proxy_parse(hdr, have + (size_t)n, &info);
    size_t take = len > 0 ? (size_t)len - have : (size_t)n;
    if (len < 0 || (len == 0 && have + (size_t)n >= sizeof hdr) ||
        recv(c->fd, hdr + have, take, 0) != (ssize_t)take) {
        /* proxy_protocol is on: only the load balancer may connect here. */
        log_warn("conn %llu: no valid PROXY header from %s: closed", (unsigned long long)c->id,
                 c->addr);
        client_close(c, 0);
        return -1;
    }
    if (len == 0) {
        buf_append(&c->proxy_acc, hdr + have, take);
        return 0;
    }
    buf_free(&c->proxy_acc);
    c->proxy_pending = 0;
    if (!info.local) {
        log_debug("conn %llu: client %s (PROXY v%d from %s)%s", (unsigned long long)c->id,
                 info.addr, info.version, c->addr, c->direct_tls ? ", direct TLS" : "");
        snprintf(c->addr, sizeof c->addr, "%s", info.addr);
        if (!client_admit(c))
            return -1;
    } else {
        log_debug("conn %llu: PROXY v%d LOCAL from %s", (unsigned long long)c->id, info.version,
                  c->addr);
    }
    if (c->direct_tls)
        client_start_tls(c);
    return 1;
}

static void mark_dirty(client_t *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        c->next_dirty = fe.dirty;
        fe.dirty = c;
    }
}

void client_write(client_t *c, const char *data, size_t len)
{
    if (c->ws && ws_upgraded(c) && !c->closed && !c->overflow && !c->closing)
        ws_write_element(c, data, len); /* framed, then client_write_raw */
    else
        client_write_raw(c, data, len);
}

void client_write_raw(client_t *c, const char *data, size_t len)
{
    /* After client_close nothing more goes out: the stream's last bytes are queued. */
    if (c->closed || c->overflow || c->closing)
        return;
    buf_append(&c->out, data, len);
    /* max_output_buffer is checked when the socket refuses more (client_flush); within
     * one pass, deliveries may add more, up to four times that. Past it the reader is
     * too slow whatever the socket says: drop the queue, close after this pass (not
     * here: the stream layer may be inside the parser). */
    if (c->out.len > 4 * fe.max_output) {
        log_info("conn %llu: %s: more than 4 x max_output_buffer (%zu bytes) queued in one "
                 "pass, closed", (unsigned long long)c->id, c->addr, fe.max_output);
        c->overflow = 1;
        buf_free(&c->out);
    }
    mark_dirty(c);
}

void client_count_out(const char *data, size_t len)
{
    metric_inc(fe.m.stanzas_out[ipc_kind_of_payload(data, len)]);
}

void client_write_str(client_t *c, const char *s)
{
    client_write(c, s, strlen(s));
}

/* Frees everything but the struct itself, which stays on fe.closing until the end of the
 * loop iteration so that callers up the stack never touch freed memory. */
static void client_teardown(client_t *c)
{
    if (c->closed)
        return;
    stream_on_closed(c);
    c->closed = 1;
    evloop_cancel(fe.loop, &c->read_timer);
    evloop_cancel(fe.loop, &c->linger_timer);
    if (c->admitted)
        addrlimit_release(c->addr_key);
    evloop_unwatch(fe.loop, c->fd);
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
    if (c->lingering) {
        if (c->linger_prev)
            c->linger_prev->linger_next = c->linger_next;
        else
            fe.lingering = c->linger_next;
        if (c->linger_next)
            c->linger_next->linger_prev = c->linger_prev;
    } else {
        hmap_del(fe.clients, &c->id, sizeof c->id);
    }
    fe.nclients--;
    buf_free(&c->out);
    buf_free(&c->proxy_acc);
    c->next_closing = fe.closing;
    fe.closing = c;
    log_debug("conn %llu: closed", (unsigned long long)c->id);
}

/* Lingering, the last bytes are written: no more is written, the write side is shut
 * down (the peer reads the end of the stream, then EOF), and reading goes on (raw,
 * discarded) until the peer closes or a bound is reached. */
static void linger_shut(client_t *c)
{
    c->notify_pending = 0;
    if (c->ssl) {
        SSL_free(c->ssl); /* the fd is not the SSL's to close */
        c->ssl = NULL;
    }
    shutdown(c->fd, SHUT_WR);
    update_events(c, 0);
}

/* Over TLS the close_notify goes out first (RFC 8446 6.1); the socket may be full. */
static void linger_notify(client_t *c)
{
    ERR_clear_error();
    int r = SSL_shutdown(c->ssl);
    if (r < 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_WRITE) {
        c->notify_pending = 1;
        update_events(c, 1);
        return;
    }
    linger_shut(c); /* sent, or the connection failed: the reads will tell */
}

static void on_linger_timeout(evloop_t *loop, void *ud)
{
    (void)loop;
    client_t *c = ud;
    c->linger_timer = NULL;
    log_info("conn %llu: %s: closed %d ms after its stream ended, without the peer closing "
             "(%zu bytes discarded)", (unsigned long long)c->id, c->addr, LINGER_MS,
             c->linger_bytes);
    client_teardown(c);
}

/* Starts the lingering close (client.h, LINGER_MS) once the last output is written. The
 * stream is over now: the router hears of it, and the connection leaves fe.clients, so
 * that nothing (a delivery, a router reply, a resync) reaches it any more. */
static void client_linger(client_t *c)
{
    if (c->lingering || c->closed)
        return;
    if (!c->admitted) {
        /* Refused by the address limits (or never counted): closed at once, so that a
         * flood of refused connections cannot hold max_connections for LINGER_MS each. */
        client_close(c, 0);
        return;
    }
    stream_on_closed(c);
    c->stream_done = 1;
    c->closing = 1;
    c->lingering = 1;
    c->throttled = 0;
    c->write_blocked = 0;
    evloop_cancel(fe.loop, &c->read_timer);
    buf_free(&c->out);
    hmap_del(fe.clients, &c->id, sizeof c->id);
    c->linger_prev = NULL;
    c->linger_next = fe.lingering;
    if (fe.lingering)
        fe.lingering->linger_prev = c;
    fe.lingering = c;
    c->linger_timer = evloop_timer(fe.loop, LINGER_MS, on_linger_timeout, c);
    log_debug("conn %llu: stream ended, lingering", (unsigned long long)c->id);
    if (c->ssl && !c->tls_handshaking)
        linger_notify(c);
    else
        linger_shut(c);
}

/* Reads and discards what the peer still sends, at most READ_PASS bytes per loop pass;
 * closes when it closes (or resets), or at LINGER_MAX_BYTES. */
static void linger_read(client_t *c)
{
    char data[READ_CHUNK];
    size_t taken = 0;
    while (taken < READ_PASS) {
        ssize_t n = recv(c->fd, data, sizeof data, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            log_debug("conn %llu: closed after lingering (%zu bytes discarded)",
                      (unsigned long long)c->id, c->linger_bytes);
            client_teardown(c);
            return;
        }
        taken += (size_t)n;
        c->linger_bytes += (size_t)n;
        if (c->linger_bytes >= LINGER_MAX_BYTES) {
            log_info("conn %llu: %s: closed after discarding %zu bytes past the end of its "
                     "stream, without the peer closing", (unsigned long long)c->id, c->addr,
                     c->linger_bytes);
            client_teardown(c);
            return;
        }
    }
}

void client_close(client_t *c, int graceful)
{
    if (c->closed)
        return;
    if (c->lingering) {
        if (!graceful)
            client_teardown(c);
        return;
    }
    if (c->overflow) {
        c->closing = 1; /* client_flush_all closes it */
        return;
    }
    /* An outbound connect still under way has nothing to end gracefully: kept, its socket
     * would connect later and wait on nothing for good. */
    if (graceful && !c->connecting) {
        /* Lingers once `out` is written (client_flush, before the loop waits): never from
         * here, which may be deep in the stream layer, inside the parser. */
        c->closing = 1;
        mark_dirty(c);
        update_events(c, 0);
        return;
    }
    if (c->ssl && !c->tls_handshaking)
        SSL_shutdown(c->ssl); /* best effort close_notify; never waits */
    client_teardown(c);
}

/* The socket takes no more: a client with more than max_output_buffer still queued reads
 * too slowly and is closed (-1), else writing waits for EV_WRITE (0). */
static int flush_blocked(client_t *c)
{
    if (c->out.len > fe.max_output) {
        log_info("conn %llu: %s reads too slowly: more than max_output_buffer (%zu bytes) "
                 "queued, closed", (unsigned long long)c->id, c->addr, fe.max_output);
        return -1;
    }
    c->write_blocked = 1;
    update_events(c, 1);
    /* Still reading (the backlog is under out_pause): input OpenSSL read ahead raises no
     * event. */
    if (c->ssl && may_read(c) && SSL_has_pending(c->ssl))
        client_read_later(c, 0);
    return 0;
}

/* Writes as much of c->out as the socket takes. Returns -1 when the connection failed. */
static int client_flush(client_t *c)
{
    if (c->lingering || c->connecting)
        return 0;
    while (c->out.len) {
        ssize_t n;
        if (c->ssl) {
            if (c->tls_handshaking)
                return 0;
            ERR_clear_error();
            int r = SSL_write(c->ssl, c->out.data, (int)(c->out.len > 1 << 30 ? 1 << 30 : c->out.len));
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE)
                    return flush_blocked(c);
                if (e == SSL_ERROR_WANT_READ)
                    return 0;
                return -1;
            }
            n = r;
        } else {
            n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return flush_blocked(c);
                if (errno == EINTR)
                    continue;
                return -1;
            }
        }
        buf_consume(&c->out, (size_t)n);
    }
    /* Everything is written: the memory is released so an idle session stays small. */
    c->write_blocked = 0;
    buf_free(&c->out);
    if (c->tls_start) {
        c->tls_start = 0;
        client_start_tls(c);
        return 0;
    }
    if (c->closing) {
        client_linger(c);
        return 0;
    }
    update_events(c, 0);
    if (c->ssl && may_read(c) && SSL_has_pending(c->ssl))
        client_read_later(c, 0);
    return 0;
}

void client_flush_all(evloop_t *loop, void *ud)
{
    (void)loop;
    (void)ud;
    while (fe.dirty) {
        client_t *c = fe.dirty;
        fe.dirty = c->next_dirty;
        c->dirty = 0;
        if (c->overflow && !c->closed) {
            c->overflow = 0;
            client_close(c, 0);
        } else if (!c->closed && client_flush(c) < 0) {
            client_close(c, 0);
        }
    }
    while (fe.closing) {
        client_t *c = fe.closing;
        fe.closing = c->next_closing;
        if (c->dirty)
            continue; /* still on the dirty list: freed on the next pass */
        stream_set_jid(c, "");
        stream_set_user(c, "");
        free(c);
    }
}

void client_start_tls(client_t *c)
{
    c->ssl = c->s2s ? s2s_ssl_new(c) : SSL_new(fe.tls);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        log_error("conn %llu: cannot set up TLS", (unsigned long long)c->id);
        client_close(c, 0);
        return;
    }
    c->tls_handshaking = 1;
    c->tls = 1;
    c->read_paused = 0;
    /* The client side speaks first: its ClientHello waits for the socket to be writable. */
    update_events(c, c->outbound);
}

/* Advances the TLS handshake; returns 1 when it completed now, 0 to wait, -1 on failure. */
static int tls_handshake(client_t *c)
{
    ERR_clear_error();
    int r = c->outbound ? SSL_connect(c->ssl) : SSL_accept(c->ssl);
    if (r == 1) {
        c->tls_handshaking = 0;
        metric_inc(fe.m.tls_ok);
        log_debug("conn %llu: TLS established (%s, %s)", (unsigned long long)c->id,
                  SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
        return 1;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        update_events(c, 0);
        return 0;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        update_events(c, 1);
        return 0;
    }
    metric_inc(fe.m.tls_failed);
    unsigned long err = ERR_peek_error();
    const char *reason = err ? ERR_reason_error_string(err) : NULL;
    log_info("conn %llu: TLS handshake failed %s %s: %s", (unsigned long long)c->id,
             c->outbound ? "to" : "from", c->addr, reason ? reason : "connection closed");
    if (c->s2s)
        snprintf(c->s2s->why, sizeof c->s2s->why, "TLS handshake: %s",
                 reason ? reason : "connection closed");
    return -1;
}

/* Takes n bytes from the client's max_bytes_per_second allowance; returns 1 while it
 * may go on reading, else stops reading until the allowance is back above zero. */
static int rate_take(client_t *c, size_t n)
{
    if (!fe.bytes_per_second)
        return 1;
    uint64_t now = now_ms();
    double rate = (double)fe.bytes_per_second;
    c->rate_tokens += (double)(now - c->rate_refill) * rate / 1000.0;
    if (c->rate_tokens > rate)
        c->rate_tokens = rate; /* a burst of one second's worth */
    c->rate_refill = now;
    c->rate_tokens -= (double)n;
    if (c->rate_tokens > 0) {
        c->throttled = 0;
        return 1;
    }
    c->throttled = 1;
    update_events(c, 0);
    client_read_later(c, (uint64_t)(-c->rate_tokens * 1000.0 / rate) + 1);
    return 0;
}

/* Reads what is available and hands it to the stream layer, at most READ_PASS bytes per
 * loop pass: one client that keeps sending must not hold the loop (others wait, and the
 * router's answers, which may pause it, are not drained meanwhile). epoll reports the rest
 * on the next pass. */
static void client_read(client_t *c)
{
    char data[READ_CHUNK];
    size_t taken = 0;
    while (!c->closed && may_read(c)) {
        if (taken >= READ_PASS) {
            if (c->ssl && SSL_has_pending(c->ssl))
                client_read_later(c, 0);
            return;
        }
        ssize_t n;
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_read(c->ssl, data, sizeof data);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ)
                    return;
                if (e == SSL_ERROR_WANT_WRITE) {
                    update_events(c, 1);
                    return;
                }
                client_close(c, 0);
                return;
            }
            n = r;
        } else {
            n = recv(c->fd, data, sizeof data, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return;
                if (errno == EINTR)
                    continue;
                client_close(c, 0);
                return;
            }
            if (n == 0) {
                client_close(c, 0);
                return;
            }
        }
        taken += (size_t)n;
        if (c->ws)
            ws_on_data(c, data, (size_t)n);
        else
            stream_on_data(c, data, (size_t)n);
        /* STARTTLS: nothing after <starttls/> belongs to the plaintext stream. */
        /* The stream layer may have closed the connection (a WebSocket protocol error). */
        if (c->closed || c->tls_start || !rate_take(c, (size_t)n))
            return;
    }
}

static void on_read_timer(evloop_t *loop, void *ud)
{
    (void)loop;
    client_t *c = ud;
    c->read_timer = NULL;
    if (c->closed)
        return;
    /* Still over max_bytes_per_second (the timer may have been set for other reasons):
     * wait on. */
    if (c->throttled && !rate_take(c, 0))
        return;
    c->throttled = 0;
    update_events(c, 0);
    client_read(c);
}

/* Reads again after `ms` (bytes OpenSSL holds raise no event; throttling waits). */
static void client_read_later(client_t *c, uint64_t ms)
{
    if (!c->read_timer && !c->closed)
        c->read_timer = evloop_timer(fe.loop, ms, on_read_timer, c);
}

static void client_io(evloop_t *loop, int fd, unsigned events, void *ud)
{
    (void)loop;
    (void)fd;
    client_t *c = ud;
    if (c->closed)
        return;
    if (c->lingering) {
        if ((events & EV_WRITE) && c->notify_pending)
            linger_notify(c);
        if (!c->closed && (events & (EV_READ | EV_ERROR)))
            linger_read(c);
        return;
    }
    if (c->connecting) {
        connect_done(c, events);
        return;
    }
    if (c->proxy_pending) {
        if ((events & EV_READ) && client_read_proxy(c) == 1 && !c->tls_handshaking)
            client_read(c);
        return;
    }
    if (c->tls_handshaking) {
        int r = tls_handshake(c);
        if (r < 0) {
            client_close(c, 0);
            return;
        }
        if (r == 0)
            return;
        if (c->s2s)
            s2s_tls_ready(c); /* checks the peer's certificate, may write a stream header */
        if (c->closed || c->closing)
            return;
        if (c->out.len && client_flush(c) < 0) {
            client_close(c, 0);
            return;
        }
        client_read(c); /* data may already sit in OpenSSL's buffer */
        return;
    }
    if ((events & EV_WRITE) && client_flush(c) < 0) {
        client_close(c, 0);
        return;
    }
    if (c->closing) {
        /* Waiting to write the last bytes: a peer that closed or sends more is done. */
        if ((events & EV_READ) && !c->closed) {
            char tmp[512];
            ssize_t n = recv(c->fd, tmp, sizeof tmp, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                client_close(c, 0);
        }
        return;
    }
    /* A reset while reading is paused (router request, throttling): epoll reports it
     * again and again until the socket is closed. */
    if ((events & EV_ERROR) && !may_read(c)) {
        client_close(c, 0);
        return;
    }
    if (events & EV_READ)
        client_read(c);
}

void client_resume(client_t *c)
{
    if (c->closed || !c->read_paused)
        return;
    c->read_paused = 0;
    stream_drain_queue(c);
    if (c->pending_seq || c->closed) {
        if (!c->closed)
            c->read_paused = 1;
        return;
    }
    update_events(c, 0);
    client_read(c); /* TLS may hold decrypted bytes that epoll will not announce */
}

void client_pause(client_t *c)
{
    c->read_paused = 1;
    update_events(c, 0);
}

void client_close_all(void)
{
    size_t pos = 0;
    const void *k;
    size_t kl;
    void *v;
    /* Collect first: closing changes the map. */
    size_t n = hmap_count(fe.clients), i = 0;
    client_t **all = xcalloc(n, sizeof *all);
    while (i < n && hmap_next(fe.clients, &pos, &k, &kl, &v))
        all[i++] = v;
    for (size_t j = 0; j < i; j++) {
        all[j]->sm_keep = 1; /* a resumable session resumes on another frontend */
        client_stream_error(all[j], "system-shutdown", NULL);
        if (!all[j]->closed && client_flush(all[j]) == 0 && !all[j]->closed)
            client_close(all[j], 0);
    }
    free(all);
    /* Shutting down: no lingering (the ones that started just now included). */
    while (fe.lingering)
        client_teardown(fe.lingering);
    client_flush_all(fe.loop, NULL);
}
