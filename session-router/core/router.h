/* router: the process-wide state of the session-router core: the event loop, the link to
 * the frontends, the session and user tables, Redis. The router owns session semantics
 * (docs/ARCHITECTURE.md); features are modules (module.h) that reach this state only
 * through the core's headers. One process, one event loop, one thread. */
#ifndef ROUTER_ROUTER_H
#define ROUTER_ROUTER_H

#include <hiredis/async.h>
#include <stddef.h>
#include <stdint.h>

#include "evloop.h"
#include "hmap.h"
#include "zlink.h"

/* A frontend process, known by its ZeroMQ routing id "name:epoch". */
typedef struct rt_frontend {
    char ident[128];
    size_t ident_len;
    char name[64];
    uint64_t epoch;
    uint64_t last_seen; /* now_ms() of the last message from it */
    size_t nsessions;
} rt_frontend_t;

typedef struct {
    evloop_t *loop;
    void *zctx, *zsock;
    zlink_t *link;
    uint64_t epoch;
    uint64_t started_ms; /* now_ms() at start (server uptime, XEP-0012) */
    const char *domain;
    hmap_t *frontends; /* ident -> rt_frontend_t */
    hmap_t *by_conn;   /* ident + conn id -> session_t */
    hmap_t *by_jid;    /* full JID -> session_t */
    hmap_t *users;     /* bare JID -> user_t */
    redisAsyncContext *redis;
    int redis_ready;
    const char *redis_prefix;
    uint64_t frontend_timeout_ms;
    long max_resources; /* sessions one account may have at once */
} router_t;

extern router_t rt;

/* A Redis reply callback that ignores the reply (writes whose outcome nobody waits for). */
void rt_redis_ignore(redisAsyncContext *ac, void *reply, void *privdata);

#endif
