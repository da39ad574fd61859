/* smq: the stream-management queue of a session (XEP-0198), below the delivery path:
 * every stanza delivered to a session with stream management gets the next number and a
 * copy kept until the client acknowledges it. The rest of stream management (enable,
 * resume, waiting sessions, the link messages) is sm.h, above the session table. */
#ifndef ROUTER_SMQ_H
#define ROUTER_SMQ_H

#include <stddef.h>
#include <stdint.h>

#include "evloop.h"
#include "ipc.h"
#include "types.h"

/* A stanza sent to the client and not yet acknowledged, with its number. */
typedef struct smq_item {
    struct smq_item *next;
    uint32_t h;
    size_t len;
    char data[];
} smq_item_t;

/* session_t.sm */
struct sm_state {
    char id[IPC_SM_ID_MAX + 1]; /* resumption id; "" when not resumable */
    uint32_t in;    /* the client's stanzas handled (its frontend counts them) */
    uint32_t out;   /* stanzas numbered for the client */
    uint32_t acked; /* its last acknowledgement */
    uint32_t max_s; /* how long it may wait for resumption (seconds) */
    smq_item_t *head, *tail;
    size_t count;
    ev_timer_t *expire;   /* waiting: ends the session when the time is up (sm.c) */
    ev_timer_t *overflow; /* past the bound: ends the session (not from inside a
                             delivery, whose caller may be walking the user's sessions) */
};

/* The bound (sm_max_unacked) and what happens past it: `fn` runs from the event loop
 * (sm.c ends the session). */
void smq_configure(size_t max_unacked, void (*overflow_fn)(evloop_t *, void *));

/* Numbers, keeps and (when the session is connected) sends a stanza. Returns 0 (sent, or
 * kept for a session whose frontend is gone or that waits), or -1 with errno: EAGAIN when
 * its frontend's pipe is full (not numbered, not kept), ENOBUFS when the bound is reached
 * (the session is ending). */
int smq_deliver(session_t *s, const char *data, size_t len);
/* Drops what the client acknowledged with `h` (modulo 2^32); the caller checked it. */
void smq_ack(struct sm_state *st, uint32_t h);
/* Sends again every kept stanza numbered after `after`; -1 when the link refused one. */
int smq_resend(session_t *s, uint32_t after);
/* Takes the kept stanzas out of the state (the session ends); smq_free frees such a list. */
smq_item_t *smq_take(struct sm_state *st);
void smq_free(smq_item_t *it);

/* The counter arithmetic, modulo 2^32 (XEP-0198 4): 1 when acknowledging `h` is possible
 * after `acked` with `out` sent. */
static inline int sm_ack_valid(uint32_t acked, uint32_t out, uint32_t h)
{
    return (uint32_t)(h - acked) <= (uint32_t)(out - acked);
}

#endif
