/* sm: stream management (XEP-0198) held by the router. A session with stream management
 * numbers every stanza delivered to it and keeps a copy until its client acknowledges it
 * (the frontend reports <a h/>); its frontend counts the client's stanzas and says so with
 * each one. When the connection is lost (IPC_UNBIND with IPC_UNBIND_DETACH) or its frontend
 * dies, a resumable session stays in the tables, *waiting*: available to its contacts, what
 * is routed to it queued, up to sm_resume_timeout. A client that resumes, through any
 * frontend, gets the session back with every stanza it had not acknowledged. A session that
 * ends with stanzas unacknowledged (the wait ran out, sm_max_unacked was passed, a clean
 * close) hands its messages to the user's other resources or to offline storage, as RFC
 * 6121 8.5.3.2.1 says for a message to a resource that is gone (route_redeliver). The
 * state lives in this process's memory only (docs/ARCHITECTURE.md, "Stream management"). */
#ifndef ROUTER_SM_H
#define ROUTER_SM_H

#include "config.h"
#include "ipc.h"
#include "types.h"

extern const config_key_t sm_config_keys[];

/* Reads the configuration and registers the metrics; sm_close frees what is left. */
void sm_open(void);
void sm_close(void);

/* The link messages (dispatch.c). */
void sm_on_enable(rt_frontend_t *f, const ipc_sm_enable_t *m);
void sm_on_ack(rt_frontend_t *f, const ipc_sm_ack_t *m);
void sm_on_resume(rt_frontend_t *f, const ipc_sm_resume_t *m);
void sm_on_state(rt_frontend_t *f, const ipc_sm_state_t *m);
void sm_on_echo(rt_frontend_t *f, const ipc_echo_t *m, const char *payload, size_t len);
/* A client's stanza numbered `h` by its frontend (once the router enabled stream
 * management for a session, every stanza of it carries its number). */
void sm_set_in(session_t *s, uint32_t h);
static inline void sm_count_in(session_t *s, uint32_t h)
{
    if (s->sm)
        sm_set_in(s, h);
}
/* A frontend resends (IPC_RESYNC) a session that is waiting for its client, because the
 * router had given up on that frontend: the session is attached to (f, conn) again, as it
 * is. Returns 1 when `full` was such a session. */
int sm_reclaim(rt_frontend_t *f, uint64_t conn, const char *full);

/* Delivers to a session with stream management: numbered, kept until acknowledged, sent
 * when the session is connected. Returns 0 (sent, or queued for a waiting session), or -1
 * with errno: EAGAIN when its frontend's pipe is full (not numbered, not kept), ENOBUFS
 * when sm_max_unacked is reached (the session is ending). */
int sm_deliver(session_t *s, const char *data, size_t len);

/* The connection of `s` is gone (IPC_UNBIND, `flags` IPC_UNBIND_*, or its frontend died:
 * IPC_UNBIND_DETACH): applies the last acknowledgement and either leaves a resumable
 * session waiting or ends it. */
void sm_connection_lost(session_t *s, uint8_t flags, uint32_t acked);

/* Called by session_end before the session's hooks run: takes what its client did not
 * acknowledge; sm_redeliver hands it on once the session is gone. */
typedef struct sm_leftover sm_leftover_t;
sm_leftover_t *sm_release(session_t *s);
void sm_redeliver(sm_leftover_t *left);
/* Frees it without handing anything on (shutdown). */
void sm_leftover_free(sm_leftover_t *left);

/* Waiting sessions (for xmppctl stats and the metrics). */
size_t sm_waiting(void);

/* The counter arithmetic, modulo 2^32 (XEP-0198 4): 1 when acknowledging `h` is possible
 * after `acked` with `out` sent. Exposed for the unit tests. */
static inline int sm_ack_valid(uint32_t acked, uint32_t out, uint32_t h)
{
    return (uint32_t)(h - acked) <= (uint32_t)(out - acked);
}

#endif
