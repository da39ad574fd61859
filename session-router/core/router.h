/* router: the process-wide state of the session-router core: the event loop, the link to
 * the frontends, the session and user tables, Redis. The router owns session semantics
 * (docs/ARCHITECTURE.md); features are modules (module.h) that reach this state only
 * through the core's headers. One process, one event loop, one thread. */
#ifndef ROUTER_ROUTER_H
#define ROUTER_ROUTER_H

#include <hiredis/async.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "evloop.h"
#include "hmap.h"
#include "ipc.h"
#include "metrics.h"
#include "zlink.h"

/* A frontend process, known by its ZeroMQ routing id "name:epoch". */
typedef struct rt_frontend {
    char ident[128];
    size_t ident_len;
    char name[64];
    uint64_t epoch;
    uint64_t last_seen; /* now_ms() of the last message from it */
    size_t nsessions;
    int s2s;            /* its hello said it serves server-to-server (IPC_HELLO_S2S) */
    uint64_t unreachable_ms; /* now_ms() when a send to it found it not connected (0: never) */
    struct remote_journal *journal; /* s2s-out sent to it and not confirmed (remote.c) */
    metric_t *m_sessions; /* xmpp_router_sessions{frontend="name"}, shared by its epochs */
} rt_frontend_t;

/* The router's own metrics (README, "Metrics"), registered by main.c whether or not
 * metrics_listen serves them; NULL in the unit tests, where metric_* calls do nothing.
 * Arrays by kind are indexed by ipc_kind_t (0: not a stanza kind). Modules register their
 * own series (metrics.h) in their open function. */
typedef struct {
    metric_t *stanzas_in[IPC_KINDS];  /* xmpp_stanzas_in_total{kind=...}: from the frontends */
    metric_t *stanzas_out[IPC_KINDS]; /* xmpp_stanzas_out_total{kind=...}: deliveries sent */
    zlink_metrics_t link;     /* xmpp_link_{messages,bytes}_total{direction=...} */
    metric_t *link_send_failed;               /* xmpp_link_send_failures_total */
    metric_t *redis_duration;                 /* xmpp_redis_command_duration_seconds */
    metric_t *redis_pending;                  /* xmpp_redis_pending_commands */
    metric_t *registrations;     /* xmpp_registrations_total: in-band registrations done */
    metric_t *account_deletions; /* xmpp_account_deletions_total: accounts deleted */
    metric_t *sm_rerouted;       /* xmpp_sm_unacked_rerouted_total (sm.c registers it) */
} rt_metrics_t;

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
    rt_metrics_t m;
} router_t;

extern router_t rt;

/* A Redis reply callback that ignores the reply (writes whose outcome nobody waits for). */
void rt_redis_ignore(redisAsyncContext *ac, void *reply, void *privdata);
/* Sends a command on rt.redis like redisAsyncCommand / redisvAsyncCommand /
 * redisAsyncCommandArgv (fn may be NULL), timing it from issue to reply in
 * xmpp_redis_command_duration_seconds: every command of the router goes through these.
 * REDIS_OK, or REDIS_ERR when hiredis refused it (fn is then never called). */
int rt_redis_command(redisCallbackFn *fn, void *privdata, const char *fmt, ...);
int rt_redis_vcommand(redisCallbackFn *fn, void *privdata, const char *fmt, va_list ap);
int rt_redis_command_argv(redisCallbackFn *fn, void *privdata, int argc, const char **argv,
                          const size_t *argvlen);

#endif
