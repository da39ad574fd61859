/* What a frontend sends once it said hello, and who handles it: one handler per message
 * type, each reading its typed message (ipc.h) and handing the fields on; a message its
 * reader refuses goes to link_malformed(). */
#include "dispatch.h"

#include <inttypes.h>

#include "deliver.h"

#include "admin.h"
#include "authlimit.h"
#include "hook.h"
#include "link.h"
#include "log.h"
#include "remote.h"
#include "resync.h"
#include "route.h"
#include "rpresence.h"
#include "session.h"
#include "sm.h"

static void on_bind(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_bind_t m;
    if (ipc_bind_read(h, &m) < 0) {
        link_malformed(f, h);
        return;
    }
    ipc_bind_reply_t r = {.conn = m.conn, .seq = m.seq, .status = IPC_OK, .jid = m.jid};
    if (session_over_limit(m.jid)) {
        log_info("bind: %s refused: max_resources (%ld) reached", m.jid, rt.max_resources);
        r.status = IPC_LIMIT;
        link_send_bind_reply(f, &r);
        return;
    }
    session_t *s = session_attach(f, m.conn, m.jid);
    if (!s) {
        log_warn("bind: refused '%s' from %s", m.jid, f->ident);
        r.status = IPC_REFUSED;
        link_send_bind_reply(f, &r);
        return;
    }
    session_set_facts(s, m.addr, m.tls, 0);
    link_send_bind_reply(f, &r);
    log_debug("bind: %s on %s conn %" PRIu64 " from %s (%s)", s->full, f->ident, s->conn,
              s->addr, s->tls);
}

static void on_unbind(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_unbind_t m;
    if (ipc_unbind_read(h, &m) < 0) {
        link_malformed(f, h);
        return;
    }
    session_t *s = session_find_conn(f, m.conn);
    if (s)
        sm_connection_lost(s, m.flags, m.acked);
}

static void on_stanza(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    ipc_stanza_t m;
    if (ipc_stanza_read(h, &m) < 0) {
        link_malformed(f, h);
        return;
    }
    metric_inc(rt.m.stanzas_in[m.kind]);
    session_t *s = session_find_conn(f, m.conn);
    if (!s || !payload) {
        log_debug("link: stanza from unbound connection %" PRIu64 " of %s", m.conn, f->ident);
        return;
    }
    admin_count_stanza();
    sm_count_in(s, m.h);
    route_stanza(s, &m, payload->data, payload->len);
}

static void on_auth(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_auth_t m;
    if (ipc_auth_read(h, &m) < 0) {
        link_malformed(f, h);
        return;
    }
    authlimit_on_auth(f, &m);
}

static void on_auth_result(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_auth_result_t m;
    if (ipc_auth_result_read(h, &m) < 0) {
        link_malformed(f, h);
        return;
    }
    authlimit_on_result(f, &m);
}

static void on_resync(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    ipc_resync_t m;
    if (ipc_resync_read(h, &m) < 0) {
        link_malformed(f, h);
        return;
    }
    resync_session(f, &m, payload ? payload->data : NULL, payload ? payload->len : 0);
}

/* A request for a new account: whichever module serves registration answers it (core/hook.h,
 * HOOK_REGISTER); the core knows nothing of its rules. Nobody: refused. */
static void on_register(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_register_t m;
    if (ipc_register_read(h, &m) < 0) {
        link_malformed(f, h);
        return;
    }
    hook_ev_t ev = {.frontend = f, .reg = &m};
    if (hook_run(HOOK_REGISTER, &ev) != MOD_HANDLED)
        link_send_register_reply(f, &(ipc_register_reply_t){m.conn, m.seq, IPC_REFUSED});
}

/* Stream management (sm.h): each message read, then handed to sm.c. */
static void on_sm_enable(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_sm_enable_t m;
    if (ipc_sm_enable_read(h, &m) < 0)
        link_malformed(f, h);
    else
        sm_on_enable(f, &m);
}

static void on_sm_ack(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_sm_ack_t m;
    if (ipc_sm_ack_read(h, &m) < 0)
        link_malformed(f, h);
    else
        sm_on_ack(f, &m);
}

static void on_sm_resume(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_sm_resume_t m;
    if (ipc_sm_resume_read(h, &m) < 0)
        link_malformed(f, h);
    else
        sm_on_resume(f, &m);
}

static void on_sm_state(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_sm_state_t m;
    if (ipc_sm_state_read(h, &m) < 0)
        link_malformed(f, h);
    else
        sm_on_state(f, &m);
}

static void on_sm_request(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_sm_request_t m;
    if (ipc_sm_request_read(h, &m) < 0)
        link_malformed(f, h);
    else
        sm_request(f, &m);
}

/* A stanza the frontend made for its own managed client, numbered as a delivery. */
static void on_echo(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    ipc_echo_t m;
    session_t *s;
    if (ipc_echo_read(h, &m) < 0)
        link_malformed(f, h);
    else if (payload && (s = session_find_conn(f, m.conn))) {
        sm_count_in(s, m.h);
        session_deliver_server(s, payload->data, payload->len, "reply of the frontend");
    }
}

/* A stanza this frontend could not write: its connection was gone or its stream over
 * (router_link.c, on_deliver). */
static void on_return(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    ipc_return_t m;
    if (ipc_return_read(h, &m) < 0 || !payload) {
        link_malformed(f, h);
        return;
    }
    route_returned(payload->data, payload->len);
}

/* A stanza another server sent, through an s2s frontend (IPC_S2S_IN): checked by the
 * frontend (from at the domain the peer authenticated as, to at ours), routed as one from
 * another account (route.h). */
static void on_s2s_in(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    ipc_s2s_t m;
    if (ipc_s2s_in_read(h, &m) < 0 || !payload) {
        link_malformed(f, h);
        return;
    }
    if (!f->s2s) {
        log_warn("link: dropped an s2s-in from %s, which did not say it serves s2s", f->ident);
        return;
    }
    metric_inc(rt.m.stanzas_in[m.kind]);
    route_remote_stanza(f, &m, payload->data, payload->len);
}

/* An inbound server connection of an s2s frontend is gone (IPC_S2S_CLOSED): the presence
 * it carried stays, or is taken back when the connection was lost (rpresence.h). */
static void on_s2s_closed(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_s2s_closed_t m;
    if (ipc_s2s_closed_read(h, &m) < 0) {
        link_malformed(f, h);
        return;
    }
    rpresence_conn_closed(f, m.conn, m.domain, m.lost);
    if (m.lost)
        hook_run(HOOK_REMOTE_LOST, &(hook_ev_t){.from = m.domain});
}

/* The s2s frontend is done with these s2s-out (IPC_S2S_ACK): the router's copies go. */
static void on_s2s_ack(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    ipc_s2s_ack_t m;
    if (ipc_s2s_ack_read(h, payload ? payload->len : 0, &m) < 0) {
        link_malformed(f, h);
        return;
    }
    remote_acked(f, payload->data, m.n);
}

/* XEP-0352: the client said <active/> or <inactive/>; what the server does with it is a
 * module's (HOOK_CLIENT_STATE). */
static void on_client_state(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    (void)payload;
    ipc_client_state_t m;
    if (ipc_client_state_read(h, &m) < 0) {
        link_malformed(f, h);
        return;
    }
    session_t *s = session_find_conn(f, m.conn);
    if (!s) {
        log_debug("link: client state from unbound connection %" PRIu64 " of %s", m.conn,
                  f->ident);
        return;
    }
    hook_run(HOOK_CLIENT_STATE, &(hook_ev_t){.session = s, .user = s->user,
                                             .inactive = m.inactive});
}

/* What a frontend may send once it said hello, and who handles it. Each handler reads its
 * typed message (ipc.h) and hands the fields on; a message its reader refuses goes to
 * malformed(). */
static const link_msg_fn handlers[IPC_TYPE_MAX + 1] = {
    [IPC_AUTH] = on_auth,
    [IPC_AUTH_RESULT] = on_auth_result,
    [IPC_BIND] = on_bind,
    [IPC_UNBIND] = on_unbind,
    [IPC_RESYNC] = on_resync,
    [IPC_STANZA] = on_stanza,
    [IPC_REGISTER] = on_register,
    [IPC_SM_ENABLE] = on_sm_enable,
    [IPC_SM_ACK] = on_sm_ack,
    [IPC_SM_RESUME] = on_sm_resume,
    [IPC_SM_STATE] = on_sm_state,
    [IPC_ECHO] = on_echo,
    [IPC_SM_REQUEST] = on_sm_request,
    [IPC_CLIENT_STATE] = on_client_state,
    [IPC_RETURN] = on_return,
    [IPC_S2S_IN] = on_s2s_in,
    [IPC_S2S_ACK] = on_s2s_ack,
    [IPC_S2S_CLOSED] = on_s2s_closed,
};

void dispatch_message(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    link_msg_fn fn = h->type <= IPC_TYPE_MAX ? handlers[h->type] : NULL;
    if (fn)
        fn(f, h, payload);
    else
        log_warn("link: unexpected %s from %s", ipc_type_name((ipc_type_t)h->type), f->ident);
}

void dispatch_frontend_gone(rt_frontend_t *f)
{
    int s2s = f->s2s;
    sm_frontend_gone(f);
    /* The stanzas for other domains it had not confirmed go out again or bounce. */
    remote_frontend_gone(f, route_s2s_bounce);
    /* After its sessions: presence is taken back only from users still available. */
    rpresence_frontend_gone(f);
    if (s2s)
        hook_run(HOOK_REMOTE_LOST, &(hook_ev_t){.from = NULL});
}

void dispatch_lost(const ipc_hdr_t *h, const zpart_t *payload)
{
    ipc_deliver_t d;
    if (payload && ipc_deliver_read(h, &d) == 0 && !d.numbered)
        route_bounce_delivery(payload->data, payload->len);
}
