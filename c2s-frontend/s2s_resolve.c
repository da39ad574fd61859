/* s2s_resolve: where to connect for a remote domain (s2s_resolve.h), and the dialback key
 * of XEP-0185. */
#include "s2s_resolve.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "log.h"
#include "util.h"

#define S2S_STATIC_MAX 256
#define S2S_DNS_SERVERS_MAX 8

const config_key_t s2s_resolve_config_keys[] = {
    CONFIG_STR("s2s_static_hosts", "",
               "where to connect for some remote domains instead of DNS: comma-separated domain=host:port ([v6]:port; domain=tls:host:port for direct TLS)"),
    CONFIG_STR("s2s_dns_servers", "",
               "DNS servers for server-to-server lookups, comma-separated ip:port ([v6]:port) (empty: the system's resolv.conf)"),
    CONFIG_END,
};

/* ---- parsing of the keys ---- */

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Trims spaces on both sides of s[0..*n). */
static const char *trim(const char *s, size_t *n)
{
    while (*n && isspace((unsigned char)*s)) {
        s++;
        (*n)--;
    }
    while (*n && isspace((unsigned char)s[*n - 1]))
        (*n)--;
    return s;
}

/* A DNS name: labels of letters, digits, '-' and '_' (1..63 each), dots between, at most
 * 253 characters; a final dot is not accepted. */
static int valid_hostname(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (isalnum(ch) || ch == '-' || ch == '_') {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0;
}

/* A domain as written in s2s_static_hosts: a DNS name, or any UTF-8 (an internationalised
 * domain as the stanzas carry it) without spaces or the list's separators. */
static int valid_domain(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (ch >= 0x80 || isalnum(ch) || ch == '-' || ch == '_') {
            label++;
        } else {
            return 0;
        }
    }
    return label > 0;
}

/* "host:port" or "[v6]:port" -> host (brackets removed), port. `need_port`: a missing
 * ":port" is an error, else *port is left alone. *is_v6 tells a bracketed host. */
static int parse_hostport(const char *s, size_t n, char *host, size_t hostlen,
                          unsigned short *port, int need_port, int *is_v6, const char **why)
{
    const char *h, *p = NULL;
    size_t hl;
    *is_v6 = 0;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) {
            *why = "unclosed '['";
            return -1;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        size_t rest = n - (size_t)(close + 1 - s);
        if (rest) {
            if (close[1] != ':') {
                *why = "expected ':port' after ']'";
                return -1;
            }
            p = close + 2;
        }
        *is_v6 = 1;
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) {
            *why = "an IPv6 address goes in brackets: [v6]:port";
            return -1;
        }
        h = s;
        hl = colon ? (size_t)(colon - s) : n;
        p = colon ? colon + 1 : NULL;
    }
    if (hl == 0 || hl >= hostlen) {
        *why = hl == 0 ? "empty host" : "host too long";
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (!p) {
        if (need_port) {
            *why = "missing ':port'";
            return -1;
        }
        return 0;
    }
    size_t pl = n - (size_t)(p - s);
    unsigned long v = 0;
    if (pl == 0 || pl > 5) {
        *why = "bad port";
        return -1;
    }
    for (size_t i = 0; i < pl; i++) {
        if (!isdigit((unsigned char)p[i])) {
            *why = "bad port";
            return -1;
        }
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    if (v == 0 || v > 65535) {
        *why = "port out of range (1..65535)";
        return -1;
    }
    *port = (unsigned short)v;
    return 0;
}

int s2s_static_hosts_parse(const char *value, s2s_static_host_t *out, int max, char *err,
                           size_t errlen)
{
    int count = 0;
    const char *s = value ? value : "";
    if (is_blank(s, strlen(s)))
        return 0;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        const char *e = trim(s, &n);
        const char *why = NULL;
        const char *eq = memchr(e, '=', n);
        if (n == 0) {
            why = "empty entry";
            goto bad;
        }
        if (!eq) {
            why = "expected domain=host:port";
            goto bad;
        }
        size_t dl = (size_t)(eq - e), rl = n - dl - 1;
        const char *d = trim(e, &dl), *r = trim(eq + 1, &rl);
        if (!valid_domain(d, dl)) {
            why = "bad domain";
            goto bad;
        }
        if (count >= max) {
            why = "too many entries";
            goto bad;
        }
        s2s_static_host_t *t = &out[count];
        memset(t, 0, sizeof *t);
        for (size_t i = 0; i < dl; i++)
            t->domain[i] = (char)tolower((unsigned char)d[i]);
        t->domain[dl] = '\0';
        for (int i = 0; i < count; i++)
            if (strcmp(out[i].domain, t->domain) == 0) {
                why = "domain listed twice";
                goto bad;
            }
        if (rl >= 4 && strncmp(r, "tls:", 4) == 0) {
            t->direct_tls = 1;
            r += 4;
            rl -= 4;
        }
        int v6;
        if (parse_hostport(r, rl, t->host, sizeof t->host, &t->port, 1, &v6, &why) < 0)
            goto bad;
        unsigned char a[16];
        if (v6 ? inet_pton(AF_INET6, t->host, a) != 1
               : !(inet_pton(AF_INET, t->host, a) == 1 || valid_hostname(t->host, strlen(t->host)))) {
            why = v6 ? "bad IPv6 address" : "bad host name";
            goto bad;
        }
        count++;
        if (!comma)
            return count;
        s = comma + 1;
        continue;
    bad:
        snprintf(err, errlen, "s2s_static_hosts: bad entry '%.*s': %s", (int)(n > 200 ? 200 : n), e,
                 why);
        return -1;
    }
}

int s2s_dns_servers_parse(const char *value, char *out, size_t outlen, char *err,
                          size_t errlen)
{
    const char *s = value ? value : "";
    size_t used = 0;
    int count = 0;
    out[0] = '\0';
    if (is_blank(s, strlen(s)))
        return 0;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        const char *e = trim(s, &n);
        const char *why = NULL;
        char host[64];
        unsigned short port = 53;
        unsigned char a[16];
        int v6, w;
        if (n == 0) {
            why = "empty entry";
            goto bad;
        }
        if (parse_hostport(e, n, host, sizeof host, &port, 0, &v6, &why) < 0)
            goto bad;
        if (inet_pton(v6 ? AF_INET6 : AF_INET, host, a) != 1) {
            why = v6 ? "bad IPv6 address" : "not an IP address (ip:port, [v6]:port)";
            goto bad;
        }
        if (++count > S2S_DNS_SERVERS_MAX) {
            why = "too many servers";
            goto bad;
        }
        w = snprintf(out + used, outlen - used, v6 ? "%s[%s]:%u" : "%s%s:%u", used ? "," : "",
                     host, (unsigned)port);
        if (w < 0 || (size_t)w >= outlen - used) {
            why = "list too long";
            goto bad;
        }
        used += (size_t)w;
        if (!comma)
            return 0;
        s = comma + 1;
        continue;
    bad:
        snprintf(err, errlen, "s2s_dns_servers: bad entry '%.*s': %s", (int)(n > 200 ? 200 : n), e,
                 why);
        return -1;
    }
}

/* ---- XEP-0185 ---- */

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void s2s_dialback_key(const char *secret, const char *receiving, const char *originating,
                      const char *stream_id, char out[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    char key[65];
    /* Section 2: the secret hashed with SHA-256, in hexadecimal, is the HMAC key; the
     * message is "Receiving Originating StreamID" with single spaces. */
    if (EVP_Digest(secret, strlen(secret), digest, &dlen, EVP_sha256(), NULL) != 1 || dlen != 32)
        log_fatal("s2s_dialback_key: SHA-256 failed");
    hex(digest, 32, key);
    size_t rl = strlen(receiving), ol = strlen(originating), il = strlen(stream_id);
    size_t ml = rl + ol + il + 2;
    char *msg = xmalloc(ml);
    memcpy(msg, receiving, rl);
    msg[rl] = ' ';
    memcpy(msg + rl + 1, originating, ol);
    msg[rl + 1 + ol] = ' ';
    memcpy(msg + rl + ol + 2, stream_id, il);
    if (!HMAC(EVP_sha256(), key, 64, (const unsigned char *)msg, ml, digest, &dlen) || dlen != 32)
        log_fatal("s2s_dialback_key: HMAC-SHA256 failed");
    free(msg);
    hex(digest, 32, out);
}
