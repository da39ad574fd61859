/* sm: stream management (XEP-0198) held by the router. A session with stream management
 * numbers every stanza delivered to it and keeps a copy until its client acknowledges it
 * (smq.h; the frontend reports <a h/>); its frontend counts the client's stanzas and says
 * so with each one. When the connection is lost (IPC_UNBIND with IPC_UNBIND_DETACH) or its
 * frontend dies, a resumable session stays in the tables, *waiting*: available to its
 * contacts, what is routed to it kept, up to sm_resume_timeout. A client that resumes,
 * through any frontend, gets the session back with every stanza it had not acknowledged.
 * A session that ends with stanzas unacknowledged (the wait ran out, sm_max_unacked was
 * passed, a clean close) has them handed on by session_end (route_redeliver). The state
 * lives in this process's memory only (docs/ARCHITECTURE.md, "Stream management"). */
#ifndef ROUTER_SM_H
#define ROUTER_SM_H

#include "config.h"
#include "ipc.h"
#include "smq.h"
#include "types.h"

extern const config_key_t sm_config_keys[];

/* Reads the configuration, registers the metrics and its hook (before the modules are
 * registered); sm_close frees what is left. */
void sm_open(void);
void sm_close(void);

/* The link messages (dispatch.c). */
void sm_on_enable(rt_frontend_t *f, const ipc_sm_enable_t *m);
void sm_on_ack(rt_frontend_t *f, const ipc_sm_ack_t *m);
void sm_on_resume(rt_frontend_t *f, const ipc_sm_resume_t *m);
void sm_on_state(rt_frontend_t *f, const ipc_sm_state_t *m);
/* A client's stanza numbered `h` by its frontend (once the router enabled stream
 * management for a session, every stanza of it, and every echo, carries its number). */
static inline void sm_count_in(session_t *s, uint32_t h)
{
    if (s->sm)
        s->sm->in = h;
}

/* The connection of `s` is gone (IPC_UNBIND with `flags` IPC_UNBIND_* and the client's
 * last acknowledgement): a resumable session whose connection was lost waits for its
 * client; any other ends. */
void sm_connection_lost(session_t *s, uint8_t flags, uint32_t acked);
/* A frontend stopped or restarted (link.h link_gone_fn): its resumable sessions wait, the
 * others end. */
void sm_frontend_gone(rt_frontend_t *f);
/* A frontend resends (IPC_RESYNC) a session that is waiting for its client, because the
 * router had given up on that frontend: the session is attached to (f, conn) again, as it
 * is. Returns 1 when `full` was such a session. */
int sm_reclaim(rt_frontend_t *f, uint64_t conn, const char *full);

/* Sessions waiting to be resumed (xmppctl stats, metrics). */
size_t sm_waiting(void);

#endif
