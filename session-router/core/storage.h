/* storage: the connection to Redis (async hiredis in the event loop), reconnecting with
 * backoff, and credential lookups for the frontends. */
#ifndef ROUTER_STORAGE_H
#define ROUTER_STORAGE_H

#include "ipc.h"
#include "jid.h"
#include "router.h"

void storage_open(const char *host, int port);
void storage_close(void);
/* Looks up credentials and answers the frontend with IPC_AUTH_REPLY. */
void storage_auth_lookup(rt_frontend_t *f, const ipc_auth_t *m);
/* Builds the Redis key of one of a user's data (keys.h kinds) under the prefix. */
#define STORAGE_KEY_MAX (JID_MAX + 256)
int storage_key(char *out, const char *kind, const char *bare);

#endif
