/* Pure protocol decisions (rules.h). Each function follows the section it cites; the unit
 * tests (tests/unit/check_rules.c) walk the same tables. */
#include "rules.h"

#include <stdio.h>
#include <string.h>

#include "jid.h"
#include "xml.h"
#include "stanza.h"

unsigned rules_sub_outbound(sub_state_t *s, ipc_stype_t t)
{
    switch (t) {
    case IPC_ST_SUBSCRIBE:
        /* A.2.1: Pending Out is set unless the user is subscribed already; a hidden item
         * (kept for Pending In) becomes visible. */
        if (!s->exists) {
            s->exists = 1;
            s->hidden = 1;
        }
        if (s->hidden || (!s->to && !s->ask_out)) {
            s->hidden = 0;
            if (!s->to)
                s->ask_out = 1;
            return SUB_SAVE | SUB_ROUTE;
        }
        return SUB_ROUTE;
    case IPC_ST_SUBSCRIBED:
        /* A.2.2: approves a pending request. Without one there is nothing to route; where
         * the contact is not subscribed yet it is a pre-approval (3.4), kept. */
        if (s->exists && s->pending_in) {
            s->from = 1;
            s->pending_in = 0;
            s->hidden = 0;
            return SUB_SAVE | SUB_ROUTE;
        }
        if (s->exists && s->from)
            return 0;
        if (!s->exists) {
            s->exists = 1;
            s->hidden = 1;
        }
        if (!s->approved || s->hidden) {
            s->approved = 1;
            s->hidden = 0;
            return SUB_SAVE;
        }
        return 0;
    case IPC_ST_UNSUBSCRIBE:
        /* A.2.3: routed only when it cancels something. */
        if (s->exists && (s->to || s->ask_out)) {
            s->to = 0;
            s->ask_out = 0;
            return SUB_SAVE | SUB_ROUTE;
        }
        return 0;
    case IPC_ST_UNSUBSCRIBED:
        /* A.2.4: routed only when it cancels something; it also cancels a pre-approval
         * (3.4), which the contact never heard of. */
        if (s->exists && (s->from || s->pending_in)) {
            s->from = 0;
            s->pending_in = 0;
            s->approved = 0;
            return (s->hidden ? SUB_REMOVE : SUB_SAVE) | SUB_ROUTE;
        }
        if (s->exists && s->approved) {
            s->approved = 0;
            return s->hidden ? SUB_REMOVE : SUB_SAVE;
        }
        return 0;
    default:
        return 0;
    }
}

unsigned rules_sub_inbound(sub_state_t *s, ipc_stype_t t)
{
    switch (t) {
    case IPC_ST_SUBSCRIBE:
        /* A.3.1 and 3.1.3: already subscribed, or pre-approved: the server answers for
         * the user; already pending: not delivered again. */
        if (s->exists && s->from)
            return SUB_AUTO_SUBSCRIBED;
        if (s->exists && s->approved) {
            s->from = 1;
            s->approved = 0;
            s->pending_in = 0;
            return SUB_SAVE | SUB_AUTO_SUBSCRIBED;
        }
        if (s->exists && s->pending_in)
            return 0;
        if (!s->exists) {
            s->exists = 1;
            s->hidden = 1;
        }
        s->pending_in = 1;
        return SUB_SAVE | SUB_DELIVER;
    case IPC_ST_SUBSCRIBED:
        /* A.3.2: only an outstanding request is approved; then the user gets the
         * contact's presence (3.1.5). */
        if (!s->exists || !s->ask_out)
            return 0;
        s->to = 1;
        s->ask_out = 0;
        return SUB_SAVE | SUB_DELIVER | SUB_PRESENCE_TO_USER;
    case IPC_ST_UNSUBSCRIBE:
        /* A.3.3: the former subscriber no longer sees the user (3.3.3). */
        if (!s->exists || (!s->from && !s->pending_in))
            return 0;
        s->from = 0;
        s->pending_in = 0;
        return (s->hidden && !s->to && !s->ask_out ? SUB_REMOVE : SUB_SAVE) | SUB_DELIVER |
               SUB_UNAVAILABLE_TO_SENDER;
    case IPC_ST_UNSUBSCRIBED:
        /* A.3.4 */
        if (!s->exists || (!s->to && !s->ask_out))
            return 0;
        s->to = 0;
        s->ask_out = 0;
        return SUB_SAVE | SUB_DELIVER | SUB_UNAVAILABLE_TO_USER;
    default:
        return 0;
    }
}

int rules_bare_targets(const rules_res_t *res, size_t n, ipc_stype_t t, int *chosen)
{
    int best = -1, count = 0;
    for (size_t i = 0; i < n; i++)
        if (res[i].available && res[i].priority >= 0 && res[i].priority > best)
            best = res[i].priority;
    for (size_t i = 0; i < n; i++) {
        chosen[i] = best >= 0 && res[i].available && res[i].priority >= 0 &&
                    (t == IPC_ST_HEADLINE || res[i].priority == best);
        count += chosen[i];
    }
    return count;
}

rules_fallback_t rules_bare_fallback(ipc_stype_t t)
{
    switch (t) {
    case IPC_ST_ERROR:    /* 8.5.2.1.1 / 8.5.2.2.1: silently ignored */
    case IPC_ST_HEADLINE: /* 8.5.2.2.1: silently ignored */
        return RULE_DROP;
    case IPC_ST_GROUPCHAT: /* 8.5.2.1.1: no such service here */
        return RULE_BOUNCE;
    default: /* normal and chat: offline storage, or the sender learns it failed */
        return RULE_OFFLINE;
    }
}

rules_fallback_t rules_full_fallback(ipc_kind_t kind, ipc_stype_t t)
{
    switch (kind) {
    case IPC_KIND_MESSAGE:
        /* 8.5.3.2.1: chat falls back to the bare JID; groupchat is refused; normal,
         * headline and error are silently ignored. */
        return t == IPC_ST_CHAT ? RULE_TO_BARE : t == IPC_ST_GROUPCHAT ? RULE_BOUNCE : RULE_DROP;
    case IPC_KIND_PRESENCE:
        /* 8.5.3.2.2 / 3.1.2: subscriptions are handled as if sent to the bare JID, and
         * directed presence is remembered even if that resource is gone. */
        return RULE_TO_BARE;
    case IPC_KIND_IQ:
        /* 8.5.3.2.3: requests get service-unavailable, responses are ignored. */
        return t == IPC_ST_GET || t == IPC_ST_SET ? RULE_BOUNCE : RULE_DROP;
    default:
        return RULE_DROP;
    }
}

#define NS_MUC_USER_TEXT "http://jabber.org/protocol/muc#user"

int rules_carbon_eligible(ipc_kind_t kind, ipc_stype_t t, const char *payload, size_t len)
{
    if (kind != IPC_KIND_MESSAGE)
        return 0;
    if (t != IPC_ST_CHAT &&
        !((t == IPC_ST_NONE || t == IPC_ST_NORMAL) && memmem(payload, len, "<body", 5)))
        return 0;
    /* Only parse when one of the excluding namespaces could be there at all. */
    if (memmem(payload, len, "urn:xmpp:carbons:2", 18) || memmem(payload, len, "urn:xmpp:hints", 14) ||
        (t == IPC_ST_CHAT && memmem(payload, len, NS_MUC_USER_TEXT, sizeof NS_MUC_USER_TEXT - 1))) {
        xml_node_t *st = stanza_parse(payload, len);
        /* A private message in a room (XEP-0045 7.5, marked with muc#user): the room sends
         * it to every resource of the occupant in the room itself, and the user's other
         * resources are not in it (XEP-0280 section 6). */
        int excluded = !st || xml_node_child(st, "private", "urn:xmpp:carbons:2") ||
                       xml_node_child(st, "no-copy", "urn:xmpp:hints") ||
                       xml_node_child(st, "received", "urn:xmpp:carbons:2") ||
                       xml_node_child(st, "sent", "urn:xmpp:carbons:2") ||
                       (t == IPC_ST_CHAT && xml_node_child(st, "x", NS_MUC_USER_TEXT));
        xml_node_free(&st);
        return !excluded;
    }
    return 1;
}

/* An urgent message by its own children (rules_csi_class). */
static int csi_message_urgent(const xml_node_t *m)
{
    const char *type = xml_node_attr(m, "type");
    if (type && strcmp(type, "error") == 0)
        return 1; /* a delivery failure (RFC 6120 8.3) */
    for (const xml_node_t *ch = m->children; ch; ch = ch->next) {
        if (!ch->name || !ch->ns)
            continue;
        const char *n = ch->name, *ns = ch->ns;
        if (strcmp(ns, XML_NS_CLIENT) == 0 &&
            (strcmp(n, "body") == 0 || strcmp(n, "subject") == 0))
            return 1;
        /* XEP-0384 OMEMO (the siacs namespace most clients use, and OMEMO 2), XEP-0373
         * OpenPGP for XMPP, XEP-0027 legacy OpenPGP: what they carry cannot be read here. */
        if ((strcmp(n, "encrypted") == 0 && (strcmp(ns, "eu.siacs.conversations.axolotl") == 0 ||
                                              strcmp(ns, "urn:xmpp:omemo:2") == 0)) ||
            (strcmp(n, "openpgp") == 0 && strcmp(ns, "urn:xmpp:openpgp:0") == 0) ||
            (strcmp(n, "x") == 0 && strcmp(ns, "jabber:x:encrypted") == 0))
            return 1;
        /* XEP-0353 Jingle message initiation: a call is proposed (or retracted, accepted,
         * rejected: the ringing must stop at once too). */
        if (strcmp(ns, "urn:xmpp:jingle-message:0") == 0)
            return 1;
        /* XEP-0249 direct and XEP-0045 mediated invitations. */
        if ((strcmp(n, "x") == 0 && strcmp(ns, "jabber:x:conference") == 0) ||
            (strcmp(n, "x") == 0 && strcmp(ns, "http://jabber.org/protocol/muc#user") == 0 &&
             xml_node_child(ch, "invite", NULL)))
            return 1;
    }
    return 0;
}

rules_csi_t rules_csi_class(const xml_node_t *st)
{
    if (!st->name || !st->ns || strcmp(st->ns, XML_NS_CLIENT) != 0)
        return RULES_CSI_URGENT;
    if (strcmp(st->name, "presence") == 0) {
        const char *type = xml_node_attr(st, "type");
        if (!type || strcmp(type, "unavailable") == 0)
            return RULES_CSI_PRESENCE;
        /* Subscription requests and answers (RFC 6121 3), and errors: an error must not
         * replace, as a newer update would, the presence held from the same sender. */
        return RULES_CSI_URGENT;
    }
    if (strcmp(st->name, "message") != 0)
        return RULES_CSI_URGENT; /* iq: somebody waits for the answer */
    if (csi_message_urgent(st))
        return RULES_CSI_URGENT;
    /* A carbon copy: the message it forwards decides (XEP-0280 7, XEP-0297). */
    static const char *const carbon[] = {"received", "sent"};
    for (size_t i = 0; i < 2; i++) {
        const xml_node_t *c = xml_node_child(st, carbon[i], "urn:xmpp:carbons:2");
        const xml_node_t *f = c ? xml_node_child(c, "forwarded", "urn:xmpp:forward:0") : NULL;
        const xml_node_t *m = f ? xml_node_child(f, "message", XML_NS_CLIENT) : NULL;
        if (m && csi_message_urgent(m))
            return RULES_CSI_URGENT;
    }
    return RULES_CSI_HOLD;
}

int rules_blocklist_match(const hmap_t *list, const char *jid)
{
    if (!list || !hmap_count(list) || !jid)
        return 0;
    if (hmap_sget(list, jid))
        return 1;
    char tmp[JID_MAX + 1];
    const char *slash = strchr(jid, '/');
    const char *at = memchr(jid, '@', slash ? (size_t)(slash - jid) : strlen(jid));
    size_t blen = slash ? (size_t)(slash - jid) : strlen(jid);
    if (blen < sizeof tmp) {
        memcpy(tmp, jid, blen);
        tmp[blen] = '\0';
        if (hmap_sget(list, tmp))
            return 1;
    }
    const char *dom = at ? at + 1 : jid;
    if (slash && snprintf(tmp, sizeof tmp, "%.*s%s", (int)(slash - dom), dom, slash) < (int)sizeof tmp &&
        hmap_sget(list, tmp))
        return 1;
    size_t dlen = slash ? (size_t)(slash - dom) : strlen(dom);
    if (dlen < sizeof tmp) {
        memcpy(tmp, dom, dlen);
        tmp[dlen] = '\0';
        if (hmap_sget(list, tmp))
            return 1;
    }
    return 0;
}
