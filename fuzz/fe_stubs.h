/* fe_stubs: stand-ins for c2s-frontend/client.c (transport) and router_link.c (router
 * link), so that stream.c and sasl.c run in the fuzz_stream harness without sockets, TLS
 * or ZeroMQ. Output goes to c->out; router requests are recorded for the harness to
 * answer; every header the frontend would send to the router is checked by encoding and
 * decoding it, and every forwarded stanza must be one the router can parse. */
#ifndef FUZZ_FE_STUBS_H
#define FUZZ_FE_STUBS_H

#include "../c2s-frontend/client.h"
#include "../c2s-frontend/s2s_resolve.h"
#include "../c2s-frontend/tls.h"

/* The domain a server-to-server peer of the harnesses has a valid certificate for. */
#define FUZZ_S2S_PEER "remote.test"

typedef struct {
    int router_down;    /* router_request fails, router_submit refuses (buffer full) */
    int addr_backoff;   /* addrlimit: the client's address is in auth back-off */
    int pending;        /* a request was recorded and not yet answered */
    ipc_hdr_t request;  /* the last auth or bind request */
    unsigned submitted; /* stanzas and unbinds handed to the router */
    client_t *client;   /* the harness's one connection, for the checks */
    int s2s_closed_sent; /* the connection's IPC_S2S_CLOSED went (at most once) */
} fuzz_router_t;

extern fuzz_router_t fuzz_router;

/* The fixed binding data the harness's tls_channel_bindings() gives every connection under
 * TLS (the real one, in c2s-frontend/tls.c, exports them from the TLS session). */
extern const scram_cb_t fuzz_cb;

/* What client.c does before the loop sleeps: the output is written (here: dropped), then
 * TLS starts if <proceed/> was sent, or a closing connection is closed. */
void fuzz_client_flush(client_t *c);

/* Checks what the frontend wrote: XML streams, each started by an XML declaration and fed
 * to `parser` (reset at each), whose end callback sets *over; nothing may follow the end of
 * a stream but a new stream. Aborts, naming `who`, when the output breaks either rule. */
void fuzz_check_streams(xml_parser_t *parser, int *over, const char *data, size_t len,
                        const char *who);

#endif
