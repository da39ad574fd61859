#include "ipc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The stanza size bound, which the frontends enforce and the router's link frames follow. */
const config_key_t ipc_config_keys[] = {
    CONFIG_INT("max_stanza_size", "262144", 1024, 16777216, "bytes one stanza may take once authenticated (policy-violation past it)"),
    CONFIG_END,
};

/* Every message type by number; a number without a name is no type (ipc_decode). */
static const char *const type_names[IPC_TYPE_MAX + 1] = {
    [IPC_HELLO] = "hello",
    [IPC_HEARTBEAT] = "heartbeat",
    [IPC_AUTH] = "auth",
    [IPC_AUTH_REPLY] = "auth-reply",
    [IPC_BIND] = "bind",
    [IPC_BIND_REPLY] = "bind-reply",
    [IPC_STANZA] = "stanza",
    [IPC_UNBIND] = "unbind",
    [IPC_DELIVER] = "deliver",
    [IPC_CLOSE] = "close",
    [IPC_RESYNC] = "resync",
    [IPC_AUTH_RESULT] = "auth-result",
    [IPC_REGISTER] = "register",
    [IPC_REGISTER_REPLY] = "register-reply",
    [IPC_SM_ENABLE] = "sm-enable",
    [IPC_SM_ENABLED] = "sm-enabled",
    [IPC_SM_ACK] = "sm-ack",
    [IPC_SM_RESUME] = "sm-resume",
    [IPC_SM_RESUMED] = "sm-resumed",
    [IPC_CLIENT_STATE] = "client-state",
    [IPC_ECHO] = "echo",
    [IPC_SM_STATE] = "sm-state",
    [IPC_SM_REQUEST] = "sm-request",
    [IPC_RETURN] = "return",
    [IPC_S2S_OUT] = "s2s-out",
    [IPC_S2S_IN] = "s2s-in",
    [IPC_S2S_ACK] = "s2s-ack",
    [IPC_S2S_CLOSED] = "s2s-closed",
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
    if (in[2] < 1 || in[2] > IPC_TYPE_MAX || !type_names[in[2]] || in[16] > IPC_KIND_IQ ||
        in[17] > IPC_ST_MAX || in[19] > IPC_MAX_FIELDS)
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

const char *const ipc_kind_names[IPC_KINDS] = {"other", "message", "presence", "iq"};

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

ipc_kind_t ipc_kind_of_payload(const char *data, size_t len)
{
    char name[16];
    size_t i = 0, n = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t'))
        i++;
    if (i >= len || data[i++] != '<')
        return IPC_KIND_NONE;
    for (; i < len && n + 1 < sizeof name; i++) {
        char c = data[i];
        if (c == ' ' || c == '>' || c == '/' || c == '\n' || c == '\r' || c == '\t')
            break;
        if (c == ':') { /* a prefix: the local name follows */
            n = 0;
            continue;
        }
        name[n++] = c;
    }
    name[n] = '\0';
    return ipc_kind_from_name(name);
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
    return type >= 1 && type <= IPC_TYPE_MAX && type_names[type] ? type_names[type] : "?";
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

/* Typed messages (ipc.h). Builders fill the header fields docs/PROTOCOL.md names; readers
 * take nothing on trust: the type, the fields each message needs and their ranges. */

static int set_field(ipc_hdr_t *h, int i, const char *value)
{
    return ipc_hdr_set(h, i, value ? value : "");
}

/* 1 when `in` is of `type` and carries at least `nfields` fields. */
static int is_msg(const ipc_hdr_t *in, ipc_type_t type, int nfields)
{
    return in->type == type && in->nfields >= nfields;
}

static int hello_build(ipc_hdr_t *out, ipc_type_t type, const ipc_hello_t *msg)
{
    ipc_hdr_init(out, type, msg->epoch);
    return set_field(out, 0, msg->name);
}

int ipc_hello_build(ipc_hdr_t *out, const ipc_hello_t *msg)
{
    int rc = hello_build(out, IPC_HELLO, msg);
    out->flags = (uint8_t)((msg->s2s ? IPC_HELLO_S2S : 0) | (msg->batch ? IPC_HELLO_BATCH : 0));
    return rc;
}

int ipc_hello_read(const ipc_hdr_t *in, ipc_hello_t *msg)
{
    if (!is_msg(in, IPC_HELLO, 1) || !in->field[0][0] ||
        (in->flags & ~(IPC_HELLO_S2S | IPC_HELLO_BATCH)))
        return -1;
    *msg = (ipc_hello_t){.epoch = in->conn, .name = in->field[0],
                         .s2s = !!(in->flags & IPC_HELLO_S2S),
                         .batch = !!(in->flags & IPC_HELLO_BATCH)};
    return 0;
}

int ipc_heartbeat_build(ipc_hdr_t *out, const ipc_heartbeat_t *msg)
{
    return hello_build(out, IPC_HEARTBEAT, msg);
}

int ipc_heartbeat_read(const ipc_hdr_t *in, ipc_heartbeat_t *msg)
{
    if (!is_msg(in, IPC_HEARTBEAT, 0))
        return -1;
    *msg = (ipc_heartbeat_t){.epoch = in->conn, .name = in->field[0]};
    return 0;
}

int ipc_auth_build(ipc_hdr_t *out, const ipc_auth_t *msg)
{
    ipc_hdr_init(out, IPC_AUTH, msg->conn);
    out->seq = msg->seq;
    out->status = (uint8_t)msg->hash;
    return set_field(out, 0, msg->username);
}

int ipc_auth_read(const ipc_hdr_t *in, ipc_auth_t *msg)
{
    if (!is_msg(in, IPC_AUTH, 1) || !in->seq || !in->field[0][0] ||
        (in->status != SCRAM_SHA1 && in->status != SCRAM_SHA256))
        return -1;
    *msg = (ipc_auth_t){.conn = in->conn, .seq = in->seq, .hash = (scram_hash_t)in->status,
                        .username = in->field[0]};
    return 0;
}

int ipc_auth_reply_build(ipc_hdr_t *out, const ipc_auth_reply_t *msg)
{
    ipc_hdr_init(out, IPC_AUTH_REPLY, msg->conn);
    out->seq = msg->seq;
    out->status = (uint8_t)msg->status;
    return msg->status == IPC_OK ? set_field(out, 0, msg->credentials) : 0;
}

int ipc_auth_reply_read(const ipc_hdr_t *in, ipc_auth_reply_t *msg)
{
    if (!is_msg(in, IPC_AUTH_REPLY, 0) || !in->seq ||
        (in->status != IPC_OK && in->status != IPC_NOT_FOUND && in->status != IPC_TEMPORARY &&
         in->status != IPC_LOCKED))
        return -1;
    *msg = (ipc_auth_reply_t){.conn = in->conn, .seq = in->seq,
                              .status = (ipc_status_t)in->status,
                              .credentials = in->status == IPC_OK ? in->field[0] : ""};
    return 0;
}

/* A client address or TLS version: at most `max` bytes of printable ASCII without
 * spaces (they end up in tab-separated xmppctl output), or "". */
static int token_ok(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n == max || (unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f)
            return 0;
    return 1;
}

/* Sets the optional address and TLS fields (at first and first + 1), leaving them out
 * when both are empty so that older readers see the message they know. */
static int set_conn_facts(ipc_hdr_t *out, int first, const char *addr, const char *tls)
{
    addr = addr ? addr : "";
    tls = tls ? tls : "";
    if (!token_ok(addr, IPC_ADDR_MAX) || !token_ok(tls, IPC_TLS_MAX))
        return -1;
    if (!*addr && !*tls)
        return 0;
    return set_field(out, first, addr) < 0 || set_field(out, first + 1, tls) < 0 ? -1 : 0;
}

int ipc_bind_build(ipc_hdr_t *out, const ipc_bind_t *msg)
{
    ipc_hdr_init(out, IPC_BIND, msg->conn);
    out->seq = msg->seq;
    if (set_field(out, 0, msg->jid) < 0)
        return -1;
    return set_conn_facts(out, 1, msg->addr, msg->tls);
}

int ipc_bind_read(const ipc_hdr_t *in, ipc_bind_t *msg)
{
    if (!is_msg(in, IPC_BIND, 1) || !in->seq || !in->field[0][0] ||
        !token_ok(in->field[1], IPC_ADDR_MAX) || !token_ok(in->field[2], IPC_TLS_MAX))
        return -1;
    *msg = (ipc_bind_t){.conn = in->conn, .seq = in->seq, .jid = in->field[0],
                        .addr = in->field[1], .tls = in->field[2]};
    return 0;
}

int ipc_bind_reply_build(ipc_hdr_t *out, const ipc_bind_reply_t *msg)
{
    ipc_hdr_init(out, IPC_BIND_REPLY, msg->conn);
    out->seq = msg->seq;
    out->status = (uint8_t)msg->status;
    return set_field(out, 0, msg->jid);
}

int ipc_bind_reply_read(const ipc_hdr_t *in, ipc_bind_reply_t *msg)
{
    if (!is_msg(in, IPC_BIND_REPLY, 0) || !in->seq ||
        (in->status != IPC_OK && in->status != IPC_REFUSED && in->status != IPC_TEMPORARY &&
         in->status != IPC_LIMIT) ||
        (in->status == IPC_OK && !in->field[0][0]))
        return -1;
    *msg = (ipc_bind_reply_t){.conn = in->conn, .seq = in->seq,
                              .status = (ipc_status_t)in->status, .jid = in->field[0]};
    return 0;
}

static int stanza_build(ipc_hdr_t *out, ipc_type_t type, const ipc_stanza_t *msg)
{
    ipc_hdr_init(out, type, msg->conn);
    out->seq = msg->h;
    out->kind = (uint8_t)msg->kind;
    out->stype = (uint8_t)msg->stype;
    if (set_field(out, 0, msg->to) < 0 || set_field(out, 1, msg->from) < 0)
        return -1;
    return msg->id ? set_field(out, 2, msg->id) : 0;
}

/* A stanza's facts: a kind, a type that kind allows (an iq always has one: RFC 6120
 * 8.2.3), a 'from', and with need_to a 'to'. */
static int stanza_read(const ipc_hdr_t *in, ipc_type_t type, int need_to, ipc_stanza_t *msg)
{
    ipc_kind_t kind = (ipc_kind_t)in->kind;
    ipc_stype_t st = (ipc_stype_t)in->stype;
    if (!is_msg(in, type, 2) || !in->field[1][0] || (need_to && !in->field[0][0]) ||
        kind == IPC_KIND_NONE || (st == IPC_ST_NONE ? kind == IPC_KIND_IQ : !stype_valid(kind, st)))
        return -1;
    *msg = (ipc_stanza_t){.conn = in->conn, .kind = kind, .stype = st, .to = in->field[0],
                          .from = in->field[1], .id = in->field[2], .h = in->seq};
    return 0;
}

int ipc_stanza_build(ipc_hdr_t *out, const ipc_stanza_t *msg)
{
    return stanza_build(out, IPC_STANZA, msg);
}

int ipc_stanza_read(const ipc_hdr_t *in, ipc_stanza_t *msg)
{
    return stanza_read(in, IPC_STANZA, 0, msg);
}

int ipc_s2s_out_build(ipc_hdr_t *out, const ipc_s2s_t *msg)
{
    return stanza_build(out, IPC_S2S_OUT, msg);
}

int ipc_s2s_out_read(const ipc_hdr_t *in, ipc_s2s_t *msg)
{
    return in->flags ? -1 : stanza_read(in, IPC_S2S_OUT, 1, msg);
}

int ipc_s2s_in_build(ipc_hdr_t *out, const ipc_s2s_t *msg)
{
    ipc_s2s_t m = *msg;
    m.h = 0;
    return stanza_build(out, IPC_S2S_IN, &m);
}

int ipc_s2s_in_read(const ipc_hdr_t *in, ipc_s2s_t *msg)
{
    return in->seq || in->flags ? -1 : stanza_read(in, IPC_S2S_IN, 1, msg);
}

int ipc_s2s_ack_build(ipc_hdr_t *out, const ipc_s2s_ack_t *msg)
{
    ipc_hdr_init(out, IPC_S2S_ACK, 0);
    out->seq = msg->n;
    return msg->n > IPC_S2S_ACK_MAX ? -1 : 0;
}

int ipc_s2s_ack_read(const ipc_hdr_t *in, size_t len, ipc_s2s_ack_t *msg)
{
    if (!is_msg(in, IPC_S2S_ACK, 0) || in->flags || in->conn || in->seq == 0 ||
        in->seq > IPC_S2S_ACK_MAX || len != (size_t)in->seq * 4)
        return -1;
    msg->n = in->seq;
    return 0;
}

int ipc_s2s_closed_build(ipc_hdr_t *out, const ipc_s2s_closed_t *msg)
{
    ipc_hdr_init(out, IPC_S2S_CLOSED, msg->conn);
    out->flags = msg->lost ? IPC_S2S_CLOSED_LOST : 0;
    return set_field(out, 0, msg->domain);
}

int ipc_s2s_closed_read(const ipc_hdr_t *in, ipc_s2s_closed_t *msg)
{
    if (!is_msg(in, IPC_S2S_CLOSED, 1) || !in->conn || in->seq ||
        (in->flags & ~IPC_S2S_CLOSED_LOST) || !in->field[0][0])
        return -1;
    *msg = (ipc_s2s_closed_t){.conn = in->conn, .lost = (in->flags & IPC_S2S_CLOSED_LOST) != 0,
                              .domain = in->field[0]};
    return 0;
}

int ipc_unbind_build(ipc_hdr_t *out, const ipc_unbind_t *msg)
{
    ipc_hdr_init(out, IPC_UNBIND, msg->conn);
    out->flags = msg->flags;
    out->seq = msg->flags & IPC_UNBIND_ACK ? msg->acked : 0;
    return 0;
}

int ipc_unbind_read(const ipc_hdr_t *in, ipc_unbind_t *msg)
{
    if (!is_msg(in, IPC_UNBIND, 0) || (in->flags & ~(IPC_UNBIND_DETACH | IPC_UNBIND_ACK)))
        return -1;
    *msg = (ipc_unbind_t){.conn = in->conn, .flags = in->flags, .acked = in->seq};
    return 0;
}

int ipc_deliver_build(ipc_hdr_t *out, const ipc_deliver_t *msg)
{
    ipc_hdr_init(out, IPC_DELIVER, msg->conn);
    out->flags = msg->numbered ? IPC_DELIVER_NUMBERED : 0;
    out->seq = msg->numbered ? msg->h : 0;
    return 0;
}

int ipc_deliver_read(const ipc_hdr_t *in, ipc_deliver_t *msg)
{
    if (!is_msg(in, IPC_DELIVER, 0) || (in->flags & ~IPC_DELIVER_NUMBERED))
        return -1;
    *msg = (ipc_deliver_t){.conn = in->conn,
                           .numbered = (in->flags & IPC_DELIVER_NUMBERED) != 0, .h = in->seq};
    return 0;
}

int ipc_close_build(ipc_hdr_t *out, const ipc_close_t *msg)
{
    ipc_hdr_init(out, IPC_CLOSE, msg->conn);
    if (set_field(out, 0, msg->condition) < 0)
        return -1;
    return msg->text && *msg->text ? set_field(out, 1, msg->text) : 0;
}

/* A condition is an element name of RFC 6120 4.9.3: lower-case letters and '-'. */
static int condition_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || *s == '-'))
            return 0;
    return 1;
}

int ipc_close_read(const ipc_hdr_t *in, ipc_close_t *msg)
{
    if (!is_msg(in, IPC_CLOSE, 1) || !condition_ok(in->field[0]))
        return -1;
    *msg = (ipc_close_t){.conn = in->conn, .condition = in->field[0], .text = in->field[1]};
    return 0;
}

#define IPC_RESYNC_KNOWN                                                                    \
    (IPC_RESYNC_AVAILABLE | IPC_RESYNC_INTERESTED | IPC_RESYNC_CARBONS | IPC_RESYNC_BLOCKLIST | \
     IPC_RESYNC_INACTIVE | IPC_RESYNC_SM)

int ipc_resync_build(ipc_hdr_t *out, const ipc_resync_t *msg)
{
    ipc_hdr_init(out, IPC_RESYNC, msg->conn);
    out->flags = msg->flags;
    out->status = ipc_priority_encode(msg->priority);
    if (set_field(out, 0, msg->full_jid) < 0)
        return -1;
    const char *addr = msg->addr ? msg->addr : "", *tls = msg->tls ? msg->tls : "";
    if (!msg->since && !*addr && !*tls)
        return 0;
    char since[24];
    snprintf(since, sizeof since, "%" PRIu64, msg->since);
    if (!token_ok(addr, IPC_ADDR_MAX) || !token_ok(tls, IPC_TLS_MAX) ||
        set_field(out, 1, addr) < 0 || set_field(out, 2, tls) < 0)
        return -1;
    return set_field(out, 3, since);
}

/* Unix seconds in decimal, at most 19 digits (fits 64 bits); "" is 0. */
static int since_read(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (n == 19 || s[n] < '0' || s[n] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[n] - '0');
    }
    *out = v;
    return 0;
}

int ipc_resync_read(const ipc_hdr_t *in, ipc_resync_t *msg)
{
    uint64_t since;
    if (!is_msg(in, IPC_RESYNC, 1) || !in->field[0][0] || (in->flags & ~IPC_RESYNC_KNOWN) ||
        !token_ok(in->field[1], IPC_ADDR_MAX) || !token_ok(in->field[2], IPC_TLS_MAX) ||
        since_read(in->field[3], &since) < 0)
        return -1;
    *msg = (ipc_resync_t){.conn = in->conn, .full_jid = in->field[0], .flags = in->flags,
                          .priority = ipc_priority_decode(in->status), .addr = in->field[1],
                          .tls = in->field[2], .since = since};
    return 0;
}

int ipc_auth_result_build(ipc_hdr_t *out, const ipc_auth_result_t *msg)
{
    ipc_hdr_init(out, IPC_AUTH_RESULT, msg->conn);
    out->status = (uint8_t)msg->status;
    return set_field(out, 0, msg->username);
}

int ipc_auth_result_read(const ipc_hdr_t *in, ipc_auth_result_t *msg)
{
    if (!is_msg(in, IPC_AUTH_RESULT, 1) || !in->field[0][0] ||
        (in->status != IPC_OK && in->status != IPC_REFUSED))
        return -1;
    *msg = (ipc_auth_result_t){.conn = in->conn, .status = (ipc_status_t)in->status,
                               .username = in->field[0]};
    return 0;
}

int ipc_register_build(ipc_hdr_t *out, const ipc_register_t *msg)
{
    ipc_hdr_init(out, IPC_REGISTER, msg->conn);
    out->seq = msg->seq;
    out->flags = msg->flags;
    if (set_field(out, 0, msg->username) < 0 || set_field(out, 1, msg->credentials) < 0 ||
        set_field(out, 2, msg->addr) < 0)
        return -1;
    return set_field(out, 3, msg->token);
}

int ipc_register_read(const ipc_hdr_t *in, ipc_register_t *msg)
{
    if (!is_msg(in, IPC_REGISTER, 4) || !in->seq || (in->flags & ~IPC_REGISTER_CHECK))
        return -1;
    if (in->flags & IPC_REGISTER_CHECK ? !in->field[3][0]
                                       : !in->field[0][0] || !in->field[1][0])
        return -1;
    *msg = (ipc_register_t){.conn = in->conn, .seq = in->seq, .flags = in->flags,
                            .username = in->field[0], .credentials = in->field[1],
                            .addr = in->field[2], .token = in->field[3]};
    return 0;
}

int ipc_register_reply_build(ipc_hdr_t *out, const ipc_register_reply_t *msg)
{
    ipc_hdr_init(out, IPC_REGISTER_REPLY, msg->conn);
    out->seq = msg->seq;
    out->status = (uint8_t)msg->status;
    return 0;
}

int ipc_register_reply_read(const ipc_hdr_t *in, ipc_register_reply_t *msg)
{
    if (!is_msg(in, IPC_REGISTER_REPLY, 0) || !in->seq ||
        (in->status != IPC_OK && in->status != IPC_CONFLICT && in->status != IPC_REFUSED &&
         in->status != IPC_NOT_FOUND && in->status != IPC_LIMIT && in->status != IPC_TEMPORARY))
        return -1;
    *msg = (ipc_register_reply_t){.conn = in->conn, .seq = in->seq,
                                  .status = (ipc_status_t)in->status};
    return 0;
}

/* A 32-bit counter in decimal (at most 10 digits, at most 2^32 - 1); "" is refused. */
static int u32_read(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (n == 10 || s[n] < '0' || s[n] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[n] - '0');
    }
    if (!n || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* Reads "A B" or "A B C" (counters separated by one space) into up to three values. */
static int counters_read(const char *s, uint32_t *v, int n)
{
    char tmp[40];
    if (strlen(s) >= sizeof tmp)
        return -1;
    strcpy(tmp, s);
    char *p = tmp;
    for (int i = 0; i < n; i++) {
        char *sp = i < n - 1 ? strchr(p, ' ') : NULL;
        if (i < n - 1 && !sp)
            return -1;
        if (sp)
            *sp = '\0';
        if (u32_read(p, &v[i]) < 0)
            return -1;
        p = sp ? sp + 1 : p;
    }
    return 0;
}

/* A resumption id: 1..IPC_SM_ID_MAX letters, digits, '-' or '_'. */
static int sm_id_ok(const char *s, int empty_ok)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n == IPC_SM_ID_MAX ||
            !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
              (s[n] >= '0' && s[n] <= '9') || s[n] == '-' || s[n] == '_'))
            return 0;
    return n || empty_ok;
}

int ipc_sm_enable_build(ipc_hdr_t *out, const ipc_sm_enable_t *msg)
{
    ipc_hdr_init(out, IPC_SM_ENABLE, msg->conn);
    out->seq = msg->seq;
    out->flags = msg->resumable ? IPC_SM_RESUMABLE : 0;
    if (!msg->max)
        return 0;
    char max[12];
    snprintf(max, sizeof max, "%" PRIu32, msg->max);
    return set_field(out, 0, max);
}

int ipc_sm_enable_read(const ipc_hdr_t *in, ipc_sm_enable_t *msg)
{
    uint32_t max = 0;
    if (!is_msg(in, IPC_SM_ENABLE, 0) || !in->seq || (in->flags & ~IPC_SM_RESUMABLE) ||
        (in->field[0][0] && u32_read(in->field[0], &max) < 0))
        return -1;
    *msg = (ipc_sm_enable_t){.conn = in->conn, .seq = in->seq,
                             .resumable = (in->flags & IPC_SM_RESUMABLE) != 0, .max = max};
    return 0;
}

int ipc_sm_enabled_build(ipc_hdr_t *out, const ipc_sm_enabled_t *msg)
{
    ipc_hdr_init(out, IPC_SM_ENABLED, msg->conn);
    out->seq = msg->seq;
    out->status = (uint8_t)msg->status;
    char max[12];
    snprintf(max, sizeof max, "%" PRIu32, msg->max);
    return set_field(out, 0, msg->id) < 0 || set_field(out, 1, max) < 0 ? -1 : 0;
}

int ipc_sm_enabled_read(const ipc_hdr_t *in, ipc_sm_enabled_t *msg)
{
    uint32_t max = 0;
    if (!is_msg(in, IPC_SM_ENABLED, 0) || !in->seq ||
        (in->status != IPC_OK && in->status != IPC_REFUSED && in->status != IPC_TEMPORARY))
        return -1;
    if (in->status == IPC_OK && (!sm_id_ok(in->field[0], 1) || u32_read(in->field[1], &max) < 0))
        return -1;
    *msg = (ipc_sm_enabled_t){.conn = in->conn, .seq = in->seq,
                              .status = (ipc_status_t)in->status, .id = in->field[0],
                              .max = max};
    return 0;
}

int ipc_sm_ack_build(ipc_hdr_t *out, const ipc_sm_ack_t *msg)
{
    ipc_hdr_init(out, IPC_SM_ACK, msg->conn);
    out->seq = msg->h;
    return 0;
}

int ipc_sm_ack_read(const ipc_hdr_t *in, ipc_sm_ack_t *msg)
{
    if (!is_msg(in, IPC_SM_ACK, 0))
        return -1;
    *msg = (ipc_sm_ack_t){.conn = in->conn, .h = in->seq};
    return 0;
}

int ipc_sm_resume_build(ipc_hdr_t *out, const ipc_sm_resume_t *msg)
{
    ipc_hdr_init(out, IPC_SM_RESUME, msg->conn);
    out->seq = msg->seq;
    const char *addr = msg->addr, *tls = msg->tls;
    char h[12], facts[IPC_ADDR_MAX + IPC_TLS_MAX + 2];
    snprintf(h, sizeof h, "%" PRIu32, msg->h);
    if (!token_ok(addr, IPC_ADDR_MAX) || !token_ok(tls, IPC_TLS_MAX))
        return -1;
    snprintf(facts, sizeof facts, "%s %s", addr, tls);
    if (set_field(out, 0, msg->id) < 0 || set_field(out, 1, msg->username) < 0 ||
        set_field(out, 2, h) < 0)
        return -1;
    return set_field(out, 3, facts);
}

int ipc_sm_resume_read(const ipc_hdr_t *in, ipc_sm_resume_t *msg)
{
    uint32_t h;
    if (!is_msg(in, IPC_SM_RESUME, 3) || !in->seq || !sm_id_ok(in->field[0], 0) ||
        !in->field[1][0] || u32_read(in->field[2], &h) < 0)
        return -1;
    *msg = (ipc_sm_resume_t){.conn = in->conn, .seq = in->seq, .id = in->field[0],
                             .username = in->field[1], .h = h};
    /* "ADDRESS TLS" (either may be empty), each part checked as in bind. */
    const char *facts = in->field[3], *sp = strchr(facts, ' ');
    if (*facts) {
        if (!sp || (size_t)(sp - facts) > IPC_ADDR_MAX || strlen(sp + 1) > IPC_TLS_MAX)
            return -1;
        memcpy(msg->addr, facts, (size_t)(sp - facts));
        msg->addr[sp - facts] = '\0';
        strcpy(msg->tls, sp + 1);
        if (!token_ok(msg->addr, IPC_ADDR_MAX) || !token_ok(msg->tls, IPC_TLS_MAX))
            return -1;
    }
    return 0;
}

int ipc_sm_resumed_build(ipc_hdr_t *out, const ipc_sm_resumed_t *msg)
{
    ipc_hdr_init(out, IPC_SM_RESUMED, msg->conn);
    out->seq = msg->seq;
    out->status = (uint8_t)msg->status;
    out->flags = msg->flags;
    char counters[24], since[24];
    snprintf(counters, sizeof counters, "%" PRIu32 " %" PRIu32, msg->in, msg->out);
    snprintf(since, sizeof since, "%" PRIu64, msg->since);
    if (set_field(out, 0, msg->jid) < 0 || set_field(out, 1, counters) < 0 ||
        set_field(out, 2, since) < 0)
        return -1;
    if (!msg->max)
        return 0;
    char max[12];
    snprintf(max, sizeof max, "%" PRIu32, msg->max);
    return set_field(out, 3, max);
}

int ipc_sm_resumed_read(const ipc_hdr_t *in, ipc_sm_resumed_t *msg)
{
    uint32_t c[2], max = 0;
    uint64_t since;
    if (!is_msg(in, IPC_SM_RESUMED, 3) || !in->seq || (in->flags & ~IPC_RESYNC_KNOWN) ||
        (in->status != IPC_OK && in->status != IPC_NOT_FOUND && in->status != IPC_REFUSED &&
         in->status != IPC_TEMPORARY) ||
        counters_read(in->field[1], c, 2) < 0 || since_read(in->field[2], &since) < 0 ||
        (in->field[3][0] && u32_read(in->field[3], &max) < 0) ||
        (in->status == IPC_OK && !in->field[0][0]))
        return -1;
    *msg = (ipc_sm_resumed_t){.conn = in->conn, .seq = in->seq,
                              .status = (ipc_status_t)in->status, .flags = in->flags,
                              .jid = in->field[0], .in = c[0], .out = c[1], .since = since,
                              .max = max};
    return 0;
}

int ipc_echo_build(ipc_hdr_t *out, const ipc_echo_t *msg)
{
    ipc_hdr_init(out, IPC_ECHO, msg->conn);
    out->seq = msg->h;
    return 0;
}

int ipc_echo_read(const ipc_hdr_t *in, ipc_echo_t *msg)
{
    if (!is_msg(in, IPC_ECHO, 0))
        return -1;
    *msg = (ipc_echo_t){.conn = in->conn, .h = in->seq};
    return 0;
}

int ipc_sm_state_build(ipc_hdr_t *out, const ipc_sm_state_t *msg)
{
    ipc_hdr_init(out, IPC_SM_STATE, msg->conn);
    out->flags = msg->resumable ? IPC_SM_RESUMABLE : 0;
    char counters[36];
    snprintf(counters, sizeof counters, "%" PRIu32 " %" PRIu32 " %" PRIu32, msg->in, msg->out,
             msg->acked);
    if (set_field(out, 0, msg->id) < 0 || set_field(out, 1, counters) < 0)
        return -1;
    if (!msg->max)
        return 0;
    char max[12];
    snprintf(max, sizeof max, "%" PRIu32, msg->max);
    return set_field(out, 2, max);
}

int ipc_sm_state_read(const ipc_hdr_t *in, ipc_sm_state_t *msg)
{
    uint32_t c[3], max = 0;
    int resumable = (in->flags & IPC_SM_RESUMABLE) != 0;
    if (!is_msg(in, IPC_SM_STATE, 2) || (in->flags & ~IPC_SM_RESUMABLE) ||
        !sm_id_ok(in->field[0], !resumable) || counters_read(in->field[1], c, 3) < 0 ||
        (in->field[2][0] && u32_read(in->field[2], &max) < 0))
        return -1;
    *msg = (ipc_sm_state_t){.conn = in->conn, .resumable = resumable, .id = in->field[0],
                            .in = c[0], .out = c[1], .acked = c[2], .max = max};
    return 0;
}

int ipc_client_state_build(ipc_hdr_t *out, const ipc_client_state_t *msg)
{
    ipc_hdr_init(out, IPC_CLIENT_STATE, msg->conn);
    out->status = msg->inactive ? 1 : 0;
    return 0;
}

int ipc_client_state_read(const ipc_hdr_t *in, ipc_client_state_t *msg)
{
    if (!is_msg(in, IPC_CLIENT_STATE, 0) || in->flags || in->status > 1)
        return -1;
    *msg = (ipc_client_state_t){.conn = in->conn, .inactive = in->status};
    return 0;
}

int ipc_sm_request_build(ipc_hdr_t *out, const ipc_sm_request_t *msg)
{
    ipc_hdr_init(out, IPC_SM_REQUEST, msg->conn);
    return 0;
}

int ipc_sm_request_read(const ipc_hdr_t *in, ipc_sm_request_t *msg)
{
    if (!is_msg(in, IPC_SM_REQUEST, 0) || in->flags)
        return -1;
    msg->conn = in->conn;
    return 0;
}

int ipc_return_build(ipc_hdr_t *out, const ipc_return_t *msg)
{
    ipc_hdr_init(out, IPC_RETURN, msg->conn);
    return 0;
}

int ipc_return_read(const ipc_hdr_t *in, ipc_return_t *msg)
{
    if (!is_msg(in, IPC_RETURN, 0) || in->flags)
        return -1;
    msg->conn = in->conn;
    return 0;
}
