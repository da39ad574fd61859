/* The core's admin commands (admin.h): sessions, kick, stats, user, announce. Each reads
 * the router's tables or Redis and answers in plain text, one fact per line
 * (docs/PROTOCOL.md, "Admin endpoint"). */
#include "admin_cmds.h"

#include <hiredis/async.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "admin.h"
#include "buf.h"
#include "deliver.h"
#include "jid.h"
#include "keys.h"
#include "link.h"
#include "log.h"
#include "session.h"
#include "sm.h"
#include "storage.h"
#include "util.h"

/* `sessions` without a JID lists at most this many, then says how many more there are. */
#define SESSIONS_LIST_MAX 1000
/* A kick's reason travels in one IPC_CLOSE field. */
#define KICK_REASON_MAX 1000
#define KICK_DEFAULT_REASON "Disconnected by the server administrator"

/* "2026-12-06T18:34:13Z" */
static void iso_time(char *out, size_t n, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, n, "?");
}

/* One line of `sessions`: full JID, frontend, client address, bound since, TLS version,
 * stream management, separated by tabs. */
static void session_line(buf_t *b, const session_t *s)
{
    char since[32];
    iso_time(since, sizeof since, s->bound_at);
    buf_printf(b, "%s\t%s\t%s\t%s\t%s\t%s\n", s->full, s->fe ? s->fe->name : "(waiting)",
               *s->addr ? s->addr : "-", since, *s->tls ? s->tls : "-",
               !s->sm ? "no" : s->fe ? "yes" : "waiting");
}

static int compare_sessions(const void *a, const void *b)
{
    return strcmp((*(session_t *const *)a)->full, (*(session_t *const *)b)->full);
}

/* The sessions a JID names: a full JID its session, a bare JID every session of that user,
 * NULL every session. Returns a malloc'd array (sorted by full JID) and its length; *err
 * is set when the JID is not valid. */
static session_t **select_sessions(const char *arg, size_t *n, const char **err)
{
    *n = 0;
    *err = NULL;
    session_t **list;
    if (!arg) {
        size_t cap = hmap_count(rt.by_jid), pos = 0, kl;
        const void *k;
        void *v;
        list = xcalloc(cap ? cap : 1, sizeof *list);
        while (hmap_next(rt.by_jid, &pos, &k, &kl, &v) && *n < cap)
            list[(*n)++] = v;
    } else {
        jid_t j;
        char jid[JID_MAX + 1];
        if (jid_parse(&j, arg) < 0 || !j.local[0]) {
            *err = "not a valid JID (user@domain or user@domain/resource)";
            return NULL;
        }
        if (j.resource[0]) {
            jid_full(&j, jid, sizeof jid);
            list = xcalloc(1, sizeof *list);
            session_t *s = session_find_jid(jid);
            if (s)
                list[(*n)++] = s;
        } else {
            jid_bare(&j, jid, sizeof jid);
            user_t *u = user_find(jid);
            size_t cap = 0;
            for (session_t *s = u ? u->sessions : NULL; s; s = s->next)
                cap++;
            list = xcalloc(cap ? cap : 1, sizeof *list);
            for (session_t *s = u ? u->sessions : NULL; s; s = s->next)
                list[(*n)++] = s;
        }
    }
    qsort(list, *n, sizeof *list, compare_sessions);
    return list;
}

static void cmd_sessions(admin_req_t *req, int argc, const char *const *argv)
{
    size_t n;
    const char *err;
    session_t **list = select_sessions(argc > 1 ? argv[1] : NULL, &n, &err);
    if (!list) {
        admin_replyf(req, 0, "'%s': %s", argv[1], err);
        return;
    }
    buf_t b = BUF_INIT;
    size_t shown = n < SESSIONS_LIST_MAX ? n : SESSIONS_LIST_MAX;
    for (size_t i = 0; i < shown; i++)
        session_line(&b, list[i]);
    if (shown < n)
        buf_printf(&b, "... and %zu more sessions (%zu in all; give a JID to see them)\n",
                   n - shown, n);
    admin_reply(req, 1, b.data ? b.data : "");
    buf_free(&b);
    free(list);
}

/* kick: RFC 6120 4.9.3.14 policy-violation, the condition for "the entity has violated
 * some local service policy" that a server uses to end a session on its own account;
 * the reason goes in the stream error's <text/>. */
static void cmd_kick(admin_req_t *req, int argc, const char *const *argv)
{
    const char *reason = argc > 2 && *argv[2] ? argv[2] : KICK_DEFAULT_REASON;
    if (strlen(reason) > KICK_REASON_MAX) {
        admin_replyf(req, 0, "the reason is longer than %d bytes", KICK_REASON_MAX);
        return;
    }
    size_t n;
    const char *err;
    session_t **list = select_sessions(argv[1], &n, &err);
    if (!list) {
        admin_replyf(req, 0, "'%s': %s", argv[1], err);
        return;
    }
    if (!n) {
        free(list);
        admin_replyf(req, 0, "%s has no session", argv[1]);
        return;
    }
    /* Ending a session can change the user's list and free the user: keep the JIDs and
     * find each session again. */
    char **jids = xcalloc(n, sizeof *jids);
    for (size_t i = 0; i < n; i++)
        jids[i] = xstrdup(list[i]->full);
    free(list);
    buf_t b = BUF_INIT;
    size_t kicked = 0;
    for (size_t i = 0; i < n; i++) {
        session_t *s = session_find_jid(jids[i]);
        if (s) {
            if (s->fe && link_send_close_text(s->fe, s->conn, "policy-violation", reason) < 0)
                log_warn("admin: kick %s: its frontend %s did not take the close order",
                         s->full, s->fe->ident);
            log_info("admin: kicked %s (%s)", s->full, reason);
            session_end(s);
            buf_printf(&b, "kicked %s\n", jids[i]);
            kicked++;
        }
        free(jids[i]);
    }
    free(jids);
    admin_reply(req, kicked > 0, b.data ? b.data : "no session");
    buf_free(&b);
}

static int compare_frontends(const void *a, const void *b)
{
    const rt_frontend_t *x = *(const rt_frontend_t *const *)a;
    const rt_frontend_t *y = *(const rt_frontend_t *const *)b;
    return strcmp(x->name, y->name);
}

static void cmd_stats(admin_req_t *req, int argc, const char *const *argv)
{
    (void)argc;
    (void)argv;
    size_t available = 0, pos = 0, kl, users = 0;
    const void *k;
    void *v;
    while (hmap_next(rt.by_jid, &pos, &k, &kl, &v))
        available += ((session_t *)v)->available != 0;
    pos = 0;
    while (hmap_next(rt.users, &pos, &k, &kl, &v))
        users += ((user_t *)v)->sessions != NULL;
    buf_t b = BUF_INIT;
    uint64_t now = now_ms();
    buf_printf(&b, "uptime seconds: %" PRIu64 "\n", (now - rt.started_ms) / 1000);
    buf_printf(&b, "sessions: %zu\n", hmap_count(rt.by_jid));
    buf_printf(&b, "available sessions: %zu\n", available);
    buf_printf(&b, "users online: %zu\n", users);
    buf_printf(&b, "sessions waiting for resumption: %zu\n", sm_waiting());
    size_t nf = hmap_count(rt.frontends), i = 0;
    rt_frontend_t **fes = xcalloc(nf ? nf : 1, sizeof *fes);
    pos = 0;
    while (hmap_next(rt.frontends, &pos, &k, &kl, &v) && i < nf)
        fes[i++] = v;
    qsort(fes, nf, sizeof *fes, compare_frontends);
    buf_printf(&b, "frontends: %zu\n", nf);
    for (i = 0; i < nf; i++)
        buf_printf(&b, "frontend %s: %zu sessions\n", fes[i]->name, fes[i]->nsessions);
    free(fes);
    unsigned long long recent = admin_stanzas_recent(ADMIN_RATE_WINDOW);
    buf_printf(&b, "stanzas per second: %.1f (last %d s)\n", (double)recent / ADMIN_RATE_WINDOW,
               ADMIN_RATE_WINDOW);
    buf_printf(&b, "stanzas since start: %llu\n", admin_stanzas_total());
    for (const admin_counter_t *c = admin_counters(); c; c = c->next)
        buf_printf(&b, "%s: %llu\n", c->name, c->value);
    buf_printf(&b, "redis: %s\n", rt.redis_ready ? "connected" : "not connected");
    admin_reply(req, 1, b.data);
    buf_free(&b);
}

/* What `user` needs once Redis answers. */
typedef struct {
    admin_req_t *req;
    char bare[JID_MAX + 1];
} user_query_t;

static long long int_of(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

static void on_user(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    user_query_t *q = privdata;
    redisReply *rep = reply;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 4) {
        admin_replyf(q->req, 0, "Redis did not answer (%s)",
                     rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "connection lost");
        free(q);
        return;
    }
    buf_t b = BUF_INIT;
    buf_printf(&b, "user: %s\n", q->bare);
    buf_printf(&b, "exists: %s\n", int_of(rep->element[0]) > 0 ? "yes" : "no");
    buf_printf(&b, "roster items: %lld\n", int_of(rep->element[1]));
    buf_printf(&b, "offline messages: %lld\n", int_of(rep->element[2]));
    const redisReply *t = rep->element[3];
    if (t && t->type == REDIS_REPLY_STRING) {
        char *end;
        long long when = strtoll(t->str, &end, 10);
        char iso[32];
        if (*end || end == t->str)
            snprintf(iso, sizeof iso, "%.20s", t->str);
        else
            iso_time(iso, sizeof iso, when);
        buf_printf(&b, "tombstone: deleted %s\n", iso);
    } else {
        buf_printf(&b, "tombstone: none\n");
    }
    user_t *u = user_find(q->bare);
    size_t online = 0;
    for (session_t *s = u ? u->sessions : NULL; s; s = s->next)
        online++;
    buf_printf(&b, "sessions: %zu\n", online);
    admin_reply(q->req, 1, b.data);
    buf_free(&b);
    free(q);
}

/* The prepared bare JID of an account of ours in `arg`, into bare; else answers the
 * request with why not and returns -1 (also when Redis is not connected). */
static int account_arg(admin_req_t *req, const char *arg, char *bare, size_t n)
{
    jid_t j;
    if (jid_parse(&j, arg) < 0 || !j.local[0] || j.resource[0] || jid_bare(&j, bare, n) < 0) {
        admin_replyf(req, 0, "'%s' is not a bare JID (user@%s)", arg, rt.domain);
        return -1;
    }
    if (strcmp(j.domain, rt.domain) != 0) {
        admin_replyf(req, 0, "'%s' is not an account of %s", arg, rt.domain);
        return -1;
    }
    if (!rt.redis_ready) {
        admin_reply(req, 0, "Redis is not connected: try again later");
        return -1;
    }
    return 0;
}

static void cmd_user(admin_req_t *req, int argc, const char *const *argv)
{
    (void)argc;
    user_query_t *q = xcalloc(1, sizeof *q);
    if (account_arg(req, argv[1], q->bare, sizeof q->bare) < 0) {
        free(q);
        return;
    }
    char acct[STORAGE_KEY_MAX], roster[STORAGE_KEY_MAX], offline[STORAGE_KEY_MAX],
        tomb[STORAGE_KEY_MAX];
    storage_key(acct, KEYS_ACCOUNT, q->bare);
    storage_key(roster, KEYS_ROSTER, q->bare);
    storage_key(offline, KEYS_OFFLINE, q->bare);
    storage_key(tomb, KEYS_TOMBSTONE, q->bare);
    q->req = req;
    rt_redis_command(rt_redis_ignore, NULL, "MULTI");
    rt_redis_command(rt_redis_ignore, NULL, "EXISTS %s", acct);
    rt_redis_command(rt_redis_ignore, NULL, "HLEN %s", roster);
    rt_redis_command(rt_redis_ignore, NULL, "LLEN %s", offline);
    rt_redis_command(rt_redis_ignore, NULL, "GET %s", tomb);
    if (rt_redis_command(on_user, q, "EXEC") != REDIS_OK) {
        free(q);
        admin_reply(req, 0, "Redis is not connected: try again later");
    }
}

/* announce: a headline message (RFC 6121 5.2.2: not stored offline, no reply expected)
 * from the server to every available resource. */
static void cmd_announce(admin_req_t *req, int argc, const char *const *argv)
{
    (void)argc;
    const char *text = argv[1];
    if (!*text) {
        admin_reply(req, 0, "the announcement is empty");
        return;
    }
    xml_node_t *m = xml_node_new("message", XML_NS_CLIENT);
    xml_node_set_attr(m, "type", "headline");
    xml_node_set_attr(m, "from", rt.domain);
    char id[40];
    random_id(id, sizeof id, "announce-");
    xml_node_set_attr(m, "id", id);
    xml_node_add_text(xml_node_new_child(m, "body", NULL), text, strlen(text));
    size_t sent = 0, failed = 0, pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(rt.by_jid, &pos, &k, &kl, &v)) {
        session_t *s = v;
        if (!s->available)
            continue;
        xml_node_set_attr(m, "to", s->full);
        buf_t b = BUF_INIT;
        xml_serialize(m, XML_NS_CLIENT, &b);
        if (session_deliver_server(s, b.data, b.len, "an announcement") == 0)
            sent++;
        else
            failed++;
        buf_free(&b);
    }
    xml_node_free(&m);
    log_info("admin: announcement sent to %zu sessions (%zu failed)", sent, failed);
    admin_replyf(req, 1, "announced to %zu sessions%s", sent,
                 failed ? " (some frontends did not take it)" : "");
}

/* deluser: account.c's deletion, as in-band removal does it; the answer comes when the
 * deletion has finished (or failed: then the tombstone keeps the account shut and the same
 * command finishes it). */
static void on_deleted(void *arg, account_status_t status)
{
    admin_req_t *req = arg;
    switch (status) {
    case ACCOUNT_COMMITTED:
        return;
    case ACCOUNT_DELETED:
        admin_reply(req, 1, "deleted");
        return;
    case ACCOUNT_NOT_FOUND:
        admin_reply(req, 0, "no such account");
        return;
    case ACCOUNT_FAILED:
        admin_reply(req, 0, "Redis failed during the deletion; if it got as far as the "
                            "tombstone the account is shut: run deluser again to finish");
        return;
    }
}

static void cmd_deluser(admin_req_t *req, int argc, const char *const *argv)
{
    (void)argc;
    char bare[JID_MAX + 1];
    if (account_arg(req, argv[1], bare, sizeof bare) < 0)
        return;
    account_delete(bare, "not-authorized", "Account deleted by the administrator", on_deleted,
                   req);
}

static const admin_command_t core_commands[] = {
    {"sessions", 0, 1, cmd_sessions,
     "sessions [JID]  sessions (all, a user's, or one): full JID, frontend, client address, "
     "bound since, TLS version, stream management"},
    {"kick", 1, 2, cmd_kick,
     "kick JID [REASON]  end one session (full JID) or all of a user's (bare JID) with a "
     "policy-violation stream error"},
    {"stats", 0, 0, cmd_stats,
     "stats  sessions, frontends, stanzas per second, counters"},
    {"user", 1, 1, cmd_user,
     "user JID  an account: exists, roster items, offline messages, tombstone, sessions"},
    {"deluser", 1, 1, cmd_deluser,
     "deluser JID  delete an account: contacts told, sessions ended, data removed, a "
     "tombstone kept"},
    {"announce", 1, 1, cmd_announce,
     "announce TEXT  a headline message from the server to every available session"},
    {0},
};

void admin_cmds_register(void)
{
    admin_register(core_commands);
}
