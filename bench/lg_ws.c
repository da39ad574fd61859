/* The client side of RFC 6455 for the generator's WebSocket clients (RFC 7395): the upgrade
 * request and its answer, masked frames out, the server's frames in. lg_conn.c puts this
 * under the same stream code the TCP clients use. */
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lg.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_PAYLOAD (16u << 20)

/* Masking keys and request keys: unpredictability does not matter to a load generator, so a
 * xorshift stream seeded from the clock is enough (and costs nothing per frame). */
static uint64_t rng_state;

static uint64_t rng(void)
{
    if (!rng_state) rng_state = now_us() | 1;
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

int ws_request(char *out, size_t outsz, const char *path, const char *host, char *accept,
               size_t acceptsz)
{
    unsigned char raw[16], digest[SHA_DIGEST_LENGTH];
    char key[32], cat[96];
    uint64_t a = rng(), b = rng();
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    b64_encode(raw, sizeof raw, key);
    snprintf(cat, sizeof cat, "%s" WS_GUID, key);
    SHA1((const unsigned char *)cat, strlen(cat), digest);
    if (acceptsz < 4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1) return -1;
    b64_encode(digest, sizeof digest, accept);
    int n = snprintf(out, outsz,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: xmpp\r\n\r\n",
                     path, host, key);
    return n > 0 && (size_t)n < outsz ? n : -1;
}

/* The value of header `name` in the head (case-insensitive name), trimmed; NULL if absent. */
static const char *header(const char *head, size_t len, const char *name, size_t *vl)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', len), *end = head + len;
    while (p && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol) break;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1, *e = eol;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *vl = (size_t)(e - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

const char *ws_check_response(const char *head, size_t len, const char *accept)
{
    size_t vl;
    const char *v;
    if (len < 12 || memcmp(head, "HTTP/1.1 101", 12) != 0) return "upgrade refused";
    v = header(head, len, "Sec-WebSocket-Accept", &vl);
    if (!v || vl != strlen(accept) || memcmp(v, accept, vl) != 0) return "bad Sec-WebSocket-Accept";
    v = header(head, len, "Sec-WebSocket-Protocol", &vl);
    if (!v || vl != 4 || strncasecmp(v, "xmpp", 4) != 0) return "subprotocol xmpp not chosen";
    return NULL;
}

size_t ws_frame(char *dst, int opcode, const char *payload, size_t n)
{
    unsigned char *d = (unsigned char *)dst;
    size_t h = 0;
    d[h++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        d[h++] = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        d[h++] = 0x80 | 126;
        d[h++] = (unsigned char)(n >> 8);
        d[h++] = (unsigned char)n;
    } else {
        d[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            d[h++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    uint32_t k32 = (uint32_t)rng();
    unsigned char key[4];
    memcpy(key, &k32, 4);
    memcpy(d + h, key, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        d[h + i] = (unsigned char)payload[i] ^ key[i & 3];
    return h + n;
}

int ws_parse(const unsigned char *b, size_t len, int *opcode, int *fin, uint64_t *plen)
{
    if (len < 2) return 0;
    if (b[0] & 0x70) return -1; /* no extension was negotiated */
    if (b[1] & 0x80) return -1; /* a server never masks (RFC 6455 5.1) */
    *opcode = b[0] & 0x0f;
    *fin = (b[0] & 0x80) != 0;
    uint64_t n = b[1] & 0x7f;
    int h = 2;
    if (n == 126) {
        if (len < 4) return 0;
        n = (uint64_t)b[2] << 8 | b[3];
        h = 4;
    } else if (n == 127) {
        if (len < 10) return 0;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | b[2 + i];
        h = 10;
    }
    if (*opcode >= 8 && (n > 125 || !*fin)) return -1;
    if (n > WS_MAX_PAYLOAD) return -1;
    *plen = n;
    return h;
}
