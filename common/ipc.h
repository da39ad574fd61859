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

#include "scram.h"

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
    IPC_BIND = 5,        /* fe->rt: seq, conn, field0 full JID, field1 client address,
                            field2 TLS version (both optional) */
    IPC_BIND_REPLY = 6,  /* rt->fe: seq, conn, status, field0 full JID */
    IPC_STANZA = 7,      /* fe->rt: conn, kind, stype, fields to/from/id; payload */
    IPC_UNBIND = 8,      /* fe->rt: conn; the session has ended */
    IPC_DELIVER = 9,     /* rt->fe: conn; payload written to the client */
    IPC_CLOSE = 10,      /* rt->fe: conn, field0 stream error condition, field1 text
                            (optional) */
    IPC_RESYNC = 11,     /* fe->rt: conn, field0 full JID, flags, status = priority,
                            field1 client address, field2 TLS version, field3 bound since
                            (Unix seconds; the last three optional); payload: last presence
                            (only when available) */
    IPC_AUTH_RESULT = 12, /* fe->rt: conn, status IPC_OK or IPC_REFUSED, field0 username:
                             how an authentication attempt ended (per-account back-off) */
    IPC_REGISTER = 13,       /* fe->rt: seq, conn, flags IPC_REGISTER_*, fields username,
                                credentials, client address, invitation token */
    IPC_REGISTER_REPLY = 14, /* rt->fe: seq, conn, status ipc_status_t */
    IPC_SM_ENABLE = 15,      /* fe->rt: seq, conn, flags IPC_SM_RESUMABLE, field0 the client's
                                max (seconds, optional): stream management (XEP-0198) */
    IPC_SM_ENABLED = 16,     /* rt->fe: seq, conn, status, field0 resumption id, field1 max */
    IPC_SM_ACK = 17,         /* fe->rt: conn, seq = the client's last <a h/> */
    IPC_SM_RESUME = 18,      /* fe->rt: seq, conn, fields resumption id, username, h,
                                "address TLS-version" */
    IPC_SM_RESUMED = 19,     /* rt->fe: seq, conn, status, flags IPC_RESYNC_*, fields full JID,
                                "IN OUT" counters, bound since; payload as resync */
    IPC_CLIENT_STATE = 20,   /* fe->rt: conn, status 1 inactive / 0 active (XEP-0352) */
    IPC_ECHO = 21,           /* fe->rt: conn, seq = h; payload: a stanza the frontend made for
                                its own client, delivered back so that it is counted */
    IPC_SM_STATE = 22,       /* fe->rt: conn, flags, fields id, "IN OUT ACKED", max: after a
                                resync */
    IPC_SM_REQUEST = 23,     /* fe->rt: conn: the client sent <r/>; the router answers with
                                IPC_SM_ACK (rt->fe: seq = the client's stanzas it handled) */
    IPC_RETURN = 24,         /* fe->rt: conn; payload: a stanza delivered (not numbered) to a
                                connection already gone or past its stream's end, handed back
                                for the router to route again */
    IPC_S2S_OUT = 25,        /* rt->fe: seq (the router's number for it, 0: none), kind, stype,
                                fields to/from/id; payload: a stanza for another domain (to's),
                                sent on the frontend's server-to-server connection from from's
                                domain to it */
    IPC_S2S_IN = 26,         /* fe->rt: conn (the server connection), kind, stype, fields
                                to/from/id; payload: a stanza another server sent (from
                                checked against the domain it authenticated as), or an error
                                the frontend made for a stanza it could not send */
    IPC_S2S_ACK = 27,        /* fe->rt: seq = how many; payload: that many 32-bit numbers
                                (network order) of s2s-out the frontend is done with (written
                                to a server connection, or bounced) */
    IPC_S2S_CLOSED = 28,     /* fe->rt: conn (an inbound server connection that had
                                authenticated), flags IPC_S2S_CLOSED_LOST, field0 the remote
                                domain: the connection is gone */
    IPC_TYPE_MAX = 28,
} ipc_type_t;

/* Flags of IPC_HELLO. */
#define IPC_HELLO_S2S 0x01 /* the sender serves server-to-server connections: the router
                              may send it IPC_S2S_OUT */
#define IPC_HELLO_BATCH 0x02 /* the sender opens batches (zlink.h): the other end may send
                                it several messages as one */

/* Flags of IPC_S2S_CLOSED. */
#define IPC_S2S_CLOSED_LOST 0x01 /* ended without the peer's </stream:stream> (reset, read or
                                    TLS error, a stream error either way): what came on it may
                                    be stale (the remote server may be gone) */

/* Flags of IPC_RESYNC: the session state the frontend tracked, so that a restarted router
 * can rebuild its table (docs/PROTOCOL.md, "resync"). */
#define IPC_RESYNC_AVAILABLE 0x01  /* sent initial presence, no unavailable since */
#define IPC_RESYNC_INTERESTED 0x02 /* requested the roster (RFC 6121 2.1.3) */
#define IPC_RESYNC_CARBONS 0x04    /* enabled message carbons (XEP-0280) */
#define IPC_RESYNC_BLOCKLIST 0x08  /* requested the blocklist (XEP-0191 pushes) */
#define IPC_RESYNC_INACTIVE 0x10   /* said <inactive/> (XEP-0352), no <active/> since */
#define IPC_RESYNC_SM 0x20         /* stream management is on: an IPC_SM_STATE follows */
/* A resync payload is the last presence (when available), then, when the session sent
 * directed presence (RFC 6121 4.6), a NUL and the targets separated by '\n' (neither can
 * occur in XML text or a prepared JID). At most this many targets are remembered. */
#define IPC_RESYNC_DIRECTED_MAX 1000

/* Flags of IPC_UNBIND. */
#define IPC_UNBIND_DETACH 0x01 /* the connection was lost (no </stream:stream>): a resumable
                                  session waits for its client to resume (XEP-0198 5) */
#define IPC_UNBIND_ACK 0x02    /* seq carries the client's last acknowledgement */
/* Flags of IPC_SM_ENABLE and IPC_SM_STATE. */
#define IPC_SM_RESUMABLE 0x01 /* <enable resume='true'/> */
/* The longest resumption id. */
#define IPC_SM_ID_MAX 64

typedef enum {
    IPC_OK = 0,
    IPC_NOT_FOUND = 1, /* no such account */
    IPC_TEMPORARY = 2, /* storage unavailable: try again later */
    IPC_REFUSED = 3,   /* not allowed (e.g. bind of a JID the session may not use) */
    IPC_LOCKED = 4,    /* auth: too many failed attempts for the account, wait (back-off) */
    IPC_LIMIT = 5,     /* bind: the account has max_resources sessions already;
                          register: the address reached its registration limit */
    IPC_CONFLICT = 6,  /* register: the name is taken (or was, by a deleted account) */
} ipc_status_t;

typedef enum { IPC_KIND_NONE = 0, IPC_KIND_MESSAGE, IPC_KIND_PRESENCE, IPC_KIND_IQ } ipc_kind_t;
#define IPC_KINDS 4
/* A name for each kind, by ipc_kind_t: "other" (NONE), "message", "presence", "iq". */
extern const char *const ipc_kind_names[IPC_KINDS];

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
/* The kind of a serialised stanza from its first element name (a prefix is skipped), for
 * counting deliveries; IPC_KIND_NONE when it is none of the three. */
ipc_kind_t ipc_kind_of_payload(const char *data, size_t len);
ipc_stype_t ipc_stype_from_attr(ipc_kind_t kind, const char *type);
/* The attribute text of a stanza type ("chat", ...), or NULL for NONE and INVALID. */
const char *ipc_stype_name(ipc_stype_t stype);
/* The name of a message type ("stanza", ...), or "?" for a number no type has (ipc_decode
 * refuses those). */
const char *ipc_type_name(ipc_type_t type);

/* The priority carried in the status byte of IPC_RESYNC (-128..127, two's complement). */
uint8_t ipc_priority_encode(int priority);
int ipc_priority_decode(uint8_t status);

/* The key max_stanza_size. */
extern const config_key_t ipc_config_keys[];

/* Typed messages. Each message type has a struct with named fields and two helpers on top
 * of the header codec above:
 *   int ipc_X_build(ipc_hdr_t *out, const ipc_X_t *msg)  fills `out` (0, or -1 when a
 *       string is longer than IPC_FIELD_MAX);
 *   int ipc_X_read(const ipc_hdr_t *in, ipc_X_t *msg)     0 when `in` is a message of that
 *       type with every field the message needs present and in range, else -1.
 * Strings read point into `in` (valid while it is). The wire format is the one of
 * docs/PROTOCOL.md: builders put each field where the table there says. */

/* hello and heartbeat (both ways): the sender's boot epoch and name. A hello needs a
 * name; a frontend's says whether it serves server-to-server connections (s2s, flag
 * IPC_HELLO_S2S); either end's whether it takes batches (flag IPC_HELLO_BATCH); a
 * heartbeat carries no flags. */
typedef struct {
    uint64_t epoch;
    const char *name;
    int s2s;
    int batch;
} ipc_hello_t;
typedef ipc_hello_t ipc_heartbeat_t;

/* auth (fe -> rt): credentials of `username` (prepared localpart) for `hash`. */
typedef struct {
    uint64_t conn;
    uint32_t seq; /* request id, never 0 */
    scram_hash_t hash;
    const char *username;
} ipc_auth_t;

/* auth-reply (rt -> fe): IPC_OK with `credentials` ("ITER,SALT,STOREDKEY,SERVERKEY"),
 * IPC_NOT_FOUND, IPC_TEMPORARY or IPC_LOCKED. */
typedef struct {
    uint64_t conn;
    uint32_t seq;
    ipc_status_t status;
    const char *credentials; /* "" unless IPC_OK */
} ipc_auth_reply_t;

/* The longest client address and TLS version a bind or resync carries (for xmppctl
 * sessions: "[ipv6]:port", "TLSv1.3"); longer ones are refused by the reader. */
#define IPC_ADDR_MAX 63
#define IPC_TLS_MAX 31

/* bind (fe -> rt): the full JID the connection asks for, with the client's address
 * ("ip:port", "[ipv6]:port"; the load balancer's PROXY header when there is one) and the
 * TLS version of its connection ("TLSv1.3", or "none"). Address and TLS version are for
 * the operators (xmppctl sessions): NULL or "" when not known. */
typedef struct {
    uint64_t conn;
    uint32_t seq;
    const char *jid;
    const char *addr, *tls;
} ipc_bind_t;

/* bind-reply (rt -> fe): IPC_OK, IPC_REFUSED, IPC_TEMPORARY or IPC_LIMIT. */
typedef struct {
    uint64_t conn;
    uint32_t seq;
    ipc_status_t status;
    const char *jid; /* the JID asked for; needed with IPC_OK */
} ipc_bind_reply_t;

/* stanza (fe -> rt): a client's stanza (payload frame) with the facts the frontend parsed:
 * kind, a type valid for it, 'to' (prepared, "" when none), 'from' (the full JID bound)
 * and 'id' (NULL or "" when none). */
typedef struct {
    uint64_t conn;
    ipc_kind_t kind;
    ipc_stype_t stype;
    const char *to, *from, *id;
    uint32_t h; /* with stream management: the client's stanzas handled, this one included
                   (mod 2^32); the router reads it only for a session with it on */
} ipc_stanza_t;

/* unbind (fe -> rt): the connection's session has ended (flags IPC_UNBIND_*: or its
 * connection was lost), with the client's last acknowledgement when it had one. */
typedef struct {
    uint64_t conn;
    uint8_t flags;
    uint32_t acked; /* with IPC_UNBIND_ACK */
} ipc_unbind_t;

/* deliver (rt -> fe): the payload frame is written to the connection's client. With
 * stream management it is `numbered` (flag IPC_DELIVER_NUMBERED) and `h` is its number
 * (XEP-0198: the count of stanzas sent, this one included, modulo 2^32: 0 is a number). */
#define IPC_DELIVER_NUMBERED 0x01
typedef struct {
    uint64_t conn;
    int numbered;
    uint32_t h;
} ipc_deliver_t;

/* close (rt -> fe): end the client's stream with this stream error condition and, when
 * `text` is neither NULL nor "", a <text/> (RFC 6120 4.9.2) saying why (xmppctl kick). */
typedef struct {
    uint64_t conn;
    const char *condition;
    const char *text;
} ipc_close_t;

/* resync (fe -> rt): a bound session the frontend resends to a router (docs/PROTOCOL.md,
 * "Resync"); flags IPC_RESYNC_*, priority -128..127 (clamped when built). The payload
 * frame carries the last presence and the directed-presence targets. */
typedef struct {
    uint64_t conn;
    const char *full_jid;
    uint8_t flags;
    int priority;
    const char *addr, *tls; /* as in bind: NULL or "" when not known */
    uint64_t since;         /* when the resource was bound (Unix seconds), 0 when unknown */
} ipc_resync_t;

/* auth-result (fe -> rt): how an authentication whose credentials were asked for ended
 * (IPC_OK or IPC_REFUSED). */
typedef struct {
    uint64_t conn;
    ipc_status_t status;
    const char *username;
} ipc_auth_result_t;

/* Flags of IPC_REGISTER. */
#define IPC_REGISTER_CHECK 0x01 /* only ask whether `token` is a valid invitation (XEP-0445
                                   preauth); no account is made, nothing is consumed */

/* register (fe -> rt): create the account `username` (prepared localpart) with
 * `credentials` ("SHA1\nSHA256", register_creds_join), for a client at `addr` (the key of
 * the per-address limit, "" when unknown), with invitation `token` ("" when none). With
 * IPC_REGISTER_CHECK only `token` is needed. */
typedef struct {
    uint64_t conn;
    uint32_t seq; /* request id, never 0 */
    uint8_t flags;
    const char *username, *credentials, *addr, *token;
} ipc_register_t;

/* register-reply (rt -> fe): IPC_OK (created; with CHECK: the token is valid),
 * IPC_CONFLICT (name taken or tombstoned), IPC_REFUSED (registration is closed and no
 * token was given), IPC_NOT_FOUND (the token is unknown, used or expired), IPC_LIMIT
 * (register_limit_per_address reached) or IPC_TEMPORARY (storage away). */
typedef struct {
    uint64_t conn;
    uint32_t seq;
    ipc_status_t status;
} ipc_register_reply_t;

/* client-state (fe -> rt): the client said <inactive/> (inactive = 1) or <active/>
 * (inactive = 0) in the urn:xmpp:csi:0 namespace (XEP-0352), after binding; sent in order
 * with its stanzas. */
typedef struct {
    uint64_t conn;
    int inactive;
} ipc_client_state_t;

int ipc_hello_build(ipc_hdr_t *out, const ipc_hello_t *msg);
int ipc_hello_read(const ipc_hdr_t *in, ipc_hello_t *msg);
int ipc_heartbeat_build(ipc_hdr_t *out, const ipc_heartbeat_t *msg);
int ipc_heartbeat_read(const ipc_hdr_t *in, ipc_heartbeat_t *msg);
int ipc_auth_build(ipc_hdr_t *out, const ipc_auth_t *msg);
int ipc_auth_read(const ipc_hdr_t *in, ipc_auth_t *msg);
int ipc_auth_reply_build(ipc_hdr_t *out, const ipc_auth_reply_t *msg);
int ipc_auth_reply_read(const ipc_hdr_t *in, ipc_auth_reply_t *msg);
int ipc_bind_build(ipc_hdr_t *out, const ipc_bind_t *msg);
int ipc_bind_read(const ipc_hdr_t *in, ipc_bind_t *msg);
int ipc_bind_reply_build(ipc_hdr_t *out, const ipc_bind_reply_t *msg);
int ipc_bind_reply_read(const ipc_hdr_t *in, ipc_bind_reply_t *msg);
/* sm-enable (fe -> rt): the bound client sent <enable/>; max: the client's preferred
 * resumption time in seconds (0: none). */
typedef struct {
    uint64_t conn;
    uint32_t seq;
    int resumable;
    uint32_t max;
} ipc_sm_enable_t;

/* sm-enabled (rt -> fe): IPC_OK with the resumption id ("" when not resumable) and the
 * resumption time the router grants (seconds), or IPC_REFUSED / IPC_TEMPORARY. */
typedef struct {
    uint64_t conn;
    uint32_t seq;
    ipc_status_t status;
    const char *id;
    uint32_t max;
} ipc_sm_enabled_t;

/* sm-ack (fe -> rt): the client acknowledged `h` stanzas (<a h/>, mod 2^32); (rt -> fe):
 * the answer to sm-request, the client's stanzas the router handled (<a h/> to write). */
typedef struct {
    uint64_t conn;
    uint32_t h;
} ipc_sm_ack_t;

/* sm-resume (fe -> rt): the authenticated `username` (prepared localpart) asks to resume
 * the session `id` having handled `h` stanzas; addr and tls as in bind ("" when not known;
 * held in the struct: both travel in one field). */
typedef struct {
    uint64_t conn;
    uint32_t seq;
    const char *id, *username;
    uint32_t h;
    char addr[IPC_ADDR_MAX + 1], tls[IPC_TLS_MAX + 1];
} ipc_sm_resume_t;

/* sm-resumed (rt -> fe): IPC_OK with the session's full JID, its state (flags
 * IPC_RESYNC_*), the counters (in: the client's stanzas the router handled; out: the
 * stanzas sent to it) and when it was bound; the payload frame carries the last presence
 * and directed-presence targets as a resync does. IPC_NOT_FOUND (no such session for this
 * account), IPC_REFUSED (h acknowledges more than was sent: `out` says how many were) or
 * IPC_TEMPORARY. */
typedef struct {
    uint64_t conn;
    uint32_t seq;
    ipc_status_t status;
    uint8_t flags;
    const char *jid;
    uint32_t in, out;
    uint64_t since;
    uint32_t max; /* the resumption time granted (seconds), 0 when not known */
} ipc_sm_resumed_t;

/* echo (fe -> rt): a stanza the frontend generated for its own client (an error, a result)
 * while stream management is on, sent through the router so that it is numbered with the
 * router's deliveries; h as in stanza. */
typedef struct {
    uint64_t conn;
    uint32_t h;
} ipc_echo_t;

/* sm-state (fe -> rt): right after the resync of a session with stream management, its
 * resumption id ("" when not resumable) and counters, so that a restarted router keeps
 * it resumable. */
typedef struct {
    uint64_t conn;
    int resumable;
    const char *id;
    uint32_t in, out, acked;
    uint32_t max; /* the resumption time granted (seconds), 0 when not known */
} ipc_sm_state_t;

int ipc_stanza_build(ipc_hdr_t *out, const ipc_stanza_t *msg);
int ipc_stanza_read(const ipc_hdr_t *in, ipc_stanza_t *msg);
int ipc_unbind_build(ipc_hdr_t *out, const ipc_unbind_t *msg);
int ipc_unbind_read(const ipc_hdr_t *in, ipc_unbind_t *msg);
int ipc_deliver_build(ipc_hdr_t *out, const ipc_deliver_t *msg);
int ipc_deliver_read(const ipc_hdr_t *in, ipc_deliver_t *msg);
int ipc_close_build(ipc_hdr_t *out, const ipc_close_t *msg);
int ipc_close_read(const ipc_hdr_t *in, ipc_close_t *msg);
int ipc_resync_build(ipc_hdr_t *out, const ipc_resync_t *msg);
int ipc_resync_read(const ipc_hdr_t *in, ipc_resync_t *msg);
int ipc_auth_result_build(ipc_hdr_t *out, const ipc_auth_result_t *msg);
int ipc_auth_result_read(const ipc_hdr_t *in, ipc_auth_result_t *msg);
int ipc_register_build(ipc_hdr_t *out, const ipc_register_t *msg);
int ipc_register_read(const ipc_hdr_t *in, ipc_register_t *msg);
int ipc_register_reply_build(ipc_hdr_t *out, const ipc_register_reply_t *msg);
int ipc_register_reply_read(const ipc_hdr_t *in, ipc_register_reply_t *msg);
int ipc_sm_enable_build(ipc_hdr_t *out, const ipc_sm_enable_t *msg);
int ipc_sm_enable_read(const ipc_hdr_t *in, ipc_sm_enable_t *msg);
int ipc_sm_enabled_build(ipc_hdr_t *out, const ipc_sm_enabled_t *msg);
int ipc_sm_enabled_read(const ipc_hdr_t *in, ipc_sm_enabled_t *msg);
int ipc_sm_ack_build(ipc_hdr_t *out, const ipc_sm_ack_t *msg);
int ipc_sm_ack_read(const ipc_hdr_t *in, ipc_sm_ack_t *msg);
int ipc_sm_resume_build(ipc_hdr_t *out, const ipc_sm_resume_t *msg);
int ipc_sm_resume_read(const ipc_hdr_t *in, ipc_sm_resume_t *msg);
int ipc_sm_resumed_build(ipc_hdr_t *out, const ipc_sm_resumed_t *msg);
int ipc_sm_resumed_read(const ipc_hdr_t *in, ipc_sm_resumed_t *msg);
int ipc_echo_build(ipc_hdr_t *out, const ipc_echo_t *msg);
int ipc_echo_read(const ipc_hdr_t *in, ipc_echo_t *msg);
/* sm-request (fe -> rt): the client asked <r/>. */
typedef struct {
    uint64_t conn;
} ipc_sm_request_t;

int ipc_sm_request_build(ipc_hdr_t *out, const ipc_sm_request_t *msg);
int ipc_sm_request_read(const ipc_hdr_t *in, ipc_sm_request_t *msg);
/* return (fe -> rt): the payload is the stanza that could not be written to `conn`. */
typedef struct {
    uint64_t conn;
} ipc_return_t;

int ipc_return_build(ipc_hdr_t *out, const ipc_return_t *msg);
int ipc_return_read(const ipc_hdr_t *in, ipc_return_t *msg);
/* s2s-out (rt -> fe) and s2s-in (fe -> rt): a stanza between servers, with the facts of
 * ipc_stanza_t (h unused; conn: in s2s-in the server connection it came on, 0 in s2s-out).
 * Both need a kind, a type the kind allows, 'to' and 'from' (RFC 6120 8.1.1.1, 8.1.2.1:
 * every stanza between servers has both). */
typedef ipc_stanza_t ipc_s2s_t;

int ipc_s2s_out_build(ipc_hdr_t *out, const ipc_s2s_t *msg);
int ipc_s2s_out_read(const ipc_hdr_t *in, ipc_s2s_t *msg);
/* In s2s-out, h is the router's number for the stanza (0: none): the frontend names it in
 * an s2s-ack once done with it (written to a server connection, or bounced). */
int ipc_s2s_in_build(ipc_hdr_t *out, const ipc_s2s_t *msg);
int ipc_s2s_in_read(const ipc_hdr_t *in, ipc_s2s_t *msg);
/* s2s-ack (fe -> rt): the payload holds n numbers of s2s-out (4 bytes each, network order)
 * the frontend is done with; at most IPC_S2S_ACK_MAX in one message. */
#define IPC_S2S_ACK_MAX 4096
typedef struct {
    uint32_t n;
} ipc_s2s_ack_t;

int ipc_s2s_ack_build(ipc_hdr_t *out, const ipc_s2s_ack_t *msg);
/* Also checks the payload's length against n (len: the payload's, 0 when none). */
int ipc_s2s_ack_read(const ipc_hdr_t *in, size_t len, ipc_s2s_ack_t *msg);

/* s2s-closed (fe -> rt): an inbound server connection that had authenticated (it may have
 * carried s2s-in) is gone: `lost` without the peer's </stream:stream> (IPC_S2S_CLOSED_LOST),
 * else in order (the peer's end, our idle close or shutdown). Needs conn and the domain. */
typedef struct {
    uint64_t conn;
    int lost;
    const char *domain;
} ipc_s2s_closed_t;

int ipc_s2s_closed_build(ipc_hdr_t *out, const ipc_s2s_closed_t *msg);
int ipc_s2s_closed_read(const ipc_hdr_t *in, ipc_s2s_closed_t *msg);
int ipc_sm_state_build(ipc_hdr_t *out, const ipc_sm_state_t *msg);
int ipc_sm_state_read(const ipc_hdr_t *in, ipc_sm_state_t *msg);
int ipc_client_state_build(ipc_hdr_t *out, const ipc_client_state_t *msg);
int ipc_client_state_read(const ipc_hdr_t *in, ipc_client_state_t *msg);

#endif
