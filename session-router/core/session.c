/* The session table: sessions by (frontend, connection) and by full JID, users by bare
 * JID. A session is connected from bind to unbind; availability and priority come from
 * presence (the presence module). */
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jid.h"
#include "link.h"
#include "log.h"
#include "module.h"
#include "stanza.h"
#include "user.h"
#include "util.h"

/* The by_conn key: frontend ident, a NUL, the 8 connection id bytes. */
static size_t conn_key(unsigned char *key, const rt_frontend_t *f, uint64_t conn)
{
    memcpy(key, f->ident, f->ident_len);
    key[f->ident_len] = '\0';
    memcpy(key + f->ident_len + 1, &conn, sizeof conn);
    return f->ident_len + 1 + sizeof conn;
}

session_t *session_find_conn(rt_frontend_t *f, uint64_t conn)
{
    unsigned char key[sizeof f->ident + 1 + sizeof conn];
    return hmap_get(rt.by_conn, key, conn_key(key, f, conn));
}

session_t *session_find_jid(const char *full)
{
    return hmap_sget(rt.by_jid, full);
}

user_t *user_find(const char *bare)
{
    return hmap_sget(rt.users, bare);
}

int session_deliver(session_t *s, const char *data, size_t len)
{
    return link_send_deliver(s->fe, s->conn, data, len);
}

/* Delivery failures since start, and when one was last logged: a frontend that stopped
 * reading makes every delivery to it fail, so one line a second says how many. */
static struct {
    unsigned long long bounced, lost;
    uint64_t last_ms;
    unsigned long skipped;
} undelivered;

void session_undelivered(const session_t *s, int err, const char *what, int bounced)
{
    if (bounced)
        undelivered.bounced++;
    else
        undelivered.lost++;
    uint64_t now = now_ms();
    if (undelivered.last_ms && now - undelivered.last_ms < 1000) {
        undelivered.skipped++;
        return;
    }
    log_warn("delivery: %s for %s %s: %s (%llu bounced to their senders and %llu server "
             "stanzas lost since start; %lu failures not logged)",
             what, s->full, bounced ? "bounced with resource-constraint" : "lost",
             err == EAGAIN ? "its frontend's pipe is full"
                           : err == EHOSTUNREACH ? "its frontend is unreachable"
                                                 : "the link refused it",
             undelivered.bounced, undelivered.lost, undelivered.skipped);
    undelivered.last_ms = now;
    undelivered.skipped = 0;
}

int session_deliver_server(session_t *s, const char *data, size_t len, const char *what)
{
    if (session_deliver(s, data, len) == 0)
        return 0;
    session_undelivered(s, errno, what, 0);
    return -1;
}

void session_deliver_node(session_t *s, const xml_node_t *node)
{
    buf_t b = BUF_INIT;
    xml_serialize(node, XML_NS_CLIENT, &b);
    session_deliver_server(s, b.data, b.len, node->name ? node->name : "a stanza");
    buf_free(&b);
}

void session_deliver_available(user_t *target, xml_node_t *st)
{
    for (session_t *s = target ? target->sessions : NULL; s; s = s->next) {
        if (!s->available)
            continue;
        xml_node_set_attr(st, "to", s->full);
        session_deliver_node(s, st);
    }
}

void session_deliver_jid(const char *jid, xml_node_t *st)
{
    if (strchr(jid, '/')) {
        session_t *t = session_find_jid(jid);
        if (t)
            session_deliver_node(t, st);
    } else {
        session_deliver_available(user_find(jid), st);
    }
}

void session_send_presence(user_t *u, user_t *target, int unavailable)
{
    if (!u || !target)
        return;
    for (session_t *s = u->sessions; s; s = s->next) {
        if (!s->available)
            continue;
        xml_node_t *p = NULL;
        if (!unavailable && s->last_presence)
            p = stanza_parse(s->last_presence, strlen(s->last_presence));
        if (!p) {
            p = xml_node_new("presence", XML_NS_CLIENT);
            xml_node_set_attr(p, "from", s->full);
            if (unavailable)
                xml_node_set_attr(p, "type", "unavailable");
        }
        session_deliver_available(target, p);
        xml_node_free(&p);
    }
}

void session_reply_error(session_t *s, const xml_node_t *st, const char *etype,
                         const char *cond)
{
    xml_node_t *err = stanza_error_reply(st, rt.domain, etype, cond);
    session_deliver_node(s, err);
    xml_node_free(&err);
}

void session_reply_result(session_t *s, const xml_node_t *st, xml_node_t *payload)
{
    xml_node_t *res = stanza_iq_result(st, rt.domain);
    if (payload)
        xml_node_add_child(res, payload);
    session_deliver_node(s, res);
    xml_node_free(&res);
}

static void preload_done(user_t *u, int ok, void *arg)
{
    (void)u;
    (void)ok;
    (void)arg;
}

session_t *session_attach(rt_frontend_t *f, uint64_t conn, const char *full)
{
    jid_t j;
    char bare[JID_MAX + 1];
    if (jid_parse(&j, full) < 0 || !j.local[0] || !j.resource[0] ||
        strcmp(j.domain, rt.domain) != 0 || jid_bare(&j, bare, sizeof bare) < 0 ||
        session_find_conn(f, conn))
        return NULL;
    /* RFC 6120 7.7.2.2: a second bind of the same full JID ends the older session. */
    session_t *old = session_find_jid(full);
    if (old) {
        link_send_close(old->fe, old->conn, "conflict");
        log_info("bind: %s bound again, closing the older session", old->full);
        session_end(old);
    }
    session_t *s = xcalloc(1, sizeof *s);
    s->fe = f;
    s->conn = conn;
    s->full = xstrdup(full);
    s->resource = strchr(s->full, '/') + 1;
    s->bound_ms = now_ms();
    user_t *u = user_get(bare);
    s->user = u;
    s->next = u->sessions;
    u->sessions = s;
    user_release(u); /* the session keeps it now */
    unsigned char key[sizeof f->ident + 1 + sizeof conn];
    hmap_put(rt.by_conn, key, conn_key(key, f, conn), s);
    hmap_sput(rt.by_jid, s->full, s);
    f->nsessions++;
    /* Load the roster and blocklist now (after a bind or a resync), so routing to this
     * user can check them. */
    user_with_roster(s->user->bare, preload_done, NULL);
    hook_run(HOOK_SESSION_BOUND, &(hook_ev_t){.session = s, .user = u});
    return s;
}

int session_over_limit(const char *full)
{
    jid_t j;
    char bare[JID_MAX + 1];
    if (jid_parse(&j, full) < 0 || jid_bare(&j, bare, sizeof bare) < 0)
        return 0; /* session_attach refuses it */
    user_t *u = user_find(bare);
    long n = 0;
    for (session_t *s = u ? u->sessions : NULL; s; s = s->next)
        if (strcmp(s->full, full) != 0)
            n++;
    return n >= rt.max_resources;
}

/* Removes a session from every table and frees it; no presence is sent. */
static void session_free(session_t *s)
{
    user_t *u = s->user;
    for (session_t **pp = &u->sessions; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    unsigned char key[sizeof s->fe->ident + 1 + sizeof s->conn];
    hmap_del(rt.by_conn, key, conn_key(key, s->fe, s->conn));
    hmap_sdel(rt.by_jid, s->full);
    s->fe->nsessions--;
    hook_run(HOOK_SESSION_FREED, &(hook_ev_t){.session = s, .user = u});
    free(s->last_presence);
    free(s->full);
    free(s);
    user_check(u);
}

void session_end(session_t *s)
{
    /* Modules let go of the session's state (the presence module sends its unavailable
     * presence: RFC 6121 4.5.2). */
    hook_run(HOOK_SESSION_ENDED, &(hook_ev_t){.session = s, .user = s->user});
    log_debug("session ended: %s", s->full);
    session_free(s);
}

void session_end_frontend(rt_frontend_t *f)
{
    /* Collect first: ending sessions changes the map. */
    size_t n = 0, cap = 16, pos = 0, kl;
    const void *k;
    void *v;
    session_t **list = xmalloc(cap * sizeof *list);
    while (hmap_next(rt.by_conn, &pos, &k, &kl, &v)) {
        session_t *s = v;
        if (s->fe != f)
            continue;
        if (n == cap)
            list = xrealloc(list, (cap *= 2) * sizeof *list);
        list[n++] = s;
    }
    for (size_t i = 0; i < n; i++)
        session_end(list[i]);
    free(list);
}

void sessions_free_all(void)
{
    if (undelivered.bounced || undelivered.lost)
        log_info("delivery: %llu stanzas bounced to their senders and %llu server stanzas lost "
                 "since start (a frontend's pipe was full or it was gone)",
                 undelivered.bounced, undelivered.lost);
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_count(rt.by_conn)) {
        pos = 0;
        if (!hmap_next(rt.by_conn, &pos, &k, &kl, &v))
            break;
        session_free(v);
    }
}
