/* Remote contacts' presence and the connections it came on (rpresence.h). */
#include "rpresence.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jid.h"
#include "log.h"
#include "remote.h"
#include "route.h"
#include "user.h"
#include "util.h"

typedef struct rp_conn rp_conn_t;
typedef struct rp_entry rp_entry_t;

/* A remote full JID whose available presence a local user's resources got. */
struct rp_entry {
    char *user;              /* the local user's bare JID */
    char *full;              /* the remote JID */
    char *to;                /* where it was sent: the user's bare JID or one of its full JIDs */
    rp_conn_t *conn;         /* the connection it came on; NULL once that closed in order */
    rp_entry_t *prev, *next; /* in conn->entries */
};

/* A server connection of a frontend that carried presence we keep. */
struct rp_conn {
    unsigned char key[sizeof(((rt_frontend_t *)0)->ident) + 1 + sizeof(uint64_t)];
    size_t klen, ident_len; /* session_conn_key's layout: ident, NUL, connection id */
    rp_entry_t *entries;
};

static struct {
    hmap_t *users;  /* local bare JID -> hmap_t of remote JID -> rp_entry_t */
    hmap_t *conns;  /* frontend ident NUL connection id -> rp_conn_t */
    hmap_t *probes; /* "local bare JID\nremote bare JID" -> NULL: probes to send */
    ev_timer_t *probe_timer;
} P;

static void conn_unlink(rp_entry_t *e)
{
    rp_conn_t *c = e->conn;
    if (!c)
        return;
    if (e->prev)
        e->prev->next = e->next;
    else
        c->entries = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
    e->conn = NULL;
    if (!c->entries) {
        hmap_del(P.conns, c->key, c->klen);
        free(c);
    }
}

static void entry_free(rp_entry_t *e)
{
    conn_unlink(e);
    free(e->user);
    free(e->full);
    free(e->to);
    free(e);
}

static void entry_free_v(void *v)
{
    entry_free(v);
}

/* Takes `full` out of `bare`'s records (freed unless `keep`); returns it. */
static rp_entry_t *entry_take(const char *bare, const char *full, int keep)
{
    hmap_t *m = P.users ? hmap_sget(P.users, bare) : NULL;
    rp_entry_t *e = m ? hmap_sdel(m, full) : NULL;
    if (m && !hmap_count(m)) {
        hmap_sdel(P.users, bare);
        hmap_destroy(&m);
    }
    if (e && !keep) {
        entry_free(e);
        e = NULL;
    }
    return e;
}

/* The bare part of a JID (copied into out, JID_MAX + 1 bytes). */
static void bare_of(const char *jid, char *out)
{
    size_t n = strcspn(jid, "/");
    if (n > JID_MAX)
        n = JID_MAX;
    memcpy(out, jid, n);
    out[n] = '\0';
}

/* Forgets every resource of `contact_bare` in the user's records. */
static void forget_contact(const char *user, const char *contact_bare)
{
    hmap_t *m = P.users ? hmap_sget(P.users, user) : NULL;
    if (!m)
        return;
    size_t n = 0, pos = 0, kl;
    const void *k;
    void *v;
    char *drop[RPRESENCE_RESOURCES_MAX + 1];
    char bare[JID_MAX + 1];
    while (n < RPRESENCE_RESOURCES_MAX + 1 && hmap_next(m, &pos, &k, &kl, &v)) {
        bare_of(((rp_entry_t *)v)->full, bare);
        if (strcmp(bare, contact_bare) == 0)
            drop[n++] = ((rp_entry_t *)v)->full;
    }
    /* The names are the entries' own: copied before the first entry is freed. */
    char *names[RPRESENCE_RESOURCES_MAX + 1];
    for (size_t i = 0; i < n; i++)
        names[i] = xstrdup(drop[i]);
    for (size_t i = 0; i < n; i++) {
        entry_take(user, names[i], 0);
        free(names[i]);
    }
}

static rp_conn_t *conn_get(rt_frontend_t *f, uint64_t conn)
{
    unsigned char key[sizeof f->ident + 1 + sizeof conn];
    size_t kl = session_conn_key(key, f, conn);
    rp_conn_t *c = hmap_get(P.conns, key, kl);
    if (!c) {
        c = xcalloc(1, sizeof *c);
        memcpy(c->key, key, kl);
        c->klen = kl;
        c->ident_len = f->ident_len;
        hmap_put(P.conns, key, kl, c);
    }
    return c;
}

void rpresence_seen(user_t *u, const char *to, const char *from, ipc_stype_t stype,
                    rt_frontend_t *f, uint64_t conn)
{
    if (!u || !to || !from)
        return;
    char contact[JID_MAX + 1];
    bare_of(from, contact);
    if (stype != IPC_ST_NONE) {
        /* RFC 6121 4.5.3 (unavailable), 4.3.2 (a probe answered with an error): that
         * resource, or with a bare JID every resource, is no longer shown online. */
        if (strchr(from, '/'))
            entry_take(u->bare, from, 0);
        else
            forget_contact(u->bare, contact);
        return;
    }
    if (!f || !conn)
        return;
    /* Only contacts the user is subscribed to (RFC 6121 4.3.1: those it probes when it
     * comes online): another server cannot make the router keep presence of JIDs it
     * makes up. */
    const roster_item_t *it = roster_find(u, contact);
    if (!it || !it->sub_to || it->hidden)
        return;
    if (!P.users) {
        P.users = hmap_new();
        P.conns = hmap_new();
    }
    hmap_t *m = hmap_sget(P.users, u->bare);
    rp_entry_t *e = m ? hmap_sget(m, from) : NULL;
    if (!e) {
        size_t same = 0, pos = 0, kl;
        const void *k;
        void *v;
        char bare[JID_MAX + 1];
        while (m && hmap_next(m, &pos, &k, &kl, &v)) {
            bare_of(((rp_entry_t *)v)->full, bare);
            same += strcmp(bare, contact) == 0;
        }
        if ((m && (long)hmap_count(m) >= config_int("max_roster_items")) ||
            same >= RPRESENCE_RESOURCES_MAX) {
            log_debug("rpresence: %s not kept for %s: too many remote resources", from, u->bare);
            return;
        }
        if (!m) {
            m = hmap_new();
            hmap_sput(P.users, u->bare, m);
        }
        e = xcalloc(1, sizeof *e);
        e->user = xstrdup(u->bare);
        e->full = xstrdup(from);
        hmap_sput(m, e->full, e);
    }
    if (!e->to || strcmp(e->to, to) != 0) {
        free(e->to);
        e->to = xstrdup(to);
    }
    /* The latest connection it came on is the one whose loss matters. */
    conn_unlink(e);
    rp_conn_t *c = conn_get(f, conn);
    e->conn = c;
    e->next = c->entries;
    if (c->entries)
        c->entries->prev = e;
    c->entries = e;
}

void rpresence_user_left(const char *bare)
{
    hmap_t *m = P.users ? hmap_sdel(P.users, bare) : NULL;
    hmap_destroy_all(&m, entry_free_v);
}

/* The probes of lost contacts, one per (user, contact), sent once the loop comes round:
 * after a frontend restart the new one has said hello by then and carries them. */
static void on_probe_timer(evloop_t *loop, void *ud)
{
    (void)loop;
    (void)ud;
    P.probe_timer = NULL;
    hmap_t *probes = P.probes;
    P.probes = NULL;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (probes && hmap_next(probes, &pos, &k, &kl, &v)) {
        char pair[2 * (JID_MAX + 1)];
        if (kl >= sizeof pair)
            continue;
        memcpy(pair, k, kl);
        pair[kl] = '\0';
        char *contact = strchr(pair, '\n');
        if (!contact)
            continue;
        *contact++ = '\0';
        /* Only while the user still wants the contact's presence: an available resource
         * and the 'to' subscription. */
        user_t *u = user_find(pair);
        int available = 0;
        for (session_t *s = u ? u->sessions : NULL; s; s = s->next)
            available |= s->available;
        const roster_item_t *it = available ? roster_find(u, contact) : NULL;
        /* Nor to a contact the user blocks (XEP-0191: as on initial presence). */
        if (!it || !it->sub_to || user_blocks(u, contact))
            continue;
        /* RFC 6121 4.3.1: from the user's bare JID to the contact's bare JID, as on the
         * user's initial presence; the answer (4.3.2: its resources' presence, or
         * unavailable) comes in as presence from its server (HOOK_PRESENCE_IN). */
        xml_node_t *p = xml_node_new("presence", XML_NS_CLIENT);
        xml_node_set_attr(p, "type", "probe");
        xml_node_set_attr(p, "from", pair);
        xml_node_set_attr(p, "to", contact);
        remote_send_node(p);
        xml_node_free(&p);
    }
    hmap_destroy(&probes);
}

/* A connection's presence is lost: each contact's unavailable presence goes to the user's
 * resources as if its server had sent it, then a probe per (user, contact). */
static void conn_lost(rp_conn_t *c, const char *why)
{
    /* Out of every table first: delivering runs the presence hooks, which look here. */
    rp_entry_t *list = c->entries;
    size_t n = 0;
    for (rp_entry_t *e = list; e; e = e->next) {
        e->conn = NULL;
        entry_take(e->user, e->full, 1);
        n++;
    }
    hmap_del(P.conns, c->key, c->klen);
    free(c);
    log_info("rpresence: %s: %zu remote contacts' presence taken back, probing them", why, n);
    if (!P.probes)
        P.probes = hmap_new();
    while (list) {
        rp_entry_t *e = list;
        list = e->next;
        char contact[JID_MAX + 1], pair[2 * (JID_MAX + 1)];
        bare_of(e->full, contact);
        size_t pl = (size_t)snprintf(pair, sizeof pair, "%s\n%s", e->user, contact);
        if (pl < sizeof pair)
            hmap_put(P.probes, pair, pl, NULL);
        /* RFC 6121 4.5.3: unavailable presence from the contact's full JID, delivered
         * by the path presence from its server takes (route_remote_stanza, then the
         * presence module): blocking applies, available resources get it. */
        xml_node_t *p = xml_node_new("presence", XML_NS_CLIENT);
        xml_node_set_attr(p, "type", "unavailable");
        xml_node_set_attr(p, "from", e->full);
        xml_node_set_attr(p, "to", e->to);
        buf_t b = BUF_INIT;
        xml_serialize(p, XML_NS_CLIENT, &b);
        ipc_s2s_t m = {.kind = IPC_KIND_PRESENCE, .stype = IPC_ST_UNAVAILABLE, .to = e->to,
                       .from = e->full};
        route_remote_stanza(NULL, &m, b.data, b.len);
        buf_free(&b);
        xml_node_free(&p);
        e->next = NULL;
        entry_free(e);
    }
    if (!P.probe_timer && hmap_count(P.probes))
        P.probe_timer = evloop_timer(rt.loop, 0, on_probe_timer, NULL);
}

void rpresence_conn_closed(rt_frontend_t *f, uint64_t conn, const char *domain, int lost)
{
    if (!P.conns)
        return;
    unsigned char key[sizeof f->ident + 1 + sizeof conn];
    rp_conn_t *c = hmap_get(P.conns, key, session_conn_key(key, f, conn));
    if (!c)
        return;
    if (lost) {
        char why[sizeof f->ident + JID_PART_MAX + 64];
        snprintf(why, sizeof why, "connection %" PRIu64 " of %s from %s lost", conn, f->ident,
                 domain);
        conn_lost(c, why);
        return;
    }
    /* Closed in order: the presence stays valid (the remote server sends later changes on
     * a new connection); the connection is just not watched any more. */
    for (rp_entry_t *e = c->entries, *next; e; e = next) {
        next = e->next;
        conn_unlink(e); /* frees c with the last one */
    }
}

void rpresence_frontend_gone(rt_frontend_t *f)
{
    if (!P.conns)
        return;
    /* The keys of its connections first: taking one back runs the presence hooks, so
     * each is looked up again when its turn comes. */
    typedef struct {
        unsigned char key[sizeof(((rp_conn_t *)0)->key)];
        size_t klen;
    } conn_key_t;
    size_t n = 0, cap = 0, pos = 0, kl;
    const void *k;
    void *v;
    conn_key_t *keys = NULL;
    while (hmap_next(P.conns, &pos, &k, &kl, &v)) {
        const rp_conn_t *c = v;
        if (c->ident_len != f->ident_len || memcmp(c->key, f->ident, f->ident_len) != 0)
            continue;
        if (n == cap)
            keys = xrealloc(keys, (cap = cap ? 2 * cap : 16) * sizeof *keys);
        memcpy(keys[n].key, c->key, c->klen);
        keys[n++].klen = c->klen;
    }
    char why[sizeof f->ident + 32];
    snprintf(why, sizeof why, "frontend %s gone", f->ident);
    for (size_t i = 0; i < n; i++) {
        rp_conn_t *c = hmap_get(P.conns, keys[i].key, keys[i].klen);
        if (c)
            conn_lost(c, why);
    }
    free(keys);
}

void rpresence_counts(size_t *users, size_t *entries, size_t *conns)
{
    *users = P.users ? hmap_count(P.users) : 0;
    *conns = P.conns ? hmap_count(P.conns) : 0;
    *entries = 0;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (P.users && hmap_next(P.users, &pos, &k, &kl, &v))
        *entries += hmap_count(v);
}

void rpresence_close(void)
{
    evloop_cancel(rt.loop, &P.probe_timer);
    hmap_destroy(&P.probes);
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (P.users && hmap_next(P.users, &pos, &k, &kl, &v)) {
        hmap_t *m = v;
        hmap_destroy_all(&m, entry_free_v);
    }
    hmap_destroy(&P.users);
    hmap_destroy(&P.conns); /* emptied as the entries went */
}
