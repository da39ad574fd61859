#include "backoff.h"

#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "util.h"

/* The lock-out of failed logins, per address (frontend) and per account (router). */
const config_key_t backoff_config_keys[] = {
    CONFIG_INT("auth_backoff", "30", 1, 86400, "seconds of the first lock-out after too many failed logins; one failure is forgiven per this many seconds"),
    CONFIG_END,
};

#define BACKOFF_MAX_SHIFT 4 /* lock-outs grow up to 16 x window */

typedef struct {
    int failures;      /* counted, less one per window_ms of quiet before each failure */
    int locks;         /* lock-outs in a row: the next lasts window << locks */
    uint64_t last;     /* time of the last failure */
    uint64_t until;    /* locked until then */
} entry_t;

struct backoff {
    hmap_t *map; /* key -> entry_t */
    long max_failures;
    uint64_t window;
};

backoff_t *backoff_new(long max_failures, uint64_t window_ms)
{
    backoff_t *b = xcalloc(1, sizeof *b);
    b->map = hmap_new();
    b->max_failures = max_failures;
    b->window = window_ms ? window_ms : 1;
    return b;
}

void backoff_free(backoff_t **b_p)
{
    backoff_t *b = *b_p;
    if (!b)
        return;
    hmap_destroy_all(&b->map, NULL);
    xfree(b_p);
}

uint64_t backoff_wait(backoff_t *b, const char *key, uint64_t now)
{
    entry_t *e = hmap_sget(b->map, key);
    return e && e->until > now ? e->until - now : 0;
}

void backoff_clear(backoff_t *b, const char *key)
{
    free(hmap_sdel(b->map, key));
}

/* Quiet long enough to forget: not locked, and the last failure is older than the longest
 * lock-out, so that a guesser who waits out one lock-out still meets the doubled one. */
static int forgettable(const backoff_t *b, const entry_t *e, uint64_t now)
{
    return e->until <= now && now - e->last > b->window << BACKOFF_MAX_SHIFT;
}

uint64_t backoff_failed(backoff_t *b, const char *key, uint64_t now)
{
    if (b->max_failures <= 0)
        return 0;
    entry_t *e = hmap_sget(b->map, key);
    if (!e) {
        e = xcalloc(1, sizeof *e);
        hmap_sput(b->map, key, e);
    } else if (forgettable(b, e, now)) {
        memset(e, 0, sizeof *e);
    } else {
        /* One failure is forgiven per window of quiet (the lock-out count stays): a guesser
         * who pauses between bursts carries the count over, and one who paces the guesses
         * gets at most one per window without meeting a lock-out. */
        uint64_t forgiven = (now - e->last) / b->window;
        e->failures = forgiven >= (uint64_t)e->failures ? 0 : e->failures - (int)forgiven;
    }
    e->last = now;
    if (e->until > now || ++e->failures < b->max_failures)
        return 0;
    uint64_t lock = b->window << (e->locks < BACKOFF_MAX_SHIFT ? e->locks : BACKOFF_MAX_SHIFT);
    e->locks++;
    e->failures = 0;
    e->until = now + lock;
    return lock;
}

typedef struct {
    const backoff_t *b;
    uint64_t now;
} sweep_t;

static int drop_quiet(void *value, void *ud)
{
    const sweep_t *sw = ud;
    if (!forgettable(sw->b, value, sw->now))
        return 0;
    free(value);
    return 1;
}

size_t backoff_sweep(backoff_t *b, uint64_t now)
{
    sweep_t sw = {b, now};
    return hmap_filter(b->map, drop_quiet, &sw);
}
