/* libFuzzer harness for SCRAM message parsing and base64 (common/scram.c).
 *
 * Input: byte 0 chooses the exchange (bit 0: SHA-256 instead of SHA-1; bit 1: the user
 * does not exist; bit 2: credentials of the other hash, which must be refused; bit 3: the
 * connection offers channel binding (both types, the fixed data of fuzz_cb); bit 4 with
 * bit 3: a -PLUS exchange (SCRAM-SHA-*-PLUS)); the rest
 * is split at NUL bytes (which no SCRAM message may hold) into client-first-message,
 * client-final-message and a third piece used for base64 and the stored-credentials text.
 * The server runs with the fixed nonces and credentials of the RFC 5802 / RFC 7677 test
 * vectors (user "user", password "pencil"), so a seed made of those messages reaches
 * success and mutations of it reach every check on the way.
 *
 * Checked: no success without the user's credentials; a -PLUS exchange succeeds only with
 * p= and c= carrying the header and the binding data of the type named, and a non-PLUS one
 * never with p=, nor with y while binding was offered; outputs have the documented shape;
 * base64 and the credentials text decode only canonical encodings (encode(decode(x)) == x)
 * and encode -> decode is the identity. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_scram: check failed: %s (line %d)\n", #cond, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* RFC 5802 section 5 (SHA-1) and RFC 7677 section 3 (SHA-256). */
static const char *const fuzz_salt_b64[2] = {"QSXCR+Q6sek8bf92", "W22ZaJ0SNY7soEsUEjb6gQ=="};
static const char *const fuzz_nonce[2] = {"3rfcNHYJY1ZVvWVs7j", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"};
static scram_cred_t fuzz_cred[2];

/* The channel bindings of the fuzzed "connection" (bit 3). */
static const scram_cb_t fuzz_cb = {
    .len = {32, 32},
    .data = {"0123456789abcdef0123456789ABCDEF", "server-end-point-sha256-32-bytes"},
};

/* On success: the client-final's c= is right for the gs2 header of client-first. */
static void fuzz_check_binding(int opts, const char *first, size_t first_len, const char *final,
                               size_t final_len)
{
    int offered = (opts & 8) != 0, plus = offered && (opts & 16);
    FUZZ_CHECK(first_len >= 3 && final_len >= 2 && memcmp(final, "c=", 2) == 0);
    if (!plus) {
        FUZZ_CHECK(first[0] == 'n' || (first[0] == 'y' && !offered));
        return;
    }
    FUZZ_CHECK(first[0] == 'p' && first[1] == '=');
    const char *end = memchr(final, ',', final_len);
    FUZZ_CHECK(end != NULL);
    size_t n = 0;
    unsigned char *raw = base64_decode(final + 2, (size_t)(end - final - 2), &n);
    FUZZ_CHECK(raw != NULL);
    /* cbind-input = gs2-header cbind-data: the header is a prefix of client-first. */
    int type = -1;
    for (int t = 0; t < SCRAM_CB_TYPES; t++) {
        const char *name = scram_cb_name((scram_cb_type_t)t);
        size_t nl = strlen(name);
        if (first_len > 2 + nl && memcmp(first + 2, name, nl) == 0 && first[2 + nl] == ',')
            type = t;
    }
    FUZZ_CHECK(type >= 0);
    size_t dlen = fuzz_cb.len[type];
    FUZZ_CHECK(n > dlen && memcmp(raw + n - dlen, fuzz_cb.data[type], dlen) == 0);
    FUZZ_CHECK(n - dlen <= first_len && memcmp(raw, first, n - dlen) == 0);
    free(raw);
}

static void fuzz_init(void)
{
    static int done;
    if (done)
        return;
    for (int h = 0; h < 2; h++) {
        size_t salt_len;
        unsigned char *salt =
            base64_decode(fuzz_salt_b64[h], strlen(fuzz_salt_b64[h]), &salt_len);
        if (!salt || scram_cred_make(&fuzz_cred[h], (scram_hash_t)h, "pencil", salt, salt_len,
                                     SCRAM_DEFAULT_ITER) < 0)
            abort();
        free(salt);
    }
    done = 1;
}

static void fuzz_exchange(int opts, const char *first, size_t first_len, const char *final,
                          size_t final_len)
{
    int h = opts & 1;
    scram_server_t *srv = scram_server_new((scram_hash_t)h, fuzz_nonce[h]);
    FUZZ_CHECK(srv != NULL);
    if (opts & 8)
        FUZZ_CHECK(scram_server_set_channel_binding(srv, (opts & 16) != 0, &fuzz_cb) == 0);
    const char *user = NULL, *authzid = NULL;
    scram_status_t st = scram_server_client_first(srv, first, first_len, &user, &authzid);
    if (st != SCRAM_OK) {
        FUZZ_CHECK(user == NULL && authzid == NULL);
        /* The exchange is over: every later step fails. */
        char *out = (char *)1;
        FUZZ_CHECK(scram_server_server_first(srv, &fuzz_cred[h], &out) == SCRAM_MALFORMED &&
                   out == NULL);
        scram_server_destroy(&srv);
        return;
    }
    FUZZ_CHECK(user && user[0] != '\0');
    FUZZ_CHECK(!authzid || authzid[0] != '\0');

    const scram_cred_t *cred = NULL;
    if (!(opts & 2))
        cred = (opts & 4) ? &fuzz_cred[!h] : &fuzz_cred[h];
    char *server_first = NULL;
    st = scram_server_server_first(srv, cred, &server_first);
    if (opts & 4 && !(opts & 2)) {
        FUZZ_CHECK(st == SCRAM_MALFORMED && server_first == NULL);
        scram_server_destroy(&srv);
        return;
    }
    FUZZ_CHECK(st == SCRAM_OK && server_first && strncmp(server_first, "r=", 2) == 0);
    FUZZ_CHECK(strstr(server_first, fuzz_nonce[h]) != NULL);

    char *server_final = (char *)1;
    st = scram_server_client_final(srv, final, final_len, &server_final);
    if (st == SCRAM_OK) {
        FUZZ_CHECK(cred != NULL); /* an unknown user never gets in */
        fuzz_check_binding(opts, first, first_len, final, final_len);
        FUZZ_CHECK(server_final && strncmp(server_final, "v=", 2) == 0);
        size_t n;
        unsigned char *sig = base64_decode(server_final + 2, strlen(server_final + 2), &n);
        FUZZ_CHECK(sig && n == scram_hash_len((scram_hash_t)h));
        free(sig);
    } else {
        FUZZ_CHECK(server_final == NULL);
    }
    free(server_final);
    free(server_first);
    /* One attempt per exchange. */
    char *again = (char *)1;
    FUZZ_CHECK(scram_server_client_final(srv, final, final_len, &again) == SCRAM_MALFORMED &&
               again == NULL);
    scram_server_destroy(&srv);
}

static void fuzz_base64_and_cred(int opts, const char *s, size_t n)
{
    size_t len;
    unsigned char *raw = base64_decode(s, n, &len);
    if (raw) {
        char *enc = base64_encode(raw, len);
        FUZZ_CHECK(enc && strlen(enc) == n && memcmp(enc, s, n) == 0);
        free(enc);
        free(raw);
    }
    char *enc = base64_encode((const unsigned char *)s, n);
    FUZZ_CHECK(enc && strlen(enc) == (n + 2) / 3 * 4);
    raw = base64_decode(enc, strlen(enc), &len);
    FUZZ_CHECK(raw && len == n && memcmp(raw, s, n) == 0);
    free(raw);
    free(enc);

    /* The stored form (a NUL-terminated string in a router reply). */
    char *text = malloc(n + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, s, n);
    text[n] = '\0';
    scram_cred_t cred;
    if (scram_cred_decode(&cred, (scram_hash_t)(opts & 1), text) == 0) {
        char *back = scram_cred_encode(&cred);
        FUZZ_CHECK(back && strcmp(back, text) == 0);
        free(back);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fuzz_init();
    int opts = data[0];
    const char *part[3] = {"", "", ""};
    size_t plen[3] = {0, 0, 0};
    const char *p = (const char *)data + 1;
    size_t left = size - 1;
    for (int i = 0; i < 3 && left > 0; i++) {
        /* The last piece keeps any further NULs: base64 must refuse them. */
        const char *nul = i < 2 ? memchr(p, '\0', left) : NULL;
        size_t n = nul ? (size_t)(nul - p) : left;
        part[i] = p;
        plen[i] = n;
        p += n + (nul != NULL);
        left -= n + (nul != NULL);
    }
    /* Exact-size copies so that ASan sees any read past a message. */
    char *first = malloc(plen[0] ? plen[0] : 1), *final = malloc(plen[1] ? plen[1] : 1);
    FUZZ_CHECK(first && final);
    memcpy(first, part[0], plen[0]);
    memcpy(final, part[1], plen[1]);
    fuzz_exchange(opts, first, plen[0], final, plen[1]);
    free(first);
    free(final);
    fuzz_base64_and_cred(opts, part[2], plen[2]);
    return 0;
}
