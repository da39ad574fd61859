/* dispatch: the router's table of the messages a frontend sends (bind, unbind, stanza,
 * auth, auth-result, resync) and their handlers; the link hands each message of a known
 * frontend here (link_open). */
#ifndef ROUTER_DISPATCH_H
#define ROUTER_DISPATCH_H

#include "link.h"

void dispatch_message(rt_frontend_t *f, const ipc_hdr_t *h, const zpart_t *payload);
/* A frontend is gone (link_open's on_gone): its sessions end or wait (sm.h), and the
 * presence of remote contacts its server connections carried is taken back
 * (rpresence.h). */
void dispatch_frontend_gone(rt_frontend_t *f);
/* A message to a frontend lost in a batch with it (link_open's on_lost): a delivery fares
 * as a send that failed at once (route_bounce_delivery); a numbered one (stream
 * management) is still in its session's queue and goes again on resumption. */
void dispatch_lost(const ipc_hdr_t *h, const zpart_t *payload);

#endif
