/* Stream management held by the router (sm.h). */
#include "sm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hook.h"
#include "link.h"
#include "log.h"
#include "session.h"
#include "util.h"

const config_key_t sm_config_keys[] = {
    CONFIG_INT("sm_resume_timeout", "300", 0, 86400, "seconds a session with stream management (XEP-0198) waits for its client to resume after the connection was lost (0: never resumable)"),
    CONFIG_INT("sm_max_unacked", "1000", 10, 1000000, "stanzas a session with stream management may have unacknowledged (connected or waiting); past it the session ends"),
    CONFIG_INT("sm_max_unacked_bytes", "4194304", 65536, 1073741824, "bytes of stanzas a session with stream management may have unacknowledged; past it the session ends"),
    CONFIG_END,
};

static void on_overflow(evloop_t *loop, void *arg);
static mod_result_t on_session_freed(hook_ev_t *ev);

static const mod_hook_t hooks[] = {
    {HOOK_SESSION_FREED, 0, on_session_freed},
    {0},
};

static struct {
    uint32_t resume_timeout;
    size_t max_unacked;
    hmap_t *ids; /* resumption id -> session_t */
    size_t waiting;
    metric_t *m_resumed, *m_expired;
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
    rt.m.sm_rerouted = metrics_counter("xmpp_sm_unacked_rerouted_total", "",
                                       "unacknowledged stanzas handed on when their session "
                                       "ended (other resources, offline storage, errors)");
    smq_configure((size_t)config_int("sm_max_unacked"),
                  (size_t)config_int("sm_max_unacked_bytes"), on_overflow);
    for (const mod_hook_t *h = hooks; h->fn; h++)
        hook_add(h, 0);
}

void sm_close(void)
{
    hmap_destroy(&sm.ids);
}

static void on_overflow(evloop_t *loop, void *arg)
{
    (void)loop;
    session_t *s = arg;
    s->sm->overflow = NULL;
    log_info("sm: %s has more stanzas unacknowledged than sm_max_unacked or "
             "sm_max_unacked_bytes allow (%zu, %zu bytes), ending it",
             s->full, s->sm->count, s->sm->bytes);
    if (s->fe)
        link_send_close_text(s->fe, s->conn, "resource-constraint",
                             "Too many unacknowledged stanzas");
    session_end(s);
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
        smq_ack(s->sm, m->h);
}

static void on_expire(evloop_t *loop, void *arg)
{
    (void)loop;
    session_t *s = arg;
    s->sm->expire = NULL;
    sm.waiting--;
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

/* Sends what the client has not seen: every kept stanza numbered after `after`. On a
 * failure the connection is reset and a resumable session waits again, any other ends:
 * returns -1 (the session may be gone). */
static int resend(session_t *s, uint32_t after)
{
    s->sm->hold = 0;
    if (smq_resend(s, after) == 0)
        return 0;
    log_warn("sm: cannot resend to %s (its frontend's pipe is full): resetting it", s->full);
    link_send_close(s->fe, s->conn, "reset");
    if (s->sm->id[0])
        wait_for_client(s);
    else
        session_end(s);
    return -1;
}

/* Lets go of a session's stream-management state (it is freed, or its frontend sent
 * another one); what is still kept is dropped: session_end took what it hands on. */
static void forget(session_t *s)
{
    struct sm_state *st = s->sm;
    stop_waiting(s);
    evloop_cancel(rt.loop, &st->overflow);
    if (st->id[0])
        hmap_sdel(sm.ids, st->id);
    smq_item_t *left = smq_take(st);
    if (left)
        log_warn("sm: %s loses the stanzas its client had not acknowledged", s->full);
    smq_free(left);
    free(st);
    s->sm = NULL;
}

static mod_result_t on_session_freed(hook_ev_t *ev)
{
    if (ev->session->sm)
        forget(ev->session);
    return MOD_PASS;
}

void sm_connection_lost(session_t *s, uint8_t flags, uint32_t acked)
{
    struct sm_state *st = s->sm;
    if (st && (flags & IPC_UNBIND_ACK) && sm_ack_valid(st->acked, st->out, acked))
        smq_ack(st, acked);
    if (st && st->id[0] && (flags & IPC_UNBIND_DETACH))
        wait_for_client(s);
    else
        session_end(s);
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
    smq_ack(st, m->h);
    session_reattach(s, f, m->conn);
    session_set_facts(s, m->addr, m->tls, 0);
    buf_t payload = BUF_INIT;
    r.status = IPC_OK;
    r.flags = describe(s, &payload);
    r.jid = s->full;
    r.in = st->in;
    r.out = st->out;
    r.since = (uint64_t)s->bound_at;
    r.max = st->max_s;
    send_resumed(f, &r, &payload);
    buf_free(&payload);
    metric_inc(sm.m_resumed);
    log_info("sm: %s resumed on %s (%zu stanzas to resend)", s->full, f->name, st->count);
    /* XEP-0352 (0.2.1): a resumed stream starts active; what was held goes out now. */
    if (resend(s, m->h) == 0)
        hook_run(HOOK_CLIENT_STATE, &(hook_ev_t){.session = s, .user = s->user, .inactive = 0});
}

void sm_on_state(rt_frontend_t *f, const ipc_sm_state_t *m)
{
    session_t *s = session_find_conn(f, m->conn);
    if (!s)
        return;
    struct sm_state *st = s->sm;
    if (st && !st->awaiting && strcmp(st->id, m->id) == 0) {
        /* The router kept the session (its frontend came back after the link was cut):
         * what it numbered and did not send meanwhile goes now; what was on its way the
         * frontend recognises by its number and writes once. */
        if (sm_ack_valid(st->acked, st->out, m->acked))
            smq_ack(st, m->acked);
        st->in = m->in;
        resend(s, sm_ack_valid(st->acked, st->out, m->out) ? m->out : st->acked);
        return;
    }
    if (st && !st->awaiting)
        forget(s); /* another id: that state is stale */
    if (!s->sm)
        s->sm = xcalloc(1, sizeof *s->sm);
    /* A restarted router: the counters come back and what was routed to the session since
     * its resync is numbered after them; the stanzas sent before the restart and not
     * acknowledged are not kept (docs/ARCHITECTURE.md, "Stream management"). */
    st = s->sm;
    st->in = m->in;
    st->out = m->out;
    st->acked = m->acked;
    /* The time granted at <enable/> (the client may have asked for less), not longer. */
    st->max_s = m->max && m->max < sm.resume_timeout ? m->max : sm.resume_timeout;
    st->awaiting = 0;
    if (m->resumable && m->id[0] && !hmap_sget(sm.ids, m->id)) {
        snprintf(st->id, sizeof st->id, "%s", m->id);
        hmap_sput(sm.ids, st->id, s);
    }
    smq_number_kept(st);
    resend(s, m->out);
}

void sm_expect_state(session_t *s)
{
    if (!s->sm) {
        s->sm = xcalloc(1, sizeof *s->sm);
        s->sm->awaiting = 1;
    }
}

int sm_request(rt_frontend_t *f, const ipc_sm_request_t *m)
{
    session_t *s = session_find_conn(f, m->conn);
    if (!s || !s->sm || s->sm->awaiting)
        return -1;
    ipc_hdr_t h;
    ipc_sm_ack_build(&h, &(ipc_sm_ack_t){.conn = m->conn, .h = s->sm->in});
    return link_send(f, &h, NULL, 0);
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

void sm_frontend_gone(rt_frontend_t *f)
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
        sm_connection_lost(list[i], IPC_UNBIND_DETACH, 0);
    free(list);
}
