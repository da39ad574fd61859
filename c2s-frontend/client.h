/* client: the state of one client connection, shared by client.c (transport: TCP, TLS,
 * output queue, lifetime) and stream.c / sasl.c (the XMPP protocol on top). */
#ifndef C2S_CLIENT_H
#define C2S_CLIENT_H

#include "addrlimit.h"
#include "frontend.h"
#include "jid.h"
#include "sasl.h"

struct client {
    uint64_t id;
    int fd;
    SSL *ssl;
    char addr[64]; /* peer address for logs */
    char addr_key[ADDRLIMIT_KEY_MAX]; /* what the per-address limits count it under */

    /* transport */
    buf_t out;
    buf_t proxy_acc; /* the part of a PROXY header read so far */
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
    client_t *next_dirty, *next_closing;
    ev_timer_t *read_timer; /* resumes reading (throttling, bytes left in OpenSSL) */
    double rate_tokens;     /* bytes it may send now (max_bytes_per_second bucket) */
    uint64_t rate_refill;   /* when rate_tokens was last topped up */

    /* stream */
    xml_parser_t *parser;
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
    char user[JID_PART_MAX + 1]; /* prepared localpart, after SASL */
    char jid[JID_MAX + 1];       /* full JID, after bind */
    sasl_t *sasl;
    int sasl_failures;
    uint32_t pending_seq; /* router request in flight, 0 when none */
    xml_node_t *pending_iq; /* the bind iq waiting for the router's reply */
    xml_node_t *queue, *queue_tail; /* elements parsed while a request was in flight */
    int nqueued;
    ev_timer_t *open_timer; /* stream_open_timeout: until the first stream header */
    ev_timer_t *auth_timer;
    ev_timer_t *req_timer; /* bounds the router request in flight (request_timeout) */

    /* What a restarted router needs to rebuild this session (IPC_RESYNC): */
    unsigned available : 1;  /* sent initial presence, no unavailable since */
    unsigned interested : 1; /* requested the roster */
    int priority;
    char *last_presence; /* serialised, from stamped; NULL when unavailable */
};

#endif
