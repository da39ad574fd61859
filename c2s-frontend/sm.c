/* Stream management (XEP-0198, version 1.6) on the frontend's side: sm.h. */
#include "sm.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "log.h"
#include "stanza.h"
#include "util.h"

/* The server asks for an acknowledgement (<r/>) once this many stanzas are unacknowledged,
 * or SM_REQUEST_DELAY_MS after the first one, whichever comes first; never while one
 * request is unanswered. The client's answers are what the router learns (IPC_SM_ACK): one
 * link message per <a/>, a batch of up to SM_REQUEST_EVERY stanzas or more. */
#define SM_REQUEST_EVERY 5
#define SM_REQUEST_DELAY_MS 1000

void sm_features(const client_t *c, buf_t *out)
{
    if (c->authed)
        buf_append_str(out, "<sm xmlns='" NS_SM "'/>");
}

int sm_wants(const xml_node_t *el)
{
    return el->ns && strcmp(el->ns, NS_SM) == 0;
}

/* A counter attribute: decimal, 0..2^32-1 (XEP-0198 4: h is an unsignedInt). */
static int parse_u32(const char *s, uint32_t *out)
{
    if (!s || !*s)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; s[i]; i++) {
        if (i == 10 || s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* <failed/> (XEP-0198 3, 5) with a stanza error condition, an optional h (the stanzas the
 * server handled) and optional extra XML. */
static void send_failed(client_t *c, const char *cond, const uint32_t *h, const char *extra)
{
    char buf[512];
    char hattr[24] = "";
    if (h)
        snprintf(hattr, sizeof hattr, " h='%" PRIu32 "'", *h);
    snprintf(buf, sizeof buf, "<failed xmlns='" NS_SM "'%s><%s xmlns='" NS_STANZAS "'/>%s</failed>",
             hattr, cond, extra ? extra : "");
    client_write_str(c, buf);
}

static void request_ack(client_t *c)
{
    evloop_cancel(fe.loop, &c->sm_timer);
    client_write_str(c, "<r xmlns='" NS_SM "'/>");
    c->sm_r_pending = 1;
}

static void on_request_timer(evloop_t *loop, void *ud)
{
    (void)loop;
    client_t *c = ud;
    c->sm_timer = NULL;
    if (!c->closed && !c->stream_done && c->sm_on && !c->sm_r_pending &&
        c->sm_out != c->sm_acked)
        request_ack(c);
}

int sm_check_number(const client_t *c, uint32_t h)
{
    return !c->sm_on || (uint32_t)(h - c->sm_out) - 1 < 0x80000000u ? 0 : -1;
}

void sm_on_written(client_t *c, uint32_t h)
{
    if (!c->sm_on)
        return;
    c->sm_out = h;
    if (c->sm_r_pending)
        return;
    if (c->sm_out - c->sm_acked >= SM_REQUEST_EVERY)
        request_ack(c);
    else if (!c->sm_timer)
        c->sm_timer = evloop_timer(fe.loop, SM_REQUEST_DELAY_MS, on_request_timer, c);
}

uint32_t sm_count_in(client_t *c)
{
    return ++c->sm_in; /* wraps at 2^32 as XEP-0198 4 says */
}

void sm_write_local(client_t *c, const char *data, size_t len)
{
    if (c->sm_on && c->reported) {
        ipc_hdr_t h;
        ipc_echo_build(&h, &(ipc_echo_t){.conn = c->id, .h = c->sm_in});
        if (router_submit(&h, data, len, 0) < 0) {
            c->sm_keep = 1; /* our fault: the session may wait to be resumed */
            client_stream_error(c, "resource-constraint", "The server is overloaded");
        }
        return;
    }
    client_write(c, data, len);
    client_count_out(data, len);
}

/* <enable/> (XEP-0198 3): only once, and only after binding a resource. */
static void on_enable(client_t *c, const xml_node_t *el)
{
    if (!c->bound || c->sm_on) {
        send_failed(c, "unexpected-request", NULL, NULL);
        return;
    }
    const char *resume = xml_node_attr(el, "resume");
    uint32_t max = 0;
    if (parse_u32(xml_node_attr(el, "max"), &max) < 0)
        max = 0;
    ipc_hdr_t h;
    uint32_t seq = ++fe.next_seq ? fe.next_seq : ++fe.next_seq;
    int resumable = resume && (strcmp(resume, "true") == 0 || strcmp(resume, "1") == 0);
    ipc_sm_enable_build(&h, &(ipc_sm_enable_t){.conn = c->id, .seq = seq,
                                               .resumable = resumable, .max = max});
    if (router_request(c, &h, seq) < 0) {
        send_failed(c, "internal-server-error", NULL, NULL);
        return;
    }
    c->sm_pending = 1;
    client_pause(c);
}

void sm_on_enabled(client_t *c, const ipc_sm_enabled_t *m)
{
    if (!c->sm_pending || m->seq != c->pending_seq)
        return;
    c->sm_pending = 0;
    c->pending_seq = 0;
    if (m->status != IPC_OK) {
        send_failed(c, m->status == IPC_TEMPORARY ? "internal-server-error" : "unexpected-request",
                    NULL, NULL);
    } else {
        c->sm_on = 1;
        c->sm_resumable = m->id[0] != '\0';
        c->sm_in = c->sm_in_sent = c->sm_out = c->sm_acked = 0;
        free(c->sm_id);
        c->sm_id = c->sm_resumable ? xstrdup(m->id) : NULL;
        c->sm_max = m->max;
        buf_t b = BUF_INIT;
        buf_append_str(&b, "<enabled xmlns='" NS_SM "'");
        if (c->sm_resumable)
            buf_printf(&b, " id='%s' resume='true' max='%" PRIu32 "'", c->sm_id, m->max);
        buf_append_str(&b, "/>");
        client_write(c, b.data, b.len);
        buf_free(&b);
        log_debug("conn %llu: stream management on%s", (unsigned long long)c->id,
                  c->sm_resumable ? ", resumable" : "");
    }
    client_resume(c);
}

/* <resume/> (XEP-0198 5): after authentication, instead of binding a resource. */
static void on_resume(client_t *c, const xml_node_t *el)
{
    if (c->bound || c->sm_on) {
        send_failed(c, "unexpected-request", NULL, NULL);
        return;
    }
    const char *previd = xml_node_attr(el, "previd");
    uint32_t h;
    if (!previd || parse_u32(xml_node_attr(el, "h"), &h) < 0) {
        send_failed(c, "bad-request", NULL, NULL);
        return;
    }
    /* Our ids are letters, digits, '-' and '_': anything else is no session of ours. */
    size_t n = strlen(previd);
    if (!n || n > IPC_SM_ID_MAX || strspn(previd, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                                                  "QRSTUVWXYZ0123456789-_") != n) {
        send_failed(c, "item-not-found", NULL, NULL);
        return;
    }
    ipc_sm_resume_t m = {.conn = c->id, .id = previd, .username = c->user, .h = h};
    snprintf(m.addr, sizeof m.addr, "%s", c->addr);
    snprintf(m.tls, sizeof m.tls, "%s", stream_tls_version(c));
    ipc_hdr_t hdr;
    m.seq = ++fe.next_seq ? fe.next_seq : ++fe.next_seq;
    if (ipc_sm_resume_build(&hdr, &m) < 0 || router_request(c, &hdr, m.seq) < 0) {
        send_failed(c, "internal-server-error", NULL, NULL);
        return;
    }
    free(c->sm_id);
    c->sm_id = xstrdup(previd);
    c->sm_acked = h;
    c->sm_pending = 1;
    client_pause(c);
}

void sm_on_resumed(client_t *c, const ipc_sm_resumed_t *m, const char *payload, size_t len)
{
    if (!c->sm_pending || m->seq != c->pending_seq)
        return;
    c->sm_pending = 0;
    c->pending_seq = 0;
    if (m->status != IPC_OK) {
        if (m->status == IPC_REFUSED) {
            /* XEP-0198 5: the client says it handled more than was sent. */
            char extra[160];
            snprintf(extra, sizeof extra,
                     "<handled-count-too-high xmlns='" NS_SM "' h='%" PRIu32 "' send-count='%" PRIu32
                     "'/>",
                     c->sm_acked, m->out);
            send_failed(c, "undefined-condition", &m->in, extra);
        } else {
            send_failed(c, m->status == IPC_NOT_FOUND ? "item-not-found" : "internal-server-error",
                        NULL, NULL);
        }
        xfree(&c->sm_id);
        c->sm_acked = 0;
        client_resume(c);
        return;
    }
    stream_set_jid(c, m->jid);
    c->bound = 1;
    c->reported = 1;
    c->bound_time = m->since ? m->since : (uint64_t)time(NULL);
    evloop_cancel(fe.loop, &c->auth_timer);
    c->sm_on = 1;
    c->sm_resumable = 1;
    c->sm_in = c->sm_in_sent = m->in;
    c->sm_out = c->sm_acked;
    c->sm_max = m->max;
    c->sm_r_pending = 0;
    stream_restore_state(c, m->flags, payload, len);
    char buf[160];
    snprintf(buf, sizeof buf, "<resumed xmlns='" NS_SM "' previd='%s' h='%" PRIu32 "'/>", c->sm_id,
             m->in);
    client_write_str(c, buf);
    log_info("conn %llu: resumed %s", (unsigned long long)c->id, c->jid);
    client_resume(c);
}

int sm_fail_request(client_t *c)
{
    if (!c->sm_pending)
        return 0;
    if (c->bound)
        sm_on_enabled(c, &(ipc_sm_enabled_t){c->id, c->pending_seq, IPC_TEMPORARY, "", 0});
    else
        sm_on_resumed(c, &(ipc_sm_resumed_t){.conn = c->id, .seq = c->pending_seq,
                                             .status = IPC_TEMPORARY, .jid = ""},
                      NULL, 0);
    return 1;
}

/* <a h/> (XEP-0198 4): the client handled h stanzas; more than were sent is an error. */
static void on_ack(client_t *c, const xml_node_t *el)
{
    uint32_t h;
    if (parse_u32(xml_node_attr(el, "h"), &h) < 0) {
        client_stream_error(c, "bad-format", "Invalid h in <a/>");
        return;
    }
    /* Counters wrap at 2^32: compare distances from the last acknowledgement. One that goes
     * back (an old <a/>, out of order) tells nothing new. */
    if (h != c->sm_acked && (uint32_t)(c->sm_acked - h) < 0x80000000u)
        return;
    if (h - c->sm_acked > c->sm_out - c->sm_acked) {
        char extra[160];
        snprintf(extra, sizeof extra,
                 "<handled-count-too-high xmlns='" NS_SM "' h='%" PRIu32 "' send-count='%" PRIu32
                 "'/>",
                 h, c->sm_out);
        client_stream_error_extra(c, "undefined-condition", "You acknowledged stanzas never sent",
                                  extra);
        return;
    }
    c->sm_r_pending = 0;
    if (h == c->sm_acked)
        return;
    c->sm_acked = h;
    ipc_hdr_t hdr;
    ipc_sm_ack_build(&hdr, &(ipc_sm_ack_t){.conn = c->id, .h = h});
    router_submit(&hdr, NULL, 0, 1);
    if (c->sm_out != c->sm_acked && !c->sm_timer)
        c->sm_timer = evloop_timer(fe.loop, SM_REQUEST_DELAY_MS, on_request_timer, c);
}

void sm_on_element(client_t *c, const xml_node_t *el)
{
    const char *name = el->name;
    if (strcmp(name, "enable") == 0) {
        on_enable(c, el);
    } else if (strcmp(name, "resume") == 0) {
        on_resume(c, el);
    } else if (strcmp(name, "r") == 0 && c->sm_on) {
        /* Answered by the router, in order after the stanzas before it: only what reached
         * the router counts as handled, so nothing acknowledged is lost with this frontend
         * (XEP-0198 4). One request at a time: a later answer covers every <r/>. */
        if (!c->sm_r_asked) {
            ipc_hdr_t h;
            ipc_sm_request_build(&h, &(ipc_sm_request_t){.conn = c->id});
            c->sm_r_asked = router_submit(&h, NULL, 0, 0) == 0;
        }
    } else if (strcmp(name, "a") == 0 && c->sm_on) {
        on_ack(c, el);
    } else {
        client_stream_error(c, "unsupported-stanza-type", NULL);
    }
}

void sm_unbind(const client_t *c, ipc_unbind_t *m)
{
    if (c->sm_pending && !c->bound) {
        /* The connection went while its <resume/> was with the router, which may have
         * given it the session: that session waits again. */
        m->flags = IPC_UNBIND_DETACH | IPC_UNBIND_ACK;
        m->acked = c->sm_acked;
        return;
    }
    if (!c->sm_on)
        return;
    m->flags |= IPC_UNBIND_ACK;
    m->acked = c->sm_acked;
    /* XEP-0198 5: a stream closed cleanly (</stream:stream>, or a stream error) ends the
     * session; a lost connection, or this frontend shutting down, leaves it resumable. */
    if (c->sm_resumable && (!c->stream_done || c->sm_keep))
        m->flags |= IPC_UNBIND_DETACH;
}

int sm_resync(const client_t *c)
{
    if (!c->sm_on)
        return 0;
    ipc_hdr_t h;
    ipc_sm_state_build(&h, &(ipc_sm_state_t){.conn = c->id, .resumable = c->sm_resumable,
                                             .id = c->sm_id ? c->sm_id : "",
                                             .in = c->sm_in_sent,
                                             .out = c->sm_out, .acked = c->sm_acked,
                                             .max = c->sm_max});
    if (router_send(&h, NULL, 0) < 0)
        return -1;
    /* A <r/> the old router may have lost is asked again. */
    if (!c->sm_r_asked)
        return 0;
    ipc_sm_request_build(&h, &(ipc_sm_request_t){.conn = c->id});
    return router_send(&h, NULL, 0);
}

void sm_on_router_ack(client_t *c, uint32_t h)
{
    if (!c->sm_on || !c->sm_r_asked || c->stream_done)
        return;
    c->sm_r_asked = 0;
    char buf[64];
    snprintf(buf, sizeof buf, "<a xmlns='" NS_SM "' h='%" PRIu32 "'/>", h);
    client_write_str(c, buf);
}

void sm_free(client_t *c)
{
    evloop_cancel(fe.loop, &c->sm_timer);
    xfree(&c->sm_id);
}
