/* resync: a frontend resends a bound session after the router restarted (IPC_RESYNC); the
 * session is recreated, or updated when the router still has it (docs/PROTOCOL.md). */
#ifndef ROUTER_RESYNC_H
#define ROUTER_RESYNC_H

#include "ipc.h"
#include "router.h"

/* `payload`: the resync's payload frame (last presence, NUL, directed-presence targets). */
void resync_session(rt_frontend_t *f, const ipc_resync_t *m, const char *payload, size_t len);

#endif
