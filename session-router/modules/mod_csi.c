/* XEP-0352 client state indication: while a client says it is inactive (a phone with its
 * screen off), what it need not see at once is held in the router instead of waking it:
 * presence updates (only the newest per sender is kept: XEP-0352 3.2, "push the latest
 * presence from each contact"), chat states and other messages without a body. Anything a
 * person should see now (rules_csi_class: a message with a body, an encrypted message, a
 * call, an iq) first releases everything held, in the order it came, then goes out itself;
 * <active/> releases everything too. So the client still sees every stanza in order, less
 * the presence that a newer one from the same sender replaced.
 *
 * Held stanzas are taken at the top of session_deliver (HOOK_SESSION_OUTPUT) and released
 * with session_deliver_now, below the hook. A session's state lives in its slot only while
 * the client is inactive; an active session costs nothing but the hook call. What one
 * session holds is bounded (csi_max_held stanzas, csi_max_held_bytes): past it everything
 * is released. What is held when the session ends is dropped (presence and chat states of
 * a client that is gone). The frontend keeps the state too and resends it after a router
 * restart (IPC_RESYNC_INACTIVE); stanzas held by the router that stopped are lost. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hmap.h"
#include "log.h"
#include "metrics.h"
#include "module.h"
#include "modules.h"
#include "router.h"
#include "rules.h"
#include "stanza.h"
#include "util.h"

/* One held stanza, in the session's ordered list. */
typedef struct held {
    struct held *prev, *next;
    char *from; /* a presence: its sender, the key in csi_t.presence; else NULL */
    size_t len;
    char data[]; /* the stanza bytes as the core would have delivered them */
} held_t;

/* The slot of an inactive session. */
typedef struct {
    held_t *head, *tail;
    hmap_t *presence; /* sender ('from') -> its held presence; NULL until the first */
    size_t count, bytes;
} csi_t;

static long max_held, max_held_bytes;
static metric_t *m_held;       /* xmpp_csi_held_total */
static metric_t *m_superseded; /* xmpp_csi_superseded_total */

static void unlink_held(csi_t *c, held_t *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        c->head = h->next;
    if (h->next)
        h->next->prev = h->prev;
    else
        c->tail = h->prev;
    c->count--;
    c->bytes -= h->len;
    free(h->from);
    free(h);
}

/* Writes every held stanza to the client, in the order they came, and forgets them. */
static void release(session_t *s, csi_t *c)
{
    hmap_destroy(&c->presence); /* its values are the list's entries */
    while (c->head) {
        held_t *h = c->head;
        if (session_deliver_now(s, h->data, h->len) < 0)
            session_undelivered(s, errno, "a stanza held while inactive", 0);
        unlink_held(c, h);
    }
}

/* The session's client is inactive from now on (its slot holds a csi_t). */
static void set_inactive(session_t *s)
{
    if (!module_slot(s, mod_csi))
        module_slot(s, mod_csi) = xcalloc(1, sizeof(csi_t));
}

/* The client is active again: what is held is released, the slot freed. */
static void set_active(session_t *s)
{
    csi_t *c = module_slot(s, mod_csi);
    if (!c)
        return;
    release(s, c);
    free(c);
    module_slot(s, mod_csi) = NULL;
}

/* Holds a copy of a stanza; a presence replaces the one held from the same sender. */
static void hold(csi_t *c, const char *data, size_t len, const char *from)
{
    if (from) {
        if (!c->presence)
            c->presence = hmap_new();
        held_t *old = hmap_sdel(c->presence, from);
        if (old) {
            unlink_held(c, old);
            metric_inc(m_superseded);
        }
    }
    held_t *h = xmalloc(sizeof *h + len);
    h->prev = c->tail;
    h->next = NULL;
    h->from = from ? xstrdup(from) : NULL;
    h->len = len;
    memcpy(h->data, data, len);
    if (c->tail)
        c->tail->next = h;
    else
        c->head = h;
    c->tail = h;
    c->count++;
    c->bytes += len;
    if (from)
        hmap_sput(c->presence, from, h);
    metric_inc(m_held);
}

/* Every stanza for a session passes here (session_deliver). Active sessions have no slot:
 * nothing is parsed for them. */
static mod_result_t on_output(hook_ev_t *ev)
{
    session_t *s = ev->session;
    csi_t *c = module_slot(s, mod_csi);
    if (!c)
        return MOD_PASS;
    rules_csi_t cls = RULES_CSI_URGENT;
    char *from = NULL;
    /* An iq is urgent whatever it holds: no need to parse it. */
    if (ipc_kind_of_payload(ev->payload, ev->len) != IPC_KIND_IQ) {
        xml_node_t *st = stanza_parse(ev->payload, ev->len);
        if (st) {
            cls = rules_csi_class(st);
            if (cls == RULES_CSI_PRESENCE) {
                const char *f = xml_node_attr(st, "from");
                from = xstrdup(f ? f : "");
            }
        }
        xml_node_free(&st);
    }
    if (cls != RULES_CSI_URGENT) {
        /* What is held already and this one, counting the presence it replaces. */
        held_t *old = from && c->presence ? hmap_sget(c->presence, from) : NULL;
        size_t count = c->count + 1 - (old != NULL);
        size_t bytes = c->bytes + ev->len - (old ? old->len : 0);
        if (count <= (size_t)max_held && bytes <= (size_t)max_held_bytes) {
            hold(c, ev->payload, ev->len, from);
            free(from);
            return MOD_HANDLED;
        }
        log_debug("csi: %s holds %zu stanzas (%zu bytes): releasing them", s->full, c->count,
                  c->bytes);
    }
    free(from);
    release(s, c);
    return MOD_PASS; /* the core delivers this one after them */
}

static mod_result_t on_client_state(hook_ev_t *ev)
{
    session_t *s = ev->session;
    /* XEP-0352 5.1: <active/> releases what is held before the client's next stanza is
     * processed (the frontend sends the state in order with its stanzas). */
    if (ev->inactive)
        set_inactive(s);
    else
        set_active(s);
    log_debug("csi: %s is %s", s->full, ev->inactive ? "inactive" : "active");
    return MOD_PASS;
}

/* A restarted router: the frontend says which clients were inactive. */
static mod_result_t on_resync(hook_ev_t *ev)
{
    if (ev->resync->flags & IPC_RESYNC_INACTIVE)
        set_inactive(ev->session);
    else
        set_active(ev->session);
    return MOD_PASS;
}

/* The session is gone: what is held is dropped, nothing is sent. */
static mod_result_t on_freed(hook_ev_t *ev)
{
    csi_t *c = module_slot(ev->session, mod_csi);
    if (!c)
        return MOD_PASS;
    hmap_destroy(&c->presence);
    while (c->head)
        unlink_held(c, c->head);
    free(c);
    module_slot(ev->session, mod_csi) = NULL;
    return MOD_PASS;
}

static void csi_open(void)
{
    max_held = config_int("csi_max_held");
    max_held_bytes = config_int("csi_max_held_bytes");
    m_held = metrics_counter("xmpp_csi_held_total", "",
                             "stanzas held for clients that said they are inactive (XEP-0352)");
    m_superseded = metrics_counter("xmpp_csi_superseded_total", "",
                                   "held presence updates replaced by a newer one from the same "
                                   "sender, never sent");
}

static const mod_hook_t hooks[] = {
    {HOOK_SESSION_OUTPUT, 0, on_output},
    {HOOK_CLIENT_STATE, 0, on_client_state},
    {HOOK_SESSION_RESYNC, 0, on_resync},
    {HOOK_SESSION_FREED, 0, on_freed},
    {0},
};

static const config_key_t config[] = {
    CONFIG_INT("csi_max_held", "256", 0, 100000, "stanzas held for one inactive client (XEP-0352); past it all are sent, 0 holds none"),
    CONFIG_INT("csi_max_held_bytes", "131072", 0, 16777216, "bytes held for one inactive client (XEP-0352); past it all are sent"),
    CONFIG_END,
};

/* XEP-0352 has no disco feature: it is offered as a stream feature (the frontend). */
module_t mod_csi = {
    .name = "csi",
    .hooks = hooks,
    .config = config,
    .wants_slot = 1,
    .open = csi_open,
};
