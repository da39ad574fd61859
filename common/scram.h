/* scram: SASL SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) on OpenSSL, with their
 * -PLUS variants (channel binding: RFC 5802 section 6, RFC 5929, RFC 9266), plus base64.
 * Accounts store only scram_cred_t (salt, iteration count, StoredKey, ServerKey), never a
 * password. The server side exchange is a small state machine that does no I/O. */
#ifndef COMMON_SCRAM_H
#define COMMON_SCRAM_H

#include <stddef.h>

#include "config.h"

typedef enum { SCRAM_SHA1 = 0, SCRAM_SHA256 = 1 } scram_hash_t;

#define SCRAM_MAX_KEY 32
#define SCRAM_MAX_SALT 64
#define SCRAM_DEFAULT_ITER 4096

typedef struct {
    scram_hash_t hash;
    unsigned iter;
    unsigned char salt[SCRAM_MAX_SALT];
    size_t salt_len;
    unsigned char stored_key[SCRAM_MAX_KEY]; /* H(ClientKey), hash-length bytes */
    unsigned char server_key[SCRAM_MAX_KEY];
} scram_cred_t;

/* "SCRAM-SHA-1" / "SCRAM-SHA-256". */
const char *scram_mech_name(scram_hash_t hash);
/* Digest length in bytes (20 or 32). */
size_t scram_hash_len(scram_hash_t hash);

/* RFC 5802 section 2.2 Normalize(): the password prepared with SASLprep (RFC 4013;
 * libidn's profile). `stored` 1 for a password about to be stored (unassigned code points
 * refused), 0 for one a client offers. Returns a malloc'd string, or NULL when the password
 * is not UTF-8 or holds what SASLprep prohibits (control characters, bidi misuse). */
char *scram_saslprep(const char *password, int stored);
/* Derives credentials from a password (already through scram_saslprep; stored = 1).
 * salt NULL: a fresh random 16-byte salt. Returns 0 or -1. */
int scram_cred_make(scram_cred_t *cred, scram_hash_t hash, const char *password,
                    const unsigned char *salt, size_t salt_len, unsigned iter);
/* 1 when `password` (as the client gave it: SASLprep is applied here) matches the
 * credentials (used by SASL PLAIN), 0 otherwise. */
int scram_cred_check_password(const scram_cred_t *cred, const char *password);
/* Text form stored in Redis: "ITER,SALT_B64,STOREDKEY_B64,SERVERKEY_B64". Returns a malloc'd
 * string. */
char *scram_cred_encode(const scram_cred_t *cred);
/* Parses the text form for the given hash. Returns 0, or -1 on any malformed value. */
int scram_cred_decode(scram_cred_t *cred, scram_hash_t hash, const char *text);

/* The key scram_iterations (PBKDF2 iterations of new credentials), read by every process
 * that makes credentials: xmppctl (adduser, passwd) and the router (in-band password
 * change, registration checks). */
extern const config_key_t scram_config_keys[];

/* The one way new account credentials are made (xmppctl adduser and passwd, in-band
 * registration on the frontend, in-band password change on the router): `password` as
 * the user gave it is prepared with SASLprep for storing (RFC 5802 2.2, RFC 4013), then
 * both SCRAM-SHA-1 and SCRAM-SHA-256 credentials are derived with fresh salts and `iter`
 * iterations. On 0, *sha1 and *sha256 are malloc'd scram_cred_encode() texts (caller
 * frees); -1 when SASLprep refuses the password (not UTF-8, prohibited characters), -2
 * when it is empty once prepared, -3 when the derivation failed. Nothing is kept. */
int scram_creds_make(const char *password, unsigned iter, char **sha1, char **sha256);
/* The length of a prepared password in characters (UTF-8 code points). */
size_t scram_utf8_chars(const char *s);

/* Server side of one exchange. */
typedef enum {
    SCRAM_OK = 0,           /* step done; send the output */
    SCRAM_MALFORMED,        /* malformed-request */
    SCRAM_NOT_AUTHORIZED,   /* wrong proof, or unknown user */
    SCRAM_UNSUPPORTED_CB,   /* p= names a channel binding type not offered on this
                             * connection (RFC 5802 e=unsupported-channel-binding-type) */
    SCRAM_INVALID_AUTHZID,  /* authzid present and not the user's own JID */
    SCRAM_CB_NEEDS_PLUS,    /* p= with a mechanism that is not -PLUS */
    SCRAM_CB_REQUIRED,      /* a -PLUS mechanism with gs2 flag n or y */
    SCRAM_CB_DOWNGRADE,     /* flag y while -PLUS was offered: a mechanism stripping
                             * attack (RFC 5802 e=server-does-support-channel-binding) */
    SCRAM_CB_MISMATCH,      /* c= is not base64(gs2-header + channel binding data)
                             * (RFC 5802 e=channel-bindings-dont-match) */
} scram_status_t;

/* A short English reason for a failed step, after RFC 5802's server-error-value names
 * where one fits ("channel-bindings-dont-match"); "" for SCRAM_OK. For SASL <text/>. */
const char *scram_status_text(scram_status_t st);

/* Channel binding (RFC 5056) for SCRAM-SHA-1-PLUS and SCRAM-SHA-256-PLUS. The types we
 * know, in the order we advertise them (XEP-0440 recommends tls-exporter first). */
typedef enum {
    SCRAM_CB_TLS_EXPORTER = 0,         /* RFC 9266: TLS 1.3, or 1.2 with extended master secret */
    SCRAM_CB_TLS_SERVER_END_POINT = 1, /* RFC 5929 section 4.1: hash of the server certificate */
    SCRAM_CB_TYPES
} scram_cb_type_t;

#define SCRAM_CB_MAX_DATA 64 /* EVP_MAX_MD_SIZE: the longest certificate hash */

/* The channel bindings of one connection: len[t] bytes of data[t] for each type available
 * on it, len[t] 0 for the others. The -PLUS mechanisms are offered on a connection exactly
 * when at least one type is available (scram_cb_any). */
typedef struct {
    size_t len[SCRAM_CB_TYPES];
    unsigned char data[SCRAM_CB_TYPES][SCRAM_CB_MAX_DATA];
} scram_cb_t;

/* The IANA channel-binding type name ("tls-exporter", "tls-server-end-point"), or NULL. */
const char *scram_cb_name(scram_cb_type_t type);
/* 1 when cb (NULL allowed) has at least one type available: -PLUS is offered. */
int scram_cb_any(const scram_cb_t *cb);

typedef struct scram_server scram_server_t;

/* nonce NULL: 24 random bytes, base64. A fixed nonce is for test vectors only. */
scram_server_t *scram_server_new(scram_hash_t hash, const char *nonce);
void scram_server_destroy(scram_server_t **srv_p);
/* Before client-first: plus 1 makes this a -PLUS exchange (the client must bind with a
 * type of cb); cb (copied; NULL: no channel binding on this connection) is what the
 * connection offers. Without this call: not -PLUS, nothing offered, so the gs2 flag y is
 * accepted. RFC 5802 section 6: with -PLUS offered (scram_cb_any), flag y fails
 * (SCRAM_CB_DOWNGRADE). Returns 0, or -1 when plus is asked without any type in cb or
 * the exchange has started. */
int scram_server_set_channel_binding(scram_server_t *srv, int plus, const scram_cb_t *cb);
/* Parses client-first-message (the raw decoded bytes). On SCRAM_OK, *user points to the
 * decoded SASL username (valid until destroy) and *authzid to the authzid or NULL. */
scram_status_t scram_server_client_first(scram_server_t *srv, const char *msg, size_t len,
                                         const char **user, const char **authzid);
/* Supplies the user's credentials (NULL when the user does not exist: the exchange goes on
 * with made-up values and fails at the proof, so it reveals nothing). *out receives the
 * server-first-message (malloc'd, NUL-terminated, caller frees). */
scram_status_t scram_server_server_first(scram_server_t *srv, const scram_cred_t *cred,
                                         char **out);
/* Checks client-final-message. On SCRAM_OK, *out receives server-final-message ("v=...",
 * malloc'd); on a wrong proof SCRAM_NOT_AUTHORIZED and *out stays NULL. */
scram_status_t scram_server_client_final(scram_server_t *srv, const char *msg, size_t len,
                                         char **out);

/* base64 (RFC 4648, with padding). encode returns a malloc'd NUL-terminated string.
 * decode returns a malloc'd buffer (NUL-terminated for convenience) and its length in
 * *out_len, or NULL on malformed input (bad characters, bad padding, whitespace). */
char *base64_encode(const unsigned char *data, size_t len);
unsigned char *base64_decode(const char *text, size_t len, size_t *out_len);

#endif
