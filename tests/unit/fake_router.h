/* Test doubles for the session-router's two ways out of the process, so that the router's
 * real routing code (core/route.c, session.c, user.c, module.c and the modules) runs in a
 * unit test without sockets or Redis:
 *  - fake_link.c: link.h's link_send, recording every message meant for a frontend;
 *  - fake_redis.c: hiredis's async command functions (redisAsyncCommand and friends),
 *    answered from an in-memory key space. Commands queue and are answered in order when
 *    the test pumps them (fake_redis_flush), as the event loop would; MULTI/EXEC queue
 *    their commands and answer EXEC with the array of replies, as Redis does. */
#ifndef TESTS_UNIT_FAKE_ROUTER_H
#define TESTS_UNIT_FAKE_ROUTER_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "router.h"

/* One message the router sent to a frontend. */
typedef struct {
    rt_frontend_t *fe;
    int type;          /* ipc_type_t */
    uint64_t conn;
    uint32_t seq;
    int status;        /* the header's status byte */
    char field0[256];  /* e.g. the stream error condition of IPC_CLOSE */
    char field1[256];  /* e.g. the text of IPC_CLOSE */
    char *data;        /* payload (NUL-terminated copy), NULL when none */
    size_t len;
} fake_sent_t;

size_t fake_link_count(void);
const fake_sent_t *fake_link_get(size_t i);
void fake_link_clear(void);

/* Starts with an empty key space and no pending command. */
void fake_redis_init(void);
/* Answers every queued command in order (callbacks may queue more; those are answered
 * too). Returns how many were answered. */
size_t fake_redis_flush(void);
/* What hiredis does when the context is freed: every pending callback gets a NULL reply. */
void fake_redis_disconnect(void);
/* Frees the key space (after fake_redis_disconnect). */
void fake_redis_free(void);
/* Runs one command at once against the key space (test set-up and inspection); the reply
 * is freed with freeReplyObject-like fake_redis_reply_free. */
redisReply *fake_redis_cmd(const char *fmt, ...);
void fake_redis_reply_free(redisReply *r);
/* Commands the fake did not know (a test of the fake itself: should stay 0). */
size_t fake_redis_unknown(void);
/* How many commands with this name (upper case) were answered since init. */
size_t fake_redis_count(const char *name);

#endif
