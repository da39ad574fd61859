#include "ipc.h"

#include <string.h>

/* The stanza size bound, which the frontends enforce and the router's link frames follow. */
const config_key_t ipc_config_keys[] = {
    CONFIG_INT("max_stanza_size", "262144", 1024, 16777216, "bytes one stanza may take once authenticated (policy-violation past it)"),
    CONFIG_END,
};

void ipc_hdr_init(ipc_hdr_t *h, ipc_type_t type, uint64_t conn)
{
    h->type = (uint8_t)type;
    h->flags = h->kind = h->stype = h->status = h->nfields = 0;
    h->conn = conn;
    h->seq = 0;
    for (int i = 0; i < IPC_MAX_FIELDS; i++) {
        h->store[i * (IPC_FIELD_MAX + 1)] = '\0';
        h->field[i] = &h->store[i * (IPC_FIELD_MAX + 1)];
    }
}

int ipc_hdr_set(ipc_hdr_t *h, int i, const char *value)
{
    size_t n = strlen(value);
    if (i < 0 || i >= IPC_MAX_FIELDS || n > IPC_FIELD_MAX)
        return -1;
    char *dst = &h->store[i * (IPC_FIELD_MAX + 1)];
    memcpy(dst, value, n + 1);
    h->field[i] = dst;
    if (h->nfields < i + 1)
        h->nfields = (uint8_t)(i + 1);
    return 0;
}

static void put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Layout (network byte order):
 *   0 magic  1 version  2 type  3 flags  4..11 conn  12..15 seq
 *   16 kind  17 stype  18 status  19 nfields  then nfields x (u16 length, bytes). */
size_t ipc_encode(const ipc_hdr_t *h, unsigned char *out)
{
    out[0] = IPC_MAGIC;
    out[1] = IPC_VERSION;
    out[2] = h->type;
    out[3] = h->flags;
    put_u64(out + 4, h->conn);
    put_u32(out + 12, h->seq);
    out[16] = h->kind;
    out[17] = h->stype;
    out[18] = h->status;
    out[19] = h->nfields;
    size_t off = IPC_HDR_FIXED;
    for (int i = 0; i < h->nfields && i < IPC_MAX_FIELDS; i++) {
        size_t n = strlen(h->field[i]);
        if (n > IPC_FIELD_MAX)
            n = IPC_FIELD_MAX;
        put_u16(out + off, (uint16_t)n);
        memcpy(out + off + 2, h->field[i], n);
        off += 2 + n;
    }
    return off;
}

int ipc_decode(ipc_hdr_t *h, const unsigned char *in, size_t len)
{
    if (len < IPC_HDR_FIXED || in[0] != IPC_MAGIC || in[1] != IPC_VERSION)
        return -1;
    if (in[2] < 1 || in[2] > IPC_TYPE_MAX || in[16] > IPC_KIND_IQ || in[17] > IPC_ST_MAX ||
        in[19] > IPC_MAX_FIELDS)
        return -1;
    ipc_hdr_init(h, (ipc_type_t)in[2], get_be(in + 4, 8));
    h->flags = in[3];
    h->seq = (uint32_t)get_be(in + 12, 4);
    h->kind = in[16];
    h->stype = in[17];
    h->status = in[18];
    size_t off = IPC_HDR_FIXED;
    for (int i = 0; i < in[19]; i++) {
        if (len - off < 2)
            return -1;
        size_t n = (size_t)get_be(in + off, 2);
        off += 2;
        if (n > IPC_FIELD_MAX || len - off < n || memchr(in + off, '\0', n))
            return -1;
        char *dst = &h->store[i * (IPC_FIELD_MAX + 1)];
        memcpy(dst, in + off, n);
        dst[n] = '\0';
        off += n;
    }
    h->nfields = in[19];
    return off == len ? 0 : -1;
}

ipc_kind_t ipc_kind_from_name(const char *name)
{
    if (strcmp(name, "message") == 0)
        return IPC_KIND_MESSAGE;
    if (strcmp(name, "presence") == 0)
        return IPC_KIND_PRESENCE;
    if (strcmp(name, "iq") == 0)
        return IPC_KIND_IQ;
    return IPC_KIND_NONE;
}

static const char *const stype_names[] = {
    [IPC_ST_NORMAL] = "normal",           [IPC_ST_CHAT] = "chat",
    [IPC_ST_GROUPCHAT] = "groupchat",     [IPC_ST_HEADLINE] = "headline",
    [IPC_ST_ERROR] = "error",             [IPC_ST_UNAVAILABLE] = "unavailable",
    [IPC_ST_SUBSCRIBE] = "subscribe",     [IPC_ST_SUBSCRIBED] = "subscribed",
    [IPC_ST_UNSUBSCRIBE] = "unsubscribe", [IPC_ST_UNSUBSCRIBED] = "unsubscribed",
    [IPC_ST_PROBE] = "probe",             [IPC_ST_GET] = "get",
    [IPC_ST_SET] = "set",                 [IPC_ST_RESULT] = "result",
};

/* Which stanza types each kind allows. */
static int stype_valid(ipc_kind_t kind, ipc_stype_t st)
{
    switch (kind) {
    case IPC_KIND_MESSAGE:
        return st >= IPC_ST_NORMAL && st <= IPC_ST_ERROR;
    case IPC_KIND_PRESENCE:
        return st >= IPC_ST_ERROR && st <= IPC_ST_PROBE;
    case IPC_KIND_IQ:
        return st == IPC_ST_ERROR || (st >= IPC_ST_GET && st <= IPC_ST_RESULT);
    default:
        return 0;
    }
}

ipc_stype_t ipc_stype_from_attr(ipc_kind_t kind, const char *type)
{
    if (!type)
        return IPC_ST_NONE;
    for (int st = IPC_ST_NORMAL; st < IPC_ST_INVALID; st++)
        if (strcmp(type, stype_names[st]) == 0)
            return stype_valid(kind, (ipc_stype_t)st) ? (ipc_stype_t)st : IPC_ST_INVALID;
    return IPC_ST_INVALID;
}

const char *ipc_stype_name(ipc_stype_t stype)
{
    if (stype <= IPC_ST_NONE || stype >= IPC_ST_INVALID)
        return NULL;
    return stype_names[stype];
}

const char *ipc_type_name(ipc_type_t type)
{
    static const char *const names[] = {"?",    "hello",  "heartbeat", "auth",    "auth-reply",
                                        "bind", "bind-reply", "stanza", "unbind", "deliver",
                                        "close", "resync", "auth-result"};
    return type >= 1 && type <= IPC_TYPE_MAX ? names[type] : "?";
}

uint8_t ipc_priority_encode(int priority)
{
    if (priority < -128)
        priority = -128;
    if (priority > 127)
        priority = 127;
    return (uint8_t)(priority & 0xff);
}

int ipc_priority_decode(uint8_t status)
{
    return status < 128 ? (int)status : (int)status - 256;
}
