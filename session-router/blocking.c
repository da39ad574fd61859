/* XEP-0191 blocking command: the blocklist is kept in Redis (a set per user), cached with
 * the roster, changed with <block/> and <unblock/>, pushed to the resources that asked
 * for it, and enforced in route.c and presence.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jid.h"
#include "keys.h"
#include "log.h"
#include "router.h"
#include "stanza.h"
#include "util.h"

#define NS_BLOCKING "urn:xmpp:blocking"

void blocklist_clear(user_t *u)
{
    if (!u->blocked)
        return;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(u->blocked, &pos, &k, &kl, &v))
        free(v);
    hmap_destroy(&u->blocked);
}

void blocklist_loaded(user_t *u, const redisReply *members)
{
    blocklist_clear(u);
    u->blocked = hmap_new();
    if (members->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < members->elements; i++)
        if (members->element[i]->type == REDIS_REPLY_STRING)
            hmap_sput(u->blocked, members->element[i]->str, xstrdup(members->element[i]->str));
}

/* XEP-0191 section 3.2 matches like privacy lists: full JID, bare JID, domain/resource,
 * then domain. */
int blocklist_blocks(const user_t *u, const char *jid)
{
    if (!u || !u->blocked || !hmap_count(u->blocked) || !jid)
        return 0;
    if (hmap_sget(u->blocked, jid))
        return 1;
    char tmp[JID_MAX + 1];
    const char *slash = strchr(jid, '/');
    const char *at = memchr(jid, '@', slash ? (size_t)(slash - jid) : strlen(jid));
    size_t blen = slash ? (size_t)(slash - jid) : strlen(jid);
    if (blen < sizeof tmp) {
        memcpy(tmp, jid, blen);
        tmp[blen] = '\0';
        if (hmap_sget(u->blocked, tmp))
            return 1;
    }
    const char *dom = at ? at + 1 : jid;
    if (slash && snprintf(tmp, sizeof tmp, "%.*s%s", (int)(slash - dom), dom, slash) < (int)sizeof tmp &&
        hmap_sget(u->blocked, tmp))
        return 1;
    size_t dlen = slash ? (size_t)(slash - dom) : strlen(dom);
    if (dlen < sizeof tmp) {
        memcpy(tmp, dom, dlen);
        tmp[dlen] = '\0';
        if (hmap_sget(u->blocked, tmp))
            return 1;
    }
    return 0;
}

static void reply(session_t *s, xml_node_t *node)
{
    session_deliver_node(s, node);
    xml_node_free(&node);
}

static void on_ignore(redisAsyncContext *ac, void *r, void *p)
{
    (void)ac;
    (void)r;
    (void)p;
}

/* Pushes the change (<block/> or <unblock/> with its items) to interested resources. */
static void push(user_t *u, const xml_node_t *change)
{
    for (session_t *s = u->sessions; s; s = s->next) {
        if (!s->blocklist_interested)
            continue;
        xml_node_t *iq = xml_node_new("iq", XML_NS_CLIENT);
        xml_node_set_attr(iq, "to", s->full);
        xml_node_set_attr(iq, "type", "set");
        char id[32];
        unsigned char rnd[6];
        random_bytes(rnd, sizeof rnd);
        snprintf(id, sizeof id, "block%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
                 rnd[4], rnd[5]);
        xml_node_set_attr(iq, "id", id);
        xml_node_add_child(iq, xml_node_copy(change));
        reply(s, iq);
    }
}

typedef struct {
    char *full;
    xml_node_t *iq;
} block_req_t;

/* The JIDs of the <item/> children, prepared; NULL (with *bad set) on a malformed one. */
static char **item_jids(const xml_node_t *el, int *n, int *bad)
{
    char **list = NULL;
    *n = 0;
    *bad = 0;
    for (const xml_node_t *it = el->children; it; it = it->next) {
        if (!it->name || strcmp(it->name, "item") != 0)
            continue;
        jid_t j;
        char full[JID_MAX + 1];
        const char *a = xml_node_attr(it, "jid");
        if (!a || jid_parse(&j, a) < 0 || jid_full(&j, full, sizeof full) < 0) {
            *bad = 1;
            break;
        }
        list = xrealloc(list, (size_t)(*n + 1) * sizeof *list);
        list[(*n)++] = xstrdup(full);
    }
    return list;
}

static void free_list(char **list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* Presence to a newly blocked contact: it no longer sees the user (XEP-0191 3.3). */
static void unavailable_to(user_t *u, const char *jid)
{
    for (session_t *s = u->sessions; s; s = s->next) {
        if (!s->available)
            continue;
        xml_node_t *p = xml_node_new("presence", XML_NS_CLIENT);
        xml_node_set_attr(p, "from", s->full);
        xml_node_set_attr(p, "type", "unavailable");
        xml_node_set_attr(p, "to", jid);
        session_t *t = strchr(jid, '/') ? session_find_jid(jid) : NULL;
        user_t *target = t ? NULL : user_find(jid);
        if (t)
            session_deliver_node(t, p);
        for (session_t *ts = target ? target->sessions : NULL; ts; ts = ts->next)
            if (ts->available)
                session_deliver_node(ts, p);
        xml_node_free(&p);
    }
}

static void blocking_loaded(user_t *u, int ok, void *arg)
{
    block_req_t *r = arg;
    session_t *s = session_find_jid(r->full);
    const xml_node_t *el = xml_node_first_element(r->iq);
    const char *type = xml_node_attr(r->iq, "type");
    if (!s)
        goto done;
    if (!ok || !rt.redis_ready) {
        reply(s, stanza_error_reply(r->iq, rt.domain, "wait", "internal-server-error"));
        goto done;
    }
    char key[JID_MAX + 256];
    keys_user(key, sizeof key, rt.redis_prefix, KEYS_BLOCKLIST, u->bare);
    if (strcmp(el->name, "blocklist") == 0 && strcmp(type, "get") == 0) {
        s->blocklist_interested = 1;
        xml_node_t *res = stanza_iq_result(r->iq, rt.domain);
        xml_node_t *bl = xml_node_new_child(res, "blocklist", NS_BLOCKING);
        size_t pos = 0, kl;
        const void *k;
        void *v;
        while (hmap_next(u->blocked, &pos, &k, &kl, &v))
            xml_node_set_attr(xml_node_new_child(bl, "item", NS_BLOCKING), "jid", v);
        reply(s, res);
        goto done;
    }
    int block = strcmp(el->name, "block") == 0;
    if (strcmp(type, "set") != 0 || (!block && strcmp(el->name, "unblock") != 0)) {
        reply(s, stanza_error_reply(r->iq, rt.domain, "modify", "bad-request"));
        goto done;
    }
    int n, bad;
    char **jids = item_jids(el, &n, &bad);
    /* XEP-0191 3.3: a block needs at least one item; an unblock without items unblocks
     * everyone. */
    if (bad || (block && n == 0)) {
        free_list(jids, n);
        reply(s, stanza_error_reply(r->iq, rt.domain, "modify", bad ? "jid-malformed" : "bad-request"));
        goto done;
    }
    xml_node_t *change = xml_node_new(el->name, NS_BLOCKING);
    if (!block && n == 0) {
        redisAsyncCommand(rt.redis, on_ignore, NULL, "DEL %s", key);
        hmap_t *old = u->blocked;
        u->blocked = hmap_new();
        size_t pos = 0, kl;
        const void *k;
        void *v;
        while (hmap_next(old, &pos, &k, &kl, &v)) {
            presence_send_current(u, v);
            free(v);
        }
        hmap_destroy(&old);
    }
    for (int i = 0; i < n; i++) {
        xml_node_set_attr(xml_node_new_child(change, "item", NS_BLOCKING), "jid", jids[i]);
        if (block) {
            redisAsyncCommand(rt.redis, on_ignore, NULL, "SADD %s %s", key, jids[i]);
            if (!hmap_sget(u->blocked, jids[i])) {
                hmap_sput(u->blocked, jids[i], xstrdup(jids[i]));
                /* Only a contact allowed to see the user's presence is told it is gone. */
                char bare[JID_MAX + 1];
                size_t bl = strcspn(jids[i], "/");
                snprintf(bare, sizeof bare, "%.*s", (int)bl, jids[i]);
                roster_item_t *ri = roster_find(u, bare);
                if (ri && ri->sub_from)
                    unavailable_to(u, jids[i]);
            }
        } else {
            redisAsyncCommand(rt.redis, on_ignore, NULL, "SREM %s %s", key, jids[i]);
            char *was = hmap_sdel(u->blocked, jids[i]);
            if (was)
                presence_send_current(u, jids[i]); /* the contact sees the user again */
            free(was);
        }
    }
    free_list(jids, n);
    xml_node_t *res = stanza_iq_result(r->iq, rt.domain);
    reply(s, res);
    push(u, change);
    xml_node_free(&change);
done:
    xml_node_free(&r->iq);
    free(r->full);
    free(r);
}

int blocking_handle_iq(session_t *from, const ipc_hdr_t *h, xml_node_t *st)
{
    (void)h;
    const xml_node_t *el = xml_node_first_element(st);
    if (!el || !el->ns || strcmp(el->ns, NS_BLOCKING) != 0)
        return 0;
    const char *to = xml_node_attr(st, "to");
    if (to && strcmp(to, from->user->bare) != 0) {
        xml_node_t *err = stanza_error_reply(st, rt.domain, "auth", "forbidden");
        reply(from, err);
        return 1;
    }
    block_req_t *r = xcalloc(1, sizeof *r);
    r->full = xstrdup(from->full);
    r->iq = xml_node_copy(st);
    user_with_roster(from->user->bare, blocking_loaded, r);
    return 1;
}
