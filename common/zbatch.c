#include "zbatch.h"

#include <stdint.h>

static void put_len(buf_t *b, size_t len)
{
    unsigned char be[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                           (unsigned char)(len >> 8), (unsigned char)len};
    buf_append(b, be, 4);
}

void zbatch_append(buf_t *b, const zpart_t *parts, int nparts)
{
    if (!b->len)
        buf_append(b, (const unsigned char[]){ZBATCH_MAGIC}, 1);
    buf_append(b, (const unsigned char[]){(unsigned char)nparts}, 1);
    for (int i = 0; i < nparts; i++) {
        put_len(b, parts[i].len);
        buf_append(b, parts[i].data, parts[i].len);
    }
}

int zbatch_open(const void *data, size_t len, const zpart_t *prefix, zlink_cb cb, void *ud)
{
    const unsigned char *d = data, *end = d + len;
    if (len < 1 || *d++ != ZBATCH_MAGIC)
        return -1;
    while (d < end) {
        zpart_t parts[ZLINK_MAX_PARTS];
        int n = 0, nparts = *d++;
        if (prefix)
            parts[n++] = *prefix;
        if (nparts < 1 || n + nparts > ZLINK_MAX_PARTS)
            return -1;
        for (int i = 0; i < nparts; i++) {
            if (end - d < 4)
                return -1;
            size_t plen = (size_t)d[0] << 24 | (size_t)d[1] << 16 | (size_t)d[2] << 8 | d[3];
            d += 4;
            if ((size_t)(end - d) < plen)
                return -1;
            parts[n].data = d;
            parts[n].len = plen;
            n++;
            d += plen;
        }
        cb(ud, parts, n);
    }
    return 0;
}
