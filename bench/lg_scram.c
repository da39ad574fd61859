/* The client side of SCRAM (RFC 5802, RFC 7677) on OpenSSL, with the salted keys cached so
 * that a generator logging in thousands of accounts does not spend its core on PBKDF2. */
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg.h"

#define KEY_MAX 32
#define SALT_MAX 64

struct scram_client {
    const EVP_MD *md;
    char bare[160];                    /* client-first-message-bare: "n=USER,r=NONCE" */
    size_t nonce_len;                  /* the nonce is the tail of `bare` */
    unsigned char server_sig[KEY_MAX]; /* expected in server-final */
    int have_sig;
};

/* Keys derived from one (hash, salt, iterations) with the run's single password. */
typedef struct {
    const EVP_MD *md;
    unsigned iter;
    size_t salt_len;
    unsigned char salt[SALT_MAX];
    unsigned char client_key[KEY_MAX], stored_key[KEY_MAX], server_key[KEY_MAX];
} key_entry_t;

/* Open addressing; grows at half full. Peers give every account its own salt, so this can
 * hold one entry per account. */
static key_entry_t **cache;
static size_t cache_cap, cache_used;

size_t b64_encode(const unsigned char *in, size_t len, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

int b64_decode(const char *in, size_t len, unsigned char *out)
{
    while (len && (in[len - 1] == ' ' || in[len - 1] == '\n' || in[len - 1] == '\r'))
        len--;
    if (len == 0) return 0;
    if (len % 4) return -1;
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0) return -1;
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    if (in[len - 1] == '=') n--;
    if (in[len - 2] == '=') n--;
    return n;
}

static uint64_t key_hash(const EVP_MD *md, unsigned iter, const unsigned char *salt, size_t n)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)EVP_MD_get_size(md) ^ ((uint64_t)iter << 8);
    for (size_t i = 0; i < n; i++)
        h = (h ^ salt[i]) * 1099511628211ULL;
    return h;
}

static void cache_insert(key_entry_t *e)
{
    if (2 * (cache_used + 1) > cache_cap) {
        size_t ncap = cache_cap ? 2 * cache_cap : 64;
        key_entry_t **n = calloc(ncap, sizeof *n);
        if (!n) abort();
        for (size_t i = 0; i < cache_cap; i++) {
            if (!cache[i]) continue;
            size_t j = key_hash(cache[i]->md, cache[i]->iter, cache[i]->salt, cache[i]->salt_len) &
                       (ncap - 1);
            while (n[j])
                j = (j + 1) & (ncap - 1);
            n[j] = cache[i];
        }
        free(cache);
        cache = n;
        cache_cap = ncap;
    }
    size_t j = key_hash(e->md, e->iter, e->salt, e->salt_len) & (cache_cap - 1);
    while (cache[j])
        j = (j + 1) & (cache_cap - 1);
    cache[j] = e;
    cache_used++;
}

static const key_entry_t *keys_for(const EVP_MD *md, unsigned iter, const unsigned char *salt,
                                   size_t salt_len, const char *password)
{
    if (cache_cap) {
        size_t j = key_hash(md, iter, salt, salt_len) & (cache_cap - 1);
        for (; cache[j]; j = (j + 1) & (cache_cap - 1)) {
            const key_entry_t *e = cache[j];
            if (e->md == md && e->iter == iter && e->salt_len == salt_len &&
                memcmp(e->salt, salt, salt_len) == 0)
                return e;
        }
    }
    key_entry_t *e = calloc(1, sizeof *e);
    if (!e) abort();
    unsigned char salted[KEY_MAX];
    unsigned int hl = (unsigned)EVP_MD_get_size(md), l = hl;
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, (int)iter, md,
                          (int)hl, salted) != 1 ||
        !HMAC(md, salted, (int)hl, (const unsigned char *)"Client Key", 10, e->client_key, &l) ||
        !HMAC(md, salted, (int)hl, (const unsigned char *)"Server Key", 10, e->server_key, &l) ||
        EVP_Digest(e->client_key, hl, e->stored_key, &l, md, NULL) != 1) {
        free(e);
        return NULL;
    }
    e->md = md;
    e->iter = iter;
    e->salt_len = salt_len;
    memcpy(e->salt, salt, salt_len);
    cache_insert(e);
    return e;
}

scram_client_t *scram_client_new(const EVP_MD *md, const char *user)
{
    scram_client_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->md = md;
    unsigned char rnd[18];
    char nonce[32];
    RAND_bytes(rnd, sizeof rnd);
    b64_encode(rnd, sizeof rnd, nonce);
    /* Bench account names hold no '=' or ',', so no saslname escaping is needed. */
    int n = snprintf(s->bare, sizeof s->bare, "n=%s,r=%s", user, nonce);
    if (n < 0 || (size_t)n >= sizeof s->bare) {
        free(s);
        return NULL;
    }
    s->nonce_len = strlen(nonce);
    return s;
}

void scram_client_free(scram_client_t **s_p)
{
    free(*s_p);
    *s_p = NULL;
}

const char *scram_client_first(const scram_client_t *s)
{
    return s->bare; /* the caller prefixes the gs2 header "n,," */
}

/* Finds "k=" at the start of an attribute of a SCRAM message; returns the value and its
 * length in *vlen. */
static const char *scram_attr(const char *msg, size_t len, char k, size_t *vlen)
{
    size_t i = 0;
    while (i + 1 < len) {
        size_t end = i;
        while (end < len && msg[end] != ',')
            end++;
        if (msg[i] == k && msg[i + 1] == '=') {
            *vlen = end - i - 2;
            return msg + i + 2;
        }
        i = end + 1;
    }
    return NULL;
}

int scram_client_final(scram_client_t *s, const char *sf, size_t len, const char *password,
                       char *out, size_t outsz)
{
    size_t rl, sl, il;
    const char *r = scram_attr(sf, len, 'r', &rl), *salt64 = scram_attr(sf, len, 's', &sl),
               *it = scram_attr(sf, len, 'i', &il);
    const char *mynonce = s->bare + strlen(s->bare) - s->nonce_len;
    if (!r || !salt64 || !it || rl <= s->nonce_len || memcmp(r, mynonce, s->nonce_len) != 0 ||
        il == 0 || il > 9 || sl > 4 * SALT_MAX / 3)
        return -1;
    char itbuf[12];
    memcpy(itbuf, it, il);
    itbuf[il] = '\0';
    unsigned iter = (unsigned)strtoul(itbuf, NULL, 10);
    unsigned char salt[SALT_MAX + 4];
    int saltn = b64_decode(salt64, sl, salt);
    if (iter == 0 || saltn <= 0 || saltn > SALT_MAX) return -1;
    const key_entry_t *k = keys_for(s->md, iter, salt, (size_t)saltn, password);
    if (!k) return -1;

    /* client-final-message-without-proof, then AuthMessage. */
    int wl = snprintf(out, outsz, "c=biws,r=%.*s", (int)rl, r);
    if (wl < 0 || (size_t)wl >= outsz) return -1;
    char auth[1024];
    int al = snprintf(auth, sizeof auth, "%s,%.*s,%s", s->bare, (int)len, sf, out);
    if (al < 0 || (size_t)al >= sizeof auth) return -1;
    unsigned int hl = (unsigned)EVP_MD_get_size(s->md), l = hl;
    unsigned char sig[KEY_MAX], proof[KEY_MAX];
    if (!HMAC(s->md, k->stored_key, (int)hl, (unsigned char *)auth, (size_t)al, sig, &l) ||
        !HMAC(s->md, k->server_key, (int)hl, (unsigned char *)auth, (size_t)al, s->server_sig, &l))
        return -1;
    s->have_sig = 1;
    for (unsigned i = 0; i < hl; i++)
        proof[i] = k->client_key[i] ^ sig[i];
    char p64[64];
    b64_encode(proof, hl, p64);
    int fl = snprintf(out + wl, outsz - (size_t)wl, ",p=%s", p64);
    return fl < 0 || (size_t)fl >= outsz - (size_t)wl ? -1 : 0;
}

int scram_client_verify(const scram_client_t *s, const char *sf, size_t len)
{
    size_t vl;
    const char *v = scram_attr(sf, len, 'v', &vl);
    unsigned char got[KEY_MAX + 4];
    if (!s->have_sig || !v || vl > 4 * KEY_MAX) return -1;
    int n = b64_decode(v, vl, got);
    return n == EVP_MD_get_size(s->md) && memcmp(got, s->server_sig, (size_t)n) == 0 ? 0 : -1;
}
