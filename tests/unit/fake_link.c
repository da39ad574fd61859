/* The fake link (fake_router.h): link_send records what the router would have sent to a
 * frontend instead of writing to a ZeroMQ socket. core/link.c is not linked into the unit
 * tests. Also the router's process-wide state, which session-router/main.c defines in the
 * real binary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_router.h"
#include "link.h"
#include "util.h"

router_t rt;

static fake_sent_t *sent;
static size_t nsent, capsent;

int link_send(rt_frontend_t *f, const ipc_hdr_t *h, const char *payload, size_t len)
{
    if (nsent == capsent)
        sent = xrealloc(sent, (capsent = capsent ? 2 * capsent : 64) * sizeof *sent);
    fake_sent_t *m = &sent[nsent++];
    memset(m, 0, sizeof *m);
    m->fe = f;
    m->type = h->type;
    m->conn = h->conn;
    m->seq = h->seq;
    m->status = h->status;
    snprintf(m->field0, sizeof m->field0, "%s", h->field[0]);
    snprintf(m->field1, sizeof m->field1, "%s", h->field[1]);
    if (payload) {
        m->data = xmalloc(len + 1);
        memcpy(m->data, payload, len);
        m->data[len] = '\0';
        m->len = len;
    }
    return 0;
}

size_t fake_link_count(void)
{
    return nsent;
}

const fake_sent_t *fake_link_get(size_t i)
{
    return i < nsent ? &sent[i] : NULL;
}

void fake_link_clear(void)
{
    for (size_t i = 0; i < nsent; i++)
        free(sent[i].data);
    free(sent);
    sent = NULL;
    nsent = capsent = 0;
}
