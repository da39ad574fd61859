/* The connection engine: one epoll loop over non-blocking sockets, TLS with OpenSSL, a tiny
 * top-level XML element splitter (no full parser: the generator only needs whole stanzas and
 * a few attributes), and the login state machine up to a ping round trip. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lg.h"

#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SM "urn:xmpp:sm:3"
#define NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"
#define WS_ACCEPT_LEN 32   /* during the upgrade, wsin starts with the expected accept value */
#define WS_HEAD_MAX 8192   /* bound on the server's HTTP response head */
#define READS_PER_EVENT 16 /* fairness: a busy connection yields after this many reads */

lg_config_t lg_cfg;

static lg_conn_t *conns;
static uint32_t nconns;
static int epfd = -1;
static SSL_CTX *tls_ctx;
static lg_handlers_t handlers;
static uint32_t dirty_head; /* index + 1 of the first connection with output; 0: none */
static char rbuf[65536];    /* every read lands here first: no per-connection read buffer */

uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *mem_find(const char *st, size_t len, const char *needle)
{
    return memmem(st, len, needle, strlen(needle));
}

int xml_attr(const char *st, size_t len, const char *name, char *out, size_t outsz)
{
    /* Only the start tag: up to the first '>' outside quotes. */
    size_t nl = strlen(name), i = 1;
    char q = 0;
    while (i < len) {
        char ch = st[i];
        if (q) {
            if (ch == q) q = 0;
        } else if (ch == '\'' || ch == '"') {
            q = ch;
        } else if (ch == '>') {
            break;
        } else if ((ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') && i + nl + 2 < len &&
                   memcmp(st + i + 1, name, nl) == 0 && st[i + 1 + nl] == '=') {
            char quote = st[i + 2 + nl];
            const char *v = st + i + 3 + nl, *end = memchr(v, quote, len - (size_t)(v - st));
            if ((quote != '\'' && quote != '"') || !end || (size_t)(end - v) >= outsz) return -1;
            memcpy(out, v, (size_t)(end - v));
            out[end - v] = '\0';
            return (int)(end - v);
        }
        i++;
    }
    return -1;
}

lg_conn_t *lg_conn(uint32_t idx)
{
    return idx < nconns ? &conns[idx] : NULL;
}

uint32_t lg_count_state(lg_state_t st)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < nconns; i++)
        n += conns[i].state == st;
    return n;
}

/* ---- setup ---- */

/* Connections need descriptors; raise the limit as far as this user may. */
static void raise_nofile(uint32_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    rlim_t need = (rlim_t)want + 64;
    if (rl.rlim_cur >= need) return;
    struct rlimit up = {need, need > rl.rlim_max ? need : rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &up) != 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int lg_init(uint32_t n, const lg_handlers_t *h)
{
    handlers = *h;
    nconns = n;
    conns = calloc(n ? n : 1, sizeof *conns);
    if (!conns) return -1;
    for (uint32_t i = 0; i < n; i++)
        conns[i].fd = -1;
    raise_nofile(n);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (epfd < 0 || !tls_ctx) return -1;
    /* Benchmark certificates are self-signed: no verification. No session cache either, so
     * every login pays a full handshake, as a fresh client does. */
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return 0;
}

void lg_shutdown(void)
{
    for (uint32_t i = 0; i < nconns; i++) {
        lg_close(&conns[i]);
        free(conns[i].sm_id);
    }
    free(conns);
    conns = NULL;
    nconns = 0;
    if (tls_ctx) SSL_CTX_free(tls_ctx);
    tls_ctx = NULL;
    if (epfd >= 0) close(epfd);
    epfd = -1;
}

/* ---- transport ---- */

static void set_out(lg_conn_t *c, int want)
{
    if (c->fd < 0 || (unsigned)want == c->want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                             .data.u32 = (uint32_t)(c - conns)};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want ? 1 : 0;
}

void lg_close(lg_conn_t *c)
{
    if (c->state == CS_FREE) return;
    if (c->ssl) SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0) close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    free(c->in);
    free(c->out);
    free(c->wsin);
    c->in = c->out = c->wsin = NULL;
    c->in_len = c->in_cap = c->out_len = c->out_cap = c->wsin_len = c->wsin_cap = 0;
    scram_client_free(&c->scram);
    c->state = CS_FREE;
    c->want_out = c->in_stream = c->io_want_write = c->hs_want_write = 0;
}

static void fail(lg_conn_t *c, const char *why)
{
    if (c->state == CS_FREE) return;
    c->fail_state = c->state;
    lg_close(c);
    c->failed = 1;
    handlers.failed(c, why);
}

static void mark_dirty(lg_conn_t *c)
{
    if (c->dirty) return;
    c->dirty = 1;
    c->next_dirty = dirty_head;
    dirty_head = (uint32_t)(c - conns) + 1;
}

/* Room for `add` more bytes at the end of the output buffer; returns where they go. */
static char *out_reserve(lg_conn_t *c, size_t add)
{
    if (c->out_len + add > c->out_cap) {
        uint32_t cap = c->out_cap ? c->out_cap : 256;
        while (cap < c->out_len + add)
            cap *= 2;
        char *n = realloc(c->out, cap);
        if (!n) abort();
        c->out = n;
        c->out_cap = cap;
    }
    return c->out + c->out_len;
}

/* The bytes as they are (stream bytes on TCP, the HTTP request on a WebSocket). */
static void out_raw(lg_conn_t *c, const char *data, size_t len)
{
    memcpy(out_reserve(c, len), data, len);
    c->out_len += (uint32_t)len;
    mark_dirty(c);
}

/* One masked WebSocket frame. */
static void out_frame(lg_conn_t *c, int opcode, const char *data, size_t len)
{
    c->out_len += (uint32_t)ws_frame(out_reserve(c, len + WS_HDR_MAX), opcode, data, len);
    mark_dirty(c);
}

static int scan(const char *b, size_t len, int in_stream, size_t *el, size_t *used);

/* One element as one text message. RFC 7395 3.3.3: each message parses on its own, so a
 * stanza without a namespace declaration gets xmlns='jabber:client' (as browser clients
 * send them; a server may otherwise refuse it with unsupported-stanza-type). */
static void ws_element(lg_conn_t *c, const char *st, size_t len)
{
    static const char ns[] = " xmlns='jabber:client'";
    static char b[16384];
    char v[256];
    size_t nl = 1;
    while (nl < len && st[nl] != ' ' && st[nl] != '>' && st[nl] != '/' && st[nl] != '\t' &&
           st[nl] != '\n' && st[nl] != '\r')
        nl++;
    if (xml_attr(st, len, "xmlns", v, sizeof v) < 0 && len + sizeof ns <= sizeof b) {
        memcpy(b, st, nl);
        memcpy(b + nl, ns, sizeof ns - 1);
        memcpy(b + nl + sizeof ns - 1, st + nl, len - nl);
        out_frame(c, WS_OP_TEXT, b, len + sizeof ns - 1);
        return;
    }
    out_frame(c, WS_OP_TEXT, st, len);
}

static void flush(lg_conn_t *c);

enum { SCAN_NEED, SCAN_ELEMENT, SCAN_OPEN, SCAN_CLOSE, SCAN_SKIP, SCAN_BAD };

/* Everything the stream code sends goes through here. On a WebSocket, each top-level element
 * becomes one text message (RFC 7395 3.3.3: a message holds exactly one element), whatever
 * the callers batch into one call. */
void lg_send(lg_conn_t *c, const char *data, size_t len)
{
    if (c->state == CS_FREE) return;
    if (!c->ws) {
        out_raw(c, data, len);
        /* --write-each: a logged-in client's stanza is written now, on its own (unless
         * earlier bytes still wait for the socket: then they go out together, as a real
         * client's would). */
        if (lg_cfg.write_each && c->state == CS_READY && !c->io_want_write) flush(c);
        return;
    }
    size_t pos = 0;
    while (pos < len) {
        size_t el, used;
        int k = scan(data + pos, len - pos, 1, &el, &used);
        if (k == SCAN_ELEMENT) {
            ws_element(c, data + pos + el, used - el);
        } else if (k != SCAN_SKIP) { /* not a whole element: what is left, in one message */
            out_frame(c, WS_OP_TEXT, data + pos, len - pos);
            break;
        }
        pos += used;
    }
    if (lg_cfg.write_each && c->state == CS_READY && !c->io_want_write) flush(c);
}

static void send_str(lg_conn_t *c, const char *s)
{
    lg_send(c, s, strlen(s));
}

/* Writes what it can; the buffer is freed once empty so idle connections hold none. */
static void flush(lg_conn_t *c)
{
    if (c->state == CS_FREE || c->state == CS_CONNECTING || c->state == CS_HANDSHAKE) return;
    while (c->out_len) {
        ssize_t n;
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_write(c->ssl, c->out, (int)c->out_len);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE) {
                    c->io_want_write = 1;
                    break;
                }
                if (e == SSL_ERROR_WANT_READ) break;
                fail(c, "tls write failed");
                return;
            }
            n = r;
        } else {
            n = write(c->fd, c->out, c->out_len);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    c->io_want_write = 1;
                    break;
                }
                fail(c, "write failed");
                return;
            }
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (uint32_t)n;
    }
    if (!c->out_len) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    set_out(c, c->out_len > 0 || c->io_want_write);
}

static void flush_all(void)
{
    while (dirty_head) {
        lg_conn_t *c = &conns[dirty_head - 1];
        dirty_head = c->next_dirty;
        c->dirty = 0;
        flush(c);
    }
}

/* >0 bytes, 0 end of stream, -1 nothing now, -2 error. */
static ssize_t recv_some(lg_conn_t *c, char *buf, size_t n)
{
    if (!c->ssl) {
        ssize_t r = read(c->fd, buf, n);
        if (r < 0) return errno == EAGAIN || errno == EINTR ? -1 : -2;
        return r;
    }
    ERR_clear_error();
    int r = SSL_read(c->ssl, buf, (int)n);
    if (r > 0) return r;
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return -1;
    case SSL_ERROR_WANT_WRITE:
        c->io_want_write = 1;
        set_out(c, 1);
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        return errno == 0 ? 0 : -2;
    default:
        return -2;
    }
}

/* ---- XMPP ---- */

static void send_header(lg_conn_t *c)
{
    char b[512];
    if (c->ws)
        snprintf(b, sizeof b, "<open xmlns='" NS_FRAMING "' to='%s' version='1.0'/>",
                 lg_cfg.domain);
    else
        snprintf(b, sizeof b,
                 "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                 "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>",
                 lg_cfg.domain);
    send_str(c, b);
}

/* The text content of a simple element like <challenge>B64</challenge>. */
static const char *elem_text(const char *st, size_t len, size_t *tl)
{
    const char *gt = memchr(st, '>', len);
    *tl = 0;
    if (!gt || gt[-1] == '/') return "";
    const char *lt = memchr(gt, '<', len - (size_t)(gt - st));
    if (!lt) return "";
    *tl = (size_t)(lt - gt - 1);
    return gt + 1;
}

static void start_auth(lg_conn_t *c, const char *st, size_t len)
{
    lg_sasl_t m = lg_cfg.sasl;
    if (m == SASL_AUTO)
        m = mem_find(st, len, ">SCRAM-SHA-256<") ? SASL_SCRAM_SHA256
            : mem_find(st, len, ">SCRAM-SHA-1<") ? SASL_SCRAM_SHA1
                                                 : SASL_PLAIN;
    const char *name = m == SASL_SCRAM_SHA256 ? "SCRAM-SHA-256"
                       : m == SASL_SCRAM_SHA1 ? "SCRAM-SHA-1"
                                              : "PLAIN";
    char want[32];
    snprintf(want, sizeof want, ">%s<", name);
    if (!mem_find(st, len, want)) {
        fail(c, m == SASL_PLAIN ? "PLAIN not offered" : "SCRAM mechanism not offered");
        return;
    }
    char user[96], msg[300], b64[420], out[600];
    snprintf(user, sizeof user, "%s%u", lg_cfg.user_prefix, lg_cfg.user_first + c->idx);
    size_t ml;
    if (m == SASL_PLAIN) {
        int n = snprintf(msg, sizeof msg, "%c%s%c%s", 0, user, 0, lg_cfg.password);
        ml = (size_t)n;
    } else {
        c->scram = scram_client_new(m == SASL_SCRAM_SHA1 ? EVP_sha1() : EVP_sha256(), user);
        if (!c->scram) {
            fail(c, "scram setup");
            return;
        }
        ml = (size_t)snprintf(msg, sizeof msg, "n,,%s", scram_client_first(c->scram));
    }
    b64_encode((const unsigned char *)msg, ml, b64);
    snprintf(out, sizeof out, "<auth xmlns='" NS_SASL "' mechanism='%s'>%s</auth>", name, b64);
    send_str(c, out);
    c->state = CS_AUTH;
}

static void on_challenge(lg_conn_t *c, const char *st, size_t len)
{
    size_t tl;
    const char *t = elem_text(st, len, &tl);
    unsigned char sf[600];
    char fin[400], b64[560], out[700];
    int n = c->scram && tl < 780 ? b64_decode(t, tl, sf) : -1;
    if (n <= 0 ||
        scram_client_final(c->scram, (char *)sf, (size_t)n, lg_cfg.password, fin, sizeof fin)) {
        fail(c, "bad SCRAM challenge");
        return;
    }
    b64_encode((const unsigned char *)fin, strlen(fin), b64);
    snprintf(out, sizeof out, "<response xmlns='" NS_SASL "'>%s</response>", b64);
    send_str(c, out);
}

/* Returns 1 when the stream restarts (the rest of the input belongs to the old stream). */
static int on_success(lg_conn_t *c, const char *st, size_t len)
{
    if (c->scram) {
        size_t tl;
        const char *t = elem_text(st, len, &tl);
        unsigned char sf[200];
        int n = tl < 260 ? b64_decode(t, tl, sf) : -1;
        if (n <= 0 || scram_client_verify(c->scram, (char *)sf, (size_t)n) != 0) {
            fail(c, "server signature did not verify");
            return 1;
        }
        scram_client_free(&c->scram);
    }
    c->in_stream = 0;
    c->state = CS_STREAM3;
    send_header(c);
    return 1;
}

static void start_tls(lg_conn_t *c)
{
    c->ssl = SSL_new(tls_ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        fail(c, "tls setup");
        return;
    }
    SSL_set_tlsext_host_name(c->ssl, lg_cfg.domain);
    SSL_set_connect_state(c->ssl);
    c->state = CS_HANDSHAKE;
    c->in_stream = 0;
}

/* WebSocket: the upgrade request; wsin keeps the accept value the answer must carry. */
static void ws_upgrade(lg_conn_t *c)
{
    char req[768];
    c->wsin = malloc(512);
    if (!c->wsin) abort();
    c->wsin_cap = 512;
    int n = ws_request(req, sizeof req, lg_cfg.ws_path, lg_cfg.domain, c->wsin, WS_ACCEPT_LEN);
    if (n < 0) {
        fail(c, "websocket request too long");
        return;
    }
    c->wsin_len = WS_ACCEPT_LEN;
    c->state = CS_WS_UPGRADE;
    out_raw(c, req, (size_t)n);
}

static void drive_handshake(lg_conn_t *c)
{
    ERR_clear_error();
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        c->hs_want_write = 0;
        if (c->ws) {
            ws_upgrade(c); /* wss: TLS from the first byte, then the upgrade */
            return;
        }
        c->state = CS_STREAM2;
        send_header(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        set_out(c, e == SSL_ERROR_WANT_WRITE);
        return;
    }
    char why[160];
    snprintf(why, sizeof why, "tls handshake: %s",
             ERR_reason_error_string(ERR_peek_error()) ? ERR_reason_error_string(ERR_peek_error())
                                                       : "connection closed");
    fail(c, why);
}

static void after_bind(lg_conn_t *c)
{
    char b[512];
    /* XEP-0198 first: the frontend holds the stream until the router enabled it, so the
     * presence and ping below are counted. */
    if (lg_cfg.sm) send_str(c, "<enable xmlns='" NS_SM "' resume='true'/>");
    /* Roster first, so the resource is "interested" before it becomes available. */
    c->roster_wait = lg_cfg.roster ? 1 : 0;
    c->ping_ok = 0;
    if (lg_cfg.roster)
        send_str(c, "<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>");
    snprintf(b, sizeof b,
             "<presence/><iq type='get' id='ping' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>",
             lg_cfg.domain);
    send_str(c, b);
    c->state = CS_PING;
}

static unsigned count_str(const char *st, size_t len, const char *needle)
{
    unsigned n = 0;
    size_t nl = strlen(needle);
    for (const char *p = st; (p = memmem(p, len - (size_t)(p - st), needle, nl)); p += nl)
        n++;
    return n;
}

/* An iq get/set from the server (roster push, server ping): answered with a result. */
static void answer_iq(lg_conn_t *c, const char *st, size_t len)
{
    char type[16], id[128], from[300], b[2048];
    if (xml_attr(st, len, "type", type, sizeof type) < 0 ||
        (strcmp(type, "get") != 0 && strcmp(type, "set") != 0) ||
        xml_attr(st, len, "id", id, sizeof id) < 0)
        return;
    /* A disco#info query (the server learning our entity capabilities) gets the answer the
     * scenario set; anything else an empty result. */
    const char *payload = lg_cfg.disco_info && strcmp(type, "get") == 0 &&
                                  mem_find(st, len, "http://jabber.org/protocol/disco#info")
                              ? lg_cfg.disco_info : NULL;
    if (xml_attr(st, len, "from", from, sizeof from) >= 0)
        snprintf(b, sizeof b, "<iq type='result' id='%s' to='%s'%s%s%s", id, from,
                 payload ? ">" : "/>", payload ? payload : "", payload ? "</iq>" : "");
    else
        snprintf(b, sizeof b, "<iq type='result' id='%s'%s%s%s", id, payload ? ">" : "/>",
                 payload ? payload : "", payload ? "</iq>" : "");
    send_str(c, b);
}

/* One top-level element. Returns 1 when the rest of the input must not be handled (stream
 * restart, TLS start, connection gone). */
static int on_element(lg_conn_t *c, const char *name, const char *st, size_t len)
{
    char type[16] = "", id[64] = "";
    if (strcmp(name, "error") == 0) {
        /* A stream error (stanzas named "error" do not exist at top level): its first
         * child names the condition. */
        char why[160];
        const char *gt = memchr(st, '>', len);
        const char *lt = gt ? memchr(gt, '<', len - (size_t)(gt - st)) : NULL;
        int cl = lt ? (int)strcspn(lt + 1, " />") : 0;
        snprintf(why, sizeof why, "stream error %.*s", cl, lt ? lt + 1 : "");
        fail(c, why);
        return 1;
    }
    if (c->ws && strcmp(name, "close") == 0) { /* RFC 7395 3.6: the WebSocket stream end */
        fail(c, "stream closed by server");
        return 1;
    }
    if (c->sm_on) {
        /* XEP-0198 4: h counts the stanzas received; nonzas are not counted. */
        if (strcmp(name, "message") == 0 || strcmp(name, "presence") == 0 ||
            strcmp(name, "iq") == 0) {
            c->sm_h++;
        } else if (strcmp(name, "r") == 0) {
            char b[80];
            snprintf(b, sizeof b, "<a xmlns='" NS_SM "' h='%u'/>", c->sm_h);
            send_str(c, b);
            return 0;
        } else if (strcmp(name, "a") == 0) {
            return 0;
        }
    }
    if (strcmp(name, "enabled") == 0 && c->state == CS_PING) {
        char id[80];
        free(c->sm_id);
        c->sm_id = xml_attr(st, len, "id", id, sizeof id) > 0 ? strdup(id) : NULL;
        c->sm_on = 1;
        c->sm_h = c->sm_sent = 0;
        return 0;
    }
    if (strcmp(name, "failed") == 0 && c->state == CS_PING) {
        fail(c, "stream management refused");
        return 1;
    }
    switch (c->state) {
    case CS_STREAM1:
    case CS_STREAM2:
    case CS_STREAM3:
        if (strcmp(name, "features") != 0) return 0;
        if (c->state == CS_STREAM1 && lg_cfg.starttls) {
            if (!mem_find(st, len, "<starttls")) {
                fail(c, "STARTTLS not offered");
                return 1;
            }
            send_str(c, "<starttls xmlns='" NS_TLS "'/>");
            c->state = CS_STARTTLS;
        } else if (c->state != CS_STREAM3) {
            start_auth(c, st, len);
        } else if (c->resuming) {
            char b[200];
            if (!c->sm_id || !mem_find(st, len, "<sm ")) {
                fail(c, "no resumption id or no stream management offered");
                return 1;
            }
            snprintf(b, sizeof b, "<resume xmlns='" NS_SM "' previd='%s' h='%u'/>", c->sm_id,
                     c->sm_h);
            send_str(c, b);
            c->t_resume = now_us();
            c->state = CS_RESUME;
        } else {
            if (!mem_find(st, len, "<bind")) {
                fail(c, "bind not offered");
                return 1;
            }
            send_str(c, "<iq type='set' id='bind'><bind xmlns='" NS_BIND
                        "'><resource>lg</resource></bind></iq>");
            c->state = CS_BIND;
        }
        return c->state == CS_FREE;
    case CS_STARTTLS:
        if (strcmp(name, "proceed") == 0) {
            /* Our <starttls/> may still sit in the output buffer: write it first. */
            flush(c);
            if (c->state == CS_FREE) return 1;
            start_tls(c);
            if (c->state == CS_HANDSHAKE) drive_handshake(c);
            return 1;
        }
        fail(c, "STARTTLS refused");
        return 1;
    case CS_AUTH:
        if (strcmp(name, "challenge") == 0) {
            on_challenge(c, st, len);
            return c->state == CS_FREE;
        }
        if (strcmp(name, "success") == 0) return on_success(c, st, len);
        if (strcmp(name, "failure") == 0) {
            char why[160];
            const char *p = mem_find(st, len, "><");
            snprintf(why, sizeof why, "sasl failure %.*s", p ? (int)strcspn(p + 2, " />") : 0,
                     p ? p + 2 : "");
            fail(c, why);
            return 1;
        }
        return 0;
    case CS_BIND:
        if (strcmp(name, "iq") != 0 || xml_attr(st, len, "id", id, sizeof id) < 0 ||
            strcmp(id, "bind") != 0)
            return 0;
        xml_attr(st, len, "type", type, sizeof type);
        if (strcmp(type, "result") != 0) {
            fail(c, "bind refused");
            return 1;
        }
        after_bind(c);
        return 0;
    case CS_PING:
        if (strcmp(name, "iq") != 0) return 0;
        answer_iq(c, st, len);
        xml_attr(st, len, "id", id, sizeof id);
        xml_attr(st, len, "type", type, sizeof type);
        if (strcmp(id, "roster") == 0) {
            c->roster_wait = 0;
            c->roster_result = strcmp(type, "result") == 0;
            c->roster_both = (uint16_t)(count_str(st, len, "subscription='both'") +
                                        count_str(st, len, "subscription=\"both\""));
        } else if (strcmp(id, "ping") == 0) {
            if (strcmp(type, "result") != 0) {
                fail(c, "ping not answered with a result");
                return 1;
            }
            c->ping_ok = 1;
        }
        /* The roster may come after the ping (the server may fetch it from storage). */
        if (c->ping_ok && !c->roster_wait) {
            c->state = CS_READY;
            handlers.ready(c);
            return c->state == CS_FREE;
        }
        return 0;
    case CS_RESUME:
        if (strcmp(name, "resumed") == 0) {
            c->sm_on = 1;
            c->state = CS_READY;
            handlers.ready(c);
            return c->state == CS_FREE;
        }
        if (strcmp(name, "failed") == 0) {
            fail(c, "resume failed");
            return 1;
        }
        return 0;
    case CS_READY:
        if (strcmp(name, "iq") == 0) answer_iq(c, st, len);
        handlers.stanza(c, name, st, len);
        return c->state == CS_FREE;
    default:
        return 0;
    }
}

/* Finds `end` (a string) from b[i]; returns the index just past it, or 0 when absent. */
static size_t past(const char *b, size_t len, size_t i, const char *end)
{
    const char *p = i < len ? memmem(b + i, len - i, end, strlen(end)) : NULL;
    return p ? (size_t)(p - b) + strlen(end) : 0;
}

/* Looks at the first top-level item of b[0..len). *used: bytes it spans (for SCAN_NEED, the
 * bytes that can be dropped); *el: where its '<' is. Quotes are tracked so that a '>' inside
 * an attribute value does not end a tag. */
static int scan(const char *b, size_t len, int in_stream, size_t *el, size_t *used)
{
    size_t i = 0;
    while (i < len && b[i] != '<')
        i++; /* whitespace keepalives between stanzas */
    *el = i;
    *used = i;
    if (i == len) return i ? SCAN_SKIP : SCAN_NEED;
    if (i + 1 >= len) return SCAN_NEED;
    size_t e;
    if (b[i + 1] == '?' || b[i + 1] == '!') {
        e = past(b, len, i, b[i + 1] == '?' ? "?>" : ">");
        if (!e) return SCAN_NEED;
        *used = e;
        return SCAN_SKIP;
    }
    if (b[i + 1] == '/') {
        e = past(b, len, i, ">");
        if (!e) return SCAN_NEED;
        *used = e;
        return SCAN_CLOSE;
    }
    int depth = 0;
    size_t j = i;
    for (;;) {
        /* b[j] == '<' and b[j + 1] exists */
        if (b[j + 1] == '/') {
            e = past(b, len, j, ">");
            if (!e) return SCAN_NEED;
            depth--;
        } else if (b[j + 1] == '!') {
            e = len - j >= 9 && memcmp(b + j, "<![CDATA[", 9) == 0 ? past(b, len, j, "]]>")
                : len - j >= 4 && memcmp(b + j, "<!--", 4) == 0    ? past(b, len, j, "-->")
                                                                   : past(b, len, j, ">");
            if (!e) return SCAN_NEED;
        } else if (b[j + 1] == '?') {
            e = past(b, len, j, "?>");
            if (!e) return SCAN_NEED;
        } else {
            size_t k = j + 1;
            char q = 0;
            for (; k < len; k++) {
                if (q) {
                    if (b[k] == q) q = 0;
                } else if (b[k] == '\'' || b[k] == '"') {
                    q = b[k];
                } else if (b[k] == '>') {
                    break;
                }
            }
            if (k == len) return SCAN_NEED;
            e = k + 1;
            if (!in_stream && depth == 0) {
                *used = e;
                return SCAN_OPEN;
            }
            if (b[k - 1] != '/') depth++;
        }
        if (depth <= 0) {
            *used = e;
            return depth == 0 ? SCAN_ELEMENT : SCAN_BAD;
        }
        j = e;
        while (j < len && b[j] != '<')
            j++;
        if (j + 1 >= len) return SCAN_NEED;
    }
}

/* The local name of the element at st ("stream:features" gives "features"). */
static void local_name(const char *st, size_t len, char *out, size_t n)
{
    size_t i = 1, s = 1;
    while (i < len && st[i] != ' ' && st[i] != '>' && st[i] != '/' && st[i] != '\t' &&
           st[i] != '\n' && st[i] != '\r') {
        if (st[i] == ':') s = i + 1;
        i++;
    }
    size_t l = i - s < n - 1 ? i - s : n - 1;
    memcpy(out, st + s, l);
    out[l] = '\0';
}

/* Input a connection cannot use yet (an incomplete stanza, frame or HTTP head) waits in a
 * buffer of its own: `pending_t` names one (the stanza buffer or the WebSocket one). */
typedef struct {
    char **buf;
    uint32_t *len, *cap;
} pending_t;

/* The bytes to walk: what `p` keeps followed by `data` (*n: their length in, the total
 * out). When they are in p's buffer, that buffer is handed over in *own (p emptied:
 * handlers may close the connection while the caller walks it); else *own is NULL. */
static const char *pending_join(pending_t p, const char *data, size_t *n, char **own,
                                uint32_t *own_cap)
{
    *own = NULL;
    *own_cap = 0;
    if (!*p.len)
        return data;
    if (*p.len + *n > *p.cap) {
        uint32_t cap = *p.cap ? *p.cap : 512;
        while (cap < *p.len + *n)
            cap *= 2;
        char *nb = realloc(*p.buf, cap);
        if (!nb) abort();
        *p.buf = nb;
        *p.cap = cap;
    }
    memcpy(*p.buf + *p.len, data, *n);
    *n += *p.len;
    *own = *p.buf;
    *own_cap = *p.cap;
    *p.buf = NULL;
    *p.len = *p.cap = 0;
    return *own;
}

/* Keeps b[pos..len) in `p` for the next read, in `own` (from pending_join, which `p` then
 * owns again) when there is one. */
static void pending_keep(pending_t p, char *own, uint32_t own_cap, const char *b, size_t pos,
                          size_t len)
{
    size_t rest = len - pos;
    if (own) {
        memmove(own, own + pos, rest);
        *p.buf = own;
        *p.cap = own_cap;
    } else {
        *p.cap = (uint32_t)(rest < 512 ? 512 : rest);
        *p.buf = malloc(*p.cap);
        if (!*p.buf) abort();
        memcpy(*p.buf, b + pos, rest);
    }
    *p.len = (uint32_t)rest;
}

/* Handles the bytes just read, together with a partial stanza kept from before. Returns -1
 * when reading must stop (connection gone, or its transport changed). */
static int feed(lg_conn_t *c, const char *data, size_t n)
{
    pending_t keep = {&c->in, &c->in_len, &c->in_cap};
    char *own;
    uint32_t own_cap;
    size_t len = n;
    const char *b = pending_join(keep, data, &len, &own, &own_cap);
    size_t pos = 0;
    int stop = 0;
    while (pos < len && !stop) {
        size_t el, used;
        int k = scan(b + pos, len - pos, c->in_stream, &el, &used);
        if (k == SCAN_NEED) {
            pos += used;
            break;
        }
        if (k == SCAN_BAD) {
            fail(c, "unbalanced XML from server");
            stop = 1;
            break;
        }
        const char *st = b + pos + el;
        size_t sl = used - el;
        pos += used;
        if (k == SCAN_OPEN) {
            c->in_stream = 1;
        } else if (k == SCAN_CLOSE) {
            fail(c, "stream closed by server");
            stop = 1;
        } else if (k == SCAN_ELEMENT) {
            char name[32];
            local_name(st, sl, name, sizeof name);
            stop = on_element(c, name, st, sl);
        }
    }
    if (!stop && pos < len && c->state != CS_FREE) {
        pending_keep(keep, own, own_cap, b, pos, len); /* the incomplete stanza */
        own = NULL;
    }
    free(own);
    return stop || c->state == CS_FREE ? -1 : 0;
}

/* WebSocket input: the HTTP answer to the upgrade, then the server's frames. Text messages
 * go to feed() (the same stream code as TCP), pings get a pong, a close frame ends the
 * connection. Returns -1 when reading must stop. */
static int ws_in(lg_conn_t *c, const char *data, size_t n)
{
    pending_t keep = {&c->wsin, &c->wsin_len, &c->wsin_cap};
    char *own;
    uint32_t own_cap;
    size_t len = n;
    const char *b = pending_join(keep, data, &len, &own, &own_cap);
    size_t pos = 0;
    int stop = 0;
    if (c->state == CS_WS_UPGRADE) {
        /* wsin always holds the accept value here, so b is our own buffer. */
        const char *head = b + WS_ACCEPT_LEN;
        const char *e = memmem(head, len - WS_ACCEPT_LEN, "\r\n\r\n", 4);
        if (!e && len - WS_ACCEPT_LEN < WS_HEAD_MAX) {
            pending_keep(keep, own, own_cap, b, 0, len); /* the head so far */
            return 0;
        }
        const char *why =
            e ? ws_check_response(head, (size_t)(e + 4 - head), b) : "HTTP response head too long";
        if (why) {
            char w[96];
            snprintf(w, sizeof w, "websocket: %s", why);
            free(own);
            fail(c, w);
            return -1;
        }
        pos = (size_t)(e + 4 - b);
        c->state = CS_STREAM2; /* no STARTTLS on a WebSocket: SASL features next */
        c->in_stream = 0;
        send_header(c);
    }
    while (pos < len && !stop) {
        int op, fin;
        uint64_t pl;
        int h = ws_parse((const unsigned char *)b + pos, len - pos, &op, &fin, &pl);
        if (h < 0) {
            fail(c, "bad WebSocket frame from server");
            stop = 1;
            break;
        }
        if (h == 0 || len - pos - (size_t)h < pl) break;
        const char *p = b + pos + h;
        pos += (size_t)h + (size_t)pl;
        switch (op) {
        case WS_OP_CONT:
        case WS_OP_TEXT:
            /* One element per message; a stream restart inside changes nothing below. */
            feed(c, p, (size_t)pl);
            stop = c->state == CS_FREE;
            break;
        case WS_OP_PING:
            out_frame(c, WS_OP_PONG, p, (size_t)pl);
            break;
        case WS_OP_PONG:
            break;
        case WS_OP_CLOSE:
            fail(c, "websocket closed by server");
            stop = 1;
            break;
        default:
            fail(c, "binary WebSocket frame from server");
            stop = 1;
        }
    }
    if (!stop && pos < len && c->state != CS_FREE) {
        pending_keep(keep, own, own_cap, b, pos, len); /* the incomplete frame */
        own = NULL;
    }
    free(own);
    return stop || c->state == CS_FREE ? -1 : 0;
}

static void do_read(lg_conn_t *c)
{
    for (int i = 0; i < READS_PER_EVENT && c->state != CS_FREE; i++) {
        ssize_t n = recv_some(c, rbuf, sizeof rbuf);
        if (n > 0) {
            if ((c->ws ? ws_in(c, rbuf, (size_t)n) : feed(c, rbuf, (size_t)n)) < 0) return;
            continue;
        }
        if (n == 0)
            fail(c, "connection closed by server");
        else if (n == -2)
            fail(c, "read error");
        return;
    }
}

static void on_event(lg_conn_t *c, uint32_t ev)
{
    switch (c->state) {
    case CS_FREE:
        return;
    case CS_CONNECTING: {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            char why[96];
            snprintf(why, sizeof why, "connect: %s", strerror(err));
            fail(c, why);
            return;
        }
        if (c->ws && lg_cfg.wss) {
            start_tls(c);
            if (c->state == CS_HANDSHAKE) drive_handshake(c);
            return;
        }
        if (c->ws) {
            ws_upgrade(c);
        } else {
            c->state = CS_STREAM1;
            send_header(c);
        }
        set_out(c, 0);
        return;
    }
    case CS_HANDSHAKE:
        drive_handshake(c);
        return;
    default:
        if (ev & EPOLLOUT) c->io_want_write = 0;
        if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) do_read(c);
        if (c->state != CS_FREE && (ev & EPOLLOUT)) mark_dirty(c);
    }
}

void lg_sm_sent(lg_conn_t *c)
{
    if (!c->sm_on) return;
    if (++c->sm_sent % 5 == 0) send_str(c, "<r xmlns='" NS_SM "'/>");
}

static int start(uint32_t idx, int resume);

int lg_start(uint32_t idx)
{
    return start(idx, 0);
}

int lg_resume(uint32_t idx)
{
    return start(idx, 1);
}

static int start(uint32_t idx, int resume)
{
    lg_conn_t *c = &conns[idx];
    c->resuming = resume ? 1 : 0;
    c->sm_on = 0; /* on again with <enabled/> or <resumed/> */
    if (!resume) {
        free(c->sm_id);
        c->sm_id = NULL;
        c->sm_h = c->sm_sent = 0;
    }
    c->idx = idx;
    /* The first ws_share of the slots are WebSocket clients (msg: 0.5 puts one end of every
     * pair on a WebSocket, the other on TCP). */
    c->ws = lg_cfg.nws_ports > 0 && (double)idx < lg_cfg.ws_share * (double)nconns;
    c->failed = 0;
    c->roster_result = 0;
    c->roster_both = 0;
    c->inflight = 0;
    c->counter = 0;
    c->t_start = now_us();
    c->state = CS_CONNECTING;
    char why[96];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, sizeof why, "socket: %s", strerror(errno));
        fail(c, why);
        return -1;
    }
    c->fd = fd;
    int one = 1;
    /* Stanzas are small and latency is measured: no Nagle delay on our side. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (lg_cfg.nsrc > 1 || lg_cfg.src_first > 1) {
        /* Loopback has one source address per 127.x: several give more than ~28k ports. */
        struct sockaddr_in src = {.sin_family = AF_INET};
        uint32_t nsrc = lg_cfg.nsrc > 1 ? (uint32_t)lg_cfg.nsrc : 1;
        src.sin_addr.s_addr = htonl(0x7f000000u + (uint32_t)lg_cfg.src_first + idx % nsrc);
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            snprintf(why, sizeof why, "bind source: %s", strerror(errno));
            fail(c, why);
            return -1;
        }
    }
    struct sockaddr_in sa = {
        .sin_family = AF_INET,
        .sin_port = htons((uint16_t)(c->ws ? lg_cfg.ws_ports[idx % (uint32_t)lg_cfg.nws_ports]
                                           : lg_cfg.ports[idx % (uint32_t)lg_cfg.nports]))};
    inet_pton(AF_INET, lg_cfg.host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        snprintf(why, sizeof why, "connect: %s", strerror(errno));
        fail(c, why);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = idx};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    c->want_out = 1;
    return 0;
}

static const char *const state_names[] = {
    "free",          "connecting", "stream",           "starttls", "tls handshake",
    "sasl features", "sasl",       "bind features",    "bind",     "ping",
    "ready",         "resume",     "websocket upgrade"};

/* Logins that take longer than the configured timeout count as failures. */
static void sweep_timeouts(uint64_t now)
{
    uint64_t limit = (uint64_t)lg_cfg.login_timeout_s * 1000000u;
    for (uint32_t i = 0; i < nconns; i++) {
        lg_conn_t *c = &conns[i];
        if (c->state != CS_FREE && c->state != CS_READY && now - c->t_start > limit) {
            char why[64];
            snprintf(why, sizeof why, "login timed out (%s)", state_names[c->state]);
            fail(c, why);
        }
    }
}

int lg_run(int (*done)(void), void (*tick)(void), uint64_t tick_us, uint64_t timeout_us)
{
    static struct epoll_event evs[512];
    uint64_t now = now_us(), deadline = now + timeout_us, next_tick = now,
             next_sweep = now + 1000000u;
    for (;;) {
        flush_all();
        if (done()) return 0;
        now = now_us();
        if (now >= deadline) return -1;
        if (tick && now >= next_tick) {
            tick();
            next_tick = now + tick_us;
            flush_all();
        }
        if (now >= next_sweep) {
            sweep_timeouts(now);
            next_sweep = now + 1000000u;
        }
        uint64_t wake = deadline < next_sweep ? deadline : next_sweep;
        if (tick && next_tick < wake) wake = next_tick;
        int ms = wake > now ? (int)((wake - now + 999) / 1000) : 0;
        int n = epoll_wait(epfd, evs, (int)(sizeof evs / sizeof evs[0]), ms);
        for (int i = 0; i < n; i++)
            on_event(&conns[evs[i].data.u32], evs[i].events);
    }
}
