/* account: deleting an account, one procedure for every path (XEP-0077 in-band removal,
 * the admin endpoint behind `xmppctl deluser`):
 *   1. a tombstone is written (keys.h KEYS_TOMBSTONE: the address and the deletion time),
 *      so the address is never handed to anyone new and no one logs in with it again;
 *   2. every session of the account, on every frontend, ends with a stream error;
 *   3. the "user deleted" hook runs with the roster loaded: the presence module tells
 *      every contact (unsubscribe and unsubscribed), and each module names the keys of the
 *      user's data it keeps (account_data_key);
 *   4. those keys, the roster and the credentials go in one DEL (one hash slot), then the
 *      address leaves the account list.
 * Every step can run again: a deletion that failed half way (Redis went away) is finished
 * by asking for it once more, and until then the tombstone keeps the account shut. */
#ifndef ROUTER_ACCOUNT_H
#define ROUTER_ACCOUNT_H

#include "config.h"
#include "hook.h"

typedef enum {
    ACCOUNT_COMMITTED, /* the tombstone is written and the roster loaded: the sessions are
                          about to be ended (an in-band removal answers its iq now) */
    ACCOUNT_DELETED,   /* everything is gone but the tombstone */
    ACCOUNT_NOT_FOUND, /* no such account and no tombstone: nothing was done */
    ACCOUNT_FAILED,    /* storage failed; after ACCOUNT_COMMITTED the tombstone stays and a
                          new request finishes the deletion */
} account_status_t;

/* Called with ACCOUNT_COMMITTED (when reached), then exactly once with one of the others. */
typedef void (*account_fn)(void *arg, account_status_t status);

/* Deletes the account `bare` (a prepared bare JID of the served domain). The sessions end
 * with the stream error `condition` and `text` (text may be NULL). */
void account_delete(const char *bare, const char *condition, const char *text, account_fn fn,
                    void *arg);

/* In a HOOK_USER_DELETED handler: one more key of the user's data (a keys.h kind) to
 * remove with the account. */
void account_data_key(hook_ev_t *ev, const char *kind);

/* The key tombstone_expiry. */
extern const config_key_t account_config_keys[];

#endif
