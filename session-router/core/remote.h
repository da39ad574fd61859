/* remote: addresses at other domains (server-to-server, RFC 6120 section 10.4). The router
 * knows which frontends serve s2s (their hello said so, IPC_HELLO_S2S) and sends every
 * stanza for a remote domain to one of them as IPC_S2S_OUT, chosen by a rendezvous
 * (highest random weight) hash of the domain over the live s2s frontends: all of a domain's
 * traffic leaves through one frontend, and a frontend that joins or goes away moves only
 * the domains it wins or held. Stanzas that come from other domains (IPC_S2S_IN) are routed
 * by route.c (route_remote_stanza); this file is below the delivery helpers so that every
 * stanza the server makes for an address (deliver.h) can reach a remote one. */
#ifndef ROUTER_REMOTE_H
#define ROUTER_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ipc.h"
#include "router.h"
#include "xml.h"

/* s2s_resend_buffer. */
extern const config_key_t remote_config_keys[];
/* Reads the settings and registers the metrics (main.c, after config_load). */
void remote_open(void);

/* 1 when the domain (bytes, not NUL-terminated) is another server's: neither ours nor a
 * subdomain of ours (conference.DOMAIN, upload.DOMAIN and any other name under the
 * domain is ours, served or not). */
int remote_domain(const char *dom, size_t len);
/* The same for a JID (prepared: localpart@domain/resource, any part but the domain
 * optional); 0 for NULL. */
int remote_jid(const char *jid);
/* The s2s frontend that carries a remote domain's traffic now, or NULL when no live
 * frontend serves s2s. A frontend that a send found not connected is passed over until it
 * is heard from again. */
rt_frontend_t *remote_frontend(const char *dom, size_t len);
/* Sends a stanza to a remote address: m has its facts (kind, type, to, from, id; 'to' at a
 * remote domain, 'from' one of ours), payload the bytes as the router holds them
 * (serialised for jabber:client: no xmlns on the top element). Returns 0, or -1 with
 * errno: ENETUNREACH when no s2s frontend is alive (the sender gets
 * remote-server-not-found), else link_send's (EAGAIN: that frontend's pipe is full).
 * A frontend found not connected (EHOSTUNREACH) is passed over for the next one. A copy
 * is kept, numbered, until the frontend confirms the stanza (remote_acked), within
 * s2s_resend_buffer bytes per frontend. */
int remote_send(const ipc_s2s_t *m, const char *payload, size_t len);
/* The same for a tree the server made ('to' and 'from' set; serialised here); a failure is
 * logged and counted, since nobody can be told. */
int remote_send_node(const xml_node_t *st);

/* The frontend confirmed n stanzas (IPC_S2S_ACK: n 4-byte numbers, network order): their
 * copies go. */
void remote_acked(rt_frontend_t *f, const unsigned char *seqs, uint32_t n);
/* Answers the sender of a stanza that cannot be sent (an error from the remote domain's
 * address: route.c). */
typedef void (*remote_bounce_fn)(const ipc_s2s_t *m, const char *payload, size_t len,
                                 const char *etype, const char *cond);
/* f went away (link.c's gone: missed heartbeats, or a new epoch): it takes no more
 * domains, and every stanza it had not confirmed is sent again through the frontend that
 * carries its domain now, or bounced (remote-server-timeout) when none is left or it was
 * sent RESEND_TRIES times already. A stanza written just before f died may so arrive
 * twice; none is lost unseen. */
void remote_frontend_gone(rt_frontend_t *f, remote_bounce_fn bounce);
/* Frees f's copies without sending them (the router is stopping; a test's frontend). */
void remote_journal_free(rt_frontend_t *f);
/* Frees the copies of every frontend (the router is stopping: before link_close). */
void remote_close(void);

#endif
