/* The limit bookkeeping: failure back-off (common/backoff.c) and the frontend's
 * per-address table (c2s-frontend/addrlimit.c), driven with explicit times. */
#include <string.h>

#include "../../c2s-frontend/addrlimit.h"
#include "backoff.h"
#include "suites.h"

START_TEST(backoff_locks_after_max_failures)
{
    backoff_t *b = backoff_new(3, 1000);
    ck_assert_uint_eq(backoff_wait(b, "a", 0), 0);
    ck_assert_uint_eq(backoff_failed(b, "a", 10), 0);
    ck_assert_uint_eq(backoff_failed(b, "a", 20), 0);
    ck_assert_uint_eq(backoff_failed(b, "a", 30), 1000);
    ck_assert_uint_eq(backoff_wait(b, "a", 30), 1000);
    ck_assert_uint_eq(backoff_wait(b, "a", 530), 500);
    ck_assert_uint_eq(backoff_wait(b, "b", 530), 0); /* other keys are free */
    ck_assert_uint_eq(backoff_wait(b, "a", 1030), 0);
    backoff_free(&b);
    ck_assert_ptr_null(b);
}
END_TEST

START_TEST(backoff_doubles_while_failures_go_on)
{
    backoff_t *b = backoff_new(2, 1000);
    uint64_t t = 0, lock = 0;
    uint64_t want[] = {1000, 2000, 4000, 8000, 16000, 16000};
    for (int i = 0; i < 6; i++) {
        ck_assert_uint_eq(backoff_failed(b, "k", t), 0);
        lock = backoff_failed(b, "k", t + 1);
        ck_assert_uint_eq(lock, want[i]);
        t += lock + 1; /* waits out the lock-out, then fails again */
    }
    backoff_free(&b);
}
END_TEST

START_TEST(backoff_spaced_failures_do_not_lock)
{
    backoff_t *b = backoff_new(2, 1000);
    /* One failure a window or slower: each is forgiven before the next comes. */
    for (uint64_t t = 0; t < 10 * 1500; t += 1500)
        ck_assert_uint_eq(backoff_failed(b, "k", t), 0);
    backoff_free(&b);
}
END_TEST

START_TEST(backoff_paused_bursts_still_lock)
{
    backoff_t *b = backoff_new(10, 1000);
    /* Nine at once, a pause just over a window, nine more: the pause forgives one, so the
     * second burst locks at its second failure. */
    for (uint64_t t = 0; t < 9; t++)
        ck_assert_uint_eq(backoff_failed(b, "k", t), 0);
    ck_assert_uint_eq(backoff_failed(b, "k", 1010), 0);
    ck_assert_uint_eq(backoff_failed(b, "k", 1011), 1000);
    /* Paced a little faster than one per window, failures pile up too. */
    backoff_t *p = backoff_new(3, 1000);
    uint64_t lock = 0, t = 0;
    for (int i = 0; i < 6 && !lock; i++, t += 900)
        lock = backoff_failed(p, "k", t);
    ck_assert_uint_eq(lock, 1000);
    backoff_free(&b);
    backoff_free(&p);
}
END_TEST

START_TEST(backoff_off_and_sweep)
{
    backoff_t *off = backoff_new(0, 1000);
    for (int i = 0; i < 100; i++)
        ck_assert_uint_eq(backoff_failed(off, "k", (uint64_t)i), 0);
    ck_assert_uint_eq(backoff_sweep(off, 0), 0);
    backoff_free(&off);

    backoff_t *b = backoff_new(5, 1000);
    backoff_failed(b, "x", 0);
    backoff_failed(b, "y", 10000);
    ck_assert_uint_eq(backoff_sweep(b, 10000), 2);
    ck_assert_uint_eq(backoff_sweep(b, 16 * 1000 + 2), 1); /* x is forgotten */
    ck_assert_uint_eq(backoff_sweep(b, 10000 + 16 * 1000 + 1), 0);
    backoff_free(&b);
}
END_TEST

START_TEST(addrlimit_keys)
{
    char k[ADDRLIMIT_KEY_MAX];
    addrlimit_key("192.0.2.7:5222", k);
    ck_assert_str_eq(k, "192.0.2.7");
    addrlimit_key("[2001:db8:1:2:3:4:5:6]:40000", k);
    ck_assert_str_eq(k, "2001:db8:1:2::/64");
    addrlimit_key("[2001:db8:1:2::ffff]:1", k);
    ck_assert_str_eq(k, "2001:db8:1:2::/64");
    addrlimit_key("[::ffff:198.51.100.3]:7", k);
    ck_assert_str_eq(k, "198.51.100.3");
    addrlimit_key("?", k); /* no address known: counts as itself */
    ck_assert_str_eq(k, "?");
}
END_TEST

START_TEST(addrlimit_connections_and_rate)
{
    addrlimit_init(&(addrlimit_config_t){.max_conns = 2, .rate = 1, .burst = 3,
                                         .max_auth_failures = 2, .backoff_ms = 1000});
    ck_assert_ptr_null(addrlimit_admit("a", 0));
    ck_assert_ptr_null(addrlimit_admit("a", 0));
    ck_assert_ptr_nonnull(addrlimit_admit("a", 0)); /* two at once */
    ck_assert_ptr_null(addrlimit_admit("b", 0));
    addrlimit_release("a");
    ck_assert_ptr_null(addrlimit_admit("a", 0)); /* third of the burst of 3 */
    addrlimit_release("a");
    ck_assert_ptr_nonnull(addrlimit_admit("a", 0)); /* the burst is spent */
    ck_assert_ptr_null(addrlimit_admit("a", 1000)); /* one a second comes back */
    addrlimit_release("a");
    addrlimit_release("a");
    addrlimit_release("b");
    addrlimit_auth_failed("a", 0);
    ck_assert_uint_eq(addrlimit_auth_wait("a", 0), 0);
    addrlimit_auth_failed("a", 1);
    ck_assert_uint_eq(addrlimit_auth_wait("a", 1), 1000);
    addrlimit_sweep(100000); /* everything is quiet by then */
    ck_assert_ptr_null(addrlimit_admit("a", 100000));
    addrlimit_release("a");
    addrlimit_shutdown();
}
END_TEST

Suite *make_limits_suite(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, backoff_locks_after_max_failures);
    tcase_add_test(tc, backoff_doubles_while_failures_go_on);
    tcase_add_test(tc, backoff_spaced_failures_do_not_lock);
    tcase_add_test(tc, backoff_paused_bursts_still_lock);
    tcase_add_test(tc, backoff_off_and_sweep);
    tcase_add_test(tc, addrlimit_keys);
    tcase_add_test(tc, addrlimit_connections_and_rate);
    suite_add_tcase(s, tc);
    return s;
}
