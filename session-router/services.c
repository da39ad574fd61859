/* Per-account services the server answers itself: XEP-0054 vcard-temp, XEP-0049 private
 * XML storage (both kept in Redis), XEP-0092 software version, and XEP-0280 message
 * carbons (the enable/disable switch here, the copies in route.c). */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jid.h"
#include "keys.h"
#include "log.h"
#include "router.h"
#include "stanza.h"
#include "util.h"

#define NS_VCARD "vcard-temp"
#define NS_PRIVATE "jabber:iq:private"
#define NS_VERSION "jabber:iq:version"
#define NS_CARBONS "urn:xmpp:carbons:2"
#define SERVER_NAME "xmpp-server"
#define SERVER_VERSION "0.1"

static void reply_error(session_t *s, const xml_node_t *st, const char *etype, const char *cond)
{
    xml_node_t *err = stanza_error_reply(st, rt.domain, etype, cond);
    session_deliver_node(s, err);
    xml_node_free(&err);
}

static void reply_result(session_t *s, const xml_node_t *st, xml_node_t *payload)
{
    xml_node_t *res = stanza_iq_result(st, rt.domain);
    if (payload)
        xml_node_add_child(res, payload);
    session_deliver_node(s, res);
    xml_node_free(&res);
}

/* The account an iq is about: its 'to' (a bare JID) or, without one, the sender's. */
static const char *iq_account(const session_t *from, const xml_node_t *st)
{
    const char *to = xml_node_attr(st, "to");
    return to && strchr(to, '@') ? to : from->user->bare;
}

/* An iq waiting for Redis; the session is found again by full JID. */
typedef struct {
    char *full;
    xml_node_t *iq;
    xml_node_t *empty; /* what to answer when nothing is stored */
} kv_req_t;

static void kv_free(kv_req_t *r)
{
    xml_node_free(&r->iq);
    xml_node_free(&r->empty);
    free(r->full);
    free(r);
}

static void on_stored(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    kv_req_t *r = privdata;
    redisReply *rep = reply;
    session_t *s = session_find_jid(r->full);
    if (s) {
        if (!rep || rep->type == REDIS_REPLY_ERROR)
            reply_error(s, r->iq, "wait", "internal-server-error");
        else
            reply_result(s, r->iq, NULL);
    }
    kv_free(r);
}

static void on_fetched(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    kv_req_t *r = privdata;
    redisReply *rep = reply;
    session_t *s = session_find_jid(r->full);
    if (s) {
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            reply_error(s, r->iq, "wait", "internal-server-error");
        } else {
            xml_node_t *stored = rep->type == REDIS_REPLY_STRING ? stanza_parse(rep->str, rep->len)
                                                                 : NULL;
            xml_node_t *answer;
            if (stored && strcmp(r->empty->name, "query") == 0) {
                /* Private storage: the stored element goes back inside <query/>. */
                answer = xml_node_new("query", NS_PRIVATE);
                xml_node_add_child(answer, stored);
            } else if (stored) {
                answer = stored;
            } else {
                answer = r->empty; /* nothing stored: the empty form */
                r->empty = NULL;
            }
            reply_result(s, r->iq, answer);
        }
    }
    kv_free(r);
}

static kv_req_t *kv_req(session_t *from, const xml_node_t *st, xml_node_t *empty)
{
    kv_req_t *r = xcalloc(1, sizeof *r);
    r->full = xstrdup(from->full);
    r->iq = xml_node_copy(st);
    r->empty = empty;
    return r;
}

static int storage_down(session_t *from, const xml_node_t *st)
{
    if (rt.redis_ready)
        return 0;
    reply_error(from, st, "wait", "internal-server-error");
    return 1;
}

/* XEP-0054: anyone may read a vCard; only its owner may change it. */
static void vcard(session_t *from, const xml_node_t *st, const xml_node_t *q, int set)
{
    const char *account = iq_account(from, st);
    if (set && strcmp(account, from->user->bare) != 0) {
        reply_error(from, st, "auth", "forbidden");
        return;
    }
    if (storage_down(from, st))
        return;
    char key[JID_MAX + 256];
    keys_user(key, sizeof key, rt.redis_prefix, KEYS_VCARD, account);
    if (set) {
        buf_t b = BUF_INIT;
        xml_serialize(q, XML_NS_CLIENT, &b);
        redisAsyncCommand(rt.redis, on_stored, kv_req(from, st, NULL), "SET %s %b", key, b.data,
                          b.len);
        buf_free(&b);
    } else {
        redisAsyncCommand(rt.redis, on_fetched, kv_req(from, st, xml_node_new("vCard", NS_VCARD)),
                          "GET %s", key);
    }
}

/* XEP-0049: one child element, keyed by its name and namespace; the owner only. */
static void private_storage(session_t *from, const xml_node_t *st, const xml_node_t *q, int set)
{
    if (strcmp(iq_account(from, st), from->user->bare) != 0) {
        reply_error(from, st, "cancel", "forbidden");
        return;
    }
    const xml_node_t *el = xml_node_first_element(q);
    /* XEP-0049 section 3: exactly one child, in a namespace of its own. */
    if (!el || !el->ns || strcmp(el->ns, XML_NS_CLIENT) == 0 || strcmp(el->ns, "jabber:server") == 0 ||
        strcmp(el->ns, NS_PRIVATE) == 0) {
        reply_error(from, st, "modify", "not-acceptable");
        return;
    }
    if (storage_down(from, st))
        return;
    char key[JID_MAX + 256];
    keys_user(key, sizeof key, rt.redis_prefix, KEYS_PRIVATE, from->user->bare);
    buf_t field = BUF_INIT;
    buf_printf(&field, "%s %s", el->ns, el->name);
    if (set) {
        buf_t b = BUF_INIT;
        xml_serialize(el, XML_NS_CLIENT, &b);
        redisAsyncCommand(rt.redis, on_stored, kv_req(from, st, NULL), "HSET %s %s %b", key,
                          field.data, b.data, b.len);
        buf_free(&b);
    } else {
        xml_node_t *empty = xml_node_new("query", NS_PRIVATE);
        redisAsyncCommand(rt.redis, on_fetched, kv_req(from, st, empty), "HGET %s %s", key,
                          field.data);
        /* When nothing is stored the asked-for element comes back empty. */
        xml_node_add_child(empty, xml_node_new(el->name, el->ns));
    }
    buf_free(&field);
}

static void version(session_t *from, const xml_node_t *st)
{
    if (config_bool("hide_version")) {
        reply_error(from, st, "cancel", "service-unavailable");
        return;
    }
    xml_node_t *q = xml_node_new("query", NS_VERSION);
    xml_node_add_text(xml_node_new_child(q, "name", NS_VERSION), SERVER_NAME,
                      strlen(SERVER_NAME));
    xml_node_add_text(xml_node_new_child(q, "version", NS_VERSION), SERVER_VERSION,
                      strlen(SERVER_VERSION));
    reply_result(from, st, q);
}

static void carbons(session_t *from, const xml_node_t *st, const xml_node_t *q)
{
    from->carbons = strcmp(q->name, "enable") == 0;
    reply_result(from, st, NULL);
}

int services_handle_iq(session_t *from, const ipc_hdr_t *h, xml_node_t *st, int account)
{
    const xml_node_t *q = xml_node_first_element(st);
    if (!q || !q->ns)
        return 0;
    int set = h->stype == IPC_ST_SET;
    if (strcmp(q->ns, NS_VCARD) == 0 && strcmp(q->name, "vCard") == 0) {
        vcard(from, st, q, set);
        return 1;
    }
    if (strcmp(q->ns, NS_PRIVATE) == 0 && strcmp(q->name, "query") == 0) {
        private_storage(from, st, q, set);
        return 1;
    }
    if (!account && !set && strcmp(q->ns, NS_VERSION) == 0 && strcmp(q->name, "query") == 0) {
        version(from, st);
        return 1;
    }
    if (!account && set && strcmp(q->ns, NS_CARBONS) == 0 &&
        (strcmp(q->name, "enable") == 0 || strcmp(q->name, "disable") == 0)) {
        carbons(from, st, q);
        return 1;
    }
    return 0;
}

/* The disco#info features of these services (the server's, or an account's). */
void services_features(xml_node_t *query, int account)
{
    static const char *const server_features[] = {NS_VCARD, NS_PRIVATE, NS_CARBONS,
                                                  "msgoffline", "urn:xmpp:blocking",
                                                  NS_VERSION};
    static const char *const account_features[] = {NS_VCARD};
    const char *const *list = account ? account_features : server_features;
    size_t n = account ? 1 : sizeof server_features / sizeof server_features[0];
    for (size_t i = 0; i < n; i++) {
        if (!account && strcmp(list[i], NS_VERSION) == 0 && config_bool("hide_version"))
            continue;
        xml_node_t *f = xml_node_new_child(query, "feature", NULL);
        xml_node_set_attr(f, "var", list[i]);
    }
}
