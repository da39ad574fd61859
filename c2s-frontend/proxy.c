/* PROXY protocol v1 (text) and v2 (binary) headers, checked strictly: a load balancer
 * that sends anything else is misconfigured, and a client that does is refused. */
#include "proxy.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A decimal port 0..65535 without sign, spaces or leading zeros (spec 2.1). */
static int parse_port(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= 65535 ? (int)v : -1;
}

static void format_addr(proxy_info_t *out, int v6, const char *ip, int port)
{
    snprintf(out->addr, sizeof out->addr, v6 ? "[%s]:%d" : "%s:%d", ip, port);
}

/* "PROXY TCP4 src dst sport dport\r\n", "PROXY TCP6 ...", or "PROXY UNKNOWN...\r\n". */
static int parse_v1(const unsigned char *buf, size_t len, proxy_info_t *out)
{
    static const char prefix[] = "PROXY ";
    size_t cmp = len < 6 ? len : 6;
    if (memcmp(buf, prefix, cmp) != 0)
        return -1;
    const unsigned char *crlf = NULL;
    for (size_t i = 0; i + 1 < len && i + 1 < PROXY_V1_MAX; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n') {
            crlf = buf + i;
            break;
        }
    }
    if (!crlf)
        return len >= PROXY_V1_MAX ? -1 : 0;
    size_t n = (size_t)(crlf - buf);
    char line[PROXY_V1_MAX + 1];
    memcpy(line, buf, n);
    line[n] = '\0';
    if (memchr(line, '\0', n) || memchr(line, '\n', n) || memchr(line, '\r', n))
        return -1;
    out->version = 1;
    if (strncmp(line + 6, "UNKNOWN", 7) == 0 && (line[13] == '\0' || line[13] == ' ')) {
        out->local = 1;
        return (int)n + 2;
    }
    /* Exactly five single-space-separated words after "PROXY". */
    char *words[6];
    int nw = 0;
    for (char *p = line + 6; p && nw < 6;) {
        words[nw++] = p;
        char *sp = strchr(p, ' ');
        if (sp)
            *sp++ = '\0';
        p = sp;
    }
    if (nw != 5)
        return -1;
    int v6;
    if (strcmp(words[0], "TCP4") == 0)
        v6 = 0;
    else if (strcmp(words[0], "TCP6") == 0)
        v6 = 1;
    else
        return -1;
    unsigned char a[16];
    int af = v6 ? AF_INET6 : AF_INET;
    int sport = parse_port(words[3]), dport = parse_port(words[4]);
    if (inet_pton(af, words[1], a) != 1 || inet_pton(af, words[2], a) != 1 || sport < 0 ||
        dport < 0)
        return -1;
    out->local = 0;
    format_addr(out, v6, words[1], sport);
    return (int)n + 2;
}

static int parse_v2(const unsigned char *buf, size_t len, proxy_info_t *out)
{
    size_t cmp = len < sizeof v2_sig ? len : sizeof v2_sig;
    if (memcmp(buf, v2_sig, cmp) != 0)
        return -1;
    if (len >= 13 && (buf[12] >> 4) != 2)
        return -1; /* version 2 only */
    if (len >= 13 && (buf[12] & 0x0F) > 1)
        return -1; /* commands: 0 LOCAL, 1 PROXY */
    if (len < 16)
        return 0;
    size_t plen = ((size_t)buf[14] << 8) | buf[15];
    if (plen > PROXY_V2_MAX_LEN)
        return -1;
    if (len < 16 + plen)
        return 0;
    out->version = 2;
    out->local = 1;
    const unsigned char *a = buf + 16;
    if ((buf[12] & 0x0F) == 1) {
        unsigned char fam = buf[13];
        char ip[INET6_ADDRSTRLEN];
        if (fam == 0x11) { /* TCP over IPv4: src, dst, sport, dport */
            if (plen < 12)
                return -1;
            inet_ntop(AF_INET, a, ip, sizeof ip);
            format_addr(out, 0, ip, (a[8] << 8) | a[9]);
            out->local = 0;
        } else if (fam == 0x21) { /* TCP over IPv6 */
            if (plen < 36)
                return -1;
            inet_ntop(AF_INET6, a, ip, sizeof ip);
            format_addr(out, 1, ip, (a[32] << 8) | a[33]);
            out->local = 0;
        } else if ((fam >> 4) > 3 || (fam & 0x0F) > 2) {
            return -1;
        }
        /* UNSPEC, UDP and unix sockets: accepted, the address is not one we can use. */
    }
    return (int)(16 + plen);
}

int proxy_parse(const unsigned char *buf, size_t len, proxy_info_t *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return 0;
    if (buf[0] == 'P')
        return parse_v1(buf, len, out);
    if (buf[0] == v2_sig[0])
        return parse_v2(buf, len, out);
    return -1;
}
