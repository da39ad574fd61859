/* libFuzzer harness for what the upload process (upload/) reads from HTTP clients: the
 * request path of a slot, the PUT token of the Authorization header and its signature
 * check, the Range header (common/upslot.c), and the header of a stored file
 * (upload/store.c, which another process of the same store may have written).
 *
 * The first byte picks the parser; the rest is its input (a C string: it stops at a NUL).
 * Checked:
 * - a path that parses has a 32-hex-digit id and an acceptable name (no '/', not "..", no
 *   control character), and prefix/id/name parses again to the same;
 * - a token that parses is exactly what upslot_token_make writes for its fields, and a
 *   token signed here for the parsed fields verifies while one with any other id does not;
 * - a satisfiable range lies inside the file;
 * - a stored file's header that parses has its bounds and its data offset inside the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../upload/store.h"
#include "upslot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_upload: check failed: %s (line %d)\n", #cond, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void fuzz_path(const char *s)
{
    upslot_path_t p;
    if (upslot_path_parse(s, "/upload", &p) != 0)
        return;
    FUZZ_CHECK(strlen(p.id) == UPSLOT_ID_LEN && strspn(p.id, "0123456789abcdef") == UPSLOT_ID_LEN);
    FUZZ_CHECK(upslot_name_ok(p.name) && !strchr(p.name, '/'));
    char again[600];
    snprintf(again, sizeof again, "/upload/%s/%s", p.id, p.name);
    upslot_path_t q;
    FUZZ_CHECK(upslot_path_parse(again, "/upload", &q) == 0);
    FUZZ_CHECK(strcmp(p.id, q.id) == 0 && strcmp(p.name, q.name) == 0);
}

static void fuzz_token(const char *s)
{
    static upslot_token_t t;
    if (upslot_token_parse(s, &t) != 0)
        return;
    buf_t b = BUF_INIT;
    upslot_token_make(&b, t.expiry, t.size, t.ctype, t.bare, t.sig);
    FUZZ_CHECK(strcmp(b.data, s) == 0);
    buf_free(&b);
    (void)upslot_verify("secret", "0123456789abcdef0123456789abcdef", "a.txt", &t);
    char sig[UPSLOT_SIG_LEN + 1];
    FUZZ_CHECK(upslot_sign("secret", "0123456789abcdef0123456789abcdef", "a.txt", t.size, t.ctype,
                           t.expiry, t.bare, sig) == 0);
    memcpy(t.sig, sig, sizeof sig);
    FUZZ_CHECK(upslot_verify("secret", "0123456789abcdef0123456789abcdef", "a.txt", &t));
    FUZZ_CHECK(!upslot_verify("secret", "0123456789abcdef0123456789abcdee", "a.txt", &t));
    FUZZ_CHECK(!upslot_verify("other", "0123456789abcdef0123456789abcdef", "a.txt", &t));
}

static void fuzz_range(const char *s, long long size)
{
    long long off = -1, len = -1;
    int r = upslot_range_parse(s, size, &off, &len);
    if (r == 1)
        FUZZ_CHECK(off >= 0 && len >= 1 && off + len <= size);
}

static void fuzz_header(const uint8_t *data, size_t n)
{
    static store_file_t f;
    if (store_header_parse((const char *)data, n, &f) != 0)
        return;
    FUZZ_CHECK(f.bare[0] && strlen(f.bare) <= JID_MAX && strlen(f.name) <= UPSLOT_NAME_MAX);
    FUZZ_CHECK(strlen(f.ctype) <= UPSLOT_CTYPE_MAX && f.size >= 0 && f.created >= 0);
    FUZZ_CHECK(f.data_off > 0 && (size_t)f.data_off <= n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    switch (data[0] % 4) {
    case 0: fuzz_path(s); break;
    case 1: fuzz_token(s); break;
    case 2: fuzz_range(s, size > 1 ? (long long)data[1] * 1000 : 0); fuzz_range(s, 1); break;
    default: fuzz_header(data + 1, size - 1); break;
    }
    free(s);
    return 0;
}
