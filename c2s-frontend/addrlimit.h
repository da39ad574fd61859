/* addrlimit: what the frontend allows one client address (README.md, "Limits"):
 * connections at once (max_connections_per_ip), new connections per second
 * (connection_rate_per_ip with a burst of connection_burst_per_ip) and failed
 * authentications (auth_failures_per_ip, then auth_backoff). An IPv6 client counts by its
 * /64, the block one subscriber usually holds. Addresses come from the socket, or from the
 * load balancer's PROXY header. */
#ifndef C2S_ADDRLIMIT_H
#define C2S_ADDRLIMIT_H

#include <stddef.h>
#include <stdint.h>

#define ADDRLIMIT_KEY_MAX 64

typedef struct {
    long max_conns;  /* 0: no limit */
    long rate;       /* new connections per second; 0: no limit */
    long burst;
    long max_auth_failures; /* 0: no limit */
    uint64_t backoff_ms;
} addrlimit_config_t;

void addrlimit_init(const addrlimit_config_t *cfg);
void addrlimit_shutdown(void);
/* The key an address counts under ("192.0.2.1", "2001:db8:1:2::/64"), from the client's
 * "ip:port" or "[ipv6]:port" as logged. */
void addrlimit_key(const char *host, char key[ADDRLIMIT_KEY_MAX]);
/* A new connection from `key`: NULL when allowed (it is counted until addrlimit_release),
 * else why not. */
const char *addrlimit_admit(const char *key, uint64_t now);
void addrlimit_release(const char *key);
/* Authentication from `key`: 0 when allowed now, else milliseconds to wait. */
uint64_t addrlimit_auth_wait(const char *key, uint64_t now);
/* Records a failure; returns the milliseconds of the lock-out it started, or 0. */
uint64_t addrlimit_auth_failed(const char *key, uint64_t now);
/* Forgets quiet addresses (every few seconds, from a timer). */
void addrlimit_sweep(uint64_t now);

#endif
