/* Offline messages (XEP-0160): a message for an account with no available resource is
 * stored in Redis with a XEP-0203 delay stamp, up to max_offline_messages per user, and
 * delivered in order on the user's next initial presence; it is removed from storage only
 * once it was handed to a frontend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "jid.h"
#include "keys.h"
#include "log.h"
#include "router.h"
#include "stanza.h"
#include "util.h"

#define NS_DELAY "urn:xmpp:delay"

typedef struct {
    char *sender;  /* full JID of the sender, to bounce to */
    char *to_bare;
    char *stored;  /* the stamped stanza */
    xml_node_t *orig;
} store_req_t;

static void store_req_free(store_req_t *r)
{
    xml_node_free(&r->orig);
    free(r->sender);
    free(r->to_bare);
    free(r->stored);
    free(r);
}

static void bounce(store_req_t *r, const char *etype, const char *cond)
{
    session_t *s = session_find_jid(r->sender);
    if (!s)
        return;
    xml_node_t *err = stanza_error_reply(r->orig, rt.domain, etype, cond);
    session_deliver_node(s, err);
    xml_node_free(&err);
}

static void on_ignore(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    (void)reply;
    (void)privdata;
}

static void on_pushed(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    store_req_t *r = privdata;
    redisReply *rep = reply;
    if (!rep || rep->type != REDIS_REPLY_INTEGER)
        bounce(r, "wait", "internal-server-error");
    store_req_free(r);
}

/* The account check and the count came back: store, or tell the sender why not. */
static void on_checked(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    store_req_t *r = privdata;
    redisReply *rep = reply;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_INTEGER) {
        bounce(r, "wait", "internal-server-error");
        store_req_free(r);
        return;
    }
    /* No account, or storage full: RFC 6121 8.5.2.2.1 / 8.5.1, indistinguishable. */
    if (rep->element[0]->integer == 0 ||
        rep->element[1]->integer >= config_int("max_offline_messages")) {
        bounce(r, "cancel", "service-unavailable");
        store_req_free(r);
        return;
    }
    char key[JID_MAX + 256];
    keys_user(key, sizeof key, rt.redis_prefix, KEYS_OFFLINE, r->to_bare);
    redisAsyncCommand(rt.redis, on_pushed, r, "RPUSH %s %s", key, r->stored);
}

/* Once the recipient's roster and blocklist are loaded: bounce if the sender is blocked,
 * otherwise check the account and the count, then store. */
static void store_loaded(user_t *u, int ok, void *arg)
{
    store_req_t *r = arg;
    if (!ok || !rt.redis_ready) {
        bounce(r, "wait", "internal-server-error");
        store_req_free(r);
        return;
    }
    if (!u->exists || blocklist_blocks(u, r->sender)) {
        bounce(r, "cancel", "service-unavailable");
        store_req_free(r);
        return;
    }
    char acct[JID_MAX + 256], key[JID_MAX + 256];
    keys_user(acct, sizeof acct, rt.redis_prefix, KEYS_ACCOUNT, r->to_bare);
    keys_user(key, sizeof key, rt.redis_prefix, KEYS_OFFLINE, r->to_bare);
    redisAsyncCommand(rt.redis, on_ignore, NULL, "MULTI");
    redisAsyncCommand(rt.redis, on_ignore, NULL, "EXISTS %s", acct);
    redisAsyncCommand(rt.redis, on_ignore, NULL, "LLEN %s", key);
    redisAsyncCommand(rt.redis, on_checked, r, "EXEC");
}

void offline_store(session_t *from, const ipc_hdr_t *h, const char *payload, size_t len,
                   const char *to_bare)
{
    (void)h;
    xml_node_t *st = stanza_parse(payload, len);
    if (!st)
        return;
    store_req_t *r = xcalloc(1, sizeof *r);
    r->sender = xstrdup(from->full);
    r->to_bare = xstrdup(to_bare);
    r->orig = st;
    /* XEP-0203: when the server received it. */
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    xml_node_t *copy = xml_node_copy(st);
    xml_node_t *d = xml_node_new_child(copy, "delay", NS_DELAY);
    xml_node_set_attr(d, "from", rt.domain);
    xml_node_set_attr(d, "stamp", stamp);
    buf_t b = BUF_INIT;
    xml_serialize(copy, XML_NS_CLIENT, &b);
    xml_node_free(&copy);
    r->stored = buf_steal(&b);
    user_with_roster(to_bare, store_loaded, r);
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
        ipc_hdr_t h;
        ipc_hdr_init(&h, IPC_DELIVER, s->conn);
        for (; sent < rep->elements; sent++) {
            redisReply *m = rep->element[sent];
            if (m->type != REDIS_REPLY_STRING)
                continue;
            if (link_send(s->fe, &h, m->str, m->len) < 0)
                break;
        }
        /* Only what reached the frontend leaves storage. */
        if (sent && rt.redis_ready) {
            char key[JID_MAX + 256];
            keys_user(key, sizeof key, rt.redis_prefix, KEYS_OFFLINE, s->user->bare);
            redisAsyncCommand(rt.redis, on_ignore, NULL, "LTRIM %s %lld -1", key,
                              (long long)sent);
        }
    }
    free(full);
}

void offline_deliver(session_t *s)
{
    /* One fetch per user at a time, or two resources coming online together would both
     * get the same messages before the first fetch trims them. */
    if (!rt.redis_ready || s->user->offline_busy)
        return;
    s->user->offline_busy = 1;
    char key[JID_MAX + 256];
    keys_user(key, sizeof key, rt.redis_prefix, KEYS_OFFLINE, s->user->bare);
    redisAsyncCommand(rt.redis, on_fetched, xstrdup(s->full), "LRANGE %s 0 -1", key);
}
