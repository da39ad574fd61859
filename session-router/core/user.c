/* Held users with their roster and blocklist cached from Redis (one MULTI loads the
 * account's existence, the roster, its version and the blocklist), roster versioning
 * (XEP-0237: the version is a counter bumped by every change), and roster pushes to
 * interested resources. */
#include "user.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "deliver.h"
#include "rules.h"
#include "storage.h"
#include "util.h"

#define NS_ROSTER "jabber:iq:roster"
#define SEP '\x1f' /* cannot occur in XML 1.0 text, so it can separate stored fields */

struct user_op {
    user_op_fn fn;
    void *arg;
    user_op_t *next;
};

void roster_item_free(roster_item_t *it)
{
    if (!it)
        return;
    for (int i = 0; i < it->ngroups; i++)
        free(it->groups[i]);
    free(it->groups);
    free(it->name);
    free(it->jid);
    free(it);
}

user_t *user_get(const char *bare)
{
    user_t *u = user_find(bare);
    if (!u) {
        u = xcalloc(1, sizeof *u);
        u->bare = xstrdup(bare);
        hmap_sput(rt.users, u->bare, u);
    }
    u->holds++;
    return u;
}

static void free_item(void *it)
{
    roster_item_free(it);
}

static void roster_clear(user_t *u)
{
    hmap_destroy_all(&u->roster, free_item);
}

void user_release(user_t *u)
{
    u->holds--;
    user_check(u);
}

/* The blocklist cache (XEP-0191), loaded with the roster. */
static void blocklist_clear(user_t *u)
{
    hmap_destroy_all(&u->blocked, NULL);
}

static void blocklist_loaded(user_t *u, const redisReply *members)
{
    blocklist_clear(u);
    u->blocked = hmap_new();
    if (members->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < members->elements; i++)
        if (members->element[i]->type == REDIS_REPLY_STRING)
            hmap_sput(u->blocked, members->element[i]->str, xstrdup(members->element[i]->str));
}

int user_blocks(const user_t *u, const char *jid)
{
    return u && rules_blocklist_match(u->blocked, jid);
}

void user_check(user_t *u)
{
    if (u->sessions || u->holds || u->ops || u->roster_state == 1)
        return;
    hmap_sdel(rt.users, u->bare);
    roster_clear(u);
    blocklist_clear(u);
    free(u->bare);
    free(u);
}

void user_deleted(user_t *u)
{
    roster_clear(u);
    blocklist_clear(u);
    u->roster = hmap_new();
    u->blocked = hmap_new();
    u->roster_ver = 0;
    u->exists = 0;
    u->tombstoned = 1;
}

/* Text form stored in Redis: flags, name and groups separated by SEP. */
static char *item_encode(const roster_item_t *it)
{
    buf_t b = BUF_INIT;
    buf_printf(&b, "%d%d%d%d%d%d", it->sub_to, it->sub_from, it->ask_out, it->pending_in,
               it->approved, it->hidden);
    buf_append(&b, &(char){SEP}, 1);
    if (it->name)
        buf_append_str(&b, it->name);
    for (int i = 0; i < it->ngroups; i++) {
        buf_append(&b, &(char){SEP}, 1);
        buf_append_str(&b, it->groups[i]);
    }
    return buf_steal(&b);
}

static roster_item_t *item_decode(const char *jid, const char *text)
{
    const char *f = text;
    if (strlen(f) < 7 || f[6] != SEP || strspn(f, "01") != 6)
        return NULL;
    roster_item_t *it = xcalloc(1, sizeof *it);
    it->jid = xstrdup(jid);
    it->sub_to = f[0] == '1';
    it->sub_from = f[1] == '1';
    it->ask_out = f[2] == '1';
    it->pending_in = f[3] == '1';
    it->approved = f[4] == '1';
    it->hidden = f[5] == '1';
    const char *p = f + 7;
    const char *e = strchr(p, SEP);
    size_t nl = e ? (size_t)(e - p) : strlen(p);
    if (nl)
        it->name = xstrndup(p, nl);
    while (e) {
        p = e + 1;
        e = strchr(p, SEP);
        size_t gl = e ? (size_t)(e - p) : strlen(p);
        it->groups = xrealloc(it->groups, (size_t)(it->ngroups + 1) * sizeof *it->groups);
        it->groups[it->ngroups++] = xstrndup(p, gl);
    }
    return it;
}

static void run_ops(user_t *u, int ok)
{
    u->holds++; /* an op may release the user; keep it until all have run */
    while (u->ops) {
        user_op_t *op = u->ops;
        u->ops = op->next;
        if (!u->ops)
            u->ops_tail = NULL;
        op->fn(u, ok, op->arg);
        free(op);
    }
    user_release(u);
}

static void on_roster_loaded(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    user_t *u = privdata;
    redisReply *r = reply;
    /* The reply of EXEC: [EXISTS acct, HGETALL roster, GET rosterver, SMEMBERS blocklist,
     * EXISTS tombstone]. */
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 5 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_ARRAY ||
        r->element[4]->type != REDIS_REPLY_INTEGER) {
        log_warn("roster: cannot load the roster of %s", u->bare);
        u->roster_state = 0;
        run_ops(u, 0);
        return;
    }
    roster_clear(u);
    u->roster = hmap_new();
    u->exists = r->element[0]->integer > 0;
    u->tombstoned = r->element[4]->integer > 0;
    redisReply *items = r->element[1];
    for (size_t i = 0; i + 1 < items->elements; i += 2) {
        if (items->element[i]->type != REDIS_REPLY_STRING ||
            items->element[i + 1]->type != REDIS_REPLY_STRING)
            continue;
        roster_item_t *it = item_decode(items->element[i]->str, items->element[i + 1]->str);
        if (!it) {
            log_warn("roster: ignoring a malformed item %s of %s", items->element[i]->str,
                     u->bare);
            continue;
        }
        hmap_sput(u->roster, it->jid, it);
    }
    redisReply *ver = r->element[2];
    u->roster_ver = ver->type == REDIS_REPLY_STRING ? strtoull(ver->str, NULL, 10) : 0;
    blocklist_loaded(u, r->element[3]);
    u->roster_state = 2;
    run_ops(u, 1);
}

void user_with_roster(const char *bare, user_op_fn fn, void *arg)
{
    user_t *u = user_get(bare);
    user_op_t *op = xcalloc(1, sizeof *op);
    op->fn = fn;
    op->arg = arg;
    if (u->ops_tail)
        u->ops_tail->next = op;
    else
        u->ops = op;
    u->ops_tail = op;
    if (u->roster_state == 2) {
        run_ops(u, 1);
    } else if (u->roster_state == 0) {
        char acct[STORAGE_KEY_MAX], roster[STORAGE_KEY_MAX], ver[STORAGE_KEY_MAX];
        char blocks[STORAGE_KEY_MAX], tomb[STORAGE_KEY_MAX];
        storage_key(blocks, KEYS_BLOCKLIST, bare);
        storage_key(tomb, KEYS_TOMBSTONE, bare);
        storage_key(acct, KEYS_ACCOUNT, bare);
        storage_key(roster, KEYS_ROSTER, bare);
        storage_key(ver, KEYS_ROSTER_VER, bare);
        if (!rt.redis_ready) {
            run_ops(u, 0);
        } else {
            u->roster_state = 1;
            rt_redis_command(rt_redis_ignore, NULL, "MULTI");
            rt_redis_command(rt_redis_ignore, NULL, "EXISTS %s", acct);
            rt_redis_command(rt_redis_ignore, NULL, "HGETALL %s", roster);
            rt_redis_command(rt_redis_ignore, NULL, "GET %s", ver);
            rt_redis_command(rt_redis_ignore, NULL, "SMEMBERS %s", blocks);
            rt_redis_command(rt_redis_ignore, NULL, "EXISTS %s", tomb);
            rt_redis_command(on_roster_loaded, u, "EXEC");
        }
    }
    user_release(u);
}

roster_item_t *roster_find(user_t *u, const char *contact)
{
    return u->roster ? hmap_sget(u->roster, contact) : NULL;
}

roster_item_t *roster_add(user_t *u, const char *contact)
{
    roster_item_t *it = xcalloc(1, sizeof *it);
    it->jid = xstrdup(contact);
    it->hidden = 1;
    hmap_sput(u->roster, it->jid, it);
    return it;
}

static const char *sub_name(const roster_item_t *it)
{
    return it->sub_to ? (it->sub_from ? "both" : "to") : (it->sub_from ? "from" : "none");
}

void roster_item_to_xml(xml_node_t *query, const roster_item_t *it, int removed)
{
    xml_node_t *x = xml_node_new_child(query, "item", NULL);
    xml_node_set_attr(x, "jid", it->jid);
    if (removed) {
        xml_node_set_attr(x, "subscription", "remove");
        return;
    }
    if (it->name)
        xml_node_set_attr(x, "name", it->name);
    xml_node_set_attr(x, "subscription", sub_name(it));
    if (it->ask_out)
        xml_node_set_attr(x, "ask", "subscribe");
    if (it->approved)
        xml_node_set_attr(x, "approved", "true");
    for (int i = 0; i < it->ngroups; i++) {
        xml_node_t *g = xml_node_new_child(x, "group", NULL);
        xml_node_add_text(g, it->groups[i], strlen(it->groups[i]));
    }
}

static void push(user_t *u, const roster_item_t *it, int removed)
{
    char ver[24], id[40];
    snprintf(ver, sizeof ver, "%" PRIu64, u->roster_ver);
    for (session_t *s = u->sessions; s; s = s->next) {
        if (!s->interested)
            continue;
        random_id(id, sizeof id, "push");
        xml_node_t *iq = xml_node_new("iq", XML_NS_CLIENT);
        xml_node_set_attr(iq, "to", s->full);
        xml_node_set_attr(iq, "id", id);
        xml_node_set_attr(iq, "type", "set");
        xml_node_t *q = xml_node_new_child(iq, "query", NS_ROSTER);
        xml_node_set_attr(q, "ver", ver);
        roster_item_to_xml(q, it, removed);
        session_deliver_node(s, iq);
        xml_node_free(&iq);
    }
}

/* Writes the item (or its removal) and the new version in one transaction. */
static void store(user_t *u, const roster_item_t *it, int removed, redisCallbackFn *done,
                  void *arg)
{
    char roster[STORAGE_KEY_MAX], ver[STORAGE_KEY_MAX];
    storage_key(roster, KEYS_ROSTER, u->bare);
    storage_key(ver, KEYS_ROSTER_VER, u->bare);
    if (!rt.redis_ready) {
        if (done)
            done(NULL, NULL, arg);
        return;
    }
    rt_redis_command(rt_redis_ignore, NULL, "MULTI");
    if (removed) {
        rt_redis_command(rt_redis_ignore, NULL, "HDEL %s %s", roster, it->jid);
    } else {
        char *text = item_encode(it);
        rt_redis_command(rt_redis_ignore, NULL, "HSET %s %s %s", roster, it->jid, text);
        free(text);
    }
    rt_redis_command(rt_redis_ignore, NULL, "SET %s %" PRIu64, ver, u->roster_ver);
    rt_redis_command(done ? done : rt_redis_ignore, arg, "EXEC");
}

void roster_save(user_t *u, roster_item_t *it, int removed, redisCallbackFn *done, void *arg)
{
    u->roster_ver++;
    store(u, it, removed, done, arg);
    if (!it->hidden)
        push(u, it, removed);
    if (removed) {
        hmap_sdel(u->roster, it->jid);
        roster_item_free(it);
    }
}
