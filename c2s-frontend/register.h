/* register: in-band registration before authentication (XEP-0077 3.1), with invitation
 * tokens (XEP-0401, XEP-0445 pre-authenticated registration). The frontend checks the
 * form, prepares the username (nodeprep) and derives the credentials (scram_creds_make);
 * the router decides (allow_registration, the token, the per-address limit, a name that
 * is taken or tombstoned) and stores the account (IPC_REGISTER). Nothing but the
 * connection's accepted token is kept here. */
#ifndef C2S_REGISTER_H
#define C2S_REGISTER_H

#include "buf.h"
#include "ipc.h"
#include "xml.h"

typedef struct client client_t;

/* Reads allow_registration, register_min_password and scram_iterations (after config_load). */
void register_init(void);
/* The same values given directly (the fuzz harness has no configuration). */
void register_configure(int allow_registration, long min_password, unsigned iterations);
/* Appends the registration stream features this client may use now (only under TLS when
 * TLS is configured, like PLAIN). */
void register_features(client_t *c, buf_t *out);
/* 1 when `st` is a registration request this client may send before authenticating: an iq
 * to the server (no 'to', or the domain) with a jabber:iq:register query or an
 * urn:xmpp:pars:0 preauth. */
int register_wants(const client_t *c, const xml_node_t *st);
/* Handles such a request (answers it, or asks the router and pauses the client). */
void register_on_iq(client_t *c, const xml_node_t *st);
/* The router's answer to IPC_REGISTER (or a temporary failure made up locally). */
void register_on_reply(client_t *c, const ipc_register_reply_t *m);
/* Frees what the connection kept (its token, a request waiting for the router). */
void register_free(client_t *c);

#endif
