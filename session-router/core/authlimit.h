/* authlimit: failed authentications per account (auth_failures_per_account, auth_backoff),
 * counted across every connection and frontend. */
#ifndef ROUTER_AUTHLIMIT_H
#define ROUTER_AUTHLIMIT_H

#include "config.h"
#include "ipc.h"
#include "router.h"

/* The key auth_failures_per_account. */
extern const config_key_t authlimit_config_keys[];

void authlimit_open(void);
void authlimit_close(void);
/* A credential request: answered IPC_LOCKED while the account is locked, else looked up. */
void authlimit_on_auth(rt_frontend_t *f, const ipc_auth_t *m);
/* A frontend reports how an attempt ended (IPC_AUTH_RESULT). */
void authlimit_on_result(rt_frontend_t *f, const ipc_auth_result_t *m);

#endif
