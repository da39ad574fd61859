/* iqreq: iq requests the server itself sends to a client (a disco#info query for entity
 * capabilities, ...) and the answers to them. Each request gets an id of its own and waits
 * for a result or error from the very JID it was sent to; an answer from anyone else, or
 * after the timeout, is not taken. */
#ifndef ROUTER_IQREQ_H
#define ROUTER_IQREQ_H

#include <stdint.h>

#include "types.h"
#include "xml.h"

/* Called once per request: with the answering iq (type result or error) or with NULL when
 * none came in time or the request could not be sent. The answer is freed afterwards. */
typedef void (*iqreq_fn)(const xml_node_t *answer, void *arg);

/* Sends `iq` (taken; its 'id', 'from' (the domain) and 'to' (s->full) are set here) to the
 * session's client, and calls fn with the answer or NULL after timeout_ms. */
void iqreq_send(session_t *s, xml_node_t *iq, uint64_t timeout_ms, iqreq_fn fn, void *arg);

/* An iq result or error addressed to the server (route.c): 1 when it answered one of our
 * requests (and fn ran), else 0. */
int iqreq_answer(const session_t *from, const xml_node_t *st);

/* Shutdown: every waiting request is called with NULL and forgotten. */
void iqreq_close(void);

#endif
