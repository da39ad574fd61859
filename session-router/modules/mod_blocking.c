/* XEP-0191 blocking command: the blocklist is kept in Redis (a set per user) and cached
 * with the roster (core/user.c), changed with <block/> and <unblock/>, pushed to the
 * resources that asked for it, and enforced here on every stanza routed between local
 * users (XEP-0191 section 3.3) and in the presence and offline modules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "jid.h"
#include "keys.h"
#include "log.h"
#include "module.h"
#include "modules.h"
#include "remote.h"
#include "route.h"
#include "stanza.h"
#include "storage.h"
#include "user.h"
#include "util.h"

#define NS_BLOCKING "urn:xmpp:blocking"
/* A session that asked for the blocklist gets block/unblock pushes (its slot is set). */
#define INTERESTED(s) (module_slot(s, mod_blocking) != NULL)

static void reply(session_t *s, xml_node_t *node)
{
    session_deliver_node(s, node);
    xml_node_free(&node);
}

/* Pushes the change (<block/> or <unblock/> with its items) to interested resources. */
static void push(user_t *u, const xml_node_t *change)
{
    for (session_t *s = u->sessions; s; s = s->next) {
        if (!INTERESTED(s))
            continue;
        xml_node_t *iq = xml_node_new("iq", XML_NS_CLIENT);
        xml_node_set_attr(iq, "to", s->full);
        xml_node_set_attr(iq, "type", "set");
        char id[32];
        random_id(id, sizeof id, "block");
        xml_node_set_attr(iq, "id", id);
        xml_node_add_child(iq, xml_node_copy(change));
        reply(s, iq);
    }
}

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

/* The user's current presence to a contact subscribed to it (after an unblock). */
static void send_current(user_t *u, const char *jid)
{
    roster_item_t *it = roster_find(u, jid);
    if (it && it->sub_from)
        session_send_presence(u, jid, 0);
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
        if (remote_jid(jid)) { /* a contact at another domain: out through s2s */
            session_deliver_jid(jid, p);
            xml_node_free(&p);
            continue;
        }
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

static void blocking_loaded(session_t *s, user_t *u, int ok, xml_node_t *iq)
{
    const xml_node_t *el = xml_node_first_element(iq);
    const char *type = xml_node_attr(iq, "type");
    if (!ok || !rt.redis_ready) {
        reply(s, stanza_error_reply(iq, rt.domain, "wait", "internal-server-error"));
        return;
    }
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_BLOCKLIST, u->bare);
    if (strcmp(el->name, "blocklist") == 0 && strcmp(type, "get") == 0) {
        module_slot(s, mod_blocking) = s; /* any non-NULL value: interested */
        xml_node_t *res = stanza_iq_result(iq, rt.domain);
        xml_node_t *bl = xml_node_new_child(res, "blocklist", NS_BLOCKING);
        size_t pos = 0, kl;
        const void *k;
        void *v;
        while (hmap_next(u->blocked, &pos, &k, &kl, &v))
            xml_node_set_attr(xml_node_new_child(bl, "item", NS_BLOCKING), "jid", v);
        reply(s, res);
        return;
    }
    int block = strcmp(el->name, "block") == 0;
    if (strcmp(type, "set") != 0 || (!block && strcmp(el->name, "unblock") != 0)) {
        reply(s, stanza_error_reply(iq, rt.domain, "modify", "bad-request"));
        return;
    }
    int n, bad;
    char **jids = item_jids(el, &n, &bad);
    /* XEP-0191 3.3: a block needs at least one item; an unblock without items unblocks
     * everyone. */
    if (bad || (block && n == 0)) {
        free_list(jids, n);
        reply(s, stanza_error_reply(iq, rt.domain, "modify", bad ? "jid-malformed" : "bad-request"));
        return;
    }
    xml_node_t *change = xml_node_new(el->name, NS_BLOCKING);
    if (!block && n == 0) {
        rt_redis_command(rt_redis_ignore, NULL, "DEL %s", key);
        hmap_t *old = u->blocked;
        u->blocked = hmap_new();
        size_t pos = 0, kl;
        const void *k;
        void *v;
        while (hmap_next(old, &pos, &k, &kl, &v)) {
            send_current(u, v);
            free(v);
        }
        hmap_destroy(&old);
    }
    for (int i = 0; i < n; i++) {
        xml_node_set_attr(xml_node_new_child(change, "item", NS_BLOCKING), "jid", jids[i]);
        if (block) {
            rt_redis_command(rt_redis_ignore, NULL, "SADD %s %s", key, jids[i]);
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
            rt_redis_command(rt_redis_ignore, NULL, "SREM %s %s", key, jids[i]);
            char *was = hmap_sdel(u->blocked, jids[i]);
            if (was)
                send_current(u, jids[i]); /* the contact sees the user again */
            free(was);
        }
    }
    free_list(jids, n);
    xml_node_t *res = stanza_iq_result(iq, rt.domain);
    reply(s, res);
    push(u, change);
    xml_node_free(&change);
}

/* XEP-0191 section 3: the user's own blocklist, addressed to no one, to the user's bare
 * JID or to the domain; another account's is forbidden. */
static mod_result_t blocking_iq(mod_iq_t *iq)
{
    if (iq->at == MOD_AT_ACCOUNT) {
        reply(iq->from, stanza_error_reply(iq->st, rt.domain, "auth", "forbidden"));
        return MOD_HANDLED;
    }
    module_iq_with_user(iq, iq->from->user->bare, blocking_loaded);
    return MOD_HANDLED;
}

/* XEP-0191 section 3.3: nothing goes to a JID the sender blocks (the sender learns why),
 * and nothing from a blocked JID reaches the user (messages and iq requests get
 * service-unavailable, as if the user were not there; presence is dropped). The sender is a
 * client (session) or, with no session, a JID at another domain; the recipient a local
 * address, or another domain's (nobody here to check for). */
static mod_result_t on_stanza_out(hook_ev_t *ev)
{
    session_t *from = ev->session;
    const ipc_stanza_t *h = ev->msg;
    const char *sender = from ? from->full : ev->from;
    if (from && user_blocks(from->user, ev->to)) {
        if (h->kind == IPC_KIND_PRESENCE || h->stype == IPC_ST_ERROR || h->stype == IPC_ST_RESULT)
            return MOD_HANDLED;
        xml_node_t *st = stanza_parse(ev->payload, ev->len);
        if (st) {
            xml_node_t *err = stanza_error_reply(st, rt.domain, "cancel", "not-acceptable");
            xml_node_t *e = xml_node_child(err, "error", NULL);
            xml_node_new_child(e, "blocked", "urn:xmpp:blocking:errors");
            reply(from, err);
            xml_node_free(&st);
        }
        return MOD_HANDLED;
    }
    char bare[JID_MAX + 1];
    size_t bl = strcspn(ev->to, "/");
    if (bl >= sizeof bare)
        return MOD_PASS;
    memcpy(bare, ev->to, bl);
    bare[bl] = '\0';
    if (!sender || remote_jid(ev->to) || !user_blocks(user_find(bare), sender))
        return MOD_PASS;
    if (h->kind != IPC_KIND_PRESENCE && h->stype != IPC_ST_HEADLINE && h->stype != IPC_ST_ERROR &&
        h->stype != IPC_ST_RESULT && h->stype != IPC_ST_GROUPCHAT)
        route_bounce(from, h, ev->payload, ev->len, "cancel", "service-unavailable");
    return MOD_HANDLED;
}

static mod_result_t on_resync(hook_ev_t *ev)
{
    module_slot(ev->session, mod_blocking) =
        ev->resync->flags & IPC_RESYNC_BLOCKLIST ? (void *)ev->session : NULL;
    return MOD_PASS;
}

static mod_result_t on_describe(hook_ev_t *ev)
{
    if (module_slot(ev->session, mod_blocking))
        ev->desc->flags |= IPC_RESYNC_BLOCKLIST;
    return MOD_PASS;
}

/* The same for a stanza whose recipient had to be loaded first (section 3.3 holds whether
 * the user is online or not): iq requests get service-unavailable, presence vanishes. */
static mod_result_t on_stanza_in(hook_ev_t *ev)
{
    if (!user_blocks(ev->user, ev->from))
        return MOD_PASS;
    /* A client is answered through its session, a sender at another domain by address. */
    if ((ev->session || remote_jid(ev->from)) && ev->msg->kind == IPC_KIND_IQ &&
        (ev->msg->stype == IPC_ST_GET || ev->msg->stype == IPC_ST_SET))
        session_reply_error(ev->session, ev->st, "cancel", "service-unavailable");
    return MOD_HANDLED;
}

static const mod_iq_handler_t iq_handlers[] = {
    {NS_BLOCKING, "blocklist", MOD_GET | MOD_SET, MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT, blocking_iq},
    {NS_BLOCKING, "block", MOD_GET | MOD_SET, MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT, blocking_iq},
    {NS_BLOCKING, "unblock", MOD_GET | MOD_SET, MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT, blocking_iq},
    {0},
};

static const mod_feature_t features[] = {
    {NS_BLOCKING, MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT, NULL},
    {0},
};

/* Blocking decides before anything else sees a stanza (carbons, delivery, storage). */
/* The account is deleted (account.h): its blocklist goes with it. */
static mod_result_t on_user_deleted(hook_ev_t *ev)
{
    account_data_key(ev, KEYS_BLOCKLIST);
    return MOD_PASS;
}

static const mod_hook_t hooks[] = {
    {HOOK_USER_DELETED, 0, on_user_deleted},
    {HOOK_STANZA_OUT, 100, on_stanza_out},
    {HOOK_STANZA_IN, 100, on_stanza_in},
    {HOOK_SESSION_RESYNC, 0, on_resync},
    {HOOK_SESSION_DESCRIBE, 0, on_describe},
    {0},
};

module_t mod_blocking = {
    .name = "blocking",
    .iq = iq_handlers,
    .features = features,
    .hooks = hooks,
    .wants_slot = 1,
};
