/* Rosters (RFC 6121 section 2) in Redis with a cache for held users, roster versioning
 * (XEP-0237: the version is a counter bumped by every change), and roster pushes to
 * interested resources. Every change is written to Redis before the client that asked
 * for it is told it succeeded. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jid.h"
#include "keys.h"
#include "log.h"
#include "router.h"
#include "stanza.h"
#include "util.h"

#define NS_ROSTER "jabber:iq:roster"
#define ROSTER_NAME_MAX 1023  /* bytes of a name or a group (RFC 6121 2.3.3: a server limit) */
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

static void roster_clear(user_t *u)
{
    if (!u->roster)
        return;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(u->roster, &pos, &k, &kl, &v))
        roster_item_free(v);
    hmap_destroy(&u->roster);
}

void user_release(user_t *u)
{
    u->holds--;
    user_check(u);
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
    /* The reply of EXEC: [EXISTS acct, HGETALL roster, GET rosterver, SMEMBERS blocklist]. */
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_ARRAY) {
        log_warn("roster: cannot load the roster of %s", u->bare);
        u->roster_state = 0;
        run_ops(u, 0);
        return;
    }
    roster_clear(u);
    u->roster = hmap_new();
    u->exists = r->element[0]->integer > 0;
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

static void on_ignore(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    (void)reply;
    (void)privdata;
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
        char acct[JID_MAX + 256], roster[JID_MAX + 256], ver[JID_MAX + 256];
        char blocks[JID_MAX + 256];
        keys_user(blocks, sizeof blocks, rt.redis_prefix, KEYS_BLOCKLIST, bare);
        keys_user(acct, sizeof acct, rt.redis_prefix, KEYS_ACCOUNT, bare);
        keys_user(roster, sizeof roster, rt.redis_prefix, KEYS_ROSTER, bare);
        keys_user(ver, sizeof ver, rt.redis_prefix, KEYS_ROSTER_VER, bare);
        if (!rt.redis_ready) {
            run_ops(u, 0);
        } else {
            u->roster_state = 1;
            redisAsyncCommand(rt.redis, on_ignore, NULL, "MULTI");
            redisAsyncCommand(rt.redis, on_ignore, NULL, "EXISTS %s", acct);
            redisAsyncCommand(rt.redis, on_ignore, NULL, "HGETALL %s", roster);
            redisAsyncCommand(rt.redis, on_ignore, NULL, "GET %s", ver);
            redisAsyncCommand(rt.redis, on_ignore, NULL, "SMEMBERS %s", blocks);
            redisAsyncCommand(rt.redis, on_roster_loaded, u, "EXEC");
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

/* The <item/> of a roster result or push. */
static void item_to_xml(xml_node_t *query, const roster_item_t *it, int removed)
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
        unsigned char rnd[8];
        random_bytes(rnd, sizeof rnd);
        snprintf(id, sizeof id, "push%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
                 rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
        xml_node_t *iq = xml_node_new("iq", XML_NS_CLIENT);
        xml_node_set_attr(iq, "to", s->full);
        xml_node_set_attr(iq, "id", id);
        xml_node_set_attr(iq, "type", "set");
        xml_node_t *q = xml_node_new_child(iq, "query", NS_ROSTER);
        xml_node_set_attr(q, "ver", ver);
        item_to_xml(q, it, removed);
        session_deliver_node(s, iq);
        xml_node_free(&iq);
    }
}

/* Writes the item (or its removal) and the new version in one transaction. */
static void store(user_t *u, const roster_item_t *it, int removed, redisCallbackFn *done,
                  void *arg)
{
    char roster[JID_MAX + 256], ver[JID_MAX + 256];
    keys_user(roster, sizeof roster, rt.redis_prefix, KEYS_ROSTER, u->bare);
    keys_user(ver, sizeof ver, rt.redis_prefix, KEYS_ROSTER_VER, u->bare);
    if (!rt.redis_ready) {
        if (done)
            done(NULL, NULL, arg);
        return;
    }
    redisAsyncCommand(rt.redis, on_ignore, NULL, "MULTI");
    if (removed) {
        redisAsyncCommand(rt.redis, on_ignore, NULL, "HDEL %s %s", roster, it->jid);
    } else {
        char *text = item_encode(it);
        redisAsyncCommand(rt.redis, on_ignore, NULL, "HSET %s %s %s", roster, it->jid, text);
        free(text);
    }
    redisAsyncCommand(rt.redis, on_ignore, NULL, "SET %s %" PRIu64, ver, u->roster_ver);
    redisAsyncCommand(rt.redis, done ? done : on_ignore, arg, "EXEC");
}

void roster_save(user_t *u, roster_item_t *it, int removed)
{
    u->roster_ver++;
    store(u, it, removed, NULL, NULL);
    if (!it->hidden)
        push(u, it, removed);
    if (removed) {
        hmap_sdel(u->roster, it->jid);
        roster_item_free(it);
    }
}

/* A roster set waiting for Redis to acknowledge it before the result goes out. */
typedef struct {
    char *full;
    xml_node_t *iq;
} pending_set_t;

static void reply_to(const char *full, xml_node_t *reply)
{
    session_t *s = session_find_jid(full);
    if (s)
        session_deliver_node(s, reply);
}

static void on_set_stored(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pending_set_t *p = privdata;
    redisReply *r = reply;
    xml_node_t *res = r && r->type == REDIS_REPLY_ARRAY
                          ? stanza_iq_result(p->iq, rt.domain)
                          : stanza_error_reply(p->iq, rt.domain, "wait", "internal-server-error");
    xml_node_set_attr(res, "from", NULL);
    reply_to(p->full, res);
    xml_node_free(&res);
    xml_node_free(&p->iq);
    free(p->full);
    free(p);
}

static void reply_error(session_t *s, const xml_node_t *st, const char *etype, const char *cond)
{
    xml_node_t *err = stanza_error_reply(st, rt.domain, etype, cond);
    xml_node_set_attr(err, "from", NULL);
    session_deliver_node(s, err);
    xml_node_free(&err);
}

typedef struct {
    char *full;
    xml_node_t *iq;
} roster_req_t;

static void roster_get(session_t *s, user_t *u, xml_node_t *iq, const xml_node_t *q)
{
    s->interested = 1;
    xml_node_t *res = stanza_iq_result(iq, rt.domain);
    xml_node_set_attr(res, "from", NULL);
    char ver[24];
    snprintf(ver, sizeof ver, "%" PRIu64, u->roster_ver);
    const char *asked = xml_node_attr(q, "ver");
    /* XEP-0237 / RFC 6121 2.6.3: an unchanged roster is answered with an empty result. */
    if (!asked || strcmp(asked, ver) != 0) {
        xml_node_t *rq = xml_node_new_child(res, "query", NS_ROSTER);
        xml_node_set_attr(rq, "ver", ver);
        size_t pos = 0, kl;
        const void *k;
        void *v;
        while (hmap_next(u->roster, &pos, &k, &kl, &v)) {
            roster_item_t *it = v;
            if (!it->hidden)
                item_to_xml(rq, it, 0);
        }
    }
    session_deliver_node(s, res);
    xml_node_free(&res);
}

static int count_visible(user_t *u)
{
    int n = 0;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(u->roster, &pos, &k, &kl, &v))
        n += !((roster_item_t *)v)->hidden;
    return n;
}

/* Stores a client's roster change, answers it once Redis acknowledged it, and pushes it. */
static void commit_set(session_t *s, user_t *u, const xml_node_t *iq, const roster_item_t *it,
                       int removed)
{
    pending_set_t *p = xcalloc(1, sizeof *p);
    p->full = xstrdup(s->full);
    p->iq = xml_node_copy(iq);
    u->roster_ver++;
    store(u, it, removed, on_set_stored, p);
    push(u, it, removed);
}

/* RFC 6121 2.3 (add, update) and 2.5 (delete), with the errors of 2.3.3 and 2.5.3. */
static void roster_set(session_t *s, user_t *u, xml_node_t *iq, const xml_node_t *q)
{
    const xml_node_t *item = NULL;
    int nitems = 0;
    for (const xml_node_t *ch = q->children; ch; ch = ch->next) {
        if (ch->name) {
            nitems++;
            item = ch;
        }
    }
    if (nitems != 1 || strcmp(item->name, "item") != 0) {
        reply_error(s, iq, "modify", "bad-request");
        return;
    }
    const char *jid_attr = xml_node_attr(item, "jid");
    jid_t j;
    char contact[JID_MAX + 1];
    if (!jid_attr || jid_parse(&j, jid_attr) < 0 || jid_full(&j, contact, sizeof contact) < 0) {
        reply_error(s, iq, "modify", "jid-malformed");
        return;
    }
    /* RFC 6121 2.1.2.5: in a roster set, a 'subscription' other than "remove" is ignored
     * (the server owns subscription states). */
    const char *sub = xml_node_attr(item, "subscription");
    int removing = sub && strcmp(sub, "remove") == 0;
    if (strcmp(contact, u->bare) == 0) {
        reply_error(s, iq, "cancel", "not-allowed"); /* the user is not their own contact */
        return;
    }
    roster_item_t *it = roster_find(u, contact);
    if (removing) {
        if (!it || it->hidden) {
            reply_error(s, iq, "cancel", "item-not-found");
            return;
        }
        /* RFC 6121 2.5.2: cancel the subscriptions both ways first. */
        presence_roster_removed(u, it);
        commit_set(s, u, iq, it, 1);
        hmap_sdel(u->roster, it->jid);
        roster_item_free(it);
        return;
    }
    const char *name = xml_node_attr(item, "name");
    if (name && strlen(name) > ROSTER_NAME_MAX) {
        reply_error(s, iq, "modify", "not-acceptable");
        return;
    }
    char **groups = NULL;
    int ngroups = 0, bad = 0;
    const char *cond = NULL;
    for (const xml_node_t *g = item->children; g && !bad; g = g->next) {
        if (!g->name || strcmp(g->name, "group") != 0)
            continue;
        char *text = xml_node_text(g);
        if (!*text || strlen(text) > ROSTER_NAME_MAX) {
            cond = "not-acceptable";
            bad = 1;
        } else {
            for (int i = 0; i < ngroups && !bad; i++)
                if (strcmp(groups[i], text) == 0) {
                    cond = "bad-request";
                    bad = 1;
                }
        }
        if (bad) {
            free(text);
            break;
        }
        groups = xrealloc(groups, (size_t)(ngroups + 1) * sizeof *groups);
        groups[ngroups++] = text;
    }
    const char *etype = "modify";
    if (!bad && (!it || it->hidden) && count_visible(u) >= config_int("max_roster_items")) {
        cond = "not-allowed"; /* the configured roster size is reached */
        etype = "cancel";
        bad = 1;
    }
    if (bad) {
        for (int i = 0; i < ngroups; i++)
            free(groups[i]);
        free(groups);
        reply_error(s, iq, etype, cond);
        return;
    }
    if (!it)
        it = roster_add(u, contact);
    it->hidden = 0;
    free(it->name);
    it->name = name && *name ? xstrdup(name) : NULL;
    for (int i = 0; i < it->ngroups; i++)
        free(it->groups[i]);
    free(it->groups);
    it->groups = groups;
    it->ngroups = ngroups;
    commit_set(s, u, iq, it, 0);
}

static void roster_iq_loaded(user_t *u, int ok, void *arg)
{
    roster_req_t *r = arg;
    session_t *s = session_find_jid(r->full);
    if (s) {
        const char *type = xml_node_attr(r->iq, "type");
        const xml_node_t *q = xml_node_child(r->iq, "query", NS_ROSTER);
        if (!ok)
            reply_error(s, r->iq, "wait", "internal-server-error");
        else if (strcmp(type, "get") == 0)
            roster_get(s, u, r->iq, q);
        else
            roster_set(s, u, r->iq, q);
    }
    xml_node_free(&r->iq);
    free(r->full);
    free(r);
}

void roster_handle_iq(session_t *from, xml_node_t *st)
{
    const char *type = xml_node_attr(st, "type");
    if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
        return;
    roster_req_t *r = xcalloc(1, sizeof *r);
    r->full = xstrdup(from->full);
    r->iq = xml_node_copy(st);
    user_with_roster(from->user->bare, roster_iq_loaded, r);
}
