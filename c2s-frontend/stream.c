/* The XMPP stream of one client: header and features, STARTTLS, SASL (sasl.c), resource
 * binding, then stanzas forwarded to the router with `from` stamped (RFC 6120 8.1.2.1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "log.h"
#include "stanza.h"
#include "util.h"

#define NS_BLOCKING "urn:xmpp:blocking"
#define NS_CSI "urn:xmpp:csi:0"
#ifndef NS_ROSTER
#define NS_ROSTER "jabber:iq:roster"
#endif

static void on_stream_open(void *ud, const xml_node_t *root);
static void on_stanza(void *ud, xml_node_t *st);
static void on_stream_close(void *ud);
static void queue_clear(client_t *c);

static const xml_callbacks_t stream_callbacks = {on_stream_open, on_stanza, on_stream_close};

static void on_auth_timeout(evloop_t *loop, void *ud)
{
    (void)loop;
    client_t *c = ud;
    c->auth_timer = NULL;
    if (c->proxy_pending) {
        client_close(c, 0); /* not even a PROXY header: no XMPP stream to end */
        return;
    }
    if (!c->bound)
        client_stream_error(c, "connection-timeout", "Authentication took too long");
}

/* stream_open_timeout: a connection that has not opened its stream by then (slowloris,
 * or a port scanner) is ended; one that has not finished TLS or sent its PROXY header
 * is simply closed. */
static void on_open_timeout(evloop_t *loop, void *ud)
{
    (void)loop;
    client_t *c = ud;
    c->open_timer = NULL;
    if (c->proxy_pending || c->tls_handshaking)
        client_close(c, 0);
    else
        client_stream_error(c, "connection-timeout", "No stream header in time");
}

/* Idle streams. A live expat parser takes about 10 KiB (its input buffer, hash tables and
 * namespace bindings), a third of an idle TLS session's memory; between stanzas it holds
 * nothing that the stream header cannot give back (xml_parser_release). So the parser of
 * a stream with no input for PARSER_IDLE_MS is released, and made again when bytes come.
 * A busy stream keeps its parser (no cost per stanza); an idle one pays a parser creation
 * and the header's parse on its next read. The clients with a live parser are kept in
 * order of their last input (fe.parsers_head: the least recent), so one timer releases
 * those due without looking at the others. */
#define PARSER_IDLE_MS 1000
/* The release timer does not fire more often than this. */
#define PARSER_SWEEP_MIN_MS 250

static void parsers_unlink(client_t *c)
{
    if (!c->on_parsers)
        return;
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        fe.parsers_head = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    else
        fe.parsers_tail = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
    c->on_parsers = 0;
    if (!fe.parsers_head)
        evloop_cancel(fe.loop, &fe.parsers_timer);
}

static void on_parsers_timer(evloop_t *loop, void *ud);

static void parsers_arm(uint64_t now)
{
    if (fe.parsers_timer || !fe.parsers_head)
        return;
    uint64_t due = fe.parsers_head->input_at + PARSER_IDLE_MS;
    uint64_t ms = due > now ? due - now : 0;
    if (ms < PARSER_SWEEP_MIN_MS)
        ms = PARSER_SWEEP_MIN_MS;
    fe.parsers_timer = evloop_timer(fe.loop, ms, on_parsers_timer, NULL);
}

static void on_parsers_timer(evloop_t *loop, void *ud)
{
    (void)loop;
    (void)ud;
    fe.parsers_timer = NULL;
    uint64_t now = now_ms();
    while (fe.parsers_head && fe.parsers_head->input_at + PARSER_IDLE_MS <= now) {
        client_t *c = fe.parsers_head;
        parsers_unlink(c);
        /* In the middle of a stanza it stays live; its next input puts it back here. */
        if (c->parser)
            xml_parser_release(c->parser);
        if (c->ws)
            ws_release(c);
    }
    parsers_arm(now);
}

/* Input came (or, on a WebSocket, output went): to the end of fe.parsers, unless nothing
 * is held that an idle time would release. */
void stream_touch(client_t *c)
{
    if (c->closed || c->stream_done || !c->parser ||
        (xml_parser_released(c->parser) && !ws_live(c))) {
        parsers_unlink(c);
        return;
    }
    uint64_t now = now_ms();
    c->input_at = now;
    if (c->on_parsers && !c->idle_next)
        return; /* the most recent already */
    parsers_unlink(c);
    c->idle_prev = fe.parsers_tail;
    if (fe.parsers_tail)
        fe.parsers_tail->idle_next = c;
    else
        fe.parsers_head = c;
    fe.parsers_tail = c;
    c->on_parsers = 1;
    parsers_arm(now);
}

/* What c->jid and c->user point to while the connection has none. */
static char no_jid[] = "";

/* Sets *slot to a copy of `s`, or to no_jid for "" (no allocation). */
static void set_string(char **slot, const char *s)
{
    if (*slot && *slot != no_jid)
        free(*slot);
    *slot = *s ? xstrdup(s) : no_jid;
}

void stream_set_jid(client_t *c, const char *jid)
{
    set_string(&c->jid, jid);
}

void stream_set_user(client_t *c, const char *user)
{
    set_string(&c->user, user);
}

void stream_init(client_t *c)
{
    if (!c->jid)
        c->jid = no_jid;
    if (!c->user)
        c->user = no_jid;
    /* Until the client authenticates, the smaller limits apply (README.md, "Limits"). */
    c->parser = xml_parser_new(c->s2s ? s2s_callbacks() : &stream_callbacks, c, &fe.limits_preauth);
    c->open_timer =
        evloop_timer(fe.loop, (uint64_t)fe.stream_open_timeout_ms, on_open_timeout, c);
    c->auth_timer = evloop_timer(fe.loop, (uint64_t)fe.auth_timeout_ms, on_auth_timeout, c);
}

void stream_restart(client_t *c)
{
    /* Whatever was sent ahead belongs to the stream that ends here. */
    queue_clear(c);
    c->header_sent = 0;
    if (c->in_feed)
        c->restart = 1;
    else
        xml_parser_reset(c->parser);
}

static void send_header(client_t *c)
{
    if (c->s2s) { /* jabber:server (s2s.c) */
        s2s_write_header(c);
        return;
    }
    unsigned char rnd[12];
    random_bytes(rnd, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(c->stream_id + 2 * i, 3, "%02x", rnd[i]);
    buf_t b = BUF_INIT;
    if (c->ws) /* RFC 7395 3.3.2: <open/> stands for the stream header */
        buf_append_str(&b, "<open xmlns='" NS_FRAMING "' id='");
    else
        buf_append_str(&b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                           "xmlns:stream='http://etherx.jabber.org/streams' id='");
    buf_append_str(&b, c->stream_id);
    buf_append_str(&b, "' from='");
    xml_escape(&b, fe.domain, strlen(fe.domain));
    buf_append_str(&b, c->ws ? "' version='1.0' xml:lang='en'/>" : "' version='1.0' xml:lang='en'>");
    client_write(c, b.data, b.len);
    buf_free(&b);
    c->header_sent = 1;
}

void client_stream_error(client_t *c, const char *condition, const char *text)
{
    client_stream_error_extra(c, condition, text, NULL);
}

void client_stream_error_extra(client_t *c, const char *condition, const char *text,
                               const char *extra)
{
    if (c->closed || c->stream_done)
        return;
    if (c->ws && !ws_upgraded(c)) {
        client_close(c, 0); /* still HTTP: no stream to end */
        return;
    }
    if (!c->header_sent)
        send_header(c);
    buf_t b = BUF_INIT;
    /* On a WebSocket the error is a message of its own, so it declares its prefix. */
    buf_printf(&b, "<stream:error%s><%s xmlns='" NS_STREAMS_ERR "'/>",
               c->ws ? " xmlns:stream='" XML_NS_STREAM "'" : "", condition);
    if (text) {
        buf_append_str(&b, "<text xmlns='" NS_STREAMS_ERR "' xml:lang='en'>");
        xml_escape(&b, text, strlen(text));
        buf_append_str(&b, "</text>");
    }
    if (extra)
        buf_append_str(&b, extra);
    buf_append_str(&b, "</stream:error>");
    client_write(c, b.data, b.len);
    buf_free(&b);
    stream_write_end(c);
    log_info("conn %llu: stream error %s%s%s", (unsigned long long)c->id, condition,
             text ? ": " : "", text ? text : "");
    c->stream_done = 1;
    client_close(c, 1);
}

static void send_features(client_t *c)
{
    buf_t b = BUF_INIT;
    buf_append_str(&b, c->ws ? "<stream:features xmlns:stream='" XML_NS_STREAM "'>"
                             : "<stream:features>");
    if (!c->authed) {
        /* A WebSocket has no STARTTLS (RFC 7395 3.7): wss is TLS from the start, and ws is
         * protected on loopback or behind the load balancer that ended TLS (ws_protected). */
        if (!c->tls && fe.tls && !c->ws) {
            buf_append_str(&b, "<starttls xmlns='" NS_TLS "'>");
            if (fe.require_tls)
                buf_append_str(&b, "<required/>");
            buf_append_str(&b, "</starttls>");
        }
        /* RFC 6120 5.3.1: while TLS is mandatory, only STARTTLS is advertised. */
        if (c->tls || !fe.require_tls || ws_protected(c)) {
            sasl_features(c, &b);
            register_features(c, &b);
        }
    } else {
        /* RFC 6121 2.6.1 roster versioning and 3.4.1 subscription pre-approval; XEP-0352
         * 4.1: client state indication, offered after authentication. */
        buf_append_str(&b, "<bind xmlns='" NS_BIND "'/>"
                           "<session xmlns='" NS_SESSION "'><optional/></session>"
                           "<ver xmlns='urn:xmpp:features:rosterver'/>"
                           "<sub xmlns='urn:xmpp:features:pre-approval'/>"
                           "<csi xmlns='" NS_CSI "'/>");
        sm_features(c, &b);
    }
    buf_append_str(&b, "</stream:features>");
    client_write(c, b.data, b.len);
    buf_free(&b);
}

static void on_stream_open(void *ud, const xml_node_t *root)
{
    client_t *c = ud;
    evloop_cancel(fe.loop, &c->open_timer);
    send_header(c);
    const char *to = xml_node_attr(root, "to"), *version = xml_node_attr(root, "version");
    if (to) {
        char dom[JID_PART_MAX + 1];
        if (jid_prep_domain(dom, to) < 0 || strcmp(dom, fe.domain) != 0) {
            client_stream_error(c, "host-unknown", NULL);
            return;
        }
    }
    /* RFC 6120 4.8.2: the content namespace of a client stream is jabber:client. */
    const char *content_ns = xml_node_attr(root, "xmlns");
    if (!content_ns || strcmp(content_ns, XML_NS_CLIENT) != 0) {
        client_stream_error(c, "invalid-namespace", NULL);
        return;
    }
    /* RFC 6120 4.7.5: we speak 1.0; a higher major version is not ours. */
    if (version && atoi(version) > 1) {
        client_stream_error(c, "unsupported-version", NULL);
        return;
    }
    send_features(c);
}

static void on_stream_close(void *ud)
{
    client_t *c = ud;
    if (c->stream_done)
        return;
    c->stream_done = 1;
    stream_write_end(c);
    client_close(c, 1);
}

void stream_write_end(client_t *c)
{
    if (c->ws)
        ws_write_close(c);
    else
        client_write_str(c, "</stream:stream>");
}

void stream_client_closed(client_t *c)
{
    on_stream_close(c);
}

/* The header given to the stream parser for a WebSocket's <open/>: the stream code then
 * checks `to` and `version` as for TCP (on_stream_open). The content namespace is
 * jabber:client by definition (RFC 7395 3.3.3: each element declares its own). */
void stream_ws_open(client_t *c, const xml_node_t *open)
{
    static const char *const attrs[] = {"to", "version", "from"};
    buf_t b = BUF_INIT;
    buf_append_str(&b, "<stream:stream xmlns='" XML_NS_CLIENT "' xmlns:stream='" XML_NS_STREAM "'");
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        const char *v = xml_node_attr(open, attrs[i]);
        if (v) {
            buf_printf(&b, " %s='", attrs[i]);
            xml_escape(&b, v, strlen(v));
            buf_append_str(&b, "'");
        }
    }
    const char *lang = xml_node_attr_ns(open, XML_NS_XML, "lang");
    if (lang) {
        buf_append_str(&b, " xml:lang='");
        xml_escape(&b, lang, strlen(lang));
        buf_append_str(&b, "'");
    }
    buf_append_str(&b, ">");
    xml_parser_reset(c->parser);
    stream_on_data(c, b.data, b.len);
    buf_free(&b);
}

/* Answers a stanza of this client with an error, unless it was an error itself
 * (RFC 6120 8.3.1: never answer an error with an error). */
static void bounce(client_t *c, const xml_node_t *st, const char *etype, const char *cond)
{
    const char *type = xml_node_attr(st, "type");
    if (type && strcmp(type, "error") == 0)
        return;
    xml_node_t *copy = xml_node_copy(st);
    xml_node_set_attr(copy, "from", c->jid[0] ? c->jid : NULL);
    xml_node_t *err = stanza_error_reply(copy, fe.domain, etype, cond);
    buf_t b = BUF_INIT;
    xml_serialize(err, XML_NS_CLIENT, &b);
    sm_write_local(c, b.data, b.len);
    buf_free(&b);
    xml_node_free(&err);
    xml_node_free(&copy);
}

static void reply_node(client_t *c, xml_node_t **node_p)
{
    buf_t b = BUF_INIT;
    xml_serialize(*node_p, XML_NS_CLIENT, &b);
    sm_write_local(c, b.data, b.len);
    buf_free(&b);
    xml_node_free(node_p);
}

static int is_client_stanza(const xml_node_t *st)
{
    return st->ns && strcmp(st->ns, XML_NS_CLIENT) == 0 &&
           ipc_kind_from_name(st->name) != IPC_KIND_NONE;
}

const char *stream_tls_version(const client_t *c)
{
    return c->ssl && c->tls && !c->tls_handshaking ? SSL_get_version(c->ssl) : "none";
}

/* The bind request (RFC 6120 7.6): resource chosen by the client or made here. */
static void handle_bind(client_t *c, xml_node_t *iq, const xml_node_t *bind)
{
    char res[JID_PART_MAX + 1];
    const xml_node_t *r = xml_node_child(bind, "resource", NS_BIND);
    char *text = r ? xml_node_text(r) : NULL;
    if (text && *text) {
        if (jid_prep_resource(res, text) < 0) {
            free(text);
            bounce(c, iq, "modify", "bad-request");
            return;
        }
    } else {
        unsigned char rnd[8];
        random_bytes(rnd, sizeof rnd);
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(res + 2 * i, 3, "%02x", rnd[i]);
    }
    free(text);
    char full[JID_MAX + 1];
    if ((size_t)snprintf(full, sizeof full, "%s@%s/%s", c->user, fe.domain, res) >= sizeof full) {
        bounce(c, iq, "modify", "bad-request");
        return;
    }
    ipc_hdr_t h;
    uint32_t seq = ++fe.next_seq ? fe.next_seq : ++fe.next_seq;
    if (ipc_bind_build(&h, &(ipc_bind_t){.conn = c->id, .seq = seq, .jid = full,
                                         .addr = c->addr, .tls = stream_tls_version(c)}) < 0 ||
        router_request(c, &h, seq) < 0) {
        bounce(c, iq, "wait", "resource-constraint");
        return;
    }
    c->pending_iq = xml_node_copy(iq);
    stream_set_jid(c, full);
    client_pause(c);
}

void stream_on_bind_reply(client_t *c, const ipc_bind_reply_t *m)
{
    if (!c->pending_iq || m->seq != c->pending_seq)
        return;
    c->pending_seq = 0;
    xml_node_t *iq = c->pending_iq;
    c->pending_iq = NULL;
    if (m->status != IPC_OK) {
        stream_set_jid(c, "");
        /* RFC 6120 7.6.2.1: an account at its limit of resources (max_resources) gets
         * resource-constraint, type wait, as does a router that is away. */
        int wait = m->status == IPC_TEMPORARY || m->status == IPC_LIMIT;
        bounce(c, iq, wait ? "wait" : "cancel", wait ? "resource-constraint" : "not-allowed");
    } else {
        c->bound = 1;
        c->reported = 1;
        c->bound_time = (uint64_t)time(NULL);
        evloop_cancel(fe.loop, &c->auth_timer);
        xml_node_t *res = stanza_iq_result(iq, fe.domain);
        xml_node_set_attr(res, "from", NULL);
        xml_node_set_attr(res, "to", c->jid);
        xml_node_t *b = xml_node_new_child(res, "bind", NS_BIND);
        xml_node_t *j = xml_node_new_child(b, "jid", NS_BIND);
        xml_node_add_text(j, c->jid, strlen(c->jid));
        reply_node(c, &res);
        log_info("conn %llu: bound %s", (unsigned long long)c->id, c->jid);
    }
    xml_node_free(&iq);
    client_resume(c);
}

void stream_on_auth_reply(client_t *c, const ipc_auth_reply_t *m)
{
    sasl_on_credentials(c, m);
}

void stream_on_register_reply(client_t *c, const ipc_register_reply_t *m)
{
    register_on_reply(c, m);
}

void stream_fail_request(client_t *c)
{
    if (!c->pending_seq)
        return;
    evloop_cancel(fe.loop, &c->req_timer);
    if (sm_fail_request(c))
        return;
    if (c->reg_pending)
        register_on_reply(c, &(ipc_register_reply_t){c->id, c->pending_seq, IPC_TEMPORARY});
    else if (c->pending_iq)
        stream_on_bind_reply(c, &(ipc_bind_reply_t){c->id, c->pending_seq, IPC_TEMPORARY, ""});
    else
        sasl_on_credentials(c, &(ipc_auth_reply_t){c->id, c->pending_seq, IPC_TEMPORARY, ""});
}

/* 1 when an iq is addressed to the server on the account's behalf: no 'to', the domain,
 * or the user's own bare JID (where the router serves carbons and blocking). */
static int to_own_server(const client_t *c, const char *to)
{
    size_t bl = strcspn(c->jid, "/");
    return !to[0] || strcmp(to, fe.domain) == 0 || (strlen(to) == bl && strncmp(to, c->jid, bl) == 0);
}

static void directed_clear(client_t *c)
{
    hmap_destroy_all(&c->directed, NULL);
}

/* Keeps what a restarted router needs to take the session back (IPC_RESYNC): the last
 * broadcast presence (RFC 6121 4.2, 4.4: presence without 'to') and its priority, whether
 * the roster was requested (RFC 6121 2.1.3: an "interested resource"), whether carbons are
 * on (XEP-0280) and the blocklist was requested (XEP-0191), and the targets of directed
 * presence (RFC 6121 4.6, they get unavailable presence when the resource goes). */
static void track_session_state(client_t *c, ipc_kind_t kind, ipc_stype_t stype,
                                const char *to, const xml_node_t *st, const buf_t *bytes)
{
    if (kind == IPC_KIND_PRESENCE && !to[0]) {
        if (stype == IPC_ST_NONE) {
            c->available = 1;
            c->priority = stanza_presence_priority(st);
            free(c->last_presence);
            c->last_presence = xstrndup(bytes->data, bytes->len);
        } else if (stype == IPC_ST_UNAVAILABLE) {
            c->available = 0;
            c->priority = 0;
            xfree(&c->last_presence);
            directed_clear(c); /* the router sent them unavailable */
        }
    } else if (kind == IPC_KIND_PRESENCE && stype == IPC_ST_NONE) {
        if (!c->directed)
            c->directed = hmap_new();
        if (!hmap_sget(c->directed, to) && hmap_count(c->directed) < IPC_RESYNC_DIRECTED_MAX)
            hmap_sput(c->directed, to, xstrdup(to));
    } else if (kind == IPC_KIND_PRESENCE && stype == IPC_ST_UNAVAILABLE) {
        if (c->directed)
            free(hmap_sdel(c->directed, to));
    } else if (kind == IPC_KIND_IQ && stype == IPC_ST_GET &&
               xml_node_child(st, "query", NS_ROSTER)) {
        c->interested = 1;
    } else if (kind == IPC_KIND_IQ && stype == IPC_ST_SET && to_own_server(c, to) &&
               (xml_node_child(st, "enable", NS_CARBONS) ||
                xml_node_child(st, "disable", NS_CARBONS))) {
        c->carbons = xml_node_child(st, "enable", NS_CARBONS) != NULL;
    } else if (kind == IPC_KIND_IQ && stype == IPC_ST_GET && to_own_server(c, to) &&
               xml_node_child(st, "blocklist", NS_BLOCKING)) {
        c->blocklist = 1;
    }
}

void stream_resync_payload(const client_t *c, buf_t *out)
{
    if (c->available && c->last_presence)
        buf_append_str(out, c->last_presence);
    if (!c->directed || !hmap_count(c->directed))
        return;
    buf_append(out, "", 1); /* the NUL that starts the directed-presence targets */
    size_t pos = 0, kl, n = 0;
    const void *k;
    void *v;
    while (hmap_next(c->directed, &pos, &k, &kl, &v)) {
        if (n++)
            buf_append(out, "\n", 1);
        buf_append_str(out, v);
    }
}

void stream_restore_state(client_t *c, uint8_t flags, const char *payload, size_t len)
{
    c->interested = (flags & IPC_RESYNC_INTERESTED) != 0;
    c->carbons = (flags & IPC_RESYNC_CARBONS) != 0;
    c->blocklist = (flags & IPC_RESYNC_BLOCKLIST) != 0;
    const char *nul = payload ? memchr(payload, '\0', len) : NULL;
    size_t plen = nul ? (size_t)(nul - payload) : payload ? len : 0;
    xfree(&c->last_presence);
    c->available = 0;
    c->priority = 0;
    if ((flags & IPC_RESYNC_AVAILABLE) && plen) {
        c->available = 1;
        c->last_presence = xstrndup(payload, plen);
        xml_node_t *p = stanza_parse(payload, plen);
        c->priority = p ? stanza_presence_priority(p) : 0;
        xml_node_free(&p);
    }
    directed_clear(c);
    const char *end = nul ? payload + len : NULL; /* no payload: no targets */
    for (const char *t = nul ? nul + 1 : NULL; t && t < end;) {
        const char *nl = memchr(t, '\n', (size_t)(end - t));
        size_t n = nl ? (size_t)(nl - t) : (size_t)(end - t);
        if (n && n <= JID_MAX) {
            if (!c->directed)
                c->directed = hmap_new();
            char *jid = xstrndup(t, n);
            if (!hmap_sget(c->directed, jid) && hmap_count(c->directed) < IPC_RESYNC_DIRECTED_MAX)
                hmap_sput(c->directed, jid, jid);
            else
                free(jid);
        }
        t = nl ? nl + 1 : end;
    }
}

/* Stanzas after authentication and before binding: only the bind iq is allowed. */
static void handle_unbound(client_t *c, xml_node_t *st)
{
    const char *type = xml_node_attr(st, "type");
    const xml_node_t *bind = xml_node_child(st, "bind", NS_BIND);
    if (is_client_stanza(st) && strcmp(st->name, "iq") == 0 && bind && type &&
        strcmp(type, "set") == 0 && xml_node_attr(st, "id")) {
        handle_bind(c, st, bind);
        return;
    }
    client_stream_error(c, "not-authorized", "Bind a resource first");
}

/* Checks a bound client's stanza and forwards it to the router. */
static void forward(client_t *c, xml_node_t *st)
{
    /* XEP-0198 4: every stanza counts, the ones answered here included. */
    uint32_t handled = c->sm_on ? sm_count_in(c) : 0;
    ipc_kind_t kind = ipc_kind_from_name(st->name);
    ipc_stype_t stype = ipc_stype_from_attr(kind, xml_node_attr(st, "type"));
    const char *id = xml_node_attr(st, "id");
    metric_inc(fe.m.stanzas_in[kind]);
    if (stanza_check_type(st, kind, stype) < 0) {
        bounce(c, st, "modify", "bad-request");
        return;
    }
    char to[JID_MAX + 1] = "";
    const char *to_attr = xml_node_attr(st, "to");
    if (to_attr) {
        jid_t j;
        if (jid_parse(&j, to_attr) < 0 || jid_full(&j, to, sizeof to) < 0) {
            bounce(c, st, "modify", "jid-malformed");
            return;
        }
        xml_node_set_attr(st, "to", to);
    }
    xml_node_set_attr(st, "from", c->jid);
    /* The legacy session iq (RFC 3921; RFC 6121 appendix E): answered here. */
    if (kind == IPC_KIND_IQ && stype == IPC_ST_SET &&
        (!to[0] || strcmp(to, fe.domain) == 0) && xml_node_child(st, "session", NS_SESSION)) {
        xml_node_t *res = stanza_iq_result(st, fe.domain);
        reply_node(c, &res);
        return;
    }
    if (kind == IPC_KIND_IQ && xml_node_child(st, "bind", NS_BIND)) {
        bounce(c, st, "cancel", "not-allowed"); /* one resource per stream */
        return;
    }
    buf_t b = BUF_INIT;
    xml_serialize(st, XML_NS_CLIENT, &b);
    /* A stanza within max_stanza_size can still serialise much larger (a prefix bound to a
     * long namespace, used on many elements, is declared again on each): past what the
     * router takes it would cost the whole link, so only this stream ends. */
    if (b.len > IPC_STANZA_FACTOR * fe.limits.max_stanza) {
        buf_free(&b);
        client_stream_error(c, "policy-violation", "Stanza too large");
        return;
    }
    ipc_hdr_t h;
    if (ipc_stanza_build(&h, &(ipc_stanza_t){.conn = c->id, .kind = kind, .stype = stype,
                                             .to = to, .from = c->jid, .id = id,
                                             .h = handled}) < 0) {
        buf_free(&b);
        bounce(c, st, "modify", "bad-request");
        return;
    }
    /* Sent now, or buffered while the router is away or the pipe to it is full; past
     * router_buffer: bounced, never dropped in silence (RFC 6120 8.3.3.18:
     * resource-constraint, of type wait). */
    if (router_submit(&h, b.data, b.len, 0) < 0)
        bounce(c, st, "wait", "resource-constraint");
    else
        track_session_state(c, kind, stype, to, st, &b);
    buf_free(&b);
}

/* XEP-0352 client state indication: <active/> and <inactive/> are nonzas, not stanzas.
 * The router holds what is not urgent for an inactive session (mod_csi); it learns the
 * state in order with the client's stanzas (section 5.1: what the indication triggers, a
 * flush of held stanzas, happens before the stanzas sent after it are processed). Only a
 * change is sent; the state is kept here too, so that a restarted router gets it back
 * (IPC_RESYNC_INACTIVE). When the router buffer is full the indication is not sent and
 * the state stays as it was (the next indication tries again): the XEP makes the state a
 * hint the server may act on, and the client gets no answer either way (4.2). */
static void handle_client_state(client_t *c, const xml_node_t *st)
{
    int inactive = strcmp(st->name, "inactive") == 0;
    if (inactive == (int)c->inactive)
        return;
    ipc_hdr_t h;
    ipc_client_state_build(&h, &(ipc_client_state_t){.conn = c->id, .inactive = inactive});
    if (router_submit(&h, NULL, 0, 0) < 0) {
        log_debug("conn %llu: client state not sent: the router buffer is full",
                  (unsigned long long)c->id);
        return;
    }
    c->inactive = (unsigned)inactive;
}

static int is_client_state(const xml_node_t *st)
{
    return st->ns && strcmp(st->ns, NS_CSI) == 0 &&
           (strcmp(st->name, "active") == 0 || strcmp(st->name, "inactive") == 0);
}

static void dispatch(client_t *c, xml_node_t *st)
{
    int is_sasl = st->ns && strcmp(st->ns, NS_SASL) == 0;
    int is_tls = st->ns && strcmp(st->ns, NS_TLS) == 0;
    if (is_tls && strcmp(st->name, "starttls") == 0) {
        if (c->tls || !fe.tls || c->authed || c->ws) {
            client_write_str(c, "<failure xmlns='" NS_TLS "'/>");
            stream_write_end(c);
            c->stream_done = 1;
            client_close(c, 1);
        } else {
            client_write_str(c, "<proceed xmlns='" NS_TLS "'/>");
            c->tls_start = 1;
            stream_restart(c);
        }
    } else if (is_sasl && !c->authed) {
        sasl_on_element(c, st);
    } else if (!c->authed && register_wants(c, st)) {
        register_on_iq(c, st);
    } else if (!c->authed) {
        client_stream_error(c, "not-authorized", NULL);
    } else if (sm_wants(st)) {
        sm_on_element(c, st);
    } else if (!c->bound) {
        handle_unbound(c, st);
    } else if (is_client_state(st)) {
        handle_client_state(c, st);
    } else if (!is_client_stanza(st)) {
        int known = ipc_kind_from_name(st->name) != IPC_KIND_NONE;
        client_stream_error(c, known ? "invalid-namespace" : "unsupported-stanza-type", NULL);
    } else {
        forward(c, st);
    }
}

/* Elements that arrived behind a router request wait here, in order (a client may
 * pipeline, e.g. the session iq right behind the bind iq). */
#define STREAM_MAX_QUEUED 32

static void on_stanza(void *ud, xml_node_t *st)
{
    client_t *c = ud;
    /* After <starttls/> or SASL success the old stream is over: anything parsed behind it
     * in the same read was sent before the restart and must not be acted on (RFC 6120
     * 5.4.3.3: no plaintext injected ahead of TLS). */
    if (c->stream_done || c->closed || c->restart || c->tls_start) {
        xml_node_free(&st);
        return;
    }
    if (c->pending_seq) {
        if (c->nqueued >= STREAM_MAX_QUEUED) {
            xml_node_free(&st);
            client_stream_error(c, "policy-violation", "Too many stanzas sent ahead");
            return;
        }
        st->next = NULL;
        if (c->queue_tail)
            c->queue_tail->next = st;
        else
            c->queue = st;
        c->queue_tail = st;
        c->nqueued++;
        return;
    }
    dispatch(c, st);
    xml_node_free(&st);
}

static void queue_clear(client_t *c)
{
    while (c->queue) {
        xml_node_t *st = c->queue;
        c->queue = st->next;
        st->next = NULL;
        xml_node_free(&st);
    }
    c->queue_tail = NULL;
    c->nqueued = 0;
}

void stream_drain_queue(client_t *c)
{
    while (c->queue && !c->pending_seq && !c->closed && !c->stream_done) {
        xml_node_t *st = c->queue;
        c->queue = st->next;
        if (!c->queue)
            c->queue_tail = NULL;
        c->nqueued--;
        st->next = NULL;
        dispatch(c, st);
        xml_node_free(&st);
    }
}

void stream_on_data(client_t *c, const char *data, size_t len)
{
    if (c->stream_done)
        return;
    if (c->s2s)
        s2s_on_activity(c);
    c->in_feed = 1;
    xml_error_t err = xml_parser_feed(c->parser, data, len);
    c->in_feed = 0;
    if (err != XML_OK) {
        client_stream_error(c, xml_error_condition(err), NULL);
        return;
    }
    if (c->restart) {
        c->restart = 0;
        xml_parser_reset(c->parser);
    }
    stream_touch(c);
}

void stream_on_closed(client_t *c)
{
    s2s_on_closed(c);
    /* A bind or a resume still with the router may give this connection a session: it is
     * told that the connection is gone, after the request (one ordered path). */
    int request = c->pending_seq && (c->pending_iq || (c->sm_pending && !c->bound));
    if (c->reported || request) {
        ipc_hdr_t h;
        ipc_unbind_t m = {.conn = c->id};
        sm_unbind(c, &m);
        ipc_unbind_build(&h, &m);
        router_submit(&h, NULL, 0, 1);
        c->reported = 0;
    }
    evloop_cancel(fe.loop, &c->open_timer);
    evloop_cancel(fe.loop, &c->auth_timer);
    evloop_cancel(fe.loop, &c->req_timer);
    xfree(&c->last_presence);
    directed_clear(c);
    parsers_unlink(c);
    xml_parser_destroy(&c->parser);
    ws_free(c);
    xml_node_free(&c->pending_iq);
    queue_clear(c);
    sasl_free(c);
    register_free(c);
    sm_free(c);
}
