/* evloop: a small single-threaded event loop on epoll: file events, one-shot timers, and
 * before-sleep hooks (run before every wait, e.g. to flush batched writes or to drain a
 * ZeroMQ socket, whose ZMQ_FD is edge-triggered and can go quiet after a send). */
#ifndef COMMON_EVLOOP_H
#define COMMON_EVLOOP_H

#include <stdint.h>

#define EV_READ 1u
#define EV_WRITE 2u
#define EV_ERROR 4u /* hang-up or error; reported together with EV_READ */

typedef struct evloop evloop_t;
typedef struct ev_timer ev_timer_t;

typedef void (*ev_fd_cb)(evloop_t *loop, int fd, unsigned events, void *ud);
typedef void (*ev_timer_cb)(evloop_t *loop, void *ud);
typedef void (*ev_hook_cb)(evloop_t *loop, void *ud);
typedef void (*ev_signal_cb)(evloop_t *loop, int signo, void *ud);

evloop_t *evloop_new(void);
/* Frees the loop and any timers still pending; registered fds are not closed. */
void evloop_destroy(evloop_t **loop_p);

/* Watches fd for `events` (EV_READ|EV_WRITE); replaces an earlier registration. 0 or -1. */
int evloop_watch(evloop_t *loop, int fd, unsigned events, ev_fd_cb cb, void *ud);
/* Changes the events of a watched fd (0 pauses it). */
int evloop_modify(evloop_t *loop, int fd, unsigned events);
/* Stops watching fd (call before close). Safe from inside callbacks. */
void evloop_unwatch(evloop_t *loop, int fd);

/* Calls cb once after `ms` milliseconds. The handle stays valid until the callback runs
 * or the timer is cancelled. */
ev_timer_t *evloop_timer(evloop_t *loop, uint64_t ms, ev_timer_cb cb, void *ud);
/* Cancels a pending timer and sets *timer_p to NULL; NULL is accepted. */
void evloop_cancel(evloop_t *loop, ev_timer_t **timer_p);

/* Adds a hook run before every wait, in the order added. */
void evloop_before_sleep(evloop_t *loop, ev_hook_cb cb, void *ud);
/* Adds a hook run before every wait after all those of evloop_before_sleep (in the order
 * added among themselves): for what must see everything the other hooks did, such as
 * sending the messages they queued on a ZeroMQ link (zlink.h, batches). */
void evloop_before_sleep_last(evloop_t *loop, ev_hook_cb cb, void *ud);

/* Calls cb from the loop (through the signalfd, never in a signal handler) each time signo
 * arrives, instead of the default: SIGINT and SIGTERM stop the loop, SIGHUP is logged and
 * ignored. SIGINT, SIGTERM and SIGHUP are blocked by evloop_new, so threads started after it
 * (libzmq's) inherit the mask; any other signal must be registered before threads start,
 * or one of them may take it with its default action. 0 or -1 (bad signal number). */
int evloop_on_signal(evloop_t *loop, int signo, ev_signal_cb cb, void *ud);

/* Runs until evloop_stop; SIGINT and SIGTERM stop it too (through a signalfd). */
void evloop_run(evloop_t *loop);
/* The next wait does not sleep: for a hook that made work for hooks which already ran in
 * this pass (they run again right after the wait). */
void evloop_again(evloop_t *loop);
void evloop_stop(evloop_t *loop);

#endif
