/* Stanza routing for a session's outbound stanzas: RFC 6120 section 10 (server rules for
 * processing XML stanzas) and RFC 6121 section 8.5 (local users), with the decisions in
 * rules.c. Features take part through hooks (blocking, carbons, offline storage,
 * presence) and IQ handlers (module.h). Messages to online resources are routed on the
 * header's facts alone, without parsing the stanza. */
#include "route.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iqreq.h"
#include "jid.h"
#include "log.h"
#include "module.h"
#include "remote.h"
#include "rules.h"
#include "service.h"
#include "smq.h"
#include "stanza.h"
#include "user.h"
#include "util.h"

/* The domain of a prepared JID (RFC 7622: [localpart@]domain[/resource]), its length
 * (not NUL-terminated) in *len; *at: it has a localpart. */
static const char *jid_domain(const char *jid, size_t *len, int *at)
{
    const char *slash = strchr(jid, '/');
    const char *a = memchr(jid, '@', slash ? (size_t)(slash - jid) : strlen(jid));
    const char *dom = a ? a + 1 : jid;
    *len = slash ? (size_t)(slash - dom) : strlen(dom);
    *at = a != NULL;
    return dom;
}

/* 1 when the domain is ours itself (not a subdomain, remote.h). */
static int our_domain(const char *dom, size_t len)
{
    return len == strlen(rt.domain) && memcmp(dom, rt.domain, len) == 0;
}

void route_bounce(session_t *from, const ipc_stanza_t *h, const char *payload, size_t len,
                  const char *etype, const char *cond)
{
    /* Without a session, only a sender at another domain is answered (by address, out
     * through an s2s frontend). */
    if (h->stype == IPC_ST_ERROR || (!from && !(h->from && remote_jid(h->from))))
        return;
    xml_node_t *st = stanza_parse(payload, len);
    if (!st)
        return;
    session_reply_error(from, st, etype, cond);
    xml_node_free(&st);
}

void route_bounce_delivery(const char *payload, size_t len)
{
    xml_node_t *st = stanza_parse(payload, len);
    if (!st)
        return;
    const char *type = xml_node_attr(st, "type"), *from = xml_node_attr(st, "from");
    int iq = st->name && strcmp(st->name, "iq") == 0;
    int never = (type && (strcmp(type, "error") == 0 || (iq && strcmp(type, "result") == 0))) ||
                xml_node_child(st, "received", "urn:xmpp:carbons:2") ||
                xml_node_child(st, "sent", "urn:xmpp:carbons:2");
    session_t *s = from ? session_find_jid(from) : NULL;
    if (!never && (s || (from && remote_jid(from))))
        session_reply_error(s, st, "wait", "resource-constraint");
    xml_node_free(&st);
}

/* A client's stanza the link would not take for `target` (its frontend's pipe is full,
 * or the frontend is gone): the sender learns it was not delivered and may try again
 * (RFC 6120 8.3.3.18: resource-constraint, type wait), unless it is an error or a result,
 * which are never answered with an error. Counted and logged either way
 * (docs/PROTOCOL.md, "Behaviour"). */
static void undeliverable(session_t *from, const session_t *target, const ipc_stanza_t *h,
                          const char *payload, size_t len, int err)
{
    int bounce = h->stype != IPC_ST_ERROR && h->stype != IPC_ST_RESULT;
    static const char *const kinds[] = {"stanza", "message", "presence", "iq"};
    session_undelivered(target, err, kinds[h->kind <= IPC_KIND_IQ ? h->kind : 0], bounce);
    if (bounce)
        route_bounce(from, h, payload, len, "wait", "resource-constraint");
}

/* The "about to be stored" hook; without a module that stores, the sender learns the
 * message was not delivered (RFC 6121 8.5.2.2.1). */
static void store_offline(session_t *from, const ipc_stanza_t *h, const char *to_bare,
                          const char *payload, size_t len)
{
    hook_ev_t ev = {.session = from, .msg = h, .to = to_bare, .from = h->from,
                    .payload = payload, .len = len};
    if (hook_run(HOOK_STORE_OFFLINE, &ev) == MOD_PASS)
        route_bounce(from, h, payload, len, "cancel", "service-unavailable");
}

/* RFC 6121 8.5.2.1: a message to a bare JID goes to the resources rules_bare_targets
 * chooses. Returns how many got it. */
static int deliver_to_bare(session_t *from, user_t *u, const ipc_stanza_t *h, const char *payload,
                           size_t len)
{
    size_t n = 0;
    for (session_t *s = u->sessions; s; s = s->next)
        n++;
    if (!n)
        return 0;
    /* On the stack for the usual few resources (max_resources, default 10). */
    rules_res_t res_buf[16];
    int chosen_buf[16];
    rules_res_t *res = n <= 16 ? res_buf : xcalloc(n, sizeof *res);
    int *chosen = n <= 16 ? chosen_buf : xcalloc(n, sizeof *chosen);
    size_t i = 0;
    for (session_t *s = u->sessions; s; s = s->next, i++)
        res[i] = (rules_res_t){s->available, s->priority};
    int count = rules_bare_targets(res, n, h->stype, chosen);
    i = 0;
    for (session_t *s = u->sessions; s; s = s->next, i++)
        s->selected = chosen[i];
    if (res != res_buf) {
        free(res);
        free(chosen);
    }
    hook_ev_t ev = {.session = from, .user = u, .msg = h, .to = u->bare, .payload = payload,
                    .len = len};
    if (count && hook_run(HOOK_DELIVER_BARE, &ev) == MOD_PASS) {
        /* Delivered when one chosen resource took it (8.5.2.1.1); when none could, the
         * sender is told. */
        int delivered = 0, err = 0;
        session_t *failed = NULL;
        for (session_t *s = u->sessions; s; s = s->next) {
            if (!s->selected)
                continue;
            if (session_deliver(s, payload, len) == 0) {
                delivered = 1;
            } else {
                err = errno;
                failed = s;
            }
        }
        if (failed && delivered)
            session_undelivered(failed, err, "message (delivered to another resource)", 0);
        else if (failed)
            undeliverable(from, failed, h, payload, len, err);
    }
    for (session_t *s = u->sessions; s; s = s->next)
        s->selected = 0;
    return count;
}

static void route_message_bare(session_t *from, const char *to_bare, const ipc_stanza_t *h,
                               const char *payload, size_t len)
{
    user_t *u = user_find(to_bare);
    if (h->stype != IPC_ST_ERROR && h->stype != IPC_ST_GROUPCHAT && u &&
        deliver_to_bare(from, u, h, payload, len) > 0)
        return;
    /* No resource took it (or the account does not exist, which must look the same:
     * 8.5.1). */
    switch (rules_bare_fallback(h->stype)) {
    case RULE_BOUNCE:
        route_bounce(from, h, payload, len, "cancel", "service-unavailable");
        break;
    case RULE_OFFLINE:
        store_offline(from, h, to_bare, payload, len);
        break;
    default:
        break;
    }
}

/* Presence to or from a client goes to the presence hook with the parsed stanza. */
static void route_presence(session_t *from, const ipc_stanza_t *h, const char *payload, size_t len)
{
    xml_node_t *st = stanza_parse(payload, len);
    if (!st)
        return;
    hook_run(HOOK_PRESENCE, &(hook_ev_t){.session = from, .user = from->user, .msg = h,
                                         .to = xml_node_attr(st, "to"), .st = st});
    xml_node_free(&st);
}

/* The s2s frontend the stanza being routed by route_remote_stanza came through (NULL
 * otherwise): the presence module notes which connection carried a contact's presence
 * (rpresence.h). */
static rt_frontend_t *remote_via;

/* Presence from another domain goes to the presence hook for remote senders. */
static void route_presence_in(const ipc_stanza_t *h, const char *payload, size_t len)
{
    xml_node_t *st = stanza_parse(payload, len);
    if (!st)
        return;
    hook_run(HOOK_PRESENCE_IN, &(hook_ev_t){.from = h->from, .msg = h, .to = h->to, .st = st,
                                            .frontend = remote_via});
    xml_node_free(&st);
}

/* An iq to another account's bare JID, waiting to learn whether the account exists. */
typedef struct {
    char *full;   /* the sender: a session's full JID, or a JID at another domain */
    int remote;   /* the sender is at another domain (no session: answered by address) */
    xml_node_t *st;
} account_iq_t;

static void account_iq_loaded(user_t *u, int ok, void *arg)
{
    account_iq_t *a = arg;
    session_t *from = a->remote ? NULL : session_find_jid(a->full);
    if ((from || a->remote) && ok && u->exists) {
        /* Modules may refuse it now that the account is loaded (blocking). */
        ipc_stanza_t msg = {.conn = from ? from->conn : 0, .kind = IPC_KIND_IQ, .to = u->bare,
                            .from = a->full, .id = xml_node_attr(a->st, "id"),
                            .stype = ipc_stype_from_attr(IPC_KIND_IQ, xml_node_attr(a->st, "type"))};
        hook_ev_t ev = {.session = from, .user = u, .from = a->full, .st = a->st,
                        .to = u->bare, .msg = &msg};
        if (hook_run(HOOK_STANZA_IN, &ev) == MOD_PASS)
            module_dispatch_iq(from, a->st, MOD_AT_ACCOUNT, u);
    } else if (from || a->remote) /* 8.5.1: no such account looks like service-unavailable */
        session_reply_error(from, a->st, ok ? "cancel" : "wait",
                            ok ? "service-unavailable" : "internal-server-error");
    xml_node_free(&a->st);
    free(a->full);
    free(a);
}

/* RFC 6120 10.5.3.2 / RFC 6121 8.5.2: an iq to a bare JID is the server's to answer on the
 * account's behalf. */
static void route_iq_bare(session_t *from, const ipc_stanza_t *h, const char *bare,
                          const char *payload, size_t len)
{
    if (h->stype == IPC_ST_RESULT || h->stype == IPC_ST_ERROR)
        return;
    xml_node_t *st = stanza_parse(payload, len);
    if (!st)
        return;
    if (from && strcmp(bare, from->user->bare) == 0) {
        module_dispatch_iq(from, st, MOD_AT_SELF, NULL);
        xml_node_free(&st);
        return;
    }
    account_iq_t *a = xcalloc(1, sizeof *a);
    a->full = xstrdup(from ? from->full : h->from);
    a->remote = !from;
    a->st = st;
    user_with_roster(bare, account_iq_loaded, a);
}

static void route_to_bare(session_t *from, const ipc_stanza_t *h, const char *bare,
                          const char *payload, size_t len)
{
    switch (h->kind) {
    case IPC_KIND_MESSAGE:
        route_message_bare(from, bare, h, payload, len);
        break;
    case IPC_KIND_PRESENCE:
        if (from)
            route_presence(from, h, payload, len);
        else
            route_presence_in(h, payload, len);
        break;
    case IPC_KIND_IQ:
        route_iq_bare(from, h, bare, payload, len);
        break;
    default: /* the link's reader admits no other kind */
        break;
    }
}

/* To the server itself: no 'to', the domain, or domain/resource. */
static void route_to_server(session_t *from, const ipc_stanza_t *h, const char *payload,
                            size_t len)
{
    if (h->kind == IPC_KIND_PRESENCE) {
        /* Broadcast presence has no 'to'; presence to the server itself is dropped. */
        if (!*h->to)
            route_presence(from, h, payload, len);
        return;
    }
    if (h->kind == IPC_KIND_IQ && (h->stype == IPC_ST_RESULT || h->stype == IPC_ST_ERROR)) {
        /* An answer to a request of the server's (iqreq.h); any other is dropped
         * (RFC 6120 8.2.3: results and errors are never answered). */
        xml_node_t *st = *h->to ? stanza_parse(payload, len) : NULL;
        if (st)
            iqreq_answer(from, st);
        xml_node_free(&st);
        return;
    }
    if (h->kind != IPC_KIND_IQ || (h->stype != IPC_ST_GET && h->stype != IPC_ST_SET))
        return; /* messages to the server: nothing consumes them */
    xml_node_t *st = stanza_parse(payload, len);
    if (!st) {
        log_warn("route: unparsable stanza from %s", from->full);
        return;
    }
    /* RFC 6120 10.3.3: with no 'to' the server answers on the sender's behalf. */
    unsigned at = *h->to ? MOD_AT_SERVER : MOD_AT_SERVER | MOD_AT_SELF;
    module_dispatch_iq(from, st, at, NULL);
    xml_node_free(&st);
}

/* A client's stanza to another domain (RFC 6120 10.4): the outbound hooks as for a local
 * address (blocking, the archive, sent carbons), presence through the presence module
 * (subscriptions change the roster, directed presence is remembered), then out through
 * the s2s frontend that carries the domain (remote.h). */
static void route_to_remote(session_t *from, const ipc_stanza_t *h, const char *dom, size_t dlen,
                            const char *payload, size_t len)
{
    if (!remote_frontend(dom, dlen)) {
        /* No s2s frontend alive (or none configured): the domain cannot be reached
         * (RFC 6120 8.3.3.16), before anything changes for the sender. */
        route_bounce(from, h, payload, len, "cancel", "remote-server-not-found");
        return;
    }
    hook_ev_t ev = {.session = from, .user = from->user, .msg = h, .to = h->to,
                    .from = h->from, .payload = payload, .len = len};
    if (hook_run(HOOK_STANZA_OUT, &ev) == MOD_HANDLED)
        return;
    payload = ev.payload;
    len = ev.len;
    if (h->kind == IPC_KIND_PRESENCE) {
        route_presence(from, h, payload, len);
        return;
    }
    if (remote_send(h, payload, len) == 0)
        return;
    int err = errno;
    if (err == ENETUNREACH) {
        route_bounce(from, h, payload, len, "cancel", "remote-server-not-found");
    } else if (h->stype != IPC_ST_ERROR && h->stype != IPC_ST_RESULT) {
        log_warn("route: a stanza from %s to %s not sent: the s2s link refused it", from->full,
                 h->to);
        route_bounce(from, h, payload, len, "wait", "resource-constraint");
    }
}

/* To a local account's address (bare or full JID): from a client's session, or with
 * `from` NULL from another domain (route_remote_stanza), which takes the same path: the
 * hooks, RFC 6121 8.5, offline storage; errors to a remote sender go back out. */
static void route_local(session_t *from, const ipc_stanza_t *h, const char *payload, size_t len)
{
    const char *to = h->to;
    const char *slash = strchr(to, '/');
    hook_ev_t ev = {.session = from, .user = from ? from->user : NULL, .msg = h, .to = to,
                    .from = h->from, .payload = payload, .len = len};
    if (hook_run(HOOK_STANZA_OUT, &ev) == MOD_HANDLED)
        return;
    /* A hook may have handed back a rewritten stanza (hook.h, HOOK_STANZA_OUT). */
    payload = ev.payload;
    len = ev.len;
    if (!slash) {
        route_to_bare(from, h, to, payload, len);
        return;
    }
    session_t *target = session_find_jid(to);
    if (target && h->kind != IPC_KIND_PRESENCE) {
        ev.target = target;
        ev.user = target->user;
        if ((h->kind != IPC_KIND_MESSAGE || hook_run(HOOK_DELIVER_FULL, &ev) == MOD_PASS) &&
            session_deliver(target, payload, len) < 0)
            undeliverable(from, target, h, payload, len, errno);
        return;
    }
    char bare[JID_MAX + 1];
    size_t bl = (size_t)(slash - to);
    if (bl >= sizeof bare)
        return;
    memcpy(bare, to, bl);
    bare[bl] = '\0';
    /* RFC 6121 8.5.3.2: no such resource online. */
    switch (rules_full_fallback(h->kind, h->stype)) {
    case RULE_TO_BARE:
        route_to_bare(from, h, bare, payload, len);
        break;
    case RULE_BOUNCE:
        route_bounce(from, h, payload, len, "cancel", "service-unavailable");
        break;
    default:
        break;
    }
}

void route_stanza(session_t *from, const ipc_stanza_t *h, const char *payload, size_t len)
{
    const char *to = h->to;
    /* The frontend prepared 'to' (RFC 7622), so splitting it here is enough. */
    size_t dlen;
    int at;
    const char *dom = jid_domain(to, &dlen, &at);
    int local = our_domain(dom, dlen);

    if (!*to || (!at && local)) {
        route_to_server(from, h, payload, len);
        return;
    }
    if (!local) {
        /* A service of the server's (service.h): its module decides everything, including
         * errors; no account hook (blocking, carbons, archive) sees these stanzas. */
        service_fn svc = service_find(dom, dlen, 0);
        if (svc) {
            svc(from, h, payload, len);
            return;
        }
        if (remote_domain(dom, dlen))
            route_to_remote(from, h, dom, dlen, payload, len);
        else /* a name under our domain that no service claimed */
            route_bounce(from, h, payload, len, "cancel", "remote-server-not-found");
        return;
    }
    route_local(from, h, payload, len);
}

void route_remote_stanza(rt_frontend_t *f, const ipc_s2s_t *h, const char *payload, size_t len)
{
    const char *to = h->to;
    size_t dlen;
    int at;
    const char *dom = jid_domain(to, &dlen, &at);
    int local = our_domain(dom, dlen);
    if (!remote_jid(h->from) || remote_domain(dom, dlen)) {
        /* The frontend checked both (from at the authenticated remote domain, to at ours):
         * anything else is not a stanza between us and another server. */
        log_warn("route: dropped an s2s stanza from %s to %s: not from another domain to ours",
                 h->from, h->to);
        return;
    }
    if (!local) {
        /* A service (service.h) that takes stanzas from other domains (multi-user chat)
         * gets it with no session; the others (upload: local accounts only) refuse. */
        service_fn svc = service_find(dom, dlen, 1);
        if (svc)
            svc(NULL, h, payload, len);
        else if (h->kind != IPC_KIND_IQ || h->stype == IPC_ST_GET || h->stype == IPC_ST_SET)
            route_bounce(NULL, h, payload, len, "cancel", "service-unavailable");
        return;
    }
    if (!at) {
        /* To the server: its iq handlers that serve other domains (MOD_REMOTE) answer a
         * request; results, errors, messages and presence to the server are dropped (it
         * sends no requests and has no presence of its own). */
        if (h->kind != IPC_KIND_IQ || (h->stype != IPC_ST_GET && h->stype != IPC_ST_SET))
            return;
        xml_node_t *st = stanza_parse(payload, len);
        if (st)
            module_dispatch_iq(NULL, st, MOD_AT_SERVER, NULL);
        xml_node_free(&st);
        return;
    }
    rt_frontend_t *was = remote_via; /* restored: a hook may route another one inside */
    remote_via = f;
    route_local(NULL, h, payload, len);
    remote_via = was;
}

void route_s2s_bounce(const ipc_s2s_t *m, const char *payload, size_t len, const char *etype,
                      const char *cond)
{
    /* RFC 6120 8.3.1: never an error in answer to an error; 8.2.3: nor to an iq result. */
    if (m->stype == IPC_ST_ERROR || m->stype == IPC_ST_RESULT)
        return;
    /* Only our accounts are told. A service (a room) would take the error from the remote
     * address as that occupant being gone, when only our s2s frontend went away. */
    size_t dlen;
    int at;
    const char *dom = jid_domain(m->from, &dlen, &at);
    if (!at || !our_domain(dom, dlen))
        return;
    xml_node_t *st = stanza_parse(payload, len);
    if (!st)
        return;
    xml_node_t *err = stanza_error_reply(st, m->to, etype, cond);
    buf_t b = BUF_INIT;
    xml_serialize(err, XML_NS_CLIENT, &b);
    route_remote_stanza(NULL, &(ipc_s2s_t){.kind = m->kind, .stype = IPC_ST_ERROR, .to = m->from,
                                     .from = m->to, .id = m->id},
                        b.data, b.len);
    buf_free(&b);
    xml_node_free(&err);
    xml_node_free(&st);
}

/* route_service_stanza for a full JID. */
static int service_to_full(const ipc_stanza_t *h, const char *payload, size_t len)
{
    session_t *t = session_find_jid(h->to);
    if (!t)
        return -1;
    if (h->kind == IPC_KIND_MESSAGE) {
        hook_ev_t ev = {.target = t, .user = t->user, .msg = h, .to = h->to,
                        .payload = payload, .len = len};
        if (hook_run(HOOK_DELIVER_FULL, &ev) == MOD_HANDLED)
            return 0;
    }
    if (session_deliver(t, payload, len) == 0)
        return 0;
    int err = errno;
    session_undelivered(t, err, "a stanza from a service", 0);
    /* A full pipe (EAGAIN) passes; a frontend that is gone (EHOSTUNREACH) is not coming
     * back for this session. */
    return err == EAGAIN ? -2 : -1;
}

int route_service_stanza(xml_node_t *st)
{
    const char *to_attr = xml_node_attr(st, "to"), *from = xml_node_attr(st, "from");
    if (!to_attr || !from || !*to_attr)
        return -1;
    /* A copy: the presence case below rewrites the attribute. */
    char *to = xstrdup(to_attr);
    ipc_kind_t kind = ipc_kind_from_name(st->name);
    ipc_stanza_t h = {.kind = kind, .stype = ipc_stype_from_attr(kind, xml_node_attr(st, "type")),
                                    .to = to, .from = from, .id = xml_node_attr(st, "id")};
    buf_t b = BUF_INIT;
    xml_serialize(st, XML_NS_CLIENT, &b);
    int r = -1;
    if (remote_jid(to)) {
        /* An occupant, invitee or iq target at another domain: out through an s2s
         * frontend. Neither a full pipe nor our own s2s frontends being away (ENETUNREACH)
         * says the address is gone: -2, so a room keeps its remote occupants (they leave
         * when their server says so, or a bounce from it means gone). */
        r = remote_send(&h, b.data, b.len) == 0 ? 0 : -2;
        goto done;
    }
    const char *slash = strchr(to, '/');
    char bare[JID_MAX + 1];
    size_t bl = slash ? (size_t)(slash - to) : strlen(to);
    if (bl >= sizeof bare)
        goto done;
    memcpy(bare, to, bl);
    bare[bl] = '\0';
    user_t *u = user_find(bare);
    if (u) {
        /* XEP-0191: a user who blocks the room, an occupant or the service gets nothing
         * from it (blocking decides at HOOK_STANZA_IN, as for a stanza from another
         * account). Dropped quietly: for the service it went (a room does not take a
         * blocking user out). A user not held in memory has no session to get it. */
        hook_ev_t ev = {.user = u, .from = from, .msg = &h, .st = st, .to = to};
        if (hook_run(HOOK_STANZA_IN, &ev) == MOD_HANDLED) {
            r = 0;
            goto done;
        }
    }
    if (slash) {
        r = service_to_full(&h, b.data, b.len);
        if (r == -2)
            goto done;
        /* RFC 6121 8.5.3.2.1: a chat or normal message falls back to the bare JID; the
         * rest is dropped (nobody to tell: the caller learns it from -1). */
        int normal = h.stype == IPC_ST_NONE || h.stype == IPC_ST_NORMAL;
        if (r == 0 || kind != IPC_KIND_MESSAGE || !(normal || h.stype == IPC_ST_CHAT))
            goto done;
    }
    if (kind == IPC_KIND_MESSAGE) {
        h.to = bare;
        if (u && h.stype != IPC_ST_GROUPCHAT && h.stype != IPC_ST_ERROR &&
            deliver_to_bare(NULL, u, &h, b.data, b.len) > 0) {
            r = 0;
        } else if (rules_bare_fallback(h.stype) == RULE_OFFLINE) {
            hook_ev_t ev = {.msg = &h, .to = bare, .from = from, .payload = b.data,
                            .len = b.len};
            r = hook_run(HOOK_STORE_OFFLINE, &ev) == MOD_HANDLED ? 0 : -1;
        }
    } else if (kind == IPC_KIND_PRESENCE && !slash) {
        /* Presence to a bare JID goes to every available resource, 'to' set to each. */
        for (session_t *s = u ? u->sessions : NULL; s; s = s->next) {
            if (!s->available)
                continue;
            buf_t one = BUF_INIT;
            xml_node_set_attr(st, "to", s->full);
            xml_serialize(st, XML_NS_CLIENT, &one);
            if (session_deliver_server(s, one.data, one.len, "presence from a service") == 0)
                r = 0;
            buf_free(&one);
        }
        xml_node_set_attr(st, "to", to);
    }
done:
    buf_free(&b);
    free(to);
    return r;
}

/* An error from the server to the sender of `st` (a local address), for a stanza that
 * cannot be answered through a session of the sender's. */
static void error_to_sender(const xml_node_t *st, const char *etype, const char *cond)
{
    const char *from = xml_node_attr(st, "from");
    if (!from)
        return;
    xml_node_t *err = stanza_error_reply(st, rt.domain, etype, cond);
    session_deliver_jid(from, err);
    xml_node_free(&err);
}

void route_redeliver(const char *bare, const char *payload, size_t len)
{
    xml_node_t *st = stanza_parse(payload, len);
    if (!st)
        return;
    ipc_kind_t kind = ipc_kind_from_name(st->name);
    const char *type = xml_node_attr(st, "type"), *from = xml_node_attr(st, "from");
    ipc_stype_t stype = ipc_stype_from_attr(kind, type);
    if (kind == IPC_KIND_MESSAGE && from && !xml_node_child(st, "sent", NS_CARBONS) &&
        !xml_node_child(st, "received", NS_CARBONS)) {
        /* Content a person must get (a body, an encrypted payload) or a receipt; chat
         * states and the like went with the session, as they would for an offline user. */
        int content = xml_node_child(st, "body", XML_NS_CLIENT) ||
                      xml_node_child(st, "encrypted", NULL) ||
                      xml_node_child(st, "received", "urn:xmpp:receipts");
        int normal = stype == IPC_ST_NONE || stype == IPC_ST_NORMAL;
        if ((stype == IPC_ST_CHAT || normal) && content) {
            ipc_stanza_t h = {.kind = kind, .stype = stype, .to = bare, .from = from,
                              .id = xml_node_attr(st, "id")};
            route_message_bare(NULL, bare, &h, payload, len);
        } else if (stype == IPC_ST_GROUPCHAT) {
            error_to_sender(st, "cancel", "service-unavailable");
        }
    } else if (kind == IPC_KIND_IQ && (stype == IPC_ST_GET || stype == IPC_ST_SET)) {
        error_to_sender(st, "cancel", "service-unavailable");
    }
    xml_node_free(&st);
}

void route_returned(const char *payload, size_t len)
{
    xml_node_t *st = stanza_parse(payload, len);
    const char *to = st ? xml_node_attr(st, "to") : NULL;
    jid_t jid;
    char bare[JID_MAX + 1];
    if (!to || jid_parse(&jid, to) < 0 || jid_bare(&jid, bare, sizeof bare) < 0) {
        xml_node_free(&st);
        return;
    }
    int message = ipc_kind_from_name(st->name) == IPC_KIND_MESSAGE;
    xml_node_free(&st);
    /* A message only for a user with no available resource left. One that has some got
     * it already (a bare-JID message goes to each of them, a full-JID one as a carbon
     * copy), or the resource is still the one returning it (its frontend ended the stream
     * but has not sent the unbind yet): routing it again would repeat it, or send it back
     * to the same connection over and over. (An iq request gets its error either way.) */
    user_t *u = user_find(bare);
    for (session_t *s = u ? u->sessions : NULL; message && s; s = s->next)
        if (s->available)
            return;
    route_redeliver(bare, payload, len);
}

void route_redeliver_items(const char *bare, smq_item_t *items)
{
    size_t n = 0;
    for (smq_item_t *it = items; it; it = it->next, n++)
        route_redeliver(bare, it->data, it->len);
    metric_add(rt.m.sm_rerouted, (double)n);
    log_info("sm: %zu stanzas %s had not acknowledged handed on (other resources, offline "
             "storage, errors to their senders)", n, bare);
    smq_free(items);
}
