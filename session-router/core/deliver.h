/* deliver: stanzas to sessions through the link: raw bytes, trees, to a user's available
 * resources, error and result answers; what the link refuses is bounced by the caller or,
 * for stanzas the server generates, counted and logged. */
#ifndef ROUTER_DELIVER_H
#define ROUTER_DELIVER_H

#include "types.h"

/* Writes stanza bytes to a session's client. Returns 0, or -1 with errno when the link
 * refused it (EAGAIN: its frontend's pipe is full; EHOSTUNREACH: the frontend is gone);
 * the caller decides what becomes of the stanza (route.c bounces a client's stanza).
 * First the HOOK_SESSION_OUTPUT hooks see it: one that takes it (a client that said it
 * is inactive, XEP-0352) holds it, and this returns 0. */
int session_deliver(session_t *s, const char *data, size_t len);
/* The same without HOOK_SESSION_OUTPUT: for a module releasing a stanza it held. */
int session_deliver_now(session_t *s, const char *data, size_t len);
/* The same for a stanza the server generated (a presence broadcast, a push, a reply, a
 * carbon copy): nobody can be told, so a failure is logged and counted (`what` names the
 * stanza in the log). Returns as session_deliver. */
int session_deliver_server(session_t *s, const char *data, size_t len, const char *what);
/* Counts and logs (at most one line a second) a stanza for `s` that the link refused with
 * `err`: `bounced` when its sender got an error, else lost. */
void session_undelivered(const session_t *s, int err, const char *what, int bounced);
/* Serialises a tree the server generated and delivers it (session_deliver_server). */
void session_deliver_node(session_t *s, const xml_node_t *node);
/* Delivers `st` to every available resource of a user (NULL: nobody), 'to' set to each. */
void session_deliver_available(user_t *target, xml_node_t *st);
/* Delivers `st` to a JID by its address: the session of a local full JID, the available
 * resources of a local bare one, or, at another domain, out through an s2s frontend
 * (remote.h; 'to' set to `jid`). The one way a stanza the server makes reaches any
 * address. */
void session_deliver_jid(const char *jid, xml_node_t *st);
/* Sends the current presence of every available resource of `u` to `target` (a bare JID:
 * a local user's available resources, or a remote contact), or their unavailable
 * presence. Nothing when `target` is a local user the router does not hold (no session to
 * get it). */
void session_send_presence(user_t *u, const char *target, int unavailable);
/* Answers a request with an error (RFC 6120 8.3) from the server: to session `s`, or, with
 * `s` NULL, to the request's 'from' by address (session_deliver_jid: a sender at another
 * domain, whose stanza came through an s2s frontend). */
void session_reply_error(session_t *s, const xml_node_t *st, const char *etype,
                         const char *cond);
/* Answers an iq with a result carrying `payload` (taken; may be NULL); `s` NULL as
 * above. */
void session_reply_result(session_t *s, const xml_node_t *st, xml_node_t *payload);

/* Logs the delivery failures since start (at shutdown). */
void deliver_report(void);

#endif
