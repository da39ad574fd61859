/* XEP-0199 ping: the server answers pings to itself and, on their behalf, to accounts. */
#include "module.h"
#include "modules.h"
#include "stanza.h"

static mod_result_t ping_iq(mod_iq_t *iq)
{
    session_reply_result(iq->from, iq->st, NULL);
    return MOD_HANDLED;
}

static const mod_iq_handler_t iq_handlers[] = {
    {NS_PING, "ping", MOD_GET, MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT | MOD_REMOTE, ping_iq},
    {0},
};

static const mod_feature_t features[] = {
    {NS_PING, MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT, NULL},
    {0},
};

module_t mod_ping = {
    .name = "ping",
    .iq = iq_handlers,
    .features = features,
};
