#include "metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

const config_key_t metrics_http_config_keys[] = {
    CONFIG_STR("metrics_listen", "", "address and port of the Prometheus /metrics endpoint, e.g. 127.0.0.1:9102 (empty: off)"),
    CONFIG_END,
};

/* Bytes MHD may use per connection: a scrape request is a few hundred. */
#define METRICS_HTTP_CONN_MEMORY 16384

struct metrics_http {
    evloop_t *loop;
    struct MHD_Daemon *daemon;
    int epoll_fd;
    ev_timer_t *timer;
};

static const char CONTENT_TYPE[] = "text/plain; version=0.0.4; charset=utf-8";

static void schedule(metrics_http_t *h);

static void run(metrics_http_t *h)
{
    MHD_run(h->daemon);
    schedule(h);
}

static void on_timer(evloop_t *loop, void *ud)
{
    (void)loop;
    metrics_http_t *h = ud;
    h->timer = NULL;
    run(h);
}

/* MHD's next deadline (idle connections to time out, work left over): a timer for it. */
static void schedule(metrics_http_t *h)
{
    evloop_cancel(h->loop, &h->timer);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->daemon, &ms) == MHD_YES)
        h->timer = evloop_timer(h->loop, ms > 60000 ? 60000 : (uint64_t)ms, on_timer, h);
}

static void on_epoll(evloop_t *loop, int fd, unsigned events, void *ud)
{
    (void)loop;
    (void)fd;
    (void)events;
    run(ud);
}

static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned status,
                                   const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    (void)req_cls;
    /* A request body is never wanted: answer at once, MHD discards what follows. */
    *upload_data_size = 0;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/metrics") != 0)
        return answer_text(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n");
    buf_t b = BUF_INIT;
    metrics_render(&b);
    size_t len = b.len;
    char *data = buf_steal(&b); /* never NULL; MHD frees it with free() once sent */
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (log_min_level > LOG_LVL_DEBUG)
        return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_debug("metrics_listen: %s", line);
}

/* "host:port" or "[v6]:port" to a listening socket; -1 with err naming the key. */
static int open_socket(const char *spec, char *err, size_t errlen)
{
    char host[256], port[16];
    const char *colon = strrchr(spec, ':');
    size_t hl = colon ? (size_t)(colon - spec) : 0;
    const char *h = spec;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (!colon || hl == 0 || hl >= sizeof host || !colon[1] || strlen(colon + 1) >= sizeof port ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
        snprintf(err, errlen, "key 'metrics_listen': '%s' is not host:port", spec);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, sizeof port, "%s", colon + 1);
    long pn = strtol(port, NULL, 10);
    if (pn < 1 || pn > 65535) {
        snprintf(err, errlen, "key 'metrics_listen': '%s': port out of range 1..65535", spec);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "key 'metrics_listen': '%s': %s", spec, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
        snprintf(err, errlen, "key 'metrics_listen': cannot listen on '%s': %s", spec,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    return fd;
}

metrics_http_t *metrics_http_open(evloop_t *loop, const char *listen, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!*listen)
        return NULL;
    int fd = open_socket(listen, err, errlen);
    if (fd < 0)
        return NULL;
    metrics_http_t *h = xcalloc(1, sizeof *h);
    h->loop = loop;
    /* No MHD_USE_INTERNAL_POLLING_THREAD: MHD runs only when MHD_run is called, from this
     * loop. MHD_USE_EPOLL gives one fd for the whole daemon to watch. */
    h->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_MAX_CONNECTIONS,
        /* one slow client cannot hold every connection and starve the scraper */
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_MAX_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_HTTP_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_HTTP_CONN_MEMORY,
        MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        h->daemon ? MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!info) {
        snprintf(err, errlen, "key 'metrics_listen': cannot serve HTTP on '%s'", listen);
        if (h->daemon)
            MHD_stop_daemon(h->daemon);
        else
            close(fd);
        free(h);
        return NULL;
    }
    h->epoll_fd = info->epoll_fd;
    evloop_watch(loop, h->epoll_fd, EV_READ, on_epoll, h);
    schedule(h);
    log_info("serving metrics on http://%s/metrics", listen);
    return h;
}

void metrics_http_close(metrics_http_t **http_p)
{
    metrics_http_t *h = *http_p;
    if (!h)
        return;
    evloop_cancel(h->loop, &h->timer);
    evloop_unwatch(h->loop, h->epoll_fd);
    MHD_stop_daemon(h->daemon); /* closes the listening socket and every connection */
    free(h);
    *http_p = NULL;
}
