/* sm: stream management (XEP-0198) on the frontend's side. The router holds each session's
 * stream-management state (its counters, the stanzas the client has not acknowledged, the
 * resumption id: session-router/core/sm.h), so that a client can resume on any frontend.
 * Here: the nonzas (<enable/>, <r/>, <a/>, <resume/>), the count of the client's stanzas
 * (carried to the router on every stanza), the numbers of the stanzas written to the client
 * (given by the router on every delivery), requests for acknowledgement, and the client's
 * acknowledgements, reported to the router once per <a/>. A stanza the frontend itself
 * makes for such a client (an error, the session iq's result) goes through the router
 * (IPC_ECHO), so that every stanza the client counts has the router's number. */
#ifndef C2S_SM_H
#define C2S_SM_H

#include "buf.h"
#include "ipc.h"
#include "xml.h"

typedef struct client client_t;

#define NS_SM "urn:xmpp:sm:3"

/* Appends <sm/> to the stream features after authentication. */
void sm_features(const client_t *c, buf_t *out);
/* 1 when `el` is a stream-management element (namespace urn:xmpp:sm:3). */
int sm_wants(const xml_node_t *el);
/* Handles one (enable, resume, r, a), in any state: what is not allowed now gets the
 * answer XEP-0198 names. */
void sm_on_element(client_t *c, const xml_node_t *el);
/* Counts a stanza the client sent (stream management on): returns the count to send with
 * it (ipc_stanza_t.h). */
uint32_t sm_count_in(client_t *c);
/* Writes a stanza the frontend made for its own client: through the router when stream
 * management is on (IPC_ECHO), else at once. */
void sm_write_local(client_t *c, const char *data, size_t len);
/* A delivery numbered `h` was written to the client: may ask it for an acknowledgement. */
void sm_on_written(client_t *c, uint32_t h);
/* The router's answers to IPC_SM_ENABLE and IPC_SM_RESUME (or temporary failures). */
void sm_on_enabled(client_t *c, const ipc_sm_enabled_t *m);
void sm_on_resumed(client_t *c, const ipc_sm_resumed_t *m, const char *payload, size_t len);
/* 1 while the request in flight is an enable or a resume; fails it as temporary. */
int sm_fail_request(client_t *c);
/* The flags and acknowledgement of the client's IPC_UNBIND: a resumable session whose
 * connection was lost (not closed with </stream:stream> or a stream error) waits for its
 * client (IPC_UNBIND_DETACH). */
void sm_unbind(const client_t *c, ipc_unbind_t *m);
/* After the resync of a session: its stream-management state (IPC_SM_STATE); 0, or -1
 * when the router could not take it. */
int sm_resync(const client_t *c);
/* Frees the connection's stream-management state. */
void sm_free(client_t *c);

#endif
