#include "hmap.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    void *value;
    size_t klen;
    unsigned char key[]; /* klen bytes, then a NUL so string keys print */
} entry_t;

struct hmap {
    entry_t **slots; /* NULL until the first put: many maps (one user's blocklist, ...)
                        stay empty, and an empty one takes no slot array */
    size_t nslots;   /* a power of two, 0 while slots is NULL */
    size_t count;
};

static uint64_t sip_k0, sip_k1;
static int sip_ready;

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

uint64_t hmap_hash(const void *data, size_t len)
{
    if (!sip_ready) {
        uint64_t k[2];
        random_bytes(k, sizeof k);
        sip_k0 = k[0];
        sip_k1 = k[1];
        sip_ready = 1;
    }
    const unsigned char *p = data;
    uint64_t v0 = 0x736f6d6570736575ULL ^ sip_k0, v1 = 0x646f72616e646f6dULL ^ sip_k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ sip_k0, v3 = 0x7465646279746573ULL ^ sip_k1;
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = 0;
        for (int j = 7; j >= 0; j--)
            m = (m << 8) | p[i + (size_t)j];
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t j = 0; j < (len & 7); j++)
        b |= (uint64_t)p[whole + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

hmap_t *hmap_new(void)
{
    return xcalloc(1, sizeof(hmap_t));
}

void hmap_destroy(hmap_t **map_p)
{
    hmap_t *m = *map_p;
    if (!m)
        return;
    for (size_t i = 0; i < m->nslots; i++) {
        entry_t *e = m->slots[i];
        while (e) {
            entry_t *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->slots);
    free(m);
    *map_p = NULL;
}

void hmap_destroy_all(hmap_t **map_p, void (*free_value)(void *))
{
    hmap_t *m = *map_p;
    if (!m)
        return;
    for (size_t i = 0; i < m->nslots; i++)
        for (entry_t *e = m->slots[i]; e; e = e->next)
            (free_value ? free_value : free)(e->value);
    hmap_destroy(map_p);
}

static entry_t **find(const hmap_t *m, const void *key, size_t klen, uint64_t h)
{
    entry_t **pp = &m->slots[h & (m->nslots - 1)];
    while (*pp && !((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0))
        pp = &(*pp)->next;
    return pp;
}

void *hmap_get(const hmap_t *m, const void *key, size_t klen)
{
    if (!m->count)
        return NULL;
    entry_t **pp = find(m, key, klen, hmap_hash(key, klen));
    return *pp ? (*pp)->value : NULL;
}

static void grow(hmap_t *m)
{
    size_t n = m->nslots * 2;
    entry_t **slots = xcalloc(n, sizeof *slots);
    for (size_t i = 0; i < m->nslots; i++) {
        entry_t *e = m->slots[i];
        while (e) {
            entry_t *next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

void *hmap_put(hmap_t *m, const void *key, size_t klen, void *value)
{
    if (!m->slots) {
        m->nslots = 16;
        m->slots = xcalloc(m->nslots, sizeof *m->slots);
    }
    uint64_t h = hmap_hash(key, klen);
    entry_t **pp = find(m, key, klen, h);
    if (*pp) {
        void *old = (*pp)->value;
        (*pp)->value = value;
        return old;
    }
    entry_t *e = xmalloc(sizeof *e + klen + 1);
    e->next = NULL;
    e->hash = h;
    e->value = value;
    e->klen = klen;
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    *pp = e;
    if (++m->count > m->nslots)
        grow(m);
    return NULL;
}

void *hmap_del(hmap_t *m, const void *key, size_t klen)
{
    if (!m->count)
        return NULL;
    entry_t **pp = find(m, key, klen, hmap_hash(key, klen));
    entry_t *e = *pp;
    if (!e)
        return NULL;
    void *v = e->value;
    *pp = e->next;
    free(e);
    m->count--;
    return v;
}

size_t hmap_count(const hmap_t *m)
{
    return m->count;
}

/* *pos encodes slot index and depth in the chain: slot in the high bits, depth in low 16. */
int hmap_next(const hmap_t *m, size_t *pos, const void **key, size_t *klen, void **value)
{
    size_t slot = *pos >> 16, depth = *pos & 0xffff;
    for (; slot < m->nslots; slot++, depth = 0) {
        entry_t *e = m->slots[slot];
        for (size_t d = 0; e && d < depth; d++)
            e = e->next;
        if (e) {
            *key = e->key;
            *klen = e->klen;
            *value = e->value;
            *pos = (slot << 16) | (depth + 1);
            return 1;
        }
    }
    *pos = slot << 16;
    return 0;
}

size_t hmap_filter(hmap_t *m, int (*drop)(void *value, void *ud), void *ud)
{
    for (size_t i = 0; i < m->nslots; i++) {
        entry_t **pp = &m->slots[i];
        while (*pp) {
            entry_t *e = *pp;
            if (drop(e->value, ud)) {
                *pp = e->next;
                free(e);
                m->count--;
            } else {
                pp = &e->next;
            }
        }
    }
    return m->count;
}
