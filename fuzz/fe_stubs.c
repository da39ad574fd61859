/* Stand-ins for c2s-frontend/client.c and router_link.c for the fuzz_stream harness (see
 * fe_stubs.h). They follow what the real functions do to the client struct, without I/O.
 * When the frontend's interfaces change (frontend.h, client.h), only this file follows. */
#include "fe_stubs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stanza.h"

frontend_t fe;
fuzz_router_t fuzz_router;

#define STUB_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fe_stubs: check failed: %s (line %d)\n", #cond, __LINE__);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ---- client.c ---- */

void client_write(client_t *c, const char *data, size_t len)
{
    if (c->ws && ws_upgraded(c) && !c->closed && !c->closing)
        ws_write_element(c, data, len);
    else
        client_write_raw(c, data, len);
}

void client_write_raw(client_t *c, const char *data, size_t len)
{
    if (c->closed)
        return;
    buf_append(&c->out, data, len);
}

void client_write_str(client_t *c, const char *s)
{
    client_write(c, s, strlen(s));
}

void client_count_out(const char *data, size_t len)
{
    metric_inc(fe.m.stanzas_out[ipc_kind_of_payload(data, len)]);
}

static void client_teardown(client_t *c)
{
    if (c->closed)
        return;
    stream_on_closed(c);
    c->closed = 1;
    buf_free(&c->out);
    buf_free(&c->proxy_acc);
}

void client_close(client_t *c, int graceful)
{
    if (c->closed)
        return;
    /* As client.c: a graceful close waits for the loop (fuzz_client_flush), never from
     * here, which may be inside the parser. */
    if (graceful) {
        c->closing = 1;
        return;
    }
    client_teardown(c);
}

void client_start_tls(client_t *c)
{
    c->tls = 1;
    c->read_paused = 0;
    if (c->s2s)
        s2s_tls_ready(c); /* the handshake "completed" at once */
}

client_t *client_connect(int fd, const char *addr, int direct_tls)
{
    /* The harnesses never resolve a remote domain (s2s_resolve below), so never connect. */
    (void)fd;
    (void)addr;
    (void)direct_tls;
    abort();
}

/* ---- s2s_resolve.c: nothing resolves (an outbound stanza is bounced) ---- */

s2s_query_t *s2s_resolve(const char *domain, s2s_resolve_cb cb, void *ud)
{
    (void)domain;
    (void)cb;
    (void)ud;
    return NULL;
}

void s2s_resolve_cancel(s2s_query_t *q)
{
    (void)q;
}

/* A fixed-form stand-in for the XEP-0185 key (s2s_resolve.c): 64 hex digits that depend on
 * every input, so a wrong domain or id gives another key. */
void s2s_dialback_key(const char *secret, const char *receiving, const char *originating,
                      const char *stream_id, char out[65])
{
    uint64_t h = 1469598103934665603ull;
    const char *parts[4] = {secret, receiving, originating, stream_id};
    for (int i = 0; i < 4; i++) {
        for (const char *p = parts[i]; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    for (int i = 0; i < 4; i++)
        snprintf(out + 16 * i, 17, "%016llx", (unsigned long long)(h * (uint64_t)(i + 1)));
}

/* ---- tls.c: the harness has no TLS connection to export from, so tls_channel_bindings()
 * (c2s-frontend/tls.c) is replaced by fixed binding data of both types ---- */

const scram_cb_t fuzz_cb = {
    .len = {32, 32},
    .data = {"fuzz-tls-exporter-32-bytes-long!", "fuzz-server-end-point-32-bytes!!"},
};

void tls_channel_bindings(SSL *ssl, scram_cb_t *cb)
{
    (void)ssl;
    *cb = fuzz_cb;
}

/* A server-to-server peer always presents a valid certificate for FUZZ_S2S_PEER. */
int tls_peer_verify(SSL *ssl, X509_STORE *store, const char *domain, char *why, size_t n)
{
    (void)ssl;
    (void)store;
    if (strcmp(domain, FUZZ_S2S_PEER) == 0)
        return 1;
    snprintf(why, n, "the certificate does not name %s", domain);
    return 0;
}

SSL_CTX *tls_client_ctx_new(const char *certs, const char *keys, char *err, size_t errlen)
{
    (void)certs;
    (void)keys;
    snprintf(err, errlen, "no TLS in the harness");
    return NULL;
}

void tls_ctx_free(SSL_CTX **ctx_p)
{
    *ctx_p = NULL;
}

int tls_reload_client(SSL_CTX **ctx_p, const char *certs, const char *keys)
{
    (void)ctx_p;
    (void)certs;
    (void)keys;
    return -1;
}

void fuzz_client_flush(client_t *c)
{
    if (c->closed)
        return;
    buf_free(&c->out);
    if (c->tls_start) {
        c->tls_start = 0;
        client_start_tls(c);
        return;
    }
    if (c->closing)
        client_close(c, 0);
}

void client_flush_all(evloop_t *loop, void *ud)
{
    (void)loop;
    (void)ud;
}

client_t *client_find(uint64_t conn)
{
    client_t *c = fuzz_router.client;
    return c && !c->closed && c->id == conn ? c : NULL;
}

void client_pause(client_t *c)
{
    c->read_paused = 1;
}

void client_resume(client_t *c)
{
    if (c->closed || !c->read_paused)
        return;
    c->read_paused = 0;
    stream_drain_queue(c);
    if (c->pending_seq || c->closed) {
        if (!c->closed)
            c->read_paused = 1;
        return;
    }
    /* The real one reads on here; the harness feeds the next read itself. */
}

void client_close_all(void)
{
}

/* ---- addrlimit.c: no per-address limits here (they depend on the clock) ---- */

uint64_t addrlimit_auth_wait(const char *key, uint64_t now)
{
    (void)key;
    (void)now;
    return fuzz_router.addr_backoff ? 30000 : 0;
}

uint64_t addrlimit_auth_failed(const char *key, uint64_t now)
{
    (void)key;
    (void)now;
    return 0;
}

/* ---- router_link.c ---- */

/* Every header the frontend sends must be one the router accepts. */
static void check_header(const ipc_hdr_t *h)
{
    static unsigned char frame[IPC_HDR_MAX];
    static ipc_hdr_t back;
    size_t len = ipc_encode(h, frame);
    STUB_CHECK(ipc_decode(&back, frame, len) == 0);
    for (int i = 0; i < IPC_MAX_FIELDS; i++)
        STUB_CHECK(strcmp(back.field[i], h->field[i]) == 0);
}

int router_is_up(void)
{
    return !fuzz_router.router_down;
}

int router_send(const ipc_hdr_t *h, const char *payload, size_t len)
{
    (void)payload;
    (void)len;
    check_header(h);
    return fuzz_router.router_down ? -1 : 0;
}

int router_submit(const ipc_hdr_t *h, const char *payload, size_t len, int always)
{
    check_header(h);
    const client_t *c = fuzz_router.client;
    if (h->type == IPC_STANZA) {
        /* Only a bound session speaks, always as itself (RFC 6120 8.1.2.1): the router
         * routes by the header and the stanza's 'from' must say the same. */
        STUB_CHECK(c && c->authed && c->bound && h->conn == c->id);
        STUB_CHECK(strcmp(h->field[1], c->jid) == 0);
        STUB_CHECK(payload != NULL);
    }
    if (h->type == IPC_CLIENT_STATE) {
        /* XEP-0352: only a bound session, with no payload, and a state the reader takes. */
        ipc_client_state_t m;
        STUB_CHECK(c && c->bound && h->conn == c->id && !payload);
        STUB_CHECK(ipc_client_state_read(h, &m) == 0);
    }
    if (h->type == IPC_S2S_IN) {
        /* From a server connection: only once it authenticated, only from its domain to
         * ours (or an error we made for a stanza we could not send: conn 0). */
        ipc_s2s_t m;
        STUB_CHECK(ipc_s2s_in_read(h, &m) == 0 && payload != NULL);
        jid_t jf, jt;
        STUB_CHECK(jid_parse(&jf, m.from) == 0 && jid_parse(&jt, m.to) == 0);
        STUB_CHECK(s2s_hosted(jt.domain));
        if (h->conn) {
            STUB_CHECK(c && h->conn == c->id && c->s2s && !c->s2s->outbound &&
                       c->s2s->state == S2S_AUTHED && c->tls);
            STUB_CHECK(strcmp(jf.domain, c->s2s->remote) == 0);
            STUB_CHECK(strcmp(jf.domain, FUZZ_S2S_PEER) == 0);
        } else {
            STUB_CHECK(m.stype == IPC_ST_ERROR);
        }
        xml_node_t *st = stanza_parse(payload, len);
        STUB_CHECK(st != NULL);
        const char *from = xml_node_attr(st, "from"), *to = xml_node_attr(st, "to");
        STUB_CHECK(from && to && strcmp(from, m.from) == 0 && strcmp(to, m.to) == 0);
        xml_node_free(&st);
    }
    if (h->type == IPC_S2S_CLOSED) {
        /* An inbound server connection that had authenticated is gone: said once, for
         * the peer's domain, with no payload. */
        ipc_s2s_closed_t m;
        STUB_CHECK(ipc_s2s_closed_read(h, &m) == 0 && payload == NULL);
        STUB_CHECK(c && h->conn == c->id && c->s2s && !c->s2s->outbound &&
                   c->s2s->state == S2S_AUTHED);
        STUB_CHECK(strcmp(m.domain, FUZZ_S2S_PEER) == 0);
        STUB_CHECK(!fuzz_router.s2s_closed_sent);
        fuzz_router.s2s_closed_sent = 1;
    }
    if (payload) {
        /* The router parses what it is sent (stanza_parse): it must be one stanza. */
        xml_node_t *st = stanza_parse(payload, len);
        STUB_CHECK(st != NULL);
        if (h->type == IPC_STANZA) {
            const char *from = xml_node_attr(st, "from"), *to = xml_node_attr(st, "to");
            STUB_CHECK(from && strcmp(from, c->jid) == 0);
            STUB_CHECK(to ? strcmp(to, h->field[0]) == 0 : h->field[0][0] == '\0');
            STUB_CHECK(ipc_kind_from_name(st->name) == (ipc_kind_t)h->kind);
            STUB_CHECK(ipc_stype_from_attr((ipc_kind_t)h->kind, xml_node_attr(st, "type")) ==
                       (ipc_stype_t)h->stype);
        }
        xml_node_free(&st);
    }
    if (fuzz_router.router_down && !always)
        return -1;
    fuzz_router.submitted++;
    return 0;
}

int router_request(client_t *c, const ipc_hdr_t *h, uint32_t seq)
{
    check_header(h);
    if (fuzz_router.router_down)
        return -1;
    STUB_CHECK(!c->pending_seq); /* one request at a time per client */
    STUB_CHECK(seq != 0 && h->seq == seq);
    fuzz_router.request = *h;
    fuzz_router.pending = 1;
    c->pending_seq = seq;
    return 0;
}

void fuzz_check_streams(xml_parser_t *parser, int *over, const char *data, size_t len,
                        const char *who)
{
    static const char decl[] = "<?xml version='1.0'?>";
    while (len > 0) {
        const char *next = len > 1 ? memmem(data + 1, len - 1, decl, sizeof decl - 1) : NULL;
        if (len >= sizeof decl - 1 && memcmp(data, decl, sizeof decl - 1) == 0) {
            xml_parser_reset(parser); /* a new stream header */
            *over = 0;
        }
        size_t n = next ? (size_t)(next - data) : len;
        if (*over) {
            fprintf(stderr, "%s: output after the end of a stream: %.*s\n", who, (int)n, data);
            abort();
        }
        if (xml_parser_feed(parser, data, n) != XML_OK) {
            fprintf(stderr, "%s: output is not well-formed: %.*s\n", who, (int)n, data);
            abort();
        }
        data += n;
        len -= n;
    }
}
