/* websocket: XMPP over WebSocket (RFC 7395) on the ws_listen and wss_listen listeners.
 *
 * A connection accepted there first speaks HTTP/1.1: GET ws_path with a WebSocket upgrade
 * (RFC 6455 4.2, the `xmpp` subprotocol required) switches to WebSocket framing;
 * GET /.well-known/host-meta and host-meta.json (XEP-0156) name the WebSocket URL;
 * anything else gets its HTTP error and the connection is closed. Requests are parsed by
 * libhttp-parser and frames by wslay; neither has an event loop of its own, so both run on
 * the bytes client.c reads and write through client_write_raw.
 *
 * After the upgrade every text message is one XML element (RFC 7395 3.3.3). <open/> and
 * <close/> in urn:ietf:params:xml:ns:xmpp-framing stand for the stream header and end tag;
 * every other element goes into the connection's stream parser, which sits inside a stream
 * header made from the <open/>'s attributes. So stream.c, sasl.c and sm.c serve WebSocket
 * clients with the code that serves TCP ones; only the framing of what they write differs
 * (client_write sends each call as one text message). */
#ifndef C2S_WEBSOCKET_H
#define C2S_WEBSOCKET_H

#include <stddef.h>

#include "config.h"

typedef struct client client_t;
typedef struct ws ws_t;

#define NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"

extern const config_key_t ws_config_keys[];

typedef struct {
    const char *path;            /* ws_path */
    const char *allowed_origins; /* ws_allowed_origins */
    const char *url;             /* ws_url */
    long ping_interval;          /* ws_ping_interval, seconds (0: off) */
} ws_config_t;

/* Takes the settings (main.c reads them from the keys above). Returns -1 with a message
 * naming the key on a bad value. */
int ws_configure(const ws_config_t *cfg, char *err, size_t errlen);
void ws_shutdown(void);

/* A connection accepted on a WebSocket listener: c->ws is set, HTTP comes first. */
void ws_attach(client_t *c);
/* Frees the WebSocket state; c->ws becomes NULL. */
void ws_free(client_t *c);

/* Bytes read from the transport (after TLS). */
void ws_on_data(client_t *c, const char *data, size_t len);

/* Whether a WebSocket connection counts as protected although the frontend does not do
 * TLS on it: wss, or ws from loopback (the browser is on this machine), or ws behind the
 * load balancer (proxy_protocol: HAProxy ended TLS). A plain WebSocket from elsewhere is
 * not: with require_tls it is offered no SASL (there is no STARTTLS to negotiate), and
 * PLAIN needs a protected connection. */
int ws_protected(const client_t *c);
/* 1 once the upgrade response is written: output is framed from then on. */
int ws_upgraded(const client_t *c);
/* One XML element (a stanza, features, a SASL element...) as one text message. An element
 * with no default namespace of its own gets xmlns='jabber:client', since every message
 * must stand alone (RFC 7395 3.3.3). */
void ws_write_element(client_t *c, const char *data, size_t len);
/* <close/> then a WebSocket close frame (1000): the end of the stream (RFC 7395 3.6). */
void ws_write_close(client_t *c);
/* Frees wslay's context (about 8 KiB: its input and output buffers) of an idle connection:
 * between messages, with no part of a frame held and nothing to write. Made again when
 * bytes come or go. Returns 1 when no context is held now. */
int ws_release(client_t *c);
/* Whether the connection holds a wslay context. */
int ws_live(const client_t *c);
/* The largest message accepted from now on (max_stanza_size once authenticated). */
void ws_set_max_message(client_t *c, size_t max);

#endif
