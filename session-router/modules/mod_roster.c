/* jabber:iq:roster (RFC 6121 section 2): roster get with versioning (XEP-0237, RFC 6121
 * 2.6), and roster set to add, update and remove items with the errors of 2.3.3 and 2.5.3.
 * Every change is written to Redis before the client that asked for it is told it
 * succeeded; the store and the pushes are the core's (user.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jid.h"
#include "module.h"
#include "modules.h"
#include "router.h"
#include "stanza.h"
#include "user.h"
#include "util.h"

#define NS_ROSTER "jabber:iq:roster"
#define ROSTER_NAME_MAX 1023 /* bytes of a name or a group (RFC 6121 2.3.3: a server limit) */

static long max_roster_items;

/* A roster set waiting for Redis to acknowledge it before the result goes out. */
typedef struct {
    char *full;
    xml_node_t *iq;
} pending_set_t;

static void on_set_stored(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pending_set_t *p = privdata;
    redisReply *r = reply;
    xml_node_t *res = r && r->type == REDIS_REPLY_ARRAY
                          ? stanza_iq_result(p->iq, rt.domain)
                          : stanza_error_reply(p->iq, rt.domain, "wait", "internal-server-error");
    xml_node_set_attr(res, "from", NULL);
    session_t *s = session_find_jid(p->full);
    if (s)
        session_deliver_node(s, res);
    xml_node_free(&res);
    xml_node_free(&p->iq);
    free(p->full);
    free(p);
}

/* Roster answers carry no 'from': they come from the user's own account (RFC 6121 2.1.4). */
static void reply_error(session_t *s, const xml_node_t *st, const char *etype, const char *cond)
{
    xml_node_t *err = stanza_error_reply(st, rt.domain, etype, cond);
    xml_node_set_attr(err, "from", NULL);
    session_deliver_node(s, err);
    xml_node_free(&err);
}

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
                roster_item_to_xml(rq, it, 0);
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
static void commit_set(session_t *s, user_t *u, const xml_node_t *iq, roster_item_t *it,
                       int removed)
{
    pending_set_t *p = xcalloc(1, sizeof *p);
    p->full = xstrdup(s->full);
    p->iq = xml_node_copy(iq);
    roster_save(u, it, removed, on_set_stored, p);
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
        /* RFC 6121 2.5.2: the subscriptions both ways are cancelled first (the presence
         * module's hook). */
        hook_run(HOOK_ROSTER_REMOVED, &(hook_ev_t){.session = s, .user = u, .item = it});
        commit_set(s, u, iq, it, 1);
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
    if (!bad && (!it || it->hidden) && count_visible(u) >= max_roster_items) {
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

static void roster_loaded(session_t *s, user_t *u, int ok, xml_node_t *iq)
{
    const xml_node_t *q = xml_node_first_element(iq);
    const char *type = xml_node_attr(iq, "type");
    if (!ok)
        reply_error(s, iq, "wait", "internal-server-error");
    else if (strcmp(type, "get") == 0)
        roster_get(s, u, iq, q);
    else
        roster_set(s, u, iq, q);
}

/* RFC 6121 2.1.5 / 2.3.3: only the user's own roster; another account's is forbidden. */
static mod_result_t roster_iq(mod_iq_t *iq)
{
    if (iq->at == MOD_AT_ACCOUNT) {
        reply_error(iq->from, iq->st, "auth", "forbidden");
        return MOD_HANDLED;
    }
    module_iq_with_user(iq, iq->from->user->bare, roster_loaded);
    return MOD_HANDLED;
}

static void roster_open(void)
{
    max_roster_items = config_int("max_roster_items");
}

static const mod_iq_handler_t iq_handlers[] = {
    {NS_ROSTER, "query", MOD_GET | MOD_SET, MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT, roster_iq},
    {0},
};

static const config_key_t config[] = {
    CONFIG_INT("max_roster_items", "1000", 1, 100000, "roster items per user; adding past it gets not-allowed (also the most subscription requests from strangers kept waiting)"),
    CONFIG_END,
};

module_t mod_roster = {
    .config = config,
    .name = "roster",
    .iq = iq_handlers,
    .open = roster_open,
};
