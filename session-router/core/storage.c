/* Accounts in Redis through async hiredis, reconnecting with backoff when Redis goes away.
 * While Redis is away, lookups are answered "temporary" so the client gets a
 * temporary-auth-failure instead of waiting. Every connection starts with AUTH
 * (redis_password, redis_user) or a PING, and counts as ready only once that is answered:
 * a refused password is logged as an error and retried with the same backoff. With
 * redis_tls, hiredis talks to Redis through an in-process TLS relay (redis_tls.h). */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keys.h"
#include "log.h"
#include "redis_ev.h"
#include "redis_tls.h"
#include "storage.h"
#include "jid.h"
#include "link.h"
#include "secret.h"
#include "util.h"

static const char *redis_host;
static int redis_port;
static char *redis_password; /* NULL: no AUTH */
static const char *redis_user;
static redis_tls_t *tls; /* the relay hiredis talks through when redis_tls is on */
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
    log_debug("storage: connected to Redis at %s:%d, %s", redis_host, redis_port,
              redis_password ? "authenticating" : "checking");
}

/* The answer to the AUTH (or PING) that opens every connection. */
static void on_greeting(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    redisReply *rep = reply;
    if (!rep)
        return; /* disconnected meanwhile: on_disconnect retries */
    if (rep->type == REDIS_REPLY_ERROR) {
        if (redis_password)
            log_error("storage: Redis at %s:%d refused AUTH: %s (check redis_password%s); "
                      "retrying in %llu ms",
                      redis_host, redis_port, rep->str, *redis_user ? " and redis_user" : "",
                      (unsigned long long)backoff_ms);
        else if (strncmp(rep->str, "NOAUTH", 6) == 0)
            log_error("storage: Redis at %s:%d requires a password: set redis_password; "
                      "retrying in %llu ms",
                      redis_host, redis_port, (unsigned long long)backoff_ms);
        else
            log_warn("storage: Redis at %s:%d: %s", redis_host, redis_port, rep->str);
        redisAsyncDisconnect(ac); /* on_disconnect schedules the retry */
        return;
    }
    rt.redis_ready = 1;
    backoff_ms = 100;
    log_info("storage: connected to Redis at %s:%d%s", redis_host, redis_port,
             redis_password ? " (authenticated)" : "");
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
    redisAsyncContext *ac = tls ? redisAsyncConnectUnix(redis_tls_path(tls))
                                : redisAsyncConnect(redis_host, redis_port);
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
    /* The first command on the wire, sent once the connection is up. */
    int rc;
    if (redis_password && *redis_user)
        rc = redisAsyncCommand(ac, on_greeting, NULL, "AUTH %s %s", redis_user, redis_password);
    else if (redis_password)
        rc = redisAsyncCommand(ac, on_greeting, NULL, "AUTH %s", redis_password);
    else
        rc = redisAsyncCommand(ac, on_greeting, NULL, "PING");
    if (rc != REDIS_OK)
        log_warn("storage: cannot queue the greeting to Redis at %s:%d", redis_host, redis_port);
}

void storage_open(const char *host, int port)
{
    redis_host = host;
    redis_port = port;
    redis_password = secret_from_config("redis_password");
    redis_user = config_str("redis_user");
    if (*redis_user && !redis_password)
        log_fatal("config: key 'redis_user' is set but 'redis_password' is not");
    tls = redis_tls_new(rt.loop, host, port);
    connect_now();
}

void storage_close(void)
{
    closing = 1;
    evloop_cancel(rt.loop, &reconnect_timer);
    if (rt.redis)
        redisAsyncFree(rt.redis);
    rt.redis = NULL;
    redis_tls_destroy(&tls);
    secret_free(&redis_password);
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
    /* Credentials too long for the header go as "not found" (link_send_auth_reply). */
    link_send_auth_reply(f, &(ipc_auth_reply_t){r->conn, r->seq, status, cred});
}

static void on_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    auth_req_t *r = privdata;
    redisReply *rep = reply;
    /* The reply of EXEC: [HGET credentials, EXISTS tombstone]. */
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[1]->type != REDIS_REPLY_INTEGER) {
        log_warn("storage: account lookup failed: %s",
                 rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no reply");
        auth_reply(r, IPC_TEMPORARY, NULL);
    } else if (rep->element[0]->type == REDIS_REPLY_STRING && rep->element[1]->integer == 0) {
        auth_reply(r, IPC_OK, rep->element[0]->str);
    } else {
        /* No account, or one being deleted (account.h): its tombstone shuts it. */
        auth_reply(r, IPC_NOT_FOUND, NULL);
    }
    free(r);
}

void storage_auth_lookup(rt_frontend_t *f, const ipc_auth_t *m)
{
    auth_req_t *r = xcalloc(1, sizeof *r);
    memcpy(r->ident, f->ident, f->ident_len);
    r->ident_len = f->ident_len;
    r->conn = m->conn;
    r->seq = m->seq;
    char bare[2048], key[2200], tomb[2200];
    snprintf(bare, sizeof bare, "%s@%s", m->username, rt.domain);
    if (!rt.redis_ready ||
        keys_user(key, sizeof key, rt.redis_prefix, KEYS_ACCOUNT, bare) < 0 ||
        keys_user(tomb, sizeof tomb, rt.redis_prefix, KEYS_TOMBSTONE, bare) < 0) {
        auth_reply(r, rt.redis_ready ? IPC_NOT_FOUND : IPC_TEMPORARY, NULL);
        free(r);
        return;
    }
    const char *field = keys_cred_field(m->hash);
    rt_redis_command(rt_redis_ignore, NULL, "MULTI");
    rt_redis_command(rt_redis_ignore, NULL, "HGET %s %s", key, field);
    rt_redis_command(rt_redis_ignore, NULL, "EXISTS %s", tomb);
    if (rt_redis_command(on_auth, r, "EXEC") != REDIS_OK) {
        auth_reply(r, IPC_TEMPORARY, NULL);
        free(r);
    }
}

int storage_key(char *out, const char *kind, const char *bare)
{
    return keys_user(out, STORAGE_KEY_MAX, rt.redis_prefix, kind, bare);
}

void rt_redis_ignore(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    (void)reply;
    (void)privdata;
}

/* A command in flight: its caller's callback and when it was issued. Replies come in the
 * order of the commands, and hiredis calls every callback once, with NULL when the
 * connection goes away, so the record is always freed. */
typedef struct {
    redisCallbackFn *fn;
    void *privdata;
    double issued;
} timed_cmd_t;

static void on_timed_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    timed_cmd_t *t = privdata;
    if (reply)
        metric_observe(rt.m.redis_duration, metrics_now() - t->issued);
    metric_add(rt.m.redis_pending, -1);
    redisCallbackFn *fn = t->fn;
    void *pd = t->privdata;
    free(t);
    if (fn)
        fn(ac, reply, pd);
}

static timed_cmd_t *timed_new(redisCallbackFn *fn, void *privdata)
{
    timed_cmd_t *t = xmalloc(sizeof *t);
    t->fn = fn;
    t->privdata = privdata;
    t->issued = metrics_now();
    return t;
}

static int timed_sent(timed_cmd_t *t, int rc)
{
    if (rc != REDIS_OK)
        free(t);
    else
        metric_add(rt.m.redis_pending, 1);
    return rc;
}

int rt_redis_vcommand(redisCallbackFn *fn, void *privdata, const char *fmt, va_list ap)
{
    timed_cmd_t *t = timed_new(fn, privdata);
    return timed_sent(t, redisvAsyncCommand(rt.redis, on_timed_reply, t, fmt, ap));
}

int rt_redis_command(redisCallbackFn *fn, void *privdata, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = rt_redis_vcommand(fn, privdata, fmt, ap);
    va_end(ap);
    return rc;
}

int rt_redis_command_argv(redisCallbackFn *fn, void *privdata, int argc, const char **argv,
                          const size_t *argvlen)
{
    timed_cmd_t *t = timed_new(fn, privdata);
    return timed_sent(t, redisAsyncCommandArgv(rt.redis, on_timed_reply, t, argc, argv, argvlen));
}
