/* resync: a frontend resends a bound session after the router restarted (IPC_RESYNC); the
 * session is recreated, or updated when the router still has it (docs/PROTOCOL.md). */
#ifndef ROUTER_RESYNC_H
#define ROUTER_RESYNC_H

#include "ipc.h"
#include "router.h"

void resync_session(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload);

#endif
