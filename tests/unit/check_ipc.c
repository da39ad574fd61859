/* The frontend-router codec: round trips, every truncation, garbage and bound checks. */
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "suites.h"

static size_t build_stanza(unsigned char *out)
{
    ipc_hdr_t h;
    ipc_hdr_init(&h, IPC_STANZA, 0x0102030405060708ULL);
    h.seq = 0xA1B2C3D4u;
    h.kind = IPC_KIND_MESSAGE;
    h.stype = IPC_ST_CHAT;
    ck_assert_int_eq(ipc_hdr_set(&h, 0, "juliet@example.com"), 0);
    ck_assert_int_eq(ipc_hdr_set(&h, 1, "romeo@example.net/orchard"), 0);
    ck_assert_int_eq(ipc_hdr_set(&h, 2, "id-1"), 0);
    return ipc_encode(&h, out);
}

START_TEST(test_round_trip)
{
    unsigned char buf[IPC_HDR_MAX];
    size_t n = build_stanza(buf);
    ck_assert_uint_eq(n, IPC_HDR_FIXED + 3 * 2 + 18 + 25 + 4);
    ipc_hdr_t d;
    ck_assert_int_eq(ipc_decode(&d, buf, n), 0);
    ck_assert_int_eq(d.type, IPC_STANZA);
    ck_assert_uint_eq(d.conn, 0x0102030405060708ULL);
    ck_assert_uint_eq(d.seq, 0xA1B2C3D4u);
    ck_assert_int_eq(d.kind, IPC_KIND_MESSAGE);
    ck_assert_int_eq(d.stype, IPC_ST_CHAT);
    ck_assert_int_eq(d.nfields, 3);
    ck_assert_str_eq(d.field[0], "juliet@example.com");
    ck_assert_str_eq(d.field[1], "romeo@example.net/orchard");
    ck_assert_str_eq(d.field[2], "id-1");
    ck_assert_str_eq(d.field[3], "");
}
END_TEST

START_TEST(test_wire_layout)
{
    unsigned char buf[IPC_HDR_MAX];
    build_stanza(buf);
    /* Network byte order as docs/PROTOCOL.md describes it. */
    ck_assert_int_eq(buf[0], 'X');
    ck_assert_int_eq(buf[1], IPC_VERSION);
    ck_assert_int_eq(buf[2], IPC_STANZA);
    ck_assert_int_eq(buf[4], 0x01);
    ck_assert_int_eq(buf[11], 0x08);
    ck_assert_int_eq(buf[12], 0xA1);
    ck_assert_int_eq(buf[19], 3);
    ck_assert_int_eq(buf[20], 0);
    ck_assert_int_eq(buf[21], 18);
    ck_assert_int_eq(memcmp(buf + 22, "juliet@example.com", 18), 0);
}
END_TEST

START_TEST(test_every_truncation_rejected)
{
    unsigned char buf[IPC_HDR_MAX];
    size_t n = build_stanza(buf);
    ipc_hdr_t d;
    for (size_t len = 0; len < n; len++)
        ck_assert_msg(ipc_decode(&d, buf, len) == -1, "truncated at %zu accepted", len);
}
END_TEST

START_TEST(test_leftover_rejected)
{
    unsigned char buf[IPC_HDR_MAX + 1];
    size_t n = build_stanza(buf);
    buf[n] = 0;
    ipc_hdr_t d;
    ck_assert_int_eq(ipc_decode(&d, buf, n + 1), -1);
}
END_TEST

/* One byte of the header changed to a bad value each. */
static const struct {
    size_t offset;
    unsigned char value;
} bad_bytes[] = {
    {0, 'Y'},           /* magic */
    {1, 2},             /* version */
    {2, 0},             /* type 0 */
    {2, IPC_TYPE_MAX + 1},
    {16, 4},            /* kind */
    {17, IPC_ST_MAX + 1}, /* stanza type */
    {19, IPC_MAX_FIELDS + 1}, /* field count */
    {19, 4},            /* claims a fourth field that is not there */
    {21, 200},          /* first field longer than the rest */
};

START_TEST(test_bad_bytes)
{
    unsigned char buf[IPC_HDR_MAX];
    size_t n = build_stanza(buf);
    buf[bad_bytes[_i].offset] = bad_bytes[_i].value;
    ipc_hdr_t d;
    ck_assert_int_eq(ipc_decode(&d, buf, n), -1);
}
END_TEST

START_TEST(test_nul_in_field_rejected)
{
    unsigned char buf[IPC_HDR_MAX];
    size_t n = build_stanza(buf);
    buf[22 + 6] = '\0'; /* inside "juliet@..." */
    ipc_hdr_t d;
    ck_assert_int_eq(ipc_decode(&d, buf, n), -1);
}
END_TEST

START_TEST(test_field_bounds)
{
    ipc_hdr_t h;
    ipc_hdr_init(&h, IPC_BIND, 7);
    char *big = malloc(IPC_FIELD_MAX + 2);
    memset(big, 'a', IPC_FIELD_MAX + 1);
    big[IPC_FIELD_MAX + 1] = '\0';
    ck_assert_int_eq(ipc_hdr_set(&h, 0, big), -1);
    big[IPC_FIELD_MAX] = '\0';
    ck_assert_int_eq(ipc_hdr_set(&h, 0, big), 0);
    ck_assert_int_eq(ipc_hdr_set(&h, IPC_MAX_FIELDS, "x"), -1);
    ck_assert_int_eq(ipc_hdr_set(&h, -1, "x"), -1);
    unsigned char buf[IPC_HDR_MAX];
    size_t n = ipc_encode(&h, buf);
    ipc_hdr_t d;
    ck_assert_int_eq(ipc_decode(&d, buf, n), 0);
    ck_assert_uint_eq(strlen(d.field[0]), IPC_FIELD_MAX);
    free(big);
}
END_TEST

START_TEST(test_garbage)
{
    /* Deterministic pseudo-random frames: never accepted unless well-formed, never crash. */
    unsigned char buf[256];
    unsigned x = 12345;
    ipc_hdr_t d;
    int accepted = 0;
    for (int i = 0; i < 20000; i++) {
        size_t len = (x = x * 1103515245u + 12345u) % sizeof buf;
        for (size_t j = 0; j < len; j++)
            buf[j] = (unsigned char)((x = x * 1103515245u + 12345u) >> 16);
        if (i % 2 && len >= IPC_HDR_FIXED) {
            buf[0] = IPC_MAGIC;
            buf[1] = IPC_VERSION;
        }
        if (ipc_decode(&d, buf, len) == 0) {
            accepted++;
            unsigned char again[IPC_HDR_MAX];
            ck_assert_uint_eq(ipc_encode(&d, again), len);
            ck_assert_int_eq(memcmp(again, buf, len), 0);
        }
    }
    ck_assert_int_lt(accepted, 20000);
}
END_TEST

static const struct {
    ipc_kind_t kind;
    const char *attr;
    ipc_stype_t want;
} stypes[] = {
    {IPC_KIND_MESSAGE, NULL, IPC_ST_NONE},
    {IPC_KIND_MESSAGE, "chat", IPC_ST_CHAT},
    {IPC_KIND_MESSAGE, "groupchat", IPC_ST_GROUPCHAT},
    {IPC_KIND_MESSAGE, "headline", IPC_ST_HEADLINE},
    {IPC_KIND_MESSAGE, "normal", IPC_ST_NORMAL},
    {IPC_KIND_MESSAGE, "error", IPC_ST_ERROR},
    {IPC_KIND_MESSAGE, "get", IPC_ST_INVALID},
    {IPC_KIND_MESSAGE, "unavailable", IPC_ST_INVALID},
    {IPC_KIND_PRESENCE, "unavailable", IPC_ST_UNAVAILABLE},
    {IPC_KIND_PRESENCE, "subscribe", IPC_ST_SUBSCRIBE},
    {IPC_KIND_PRESENCE, "probe", IPC_ST_PROBE},
    {IPC_KIND_PRESENCE, "chat", IPC_ST_INVALID},
    {IPC_KIND_PRESENCE, "available", IPC_ST_INVALID},
    {IPC_KIND_IQ, "get", IPC_ST_GET},
    {IPC_KIND_IQ, "result", IPC_ST_RESULT},
    {IPC_KIND_IQ, "error", IPC_ST_ERROR},
    {IPC_KIND_IQ, "chat", IPC_ST_INVALID},
    {IPC_KIND_IQ, "GET", IPC_ST_INVALID},
};

START_TEST(test_stype_table)
{
    ck_assert_int_eq(ipc_stype_from_attr(stypes[_i].kind, stypes[_i].attr), stypes[_i].want);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_int_eq(ipc_kind_from_name("message"), IPC_KIND_MESSAGE);
    ck_assert_int_eq(ipc_kind_from_name("presence"), IPC_KIND_PRESENCE);
    ck_assert_int_eq(ipc_kind_from_name("iq"), IPC_KIND_IQ);
    ck_assert_int_eq(ipc_kind_from_name("auth"), IPC_KIND_NONE);
    ck_assert_str_eq(ipc_stype_name(IPC_ST_SUBSCRIBED), "subscribed");
    ck_assert_ptr_null(ipc_stype_name(IPC_ST_NONE));
    ck_assert_ptr_null(ipc_stype_name(IPC_ST_INVALID));
    ck_assert_str_eq(ipc_type_name(IPC_CLOSE), "close");
    ck_assert_str_eq(ipc_type_name(IPC_RESYNC), "resync");
}
END_TEST

/* A resync carries the session state in flags and status (the priority, signed). */
START_TEST(test_resync_round_trip)
{
    static const int prios[] = {-128, -1, 0, 1, 5, 127};
    for (size_t i = 0; i < sizeof prios / sizeof prios[0]; i++) {
        ipc_hdr_t h, d;
        ipc_hdr_init(&h, IPC_RESYNC, 77);
        h.flags = IPC_RESYNC_AVAILABLE | IPC_RESYNC_INTERESTED;
        h.status = ipc_priority_encode(prios[i]);
        ck_assert_int_eq(ipc_hdr_set(&h, 0, "juliet@example.com/balcony"), 0);
        unsigned char buf[IPC_HDR_MAX];
        size_t n = ipc_encode(&h, buf);
        ck_assert_int_eq(ipc_decode(&d, buf, n), 0);
        ck_assert_int_eq(d.type, IPC_RESYNC);
        ck_assert_uint_eq(d.conn, 77);
        ck_assert_int_eq(d.flags, IPC_RESYNC_AVAILABLE | IPC_RESYNC_INTERESTED);
        ck_assert_int_eq(ipc_priority_decode(d.status), prios[i]);
        ck_assert_str_eq(d.field[0], "juliet@example.com/balcony");
        /* Every truncation of it is rejected too. */
        for (size_t k = 0; k < n; k++)
            ck_assert_int_eq(ipc_decode(&d, buf, k), -1);
    }
    /* Out-of-range priorities are clamped (RFC 6121 4.7.2.3: -128..127). */
    ck_assert_int_eq(ipc_priority_decode(ipc_priority_encode(1000)), 127);
    ck_assert_int_eq(ipc_priority_decode(ipc_priority_encode(-1000)), -128);
}
END_TEST

Suite *make_ipc_suite(void)
{
    Suite *s = suite_create("ipc");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_wire_layout);
    tcase_add_test(tc, test_every_truncation_rejected);
    tcase_add_test(tc, test_leftover_rejected);
    tcase_add_loop_test(tc, test_bad_bytes, 0, sizeof bad_bytes / sizeof bad_bytes[0]);
    tcase_add_test(tc, test_nul_in_field_rejected);
    tcase_add_test(tc, test_field_bounds);
    tcase_add_test(tc, test_garbage);
    tcase_add_loop_test(tc, test_stype_table, 0, sizeof stypes / sizeof stypes[0]);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_resync_round_trip);
    suite_add_tcase(s, tc);
    return s;
}
