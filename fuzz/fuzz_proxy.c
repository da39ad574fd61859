/* libFuzzer harness for the PROXY protocol v1/v2 header parser (c2s-frontend/proxy.c).
 *
 * client.c relies on these properties when it reads a header from the socket in pieces:
 * - a complete header's length is within the input and within PROXY_MAX_HEADER;
 * - every strict prefix of a valid header asks for more bytes (0);
 * - once a prefix is invalid (-1) or complete (> 0), more bytes never change the verdict;
 * - the result describes a header: version 1 or 2, an address only when not local. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../c2s-frontend/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_proxy: check failed: %s (line %d)\n", #cond, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_info(const proxy_info_t *info)
{
    FUZZ_CHECK(info->version == 1 || info->version == 2);
    FUZZ_CHECK(memchr(info->addr, '\0', sizeof info->addr) != NULL);
    if (info->local)
        FUZZ_CHECK(info->addr[0] == '\0');
    else
        FUZZ_CHECK(info->addr[0] != '\0' && strchr(info->addr, ':') != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Nothing past one header's worth can matter; keep the quadratic check cheap. */
    if (size > PROXY_MAX_HEADER + 64)
        size = PROXY_MAX_HEADER + 64;
    /* An exact-size copy so ASan catches a read past what the parser was given. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);

    proxy_info_t full, part;
    int r = proxy_parse(buf, size, &full);
    FUZZ_CHECK(r >= -1);
    if (r > 0) {
        FUZZ_CHECK((size_t)r <= size && r <= PROXY_MAX_HEADER);
        check_info(&full);
    }
    for (size_t k = 0; k < size; k++) {
        int rk = proxy_parse(buf, k, &part);
        if (r > 0 && k < (size_t)r)
            FUZZ_CHECK(rk == 0);
        if (rk == -1)
            FUZZ_CHECK(r == -1);
        if (rk > 0) {
            FUZZ_CHECK(rk == r && part.version == full.version && part.local == full.local &&
                       strcmp(part.addr, full.addr) == 0);
        }
    }
    free(buf);
    return 0;
}
