/* XMPP over WebSocket (RFC 7395): the HTTP handshake (RFC 6455 4.2), host-meta (XEP-0156),
 * and the framing between WebSocket messages and the stream code (websocket.h). */
#include <ctype.h>
#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#include "client.h"
#include "log.h"
#include "stanza.h"
#include "util.h"

const config_key_t ws_config_keys[] = {
    CONFIG_STR("ws_listen", "", "address and port for XMPP over WebSocket without TLS (ws://), for loopback or behind a proxy that ends TLS (empty: off)"),
    CONFIG_STR("wss_listen", "", "address and port for XMPP over WebSocket with TLS (wss://, the tls_cert certificates) (empty: off)"),
    CONFIG_STR("ws_path", "/xmpp-websocket", "HTTP path of the WebSocket endpoint"),
    CONFIG_STR("ws_allowed_origins", "*", "comma-separated origins (scheme://host[:port]) a browser page may connect from; * = any (requests without Origin are always allowed)"),
    CONFIG_STR("ws_url", "", "public WebSocket URL announced in /.well-known/host-meta (empty: from the request's Host and scheme)"),
    CONFIG_INT("ws_ping_interval", "60", 0, 86400, "seconds between WebSocket pings to a quiet client; one unanswered for as long closes it (0 = off)"),
    CONFIG_END,
};

/* An HTTP request head is small; a client sending more before its blank line is refused
 * (431) without it being kept. */
#define WS_MAX_HEAD 8192
#define WS_FIELD_MAX 32
#define WS_VALUE_MAX 512
#define WS_MAX_ORIGINS 32
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 1.3 */
/* Frames in one message at most (on_frame_start). */
#define WS_MAX_FRAGMENTS 64

static struct {
    char path[256];
    char url[512];
    char *origins[WS_MAX_ORIGINS];
    int norigins, any_origin;
    uint64_t ping_ms;
} ws_cfg;

/* The headers the handshake reads (others are skipped). */
enum { H_HOST, H_UPGRADE, H_CONNECTION, H_KEY, H_VERSION, H_PROTOCOL, H_ORIGIN, H_FWD_PROTO, H_COUNT };
static const char *const header_names[H_COUNT] = {
    "host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
    "sec-websocket-protocol", "origin", "x-forwarded-proto",
};

/* The request being read; freed once it is answered. */
typedef struct {
    http_parser hp;
    size_t head_bytes;
    char url[WS_VALUE_MAX];
    size_t url_len;
    char field[WS_FIELD_MAX];
    size_t field_len;
    int cur;             /* header being read (H_*), -1 when skipped */
    int in_value;        /* the last callback was a value */
    char values[H_COUNT][WS_VALUE_MAX];
    size_t value_len[H_COUNT];
    unsigned too_long : 1; /* a URL or a header value we read was longer than we keep */
    unsigned complete : 1; /* the head is in */
} ws_http_t;

struct ws {
    ws_http_t *http; /* until the request is answered */
    wslay_event_context_ptr ctx; /* after the upgrade; NULL again while idle (ws_release) */
    client_t *c;
    const char *in;   /* bytes wslay may read now (ws_on_data) */
    size_t in_len;
    ev_timer_t *ping_timer;
    unsigned fragments; /* frames of the message being received */
    unsigned peer_closed : 1; /* the client sent a close frame */
    unsigned ping_unanswered : 1;
    unsigned heard : 1; /* something arrived since the last ping */
    unsigned upgraded : 1; /* the upgrade response is written */
    unsigned msg_open : 1; /* a fragmented message is being received */
    /* Bytes given to wslay, and the bytes of the frames it has seen begin (header and
     * payload): equal, wslay holds no part of a frame (ws_release). */
    uint64_t fed, framed;
};

/* ---- configuration ----------------------------------------------------------------------- */

int ws_configure(const ws_config_t *cfg, char *err, size_t errlen)
{
    const char *path = cfg->path;
    if (path[0] != '/' || strlen(path) >= sizeof ws_cfg.path || strpbrk(path, " ?#\"'<>")) {
        snprintf(err, errlen, "key 'ws_path': '%s' is not an absolute URL path", path);
        return -1;
    }
    snprintf(ws_cfg.path, sizeof ws_cfg.path, "%s", path);
    const char *url = cfg->url;
    if (*url && ((strncmp(url, "ws://", 5) != 0 && strncmp(url, "wss://", 6) != 0) ||
                 strlen(url) >= sizeof ws_cfg.url || strpbrk(url, " \"'<>\\"))) {
        snprintf(err, errlen, "key 'ws_url': '%s' is not a ws:// or wss:// URL", url);
        return -1;
    }
    snprintf(ws_cfg.url, sizeof ws_cfg.url, "%s", url);
    ws_cfg.ping_ms = (uint64_t)cfg->ping_interval * 1000;
    ws_shutdown();
    const char *list = cfg->allowed_origins;
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (!n)
            break;
        if (n == 1 && *p == '*') {
            ws_cfg.any_origin = 1;
        } else if (ws_cfg.norigins >= WS_MAX_ORIGINS || n >= WS_VALUE_MAX ||
                   (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0)) {
            snprintf(err, errlen, "key 'ws_allowed_origins': '%.*s' is not an origin "
                     "(scheme://host[:port], at most %d of them) or *", (int)n, p, WS_MAX_ORIGINS);
            return -1;
        } else {
            ws_cfg.origins[ws_cfg.norigins++] = xstrndup(p, n);
        }
        p += n;
    }
    return 0;
}

void ws_shutdown(void)
{
    for (int i = 0; i < ws_cfg.norigins; i++)
        xfree(&ws_cfg.origins[i]);
    ws_cfg.norigins = 0;
    ws_cfg.any_origin = 0;
}

/* ---- the HTTP request -------------------------------------------------------------------- */

static int on_url(http_parser *hp, const char *at, size_t len)
{
    ws_http_t *h = hp->data;
    if (h->complete) /* a request pipelined behind the one answered */
        return 0;
    if (h->url_len + len >= sizeof h->url) {
        h->too_long = 1;
        return 0;
    }
    memcpy(h->url + h->url_len, at, len);
    h->url_len += len;
    h->url[h->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    ws_http_t *h = hp->data;
    if (h->complete)
        return 0;
    if (h->in_value) {
        h->in_value = 0;
        h->field_len = 0;
    }
    if (h->field_len + len >= sizeof h->field) {
        h->field_len = sizeof h->field; /* longer than any name we read */
        return 0;
    }
    memcpy(h->field + h->field_len, at, len);
    h->field_len += len;
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    ws_http_t *h = hp->data;
    if (h->complete)
        return 0;
    if (!h->in_value) {
        h->in_value = 1;
        h->cur = -1;
        for (int i = 0; i < H_COUNT && h->field_len < sizeof h->field; i++)
            if (strlen(header_names[i]) == h->field_len &&
                strncasecmp(h->field, header_names[i], h->field_len) == 0)
                h->cur = i;
        /* A header given twice is read as one list (RFC 9110 5.3). */
        if (h->cur >= 0 && h->value_len[h->cur] && h->value_len[h->cur] + 2 < WS_VALUE_MAX) {
            memcpy(h->values[h->cur] + h->value_len[h->cur], ", ", 2);
            h->value_len[h->cur] += 2;
        }
    }
    if (h->cur < 0)
        return 0;
    size_t *vl = &h->value_len[h->cur];
    if (*vl + len >= WS_VALUE_MAX) {
        h->too_long = 1;
        return 0;
    }
    memcpy(h->values[h->cur] + *vl, at, len);
    *vl += len;
    h->values[h->cur][*vl] = '\0';
    return 0;
}

/* Header values without the optional whitespace around them (RFC 9110 5.5). */
static void trim_values(ws_http_t *h)
{
    for (int i = 0; i < H_COUNT; i++) {
        char *v = h->values[i];
        size_t n = h->value_len[i], start = 0;
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        while (start < n && (v[start] == ' ' || v[start] == '\t'))
            start++;
        memmove(v, v + start, n - start);
        v[n - start] = '\0';
        h->value_len[i] = n - start;
    }
}

static int on_headers_complete(http_parser *hp)
{
    ws_http_t *h = hp->data;
    if (!h->complete)
        trim_values(h);
    h->complete = 1;
    return 0;
}

static const http_parser_settings http_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
};

/* Whether a comma-separated header value holds `token` (case-insensitive). */
static int has_token(const char *list, const char *token)
{
    size_t tl = strlen(token);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m && (p[m - 1] == ' ' || p[m - 1] == '\t'))
            m--;
        if (m == tl && strncasecmp(p, token, tl) == 0)
            return 1;
        p += n;
    }
    return 0;
}

/* Writes an HTTP response and closes the connection once it is out. */
static void http_reply(client_t *c, const char *status, const char *extra_headers,
                       const char *type, const char *body)
{
    buf_t b = BUF_INIT;
    buf_printf(&b, "HTTP/1.1 %s\r\nConnection: close\r\nContent-Type: %s\r\n"
               "Content-Length: %zu\r\n%s\r\n%s",
               status, type, strlen(body), extra_headers ? extra_headers : "", body);
    client_write_raw(c, b.data, b.len);
    buf_free(&b);
    c->stream_done = 1;
    client_close(c, 1);
}

static void http_error(client_t *c, const char *status, const char *extra, const char *why)
{
    log_info("conn %llu: %s: WebSocket handshake refused (%s): %s", (unsigned long long)c->id,
             c->addr, status, why);
    char body[256];
    snprintf(body, sizeof body, "%s\n", why);
    http_reply(c, status, extra, "text/plain; charset=utf-8", body);
}

/* The WebSocket URL for host-meta: ws_url, or the Host the client asked for with the
 * scheme it came in with (a TLS listener, or a proxy that says it ended TLS). */
static int public_url(const client_t *c, const ws_http_t *h, char *out, size_t n)
{
    if (ws_cfg.url[0]) {
        snprintf(out, n, "%s", ws_cfg.url);
        return 0;
    }
    const char *host = h->values[H_HOST];
    if (!*host)
        return -1;
    for (const char *p = host; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-:[]", *p))
            return -1;
    int tls = c->tls || has_token(h->values[H_FWD_PROTO], "https");
    snprintf(out, n, "%s://%s%s", tls ? "wss" : "ws", host, ws_cfg.path);
    return 0;
}

/* XEP-0156: host-meta (XRD) and host-meta.json, readable from any page (CORS). */
static void serve_host_meta(client_t *c, const ws_http_t *h, int json)
{
    char url[WS_VALUE_MAX + 300];
    if (public_url(c, h, url, sizeof url) < 0) {
        http_error(c, "400 Bad Request", NULL, "a valid Host header is needed");
        return;
    }
    char body[sizeof url + 256];
    if (json)
        snprintf(body, sizeof body,
                 "{\"links\":[{\"rel\":\"urn:xmpp:alt-connections:websocket\",\"href\":\"%s\"}]}\n",
                 url);
    else
        snprintf(body, sizeof body,
                 "<?xml version='1.0' encoding='utf-8'?>\n"
                 "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n"
                 "  <Link rel='urn:xmpp:alt-connections:websocket' href='%s'/>\n</XRD>\n",
                 url);
    http_reply(c, "200 OK", "Access-Control-Allow-Origin: *\r\n",
               json ? "application/json" : "application/xrd+xml; charset=utf-8", body);
}

static int origin_allowed(const char *origin)
{
    if (!*origin || ws_cfg.any_origin)
        return 1;
    for (int i = 0; i < ws_cfg.norigins; i++)
        if (strcasecmp(origin, ws_cfg.origins[i]) == 0)
            return 1;
    return 0;
}

/* RFC 6455 4.1: the key is 16 random bytes in base64. */
static int key_valid(const char *key)
{
    size_t n = strlen(key);
    if (n != 24 || key[22] != '=' || key[23] != '=')
        return 0;
    unsigned char raw[24];
    return EVP_DecodeBlock(raw, (const unsigned char *)key, 24) == 18;
}

static void ws_start(client_t *c, const char *key, const char *rest, size_t rest_len);

static void handle_request(client_t *c, ws_http_t *h, const char *rest, size_t rest_len)
{
    char path[WS_VALUE_MAX];
    snprintf(path, sizeof path, "%.*s", (int)strcspn(h->url, "?#"), h->url);
    if (h->hp.method != HTTP_GET) {
        http_error(c, "405 Method Not Allowed", "Allow: GET\r\n", "only GET is served here");
        return;
    }
    if (strcmp(path, "/.well-known/host-meta") == 0 ||
        strcmp(path, "/.well-known/host-meta.json") == 0) {
        serve_host_meta(c, h, strcmp(path, "/.well-known/host-meta.json") == 0);
        return;
    }
    if (strcmp(path, ws_cfg.path) != 0) {
        http_error(c, "404 Not Found", NULL, "no such resource");
        return;
    }
    const char **v = (const char *[H_COUNT]){0};
    for (int i = 0; i < H_COUNT; i++)
        v[i] = h->values[i];
    /* RFC 6455 4.1: an HTTP/1.1 GET with a Host. */
    if (h->hp.http_major < 1 || (h->hp.http_major == 1 && h->hp.http_minor < 1) || !*v[H_HOST]) {
        http_error(c, "400 Bad Request", NULL, "a WebSocket upgrade is HTTP/1.1 with a Host");
        return;
    }
    if (!has_token(v[H_UPGRADE], "websocket") || !has_token(v[H_CONNECTION], "upgrade")) {
        http_error(c, "426 Upgrade Required", "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
                   "this is an XMPP WebSocket endpoint (RFC 7395): upgrade to WebSocket");
        return;
    }
    if (strcmp(v[H_VERSION], "13") != 0) {
        /* RFC 6455 4.4: name the versions we speak. */
        http_error(c, "426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n",
                   "WebSocket version 13 only");
        return;
    }
    if (!key_valid(v[H_KEY])) {
        http_error(c, "400 Bad Request", NULL, "Sec-WebSocket-Key is not 16 bytes in base64");
        return;
    }
    if (!origin_allowed(v[H_ORIGIN])) {
        http_error(c, "403 Forbidden", NULL, "this origin is not in ws_allowed_origins");
        return;
    }
    /* RFC 7395 3.1: the client asks for the xmpp subprotocol; without it there is no XMPP
     * to speak. */
    if (!has_token(v[H_PROTOCOL], "xmpp")) {
        http_error(c, "400 Bad Request", NULL,
                   "Sec-WebSocket-Protocol must offer xmpp (RFC 7395)");
        return;
    }
    ws_start(c, v[H_KEY], rest, rest_len);
}

static void read_http(client_t *c, const char *data, size_t len)
{
    ws_http_t *h = c->ws->http;
    size_t room = WS_MAX_HEAD - h->head_bytes;
    size_t feed = len < room ? len : room;
    size_t n = http_parser_execute(&h->hp, &http_settings, data, feed);
    h->head_bytes += n;
    if (h->complete) {
        if (h->too_long) {
            http_error(c, "431 Request Header Fields Too Large", NULL, "a header is too long");
            return;
        }
        /* Bytes after the head belong to the WebSocket (a client may send its first frame
         * right behind the request). */
        handle_request(c, h, h->hp.upgrade ? data + n : NULL, h->hp.upgrade ? len - n : 0);
        return;
    }
    if (HTTP_PARSER_ERRNO(&h->hp) != HPE_OK) {
        http_error(c, "400 Bad Request", NULL, http_errno_description(HTTP_PARSER_ERRNO(&h->hp)));
        return;
    }
    if (h->head_bytes >= WS_MAX_HEAD)
        http_error(c, "431 Request Header Fields Too Large", NULL, "the request head is too long");
}

/* ---- WebSocket ----------------------------------------------------------------------------- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *ud)
{
    (void)flags;
    ws_t *ws = ud;
    if (!ws->in_len) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < ws->in_len ? len : ws->in_len;
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->in_len -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
    (void)ctx;
    (void)flags;
    ws_t *ws = ud;
    client_write_raw(ws->c, (const char *)data, len);
    return (ssize_t)len;
}

/* The local name of a message's first element, or NULL. */
static const char *first_name(const char *p, size_t n, size_t *len)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    if (i >= n || p[i] != '<')
        return NULL;
    size_t start = ++i;
    while (i < n && !strchr(" \t\r\n/>", p[i]))
        i++;
    const char *name = p + start;
    *len = i - start;
    const char *colon = memchr(name, ':', *len);
    if (colon) {
        *len -= (size_t)(colon + 1 - name);
        name = colon + 1;
    }
    return name;
}

static int is_framing(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(name, want, len) == 0;
}

/* One text message: one element of the stream (RFC 7395 3.3.3). */
static void on_text(client_t *c, const char *msg, size_t len)
{
    if (c->stream_done || c->closed)
        return;
    size_t nlen = 0;
    const char *name = first_name(msg, len, &nlen);
    if (!name) {
        /* Whitespace is no keepalive here (3.4 uses WebSocket pings) but harmless. */
        for (size_t i = 0; i < len; i++)
            if (!strchr(" \t\r\n", msg[i])) {
                client_stream_error(c, "not-well-formed", "a message must be one XML element");
                return;
            }
        return;
    }
    if (is_framing(name, nlen, "open") || is_framing(name, nlen, "close")) {
        xml_node_t *el = stanza_parse(msg, len);
        if (el && el->ns && strcmp(el->ns, NS_FRAMING) == 0) {
            int open = strcmp(el->name, "open") == 0;
            if (open && c->header_sent)
                client_stream_error(c, "invalid-xml", "<open/> while the stream is open");
            else if (open)
                stream_ws_open(c, el);
            else
                stream_client_closed(c);
            xml_node_free(&el);
            return;
        }
        xml_node_free(&el);
    }
    if (!c->header_sent) {
        client_stream_error(c, "bad-format", "the stream starts with <open/> (RFC 7395 3.3.2)");
        return;
    }
    stream_on_data(c, msg, len);
    /* A message that leaves an element open would join the next one into one element. */
    if (!c->closed && !c->stream_done && c->header_sent && xml_parser_depth(c->parser) != 1)
        client_stream_error(c, "not-well-formed", "a message must hold complete elements");
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *ud)
{
    ws_t *ws = ud;
    client_t *c = ws->c;
    if (ws->fragments > WS_MAX_FRAGMENTS) /* refused in on_frame_start: not used */
        return;
    if (arg->opcode == WSLAY_TEXT_FRAME) {
        on_text(c, (const char *)arg->msg, arg->msg_length);
    } else if (arg->opcode == WSLAY_BINARY_FRAME) {
        /* RFC 7395 3.2: XMPP goes in text messages only. */
        log_info("conn %llu: %s: binary WebSocket message: closed (1003)",
                 (unsigned long long)c->id, c->addr);
        wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, NULL, 0);
        wslay_event_shutdown_read(ctx);
    } else if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        ws->peer_closed = 1;
        log_debug("conn %llu: WebSocket closed by the client (%u)", (unsigned long long)c->id,
                  arg->status_code);
    }
}

/* wslay bounds the bytes of a message (ws_set_max_message), not its frames, and keeps
 * each frame apart until the message is whole: many tiny fragments would cost far more
 * memory than their bytes. Browsers send a message in one frame; past WS_MAX_FRAGMENTS
 * the connection ends with 1009 like an oversized message. */
static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *ud)
{
    ws_t *ws = ud;
    /* A client's frames are masked (RFC 6455 5.1): 2 bytes, the extended length (the
     * shortest form; a longer one only keeps the counts apart), the 4-byte mask. */
    uint64_t len = arg->payload_length;
    ws->framed += 2 + (len > 65535 ? 8 : len > 125 ? 2 : 0) + 4 + len;
    if (arg->opcode >= 8) /* control frames come between fragments and are not counted */
        return;
    ws->msg_open = !arg->fin;
    ws->fragments = arg->opcode == WSLAY_CONTINUATION_FRAME ? ws->fragments + 1 : 1;
    if (ws->fragments > WS_MAX_FRAGMENTS && wslay_event_want_read(ctx)) {
        log_info("conn %llu: %s: a WebSocket message in more than %d frames: closed (1009)",
                 (unsigned long long)ws->c->id, ws->c->addr, WS_MAX_FRAGMENTS);
        wslay_event_queue_close(ctx, WSLAY_CODE_MESSAGE_TOO_BIG, NULL, 0);
        wslay_event_shutdown_read(ctx);
    }
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_frame_recv_start_callback = on_frame_start,
    .on_msg_recv_callback = on_msg,
};

/* The wslay context, made again if it was released while the connection was idle. */
static wslay_event_context_ptr ws_ctx(client_t *c)
{
    ws_t *ws = c->ws;
    if (!ws->ctx && ws->upgraded) {
        if (wslay_event_context_server_init(&ws->ctx, &ws_callbacks, ws) != 0)
            log_fatal("out of memory (wslay)");
        wslay_event_config_set_max_recv_msg_length(
            ws->ctx, c->authed ? fe.limits.max_stanza : fe.limits_preauth.max_stanza);
    }
    return ws->ctx;
}

int ws_release(client_t *c)
{
    ws_t *ws = c->ws;
    if (!ws || !ws->ctx)
        return 1;
    /* Between messages, no byte of a frame held, nothing to write, no close under way:
     * a fresh context is in the same state. */
    if (ws->msg_open || ws->fed != ws->framed || ws->peer_closed ||
        !wslay_event_want_read(ws->ctx) || wslay_event_want_write(ws->ctx) ||
        wslay_event_get_queued_msg_count(ws->ctx))
        return 0;
    wslay_event_context_free(ws->ctx);
    ws->ctx = NULL;
    return 1;
}

int ws_live(const client_t *c)
{
    return c->ws && c->ws->ctx;
}

/* Writes what wslay has queued; once the closing handshake is over (nothing more to read
 * or to write) the connection is closed after the last bytes. */
static void ws_pump(client_t *c)
{
    ws_t *ws = c->ws;
    if (!ws || !ws->ctx || c->closed)
        return;
    /* Never closed at once here (this may run inside wslay, inside the XML parser): a
     * graceful close acts once the loop pass is over. */
    if (wslay_event_send(ws->ctx) < 0) {
        c->stream_done = 1;
        client_close(c, 1);
        return;
    }
    if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx)) {
        /* The closing handshake is over. A client that closed the WebSocket without
         * <close/> first (a tab closed or reloaded) did not end its stream: like a TCP
         * connection lost, its session may be resumed (XEP-0198). A close we started
         * (a refused frame) ends it. */
        if (!c->stream_done && ws->peer_closed)
            c->sm_keep = 1;
        c->stream_done = 1;
        client_close(c, 1);
    }
}

static void on_ping_timer(evloop_t *loop, void *ud)
{
    client_t *c = ud;
    ws_t *ws = c->ws;
    ws->ping_timer = NULL;
    if (c->closed || c->closing || !ws->upgraded)
        return;
    if (!ws->heard && ws->ping_unanswered) {
        log_info("conn %llu: %s: no answer to a WebSocket ping in %llu s: closed",
                 (unsigned long long)c->id, c->addr,
                 (unsigned long long)(ws_cfg.ping_ms / 1000));
        c->sm_keep = 1; /* a connection lost: the session may be resumed */
        client_close(c, 0);
        return;
    }
    if (!ws->heard) {
        struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};
        wslay_event_queue_msg(ws_ctx(c), &ping);
        ws->ping_unanswered = 1;
        ws_pump(c);
        if (c->closing)
            return;
    } else {
        ws->ping_unanswered = 0;
    }
    ws->heard = 0;
    ws->ping_timer = evloop_timer(loop, ws_cfg.ping_ms, on_ping_timer, c);
}

static void ws_start(client_t *c, const char *key, const char *rest, size_t rest_len)
{
    ws_t *ws = c->ws;
    unsigned char digest[SHA_DIGEST_LENGTH];
    char accept_src[64];
    snprintf(accept_src, sizeof accept_src, "%s" WS_GUID, key);
    SHA1((const unsigned char *)accept_src, strlen(accept_src), digest);
    char accept[32];
    EVP_EncodeBlock((unsigned char *)accept, digest, sizeof digest);
    ws->upgraded = 1;
    ws_ctx(c);
    buf_t b = BUF_INIT;
    buf_printf(&b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
               "Sec-WebSocket-Protocol: xmpp\r\n\r\n", accept);
    client_write_raw(c, b.data, b.len);
    buf_free(&b);
    xfree(&ws->http);
    log_debug("conn %llu: WebSocket open", (unsigned long long)c->id);
    if (ws_cfg.ping_ms)
        ws->ping_timer = evloop_timer(fe.loop, ws_cfg.ping_ms, on_ping_timer, c);
    if (rest_len)
        ws_on_data(c, rest, rest_len);
}

void ws_attach(client_t *c)
{
    ws_t *ws = xcalloc(1, sizeof *ws);
    ws->c = c;
    ws->http = xcalloc(1, sizeof *ws->http);
    http_parser_init(&ws->http->hp, HTTP_REQUEST);
    ws->http->hp.data = ws->http;
    c->ws = ws;
}

void ws_free(client_t *c)
{
    ws_t *ws = c->ws;
    if (!ws)
        return;
    evloop_cancel(fe.loop, &ws->ping_timer);
    if (ws->ctx)
        wslay_event_context_free(ws->ctx);
    free(ws->http);
    free(ws);
    c->ws = NULL;
}

int ws_upgraded(const client_t *c)
{
    return c->ws && c->ws->upgraded;
}

int ws_protected(const client_t *c)
{
    if (!c->ws)
        return 0;
    if (c->tls || fe.proxy_protocol)
        return 1;
    return strncmp(c->addr, "127.", 4) == 0 || strncmp(c->addr, "[::1]:", 6) == 0 ||
           strncmp(c->addr, "[::ffff:127.", 12) == 0;
}

void ws_on_data(client_t *c, const char *data, size_t len)
{
    ws_t *ws = c->ws;
    if (!ws->upgraded) {
        if (!ws->http->complete) /* else answered: the connection is closing */
            read_http(c, data, len);
        return;
    }
    ws_ctx(c);
    ws->fed += len;
    ws->in = data;
    ws->in_len = len;
    ws->heard = 1;
    ws->ping_unanswered = 0;
    int r = wslay_event_recv(ws->ctx);
    if (c->closed || !c->ws)
        return;
    ws->in = NULL;
    ws->in_len = 0;
    if (r < 0) {
        /* A frame wslay refuses (a control frame over 125 bytes or fragmented, a length
         * with its top bit set): 1002, then the end. */
        log_info("conn %llu: %s: WebSocket protocol error: closed (1002)",
                 (unsigned long long)c->id, c->addr);
        wslay_event_queue_close(ws->ctx, WSLAY_CODE_PROTOCOL_ERROR, NULL, 0);
        wslay_event_send(ws->ctx);
        c->stream_done = 1;
        client_close(c, 1);
        return;
    }
    ws_pump(c);
    stream_touch(c);
}

/* Whether the first tag of an element declares a default namespace. */
static int declares_default_ns(const char *p, size_t n)
{
    char quote = 0;
    for (size_t i = 1; i < n; i++) {
        char ch = p[i];
        if (quote) {
            if (ch == quote)
                quote = 0;
        } else if (ch == '"' || ch == '\'') {
            quote = ch;
        } else if (ch == '>') {
            return 0;
        } else if (strchr(" \t\r\n", ch) && i + 6 < n && memcmp(p + i + 1, "xmlns", 5) == 0) {
            size_t j = i + 6;
            while (j < n && strchr(" \t\r\n", p[j]))
                j++;
            if (j < n && p[j] == '=')
                return 1;
        }
    }
    return 0;
}

void ws_write_element(client_t *c, const char *data, size_t len)
{
    buf_t b = BUF_INIT;
    size_t nlen = 0;
    if (len && data[0] == '<' && first_name(data, len, &nlen) == data + 1 &&
        !declares_default_ns(data, len)) {
        buf_append(&b, data, 1 + nlen);
        buf_append_str(&b, " xmlns='" XML_NS_CLIENT "'");
        buf_append(&b, data + 1 + nlen, len - 1 - nlen);
        data = b.data;
        len = b.len;
    }
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)data, len};
    if (wslay_event_queue_msg(ws_ctx(c), &msg) == 0)
        ws_pump(c);
    buf_free(&b);
    stream_touch(c);
}

void ws_write_close(client_t *c)
{
    ws_t *ws = c->ws;
    if (!ws || !ws->upgraded)
        return;
    ws_write_element(c, "<close xmlns='" NS_FRAMING "'/>", sizeof "<close xmlns='" NS_FRAMING "'/>" - 1);
    wslay_event_queue_close(ws_ctx(c), WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
    ws_pump(c);
}

void ws_set_max_message(client_t *c, size_t max)
{
    if (c->ws && c->ws->ctx)
        wslay_event_config_set_max_recv_msg_length(c->ws->ctx, max);
}
