#include "redis_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "privdrop.h"
#include "util.h"

/* Where Redis is and how to reach it: read by the router and xmppctl. */
const config_key_t redis_config_keys[] = {
    CONFIG_STR("redis_host", "127.0.0.1", "Redis server"),
    CONFIG_INT("redis_port", "6379", 1, 65535, "Redis port (its tls-port with redis_tls)"),
    CONFIG_STR("redis_prefix", "xmpp:", "prefix of every Redis key"),
    CONFIG_STR("redis_user", "", "Redis 6+ ACL user for AUTH (needs redis_password)"),
    CONFIG_STR("redis_password", "", "password sent with AUTH on every (re)connect"),
    CONFIG_STR("redis_password_file", "", "a file holding the Redis password instead"),
    CONFIG_BOOL("redis_tls", "false", "connect to Redis over TLS"),
    CONFIG_STR("redis_tls_ca", "", "PEM CA file Redis's certificate must chain to (empty: the system store)"),
    CONFIG_STR("redis_tls_cert", "", "client certificate for Redis (tls-auth-clients yes)"),
    CONFIG_STR("redis_tls_key", "", "key of the client certificate (empty: in redis_tls_cert)"),
    CONFIG_STR("redis_tls_server_name", "", "name Redis's certificate must carry, sent as SNI (empty: redis_host)"),
    CONFIG_END,
};

#define RELAY_BUF 16384

/* One relayed connection: hiredis on `plain`, Redis over TLS on `tcp`. */
typedef struct {
    redis_tls_t *t;
    int plain, tcp;
    SSL *ssl;
    int connected, handshaken;
    int want_write;     /* OpenSSL waits for the TCP socket to be writable */
    int got_data;       /* Redis has sent something since the handshake */
    unsigned plain_ev, tcp_ev;
    size_t up_len, down_len; /* bytes waiting: hiredis -> Redis, Redis -> hiredis */
    char up[RELAY_BUF], down[RELAY_BUF];
} relay_t;

struct redis_tls {
    evloop_t *loop;
    SSL_CTX *ctx;
    char *host, *server_name;
    int port;
    char dir[64], path[96];
    int listen_fd;
    relay_t *conn; /* hiredis makes one connection at a time */
    int once, used;
    ev_timer_t *idle;
};

static void relay_pump(relay_t *r);

static void relay_close(relay_t *r)
{
    redis_tls_t *t = r->t;
    evloop_unwatch(t->loop, r->plain);
    close(r->plain);
    if (r->tcp >= 0) {
        evloop_unwatch(t->loop, r->tcp);
        close(r->tcp);
    }
    if (r->ssl)
        SSL_free(r->ssl);
    free(r);
    t->conn = NULL;
    if (t->once)
        evloop_stop(t->loop);
}

/* The reason for a failed TLS call: OpenSSL's error queue, or the certificate check. */
static void relay_fail(relay_t *r, const char *what)
{
    redis_tls_t *t = r->t;
    char why[256] = "";
    long verify = r->ssl ? SSL_get_verify_result(r->ssl) : X509_V_OK;
    unsigned long e = ERR_get_error();
    if (verify != X509_V_OK && !r->handshaken)
        snprintf(why, sizeof why, "certificate not accepted: %s (check redis_tls_ca and "
                 "redis_tls_server_name)",
                 X509_verify_cert_error_string(verify));
    else if (e)
        ERR_error_string_n(e, why, sizeof why);
    else
        snprintf(why, sizeof why, "%s", errno ? strerror(errno) : "connection closed");
    ERR_clear_error();
    if (r->handshaken && !r->got_data && e)
        /* TLS 1.3: the server checks our certificate after the client's handshake is done,
         * so its refusal arrives as an alert on the first read. */
        log_error("storage: TLS to Redis at %s:%d failed: Redis refused us after the "
                  "handshake: %s (check redis_tls_cert and redis_tls_key)",
                  t->host, t->port, why);
    else if (r->handshaken || !r->connected)
        log_warn("storage: TLS connection to Redis at %s:%d: %s failed: %s", t->host, t->port,
                 what, why);
    else /* a configuration problem rather than an outage */
        log_error("storage: TLS to Redis at %s:%d failed: %s: %s", t->host, t->port, what, why);
    relay_close(r);
}

static void on_relay_io(evloop_t *loop, int fd, unsigned events, void *ud)
{
    (void)loop;
    (void)fd;
    (void)events;
    relay_pump(ud);
}

static void set_events(relay_t *r, int fd, unsigned *cur, unsigned want)
{
    if (want == *cur)
        return;
    if (*cur == 0 && want)
        evloop_watch(r->t->loop, fd, want, on_relay_io, r);
    else
        evloop_modify(r->t->loop, fd, want);
    *cur = want;
}

/* Returns 0 when the OpenSSL call may be retried later (and records what it waits for),
 * -1 when the connection failed. */
static int ssl_retry(relay_t *r, int rc)
{
    int err = SSL_get_error(r->ssl, rc);
    if (err == SSL_ERROR_WANT_READ)
        return 0;
    if (err == SSL_ERROR_WANT_WRITE) {
        r->want_write = 1;
        return 0;
    }
    return -1;
}

/* Moves whatever can move without blocking, then sets what to wait for. */
static void relay_pump(relay_t *r)
{
    r->want_write = 0;
    if (!r->connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(r->tcp, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            errno = err;
            relay_fail(r, "connect");
            return;
        }
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        if (getpeername(r->tcp, (struct sockaddr *)&peer, &plen) < 0) {
            if (errno != ENOTCONN) {
                relay_fail(r, "connect");
                return;
            }
            set_events(r, r->tcp, &r->tcp_ev, EV_WRITE); /* still connecting */
            return;
        }
        r->connected = 1;
    }
    if (!r->handshaken) {
        ERR_clear_error();
        int rc = SSL_connect(r->ssl);
        if (rc != 1) {
            if (ssl_retry(r, rc) < 0) {
                relay_fail(r, "handshake");
                return;
            }
            set_events(r, r->tcp, &r->tcp_ev, EV_READ | (r->want_write ? EV_WRITE : 0));
            return;
        }
        r->handshaken = 1;
        log_debug("storage: TLS to Redis at %s:%d: %s, %s", r->t->host, r->t->port,
                  SSL_get_version(r->ssl), SSL_get_cipher_name(r->ssl));
    }
    int plain_eof = 0, tls_eof = 0;
    while (r->up_len < sizeof r->up) {
        ssize_t n = read(r->plain, r->up + r->up_len, sizeof r->up - r->up_len);
        if (n > 0) {
            r->up_len += (size_t)n;
        } else if (n == 0) {
            plain_eof = 1;
            break;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else if (errno != EINTR) {
            plain_eof = 1;
            break;
        }
    }
    while (r->up_len) {
        ERR_clear_error();
        int n = SSL_write(r->ssl, r->up, (int)r->up_len);
        if (n <= 0) {
            if (ssl_retry(r, n) < 0) {
                relay_fail(r, "write");
                return;
            }
            break;
        }
        memmove(r->up, r->up + n, r->up_len - (size_t)n);
        r->up_len -= (size_t)n;
    }
again:
    while (r->down_len < sizeof r->down) {
        ERR_clear_error();
        int n = SSL_read(r->ssl, r->down + r->down_len, (int)(sizeof r->down - r->down_len));
        if (n > 0) {
            r->down_len += (size_t)n;
            r->got_data = 1;
            continue;
        }
        if (SSL_get_error(r->ssl, n) == SSL_ERROR_ZERO_RETURN) {
            tls_eof = 1;
        } else if (ssl_retry(r, n) < 0) {
            relay_fail(r, "read");
            return;
        }
        break;
    }
    while (r->down_len) {
        ssize_t n = write(r->plain, r->down, r->down_len);
        if (n > 0) {
            memmove(r->down, r->down + n, r->down_len - (size_t)n);
            r->down_len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            plain_eof = 1; /* hiredis went away */
            r->down_len = 0;
        }
    }
    /* Bytes OpenSSL has decrypted already raise no event on the socket: take them now. */
    if (!tls_eof && !plain_eof && r->down_len < sizeof r->down && SSL_pending(r->ssl) > 0)
        goto again;
    if ((plain_eof && !r->up_len) || (tls_eof && !r->down_len)) {
        if (tls_eof)
            log_debug("storage: Redis at %s:%d closed the TLS connection", r->t->host,
                      r->t->port);
        relay_close(r);
        return;
    }
    set_events(r, r->plain, &r->plain_ev,
               (r->up_len < sizeof r->up ? EV_READ : 0) | (r->down_len ? EV_WRITE : 0));
    set_events(r, r->tcp, &r->tcp_ev,
               (r->down_len < sizeof r->down ? EV_READ : 0) | (r->want_write ? EV_WRITE : 0));
}

/* Opens a non-blocking TCP connection to Redis; -1 with errno. */
static int tcp_connect(const char *host, int port)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        errno = rc == EAI_SYSTEM ? errno : EHOSTUNREACH;
        return -1;
    }
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

static void on_accept(evloop_t *loop, int fd, unsigned events, void *ud)
{
    (void)loop;
    (void)events;
    redis_tls_t *t = ud;
    int plain = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (plain < 0)
        return;
    if (t->conn) /* hiredis gave up on the previous one */
        relay_close(t->conn);
    evloop_cancel(t->loop, &t->idle);
    t->used = 1;
    relay_t *r = xcalloc(1, sizeof *r);
    r->t = t;
    r->plain = plain;
    r->tcp = tcp_connect(t->host, t->port);
    t->conn = r;
    if (r->tcp < 0) {
        relay_fail(r, "connect");
        return;
    }
    r->ssl = SSL_new(t->ctx);
    SSL_set_fd(r->ssl, r->tcp);
    SSL_set_mode(r->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* The name Redis's certificate must carry: an IP address or a DNS name (also sent as
     * SNI). */
    unsigned char ip[16];
    if (inet_pton(AF_INET, t->server_name, ip) == 1 || inet_pton(AF_INET6, t->server_name, ip) == 1) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(r->ssl), t->server_name) != 1)
            log_fatal("storage: cannot set the address Redis's certificate must carry");
    } else if (SSL_set1_host(r->ssl, t->server_name) != 1 ||
               SSL_set_tlsext_host_name(r->ssl, t->server_name) != 1) {
        log_fatal("storage: cannot set the name Redis's certificate must carry");
    }
    SSL_set_connect_state(r->ssl);
    relay_pump(r);
}

static void on_idle(evloop_t *loop, void *ud)
{
    redis_tls_t *t = ud;
    t->idle = NULL;
    if (!t->used)
        evloop_stop(loop);
}

static SSL_CTX *make_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        log_fatal("storage: cannot create a TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* Redis may close without close_notify: that is an end, not an error. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    const char *ca = config_str("redis_tls_ca");
    if (*ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1
            : SSL_CTX_set_default_verify_paths(ctx) != 1)
        log_fatal("config: key 'redis_tls_ca': cannot load '%s': %s", *ca ? ca : "(system store)",
                  ERR_reason_error_string(ERR_get_error()));
    const char *cert = config_str("redis_tls_cert"), *key = config_str("redis_tls_key");
    if (*key && !*cert)
        log_fatal("config: key 'redis_tls_key' is set but 'redis_tls_cert' is not");
    if (*cert) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
            log_fatal("config: key 'redis_tls_cert': cannot load '%s': %s", cert,
                      ERR_reason_error_string(ERR_get_error()));
        if (SSL_CTX_use_PrivateKey_file(ctx, *key ? key : cert, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1)
            log_fatal("config: key 'redis_tls_key': cannot load '%s' or it does not match "
                      "redis_tls_cert: %s",
                      *key ? key : cert, ERR_reason_error_string(ERR_get_error()));
    }
    return ctx;
}

/* The router gives up root after start (config keys `user`, `group`; common/privdrop.h):
 * the private directory and socket then belong to that user, or hiredis could not reach
 * them any more. An unknown user is left to privdrop to report. */
static void hand_over(const redis_tls_t *t)
{
    const char *user = config_str("user"), *group = config_str("group");
    if (geteuid() != 0 || !*user)
        return;
    privdrop_ids_t ids;
    char err[600];
    if (privdrop_resolve(user, group, &ids, err, sizeof err) < 0)
        log_fatal("config: %s", err);
    if (chown(t->dir, ids.uid, ids.gid) < 0 || chown(t->path, ids.uid, ids.gid) < 0)
        log_fatal("storage: cannot hand the TLS relay's socket to user '%s': %s", user,
                  strerror(errno));
}

redis_tls_t *redis_tls_new(evloop_t *loop, const char *host, int port)
{
    static const char *const keys[] = {"redis_tls_ca", "redis_tls_cert", "redis_tls_key",
                                       "redis_tls_server_name"};
    if (!config_bool("redis_tls")) {
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (*config_str(keys[i]))
                log_warn("storage: redis_tls is false, so '%s' is ignored", keys[i]);
        return NULL;
    }
    redis_tls_t *t = xcalloc(1, sizeof *t);
    t->loop = loop;
    t->host = xstrdup(host);
    t->port = port;
    const char *sn = config_str("redis_tls_server_name");
    t->server_name = xstrdup(*sn ? sn : host);
    t->ctx = make_ctx();
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/xmpp-redis-tls-XXXXXX",
             tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    if (!mkdtemp(t->dir))
        log_fatal("storage: cannot make a private directory for the TLS relay: %s",
                  strerror(errno));
    snprintf(t->path, sizeof t->path, "%s/redis.sock", t->dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", t->path);
    t->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->listen_fd < 0 || bind(t->listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(t->listen_fd, 4) < 0)
        log_fatal("storage: cannot listen on %s for the TLS relay: %s", t->path,
                  strerror(errno));
    hand_over(t);
    evloop_watch(loop, t->listen_fd, EV_READ, on_accept, t);
    log_info("storage: TLS to Redis at %s:%d, certificate checked against %s for name %s%s",
             host, port, *config_str("redis_tls_ca") ? config_str("redis_tls_ca") : "the system store",
             t->server_name, *config_str("redis_tls_cert") ? ", with a client certificate" : "");
    return t;
}

const char *redis_tls_path(const redis_tls_t *t)
{
    return t->path;
}

void redis_tls_once(redis_tls_t *t, uint64_t idle_ms)
{
    t->once = 1;
    t->idle = evloop_timer(t->loop, idle_ms, on_idle, t);
}

static void relay_free(redis_tls_t **t_p, int remove_socket)
{
    redis_tls_t *t = *t_p;
    if (!t)
        return;
    t->once = 0;
    if (remove_socket) {
        if (t->conn)
            relay_close(t->conn);
        evloop_cancel(t->loop, &t->idle);
        /* Not for a copy: after fork() the epoll set is shared with the child. */
        evloop_unwatch(t->loop, t->listen_fd);
    }
    close(t->listen_fd);
    if (remove_socket) {
        unlink(t->path);
        rmdir(t->dir);
    }
    SSL_CTX_free(t->ctx);
    free(t->host);
    free(t->server_name);
    free(t);
    *t_p = NULL;
}

void redis_tls_destroy(redis_tls_t **t_p)
{
    relay_free(t_p, 1);
}

void redis_tls_release(redis_tls_t **t_p)
{
    relay_free(t_p, 0);
}
