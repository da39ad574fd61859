/* libFuzzer harness for the frontend <-> router codec (common/ipc.c).
 *
 * 1. The whole input is decoded as a header frame from an untrusted peer. A header that
 *    decodes must satisfy every documented bound, and encoding it again must give back
 *    exactly the input bytes (the format has one encoding per header).
 * 2. The input also builds a header through the encoder's API (type, numbers, fields split
 *    at NUL bytes), which must decode to the same values.
 * 3. The small helpers (stanza types by name, priorities) must agree with each other.
 * 4. A delivered payload's kind (ipc_kind_of_payload, counted in the metrics) is read only
 *    within its bytes (ASan catches an overread of the heap copy) and is a valid kind.
 * 5. The input (a heap copy) as a batch of link messages (common/zbatch.c): every part
 *    given lies inside it, each message has 1 to ZLINK_MAX_PARTS parts with the routing
 *    id, and the messages encoded again give back the input (all of it when it opened
 *    without error, else a prefix). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "zbatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_ipc: check failed: %s (line %d)\n", #cond, __LINE__);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static uint64_t load_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Part 1: untrusted frames. */
static void fuzz_decode(const uint8_t *data, size_t size)
{
    static ipc_hdr_t h; /* 12 KiB: static, not on the stack */
    static unsigned char out[IPC_HDR_MAX];
    if (ipc_decode(&h, data, size) < 0)
        return;
    FUZZ_CHECK(size >= IPC_HDR_FIXED && size <= IPC_HDR_MAX);
    FUZZ_CHECK(h.type >= 1 && h.type <= IPC_TYPE_MAX);
    FUZZ_CHECK(h.kind <= IPC_KIND_IQ && h.stype <= IPC_ST_MAX);
    FUZZ_CHECK(h.nfields <= IPC_MAX_FIELDS);
    for (int i = 0; i < IPC_MAX_FIELDS; i++) {
        size_t n = strlen(h.field[i]);
        FUZZ_CHECK(n <= IPC_FIELD_MAX);
        FUZZ_CHECK(i < h.nfields || n == 0);
    }
    FUZZ_CHECK(strcmp(ipc_type_name((ipc_type_t)h.type), "?") != 0);
    size_t len = ipc_encode(&h, out);
    FUZZ_CHECK(len == size && memcmp(out, data, size) == 0);
}

/* Part 2: headers built by the encoder's API. */
static void fuzz_round_trip(const uint8_t *data, size_t size)
{
    static ipc_hdr_t h, back;
    static unsigned char out[IPC_HDR_MAX + 1]; /* + 1: the over-long frame below */
    static char field[IPC_FIELD_MAX + 2];
    if (size < 18)
        return;
    ipc_type_t type = (ipc_type_t)(1 + data[0] % IPC_TYPE_MAX);
    if (strcmp(ipc_type_name(type), "?") == 0) /* a number no type has: decode refuses it */
        type = IPC_STANZA;
    ipc_hdr_init(&h, type, load_be(data + 1, 8));
    h.seq = (uint32_t)load_be(data + 9, 4);
    h.flags = data[13];
    h.kind = (uint8_t)(data[14] % (IPC_KIND_IQ + 1));
    h.stype = (uint8_t)(data[15] % (IPC_ST_MAX + 1));
    h.status = data[16];
    int which = data[17];
    const uint8_t *p = data + 18;
    size_t left = size - 18;
    /* Fields: NUL-separated pieces, each put at the index the selector byte's bits say. */
    for (int k = 0; k < IPC_MAX_FIELDS && left > 0; k++) {
        const uint8_t *nul = memchr(p, 0, left);
        size_t n = nul ? (size_t)(nul - p) : left;
        size_t c = n <= IPC_FIELD_MAX + 1 ? n : IPC_FIELD_MAX + 1;
        memcpy(field, p, c);
        field[c] = '\0';
        int idx = (which >> (2 * k)) & 3;
        int rc = ipc_hdr_set(&h, idx, field);
        FUZZ_CHECK(rc == (c > IPC_FIELD_MAX ? -1 : 0));
        p += n + (nul != NULL);
        left -= n + (nul != NULL);
    }
    FUZZ_CHECK(ipc_hdr_set(&h, IPC_MAX_FIELDS, "") == -1 && ipc_hdr_set(&h, -1, "") == -1);
    size_t len = ipc_encode(&h, out);
    FUZZ_CHECK(len <= IPC_HDR_MAX);
    FUZZ_CHECK(ipc_decode(&back, out, len) == 0);
    FUZZ_CHECK(back.type == h.type && back.conn == h.conn && back.seq == h.seq &&
               back.flags == h.flags && back.kind == h.kind && back.stype == h.stype &&
               back.status == h.status && back.nfields == h.nfields);
    for (int i = 0; i < IPC_MAX_FIELDS; i++)
        FUZZ_CHECK(strcmp(back.field[i], h.field[i]) == 0);
    /* A frame cut short or with a byte more is refused. */
    FUZZ_CHECK(ipc_decode(&back, out, len - 1) < 0);
    out[len] = 0;
    FUZZ_CHECK(ipc_decode(&back, out, len + 1) < 0);
}

/* Part 3: helpers. */
static void fuzz_helpers(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    int prio = (int)(int8_t)data[0];
    FUZZ_CHECK(ipc_priority_decode(ipc_priority_encode(prio)) == prio);
    int wide = size >= 4 ? (int)(int32_t)load_be(data, 4) : prio;
    int clamped = wide < -128 ? -128 : wide > 127 ? 127 : wide;
    FUZZ_CHECK(ipc_priority_decode(ipc_priority_encode(wide)) == clamped);
    (void)ipc_type_name((ipc_type_t)data[0]);

    char name[32];
    size_t n = size - 1 < sizeof name - 1 ? size - 1 : sizeof name - 1;
    memcpy(name, data + 1, n);
    name[n] = '\0';
    ipc_kind_t kind = ipc_kind_from_name(name);
    for (int k = IPC_KIND_NONE; k <= IPC_KIND_IQ; k++) {
        ipc_stype_t st = ipc_stype_from_attr((ipc_kind_t)k, name);
        const char *back = ipc_stype_name(st);
        /* A valid type names itself; NONE only comes from an absent attribute. */
        FUZZ_CHECK(st != IPC_ST_NONE);
        FUZZ_CHECK(st == IPC_ST_INVALID ? back == NULL : back && strcmp(back, name) == 0);
        FUZZ_CHECK(ipc_stype_from_attr((ipc_kind_t)k, NULL) == IPC_ST_NONE);
    }
    (void)kind;
}

/* Part 5. */
static struct {
    const unsigned char *start, *end;
    buf_t again;
} batch;

static void on_batch_msg(void *ud, const zpart_t *parts, int n)
{
    const zpart_t *id = ud;
    FUZZ_CHECK(n >= 2 && n <= ZLINK_MAX_PARTS);
    FUZZ_CHECK(parts[0].data == id->data && parts[0].len == id->len);
    for (int i = 1; i < n; i++) {
        const unsigned char *p = parts[i].data;
        FUZZ_CHECK(p >= batch.start && p + parts[i].len <= batch.end);
    }
    zbatch_append(&batch.again, parts + 1, n - 1);
}

static void fuzz_batch(const uint8_t *data, size_t size)
{
    unsigned char *copy = malloc(size ? size : 1);
    if (size)
        memcpy(copy, data, size);
    batch.start = copy;
    batch.end = copy + size;
    buf_clear(&batch.again);
    zpart_t id = {"fe", 2};
    int rc = zbatch_open(copy, size, &id, on_batch_msg, &id);
    if (batch.again.len) {
        FUZZ_CHECK(batch.again.len <= size && memcmp(batch.again.data, copy, batch.again.len) == 0);
        FUZZ_CHECK(rc < 0 || batch.again.len == size);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_batch(data, size);
    fuzz_decode(data, size);
    fuzz_round_trip(data, size);
    fuzz_helpers(data, size);
    char *copy = malloc(size ? size : 1);
    if (size)
        memcpy(copy, data, size);
    ipc_kind_t k = ipc_kind_of_payload(copy, size);
    FUZZ_CHECK(k == IPC_KIND_NONE || k == IPC_KIND_MESSAGE || k == IPC_KIND_PRESENCE ||
               k == IPC_KIND_IQ);
    free(copy);
    return 0;
}
