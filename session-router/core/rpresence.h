/* rpresence: the presence of contacts at other domains that our users' resources hold, and
 * what becomes of it when the connection that carried it is lost (docs/ARCHITECTURE.md,
 * "Federation in the router").
 *
 * Presence from another server comes on one of its connections to an s2s frontend of ours
 * (IPC_S2S_IN names the connection). A remote server that crashes, or loses that
 * connection, never sends its users' unavailable presence: our users would see those
 * contacts online for ever. So the router remembers, per local user with an available
 * resource, each remote full JID whose available presence its resources got, and the
 * (frontend, connection) it came on. When that connection is lost (IPC_S2S_CLOSED with
 * "lost") or its frontend is gone, each such contact's unavailable presence is delivered
 * as if its server had sent it, and one probe per (user, contact) goes out from the user's
 * bare JID (RFC 6121 4.3): a server that is still there answers with the contact's
 * presence again; one that is down bounces it and the contact stays unavailable.
 *
 * Bounded: only contacts in the user's roster with a 'to' subscription, at most
 * max_roster_items remote full JIDs per user and RPRESENCE_RESOURCES_MAX per contact; a
 * user's records go when its last available resource does. */
#ifndef ROUTER_RPRESENCE_H
#define ROUTER_RPRESENCE_H

#include <stdint.h>

#include "ipc.h"
#include "types.h"

/* Resources of one remote contact remembered per user. */
#define RPRESENCE_RESOURCES_MAX 16

/* Presence from `from` (another domain) was delivered to local user `u`'s resources (to
 * `to`, its bare JID or one of its full JIDs), having come through frontend `f` on its
 * server connection `conn` (f NULL or conn 0: not from a connection, nothing kept).
 * Available presence is remembered (within the bounds above); unavailable or error
 * presence forgets `from` (every resource of it when `from` is a bare JID). */
void rpresence_seen(user_t *u, const char *to, const char *from, ipc_stype_t stype,
                    rt_frontend_t *f, uint64_t conn);
/* The user `bare` has no available resource left: its records go. */
void rpresence_user_left(const char *bare);
/* IPC_S2S_CLOSED: a server connection of `f` from `domain` is gone. In order (lost 0) the
 * presence it carried stays (the remote server uses a new connection for later changes):
 * it is only no longer tied to a connection. Lost: that presence is taken back (above). */
void rpresence_conn_closed(rt_frontend_t *f, uint64_t conn, const char *domain, int lost);
/* The frontend is gone (link.h): every connection of it is lost. */
void rpresence_frontend_gone(rt_frontend_t *f);
/* Records held now (users, remote full JIDs, connections): for the tests. */
void rpresence_counts(size_t *users, size_t *entries, size_t *conns);
/* Frees everything (shutdown, tests); accepts being called when nothing was kept. */
void rpresence_close(void);

#endif
