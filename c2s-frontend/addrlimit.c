#include "addrlimit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "hmap.h"
#include "util.h"

typedef struct {
    long conns;      /* connections open now */
    double tokens;   /* connection-rate bucket */
    uint64_t refill; /* when tokens were last topped up */
} addr_t;

static struct {
    addrlimit_config_t cfg;
    hmap_t *addrs; /* key -> addr_t */
    backoff_t *auth;
} al;

void addrlimit_init(const addrlimit_config_t *cfg)
{
    al.cfg = *cfg;
    al.addrs = hmap_new();
    al.auth = backoff_new(cfg->max_auth_failures, cfg->backoff_ms);
}

void addrlimit_shutdown(void)
{
    if (!al.addrs)
        return;
    hmap_destroy_all(&al.addrs, NULL);
    backoff_free(&al.auth);
}

void addrlimit_key(const char *addr, char key[ADDRLIMIT_KEY_MAX])
{
    char host[INET6_ADDRSTRLEN] = "";
    const char *end = strrchr(addr, ':');
    if (addr[0] == '[' && (end = strchr(addr, ']')) != NULL)
        addr++;
    size_t n = end ? (size_t)(end - addr) : strlen(addr);
    if (n < sizeof host) {
        memcpy(host, addr, n);
        host[n] = '\0';
    }
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            inet_ntop(AF_INET, &a6.s6_addr[12], key, ADDRLIMIT_KEY_MAX);
            return;
        }
        memset(&a6.s6_addr[8], 0, 8);
        char buf[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &a6, buf, sizeof buf);
        snprintf(key, ADDRLIMIT_KEY_MAX, "%s/64", buf);
        return;
    }
    snprintf(key, ADDRLIMIT_KEY_MAX, "%s", host);
}

static void refill(addr_t *a, uint64_t now)
{
    if (now > a->refill) {
        a->tokens += (double)(now - a->refill) * (double)al.cfg.rate / 1000.0;
        if (a->tokens > (double)al.cfg.burst)
            a->tokens = (double)al.cfg.burst;
    }
    a->refill = now;
}

const char *addrlimit_admit(const char *key, uint64_t now)
{
    if (!al.cfg.max_conns && !al.cfg.rate)
        return NULL;
    addr_t *a = hmap_sget(al.addrs, key);
    if (!a) {
        a = xcalloc(1, sizeof *a);
        a->tokens = (double)al.cfg.burst;
        a->refill = now;
        hmap_sput(al.addrs, key, a);
    }
    if (al.cfg.max_conns && a->conns >= al.cfg.max_conns)
        return "Too many connections from your address";
    if (al.cfg.rate) {
        refill(a, now);
        if (a->tokens < 1.0)
            return "Too many new connections from your address; slow down";
        a->tokens -= 1.0;
    }
    a->conns++;
    return NULL;
}

void addrlimit_release(const char *key)
{
    addr_t *a = al.addrs ? hmap_sget(al.addrs, key) : NULL;
    if (a && a->conns > 0)
        a->conns--;
}

uint64_t addrlimit_auth_wait(const char *key, uint64_t now)
{
    return backoff_wait(al.auth, key, now);
}

uint64_t addrlimit_auth_failed(const char *key, uint64_t now)
{
    return backoff_failed(al.auth, key, now);
}

static int drop_idle(void *value, void *ud)
{
    addr_t *a = value;
    if (a->conns)
        return 0;
    if (al.cfg.rate) {
        refill(a, *(const uint64_t *)ud);
        if (a->tokens < (double)al.cfg.burst)
            return 0;
    }
    free(a);
    return 1;
}

void addrlimit_sweep(uint64_t now)
{
    hmap_filter(al.addrs, drop_idle, &now);
    backoff_sweep(al.auth, now);
}
