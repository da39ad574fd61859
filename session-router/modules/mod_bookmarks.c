/* XEP-0411 and XEP-0402's compatibility with XEP-0048 ("#compat"): one set of bookmarks whether a client keeps
 * them in private XML storage (<storage xmlns='storage:bookmarks'/>, XEP-0048 over
 * XEP-0049, served by mod_private) or in the PEP node urn:xmpp:bookmarks:1 (XEP-0402,
 * served by mod_pep). A private set publishes each conference as an item (id = room JID)
 * and retracts those gone, through HOOK_PEP_PUBLISH; a client's publish or retraction on
 * the node (HOOK_PEP_PUBLISHED) rewrites the private copy. The node is whitelist (owner
 * only), keeps every item and never sends its last item by itself (XEP-0402 section 3). */
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "module.h"
#include "modules.h"
#include "stanza.h"
#include "storage.h"
#include "util.h"

#define NS_PRIVATE "jabber:iq:private"
#define NS_STORAGE "storage:bookmarks"
#define NS_BOOKMARKS2 "urn:xmpp:bookmarks:1"
#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_XDATA "jabber:x:data"
/* mod_private's hash field for <storage xmlns='storage:bookmarks'/> ("NS NAME"). */
#define PRIVATE_FIELD NS_STORAGE " storage"

static int is_true(const char *v)
{
    return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static void add_text_child(xml_node_t *parent, const char *name, const xml_node_t *from)
{
    const xml_node_t *c = from ? xml_node_child(from, name, NULL) : NULL;
    if (!c)
        return;
    char *t = xml_node_text(c);
    xml_node_add_text(xml_node_new_child(parent, name, NULL), t, strlen(t));
    free(t);
}

/* XEP-0048 <conference/> -> XEP-0402 <conference/> payload. */
static xml_node_t *to_bookmarks2(const xml_node_t *conf)
{
    xml_node_t *c = xml_node_new("conference", NS_BOOKMARKS2);
    if (xml_node_attr(conf, "name"))
        xml_node_set_attr(c, "name", xml_node_attr(conf, "name"));
    xml_node_set_attr(c, "autojoin", is_true(xml_node_attr(conf, "autojoin")) ? "true" : "false");
    add_text_child(c, "nick", conf);
    add_text_child(c, "password", conf);
    return c;
}

/* XEP-0402 item -> XEP-0048 <conference jid/> in storage:bookmarks. */
static xml_node_t *to_storage(const char *jid, const xml_node_t *conf)
{
    xml_node_t *c = xml_node_new("conference", NS_STORAGE);
    xml_node_set_attr(c, "jid", jid);
    if (conf && xml_node_attr(conf, "name"))
        xml_node_set_attr(c, "name", xml_node_attr(conf, "name"));
    xml_node_set_attr(c, "autojoin",
                      conf && is_true(xml_node_attr(conf, "autojoin")) ? "true" : "false");
    add_text_child(c, "nick", conf);
    add_text_child(c, "password", conf);
    return c;
}

static void add_option(xml_node_t *x, const char *var, const char *value)
{
    xml_node_t *f = xml_node_new_child(x, "field", NULL);
    xml_node_set_attr(f, "var", var);
    xml_node_add_text(xml_node_new_child(f, "value", NULL), value, strlen(value));
}

/* Asks mod_pep to publish one bookmark with the node's XEP-0402 options. */
static void publish_conference(const char *owner, const xml_node_t *conf)
{
    const char *jid = xml_node_attr(conf, "jid");
    if (!jid || !*jid)
        return;
    xml_node_t *ps = xml_node_new("pubsub", NS_PUBSUB);
    xml_node_t *pub = xml_node_new_child(ps, "publish", NULL);
    xml_node_set_attr(pub, "node", NS_BOOKMARKS2);
    xml_node_t *item = xml_node_new_child(pub, "item", NULL);
    xml_node_set_attr(item, "id", jid);
    xml_node_add_child(item, to_bookmarks2(conf));
    xml_node_t *x = xml_node_new_child(xml_node_new_child(ps, "publish-options", NULL), "x",
                                       NS_XDATA);
    xml_node_set_attr(x, "type", "submit");
    xml_node_t *ft = xml_node_new_child(x, "field", NULL);
    xml_node_set_attr(ft, "var", "FORM_TYPE");
    xml_node_set_attr(ft, "type", "hidden");
    const char *form = NS_PUBSUB "#publish-options";
    xml_node_add_text(xml_node_new_child(ft, "value", NULL), form, strlen(form));
    add_option(x, "pubsub#persist_items", "true");
    add_option(x, "pubsub#max_items", "max");
    add_option(x, "pubsub#send_last_published_item", "never");
    add_option(x, "pubsub#access_model", "whitelist");
    if (hook_run(HOOK_PEP_PUBLISH, &(hook_ev_t){.to = owner, .node = NS_BOOKMARKS2, .st = ps}) !=
        MOD_HANDLED)
        log_warn("bookmarks: no PEP service took %s's bookmark", owner);
    xml_node_free(&ps);
}

static void retract_conference(const char *owner, const char *jid)
{
    xml_node_t *ps = xml_node_new("pubsub", NS_PUBSUB);
    xml_node_t *r = xml_node_new_child(ps, "retract", NULL);
    xml_node_set_attr(r, "node", NS_BOOKMARKS2);
    xml_node_set_attr(xml_node_new_child(r, "item", NULL), "id", jid);
    hook_run(HOOK_PEP_PUBLISH, &(hook_ev_t){.to = owner, .node = NS_BOOKMARKS2, .st = ps});
    xml_node_free(&ps);
}

static const xml_node_t *find_conference(const xml_node_t *storage, const char *jid)
{
    for (const xml_node_t *c = storage ? storage->children : NULL; c; c = c->next)
        if (c->name && strcmp(c->name, "conference") == 0 && xml_node_attr(c, "jid") &&
            strcmp(xml_node_attr(c, "jid"), jid) == 0)
            return c;
    return NULL;
}

/* A private set of storage:bookmarks, waiting for the copy it replaces. */
typedef struct {
    char *owner;
    xml_node_t *storage;
} bm_set_t;

static void on_old_storage(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    bm_set_t *b = privdata;
    redisReply *rep = reply;
    xml_node_t *old = rep && rep->type == REDIS_REPLY_STRING ? stanza_parse(rep->str, rep->len)
                                                             : NULL;
    if (rep && rep->type != REDIS_REPLY_ERROR) {
        for (const xml_node_t *c = b->storage->children; c; c = c->next)
            if (c->name && strcmp(c->name, "conference") == 0)
                publish_conference(b->owner, c);
        for (const xml_node_t *c = old ? old->children : NULL; c; c = c->next) {
            const char *jid = c->name && strcmp(c->name, "conference") == 0
                                  ? xml_node_attr(c, "jid") : NULL;
            if (jid && !find_conference(b->storage, jid))
                retract_conference(b->owner, jid);
        }
    }
    xml_node_free(&old);
    xml_node_free(&b->storage);
    free(b->owner);
    free(b);
}

/* jabber:iq:private sets of storage:bookmarks: mirror them, then let mod_private store. */
static mod_result_t private_iq(mod_iq_t *iq)
{
    const xml_node_t *el = xml_node_first_element(iq->payload);
    if (!iq->set || iq->at == MOD_AT_ACCOUNT || !el || !el->ns ||
        strcmp(el->ns, NS_STORAGE) != 0 || strcmp(el->name, "storage") != 0)
        return MOD_PASS;
    bm_set_t *b = xcalloc(1, sizeof *b);
    b->owner = xstrdup(iq->from->user->bare);
    b->storage = xml_node_copy(el);
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_PRIVATE, b->owner);
    /* Queued before mod_private's HSET, so Redis answers with the copy being replaced. */
    if (!rt.redis_ready ||
        rt_redis_command(on_old_storage, b, "HGET %s %s", key, PRIVATE_FIELD) != REDIS_OK) {
        xml_node_free(&b->storage);
        free(b->owner);
        free(b);
    }
    return MOD_PASS;
}

/* A client published or retracted a bookmark: the private copy follows. */
typedef struct {
    char *owner, *id;
    xml_node_t *conf; /* the XEP-0402 payload, NULL for a retraction */
} bm_pub_t;

static void on_copy(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    bm_pub_t *p = privdata;
    redisReply *rep = reply;
    if (rep && rep->type != REDIS_REPLY_ERROR) {
        xml_node_t *st = rep->type == REDIS_REPLY_STRING ? stanza_parse(rep->str, rep->len) : NULL;
        if (!st || strcmp(st->name, "storage") != 0 || !st->ns || strcmp(st->ns, NS_STORAGE) != 0) {
            xml_node_free(&st);
            st = xml_node_new("storage", NS_STORAGE);
        }
        xml_node_t *old = (xml_node_t *)find_conference(st, p->id);
        if (old) {
            xml_node_remove_child(st, old);
            xml_node_free(&old);
        }
        if (p->conf)
            xml_node_add_child(st, to_storage(p->id, p->conf));
        buf_t b = BUF_INIT;
        xml_serialize(st, XML_NS_CLIENT, &b);
        char key[STORAGE_KEY_MAX];
        storage_key(key, KEYS_PRIVATE, p->owner);
        if (rt.redis_ready)
            rt_redis_command(rt_redis_ignore, NULL, "HSET %s %s %b", key, PRIVATE_FIELD, b.data,
                             b.len);
        buf_free(&b);
        xml_node_free(&st);
    }
    xml_node_free(&p->conf);
    free(p->owner);
    free(p->id);
    free(p);
}

static mod_result_t on_pep_published(hook_ev_t *ev)
{
    /* Our own publishes (no session) come from the private copy already. */
    if (!ev->session || !ev->node || strcmp(ev->node, NS_BOOKMARKS2) != 0 || !ev->st)
        return MOD_PASS;
    const char *id = xml_node_attr(ev->st, "id");
    if (!id)
        return MOD_PASS;
    bm_pub_t *p = xcalloc(1, sizeof *p);
    p->owner = xstrdup(ev->to);
    p->id = xstrdup(id);
    if (strcmp(ev->st->name, "item") == 0) {
        const xml_node_t *c = xml_node_child(ev->st, "conference", NS_BOOKMARKS2);
        p->conf = c ? xml_node_copy(c) : xml_node_new("conference", NS_BOOKMARKS2);
    }
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_PRIVATE, p->owner);
    /* Read and write back in the order Redis runs them (a private set in between is
     * mirrored the other way by then). */
    if (!rt.redis_ready ||
        rt_redis_command(on_copy, p, "HGET %s %s", key, PRIVATE_FIELD) != REDIS_OK)
        on_copy(NULL, NULL, p);
    return MOD_PASS;
}

static const mod_iq_handler_t iq_handlers[] = {
    {NS_PRIVATE, "query", MOD_SET, MOD_AT_SERVER | MOD_AT_SELF, private_iq},
    {0},
};

static const mod_feature_t features[] = {
    {NS_BOOKMARKS2 "#compat", MOD_AT_SELF | MOD_AT_ACCOUNT, NULL},
    {0},
};

static const mod_hook_t hooks[] = {
    {HOOK_PEP_PUBLISHED, 0, on_pep_published},
    {0},
};

module_t mod_bookmarks = {
    .name = "bookmarks",
    .iq = iq_handlers,
    .features = features,
    .hooks = hooks,
};
