/* redis_ev: joins a hiredis asynchronous context to the event loop (hiredis' own adapter
 * interface: add/remove read and write interest, cleanup). */
#ifndef COMMON_REDIS_EV_H
#define COMMON_REDIS_EV_H

#include <hiredis/async.h>

#include "evloop.h"

/* Attaches ac to loop; 0, or -1 if it already has an adapter. */
int redis_ev_attach(redisAsyncContext *ac, evloop_t *loop);

#endif
