/* XEP-0012 last activity. To the domain: the server's uptime. To an account's bare JID, for
 * the account itself or a contact allowed to see its presence (section 3 and RFC 6121):
 * seconds='0' while it has an available resource, else the time since its last logout
 * with the status of its last unavailable presence (kept by the presence module for
 * probes, delay-stamped). Queries to a full JID are the client's to answer (its idle time)
 * and are routed to it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iqstore.h"
#include "keys.h"
#include "module.h"
#include "modules.h"
#include "stanza.h"
#include "storage.h"
#include "user.h"
#include "util.h"

#define NS_LAST "jabber:iq:last"

static void reply_seconds(session_t *s, const xml_node_t *st, long long seconds,
                          const char *status)
{
    xml_node_t *q = xml_node_new("query", NS_LAST);
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", seconds < 0 ? 0 : seconds);
    xml_node_set_attr(q, "seconds", buf);
    if (status && *status)
        xml_node_add_text(q, status, strlen(status));
    session_reply_result(s, st, q);
}

/* Seconds since an XEP-0082 UTC stamp "YYYY-MM-DDThh:mm:ssZ"; -1 when it is not one. */
static long long seconds_since(const char *stamp)
{
    struct tm tm = {0};
    const char *end = stamp ? strptime(stamp, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    if (!end || *end)
        return -1;
    return (long long)(time(NULL) - timegm(&tm));
}

/* The stored last unavailable presence (or nothing): seconds since its delay stamp and its
 * status. */
static void answer_last(session_t *s, const xml_node_t *st, const char *data, size_t len,
                        void *arg)
{
    (void)arg;
    xml_node_t *p = data ? stanza_parse(data, len) : NULL;
    const xml_node_t *delay = p ? xml_node_child(p, "delay", "urn:xmpp:delay") : NULL;
    long long secs = seconds_since(delay ? xml_node_attr(delay, "stamp") : NULL);
    if (secs < 0) {
        /* Never logged out since the server kept such records. */
        session_reply_error(s, st, "cancel", "item-not-found");
    } else {
        const xml_node_t *status = xml_node_child(p, "status", NULL);
        char *text = status ? xml_node_text(status) : NULL;
        reply_seconds(s, st, secs, text);
        free(text);
    }
    xml_node_free(&p);
}

static void account_last(session_t *from, user_t *u, int ok, xml_node_t *st)
{
    if (!ok || !rt.redis_ready) {
        session_reply_error(from, st, "wait", "internal-server-error");
        return;
    }
    /* Section 3: only who may see the account's presence learns when it was last there: the
     * account itself, or a contact (here or at another domain: the request's 'from') with
     * a subscription to it. */
    char bare[JID_MAX + 1];
    const char *asker = from ? from->user->bare : xml_node_attr(st, "from");
    size_t bl = asker ? strcspn(asker, "/") : 0;
    if (!asker || bl > JID_MAX) {
        session_reply_error(from, st, "auth", "forbidden");
        return;
    }
    memcpy(bare, asker, bl);
    bare[bl] = '\0';
    roster_item_t *it = roster_find(u, bare);
    if ((!from || u != from->user) && !(it && it->sub_from)) {
        session_reply_error(from, st, "auth", "forbidden");
        return;
    }
    for (session_t *s = u->sessions; s; s = s->next) {
        if (s->available) {
            reply_seconds(from, st, 0, NULL); /* online now */
            return;
        }
    }
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_LAST_UNAVAILABLE, u->bare);
    iqstore_get(from, st, answer_last, NULL, "GET %s", key);
}

static mod_result_t last_iq(mod_iq_t *iq)
{
    if (iq->at == MOD_AT_SERVER) {
        reply_seconds(iq->from, iq->st, (long long)((now_ms() - rt.started_ms) / 1000), NULL);
        return MOD_HANDLED;
    }
    module_iq_with_user(iq, iq->account, account_last);
    return MOD_HANDLED;
}

static const mod_iq_handler_t iq_handlers[] = {
    {NS_LAST, "query", MOD_GET, MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT | MOD_REMOTE, last_iq},
    {0},
};

static const mod_feature_t features[] = {
    {NS_LAST, MOD_AT_SERVER | MOD_AT_SELF | MOD_AT_ACCOUNT, NULL},
    {0},
};

module_t mod_last = {
    .name = "last",
    .iq = iq_handlers,
    .features = features,
};
