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
#include "module.h"
#include "session.h"
#include "util.h"

/* Tells the frontend to end a client's stream the router could not take back. */
static void resync_refuse(rt_frontend_t *f, uint64_t conn, const char *full)
{
    ipc_hdr_t c;
    ipc_hdr_init(&c, IPC_CLOSE, conn);
    /* RFC 6120 4.9.3.16: reset asks the client to reconnect. */
    ipc_hdr_set(&c, 0, "reset");
    link_send(f, &c, NULL, 0);
    log_warn("resync: refused '%s' from %s conn %" PRIu64, full, f->ident, conn);
}

void resync_session(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload)
{
    const char *full = h->field[0];
    session_t *s = session_find_conn(f, h->conn);
    if (s && strcmp(s->full, full) != 0) {
        /* The connection id names another JID: the older state is stale. */
        session_end(s);
        s = NULL;
    }
    if (!s) {
        s = session_attach(f, h->conn, full);
        if (!s) {
            resync_refuse(f, h->conn, full);
            return;
        }
    }
    /* The payload: the last presence, then a NUL and the directed-presence targets. */
    const char *data = payload ? payload->data : "";
    size_t len = payload ? payload->len : 0;
    const char *nul = memchr(data, '\0', len);
    size_t plen = nul ? (size_t)(nul - data) : len;
    int available = (h->flags & IPC_RESYNC_AVAILABLE) && plen;
    s->available = available;
    s->priority = available ? ipc_priority_decode(h->status) : 0;
    s->interested = (h->flags & IPC_RESYNC_INTERESTED) != 0;
    free(s->last_presence);
    s->last_presence = available ? xstrndup(data, plen) : NULL;
    /* Module state (carbons, blocklist interest, directed presence) comes back too. */
    hook_ev_t ev = {.session = s, .user = s->user, .h = h};
    if (nul) {
        ev.payload = nul + 1;
        ev.len = len - plen - 1;
    }
    hook_run(HOOK_SESSION_RESYNC, &ev);
    log_debug("resync: %s on %s conn %" PRIu64 " (%s, priority %d%s)", s->full, f->ident,
              h->conn, available ? "available" : "unavailable", s->priority,
              s->interested ? ", interested" : "");
}
