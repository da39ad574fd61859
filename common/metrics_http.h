/* metrics_http: serves GET /metrics (metrics.h, text format 0.0.4) on `metrics_listen`,
 * with libmicrohttpd running inside the process's own event loop (no thread of its own):
 * MHD's epoll set joins the loop as one fd, MHD_run is called when it is readable and when
 * MHD's own timeout (idle connections) comes. Bounded: a few connections at once, a short
 * idle timeout, a small memory pool per connection; only GET or HEAD of /metrics is served
 * (404 for other paths, 405 for other methods). */
#ifndef COMMON_METRICS_HTTP_H
#define COMMON_METRICS_HTTP_H

#include <stddef.h>

#include "config.h"
#include "evloop.h"

/* The key metrics_listen, taken by every process that serves metrics. */
extern const config_key_t metrics_http_config_keys[];

/* Connections served at once, seconds a connection may stay idle. */
#define METRICS_HTTP_MAX_CONNECTIONS 16
#define METRICS_HTTP_MAX_PER_IP 4
#define METRICS_HTTP_TIMEOUT_S 10

typedef struct metrics_http metrics_http_t;

/* Listens on `listen` ("host:port", [v6]:port works) in `loop`. "" returns NULL with err
 * empty (off). A bad address or a port that cannot be bound returns NULL with a message
 * naming the key metrics_listen in err. */
metrics_http_t *metrics_http_open(evloop_t *loop, const char *listen, char *err, size_t errlen);
/* Stops serving and closes every connection; accepts NULL, sets *http_p to NULL. */
void metrics_http_close(metrics_http_t **http_p);

#endif
