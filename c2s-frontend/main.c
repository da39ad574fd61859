/* c2s-frontend: accepts XMPP client connections, negotiates TLS, SASL and resource
 * binding, and forwards stanzas to the session-router over ZeroMQ. It keeps no session
 * semantics: killing it loses only its TCP connections. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "config.h"
#include "log.h"
#include "util.h"

frontend_t fe;

static void usage(void)
{
    fprintf(stderr, "usage: c2s-frontend [-c CONFIG_FILE]\n");
    exit(2);
}

/* Splits "host:port" (host may be [v6]); returns 0 or -1. */
static int split_hostport(const char *s, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1])
        return -1;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= hn || strlen(colon + 1) >= pn)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

static int open_listener(const char *key, const char *spec)
{
    char host[256], port[16];
    if (split_hostport(spec, host, sizeof host, port, sizeof port) < 0)
        log_fatal("%s: '%s' is not host:port", key, spec);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0)
        log_fatal("%s: '%s': %s", key, spec, gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0)
        log_fatal("%s: cannot listen on '%s': %s", key, spec, strerror(errno));
    freeaddrinfo(ai);
    return fd;
}

/* ud: non-NULL on the direct TLS listener (XEP-0368). */
static void on_accept(evloop_t *loop, int lfd, unsigned events, void *ud)
{
    (void)loop;
    (void)events;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn_errno("accept");
            return;
        }
        if ((long)fe.nclients >= fe.max_connections) {
            log_warn("refusing a connection: max_connections (%ld) reached", fe.max_connections);
            close(fd);
            continue;
        }
        client_accept(fd, ud != NULL);
    }
}

/* XEP-0368 section 3: a client on the direct TLS port may offer ALPN "xmpp-client"; we
 * accept it, and a client that offers no ALPN or other protocols is served all the same. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char want[] = "\x0bxmpp-client";
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, want, sizeof want - 1, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *tls_setup(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        log_fatal("TLS: cannot create a context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Small at rest: OpenSSL frees its record buffers while a connection is idle. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384");
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        log_fatal("tls_cert: cannot load '%s': %s", cert,
                  ERR_reason_error_string(ERR_get_error()));
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        log_fatal("tls_key: cannot load '%s': %s", key, ERR_reason_error_string(ERR_get_error()));
    if (SSL_CTX_check_private_key(ctx) != 1)
        log_fatal("tls_key: '%s' does not match tls_cert '%s'", key, cert);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
}

int main(int argc, char **argv)
{
    const char *cfg = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        if (opt == 'c')
            cfg = optarg;
        else
            usage();
    }
    if (optind != argc)
        usage();
    log_init("c2s-frontend");
    char err[1200];
    if (config_load(cfg, err, sizeof err) < 0)
        log_fatal("config: %s", err);
    log_level_parse(config_str("log_level"), &log_min_level);

    static char domain[1024];
    if (jid_prep_domain(domain, config_str("domain")) < 0)
        log_fatal("config: key 'domain': '%s' is not a valid domain", config_str("domain"));
    fe.domain = domain;
    fe.require_tls = config_bool("require_tls");
    fe.limits.max_stanza = (size_t)config_int("max_stanza_size");
    fe.limits.max_depth = (int)config_int("max_depth");
    fe.max_connections = config_int("max_connections");
    fe.auth_timeout_ms = config_int("auth_timeout") * 1000;
    fe.proxy_protocol = config_bool("proxy_protocol");
    const char *name = config_str("frontend_name");
    if (!*name) {
        char host[64] = "frontend";
        gethostname(host, sizeof host - 1);
        name = host;
        snprintf(fe.name, sizeof fe.name, "%s", host);
    } else if (strlen(name) >= sizeof fe.name || strchr(name, ':')) {
        log_fatal("config: key 'frontend_name': '%s' is too long or contains ':'", name);
    } else {
        snprintf(fe.name, sizeof fe.name, "%s", name);
    }
    random_bytes(&fe.epoch, sizeof fe.epoch);

    const char *cert = config_str("tls_cert"), *key = config_str("tls_key");
    if (*cert || *key)
        fe.tls = tls_setup(cert, *key ? key : cert);
    else if (fe.require_tls)
        log_fatal("config: key 'tls_cert': required while require_tls is true");

    fe.loop = evloop_new();
    fe.clients = hmap_new();
    fe.listen_fd = open_listener("c2s_listen", config_str("c2s_listen"));
    evloop_watch(fe.loop, fe.listen_fd, EV_READ, on_accept, NULL);
    fe.tls_listen_fd = -1;
    const char *tls_listen = config_str("c2s_tls_listen");
    if (*tls_listen) {
        if (!fe.tls)
            log_fatal("config: key 'c2s_tls_listen': needs tls_cert");
        fe.tls_listen_fd = open_listener("c2s_tls_listen", tls_listen);
        evloop_watch(fe.loop, fe.tls_listen_fd, EV_READ, on_accept, &fe);
    }
    evloop_before_sleep(fe.loop, client_flush_all, NULL);
    router_link_open(config_str("router_endpoint"));
    log_info("listening on %s for domain %s (TLS %s)%s%s%s", config_str("c2s_listen"), fe.domain,
             fe.tls ? (fe.require_tls ? "required" : "offered") : "off",
             *tls_listen ? ", direct TLS on " : "", tls_listen,
             fe.proxy_protocol ? ", PROXY protocol required" : "");

    evloop_run(fe.loop);

    log_info("shutting down");
    evloop_unwatch(fe.loop, fe.listen_fd);
    close(fe.listen_fd);
    if (fe.tls_listen_fd >= 0) {
        evloop_unwatch(fe.loop, fe.tls_listen_fd);
        close(fe.tls_listen_fd);
    }
    client_close_all();
    router_link_close();
    hmap_destroy(&fe.clients);
    evloop_destroy(&fe.loop);
    if (fe.tls)
        SSL_CTX_free(fe.tls);
    config_free();
    return 0;
}
