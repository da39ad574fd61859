/* Stanza routing for a session's outbound stanzas: RFC 6120 section 10 (server rules for
 * processing XML stanzas) and RFC 6121 section 8.5 (local users). Messages to online
 * resources are routed on the header's facts alone, without parsing the stanza. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "router.h"
#include "jid.h"
#include "stanza.h"
#include "util.h"

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

/* XEP-0280 section 6: chat messages (and normal ones with a body) are copied, unless they
 * ask not to be (<private/> or a no-copy hint). */
static int carbon_eligible(const ipc_hdr_t *h, const char *payload, size_t len)
{
    if (h->kind != IPC_KIND_MESSAGE)
        return 0;
    if (h->stype != IPC_ST_CHAT &&
        !((h->stype == IPC_ST_NONE || h->stype == IPC_ST_NORMAL) && memmem(payload, len, "<body", 5)))
        return 0;
    if (memmem(payload, len, "urn:xmpp:carbons:2", 18) || memmem(payload, len, "urn:xmpp:hints", 14)) {
        xml_node_t *st = stanza_parse(payload, len);
        int excluded = !st || xml_node_child(st, "private", "urn:xmpp:carbons:2") ||
                       xml_node_child(st, "no-copy", "urn:xmpp:hints") ||
                       xml_node_child(st, "received", "urn:xmpp:carbons:2") ||
                       xml_node_child(st, "sent", "urn:xmpp:carbons:2");
        xml_node_free(&st);
        return !excluded;
    }
    return 1;
}

/* Sends `what` ("sent" or "received") carbon copies to the user's carbon-enabled resources
 * except `skip` and those marked as having had the message itself. */
static void carbon_copy(user_t *u, const session_t *skip, const char *what, const char *payload,
                        size_t len)
{
    for (session_t *s = u->sessions; s; s = s->next) {
        if (!s->carbons || s == skip || s->got_it)
            continue;
        buf_t b = BUF_INIT;
        buf_append_str(&b, "<message from='");
        xml_escape(&b, u->bare, strlen(u->bare));
        buf_append_str(&b, "' to='");
        xml_escape(&b, s->full, strlen(s->full));
        buf_printf(&b, "' type='chat'><%s xmlns='urn:xmpp:carbons:2'>"
                       "<forwarded xmlns='urn:xmpp:forward:0'>", what);
        /* The forwarded stanza keeps its own namespace (serialised for jabber:client, its
         * top element carries no xmlns of its own). */
        buf_append_str(&b, "<message xmlns='jabber:client'");
        buf_append(&b, payload + 8, len - 8);
        buf_printf(&b, "</forwarded></%s></message>", what);
        session_deliver(s, b.data, b.len);
        buf_free(&b);
    }
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
        s->got_it = 1;
        n++;
    }
    if (n && carbon_eligible(h, payload, len))
        carbon_copy(u, NULL, "received", payload, len);
    for (session_t *s = u->sessions; s; s = s->next)
        s->got_it = 0;
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

/* An iq to another account's bare JID, waiting to learn whether the account exists. */
typedef struct {
    char *full;
    ipc_stype_t stype;
    xml_node_t *st;
} account_iq_t;

static void account_iq_loaded(user_t *u, int ok, void *arg)
{
    account_iq_t *a = arg;
    session_t *from = session_find_jid(a->full);
    if (from) {
        if (ok && u->exists) {
            ipc_hdr_t h;
            ipc_hdr_init(&h, IPC_STANZA, from->conn);
            h.kind = IPC_KIND_IQ;
            h.stype = (uint8_t)a->stype;
            server_handle_account_iq(from, &h, a->st);
        } else {
            xml_node_t *err = stanza_error_reply(a->st, rt.domain, ok ? "cancel" : "wait",
                                                 ok ? "service-unavailable" : "internal-server-error");
            session_deliver_node(from, err);
            xml_node_free(&err);
        }
    }
    xml_node_free(&a->st);
    free(a->full);
    free(a);
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
        if (!st)
            break;
        if (strcmp(bare, from->user->bare) == 0) {
            server_handle_account_iq(from, h, st);
            xml_node_free(&st);
            break;
        }
        /* Another account: answered only if it exists (8.5.1: service-unavailable). */
        account_iq_t *a = xcalloc(1, sizeof *a);
        a->full = xstrdup(from->full);
        a->stype = (ipc_stype_t)h->stype;
        a->st = st;
        user_with_roster(bare, account_iq_loaded, a);
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
        /* 8.5.3.2.1: only chat falls back to the bare JID; groupchat is refused, normal,
         * headline and error are silently ignored. */
        if (h->stype == IPC_ST_CHAT)
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

/* XEP-0191 section 3.3: nothing goes to a JID the sender blocks (the sender learns why),
 * and nothing from a blocked JID reaches the user (messages and iq requests get
 * service-unavailable, as if the user were not there; presence is dropped). */
static int blocked(session_t *from, const ipc_hdr_t *h, const char *to, const char *payload,
                   size_t len)
{
    if (blocklist_blocks(from->user, to)) {
        if (h->kind == IPC_KIND_PRESENCE || h->stype == IPC_ST_ERROR || h->stype == IPC_ST_RESULT)
            return 1;
        xml_node_t *st = stanza_parse(payload, len);
        if (st) {
            xml_node_t *err = stanza_error_reply(st, rt.domain, "cancel", "not-acceptable");
            xml_node_t *e = xml_node_child(err, "error", NULL);
            xml_node_new_child(e, "blocked", "urn:xmpp:blocking:errors");
            session_deliver_node(from, err);
            xml_node_free(&err);
            xml_node_free(&st);
        }
        return 1;
    }
    char bare[JID_MAX + 1];
    const char *slash = strchr(to, '/');
    size_t bl = slash ? (size_t)(slash - to) : strlen(to);
    if (bl >= sizeof bare)
        return 0;
    memcpy(bare, to, bl);
    bare[bl] = '\0';
    if (!blocklist_blocks(user_find(bare), from->full))
        return 0;
    if (h->kind != IPC_KIND_PRESENCE && h->stype != IPC_ST_HEADLINE && h->stype != IPC_ST_ERROR &&
        h->stype != IPC_ST_RESULT && h->stype != IPC_ST_GROUPCHAT)
        bounce(from, h, payload, len, "cancel", "service-unavailable");
    return 1;
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
    if (blocked(from, h, to, payload, len))
        return;
    if (h->kind == IPC_KIND_MESSAGE && carbon_eligible(h, payload, len))
        carbon_copy(from->user, from, "sent", payload, len);
    if (!slash) {
        route_to_bare(from, h, to, payload, len);
        return;
    }
    session_t *target = session_find_jid(to);
    if (target && h->kind != IPC_KIND_PRESENCE) {
        session_deliver(target, payload, len);
        if (carbon_eligible(h, payload, len))
            carbon_copy(target->user, target, "received", payload, len);
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
