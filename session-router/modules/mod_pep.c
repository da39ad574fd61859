/* XEP-0163 Personal Eventing Protocol: a XEP-0060 publish-subscribe subset served at every
 * account's bare JID. The owner publishes, retracts, reads, configures, purges and deletes
 * nodes (created on first publish, XEP-0163 section 3); others read the items their access
 * model lets them see. Notifications go by interest (XEP-0163 section 4): to the owner's
 * and subscribed local contacts' available sessions whose entity capabilities (core/caps.h)
 * include "NODE+notify"; a session whose capabilities become known gets the last item of
 * each node it is interested in (XEP-0163 section 4.3.4, "Sending the Last Published Item").
 *
 * Storage (common/keys.h), three keys per user so that deleting an account knows them all:
 *   pep:{bare}       hash  NODE -> node configuration (cfg_encode text)
 *   pepitems:{bare}  hash  NODE \0 ID -> 16 hex digits of publish order + the <item/>;
 *                          the field "\0seq" is the user's publish counter
 *   peporder:{bare}  zset  (all scores 0) NODE \0 ORDER \0 ID: a node's items in publish
 *                          order are one lexicographic range
 * Node names and item ids never contain NUL (XML cannot), so NUL separates them. Every
 * change that touches several of them is one Lua script (atomic in Redis). Other modules
 * publish through HOOK_PEP_PUBLISH and follow publishes through HOOK_PEP_PUBLISHED. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "caps.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "module.h"
#include "modules.h"
#include "pepcfg.h"
#include "stanza.h"
#include "storage.h"
#include "user.h"
#include "util.h"

#define NS_PUBSUB_OWNER NS_PUBSUB "#owner"
#define NS_PUBSUB_EVENT NS_PUBSUB "#event"
#define NS_PUBSUB_ERRORS NS_PUBSUB "#errors"

/* Bytes of a node name or an item id. */
#define PEP_NAME_MAX 1024

static long max_nodes, max_items_limit, max_item_size;

/* ---- Redis scripts ---- */

/* Drops the oldest items of node n past `keep` (KEYS[2] items, KEYS[3] order). */
#define LUA_TRIM                                                                           \
    "local lo, hi = '[' .. n .. '\\0', '(' .. n .. '\\1' "                                 \
    "local cnt = redis.call('ZLEXCOUNT', KEYS[3], lo, hi) "                                \
    "if cnt > keep then "                                                                  \
    "  for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[3], lo, hi, 'LIMIT', 0, cnt - keep)) do " \
    "    redis.call('ZREM', KEYS[3], m) "                                                  \
    "    redis.call('HDEL', KEYS[2], n .. '\\0' .. string.sub(m, #n + 19)) "              \
    "  end "                                                                               \
    "end "

/* The scripts that create keys run only while the account exists (KEYS[4]): a request
 * whose lookup was answered after the account's deletion began would bring its keys back
 * once deleted. */
#define LUA_ACCOUNT "if redis.call('EXISTS', KEYS[4]) == 0 then return -2 end "

/* KEYS nodes; ARGV node: {configuration or nil, number of nodes}. */
static const char LUA_LOOKUP[] =
    "return {redis.call('HGET', KEYS[1], ARGV[1]), redis.call('HLEN', KEYS[1])}";

/* KEYS nodes items order account; ARGV node id item configuration keep max-nodes: stores the item
 * (a republished id moves to the end, XEP-0060 section 7.1.2); -1 when the node is new and
 * the account has max-nodes already (checked here, atomically: a burst of publishes all
 * pass the earlier lookup before any creates its node). */
static const char LUA_PUBLISH[] =
    "local n, id, keep = ARGV[1], ARGV[2], tonumber(ARGV[5]) " LUA_ACCOUNT
    "if redis.call('HEXISTS', KEYS[1], n) == 0 and "
    "   redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[6]) then return -1 end "
    "redis.call('HSET', KEYS[1], n, ARGV[4]) "
    "local f = n .. '\\0' .. id "
    "local old = redis.call('HGET', KEYS[2], f) "
    "if old then redis.call('ZREM', KEYS[3], n .. '\\0' .. string.sub(old, 1, 16) .. '\\0' .. id) end "
    "local seq = string.format('%016x', redis.call('HINCRBY', KEYS[2], '\\0seq', 1)) "
    "redis.call('HSET', KEYS[2], f, seq .. ARGV[3]) "
    "redis.call('ZADD', KEYS[3], 0, n .. '\\0' .. seq .. '\\0' .. id) " LUA_TRIM "return 1";

/* KEYS nodes items order account; ARGV node configuration keep [max-nodes]: a new
 * configuration.
 * With max-nodes (a create): 0 when the node exists, -1 when the account has max-nodes. */
static const char LUA_CONFIGURE[] =
    "local n, keep = ARGV[1], tonumber(ARGV[3]) " LUA_ACCOUNT
    "if ARGV[4] then "
    "  if redis.call('HEXISTS', KEYS[1], n) == 1 then return 0 end "
    "  if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return -1 end "
    "end "
    "redis.call('HSET', KEYS[1], n, ARGV[2]) " LUA_TRIM "return 1";

/* KEYS items order; ARGV node id: 1 when the item was there. */
static const char LUA_RETRACT[] =
    "local f = ARGV[1] .. '\\0' .. ARGV[2] "
    "local old = redis.call('HGET', KEYS[1], f) "
    "if not old then return 0 end "
    "redis.call('HDEL', KEYS[1], f) "
    "redis.call('ZREM', KEYS[2], ARGV[1] .. '\\0' .. string.sub(old, 1, 16) .. '\\0' .. ARGV[2]) "
    "return 1";

/* KEYS nodes items order; ARGV node delete: removes the items, and the node with delete=1. */
static const char LUA_PURGE[] =
    "local n = ARGV[1] "
    "local lo, hi = '[' .. n .. '\\0', '(' .. n .. '\\1' "
    "for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[3], lo, hi)) do "
    "  redis.call('HDEL', KEYS[2], n .. '\\0' .. string.sub(m, #n + 19)) "
    "end "
    "redis.call('ZREMRANGEBYLEX', KEYS[3], lo, hi) "
    "if ARGV[2] == '1' then redis.call('HDEL', KEYS[1], n) end "
    "return 1";

/* KEYS items order; ARGV node max id...: the items (oldest first): those named, else the
 * last `max` (0: all). */
static const char LUA_ITEMS[] =
    "local n, max, out = ARGV[1], tonumber(ARGV[2]), {} "
    "if #ARGV > 2 then "
    "  for i = 3, #ARGV do "
    "    local v = redis.call('HGET', KEYS[1], n .. '\\0' .. ARGV[i]) "
    "    if v then out[#out + 1] = string.sub(v, 17) end "
    "  end "
    "  return out "
    "end "
    "local m = redis.call('ZRANGEBYLEX', KEYS[2], '[' .. n .. '\\0', '(' .. n .. '\\1') "
    "local first = 1 "
    "if max > 0 and #m > max then first = #m - max + 1 end "
    "for i = first, #m do "
    "  local v = redis.call('HGET', KEYS[1], n .. '\\0' .. string.sub(m[i], #n + 19)) "
    "  if v then out[#out + 1] = string.sub(v, 17) end "
    "end "
    "return out";

/* KEYS nodes items order; ARGV node...: node, configuration, last item for each node named
 * that has one. */
static const char LUA_LAST[] =
    "local out = {} "
    "for i = 1, #ARGV do "
    "  local n = ARGV[i] "
    "  local c = redis.call('HGET', KEYS[1], n) "
    "  if c then "
    "    local m = redis.call('ZREVRANGEBYLEX', KEYS[3], '(' .. n .. '\\1', '[' .. n .. '\\0', 'LIMIT', 0, 1) "
    "    if m[1] then "
    "      local v = redis.call('HGET', KEYS[2], n .. '\\0' .. string.sub(m[1], #n + 19)) "
    "      if v then out[#out + 1] = n; out[#out + 1] = c; out[#out + 1] = string.sub(v, 17) end "
    "    end "
    "  end "
    "end "
    "return out";

typedef struct {
    char nodes[STORAGE_KEY_MAX], items[STORAGE_KEY_MAX], order[STORAGE_KEY_MAX],
        account[STORAGE_KEY_MAX];
} pep_keys_t;

static void keys_of(pep_keys_t *k, const char *owner)
{
    storage_key(k->nodes, KEYS_PEP_NODES, owner);
    storage_key(k->items, KEYS_PEP_ITEMS, owner);
    storage_key(k->order, KEYS_PEP_ORDER, owner);
    storage_key(k->account, KEYS_ACCOUNT, owner);
}

/* ---- requests ---- */

typedef enum {
    OP_PUBLISH, OP_RETRACT, OP_ITEMS, OP_CREATE, OP_DELETE, OP_PURGE, OP_CONFIGURE_GET,
    OP_CONFIGURE_SET,
} pep_op_t;

/* One request, from a client (full JID and a copy of its iq) or from a module (no full:
 * HOOK_PEP_PUBLISH), across its Redis round trips. */
typedef struct {
    char *full;          /* the requester, found again by full JID; NULL: a module */
    int remote;          /* the requester is at another domain (no session: answered by
                            address, out through s2s) */
    char *owner;         /* the node owner's bare JID */
    xml_node_t *iq;      /* the request (NULL for a module) */
    xml_node_t *pubsub;  /* the <pubsub/> element (owned when iq is NULL) */
    xml_node_t *el;      /* the operation element inside it */
    pep_op_t op;
    pep_rel_t rel;
    char *node;
    pep_config_t cfg;
    int exists;
    xml_node_t *item;    /* OP_PUBLISH: the <item/> stored, id set */
    int notify;          /* OP_RETRACT: notify the retraction */
} pep_req_t;

static void req_free(pep_req_t *r)
{
    if (!r)
        return;
    if (!r->iq)
        xml_node_free(&r->pubsub);
    xml_node_free(&r->iq);
    xml_node_free(&r->item);
    free(r->full);
    free(r->owner);
    free(r->node);
    free(r);
}

static session_t *req_session(const pep_req_t *r)
{
    return r->full && !r->remote ? session_find_jid(r->full) : NULL;
}

/* Answers with an error; `app` (may be NULL) is a pubsub#errors condition, `feature` its
 * 'feature' attribute (<unsupported/>). A module's request only logs it. */
static void req_error(pep_req_t *r, const char *etype, const char *cond, const char *app,
                      const char *feature)
{
    session_t *s = req_session(r);
    if (!s && !r->remote) {
        if (!r->full)
            log_warn("pep: %s's node '%s': %s%s%s", r->owner, r->node ? r->node : "", cond,
                     app ? " " : "", app ? app : "");
        return;
    }
    xml_node_t *err = stanza_error_reply(r->iq, rt.domain, etype, cond);
    if (strcmp(cond, "item-not-found") == 0) {
        /* XEP-0086's legacy code too: Profanity (0.13 and later) publishes its first OMEMO
         * device list only when the items request for it fails with code 404. */
        xml_node_set_attr(xml_node_child(err, "error", NULL), "code", "404");
    }
    if (app) {
        xml_node_t *e = xml_node_child(err, "error", NULL);
        xml_node_t *a = xml_node_new_child(e, app, NS_PUBSUB_ERRORS);
        if (feature)
            xml_node_set_attr(a, "feature", feature);
    }
    if (s)
        session_deliver_node(s, err);
    else
        session_deliver_jid(r->full, err);
    xml_node_free(&err);
}

static void req_result(pep_req_t *r, xml_node_t *payload)
{
    session_t *s = req_session(r);
    if (s || r->remote) /* a NULL session: by address (deliver.h) */
        session_reply_result(s, r->iq, payload);
    else
        xml_node_free(&payload);
}

static int reply_ok(const redisReply *rep)
{
    return rep && rep->type != REDIS_REPLY_ERROR;
}

static void storage_failed(pep_req_t *r, const redisReply *rep)
{
    if (rep && rep->type == REDIS_REPLY_ERROR)
        log_warn("pep: Redis: %s", rep->str);
    req_error(r, "wait", "internal-server-error", NULL, NULL);
}

/* Sends a script with the owner's keys; on failure answers and frees the request. */
static void req_eval(pep_req_t *r, redisCallbackFn *cb, const char *script, int nkeys,
                     const char **args, const size_t *lens, int nargs)
{
    pep_keys_t k;
    keys_of(&k, r->owner);
    const char *argv[16];
    size_t argl[16];
    const char *keys3[] = {k.nodes, k.items, k.order, k.account};
    /* One key: the nodes; two: the items and their order; three: those three; four:
     * the account's too. */
    int first = nkeys == 2 ? 1 : 0, last = nkeys == 1 ? 1 : nkeys == 4 ? 4 : 3;
    int argc = 0;
    argv[argc] = "EVAL", argl[argc++] = 4;
    argv[argc] = script, argl[argc++] = strlen(script);
    char nk[4];
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[argc] = nk, argl[argc++] = strlen(nk);
    for (int i = first; i < last; i++)
        argv[argc] = keys3[i], argl[argc++] = strlen(keys3[i]);
    for (int i = 0; i < nargs && argc < 16; i++)
        argv[argc] = args[i], argl[argc++] = lens ? lens[i] : strlen(args[i]);
    if (!rt.redis_ready || rt_redis_command_argv(cb, r, argc, argv, argl) != REDIS_OK) {
        storage_failed(r, NULL);
        req_free(r);
    }
}

/* ---- notifications (XEP-0163 section 4, XEP-0060 section 7.1.2) ---- */

typedef struct {
    char *owner, *node;
    pep_access_t access;
    xml_node_t *child; /* what goes inside <event/> */
} pep_notify_t;

/* Sends <message type='headline'><event>child</event></message> from `owner` to `s`. */
static void deliver_event(session_t *s, const char *owner, const xml_node_t *child)
{
    xml_node_t *m = xml_node_new("message", XML_NS_CLIENT);
    char id[40];
    random_id(id, sizeof id, "pep-");
    xml_node_set_attr(m, "from", owner);
    xml_node_set_attr(m, "to", s->full);
    xml_node_set_attr(m, "type", "headline");
    xml_node_set_attr(m, "id", id);
    xml_node_add_child(xml_node_new_child(m, "event", NS_PUBSUB_EVENT), xml_node_copy(child));
    session_deliver_node(s, m);
    xml_node_free(&m);
}

/* Every available session of `u` that asked for `var` (NODE+notify) gets the event. */
static void notify_user(user_t *u, const char *owner, const char *var, const xml_node_t *child)
{
    for (session_t *s = u ? u->sessions : NULL; s; s = s->next)
        if (s->available && caps_has_feature(s, var))
            deliver_event(s, owner, child);
}

static void notify_run(user_t *u, int ok, void *arg)
{
    pep_notify_t *n = arg;
    buf_t var = BUF_INIT;
    buf_printf(&var, "%s+notify", n->node);
    notify_user(u, n->owner, var.data, n->child);
    /* Open and presence nodes: local contacts with a subscription to the owner's presence
     * (XEP-0163 section 4: the owner's roster item with 'from' or 'both'); whitelist nodes
     * only the owner. */
    if (ok && n->access != ACCESS_WHITELIST && u->roster) {
        size_t pos = 0;
        const void *key;
        size_t klen;
        void *val;
        while (hmap_next(u->roster, &pos, &key, &klen, &val)) {
            roster_item_t *it = val;
            if (!it->sub_from || it->hidden || user_blocks(u, it->jid))
                continue;
            notify_user(user_find(it->jid), n->owner, var.data, n->child);
        }
    }
    buf_free(&var);
    xml_node_free(&n->child);
    free(n->owner);
    free(n->node);
    free(n);
}

/* Notifies the interested sessions of `owner` and its contacts; takes `child`. */
static void notify(const char *owner, const char *node, pep_access_t access, xml_node_t *child)
{
    pep_notify_t *n = xcalloc(1, sizeof *n);
    n->owner = xstrdup(owner);
    n->node = xstrdup(node);
    n->access = access;
    n->child = child;
    user_with_roster(owner, notify_run, n);
}

/* <items node='N'>inner</items> for an event; takes inner. */
static xml_node_t *event_items(const char *node, xml_node_t *inner)
{
    xml_node_t *items = xml_node_new("items", NS_PUBSUB_EVENT);
    xml_node_set_attr(items, "node", node);
    xml_node_add_child(items, inner);
    return items;
}

static void set_ns(xml_node_t *el, const char *ns)
{
    free(el->ns);
    el->ns = xstrdup(ns);
}

/* ---- operations after the node lookup ---- */

static void on_published(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pep_req_t *r = privdata;
    redisReply *rep = reply;
    if (!reply_ok(rep)) {
        storage_failed(r, rep);
        req_free(r);
        return;
    }
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer < 0) {
        /* -1: pep_max_nodes; -2: the account is being deleted. */
        req_error(r, "cancel", rep->integer == -1 ? "policy-violation" : "item-not-found", NULL,
                  NULL);
        req_free(r);
        return;
    }
    /* XEP-0060 section 7.1.2: the result names the item id (it may be the server's). */
    xml_node_t *ps = xml_node_new("pubsub", NS_PUBSUB);
    xml_node_t *pub = xml_node_new_child(ps, "publish", NULL);
    xml_node_set_attr(pub, "node", r->node);
    xml_node_set_attr(xml_node_new_child(pub, "item", NULL), "id", xml_node_attr(r->item, "id"));
    req_result(r, ps);
    xml_node_t *ev_item = xml_node_copy(r->item);
    set_ns(ev_item, NS_PUBSUB_EVENT);
    notify(r->owner, r->node, r->cfg.access, event_items(r->node, ev_item));
    hook_run(HOOK_PEP_PUBLISHED, &(hook_ev_t){.to = r->owner, .node = r->node, .st = r->item,
                                              .session = req_session(r)});
    req_free(r);
}

static void do_publish(pep_req_t *r, long nnodes)
{
    const xml_node_t *opts = xml_node_child(r->pubsub, "publish-options", NS_PUBSUB);
    const xml_node_t *x = opts ? xml_node_child(opts, "x", NS_XDATA) : NULL;
    if (!r->exists) {
        if (nnodes >= max_nodes) {
            req_error(r, "cancel", "policy-violation", NULL, NULL);
            req_free(r);
            return;
        }
        pepcfg_default(&r->cfg);
    }
    if (x && pepcfg_preconditions(&r->cfg, r->exists, x, max_items_limit) < 0) {
        req_error(r, "cancel", "conflict", "precondition-not-met", NULL);
        req_free(r);
        return;
    }
    buf_t cfg = BUF_INIT, item = BUF_INIT;
    pepcfg_encode(&r->cfg, &cfg);
    xml_serialize(r->item, XML_NS_CLIENT, &item);
    char keep[24], maxn[24];
    snprintf(keep, sizeof keep, "%ld", pepcfg_keep(&r->cfg, max_items_limit));
    snprintf(maxn, sizeof maxn, "%ld", max_nodes);
    const char *args[] = {r->node, xml_node_attr(r->item, "id"), item.data, cfg.data, keep, maxn};
    size_t lens[] = {strlen(r->node), strlen(args[1]), item.len, cfg.len, strlen(keep),
                     strlen(maxn)};
    req_eval(r, on_published, LUA_PUBLISH, 4, args, lens, 6);
    buf_free(&cfg);
    buf_free(&item);
}

static void on_retracted(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pep_req_t *r = privdata;
    redisReply *rep = reply;
    if (!reply_ok(rep)) {
        storage_failed(r, rep);
    } else if (rep->type != REDIS_REPLY_INTEGER || rep->integer != 1) {
        req_error(r, "cancel", "item-not-found", NULL, NULL); /* XEP-0060 7.2.3.5 */
    } else {
        req_result(r, NULL);
        const char *id = xml_node_attr(r->item, "id");
        if (r->notify) {
            xml_node_t *rt_el = xml_node_new("retract", NS_PUBSUB_EVENT);
            xml_node_set_attr(rt_el, "id", id);
            notify(r->owner, r->node, r->cfg.access, event_items(r->node, rt_el));
        }
        /* Mirrors follow retractions too: st is <retract id='X'/>. */
        xml_node_t *gone = xml_node_new("retract", NS_PUBSUB);
        xml_node_set_attr(gone, "id", id);
        hook_run(HOOK_PEP_PUBLISHED, &(hook_ev_t){.to = r->owner, .node = r->node, .st = gone,
                                                  .session = req_session(r)});
        xml_node_free(&gone);
    }
    req_free(r);
}

static void do_retract(pep_req_t *r)
{
    /* XEP-0060 section 7.2.2.1: notify='true' asks for a notification; without the
     * attribute the node's pubsub#notify_retract decides. */
    const char *n = xml_node_attr(r->el, "notify");
    int want;
    if (!n || pepcfg_parse_bool(n, &want) < 0)
        want = r->cfg.notify_retract;
    r->notify = want;
    const char *args[] = {r->node, xml_node_attr(r->item, "id")};
    req_eval(r, on_retracted, LUA_RETRACT, 2, args, NULL, 2);
}

static void on_items(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pep_req_t *r = privdata;
    redisReply *rep = reply;
    if (!reply_ok(rep) || rep->type != REDIS_REPLY_ARRAY) {
        storage_failed(r, rep);
        req_free(r);
        return;
    }
    xml_node_t *ps = xml_node_new("pubsub", NS_PUBSUB);
    xml_node_t *items = xml_node_new_child(ps, "items", NULL);
    xml_node_set_attr(items, "node", r->node);
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        xml_node_t *it = e->type == REDIS_REPLY_STRING ? stanza_parse(e->str, e->len) : NULL;
        if (it)
            xml_node_add_child(items, it);
    }
    req_result(r, ps);
    req_free(r);
}

static void do_items(pep_req_t *r)
{
    const pep_err_t *e = pepcfg_refuses(&r->cfg, r->rel);
    if (e) {
        req_error(r, e->etype, e->cond, e->app, NULL);
        req_free(r);
        return;
    }
    const char *max = xml_node_attr(r->el, "max_items");
    char *end = NULL;
    long m = max ? strtol(max, &end, 10) : 0;
    if (max && (!*max || *end || m < 1)) {
        req_error(r, "modify", "bad-request", NULL, NULL);
        req_free(r);
        return;
    }
    const char *args[16];
    char mbuf[24];
    snprintf(mbuf, sizeof mbuf, "%ld", m);
    int n = 0;
    args[n++] = r->node;
    args[n++] = mbuf;
    /* XEP-0060 section 6.5.8: particular items by id (up to what one command carries). */
    for (const xml_node_t *c = r->el->children; c && n < 13; c = c->next)
        if (c->name && strcmp(c->name, "item") == 0 && xml_node_attr(c, "id"))
            args[n++] = xml_node_attr(c, "id");
    req_eval(r, on_items, LUA_ITEMS, 2, args, NULL, n);
}

static void on_done(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pep_req_t *r = privdata;
    redisReply *rep = reply;
    if (!reply_ok(rep)) {
        storage_failed(r, rep);
        req_free(r);
        return;
    }
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer == -2) { /* account being deleted */
        req_error(r, "cancel", "item-not-found", NULL, NULL);
        req_free(r);
        return;
    }
    if (r->op == OP_CREATE && rep->type == REDIS_REPLY_INTEGER && rep->integer < 1) {
        /* Created meanwhile (XEP-0060 section 8.1.3), or pep_max_nodes reached. */
        req_error(r, "cancel", rep->integer == 0 ? "conflict" : "policy-violation", NULL, NULL);
        req_free(r);
        return;
    }
    req_result(r, NULL);
    /* XEP-0060 sections 8.4.2 and 8.5.2: subscribers hear of a deletion or a purge. */
    if (r->op == OP_DELETE && r->cfg.notify_delete) {
        xml_node_t *d = xml_node_new("delete", NS_PUBSUB_EVENT);
        xml_node_set_attr(d, "node", r->node);
        notify(r->owner, r->node, r->cfg.access, d);
    } else if (r->op == OP_PURGE) {
        xml_node_t *p = xml_node_new("purge", NS_PUBSUB_EVENT);
        xml_node_set_attr(p, "node", r->node);
        notify(r->owner, r->node, r->cfg.access, p);
    }
    req_free(r);
}

static void do_configure_set(pep_req_t *r)
{
    const xml_node_t *x = xml_node_child(r->el, "x", NS_XDATA);
    const char *type = x ? xml_node_attr(x, "type") : NULL;
    if (type && strcmp(type, "cancel") == 0) { /* XEP-0060 section 8.2.6 */
        req_result(r, NULL);
        req_free(r);
        return;
    }
    char *ft = x ? pepcfg_form_type(x) : xstrdup("");
    int bad = !x || !type || strcmp(type, "submit") != 0 || strcmp(ft, FORM_NODE_CONFIG) != 0 ||
              pepcfg_apply_form(&r->cfg, x, max_items_limit) < 0;
    free(ft);
    if (bad) { /* XEP-0060 section 8.2.5.3 */
        req_error(r, "modify", "not-acceptable", NULL, NULL);
        req_free(r);
        return;
    }
    buf_t cfg = BUF_INIT;
    pepcfg_encode(&r->cfg, &cfg);
    char keep[24];
    snprintf(keep, sizeof keep, "%ld", pepcfg_keep(&r->cfg, max_items_limit));
    const char *args[] = {r->node, cfg.data, keep};
    req_eval(r, on_done, LUA_CONFIGURE, 4, args, NULL, 3);
    buf_free(&cfg);
}

static void do_create(pep_req_t *r, long nnodes)
{
    if (r->exists) { /* XEP-0060 section 8.1.3 */
        req_error(r, "cancel", "conflict", NULL, NULL);
        req_free(r);
        return;
    }
    if (nnodes >= max_nodes) {
        req_error(r, "cancel", "policy-violation", NULL, NULL);
        req_free(r);
        return;
    }
    pepcfg_default(&r->cfg);
    const xml_node_t *conf = xml_node_child(r->pubsub, "configure", NS_PUBSUB);
    const xml_node_t *x = conf ? xml_node_child(conf, "x", NS_XDATA) : NULL;
    if (x && pepcfg_apply_form(&r->cfg, x, max_items_limit) < 0) {
        req_error(r, "modify", "not-acceptable", NULL, NULL);
        req_free(r);
        return;
    }
    buf_t cfg = BUF_INIT;
    pepcfg_encode(&r->cfg, &cfg);
    char maxn[24];
    snprintf(maxn, sizeof maxn, "%ld", max_nodes);
    const char *args[] = {r->node, cfg.data, "1", maxn};
    req_eval(r, on_done, LUA_CONFIGURE, 4, args, NULL, 4);
    buf_free(&cfg);
}

static void on_lookup(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pep_req_t *r = privdata;
    redisReply *rep = reply;
    if (!reply_ok(rep) || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
        storage_failed(r, rep);
        req_free(r);
        return;
    }
    r->exists = rep->element[0]->type == REDIS_REPLY_STRING;
    if (r->exists)
        pepcfg_decode(rep->element[0]->str, &r->cfg);
    long nnodes = rep->element[1]->type == REDIS_REPLY_INTEGER ? (long)rep->element[1]->integer : 0;
    if (r->op == OP_PUBLISH) {
        do_publish(r, nnodes);
        return;
    }
    if (r->op == OP_CREATE) {
        do_create(r, nnodes);
        return;
    }
    if (!r->exists) {
        /* XEP-0060 sections 6.5.9.11, 7.2.3.3, 8.2.3.4, 8.4.3.2, 8.5.3.2. */
        req_error(r, "cancel", "item-not-found", NULL, NULL);
        req_free(r);
        return;
    }
    switch (r->op) {
    case OP_RETRACT:
        do_retract(r);
        break;
    case OP_ITEMS:
        do_items(r);
        break;
    case OP_DELETE: {
        const char *args[] = {r->node, "1"};
        req_eval(r, on_done, LUA_PURGE, 3, args, NULL, 2);
        break;
    }
    case OP_PURGE: {
        const char *args[] = {r->node, "0"};
        req_eval(r, on_done, LUA_PURGE, 3, args, NULL, 2);
        break;
    }
    case OP_CONFIGURE_GET: {
        xml_node_t *ps = xml_node_new("pubsub", NS_PUBSUB_OWNER);
        xml_node_t *c = xml_node_new_child(ps, "configure", NULL);
        xml_node_set_attr(c, "node", r->node);
        xml_node_add_child(c, pepcfg_form(&r->cfg));
        req_result(r, ps);
        req_free(r);
        break;
    }
    case OP_CONFIGURE_SET:
        do_configure_set(r);
        break;
    default:
        req_free(r);
        break;
    }
}

/* ---- reading a request ---- */

/* Checks the <publish/> or <retract/> item before any storage: XEP-0060 sections 7.1.3
 * and 7.2.3. Sets r->item. 0, or -1 (answered). */
static int check_item(pep_req_t *r)
{
    const xml_node_t *item = NULL;
    int nitems = 0;
    for (const xml_node_t *c = r->el->children; c; c = c->next)
        if (c->name && strcmp(c->name, "item") == 0 && nitems++ == 0)
            item = c;
    if (!item || nitems > 1) {
        req_error(r, "modify", "bad-request", item ? "invalid-payload" : "item-required", NULL);
        return -1;
    }
    const char *id = xml_node_attr(item, "id");
    if (r->op == OP_RETRACT) {
        if (!id || !*id) {
            req_error(r, "modify", "bad-request", "item-required", NULL);
            return -1;
        }
    } else {
        int npayload = 0;
        for (const xml_node_t *c = item->children; c; c = c->next)
            npayload += c->name != NULL;
        if (npayload != 1) {
            /* XEP-0060 7.1.3.6 (none; PEP nodes deliver payloads) and 7.1.3.5 (more). */
            req_error(r, "modify", "bad-request", npayload ? "invalid-payload" : "payload-required",
                      NULL);
            return -1;
        }
    }
    if (id && strlen(id) >= PEP_NAME_MAX) {
        req_error(r, "modify", "not-acceptable", NULL, NULL);
        return -1;
    }
    r->item = xml_node_new("item", NS_PUBSUB);
    char gen[40];
    if (!id || !*id) { /* XEP-0060 section 7.1.1: the service makes one up */
        random_id(gen, sizeof gen, "");
        id = gen;
    }
    xml_node_set_attr(r->item, "id", id);
    for (const xml_node_t *c = item->children; c; c = c->next)
        if (c->name)
            xml_node_add_child(r->item, xml_node_copy(c));
    if (r->op == OP_PUBLISH) {
        buf_t b = BUF_INIT;
        xml_serialize(r->item, XML_NS_CLIENT, &b);
        size_t len = b.len;
        buf_free(&b);
        if ((long)len > max_item_size) { /* XEP-0060 section 7.1.3.4 */
            req_error(r, "modify", "not-acceptable", "payload-too-big", NULL);
            return -1;
        }
    }
    return 0;
}

/* Reads the operation and starts it; takes r. */
static void req_start(pep_req_t *r, int set)
{
    if (!r->pubsub->ns || (strcmp(r->pubsub->ns, NS_PUBSUB) != 0 &&
                           strcmp(r->pubsub->ns, NS_PUBSUB_OWNER) != 0)) {
        req_error(r, "modify", "bad-request", NULL, NULL); /* a module's malformed request */
        req_free(r);
        return;
    }
    int owner_ns = strcmp(r->pubsub->ns, NS_PUBSUB_OWNER) == 0;
    r->el = xml_node_first_element(r->pubsub);
    const char *name = r->el ? r->el->name : "";
    const char *unsupported = NULL;
    int ok_type = 1, owner_only = 1;
    if (!owner_ns && strcmp(name, "publish") == 0) {
        r->op = OP_PUBLISH, ok_type = set;
    } else if (!owner_ns && strcmp(name, "retract") == 0) {
        r->op = OP_RETRACT, ok_type = set;
    } else if (!owner_ns && strcmp(name, "items") == 0) {
        r->op = OP_ITEMS, ok_type = !set, owner_only = 0;
    } else if (!owner_ns && strcmp(name, "create") == 0) {
        r->op = OP_CREATE, ok_type = set;
    } else if (owner_ns && strcmp(name, "configure") == 0) {
        r->op = set ? OP_CONFIGURE_SET : OP_CONFIGURE_GET;
    } else if (owner_ns && strcmp(name, "delete") == 0) {
        r->op = OP_DELETE, ok_type = set;
    } else if (owner_ns && strcmp(name, "purge") == 0) {
        r->op = OP_PURGE, ok_type = set;
    } else if (owner_ns && strcmp(name, "default") == 0 && !set) {
        /* XEP-0060 section 8.3: the default configuration. */
        pep_config_t c;
        pepcfg_default(&c);
        xml_node_t *ps = xml_node_new("pubsub", NS_PUBSUB_OWNER);
        xml_node_add_child(xml_node_new_child(ps, "default", NULL), pepcfg_form(&c));
        req_result(r, ps);
        req_free(r);
        return;
    } else if (!owner_ns && (strcmp(name, "subscribe") == 0 || strcmp(name, "unsubscribe") == 0)) {
        /* Subscriptions to PEP nodes are implicit (XEP-0163 section 4: presence and
         * entity capabilities); explicit ones are not done. */
        unsupported = "subscribe";
    } else if (!owner_ns && strcmp(name, "options") == 0) {
        unsupported = "subscription-options";
    } else if (!owner_ns && strcmp(name, "subscriptions") == 0) {
        unsupported = "retrieve-subscriptions";
    } else if (!owner_ns && strcmp(name, "affiliations") == 0) {
        unsupported = "retrieve-affiliations";
    } else if (owner_ns && strcmp(name, "subscriptions") == 0) {
        unsupported = "manage-subscriptions";
    } else if (owner_ns && strcmp(name, "affiliations") == 0) {
        unsupported = "modify-affiliations";
    } else {
        req_error(r, "modify", "bad-request", NULL, NULL);
        req_free(r);
        return;
    }
    if (unsupported) { /* XEP-0060: feature-not-implemented + <unsupported feature/> */
        req_error(r, "cancel", "feature-not-implemented", "unsupported", unsupported);
        req_free(r);
        return;
    }
    if (!ok_type) {
        req_error(r, "modify", "bad-request", NULL, NULL);
        req_free(r);
        return;
    }
    if (owner_only && r->rel != REL_OWNER) {
        /* Only the owner publishes to or manages an account's nodes (XEP-0163 section 3). */
        req_error(r, "auth", "forbidden", NULL, NULL);
        req_free(r);
        return;
    }
    const char *node = xml_node_attr(r->el, "node");
    if (!node || !*node) {
        /* XEP-0060 8.1.2: instant nodes are not done; elsewhere the node is required. */
        if (r->op == OP_CREATE)
            req_error(r, "modify", "not-acceptable", "nodeid-required", NULL);
        else
            req_error(r, "modify", "bad-request", "nodeid-required", NULL);
        req_free(r);
        return;
    }
    if (strlen(node) >= PEP_NAME_MAX) {
        req_error(r, "modify", "not-acceptable", NULL, NULL);
        req_free(r);
        return;
    }
    r->node = xstrdup(node);
    if ((r->op == OP_PUBLISH || r->op == OP_RETRACT) && check_item(r) < 0) {
        req_free(r);
        return;
    }
    if (r->op == OP_PUBLISH) {
        const xml_node_t *opts = xml_node_child(r->pubsub, "publish-options", NS_PUBSUB);
        const xml_node_t *x = opts ? xml_node_child(opts, "x", NS_XDATA) : NULL;
        char *ft = x ? pepcfg_form_type(x) : NULL;
        int bad = opts && (!x || strcmp(ft, FORM_PUBLISH_OPTIONS) != 0);
        free(ft);
        if (bad) { /* XEP-0060 section 7.1.5: the form must be of that FORM_TYPE */
            req_error(r, "modify", "bad-request", "invalid-options", NULL);
            req_free(r);
            return;
        }
    }
    const char *args[] = {r->node};
    req_eval(r, on_lookup, LUA_LOOKUP, 1, args, NULL, 1);
}

static pep_req_t *req_new(const char *full, const char *owner, pep_rel_t rel)
{
    pep_req_t *r = xcalloc(1, sizeof *r);
    r->full = full ? xstrdup(full) : NULL;
    r->owner = xstrdup(owner);
    r->rel = rel;
    return r;
}

/* The owner's roster says whether the requester (local, or at another domain) is
 * subscribed to the owner's presence. */
static pep_rel_t relation(const mod_iq_t *iq)
{
    if (iq->at != MOD_AT_ACCOUNT)
        return REL_OWNER;
    char bare[JID_MAX + 1];
    size_t bl = strcspn(iq->sender, "/");
    if (bl >= sizeof bare)
        return REL_OTHER;
    memcpy(bare, iq->sender, bl);
    bare[bl] = '\0';
    roster_item_t *it = iq->target ? roster_find(iq->target, bare) : NULL;
    return it && it->sub_from && !it->hidden ? REL_SUBSCRIBED : REL_OTHER;
}

static mod_result_t pubsub_iq(mod_iq_t *iq)
{
    pep_req_t *r = req_new(iq->sender, iq->account, relation(iq));
    r->remote = !iq->from;
    r->iq = xml_node_copy(iq->st);
    r->pubsub = xml_node_first_element(r->iq);
    req_start(r, iq->set);
    return MOD_HANDLED;
}

/* ---- disco#items on a bare JID: the nodes the requester may see (XEP-0163 / XEP-0030) ---- */

typedef struct {
    char *full, *owner;
    int remote; /* full is at another domain: answered by address */
    xml_node_t *iq;
    pep_rel_t rel;
} pep_disco_t;

static void on_node_list(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pep_disco_t *d = privdata;
    redisReply *rep = reply;
    session_t *s = d->remote ? NULL : session_find_jid(d->full);
    int there = s || d->remote; /* a NULL session answers by address */
    if (there && (!reply_ok(rep) || rep->type != REDIS_REPLY_ARRAY)) {
        session_reply_error(s, d->iq, "wait", "internal-server-error");
    } else if (there) {
        xml_node_t *q = xml_node_new("query", NS_DISCO_ITEMS);
        for (size_t i = 0; i + 1 < rep->elements; i += 2) {
            if (rep->element[i]->type != REDIS_REPLY_STRING ||
                rep->element[i + 1]->type != REDIS_REPLY_STRING)
                continue;
            pep_config_t c;
            pepcfg_decode(rep->element[i + 1]->str, &c);
            if (pepcfg_refuses(&c, d->rel))
                continue;
            xml_node_t *it = xml_node_new_child(q, "item", NULL);
            xml_node_set_attr(it, "jid", d->owner);
            xml_node_set_attr(it, "node", rep->element[i]->str);
        }
        session_reply_result(s, d->iq, q);
    }
    xml_node_free(&d->iq);
    free(d->full);
    free(d->owner);
    free(d);
}

static mod_result_t disco_items_iq(mod_iq_t *iq)
{
    if (xml_node_attr(iq->payload, "node"))
        return MOD_PASS;
    pep_disco_t *d = xcalloc(1, sizeof *d);
    d->full = xstrdup(iq->sender);
    d->remote = !iq->from;
    d->owner = xstrdup(iq->account);
    d->iq = xml_node_copy(iq->st);
    d->rel = relation(iq);
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_PEP_NODES, iq->account);
    if (!rt.redis_ready || rt_redis_command(on_node_list, d, "HGETALL %s", key) != REDIS_OK)
        on_node_list(NULL, NULL, d);
    return MOD_HANDLED;
}

/* ---- the last items for a session that came online (XEP-0163 section 4.3.4) ---- */

typedef struct {
    char *full, *owner;
    int self;
} pep_last_t;

static void on_last(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pep_last_t *l = privdata;
    redisReply *rep = reply;
    session_t *s = session_find_jid(l->full);
    if (s && reply_ok(rep) && rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 2 < rep->elements; i += 3) {
            redisReply *n = rep->element[i], *c = rep->element[i + 1], *v = rep->element[i + 2];
            if (n->type != REDIS_REPLY_STRING || c->type != REDIS_REPLY_STRING ||
                v->type != REDIS_REPLY_STRING)
                continue;
            pep_config_t cfg;
            pepcfg_decode(c->str, &cfg);
            /* The session's user is the owner or subscribed to the owner's presence. */
            if (cfg.sendlast == SENDLAST_NEVER ||
                pepcfg_refuses(&cfg, l->self ? REL_OWNER : REL_SUBSCRIBED))
                continue;
            xml_node_t *item = stanza_parse(v->str, v->len);
            if (!item)
                continue;
            set_ns(item, NS_PUBSUB_EVENT);
            xml_node_t *items = event_items(n->str, item);
            deliver_event(s, l->owner, items);
            xml_node_free(&items);
        }
    }
    free(l->full);
    free(l->owner);
    free(l);
}

typedef struct {
    char *full;
    char **nodes;
    size_t n;
    unsigned refs; /* caps_run and each contact being loaded */
} pep_caps_t;

static void caps_unref(pep_caps_t *c)
{
    if (--c->refs)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->nodes[i]);
    free(c->nodes);
    free(c->full);
    free(c);
}

static void last_from(const pep_caps_t *c, const char *owner, int self)
{
    pep_keys_t k;
    keys_of(&k, owner);
    const char **argv = xcalloc(c->n + 6, sizeof *argv);
    int argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = LUA_LAST;
    argv[argc++] = "3";
    argv[argc++] = k.nodes;
    argv[argc++] = k.items;
    argv[argc++] = k.order;
    for (size_t i = 0; i < c->n; i++)
        argv[argc++] = c->nodes[i];
    pep_last_t *l = xcalloc(1, sizeof *l);
    l->full = xstrdup(c->full);
    l->owner = xstrdup(owner);
    l->self = self;
    if (!rt.redis_ready || rt_redis_command_argv(on_last, l, argc, argv, NULL) != REDIS_OK)
        on_last(NULL, NULL, l);
    free(argv);
}

/* A contact (the owner of nodes) is loaded: its last items go to the session unless the
 * owner no longer gives it its presence or blocks it (XEP-0191: nothing from a blocker;
 * notify_run skips blocked contacts the same way). */
static void contact_run(user_t *owner, int ok, void *arg)
{
    pep_caps_t *c = arg;
    session_t *s = session_find_jid(c->full);
    const roster_item_t *it = s && ok && owner ? roster_find(owner, s->user->bare) : NULL;
    if (it && it->sub_from && !it->hidden && !user_blocks(owner, s->full))
        last_from(c, owner->bare, 0);
    caps_unref(c);
}

static void caps_run(user_t *u, int ok, void *arg)
{
    pep_caps_t *c = arg;
    session_t *s = session_find_jid(c->full);
    if (s && s->user == u && ok) {
        last_from(c, u->bare, 1);
        size_t pos = 0;
        const void *key;
        size_t klen;
        void *val;
        while (u->roster && hmap_next(u->roster, &pos, &key, &klen, &val)) {
            roster_item_t *it = val;
            const char *at = strchr(it->jid, '@');
            /* Local contacts whose presence the user receives (roster 'to' or 'both'). */
            if (it->sub_to && !it->hidden && at && strcmp(at + 1, rt.domain) == 0) {
                c->refs++;
                user_with_roster(it->jid, contact_run, c);
            }
        }
    }
    caps_unref(c);
}

static mod_result_t on_caps_changed(hook_ev_t *ev)
{
    session_t *s = ev->session;
    size_t n = 0;
    const char *const *f = s && s->available ? caps_features(s, &n) : NULL;
    pep_caps_t *c = xcalloc(1, sizeof *c);
    c->nodes = xcalloc(n ? n : 1, sizeof *c->nodes);
    static const char suffix[] = "+notify";
    for (size_t i = 0; f && i < n; i++) {
        size_t len = strlen(f[i]);
        if (len > sizeof suffix - 1 && strcmp(f[i] + len - (sizeof suffix - 1), suffix) == 0 &&
            len - (sizeof suffix - 1) < PEP_NAME_MAX)
            c->nodes[c->n++] = xstrndup(f[i], len - (sizeof suffix - 1));
    }
    if (!c->n) {
        free(c->nodes);
        free(c);
        return MOD_PASS;
    }
    c->full = xstrdup(s->full);
    c->refs = 1;
    user_with_roster(s->user->bare, caps_run, c);
    return MOD_PASS;
}

/* ---- other modules ---- */

/* HOOK_PEP_PUBLISH: ev->st is an <item/> to publish at ev->node, or a whole <pubsub/>
 * request (publish with publish-options, retract) as the owner's client would send it. */
static mod_result_t on_pep_publish(hook_ev_t *ev)
{
    if (!ev->to || !ev->st)
        return MOD_PASS;
    pep_req_t *r = req_new(NULL, ev->to, REL_OWNER);
    if (ev->st->name && strcmp(ev->st->name, "pubsub") == 0) {
        r->pubsub = xml_node_copy(ev->st);
    } else {
        r->pubsub = xml_node_new("pubsub", NS_PUBSUB);
        xml_node_t *pub = xml_node_new_child(r->pubsub, "publish", NULL);
        xml_node_set_attr(pub, "node", ev->node ? ev->node : "");
        xml_node_t *it = xml_node_add_child(pub, xml_node_copy(ev->st));
        set_ns(it, NS_PUBSUB);
    }
    req_start(r, 1);
    return MOD_HANDLED;
}

/* The account is deleted (account.h): every node and item goes with it. */
static mod_result_t on_user_deleted(hook_ev_t *ev)
{
    account_data_key(ev, KEYS_PEP_NODES);
    account_data_key(ev, KEYS_PEP_ITEMS);
    account_data_key(ev, KEYS_PEP_ORDER);
    return MOD_PASS;
}

static void pep_open(void)
{
    max_nodes = config_int("pep_max_nodes");
    max_items_limit = config_int("pep_max_items");
    max_item_size = config_int("pep_max_item_size");
}

#define ACCOUNTS (MOD_AT_SELF | MOD_AT_ACCOUNT)

static const mod_iq_handler_t iq_handlers[] = {
    /* Another domain's users read an account's nodes too (OMEMO keys, avatars: the access
     * model decides; only the owner, never remote, publishes or manages). */
    {NS_PUBSUB, "pubsub", MOD_GET | MOD_SET, ACCOUNTS | MOD_REMOTE, pubsub_iq},
    {NS_PUBSUB_OWNER, "pubsub", MOD_GET | MOD_SET, ACCOUNTS | MOD_REMOTE, pubsub_iq},
    {NS_DISCO_ITEMS, "query", MOD_GET, ACCOUNTS | MOD_REMOTE, disco_items_iq},
    {0},
};

/* XEP-0060 section 10 features, on the account (XEP-0163 section 6.1: clients look at
 * their own bare JID). */
static const mod_feature_t features[] = {
    {NS_PUBSUB, ACCOUNTS, NULL},
    {NS_PUBSUB "#access-open", ACCOUNTS, NULL},
    {NS_PUBSUB "#access-presence", ACCOUNTS, NULL},
    {NS_PUBSUB "#access-whitelist", ACCOUNTS, NULL},
    {NS_PUBSUB "#auto-create", ACCOUNTS, NULL},
    {NS_PUBSUB "#auto-subscribe", ACCOUNTS, NULL},
    {NS_PUBSUB "#config-node", ACCOUNTS, NULL},
    {NS_PUBSUB "#create-and-configure", ACCOUNTS, NULL},
    {NS_PUBSUB "#create-nodes", ACCOUNTS, NULL},
    {NS_PUBSUB "#delete-nodes", ACCOUNTS, NULL},
    {NS_PUBSUB "#filtered-notifications", ACCOUNTS, NULL},
    {NS_PUBSUB "#item-ids", ACCOUNTS, NULL},
    {NS_PUBSUB "#last-published", ACCOUNTS, NULL},
    {NS_PUBSUB "#multi-items", ACCOUNTS, NULL},
    {NS_PUBSUB "#persistent-items", ACCOUNTS, NULL},
    {NS_PUBSUB "#publish", ACCOUNTS, NULL},
    /* On the domain too: Profanity 0.13 looks only there before it publishes its OMEMO
     * nodes with access_model open (without it they would be presence-only). */
    {NS_PUBSUB "#publish-options", ACCOUNTS | MOD_AT_SERVER, NULL},
    {NS_PUBSUB "#purge-nodes", ACCOUNTS, NULL},
    {NS_PUBSUB "#retract-items", ACCOUNTS, NULL},
    {NS_PUBSUB "#retrieve-default", ACCOUNTS, NULL},
    {NS_PUBSUB "#retrieve-items", ACCOUNTS, NULL},
    {0},
};

static const mod_identity_t identities[] = {
    {"pubsub", "pep", NULL, ACCOUNTS},
    {0},
};

static const mod_hook_t hooks[] = {
    {HOOK_CAPS_CHANGED, 0, on_caps_changed},
    {HOOK_PEP_PUBLISH, 0, on_pep_publish},
    {HOOK_USER_DELETED, 0, on_user_deleted},
    {0},
};

static const config_key_t config[] = {
    CONFIG_INT("pep_max_nodes", "64", 1, 100000, "PEP nodes one account may have (XEP-0163); past it publishing to a new node gets policy-violation"),
    CONFIG_INT("pep_max_items", "256", 1, 100000, "items one PEP node keeps at most; what pubsub#max_items 'max' means"),
    CONFIG_INT("pep_max_item_size", "65536", 256, 16777216, "bytes of one published PEP item; past it not-acceptable with payload-too-big"),
    CONFIG_END,
};

module_t mod_pep = {
    .name = "pep",
    .iq = iq_handlers,
    .features = features,
    .identities = identities,
    .hooks = hooks,
    .config = config,
    .open = pep_open,
};
