/* s2s: the server-to-server role of the frontend (RFC 6120 with the jabber:server content
 * namespace), on the transport of client.c and the stream parser of stream.c.
 *
 * A server connection is a client_t with c->s2s set (as c->ws marks a WebSocket): client.c
 * still does TCP, TLS (the client side too, for outbound connections), the output queue,
 * the limits and the lingering close; stream.c still feeds the parser and writes stream
 * errors; this module gives the parser its callbacks and writes the jabber:server stream
 * header. Both directions:
 *
 * Inbound (s2s_listen, s2s_tls_listen = XEP-0368 direct TLS): the peer's header must name
 * one of our domains in 'to' (`domain` or a subdomain of it, else <host-unknown/>) and none
 * of ours in 'from' (nor may a <db:result/> claim one: <invalid-from/>);
 * features: STARTTLS (required with s2s_require_encryption), then under TLS SASL EXTERNAL
 * (XEP-0178), offered only when the peer's certificate verifies against s2s_ca_file (or
 * the system store) and names the domain of the header's 'from' (RFC 6125: a DNS-ID, the
 * wildcard only as the whole left-most label, or an XmppAddr otherName). After <success/>
 * the stream restarts and the pair (remote domain, local domain) is authenticated; every
 * stanza then needs 'from' in the remote domain (<invalid-from/>) and 'to' in one of ours
 * (<host-unknown/>) and goes to the router as IPC_S2S_IN. Before that, a stanza gets
 * <not-authorized/>. We never send stanzas on an inbound stream.
 *
 * Outbound (s2s_out.c): one connection per (local domain, remote domain) that we open,
 * STARTTLS or direct TLS, the peer's certificate checked against the remote domain, our
 * certificate (tls_cert) presented, SASL EXTERNAL with authzid = our domain, restart, then
 * the stanzas the router sends us (IPC_S2S_OUT). */
#ifndef C2S_S2S_H
#define C2S_S2S_H

#include <openssl/ssl.h>
#include <stdint.h>

#include "config.h"
#include "evloop.h"
#include "jid.h"
#include "xml.h"

typedef struct client client_t;
typedef struct s2s_link s2s_link_t;

#define NS_SERVER "jabber:server"
#define NS_DIALBACK "jabber:server:dialback"
#define NS_DIALBACK_FEATURE "urn:xmpp:features:dialback"

/* Where an s2s stream stands. */
typedef enum {
    S2S_OPENING = 0, /* waiting for the peer's stream header (and, outbound, its features) */
    S2S_STARTTLS,    /* outbound: <starttls/> sent, waiting for <proceed/> */
    S2S_AUTHING,     /* outbound: <auth/> sent, waiting for <success/> */
    S2S_DIALBACK,    /* outbound: <db:result/> sent, waiting for its answer (XEP-0220) */
    S2S_AUTHED,      /* authenticated: stanzas flow (inbound: from the peer; outbound: to it) */
} s2s_state_t;

typedef struct s2s {
    unsigned outbound : 1;
    unsigned cert_checked : 1; /* inbound: cert_ok is known for `remote` */
    unsigned cert_ok : 1;      /* the peer's certificate verifies and names `remote` */
    unsigned ready : 1;        /* outbound: authenticated and the stream restarted */
    unsigned db_pending : 1;   /* inbound: the peer's <db:result/> is being verified */
    unsigned usable : 1;       /* outbound: the peer's features came (after TLS): <db:verify/>
                                  may be sent on it */
    unsigned orderly : 1;      /* inbound: the stream ended in order (the peer's
                                  </stream:stream>, our idle close, our shutdown): the router
                                  keeps what came on it (IPC_S2S_CLOSED without "lost") */
    s2s_state_t state;
    int sasl_failures;
    char local[JID_PART_MAX + 1];  /* our domain on this stream */
    char remote[JID_PART_MAX + 1]; /* the peer's domain ("" inbound until its header says) */
    s2s_link_t *link;              /* outbound: the (local, remote) pair it serves */
    uint64_t last_active;          /* for s2s_idle_timeout */
    ev_timer_t *idle_timer;
    char why[160];                 /* outbound: why it failed, for the log and the bounce */
    char peer_id[64];              /* outbound: the id of the peer's stream (dialback key) */
} s2s_t;

extern const config_key_t s2s_config_keys[];

/* Reads the s2s keys and prepares the certificate store and the client TLS context;
 * 0, or -1 with a message naming the key in err. Called once at start when s2s_listen
 * is set; s2s_enabled() says so afterwards. */
int s2s_open(char *err, size_t errlen);
int s2s_enabled(void);
/* SIGHUP: our client certificate for outbound connections from tls_cert/tls_key again. */
void s2s_reload_tls(void);
/* Cancels the outbound queues (bouncing what waits) and frees what s2s_open built. */
void s2s_shutdown(void);
/* Inbound connections open now, and whether one more may be accepted (s2s_max_connections). */
int s2s_accept_ok(void);
/* Outbound connections open now, and whether one more may be opened (s2s_max_connections
 * too: a peer's <db:result/> makes us connect to a server of its choosing). */
int s2s_connect_ok(void);
/* 1 when `domain` (prepared) is one of ours: `domain` or a subdomain of it. */
int s2s_hosted(const char *domain);

/* client.c: a connection accepted on an s2s listener (before stream_init). */
void s2s_attach_inbound(client_t *c);
/* s2s_out.c: a new outbound connection (client_connect) for `link`. */
void s2s_attach_outbound(client_t *c, s2s_link_t *link, const char *local, const char *remote);
/* stream.c: the parser callbacks of an s2s stream; its header; input seen (idle timer). */
const xml_callbacks_t *s2s_callbacks(void);
void s2s_write_header(client_t *c);
void s2s_on_activity(client_t *c);
/* stream.c (stream_on_closed): the connection is gone; frees c->s2s. */
void s2s_on_closed(client_t *c);
/* client.c: the SSL object for a server connection (inbound: server side asking for the
 * peer's certificate; outbound: client side with SNI), NULL on failure. */
SSL *s2s_ssl_new(client_t *c);
/* client.c: the TLS handshake completed. */
void s2s_tls_ready(client_t *c);
/* client.c: an outbound TCP connection completed (connected) or failed (errno in err). */
void s2s_connected(client_t *c);

/* s2s_out.c: the authoritative server answered our <db:verify/> for the inbound stream
 * `conn` whose id is `stream_id` (valid 1), or it could not be asked (0). */
void s2s_dialback_answer(uint64_t conn, const char *stream_id, int valid);

/* Ends an s2s stream of ours (idle or shutdown): </stream:stream>, then close. */
void s2s_end_stream(client_t *c);

#endif
