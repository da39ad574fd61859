/* link: the ROUTER socket all frontends connect to (docs/PROTOCOL.md). Hello and
 * heartbeats (frontend liveness), and one table that maps each message type a frontend
 * sends to its handler. */
#ifndef ROUTER_LINK_H
#define ROUTER_LINK_H

#include "ipc.h"
#include "router.h"

/* Binds the socket (with CURVE when configured) and joins it to the loop. */
void link_open(const char *endpoint);
void link_close(void);
/* Sends header (+ payload) to a frontend; 0, or -1 when it is unreachable. */
int link_send(rt_frontend_t *f, const ipc_hdr_t *h, const char *payload, size_t len);

#endif
