/* Resync: a frontend that greets a restarted router (or comes back after the link was cut)
 * resends each of its bound sessions, and the router rebuilds its table from them, so that
 * no client is logged out by a router restart (docs/PROTOCOL.md, "resync"). Nothing is
 * sent to anyone while rebuilding: every other resource already saw this presence. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "resync.h"
#include "link.h"
#include "hook.h"
#include "session.h"
#include "sm.h"
#include "util.h"

/* Tells the frontend to end a client's stream the router could not take back. */
static void resync_refuse(rt_frontend_t *f, uint64_t conn, const char *full)
{
    /* RFC 6120 4.9.3.16: reset asks the client to reconnect. */
    link_send_close(f, conn, "reset");
    log_warn("resync: refused '%s' from %s conn %" PRIu64, full, f->ident, conn);
}

void resync_session(rt_frontend_t *f, const ipc_resync_t *m, const char *payload, size_t len)
{
    const char *full = m->full_jid;
    session_t *s = session_find_conn(f, m->conn);
    if (s && strcmp(s->full, full) != 0) {
        /* The connection id names another JID: the older state is stale. */
        session_end(s);
        s = NULL;
    }
    if (!s && sm_reclaim(f, m->conn, full))
        s = session_find_conn(f, m->conn);
    if (!s) {
        s = session_attach(f, m->conn, full);
        if (!s) {
            resync_refuse(f, m->conn, full);
            return;
        }
    }
    session_set_facts(s, m->addr, m->tls, m->since);
    /* The payload: the last presence, then a NUL and the directed-presence targets. */
    const char *data = payload ? payload : "";
    const char *nul = memchr(data, '\0', len);
    size_t plen = nul ? (size_t)(nul - data) : len;
    int available = (m->flags & IPC_RESYNC_AVAILABLE) && plen;
    s->available = available;
    s->priority = available ? m->priority : 0;
    s->interested = (m->flags & IPC_RESYNC_INTERESTED) != 0;
    free(s->last_presence);
    s->last_presence = available ? xstrndup(data, plen) : NULL;
    /* Module state (carbons, blocklist interest, directed presence) comes back too. */
    hook_ev_t ev = {.session = s, .user = s->user, .resync = m};
    if (nul) {
        ev.payload = nul + 1;
        ev.len = len - plen - 1;
    }
    hook_run(HOOK_SESSION_RESYNC, &ev);
    log_debug("resync: %s on %s conn %" PRIu64 " (%s, priority %d%s)", s->full, f->ident,
              m->conn, available ? "available" : "unavailable", s->priority,
              s->interested ? ", interested" : "");
}
