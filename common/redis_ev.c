#include "redis_ev.h"

#include <stdlib.h>

#include "util.h"

typedef struct {
    evloop_t *loop;
    redisAsyncContext *ac;
    int fd;
    unsigned events;
} redis_ev_t;

static void on_io(evloop_t *loop, int fd, unsigned events, void *ud)
{
    (void)loop;
    (void)fd;
    redis_ev_t *r = ud;
    redisAsyncContext *ac = r->ac;
    /* hiredis may free the context (and call cleanup) from inside HandleRead. */
    if (events & EV_READ) {
        redisAsyncHandleRead(ac);
        return;
    }
    if (events & EV_WRITE)
        redisAsyncHandleWrite(ac);
}

static void update(redis_ev_t *r, unsigned events)
{
    if (events == r->events)
        return;
    if (r->events == 0)
        evloop_watch(r->loop, r->fd, events, on_io, r);
    else if (events == 0)
        evloop_unwatch(r->loop, r->fd);
    else
        evloop_modify(r->loop, r->fd, events);
    r->events = events;
}

static void add_read(void *p)
{
    redis_ev_t *r = p;
    update(r, r->events | EV_READ);
}

static void del_read(void *p)
{
    redis_ev_t *r = p;
    update(r, r->events & ~EV_READ);
}

static void add_write(void *p)
{
    redis_ev_t *r = p;
    update(r, r->events | EV_WRITE);
}

static void del_write(void *p)
{
    redis_ev_t *r = p;
    update(r, r->events & ~EV_WRITE);
}

static void cleanup(void *p)
{
    redis_ev_t *r = p;
    update(r, 0);
    free(r);
}

int redis_ev_attach(redisAsyncContext *ac, evloop_t *loop)
{
    if (ac->ev.data)
        return -1;
    redis_ev_t *r = xcalloc(1, sizeof *r);
    r->loop = loop;
    r->ac = ac;
    r->fd = ac->c.fd;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = r;
    return 0;
}
