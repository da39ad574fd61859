/* buf: one growable byte buffer type, used for socket queues and serialisation.
 * The data is always NUL-terminated (one spare byte past len), so text built in a
 * buffer can be handed to string functions directly. */
#ifndef COMMON_BUF_H
#define COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data; /* NULL until the first append */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated, excluding the spare NUL byte */
} buf_t;

#define BUF_INIT {NULL, 0, 0}

/* Makes room for at least `extra` more bytes; aborts on allocation failure. */
void buf_reserve(buf_t *b, size_t extra);
/* Appends `n` bytes. */
void buf_append(buf_t *b, const void *p, size_t n);
/* Appends a NUL-terminated string. */
void buf_append_str(buf_t *b, const char *s);
/* Appends printf-formatted text. */
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(buf_t *b, const char *fmt, va_list ap);
/* Drops the first `n` bytes (n <= len). */
void buf_consume(buf_t *b, size_t n);
/* Empties the buffer but keeps its memory. */
void buf_clear(buf_t *b);
/* Frees the memory; the buffer is empty and reusable afterwards. */
void buf_free(buf_t *b);
/* Gives the caller the NUL-terminated data (caller frees) and leaves the buffer empty. */
char *buf_steal(buf_t *b);

#endif
