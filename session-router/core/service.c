/* The registry of service domains (service.h); routing to and from them is in route.c. */
#include "service.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "router.h"
#include "util.h"

typedef struct service {
    char *domain, *name;
    service_fn fn;
    int remote; /* takes stanzas from other domains */
    struct service *next;
} service_t;

static service_t *services, **services_tail = &services;

void service_add(const char *domain, const char *name, service_fn fn, int remote)
{
    if (rt.domain && strcmp(domain, rt.domain) == 0)
        log_fatal("service %s: it is the server's own domain", domain);
    if (service_find(domain, strlen(domain), 0))
        log_fatal("service %s: claimed twice (two modules configured with one domain?)",
                  domain);
    service_t *s = xcalloc(1, sizeof *s);
    s->domain = xstrdup(domain);
    s->name = name ? xstrdup(name) : NULL;
    s->fn = fn;
    s->remote = remote;
    *services_tail = s;
    services_tail = &s->next;
}

service_fn service_find(const char *domain, size_t len, int remote)
{
    for (service_t *s = services; s; s = s->next)
        if (strlen(s->domain) == len && memcmp(s->domain, domain, len) == 0)
            return !remote || s->remote ? s->fn : NULL;
    return NULL;
}

void service_each(int remote, void (*fn)(const char *domain, const char *name, void *ud),
                  void *ud)
{
    for (service_t *s = services; s; s = s->next)
        if (!remote || s->remote)
            fn(s->domain, s->name, ud);
}

void service_clear(void)
{
    while (services) {
        service_t *s = services;
        services = s->next;
        free(s->domain);
        free(s->name);
        free(s);
    }
    services_tail = &services;
}
