/* The PROXY protocol parser of the frontend (v1 and v2): golden headers, every truncation
 * of them (must ask for more, never accept or misread), and malformed input. */
#include <string.h>

#include "../../c2s-frontend/proxy.h"
#include "suites.h"

typedef struct {
    const char *name;
    const unsigned char *data;
    size_t len;
    int want;         /* header length, or -1 */
    int local;
    const char *addr; /* when valid and not local */
} proxy_case_t;

#define TXT(s) (const unsigned char *)(s), sizeof(s) - 1
#define V2SIG 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A

static const unsigned char v2_tcp4[] = {V2SIG, 0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 1,
                                        10,    0,    0,    1,    0xC3, 0x50, 0x14, 0x66};
static const unsigned char v2_tcp6[] = {
    V2SIG, 0x21, 0x21, 0x00, 0x24,                                     /* header, 36 bytes */
    0x20,  0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5,       /* 2001:db8::5 */
    0x20,  0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6,       /* 2001:db8::6 */
    0x04,  0xD2, 0x14, 0x66};                                          /* 1234, 5222 */
static const unsigned char v2_local[] = {V2SIG, 0x20, 0x00, 0x00, 0x00};
/* PROXY with a TLV after the addresses (haproxy's proxy-v2-options): skipped. */
static const unsigned char v2_tlv[] = {V2SIG, 0x21, 0x11, 0x00, 0x11, 127, 0, 0, 1, 127, 0, 0, 1,
                                       0x30,  0x39, 0x14, 0x66, 0x04, 0x00, 0x02, 'h', 'i'};
static const unsigned char v2_unspec[] = {V2SIG, 0x21, 0x00, 0x00, 0x00};
static const unsigned char v2_bad_version[] = {V2SIG, 0x11, 0x11, 0x00, 0x0C, 1, 2, 3, 4,
                                               1,     2,    3,    4,    0,    1, 0, 1};
static const unsigned char v2_bad_cmd[] = {V2SIG, 0x22, 0x11, 0x00, 0x0C, 1, 2, 3, 4,
                                           1,     2,    3,    4,    0,    1, 0, 1};
static const unsigned char v2_short_addr[] = {V2SIG, 0x21, 0x11, 0x00, 0x04, 1, 2, 3, 4};
static const unsigned char v2_too_long[] = {V2SIG, 0x21, 0x11, 0xFF, 0xFF};
static const unsigned char v2_bad_sig[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
                                           0x55, 0x49, 0x54, 0x0B, 0x21, 0x00, 0x00, 0x00};

static const proxy_case_t cases[] = {
    {"v1 tcp4", TXT("PROXY TCP4 192.0.2.1 10.0.0.1 50000 5222\r\n"), 42, 0, "192.0.2.1:50000"},
    {"v1 tcp6", TXT("PROXY TCP6 2001:db8::5 2001:db8::6 1234 5222\r\n"), 46, 0,
     "[2001:db8::5]:1234"},
    {"v1 unknown", TXT("PROXY UNKNOWN\r\n"), 15, 1, NULL},
    {"v1 unknown with addresses", TXT("PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n"), 39, 1,
     NULL},
    {"v1 bad family", TXT("PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n"), -1, 0, NULL},
    {"v1 bad address", TXT("PROXY TCP4 1.2.3.400 1.2.3.4 1 2\r\n"), -1, 0, NULL},
    {"v1 v6 address as tcp4", TXT("PROXY TCP4 ::1 ::1 1 2\r\n"), -1, 0, NULL},
    {"v1 port out of range", TXT("PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n"), -1, 0, NULL},
    {"v1 port leading zero", TXT("PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n"), -1, 0, NULL},
    {"v1 too few words", TXT("PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n"), -1, 0, NULL},
    {"v1 too many words", TXT("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n"), -1, 0, NULL},
    {"v1 double space", TXT("PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n"), -1, 0, NULL},
    {"v1 lowercase", TXT("proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n"), -1, 0, NULL},
    {"v1 bare LF", TXT("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n"), 0, 0, NULL},
    {"v1 NUL inside", (const unsigned char *)"PROXY TCP4 1.2.3.4\0 1.2.3.4 1 2\r\n", 34, -1, 0,
     NULL},
    {"xml instead", TXT("<?xml version='1.0'?><stream:stream>"), -1, 0, NULL},
    {"tls instead", TXT("\x16\x03\x01\x02\x00\x01"), -1, 0, NULL},
    {"v2 tcp4", v2_tcp4, sizeof v2_tcp4, 28, 0, "192.0.2.1:50000"},
    {"v2 tcp6", v2_tcp6, sizeof v2_tcp6, 52, 0, "[2001:db8::5]:1234"},
    {"v2 local", v2_local, sizeof v2_local, 16, 1, NULL},
    {"v2 tlv", v2_tlv, sizeof v2_tlv, 33, 0, "127.0.0.1:12345"},
    {"v2 unspec", v2_unspec, sizeof v2_unspec, 16, 1, NULL},
    {"v2 bad version", v2_bad_version, sizeof v2_bad_version, -1, 0, NULL},
    {"v2 bad command", v2_bad_cmd, sizeof v2_bad_cmd, -1, 0, NULL},
    {"v2 address too short", v2_short_addr, sizeof v2_short_addr, -1, 0, NULL},
    {"v2 length over the bound", v2_too_long, sizeof v2_too_long, -1, 0, NULL},
    {"v2 bad signature", v2_bad_sig, sizeof v2_bad_sig, -1, 0, NULL},
};

START_TEST(test_proxy_case)
{
    const proxy_case_t *t = &cases[_i];
    proxy_info_t info;
    int got = proxy_parse(t->data, t->len, &info);
    ck_assert_msg(got == t->want, "%s: got %d, want %d", t->name, got, t->want);
    if (got > 0) {
        ck_assert_int_eq(info.local, t->local);
        if (t->addr)
            ck_assert_str_eq(info.addr, t->addr);
        /* The bytes after the header are not the parser's business. */
        unsigned char more[256];
        memcpy(more, t->data, t->len);
        memcpy(more + t->len, "<stream", 7);
        ck_assert_int_eq(proxy_parse(more, t->len + 7, &info), got);
    }
}
END_TEST

/* Every proper prefix of a valid header asks for more bytes. */
START_TEST(test_proxy_truncations)
{
    const proxy_case_t *t = &cases[_i];
    if (t->want <= 0)
        return;
    for (size_t n = 0; n < (size_t)t->want; n++) {
        proxy_info_t info;
        ck_assert_msg(proxy_parse(t->data, n, &info) == 0, "%s: prefix of %zu bytes", t->name, n);
    }
}
END_TEST

/* A v1 line that never ends is refused once it passes the 107 bytes the spec allows. */
START_TEST(test_proxy_v1_too_long)
{
    unsigned char line[200];
    memcpy(line, "PROXY TCP4 ", 11);
    memset(line + 11, '1', sizeof line - 11);
    proxy_info_t info;
    ck_assert_int_eq(proxy_parse(line, PROXY_V1_MAX - 1, &info), 0);
    ck_assert_int_eq(proxy_parse(line, sizeof line, &info), -1);
}
END_TEST

Suite *make_proxy_suite(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("parse");
    size_t n = sizeof cases / sizeof cases[0];
    tcase_add_loop_test(tc, test_proxy_case, 0, (int)n);
    tcase_add_loop_test(tc, test_proxy_truncations, 0, (int)n);
    tcase_add_test(tc, test_proxy_v1_too_long);
    suite_add_tcase(s, tc);
    return s;
}
