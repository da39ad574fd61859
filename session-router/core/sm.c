/* Stream management held by the router (sm.h). */
#include "sm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "deliver.h"
#include "hook.h"
#include "link.h"
#include "log.h"
#include "route.h"
#include "session.h"
#include "util.h"

/* A stanza sent to the client and not yet acknowledged, with its number. */
typedef struct sm_item {
    struct sm_item *next;
    uint32_t h;
    size_t len;
    char data[];
} sm_item_t;

struct sm_state {
    char id[IPC_SM_ID_MAX + 1]; /* resumption id; "" when not resumable */
    uint32_t in;    /* the client's stanzas handled (its frontend counts them) */
    uint32_t out;   /* stanzas numbered for the client */
    uint32_t acked; /* its last acknowledgement */
    uint32_t max_s; /* how long it may wait for resumption (seconds) */
    sm_item_t *head, *tail;
    size_t count;
    ev_timer_t *expire;   /* waiting: ends the session when the time is up */
    ev_timer_t *overflow; /* past sm_max_unacked: ends the session (not from inside a
                             delivery, whose caller may be walking the user's sessions) */
};

struct sm_leftover {
    char *bare;
    sm_item_t *head;
};

const config_key_t sm_config_keys[] = {
    CONFIG_INT("sm_resume_timeout", "300", 0, 86400, "seconds a session with stream management (XEP-0198) waits for its client to resume after the connection was lost (0: never resumable)"),
    CONFIG_INT("sm_max_unacked", "1000", 10, 1000000, "stanzas a session with stream management may have unacknowledged (connected or waiting); past it the session ends"),
    CONFIG_END,
};

static struct {
    uint32_t resume_timeout;
    size_t max_unacked;
    hmap_t *ids; /* resumption id -> session_t */
    size_t waiting;
    metric_t *m_resumed, *m_expired, *m_redelivered;
} sm;

static double waiting_gauge(void *ud)
{
    (void)ud;
    return (double)sm.waiting;
}

size_t sm_waiting(void)
{
    return sm.waiting;
}

void sm_open(void)
{
    sm.resume_timeout = (uint32_t)config_int("sm_resume_timeout");
    sm.max_unacked = (size_t)config_int("sm_max_unacked");
    sm.ids = hmap_new();
    metrics_gauge_fn("xmpp_sm_waiting_sessions", "",
                     "sessions with stream management waiting for their client to resume",
                     waiting_gauge, NULL);
    sm.m_resumed = metrics_counter("xmpp_sm_resumed_total", "",
                                   "sessions resumed (XEP-0198), on any frontend");
    sm.m_expired = metrics_counter("xmpp_sm_expired_total", "",
                                   "waiting sessions that were not resumed in time");
    sm.m_redelivered = metrics_counter("xmpp_sm_unacked_rerouted_total", "",
                                       "unacknowledged stanzas handed on when their session "
                                       "ended (other resources, offline storage, errors)");
}

void sm_close(void)
{
    hmap_destroy(&sm.ids);
}

static void free_items(sm_item_t *it)
{
    while (it) {
        sm_item_t *next = it->next;
        free(it);
        it = next;
    }
}

/* Drops what the client acknowledged (h, modulo 2^32). */
static void ack(struct sm_state *st, uint32_t h)
{
    while (st->head && (uint32_t)(h - st->head->h) < 0x80000000u) {
        sm_item_t *it = st->head;
        st->head = it->next;
        free(it);
        st->count--;
    }
    if (!st->head)
        st->tail = NULL;
    st->acked = h;
}

static int send_numbered(session_t *s, uint32_t h, const char *data, size_t len)
{
    ipc_hdr_t hdr;
    ipc_deliver_build(&hdr, &(ipc_deliver_t){.conn = s->conn, .numbered = 1, .h = h});
    return link_send(s->fe, &hdr, data, len);
}

void sm_set_in(session_t *s, uint32_t h)
{
    s->sm->in = h;
}

static void on_overflow(evloop_t *loop, void *arg)
{
    (void)loop;
    session_t *s = arg;
    s->sm->overflow = NULL;
    log_info("sm: %s has more than sm_max_unacked (%zu) stanzas unacknowledged, ending it",
             s->full, sm.max_unacked);
    if (s->fe)
        link_send_close_text(s->fe, s->conn, "resource-constraint",
                             "Too many unacknowledged stanzas");
    session_end(s);
}

int sm_deliver(session_t *s, const char *data, size_t len)
{
    struct sm_state *st = s->sm;
    if (st->count >= sm.max_unacked) {
        if (!st->overflow)
            st->overflow = evloop_timer(rt.loop, 0, on_overflow, s);
        errno = ENOBUFS;
        return -1;
    }
    uint32_t h = st->out + 1;
    /* A frontend that is gone (EHOSTUNREACH) leaves the stanza kept: the session waits
     * for its client once the frontend is declared dead. A full pipe (EAGAIN) means the
     * frontend lives but would skip this number: refused, not numbered. */
    if (s->fe && send_numbered(s, h, data, len) < 0 && errno != EHOSTUNREACH)
        return -1;
    sm_item_t *it = xmalloc(sizeof *it + len);
    it->next = NULL;
    it->h = h;
    it->len = len;
    memcpy(it->data, data, len);
    if (st->tail)
        st->tail->next = it;
    else
        st->head = it;
    st->tail = it;
    st->count++;
    st->out = h;
    return 0;
}

static void send_enabled(rt_frontend_t *f, const ipc_sm_enabled_t *r)
{
    ipc_hdr_t h;
    if (ipc_sm_enabled_build(&h, r) == 0)
        link_send(f, &h, NULL, 0);
}

void sm_on_enable(rt_frontend_t *f, const ipc_sm_enable_t *m)
{
    session_t *s = session_find_conn(f, m->conn);
    ipc_sm_enabled_t r = {.conn = m->conn, .seq = m->seq, .status = IPC_REFUSED, .id = ""};
    if (!s || s->sm) {
        send_enabled(f, &r);
        return;
    }
    struct sm_state *st = xcalloc(1, sizeof *st);
    /* XEP-0198 3: the client may ask for a shorter time; never a longer one. */
    st->max_s = m->max && m->max < sm.resume_timeout ? m->max : sm.resume_timeout;
    if (m->resumable && st->max_s) {
        /* 128 random bits: not guessable; the id also only works for its own account. */
        unsigned char rnd[16];
        random_bytes(rnd, sizeof rnd);
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(st->id + 2 * i, 3, "%02x", rnd[i]);
        hmap_sput(sm.ids, st->id, s);
    }
    s->sm = st;
    r.status = IPC_OK;
    r.id = st->id;
    r.max = st->id[0] ? st->max_s : 0;
    send_enabled(f, &r);
    log_debug("sm: enabled for %s%s", s->full, st->id[0] ? " (resumable)" : "");
}

void sm_on_ack(rt_frontend_t *f, const ipc_sm_ack_t *m)
{
    session_t *s = session_find_conn(f, m->conn);
    if (!s || !s->sm)
        return;
    /* The frontend checked it against what it wrote; a stale one is ignored. */
    if (sm_ack_valid(s->sm->acked, s->sm->out, m->h))
        ack(s->sm, m->h);
}

static void on_expire(evloop_t *loop, void *arg)
{
    (void)loop;
    session_t *s = arg;
    s->sm->expire = NULL;
    metric_inc(sm.m_expired);
    log_info("sm: %s was not resumed within %" PRIu32 " s (%zu stanzas unacknowledged)",
             s->full, s->sm->max_s, s->sm->count);
    session_end(s);
}

/* The session waits for its client: out of the connection table, in every other. */
static void wait_for_client(session_t *s)
{
    session_detach(s);
    if (!s->sm->expire) {
        s->sm->expire = evloop_timer(rt.loop, (uint64_t)s->sm->max_s * 1000, on_expire, s);
        sm.waiting++;
    }
    log_info("sm: %s waits up to %" PRIu32 " s to be resumed (%zu stanzas unacknowledged)",
             s->full, s->sm->max_s, s->sm->count);
}

/* A waiting session is taken again (resumed, or resynced by its frontend). */
static void stop_waiting(session_t *s)
{
    if (s->sm && s->sm->expire) {
        evloop_cancel(rt.loop, &s->sm->expire);
        sm.waiting--;
    }
}

void sm_connection_lost(session_t *s, uint8_t flags, uint32_t acked)
{
    struct sm_state *st = s->sm;
    if (st && (flags & IPC_UNBIND_ACK) && sm_ack_valid(st->acked, st->out, acked))
        ack(st, acked);
    if (st && st->id[0] && (flags & IPC_UNBIND_DETACH))
        wait_for_client(s);
    else
        session_end(s);
}

sm_leftover_t *sm_release(session_t *s)
{
    struct sm_state *st = s->sm;
    if (!st)
        return NULL;
    stop_waiting(s);
    evloop_cancel(rt.loop, &st->overflow);
    if (st->id[0])
        hmap_sdel(sm.ids, st->id);
    sm_leftover_t *left = NULL;
    if (st->head) {
        left = xcalloc(1, sizeof *left);
        left->bare = xstrdup(s->user->bare);
        left->head = st->head;
    }
    free(st);
    s->sm = NULL;
    return left;
}

void sm_leftover_free(sm_leftover_t *left)
{
    if (!left)
        return;
    free_items(left->head);
    free(left->bare);
    free(left);
}

void sm_redeliver(sm_leftover_t *left)
{
    if (!left)
        return;
    size_t n = 0;
    for (sm_item_t *it = left->head; it; it = it->next, n++)
        route_redeliver(left->bare, it->data, it->len);
    metric_add(sm.m_redelivered, (double)n);
    log_info("sm: %zu stanzas %s had not acknowledged handed on (other resources, offline "
             "storage)", n, left->bare);
    sm_leftover_free(left);
}

/* The state a frontend needs to carry a session on (as a resync would send it). */
static uint8_t describe(session_t *s, buf_t *payload)
{
    int available = s->available && s->last_presence;
    buf_t targets = BUF_INIT;
    session_desc_t desc = {.flags = (uint8_t)((available ? IPC_RESYNC_AVAILABLE : 0) |
                                              (s->interested ? IPC_RESYNC_INTERESTED : 0)),
                           .targets = &targets};
    hook_run(HOOK_SESSION_DESCRIBE, &(hook_ev_t){.session = s, .user = s->user, .desc = &desc});
    if (available)
        buf_append_str(payload, s->last_presence);
    if (targets.len) {
        buf_append(payload, "", 1);
        buf_append(payload, targets.data, targets.len);
    }
    buf_free(&targets);
    return desc.flags;
}

static void send_resumed(rt_frontend_t *f, const ipc_sm_resumed_t *r, const buf_t *payload)
{
    ipc_hdr_t h;
    if (ipc_sm_resumed_build(&h, r) == 0)
        link_send(f, &h, payload && payload->len ? payload->data : NULL,
                  payload ? payload->len : 0);
}

/* Sends what the client has not seen: every kept stanza numbered after `after`. On a
 * failure the new connection is reset and the session waits again. Returns 0 or -1. */
static int resend(session_t *s, uint32_t after)
{
    for (sm_item_t *it = s->sm->head; it; it = it->next) {
        if ((uint32_t)(it->h - after) - 1 >= 0x80000000u)
            continue; /* numbered at or before `after` */
        if (send_numbered(s, it->h, it->data, it->len) < 0) {
            log_warn("sm: cannot resend to %s (its frontend's pipe is full): resetting it",
                     s->full);
            link_send_close(s->fe, s->conn, "reset");
            wait_for_client(s);
            return -1;
        }
    }
    return 0;
}

/* 1 when `bare` (user@domain) belongs to the prepared localpart `username`. */
static int owned_by(const char *bare, const char *username)
{
    size_t n = strlen(username);
    return strncmp(bare, username, n) == 0 && bare[n] == '@';
}

void sm_on_resume(rt_frontend_t *f, const ipc_sm_resume_t *m)
{
    ipc_sm_resumed_t r = {.conn = m->conn, .seq = m->seq, .status = IPC_NOT_FOUND, .jid = ""};
    session_t *s = hmap_sget(sm.ids, m->id);
    /* The id works for its own account only; for any other it does not exist. */
    if (!s || !owned_by(s->user->bare, m->username) || session_find_conn(f, m->conn)) {
        log_info("sm: %s asked to resume an unknown session", m->username);
        send_resumed(f, &r, NULL);
        return;
    }
    struct sm_state *st = s->sm;
    if (!sm_ack_valid(st->acked, st->out, m->h)) {
        /* XEP-0198 5: it claims to have handled more than was sent. */
        r.status = IPC_REFUSED;
        r.in = st->in;
        r.out = st->out;
        send_resumed(f, &r, NULL);
        return;
    }
    if (s->fe) {
        /* XEP-0198 5: the old connection is still open somewhere: it ends. */
        link_send_close(s->fe, s->conn, "conflict");
        log_info("sm: %s resumed while connected: closing the older connection", s->full);
        session_detach(s);
    }
    stop_waiting(s);
    ack(st, m->h);
    session_reattach(s, f, m->conn);
    session_set_facts(s, m->addr, m->tls, 0);
    buf_t payload = BUF_INIT;
    r.status = IPC_OK;
    r.flags = describe(s, &payload);
    r.jid = s->full;
    r.in = st->in;
    r.out = st->out;
    r.since = (uint64_t)s->bound_at;
    send_resumed(f, &r, &payload);
    buf_free(&payload);
    metric_inc(sm.m_resumed);
    log_info("sm: %s resumed on %s (%zu stanzas to resend)", s->full, f->name, st->count);
    resend(s, m->h);
}

void sm_on_state(rt_frontend_t *f, const ipc_sm_state_t *m)
{
    session_t *s = session_find_conn(f, m->conn);
    if (!s)
        return;
    struct sm_state *st = s->sm;
    if (st && strcmp(st->id, m->id) == 0) {
        /* The router kept the session (its frontend came back after the link was cut):
         * what it numbered meanwhile has not been sent yet. */
        if (sm_ack_valid(st->acked, st->out, m->acked))
            ack(st, m->acked);
        st->in = m->in;
        if (sm_ack_valid(st->acked, st->out, m->out))
            resend(s, m->out);
        return;
    }
    if (st)
        sm_leftover_free(sm_release(s)); /* another id: that state is stale */
    /* A restarted router: the counters come back, the stanzas sent before the restart
     * and not acknowledged are not kept (docs/ARCHITECTURE.md, "Stream management"). */
    st = xcalloc(1, sizeof *st);
    st->in = m->in;
    st->out = m->out;
    st->acked = m->acked;
    st->max_s = sm.resume_timeout;
    if (m->resumable && m->id[0] && !hmap_sget(sm.ids, m->id)) {
        snprintf(st->id, sizeof st->id, "%s", m->id);
        hmap_sput(sm.ids, st->id, s);
    }
    s->sm = st;
}

void sm_on_echo(rt_frontend_t *f, const ipc_echo_t *m, const char *payload, size_t len)
{
    session_t *s = session_find_conn(f, m->conn);
    if (!s || !payload)
        return;
    sm_count_in(s, m->h);
    session_deliver_server(s, payload, len, "reply of the frontend");
}

/* A waiting session whose frontend resends it (it came back after the router had given up
 * on it): the session is taken back as it is. Returns 1 when `full` was such a session. */
int sm_reclaim(rt_frontend_t *f, uint64_t conn, const char *full)
{
    session_t *s = session_find_jid(full);
    if (!s || s->fe || !s->sm || session_find_conn(f, conn))
        return 0;
    stop_waiting(s);
    session_reattach(s, f, conn);
    return 1;
}
