/* Presence and subscriptions: RFC 6121 section 3 (subscription requests, approvals,
 * cancellations, pre-approval) with the state tables of appendix A (core/rules.c), and
 * section 4 (initial presence broadcast and probes, unavailable presence, directed
 * presence). A user's roster is loaded before anything that depends on it is decided.
 * Between local users both sides are processed here; with a contact at another domain
 * (core/remote.h) the same code runs for our user's side, and the stanza leaves through an
 * s2s frontend where a local contact's side would have been processed, while what the
 * remote server sends comes in through HOOK_PRESENCE_IN. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "config.h"
#include "jid.h"
#include "keys.h"
#include "log.h"
#include "module.h"
#include "modules.h"
#include "remote.h"
#include "rpresence.h"
#include "rules.h"
#include "stanza.h"
#include "storage.h"
#include "user.h"
#include "util.h"

/* The JIDs a session sent directed available presence to (RFC 6121 4.6), in its slot. */
#define DIRECTED(s) ((hmap_t *)module_slot(s, mod_presence))

static xml_node_t *presence_node(const char *from, const char *type)
{
    xml_node_t *p = xml_node_new("presence", XML_NS_CLIENT);
    xml_node_set_attr(p, "from", from);
    if (type)
        xml_node_set_attr(p, "type", type);
    return p;
}

static sub_state_t state_of(const roster_item_t *it)
{
    sub_state_t s = {0};
    if (it) {
        s.exists = 1;
        s.to = it->sub_to;
        s.from = it->sub_from;
        s.ask_out = it->ask_out;
        s.pending_in = it->pending_in;
        s.approved = it->approved;
        s.hidden = it->hidden;
    }
    return s;
}

/* Applies a rules_sub_* decision to the user's roster: creates, changes or removes the
 * item, stores it and pushes it. */
static void apply_state(user_t *u, roster_item_t *it, const char *contact, const sub_state_t *s,
                        unsigned what)
{
    if (!(what & (SUB_SAVE | SUB_REMOVE)))
        return;
    if (!it)
        it = roster_add(u, contact);
    it->sub_to = s->to;
    it->sub_from = s->from;
    it->ask_out = s->ask_out;
    it->pending_in = s->pending_in;
    it->approved = s->approved;
    it->hidden = s->hidden;
    roster_save(u, it, (what & SUB_REMOVE) != 0, NULL, NULL);
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

/* A subscription stanza of a local user's leaves for a contact at another domain, whose
 * server processes it as inbound (appendix A.3). What that processing does with the
 * contact's presence is the contact's server's; what it does with our user's presence is
 * ours, as the local case does it in sub_inbound: an approval (3.1.5) sends the user's
 * current presence, a cancellation of the contact's subscription (3.2.2) its
 * unavailable. */
static void sub_send_remote(sub_t *x)
{
    remote_send_node(x->st);
    if (x->stype == IPC_ST_SUBSCRIBED)
        session_send_presence(user_find(x->from_bare), x->to_bare, 0);
    else if (x->stype == IPC_ST_UNSUBSCRIBED)
        session_send_presence(user_find(x->from_bare), x->to_bare, 1);
    sub_free(x);
}

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
    if (remote_jid(to_bare))
        sub_send_remote(x);
    else
        user_with_roster(to_bare, sub_inbound, x);
}

/* Presence to a deleted address (account.h: its tombstone is kept) is answered on its
 * behalf, so that a contact whose notification was lost cleans up too: an error <gone/>
 * (RFC 6120 8.3.3.5), and the cancellation the deletion sent, processed as inbound to the
 * contact: `unsubscribed` (cancel_to) for a probe or a request (its presence will never
 * come), `unsubscribe` (cancel_from) for anything else (it no longer wants the contact's
 * presence). */
static void gone_answer(const char *dead, const char *to_bare, int cancel_to, int cancel_from)
{
    xml_node_t *p = presence_node(dead, "error");
    xml_node_t *err = xml_node_new_child(p, "error", NULL);
    xml_node_set_attr(err, "type", "cancel");
    xml_node_new_child(err, "gone", NS_STANZAS);
    session_deliver_jid(to_bare, p);
    xml_node_free(&p);
    if (cancel_to)
        send_sub(dead, to_bare, IPC_ST_UNSUBSCRIBED);
    if (cancel_from)
        send_sub(dead, to_bare, IPC_ST_UNSUBSCRIBE);
}

/* Requests from JIDs not otherwise in the roster (hidden items, Pending In only). */
static long waiting_requests(user_t *u)
{
    long n = 0;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (u->roster && hmap_next(u->roster, &pos, &k, &kl, &v))
        n += ((roster_item_t *)v)->hidden && ((roster_item_t *)v)->pending_in;
    return n;
}

/* Appendix A.3: the contact's server processes an inbound subscription stanza. */
static void sub_inbound(user_t *c, int ok, void *arg)
{
    sub_t *x = arg;
    if (ok && !c->exists && c->tombstoned && x->stype != IPC_ST_UNSUBSCRIBE &&
        x->stype != IPC_ST_UNSUBSCRIBED)
        gone_answer(c->bare, x->from_bare, x->stype == IPC_ST_SUBSCRIBE, 1);
    if (!ok || !c->exists) {
        sub_free(x); /* no such account: silently ignored (RFC 6121 8.5.1 for presence) */
        return;
    }
    /* Modules may refuse it now that the contact is loaded (blocking). */
    ipc_stanza_t msg = {.kind = IPC_KIND_PRESENCE, .stype = x->stype, .to = c->bare,
                        .from = x->from_bare};
    hook_ev_t ev = {.user = c, .from = x->from_bare, .to = c->bare, .msg = &msg, .st = x->st};
    if (hook_run(HOOK_STANZA_IN, &ev) == MOD_HANDLED) {
        sub_free(x);
        return;
    }
    roster_item_t *it = roster_find(c, x->from_bare);
    if (!it && x->stype == IPC_ST_SUBSCRIBE && waiting_requests(c) >= config_int("max_roster_items")) {
        /* A request from a stranger waits in the roster and comes back on every initial
         * presence: past max_roster_items of them, new ones are ignored, or any server
         * could pile up as many as it makes up JIDs (docs/ARCHITECTURE.md). */
        log_debug("presence: a subscription request from %s to %s ignored: %s has too many "
                  "waiting", x->from_bare, c->bare, c->bare);
        sub_free(x);
        return;
    }
    sub_state_t s = state_of(it);
    unsigned what = rules_sub_inbound(&s, x->stype);
    apply_state(c, it, x->from_bare, &s, what);
    /* A sender at another domain is not held here: its server sends its presence itself
     * (session_send_presence does nothing for it). */
    user_t *sender = user_find(x->from_bare);
    if (what & SUB_AUTO_SUBSCRIBED)
        send_sub(c->bare, x->from_bare, IPC_ST_SUBSCRIBED);
    /* Delivered to available resources now; a pending request also on the next initial
     * presence. */
    if (what & SUB_DELIVER)
        session_deliver_available(c, x->st);
    if (what & SUB_PRESENCE_TO_USER)
        session_send_presence(sender, c->bare, 0);
    if (what & SUB_UNAVAILABLE_TO_USER)
        session_send_presence(sender, c->bare, 1);
    if (what & SUB_UNAVAILABLE_TO_SENDER)
        session_send_presence(c, x->from_bare, 1);
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
    sub_state_t s = state_of(it);
    unsigned what = rules_sub_outbound(&s, x->stype);
    apply_state(u, it, x->to_bare, &s, what);
    if (!(what & SUB_ROUTE)) {
        sub_free(x);
        return;
    }
    if (remote_jid(x->to_bare))
        sub_send_remote(x); /* the contact's side is its server's (3.1.2, 3.2.2, ...) */
    else
        user_with_roster(x->to_bare, sub_inbound, x);
}

/* Remembers a directed-presence target (at most IPC_RESYNC_DIRECTED_MAX per session: past
 * that the presence is still delivered, but the target will not hear of the resource
 * leaving). */
static void directed_remember(session_t *s, const char *to, size_t len)
{
    if (!DIRECTED(s))
        module_slot(s, mod_presence) = hmap_new();
    if (hmap_count(DIRECTED(s)) < IPC_RESYNC_DIRECTED_MAX && !hmap_get(DIRECTED(s), to, len)) {
        char *copy = xstrndup(to, len);
        hmap_sput(DIRECTED(s), copy, copy);
    }
}

static void directed_forget(session_t *s, const char *to)
{
    if (DIRECTED(s))
        free(hmap_sdel(DIRECTED(s), to));
}

/* Directed presence to a local bare JID nobody is holding: a deleted address answers
 * through its tombstone (gone_answer). */
static void on_directed_tombstone(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    sub_t *x = privdata;
    const redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        gone_answer(x->to_bare, x->from_bare, 0, 1);
    sub_free(x);
}

static void directed_tombstone_check(const char *from_bare, const char *to)
{
    if (!rt.redis_ready)
        return;
    sub_t *x = xcalloc(1, sizeof *x);
    x->from_bare = xstrdup(from_bare);
    x->to_bare = xstrdup(to);
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_TOMBSTONE, to);
    if (rt_redis_command(on_directed_tombstone, x, "EXISTS %s", key) != REDIS_OK)
        sub_free(x);
}

/* RFC 6121 4.6: directed presence to one entity, remembered so that it gets our
 * unavailable presence when this resource goes away. */
static void directed(session_t *from, const ipc_stanza_t *h, xml_node_t *st, const char *to)
{
    if (h->stype == IPC_ST_UNAVAILABLE) {
        directed_forget(from, to);
    } else if (h->stype == IPC_ST_NONE) {
        directed_remember(from, to, strlen(to));
    }
    if (remote_jid(to)) {
        session_deliver_jid(to, st); /* out through s2s */
        return;
    }
    if (strchr(to, '/')) {
        session_t *target = session_find_jid(to);
        if (target)
            session_deliver_node(target, st);
        return;
    }
    user_t *target = user_find(to);
    if (target && target->sessions)
        session_deliver_available(target, st);
    else
        directed_tombstone_check(from->user->bare, to);
}

static void presence_outbound(session_t *from, const ipc_stanza_t *h, xml_node_t *st, const char *to)
{
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
        session_t *target = remote_jid(to) ? NULL : session_find_jid(to);
        if (target)
            session_deliver_node(target, st);
        else if (remote_jid(to))
            session_deliver_jid(to, st);
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

/* The last unavailable presence of a user whose last available resource went away, kept
 * (with a XEP-0203 delay stamp) to answer probes while the user is offline (RFC 6121
 * 4.3.2) and last-activity queries (XEP-0012). */
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
    stanza_add_delay(p, rt.domain, time(NULL));
    buf_t b = BUF_INIT;
    xml_serialize(p, XML_NS_CLIENT, &b);
    xml_node_free(&p);
    char key[STORAGE_KEY_MAX];
    storage_key(key, KEYS_LAST_UNAVAILABLE, u->bare);
    rt_redis_command(rt_redis_ignore, NULL, "SET %s %b", key, b.data, b.len);
    buf_free(&b);
}

/* The contacts of a user who just became available that have no available resource:
 * their last unavailable presence answers the probe (when the user is subscribed to
 * them), and a tombstone tells that the address was deleted. */
typedef struct {
    char *full;
    size_t n;
    char **jid;
    unsigned char *sub; /* OFF_* */
} offline_contacts_t;

enum {
    OFF_LAST = 1,  /* deliver its last unavailable presence (the probe found nobody) */
    OFF_TO = 2,    /* no session: the user is subscribed to it */
    OFF_ASKED = 4, /* no session: the user asked to be */
    OFF_FROM = 8,  /* no session: it is subscribed to the user */
};

static void offline_contacts_free(offline_contacts_t *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->jid[i]);
    free(o->jid);
    free(o->sub);
    free(o->full);
    free(o);
}

/* The reply of MGET: n last presences, then n tombstones. */
static void on_last_fetched(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    offline_contacts_t *o = privdata;
    redisReply *r = reply;
    session_t *s = session_find_jid(o->full);
    if (!s || !r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 * o->n) {
        offline_contacts_free(o);
        return;
    }
    char bare[JID_MAX + 1];
    snprintf(bare, sizeof bare, "%s", s->user->bare);
    for (size_t i = 0; i < o->n; i++) {
        const redisReply *last = r->element[i], *tomb = r->element[o->n + i];
        if (tomb->type == REDIS_REPLY_STRING) {
            /* The server's probe (or the user's request) was to a deleted address, and so
             * is the presence the user sends its subscribers. */
            gone_answer(o->jid[i], bare, (o->sub[i] & (OFF_TO | OFF_ASKED)) != 0,
                        (o->sub[i] & OFF_FROM) != 0);
            continue;
        }
        if (!(o->sub[i] & OFF_LAST) || last->type != REDIS_REPLY_STRING)
            continue;
        xml_node_t *p = stanza_parse(last->str, last->len);
        if (!p)
            continue;
        xml_node_set_attr(p, "to", s->full);
        session_deliver_node(s, p);
        xml_node_free(&p);
    }
    offline_contacts_free(o);
}

/* One MGET for every contact with no available resource. */
static void offline_contacts_fetch(offline_contacts_t *o)
{
    if (!rt.redis_ready || !o->n) {
        offline_contacts_free(o);
        return;
    }
    const char **argv = xcalloc(2 * o->n + 1, sizeof *argv);
    char **keys = xcalloc(2 * o->n, sizeof *keys);
    argv[0] = "MGET";
    for (size_t i = 0; i < 2 * o->n; i++) {
        keys[i] = xmalloc(STORAGE_KEY_MAX);
        storage_key(keys[i], i < o->n ? KEYS_LAST_UNAVAILABLE : KEYS_TOMBSTONE,
                    o->jid[i % o->n]);
        argv[i + 1] = keys[i];
    }
    if (rt_redis_command_argv(on_last_fetched, o, (int)(2 * o->n) + 1, argv, NULL) !=
        REDIS_OK)
        offline_contacts_free(o);
    for (size_t i = 0; i < 2 * o->n; i++)
        free(keys[i]);
    free(keys);
    free(argv);
}

static void offline_contacts_add(offline_contacts_t *o, const char *jid, unsigned sub)
{
    o->jid = xrealloc(o->jid, (o->n + 1) * sizeof *o->jid);
    o->sub = xrealloc(o->sub, (o->n + 1) * sizeof *o->sub);
    o->jid[o->n] = xstrdup(jid);
    o->sub[o->n++] = (unsigned char)sub;
}

/* RFC 6121 4.3: the presence of each available resource of a contact the user is
 * subscribed to, as the answer to the server's probe. Returns 1 when any was sent. */
static int probe_answer(session_t *s, user_t *contact)
{
    int answered = 0;
    for (session_t *cs = contact ? contact->sessions : NULL; cs; cs = cs->next) {
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
    return answered;
}

static void bcast_contacts(user_t *u, int ok, void *arg)
{
    bcast_t *b = arg;
    session_t *s = ok ? session_find_jid(b->full) : NULL;
    offline_contacts_t *off = NULL;
    if (s && b->initial) {
        off = xcalloc(1, sizeof *off);
        off->full = xstrdup(b->full);
    }
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (ok && hmap_next(u->roster, &pos, &k, &kl, &v)) {
        roster_item_t *it = v;
        int remote = remote_jid(it->jid);
        user_t *contact = remote ? NULL : user_find(it->jid);
        /* Blocking (XEP-0191) stops presence both ways (a remote contact's blocklist is
         * its server's to apply). */
        if (user_blocks(u, it->jid) || user_blocks(contact, b->full))
            continue;
        /* RFC 6121 4.2.2 / 4.4.2 / 4.5.2: to contacts subscribed to the user, local or
         * at another domain (out through s2s). */
        if (it->sub_from && remote)
            session_deliver_jid(it->jid, b->st);
        else if (it->sub_from)
            session_deliver_available(contact, b->st);
        if (!off)
            continue;
        if (remote) {
            /* 4.3.1: a probe from the user's bare JID to a contact it is subscribed to;
             * the contact's server answers with its presence (HOOK_PRESENCE_IN), its
             * last unavailable one included. */
            if (it->sub_to) {
                xml_node_t *p = presence_node(u->bare, "probe");
                xml_node_set_attr(p, "to", it->jid);
                remote_send_node(p);
                xml_node_free(&p);
            }
            /* A request that waited for the user to come online (3.1.3). */
            if (it->pending_in) {
                xml_node_t *p = presence_node(it->jid, "subscribe");
                xml_node_set_attr(p, "to", u->bare);
                session_deliver_node(s, p);
                xml_node_free(&p);
            }
            continue;
        }
        /* 4.3.2: a contact with no available resource answers with its last unavailable
         * presence, when one is stored; a deleted one with its tombstone (gone_answer). */
        unsigned want = it->sub_to && !probe_answer(s, contact) ? OFF_LAST : 0;
        if (!(contact && contact->sessions))
            want |= (it->sub_to ? OFF_TO : 0) | (it->ask_out ? OFF_ASKED : 0) |
                    (it->sub_from ? OFF_FROM : 0);
        if (want)
            offline_contacts_add(off, it->jid, want);
        /* Subscription requests that waited for the user to come online (3.1.3). */
        if (it->pending_in) {
            xml_node_t *p = presence_node(it->jid, "subscribe");
            xml_node_set_attr(p, "to", u->bare);
            session_deliver_node(s, p);
            xml_node_free(&p);
        }
    }
    if (off)
        offline_contacts_fetch(off);
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

/* A user whose last available resource went away no longer gets its contacts' presence:
 * the router forgets which remote contacts it saw online (rpresence.h). */
static void left_check(user_t *u)
{
    for (session_t *s = u->sessions; s; s = s->next)
        if (s->available)
            return;
    rpresence_user_left(u->bare);
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

/* RFC 6121 4.2.2 / 4.4.2: a resource that becomes available learns the presence of the
 * user's other available resources. */
static void own_resources_to(session_t *s)
{
    for (session_t *o = s->user->sessions; o; o = o->next) {
        if (o == s || !o->available || !o->last_presence)
            continue;
        xml_node_t *p = stanza_parse(o->last_presence, strlen(o->last_presence));
        if (!p)
            continue;
        xml_node_set_attr(p, "to", s->full);
        session_deliver_node(s, p);
        xml_node_free(&p);
    }
}

/* Unavailable presence to every entity that got directed presence and still sees us. */
static void directed_unavailable(session_t *s)
{
    hmap_t *targets = DIRECTED(s);
    if (!targets)
        return;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(targets, &pos, &k, &kl, &v)) {
        /* Nothing goes to a JID the user blocks (XEP-0191 3.3). */
        if (!user_blocks(s->user, v)) {
            xml_node_t *p = presence_node(s->full, "unavailable");
            xml_node_set_attr(p, "to", v);
            session_deliver_jid(v, p);
            xml_node_free(&p);
        }
        free(v);
    }
    hmap_destroy(&targets);
    module_slot(s, mod_presence) = NULL;
}

static void presence_broadcast(session_t *from, const ipc_stanza_t *h, xml_node_t *st)
{
    if (h->stype == IPC_ST_NONE) {
        int initial = !from->available, prev = from->priority;
        from->available = 1;
        from->priority = stanza_presence_priority(st);
        buf_t b = BUF_INIT;
        xml_serialize(st, XML_NS_CLIENT, &b);
        free(from->last_presence);
        from->last_presence = buf_steal(&b);
        /* RFC 6121 4.2.2: to all of the user's available resources, the sender included. */
        broadcast_own(from, st, 1);
        if (initial)
            own_resources_to(from);
        bcast_start(from, st, initial);
        hook_run(initial ? HOOK_PRESENCE_INITIAL : HOOK_PRESENCE_UPDATE,
                 &(hook_ev_t){.session = from, .user = from->user, .msg = h, .st = st,
                              .prev_priority = prev});
    } else if (h->stype == IPC_ST_UNAVAILABLE) {
        if (!from->available)
            return;
        /* RFC 6121 4.5.2: to the user's other available resources and contacts. */
        last_unavailable_store(from->user, from, st);
        broadcast_own(from, st, 0);
        from->available = 0;
        from->priority = 0;
        xfree(&from->last_presence);
        left_check(from->user);
        directed_unavailable(from);
        bcast_start(from, st, 0);
    }
}

/* ---- Presence from other domains (HOOK_PRESENCE_IN) ---- */

/* A probe from a contact at another domain, once the user is loaded. */
typedef struct {
    char *from; /* the prober's JID as its server sent it (RFC 6121 4.3.1: a bare JID) */
    xml_node_t *st;
} probe_t;

static void probe_free(probe_t *p)
{
    xml_node_free(&p->st);
    free(p->from);
    free(p);
}

/* RFC 6121 4.3.2: the user's server answers a probe on the user's behalf: `unsubscribed`
 * when the account does not exist or the prober is not subscribed to the user (no 'from'
 * subscription): the same answer both ways, so that a probe does not tell which accounts
 * exist; else the last presence of each available resource, or unavailable when there is
 * none. Nothing for a blocked prober. */
static void probe_loaded(user_t *u, int ok, void *arg)
{
    probe_t *p = arg;
    char from_bare[JID_MAX + 1];
    size_t fl = strcspn(p->from, "/");
    if (!ok || fl >= sizeof from_bare) {
        probe_free(p);
        return;
    }
    memcpy(from_bare, p->from, fl);
    from_bare[fl] = '\0';
    ipc_stanza_t msg = {.kind = IPC_KIND_PRESENCE, .stype = IPC_ST_PROBE, .to = u->bare,
                        .from = p->from};
    hook_ev_t ev = {.user = u, .from = p->from, .to = u->bare, .msg = &msg, .st = p->st};
    if (u->exists && hook_run(HOOK_STANZA_IN, &ev) == MOD_HANDLED) {
        probe_free(p);
        return;
    }
    roster_item_t *it = u->exists ? roster_find(u, from_bare) : NULL;
    if (!it || !it->sub_from) {
        xml_node_t *r = presence_node(u->bare, "unsubscribed");
        session_deliver_jid(from_bare, r);
        xml_node_free(&r);
        probe_free(p);
        return;
    }
    int sent = 0;
    for (session_t *s = u->sessions; s; s = s->next) {
        if (!s->available || !s->last_presence)
            continue;
        xml_node_t *r = stanza_parse(s->last_presence, strlen(s->last_presence));
        if (!r)
            continue;
        session_deliver_jid(p->from, r);
        xml_node_free(&r);
        sent++;
    }
    if (!sent) {
        xml_node_t *r = presence_node(u->bare, "unavailable");
        session_deliver_jid(p->from, r);
        xml_node_free(&r);
    }
    probe_free(p);
}

/* Presence a contact at another domain sent a local user (the remote server stamped it
 * and its frontend checked 'from'): subscriptions as inbound (appendix A.3, as from a
 * local contact: sub_inbound), probes answered (4.3.2), and available, unavailable and
 * error presence delivered (4.2.3, 4.4.3, 4.5.3, 4.6.3) to the resource it names or every
 * available resource, unless the user blocks the sender (XEP-0191 3.3). */
static mod_result_t on_presence_in(hook_ev_t *ev)
{
    const char *to = ev->to, *from = ev->from;
    jid_t jt, jf;
    char to_bare[JID_MAX + 1], from_bare[JID_MAX + 1];
    if (!to || !from || jid_parse(&jt, to) < 0 || jid_bare(&jt, to_bare, sizeof to_bare) < 0 ||
        jid_parse(&jf, from) < 0 || jid_bare(&jf, from_bare, sizeof from_bare) < 0)
        return MOD_HANDLED;
    switch (ev->msg->stype) {
    case IPC_ST_SUBSCRIBE:
    case IPC_ST_SUBSCRIBED:
    case IPC_ST_UNSUBSCRIBE:
    case IPC_ST_UNSUBSCRIBED: {
        sub_t *x = xcalloc(1, sizeof *x);
        x->from_bare = xstrdup(from_bare);
        x->to_bare = xstrdup(to_bare);
        x->stype = (ipc_stype_t)ev->msg->stype;
        /* 3.1.3: between bare JIDs, as the user's server stamped it (3.1.2). */
        x->st = xml_node_copy(ev->st);
        xml_node_set_attr(x->st, "from", x->from_bare);
        xml_node_set_attr(x->st, "to", x->to_bare);
        user_with_roster(to_bare, sub_inbound, x);
        break;
    }
    case IPC_ST_PROBE: {
        probe_t *p = xcalloc(1, sizeof *p);
        p->from = xstrdup(from);
        p->st = xml_node_copy(ev->st);
        user_with_roster(to_bare, probe_loaded, p);
        break;
    }
    case IPC_ST_NONE:
    case IPC_ST_UNAVAILABLE:
    case IPC_ST_ERROR: {
        user_t *u = NULL;
        if (strchr(to, '/')) {
            session_t *t = session_find_jid(to);
            int blocked = t && user_blocks(t->user, from);
            if (t && !blocked)
                session_deliver_node(t, ev->st);
            /* Unavailable presence is forgotten even when blocked. */
            u = t && (!blocked || ev->msg->stype != IPC_ST_NONE) ? t->user : NULL;
        } else {
            /* A user the router does not hold has no resource to get it. */
            u = user_find(to_bare);
            if (u && !user_blocks(u, from))
                session_deliver_available(u, ev->st);
            else if (u && ev->msg->stype == IPC_ST_NONE)
                u = NULL;
        }
        /* Which connection carried the contact's presence, so that its loss takes it back
         * (rpresence.h); only for a user with an available resource to show it. */
        int available = 0;
        for (session_t *s = u ? u->sessions : NULL; s; s = s->next)
            available |= s->available;
        if (available)
            rpresence_seen(u, to, from, (ipc_stype_t)ev->msg->stype, ev->frontend,
                           ev->msg->conn);
        break;
    }
    default:
        break;
    }
    return MOD_HANDLED;
}

/* Presence from a client: broadcast when it has no 'to', else directed or a subscription. */
static mod_result_t on_presence(hook_ev_t *ev)
{
    const char *to = xml_node_attr(ev->st, "to");
    if (to)
        presence_outbound(ev->session, ev->msg, ev->st, to);
    else
        presence_broadcast(ev->session, ev->msg, ev->st);
    return MOD_HANDLED;
}

static mod_result_t on_session_ended(hook_ev_t *ev)
{
    session_t *s = ev->session;
    if (!s->available) {
        directed_unavailable(s);
        return MOD_PASS;
    }
    xml_node_t *p = presence_node(s->full, "unavailable");
    last_unavailable_store(s->user, s, p);
    broadcast_own(s, p, 0);
    s->available = 0;
    left_check(s->user);
    directed_unavailable(s);
    bcast_start(s, p, 0);
    xml_node_free(&p);
    return MOD_PASS;
}

/* After a router restart: the directed-presence targets the frontend kept (common/ipc.h,
 * IPC_RESYNC_DIRECTED_MAX). */
static mod_result_t on_resync(hook_ev_t *ev)
{
    const char *p = ev->payload, *end = ev->payload ? ev->payload + ev->len : NULL;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n && n <= JID_MAX) {
            char jid[JID_MAX + 1];
            memcpy(jid, p, n);
            jid[n] = '\0';
            directed_remember(ev->session, jid, n);
        }
        p += n + 1;
    }
    return MOD_PASS;
}

/* The directed-presence targets, for the frontend that takes the session over. */
static mod_result_t on_describe(hook_ev_t *ev)
{
    hmap_t *targets = DIRECTED(ev->session);
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (targets && hmap_next(targets, &pos, &k, &kl, &v)) {
        if (ev->desc->targets->len)
            buf_append(ev->desc->targets, "\n", 1);
        buf_append_str(ev->desc->targets, v);
    }
    return MOD_PASS;
}

static mod_result_t on_session_freed(hook_ev_t *ev)
{
    left_check(ev->user); /* the session is out of the user's list already */
    hmap_t *targets = DIRECTED(ev->session);
    hmap_destroy_all(&targets, NULL);
    module_slot(ev->session, mod_presence) = NULL;
    return MOD_PASS;
}

/* RFC 6121 2.5.2: removing an item cancels both subscriptions, as if the user had sent
 * unsubscribe and unsubscribed, and a contact that saw the user sees it go. */
static mod_result_t on_roster_removed(hook_ev_t *ev)
{
    user_t *u = ev->user;
    roster_item_t *it = ev->item;
    static const ipc_stype_t cancel[] = {IPC_ST_UNSUBSCRIBE, IPC_ST_UNSUBSCRIBED};
    int need[] = {it->sub_to || it->ask_out, it->sub_from || it->pending_in};
    for (int i = 0; i < 2; i++)
        if (need[i])
            send_sub(u->bare, it->jid, cancel[i]);
    if (it->sub_from)
        session_send_presence(u, it->jid, 1);
    return MOD_PASS;
}

/* The account is deleted (account.h): RFC 6121 3.2 and 3.3 from the deleted address, so
 * that every contact's roster loses the subscriptions both ways (and their interested
 * resources get the push); its last presence goes with it. */
static mod_result_t on_user_deleted(hook_ev_t *ev)
{
    user_t *u = ev->user;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(u->roster, &pos, &k, &kl, &v)) {
        const roster_item_t *it = v;
        if (!(it->sub_to || it->sub_from || it->ask_out || it->pending_in))
            continue;
        send_sub(u->bare, it->jid, IPC_ST_UNSUBSCRIBE);
        send_sub(u->bare, it->jid, IPC_ST_UNSUBSCRIBED);
    }
    account_data_key(ev, KEYS_LAST_UNAVAILABLE);
    return MOD_PASS;
}

static const mod_hook_t hooks[] = {
    {HOOK_USER_DELETED, 0, on_user_deleted},
    {HOOK_PRESENCE, 0, on_presence},
    {HOOK_PRESENCE_IN, 0, on_presence_in},
    {HOOK_SESSION_ENDED, 0, on_session_ended},
    {HOOK_SESSION_FREED, 0, on_session_freed},
    {HOOK_SESSION_RESYNC, 0, on_resync},
    {HOOK_SESSION_DESCRIBE, 0, on_describe},
    {HOOK_ROSTER_REMOVED, 0, on_roster_removed},
    {0},
};

module_t mod_presence = {
    .name = "presence",
    .hooks = hooks,
    .wants_slot = 1,
};
