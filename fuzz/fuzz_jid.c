/* libFuzzer harness for JID preparation (common/jid.c, libidn stringprep).
 *
 * The input is taken as one string (it stops at a NUL, as a C string would). Checked:
 * - a parsed JID has a domain, and every part is at most JID_PART_MAX bytes;
 * - preparation is idempotent: the full and the bare form of a parsed JID parse again
 *   to the same parts (routing compares prepared JIDs byte for byte);
 * - each part's own prep function, applied to the whole input, gives a result that
 *   prepares to itself;
 * - one domain has one prepared form: no IDNA label separator other than '.' is left
 *   (U+3002, U+FF0E, U+FF61 separate labels, RFC 3490 3.1), and an IPv6 literal is in its
 *   canonical text form (RFC 5952), so that equal domains compare equal byte for byte;
 * - the printable-ASCII fast path gives exactly what libidn gives (jid_ascii_fast_path). */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, s)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_jid: check failed: %s (line %d) for '%s'\n", #cond, __LINE__,   \
                    (s));                                                                          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef int (*prep_fn)(char *out, const char *in);

static void check_domain(const char *d)
{
    FUZZ_CHECK(!strstr(d, "\xE3\x80\x82") && !strstr(d, "\xEF\xBC\x8E") &&
                   !strstr(d, "\xEF\xBD\xA1"),
               d);
    if (d[0] == '[') {
        char addr[INET6_ADDRSTRLEN], canon[INET6_ADDRSTRLEN + 2];
        unsigned char bin[16];
        size_t n = strlen(d);
        FUZZ_CHECK(n >= 3 && n - 2 < sizeof addr && d[n - 1] == ']', d);
        memcpy(addr, d + 1, n - 2);
        addr[n - 2] = '\0';
        FUZZ_CHECK(inet_pton(AF_INET6, addr, bin) == 1, d);
        FUZZ_CHECK(inet_ntop(AF_INET6, bin, addr, sizeof addr) != NULL, d);
        snprintf(canon, sizeof canon, "[%s]", addr);
        FUZZ_CHECK(strcmp(canon, d) == 0, d);
    }
}

static void check_prep(prep_fn prep, const char *in)
{
    char once[JID_PART_MAX + 1], twice[JID_PART_MAX + 1];
    if (prep(once, in) < 0)
        return;
    size_t n = strlen(once);
    FUZZ_CHECK(n >= 1 && n <= JID_PART_MAX, in);
    FUZZ_CHECK(prep(twice, once) == 0, once);
    FUZZ_CHECK(strcmp(once, twice) == 0, once);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Anything longer than a JID is refused on length alone; a little more covers that. */
    if (size > JID_MAX + 16)
        size = JID_MAX + 16;
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    static jid_t j, again;
    static char full[JID_MAX + 1], bare[JID_MAX + 1];
    if (jid_parse(&j, s) == 0) {
        FUZZ_CHECK(j.domain[0] != '\0', s);
        check_domain(j.domain);
        FUZZ_CHECK(strlen(j.local) <= JID_PART_MAX && strlen(j.domain) <= JID_PART_MAX &&
                       strlen(j.resource) <= JID_PART_MAX,
                   s);
        FUZZ_CHECK(jid_full(&j, full, sizeof full) > 0, s);
        FUZZ_CHECK(jid_parse(&again, full) == 0, full);
        FUZZ_CHECK(memcmp(&j, &again, sizeof j) == 0, full);
        FUZZ_CHECK(jid_bare(&j, bare, sizeof bare) > 0, s);
        FUZZ_CHECK(jid_parse(&again, bare) == 0, bare);
        FUZZ_CHECK(strcmp(again.local, j.local) == 0 && strcmp(again.domain, j.domain) == 0 &&
                       again.resource[0] == '\0',
                   bare);
        /* A buffer one byte short is refused, with "" left in it. */
        size_t flen = strlen(full);
        FUZZ_CHECK(jid_full(&j, full, flen) == -1 && full[0] == '\0', s);
    }
    check_prep(jid_prep_local, s);
    check_prep(jid_prep_domain, s);
    char dom[JID_PART_MAX + 1];
    if (jid_prep_domain(dom, s) == 0)
        check_domain(dom);
    check_prep(jid_prep_resource, s);
    /* Fast path and libidn agree, part by part and for the whole JID. */
    static const prep_fn preps[] = {jid_prep_local, jid_prep_domain, jid_prep_resource};
    static char fast[JID_PART_MAX + 1], slow[JID_PART_MAX + 1];
    for (size_t i = 0; i < sizeof preps / sizeof preps[0]; i++) {
        jid_ascii_fast_path = 1;
        int rf = preps[i](fast, s);
        jid_ascii_fast_path = 0;
        int rs = preps[i](slow, s);
        FUZZ_CHECK(rf == rs && (rf < 0 || strcmp(fast, slow) == 0), s);
    }
    jid_ascii_fast_path = 0;
    int ps = jid_parse(&again, s);
    jid_ascii_fast_path = 1;
    FUZZ_CHECK(ps == jid_parse(&j, s) && (ps < 0 || memcmp(&j, &again, sizeof j) == 0), s);
    free(s);
    return 0;
}
