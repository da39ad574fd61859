/* libFuzzer harness for the frontend's server-to-server streams (c2s-frontend/s2s.c, with
 * stream.c's parser feeding and s2s_out.c's bounces), linked with fe_stubs.c in place of
 * client.c and router_link.c, as fuzz_stream is.
 *
 * Input:
 *   byte 0   flags: 1 TLS from the first byte (s2s_tls_listen), 2 no TLS certificate
 *            (STARTTLS not offered), 4 router away (router_submit refuses), 8 the smallest
 *            limits the config allows, 16 an outbound stream (we are the initiating server
 *            of localhost -> remote.test; the input is what the receiving server sends)
 *   rest     the peer's bytes; each NUL ends one read (the loop runs in between: output is
 *            checked and dropped, TLS "starts" after <proceed/>).
 * The peer's certificate (fe_stubs.c, tls_peer_verify) is a valid one for remote.test:
 * a stream from remote.test can authenticate with SASL EXTERNAL once under TLS, any other
 * cannot. Server Dialback is on (s2s_secure_auth off, the harness does not read the
 * config): <db:verify/> is answered as the authoritative server, a <db:result/> is never
 * verified (no remote server can be reached: fe_stubs.c's resolver finds nothing), and an
 * outbound stream may authenticate by dialback.
 *
 * FUZZ_STREAM_TRACE=1 in the environment prints both directions.
 *
 * Checked, besides memory errors: the output parses as XML streams; every header sent to the
 * router decodes; every stanza handed to the router (IPC_S2S_IN) came on an inbound stream
 * under TLS that authenticated as remote.test, from remote.test to one of our domains, and
 * parses with the addresses of its header (fe_stubs.c); no authentication without TLS or as
 * another domain. */
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fe_stubs.h"
#include "log.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_s2s: check failed: %s (line %d)\n", #cond, __LINE__);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static SSL_CTX *tls;
static int trace;
static xml_parser_t *out_parser;
static int out_stream_over;

static void out_on_open(void *ud, const xml_node_t *root)
{
    (void)ud;
    (void)root;
}

static void out_on_stanza(void *ud, xml_node_t *st)
{
    (void)ud;
    xml_node_free(&st);
}

static void out_on_close(void *ud)
{
    (void)ud;
    out_stream_over = 1;
}

/* What the frontend wrote: XML streams, each started by an XML declaration. */
static void check_output(const char *data, size_t len)
{
    fuzz_check_streams(out_parser, &out_stream_over, data, len, "fuzz_s2s");
}

static void run_loop(client_t *c)
{
    const s2s_t *s = c->s2s;
    /* Inbound: authenticated only under TLS (by certificate: dialback keys never verify
     * here, the authoritative server cannot be reached), only as the domain the
     * certificate names. Outbound: only to the domain we connect to. */
    FUZZ_CHECK(!s || s->state != S2S_AUTHED || s->outbound ||
               (c->tls && strcmp(s->remote, FUZZ_S2S_PEER) == 0));
    FUZZ_CHECK(!s || !s->outbound || strcmp(s->remote, FUZZ_S2S_PEER) == 0);
    FUZZ_CHECK(!s || !s->ready || (s->outbound && s->state == S2S_AUTHED));
    if (!c->closed && c->out.len) {
        if (trace)
            fprintf(stderr, "S: %.*s\n", (int)c->out.len, c->out.data);
        check_output(c->out.data, c->out.len);
    }
    fuzz_client_flush(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!tls) {
        trace = getenv("FUZZ_STREAM_TRACE") != NULL;
        log_min_level = trace ? LOG_LVL_DEBUG : (log_level_t)(LOG_LVL_ERROR + 1);
        fe.loop = evloop_new();
        tls = SSL_CTX_new(TLS_server_method());
        FUZZ_CHECK(tls != NULL);
        fe.domain = "localhost";
        fe.auth_timeout_ms = 30000;
        fe.stream_open_timeout_ms = 10000;
        snprintf(fe.name, sizeof fe.name, "fuzz");
    }
    int flags = data[0];
    fe.tls = (flags & 2) ? NULL : tls;
    fe.limits = (flags & 8) ? (xml_limits_t){1024, 4} : (xml_limits_t){262144, 64};
    fe.limits_preauth = (flags & 8) ? (xml_limits_t){1024, 4} : (xml_limits_t){16384, 16};
    memset(&fuzz_router, 0, sizeof fuzz_router);
    fuzz_router.router_down = (flags & 4) != 0;
    xml_limits_t out_limits = {16777216, 1024};
    out_parser = xml_parser_new(&(xml_callbacks_t){out_on_open, out_on_stanza, out_on_close},
                                NULL, &out_limits);
    out_stream_over = 0;

    client_t *c = xcalloc(1, sizeof *c);
    c->id = ++fe.next_conn;
    c->fd = -1;
    snprintf(c->addr, sizeof c->addr, "192.0.2.7:5269");
    fuzz_router.client = c;
    int outbound = (flags & 16) != 0;
    if (outbound) {
        c->outbound = 1;
        c->direct_tls = (flags & 1) != 0;
        s2s_attach_outbound(c, NULL, "localhost", FUZZ_S2S_PEER);
        stream_init(c);
        s2s_connected(c); /* our header, or TLS first */
    } else {
        c->direct_tls = (flags & 1) != 0 && fe.tls;
        s2s_attach_inbound(c);
        stream_init(c);
        if (c->direct_tls)
            client_start_tls(c);
    }
    run_loop(c);

    const char *p = (const char *)data + 1;
    size_t left = size - 1;
    while (left > 0 && !c->closed && !c->closing) {
        const char *nul = memchr(p, '\0', left);
        size_t n = nul ? (size_t)(nul - p) : left;
        if (n) {
            if (trace)
                fprintf(stderr, "C: %.*s\n", (int)n, p);
            stream_on_data(c, p, n);
        }
        run_loop(c);
        p += n + (nul != NULL);
        left -= n + (nul != NULL);
    }
    run_loop(c);
    client_close(c, 0);
    stream_set_jid(c, "");
    stream_set_user(c, "");
    free(c);
    xml_parser_destroy(&out_parser);
    return 0;
}
