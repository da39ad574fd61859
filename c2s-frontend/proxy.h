/* proxy: the PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that a
 * load balancer sends first on each connection, so that logs and limits see the client's
 * address instead of the balancer's. A pure parser: no I/O, no allocation. */
#ifndef C2S_PROXY_H
#define C2S_PROXY_H

#include <stddef.h>

/* v1 lines are at most 107 bytes (spec 2.1); v2 headers are 16 bytes plus a length, which
 * we bound so that a header is read in one small buffer (TLVs of this size are plenty). */
#define PROXY_V1_MAX 107
#define PROXY_V2_MAX_LEN 1024
#define PROXY_MAX_HEADER (16 + PROXY_V2_MAX_LEN)

typedef struct {
    int version; /* 1 or 2 */
    int local;   /* no client address: v2 LOCAL (health checks), v1 UNKNOWN, or a family
                    other than TCP over IPv4/IPv6; the connection's own address stands */
    char addr[64]; /* "ip:port" or "[ipv6]:port" of the client, "" when local */
} proxy_info_t;

/* Parses the header at the start of buf[0..len). Returns its length (> 0) when complete
 * and valid, 0 when more bytes are needed, -1 when this is not a valid PROXY header. */
int proxy_parse(const unsigned char *buf, size_t len, proxy_info_t *out);

#endif
