/* jid: RFC 7622 address splitting with RFC 6122-era stringprep preparation (libidn). */
#include "jid.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <stringprep.h>

/* Longest DNS label in bytes (RFC 1035 section 2.3.4). */
#define JID_LABEL_MAX 63

int jid_ascii_fast_path = 1;

/* Printable ASCII (0x20..0x7E) is most of what any server prepares (the 'to' of every
 * stanza), and there the three profiles reduce to a few rules (RFC 3454 and RFC 6122
 * appendixes A and B): no table maps or removes a printable ASCII character but B.2's
 * A-Z to a-z, which nodeprep and nameprep use and resourceprep does not; NFKC leaves ASCII
 * alone; no printable ASCII is unassigned or bidirectional (RandALCat); and of the
 * prohibited tables only nodeprep's own (the space, C.1.1, and " & ' / : < > @) holds any.
 * Returns the length written to out, -1 for a prohibited part, -2 when the input is not
 * all printable ASCII (libidn decides). */
static int jid_ascii_prep(char *out, const char *in, size_t n, const Stringprep_profile *profile)
{
    int fold = profile != stringprep_xmpp_resourceprep;
    int node = profile == stringprep_xmpp_nodeprep;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c > 0x7E)
            return -2;
        if (node && strchr(" \"&'/:<>@", c))
            return -1;
        out[i] = fold && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : (char)c;
    }
    out[n] = '\0';
    return (int)n;
}

/* Copies `in` (n bytes) into the 1024-byte work buffer and runs one stringprep profile on
 * it in place. STRINGPREP_NO_UNASSIGNED: JIDs end up in rosters and databases, so they get
 * the "stored strings" treatment of RFC 3454 section 7 (unassigned code points refused).
 * libidn also refuses invalid UTF-8 (STRINGPREP_ICONV_ERROR). */
static int jid_stringprep(char *out, const char *in, size_t n, const Stringprep_profile *profile)
{
    if (n == 0 || n > JID_PART_MAX)
        return -1;
    if (memchr(in, '\0', n))
        return -1;
    if (jid_ascii_fast_path) {
        int r = jid_ascii_prep(out, in, n, profile);
        if (r != -2)
            return r < 0 ? -1 : 0;
    }
    char work[JID_PART_MAX + 1];
    memcpy(work, in, n);
    work[n] = '\0';
    /* A result that would not fit in 1023 bytes comes back as STRINGPREP_TOO_SMALL_BUFFER,
     * which is just another failure here. */
    if (stringprep(work, sizeof work, STRINGPREP_NO_UNASSIGNED, profile) != STRINGPREP_OK)
        return -1;
    /* Mapping can delete every code point (e.g. a lone U+00AD soft hyphen). */
    if (work[0] == '\0')
        return -1;
    memcpy(out, work, strlen(work) + 1);
    return 0;
}

static int jid_prep_local_n(char *out, const char *in, size_t n)
{
    /* Nodeprep's own prohibition table already covers " & ' / : < > @ and the space
     * (RFC 6122 appendix A.5), so nothing is added here. */
    return jid_stringprep(out, in, n, stringprep_xmpp_nodeprep);
}

static int jid_prep_resource_n(char *out, const char *in, size_t n)
{
    return jid_stringprep(out, in, n, stringprep_xmpp_resourceprep);
}

static int jid_is_ascii_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* An IP-literal domainpart, "[" IPv6 "]" (RFC 7622 section 3.2, RFC 3986 section 3.2.2).
 * Stored in the canonical text form (RFC 5952) so that "[::A]", "[::a]" and "[0:0::a]"
 * compare equal. */
static int jid_prep_ipv6_literal(char *out, const char *in, size_t n)
{
    char addr[INET6_ADDRSTRLEN];
    unsigned char bin[16];
    if (n < 3 || in[n - 1] != ']' || n - 2 >= sizeof addr)
        return -1;
    memcpy(addr, in + 1, n - 2);
    addr[n - 2] = '\0';
    if (inet_pton(AF_INET6, addr, bin) != 1 || !inet_ntop(AF_INET6, bin, addr, sizeof addr))
        return -1;
    snprintf(out, JID_PART_MAX + 1, "[%s]", addr);
    return 0;
}

/* IDNA (RFC 3490 section 3.1, which RFC 7622 section 3.2 keeps): U+3002, U+FF0E and U+FF61
 * separate labels as '.' does. Nameprep maps U+FF0E to '.' but keeps U+3002 (and turns
 * U+FF61 into it), which would make "example\u3002com" a domain of its own; each becomes
 * '.' here, in place (the string only gets shorter). */
static void jid_map_label_dots(char *s)
{
    static const char *const dots[] = {"\xE3\x80\x82", "\xEF\xBC\x8E", "\xEF\xBD\xA1"};
    char *w = s;
    for (const char *r = s; *r;) {
        size_t i = 0;
        while (i < sizeof dots / sizeof dots[0] && strncmp(r, dots[i], 3) != 0)
            i++;
        if (i < sizeof dots / sizeof dots[0]) {
            *w++ = '.';
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* Checks a prepared domain name label by label: non-empty, at most 63 bytes, ASCII limited
 * to letters, digits and inner hyphens (the STD3 rules of RFC 1123 that IDNA2003 applies
 * with UseSTD3ASCIIRules; nameprep alone lets "@", spaces and controls through).
 * Non-ASCII bytes are left to nameprep. */
static int jid_check_labels(const char *d, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && d[i] != '.')
            continue;
        size_t len = i - start;
        if (len == 0 || len > JID_LABEL_MAX)
            return -1;
        if (d[start] == '-' || d[i - 1] == '-')
            return -1;
        for (size_t k = start; k < i; k++) {
            unsigned char c = (unsigned char)d[k];
            if (c < 0x80 && !jid_is_ascii_alnum(c) && c != '-')
                return -1;
        }
        start = i + 1;
    }
    return 0;
}

static int jid_prep_domain_n(char *out, const char *in, size_t n)
{
    if (n == 0 || n > JID_PART_MAX || memchr(in, '\0', n))
        return -1;
    if (in[0] == '[')
        return jid_prep_ipv6_literal(out, in, n);

    char work[JID_PART_MAX + 1];
    if (jid_stringprep(work, in, n, stringprep_nameprep) < 0)
        return -1;
    jid_map_label_dots(work);
    size_t len = strlen(work);
    /* A fully qualified name may carry the root's trailing dot; it is not part of the
     * domainpart (RFC 7622 section 3.2). Only one: "example.com.." stays invalid. */
    if (work[len - 1] == '.')
        work[--len] = '\0';
    if (len == 0)
        return -1;

    /* All digits and dots: it can only be meant as an IPv4 literal, and must be a valid one
     * (glibc's inet_pton also refuses leading zeros and octets over 255). */
    if (strspn(work, "0123456789.") == len) {
        unsigned char bin[4];
        if (inet_pton(AF_INET, work, bin) != 1)
            return -1;
    } else if (jid_check_labels(work, len) < 0) {
        return -1;
    }
    memcpy(out, work, len + 1);
    return 0;
}

int jid_prep_local(char *out, const char *in)
{
    return jid_prep_local_n(out, in, strnlen(in, JID_PART_MAX + 1));
}

int jid_prep_domain(char *out, const char *in)
{
    return jid_prep_domain_n(out, in, strnlen(in, JID_PART_MAX + 1));
}

int jid_prep_resource(char *out, const char *in)
{
    return jid_prep_resource_n(out, in, strnlen(in, JID_PART_MAX + 1));
}

int jid_parse(jid_t *out, const char *s)
{
    jid_t j;
    size_t len = strnlen(s, JID_MAX + 1);
    if (len == 0 || len > JID_MAX)
        return -1;

    /* RFC 7622 section 3.1: the resourcepart is everything after the first '/', so it may
     * itself contain '@' and '/'. The localpart ends at the first '@' before that '/'. */
    const char *slash = memchr(s, '/', len);
    size_t rest = slash ? (size_t)(slash - s) : len;
    const char *at = memchr(s, '@', rest);

    const char *dom = at ? at + 1 : s;
    size_t dom_len = rest - (size_t)(dom - s);

    /* Zeroed in full so that parsed JIDs can be compared with memcmp. */
    memset(&j, 0, sizeof j);
    /* A separator promises a non-empty part: "@d", "l@" and "d/" are all invalid, which the
     * n == 0 checks in the prep helpers take care of. */
    if (at && jid_prep_local_n(j.local, s, (size_t)(at - s)) < 0)
        return -1;
    if (jid_prep_domain_n(j.domain, dom, dom_len) < 0)
        return -1;
    if (slash && jid_prep_resource_n(j.resource, slash + 1, len - rest - 1) < 0)
        return -1;
    *out = j;
    return 0;
}

/* snprintf into a caller buffer; -1 when it did not fit (out is then "" if n > 0). */
static int jid_format_result(int r, char *out, size_t n)
{
    if (r < 0 || (size_t)r >= n) {
        if (n > 0)
            out[0] = '\0';
        return -1;
    }
    return r;
}

int jid_bare(const jid_t *jid, char *out, size_t n)
{
    int r;
    if (jid->local[0])
        r = snprintf(out, n, "%s@%s", jid->local, jid->domain);
    else
        r = snprintf(out, n, "%s", jid->domain);
    return jid_format_result(r, out, n);
}

int jid_full(const jid_t *jid, char *out, size_t n)
{
    int r = snprintf(out, n, "%s%s%s%s%s", jid->local, jid->local[0] ? "@" : "", jid->domain,
                     jid->resource[0] ? "/" : "", jid->resource);
    return jid_format_result(r, out, n);
}
