/* zap: CURVE on the router's link socket (link_curve) and the ZAP handler (ZeroMQ RFC 27)
 * that admits only the frontends whose public keys the configuration lists
 * (router_curve_allow, router_curve_allow_file). The handler is a REP socket on
 * inproc://zeromq.zap.01 in the link's ZeroMQ context, driven by the event loop like any
 * zlink: it answers each request at once and never blocks. Refusals are logged at warn,
 * naming the peer address and the key, at most once a minute per address and key. */
#ifndef SESSION_ROUTER_ZAP_H
#define SESSION_ROUTER_ZAP_H

#include "config.h"
#include "evloop.h"

/* The router's CURVE keys: router_curve_secret(_file), router_curve_allow(_file), and the
 * admin keys admin_curve_allow(_file). */
extern const config_key_t zap_config_keys[];

/* Reads the link_curve keys. With CURVE on: makes `sock` (the ROUTER socket, not yet bound)
 * a CURVE server with a ZAP domain and starts the handler in `zctx`. Fatal, naming the key,
 * when the configuration is incomplete or a key is malformed. Returns 1 when CURVE is on. */
int zap_open(evloop_t *loop, void *zctx, void *sock);
/* The admin endpoint (admin.c), after zap_open: with link_curve on, makes `sock` (not yet
 * bound) a CURVE server with the router's key pair in its own ZAP domain, admitting the
 * keys of admin_curve_allow and admin_curve_allow_file. 1: CURVE on; 0: link_curve is off;
 * -1: link_curve is on but no admin key is listed (nobody could connect). */
int zap_admin_server(void *sock);
/* Stops the handler (before the context is terminated); harmless when it never started. */
void zap_close(void);

#endif
