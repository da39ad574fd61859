/* libFuzzer harness for the frontend's XMPP stream state machine (c2s-frontend/stream.c,
 * sasl.c and register.c), linked with fe_stubs.c in place of client.c and router_link.c.
 *
 * Input:
 *   byte 0   flags: 1 require_tls, 2 no TLS certificate (STARTTLS not offered), 4 direct
 *            TLS (TLS from the start), 8 router away, 16 the smallest limits the config
 *            allows, 32 the router closes the session at the end (IPC_CLOSE), 64 the
 *            client's address is in authentication back-off (addrlimit), 128
 *            allow_registration (XEP-0077 in-band registration open)
 *   byte 1-3 router script: three bits per auth or bind request, in order
 *            auth: 0 credentials (account "alice", password "secret"; others not found),
 *                  1 temporary failure, 2 no answer (request_timeout), 3 broken
 *                  credentials, 4 account locked, 5 not found, 6 a stale reply first,
 *                  7 as 0
 *            bind: 0 success, 1 refused, 2 temporary failure, 3 no answer, 4 too many
 *                  resources, 5 a stale reply first, 6-7 as 0
 *            register: 0 ok, 1 conflict, 2 refused, 3 token not found, 4 limit,
 *                  5 temporary failure, 6 no answer, 7 a stale reply first
 *            sm-enable (XEP-0198): 0 ok, resumable, 1 ok, not resumable, 2 refused,
 *                  3 temporary failure, 4 no answer, 5 a stale reply first, 6-7 as 0
 *            sm-resume: 0 ok (alice@localhost/phone, h 7 of 9), 1 not found, 2 h too
 *                  high, 3 temporary failure, 4 no answer, 5 a stale reply first, 6 ok
 *                  with state (available, directed presence), 7 as 0
 *   rest     client bytes; each NUL ends one read (the loop runs in between: output is
 *            flushed, TLS starts after <proceed/>, the router answers); after a read
 *            of odd length the parser and the WebSocket context are released, as for
 *            an idle connection.
 * In the client bytes, SCRAMFIRST becomes the base64 of "n,,n=alice,r=fuzzclientnonce",
 * SCRAMPLUSE and SCRAMPLUSS the same with the gs2 header "p=tls-exporter,," and
 * "p=tls-server-end-point,," (for the -PLUS mechanisms; fe_stubs.c gives every TLS
 * connection fixed binding data), and SCRAMFINAL the base64 of the client-final-message
 * with the right c= (the last gs2 header and, after p=, the binding data) and proof for
 * the last challenge, so that SCRAM can succeed although the server nonce is random.
 *
 * FUZZ_STREAM_TRACE=1 in the environment prints both directions (to debug a seed).
 *
 * Checked, besides memory errors: the frontend's output parses as XML streams; every
 * header it sends the router decodes; every forwarded stanza parses, comes from a bound
 * session and carries its full JID in 'from' (fe_stubs.c); no authentication before TLS
 * while TLS is required, and none without the account's credentials. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fe_stubs.h"
#include "log.h"

/* fuzz_websocket.c builds this harness with FUZZ_WEBSOCKET 1 (see there). */
#ifndef FUZZ_WEBSOCKET
#define FUZZ_WEBSOCKET 0
#endif
#include "scram.h"
#include "stanza.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_stream: check failed: %s (line %d)\n", #cond, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define FUZZ_USER "alice"
#define FUZZ_PASSWORD "secret"
#define FUZZ_ITER 16 /* low, so PLAIN's password check stays fast */
#define FUZZ_CLIENT_FIRST_BARE "n=" FUZZ_USER ",r=fuzzclientnonce"

static const char *const salts[2] = {"fuzz-salt-sha1", "fuzz-salt-sha256"};

static struct {
    int ready;
    SSL_CTX *tls;
    char *cred_text[2];                       /* as the router would send them */
    unsigned char client_key[2][SCRAM_MAX_KEY]; /* for the SCRAMFINAL proof */
    unsigned char stored_key[2][SCRAM_MAX_KEY];
} fz;

/* Per input: the last challenge seen, the last gs2 header a placeholder sent, and a
 * parser that checks the output. */
static char last_challenge[512];
static const char *last_gs2 = "n,,";
static xml_parser_t *out_parser;
static int out_stream_over;
static int trace; /* FUZZ_STREAM_TRACE */
static int creds_given; /* the router answered an auth request with real credentials */

static void fuzz_init(void)
{
    if (fz.ready)
        return;
    trace = getenv("FUZZ_STREAM_TRACE") != NULL;
    char err[256];
    FUZZ_CHECK(ws_configure(&(ws_config_t){"/xmpp-websocket", "*", "", 60}, err, sizeof err) == 0);
    /* Quiet, unless tracing. */
    log_min_level = trace ? LOG_LVL_DEBUG : (log_level_t)(LOG_LVL_ERROR + 1);
    fe.loop = evloop_new();
    fz.tls = SSL_CTX_new(TLS_server_method());
    FUZZ_CHECK(fz.tls != NULL);
    fe.domain = "localhost";
    fe.auth_timeout_ms = 30000;
    fe.stream_open_timeout_ms = 10000;
    snprintf(fe.name, sizeof fe.name, "fuzz");
    for (int h = 0; h < 2; h++) {
        scram_cred_t cred;
        size_t hlen = scram_hash_len((scram_hash_t)h);
        FUZZ_CHECK(scram_cred_make(&cred, (scram_hash_t)h, FUZZ_PASSWORD,
                                   (const unsigned char *)salts[h], strlen(salts[h]),
                                   FUZZ_ITER) == 0);
        fz.cred_text[h] = scram_cred_encode(&cred);
        unsigned char salted[SCRAM_MAX_KEY];
        unsigned len = 0;
        const EVP_MD *md = h ? EVP_sha256() : EVP_sha1();
        FUZZ_CHECK(PKCS5_PBKDF2_HMAC(FUZZ_PASSWORD, (int)strlen(FUZZ_PASSWORD),
                                     (const unsigned char *)salts[h], (int)strlen(salts[h]),
                                     FUZZ_ITER, md, (int)hlen, salted) == 1);
        FUZZ_CHECK(HMAC(md, salted, (int)hlen, (const unsigned char *)"Client Key", 10,
                        fz.client_key[h], &len) != NULL);
        memcpy(fz.stored_key[h], cred.stored_key, hlen);
    }
    fz.ready = 1;
}

/* The client-final-message for the last challenge (base64), or "" when there is none. */
static char *scram_final(void)
{
    char nonce[256] = "", salt_b64[128] = "";
    const char *r = strstr(last_challenge, "r="), *s = strstr(last_challenge, ",s=");
    if (!r || !s || r != last_challenge)
        return xstrdup("");
    size_t rn = (size_t)(s - r - 2), sn = strcspn(s + 3, ",");
    if (rn >= sizeof nonce || sn >= sizeof salt_b64)
        return xstrdup("");
    memcpy(nonce, r + 2, rn);
    memcpy(salt_b64, s + 3, sn);
    char *sha1_salt = base64_encode((const unsigned char *)salts[0], strlen(salts[0]));
    int h = strcmp(salt_b64, sha1_salt) == 0 ? 0 : 1;
    free(sha1_salt);
    const EVP_MD *md = h ? EVP_sha256() : EVP_sha1();
    size_t hlen = scram_hash_len((scram_hash_t)h);

    buf_t without_proof = BUF_INIT, auth = BUF_INIT, msg = BUF_INIT;
    /* c= base64(gs2-header [cbind-data]), RFC 5802 section 7. */
    buf_t cbind = BUF_INIT;
    buf_append_str(&cbind, last_gs2);
    if (strncmp(last_gs2, "p=tls-exporter,", 15) == 0)
        buf_append(&cbind, (const char *)fuzz_cb.data[SCRAM_CB_TLS_EXPORTER],
                   fuzz_cb.len[SCRAM_CB_TLS_EXPORTER]);
    else if (strncmp(last_gs2, "p=tls-server-end-point,", 23) == 0)
        buf_append(&cbind, (const char *)fuzz_cb.data[SCRAM_CB_TLS_SERVER_END_POINT],
                   fuzz_cb.len[SCRAM_CB_TLS_SERVER_END_POINT]);
    char *c64 = base64_encode((const unsigned char *)cbind.data, cbind.len);
    buf_free(&cbind);
    buf_printf(&without_proof, "c=%s,r=%s", c64, nonce);
    free(c64);
    buf_printf(&auth, "%s,%s,%s", FUZZ_CLIENT_FIRST_BARE, last_challenge, without_proof.data);
    unsigned char sig[SCRAM_MAX_KEY], proof[SCRAM_MAX_KEY];
    unsigned len = 0;
    FUZZ_CHECK(HMAC(md, fz.stored_key[h], (int)hlen, (const unsigned char *)auth.data, auth.len,
                    sig, &len) != NULL);
    for (size_t i = 0; i < hlen; i++)
        proof[i] = fz.client_key[h][i] ^ sig[i];
    char *p64 = base64_encode(proof, hlen);
    buf_printf(&msg, "%s,p=%s", without_proof.data, p64);
    char *out = base64_encode((const unsigned char *)msg.data, msg.len);
    free(p64);
    buf_free(&without_proof);
    buf_free(&auth);
    buf_free(&msg);
    return out;
}

/* Copies one read with the placeholders expanded. */
static void expand(buf_t *out, const char *p, size_t n)
{
    /* Placeholders of one length: the client-first ones with their gs2 header, then
     * SCRAMFINAL. */
    static const char *const ph[] = {"SCRAMFIRST", "SCRAMPLUSE", "SCRAMPLUSS", "SCRAMFINAL"};
    static const char *const gs2[] = {"n,,", "p=tls-exporter,,", "p=tls-server-end-point,,"};
    const size_t ph_len = 10;
    size_t start = 0;
    for (size_t i = 0; i + ph_len <= n; i++) {
        int which = -1;
        for (int k = 0; k < 4 && which < 0; k++)
            if (memcmp(p + i, ph[k], ph_len) == 0)
                which = k;
        if (which < 0)
            continue;
        buf_append(out, p + start, i - start);
        char *rep;
        if (which < 3) {
            char first[128];
            last_gs2 = gs2[which];
            snprintf(first, sizeof first, "%s" FUZZ_CLIENT_FIRST_BARE, last_gs2);
            rep = base64_encode((const unsigned char *)first, strlen(first));
        } else {
            rep = scram_final();
        }
        buf_append_str(out, rep);
        free(rep);
        i += ph_len - 1;
        start = i + 1;
    }
    buf_append(out, p + start, n - start);
}

static void out_on_open(void *ud, const xml_node_t *root)
{
    (void)ud;
    (void)root;
}

static void out_on_stanza(void *ud, xml_node_t *st)
{
    (void)ud;
    /* Remember the SASL challenge, for SCRAMFINAL. */
    if (strcmp(st->name, "challenge") == 0) {
        char *text = xml_node_text(st);
        size_t n = 0;
        unsigned char *raw = base64_decode(text, strlen(text), &n);
        snprintf(last_challenge, sizeof last_challenge, "%s", raw ? (char *)raw : "");
        free(raw);
        free(text);
    }
    xml_node_free(&st);
}

static void out_on_close(void *ud)
{
    (void)ud;
    out_stream_over = 1;
}

/* Checks what the frontend wrote: XML streams, each started by an XML declaration. */
static void check_output(const char *data, size_t len)
{
    fuzz_check_streams(out_parser, &out_stream_over, data, len, "fuzz_stream");
}

/* WebSocket mode: the HTTP response head, then frames the server never masks, each text
 * message one standalone element; their XML goes through check_output as the stream it
 * stands for (<open/> as a stream header, <close/> as its end). */
static int ws_head_seen;
static void check_ws_output(const char *data, size_t len)
{
    static const char head[] = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                               "xmlns:stream='http://etherx.jabber.org/streams'>";
    if (!ws_head_seen) {
        const char *end = memmem(data, len, "\r\n\r\n", 4);
        FUZZ_CHECK(len >= 12 && memcmp(data, "HTTP/1.1 ", 9) == 0 && end);
        if (memcmp(data, "HTTP/1.1 101", 12) != 0)
            return; /* refused: the connection closes after it */
        ws_head_seen = 1;
        len -= (size_t)(end + 4 - data);
        data = end + 4;
    }
    while (len > 0) {
        const unsigned char *u = (const unsigned char *)data;
        FUZZ_CHECK(len >= 2 && !(u[1] & 0x80));
        uint64_t n = u[1] & 0x7f;
        size_t off = 2;
        if (n == 126) {
            FUZZ_CHECK(len >= 4);
            n = (uint64_t)u[2] << 8 | u[3];
            off = 4;
        } else if (n == 127) {
            FUZZ_CHECK(len >= 10);
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | u[2 + i];
            off = 10;
        }
        FUZZ_CHECK(n <= len - off);
        const char *p = data + off;
        if ((u[0] & 0x0f) == 1) {
            if (n >= 5 && memcmp(p, "<open", 5) == 0) {
                check_output(head, sizeof head - 1);
            } else if (n >= 6 && memcmp(p, "<close", 6) == 0) {
                check_output("</stream:stream>", 16);
            } else {
                xml_node_t *st = stanza_parse(p, (size_t)n);
                FUZZ_CHECK(st != NULL); /* one complete element per message */
                xml_node_free(&st);
                check_output(p, (size_t)n);
            }
        }
        data += off + n;
        len -= off + (size_t)n;
    }
}

/* The loop between two reads: output written, TLS started, closing connections closed. */
/* WebSocket mode: a read starting with WSHS becomes a valid upgrade request followed by the
 * rest; WSTX, WSFR and WSCT make the rest one masked frame (text with fin, text without
 * fin, continuation with fin), so the fuzzer reaches the XMPP inside without having to
 * learn masking. Anything else is sent as it is. */
static void ws_frame_chunk(buf_t *chunk)
{
    static const char hs[] = "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\n"
                             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n";
    static const char *const tags[] = {"WSTX", "WSFR", "WSCT"};
    static const unsigned char first[] = {0x81, 0x01, 0x80};
    if (chunk->len < 4)
        return;
    buf_t out = BUF_INIT;
    if (memcmp(chunk->data, "WSHS", 4) == 0) {
        buf_append_str(&out, hs);
        buf_append(&out, chunk->data + 4, chunk->len - 4);
    }
    for (int k = 0; k < 3 && !out.len; k++) {
        if (memcmp(chunk->data, tags[k], 4) != 0)
            continue;
        size_t n = chunk->len - 4;
        unsigned char head[14] = {first[k]};
        size_t hl = 2;
        if (n < 126) {
            head[1] = (unsigned char)(0x80 | n);
        } else if (n < 65536) {
            head[1] = 0x80 | 126;
            head[2] = (unsigned char)(n >> 8);
            head[3] = (unsigned char)n;
            hl = 4;
        } else {
            head[1] = 0x80 | 127;
            for (int i = 0; i < 8; i++)
                head[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
            hl = 10;
        }
        static const unsigned char mask[4] = {0x5a, 0xa5, 0x3c, 0xc3};
        memcpy(head + hl, mask, 4);
        buf_append(&out, (const char *)head, hl + 4);
        for (size_t i = 0; i < n; i++) {
            char ch = (char)(chunk->data[4 + i] ^ mask[i % 4]);
            buf_append(&out, &ch, 1);
        }
    }
    if (!out.len)
        return;
    buf_clear(chunk);
    buf_append(chunk, out.data, out.len);
    buf_free(&out);
}

static void run_loop(client_t *c)
{
    /* RFC 6120 5.3.1 with require_tls: no authentication before TLS (a plain WebSocket
     * from the harness's address, not loopback, is no exception: ws_protected); no binding
     * before authentication. */
    FUZZ_CHECK(!c->authed || c->tls || !fe.require_tls);
    FUZZ_CHECK(!c->bound || (c->authed && c->jid[0]));
    /* Only alice, and only after the router handed out her credentials. */
    FUZZ_CHECK(!c->authed || (creds_given && strcmp(c->user, FUZZ_USER) == 0));
    if (!c->closed && c->out.len) {
        if (trace)
            fprintf(stderr, "S: %.*s\n", (int)c->out.len, c->out.data);
        if (c->ws)
            check_ws_output(c->out.data, c->out.len);
        else
            check_output(c->out.data, c->out.len);
    }
    fuzz_client_flush(c);
}

/* Delivers a router reply the way router_link.c's on_message does. */
static void deliver_reply(client_t *c, ipc_hdr_t *h)
{
    static unsigned char frame[IPC_HDR_MAX];
    static ipc_hdr_t got;
    size_t len = ipc_encode(h, frame);
    FUZZ_CHECK(ipc_decode(&got, frame, len) == 0);
    if (c->closed)
        return;
    /* Read as typed messages; one the reader refuses is dropped (and times out). */
    if (got.type == IPC_SM_ENABLED) {
        ipc_sm_enabled_t m;
        if (ipc_sm_enabled_read(&got, &m) < 0)
            return;
        if (m.seq == c->pending_seq)
            evloop_cancel(fe.loop, &c->req_timer);
        sm_on_enabled(c, &m);
    } else if (got.type == IPC_SM_RESUMED) {
        ipc_sm_resumed_t m;
        if (ipc_sm_resumed_read(&got, &m) < 0)
            return;
        if (m.seq == c->pending_seq)
            evloop_cancel(fe.loop, &c->req_timer);
        static const char state[] = "<presence from='alice@localhost/phone'><priority>3"
                                    "</priority></presence>\0bob@localhost\ncarol@localhost/x";
        int with_state = (m.flags & IPC_RESYNC_AVAILABLE) != 0;
        sm_on_resumed(c, &m, with_state ? state : NULL, with_state ? sizeof state - 1 : 0);
    } else if (got.type == IPC_REGISTER_REPLY) {
        ipc_register_reply_t m;
        if (ipc_register_reply_read(&got, &m) < 0)
            return;
        if (m.seq == c->pending_seq)
            evloop_cancel(fe.loop, &c->req_timer);
        stream_on_register_reply(c, &m);
    } else if (got.type == IPC_AUTH_REPLY) {
        ipc_auth_reply_t m;
        if (ipc_auth_reply_read(&got, &m) < 0)
            return;
        if (m.seq == c->pending_seq)
            evloop_cancel(fe.loop, &c->req_timer);
        stream_on_auth_reply(c, &m);
    } else {
        ipc_bind_reply_t m;
        if (ipc_bind_reply_read(&got, &m) < 0)
            return;
        if (m.seq == c->pending_seq)
            evloop_cancel(fe.loop, &c->req_timer);
        stream_on_bind_reply(c, &m);
    }
}

/* Answers the request in flight as the script says. */
static void answer(client_t *c, unsigned *script)
{
    static ipc_hdr_t rep;
    const ipc_hdr_t *req = &fuzz_router.request;
    unsigned choice = *script & 7;
    *script >>= 3;
    fuzz_router.pending = 0;
    if (c->closed)
        return;
    if (req->type == IPC_SM_ENABLE || req->type == IPC_SM_RESUME) {
        int enable = req->type == IPC_SM_ENABLE;
        /* Enable only once bound; resume only authenticated and not bound. */
        FUZZ_CHECK(c->authed && (enable ? c->bound : !c->bound));
        if (choice == 4) {
            stream_fail_request(c);
            return;
        }
        ipc_hdr_init(&rep, enable ? IPC_SM_ENABLED : IPC_SM_RESUMED, req->conn);
        if (choice == 5) {
            rep.seq = req->seq - 1;
            deliver_reply(c, &rep);
            if (c->closed)
                return;
            choice = 0;
        }
        rep.seq = req->seq;
        if (enable) {
            static const uint8_t status[8] = {IPC_OK, IPC_OK, IPC_REFUSED, IPC_TEMPORARY,
                                              IPC_OK, IPC_OK, IPC_OK,      IPC_OK};
            rep.status = status[choice];
            ipc_hdr_set(&rep, 0, choice == 1 ? "" : "0123456789abcdef0123456789abcdef");
            ipc_hdr_set(&rep, 1, "300");
        } else {
            static const uint8_t status[8] = {IPC_OK, IPC_NOT_FOUND, IPC_REFUSED, IPC_TEMPORARY,
                                              IPC_OK, IPC_OK,        IPC_OK,      IPC_OK};
            rep.status = status[choice];
            rep.flags = choice == 6 ? IPC_RESYNC_AVAILABLE | IPC_RESYNC_CARBONS : 0;
            ipc_hdr_set(&rep, 0, rep.status == IPC_OK ? FUZZ_USER "@localhost/phone" : "");
            ipc_hdr_set(&rep, 1, "7 9");
            ipc_hdr_set(&rep, 2, "1765000000");
        }
        deliver_reply(c, &rep);
        return;
    }
    if (req->type == IPC_REGISTER) {
        /* Registration happens only before authentication, under TLS when TLS is on. */
        FUZZ_CHECK(!c->authed && (c->tls || !fe.tls));
        if (choice == 6) {
            stream_fail_request(c);
            return;
        }
        ipc_hdr_init(&rep, IPC_REGISTER_REPLY, req->conn);
        if (choice == 7) {
            rep.seq = req->seq - 1;
            deliver_reply(c, &rep);
            if (c->closed)
                return;
            choice = 0;
        }
        static const uint8_t status[6] = {IPC_OK,    IPC_CONFLICT, IPC_REFUSED,
                                          IPC_NOT_FOUND, IPC_LIMIT, IPC_TEMPORARY};
        rep.seq = req->seq;
        rep.status = status[choice];
        deliver_reply(c, &rep);
        return;
    }
    if (choice == 6 - (req->type == IPC_BIND)) {
        /* A late answer to an earlier request: must be ignored. */
        ipc_hdr_init(&rep, req->type == IPC_AUTH ? IPC_AUTH_REPLY : IPC_BIND_REPLY, req->conn);
        rep.seq = req->seq - 1;
        deliver_reply(c, &rep);
        if (c->closed)
            return;
        choice = 0;
    }
    if (req->type == IPC_AUTH) {
        if (choice == 2) {
            stream_fail_request(c); /* request_timeout */
            return;
        }
        ipc_hdr_init(&rep, IPC_AUTH_REPLY, req->conn);
        rep.seq = req->seq;
        int h = req->status == SCRAM_SHA1 ? 0 : 1;
        if (choice == 1) {
            rep.status = IPC_TEMPORARY;
        } else if (choice == 3) {
            rep.status = IPC_OK;
            ipc_hdr_set(&rep, 0, "4096,not base64,,");
        } else if (choice == 4) {
            rep.status = IPC_LOCKED;
        } else if (choice != 5 && strcmp(req->field[0], FUZZ_USER) == 0) {
            rep.status = IPC_OK;
            ipc_hdr_set(&rep, 0, fz.cred_text[h]);
            creds_given = 1;
        } else {
            rep.status = IPC_NOT_FOUND;
        }
    } else {
        FUZZ_CHECK(req->type == IPC_BIND);
        FUZZ_CHECK(strncmp(req->field[0], FUZZ_USER "@localhost/", 16) == 0);
        if (choice == 3) {
            stream_fail_request(c);
            return;
        }
        ipc_hdr_init(&rep, IPC_BIND_REPLY, req->conn);
        rep.seq = req->seq;
        static const uint8_t status[8] = {IPC_OK,    IPC_REFUSED, IPC_TEMPORARY, IPC_OK,
                                          IPC_LIMIT, IPC_OK,      IPC_OK,        IPC_OK};
        rep.status = status[choice];
        ipc_hdr_set(&rep, 0, req->field[0]);
    }
    deliver_reply(c, &rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    fuzz_init();
    int flags = data[0];
    unsigned script = (unsigned)data[1] | (unsigned)data[2] << 8 | (unsigned)data[3] << 16;
    fe.require_tls = flags & 1;
    fe.channel_binding = 1; /* sasl_channel_binding: -PLUS offered under TLS */
    register_configure(flags & 128, 8, FUZZ_ITER);
    fe.tls = (flags & 2) ? NULL : fz.tls;
    /* The config defaults, or the smallest values allowed. */
    fe.limits = (flags & 16) ? (xml_limits_t){1024, 4} : (xml_limits_t){262144, 64};
    fe.limits_preauth = (flags & 16) ? (xml_limits_t){1024, 4} : (xml_limits_t){16384, 16};
    memset(&fuzz_router, 0, sizeof fuzz_router);
    fuzz_router.router_down = (flags & 8) != 0;
    fuzz_router.addr_backoff = (flags & 64) != 0;
    last_challenge[0] = '\0';
    last_gs2 = "n,,";
    creds_given = 0;
    xml_limits_t out_limits = {16777216, 1024};
    out_parser = xml_parser_new(&(xml_callbacks_t){out_on_open, out_on_stanza, out_on_close},
                                NULL, &out_limits);
    out_stream_over = 0;
    ws_head_seen = 0;

    client_t *c = xcalloc(1, sizeof *c);
    c->id = ++fe.next_conn;
    c->fd = -1;
    snprintf(c->addr, sizeof c->addr, "192.0.2.1:5222");
    c->direct_tls = (flags & 4) != 0;
    fuzz_router.client = c;
    stream_init(c);
    if (FUZZ_WEBSOCKET)
        ws_attach(c);
    if (c->direct_tls)
        client_start_tls(c);

    const char *p = (const char *)data + 4;
    size_t left = size - 4;
    buf_t chunk = BUF_INIT; /* one read, placeholders expanded */
    while (left > 0 && !c->closed && !c->closing) {
        const char *nul = memchr(p, '\0', left);
        size_t n = nul ? (size_t)(nul - p) : left;
        buf_clear(&chunk);
        expand(&chunk, p, n);
        if (FUZZ_WEBSOCKET)
            ws_frame_chunk(&chunk);
        /* A paused connection is not read; the router answers first. */
        for (int guard = 0; fuzz_router.pending && !c->closed && guard < 64; guard++)
            answer(c, &script);
        if (!c->closed && !c->read_paused && chunk.len) {
            if (trace)
                fprintf(stderr, "C: %.*s\n", (int)chunk.len, chunk.data);
            if (c->ws)
                ws_on_data(c, chunk.data, chunk.len);
            else
                stream_on_data(c, chunk.data, chunk.len);
        }
        run_loop(c);
        for (int guard = 0; fuzz_router.pending && !c->closed && guard < 64; guard++) {
            answer(c, &script);
            run_loop(c);
        }
        /* After a read of odd length the connection goes idle: what the frontend frees
         * then (stream.c, PARSER_IDLE_MS) must come back as it was with the next bytes. */
        if ((n & 1) && !c->closed && c->parser) {
            xml_parser_release(c->parser);
            if (c->ws)
                ws_release(c);
        }
        p += n + (nul != NULL);
        left -= n + (nul != NULL);
    }
    buf_free(&chunk);
    if ((flags & 32) && !c->closed) {
        c->reported = 0; /* IPC_CLOSE: the router ended the session */
        client_stream_error(c, "conflict", NULL);
        run_loop(c);
    }
    run_loop(c);
    client_close(c, 0);
    stream_set_jid(c, "");
    stream_set_user(c, "");
    free(c);
    xml_parser_destroy(&out_parser);
    return 0;
}
