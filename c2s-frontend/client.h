/* client: the state of one client connection, shared by client.c (transport: TCP, TLS,
 * output queue, lifetime) and stream.c / sasl.c (the XMPP protocol on top). */
#ifndef C2S_CLIENT_H
#define C2S_CLIENT_H

#include "addrlimit.h"
#include "frontend.h"
#include "jid.h"
#include "register.h"
#include "registration.h"
#include "s2s.h"
#include "sasl.h"
#include "sm.h"
#include "websocket.h"

/* Lingering close. A stream that ends (stream error or </stream:stream>) while the client
 * is still sending, say in the middle of a stanza over max_stanza_size, must not be
 * closed with its input unread: the kernel would answer with a TCP reset, and the client's
 * kernel may throw away the stream error before the client read it. So once the last bytes
 * (and over TLS the close_notify) are written, the write side is shut down and whatever
 * still arrives is read and discarded, raw, until the peer closes, or LINGER_MS pass, or
 * LINGER_MAX_BYTES were discarded (a peer that never stops cannot hold the connection
 * longer). Only then is the socket closed. The session ends for the router when lingering
 * starts; the connection still counts against max_connections and the per-address limits
 * until it is closed. A connection the address limits refused does not linger: it is
 * closed once its stream error is written. */
#define LINGER_MS 2000
/* The largest max_stanza_size: a client cut off in the middle of any stanza may send the
 * rest. Discarding costs a recv and no parsing, less than reading the same bytes did. */
#define LINGER_MAX_BYTES (16u << 20)

struct client {
    uint64_t id;
    int fd;
    SSL *ssl;
    char addr[64]; /* peer address for logs */
    char addr_key[ADDRLIMIT_KEY_MAX]; /* what the per-address limits count it under */

    /* transport */
    buf_t out;
    buf_t proxy_acc; /* the part of a PROXY header read so far */
    ws_t *ws;        /* accepted on a WebSocket listener (websocket.h), else NULL */
    s2s_t *s2s;      /* a server-to-server stream (s2s.h), else NULL */
    unsigned watching; /* events registered with the loop */
    unsigned tls_handshaking : 1;
    unsigned read_paused : 1;  /* waiting on the router: stop reading (back-pressure) */
    unsigned closing : 1;      /* close once `out` is written */
    unsigned closed : 1;       /* gone; freed at the end of the loop iteration */
    unsigned dirty : 1;        /* on fe.dirty */
    unsigned proxy_pending : 1; /* waiting for the load balancer's PROXY header */
    unsigned direct_tls : 1;    /* XEP-0368: TLS from the first byte, no STARTTLS */
    unsigned admitted : 1;      /* counted by addrlimit until closed */
    unsigned throttled : 1;     /* over max_bytes_per_second: reading waits for read_timer */
    unsigned overflow : 1;      /* more than max_output_buffer queued: closed at once */
    unsigned write_blocked : 1; /* the socket took no more of `out`: wait for EV_WRITE */
    unsigned lingering : 1;     /* lingering close: out of fe.clients, on fe.lingering */
    unsigned notify_pending : 1; /* lingering, the TLS close_notify still to be written */
    unsigned outbound : 1;      /* we opened it (s2s_out.c): TLS client side */
    unsigned connecting : 1;    /* outbound, the TCP connect still in progress */
    client_t *next_dirty, *next_closing;
    client_t *linger_prev, *linger_next; /* fe.lingering */
    ev_timer_t *linger_timer; /* LINGER_MS: the longest the connection lingers */
    size_t linger_bytes;      /* discarded so far */
    ev_timer_t *read_timer; /* resumes reading (throttling, bytes left in OpenSSL) */
    double rate_tokens;     /* bytes it may send now (max_bytes_per_second bucket) */
    uint64_t rate_refill;   /* when rate_tokens was last topped up */

    /* stream */
    xml_parser_t *parser; /* released while the stream is idle (stream.c, PARSER_IDLE_MS) */
    client_t *idle_prev, *idle_next; /* fe.parsers: live parsers, least recent input first */
    uint64_t input_at;               /* when input last came (now_ms), while on fe.parsers */
    unsigned on_parsers : 1;
    unsigned header_sent : 1;
    unsigned restart : 1;   /* reset the parser once the current input is consumed */
    unsigned tls_start : 1; /* start TLS once <proceed/> is written */
    unsigned tls : 1;
    unsigned authed : 1;
    unsigned bound : 1;
    unsigned reported : 1; /* the router knows this session (bind sent) */
    unsigned in_feed : 1;  /* inside xml_parser_feed: the parser must not be reset now */
    unsigned stream_done : 1; /* the stream was closed or failed: ignore further input */
    char stream_id[40];
    char *user; /* prepared localpart after SASL, "" before (stream_set_user) */
    char *jid; /* full JID after bind, "" before (stream_set_jid: no 3 KiB per connection) */
    uint64_t bound_time;         /* when the bind succeeded (Unix seconds; resync) */
    sasl_t *sasl;
    int sasl_failures;
    uint32_t pending_seq; /* router request in flight, 0 when none */
    xml_node_t *pending_iq; /* the bind or registration iq waiting for the router's reply */
    /* in-band registration before authentication (register.c) */
    unsigned reg_pending : 1;  /* the request in flight is an IPC_REGISTER */
    unsigned reg_token_ok : 1; /* the router accepted reg_token (XEP-0445 preauth) */
    int reg_attempts;          /* registration requests so far (bounded) */
    char reg_token[REGISTER_TOKEN_MAX + 1]; /* invitation token, "" when none */
    xml_node_t *queue, *queue_tail; /* elements parsed while a request was in flight */
    int nqueued;
    ev_timer_t *open_timer; /* stream_open_timeout: until the first stream header */
    ev_timer_t *auth_timer;
    ev_timer_t *req_timer; /* bounds the router request in flight (request_timeout) */

    /* What a restarted router needs to rebuild this session (IPC_RESYNC): */
    unsigned available : 1;  /* sent initial presence, no unavailable since */
    unsigned interested : 1; /* requested the roster */
    unsigned carbons : 1;    /* enabled message carbons */
    unsigned blocklist : 1;  /* requested the blocklist */
    unsigned inactive : 1;   /* said <inactive/> (XEP-0352), no <active/> since */
    hmap_t *directed;        /* JIDs sent directed available presence, or NULL */
    int priority;
    char *last_presence; /* serialised, from stamped; NULL when unavailable */

    /* Stream management (sm.c); the router holds the rest of the state. */
    unsigned sm_on : 1;        /* enabled or resumed */
    unsigned sm_resumable : 1; /* with a resumption id */
    unsigned sm_pending : 1;   /* the request in flight is an enable or a resume */
    unsigned sm_r_pending : 1; /* our <r/> waits for its <a/> */
    unsigned sm_keep : 1;      /* closed by the server's fault (shutdown, overload): stays
                                  resumable */
    unsigned sm_r_asked : 1;   /* the client's <r/> is with the router (IPC_SM_REQUEST) */
    uint32_t sm_in;    /* the client's stanzas handled since enable (mod 2^32) */
    uint32_t sm_in_sent; /* the count of the last of them handed to the link (the rest wait
                            in the router buffer) */
    uint32_t sm_out;   /* the number of the last stanza written to it */
    uint32_t sm_acked; /* its last acknowledgement */
    uint32_t sm_max;   /* the resumption time the router granted (seconds) */
    char *sm_id;       /* resumption id, or NULL */
    ev_timer_t *sm_timer; /* asks for an acknowledgement (sm.c) */
};

#endif
