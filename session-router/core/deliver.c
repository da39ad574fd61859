/* Delivery to sessions (deliver.h). */
#include "deliver.h"

#include <errno.h>
#include <string.h>

#include "hook.h"
#include "link.h"
#include "log.h"
#include "remote.h"
#include "smq.h"
#include "stanza.h"
#include "util.h"

int session_deliver_now(session_t *s, const char *data, size_t len)
{
    int rc = s->sm ? smq_deliver(s, data, len) : link_send_deliver(s->fe, s->conn, data, len);
    if (rc == 0)
        metric_inc(rt.m.stanzas_out[ipc_kind_of_payload(data, len)]);
    return rc;
}

int session_deliver(session_t *s, const char *data, size_t len)
{
    hook_ev_t ev = {.session = s, .payload = data, .len = len};
    if (hook_run(HOOK_SESSION_OUTPUT, &ev) == MOD_HANDLED)
        return 0;
    return session_deliver_now(s, data, len);
}

/* Delivery failures since start, and when one was last logged: a frontend that stopped
 * reading makes every delivery to it fail, so one line a second says how many. */
static struct {
    unsigned long long bounced, lost;
    uint64_t last_ms;
    unsigned long skipped;
} undelivered;

void session_undelivered(const session_t *s, int err, const char *what, int bounced)
{
    if (bounced)
        undelivered.bounced++;
    else
        undelivered.lost++;
    uint64_t now = now_ms();
    if (undelivered.last_ms && now - undelivered.last_ms < 1000) {
        undelivered.skipped++;
        return;
    }
    log_warn("delivery: %s for %s %s: %s (%llu bounced to their senders and %llu server "
             "stanzas lost since start; %lu failures not logged)",
             what, s->full, bounced ? "bounced with resource-constraint" : "lost",
             err == EAGAIN ? "its frontend's pipe is full"
                           : err == EHOSTUNREACH ? "its frontend is unreachable"
                                                 : "the link refused it",
             undelivered.bounced, undelivered.lost, undelivered.skipped);
    undelivered.last_ms = now;
    undelivered.skipped = 0;
}

int session_deliver_server(session_t *s, const char *data, size_t len, const char *what)
{
    if (session_deliver(s, data, len) == 0)
        return 0;
    session_undelivered(s, errno, what, 0);
    return -1;
}

void session_deliver_node(session_t *s, const xml_node_t *node)
{
    buf_t b = BUF_INIT;
    xml_serialize(node, XML_NS_CLIENT, &b);
    session_deliver_server(s, b.data, b.len, node->name ? node->name : "a stanza");
    buf_free(&b);
}

void session_deliver_available(user_t *target, xml_node_t *st)
{
    for (session_t *s = target ? target->sessions : NULL; s; s = s->next) {
        if (!s->available)
            continue;
        xml_node_set_attr(st, "to", s->full);
        session_deliver_node(s, st);
    }
}

void session_deliver_jid(const char *jid, xml_node_t *st)
{
    if (remote_jid(jid)) {
        xml_node_set_attr(st, "to", jid);
        remote_send_node(st);
    } else if (strchr(jid, '/')) {
        session_t *t = session_find_jid(jid);
        if (t)
            session_deliver_node(t, st);
    } else {
        session_deliver_available(user_find(jid), st);
    }
}

void session_send_presence(user_t *u, const char *target, int unavailable)
{
    user_t *local = NULL;
    if (!u || !target || (!remote_jid(target) && !(local = user_find(target))))
        return;
    for (session_t *s = u->sessions; s; s = s->next) {
        if (!s->available)
            continue;
        xml_node_t *p = NULL;
        if (!unavailable && s->last_presence)
            p = stanza_parse(s->last_presence, strlen(s->last_presence));
        if (!p) {
            p = xml_node_new("presence", XML_NS_CLIENT);
            xml_node_set_attr(p, "from", s->full);
            if (unavailable)
                xml_node_set_attr(p, "type", "unavailable");
        }
        if (local)
            session_deliver_available(local, p);
        else
            session_deliver_jid(target, p);
        xml_node_free(&p);
    }
}

/* A reply the server makes: to the session when there is one, else by its 'to' (a
 * stanza from another domain, or from a session gone meanwhile). */
static void reply_node(session_t *s, xml_node_t *r)
{
    const char *to = xml_node_attr(r, "to");
    if (s)
        session_deliver_node(s, r);
    else if (to)
        session_deliver_jid(to, r);
}

void session_reply_error(session_t *s, const xml_node_t *st, const char *etype,
                         const char *cond)
{
    xml_node_t *err = stanza_error_reply(st, rt.domain, etype, cond);
    reply_node(s, err);
    xml_node_free(&err);
}

void session_reply_result(session_t *s, const xml_node_t *st, xml_node_t *payload)
{
    xml_node_t *res = stanza_iq_result(st, rt.domain);
    if (payload)
        xml_node_add_child(res, payload);
    reply_node(s, res);
    xml_node_free(&res);
}

void deliver_report(void)
{
    if (undelivered.bounced || undelivered.lost)
        log_info("delivery: %llu stanzas bounced to their senders and %llu server stanzas lost "
                 "since start (a frontend's pipe was full or it was gone)",
                 undelivered.bounced, undelivered.lost);
}
