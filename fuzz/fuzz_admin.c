/* libFuzzer harness for the admin endpoint's request checks (common/adminproto.c), which
 * read what any client of admin_bind sends. The input is split into frames at each 0xFF
 * byte (a byte UTF-8 never holds). Checked:
 * - an accepted request has the frames given, each copied whole and NUL-terminated, within
 *   the bounds (ADMIN_MAX_ARGS, ADMIN_ARG_MAX, ADMIN_REQUEST_MAX), without NUL, and text
 *   that adminproto_text_ok accepts;
 * - a refused request says why;
 * - adminproto_text_ok agrees with a plain reference decoder. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adminproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_admin: check failed: %s (line %d)\n", #cond, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A second, independent reading of RFC 3629 (code point by code point). */
static int reference_text_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len;
        if (s[i] < 0x80)
            cp = s[i], len = 1;
        else if ((s[i] & 0xe0) == 0xc0)
            cp = s[i] & 0x1f, len = 2;
        else if ((s[i] & 0xf0) == 0xe0)
            cp = s[i] & 0x0f, len = 3;
        else if ((s[i] & 0xf8) == 0xf0)
            cp = s[i] & 0x07, len = 4;
        else
            return 0;
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        if (cp < 0x20 ? cp != '\t' : (cp >= 0x7f && cp < 0xa0))
            return 0;
        i += len;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zpart_t parts[ADMIN_MAX_ARGS + 4];
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && n < (int)(sizeof parts / sizeof parts[0]); i++) {
        if (i == size || data[i] == 0xff) {
            parts[n].data = data + start;
            parts[n].len = i - start;
            n++;
            start = i + 1;
        }
    }
    FUZZ_CHECK(adminproto_text_ok((const char *)data, size) == reference_text_ok(data, size));
    static admin_request_t r;
    const char *why = NULL;
    if (adminproto_parse(&r, parts, n, &why) < 0) {
        FUZZ_CHECK(why && *why);
        return 0;
    }
    FUZZ_CHECK(r.argc == n && n >= 1 && n <= ADMIN_MAX_ARGS);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(strlen(r.argv[i]) == parts[i].len);
        FUZZ_CHECK(parts[i].len <= ADMIN_ARG_MAX);
        FUZZ_CHECK(memcmp(r.argv[i], parts[i].data, parts[i].len) == 0);
        FUZZ_CHECK(reference_text_ok(parts[i].data, parts[i].len));
        total += parts[i].len;
    }
    FUZZ_CHECK(total <= ADMIN_REQUEST_MAX && parts[0].len > 0);
    return 0;
}
