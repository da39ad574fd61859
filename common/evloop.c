#include "evloop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define EV_MAX_HOOKS 8
#define EV_MAX_SIGNALS 65 /* signal numbers 1..64 */

typedef struct {
    ev_fd_cb cb;
    void *ud;
    unsigned events;
    int active;
} ev_fd_t;

struct ev_timer {
    uint64_t when;
    uint64_t seq; /* insertion order, so equal deadlines fire first-in first-out */
    size_t index; /* position in the heap */
    ev_timer_cb cb;
    void *ud;
};

struct evloop {
    int epfd;
    int sigfd;
    int stop;
    int again; /* evloop_again: the next wait does not sleep */
    ev_fd_t *fds;
    size_t nfds;
    ev_timer_t **heap;
    size_t heap_len, heap_cap;
    uint64_t timer_seq;
    struct {
        ev_hook_cb cb;
        void *ud;
        int last; /* evloop_before_sleep_last: after every other hook */
    } hooks[EV_MAX_HOOKS];
    int nhooks;
    sigset_t sigs; /* the signals the signalfd takes */
    struct {
        ev_signal_cb cb;
        void *ud;
    } signals[EV_MAX_SIGNALS];
};

static int timer_before(const ev_timer_t *a, const ev_timer_t *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_swap(evloop_t *l, size_t i, size_t j)
{
    ev_timer_t *t = l->heap[i];
    l->heap[i] = l->heap[j];
    l->heap[j] = t;
    l->heap[i]->index = i;
    l->heap[j]->index = j;
}

static void heap_up(evloop_t *l, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!timer_before(l->heap[i], l->heap[p]))
            break;
        heap_swap(l, i, p);
        i = p;
    }
}

static void heap_down(evloop_t *l, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1, m = i;
        if (c < l->heap_len && timer_before(l->heap[c], l->heap[m]))
            m = c;
        if (c + 1 < l->heap_len && timer_before(l->heap[c + 1], l->heap[m]))
            m = c + 1;
        if (m == i)
            break;
        heap_swap(l, i, m);
        i = m;
    }
}

static void heap_remove(evloop_t *l, ev_timer_t *t)
{
    size_t i = t->index;
    l->heap_len--;
    if (i != l->heap_len) {
        l->heap[i] = l->heap[l->heap_len];
        l->heap[i]->index = i;
        heap_down(l, i);
        heap_up(l, i);
    }
}

evloop_t *evloop_new(void)
{
    evloop_t *l = xcalloc(1, sizeof *l);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0)
        log_fatal("epoll_create1 failed");
    /* SIGHUP is taken here too, handler or not: its default action would kill the
     * process, and a reload signal sent to the wrong process must not. */
    sigemptyset(&l->sigs);
    sigaddset(&l->sigs, SIGINT);
    sigaddset(&l->sigs, SIGTERM);
    sigaddset(&l->sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &l->sigs, NULL);
    l->sigfd = signalfd(-1, &l->sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (l->sigfd < 0)
        log_fatal("signalfd failed");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->sigfd};
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->sigfd, &ev);
    signal(SIGPIPE, SIG_IGN);
    return l;
}

void evloop_destroy(evloop_t **loop_p)
{
    evloop_t *l = *loop_p;
    if (!l)
        return;
    for (size_t i = 0; i < l->heap_len; i++)
        free(l->heap[i]);
    free(l->heap);
    free(l->fds);
    close(l->sigfd);
    close(l->epfd);
    free(l);
    *loop_p = NULL;
}

static uint32_t to_epoll(unsigned events)
{
    return ((events & EV_READ) ? EPOLLIN : 0u) | ((events & EV_WRITE) ? EPOLLOUT : 0u);
}

int evloop_watch(evloop_t *l, int fd, unsigned events, ev_fd_cb cb, void *ud)
{
    if (fd < 0)
        return -1;
    if ((size_t)fd >= l->nfds) {
        size_t n = l->nfds ? l->nfds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        l->fds = xrealloc(l->fds, n * sizeof *l->fds);
        memset(l->fds + l->nfds, 0, (n - l->nfds) * sizeof *l->fds);
        l->nfds = n;
    }
    ev_fd_t *f = &l->fds[fd];
    struct epoll_event ev = {.events = to_epoll(events), .data.fd = fd};
    if (epoll_ctl(l->epfd, f->active ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    f->cb = cb;
    f->ud = ud;
    f->events = events;
    f->active = 1;
    return 0;
}

int evloop_modify(evloop_t *l, int fd, unsigned events)
{
    if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].active)
        return -1;
    if (l->fds[fd].events == events)
        return 0;
    struct epoll_event ev = {.events = to_epoll(events), .data.fd = fd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return -1;
    l->fds[fd].events = events;
    return 0;
}

void evloop_unwatch(evloop_t *l, int fd)
{
    if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].active)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    memset(&l->fds[fd], 0, sizeof l->fds[fd]);
}

ev_timer_t *evloop_timer(evloop_t *l, uint64_t ms, ev_timer_cb cb, void *ud)
{
    ev_timer_t *t = xcalloc(1, sizeof *t);
    t->when = now_ms() + ms;
    t->seq = ++l->timer_seq;
    t->cb = cb;
    t->ud = ud;
    if (l->heap_len == l->heap_cap) {
        l->heap_cap = l->heap_cap ? 2 * l->heap_cap : 16;
        l->heap = xrealloc(l->heap, l->heap_cap * sizeof *l->heap);
    }
    t->index = l->heap_len;
    l->heap[l->heap_len++] = t;
    heap_up(l, t->index);
    return t;
}

void evloop_cancel(evloop_t *l, ev_timer_t **timer_p)
{
    ev_timer_t *t = *timer_p;
    if (!t)
        return;
    heap_remove(l, t);
    free(t);
    *timer_p = NULL;
}

static void add_hook(evloop_t *l, ev_hook_cb cb, void *ud, int last)
{
    if (l->nhooks == EV_MAX_HOOKS)
        log_fatal("too many before-sleep hooks");
    l->hooks[l->nhooks].cb = cb;
    l->hooks[l->nhooks].ud = ud;
    l->hooks[l->nhooks].last = last;
    l->nhooks++;
}

void evloop_before_sleep(evloop_t *l, ev_hook_cb cb, void *ud)
{
    add_hook(l, cb, ud, 0);
}

void evloop_before_sleep_last(evloop_t *l, ev_hook_cb cb, void *ud)
{
    add_hook(l, cb, ud, 1);
}

int evloop_on_signal(evloop_t *l, int signo, ev_signal_cb cb, void *ud)
{
    if (signo <= 0 || signo >= EV_MAX_SIGNALS || signo == SIGKILL || signo == SIGSTOP)
        return -1;
    if (!sigismember(&l->sigs, signo)) {
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, signo);
        if (sigprocmask(SIG_BLOCK, &one, NULL) < 0)
            return -1;
        sigaddset(&l->sigs, signo);
        if (signalfd(l->sigfd, &l->sigs, SFD_NONBLOCK | SFD_CLOEXEC) < 0)
            return -1;
    }
    l->signals[signo].cb = cb;
    l->signals[signo].ud = ud;
    return 0;
}

/* Reads every pending signal and runs its handler or the default (module comment). */
static void take_signals(evloop_t *l)
{
    struct signalfd_siginfo si;
    while (read(l->sigfd, &si, sizeof si) == sizeof si) {
        int signo = (int)si.ssi_signo;
        if (signo > 0 && signo < EV_MAX_SIGNALS && l->signals[signo].cb) {
            l->signals[signo].cb(l, signo, l->signals[signo].ud);
        } else if (signo == SIGHUP) {
            log_info("signal %d (SIGHUP) received: nothing to reload, carrying on", signo);
        } else {
            log_info("signal %d received, stopping", signo);
            l->stop = 1;
        }
    }
}

void evloop_again(evloop_t *l)
{
    l->again = 1;
}

void evloop_stop(evloop_t *l)
{
    l->stop = 1;
}

/* Runs every timer that is due; a callback may add or cancel timers. */
static void run_timers(evloop_t *l)
{
    uint64_t now = now_ms();
    while (l->heap_len && l->heap[0]->when <= now && !l->stop) {
        ev_timer_t *t = l->heap[0];
        heap_remove(l, t);
        ev_timer_cb cb = t->cb;
        void *ud = t->ud;
        free(t);
        cb(l, ud);
    }
}

void evloop_run(evloop_t *l)
{
    struct epoll_event evs[256];
    l->stop = 0;
    while (!l->stop) {
        l->again = 0;
        for (int last = 0; last < 2; last++)
            for (int i = 0; i < l->nhooks && !l->stop; i++)
                if (l->hooks[i].last == last)
                    l->hooks[i].cb(l, l->hooks[i].ud);
        if (l->stop)
            break;
        int timeout = -1;
        if (l->again)
            timeout = 0;
        else if (l->heap_len) {
            uint64_t now = now_ms(), when = l->heap[0]->when;
            timeout = when <= now ? 0 : (int)(when - now > 60000 ? 60000 : when - now);
        }
        int n = epoll_wait(l->epfd, evs, 256, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_fatal("epoll_wait failed: %s", strerror(errno));
        }
        for (int i = 0; i < n && !l->stop; i++) {
            int fd = evs[i].data.fd;
            if (fd == l->sigfd) {
                take_signals(l);
                continue;
            }
            /* The fd may have been unwatched by an earlier callback in this batch. */
            if ((size_t)fd >= l->nfds || !l->fds[fd].active)
                continue;
            unsigned got = 0;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                got |= EV_READ;
            if (evs[i].events & EPOLLOUT)
                got |= EV_WRITE;
            if (evs[i].events & (EPOLLHUP | EPOLLERR))
                got |= EV_ERROR;
            ev_fd_t f = l->fds[fd];
            f.cb(l, fd, got, f.ud);
        }
        run_timers(l);
    }
}
