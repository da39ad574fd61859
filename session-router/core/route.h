/* route: stanza routing for a session's outbound stanzas (RFC 6120 section 10, RFC 6121
 * section 8.5). Features take part through hooks and IQ handlers (module.h). */
#ifndef ROUTER_ROUTE_H
#define ROUTER_ROUTE_H

#include <stddef.h>

#include "ipc.h"
#include "types.h"

/* Routes a stanza a client sent (raw bytes as the frontend forwarded them). */
void route_stanza(session_t *from, const ipc_stanza_t *msg, const char *payload, size_t len);
/* A stanza delivered to a resource of `bare` that its client never acknowledged, the
 * resource being gone (stream management, sm.h): RFC 6121 8.5.3.2.1 as for a message to a
 * full JID that is not online: a chat message, or a normal one with a body, goes to the
 * user's other resources or offline storage; a groupchat message or an iq request gets
 * an error back to its sender; the rest (presence, errors, results, carbon copies) went
 * with the session. */
void route_redeliver(const char *bare, const char *payload, size_t len);
/* The same for each stanza of a list taken from a session's queue (smq.h), freed here. */
struct smq_item;
void route_redeliver_items(const char *bare, struct smq_item *items);
/* Answers the sender of a raw stanza with an error (never for an error; `from` NULL:
 * nobody to answer). */
void route_bounce(session_t *from, const ipc_stanza_t *msg, const char *payload, size_t len,
                  const char *etype, const char *cond);

#endif
