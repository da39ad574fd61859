/* XEP-0160 offline messages: normal and chat messages for a user with no available
 * resource are kept in a Redis list, stamped with XEP-0203 delay, capped by
 * max_offline_messages, delivered in order when a resource becomes available with a
 * non-negative priority, and trimmed only after they were handed to the frontend. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "config.h"
#include "jid.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "module.h"
#include "modules.h"
#include "remote.h"
#include "stanza.h"
#include "storage.h"
#include "user.h"
#include "util.h"

static long max_offline;
static metric_t *m_stored; /* xmpp_offline_messages_stored_total */

/* Shown by xmppctl stats. */
static admin_counter_t stored_count = {.name = "offline messages stored since start"};
static admin_counter_t delivered_count = {.name = "offline messages delivered since start"};

/* Stores in flight (waiting for the roster load or Redis) hold their stanza twice (as
 * received and stamped). A burst for offline users (a flood to a user who just went, the
 * deliveries a gone connection hands back) must not grow the router without bound: past
 * OFFLINE_INFLIGHT_BYTES the sender gets resource-constraint (RFC 6120 8.3.3.18) instead. */
#define OFFLINE_INFLIGHT_BYTES (1024 * 1024)
static size_t inflight_bytes;
static unsigned long refused; /* in this run of refusals, logged once it ends */

typedef struct {
    char *sender;  /* full JID of the sender, to bounce to */
    char *to_bare;
    char *stored;  /* the stamped stanza */
    char *orig;    /* the stanza as received, parsed again only to bounce it */
    size_t orig_len, cost;
} store_req_t;

static void store_req_free(store_req_t *r)
{
    inflight_bytes -= r->cost;
    if (!inflight_bytes && refused) {
        log_warn("offline: %lu messages were refused with resource-constraint: more than "
                 "%d bytes of stores waited for Redis", refused, OFFLINE_INFLIGHT_BYTES);
        refused = 0;
    }
    free(r->sender);
    free(r->to_bare);
    free(r->stored);
    free(r->orig);
    free(r);
}

/* The sender's session, or NULL; *there says whether it can be answered (a session, or a
 * sender at another domain, answered by address out through s2s). */
static session_t *sender_of(const char *jid, int *there)
{
    session_t *s = session_find_jid(jid);
    *there = s || remote_jid(jid);
    return s;
}

static void bounce(store_req_t *r, const char *etype, const char *cond)
{
    int there;
    session_t *s = sender_of(r->sender, &there);
    xml_node_t *st = there ? stanza_parse(r->orig, r->orig_len) : NULL;
    if (st)
        session_reply_error(s, st, etype, cond);
    xml_node_free(&st);
}

/* The account check, the count and the push in one step, so stores racing for one user
 * (many in flight at once) cannot pass max_offline between a count and a push.
 * KEYS: the account, the offline list. ARGV: max_offline, the stamped stanza.
 * Returns 0 (no account), -1 (storage full) or the list's new length. */
const char offline_store_script[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[1]) then return -1 end "
    "return redis.call('RPUSH', KEYS[2], ARGV[2])";

static void on_stored(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    store_req_t *r = privdata;
    redisReply *rep = reply;
    if (!rep || rep->type != REDIS_REPLY_INTEGER) {
        bounce(r, "wait", "internal-server-error");
    } else if (rep->integer <= 0) {
        /* No account, or storage full: RFC 6121 8.5.2.2.1 / 8.5.1, indistinguishable. */
        bounce(r, "cancel", "service-unavailable");
    } else {
        metric_inc(m_stored);
        stored_count.value++;
    }
    store_req_free(r);
}

/* Once the recipient's roster and blocklist are loaded: bounce if the sender is blocked,
 * otherwise store (the script checks the account and the count). */
static void store_loaded(user_t *u, int ok, void *arg)
{
    store_req_t *r = arg;
    if (!ok || !rt.redis_ready) {
        bounce(r, "wait", "internal-server-error");
        store_req_free(r);
        return;
    }
    if (!u->exists || user_blocks(u, r->sender)) {
        bounce(r, "cancel", "service-unavailable");
        store_req_free(r);
        return;
    }
    char acct[STORAGE_KEY_MAX], key[STORAGE_KEY_MAX];
    storage_key(acct, KEYS_ACCOUNT, r->to_bare);
    storage_key(key, KEYS_OFFLINE, r->to_bare);
    if (rt_redis_command(on_stored, r, "EVAL %s 2 %s %s %ld %s", offline_store_script, acct, key,
                         max_offline, r->stored) != REDIS_OK) {
        bounce(r, "wait", "internal-server-error");
        store_req_free(r);
    }
}

/* A normal or chat message for a user with no resource that takes it. */
static mod_result_t on_store_offline(hook_ev_t *ev)
{
    xml_node_t *st = stanza_parse(ev->payload, ev->len);
    if (!st)
        return MOD_HANDLED;
    xml_node_t *copy = xml_node_copy(st);
    /* XEP-0203: when the server received it. */
    stanza_add_delay(copy, rt.domain, time(NULL));
    buf_t b = BUF_INIT;
    xml_serialize(copy, XML_NS_CLIENT, &b);
    xml_node_free(&copy);
    size_t cost = 2 * ev->len + b.len;
    if (inflight_bytes + cost > OFFLINE_INFLIGHT_BYTES) {
        int there;
        session_t *s = sender_of(ev->from, &there);
        if (there)
            session_reply_error(s, st, "wait", "resource-constraint");
        refused++;
        buf_free(&b);
        xml_node_free(&st);
        return MOD_HANDLED;
    }
    xml_node_free(&st);
    store_req_t *r = xcalloc(1, sizeof *r);
    r->sender = xstrdup(ev->from); /* its 'from': the sender's session may be gone */
    r->to_bare = xstrdup(ev->to);
    r->orig = xstrndup(ev->payload, ev->len);
    r->orig_len = ev->len;
    r->stored = buf_steal(&b);
    r->cost = cost;
    inflight_bytes += cost;
    user_with_roster(r->to_bare, store_loaded, r);
    return MOD_HANDLED;
}

static void on_fetched(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    char *full = privdata;
    redisReply *rep = reply;
    session_t *s = session_find_jid(full);
    if (s)
        s->user->offline_busy = 0;
    if (rep && rep->type == REDIS_REPLY_ARRAY && s && rep->elements) {
        size_t sent = 0;
        for (; sent < rep->elements; sent++) {
            redisReply *m = rep->element[sent];
            if (m->type != REDIS_REPLY_STRING)
                continue;
            if (session_deliver(s, m->str, m->len) < 0)
                break;
        }
        /* Only what reached the frontend leaves storage: the rest (its pipe is full) waits
         * for the next initial presence. */
        delivered_count.value += sent;
        if (sent && rt.redis_ready) {
            char key[STORAGE_KEY_MAX];
            storage_key(key, KEYS_OFFLINE, s->user->bare);
            rt_redis_command(rt_redis_ignore, NULL, "LTRIM %s %lld -1", key, (long long)sent);
        }
    }
    free(full);
}

static void offline_deliver(session_t *s)
{
    /* One fetch per user at a time, or two resources coming online together would both
     * get the same messages before the first fetch trims them. */
    if (!rt.redis_ready || s->user->offline_busy)
        return;
    s->user->offline_busy = 1;
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_OFFLINE, s->user->bare);
    rt_redis_command(on_fetched, xstrdup(s->full), "LRANGE %s 0 -1", key);
}

static void deliver_loaded(user_t *u, int ok, void *arg)
{
    (void)u;
    char *full = arg;
    session_t *s = ok ? session_find_jid(full) : NULL;
    if (s)
        offline_deliver(s);
    free(full);
}

/* XEP-0160: stored messages go to the first resource that becomes available with a
 * non-negative priority, after the presence broadcast and probes (queued on the same
 * user, so they run first). */
static mod_result_t on_initial(hook_ev_t *ev)
{
    session_t *s = ev->session;
    if (s->priority >= 0)
        user_with_roster(s->user->bare, deliver_loaded, xstrdup(s->full));
    return MOD_PASS;
}

/* A resource that had a negative priority (it wanted no messages) now takes them. */
static mod_result_t on_update(hook_ev_t *ev)
{
    return ev->prev_priority < 0 ? on_initial(ev) : MOD_PASS;
}

static void offline_open(void)
{
    max_offline = config_int("max_offline_messages");
    m_stored = metrics_counter("xmpp_offline_messages_stored_total", "",
                               "messages stored for offline delivery (acknowledged by Redis)");
    admin_counter_register(&stored_count);
    admin_counter_register(&delivered_count);
}

static const mod_feature_t features[] = {
    {"msgoffline", MOD_AT_SERVER, NULL},
    {0},
};

/* Storing is the last resort for a message: the lowest priority. */
/* The account is deleted (account.h): the messages stored for it go with it. */
static mod_result_t on_user_deleted(hook_ev_t *ev)
{
    account_data_key(ev, KEYS_OFFLINE);
    return MOD_PASS;
}

static const mod_hook_t hooks[] = {
    {HOOK_USER_DELETED, 0, on_user_deleted},
    {HOOK_STORE_OFFLINE, -100, on_store_offline},
    {HOOK_PRESENCE_INITIAL, 0, on_initial},
    {HOOK_PRESENCE_UPDATE, 0, on_update},
    {0},
};

static const config_key_t config[] = {
    CONFIG_INT("max_offline_messages", "100", 0, 100000, "stored offline messages per user; past it the sender gets service-unavailable"),
    CONFIG_END,
};

module_t mod_offline = {
    .config = config,
    .name = "offline",
    .features = features,
    .hooks = hooks,
    .open = offline_open,
};
