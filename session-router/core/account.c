#include "account.h"

#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys.h"
#include "link.h"
#include "log.h"
#include "router.h"
#include "session.h"
#include "storage.h"
#include "user.h"
#include "util.h"

const config_key_t account_config_keys[] = {
    CONFIG_INT("tombstone_expiry", "0", 0, 3153600000,
               "seconds a deleted account's tombstone is kept (0: for ever)"),
    CONFIG_END,
};

/* The keys of a user's data the core itself keeps besides the credentials: the roster
 * and its version. Modules name theirs in the "user deleted" hook. */
static const char *const core_kinds[] = {KEYS_ROSTER, KEYS_ROSTER_VER};

struct account_deletion {
    char *bare;
    char *condition, *text;
    account_fn fn;
    void *arg;
    int again;   /* the account was gone already: finishing an earlier deletion */
    char **keys; /* storage keys to remove, all in the user's hash slot */
    size_t nkeys;
};
typedef struct account_deletion deletion_t;

static void deletion_free(deletion_t *d)
{
    for (size_t i = 0; i < d->nkeys; i++)
        free(d->keys[i]);
    free(d->keys);
    free(d->text);
    free(d->condition);
    free(d->bare);
    free(d);
}

static void finish(deletion_t *d, account_status_t status)
{
    if (status == ACCOUNT_DELETED && d->again) {
        log_info("account: %s was deleted already; its deletion ran again", d->bare);
    } else if (status == ACCOUNT_DELETED) {
        log_info("account: %s deleted", d->bare);
        metric_inc(rt.m.account_deletions);
    }
    else if (status == ACCOUNT_FAILED)
        log_warn("account: deleting %s failed; the tombstone keeps it shut, ask again to "
                 "finish", d->bare);
    d->fn(d->arg, status);
    deletion_free(d);
}

void account_data_key(hook_ev_t *ev, const char *kind)
{
    deletion_t *d = ev->deletion;
    if (!d)
        return;
    d->keys = xrealloc(d->keys, (d->nkeys + 1) * sizeof *d->keys);
    d->keys[d->nkeys] = xmalloc(STORAGE_KEY_MAX);
    storage_key(d->keys[d->nkeys++], kind, d->bare);
}

static int reply_ok(const redisReply *r)
{
    return r && r->type != REDIS_REPLY_ERROR;
}

static void on_unlisted(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    deletion_t *d = privdata;
    finish(d, reply_ok(reply) ? ACCOUNT_DELETED : ACCOUNT_FAILED);
}

static void on_data_removed(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    deletion_t *d = privdata;
    if (!reply_ok(reply) || !rt.redis_ready) {
        finish(d, ACCOUNT_FAILED);
        return;
    }
    char set[STORAGE_KEY_MAX];
    keys_global(set, sizeof set, rt.redis_prefix, KEYS_ACCOUNTS);
    if (rt_redis_command(on_unlisted, d, "SREM %s %s", set, d->bare) != REDIS_OK)
        finish(d, ACCOUNT_FAILED);
}

/* The roster is loaded (steps 2 to 4 of account.h). */
static void on_roster(user_t *u, int ok, void *arg)
{
    deletion_t *d = arg;
    if (!ok || !rt.redis_ready) {
        finish(d, ACCOUNT_FAILED);
        return;
    }
    d->fn(d->arg, ACCOUNT_COMMITTED);
    u->holds++;
    /* XEP-0077 3.2: the account's streams end; each session ends here as when its client
     * leaves (unavailable presence to the contacts). */
    while (u->sessions) {
        session_t *s = u->sessions;
        if (s->fe)
            link_send_close_text(s->fe, s->conn, d->condition, d->text);
        session_end(s);
    }
    for (size_t i = 0; i < sizeof core_kinds / sizeof core_kinds[0]; i++)
        account_data_key(&(hook_ev_t){.deletion = d}, core_kinds[i]);
    hook_run(HOOK_USER_DELETED, &(hook_ev_t){.user = u, .deletion = d});
    /* The credentials go last, in the same command: until the DEL succeeds the account
     * still exists and a new request finds it to finish. */
    account_data_key(&(hook_ev_t){.deletion = d}, KEYS_ACCOUNT);
    user_deleted(u);
    user_release(u);
    const char **argv = xcalloc(d->nkeys + 1, sizeof *argv);
    argv[0] = "DEL";
    for (size_t i = 0; i < d->nkeys; i++)
        argv[i + 1] = d->keys[i];
    int sent = rt_redis_command_argv(on_data_removed, d, (int)d->nkeys + 1, argv,
                                     NULL) == REDIS_OK;
    free(argv);
    if (!sent)
        finish(d, ACCOUNT_FAILED);
}

/* Step 1: the tombstone, written only when there is an account. Answers 1 then, 2 when
 * there is no account but a tombstone (an earlier deletion: the rest runs again, to finish
 * one cut short), 0 when there is neither. Both keys share the user's hash slot. */
static const char tombstone_script[] =
    "local acct = redis.call('EXISTS', KEYS[1]) "
    "if acct == 0 then return redis.call('EXISTS', KEYS[2]) * 2 end "
    "if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) "
    "else redis.call('SET', KEYS[2], ARGV[1], 'NX') end "
    "return 1";

static void on_tombstone(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    deletion_t *d = privdata;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        log_warn("account: cannot write the tombstone of %s: %s", d->bare,
                 r && r->type == REDIS_REPLY_ERROR ? r->str : "no reply");
        finish(d, ACCOUNT_FAILED);
    } else if (r->integer == 0) {
        finish(d, ACCOUNT_NOT_FOUND);
    } else {
        d->again = r->integer == 2;
        user_with_roster(d->bare, on_roster, d);
    }
}

void account_delete(const char *bare, const char *condition, const char *text, account_fn fn,
                    void *arg)
{
    deletion_t *d = xcalloc(1, sizeof *d);
    d->bare = xstrdup(bare);
    d->condition = xstrdup(condition);
    d->text = text ? xstrdup(text) : NULL;
    d->fn = fn;
    d->arg = arg;
    char acct[STORAGE_KEY_MAX], tomb[STORAGE_KEY_MAX], now[32], expiry[32];
    storage_key(acct, KEYS_ACCOUNT, bare);
    storage_key(tomb, KEYS_TOMBSTONE, bare);
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    snprintf(expiry, sizeof expiry, "%lld", (long long)config_int("tombstone_expiry"));
    if (!rt.redis_ready ||
        rt_redis_command(on_tombstone, d, "EVAL %s 2 %s %s %s %s", tombstone_script,
                          acct, tomb, now, expiry) != REDIS_OK)
        finish(d, ACCOUNT_FAILED);
}
