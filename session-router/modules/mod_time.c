/* XEP-0202 entity time: the server's current time in UTC. */
#include <string.h>
#include <time.h>

#include "module.h"
#include "modules.h"

#define NS_TIME "urn:xmpp:time"

static mod_result_t time_iq(mod_iq_t *iq)
{
    char utc[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(utc, sizeof utc, "%Y-%m-%dT%H:%M:%SZ", &tm);
    xml_node_t *t = xml_node_new("time", NS_TIME);
    /* The server keeps UTC: its offset is zero (XEP-0082 time zone format). */
    xml_node_add_text(xml_node_new_child(t, "tzo", NS_TIME), "+00:00", 6);
    xml_node_add_text(xml_node_new_child(t, "utc", NS_TIME), utc, strlen(utc));
    session_reply_result(iq->from, iq->st, t);
    return MOD_HANDLED;
}

static const mod_iq_handler_t iq_handlers[] = {
    {NS_TIME, "time", MOD_GET, MOD_AT_SERVER | MOD_REMOTE, time_iq},
    {0},
};

static const mod_feature_t features[] = {
    {NS_TIME, MOD_AT_SERVER, NULL},
    {0},
};

module_t mod_time = {
    .name = "time",
    .iq = iq_handlers,
    .features = features,
};
