/* XEP-0030 service discovery for the server and for accounts' bare JIDs (answered on the
 * account's behalf: identity account/registered, RFC 6121 and XEP-0030 section 3). Every
 * identity and feature comes from the module registry (core/module.h). */
#include "module.h"
#include "modules.h"
#include "service.h"
#include "stanza.h"

static mod_result_t info_iq(mod_iq_t *iq)
{
    if (xml_node_attr(iq->payload, "node")) {
        /* No nodes are published yet (XEP-0030 section 3.2: item-not-found). */
        session_reply_error(iq->from, iq->st, "cancel", "item-not-found");
        return MOD_HANDLED;
    }
    xml_node_t *q = xml_node_new("query", NS_DISCO_INFO);
    module_disco_info(q, iq->at);
    session_reply_result(iq->from, iq->st, q);
    return MOD_HANDLED;
}

static void add_service_item(const char *domain, const char *name, void *ud)
{
    xml_node_t *item = xml_node_new_child(ud, "item", NULL);
    xml_node_set_attr(item, "jid", domain);
    if (name)
        xml_node_set_attr(item, "name", name);
}

static mod_result_t items_iq(mod_iq_t *iq)
{
    /* The server lists its services (XEP-0030 section 4: conference.DOMAIN, ...); an
     * account lists no items (mod_pep, earlier in the list, answers for its nodes). To
     * another domain only those its users can use (multi-user chat, not upload:
     * docs/ARCHITECTURE.md, "Federation in the router"). */
    xml_node_t *q = xml_node_new("query", NS_DISCO_ITEMS);
    if ((iq->at & MOD_AT_SERVER) && !xml_node_attr(iq->payload, "node"))
        service_each(!iq->from, add_service_item, q);
    session_reply_result(iq->from, iq->st, q);
    return MOD_HANDLED;
}

#define EVERYWHERE (MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT)

static const mod_iq_handler_t iq_handlers[] = {
    {NS_DISCO_INFO, "query", MOD_GET, EVERYWHERE | MOD_REMOTE, info_iq},
    {NS_DISCO_ITEMS, "query", MOD_GET, EVERYWHERE | MOD_REMOTE, items_iq},
    {0},
};

static const mod_feature_t features[] = {
    {NS_DISCO_INFO, EVERYWHERE, NULL},
    {NS_DISCO_ITEMS, EVERYWHERE, NULL},
    {0},
};

static const mod_identity_t identities[] = {
    {"server", "im", "xmpp-server", MOD_AT_SERVER},
    {"account", "registered", NULL, MOD_AT_SELF | MOD_AT_ACCOUNT},
    {0},
};

module_t mod_disco = {
    .name = "disco",
    .iq = iq_handlers,
    .features = features,
    .identities = identities,
};
