/* backoff: failed attempts counted per key (an address, an account), with a lock-out that
 * grows while the failures go on. Used against password guessing: failures are counted,
 * one is forgiven for each `window_ms` without any, and at `max_failures` the key is locked
 * for `window_ms`; every further lock-out within a short time doubles that, up to 16 times.
 * So a key gets at most `max_failures` at once, then about one per `window_ms`.
 * Entries forget themselves (backoff_sweep) once the key has been quiet for long enough, so
 * the table holds only keys that failed recently. */
#ifndef COMMON_BACKOFF_H
#define COMMON_BACKOFF_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>

typedef struct backoff backoff_t;

/* max_failures 0: never locks (nothing is recorded). */
backoff_t *backoff_new(long max_failures, uint64_t window_ms);
void backoff_free(backoff_t **b_p);
/* Milliseconds until `key` may try again: 0 when it may now. */
uint64_t backoff_wait(backoff_t *b, const char *key, uint64_t now);
/* Records a failure; returns the milliseconds of the lock-out it started, or 0. */
uint64_t backoff_failed(backoff_t *b, const char *key, uint64_t now);
/* Forgets a key's failures and lock-outs (it succeeded). */
void backoff_clear(backoff_t *b, const char *key);
/* Forgets the keys that have been quiet long enough; returns how many remain. */
size_t backoff_sweep(backoff_t *b, uint64_t now);

/* The key auth_backoff. */
extern const config_key_t backoff_config_keys[];

#endif
