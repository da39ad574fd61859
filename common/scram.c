/* scram: SCRAM-SHA-1 / SCRAM-SHA-256 server side (RFC 5802, RFC 7677) and strict base64
 * (RFC 4648). All cryptography is OpenSSL's; this file only parses and glues. */
#include "scram.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>

#include "buf.h"
#include "util.h"

/* Bounds for the iteration count we accept from storage or the caller. */
#define SCRAM_ITER_MAX 10000000u
/* Salt length for fresh credentials and for the made-up salt of unknown users. */
#define SCRAM_NEW_SALT_LEN 16
/* Raw bytes behind a random server nonce (base64: 32 characters). */
#define SCRAM_NONCE_BYTES 24

typedef enum {
    SCRAM_ST_START,       /* waiting for client-first-message */
    SCRAM_ST_GOT_FIRST,   /* waiting for the caller's credentials */
    SCRAM_ST_WAIT_FINAL,  /* server-first sent, waiting for client-final-message */
    SCRAM_ST_DONE,        /* success; no further step */
    SCRAM_ST_FAILED,      /* any error ends the exchange: one attempt per object */
} scram_state_t;

struct scram_server {
    scram_hash_t hash;
    scram_state_t state;
    char *server_nonce;      /* our half of the nonce, printable ASCII */
    char *gs2_header;        /* exactly as received, up to and including its second ',' */
    char *client_first_bare; /* the part of client-first that enters AuthMessage */
    char *client_nonce;
    char *user;              /* decoded saslname */
    char *authzid;           /* decoded saslname, or NULL */
    char *server_first;      /* as sent, for AuthMessage */
    scram_cred_t cred;       /* real or made-up credentials */
    int cred_known;          /* 0: unknown user, the proof must fail whatever it is */
    int plus;                /* a -PLUS mechanism: channel binding required */
    scram_cb_t cb;           /* what the connection can bind to (all len 0: nothing) */
    int cb_type;             /* the type the client chose with p=, or -1 */
};

/* ---- hashing helpers (OpenSSL only) ---- */

static const EVP_MD *scram_md(scram_hash_t hash)
{
    switch (hash) {
    case SCRAM_SHA1:
        return EVP_sha1();
    case SCRAM_SHA256:
        return EVP_sha256();
    }
    return NULL;
}

const char *scram_mech_name(scram_hash_t hash)
{
    switch (hash) {
    case SCRAM_SHA1:
        return "SCRAM-SHA-1";
    case SCRAM_SHA256:
        return "SCRAM-SHA-256";
    }
    return NULL;
}

size_t scram_hash_len(scram_hash_t hash)
{
    switch (hash) {
    case SCRAM_SHA1:
        return 20;
    case SCRAM_SHA256:
        return 32;
    }
    return 0;
}

static int scram_hmac(scram_hash_t hash, const unsigned char *key, size_t key_len,
                      const void *data, size_t data_len, unsigned char *out)
{
    unsigned int out_len = 0;
    if (key_len > INT_MAX)
        return -1;
    if (!HMAC(scram_md(hash), key, (int)key_len, data, data_len, out, &out_len))
        return -1;
    return out_len == scram_hash_len(hash) ? 0 : -1;
}

static int scram_digest(scram_hash_t hash, const void *data, size_t len, unsigned char *out)
{
    unsigned int out_len = 0;
    if (EVP_Digest(data, len, out, &out_len, scram_md(hash), NULL) != 1)
        return -1;
    return out_len == scram_hash_len(hash) ? 0 : -1;
}

/* RFC 5802 section 3: SaltedPassword = Hi(password, salt, i) (which is PBKDF2 with HMAC),
 * StoredKey = H(HMAC(SaltedPassword, "Client Key")),
 * ServerKey = HMAC(SaltedPassword, "Server Key"). */
static int scram_derive(scram_hash_t hash, const char *password, const unsigned char *salt,
                        size_t salt_len, unsigned iter, unsigned char *stored_key,
                        unsigned char *server_key)
{
    unsigned char salted[SCRAM_MAX_KEY], client_key[SCRAM_MAX_KEY];
    size_t hlen = scram_hash_len(hash);
    size_t plen = strlen(password);
    int rc = -1;

    if (plen > INT_MAX || salt_len > INT_MAX || iter > INT_MAX)
        return -1;
    if (PKCS5_PBKDF2_HMAC(password, (int)plen, salt, (int)salt_len, (int)iter, scram_md(hash),
                          (int)hlen, salted) != 1)
        goto out;
    if (scram_hmac(hash, salted, hlen, "Client Key", 10, client_key) < 0 ||
        scram_digest(hash, client_key, hlen, stored_key) < 0 ||
        scram_hmac(hash, salted, hlen, "Server Key", 10, server_key) < 0)
        goto out;
    rc = 0;
out:
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);
    return rc;
}

/* ---- credentials ---- */

int scram_cred_make(scram_cred_t *cred, scram_hash_t hash, const char *password,
                    const unsigned char *salt, size_t salt_len, unsigned iter)
{
    scram_cred_t c;
    if (!cred || !password || !scram_md(hash) || iter < 1 || iter > SCRAM_ITER_MAX)
        return -1;
    memset(&c, 0, sizeof c);
    c.hash = hash;
    c.iter = iter;
    if (salt) {
        if (salt_len < 1 || salt_len > SCRAM_MAX_SALT)
            return -1;
        memcpy(c.salt, salt, salt_len);
        c.salt_len = salt_len;
    } else {
        random_bytes(c.salt, SCRAM_NEW_SALT_LEN);
        c.salt_len = SCRAM_NEW_SALT_LEN;
    }
    if (scram_derive(hash, password, c.salt, c.salt_len, iter, c.stored_key, c.server_key) < 0)
        return -1;
    *cred = c;
    OPENSSL_cleanse(&c, sizeof c);
    return 0;
}

/* Sanity of a credential record handed to us; a bad one is treated as unusable. */
static int scram_cred_valid(const scram_cred_t *cred)
{
    return cred && scram_md(cred->hash) && cred->iter >= 1 && cred->iter <= SCRAM_ITER_MAX &&
           cred->salt_len >= 1 && cred->salt_len <= SCRAM_MAX_SALT;
}

char *scram_saslprep(const char *password, int stored)
{
    char *out = NULL;
    if (!password ||
        stringprep_profile(password, &out, "SASLprep", stored ? STRINGPREP_NO_UNASSIGNED : 0) !=
            STRINGPREP_OK) {
        free(out);
        return NULL;
    }
    return out;
}

int scram_cred_check_password(const scram_cred_t *cred, const char *password)
{
    unsigned char stored[SCRAM_MAX_KEY], server[SCRAM_MAX_KEY];
    if (!scram_cred_valid(cred))
        return 0;
    /* The client's SCRAM library normalises the password before deriving its proof; PLAIN
     * sends it as typed, so the same preparation happens here. */
    char *prepared = scram_saslprep(password, 0);
    if (!prepared)
        return 0;
    int derived = scram_derive(cred->hash, prepared, cred->salt, cred->salt_len, cred->iter,
                               stored, server);
    OPENSSL_cleanse(prepared, strlen(prepared));
    free(prepared);
    if (derived < 0)
        return 0;
    size_t hlen = scram_hash_len(cred->hash);
    /* Both keys, without short-circuit, so timing does not tell which one differed. */
    int ok = ct_equal(stored, cred->stored_key, hlen) & ct_equal(server, cred->server_key, hlen);
    OPENSSL_cleanse(stored, sizeof stored);
    OPENSSL_cleanse(server, sizeof server);
    return ok;
}

char *scram_cred_encode(const scram_cred_t *cred)
{
    if (!scram_cred_valid(cred))
        return NULL;
    size_t hlen = scram_hash_len(cred->hash);
    char *salt = base64_encode(cred->salt, cred->salt_len);
    char *stored = base64_encode(cred->stored_key, hlen);
    char *server = base64_encode(cred->server_key, hlen);
    buf_t b = BUF_INIT;
    buf_printf(&b, "%u,%s,%s,%s", cred->iter, salt, stored, server);
    xfree(&salt);
    xfree(&stored);
    xfree(&server);
    return buf_steal(&b);
}

/* Decimal 1..SCRAM_ITER_MAX, digits only, no sign, no leading zero. */
static int scram_parse_iter(const char *s, size_t n, unsigned *out)
{
    unsigned long v = 0;
    if (n < 1 || n > 8 || s[0] == '0')
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v < 1 || v > SCRAM_ITER_MAX)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* Decodes base64 field text[0..n) into out, which must come to between min and max bytes. */
static int scram_decode_field(const char *text, size_t n, unsigned char *out, size_t min,
                              size_t max, size_t *out_len)
{
    size_t len = 0;
    unsigned char *raw = base64_decode(text, n, &len);
    int rc = -1;
    if (!raw)
        return -1;
    if (len >= min && len <= max) {
        memcpy(out, raw, len);
        *out_len = len;
        rc = 0;
    }
    OPENSSL_cleanse(raw, len);
    xfree(&raw);
    return rc;
}

int scram_cred_decode(scram_cred_t *cred, scram_hash_t hash, const char *text)
{
    const char *field[4];
    size_t flen[4];
    scram_cred_t c;
    size_t hlen = scram_hash_len(hash), n;

    if (!cred || !text || hlen == 0)
        return -1;
    /* Exactly four comma-separated fields; base64 never contains ','. */
    const char *p = text;
    for (int i = 0; i < 4; i++) {
        const char *end = strchr(p, ',');
        if (i < 3 && !end)
            return -1;
        if (i == 3 && end)
            return -1;
        field[i] = p;
        flen[i] = end ? (size_t)(end - p) : strlen(p);
        p = end ? end + 1 : p + flen[i];
    }

    memset(&c, 0, sizeof c);
    c.hash = hash;
    int rc = -1;
    if (scram_parse_iter(field[0], flen[0], &c.iter) == 0 &&
        scram_decode_field(field[1], flen[1], c.salt, 1, SCRAM_MAX_SALT, &c.salt_len) == 0 &&
        scram_decode_field(field[2], flen[2], c.stored_key, hlen, hlen, &n) == 0 &&
        scram_decode_field(field[3], flen[3], c.server_key, hlen, hlen, &n) == 0) {
        *cred = c;
        rc = 0;
    }
    OPENSSL_cleanse(&c, sizeof c);
    return rc;
}

/* ---- message syntax helpers (RFC 5802 section 7) ---- */

/* Well-formed UTF-8 (RFC 3629): no overlongs, no surrogates, nothing past U+10FFFF. */
static int scram_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t extra;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            extra = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= extra)
            return 0;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += extra + 1;
    }
    return 1;
}

/* The raw message as a C string, or NULL when it contains a NUL byte or bad UTF-8
 * (RFC 5802 section 7: value-char is UTF8-char except NUL and ','). */
static char *scram_msg_dup(const char *msg, size_t len)
{
    if (!msg || memchr(msg, '\0', len) || !scram_utf8_valid((const unsigned char *)msg, len))
        return NULL;
    return xstrndup(msg, len);
}

/* saslname = 1*(value-safe-char / "=2C" / "=3D"): ',' and '=' travel escaped; any other
 * '=' sequence is malformed (RFC 5802 section 5.1, "n" attribute). Returns malloc'd or NULL. */
static char *scram_saslname_decode(const char *s, size_t n)
{
    if (n == 0)
        return NULL;
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ',') {
            xfree(&out);
            return NULL;
        }
        if (s[i] != '=') {
            out[o++] = s[i];
            continue;
        }
        if (n - i >= 3 && s[i + 1] == '2' && s[i + 2] == 'C') {
            out[o++] = ',';
        } else if (n - i >= 3 && s[i + 1] == '3' && s[i + 2] == 'D') {
            out[o++] = '=';
        } else {
            xfree(&out);
            return NULL;
        }
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* printable = %x21-2B / %x2D-7E: the nonce alphabet. */
static int scram_is_printable(unsigned char c)
{
    return c >= 0x21 && c <= 0x7E && c != ',';
}

/* extensions = attr-val *("," attr-val), attr-val = ALPHA "=" 1*value-char.
 * `s` is the text after the separating ','; unknown extensions are ignored once checked. */
static int scram_check_extensions(const char *s)
{
    for (;;) {
        unsigned char a = (unsigned char)s[0];
        if (!((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z')) || s[1] != '=')
            return -1;
        size_t vlen = strcspn(s + 2, ",");
        if (vlen == 0)
            return -1;
        s += 2 + vlen;
        if (*s == '\0')
            return 0;
        s++; /* past ',' and on to the next attr-val */
    }
}

/* ---- channel binding ---- */

static const char *const scram_cb_names[SCRAM_CB_TYPES] = {"tls-exporter",
                                                           "tls-server-end-point"};

const char *scram_cb_name(scram_cb_type_t type)
{
    return (unsigned)type < SCRAM_CB_TYPES ? scram_cb_names[type] : NULL;
}

int scram_cb_any(const scram_cb_t *cb)
{
    if (!cb)
        return 0;
    for (int t = 0; t < SCRAM_CB_TYPES; t++)
        if (cb->len[t] > 0)
            return 1;
    return 0;
}

const char *scram_status_text(scram_status_t st)
{
    switch (st) {
    case SCRAM_OK:
        return "";
    case SCRAM_MALFORMED:
        return "invalid-encoding: not a well-formed SCRAM message";
    case SCRAM_NOT_AUTHORIZED:
        return "invalid-proof";
    case SCRAM_UNSUPPORTED_CB:
        return "unsupported-channel-binding-type: this connection offers only the types "
               "listed in <sasl-channel-binding/>";
    case SCRAM_INVALID_AUTHZID:
        return "invalid-authzid";
    case SCRAM_CB_NEEDS_PLUS:
        return "channel binding (p=) needs a -PLUS mechanism";
    case SCRAM_CB_REQUIRED:
        return "a -PLUS mechanism needs channel binding (p=)";
    case SCRAM_CB_DOWNGRADE:
        return "server-does-support-channel-binding: -PLUS was offered on this connection";
    case SCRAM_CB_MISMATCH:
        return "channel-bindings-dont-match";
    }
    return "other-error";
}

/* ---- server exchange ---- */

scram_server_t *scram_server_new(scram_hash_t hash, const char *nonce)
{
    if (!scram_md(hash))
        return NULL;
    if (nonce) {
        /* A fixed nonce must still be a valid nonce. */
        if (!nonce[0])
            return NULL;
        for (const char *p = nonce; *p; p++)
            if (!scram_is_printable((unsigned char)*p))
                return NULL;
    }
    scram_server_t *srv = xcalloc(1, sizeof *srv);
    srv->hash = hash;
    srv->state = SCRAM_ST_START;
    srv->cb_type = -1;
    if (nonce) {
        srv->server_nonce = xstrdup(nonce);
    } else {
        unsigned char raw[SCRAM_NONCE_BYTES];
        random_bytes(raw, sizeof raw);
        srv->server_nonce = base64_encode(raw, sizeof raw);
    }
    return srv;
}

void scram_server_destroy(scram_server_t **srv_p)
{
    if (!srv_p || !*srv_p)
        return;
    scram_server_t *srv = *srv_p;
    xfree(&srv->server_nonce);
    xfree(&srv->gs2_header);
    xfree(&srv->client_first_bare);
    xfree(&srv->client_nonce);
    xfree(&srv->user);
    xfree(&srv->authzid);
    xfree(&srv->server_first);
    OPENSSL_cleanse(&srv->cred, sizeof srv->cred);
    OPENSSL_cleanse(&srv->cb, sizeof srv->cb);
    xfree(srv_p);
}

int scram_server_set_channel_binding(scram_server_t *srv, int plus, const scram_cb_t *cb)
{
    if (!srv || srv->state != SCRAM_ST_START || (plus && !scram_cb_any(cb)))
        return -1;
    for (int t = 0; cb && t < SCRAM_CB_TYPES; t++)
        if (cb->len[t] > SCRAM_CB_MAX_DATA)
            return -1;
    srv->plus = plus != 0;
    if (cb)
        srv->cb = *cb;
    else
        memset(&srv->cb, 0, sizeof srv->cb);
    return 0;
}

/* RFC 5802 section 6 (and section 7, gs2-cbind-flag): what the flag may be, given the
 * mechanism and what was offered. `flag` is 'n', 'y' or 'p'; for 'p', type is the index
 * of the type named (-1: a name we do not know). */
static scram_status_t scram_cb_decide(const scram_server_t *srv, char flag, int type)
{
    if (flag == 'p') {
        if (!srv->plus)
            return SCRAM_CB_NEEDS_PLUS;
        /* "If the flag is set to "p" and the server does not support the indicated
         * channel binding type, then the server MUST fail authentication." */
        if (type < 0 || srv->cb.len[type] == 0)
            return SCRAM_UNSUPPORTED_CB;
        return SCRAM_OK;
    }
    /* A -PLUS mechanism is channel binding: without p= it is a contradiction. */
    if (srv->plus)
        return SCRAM_CB_REQUIRED;
    /* "y": the client could bind but saw no -PLUS offered. When we did offer it, someone
     * removed it on the way: "If the flag is set to "y" and the server supports channel
     * binding, the server MUST fail authentication." */
    if (flag == 'y' && scram_cb_any(&srv->cb))
        return SCRAM_CB_DOWNGRADE;
    return SCRAM_OK;
}

/* Parses the whole client-first-message in `m` into srv. */
static scram_status_t scram_parse_client_first(scram_server_t *srv, const char *m)
{
    const char *p = m;

    /* gs2-cbind-flag = ("p=" cb-name) / "n" / "y"; cb-name = 1*(ALPHA / DIGIT / "." / "-").
     * Whether the flag fits the mechanism is decided once the whole message parsed. */
    char flag = p[0];
    int cb_type = -1;
    if (flag == 'p' && p[1] == '=') {
        size_t n = strspn(p + 2, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789.-");
        if (n == 0 || p[2 + n] != ',')
            return SCRAM_MALFORMED;
        for (int t = 0; t < SCRAM_CB_TYPES; t++)
            if (strlen(scram_cb_names[t]) == n && memcmp(p + 2, scram_cb_names[t], n) == 0)
                cb_type = t;
        p += 2 + n + 1;
    } else if ((flag == 'n' || flag == 'y') && p[1] == ',') {
        p += 2;
    } else {
        return SCRAM_MALFORMED;
    }

    /* Optional authzid, then the ',' closing the gs2-header. */
    if (p[0] == 'a' && p[1] == '=') {
        const char *end = strchr(p + 2, ',');
        if (!end)
            return SCRAM_MALFORMED;
        srv->authzid = scram_saslname_decode(p + 2, (size_t)(end - p - 2));
        if (!srv->authzid)
            return SCRAM_MALFORMED;
        p = end;
    }
    if (p[0] != ',')
        return SCRAM_MALFORMED;
    p++;
    srv->gs2_header = xstrndup(m, (size_t)(p - m));

    /* client-first-message-bare. A mandatory extension ("m=") is one we cannot honour. */
    const char *bare = p;
    if (p[0] != 'n' || p[1] != '=')
        return SCRAM_MALFORMED;
    const char *end = strchr(p + 2, ',');
    if (!end)
        return SCRAM_MALFORMED;
    srv->user = scram_saslname_decode(p + 2, (size_t)(end - p - 2));
    if (!srv->user)
        return SCRAM_MALFORMED;
    p = end + 1;

    if (p[0] != 'r' || p[1] != '=')
        return SCRAM_MALFORMED;
    p += 2;
    size_t nlen = strcspn(p, ",");
    if (nlen == 0)
        return SCRAM_MALFORMED;
    for (size_t i = 0; i < nlen; i++)
        if (!scram_is_printable((unsigned char)p[i]))
            return SCRAM_MALFORMED;
    srv->client_nonce = xstrndup(p, nlen);
    p += nlen;
    if (*p == ',' && scram_check_extensions(p + 1) < 0)
        return SCRAM_MALFORMED;

    srv->client_first_bare = xstrdup(bare);
    scram_status_t st = scram_cb_decide(srv, flag, cb_type);
    if (st == SCRAM_OK)
        srv->cb_type = flag == 'p' ? cb_type : -1;
    return st;
}

scram_status_t scram_server_client_first(scram_server_t *srv, const char *msg, size_t len,
                                         const char **user, const char **authzid)
{
    if (user)
        *user = NULL;
    if (authzid)
        *authzid = NULL;
    if (!srv)
        return SCRAM_MALFORMED;
    if (srv->state != SCRAM_ST_START) {
        srv->state = SCRAM_ST_FAILED;
        return SCRAM_MALFORMED;
    }
    char *m = scram_msg_dup(msg, len);
    scram_status_t st = m ? scram_parse_client_first(srv, m) : SCRAM_MALFORMED;
    xfree(&m);
    if (st != SCRAM_OK) {
        srv->state = SCRAM_ST_FAILED;
        return st;
    }
    srv->state = SCRAM_ST_GOT_FIRST;
    if (user)
        *user = srv->user;
    if (authzid)
        *authzid = srv->authzid;
    return SCRAM_OK;
}

/* Key for made-up salts, drawn once per process. */
static unsigned char scram_fake_key[32];
static pthread_once_t scram_fake_once = PTHREAD_ONCE_INIT;

static void scram_fake_key_init(void)
{
    random_bytes(scram_fake_key, sizeof scram_fake_key);
}

/* Credentials for a user that does not exist. The salt is a keyed hash of the name, so
 * asking twice gives the same answer, as it would for a real account; the keys are random
 * and cred_known = 0 makes the proof fail regardless (RFC 5802 section 9 notes the
 * server should not reveal whether the user exists). */
static int scram_fake_cred(scram_server_t *srv)
{
    unsigned char mac[32];
    pthread_once(&scram_fake_once, scram_fake_key_init);
    if (scram_hmac(SCRAM_SHA256, scram_fake_key, sizeof scram_fake_key, srv->user,
                   strlen(srv->user), mac) < 0)
        return -1;
    memset(&srv->cred, 0, sizeof srv->cred);
    srv->cred.hash = srv->hash;
    srv->cred.iter = SCRAM_DEFAULT_ITER;
    memcpy(srv->cred.salt, mac, SCRAM_NEW_SALT_LEN);
    srv->cred.salt_len = SCRAM_NEW_SALT_LEN;
    random_bytes(srv->cred.stored_key, sizeof srv->cred.stored_key);
    random_bytes(srv->cred.server_key, sizeof srv->cred.server_key);
    srv->cred_known = 0;
    return 0;
}

scram_status_t scram_server_server_first(scram_server_t *srv, const scram_cred_t *cred,
                                         char **out)
{
    if (out)
        *out = NULL;
    if (!srv || !out)
        return SCRAM_MALFORMED;
    if (srv->state != SCRAM_ST_GOT_FIRST) {
        srv->state = SCRAM_ST_FAILED;
        return SCRAM_MALFORMED;
    }
    if (cred) {
        /* A record for another hash, or a broken one, cannot be used. */
        if (!scram_cred_valid(cred) || cred->hash != srv->hash) {
            srv->state = SCRAM_ST_FAILED;
            return SCRAM_MALFORMED;
        }
        srv->cred = *cred;
        srv->cred_known = 1;
    } else if (scram_fake_cred(srv) < 0) {
        srv->state = SCRAM_ST_FAILED;
        return SCRAM_MALFORMED;
    }

    /* server-first-message = nonce "," salt "," iteration-count (RFC 5802 section 7). */
    char *salt = base64_encode(srv->cred.salt, srv->cred.salt_len);
    buf_t b = BUF_INIT;
    buf_printf(&b, "r=%s%s,s=%s,i=%u", srv->client_nonce, srv->server_nonce, salt,
               srv->cred.iter);
    xfree(&salt);
    srv->server_first = buf_steal(&b);
    *out = xstrdup(srv->server_first);
    srv->state = SCRAM_ST_WAIT_FINAL;
    return SCRAM_OK;
}

/* RFC 5802 section 7: c= is base64(cbind-input), cbind-input = gs2-header
 * [cbind-data], the data only with p=. Returns the expected text (malloc'd). */
static char *scram_expected_cbind(const scram_server_t *srv)
{
    size_t hlen = strlen(srv->gs2_header);
    size_t dlen = srv->cb_type >= 0 ? srv->cb.len[srv->cb_type] : 0;
    unsigned char *input = xmalloc(hlen + dlen + 1);
    memcpy(input, srv->gs2_header, hlen);
    if (dlen)
        memcpy(input + hlen, srv->cb.data[srv->cb_type], dlen);
    char *out = base64_encode(input, hlen + dlen);
    xfree(&input);
    return out;
}

/* Checks client-final-message-without-proof: "c=" base64(cbind-input) "," "r=" nonce
 * ["," extensions]. The c= value must be the base64 of the exact gs2 header received,
 * followed by the connection's channel binding data when the client chose p= (RFC 5802
 * section 6: "The server MUST always validate the client's "c=" field"). That also stops a
 * change of the gs2 flag between the two messages. A c= that is well-formed base64 and
 * differs gives SCRAM_CB_MISMATCH; anything not well-formed, SCRAM_MALFORMED. */
static scram_status_t scram_check_final_fields(const scram_server_t *srv, const char *m)
{
    if (m[0] != 'c' || m[1] != '=')
        return SCRAM_MALFORMED;
    const char *end = strchr(m + 2, ',');
    if (!end || end == m + 2)
        return SCRAM_MALFORMED;
    size_t clen = (size_t)(end - m - 2), raw_len = 0;
    unsigned char *raw = base64_decode(m + 2, clen, &raw_len);
    if (!raw)
        return SCRAM_MALFORMED;
    xfree(&raw);
    char *want = scram_expected_cbind(srv);
    int same = clen == strlen(want) && memcmp(m + 2, want, clen) == 0;
    xfree(&want);

    const char *p = end + 1;
    if (p[0] != 'r' || p[1] != '=')
        return SCRAM_MALFORMED;
    p += 2;
    size_t nlen = strcspn(p, ",");
    size_t cn = strlen(srv->client_nonce), sn = strlen(srv->server_nonce);
    if (nlen != cn + sn || memcmp(p, srv->client_nonce, cn) != 0 ||
        memcmp(p + cn, srv->server_nonce, sn) != 0)
        return SCRAM_MALFORMED;
    p += nlen;
    if (*p == ',' && scram_check_extensions(p + 1) < 0)
        return SCRAM_MALFORMED;
    return same ? SCRAM_OK : SCRAM_CB_MISMATCH;
}

/* RFC 5802 section 3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage), then the
 * client is who it claims when H(ClientKey) == StoredKey. On success writes
 * ServerSignature = HMAC(ServerKey, AuthMessage) into server_sig. */
static int scram_verify_proof(const scram_server_t *srv, const unsigned char *proof,
                              const char *auth, size_t auth_len, unsigned char *server_sig)
{
    unsigned char sig[SCRAM_MAX_KEY], client_key[SCRAM_MAX_KEY], stored[SCRAM_MAX_KEY];
    size_t hlen = scram_hash_len(srv->hash);
    int ok = 0;

    if (scram_hmac(srv->hash, srv->cred.stored_key, hlen, auth, auth_len, sig) == 0) {
        for (size_t i = 0; i < hlen; i++)
            client_key[i] = proof[i] ^ sig[i];
        if (scram_digest(srv->hash, client_key, hlen, stored) == 0)
            ok = ct_equal(stored, srv->cred.stored_key, hlen) & srv->cred_known;
    }
    if (ok && scram_hmac(srv->hash, srv->cred.server_key, hlen, auth, auth_len, server_sig) < 0)
        ok = 0;
    OPENSSL_cleanse(sig, sizeof sig);
    OPENSSL_cleanse(client_key, sizeof client_key);
    OPENSSL_cleanse(stored, sizeof stored);
    return ok;
}

/* Checks the NUL-terminated client-final-message `m` (modified in place) and on success
 * sets *out to server-final-message. */
static scram_status_t scram_check_client_final(scram_server_t *srv, char *m, char **out)
{
    size_t hlen = scram_hash_len(srv->hash), plen = 0;

    /* The proof is the last attribute; no value may contain ',', so the last ',' splits
     * client-final-message-without-proof from "p=" proof. */
    char *comma = strrchr(m, ',');
    if (!comma || comma[1] != 'p' || comma[2] != '=')
        return SCRAM_MALFORMED;
    unsigned char *proof = base64_decode(comma + 3, strlen(comma + 3), &plen);
    if (!proof || plen != hlen) {
        xfree(&proof);
        return SCRAM_MALFORMED;
    }
    *comma = '\0';
    scram_status_t fields = scram_check_final_fields(srv, m);
    if (fields != SCRAM_OK) {
        xfree(&proof);
        return fields;
    }

    /* AuthMessage = client-first-message-bare "," server-first-message ","
     *               client-final-message-without-proof */
    buf_t auth = BUF_INIT;
    buf_printf(&auth, "%s,%s,%s", srv->client_first_bare, srv->server_first, m);
    unsigned char server_sig[SCRAM_MAX_KEY];
    scram_status_t st = SCRAM_NOT_AUTHORIZED;
    if (scram_verify_proof(srv, proof, auth.data, auth.len, server_sig)) {
        char *v = base64_encode(server_sig, hlen);
        buf_t b = BUF_INIT;
        buf_printf(&b, "v=%s", v);
        xfree(&v);
        *out = buf_steal(&b);
        st = SCRAM_OK;
    }
    OPENSSL_cleanse(server_sig, sizeof server_sig);
    OPENSSL_cleanse(proof, plen);
    xfree(&proof);
    buf_free(&auth);
    return st;
}

scram_status_t scram_server_client_final(scram_server_t *srv, const char *msg, size_t len,
                                         char **out)
{
    if (out)
        *out = NULL;
    if (!srv || !out)
        return SCRAM_MALFORMED;
    if (srv->state != SCRAM_ST_WAIT_FINAL) {
        srv->state = SCRAM_ST_FAILED;
        return SCRAM_MALFORMED;
    }
    char *m = scram_msg_dup(msg, len);
    scram_status_t st = m ? scram_check_client_final(srv, m, out) : SCRAM_MALFORMED;
    xfree(&m);
    /* One attempt per exchange, whatever the outcome. */
    srv->state = st == SCRAM_OK ? SCRAM_ST_DONE : SCRAM_ST_FAILED;
    return st;
}

/* ---- base64 (RFC 4648 section 4) ---- */

static const char scram_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const unsigned char *data, size_t len)
{
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    size_t out_len = (len + 2) / 3 * 4;
    char *out = xmalloc(out_len + 1);
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        out[o++] = scram_b64_alphabet[(v >> 18) & 63];
        out[o++] = scram_b64_alphabet[(v >> 12) & 63];
        out[o++] = scram_b64_alphabet[(v >> 6) & 63];
        out[o++] = scram_b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        out[o++] = scram_b64_alphabet[(v >> 18) & 63];
        out[o++] = scram_b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        out[o++] = scram_b64_alphabet[(v >> 18) & 63];
        out[o++] = scram_b64_alphabet[(v >> 12) & 63];
        out[o++] = scram_b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* Value of one base64 character, or -1 (this includes '=', whitespace and NUL). */
static int scram_b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

unsigned char *base64_decode(const char *text, size_t len, size_t *out_len)
{
    if (out_len)
        *out_len = 0;
    if ((!text && len) || len % 4 != 0)
        return NULL;
    unsigned char *out = xmalloc(len / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int last = i + 4 == len;
        /* Padding only in the final quantum, as "xx==" or "xxx=" (RFC 4648 section 3.2). */
        int pad = 0;
        if (last && text[i + 3] == '=')
            pad = text[i + 2] == '=' ? 2 : 1;
        int v[4] = {0, 0, 0, 0};
        for (int k = 0; k < 4 - pad; k++) {
            v[k] = scram_b64_value(text[i + k]);
            if (v[k] < 0)
                goto bad;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        /* Non-zero bits under the padding mean a non-canonical encoding (section 3.5). */
        if ((pad == 2 && (w & 0xFFFF)) || (pad == 1 && (w & 0xFF)))
            goto bad;
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(w >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)w;
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
bad:
    xfree(&out);
    return NULL;
}

const config_key_t scram_config_keys[] = {
    CONFIG_INT("scram_iterations", "4096", 4096, 1000000, "PBKDF2 iteration count for new credentials (xmppctl adduser/passwd, in-band registration and password change)"),
    CONFIG_END,
};

int scram_creds_make(const char *password, unsigned iter, char **sha1, char **sha256)
{
    *sha1 = *sha256 = NULL;
    char *prepared = scram_saslprep(password, 1);
    if (!prepared)
        return -1;
    if (!*prepared) {
        free(prepared);
        return -2;
    }
    scram_cred_t c1, c256;
    int failed = scram_cred_make(&c1, SCRAM_SHA1, prepared, NULL, 0, iter) < 0 ||
                 scram_cred_make(&c256, SCRAM_SHA256, prepared, NULL, 0, iter) < 0;
    OPENSSL_cleanse(prepared, strlen(prepared));
    free(prepared);
    if (!failed) {
        *sha1 = scram_cred_encode(&c1);
        *sha256 = scram_cred_encode(&c256);
    }
    OPENSSL_cleanse(&c1, sizeof c1);
    OPENSSL_cleanse(&c256, sizeof c256);
    return failed ? -3 : 0;
}

size_t scram_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}
