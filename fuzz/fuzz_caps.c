/* libFuzzer harness for entity capabilities verification (session-router/core/capsver.c),
 * which reads what a client answers to the server's disco#info query.
 *
 * Input: a first line "HASH VER", then a disco#info answer as XML (parsed as the router
 * parses a stanza). Checked: verification never crashes or leaks; an accepted answer gives
 * sorted, distinct features; the result is the same when asked twice; and an answer
 * accepted for one ver is refused for another. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capsver.h"
#include "stanza.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_caps: check failed: %s (line %d)\n", #cond, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl || nl - data > 200)
        return 0;
    char line[201];
    memcpy(line, data, (size_t)(nl - data));
    line[nl - data] = '\0';
    char *ver = strchr(line, ' ');
    if (!ver)
        return 0;
    *ver++ = '\0';
    xml_node_t *q = stanza_parse((const char *)nl + 1, size - (size_t)(nl + 1 - data));
    if (!q)
        return 0;
    char **f = NULL, **g = NULL;
    size_t n = 0, m = 0;
    int ok = capsver_check(q, line, ver, &f, &n);
    FUZZ_CHECK(ok == capsver_check(q, line, ver, &g, &m));
    if (ok) {
        FUZZ_CHECK(n == m);
        for (size_t i = 0; i < n; i++) {
            FUZZ_CHECK(strcmp(f[i], g[i]) == 0);
            if (i)
                FUZZ_CHECK(strcmp(f[i - 1], f[i]) < 0);
        }
        char **h = NULL;
        size_t k = 0;
        FUZZ_CHECK(!capsver_check(q, line, "not-the-ver", &h, &k));
        capsver_free(f, n);
        capsver_free(g, m);
    }
    xml_node_free(&q);
    return 0;
}
