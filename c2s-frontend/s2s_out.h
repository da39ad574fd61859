/* s2s_out: the outbound server-to-server connections, one per (local domain, remote
 * domain) pair, and the stanzas waiting while one comes up.
 *
 * The router sends a stanza for another domain (IPC_S2S_OUT); it goes out on the
 * connection from its 'from' domain to its 'to' domain, written at once when that
 * connection is up, else queued (at most s2s_queue_max per pair; past that the stanza is
 * bounced). A pair without a connection resolves the remote domain (s2s_resolve.h) and
 * tries each target in turn: non-blocking connect, then the stream (s2s.c: STARTTLS or
 * direct TLS, the certificate checked, SASL EXTERNAL). When it is up, the queue is written
 * in order. When every target failed, or s2s_connect_timeout passed, every queued stanza is
 * bounced to its sender through the router (IPC_S2S_IN, type error: RFC 6120 8.3.3.15
 * <remote-server-not-found/> when nothing answered or the domain does not resolve, 8.3.3.16
 * <remote-server-timeout/> on a timeout), never one of type error. */
#ifndef C2S_S2S_OUT_H
#define C2S_S2S_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

typedef struct client client_t;
typedef struct s2s_link s2s_link_t;

/* The settings s2s_open reads (milliseconds, stanzas). */
typedef struct {
    uint64_t idle_ms;    /* s2s_idle_timeout */
    uint64_t connect_ms; /* s2s_connect_timeout */
    size_t queue_max;    /* s2s_queue_max */
} s2s_out_settings_t;
extern s2s_out_settings_t s2s_out_cfg;

/* main.c, before the router link opens: the s2s-ack of each loop pass is sent before the
 * link's own before-sleep drain, which then re-arms the ZeroMQ socket's descriptor (a send
 * after it could leave a message that arrived meanwhile unannounced until a timer). */
void s2s_out_open(void);
/* router_link.c: a stanza from the router for another domain. */
void s2s_out_route(const ipc_s2s_t *m, const char *payload, size_t len);
/* s2s.c: the connection of `link` is authenticated: the queue goes out. */
void s2s_out_ready(s2s_link_t *link, client_t *c);
/* s2s.c: the connection of `link` is gone or ending (ended by us or the peer, failed): a
 * connection not yet up moves on to the next target. */
void s2s_out_closed(s2s_link_t *link, client_t *c);
/* s2s.c, Server Dialback (XEP-0220 2.3): asks the authoritative server of `remote` whether
 * `key` is the one it made for our inbound stream `conn` (id `stream_id`) from `remote` to
 * `local`: a <db:verify/> on our outbound connection from `local` to `remote` (opened when
 * needed, sent once that stream is usable, authenticated or not). The answer comes back
 * through s2s_dialback_answer (invalid when the connection failed). */
void s2s_out_dialback_verify(const char *local, const char *remote, uint64_t conn,
                             const char *stream_id, const char *key);
/* s2s.c: the outbound stream of `link` got its features after TLS: <db:verify/> may go. */
void s2s_out_usable(s2s_link_t *link, client_t *c);
/* s2s.c: the peer answered a <db:verify/> on the outbound stream of `link`. */
void s2s_out_verify_result(s2s_link_t *link, const char *stream_id, int valid);
/* s2s.c: an inbound connection from `remote` was lost (no </stream:stream>: its server may
 * have died). Our authenticated outbound streams to it are ended, since one to a server
 * that died would take stanzas (a probe, say) into a socket whose peer is gone, and TCP
 * tells of that only after the write; the next stanza opens a new connection, which
 * either comes up or bounces it. */
void s2s_out_peer_lost(const char *remote);
/* Bounces every queued stanza and forgets every pair (shutdown). */
void s2s_out_shutdown(void);
/* Sends the router an error reply to a stanza we could not deliver to another server
 * (type error: nothing; cond a stanza error condition of RFC 6120 8.3.3, etype its type). */
void s2s_bounce(ipc_kind_t kind, ipc_stype_t stype, const char *payload, size_t len,
                const char *etype, const char *cond, const char *text);

#endif
