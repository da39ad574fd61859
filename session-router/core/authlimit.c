/* Failed authentications per account (auth_failures_per_account, auth_backoff): every
 * credential request (IPC_AUTH) counts as a failure until the frontend that verified the
 * password reports a success (IPC_AUTH_RESULT); once an account has too many, its
 * credential requests are answered IPC_LOCKED until the back-off is over, however many
 * connections and frontends the guesser spreads over. Unknown accounts count the same way,
 * so the answer tells nothing about which accounts exist. */
#include "backoff.h"
#include "config.h"
#include "log.h"
#include "authlimit.h"
#include "link.h"
#include "storage.h"
#include "util.h"

#define AUTHLIMIT_SWEEP_MS 10000

const config_key_t authlimit_config_keys[] = {
    CONFIG_INT("auth_failures_per_account", "10", 0, 1000000, "failed logins of one account, over every frontend, before a lock-out (0 = off)"),
    CONFIG_END,
};

static backoff_t *failures;
static ev_timer_t *sweep_timer;

static void on_sweep(evloop_t *loop, void *ud)
{
    backoff_sweep(failures, now_ms());
    sweep_timer = evloop_timer(loop, AUTHLIMIT_SWEEP_MS, on_sweep, ud);
}

void authlimit_open(void)
{
    failures = backoff_new(config_int("auth_failures_per_account"),
                           (uint64_t)config_int("auth_backoff") * 1000);
    sweep_timer = evloop_timer(rt.loop, AUTHLIMIT_SWEEP_MS, on_sweep, NULL);
}

void authlimit_close(void)
{
    evloop_cancel(rt.loop, &sweep_timer);
    backoff_free(&failures);
}

void authlimit_on_auth(rt_frontend_t *f, const ipc_auth_t *m)
{
    uint64_t now = now_ms();
    if (!backoff_wait(failures, m->username, now)) {
        /* Counted now rather than when a failure is reported: guesses sent at once over
         * many connections would otherwise all be tried before the first report. */
        uint64_t lock = backoff_failed(failures, m->username, now);
        if (lock)
            log_warn("auth: too many failed attempts for '%s' (last from %s): locked for "
                     "%llu s", m->username, f->ident, (unsigned long long)(lock / 1000));
        storage_auth_lookup(f, m);
        return;
    }
    link_send_auth_reply(f, &(ipc_auth_reply_t){m->conn, m->seq, IPC_LOCKED, NULL});
}

void authlimit_on_result(rt_frontend_t *f, const ipc_auth_result_t *m)
{
    (void)f;
    /* A failure was counted with the request; a success means the owner got in. */
    if (m->status == IPC_OK)
        backoff_clear(failures, m->username);
}
