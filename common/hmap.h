/* hmap: a hash map from byte-string keys (copied) to pointers, with a keyed hash
 * (SipHash-2-4, random key per process) so that keys chosen by clients, such as JIDs,
 * cannot be picked to collide. */
#ifndef COMMON_HMAP_H
#define COMMON_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hmap hmap_t;

hmap_t *hmap_new(void);
/* Frees the map and its keys; the values are the caller's. */
void hmap_destroy(hmap_t **map_p);
/* Frees every value with free_value (NULL: free), then the map; accepts NULL. */
void hmap_destroy_all(hmap_t **map_p, void (*free_value)(void *));
void *hmap_get(const hmap_t *map, const void *key, size_t klen);
/* Inserts or replaces; returns the value replaced, or NULL. */
void *hmap_put(hmap_t *map, const void *key, size_t klen, void *value);
/* Removes a key; returns its value, or NULL when absent. */
void *hmap_del(hmap_t *map, const void *key, size_t klen);
size_t hmap_count(const hmap_t *map);
/* Iteration: start with *pos = 0; returns 0 when done. The map must not change meanwhile. */
int hmap_next(const hmap_t *map, size_t *pos, const void **key, size_t *klen, void **value);

/* Removes every entry for which drop(value, ud) returns non-zero (drop frees the value
 * if it owns it); returns how many remain. */
size_t hmap_filter(hmap_t *map, int (*drop)(void *value, void *ud), void *ud);

/* String-key conveniences. */
#define hmap_sget(m, s) hmap_get((m), (s), strlen(s))
#define hmap_sput(m, s, v) hmap_put((m), (s), strlen(s), (v))
#define hmap_sdel(m, s) hmap_del((m), (s), strlen(s))

/* SipHash-2-4 of data under the process key. */
uint64_t hmap_hash(const void *data, size_t len);

#endif
