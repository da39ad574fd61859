#include "adminproto.h"

#include <string.h>

int adminproto_text_ok(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return 0;
            i++;
            continue;
        }
        size_t len;
        unsigned cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (cp >= 0x80 && cp < 0xa0))
            return 0;
        i += len;
    }
    return 1;
}

int adminproto_parse(admin_request_t *r, const zpart_t *parts, int nparts, const char **why)
{
    r->argc = 0;
    if (nparts < 1 || parts[0].len == 0) {
        *why = "no command";
        return -1;
    }
    if (nparts > ADMIN_MAX_ARGS) {
        *why = "too many arguments";
        return -1;
    }
    size_t off = 0;
    for (int i = 0; i < nparts; i++) {
        size_t n = parts[i].len;
        if (n > ADMIN_ARG_MAX) {
            *why = "an argument is too long";
            return -1;
        }
        if (off + n > ADMIN_REQUEST_MAX) {
            *why = "the request is too long";
            return -1;
        }
        if (n && memchr(parts[i].data, '\0', n)) {
            *why = "an argument holds a NUL byte";
            return -1;
        }
        if (!adminproto_text_ok(parts[i].data, n)) {
            *why = "an argument is not UTF-8 text";
            return -1;
        }
        char *dst = r->store + off + (size_t)i;
        if (n)
            memcpy(dst, parts[i].data, n);
        dst[n] = '\0';
        r->argv[i] = dst;
        off += n;
    }
    r->argc = nparts;
    return 0;
}
