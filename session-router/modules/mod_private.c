/* XEP-0049 private XML storage: one child element per (namespace, name), kept in a Redis
 * hash per account; only the owner may read or write it. */
#include <string.h>

#include "account.h"
#include "iqstore.h"
#include "keys.h"
#include "module.h"
#include "modules.h"
#include "storage.h"

#define NS_PRIVATE "jabber:iq:private"

static mod_result_t private_iq(mod_iq_t *iq)
{
    if (iq->at == MOD_AT_ACCOUNT) {
        session_reply_error(iq->from, iq->st, "cancel", "forbidden");
        return MOD_HANDLED;
    }
    const xml_node_t *el = xml_node_first_element(iq->payload);
    /* XEP-0049 section 3: exactly one child, in a namespace of its own. */
    if (!el || !el->ns || strcmp(el->ns, XML_NS_CLIENT) == 0 ||
        strcmp(el->ns, "jabber:server") == 0 || strcmp(el->ns, NS_PRIVATE) == 0) {
        session_reply_error(iq->from, iq->st, "modify", "not-acceptable");
        return MOD_HANDLED;
    }
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_PRIVATE, iq->from->user->bare);
    buf_t field = BUF_INIT;
    buf_printf(&field, "%s %s", el->ns, el->name);
    if (iq->set) {
        buf_t b = BUF_INIT;
        xml_serialize(el, XML_NS_CLIENT, &b);
        iqstore_write(iq->from, iq->st, "HSET %s %s %b", key, field.data, b.data, b.len);
        buf_free(&b);
    } else {
        /* When nothing is stored the asked-for element comes back empty. */
        xml_node_t *empty = xml_node_new("query", NS_PRIVATE);
        xml_node_add_child(empty, xml_node_new(el->name, el->ns));
        iqstore_read(iq->from, iq->st, "query", NS_PRIVATE, empty, "HGET %s %s", key,
                     field.data);
    }
    buf_free(&field);
    return MOD_HANDLED;
}

static const mod_iq_handler_t iq_handlers[] = {
    {NS_PRIVATE, "query", MOD_GET | MOD_SET, MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT, private_iq},
    {0},
};

static const mod_feature_t features[] = {
    {NS_PRIVATE, MOD_AT_SERVER, NULL},
    {0},
};

/* The account is deleted (account.h): its private XML goes with it. */
static mod_result_t on_user_deleted(hook_ev_t *ev)
{
    account_data_key(ev, KEYS_PRIVATE);
    return MOD_PASS;
}

static const mod_hook_t hooks[] = {
    {HOOK_USER_DELETED, 0, on_user_deleted},
    {0},
};

module_t mod_private = {
    .name = "private",
    .hooks = hooks,
    .iq = iq_handlers,
    .features = features,
};
