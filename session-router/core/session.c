/* The session table: sessions by (frontend, connection) and by full JID, users by bare
 * JID. A session is connected from bind to unbind; availability and priority come from
 * presence (the presence module). */
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jid.h"
#include "deliver.h"
#include "hook.h"
#include "link.h"
#include "log.h"
#include "route.h"
#include "smq.h"
#include "user.h"
#include "util.h"

/* The roster is loaded after a bind. A session that bound while its account was being
 * deleted (authenticated before the tombstone was written, bound after the account's
 * sessions were ended: account.h) ends as those did. Not at once: the load may complete
 * inside session_attach, whose caller still uses the session. */
static void close_if_deleted(evloop_t *loop, void *arg)
{
    (void)loop;
    char *bare = arg;
    user_t *u = user_find(bare);
    while (u && u->tombstoned && !u->exists && u->sessions) {
        session_t *s = u->sessions;
        link_send_close_text(s->fe, s->conn, "not-authorized", "Account deleted");
        log_info("bind: %s belongs to a deleted account, closing it", s->full);
        session_end(s);
        u = user_find(bare);
    }
    free(bare);
}

static void preload_done(user_t *u, int ok, void *arg)
{
    (void)arg;
    if (ok && u->tombstoned && !u->exists && u->sessions)
        evloop_timer(rt.loop, 0, close_if_deleted, xstrdup(u->bare));
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
        if (old->fe)
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
    s->bound_at = (int64_t)time(NULL);
    user_t *u = user_get(bare);
    s->user = u;
    s->next = u->sessions;
    u->sessions = s;
    user_release(u); /* the session keeps it now */
    unsigned char key[sizeof f->ident + 1 + sizeof conn];
    hmap_put(rt.by_conn, key, session_conn_key(key, f, conn), s);
    hmap_sput(rt.by_jid, s->full, s);
    f->nsessions++;
    metric_add(f->m_sessions, 1);
    /* Load the roster and blocklist now (after a bind or a resync), so routing to this
     * user can check them. */
    user_with_roster(s->user->bare, preload_done, NULL);
    hook_run(HOOK_SESSION_BOUND, &(hook_ev_t){.session = s, .user = u});
    return s;
}

void session_set_facts(session_t *s, const char *addr, const char *tls, uint64_t since)
{
    snprintf(s->addr, sizeof s->addr, "%s", addr ? addr : "");
    snprintf(s->tls, sizeof s->tls, "%s", tls ? tls : "");
    if (since)
        s->bound_at = (int64_t)since;
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
    session_detach(s);
    hmap_sdel(rt.by_jid, s->full);
    hook_run(HOOK_SESSION_FREED, &(hook_ev_t){.session = s, .user = u});
    free(s->last_presence);
    free(s->full);
    free(s);
    user_check(u);
}

void session_detach(session_t *s)
{
    if (!s->fe)
        return;
    unsigned char key[sizeof s->fe->ident + 1 + sizeof s->conn];
    hmap_del(rt.by_conn, key, session_conn_key(key, s->fe, s->conn));
    s->fe->nsessions--;
    metric_add(s->fe->m_sessions, -1);
    s->fe = NULL;
    s->conn = 0;
}

int session_reattach(session_t *s, rt_frontend_t *f, uint64_t conn)
{
    if (s->fe || session_find_conn(f, conn))
        return -1;
    s->fe = f;
    s->conn = conn;
    unsigned char key[sizeof f->ident + 1 + sizeof conn];
    hmap_put(rt.by_conn, key, session_conn_key(key, f, conn), s);
    f->nsessions++;
    metric_add(f->m_sessions, 1);
    return 0;
}

void session_end(session_t *s)
{
    /* What a client with stream management did not acknowledge is set apart first and
     * handed on once the session is gone (sm.h), so that it does not come back to it. */
    smq_item_t *left = s->sm ? smq_take(s->sm) : NULL;
    char *bare = left ? xstrdup(s->user->bare) : NULL;
    /* Modules let go of the session's state (the presence module sends its unavailable
     * presence: RFC 6121 4.5.2). */
    hook_run(HOOK_SESSION_ENDED, &(hook_ev_t){.session = s, .user = s->user});
    log_debug("session ended: %s", s->full);
    session_free(s);
    if (left)
        route_redeliver_items(bare, left);
    free(bare);
}

void sessions_free_all(void)
{
    deliver_report();
    size_t pos = 0, kl;
    const void *k;
    void *v;
    /* Every session, also those waiting for stream-management resumption: they have no
     * connection, so they are in by_jid but not in by_conn. */
    while (hmap_count(rt.by_jid)) {
        pos = 0;
        if (!hmap_next(rt.by_jid, &pos, &k, &kl, &v))
            break;
        session_free(v);
    }
}
