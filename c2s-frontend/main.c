/* c2s-frontend: accepts XMPP client connections, negotiates TLS, SASL and resource
 * binding, and forwards stanzas to the session-router over ZeroMQ. It keeps no session
 * semantics: killing it loses only its TCP connections. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backoff.h"
#include "client.h"
#include "config.h"
#include "curve.h"
#include "ipc.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "privdrop.h"
#include "registration.h"
#include "s2s.h"
#include "s2s_out.h"
#include "s2s_resolve.h"
#include "scram.h"
#include "tls.h"
#include "util.h"
#include "xml.h"

frontend_t fe;

/* The keys the frontend reads at start (router_link.c declares the link's). */
static const config_key_t frontend_config_keys[] = {
    CONFIG_STR("c2s_listen", "0.0.0.0:5222", "address and port for clients ([v6]:port works; empty: no clients, a server-to-server frontend)"),
    CONFIG_STR("c2s_tls_listen", "", "address and port for XEP-0368 direct TLS, e.g. 0.0.0.0:5223 (empty: off)"),
    CONFIG_STR("tls_cert", "", "PEM certificate chain(s), comma-separated (an ECDSA and an RSA one side by side)"),
    CONFIG_STR("tls_key", "", "PEM private key(s) paired with tls_cert by position (empty: in the tls_cert files)"),
    CONFIG_BOOL("require_tls", "true", "STARTTLS must be negotiated before SASL"),
    CONFIG_BOOL("sasl_channel_binding", "true", "offer SCRAM-SHA-*-PLUS (channel binding) under TLS; false only for clients that fail it"),
    CONFIG_STR("frontend_name", "", "name in the router's logs and routing id, no ':' (empty: the host name)"),
    CONFIG_STR("router_endpoint", "tcp://127.0.0.1:5555", "ZeroMQ endpoint of the router"),
    CONFIG_BOOL("proxy_protocol", "false", "every connection starts with a PROXY v1 or v2 header (from HAProxy)"),
    CONFIG_INT("max_depth", "64", 4, 1024, "element nesting below the stream root once authenticated"),
    CONFIG_INT("max_stanza_size_preauth", "16384", 1024, 16777216, "bytes of one element before authentication"),
    CONFIG_INT("max_depth_preauth", "16", 4, 1024, "element nesting before authentication"),
    CONFIG_INT("max_connections", "10000", 1, 10000000, "client connections at once; more are refused at accept"),
    CONFIG_INT("max_connections_per_ip", "100", 0, 10000000, "connections at once from one address (0 = off)"),
    CONFIG_INT("connection_rate_per_ip", "20", 0, 1000000, "new connections per second from one address (0 = off)"),
    CONFIG_INT("connection_burst_per_ip", "100", 1, 1000000, "connections an address may open at once after a quiet spell"),
    CONFIG_INT("stream_open_timeout", "10", 1, 3600, "seconds from accept to the client's stream header"),
    CONFIG_INT("auth_timeout", "30", 1, 3600, "seconds from accept to a bound resource"),
    CONFIG_INT("auth_failures_per_ip", "20", 0, 1000000, "failed logins from one address before a lock-out (0 = off)"),
    CONFIG_INT("max_bytes_per_second", "262144", 0, 1073741824, "bytes per second read from one connection (0 = off)"),
    CONFIG_INT("max_output_buffer", "1048576", 65536, 1073741824, "bytes queued for a client that does not read before it is closed"),
    CONFIG_END,
};

static const config_key_t *const config_tables[] = {
    config_base_keys,   privdrop_config_keys, ipc_config_keys,      curve_config_keys,
    backoff_config_keys, frontend_config_keys, router_link_config_keys, zlink_config_keys,
    metrics_http_config_keys, register_config_keys, scram_config_keys, ws_config_keys,
    s2s_resolve_config_keys, s2s_config_keys,
};

static void usage(void)
{
    fprintf(stderr, "usage: c2s-frontend [-c CONFIG_FILE] | --help-config\n");
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

/* Scrape-time gauges: the client table is walked when /metrics is asked for, so nothing
 * has to be kept in step on every write. */
static double open_connections(void *ud)
{
    (void)ud;
    return (double)fe.nclients;
}

static double bound_sessions(void *ud)
{
    (void)ud;
    size_t pos = 0, n = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(fe.clients, &pos, &k, &kl, &v)) {
        const client_t *c = v;
        n += c->bound && !c->closed && !c->stream_done;
    }
    return (double)n;
}

static double output_bytes(void *ud)
{
    (void)ud;
    size_t pos = 0, n = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(fe.clients, &pos, &k, &kl, &v))
        n += ((const client_t *)v)->out.len;
    for (const client_t *c = fe.lingering; c; c = c->linger_next)
        n += c->out.len;
    return (double)n;
}

static double buffered_stanzas(void *ud)
{
    (void)ud;
    return (double)router_buffered();
}

/* The frontend's metrics (README, "Metrics"), registered whether or not they are served. */
static void register_metrics(void)
{
    metrics_counters_by(fe.m.stanzas_in, IPC_KINDS, "xmpp_stanzas_in_total", "kind",
                        ipc_kind_names, "stanzas received from bound clients, by kind");
    metrics_counters_by(fe.m.stanzas_out, IPC_KINDS, "xmpp_stanzas_out_total", "kind",
                        ipc_kind_names, "stanzas written to clients, by kind");
    metrics_gauge_fn("xmpp_connections", "", "client connections open (lingering ones included)",
                     open_connections, NULL);
    fe.m.accepted = metrics_counter("xmpp_connections_accepted_total", "",
                                    "client connections accepted");
    fe.m.refused = metrics_counter("xmpp_connections_refused_total", "",
                                   "client connections refused at accept (max_connections)");
    metrics_gauge_fn("xmpp_sessions", "", "bound sessions (resources) on this frontend",
                     bound_sessions, NULL);
    const char *th = "TLS handshakes ended, by result";
    fe.m.tls_ok = metrics_counter("xmpp_tls_handshakes_total", "result=\"ok\"", th);
    fe.m.tls_failed = metrics_counter("xmpp_tls_handshakes_total", "result=\"failed\"", th);
    sasl_register_metrics();
    zlink_metrics_register(&fe.m.link);
    metrics_gauge_fn("xmpp_link_buffered_stanzas", "",
                     "client stanzas waiting for the router (router_buffer)", buffered_stanzas,
                     NULL);
    metrics_gauge_fn("xmpp_output_buffer_bytes", "",
                     "bytes queued for clients and not yet written", output_bytes, NULL);
}

#define ADDR_SWEEP_MS 10000

static void on_sweep(evloop_t *loop, void *ud)
{
    addrlimit_sweep(now_ms());
    fe.sweep_timer = evloop_timer(loop, ADDR_SWEEP_MS, on_sweep, ud);
}

/* ud: the listener's kind (LISTEN_* flags, frontend.h). */
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
            metric_inc(fe.m.refused);
            close(fd);
            continue;
        }
        if (((uintptr_t)ud & LISTEN_S2S) && !s2s_accept_ok()) {
            log_warn("refusing a server connection: s2s_max_connections reached");
            metric_inc(fe.m.refused);
            close(fd);
            continue;
        }
        client_accept(fd, (unsigned)(uintptr_t)ud);
    }
}

/* SIGHUP: new certificates and keys from the same files; open connections keep theirs. */
static void on_sighup(evloop_t *loop, int signo, void *ud)
{
    (void)loop;
    (void)signo;
    (void)ud;
    const char *cert = config_str("tls_cert"), *key = config_str("tls_key");
    if (!fe.tls)
        log_info("SIGHUP: no tls_cert configured, nothing to reload");
    else
        tls_reload(&fe.tls, cert, key);
    s2s_reload_tls();
}

static void drain_link_again(evloop_t *loop, void *ud)
{
    (void)ud;
    /* What came is written by client_flush_all, which ran already: one more pass. */
    if (fe.link && zlink_drain(fe.link))
        evloop_again(loop);
}

int main(int argc, char **argv)
{
    const char *cfg = NULL;
    int opt;
    for (size_t i = 0; i < sizeof config_tables / sizeof config_tables[0]; i++)
        config_register(config_tables[i]);
    if (argc == 2 && strcmp(argv[1], "--help-config") == 0) {
        config_print_help(stdout, "c2s-frontend");
        return 0;
    }
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
    const char *xml_problem = xml_deferral_problem();
    if (xml_problem)
        log_error("%s", xml_problem);

    static char domain[1024];
    if (jid_prep_domain(domain, config_str("domain")) < 0)
        log_fatal("config: key 'domain': '%s' is not a valid domain", config_str("domain"));
    fe.domain = domain;
    fe.require_tls = config_bool("require_tls");
    fe.channel_binding = config_bool("sasl_channel_binding");
    fe.limits.max_stanza = (size_t)config_int("max_stanza_size");
    fe.limits.max_depth = (int)config_int("max_depth");
    fe.limits_preauth.max_stanza = (size_t)config_int("max_stanza_size_preauth");
    fe.limits_preauth.max_depth = (int)config_int("max_depth_preauth");
    fe.max_connections = config_int("max_connections");
    fe.auth_timeout_ms = config_int("auth_timeout") * 1000;
    fe.stream_open_timeout_ms = config_int("stream_open_timeout") * 1000;
    fe.bytes_per_second = config_int("max_bytes_per_second");
    fe.max_output = (size_t)config_int("max_output_buffer");
    fe.out_pause = fe.max_output / 4;
    addrlimit_init(&(addrlimit_config_t){
        .max_conns = config_int("max_connections_per_ip"),
        .rate = config_int("connection_rate_per_ip"),
        .burst = config_int("connection_burst_per_ip"),
        .max_auth_failures = config_int("auth_failures_per_ip"),
        .backoff_ms = (uint64_t)config_int("auth_backoff") * 1000,
    });
    fe.proxy_protocol = config_bool("proxy_protocol");
    register_init();
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
    if (*cert || *key) {
        if (!*cert)
            log_fatal("config: key 'tls_key': set without tls_cert");
        if (!(fe.tls = tls_ctx_new(cert, key, err, sizeof err)))
            log_fatal("config: %s", err);
    } else if (fe.require_tls)
        log_fatal("config: key 'tls_cert': required while require_tls is true");

    fe.loop = evloop_new();
    fe.clients = hmap_new();
    register_metrics();
    const char *c2s_listen = config_str("c2s_listen"), *s2s_listen = config_str("s2s_listen"),
               *s2s_tls_listen = config_str("s2s_tls_listen");
    if (!*c2s_listen && !*s2s_listen)
        log_fatal("config: key 'c2s_listen': empty, and so is s2s_listen: nothing to serve");
    if (*s2s_tls_listen && !*s2s_listen)
        log_fatal("config: key 's2s_tls_listen': needs s2s_listen (server-to-server on)");
    fe.listen_fd = -1;
    if (*c2s_listen) {
        fe.listen_fd = open_listener("c2s_listen", c2s_listen);
        evloop_watch(fe.loop, fe.listen_fd, EV_READ, on_accept, NULL);
    }
    /* Server-to-server (s2s.h): inbound listeners, outbound connections by the resolver. */
    fe.s2s_listen_fd = fe.s2s_tls_listen_fd = -1;
    if (*s2s_listen) {
        if (s2s_open(err, sizeof err) < 0 || s2s_resolve_open(fe.loop, err, sizeof err) < 0)
            log_fatal("config: %s", err);
        s2s_out_open();
        fe.s2s_listen_fd = open_listener("s2s_listen", s2s_listen);
        evloop_watch(fe.loop, fe.s2s_listen_fd, EV_READ, on_accept, (void *)(uintptr_t)LISTEN_S2S);
        if (*s2s_tls_listen) {
            fe.s2s_tls_listen_fd = open_listener("s2s_tls_listen", s2s_tls_listen);
            evloop_watch(fe.loop, fe.s2s_tls_listen_fd, EV_READ, on_accept,
                         (void *)(uintptr_t)(LISTEN_S2S | LISTEN_DIRECT_TLS));
        }
    }
    fe.tls_listen_fd = -1;
    const char *tls_listen = config_str("c2s_tls_listen");
    if (*tls_listen) {
        if (!fe.tls)
            log_fatal("config: key 'c2s_tls_listen': needs tls_cert");
        fe.tls_listen_fd = open_listener("c2s_tls_listen", tls_listen);
        evloop_watch(fe.loop, fe.tls_listen_fd, EV_READ, on_accept,
                     (void *)(uintptr_t)LISTEN_DIRECT_TLS);
    }
    ws_config_t ws = {config_str("ws_path"), config_str("ws_allowed_origins"),
                      config_str("ws_url"), config_int("ws_ping_interval")};
    if (ws_configure(&ws, err, sizeof err) < 0)
        log_fatal("config: %s", err);
    const char *ws_listen = config_str("ws_listen"), *wss_listen = config_str("wss_listen");
    fe.ws_listen_fd = fe.wss_listen_fd = -1;
    if (*ws_listen) {
        fe.ws_listen_fd = open_listener("ws_listen", ws_listen);
        evloop_watch(fe.loop, fe.ws_listen_fd, EV_READ, on_accept,
                     (void *)(uintptr_t)LISTEN_WEBSOCKET);
    }
    if (*wss_listen) {
        if (!fe.tls)
            log_fatal("config: key 'wss_listen': needs tls_cert");
        fe.wss_listen_fd = open_listener("wss_listen", wss_listen);
        evloop_watch(fe.loop, fe.wss_listen_fd, EV_READ, on_accept,
                     (void *)(uintptr_t)(LISTEN_WEBSOCKET | LISTEN_DIRECT_TLS));
    }
    fe.sweep_timer = evloop_timer(fe.loop, ADDR_SWEEP_MS, on_sweep, NULL);
    evloop_on_signal(fe.loop, SIGHUP, on_sighup, NULL);
    router_link_open(config_str("router_endpoint"));
    /* Registered after the link's drain hook, so deliveries drained just before the loop
     * waits are written in the same pass (hooks run in order). */
    evloop_before_sleep(fe.loop, client_flush_all, NULL);
    /* client_flush_all may tell the router of connections it closed: the link is drained
     * once more after it, so that nothing that came meanwhile waits for a timer. */
    evloop_before_sleep(fe.loop, drain_link_again, NULL);
    metrics_http_t *metrics_http = metrics_http_open(fe.loop, config_str("metrics_listen"), err,
                                                     sizeof err);
    if (!metrics_http && err[0])
        log_fatal("config: %s", err);
    /* Ports bound, certificates and secret files read: root is not needed any more
     * (README, "Privileges"); glibc switches libzmq's threads too. */
    if (privdrop_apply(config_str("user"), config_str("group"), err, sizeof err) < 0)
        log_fatal("config: %s", err);
    log_info("listening on %s for domain %s (TLS %s)%s%s%s%s%s%s%s%s%s%s%s",
             *c2s_listen ? c2s_listen : "(no clients)", fe.domain, fe.tls ? (fe.require_tls ? "required" : "offered") : "off",
             *tls_listen ? ", direct TLS on " : "", tls_listen,
             *ws_listen ? ", WebSocket on " : "", ws_listen,
             *wss_listen ? ", WebSocket over TLS on " : "", wss_listen,
             fe.proxy_protocol ? ", PROXY protocol required" : "",
             *s2s_listen ? ", servers on " : "", s2s_listen,
             *s2s_tls_listen ? ", servers with direct TLS on " : "", s2s_tls_listen);

    evloop_run(fe.loop);

    log_info("shutting down");
    metrics_http_close(&metrics_http);
    int extra_fds[] = {fe.listen_fd, fe.tls_listen_fd, fe.ws_listen_fd, fe.wss_listen_fd,
                       fe.s2s_listen_fd, fe.s2s_tls_listen_fd};
    for (size_t i = 0; i < sizeof extra_fds / sizeof extra_fds[0]; i++) {
        if (extra_fds[i] >= 0) {
            evloop_unwatch(fe.loop, extra_fds[i]);
            close(extra_fds[i]);
        }
    }
    s2s_shutdown(); /* bounces what waits for a connection, while the router link is open */
    client_close_all();
    s2s_resolve_close();
    ws_shutdown();
    evloop_cancel(fe.loop, &fe.sweep_timer);
    addrlimit_shutdown();
    router_link_close();
    hmap_destroy(&fe.clients);
    evloop_destroy(&fe.loop);
    tls_ctx_free(&fe.tls);
    metrics_reset();
    config_free();
    return 0;
}
