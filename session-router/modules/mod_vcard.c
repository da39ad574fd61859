/* XEP-0054 vcard-temp: one vCard element per account in Redis. Anyone may read an
 * account's vCard; only its owner may change it. */
#include <string.h>

#include "account.h"
#include "iqstore.h"
#include "keys.h"
#include "module.h"
#include "modules.h"
#include "storage.h"

#define NS_VCARD "vcard-temp"

static mod_result_t vcard_iq(mod_iq_t *iq)
{
    if (iq->set && iq->at == MOD_AT_ACCOUNT) {
        session_reply_error(iq->from, iq->st, "auth", "forbidden");
        return MOD_HANDLED;
    }
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_VCARD, iq->account);
    if (iq->set) {
        buf_t b = BUF_INIT;
        xml_serialize(iq->payload, XML_NS_CLIENT, &b);
        iqstore_write(iq->from, iq->st, "SET %s %b", key, b.data, b.len);
        buf_free(&b);
    } else {
        /* Nothing stored: an empty vCard (XEP-0054 section 3.1). */
        iqstore_read(iq->from, iq->st, NULL, NULL, xml_node_new("vCard", NS_VCARD), "GET %s",
                     key);
    }
    return MOD_HANDLED;
}

static const mod_iq_handler_t iq_handlers[] = {
    {NS_VCARD, "vCard", MOD_GET | MOD_SET, MOD_AT_SELF | MOD_AT_ACCOUNT | MOD_REMOTE, vcard_iq},
    {0},
};

static const mod_feature_t features[] = {
    {NS_VCARD, MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT, NULL},
    {0},
};

/* The account is deleted (account.h): its vCard goes with it. */
static mod_result_t on_user_deleted(hook_ev_t *ev)
{
    account_data_key(ev, KEYS_VCARD);
    return MOD_PASS;
}

static const mod_hook_t hooks[] = {
    {HOOK_USER_DELETED, 0, on_user_deleted},
    {0},
};

module_t mod_vcard = {
    .name = "vcard",
    .hooks = hooks,
    .iq = iq_handlers,
    .features = features,
};
