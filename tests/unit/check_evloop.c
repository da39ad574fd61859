/* The event loop: timers in order, cancellation, fd events, hooks, and a ZeroMQ socket
 * drained completely although its ZMQ_FD is edge-triggered. Also the hash map. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
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


/* Batches (zbatch.h): what goes in comes out, part for part; a frame cut anywhere gives the
 * messages before the cut and an error, never a read past its end. */
static zpart_t seen[64][ZLINK_MAX_PARTS];
static int seen_n[64], nseen;

static void collect(void *ud, const zpart_t *parts, int n)
{
    (void)ud;
    ck_assert_int_lt(nseen, 64);
    memcpy(seen[nseen], parts, (size_t)n * sizeof *parts);
    seen_n[nseen++] = n;
}

START_TEST(test_zbatch_codec)
{
    buf_t b = BUF_INIT;
    const zpart_t m1[1] = {{"one", 3}};
    const zpart_t m2[2] = {{"hdr", 3}, {"", 0}};
    const zpart_t m3[3] = {{"a", 1}, {"bb", 2}, {"payload", 7}};
    zbatch_append(&b, m1, 1);
    zbatch_append(&b, m2, 2);
    zbatch_append(&b, m3, 3);
    ck_assert_int_eq((unsigned char)b.data[0], ZBATCH_MAGIC);
    nseen = 0;
    zpart_t id = {"fe-1", 4};
    ck_assert_int_eq(zbatch_open(b.data, b.len, &id, collect, NULL), 0);
    ck_assert_int_eq(nseen, 3);
    ck_assert_int_eq(seen_n[0], 2);
    ck_assert_int_eq(seen_n[1], 3);
    ck_assert_int_eq(seen_n[2], 4);
    ck_assert_ptr_eq(seen[2][0].data, id.data);
    ck_assert_uint_eq(seen[1][2].len, 0);
    ck_assert_uint_eq(seen[2][3].len, 7);
    ck_assert_int_eq(memcmp(seen[2][3].data, "payload", 7), 0);
    /* Cut short anywhere inside the last message: the first two, then an error. */
    size_t two = 1 + (1 + 4 + 3) + (1 + 4 + 3 + 4 + 0);
    for (size_t cut = two + 1; cut < b.len; cut++) {
        nseen = 0;
        ck_assert_int_eq(zbatch_open(b.data, cut, NULL, collect, NULL), -1);
        ck_assert_int_eq(nseen, 2);
    }
    nseen = 0;
    ck_assert_int_eq(zbatch_open(b.data, two, NULL, collect, NULL), 0);
    ck_assert_int_eq(nseen, 2);
    /* Not a batch; no parts; too many parts with the routing id. */
    ck_assert_int_eq(zbatch_open("X", 1, NULL, collect, NULL), -1);
    ck_assert_int_eq(zbatch_open("", 0, NULL, collect, NULL), -1);
    const char none[2] = {ZBATCH_MAGIC, 0};
    ck_assert_int_eq(zbatch_open(none, 2, NULL, collect, NULL), -1);
    buf_t many = BUF_INIT;
    zpart_t eight[ZLINK_MAX_PARTS];
    for (int i = 0; i < ZLINK_MAX_PARTS; i++)
        eight[i] = (zpart_t){"x", 1};
    zbatch_append(&many, eight, ZLINK_MAX_PARTS);
    nseen = 0;
    ck_assert_int_eq(zbatch_open(many.data, many.len, NULL, collect, NULL), 0);
    ck_assert_int_eq(nseen, 1);
    ck_assert_int_eq(zbatch_open(many.data, many.len, &id, collect, NULL), -1);
    buf_free(&many);
    buf_free(&b);
}
END_TEST

/* Two zlinks, a DEALER and a ROUTER, batching to each other: every message arrives once,
 * in order, as the sender gave it, whether it travelled in a batch, alone (a batch of
 * one) or alone because it is big; and what one pass sends crosses as one ZeroMQ message. */
#define ZB_N 300
static int zb_dealer_got, zb_router_got;
static zlink_t *zb_router;

static void zb_check(const zpart_t *body, int i)
{
    char want[32];
    int n = snprintf(want, sizeof want, "msg %d", i);
    ck_assert_uint_ge(body[0].len, (size_t)n);
    ck_assert_int_eq(memcmp(body[0].data, want, (size_t)n), 0);
    size_t big = i % 50 == 7 ? 20000 : 10;
    ck_assert_uint_eq(body[1].len, big);
    ck_assert_int_eq(((const char *)body[1].data)[big - 1], 'p');
}

static void zb_send(zlink_t *z, const zpart_t *id, int i)
{
    static char text[ZB_N][32], payload[20000];
    memset(payload, 'p', sizeof payload);
    snprintf(text[i], sizeof text[i], "msg %d", i);
    zpart_t parts[3];
    int n = 0;
    if (id)
        parts[n++] = *id;
    parts[n++] = (zpart_t){text[i], strlen(text[i])};
    parts[n++] = (zpart_t){payload, i % 50 == 7 ? 20000 : 10};
    ck_assert_int_eq(zlink_send(z, parts, n), 0);
}

static void zb_on_router(void *ud, const zpart_t *parts, int n)
{
    (void)ud;
    ck_assert_int_eq(n, 3);
    zb_check(parts + 1, zb_router_got);
    if (zb_router_got == 0)
        zlink_batch_to(zb_router, parts[0].data, parts[0].len);
    /* Answered in the same pass: the answers go back batched. */
    zb_send(zb_router, &parts[0], zb_router_got);
    zb_router_got++;
}

static void zb_on_dealer(void *ud, const zpart_t *parts, int n)
{
    ck_assert_int_eq(n, 2);
    zb_check(parts, zb_dealer_got);
    if (++zb_dealer_got == ZB_N)
        evloop_stop(ud);
}

static zlink_t *zb_dealer;

static void zb_start(evloop_t *loop, void *ud)
{
    (void)loop;
    (void)ud;
    for (int i = 0; i < ZB_N; i++)
        zb_send(zb_dealer, NULL, i);
}

START_TEST(test_zlink_batches)
{
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER), *dealer = zmq_socket(ctx, ZMQ_DEALER);
    void *raw = zmq_socket(ctx, ZMQ_ROUTER), *dealer2 = zmq_socket(ctx, ZMQ_DEALER);
    int one = 1;
    zmq_setsockopt(router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    ck_assert_int_eq(zmq_bind(router, "inproc://check-zbatch"), 0);
    ck_assert_int_eq(zmq_connect(dealer, "inproc://check-zbatch"), 0);
    ck_assert_int_eq(zmq_bind(raw, "inproc://check-zbatch-raw"), 0);
    ck_assert_int_eq(zmq_connect(dealer2, "inproc://check-zbatch-raw"), 0);
    evloop_t *l = evloop_new();
    zb_dealer_got = zb_router_got = 0;
    zb_router = zlink_new(l, router, zb_on_router, l);
    zlink_batches(zb_router);
    zb_dealer = zlink_new(l, dealer, zb_on_dealer, l);
    zlink_batch_to(zb_dealer, NULL, 0);
    evloop_timer(l, 0, zb_start, NULL);
    evloop_timer(l, 5000, give_up, NULL);
    evloop_run(l);
    ck_assert_int_eq(zb_router_got, ZB_N);
    ck_assert_int_eq(zb_dealer_got, ZB_N);

    /* A peer that is not there: unbatched, a send fails at once; batched, it is taken, the
     * batch's send finds the peer gone, and the next send says so at once. */
    zpart_t nobody[2] = {{"nobody", 6}, {"x", 1}};
    errno = 0;
    ck_assert_int_eq(zlink_send(zb_router, nobody, 2), -1);
    ck_assert_int_eq(errno, EHOSTUNREACH);
    zlink_batch_to(zb_router, "nobody", 6);
    ck_assert_int_eq(zlink_send(zb_router, nobody, 2), 0);
    evloop_timer(l, 20, give_up, NULL);
    evloop_run(l);
    errno = 0;
    ck_assert_int_eq(zlink_send(zb_router, nobody, 2), -1);
    ck_assert_int_eq(errno, EHOSTUNREACH);
    zlink_forget(zb_router, "nobody", 6);

    /* Taken back before the pass ends: the messages come back in order, nothing is sent. */
    zlink_t *z2 = zlink_new(l, dealer2, zb_on_dealer, l);
    zlink_batch_to(z2, NULL, 0);
    for (int i = 0; i < 3; i++)
        zb_send(z2, NULL, i + 10);
    nseen = 0;
    zlink_take_back(z2, NULL, 0, collect, NULL);
    ck_assert_int_eq(nseen, 3);
    ck_assert_int_eq(seen_n[0], 2);
    ck_assert_int_eq(memcmp(seen[2][0].data, "msg 12", 6), 0);
    evloop_timer(l, 20, give_up, NULL);
    evloop_run(l);
    ck_assert_int_eq(zmq_recv(raw, NULL, 0, ZMQ_DONTWAIT), -1);

    /* Ten messages sent in one pass, seen by a plain socket: one batch of ten. */
    for (int i = 0; i < 10; i++)
        zb_send(z2, NULL, i + 10); /* none of these is big (i % 50 == 7) */
    evloop_timer(l, 20, give_up, NULL);
    evloop_run(l);
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    ck_assert_int_ge(zmq_msg_recv(&id, raw, ZMQ_DONTWAIT), 0);
    ck_assert_int_ge(zmq_msg_recv(&body, raw, ZMQ_DONTWAIT), 0);
    ck_assert_int_eq(zmq_msg_more(&body), 0);
    nseen = 0;
    ck_assert_int_eq(zbatch_open(zmq_msg_data(&body), zmq_msg_size(&body), NULL, collect, NULL), 0);
    ck_assert_int_eq(nseen, 10);
    ck_assert_int_eq(zmq_recv(raw, NULL, 0, ZMQ_DONTWAIT), -1); /* nothing else */
    zmq_msg_close(&id);
    zmq_msg_close(&body);

    zlink_destroy(&z2);
    zlink_destroy(&zb_router);
    zlink_destroy(&zb_dealer);
    evloop_destroy(&l);
    int linger = 0;
    void *socks[4] = {router, dealer, raw, dealer2};
    for (int i = 0; i < 4; i++) {
        zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(socks[i]);
    }
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
    tcase_add_test(tc, test_zbatch_codec);
    tcase_add_test(tc, test_zlink_batches);
    tcase_add_test(tc, test_hmap);
    tcase_add_test(tc, test_hmap_empty);
    tcase_add_test(tc, test_signals);
    tcase_set_timeout(tc, 20);
    suite_add_tcase(s, tc);
    return s;
}
