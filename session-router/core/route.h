/* route: stanza routing for a session's outbound stanzas (RFC 6120 section 10, RFC 6121
 * section 8.5). Features take part through hooks and IQ handlers (module.h). */
#ifndef ROUTER_ROUTE_H
#define ROUTER_ROUTE_H

#include <stddef.h>

#include "ipc.h"
#include "types.h"
#include "xml.h"

/* Routes a stanza a client sent (raw bytes as the frontend forwarded them). To another
 * domain it leaves through an s2s frontend (remote.h) after the same outbound hooks as to a
 * local address; with no s2s frontend alive the sender gets remote-server-not-found. */
void route_stanza(session_t *from, const ipc_stanza_t *msg, const char *payload, size_t len);
/* Routes a stanza another server sent (IPC_S2S_IN; 'from' at the remote domain, 'to' ours;
 * raw bytes as the frontend forwarded them) as one from another local account: the hooks
 * (blocking, the archive), RFC 6121 8.5 with carbons and offline storage, iq requests to the
 * server or an account answered by the MOD_REMOTE handlers, presence to the presence
 * module (HOOK_PRESENCE_IN, with `f` and msg->conn: the frontend and server connection it
 * came on; f NULL for presence the router makes on a server's behalf, rpresence.h).
 * Errors and answers go back out by address. */
void route_remote_stanza(rt_frontend_t *f, const ipc_s2s_t *msg, const char *payload, size_t len);
/* A stanza for another domain that cannot be sent (its s2s frontend went away before it
 * confirmed it, and no other could take it: remote.h): the error reply goes to its sender
 * as one from the remote address would (route_remote_stanza), as the frontend's own
 * bounces do. Never for an error or an iq result, and only to a sender that is one of our
 * accounts (a room would take it for its occupant being gone). A remote_bounce_fn. */
void route_s2s_bounce(const ipc_s2s_t *msg, const char *payload, size_t len, const char *etype,
                      const char *cond);
/* A stanza delivered to a resource of `bare` that its client never acknowledged, the
 * resource being gone (stream management, sm.h): RFC 6121 8.5.3.2.1 as for a message to a
 * full JID that is not online: a chat message, or a normal one with a body, goes to the
 * user's other resources or offline storage; a groupchat message or an iq request gets
 * an error back to its sender; the rest (presence, errors, results, carbon copies) went
 * with the session. */
void route_redeliver(const char *bare, const char *payload, size_t len);
/* A stanza a frontend handed back because the connection it was for had gone before it
 * could be written (IPC_RETURN): routed as route_redeliver does, for the user its 'to'
 * names, when that user has no available resource left (offline storage); otherwise
 * dropped, since those resources had it (or as a carbon copy). */
void route_returned(const char *payload, size_t len);
/* The same for each stanza of a list taken from a session's queue (smq.h), freed here. */
struct smq_item;
void route_redeliver_items(const char *bare, struct smq_item *items);
/* Sends a stanza a service of the server's makes (service.h; 'from' an address at the
 * service, 'to' a local address) as RFC 6121 section 8.5 routes a stanza from elsewhere:
 *   - a full JID online: delivered (a message through HOOK_DELIVER_FULL);
 *   - a full JID not online: a message of type chat or normal goes on as to the bare JID,
 *     the rest is dropped;
 *   - a bare JID: a message goes to the resources RFC 6121 8.5.2.1 chooses, or to offline
 *     storage (chat, normal), presence to every available resource, an iq nowhere.
 * Returns 0 when a session took it (or it was stored), -1 when nobody could (no such
 * resource, or its frontend is gone: a MUC service then takes the occupant out, XEP-0045
 * section 18.1), -2 when the session's frontend pipe is full just now (counted, logged;
 * the occupant stays). To an address at another domain: sent through an s2s frontend (0),
 * or -2 when none could take it (its server is not known to be gone; a bounce from it
 * says so later). `st` is not taken (its 'to' is restored after a presence broadcast). */
int route_service_stanza(xml_node_t *st);
/* Answers the sender of a raw stanza with an error (never for an error; `from` NULL:
 * only a sender at another domain is answered, out through an s2s frontend). */
void route_bounce(session_t *from, const ipc_stanza_t *msg, const char *payload, size_t len,
                  const char *etype, const char *cond);
/* A delivery its frontend never got (a batch lost with the frontend, link.c): the sender
 * hears resource-constraint (type wait) as for a send that failed at once; never for an
 * error, an iq result or a carbon copy (XEP-0280: the original went its own way), and
 * only to one of our sessions or a sender at another domain. */
void route_bounce_delivery(const char *payload, size_t len);

#endif
