/* Presence and subscriptions between local users: RFC 6121 section 3 (subscription
 * requests, approvals, cancellations, pre-approval) with the state tables of appendix A,
 * and section 4 (initial presence broadcast and probes, unavailable presence, directed
 * presence). A user's roster is loaded before anything that depends on it is decided. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jid.h"
#include "keys.h"
#include "log.h"
#include "router.h"
#include "stanza.h"
#include "util.h"

/* Delivers `st` to every available resource of an online user, 'to' set to each. */
static void deliver_available(user_t *target, xml_node_t *st)
{
    if (!target)
        return;
    for (session_t *s = target->sessions; s; s = s->next) {
        if (!s->available)
            continue;
        xml_node_set_attr(st, "to", s->full);
        session_deliver_node(s, st);
    }
}

static xml_node_t *presence_node(const char *from, const char *type)
{
    xml_node_t *p = xml_node_new("presence", XML_NS_CLIENT);
    xml_node_set_attr(p, "from", from);
    if (type)
        xml_node_set_attr(p, "type", type);
    return p;
}

/* Sends the current presence of every available resource of `u` to `target`'s available
 * resources (after an approval, RFC 6121 3.1.5), or their unavailable presence. */
static void send_resources_presence(user_t *u, user_t *target, int unavailable)
{
    if (!u || !target)
        return;
    for (session_t *s = u->sessions; s; s = s->next) {
        if (!s->available)
            continue;
        xml_node_t *p = NULL;
        if (!unavailable && s->last_presence)
            p = stanza_parse(s->last_presence, strlen(s->last_presence));
        if (!p)
            p = presence_node(s->full, unavailable ? "unavailable" : NULL);
        deliver_available(target, p);
        xml_node_free(&p);
    }
}

void presence_send_current(user_t *u, const char *jid)
{
    roster_item_t *it = roster_find(u, jid);
    if (it && it->sub_from)
        send_resources_presence(u, user_find(jid), 0);
}

/* A subscription stanza on its way from one local user to another. */
typedef struct {
    char *from_bare;
    char *to_bare;
    ipc_stype_t stype;
    xml_node_t *st; /* the stanza, 'from' already the sender's bare JID */
} sub_t;

static void sub_free(sub_t *x)
{
    xml_node_free(&x->st);
    free(x->from_bare);
    free(x->to_bare);
    free(x);
}

static void sub_inbound(user_t *c, int ok, void *arg);

/* Sends a subscription stanza on a user's behalf (an automatic answer, or a cancellation
 * on roster removal); the recipient's server processes it as inbound (appendix A.3). */
static void send_sub(const char *from_bare, const char *to_bare, ipc_stype_t stype)
{
    sub_t *x = xcalloc(1, sizeof *x);
    x->from_bare = xstrdup(from_bare);
    x->to_bare = xstrdup(to_bare);
    x->stype = stype;
    x->st = presence_node(from_bare, ipc_stype_name(stype));
    xml_node_set_attr(x->st, "to", to_bare);
    user_with_roster(to_bare, sub_inbound, x);
}

/* Appendix A.3: the contact's server processes an inbound subscription stanza. */
static void sub_inbound(user_t *c, int ok, void *arg)
{
    sub_t *x = arg;
    if (!ok || !c->exists) {
        sub_free(x); /* no such account: silently ignored (RFC 6121 8.5.1 for presence) */
        return;
    }
    roster_item_t *it = roster_find(c, x->from_bare);
    user_t *sender = user_find(x->from_bare);
    switch (x->stype) {
    case IPC_ST_SUBSCRIBE:
        if (it && it->sub_from) {
            /* Already subscribed: the contact's server answers for the contact (3.1.3). */
            send_sub(c->bare, x->from_bare, IPC_ST_SUBSCRIBED);
            break;
        }
        if (it && it->approved) {
            /* Pre-approved (3.4): the subscription is granted at once. */
            it->sub_from = 1;
            it->approved = 0;
            it->pending_in = 0;
            roster_save(c, it, 0);
            send_sub(c->bare, x->from_bare, IPC_ST_SUBSCRIBED);
            break;
        }
        if (it && it->pending_in)
            break; /* already pending: not delivered again (A.3.1) */
        if (!it)
            it = roster_add(c, x->from_bare);
        it->pending_in = 1;
        roster_save(c, it, 0);
        /* Delivered to available resources now; otherwise on the next initial presence. */
        deliver_available(c, x->st);
        break;
    case IPC_ST_SUBSCRIBED:
        if (!it || !it->ask_out)
            break; /* nothing was asked: ignored (A.3.2) */
        it->sub_to = 1;
        it->ask_out = 0;
        roster_save(c, it, 0);
        deliver_available(c, x->st);
        /* The subscriber now gets the approver's current presence (3.1.5 via the sender). */
        send_resources_presence(sender, c, 0);
        break;
    case IPC_ST_UNSUBSCRIBE:
        if (!it || (!it->sub_from && !it->pending_in))
            break;
        it->sub_from = 0;
        it->pending_in = 0;
        if (it->hidden && !it->sub_to && !it->ask_out)
            roster_save(c, it, 1);
        else
            roster_save(c, it, 0);
        deliver_available(c, x->st);
        /* The former subscriber no longer sees the contact (3.3.3). */
        send_resources_presence(c, sender, 1);
        break;
    case IPC_ST_UNSUBSCRIBED:
        if (!it || (!it->sub_to && !it->ask_out))
            break;
        it->sub_to = 0;
        it->ask_out = 0;
        roster_save(c, it, 0);
        deliver_available(c, x->st);
        send_resources_presence(sender, c, 1);
        break;
    default:
        break;
    }
    sub_free(x);
}

/* Appendix A.2: the user's server processes an outbound subscription stanza. */
static void sub_outbound(user_t *u, int ok, void *arg)
{
    sub_t *x = arg;
    if (!ok) {
        sub_free(x);
        return;
    }
    roster_item_t *it = roster_find(u, x->to_bare);
    int route = 1;
    switch (x->stype) {
    case IPC_ST_SUBSCRIBE:
        if (!it)
            it = roster_add(u, x->to_bare);
        if (it->hidden || (!it->sub_to && !it->ask_out)) {
            it->hidden = 0;
            if (!it->sub_to)
                it->ask_out = 1;
            roster_save(u, it, 0);
        }
        break;
    case IPC_ST_SUBSCRIBED:
        if (it && it->pending_in) {
            it->sub_from = 1;
            it->pending_in = 0;
            it->hidden = 0;
            roster_save(u, it, 0);
        } else if (!it || !it->sub_from) {
            /* No request to approve: a pre-approval (3.4), kept but not routed. */
            if (!it)
                it = roster_add(u, x->to_bare);
            if (!it->approved || it->hidden) {
                it->approved = 1;
                it->hidden = 0;
                roster_save(u, it, 0);
            }
            route = 0;
        }
        break;
    case IPC_ST_UNSUBSCRIBE:
        if (it && (it->sub_to || it->ask_out)) {
            it->sub_to = 0;
            it->ask_out = 0;
            roster_save(u, it, 0);
        }
        break;
    case IPC_ST_UNSUBSCRIBED:
        if (it && (it->sub_from || it->pending_in || it->approved)) {
            it->sub_from = 0;
            it->pending_in = 0;
            it->approved = 0;
            if (it->hidden)
                roster_save(u, it, 1);
            else
                roster_save(u, it, 0);
        }
        break;
    default:
        break;
    }
    if (!route) {
        sub_free(x);
        return;
    }
    user_with_roster(x->to_bare, sub_inbound, x);
}

static void directed_forget(session_t *s, const char *to)
{
    if (s->directed)
        free(hmap_sdel(s->directed, to));
}

/* RFC 6121 4.6: directed presence to one entity, remembered so that it gets our
 * unavailable presence when this resource goes away. */
static void directed(session_t *from, const ipc_hdr_t *h, xml_node_t *st, const char *to)
{
    if (h->stype == IPC_ST_UNAVAILABLE) {
        directed_forget(from, to);
    } else if (h->stype == IPC_ST_NONE) {
        if (!from->directed)
            from->directed = hmap_new();
        if (!hmap_sget(from->directed, to))
            hmap_sput(from->directed, to, xstrdup(to));
    }
    const char *slash = strchr(to, '/');
    if (slash) {
        session_t *target = session_find_jid(to);
        if (target)
            session_deliver_node(target, st);
        return;
    }
    deliver_available(user_find(to), st);
}

void presence_outbound(session_t *from, const ipc_hdr_t *h, xml_node_t *st)
{
    const char *to = xml_node_attr(st, "to");
    if (!to)
        return;
    switch (h->stype) {
    case IPC_ST_NONE:
    case IPC_ST_UNAVAILABLE:
        directed(from, h, st, to);
        return;
    case IPC_ST_SUBSCRIBE:
    case IPC_ST_SUBSCRIBED:
    case IPC_ST_UNSUBSCRIBE:
    case IPC_ST_UNSUBSCRIBED: {
        jid_t j;
        char bare[JID_MAX + 1];
        if (jid_parse(&j, to) < 0 || jid_bare(&j, bare, sizeof bare) < 0 ||
            strcmp(bare, from->user->bare) == 0)
            return;
        sub_t *x = xcalloc(1, sizeof *x);
        x->from_bare = xstrdup(from->user->bare);
        x->to_bare = xstrdup(bare);
        x->stype = (ipc_stype_t)h->stype;
        /* RFC 6121 3.1.2: subscription stanzas are stamped with the sender's bare JID and
         * addressed to the contact's bare JID. */
        x->st = xml_node_copy(st);
        xml_node_set_attr(x->st, "from", x->from_bare);
        xml_node_set_attr(x->st, "to", x->to_bare);
        user_with_roster(x->from_bare, sub_outbound, x);
        return;
    }
    case IPC_ST_ERROR: {
        session_t *target = session_find_jid(to);
        if (target)
            session_deliver_node(target, st);
        return;
    }
    default:
        return; /* probes come from servers, not clients */
    }
}

/* What a broadcast needs once the roster is loaded; the session may be gone by then. */
typedef struct {
    char *full;
    xml_node_t *st; /* the presence to broadcast */
    int initial;    /* first available presence of this resource */
} bcast_t;

static void on_ignore(redisAsyncContext *ac, void *r, void *p)
{
    (void)ac;
    (void)r;
    (void)p;
}

/* The last unavailable presence of a user whose last available resource went away, kept
 * (with a XEP-0203 delay stamp) to answer probes while the user is offline (RFC 6121
 * 4.3.2). */
static void last_unavailable_store(user_t *u, const session_t *s, const xml_node_t *st)
{
    if (!rt.redis_ready)
        return;
    for (session_t *o = u->sessions; o; o = o->next)
        if (o != s && o->available)
            return; /* another resource is still available */
    xml_node_t *p = xml_node_copy(st);
    xml_node_set_attr(p, "from", s->full);
    xml_node_set_attr(p, "to", NULL);
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    xml_node_t *d = xml_node_new_child(p, "delay", "urn:xmpp:delay");
    xml_node_set_attr(d, "from", rt.domain);
    xml_node_set_attr(d, "stamp", stamp);
    buf_t b = BUF_INIT;
    xml_serialize(p, XML_NS_CLIENT, &b);
    xml_node_free(&p);
    char key[JID_MAX + 256];
    keys_user(key, sizeof key, rt.redis_prefix, KEYS_LAST_UNAVAILABLE, u->bare);
    redisAsyncCommand(rt.redis, on_ignore, NULL, "SET %s %b", key, b.data, b.len);
    buf_free(&b);
}

static void on_last_fetched(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    char *full = privdata;
    redisReply *r = reply;
    session_t *s = session_find_jid(full);
    for (size_t i = 0; s && r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue;
        xml_node_t *p = stanza_parse(r->element[i]->str, r->element[i]->len);
        if (!p)
            continue;
        xml_node_set_attr(p, "to", s->full);
        session_deliver_node(s, p);
        xml_node_free(&p);
    }
    free(full);
}

/* One MGET for every offline contact the user is subscribed to. */
static void last_unavailable_fetch(session_t *s, const char **contacts, size_t n)
{
    if (!rt.redis_ready)
        return;
    const char **argv = xcalloc(n + 1, sizeof *argv);
    char **keys = xcalloc(n, sizeof *keys);
    argv[0] = "MGET";
    for (size_t i = 0; i < n; i++) {
        keys[i] = xmalloc(JID_MAX + 256);
        keys_user(keys[i], JID_MAX + 256, rt.redis_prefix, KEYS_LAST_UNAVAILABLE, contacts[i]);
        argv[i + 1] = keys[i];
    }
    redisAsyncCommandArgv(rt.redis, on_last_fetched, xstrdup(s->full), (int)n + 1, argv, NULL);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(argv);
}

static void bcast_contacts(user_t *u, int ok, void *arg)
{
    bcast_t *b = arg;
    if (ok) {
        size_t pos = 0, kl;
        const void *k;
        void *v;
        session_t *s = session_find_jid(b->full);
        const char **last = NULL;
        size_t nlast = 0, caplast = 0;
        while (hmap_next(u->roster, &pos, &k, &kl, &v)) {
            roster_item_t *it = v;
            user_t *contact = user_find(it->jid);
            /* Blocking (XEP-0191) stops presence both ways. */
            if (blocklist_blocks(u, it->jid) || blocklist_blocks(contact, b->full))
                continue;
            /* RFC 6121 4.2.2 / 4.4.2 / 4.5.2: to contacts subscribed to the user. */
            if (it->sub_from)
                deliver_available(contact, b->st);
            if (!b->initial || !s)
                continue;
            /* RFC 6121 4.3: probe the contacts the user is subscribed to, answered with
             * the presence of each of their available resources. */
            int answered = 0;
            if (it->sub_to && contact) {
                for (session_t *cs = contact->sessions; cs; cs = cs->next) {
                    if (!cs->available || !cs->last_presence)
                        continue;
                    answered = 1;
                    xml_node_t *p = stanza_parse(cs->last_presence, strlen(cs->last_presence));
                    if (!p)
                        continue;
                    xml_node_set_attr(p, "to", s->full);
                    session_deliver_node(s, p);
                    xml_node_free(&p);
                }
            }
            /* 4.3.2: a contact with no available resource answers with its last
             * unavailable presence, when one is stored. */
            if (it->sub_to && !answered) {
                if (nlast == caplast)
                    last = xrealloc(last, (caplast = caplast ? 2 * caplast : 8) * sizeof *last);
                last[nlast++] = it->jid;
            }
            /* Subscription requests that waited for the user to come online (3.1.3). */
            if (it->pending_in) {
                xml_node_t *p = presence_node(it->jid, "subscribe");
                xml_node_set_attr(p, "to", u->bare);
                session_deliver_node(s, p);
                xml_node_free(&p);
            }
        }
        if (s && nlast)
            last_unavailable_fetch(s, last, nlast);
        free(last);
        if (s && s->want_offline) {
            s->want_offline = 0;
            offline_deliver(s);
        }
    }
    xml_node_free(&b->st);
    free(b->full);
    free(b);
}

static void bcast_start(session_t *s, xml_node_t *st, int initial)
{
    bcast_t *b = xcalloc(1, sizeof *b);
    b->full = xstrdup(s->full);
    b->st = xml_node_copy(st);
    b->initial = initial;
    user_with_roster(s->user->bare, bcast_contacts, b);
}

/* Delivers `st` to the user's own available resources (optionally not the sender). */
static void broadcast_own(session_t *from, xml_node_t *st, int include_self)
{
    for (session_t *s = from->user->sessions; s; s = s->next) {
        if (!s->available || (s == from && !include_self))
            continue;
        xml_node_set_attr(st, "to", s->full);
        session_deliver_node(s, st);
    }
    xml_node_set_attr(st, "to", NULL);
}

/* Unavailable presence to every entity that got directed presence and still sees us. */
static void directed_unavailable(session_t *s)
{
    if (!s->directed)
        return;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(s->directed, &pos, &k, &kl, &v)) {
        const char *to = v;
        xml_node_t *p = presence_node(s->full, "unavailable");
        xml_node_set_attr(p, "to", to);
        if (strchr(to, '/')) {
            session_t *t = session_find_jid(to);
            if (t)
                session_deliver_node(t, p);
        } else {
            deliver_available(user_find(to), p);
        }
        xml_node_free(&p);
        free(v);
    }
    hmap_destroy(&s->directed);
}

void presence_broadcast(session_t *from, const ipc_hdr_t *h, xml_node_t *st)
{
    if (h->stype == IPC_ST_NONE) {
        int initial = !from->available, was_negative = from->priority < 0;
        from->available = 1;
        from->priority = stanza_presence_priority(st);
        /* XEP-0160: stored messages go to the first resource that becomes available with a
         * non-negative priority. */
        from->want_offline = from->priority >= 0 && (initial || was_negative);
        buf_t b = BUF_INIT;
        xml_serialize(st, XML_NS_CLIENT, &b);
        free(from->last_presence);
        from->last_presence = buf_steal(&b);
        /* RFC 6121 4.2.2: to all of the user's available resources, the sender included. */
        broadcast_own(from, st, 1);
        bcast_start(from, st, initial);
    } else if (h->stype == IPC_ST_UNAVAILABLE) {
        if (!from->available)
            return;
        /* RFC 6121 4.5.2: to the user's other available resources and contacts. */
        last_unavailable_store(from->user, from, st);
        broadcast_own(from, st, 0);
        from->available = 0;
        from->priority = 0;
        xfree(&from->last_presence);
        directed_unavailable(from);
        bcast_start(from, st, 0);
    }
}

void presence_session_end(session_t *s)
{
    if (!s->available) {
        directed_unavailable(s);
        return;
    }
    xml_node_t *p = presence_node(s->full, "unavailable");
    last_unavailable_store(s->user, s, p);
    broadcast_own(s, p, 0);
    s->available = 0;
    directed_unavailable(s);
    bcast_start(s, p, 0);
    xml_node_free(&p);
}

void presence_roster_removed(user_t *u, roster_item_t *it)
{
    /* RFC 6121 2.5.2: removing an item cancels both subscriptions, as if the user had sent
     * unsubscribe and unsubscribed. */
    static const ipc_stype_t cancel[] = {IPC_ST_UNSUBSCRIBE, IPC_ST_UNSUBSCRIBED};
    int need[] = {it->sub_to || it->ask_out, it->sub_from || it->pending_in};
    for (int i = 0; i < 2; i++)
        if (need[i])
            send_sub(u->bare, it->jid, cancel[i]);
    if (it->sub_from) {
        user_t *c = user_find(it->jid);
        for (session_t *s = u->sessions; s; s = s->next) {
            if (!s->available)
                continue;
            xml_node_t *p = presence_node(s->full, "unavailable");
            deliver_available(c, p);
            xml_node_free(&p);
        }
    }
}
