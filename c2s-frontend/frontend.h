/* frontend: the state shared by the modules of the c2s-frontend process, and the
 * interfaces they call on each other. One process, one event loop, one thread. */
#ifndef C2S_FRONTEND_H
#define C2S_FRONTEND_H

#include <openssl/ssl.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "evloop.h"
#include "hmap.h"
#include "ipc.h"
#include "metrics.h"
#include "xml.h"
#include "zlink.h"

typedef struct client client_t;
typedef struct sasl sasl_t;

/* The frontend's metrics (README, "Metrics"), registered by main.c whether or not
 * metrics_listen serves them (NULL in tests that do not: metric_* calls then do nothing).
 * Arrays by kind are indexed by ipc_kind_t (0: not a stanza kind). */
typedef struct {
    metric_t *accepted, *refused;      /* xmpp_connections_{accepted,refused}_total */
    metric_t *stanzas_in[IPC_KINDS];           /* xmpp_stanzas_in_total{kind}: from bound clients */
    metric_t *stanzas_out[IPC_KINDS];          /* xmpp_stanzas_out_total{kind}: written to clients */
    metric_t *tls_ok, *tls_failed;     /* xmpp_tls_handshakes_total{result} */
    zlink_metrics_t link;              /* xmpp_link_{messages,bytes}_total{direction} */
} fe_metrics_t;

typedef struct {
    evloop_t *loop;
    SSL_CTX *tls;       /* NULL when no certificate is configured (STARTTLS not offered);
                         * replaced on SIGHUP (tls.c): take it only for SSL_new */
    void *zctx, *zsock; /* ZeroMQ context and DEALER socket to the router */
    zlink_t *link;
    char name[64];      /* frontend_name */
    uint64_t epoch;     /* boot epoch: tells this run apart from earlier ones */
    uint64_t router_epoch;
    uint64_t next_conn; /* connection ids are never reused within an epoch */
    uint32_t next_seq;
    hmap_t *clients;    /* conn id (8 bytes) -> client_t */
    client_t *closing;  /* clients to free at the end of this loop iteration */
    client_t *dirty;    /* clients with output to flush before the next wait */
    client_t *lingering; /* closed streams whose sockets wait for the peer (client.h) */
    int listen_fd;      /* c2s_listen, -1 when off (a server-to-server frontend) */
    int tls_listen_fd;  /* c2s_tls_listen (XEP-0368 direct TLS), -1 when off */
    int ws_listen_fd, wss_listen_fd; /* ws_listen, wss_listen (websocket.h), -1 when off */
    int s2s_listen_fd, s2s_tls_listen_fd; /* s2s_listen, s2s_tls_listen (s2s.h), -1 when off */
    int proxy_protocol; /* every connection starts with a PROXY v1/v2 header */
    const char *domain;
    int require_tls;
    int channel_binding; /* sasl_channel_binding: offer SCRAM-*-PLUS under TLS */
    xml_limits_t limits;         /* once authenticated: max_stanza_size, max_depth */
    xml_limits_t limits_preauth; /* before: max_stanza_size_preauth, max_depth_preauth */
    long max_connections;
    long auth_timeout_ms;
    long stream_open_timeout_ms;
    long bytes_per_second; /* max_bytes_per_second, 0: no limit */
    size_t max_output;     /* max_output_buffer */
    size_t out_pause;      /* reading a client stops while more than this is queued for it */
    ev_timer_t *sweep_timer; /* forgets quiet addresses (addrlimit) */
    /* Clients whose XML parser is live, least recent input first, and the timer that
     * releases the parsers of those idle for PARSER_IDLE_MS (stream.c). */
    client_t *parsers_head, *parsers_tail;
    ev_timer_t *parsers_timer;
    size_t nclients;    /* open sockets, lingering ones included (max_connections) */
    fe_metrics_t m;
} frontend_t;

extern frontend_t fe;

/* client.c: one client connection, accepted on a listener of kind `flags`. */
#define LISTEN_DIRECT_TLS 1u /* TLS from the first byte: c2s_tls_listen (XEP-0368), wss_listen */
#define LISTEN_WEBSOCKET 2u  /* HTTP, then WebSocket (websocket.h): ws_listen, wss_listen */
#define LISTEN_S2S 4u        /* a server-to-server stream (s2s.h): s2s_listen, s2s_tls_listen */
void client_accept(int fd, unsigned flags);
/* An outbound connection (s2s_out.c) on `fd`, whose non-blocking connect is under way to
 * `addr` (for logs); TLS from the first byte with direct_tls. The caller attaches its
 * stream state and calls stream_init; s2s_connected() runs once the connect completed. */
client_t *client_connect(int fd, const char *addr, int direct_tls);
/* Queues an element (or, on a TCP stream, any bytes of the stream) for the client; it is
 * written before the loop next waits. On a WebSocket each call is one message. */
void client_write(client_t *c, const char *data, size_t len);
/* Queues bytes as they are, below any framing (HTTP, WebSocket frames). */
void client_write_raw(client_t *c, const char *data, size_t len);
void client_write_str(client_t *c, const char *s);
/* Sends a stream error (opening the stream first if needed), closes the stream and the
 * connection once written. `text` may be NULL. */
void client_stream_error(client_t *c, const char *condition, const char *text);
/* The same with application-specific XML (RFC 6120 4.9.4) after the text. */
void client_stream_error_extra(client_t *c, const char *condition, const char *text,
                               const char *extra);
/* Closes the connection after pending output is written, lingering (client.h) to read
 * what the peer still sends (graceful), or at once. Nothing more is written once it is
 * called. */
void client_close(client_t *c, int graceful);
/* Starts TLS on the connection after <proceed/> has been written. */
void client_start_tls(client_t *c);
/* Flushes every client with pending output (before-sleep hook) and frees closed ones. */
void client_flush_all(evloop_t *loop, void *ud);
client_t *client_find(uint64_t conn);
/* Stops reading from the client while a router request is in flight, and resumes. */
void client_pause(client_t *c);
void client_resume(client_t *c);
/* Closes every client, for shutdown. */
void client_close_all(void);

/* Counts a stanza written to a client (one the router delivered or one the frontend
 * generated, such as a bounce). */
void client_count_out(const char *data, size_t len);

/* sasl.c: registers xmpp_auth_total{mechanism,result} (main.c calls it at start). */
void sasl_register_metrics(void);
/* router_link.c: stanzas waiting in the router buffer (xmpp_link_buffered_stanzas). */
size_t router_buffered(void);

/* stream.c: XMPP stream negotiation and stanza handling for one client. */
void stream_init(client_t *c);
/* Sets the connection's full JID (a copy; "" for none). */
void stream_set_jid(client_t *c, const char *jid);
/* Sets c->user (copied; "" for none). */
void stream_set_user(client_t *c, const char *user);
void stream_on_data(client_t *c, const char *data, size_t len);
/* Input or output: the connection is busy now; its parser (and WebSocket context) will be
 * released once it is idle (PARSER_IDLE_MS). */
void stream_touch(client_t *c);
/* The TLS version of the client's connection ("TLSv1.3"), or "none" (IPC_BIND). */
const char *stream_tls_version(const client_t *c);
/* Router replies and deliveries for this client. */
void stream_on_auth_reply(client_t *c, const ipc_auth_reply_t *m);
void stream_on_bind_reply(client_t *c, const ipc_bind_reply_t *m);
void stream_on_register_reply(client_t *c, const ipc_register_reply_t *m);
void stream_on_closed(client_t *c);
/* WebSocket (websocket.c): the client's <open/>, the stream header of RFC 7395 3.3.2, and
 * its <close/> (3.6), the stream's end tag. */
void stream_ws_open(client_t *c, const xml_node_t *open);
void stream_client_closed(client_t *c);
/* The end of the stream this side writes: </stream:stream>, or <close/> on a WebSocket. */
void stream_write_end(client_t *c);
/* Expects a new stream header (after STARTTLS or SASL success): the parser is reset once
 * the input being parsed now is consumed. */
void stream_restart(client_t *c);
/* Handles elements that queued up behind a router request, once it is answered. */
void stream_drain_queue(client_t *c);
/* Appends the payload of the client's IPC_RESYNC (common/ipc.h): last presence when
 * available, then the directed-presence targets. */
void stream_resync_payload(const client_t *c, buf_t *out);
/* The inverse, for a resumed session: takes the state the router kept (flags
 * IPC_RESYNC_*, the payload of IPC_SM_RESUMED). */
void stream_restore_state(client_t *c, uint8_t flags, const char *payload, size_t len);

/* Answers the router request in flight (auth, bind or register) with a temporary failure: the router
 * went away or did not answer within request_timeout. */
void stream_fail_request(client_t *c);

/* router_link.c: the DEALER link to the session-router, its liveness (router_timeout) and
 * the buffer that holds stanzas while the router is away (router_buffer). */
extern const config_key_t router_link_config_keys[];
void router_link_open(const char *endpoint);
void router_link_close(void);
/* 1 while the router answers (hello seen, heartbeats on time), else 0. */
int router_is_up(void);
/* Sends a header (built with an ipc.h builder) and an optional payload now; 0, or -1 when
 * the router cannot take it (not connected, or the pipe to it is full). */
int router_send(const ipc_hdr_t *h, const char *payload, size_t len);
/* Sends a client's stanza or unbind in order: now while the router is up, else into the
 * buffer, flushed once a router has the sessions back. 0, or -1 when the buffer is full
 * (the caller bounces the stanza with a `wait` error). `always`: never refused (unbind). */
int router_submit(const ipc_hdr_t *h, const char *payload, size_t len, int always);
/* Sends an auth or bind request (built with request id `seq`) and bounds its wait with
 * request_timeout; 0, or -1 when the router is away (the caller fails it at once). */
int router_request(client_t *c, const ipc_hdr_t *h, uint32_t seq);

#endif
