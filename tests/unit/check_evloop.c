/* The event loop: timers in order, cancellation, fd events, hooks, and a ZeroMQ socket
 * drained completely although its ZMQ_FD is edge-triggered. Also the hash map. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "evloop.h"
#include "hmap.h"
#include "suites.h"
#include "zlink.h"

static int order[8], norder;

static void record(evloop_t *loop, void *ud)
{
    order[norder++] = (int)(long)ud;
    if (norder == 3)
        evloop_stop(loop);
}

START_TEST(test_timers_in_order)
{
    evloop_t *l = evloop_new();
    norder = 0;
    evloop_timer(l, 30, record, (void *)3L);
    evloop_timer(l, 10, record, (void *)1L);
    ev_timer_t *gone = evloop_timer(l, 15, record, (void *)9L);
    evloop_timer(l, 20, record, (void *)2L);
    evloop_cancel(l, &gone);
    ck_assert_ptr_null(gone);
    evloop_run(l);
    ck_assert_int_eq(norder, 3);
    ck_assert_int_eq(order[0], 1);
    ck_assert_int_eq(order[1], 2);
    ck_assert_int_eq(order[2], 3);
    evloop_destroy(&l);
    ck_assert_ptr_null(l);
}
END_TEST

static int pipe_reads, hook_runs;

static void on_pipe(evloop_t *loop, int fd, unsigned events, void *ud)
{
    (void)ud;
    char c;
    ck_assert(events & EV_READ);
    ck_assert_int_eq(read(fd, &c, 1), 1);
    ck_assert_int_eq(c, 'x');
    pipe_reads++;
    evloop_stop(loop);
}

static void hook(evloop_t *loop, void *ud)
{
    (void)loop;
    (void)ud;
    hook_runs++;
}

START_TEST(test_fd_and_hook)
{
    evloop_t *l = evloop_new();
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pipe_reads = hook_runs = 0;
    ck_assert_int_eq(evloop_watch(l, p[0], EV_READ, on_pipe, NULL), 0);
    evloop_before_sleep(l, hook, NULL);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    evloop_run(l);
    ck_assert_int_eq(pipe_reads, 1);
    ck_assert_int_ge(hook_runs, 1);
    evloop_unwatch(l, p[0]);
    close(p[0]);
    close(p[1]);
    evloop_destroy(&l);
}
END_TEST

static int zgot;

static void on_zmsg(void *ud, const zpart_t *parts, int nparts)
{
    evloop_t *loop = ud;
    ck_assert_int_eq(nparts, 2); /* routing id + body */
    ck_assert_uint_eq(parts[1].len, 5);
    ck_assert_int_eq(memcmp(parts[1].data, "hello", 5), 0);
    if (++zgot == 500)
        evloop_stop(loop);
}

static void give_up(evloop_t *loop, void *ud)
{
    (void)ud;
    evloop_stop(loop);
}

START_TEST(test_zlink_drains_everything)
{
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER), *dealer = zmq_socket(ctx, ZMQ_DEALER);
    ck_assert_int_eq(zmq_bind(router, "inproc://check-zlink"), 0);
    ck_assert_int_eq(zmq_connect(dealer, "inproc://check-zlink"), 0);
    /* Everything is queued before the loop starts: one edge for 500 messages. */
    for (int i = 0; i < 500; i++)
        ck_assert_int_eq(zmq_send(dealer, "hello", 5, 0), 5);
    evloop_t *l = evloop_new();
    zgot = 0;
    zlink_t *z = zlink_new(l, router, on_zmsg, l);
    evloop_timer(l, 5000, give_up, NULL);
    evloop_run(l);
    ck_assert_int_eq(zgot, 500);
    zlink_destroy(&z);
    evloop_destroy(&l);
    int linger = 0;
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(dealer);
    zmq_close(router);
    zmq_ctx_term(ctx);
}
END_TEST

/* An empty map (no slot array yet) answers every call; the first put makes it usable. */
START_TEST(test_hmap_empty)
{
    hmap_t *m = hmap_new();
    ck_assert_uint_eq(hmap_count(m), 0);
    ck_assert_ptr_null(hmap_sget(m, "a"));
    ck_assert_ptr_null(hmap_sdel(m, "a"));
    size_t pos = 0, kl;
    const void *k;
    void *v;
    ck_assert_int_eq(hmap_next(m, &pos, &k, &kl, &v), 0);
    ck_assert_uint_eq(hmap_filter(m, NULL, NULL), 0);
    hmap_destroy_all(&m, NULL);
    ck_assert_ptr_null(m);
    m = hmap_new();
    ck_assert_ptr_null(hmap_sput(m, "a", (void *)1L));
    ck_assert_ptr_eq(hmap_sget(m, "a"), (void *)1L);
    ck_assert_ptr_eq(hmap_sdel(m, "a"), (void *)1L);
    ck_assert_ptr_null(hmap_sget(m, "a"));
    hmap_destroy(&m);
}
END_TEST

START_TEST(test_hmap)
{
    hmap_t *m = hmap_new();
    char key[48];
    for (long i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "user%ld@example.org", i);
        ck_assert_ptr_null(hmap_sput(m, key, (void *)(i + 1)));
    }
    ck_assert_uint_eq(hmap_count(m), 5000);
    for (long i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "user%ld@example.org", i);
        ck_assert_ptr_eq(hmap_sget(m, key), (void *)(i + 1));
    }
    ck_assert_ptr_null(hmap_sget(m, "user5000@example.org"));
    ck_assert_ptr_eq(hmap_sput(m, "user7@example.org", (void *)77L), (void *)8L);
    long seen = 0;
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(m, &pos, &k, &kl, &v))
        seen++;
    ck_assert_int_eq(seen, 5000);
    for (long i = 0; i < 5000; i += 2) {
        snprintf(key, sizeof key, "user%ld@example.org", i);
        ck_assert_ptr_nonnull(hmap_sdel(m, key));
    }
    ck_assert_uint_eq(hmap_count(m), 2500);
    ck_assert_ptr_null(hmap_sdel(m, "user0@example.org"));
    ck_assert_ptr_eq(hmap_sget(m, "user7@example.org"), (void *)77L);
    /* Binary keys with NUL bytes are distinct keys. */
    ck_assert_ptr_null(hmap_put(m, "a\0b", 3, (void *)1L));
    ck_assert_ptr_null(hmap_put(m, "a\0c", 3, (void *)2L));
    ck_assert_ptr_eq(hmap_get(m, "a\0b", 3), (void *)1L);
    hmap_destroy(&m);
    ck_assert_ptr_null(m);
}
END_TEST

/* SIGHUP: a registered handler runs from the loop, which goes on; without one it is
 * logged and ignored (the default action would kill the process). SIGTERM still stops. */
static int hups;

static void raise_later(evloop_t *loop, void *ud)
{
    (void)loop;
    raise((int)(long)ud);
}

/* Each SIGHUP is handled before the next is raised (signals do not queue). */
static void on_hup(evloop_t *loop, int signo, void *ud)
{
    ck_assert_int_eq(signo, SIGHUP);
    hups += *(int *)ud;
    evloop_timer(loop, 1, raise_later, (void *)(long)(hups < 2 ? SIGHUP : SIGTERM));
}

START_TEST(test_signals)
{
    evloop_t *l = evloop_new();
    hups = 0;
    /* no handler yet: ignored; the SIGTERM raised after it stops the loop */
    evloop_timer(l, 5, raise_later, (void *)(long)SIGHUP);
    evloop_timer(l, 30, raise_later, (void *)(long)SIGTERM);
    evloop_run(l);
    ck_assert_int_eq(hups, 0);
    int weight = 1;
    ck_assert_int_eq(evloop_on_signal(l, SIGHUP, on_hup, &weight), 0);
    ck_assert_int_eq(evloop_on_signal(l, SIGKILL, on_hup, &weight), -1);
    ck_assert_int_eq(evloop_on_signal(l, 0, on_hup, &weight), -1);
    evloop_timer(l, 5, raise_later, (void *)(long)SIGHUP);
    evloop_run(l);
    ck_assert_int_eq(hups, 2);
    evloop_destroy(&l);
}
END_TEST

Suite *make_evloop_suite(void)
{
    Suite *s = suite_create("evloop");
    TCase *tc = tcase_create("loop");
    tcase_add_test(tc, test_timers_in_order);
    tcase_add_test(tc, test_fd_and_hook);
    tcase_add_test(tc, test_zlink_drains_everything);
    tcase_add_test(tc, test_hmap);
    tcase_add_test(tc, test_hmap_empty);
    tcase_add_test(tc, test_signals);
    tcase_set_timeout(tc, 20);
    suite_add_tcase(s, tc);
    return s;
}
