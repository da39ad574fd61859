/* XEP-0092 software version of the server (hide_version answers service-unavailable and
 * drops the feature). */
#include <string.h>

#include "config.h"
#include "module.h"
#include "modules.h"

#define NS_VERSION "jabber:iq:version"
#define SERVER_NAME "xmpp-server"
#define SERVER_VERSION "0.1"

static int hidden;

static int version_shown(void)
{
    return !hidden;
}

static mod_result_t version_iq(mod_iq_t *iq)
{
    if (hidden)
        return MOD_PASS; /* service-unavailable, as if not served at all */
    xml_node_t *q = xml_node_new("query", NS_VERSION);
    xml_node_add_text(xml_node_new_child(q, "name", NS_VERSION), SERVER_NAME,
                      strlen(SERVER_NAME));
    xml_node_add_text(xml_node_new_child(q, "version", NS_VERSION), SERVER_VERSION,
                      strlen(SERVER_VERSION));
    session_reply_result(iq->from, iq->st, q);
    return MOD_HANDLED;
}

static void version_open(void)
{
    hidden = config_bool("hide_version");
}

static const mod_iq_handler_t iq_handlers[] = {
    {NS_VERSION, "query", MOD_GET, MOD_AT_SERVER | MOD_REMOTE, version_iq},
    {0},
};

static const mod_feature_t features[] = {
    {NS_VERSION, MOD_AT_SERVER, version_shown},
    {0},
};

static const config_key_t config[] = {
    CONFIG_BOOL("hide_version", "false", "answer XEP-0092 software version queries with service-unavailable"),
    CONFIG_END,
};

module_t mod_version = {
    .config = config,
    .name = "version",
    .iq = iq_handlers,
    .features = features,
    .open = version_open,
};
