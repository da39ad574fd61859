/* iq requests the server sends and their answers (iqreq.h). */
#include "iqreq.h"

#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "hmap.h"
#include "log.h"
#include "util.h"

typedef struct {
    char id[40];
    char *to; /* the full JID asked: only it may answer */
    iqreq_fn fn;
    void *arg;
    ev_timer_t *timer;
} iqreq_t;

static hmap_t *pending; /* id -> iqreq_t */

static void req_done(iqreq_t *r, const xml_node_t *answer)
{
    hmap_sdel(pending, r->id);
    evloop_cancel(rt.loop, &r->timer);
    r->fn(answer, r->arg);
    free(r->to);
    free(r);
}

static void on_timeout(evloop_t *loop, void *ud)
{
    (void)loop;
    iqreq_t *r = ud;
    r->timer = NULL; /* it ran: the handle is gone */
    log_debug("iqreq: no answer from %s to %s", r->to, r->id);
    req_done(r, NULL);
}

void iqreq_send(session_t *s, xml_node_t *iq, uint64_t timeout_ms, iqreq_fn fn, void *arg)
{
    if (!pending)
        pending = hmap_new();
    iqreq_t *r = xcalloc(1, sizeof *r);
    /* 64 random bits: another client cannot guess an id to answer in the asked one's
     * place, and the answer must come from the asked JID anyway. */
    random_id(r->id, sizeof r->id, "rt-");
    r->to = xstrdup(s->full);
    r->fn = fn;
    r->arg = arg;
    xml_node_set_attr(iq, "id", r->id);
    xml_node_set_attr(iq, "from", rt.domain);
    xml_node_set_attr(iq, "to", s->full);
    hmap_sput(pending, r->id, r);
    buf_t b = BUF_INIT;
    xml_serialize(iq, XML_NS_CLIENT, &b);
    xml_node_free(&iq);
    int rc = session_deliver_server(s, b.data, b.len, "a request of the server");
    buf_free(&b);
    if (rc < 0) {
        req_done(r, NULL);
        return;
    }
    r->timer = evloop_timer(rt.loop, timeout_ms, on_timeout, r);
}

int iqreq_answer(const session_t *from, const xml_node_t *st)
{
    const char *id = xml_node_attr(st, "id");
    iqreq_t *r = pending && id ? hmap_sget(pending, id) : NULL;
    if (!r || strcmp(r->to, from->full) != 0)
        return 0;
    req_done(r, st);
    return 1;
}

void iqreq_close(void)
{
    if (!pending)
        return;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    /* req_done removes from the map: restart the walk after each. */
    while ((pos = 0, hmap_next(pending, &pos, &k, &kl, &v)))
        req_done(v, NULL);
    hmap_destroy(&pending);
}
