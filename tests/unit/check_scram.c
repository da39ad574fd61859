/* Unit tests for common/scram: RFC 5802 / RFC 7677 exchanges, credentials, base64. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scram.h"
#include "suites.h"

/* ---- test-side client: computes a proof the way a client would, with OpenSSL ---- */

/* Returns malloc'd "without_proof,p=PROOF" for the given exchange. */
static char *client_final_with_proof(scram_hash_t hash, const char *password,
                                     const scram_cred_t *cred, const char *first_bare,
                                     const char *server_first, const char *without_proof)
{
    const EVP_MD *md = hash == SCRAM_SHA1 ? EVP_sha1() : EVP_sha256();
    int hlen = (int)scram_hash_len(hash);
    unsigned char salted[32], client_key[32], stored[32], sig[32], proof[32];
    unsigned int n;
    char auth[2048];

    ck_assert_int_eq(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), cred->salt,
                                       (int)cred->salt_len, (int)cred->iter, md, hlen, salted),
                     1);
    ck_assert_ptr_nonnull(HMAC(md, salted, hlen, (const unsigned char *)"Client Key", 10,
                               client_key, &n));
    ck_assert_int_eq(EVP_Digest(client_key, (size_t)hlen, stored, &n, md, NULL), 1);
    snprintf(auth, sizeof auth, "%s,%s,%s", first_bare, server_first, without_proof);
    ck_assert_ptr_nonnull(
        HMAC(md, stored, hlen, (const unsigned char *)auth, strlen(auth), sig, &n));
    for (int i = 0; i < hlen; i++)
        proof[i] = client_key[i] ^ sig[i];
    char *p64 = base64_encode(proof, (size_t)hlen);
    size_t len = strlen(without_proof) + strlen(p64) + 4;
    char *out = malloc(len);
    ck_assert_ptr_nonnull(out);
    snprintf(out, len, "%s,p=%s", without_proof, p64);
    free(p64);
    return out;
}

static void make_cred_b64salt(scram_cred_t *cred, scram_hash_t hash, const char *password,
                              const char *salt_b64, unsigned iter)
{
    size_t salt_len;
    unsigned char *salt = base64_decode(salt_b64, strlen(salt_b64), &salt_len);
    ck_assert_ptr_nonnull(salt);
    ck_assert_int_eq(scram_cred_make(cred, hash, password, salt, salt_len, iter), 0);
    free(salt);
}

/* A string literal and its length, for messages with embedded NUL bytes. */
#define LIT(s) s, sizeof(s) - 1

/* ---- RFC test vectors ---- */

static const struct {
    scram_hash_t hash;
    const char *salt_b64, *server_nonce;
    const char *client_first, *server_first, *client_final, *server_final;
} rfc_vectors[] = {
    /* RFC 5802 section 5. */
    {SCRAM_SHA1, "QSXCR+Q6sek8bf92", "3rfcNHYJY1ZVvWVs7j", "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
     "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
     "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
     "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="},
    /* RFC 7677 section 3. */
    {SCRAM_SHA256, "W22ZaJ0SNY7soEsUEjb6gQ==", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
     "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
     "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
     "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
     "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
     "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
};

/* Runs client-first and server-first of vector v against a fresh server. */
static scram_server_t *rfc_start(int v, const scram_cred_t *cred)
{
    const char *user = NULL, *authzid = "x";
    char *out = NULL;
    scram_server_t *srv = scram_server_new(rfc_vectors[v].hash, rfc_vectors[v].server_nonce);
    ck_assert_ptr_nonnull(srv);
    const char *cf = rfc_vectors[v].client_first;
    ck_assert_int_eq(scram_server_client_first(srv, cf, strlen(cf), &user, &authzid), SCRAM_OK);
    ck_assert_str_eq(user, "user");
    ck_assert_ptr_null(authzid);
    ck_assert_int_eq(scram_server_server_first(srv, cred, &out), SCRAM_OK);
    ck_assert_ptr_nonnull(out);
    if (cred)
        ck_assert_str_eq(out, rfc_vectors[v].server_first);
    free(out);
    return srv;
}

START_TEST(test_scram_rfc_exchange)
{
    scram_cred_t cred;
    char *out = NULL;
    make_cred_b64salt(&cred, rfc_vectors[_i].hash, "pencil", rfc_vectors[_i].salt_b64, 4096);
    scram_server_t *srv = rfc_start(_i, &cred);
    const char *cf = rfc_vectors[_i].client_final;
    ck_assert_int_eq(scram_server_client_final(srv, cf, strlen(cf), &out), SCRAM_OK);
    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(out, rfc_vectors[_i].server_final);
    free(out);
    /* The exchange is over: a repeat is out of order. */
    ck_assert_int_eq(scram_server_client_final(srv, cf, strlen(cf), &out), SCRAM_MALFORMED);
    ck_assert_ptr_null(out);
    scram_server_destroy(&srv);
    ck_assert_ptr_null(srv);
    scram_server_destroy(&srv);
}
END_TEST

START_TEST(test_scram_rfc_test_client)
{
    /* The test-side client reproduces the RFC proofs, so it can be trusted below. */
    scram_cred_t cred;
    make_cred_b64salt(&cred, rfc_vectors[_i].hash, "pencil", rfc_vectors[_i].salt_b64, 4096);
    const char *cf = rfc_vectors[_i].client_final;
    char without[256];
    size_t wlen = (size_t)(strstr(cf, ",p=") - cf);
    memcpy(without, cf, wlen);
    without[wlen] = '\0';
    char *mine = client_final_with_proof(rfc_vectors[_i].hash, "pencil", &cred,
                                         rfc_vectors[_i].client_first + 3,
                                         rfc_vectors[_i].server_first, without);
    ck_assert_str_eq(mine, cf);
    free(mine);
}
END_TEST

START_TEST(test_scram_wrong_proof)
{
    scram_cred_t cred;
    char *out = NULL;
    make_cred_b64salt(&cred, rfc_vectors[_i].hash, "pencil", rfc_vectors[_i].salt_b64, 4096);
    scram_server_t *srv = rfc_start(_i, &cred);
    char *cf = strdup(rfc_vectors[_i].client_final);
    char *p = strstr(cf, ",p=") + 3;
    p[0] = p[0] == 'A' ? 'B' : 'A'; /* still valid base64 of the right length */
    ck_assert_int_eq(scram_server_client_final(srv, cf, strlen(cf), &out), SCRAM_NOT_AUTHORIZED);
    ck_assert_ptr_null(out);
    /* No second try on the same exchange, even with the right proof. */
    const char *good = rfc_vectors[_i].client_final;
    ck_assert_int_eq(scram_server_client_final(srv, good, strlen(good), &out), SCRAM_MALFORMED);
    ck_assert_ptr_null(out);
    free(cf);
    scram_server_destroy(&srv);
}
END_TEST

START_TEST(test_scram_wrong_password_cred)
{
    /* Credentials for another password: the RFC proof no longer matches. */
    scram_cred_t cred;
    char *out = NULL;
    make_cred_b64salt(&cred, rfc_vectors[_i].hash, "pencil2", rfc_vectors[_i].salt_b64, 4096);
    scram_server_t *srv = rfc_start(_i, &cred);
    const char *cf = rfc_vectors[_i].client_final;
    ck_assert_int_eq(scram_server_client_final(srv, cf, strlen(cf), &out), SCRAM_NOT_AUTHORIZED);
    ck_assert_ptr_null(out);
    scram_server_destroy(&srv);
}
END_TEST

/* Returns the malloc'd server-first for an unknown `user` with a fixed nonce. */
static char *unknown_server_first(scram_hash_t hash, const char *user)
{
    char cf[128];
    char *out = NULL;
    snprintf(cf, sizeof cf, "n,,n=%s,r=abc", user);
    scram_server_t *srv = scram_server_new(hash, "XYZ");
    ck_assert_int_eq(scram_server_client_first(srv, cf, strlen(cf), NULL, NULL), SCRAM_OK);
    ck_assert_int_eq(scram_server_server_first(srv, NULL, &out), SCRAM_OK);
    scram_server_destroy(&srv);
    return out;
}

START_TEST(test_scram_unknown_user)
{
    char *out = NULL;
    scram_server_t *srv = rfc_start(_i, NULL);
    /* The exchange looks normal up to the proof, which fails whatever it is. */
    const char *cf = rfc_vectors[_i].client_final;
    ck_assert_int_eq(scram_server_client_final(srv, cf, strlen(cf), &out), SCRAM_NOT_AUTHORIZED);
    ck_assert_ptr_null(out);
    scram_server_destroy(&srv);

    /* Made-up salt: 16 bytes, iter 4096, stable per name, different across names. */
    char *a1 = unknown_server_first(rfc_vectors[_i].hash, "nobody");
    char *a2 = unknown_server_first(rfc_vectors[_i].hash, "nobody");
    char *b = unknown_server_first(rfc_vectors[_i].hash, "somebody");
    ck_assert_str_eq(a1, a2);
    ck_assert_str_ne(a1, b);
    ck_assert_int_eq(strncmp(a1, "r=abcXYZ,s=", 11), 0);
    const char *salt = a1 + 11, *comma = strchr(salt, ',');
    ck_assert_ptr_nonnull(comma);
    ck_assert_str_eq(comma, ",i=4096");
    size_t salt_len = 0;
    unsigned char *raw = base64_decode(salt, (size_t)(comma - salt), &salt_len);
    ck_assert_ptr_nonnull(raw);
    ck_assert_uint_eq(salt_len, 16);
    free(raw);
    free(a1);
    free(a2);
    free(b);
}
END_TEST

/* ---- client-first parsing ---- */

static const struct {
    const char *msg, *user, *authzid;
} first_valid[] = {
    {"n,,n=user,r=abc", "user", NULL},
    {"y,,n=user,r=abc", "user", NULL},
    {"n,a=juliet@example.com,n=juliet,r=abc", "juliet", "juliet@example.com"},
    {"n,,n=a=2Cb=3Dc,r=abc", "a,b=c", NULL},
    {"n,a==3Dadmin=2C,n=u,r=abc", "u", "=admin,"},
    {"n,,n=user,r=abc,x=1,y=two", "user", NULL},
    {"n,,n=\xc5\x9ctrange,r=a+b/c=d", "\xc5\x9ctrange", NULL},
};

START_TEST(test_scram_first_valid)
{
    const char *user = NULL, *authzid = NULL;
    scram_server_t *srv = scram_server_new(SCRAM_SHA256, "srv");
    const char *m = first_valid[_i].msg;
    ck_assert_int_eq(scram_server_client_first(srv, m, strlen(m), &user, &authzid), SCRAM_OK);
    ck_assert_str_eq(user, first_valid[_i].user);
    if (first_valid[_i].authzid)
        ck_assert_str_eq(authzid, first_valid[_i].authzid);
    else
        ck_assert_ptr_null(authzid);
    scram_server_destroy(&srv);
}
END_TEST

/* len 0 means strlen(msg). */
static const struct {
    const char *msg;
    size_t len;
    scram_status_t want;
} first_bad[] = {
    {"", 0, SCRAM_MALFORMED},
    {"n,,r=abc", 0, SCRAM_MALFORMED},               /* missing n= */
    {"n,,n=user", 0, SCRAM_MALFORMED},              /* missing r= */
    {"n,,n=user,r=", 0, SCRAM_MALFORMED},           /* empty nonce */
    {"n,,n=,r=abc", 0, SCRAM_MALFORMED},            /* empty username */
    {"n,,r=abc,n=user", 0, SCRAM_MALFORMED},        /* attribute order */
    {"n,,n=user,x=y,r=abc", 0, SCRAM_MALFORMED},    /* extension before r= */
    {"x,,n=user,r=abc", 0, SCRAM_MALFORMED},        /* bad gs2 flag */
    {"N,,n=user,r=abc", 0, SCRAM_MALFORMED},
    {"n,n=user,r=abc", 0, SCRAM_MALFORMED},         /* gs2 header missing a comma */
    {"n", 0, SCRAM_MALFORMED},
    {"n,", 0, SCRAM_MALFORMED},
    {"n,,", 0, SCRAM_MALFORMED},
    {"n,a=,n=user,r=abc", 0, SCRAM_MALFORMED},      /* empty authzid */
    {"n,a=x=41,n=user,r=abc", 0, SCRAM_MALFORMED},  /* bad escape in authzid */
    {"n,b=x,n=user,r=abc", 0, SCRAM_MALFORMED},     /* unknown gs2 attribute */
    {"n,,n=us=2cer,r=abc", 0, SCRAM_MALFORMED},     /* escapes are upper case */
    {"n,,n=us=er,r=abc", 0, SCRAM_MALFORMED},
    {"n,,n=user=,r=abc", 0, SCRAM_MALFORMED},
    {"n,,n=user=2,r=abc", 0, SCRAM_MALFORMED},
    {"n,,m=ext,n=user,r=abc", 0, SCRAM_MALFORMED},  /* mandatory extension */
    {"n,,n=user,r=abc,", 0, SCRAM_MALFORMED},       /* trailing comma */
    {"n,,n=user,r=abc,1=x", 0, SCRAM_MALFORMED},    /* extension name not ALPHA */
    {"n,,n=user,r=abc,x=", 0, SCRAM_MALFORMED},     /* empty extension value */
    {"n,,n=user,r=abc,xy=1", 0, SCRAM_MALFORMED},
    {"n,,n=user,r=a\x01" "b", 0, SCRAM_MALFORMED},  /* nonce not printable */
    {"n,,n=user,r=a b", 0, SCRAM_MALFORMED},
    {"n,,n=us\xff" "er,r=abc", 0, SCRAM_MALFORMED}, /* invalid UTF-8 */
    {"n,,n=us\xc0\xaf" "er,r=abc", 0, SCRAM_MALFORMED}, /* overlong UTF-8 */
    {LIT("n,,n=us\0er,r=abc"), SCRAM_MALFORMED},     /* NUL byte */
    {LIT("n,,n=user,r=abc\0"), SCRAM_MALFORMED},
    {"p=,,n=user,r=abc", 0, SCRAM_MALFORMED},       /* empty cb-name */
    {"p=tls unique,,n=user,r=abc", 0, SCRAM_MALFORMED},
    {"p=tls-server-end-point,n=user,r=abc", 0, SCRAM_MALFORMED}, /* header missing a comma */
    /* Channel binding asked of an exchange that is not -PLUS. */
    {"p=tls-unique,,n=user,r=abc", 0, SCRAM_CB_NEEDS_PLUS},
    {"p=tls-server-end-point,a=x,n=user,r=abc", 0, SCRAM_CB_NEEDS_PLUS},
};

START_TEST(test_scram_first_bad)
{
    const char *user = "x", *authzid = "x";
    char *out = NULL;
    scram_server_t *srv = scram_server_new(SCRAM_SHA1, NULL);
    size_t len = first_bad[_i].len ? first_bad[_i].len : strlen(first_bad[_i].msg);
    ck_assert_int_eq(scram_server_client_first(srv, first_bad[_i].msg, len, &user, &authzid),
                     first_bad[_i].want);
    ck_assert_ptr_null(user);
    ck_assert_ptr_null(authzid);
    /* A failed exchange goes no further. */
    ck_assert_int_eq(scram_server_server_first(srv, NULL, &out), SCRAM_MALFORMED);
    ck_assert_ptr_null(out);
    scram_server_destroy(&srv);
}
END_TEST

/* ---- client-final parsing, on the RFC 5802 exchange ---- */

#define RFC_NONCE "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j"
#define RFC_PROOF "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="

static const struct {
    const char *msg;
    size_t len; /* 0: strlen */
    scram_status_t want;
} final_bad[] = {
    {"", 0, SCRAM_MALFORMED},
    {"c=eSws,r=" RFC_NONCE "," RFC_PROOF, 0, SCRAM_CB_MISMATCH},    /* c= of "y,," */
    {"c=biws=,r=" RFC_NONCE "," RFC_PROOF, 0, SCRAM_MALFORMED},
    {"c=,r=" RFC_NONCE "," RFC_PROOF, 0, SCRAM_MALFORMED},
    {"r=" RFC_NONCE "," RFC_PROOF, 0, SCRAM_MALFORMED},              /* no c= */
    {"c=biws," RFC_PROOF, 0, SCRAM_MALFORMED},                       /* no r= */
    {"c=biws,r=fyko+d2lbbFgONRv9qkxdawL," RFC_PROOF, 0, SCRAM_MALFORMED}, /* client half */
    {"c=biws,r=" RFC_NONCE "x," RFC_PROOF, 0, SCRAM_MALFORMED},
    {"c=biws,r=" RFC_NONCE, 0, SCRAM_MALFORMED},                     /* no proof */
    {"c=biws,r=" RFC_NONCE ",p=", 0, SCRAM_MALFORMED},
    {"c=biws," RFC_PROOF ",r=" RFC_NONCE, 0, SCRAM_MALFORMED},       /* proof not last */
    {"c=biws,r=" RFC_NONCE ",p=AAAA", 0, SCRAM_MALFORMED},           /* 3-byte proof */
    {"c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", 0,
     SCRAM_MALFORMED},                                               /* 32 bytes for SHA-1 */
    {"c=biws,r=" RFC_NONCE ",p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts", 0, SCRAM_MALFORMED}, /* no pad */
    {"c=biws,r=" RFC_NONCE ",p=v0X8v3Bz2T0CJGbJQyF0X HI4Ts=", 0, SCRAM_MALFORMED},
    {"c=biws,r=" RFC_NONCE ",=x," RFC_PROOF, 0, SCRAM_MALFORMED},    /* bad extension */
    {"c=biws,r=" RFC_NONCE ",," RFC_PROOF, 0, SCRAM_MALFORMED},
    {LIT("c=biws\0,r=" RFC_NONCE "," RFC_PROOF), SCRAM_MALFORMED},    /* NUL byte */
    {LIT("c=biws,r=" RFC_NONCE "," RFC_PROOF "\0"), SCRAM_MALFORMED},
    /* Well-formed with an extension, but the proof was made without it. */
    {"c=biws,r=" RFC_NONCE ",x=y," RFC_PROOF, 0, SCRAM_NOT_AUTHORIZED},
};

START_TEST(test_scram_final_bad)
{
    scram_cred_t cred;
    char *out = NULL;
    make_cred_b64salt(&cred, SCRAM_SHA1, "pencil", rfc_vectors[0].salt_b64, 4096);
    scram_server_t *srv = rfc_start(0, &cred);
    size_t len = final_bad[_i].len ? final_bad[_i].len : strlen(final_bad[_i].msg);
    ck_assert_int_eq(scram_server_client_final(srv, final_bad[_i].msg, len, &out),
                     final_bad[_i].want);
    ck_assert_ptr_null(out);
    scram_server_destroy(&srv);
}
END_TEST

START_TEST(test_scram_out_of_order)
{
    scram_cred_t cred;
    char *out = NULL;
    const char *cf = rfc_vectors[0].client_first, *fin = rfc_vectors[0].client_final;
    make_cred_b64salt(&cred, SCRAM_SHA1, "pencil", rfc_vectors[0].salt_b64, 4096);

    /* server-first before client-first */
    scram_server_t *srv = scram_server_new(SCRAM_SHA1, rfc_vectors[0].server_nonce);
    ck_assert_int_eq(scram_server_server_first(srv, &cred, &out), SCRAM_MALFORMED);
    ck_assert_ptr_null(out);
    scram_server_destroy(&srv);

    /* client-final first */
    srv = scram_server_new(SCRAM_SHA1, rfc_vectors[0].server_nonce);
    ck_assert_int_eq(scram_server_client_final(srv, fin, strlen(fin), &out), SCRAM_MALFORMED);
    scram_server_destroy(&srv);

    /* client-first twice */
    srv = scram_server_new(SCRAM_SHA1, rfc_vectors[0].server_nonce);
    ck_assert_int_eq(scram_server_client_first(srv, cf, strlen(cf), NULL, NULL), SCRAM_OK);
    ck_assert_int_eq(scram_server_client_first(srv, cf, strlen(cf), NULL, NULL),
                     SCRAM_MALFORMED);
    scram_server_destroy(&srv);

    /* client-final before server-first */
    srv = scram_server_new(SCRAM_SHA1, rfc_vectors[0].server_nonce);
    ck_assert_int_eq(scram_server_client_first(srv, cf, strlen(cf), NULL, NULL), SCRAM_OK);
    ck_assert_int_eq(scram_server_client_final(srv, fin, strlen(fin), &out), SCRAM_MALFORMED);
    ck_assert_int_eq(scram_server_server_first(srv, &cred, &out), SCRAM_MALFORMED);
    ck_assert_ptr_null(out);
    scram_server_destroy(&srv);

    /* server-first twice */
    srv = rfc_start(0, &cred);
    ck_assert_int_eq(scram_server_server_first(srv, &cred, &out), SCRAM_MALFORMED);
    ck_assert_ptr_null(out);
    scram_server_destroy(&srv);

    /* credentials for the other hash are refused */
    scram_cred_t cred256;
    make_cred_b64salt(&cred256, SCRAM_SHA256, "pencil", rfc_vectors[0].salt_b64, 4096);
    srv = scram_server_new(SCRAM_SHA1, rfc_vectors[0].server_nonce);
    ck_assert_int_eq(scram_server_client_first(srv, cf, strlen(cf), NULL, NULL), SCRAM_OK);
    ck_assert_int_eq(scram_server_server_first(srv, &cred256, &out), SCRAM_MALFORMED);
    scram_server_destroy(&srv);
}
END_TEST

/* Full exchanges driven by the test-side client, for gs2 headers other than "n,,". */
static const struct {
    const char *gs2, *c_b64;
    const char *authzid;
} gs2_cases[] = {
    {"n,,", "biws", NULL},
    {"y,,", "eSws", NULL},
    {"n,a=user@example.com,", "bixhPXVzZXJAZXhhbXBsZS5jb20s", "user@example.com"},
    {"y,a=a=2Cb,", "eSxhPWE9MkNiLA==", "a,b"},
};

START_TEST(test_scram_gs2_exchange)
{
    for (int h = 0; h < 2; h++) {
        scram_hash_t hash = h ? SCRAM_SHA256 : SCRAM_SHA1;
        scram_cred_t cred;
        const char *user = NULL, *authzid = NULL;
        char cf[256], without[256], *sf = NULL, *out = NULL;
        make_cred_b64salt(&cred, hash, "pencil", "QSXCR+Q6sek8bf92", 4096);

        char *c = base64_encode((const unsigned char *)gs2_cases[_i].gs2,
                                strlen(gs2_cases[_i].gs2));
        ck_assert_str_eq(c, gs2_cases[_i].c_b64);
        free(c);

        scram_server_t *srv = scram_server_new(hash, NULL);
        snprintf(cf, sizeof cf, "%sn=user,r=clientnonce", gs2_cases[_i].gs2);
        ck_assert_int_eq(scram_server_client_first(srv, cf, strlen(cf), &user, &authzid),
                         SCRAM_OK);
        ck_assert_str_eq(user, "user");
        if (gs2_cases[_i].authzid)
            ck_assert_str_eq(authzid, gs2_cases[_i].authzid);
        else
            ck_assert_ptr_null(authzid);
        ck_assert_int_eq(scram_server_server_first(srv, &cred, &sf), SCRAM_OK);
        /* A random server nonce: 24 bytes, 32 base64 characters after ours. */
        ck_assert_int_eq(strncmp(sf, "r=clientnonce", 13), 0);
        const char *nonce_end = strchr(sf, ',');
        ck_assert_int_eq((int)(nonce_end - sf), 2 + 11 + 32);

        snprintf(without, sizeof without, "c=%s,%.*s", gs2_cases[_i].c_b64,
                 (int)(nonce_end - sf), sf);
        char *fin = client_final_with_proof(hash, "pencil", &cred,
                                            cf + strlen(gs2_cases[_i].gs2), sf, without);
        ck_assert_int_eq(scram_server_client_final(srv, fin, strlen(fin), &out), SCRAM_OK);
        ck_assert_int_eq(strncmp(out, "v=", 2), 0);
        free(out);
        free(fin);
        free(sf);
        scram_server_destroy(&srv);
    }
}
END_TEST

START_TEST(test_scram_gs2_mismatch)
{
    /* The client claims "n,,"-binding in the final message after sending an authzid. */
    scram_cred_t cred;
    char *sf = NULL, *out = NULL, without[256];
    make_cred_b64salt(&cred, SCRAM_SHA1, "pencil", "QSXCR+Q6sek8bf92", 4096);
    const char *cf = "n,a=user@example.com,n=user,r=cn";
    scram_server_t *srv = scram_server_new(SCRAM_SHA1, "sn");
    ck_assert_int_eq(scram_server_client_first(srv, cf, strlen(cf), NULL, NULL), SCRAM_OK);
    ck_assert_int_eq(scram_server_server_first(srv, &cred, &sf), SCRAM_OK);
    snprintf(without, sizeof without, "c=biws,r=cnsn");
    char *fin = client_final_with_proof(SCRAM_SHA1, "pencil", &cred, "n=user,r=cn", sf, without);
    ck_assert_int_eq(scram_server_client_final(srv, fin, strlen(fin), &out), SCRAM_CB_MISMATCH);
    ck_assert_ptr_null(out);
    free(fin);
    free(sf);
    scram_server_destroy(&srv);
}
END_TEST

START_TEST(test_scram_server_new)
{
    ck_assert_ptr_null(scram_server_new(SCRAM_SHA1, ""));
    ck_assert_ptr_null(scram_server_new(SCRAM_SHA1, "a,b"));
    ck_assert_ptr_null(scram_server_new(SCRAM_SHA1, "a b"));
    ck_assert_ptr_null(scram_server_new((scram_hash_t)7, NULL));
    scram_server_destroy(NULL);
    ck_assert_str_eq(scram_mech_name(SCRAM_SHA1), "SCRAM-SHA-1");
    ck_assert_str_eq(scram_mech_name(SCRAM_SHA256), "SCRAM-SHA-256");
    ck_assert_uint_eq(scram_hash_len(SCRAM_SHA1), 20);
    ck_assert_uint_eq(scram_hash_len(SCRAM_SHA256), 32);
}
END_TEST

/* ---- channel binding (-PLUS): the gs2 flag decision and the c= check ---- */

/* Binding data of a connection: what tls.c would compute (any bytes do here). */
static scram_cb_t cb_make(int exporter, int end_point)
{
    scram_cb_t cb;
    memset(&cb, 0, sizeof cb);
    if (exporter) {
        cb.len[SCRAM_CB_TLS_EXPORTER] = 32;
        memset(cb.data[SCRAM_CB_TLS_EXPORTER], 0xE5, 32);
        cb.data[SCRAM_CB_TLS_EXPORTER][0] = ','; /* binary, even the SCRAM separators */
    }
    if (end_point) {
        cb.len[SCRAM_CB_TLS_SERVER_END_POINT] = 48; /* a SHA-384 certificate hash */
        for (int i = 0; i < 48; i++)
            cb.data[SCRAM_CB_TLS_SERVER_END_POINT][i] = (unsigned char)(i * 7);
    }
    return cb;
}

/* RFC 5802 section 6 as a table: mechanism (-PLUS or not), what the connection offers
 * (0 nothing, 1 both types, 2 tls-server-end-point only) and the gs2 header. */
static const struct {
    int plus, offer;
    const char *gs2;
    scram_status_t want;
} cb_decisions[] = {
    /* Not -PLUS, nothing offered (no TLS): n and y are fine, p is not. */
    {0, 0, "n,,", SCRAM_OK},
    {0, 0, "y,,", SCRAM_OK},
    {0, 0, "p=tls-exporter,,", SCRAM_CB_NEEDS_PLUS},
    /* Not -PLUS while -PLUS was offered: y is a downgrade. */
    {0, 1, "n,,", SCRAM_OK},
    {0, 1, "n,a=user@example.com,", SCRAM_OK},
    {0, 1, "y,,", SCRAM_CB_DOWNGRADE},
    {0, 1, "y,a=user@example.com,", SCRAM_CB_DOWNGRADE},
    {0, 1, "p=tls-exporter,,", SCRAM_CB_NEEDS_PLUS},
    {0, 2, "y,,", SCRAM_CB_DOWNGRADE},
    /* -PLUS: only p= with a type the connection has. */
    {1, 1, "p=tls-exporter,,", SCRAM_OK},
    {1, 1, "p=tls-server-end-point,,", SCRAM_OK},
    {1, 1, "p=tls-exporter,a=user@example.com,", SCRAM_OK},
    {1, 1, "n,,", SCRAM_CB_REQUIRED},
    {1, 1, "y,,", SCRAM_CB_REQUIRED},
    {1, 1, "p=tls-unique,,", SCRAM_UNSUPPORTED_CB},
    {1, 1, "p=TLS-EXPORTER,,", SCRAM_UNSUPPORTED_CB},  /* names are exact */
    {1, 1, "p=tls-exporter2,,", SCRAM_UNSUPPORTED_CB},
    {1, 1, "p=tls-export,,", SCRAM_UNSUPPORTED_CB},
    {1, 2, "p=tls-exporter,,", SCRAM_UNSUPPORTED_CB}, /* TLS 1.2 without extended master secret */
    {1, 2, "p=tls-server-end-point,,", SCRAM_OK},
    /* Syntax comes first. */
    {1, 1, "p=tls_exporter,,", SCRAM_MALFORMED},
    {1, 1, "p=,,", SCRAM_MALFORMED},
    {1, 1, "p,,", SCRAM_MALFORMED},
    {1, 1, "p=tls-exporter,", SCRAM_MALFORMED},
};

START_TEST(test_scram_cb_decision)
{
    char cf[256];
    const char *user = NULL;
    scram_cb_t cb = cb_make(cb_decisions[_i].offer == 1, cb_decisions[_i].offer != 0);
    scram_server_t *srv = scram_server_new(SCRAM_SHA256, "sn");
    ck_assert_int_eq(scram_server_set_channel_binding(srv, cb_decisions[_i].plus,
                                                      cb_decisions[_i].offer ? &cb : NULL),
                     0);
    snprintf(cf, sizeof cf, "%sn=user,r=cn", cb_decisions[_i].gs2);
    ck_assert_int_eq(scram_server_client_first(srv, cf, strlen(cf), &user, NULL),
                     cb_decisions[_i].want);
    if (cb_decisions[_i].want == SCRAM_OK)
        ck_assert_str_eq(user, "user");
    else
        ck_assert_ptr_null(user);
    scram_server_destroy(&srv);
}
END_TEST

START_TEST(test_scram_set_channel_binding)
{
    scram_cb_t cb = cb_make(1, 1), none = cb_make(0, 0), big = cb_make(1, 0);
    big.len[SCRAM_CB_TLS_EXPORTER] = SCRAM_CB_MAX_DATA + 1;
    scram_server_t *srv = scram_server_new(SCRAM_SHA1, "sn");
    /* -PLUS needs something to bind to. */
    ck_assert_int_eq(scram_server_set_channel_binding(srv, 1, NULL), -1);
    ck_assert_int_eq(scram_server_set_channel_binding(srv, 1, &none), -1);
    ck_assert_int_eq(scram_server_set_channel_binding(srv, 1, &big), -1);
    ck_assert_int_eq(scram_server_set_channel_binding(NULL, 0, NULL), -1);
    ck_assert_int_eq(scram_server_set_channel_binding(srv, 0, &none), 0);
    ck_assert_int_eq(scram_server_set_channel_binding(srv, 1, &cb), 0);
    const char *cf = "p=tls-exporter,,n=user,r=cn";
    ck_assert_int_eq(scram_server_client_first(srv, cf, strlen(cf), NULL, NULL), SCRAM_OK);
    /* Not once the exchange has started. */
    ck_assert_int_eq(scram_server_set_channel_binding(srv, 0, NULL), -1);
    scram_server_destroy(&srv);

    ck_assert_int_eq(scram_cb_any(NULL), 0);
    ck_assert_int_eq(scram_cb_any(&none), 0);
    ck_assert_int_eq(scram_cb_any(&cb), 1);
    ck_assert_str_eq(scram_cb_name(SCRAM_CB_TLS_EXPORTER), "tls-exporter");
    ck_assert_str_eq(scram_cb_name(SCRAM_CB_TLS_SERVER_END_POINT), "tls-server-end-point");
    ck_assert_ptr_null(scram_cb_name(SCRAM_CB_TYPES));
    ck_assert_str_eq(scram_status_text(SCRAM_CB_MISMATCH), "channel-bindings-dont-match");
    ck_assert_ptr_nonnull(strstr(scram_status_text(SCRAM_CB_DOWNGRADE),
                                 "server-does-support-channel-binding"));
    ck_assert_ptr_nonnull(strstr(scram_status_text(SCRAM_UNSUPPORTED_CB),
                                 "unsupported-channel-binding-type"));
    ck_assert_str_eq(scram_status_text(SCRAM_OK), "");
}
END_TEST

/* The client's c= value: base64 of the gs2 header and then `len` bytes of `data`. */
static char *cbind_b64(const char *gs2, const unsigned char *data, size_t len)
{
    unsigned char in[512];
    size_t n = strlen(gs2);
    ck_assert_uint_lt(n + len, sizeof in);
    memcpy(in, gs2, n);
    memcpy(in + n, data, len);
    return base64_encode(in, n + len);
}

/* What the client puts after the gs2 header in c=, against what the server holds. */
enum { CB_RIGHT, CB_NONE, CB_OTHER_TYPE, CB_FLIPPED, CB_SHORT, CB_LONGER, CB_GS2_N };

static const struct {
    int type, sent;
    scram_status_t want;
} cb_finals[] = {
    {SCRAM_CB_TLS_EXPORTER, CB_RIGHT, SCRAM_OK},
    {SCRAM_CB_TLS_SERVER_END_POINT, CB_RIGHT, SCRAM_OK},
    {SCRAM_CB_TLS_EXPORTER, CB_NONE, SCRAM_CB_MISMATCH},
    {SCRAM_CB_TLS_SERVER_END_POINT, CB_NONE, SCRAM_CB_MISMATCH},
    {SCRAM_CB_TLS_EXPORTER, CB_OTHER_TYPE, SCRAM_CB_MISMATCH},
    {SCRAM_CB_TLS_SERVER_END_POINT, CB_OTHER_TYPE, SCRAM_CB_MISMATCH},
    {SCRAM_CB_TLS_EXPORTER, CB_FLIPPED, SCRAM_CB_MISMATCH},
    {SCRAM_CB_TLS_SERVER_END_POINT, CB_FLIPPED, SCRAM_CB_MISMATCH},
    {SCRAM_CB_TLS_EXPORTER, CB_SHORT, SCRAM_CB_MISMATCH},
    {SCRAM_CB_TLS_EXPORTER, CB_LONGER, SCRAM_CB_MISMATCH},
    {SCRAM_CB_TLS_EXPORTER, CB_GS2_N, SCRAM_CB_MISMATCH}, /* header "n,," in c= */
};

START_TEST(test_scram_cb_exchange)
{
    for (int h = 0; h < 2; h++) {
        scram_hash_t hash = h ? SCRAM_SHA256 : SCRAM_SHA1;
        int type = cb_finals[_i].type;
        scram_cb_t cb = cb_make(1, 1);
        scram_cred_t cred;
        char gs2[64], cf[256], without[1024], *sf = NULL, *out = NULL;
        make_cred_b64salt(&cred, hash, "pencil", "QSXCR+Q6sek8bf92", 4096);
        snprintf(gs2, sizeof gs2, "p=%s,,", scram_cb_name((scram_cb_type_t)type));
        snprintf(cf, sizeof cf, "%sn=user,r=clientnonce", gs2);

        scram_server_t *srv = scram_server_new(hash, "servernonce");
        ck_assert_int_eq(scram_server_set_channel_binding(srv, 1, &cb), 0);
        ck_assert_int_eq(scram_server_client_first(srv, cf, strlen(cf), NULL, NULL), SCRAM_OK);
        ck_assert_int_eq(scram_server_server_first(srv, &cred, &sf), SCRAM_OK);

        unsigned char data[SCRAM_CB_MAX_DATA + 1];
        size_t len = cb.len[type];
        memcpy(data, cb.data[type], len);
        const char *header = gs2;
        switch (cb_finals[_i].sent) {
        case CB_NONE:
            len = 0;
            break;
        case CB_OTHER_TYPE:
            len = cb.len[!type];
            memcpy(data, cb.data[!type], len);
            break;
        case CB_FLIPPED:
            data[len - 1] ^= 1;
            break;
        case CB_SHORT:
            len--;
            break;
        case CB_LONGER:
            data[len++] = 0;
            break;
        case CB_GS2_N:
            header = "n,,";
            break;
        }
        char *c64 = cbind_b64(header, data, len);
        snprintf(without, sizeof without, "c=%s,r=clientnonceservernonce", c64);
        free(c64);
        char *fin = client_final_with_proof(hash, "pencil", &cred, "n=user,r=clientnonce", sf,
                                            without);
        ck_assert_int_eq(scram_server_client_final(srv, fin, strlen(fin), &out),
                         cb_finals[_i].want);
        if (cb_finals[_i].want == SCRAM_OK)
            ck_assert_int_eq(strncmp(out, "v=", 2), 0);
        else
            ck_assert_ptr_null(out);
        free(out);
        free(fin);
        free(sf);
        scram_server_destroy(&srv);
    }
}
END_TEST

/* ---- credentials ---- */

START_TEST(test_scram_cred_password)
{
    for (int h = 0; h < 2; h++) {
        scram_hash_t hash = h ? SCRAM_SHA256 : SCRAM_SHA1;
        scram_cred_t cred, other;
        ck_assert_int_eq(scram_cred_make(&cred, hash, "pencil", NULL, 0, 4096), 0);
        ck_assert_uint_eq(cred.salt_len, 16);
        ck_assert_uint_eq(cred.iter, 4096);
        ck_assert_int_eq(cred.hash, hash);
        ck_assert_int_eq(scram_cred_check_password(&cred, "pencil"), 1);
        ck_assert_int_eq(scram_cred_check_password(&cred, "pencil2"), 0);
        ck_assert_int_eq(scram_cred_check_password(&cred, "Pencil"), 0);
        ck_assert_int_eq(scram_cred_check_password(&cred, ""), 0);
        ck_assert_int_eq(scram_cred_check_password(&cred, NULL), 0);
        /* Fresh salts differ. */
        ck_assert_int_eq(scram_cred_make(&other, hash, "pencil", NULL, 0, 4096), 0);
        ck_assert_int_ne(memcmp(cred.salt, other.salt, 16), 0);
    }
    scram_cred_t cred;
    const unsigned char salt[65] = {1};
    ck_assert_int_eq(scram_cred_make(&cred, SCRAM_SHA1, "p", salt, 0, 4096), -1);
    ck_assert_int_eq(scram_cred_make(&cred, SCRAM_SHA1, "p", salt, 65, 4096), -1);
    ck_assert_int_eq(scram_cred_make(&cred, SCRAM_SHA1, "p", salt, 64, 0), -1);
    ck_assert_int_eq(scram_cred_make(&cred, SCRAM_SHA1, NULL, salt, 16, 4096), -1);
    ck_assert_int_eq(scram_cred_make(&cred, (scram_hash_t)9, "p", salt, 16, 4096), -1);
    ck_assert_int_eq(scram_cred_make(&cred, SCRAM_SHA1, "p", salt, 64, 1), 0);
    ck_assert_int_eq(scram_cred_check_password(&cred, "p"), 1);
}
END_TEST

/* RFC 4013 section 3's examples, plus the mapping of non-ASCII spaces (table C.1.2). */
static const struct {
    const char *in, *out; /* out NULL: refused */
    int stored;
} saslprep_cases[] = {
    {"I\xc2\xadX", "IX", 1},           /* SOFT HYPHEN mapped to nothing */
    {"user", "user", 1},                /* no transformation */
    {"USER", "USER", 1},                /* case preserved */
    {"\xc2\xaa", "a", 1},               /* NFKC */
    {"\xe2\x85\xa8", "IX", 1},           /* NFKC */
    {"\x07", NULL, 1},                  /* prohibited character */
    {"\xd8\xa7" "1", NULL, 1},            /* RandALCat first but not last */
    {"pass\xc2\xa0word", "pass word", 1}, /* NO-BREAK SPACE mapped to SPACE */
    {"p\xc3\xa4ss", "p\xc3\xa4ss", 1},    /* already NFKC */
    {"\xff\xfe", NULL, 0},              /* not UTF-8 */
    {"\xf3\xa0\x80\x80x", NULL, 1},     /* an unassigned code point, refused when stored */
};

START_TEST(test_scram_saslprep)
{
    char *out = scram_saslprep(saslprep_cases[_i].in, saslprep_cases[_i].stored);
    if (saslprep_cases[_i].out) {
        ck_assert_ptr_nonnull(out);
        ck_assert_str_eq(out, saslprep_cases[_i].out);
    } else {
        ck_assert_ptr_null(out);
    }
    free(out);
}
END_TEST

/* PLAIN gets the password as typed: it matches credentials made from the prepared form. */
START_TEST(test_scram_cred_password_saslprep)
{
    scram_cred_t cred;
    char *prepared = scram_saslprep("I\xc2\xadX \xe2\x85\xa8\xc2\xa0z", 1);
    ck_assert_str_eq(prepared, "IX IX z");
    ck_assert_int_eq(scram_cred_make(&cred, SCRAM_SHA256, prepared, NULL, 0, 4096), 0);
    ck_assert_int_eq(scram_cred_check_password(&cred, "IX IX z"), 1);
    ck_assert_int_eq(scram_cred_check_password(&cred, "I\xc2\xadX \xe2\x85\xa8\xc2\xa0z"), 1);
    ck_assert_int_eq(scram_cred_check_password(&cred, "IX IX\x07z"), 0);
    free(prepared);
}
END_TEST

START_TEST(test_scram_cred_roundtrip)
{
    for (int h = 0; h < 2; h++) {
        scram_hash_t hash = h ? SCRAM_SHA256 : SCRAM_SHA1;
        scram_hash_t wrong = h ? SCRAM_SHA1 : SCRAM_SHA256;
        scram_cred_t cred, back;
        size_t hlen = scram_hash_len(hash);
        make_cred_b64salt(&cred, hash, "pencil", "QSXCR+Q6sek8bf92", 4096);
        char *text = scram_cred_encode(&cred);
        ck_assert_ptr_nonnull(text);
        ck_assert_int_eq(strncmp(text, "4096,QSXCR+Q6sek8bf92,", 22), 0);
        memset(&back, 0xAA, sizeof back);
        ck_assert_int_eq(scram_cred_decode(&back, hash, text), 0);
        ck_assert_int_eq(back.hash, hash);
        ck_assert_uint_eq(back.iter, 4096);
        ck_assert_uint_eq(back.salt_len, cred.salt_len);
        ck_assert_int_eq(memcmp(back.salt, cred.salt, cred.salt_len), 0);
        ck_assert_int_eq(memcmp(back.stored_key, cred.stored_key, hlen), 0);
        ck_assert_int_eq(memcmp(back.server_key, cred.server_key, hlen), 0);
        ck_assert_int_eq(scram_cred_check_password(&back, "pencil"), 1);
        /* Keys of the wrong length for the other hash. */
        ck_assert_int_eq(scram_cred_decode(&back, wrong, text), -1);
        free(text);
    }
}
END_TEST

#define K20 "AAAAAAAAAAAAAAAAAAAAAAAAAAA="                 /* 20 zero bytes */
#define K32 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" /* 32 zero bytes */
/* 65 zero bytes */
#define S65 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" \
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
/* 64 zero bytes */
#define S64 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" \
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="

static const struct {
    scram_hash_t hash;
    const char *text;
    int want;
} cred_texts[] = {
    {SCRAM_SHA1, "4096,QSXCR+Q6sek8bf92," K20 "," K20, 0},
    {SCRAM_SHA256, "4096,QSXCR+Q6sek8bf92," K32 "," K32, 0},
    {SCRAM_SHA1, "1,AA==," K20 "," K20, 0},
    {SCRAM_SHA1, "10000000,AA==," K20 "," K20, 0},
    {SCRAM_SHA1, "", -1},
    {SCRAM_SHA1, ",,,", -1},
    {SCRAM_SHA1, "4096", -1},
    {SCRAM_SHA1, "4096,QSXCR+Q6sek8bf92," K20, -1},
    {SCRAM_SHA1, "4096,QSXCR+Q6sek8bf92," K20 "," K20 ",", -1},
    {SCRAM_SHA1, "4096,QSXCR+Q6sek8bf92," K20 "," K20 "," K20, -1},
    {SCRAM_SHA1, "4096,QSXCR+Q6sek8bf92," K32 "," K32, -1},
    {SCRAM_SHA256, "4096,QSXCR+Q6sek8bf92," K20 "," K20, -1},
    {SCRAM_SHA1, "4096,QSXCR+Q6sek8bf92,AAAA," K20, -1},
    {SCRAM_SHA1, "0,AA==," K20 "," K20, -1},
    {SCRAM_SHA1, "10000001,AA==," K20 "," K20, -1},
    {SCRAM_SHA1, "99999999999,AA==," K20 "," K20, -1},
    {SCRAM_SHA1, "-1,AA==," K20 "," K20, -1},
    {SCRAM_SHA1, "+4096,AA==," K20 "," K20, -1},
    {SCRAM_SHA1, "04096,AA==," K20 "," K20, -1},
    {SCRAM_SHA1, " 4096,AA==," K20 "," K20, -1},
    {SCRAM_SHA1, "4096 ,AA==," K20 "," K20, -1},
    {SCRAM_SHA1, "0x10,AA==," K20 "," K20, -1},
    {SCRAM_SHA1, "4096,," K20 "," K20, -1},                   /* empty salt */
    {SCRAM_SHA1, "4096," S64 "," K20 "," K20, 0},             /* 64-byte salt */
    {SCRAM_SHA1, "4096," S65 "," K20 "," K20, -1},            /* 65-byte salt */
    {SCRAM_SHA1, "4096,AA=," K20 "," K20, -1},                /* bad base64 */
    {SCRAM_SHA1, "4096,AA==," K20 "x," K20, -1},
    {SCRAM_SHA1, "4096,AA==," K20 "," K20 "\n", -1},
    {SCRAM_SHA1, "4096,AA==,," K20, -1},
    {SCRAM_SHA1, "4096,AA==," K20 ",", -1},
    {(scram_hash_t)5, "4096,AA==," K20 "," K20, -1},
};

START_TEST(test_scram_cred_decode_table)
{
    scram_cred_t cred, before;
    memset(&cred, 0x5A, sizeof cred);
    before = cred;
    int rc = scram_cred_decode(&cred, cred_texts[_i].hash, cred_texts[_i].text);
    ck_assert_msg(rc == cred_texts[_i].want, "decode(%s) = %d", cred_texts[_i].text, rc);
    if (rc < 0)
        ck_assert_int_eq(memcmp(&cred, &before, sizeof cred), 0); /* untouched */
    if (rc == 0) {
        char *again = scram_cred_encode(&cred);
        ck_assert_str_eq(again, cred_texts[_i].text);
        free(again);
    }
}
END_TEST

START_TEST(test_scram_cred_decode_garbage)
{
    /* Random strings over the relevant alphabet: no crash, and anything accepted must
     * re-encode to itself (decode is strict, so there is exactly one text per record). */
    static const char alphabet[] = "0123456789,AaZz+/=-\t ";
    unsigned seed = 12345;
    scram_cred_t cred;
    ck_assert_int_eq(scram_cred_decode(&cred, SCRAM_SHA1, NULL), -1);
    ck_assert_int_eq(scram_cred_decode(NULL, SCRAM_SHA1, "1,AA==," K20 "," K20), -1);
    for (int i = 0; i < 20000; i++) {
        char s[96];
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % (sizeof s - 1);
        for (size_t k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            s[k] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        s[n] = '\0';
        for (int h = 0; h < 2; h++) {
            if (scram_cred_decode(&cred, h ? SCRAM_SHA256 : SCRAM_SHA1, s) == 0) {
                char *again = scram_cred_encode(&cred);
                ck_assert_str_eq(again, s);
                free(again);
            }
        }
    }
}
END_TEST

/* ---- base64 ---- */

/* RFC 4648 section 10. */
static const struct {
    const char *raw, *b64;
} b64_vectors[] = {
    {"", ""},           {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

START_TEST(test_base64_vectors)
{
    const char *raw = b64_vectors[_i].raw, *b64 = b64_vectors[_i].b64;
    char *enc = base64_encode((const unsigned char *)raw, strlen(raw));
    ck_assert_str_eq(enc, b64);
    free(enc);
    size_t len = 99;
    unsigned char *dec = base64_decode(b64, strlen(b64), &len);
    ck_assert_ptr_nonnull(dec);
    ck_assert_uint_eq(len, strlen(raw));
    ck_assert_int_eq(memcmp(dec, raw, len), 0);
    ck_assert_int_eq(dec[len], '\0');
    free(dec);
}
END_TEST

static const struct {
    const char *text;
    size_t len; /* 0: strlen */
} b64_invalid[] = {
    {"Zg=", 0},       {"Zg", 0},        {"Z", 0},         {"Zm9vY", 0},     {"Zg==Zg==", 0},
    {"Zm8=Zm9v", 0},  {"Zm9v\n", 0},    {" Zm9v", 0},     {"Zm9v YmFy", 0}, {"Zm9v\r\nYmFy", 0},
    {"Zh==", 0},      {"Zm9=", 0},      {"Z===", 0},      {"====", 0},      {"=Zm9", 0},
    {"Zm=v", 0},      {"Zm-v", 0},      {"Zm_v", 0},      {LIT("Zm9v\0abc")}, {"Zm9\x80", 0},
    {"Zg=a", 0},
};

START_TEST(test_base64_invalid)
{
    const char *t = b64_invalid[_i].text;
    size_t len = b64_invalid[_i].len ? b64_invalid[_i].len : strlen(t), out = 99;
    ck_assert_ptr_null(base64_decode(t, len, &out));
    ck_assert_uint_eq(out, 0);
}
END_TEST

START_TEST(test_base64_roundtrip)
{
    unsigned char data[256];
    for (int i = 0; i < 256; i++)
        data[i] = (unsigned char)(255 - i);
    for (size_t n = 0; n <= sizeof data; n++) {
        char *enc = base64_encode(data, n);
        ck_assert_uint_eq(strlen(enc), (n + 2) / 3 * 4);
        size_t len;
        unsigned char *dec = base64_decode(enc, strlen(enc), &len);
        ck_assert_ptr_nonnull(dec);
        ck_assert_uint_eq(len, n);
        ck_assert_int_eq(memcmp(dec, data, n), 0);
        free(dec);
        free(enc);
    }
}
END_TEST

Suite *make_scram_suite(void)
{
    Suite *s = suite_create("scram");
    size_t nv = sizeof rfc_vectors / sizeof rfc_vectors[0];

    TCase *tc = tcase_create("exchange");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_scram_rfc_exchange, 0, nv);
    tcase_add_loop_test(tc, test_scram_rfc_test_client, 0, nv);
    tcase_add_loop_test(tc, test_scram_wrong_proof, 0, nv);
    tcase_add_loop_test(tc, test_scram_wrong_password_cred, 0, nv);
    tcase_add_loop_test(tc, test_scram_unknown_user, 0, nv);
    tcase_add_loop_test(tc, test_scram_first_valid, 0, sizeof first_valid / sizeof first_valid[0]);
    tcase_add_loop_test(tc, test_scram_first_bad, 0, sizeof first_bad / sizeof first_bad[0]);
    tcase_add_loop_test(tc, test_scram_final_bad, 0, sizeof final_bad / sizeof final_bad[0]);
    tcase_add_test(tc, test_scram_out_of_order);
    tcase_add_loop_test(tc, test_scram_gs2_exchange, 0, sizeof gs2_cases / sizeof gs2_cases[0]);
    tcase_add_test(tc, test_scram_gs2_mismatch);
    tcase_add_test(tc, test_scram_server_new);
    suite_add_tcase(s, tc);

    tc = tcase_create("channel binding");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_scram_cb_decision, 0,
                        sizeof cb_decisions / sizeof cb_decisions[0]);
    tcase_add_test(tc, test_scram_set_channel_binding);
    tcase_add_loop_test(tc, test_scram_cb_exchange, 0, sizeof cb_finals / sizeof cb_finals[0]);
    suite_add_tcase(s, tc);

    tc = tcase_create("cred");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_scram_cred_password);
    tcase_add_loop_test(tc, test_scram_saslprep, 0, sizeof saslprep_cases / sizeof saslprep_cases[0]);
    tcase_add_test(tc, test_scram_cred_password_saslprep);
    tcase_add_test(tc, test_scram_cred_roundtrip);
    tcase_add_loop_test(tc, test_scram_cred_decode_table, 0,
                        sizeof cred_texts / sizeof cred_texts[0]);
    tcase_add_test(tc, test_scram_cred_decode_garbage);
    suite_add_tcase(s, tc);

    tc = tcase_create("base64");
    tcase_add_loop_test(tc, test_base64_vectors, 0, sizeof b64_vectors / sizeof b64_vectors[0]);
    tcase_add_loop_test(tc, test_base64_invalid, 0, sizeof b64_invalid / sizeof b64_invalid[0]);
    tcase_add_test(tc, test_base64_roundtrip);
    suite_add_tcase(s, tc);
    return s;
}
