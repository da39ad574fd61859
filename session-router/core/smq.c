/* The stream-management queue of a session (smq.h). */
#include "smq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "link.h"
#include "util.h"

static size_t max_unacked = 1000, max_bytes = 4u << 20;
static void (*on_overflow)(evloop_t *, void *);

void smq_configure(size_t max, size_t bytes, void (*overflow_fn)(evloop_t *, void *))
{
    max_unacked = max;
    max_bytes = bytes;
    on_overflow = overflow_fn;
}

static int send_numbered(session_t *s, uint32_t h, const char *data, size_t len)
{
    ipc_hdr_t hdr;
    ipc_deliver_build(&hdr, &(ipc_deliver_t){.conn = s->conn, .numbered = 1, .h = h});
    return link_send(s->fe, &hdr, data, len);
}

int smq_deliver(session_t *s, const char *data, size_t len)
{
    struct sm_state *st = s->sm;
    if (st->count >= max_unacked || st->bytes + len > max_bytes) {
        /* The session ends at the next turn of the loop (not here: the caller may be
         * walking the user's sessions), and hands on what it kept. What arrives until
         * then is kept too, so that it is handed on the same way, up to twice the bound;
         * past that it is refused (its sender hears so). */
        if (!st->overflow && on_overflow)
            st->overflow = evloop_timer(rt.loop, 0, on_overflow, s);
        if (st->count >= 2 * max_unacked || st->bytes + len > 2 * max_bytes) {
            errno = ENOBUFS;
            return -1;
        }
    }
    uint32_t h = st->awaiting ? 0 : st->out + 1;
    /* A frontend that is gone (EHOSTUNREACH) leaves the stanza kept, and the next ones
     * too, unsent: the session waits for its client once the frontend is declared dead,
     * or the frontend resends it. A full pipe (EAGAIN) means the frontend lives but would
     * skip this number: refused, not numbered. */
    if (s->fe && !st->awaiting && !st->hold && send_numbered(s, h, data, len) < 0) {
        if (errno != EHOSTUNREACH)
            return -1;
        st->hold = 1;
    }
    smq_item_t *it = xmalloc(sizeof *it + len);
    it->next = NULL;
    it->h = h;
    it->len = len;
    memcpy(it->data, data, len);
    if (st->tail)
        st->tail->next = it;
    else
        st->head = it;
    st->tail = it;
    st->count++;
    st->bytes += len;
    if (!st->awaiting)
        st->out = h;
    return 0;
}

void smq_number_kept(struct sm_state *st)
{
    for (smq_item_t *it = st->head; it; it = it->next)
        it->h = ++st->out;
}

void smq_ack(struct sm_state *st, uint32_t h)
{
    while (st->head && (uint32_t)(h - st->head->h) < 0x80000000u) {
        smq_item_t *it = st->head;
        st->head = it->next;
        st->bytes -= it->len;
        free(it);
        st->count--;
    }
    if (!st->head)
        st->tail = NULL;
    st->acked = h;
}

int smq_resend(session_t *s, uint32_t after)
{
    for (smq_item_t *it = s->sm->head; it; it = it->next) {
        if ((uint32_t)(it->h - after) - 1 >= 0x80000000u)
            continue; /* numbered at or before `after` */
        if (send_numbered(s, it->h, it->data, it->len) < 0)
            return -1;
    }
    return 0;
}

smq_item_t *smq_take(struct sm_state *st)
{
    smq_item_t *it = st->head;
    st->head = st->tail = NULL;
    st->count = st->bytes = 0;
    return it;
}

void smq_free(smq_item_t *it)
{
    while (it) {
        smq_item_t *next = it->next;
        free(it);
        it = next;
    }
}
