/* sasl: SASL negotiation for one client (RFC 6120 section 6): SCRAM-SHA-256, SCRAM-SHA-1
 * and, under TLS only, SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS (channel binding types
 * tls-exporter and tls-server-end-point, listed per XEP-0440) and PLAIN. Credentials come
 * from the router (IPC_AUTH); the password never leaves this process and is never stored. */
#ifndef C2S_SASL_H
#define C2S_SASL_H

#include "buf.h"
#include "ipc.h"
#include "xml.h"

typedef struct client client_t;

/* Appends the <mechanisms/> feature this client may use now, and with -PLUS the
 * <sasl-channel-binding/> feature (XEP-0440) naming this connection's binding types. */
void sasl_features(client_t *c, buf_t *out);
/* Handles <auth/>, <response/> or <abort/> in the SASL namespace. */
void sasl_on_element(client_t *c, const xml_node_t *el);
/* The router's answer to a credentials lookup. */
void sasl_on_credentials(client_t *c, const ipc_auth_reply_t *m);
/* Frees the exchange state (on success, failure or disconnect). */
void sasl_free(client_t *c);

#endif
