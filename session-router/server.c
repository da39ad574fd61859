/* What the server answers itself: presence broadcast (RFC 6121 section 4), and iq
 * addressed to the domain (XEP-0199 ping, XEP-0030 service discovery) or to an account's
 * bare JID; anything else gets service-unavailable (RFC 6120 8.3.3.19). */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "router.h"
#include "stanza.h"
#include "util.h"

static void reply_error(session_t *from, const xml_node_t *st, const char *etype,
                        const char *cond)
{
    xml_node_t *err = stanza_error_reply(st, rt.domain, etype, cond);
    session_deliver_node(from, err);
    xml_node_free(&err);
}

static void disco_info(session_t *from, const xml_node_t *st, const xml_node_t *query, int account)
{
    xml_node_t *res = stanza_iq_result(st, rt.domain);
    xml_node_t *q = xml_node_new_child(res, "query", NS_DISCO_INFO);
    const char *node = xml_node_attr(query, "node");
    if (node) {
        /* No nodes are published yet. */
        xml_node_free(&res);
        reply_error(from, st, "cancel", "item-not-found");
        return;
    }
    xml_node_t *id = xml_node_new_child(q, "identity", NULL);
    xml_node_set_attr(id, "category", account ? "account" : "server");
    xml_node_set_attr(id, "type", account ? "registered" : "im");
    if (!account)
        xml_node_set_attr(id, "name", "xmpp-server");
    static const char *const features[] = {NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING};
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++) {
        xml_node_t *f = xml_node_new_child(q, "feature", NULL);
        xml_node_set_attr(f, "var", features[i]);
    }
    services_features(q, account);
    session_deliver_node(from, res);
    xml_node_free(&res);
}

/* The iq payloads the server and accounts answer. */
static void handle_iq(session_t *from, const ipc_hdr_t *h, xml_node_t *st, int account)
{
    if (h->stype != IPC_ST_GET && h->stype != IPC_ST_SET)
        return; /* results and errors addressed to us need no answer */
    const xml_node_t *q = xml_node_first_element(st);
    if (q && q->ns && strcmp(q->ns, "jabber:iq:roster") == 0 && strcmp(q->name, "query") == 0) {
        /* RFC 6121 2.1.5 / 2.3.3: only the user's own roster, addressed to no one or to the
         * user's bare JID. */
        const char *to = xml_node_attr(st, "to");
        if (account && (!to || strcmp(to, from->user->bare) != 0))
            reply_error(from, st, "auth", "forbidden");
        else
            roster_handle_iq(from, st);
        return;
    }
    if (blocking_handle_iq(from, h, st) || services_handle_iq(from, h, st, account))
        return;
    if (q && q->ns && h->stype == IPC_ST_GET) {
        if (strcmp(q->ns, NS_PING) == 0 && strcmp(q->name, "ping") == 0) {
            xml_node_t *res = stanza_iq_result(st, rt.domain);
            session_deliver_node(from, res);
            xml_node_free(&res);
            return;
        }
        if (strcmp(q->ns, NS_DISCO_INFO) == 0 && strcmp(q->name, "query") == 0) {
            disco_info(from, st, q, account);
            return;
        }
        if (strcmp(q->ns, NS_DISCO_ITEMS) == 0 && strcmp(q->name, "query") == 0) {
            xml_node_t *res = stanza_iq_result(st, rt.domain);
            xml_node_new_child(res, "query", NS_DISCO_ITEMS);
            session_deliver_node(from, res);
            xml_node_free(&res);
            return;
        }
    }
    reply_error(from, st, "cancel", "service-unavailable");
}

void server_handle(session_t *from, const ipc_hdr_t *h, xml_node_t *st)
{
    switch (h->kind) {
    case IPC_KIND_PRESENCE:
        if (!xml_node_attr(st, "to"))
            presence_broadcast(from, h, st);
        break;
    case IPC_KIND_IQ:
        handle_iq(from, h, st, 0);
        break;
    default:
        break; /* messages to the server itself: nothing here consumes them */
    }
}

void server_handle_account_iq(session_t *from, const ipc_hdr_t *h, xml_node_t *st)
{
    handle_iq(from, h, st, 1);
}
