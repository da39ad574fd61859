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

/* Typed messages: build, encode, decode, read gives back every field. */
static void wire(const ipc_hdr_t *h, ipc_hdr_t *back)
{
    unsigned char buf[IPC_HDR_MAX];
    size_t n = ipc_encode(h, buf);
    ck_assert_int_eq(ipc_decode(back, buf, n), 0);
}

START_TEST(test_typed_round_trips)
{
    static ipc_hdr_t h, d; /* 12 KiB each */
    ipc_hello_t hi;
    ck_assert_int_eq(ipc_hello_build(&h, &(ipc_hello_t){0xFEEDu, "fe1", 0, 1}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_hello_read(&d, &hi), 0);
    ck_assert_uint_eq(hi.epoch, 0xFEEDu);
    ck_assert_str_eq(hi.name, "fe1");
    ck_assert_int_eq(hi.batch, 1);
    ck_assert_int_eq(hi.s2s, 0);
    ck_assert_int_eq(ipc_heartbeat_read(&d, &hi), -1); /* another type */

    ipc_heartbeat_t hb;
    ck_assert_int_eq(ipc_heartbeat_build(&h, &(ipc_heartbeat_t){42, "router", 0, 0}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_heartbeat_read(&d, &hb), 0);
    ck_assert_uint_eq(hb.epoch, 42);
    ck_assert_str_eq(hb.name, "router");

    ipc_auth_t au;
    ck_assert_int_eq(ipc_auth_build(&h, &(ipc_auth_t){7, 99, SCRAM_SHA256, "juliet"}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_auth_read(&d, &au), 0);
    ck_assert_uint_eq(au.conn, 7);
    ck_assert_uint_eq(au.seq, 99);
    ck_assert_int_eq(au.hash, SCRAM_SHA256);
    ck_assert_str_eq(au.username, "juliet");
    ck_assert_int_eq(d.status, 1); /* the hash in the status byte (docs/PROTOCOL.md) */

    ipc_auth_reply_t ar;
    ck_assert_int_eq(ipc_auth_reply_build(&h, &(ipc_auth_reply_t){7, 99, IPC_OK, "4096,c2FsdA==,a,b"}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_auth_reply_read(&d, &ar), 0);
    ck_assert_uint_eq(ar.seq, 99);
    ck_assert_int_eq(ar.status, IPC_OK);
    ck_assert_str_eq(ar.credentials, "4096,c2FsdA==,a,b");
    ck_assert_int_eq(ipc_auth_reply_build(&h, &(ipc_auth_reply_t){7, 99, IPC_LOCKED, NULL}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_auth_reply_read(&d, &ar), 0);
    ck_assert_int_eq(ar.status, IPC_LOCKED);
    ck_assert_str_eq(ar.credentials, "");

    ipc_bind_t bi;
    ck_assert_int_eq(ipc_bind_build(&h, &(ipc_bind_t){8, 3, "romeo@example.net/orchard", NULL, NULL}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_bind_read(&d, &bi), 0);
    ck_assert_uint_eq(bi.conn, 8);
    ck_assert_uint_eq(bi.seq, 3);
    ck_assert_str_eq(bi.jid, "romeo@example.net/orchard");

    ipc_bind_reply_t br;
    ck_assert_int_eq(ipc_bind_reply_build(&h, &(ipc_bind_reply_t){8, 3, IPC_LIMIT, "romeo@example.net/orchard"}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_bind_reply_read(&d, &br), 0);
    ck_assert_int_eq(br.status, IPC_LIMIT);
    ck_assert_str_eq(br.jid, "romeo@example.net/orchard");

    ipc_stanza_t st;
    ck_assert_int_eq(ipc_stanza_build(&h, &(ipc_stanza_t){9, IPC_KIND_IQ, IPC_ST_GET, "", "a@b/c", "q1", 0}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_stanza_read(&d, &st), 0);
    ck_assert_uint_eq(st.conn, 9);
    ck_assert_int_eq(st.kind, IPC_KIND_IQ);
    ck_assert_int_eq(st.stype, IPC_ST_GET);
    ck_assert_str_eq(st.to, "");
    ck_assert_str_eq(st.from, "a@b/c");
    ck_assert_str_eq(st.id, "q1");
    /* No id: two fields on the wire, as before; read gives "". */
    ck_assert_int_eq(ipc_stanza_build(&h, &(ipc_stanza_t){9, IPC_KIND_PRESENCE, IPC_ST_NONE, NULL, "a@b/c", NULL, 0}), 0);
    ck_assert_int_eq(h.nfields, 2);
    wire(&h, &d);
    ck_assert_int_eq(ipc_stanza_read(&d, &st), 0);
    ck_assert_int_eq(st.stype, IPC_ST_NONE);
    ck_assert_str_eq(st.to, "");
    ck_assert_str_eq(st.id, "");

    ipc_unbind_t ub;
    ck_assert_int_eq(ipc_unbind_build(&h, &(ipc_unbind_t){10, 0, 0}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_unbind_read(&d, &ub), 0);
    ck_assert_uint_eq(ub.conn, 10);

    ipc_deliver_t dv;
    ck_assert_int_eq(ipc_deliver_build(&h, &(ipc_deliver_t){11, 0, 0}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_deliver_read(&d, &dv), 0);
    ck_assert_uint_eq(dv.conn, 11);
    ck_assert_int_eq(ipc_unbind_read(&d, &ub), -1);

    ipc_close_t cl;
    ck_assert_int_eq(ipc_close_build(&h, &(ipc_close_t){12, "conflict", NULL}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_close_read(&d, &cl), 0);
    ck_assert_uint_eq(cl.conn, 12);
    ck_assert_str_eq(cl.condition, "conflict");

    ipc_resync_t rs;
    ck_assert_int_eq(ipc_resync_build(&h, &(ipc_resync_t){13, "a@b/c", IPC_RESYNC_AVAILABLE | IPC_RESYNC_CARBONS, -5, NULL, NULL, 0}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_resync_read(&d, &rs), 0);
    ck_assert_uint_eq(rs.conn, 13);
    ck_assert_str_eq(rs.full_jid, "a@b/c");
    ck_assert_int_eq(rs.flags, IPC_RESYNC_AVAILABLE | IPC_RESYNC_CARBONS);
    ck_assert_int_eq(rs.priority, -5);
    ck_assert_int_eq(ipc_resync_build(&h, &(ipc_resync_t){13, "a@b/c", 0, 300, NULL, NULL, 0}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_resync_read(&d, &rs), 0);
    ck_assert_int_eq(rs.priority, 127); /* clamped */

    ipc_auth_result_t ad;
    ck_assert_int_eq(ipc_auth_result_build(&h, &(ipc_auth_result_t){14, IPC_OK, "juliet"}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_auth_result_read(&d, &ad), 0);
    ck_assert_uint_eq(ad.conn, 14);
    ck_assert_int_eq(ad.status, IPC_OK);
    ck_assert_str_eq(ad.username, "juliet");
}
END_TEST

/* Stream management (XEP-0198) messages: every field back, counters up to 2^32 - 1. */
START_TEST(test_sm_round_trips)
{
    static ipc_hdr_t h, d;
    ipc_stanza_t st;
    ck_assert_int_eq(ipc_stanza_build(&h, &(ipc_stanza_t){.conn = 9, .kind = IPC_KIND_MESSAGE, .stype = IPC_ST_CHAT, .to = "a@b", .from = "c@b/r", .h = 0xFFFFFFFFu}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_stanza_read(&d, &st), 0);
    ck_assert_uint_eq(st.h, 0xFFFFFFFFu);

    ipc_deliver_t dv;
    ck_assert_int_eq(ipc_deliver_build(&h, &(ipc_deliver_t){.conn = 3, .numbered = 1, .h = 0}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_deliver_read(&d, &dv), 0);
    ck_assert_int_eq(dv.numbered, 1); /* 0 is a number after the wrap */
    ck_assert_uint_eq(dv.h, 0);

    ipc_unbind_t ub;
    ck_assert_int_eq(ipc_unbind_build(&h, &(ipc_unbind_t){4, IPC_UNBIND_DETACH | IPC_UNBIND_ACK, 77}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_unbind_read(&d, &ub), 0);
    ck_assert_int_eq(ub.flags, IPC_UNBIND_DETACH | IPC_UNBIND_ACK);
    ck_assert_uint_eq(ub.acked, 77);

    ipc_sm_enable_t en;
    ck_assert_int_eq(ipc_sm_enable_build(&h, &(ipc_sm_enable_t){5, 6, 1, 120}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_sm_enable_read(&d, &en), 0);
    ck_assert_int_eq(en.resumable, 1);
    ck_assert_uint_eq(en.max, 120);
    ck_assert_uint_eq(en.seq, 6);

    ipc_sm_enabled_t ed;
    ck_assert_int_eq(ipc_sm_enabled_build(&h, &(ipc_sm_enabled_t){5, 6, IPC_OK, "0123abcd", 300}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_sm_enabled_read(&d, &ed), 0);
    ck_assert_str_eq(ed.id, "0123abcd");
    ck_assert_uint_eq(ed.max, 300);

    ipc_sm_ack_t ak;
    ck_assert_int_eq(ipc_sm_ack_build(&h, &(ipc_sm_ack_t){5, 4000000000u}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_sm_ack_read(&d, &ak), 0);
    ck_assert_uint_eq(ak.h, 4000000000u);

    ipc_sm_resume_t rq = {.conn = 7, .seq = 8, .id = "0123abcd", .username = "juliet", .h = 4294967295u};
    strcpy(rq.addr, "[2001:db8::1]:5222");
    strcpy(rq.tls, "TLSv1.3");
    ck_assert_int_eq(ipc_sm_resume_build(&h, &rq), 0);
    wire(&h, &d);
    ipc_sm_resume_t rr;
    ck_assert_int_eq(ipc_sm_resume_read(&d, &rr), 0);
    ck_assert_str_eq(rr.id, "0123abcd");
    ck_assert_str_eq(rr.username, "juliet");
    ck_assert_uint_eq(rr.h, 4294967295u);
    ck_assert_str_eq(rr.addr, "[2001:db8::1]:5222");
    ck_assert_str_eq(rr.tls, "TLSv1.3");
    /* Ids are letters, digits, '-', '_'; h is a 32-bit decimal. */
    ipc_hdr_set(&d, 0, "a b");
    ck_assert_int_eq(ipc_sm_resume_read(&d, &rr), -1);
    ipc_hdr_set(&d, 0, "ok");
    ipc_hdr_set(&d, 2, "4294967296");
    ck_assert_int_eq(ipc_sm_resume_read(&d, &rr), -1);

    ipc_sm_resumed_t rd;
    ck_assert_int_eq(ipc_sm_resumed_build(&h, &(ipc_sm_resumed_t){7, 8, IPC_OK, IPC_RESYNC_AVAILABLE, "juliet@b/r", 12, 4294967295u, 1765000000, 120}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_sm_resumed_read(&d, &rd), 0);
    ck_assert_str_eq(rd.jid, "juliet@b/r");
    ck_assert_uint_eq(rd.in, 12);
    ck_assert_uint_eq(rd.out, 4294967295u);
    ck_assert_uint_eq(rd.since, 1765000000);
    ck_assert_int_eq(rd.flags, IPC_RESYNC_AVAILABLE);
    ck_assert_uint_eq(rd.max, 120);

    ipc_sm_state_t ss;
    ck_assert_int_eq(ipc_sm_state_build(&h, &(ipc_sm_state_t){9, 1, "xyz", 1, 2, 3, 60}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_sm_state_read(&d, &ss), 0);
    ck_assert_int_eq(ss.resumable, 1);
    ck_assert_str_eq(ss.id, "xyz");
    ck_assert_uint_eq(ss.in, 1);
    ck_assert_uint_eq(ss.out, 2);
    ck_assert_uint_eq(ss.acked, 3);
    ck_assert_uint_eq(ss.max, 60);
    ipc_hdr_set(&d, 2, "sixty");
    ck_assert_int_eq(ipc_sm_state_read(&d, &ss), -1);
    ipc_hdr_set(&d, 2, "");
    ipc_hdr_set(&d, 1, "1 2");
    ck_assert_int_eq(ipc_sm_state_read(&d, &ss), -1);

    ipc_echo_t ec;
    ck_assert_int_eq(ipc_echo_build(&h, &(ipc_echo_t){9, 5}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_echo_read(&d, &ec), 0);
    ck_assert_uint_eq(ec.h, 5);
}
END_TEST

/* The typed builders put each field where docs/PROTOCOL.md says (the wire is unchanged). */
START_TEST(test_typed_wire_positions)
{
    static ipc_hdr_t h;
    ipc_stanza_build(&h, &(ipc_stanza_t){0x0102030405060708ULL, IPC_KIND_MESSAGE, IPC_ST_CHAT,
                                         "juliet@example.com", "romeo@example.net/orchard", "id-1", 0});
    h.seq = 0xA1B2C3D4u;
    unsigned char typed[IPC_HDR_MAX], raw[IPC_HDR_MAX];
    size_t n = ipc_encode(&h, typed);
    ck_assert_uint_eq(n, build_stanza(raw));
    ck_assert_int_eq(memcmp(typed, raw, n), 0);
    ipc_resync_build(&h, &(ipc_resync_t){1, "a@b/c", IPC_RESYNC_INTERESTED, -1, NULL, NULL, 0});
    n = ipc_encode(&h, typed);
    ck_assert_int_eq(typed[3], IPC_RESYNC_INTERESTED); /* flags */
    ck_assert_int_eq(typed[18], 0xff);                 /* priority -1 in the status byte */
    ipc_auth_build(&h, &(ipc_auth_t){1, 2, SCRAM_SHA1, "u"});
    n = ipc_encode(&h, typed);
    ck_assert_int_eq(typed[18], 0);
    ck_assert_int_eq(typed[15], 2); /* seq */
}
END_TEST

/* A header changed one way each; every reader refuses it. */
typedef void (*mutate_fn)(ipc_hdr_t *h);
static void m_type(ipc_hdr_t *h) { h->type = h->type == IPC_CLOSE ? IPC_DELIVER : IPC_CLOSE; }
static void m_no_fields(ipc_hdr_t *h) { h->nfields = 0; }
static void m_empty0(ipc_hdr_t *h) { ipc_hdr_set(h, 0, ""); }
static void m_empty1(ipc_hdr_t *h) { ipc_hdr_set(h, 1, ""); }
static void m_seq0(ipc_hdr_t *h) { h->seq = 0; }
static void m_status(ipc_hdr_t *h) { h->status = 9; }
static void m_status_refused(ipc_hdr_t *h) { h->status = IPC_REFUSED; }
static void m_status_locked(ipc_hdr_t *h) { h->status = IPC_LOCKED; }
static void m_kind_none(ipc_hdr_t *h) { h->kind = IPC_KIND_NONE; }
static void m_stype_invalid(ipc_hdr_t *h) { h->stype = IPC_ST_INVALID; }
static void m_stype_wrong(ipc_hdr_t *h) { h->stype = IPC_ST_SUBSCRIBE; } /* on a message */
static void m_iq_no_type(ipc_hdr_t *h) { h->kind = IPC_KIND_IQ; h->stype = IPC_ST_NONE; }
static void m_one_field(ipc_hdr_t *h) { h->nfields = 1; }
static void m_flags(ipc_hdr_t *h) { h->flags = 0x80; }

static int r_hello(const ipc_hdr_t *h) { ipc_hello_t m; return ipc_hello_read(h, &m); }
static int r_heartbeat(const ipc_hdr_t *h) { ipc_heartbeat_t m; return ipc_heartbeat_read(h, &m); }
static int r_auth(const ipc_hdr_t *h) { ipc_auth_t m; return ipc_auth_read(h, &m); }
static int r_auth_reply(const ipc_hdr_t *h) { ipc_auth_reply_t m; return ipc_auth_reply_read(h, &m); }
static int r_bind(const ipc_hdr_t *h) { ipc_bind_t m; return ipc_bind_read(h, &m); }
static int r_bind_reply(const ipc_hdr_t *h) { ipc_bind_reply_t m; return ipc_bind_reply_read(h, &m); }
static int r_stanza(const ipc_hdr_t *h) { ipc_stanza_t m; return ipc_stanza_read(h, &m); }
static int r_unbind(const ipc_hdr_t *h) { ipc_unbind_t m; return ipc_unbind_read(h, &m); }
static int r_deliver(const ipc_hdr_t *h) { ipc_deliver_t m; return ipc_deliver_read(h, &m); }
static int r_close(const ipc_hdr_t *h) { ipc_close_t m; return ipc_close_read(h, &m); }
static int r_resync(const ipc_hdr_t *h) { ipc_resync_t m; return ipc_resync_read(h, &m); }
static int r_auth_result(const ipc_hdr_t *h) { ipc_auth_result_t m; return ipc_auth_result_read(h, &m); }
static int r_register(const ipc_hdr_t *h) { ipc_register_t m; return ipc_register_read(h, &m); }
static int r_register_reply(const ipc_hdr_t *h) { ipc_register_reply_t m; return ipc_register_reply_read(h, &m); }
static int r_client_state(const ipc_hdr_t *h) { ipc_client_state_t m; return ipc_client_state_read(h, &m); }
static int r_return(const ipc_hdr_t *h) { ipc_return_t m; return ipc_return_read(h, &m); }
static int r_s2s_closed(const ipc_hdr_t *h) { ipc_s2s_closed_t m; return ipc_s2s_closed_read(h, &m); }
static void m_status2(ipc_hdr_t *h) { h->status = 2; }
static void m_three_fields(ipc_hdr_t *h) { h->nfields = 3; }
static void m_empty3(ipc_hdr_t *h) { ipc_hdr_set(h, 3, ""); }
static void m_check_flag(ipc_hdr_t *h) { h->flags = IPC_REGISTER_CHECK; } /* and no token */

static void b_hello(ipc_hdr_t *h) { ipc_hello_build(h, &(ipc_hello_t){1, "fe", 0, 0}); }
static void b_heartbeat(ipc_hdr_t *h) { ipc_heartbeat_build(h, &(ipc_heartbeat_t){1, "fe", 0, 0}); }
static void b_auth(ipc_hdr_t *h) { ipc_auth_build(h, &(ipc_auth_t){1, 2, SCRAM_SHA1, "u"}); }
static void b_auth_reply(ipc_hdr_t *h) { ipc_auth_reply_build(h, &(ipc_auth_reply_t){1, 2, IPC_OK, "c"}); }
static void b_bind(ipc_hdr_t *h) { ipc_bind_build(h, &(ipc_bind_t){1, 2, "u@d/r", NULL, NULL}); }
static void b_bind_reply(ipc_hdr_t *h) { ipc_bind_reply_build(h, &(ipc_bind_reply_t){1, 2, IPC_OK, "u@d/r"}); }
static void b_stanza(ipc_hdr_t *h) { ipc_stanza_build(h, &(ipc_stanza_t){1, IPC_KIND_MESSAGE, IPC_ST_CHAT, "x@d", "u@d/r", "i", 0}); }
static void b_unbind(ipc_hdr_t *h) { ipc_unbind_build(h, &(ipc_unbind_t){1, 0, 0}); }
static void b_deliver(ipc_hdr_t *h) { ipc_deliver_build(h, &(ipc_deliver_t){1, 0, 0}); }
static void b_close(ipc_hdr_t *h) { ipc_close_build(h, &(ipc_close_t){1, "reset", NULL}); }
static void b_resync(ipc_hdr_t *h) { ipc_resync_build(h, &(ipc_resync_t){1, "u@d/r", 0, 0, NULL, NULL, 0}); }
static void b_auth_result(ipc_hdr_t *h) { ipc_auth_result_build(h, &(ipc_auth_result_t){1, IPC_OK, "u"}); }
static void b_register(ipc_hdr_t *h) { ipc_register_build(h, &(ipc_register_t){1, 2, 0, "u", "a\nb", "127.0.0.1", ""}); }
static void b_register_check(ipc_hdr_t *h) { ipc_register_build(h, &(ipc_register_t){1, 2, IPC_REGISTER_CHECK, "", "", "", "tok"}); }
static void b_register_reply(ipc_hdr_t *h) { ipc_register_reply_build(h, &(ipc_register_reply_t){1, 2, IPC_CONFLICT}); }
static void b_client_state(ipc_hdr_t *h) { ipc_client_state_build(h, &(ipc_client_state_t){1, 1}); }
static void b_return(ipc_hdr_t *h) { ipc_return_build(h, &(ipc_return_t){1}); }
static void b_s2s_closed(ipc_hdr_t *h) { ipc_s2s_closed_build(h, &(ipc_s2s_closed_t){9, 1, "remote.example"}); }
static void m_conn0(ipc_hdr_t *h) { h->conn = 0; }
static void m_seq1(ipc_hdr_t *h) { h->seq = 1; }

/* The connection facts of bind and resync (client address, TLS version, bound since) and
 * the text of close (xmppctl sessions and kick). */
static void b_bind_facts(ipc_hdr_t *h)
{
    ipc_bind_build(h, &(ipc_bind_t){1, 2, "u@d/r", "192.0.2.7:40000", "TLSv1.3"});
}
static void b_resync_facts(ipc_hdr_t *h)
{
    ipc_resync_build(h, &(ipc_resync_t){1, "u@d/r", 0, 0, "[2001:db8::1]:5", "none", 1765000000});
}
static void b_close_text(ipc_hdr_t *h)
{
    ipc_close_build(h, &(ipc_close_t){1, "policy-violation", "Kicked: spam"});
}
static void m_addr_space(ipc_hdr_t *h) { ipc_hdr_set(h, 1, "192.0.2.7 :1"); }
static void m_addr_long(ipc_hdr_t *h)
{
    char a[IPC_ADDR_MAX + 2];
    memset(a, '1', IPC_ADDR_MAX + 1);
    a[IPC_ADDR_MAX + 1] = '\0';
    ipc_hdr_set(h, 1, a);
}
static void m_tls_control(ipc_hdr_t *h) { ipc_hdr_set(h, 2, "TLS\tv1.3"); }
static void m_tls_long(ipc_hdr_t *h) { ipc_hdr_set(h, 2, "TLSv1.3-with-a-name-far-too-long-for-it"); }
static void m_since_letters(ipc_hdr_t *h) { ipc_hdr_set(h, 3, "17650000x0"); }
static void m_since_huge(ipc_hdr_t *h) { ipc_hdr_set(h, 3, "12345678901234567890"); }
static void m_condition_upper(ipc_hdr_t *h) { ipc_hdr_set(h, 0, "Policy-Violation"); }
static void m_condition_markup(ipc_hdr_t *h) { ipc_hdr_set(h, 0, "reset/><x"); }

static const struct {
    const char *what;
    void (*build)(ipc_hdr_t *h);
    int (*read)(const ipc_hdr_t *h);
    mutate_fn mutate;
} malformed[] = {
    {"hello of another type", b_hello, r_hello, m_type},
    {"hello without a name", b_hello, r_hello, m_no_fields},
    {"hello with an empty name", b_hello, r_hello, m_empty0},
    {"heartbeat of another type", b_heartbeat, r_heartbeat, m_type},
    {"auth of another type", b_auth, r_auth, m_type},
    {"auth without a username", b_auth, r_auth, m_no_fields},
    {"auth with an empty username", b_auth, r_auth, m_empty0},
    {"auth with an unknown hash", b_auth, r_auth, m_status},
    {"auth with seq 0", b_auth, r_auth, m_seq0},
    {"auth-reply of another type", b_auth_reply, r_auth_reply, m_type},
    {"auth-reply with an unknown status", b_auth_reply, r_auth_reply, m_status},
    {"auth-reply refused (not an auth status)", b_auth_reply, r_auth_reply, m_status_refused},
    {"auth-reply with seq 0", b_auth_reply, r_auth_reply, m_seq0},
    {"bind of another type", b_bind, r_bind, m_type},
    {"bind without a JID", b_bind, r_bind, m_no_fields},
    {"bind with an empty JID", b_bind, r_bind, m_empty0},
    {"bind with seq 0", b_bind, r_bind, m_seq0},
    {"bind-reply of another type", b_bind_reply, r_bind_reply, m_type},
    {"bind-reply with an unknown status", b_bind_reply, r_bind_reply, m_status},
    {"bind-reply locked (not a bind status)", b_bind_reply, r_bind_reply, m_status_locked},
    {"bind-reply ok without a JID", b_bind_reply, r_bind_reply, m_empty0},
    {"bind-reply with seq 0", b_bind_reply, r_bind_reply, m_seq0},
    {"stanza of another type", b_stanza, r_stanza, m_type},
    {"stanza without fields", b_stanza, r_stanza, m_no_fields},
    {"stanza without from", b_stanza, r_stanza, m_one_field},
    {"stanza with an empty from", b_stanza, r_stanza, m_empty1},
    {"stanza of no kind", b_stanza, r_stanza, m_kind_none},
    {"stanza of an invalid type", b_stanza, r_stanza, m_stype_invalid},
    {"message of a presence type", b_stanza, r_stanza, m_stype_wrong},
    {"iq without a type", b_stanza, r_stanza, m_iq_no_type},
    {"unbind of another type", b_unbind, r_unbind, m_type},
    {"deliver of another type", b_deliver, r_deliver, m_type},
    {"close of another type", b_close, r_close, m_type},
    {"close without a condition", b_close, r_close, m_no_fields},
    {"close with an empty condition", b_close, r_close, m_empty0},
    {"resync of another type", b_resync, r_resync, m_type},
    {"resync without a JID", b_resync, r_resync, m_no_fields},
    {"resync with an empty JID", b_resync, r_resync, m_empty0},
    {"resync with unknown flags", b_resync, r_resync, m_flags},
    {"client-state of another type", b_client_state, r_client_state, m_type},
    {"client-state with a status other than 0 or 1", b_client_state, r_client_state, m_status2},
    {"client-state with flags", b_client_state, r_client_state, m_flags},
    {"return of another type", b_return, r_return, m_type},
    {"return with flags", b_return, r_return, m_flags},
    {"bind with a space in the address", b_bind_facts, r_bind, m_addr_space},
    {"bind with an address too long", b_bind_facts, r_bind, m_addr_long},
    {"bind with a tab in the TLS version", b_bind_facts, r_bind, m_tls_control},
    {"bind with a TLS version too long", b_bind_facts, r_bind, m_tls_long},
    {"resync with a space in the address", b_resync_facts, r_resync, m_addr_space},
    {"resync with a TLS version too long", b_resync_facts, r_resync, m_tls_long},
    {"resync with letters in its bind time", b_resync_facts, r_resync, m_since_letters},
    {"resync with a bind time past 64 bits", b_resync_facts, r_resync, m_since_huge},
    {"close with an upper-case condition", b_close_text, r_close, m_condition_upper},
    {"close with markup in its condition", b_close_text, r_close, m_condition_markup},
    {"auth-result of another type", b_auth_result, r_auth_result, m_type},
    {"auth-result without a username", b_auth_result, r_auth_result, m_no_fields},
    {"auth-result with an unknown status", b_auth_result, r_auth_result, m_status},
    {"auth-result locked", b_auth_result, r_auth_result, m_status_locked},
    {"register of another type", b_register, r_register, m_type},
    {"register with seq 0", b_register, r_register, m_seq0},
    {"register without a username", b_register, r_register, m_empty0},
    {"register without credentials", b_register, r_register, m_empty1},
    {"register with three fields", b_register, r_register, m_three_fields},
    {"register with unknown flags", b_register, r_register, m_flags},
    {"register check without a token", b_register, r_register, m_check_flag},
    {"register check with an empty token", b_register_check, r_register, m_empty3},
    {"register-reply of another type", b_register_reply, r_register_reply, m_type},
    {"register-reply with seq 0", b_register_reply, r_register_reply, m_seq0},
    {"register-reply with an unknown status", b_register_reply, r_register_reply, m_status},
    {"register-reply locked (not a register status)", b_register_reply, r_register_reply, m_status_locked},
    {"s2s-closed of another type", b_s2s_closed, r_s2s_closed, m_type},
    {"s2s-closed without a domain", b_s2s_closed, r_s2s_closed, m_no_fields},
    {"s2s-closed with an empty domain", b_s2s_closed, r_s2s_closed, m_empty0},
    {"s2s-closed with unknown flags", b_s2s_closed, r_s2s_closed, m_flags},
    {"s2s-closed of connection 0", b_s2s_closed, r_s2s_closed, m_conn0},
    {"s2s-closed with a seq", b_s2s_closed, r_s2s_closed, m_seq1},
};

/* s2s-closed (type 28): conn, the "lost" flag and the remote domain come back; the wire
 * is what docs/PROTOCOL.md says. */
START_TEST(test_s2s_closed_round_trip)
{
    static ipc_hdr_t h, d;
    unsigned char buf[IPC_HDR_MAX];
    for (int lost = 0; lost <= 1; lost++) {
        ipc_s2s_closed_t m;
        ck_assert_int_eq(ipc_s2s_closed_build(&h, &(ipc_s2s_closed_t){0x0102030405060708ULL,
                                                                       lost, "remote.example"}), 0);
        size_t n = ipc_encode(&h, buf);
        ck_assert_uint_eq(n, IPC_HDR_FIXED + 2 + strlen("remote.example"));
        ck_assert_int_eq(buf[2], 28);
        ck_assert_int_eq(buf[3], lost ? IPC_S2S_CLOSED_LOST : 0);
        ck_assert_int_eq(buf[4], 0x01);
        ck_assert_int_eq(buf[11], 0x08);
        ck_assert_int_eq(buf[19], 1);
        ck_assert_int_eq(ipc_decode(&d, buf, n), 0);
        ck_assert_int_eq(ipc_s2s_closed_read(&d, &m), 0);
        ck_assert_uint_eq(m.conn, 0x0102030405060708ULL);
        ck_assert_int_eq(m.lost, lost);
        ck_assert_str_eq(m.domain, "remote.example");
        ipc_s2s_t s2s;
        ck_assert_int_eq(ipc_s2s_in_read(&d, &s2s), -1); /* not an s2s-in */
    }
    ck_assert_str_eq(ipc_type_name(IPC_S2S_CLOSED), "s2s-closed");
    /* A longer domain than a field holds is refused by the builder. */
    static char longdom[IPC_FIELD_MAX + 2];
    memset(longdom, 'a', IPC_FIELD_MAX + 1);
    ck_assert_int_eq(ipc_s2s_closed_build(&h, &(ipc_s2s_closed_t){1, 0, longdom}), -1);
}
END_TEST

/* register and register-reply: every field comes back where it was put. */
START_TEST(test_register_round_trip)
{
    static ipc_hdr_t h, d;
    ipc_register_t r;
    ck_assert_int_eq(ipc_register_build(&h, &(ipc_register_t){21, 7, 0, "juliet", "1,s,k,k\n2,s,k,k", "192.0.2.1", ""}), 0);
    wire(&h, &d);
    ck_assert_int_eq(d.type, IPC_REGISTER);
    ck_assert_int_eq(ipc_register_read(&d, &r), 0);
    ck_assert_uint_eq(r.conn, 21);
    ck_assert_uint_eq(r.seq, 7);
    ck_assert_int_eq(r.flags, 0);
    ck_assert_str_eq(r.username, "juliet");
    ck_assert_str_eq(r.credentials, "1,s,k,k\n2,s,k,k");
    ck_assert_str_eq(r.addr, "192.0.2.1");
    ck_assert_str_eq(r.token, "");
    ck_assert_int_eq(ipc_register_build(&h, &(ipc_register_t){22, 8, IPC_REGISTER_CHECK, NULL, NULL, "", "abc_-1"}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_register_read(&d, &r), 0);
    ck_assert_int_eq(r.flags, IPC_REGISTER_CHECK);
    ck_assert_str_eq(r.token, "abc_-1");
    ck_assert_str_eq(r.username, "");
    static const ipc_status_t ok[] = {IPC_OK, IPC_CONFLICT, IPC_REFUSED, IPC_NOT_FOUND, IPC_LIMIT, IPC_TEMPORARY};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ipc_register_reply_t rr;
        ck_assert_int_eq(ipc_register_reply_build(&h, &(ipc_register_reply_t){23, 9, ok[i]}), 0);
        wire(&h, &d);
        ck_assert_int_eq(ipc_register_reply_read(&d, &rr), 0);
        ck_assert_uint_eq(rr.conn, 23);
        ck_assert_uint_eq(rr.seq, 9);
        ck_assert_int_eq(rr.status, ok[i]);
    }
    ck_assert_str_eq(ipc_type_name(IPC_REGISTER), "register");
    ck_assert_str_eq(ipc_type_name(IPC_REGISTER_REPLY), "register-reply");
}
END_TEST

/* XEP-0352 client state: both states round-trip in the status byte; the resync flag of an
 * inactive session is accepted. */
START_TEST(test_client_state_round_trip)
{
    static ipc_hdr_t h, d;
    unsigned char buf[IPC_HDR_MAX];
    for (int inactive = 0; inactive <= 1; inactive++) {
        ipc_client_state_t m;
        ck_assert_int_eq(ipc_client_state_build(&h, &(ipc_client_state_t){77, inactive}), 0);
        size_t n = ipc_encode(&h, buf);
        ck_assert_uint_eq(n, IPC_HDR_FIXED);
        ck_assert_int_eq(buf[2], 20);
        ck_assert_int_eq(buf[18], inactive);
        ck_assert_int_eq(ipc_decode(&d, buf, n), 0);
        ck_assert_int_eq(ipc_client_state_read(&d, &m), 0);
        ck_assert_uint_eq(m.conn, 77);
        ck_assert_int_eq(m.inactive, inactive);
    }
    ck_assert_str_eq(ipc_type_name(IPC_CLIENT_STATE), "client-state");
    ipc_return_t ret;
    ck_assert_int_eq(ipc_return_build(&h, &(ipc_return_t){99}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_return_read(&d, &ret), 0);
    ck_assert_uint_eq(ret.conn, 99);
    ck_assert_str_eq(ipc_type_name(IPC_RETURN), "return");
    ipc_resync_t rs;
    ck_assert_int_eq(ipc_resync_build(&h, &(ipc_resync_t){1, "u@d/r", IPC_RESYNC_INACTIVE, 0,
                                                          NULL, NULL, 0}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_resync_read(&d, &rs), 0);
    ck_assert_int_eq(rs.flags, IPC_RESYNC_INACTIVE);
}
END_TEST

/* s2s-out carries the router's number for the stanza (h); s2s-ack says how many numbers
 * its payload holds, and the reader holds the payload's length to that. */
START_TEST(test_s2s_ack_round_trip)
{
    ipc_hdr_t h, d;
    ipc_s2s_t m;
    ck_assert_int_eq(ipc_s2s_out_build(&h, &(ipc_s2s_t){.kind = IPC_KIND_MESSAGE,
                                                        .stype = IPC_ST_CHAT, .to = "r@x.example",
                                                        .from = "u@d/r", .h = 77}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_s2s_out_read(&d, &m), 0);
    ck_assert_uint_eq(m.h, 77);
    ck_assert_str_eq(m.to, "r@x.example");
    ipc_s2s_ack_t a;
    ck_assert_int_eq(ipc_s2s_ack_build(&h, &(ipc_s2s_ack_t){.n = 3}), 0);
    wire(&h, &d);
    ck_assert_int_eq(ipc_s2s_ack_read(&d, 12, &a), 0);
    ck_assert_uint_eq(a.n, 3);
    ck_assert_str_eq(ipc_type_name(IPC_S2S_ACK), "s2s-ack");
    /* A payload of another length, none at all, a count past the bound, a connection. */
    ck_assert_int_eq(ipc_s2s_ack_read(&d, 11, &a), -1);
    ck_assert_int_eq(ipc_s2s_ack_read(&d, 16, &a), -1);
    ck_assert_int_eq(ipc_s2s_ack_build(&h, &(ipc_s2s_ack_t){.n = IPC_S2S_ACK_MAX + 1}), -1);
    ipc_s2s_ack_build(&h, &(ipc_s2s_ack_t){.n = 0});
    wire(&h, &d);
    ck_assert_int_eq(ipc_s2s_ack_read(&d, 0, &a), -1);
    ipc_s2s_ack_build(&h, &(ipc_s2s_ack_t){.n = 1});
    h.conn = 5;
    wire(&h, &d);
    ck_assert_int_eq(ipc_s2s_ack_read(&d, 4, &a), -1);
}
END_TEST

/* A type number that names no message is refused like one past the last type. */
START_TEST(test_unnamed_type_refused)
{
    unsigned char buf[IPC_HDR_MAX];
    ipc_hdr_t h, d;
    for (int t = 1; t <= IPC_TYPE_MAX; t++) {
        ipc_hdr_init(&h, (ipc_type_t)t, 1);
        size_t n = ipc_encode(&h, buf);
        int named = strcmp(ipc_type_name((ipc_type_t)t), "?") != 0;
        ck_assert_msg(ipc_decode(&d, buf, n) == (named ? 0 : -1), "type %d", t);
    }
}
END_TEST

START_TEST(test_typed_malformed)
{
    static ipc_hdr_t h, d;
    malformed[_i].build(&h);
    wire(&h, &d);
    ck_assert_msg(malformed[_i].read(&d) == 0, "%s: the unchanged message is refused",
                  malformed[_i].what);
    malformed[_i].mutate(&h);
    wire(&h, &d);
    ck_assert_msg(malformed[_i].read(&d) == -1, "%s: accepted", malformed[_i].what);
}
END_TEST

START_TEST(test_conn_facts_round_trip)
{
    static ipc_hdr_t h, d;
    ipc_bind_t bi;
    b_bind_facts(&h);
    ck_assert_int_eq(h.nfields, 3);
    wire(&h, &d);
    ck_assert_int_eq(ipc_bind_read(&d, &bi), 0);
    ck_assert_str_eq(bi.jid, "u@d/r");
    ck_assert_str_eq(bi.addr, "192.0.2.7:40000");
    ck_assert_str_eq(bi.tls, "TLSv1.3");
    /* Without them: one field, as before, and the reader gives "". */
    ck_assert_int_eq(ipc_bind_build(&h, &(ipc_bind_t){1, 2, "u@d/r", NULL, ""}), 0);
    ck_assert_int_eq(h.nfields, 1);
    wire(&h, &d);
    ck_assert_int_eq(ipc_bind_read(&d, &bi), 0);
    ck_assert_str_eq(bi.addr, "");
    ck_assert_str_eq(bi.tls, "");
    /* A builder refuses what a reader would. */
    ck_assert_int_eq(ipc_bind_build(&h, &(ipc_bind_t){1, 2, "u@d/r", "a b", NULL}), -1);
    ck_assert_int_eq(ipc_resync_build(&h, &(ipc_resync_t){1, "u@d/r", 0, 0, NULL, "TLS\n", 1}), -1);

    ipc_resync_t rs;
    b_resync_facts(&h);
    ck_assert_int_eq(h.nfields, 4);
    wire(&h, &d);
    ck_assert_int_eq(ipc_resync_read(&d, &rs), 0);
    ck_assert_str_eq(rs.addr, "[2001:db8::1]:5");
    ck_assert_str_eq(rs.tls, "none");
    ck_assert_uint_eq(rs.since, 1765000000);
    ck_assert_int_eq(ipc_resync_build(&h, &(ipc_resync_t){1, "u@d/r", 0, 0, NULL, NULL, 0}), 0);
    ck_assert_int_eq(h.nfields, 1);
    wire(&h, &d);
    ck_assert_int_eq(ipc_resync_read(&d, &rs), 0);
    ck_assert_uint_eq(rs.since, 0);
    ck_assert_str_eq(rs.addr, "");

    ipc_close_t cl;
    b_close_text(&h);
    ck_assert_int_eq(h.nfields, 2);
    wire(&h, &d);
    ck_assert_int_eq(ipc_close_read(&d, &cl), 0);
    ck_assert_str_eq(cl.condition, "policy-violation");
    ck_assert_str_eq(cl.text, "Kicked: spam");
    ck_assert_int_eq(ipc_close_build(&h, &(ipc_close_t){1, "conflict", ""}), 0);
    ck_assert_int_eq(h.nfields, 1);
    wire(&h, &d);
    ck_assert_int_eq(ipc_close_read(&d, &cl), 0);
    ck_assert_str_eq(cl.text, "");
}
END_TEST

START_TEST(test_typed_build_bounds)
{
    static ipc_hdr_t h;
    char *big = malloc(IPC_FIELD_MAX + 2);
    memset(big, 'a', IPC_FIELD_MAX + 1);
    big[IPC_FIELD_MAX + 1] = '\0';
    ck_assert_int_eq(ipc_bind_build(&h, &(ipc_bind_t){1, 2, big, NULL, NULL}), -1);
    ck_assert_int_eq(ipc_stanza_build(&h, &(ipc_stanza_t){1, IPC_KIND_MESSAGE, IPC_ST_NONE, "x", "y", big, 0}), -1);
    ck_assert_int_eq(ipc_auth_reply_build(&h, &(ipc_auth_reply_t){1, 2, IPC_OK, big}), -1);
    big[IPC_FIELD_MAX] = '\0';
    ck_assert_int_eq(ipc_bind_build(&h, &(ipc_bind_t){1, 2, big, NULL, NULL}), 0);
    free(big);
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
    tcase_add_test(tc, test_typed_round_trips);
    tcase_add_test(tc, test_sm_round_trips);
    tcase_add_test(tc, test_conn_facts_round_trip);
    tcase_add_test(tc, test_typed_wire_positions);
    tcase_add_loop_test(tc, test_typed_malformed, 0, sizeof malformed / sizeof malformed[0]);
    tcase_add_test(tc, test_typed_build_bounds);
    tcase_add_test(tc, test_register_round_trip);
    tcase_add_test(tc, test_client_state_round_trip);
    tcase_add_test(tc, test_unnamed_type_refused);
    tcase_add_test(tc, test_s2s_ack_round_trip);
    tcase_add_test(tc, test_s2s_closed_round_trip);
    suite_add_tcase(s, tc);
    return s;
}
