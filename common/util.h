/* util: allocation wrappers that never return NULL, and small helpers. */
#ifndef COMMON_UTIL_H
#define COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Frees *pp and sets it to NULL, so no pointer to freed memory stays reachable. */
#define xfree(pp)                                                                                  \
    do {                                                                                           \
        free(*(pp));                                                                               \
        *(pp) = NULL;                                                                              \
    } while (0)

/* Monotonic clock in milliseconds. */
uint64_t now_ms(void);
/* Fills `out` with `n` bytes from a cryptographic random source; aborts if none is available. */
void random_bytes(void *out, size_t n);
/* Writes `prefix` and 16 random hex digits into out (ids of server-generated stanzas). */
void random_id(char *out, size_t n, const char *prefix);
/* Constant-time comparison of two byte strings of length n: 1 when equal. */
int ct_equal(const void *a, const void *b, size_t n);

#endif
