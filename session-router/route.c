/* Stanza routing for a session's outbound stanzas: RFC 6120 section 10 (server rules for
 * processing XML stanzas) and RFC 6121 section 8.5 (local users). Messages to online
 * resources are routed on the header's facts alone, without parsing the stanza. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "router.h"
#include "jid.h"
#include "stanza.h"

/* Parses the stanza and answers the sender with an error (never for an error). */
static void bounce(session_t *from, const ipc_hdr_t *h, const char *payload, size_t len,
                   const char *etype, const char *cond)
{
    if (h->stype == IPC_ST_ERROR)
        return;
    xml_node_t *st = stanza_parse(payload, len);
    if (!st)
        return;
    xml_node_t *err = stanza_error_reply(st, rt.domain, etype, cond);
    session_deliver_node(from, err);
    xml_node_free(&err);
    xml_node_free(&st);
}

/* RFC 6121 8.5.2.1: a message to a bare JID goes to the available resources with the
 * highest non-negative priority; headlines go to every such resource. Returns how many
 * resources got it. */
static int deliver_to_bare(user_t *u, const ipc_hdr_t *h, const char *payload, size_t len)
{
    int best = -1, n = 0;
    for (session_t *s = u->sessions; s; s = s->next)
        if (s->available && s->priority >= 0 && s->priority > best)
            best = s->priority;
    if (best < 0)
        return 0;
    for (session_t *s = u->sessions; s; s = s->next) {
        if (!s->available || s->priority < 0)
            continue;
        if (h->stype != IPC_ST_HEADLINE && s->priority != best)
            continue;
        session_deliver(s, payload, len);
        n++;
    }
    return n;
}

static void route_message_bare(session_t *from, const char *to_bare, const ipc_hdr_t *h,
                               const char *payload, size_t len)
{
    user_t *u = user_find(to_bare);
    switch (h->stype) {
    case IPC_ST_ERROR:
        return; /* 8.5.2.1.1 / 8.5.2.2.1: silently ignored */
    case IPC_ST_GROUPCHAT:
        bounce(from, h, payload, len, "cancel", "service-unavailable");
        return;
    case IPC_ST_HEADLINE:
        if (u)
            deliver_to_bare(u, h, payload, len);
        return; /* no available resource: silently ignored */
    default:
        /* normal and chat. Without an available resource (or without the account, which
         * must look the same: 8.5.1) the sender learns the message was not delivered. */
        if (!u || deliver_to_bare(u, h, payload, len) == 0)
            offline_store(from, h, payload, len, to_bare);
    }
}

/* Presence to another user goes through presence.c, which needs the parsed stanza. */
static void route_presence(session_t *from, const char *payload, size_t len)
{
    xml_node_t *st = stanza_parse(payload, len);
    if (!st)
        return;
    ipc_hdr_t h;
    ipc_hdr_init(&h, IPC_STANZA, from->conn);
    h.kind = IPC_KIND_PRESENCE;
    h.stype = (uint8_t)ipc_stype_from_attr(IPC_KIND_PRESENCE, xml_node_attr(st, "type"));
    presence_outbound(from, &h, st);
    xml_node_free(&st);
}

static void route_to_bare(session_t *from, const ipc_hdr_t *h, const char *bare,
                          const char *payload, size_t len)
{
    switch (h->kind) {
    case IPC_KIND_MESSAGE:
        route_message_bare(from, bare, h, payload, len);
        break;
    case IPC_KIND_PRESENCE:
        route_presence(from, payload, len);
        break;
    case IPC_KIND_IQ: {
        /* RFC 6120 10.5.3.2 / 8.5.2: an iq to a bare JID is the server's to answer on the
         * account's behalf. */
        if (h->stype == IPC_ST_RESULT || h->stype == IPC_ST_ERROR)
            return;
        xml_node_t *st = stanza_parse(payload, len);
        if (st) {
            server_handle_account_iq(from, h, st);
            xml_node_free(&st);
        }
        break;
    }
    }
}

/* RFC 6121 8.5.3: a full JID with no such resource online. */
static void route_full_offline(session_t *from, const ipc_hdr_t *h, const char *bare,
                               const char *payload, size_t len)
{
    switch (h->kind) {
    case IPC_KIND_MESSAGE:
        if (h->stype == IPC_ST_NONE || h->stype == IPC_ST_NORMAL || h->stype == IPC_ST_CHAT)
            route_message_bare(from, bare, h, payload, len);
        else if (h->stype == IPC_ST_GROUPCHAT)
            bounce(from, h, payload, len, "cancel", "service-unavailable");
        break;
    case IPC_KIND_PRESENCE:
        /* Subscription stanzas are handled as if sent to the bare JID (RFC 6121 3.1.2);
         * directed presence is remembered even if that resource is gone now. */
        route_presence(from, payload, len);
        break;
    case IPC_KIND_IQ:
        if (h->stype == IPC_ST_GET || h->stype == IPC_ST_SET)
            bounce(from, h, payload, len, "cancel", "service-unavailable");
        break;
    }
}

void route_stanza(session_t *from, const ipc_hdr_t *h, const char *payload, size_t len)
{
    const char *to = h->field[0];
    /* The frontend prepared 'to' (RFC 7622), so splitting it here is enough. */
    const char *slash = strchr(to, '/');
    const char *at = memchr(to, '@', slash ? (size_t)(slash - to) : strlen(to));
    const char *dom = at ? at + 1 : to;
    size_t dlen = slash ? (size_t)(slash - dom) : strlen(dom);

    if (!*to || (!at && dlen == strlen(rt.domain) && strncmp(dom, rt.domain, dlen) == 0)) {
        /* To the server itself (no 'to', the domain, or domain/resource). */
        xml_node_t *st = stanza_parse(payload, len);
        if (!st) {
            log_warn("route: unparsable stanza from %s", from->full);
            return;
        }
        server_handle(from, h, st);
        xml_node_free(&st);
        return;
    }
    if (dlen != strlen(rt.domain) || strncmp(dom, rt.domain, dlen) != 0) {
        /* No server-to-server yet: every other domain is unreachable. */
        bounce(from, h, payload, len, "cancel", "remote-server-not-found");
        return;
    }
    if (!slash) {
        route_to_bare(from, h, to, payload, len);
        return;
    }
    session_t *target = session_find_jid(to);
    if (target && h->kind != IPC_KIND_PRESENCE) {
        session_deliver(target, payload, len);
        return;
    }
    char bare[JID_MAX + 1];
    size_t bl = (size_t)(slash - to);
    if (bl >= sizeof bare)
        return;
    memcpy(bare, to, bl);
    bare[bl] = '\0';
    route_full_offline(from, h, bare, payload, len);
}
