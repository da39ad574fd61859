/* A stand-in for the resolver entry points of s2s_resolve.h while the real ones (c-ares,
 * s2s_resolve.c) are being written: weak symbols, so the real definitions replace them
 * when they are linked in; then this file is to be deleted. It serves s2s_static_hosts
 * only (numeric addresses, or "localhost"); any other domain does not resolve. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "s2s_resolve.h"
#include "util.h"

#define WEAK __attribute__((weak))

struct s2s_query {
    s2s_resolve_cb cb;
    void *ud;
    ev_timer_t *timer;
    s2s_target_t target;
    int n;
};

static s2s_static_host_t weak_hosts[64];
static int weak_nhosts;
static evloop_t *weak_loop;

WEAK int s2s_resolve_open(evloop_t *loop, char *err, size_t errlen)
{
    weak_loop = loop;
    weak_nhosts = s2s_static_hosts_parse(config_str("s2s_static_hosts"), weak_hosts, 64, err, errlen);
    return weak_nhosts < 0 ? -1 : 0;
}

WEAK void s2s_resolve_close(void)
{
    weak_loop = NULL;
}

static void weak_fire(evloop_t *loop, void *ud)
{
    (void)loop;
    s2s_query_t *q = ud;
    q->timer = NULL;
    q->cb(q->ud, &q->target, q->n, q->n ? NULL : "not in s2s_static_hosts");
    free(q);
}

WEAK s2s_query_t *s2s_resolve(const char *domain, s2s_resolve_cb cb, void *ud)
{
    if (!weak_loop)
        return NULL;
    s2s_query_t *q = xcalloc(1, sizeof *q);
    q->cb = cb;
    q->ud = ud;
    for (int i = 0; i < weak_nhosts && !q->n; i++) {
        const s2s_static_host_t *h = &weak_hosts[i];
        if (strcmp(h->domain, domain) != 0)
            continue;
        const char *host = strcmp(h->host, "localhost") == 0 ? "127.0.0.1" : h->host;
        struct sockaddr_in *a4 = (struct sockaddr_in *)&q->target.addr;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&q->target.addr;
        if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
            a4->sin_family = AF_INET;
            a4->sin_port = htons(h->port);
            q->target.addrlen = sizeof *a4;
            q->n = 1;
        } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
            a6->sin6_family = AF_INET6;
            a6->sin6_port = htons(h->port);
            q->target.addrlen = sizeof *a6;
            q->n = 1;
        }
        q->target.direct_tls = h->direct_tls;
        snprintf(q->target.host, sizeof q->target.host, "%s", h->host);
    }
    q->timer = evloop_timer(weak_loop, 0, weak_fire, q);
    return q;
}

WEAK void s2s_resolve_cancel(s2s_query_t *q)
{
    evloop_cancel(weak_loop, &q->timer);
    free(q);
}
