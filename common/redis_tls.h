/* redis_tls: TLS towards Redis for hiredis 0.14, which has none. hiredis connects to a unix
 * socket of this process (in a private 0700 directory), and each connection accepted there
 * is relayed byte for byte to a TLS connection to Redis, made with OpenSSL inside the event
 * loop, never blocking (name resolution aside, which hiredis does too). Redis's certificate
 * is verified against redis_tls_ca (the system's store when empty) and must name
 * redis_tls_server_name (default: redis_host); redis_tls_cert and redis_tls_key are the
 * client certificate for a Redis with tls-auth-clients. A failed connection or handshake is
 * logged and closes the hiredis side, so the caller's reconnect logic applies as for any
 * other Redis failure. */
#ifndef COMMON_REDIS_TLS_H
#define COMMON_REDIS_TLS_H

#include "config.h"

#include "evloop.h"

typedef struct redis_tls redis_tls_t;

/* Reads the redis_tls_* keys and listens on the private unix socket. Returns NULL when
 * redis_tls is off; fatal, naming the key, when a file cannot be loaded. */
redis_tls_t *redis_tls_new(evloop_t *loop, const char *host, int port);
/* The unix socket hiredis connects to instead of host:port. */
const char *redis_tls_path(const redis_tls_t *t);
/* Stops the loop once the first relayed connection has ended, or after `idle_ms` without
 * any (xmppctl's one-shot relay in a child process). */
void redis_tls_once(redis_tls_t *t, uint64_t idle_ms);
/* Closes the relay and removes its socket; NULL is accepted. */
void redis_tls_destroy(redis_tls_t **t_p);
/* Frees this process's copy of a relay that a child process runs after fork(): the socket
 * stays, the child removes it. NULL is accepted. */
void redis_tls_release(redis_tls_t **t_p);

/* The keys of the Redis connection (redis_host, redis_port, redis_prefix, AUTH, TLS). */
extern const config_key_t redis_config_keys[];

#endif
