/* admin: the router's admin endpoint (docs/PROTOCOL.md, "Admin endpoint"), which xmppctl
 * talks to: a second ZeroMQ ROUTER socket on admin_bind, in the event loop beside the
 * link, secured like it (CURVE and ZAP when link_curve is on; loopback only otherwise).
 *
 * Commands are a registry: the core registers its own (admin_cmds.c: sessions, kick,
 * stats, user, announce, help) with admin_register, and a module lists more in its
 * module_t (`admin`), registered with it. A command's handler gets the request and its
 * arguments (argv[0] is the command name) and must answer it exactly once with
 * admin_reply, at once or later (after a Redis reply, say). A request whose client gave
 * up, or that ran past ADMIN_REQUEST_TIMEOUT_MS, is still answered by its handler: the
 * answer then goes nowhere and the request is freed. */
#ifndef ROUTER_ADMIN_H
#define ROUTER_ADMIN_H

#include "config.h"

/* One request being served (opaque: the handler only answers it). */
typedef struct admin_req admin_req_t;

/* Serves one request; argv[0] is the command, argv[1..argc-1] its arguments (UTF-8 text,
 * checked against min_args and max_args before the call). The strings live until the
 * handler returns: copy what a later answer needs. */
typedef void (*admin_fn)(admin_req_t *req, int argc, const char *const *argv);

/* A command. A list ends with an entry whose name is NULL. */
typedef struct {
    const char *name;
    int min_args, max_args; /* arguments after the name */
    admin_fn fn;
    const char *usage; /* "NAME ARGS  what it does", one line for `help` */
} admin_command_t;

/* Router-side bounds: requests in flight at once (past it: "error: busy"), and how long
 * one may take before the client is told it timed out. */
#define ADMIN_PENDING_MAX 64
#define ADMIN_REQUEST_TIMEOUT_MS 4000 /* below xmppctl's admin_timeout (5 s) */

/* The key admin_bind (the admin keys admin_curve_allow(_file) are zap.c's). */
extern const config_key_t admin_config_keys[];

/* Adds a list of commands (kept by pointer; ends with a NULL name). Two commands of one
 * name are a programming error (fatal); the same list again is ignored. May be called
 * before admin_open. */
void admin_register(const admin_command_t *cmds);
/* Answers a request ("ok" or "error" and the text) and frees it. Exactly once per
 * request; after a timeout the answer is dropped. */
void admin_reply(admin_req_t *req, int ok, const char *text);
void admin_replyf(admin_req_t *req, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Runs a command in process, as if xmppctl had sent argv (argv[0] the command): the same
 * checks and handler, and `done` gets the answer (at once or later) instead of a client.
 * For tests and for code that wants a command's text. */
typedef void (*admin_done_fn)(void *ud, int ok, const char *text);
void admin_run(int argc, const char *const *argv, admin_done_fn done, void *ud);

/* A number `stats` shows ("NAME: VALUE"), owned by whoever registered it (a module, in its
 * open), who adds to `value`. Registering it again changes nothing. */
typedef struct admin_counter {
    const char *name;
    unsigned long long value;
    struct admin_counter *next; /* set by admin_counter_register */
} admin_counter_t;
void admin_counter_register(admin_counter_t *c);
/* The registered counters, in the order registered. */
const admin_counter_t *admin_counters(void);

/* Counts one stanza a client sent (stanzas per second in `stats`). */
void admin_count_stanza(void);
/* Stanzas counted in the last `seconds` full seconds (at most ADMIN_RATE_WINDOW), and
 * since start. */
#define ADMIN_RATE_WINDOW 10
unsigned long long admin_stanzas_recent(int seconds);
unsigned long long admin_stanzas_total(void);

/* Binds admin_bind (nothing when it is ""), after the link (it shares the link's ZeroMQ
 * context and ZAP handler). Fatal, naming the key, when the endpoint cannot be bound or
 * is not on loopback while link_curve is off. */
void admin_open(void);
/* Closes the socket and frees requests still pending (after storage_close: no Redis
 * answer comes any more). */
void admin_close(void);

#endif
