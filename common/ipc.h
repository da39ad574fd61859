/* ipc: the codec of the frontend <-> router link (docs/PROTOCOL.md). A message is one
 * binary header frame, optionally followed by one payload frame holding stanza bytes.
 * The header carries the routing facts the frontend already parsed, so the router can
 * route most stanzas without parsing XML. This module encodes and checks headers only;
 * it does no I/O. */
#ifndef COMMON_IPC_H
#define COMMON_IPC_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>

#define IPC_MAGIC 0x58 /* 'X' */
#define IPC_VERSION 1
#define IPC_MAX_FIELDS 4
#define IPC_FIELD_MAX 3071 /* long enough for any full JID (RFC 7622: 3 x 1023 + 2) */
#define IPC_HDR_FIXED 20
#define IPC_HDR_MAX (IPC_HDR_FIXED + IPC_MAX_FIELDS * (2 + IPC_FIELD_MAX))
/* A stanza frame is at most this many times max_stanza_size: re-serialising grows text
 * (escaping, up to six times) and repeats namespace declarations. The router drops a
 * connection that sends a longer frame; the frontend ends the stream of a client whose
 * stanza would make one. */
#define IPC_STANZA_FACTOR 8

typedef enum {
    IPC_HELLO = 1,       /* both ways: field0 sender name, conn = sender epoch */
    IPC_HEARTBEAT = 2,   /* both ways: conn = sender epoch */
    IPC_AUTH = 3,        /* fe->rt: seq, conn, status = scram_hash_t, field0 username */
    IPC_AUTH_REPLY = 4,  /* rt->fe: seq, conn, status ipc_status_t, field0 credentials */
    IPC_BIND = 5,        /* fe->rt: seq, conn, field0 full JID */
    IPC_BIND_REPLY = 6,  /* rt->fe: seq, conn, status, field0 full JID */
    IPC_STANZA = 7,      /* fe->rt: conn, kind, stype, fields to/from/id; payload */
    IPC_UNBIND = 8,      /* fe->rt: conn; the session has ended */
    IPC_DELIVER = 9,     /* rt->fe: conn, kind, stype; payload written to the client */
    IPC_CLOSE = 10,      /* rt->fe: conn, field0 stream error condition */
    IPC_RESYNC = 11,     /* fe->rt: conn, field0 full JID, flags, status = priority;
                            payload: last presence (only when available) */
    IPC_AUTH_RESULT = 12, /* fe->rt: conn, status IPC_OK or IPC_REFUSED, field0 username:
                             how an authentication attempt ended (per-account back-off) */
    IPC_TYPE_MAX = 12,
} ipc_type_t;

/* Flags of IPC_RESYNC: the session state the frontend tracked, so that a restarted router
 * can rebuild its table (docs/PROTOCOL.md, "resync"). */
#define IPC_RESYNC_AVAILABLE 0x01  /* sent initial presence, no unavailable since */
#define IPC_RESYNC_INTERESTED 0x02 /* requested the roster (RFC 6121 2.1.3) */
#define IPC_RESYNC_CARBONS 0x04    /* enabled message carbons (XEP-0280) */
#define IPC_RESYNC_BLOCKLIST 0x08  /* requested the blocklist (XEP-0191 pushes) */
/* A resync payload is the last presence (when available), then, when the session sent
 * directed presence (RFC 6121 4.6), a NUL and the targets separated by '\n' (neither can
 * occur in XML text or a prepared JID). At most this many targets are remembered. */
#define IPC_RESYNC_DIRECTED_MAX 1000

typedef enum {
    IPC_OK = 0,
    IPC_NOT_FOUND = 1, /* no such account */
    IPC_TEMPORARY = 2, /* storage unavailable: try again later */
    IPC_REFUSED = 3,   /* not allowed (e.g. bind of a JID the session may not use) */
    IPC_LOCKED = 4,    /* auth: too many failed attempts for the account, wait (back-off) */
    IPC_LIMIT = 5,     /* bind: the account has max_resources sessions already */
} ipc_status_t;

typedef enum { IPC_KIND_NONE = 0, IPC_KIND_MESSAGE, IPC_KIND_PRESENCE, IPC_KIND_IQ } ipc_kind_t;

/* Stanza type attribute values of all three kinds (RFC 6120 8.2.3, RFC 6121 4.7.1, 5.2.2). */
typedef enum {
    IPC_ST_NONE = 0, /* no type attribute: message "normal", presence available */
    IPC_ST_NORMAL,
    IPC_ST_CHAT,
    IPC_ST_GROUPCHAT,
    IPC_ST_HEADLINE,
    IPC_ST_ERROR,
    IPC_ST_UNAVAILABLE,
    IPC_ST_SUBSCRIBE,
    IPC_ST_SUBSCRIBED,
    IPC_ST_UNSUBSCRIBE,
    IPC_ST_UNSUBSCRIBED,
    IPC_ST_PROBE,
    IPC_ST_GET,
    IPC_ST_SET,
    IPC_ST_RESULT,
    IPC_ST_INVALID, /* a type attribute that is not valid for the kind */
    IPC_ST_MAX = IPC_ST_INVALID,
} ipc_stype_t;

/* A decoded header. Fields are NUL-terminated copies held inside the struct. */
typedef struct {
    uint8_t type, flags, kind, stype, status, nfields;
    uint64_t conn;
    uint32_t seq;
    const char *field[IPC_MAX_FIELDS]; /* "" for fields not present */
    char store[IPC_MAX_FIELDS * (IPC_FIELD_MAX + 1)];
} ipc_hdr_t;

/* Clears a header for building: every field "" and counts 0. */
void ipc_hdr_init(ipc_hdr_t *h, ipc_type_t type, uint64_t conn);
/* Sets field i (copied, up to IPC_FIELD_MAX bytes); returns 0, or -1 when too long. */
int ipc_hdr_set(ipc_hdr_t *h, int i, const char *value);
/* Encodes into out (at least IPC_HDR_MAX bytes); returns the length. */
size_t ipc_encode(const ipc_hdr_t *h, unsigned char *out);
/* Decodes and checks every bound: magic, version, type, kind, stype, field count and
 * lengths, no NUL inside a field, no bytes left over. Returns 0 or -1. */
int ipc_decode(ipc_hdr_t *h, const unsigned char *in, size_t len);

/* Kind and type from element and attribute names; ipc_stype_from_attr(kind, NULL) gives
 * IPC_ST_NONE. */
ipc_kind_t ipc_kind_from_name(const char *name);
ipc_stype_t ipc_stype_from_attr(ipc_kind_t kind, const char *type);
/* The attribute text of a stanza type ("chat", ...), or NULL for NONE and INVALID. */
const char *ipc_stype_name(ipc_stype_t stype);
const char *ipc_type_name(ipc_type_t type);

/* The priority carried in the status byte of IPC_RESYNC (-128..127, two's complement). */
uint8_t ipc_priority_encode(int priority);
int ipc_priority_decode(uint8_t status);

/* The key max_stanza_size. */
extern const config_key_t ipc_config_keys[];

#endif
