/* route: stanza routing for a session's outbound stanzas (RFC 6120 section 10, RFC 6121
 * section 8.5). Features take part through hooks and IQ handlers (module.h). */
#ifndef ROUTER_ROUTE_H
#define ROUTER_ROUTE_H

#include <stddef.h>

#include "ipc.h"
#include "types.h"

/* Routes a stanza a client sent (raw bytes as the frontend forwarded them). */
void route_stanza(session_t *from, const ipc_stanza_t *msg, const char *payload, size_t len);
/* Answers the sender of a raw stanza with an error (never for an error). */
void route_bounce(session_t *from, const ipc_stanza_t *msg, const char *payload, size_t len,
                  const char *etype, const char *cond);

#endif
