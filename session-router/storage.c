/* Accounts in Redis through async hiredis, reconnecting with backoff when Redis goes away.
 * While Redis is away, lookups are answered "temporary" so the client gets a
 * temporary-auth-failure instead of waiting. */
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "redis_ev.h"
#include "router.h"
#include "util.h"

static const char *redis_host;
static int redis_port;
static uint64_t backoff_ms = 100;
static ev_timer_t *reconnect_timer;
static int closing;

static void connect_now(void);

static void on_reconnect(evloop_t *loop, void *ud)
{
    (void)loop;
    (void)ud;
    reconnect_timer = NULL;
    connect_now();
}

static void schedule_reconnect(void)
{
    if (closing || reconnect_timer)
        return;
    reconnect_timer = evloop_timer(rt.loop, backoff_ms, on_reconnect, NULL);
    backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) {
        log_warn("storage: cannot connect to Redis at %s:%d: %s", redis_host, redis_port,
                 ac->errstr);
        rt.redis = NULL; /* hiredis frees the context after this callback */
        schedule_reconnect();
        return;
    }
    rt.redis_ready = 1;
    backoff_ms = 100;
    log_info("storage: connected to Redis at %s:%d", redis_host, redis_port);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    rt.redis = NULL;
    rt.redis_ready = 0;
    if (status != REDIS_OK && !closing)
        log_warn("storage: lost Redis at %s:%d, reconnecting", redis_host, redis_port);
    schedule_reconnect();
}

static void connect_now(void)
{
    redisAsyncContext *ac = redisAsyncConnect(redis_host, redis_port);
    if (!ac || ac->err) {
        log_warn("storage: cannot connect to Redis at %s:%d: %s", redis_host, redis_port,
                 ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect();
        return;
    }
    redis_ev_attach(ac, rt.loop);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    rt.redis = ac;
}

void storage_open(const char *host, int port)
{
    redis_host = host;
    redis_port = port;
    connect_now();
}

void storage_close(void)
{
    closing = 1;
    evloop_cancel(rt.loop, &reconnect_timer);
    if (rt.redis)
        redisAsyncFree(rt.redis);
    rt.redis = NULL;
}

/* What a pending lookup needs to answer: the frontend may be gone by then, so it is found
 * again by ident. */
typedef struct {
    char ident[128];
    size_t ident_len;
    uint64_t conn;
    uint32_t seq;
} auth_req_t;

static void auth_reply(const auth_req_t *r, ipc_status_t status, const char *cred)
{
    rt_frontend_t *f = hmap_get(rt.frontends, r->ident, r->ident_len);
    if (!f)
        return;
    ipc_hdr_t h;
    ipc_hdr_init(&h, IPC_AUTH_REPLY, r->conn);
    h.seq = r->seq;
    h.status = (uint8_t)status;
    if (cred && ipc_hdr_set(&h, 0, cred) < 0)
        h.status = IPC_NOT_FOUND;
    link_send(f, &h, NULL, 0);
}

static void on_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    auth_req_t *r = privdata;
    redisReply *rep = reply;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        log_warn("storage: account lookup failed: %s", rep ? rep->str : "no reply");
        auth_reply(r, IPC_TEMPORARY, NULL);
    } else if (rep->type == REDIS_REPLY_STRING) {
        auth_reply(r, IPC_OK, rep->str);
    } else {
        auth_reply(r, IPC_NOT_FOUND, NULL);
    }
    free(r);
}

void storage_auth_lookup(rt_frontend_t *f, const ipc_hdr_t *h)
{
    auth_req_t *r = xcalloc(1, sizeof *r);
    memcpy(r->ident, f->ident, f->ident_len);
    r->ident_len = f->ident_len;
    r->conn = h->conn;
    r->seq = h->seq;
    char bare[2048], key[2200];
    snprintf(bare, sizeof bare, "%s@%s", h->field[0], rt.domain);
    if (!rt.redis_ready || h->status > SCRAM_SHA256 ||
        keys_user(key, sizeof key, rt.redis_prefix, KEYS_ACCOUNT, bare) < 0) {
        auth_reply(r, rt.redis_ready ? IPC_NOT_FOUND : IPC_TEMPORARY, NULL);
        free(r);
        return;
    }
    const char *field = keys_cred_field((scram_hash_t)h->status);
    if (redisAsyncCommand(rt.redis, on_auth, r, "HGET %s %s", key, field) != REDIS_OK) {
        auth_reply(r, IPC_TEMPORARY, NULL);
        free(r);
    }
}
