/* The fake Redis (fake_router.h): redisAsyncCommand, redisvAsyncCommand and
 * redisAsyncCommandArgv defined here take precedence over libhiredis's, so the router's
 * storage code runs unchanged against an in-memory key space. Commands are formatted with
 * hiredis's own formatter (so %s, %b, %lld... mean what they mean to hiredis), queued, and
 * answered in order by fake_redis_flush; the reply is freed after its callback returns, as
 * hiredis does. Only the commands the router uses are known: strings, hashes, sets, lists,
 * MULTI/EXEC, and the scripts eval_script stands in for. */
#include <hiredis/async.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fake_router.h"
#include "hmap.h"
#include "modules.h"
#include "util.h"

typedef struct {
    char *p;
    size_t n;
} blob_t;

enum { T_STRING = 1, T_HASH, T_SET, T_LIST };

/* A value: a string is v[0]; a hash is field, value pairs; a set its members; a list its
 * items in order. */
typedef struct {
    int type;
    blob_t *v;
    size_t n;
} entry_t;

typedef struct cmd {
    blob_t *argv;
    int argc;
    redisCallbackFn *fn;
    void *privdata;
    struct cmd *next;
} cmd_t;

static hmap_t *keys;
static cmd_t *head, *tail;
static int in_multi;
static cmd_t *mq, *mq_tail; /* commands queued by MULTI */
static size_t unknown;
static hmap_t *counts; /* command name -> (size_t) count, as a pointer value */

static blob_t blob(const char *p, size_t n)
{
    blob_t b = {xmalloc(n + 1), n};
    memcpy(b.p, p, n);
    b.p[n] = '\0';
    return b;
}

static int blob_eq(const blob_t *a, const blob_t *b)
{
    return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
}

static void entry_free(entry_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i].p);
    free(e->v);
    free(e);
}

static void entry_push(entry_t *e, blob_t b)
{
    e->v = xrealloc(e->v, (e->n + 1) * sizeof *e->v);
    e->v[e->n++] = b;
}

static void entry_remove(entry_t *e, size_t i, size_t count)
{
    for (size_t k = i; k < i + count; k++)
        free(e->v[k].p);
    memmove(e->v + i, e->v + i + count, (e->n - i - count) * sizeof *e->v);
    e->n -= count;
}

/* Replies. */
static redisReply *reply_new(int type)
{
    redisReply *r = xcalloc(1, sizeof *r);
    r->type = type;
    return r;
}

static redisReply *reply_str(int type, const char *p, size_t n)
{
    redisReply *r = reply_new(type);
    r->str = xmalloc(n + 1);
    memcpy(r->str, p, n);
    r->str[n] = '\0';
    r->len = n;
    return r;
}

static redisReply *reply_int(long long v)
{
    redisReply *r = reply_new(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static void reply_add(redisReply *arr, redisReply *el)
{
    arr->element = xrealloc(arr->element, (arr->elements + 1) * sizeof *arr->element);
    arr->element[arr->elements++] = el;
}

void fake_redis_reply_free(redisReply *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->elements; i++)
        fake_redis_reply_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

static redisReply *err(const char *msg)
{
    return reply_str(REDIS_REPLY_ERROR, msg, strlen(msg));
}

/* The entry of a key when it has the expected type; NULL with *bad set when it has another
 * type, NULL alone when absent (created when `create`). */
static entry_t *lookup(const blob_t *k, int type, int create, int *bad)
{
    entry_t *e = hmap_get(keys, k->p, k->n);
    *bad = 0;
    if (e && e->type != type) {
        *bad = 1;
        return NULL;
    }
    if (!e && create) {
        e = xcalloc(1, sizeof *e);
        e->type = type;
        hmap_put(keys, k->p, k->n, e);
    }
    return e;
}

/* An entry left empty disappears, as in Redis. */
static void drop_if_empty(const blob_t *k, entry_t *e)
{
    if (e && e->n == 0) {
        hmap_del(keys, k->p, k->n);
        entry_free(e);
    }
}

static long norm_index(long long i, size_t n)
{
    if (i < 0)
        i += (long long)n;
    return (long)i;
}

#define WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"
#define NARGS(want)                                                                      \
    do {                                                                                 \
        if (argc != (want))                                                              \
            return err("ERR wrong number of arguments");                                 \
    } while (0)

static redisReply *execute(blob_t *a, int argc);

/* A command of the fake's own, for a script it stands in for. */
static long long run_int(const char *name, blob_t *key)
{
    blob_t a[2] = {{(char *)name, strlen(name)}, *key};
    redisReply *r = execute(a, 2);
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    fake_redis_reply_free(r);
    return n;
}

/* The scripts the router sends, done by the commands they stand for (Lua runs in Redis). */
static redisReply *eval_script(blob_t *a, int argc)
{
    if (argc == 7 && !strcmp(a[1].p, offline_store_script)) {
        /* KEYS: account, offline list. ARGV: max, stanza. */
        if (run_int("EXISTS", &a[3]) == 0)
            return reply_int(0);
        if (run_int("LLEN", &a[4]) >= atoll(a[5].p))
            return reply_int(-1);
        blob_t push[3] = {{"RPUSH", 5}, a[4], a[6]};
        return execute(push, 3);
    }
    unknown++;
    return err("ERR the fake Redis does not know this script");
}

static redisReply *execute(blob_t *a, int argc)
{
    const char *c = a[0].p;
    int bad;
    entry_t *e;
    if (!strcasecmp(c, "PING"))
        return reply_str(REDIS_REPLY_STATUS, "PONG", 4);
    if (!strcasecmp(c, "EXISTS")) {
        NARGS(2);
        return reply_int(hmap_get(keys, a[1].p, a[1].n) != NULL);
    }
    if (!strcasecmp(c, "DEL")) {
        long long n = 0;
        for (int i = 1; i < argc; i++) {
            entry_t *d = hmap_del(keys, a[i].p, a[i].n);
            if (d) {
                entry_free(d);
                n++;
            }
        }
        return reply_int(n);
    }
    if (!strcasecmp(c, "GET")) {
        NARGS(2);
        e = lookup(&a[1], T_STRING, 0, &bad);
        if (bad)
            return err(WRONGTYPE);
        return e ? reply_str(REDIS_REPLY_STRING, e->v[0].p, e->v[0].n) : reply_new(REDIS_REPLY_NIL);
    }
    if (!strcasecmp(c, "SET")) {
        NARGS(3);
        entry_t *old = hmap_del(keys, a[1].p, a[1].n);
        if (old)
            entry_free(old);
        e = lookup(&a[1], T_STRING, 1, &bad);
        entry_push(e, blob(a[2].p, a[2].n));
        return reply_str(REDIS_REPLY_STATUS, "OK", 2);
    }
    if (!strcasecmp(c, "MGET")) {
        redisReply *r = reply_new(REDIS_REPLY_ARRAY);
        for (int i = 1; i < argc; i++) {
            e = hmap_get(keys, a[i].p, a[i].n);
            reply_add(r, e && e->type == T_STRING
                             ? reply_str(REDIS_REPLY_STRING, e->v[0].p, e->v[0].n)
                             : reply_new(REDIS_REPLY_NIL));
        }
        return r;
    }
    if (!strcasecmp(c, "HGETALL") || !strcasecmp(c, "SMEMBERS") || !strcasecmp(c, "LRANGE")) {
        int type = c[0] == 'H' || c[0] == 'h' ? T_HASH : c[0] == 'S' || c[0] == 's' ? T_SET : T_LIST;
        NARGS(type == T_LIST ? 4 : 2);
        e = lookup(&a[1], type, 0, &bad);
        if (bad)
            return err(WRONGTYPE);
        redisReply *r = reply_new(REDIS_REPLY_ARRAY);
        size_t from = 0, to = e ? e->n : 0; /* [from, to) */
        if (type == T_LIST && e) {
            long s = norm_index(atoll(a[2].p), e->n), t = norm_index(atoll(a[3].p), e->n);
            if (s < 0)
                s = 0;
            if (t >= (long)e->n)
                t = (long)e->n - 1;
            from = (size_t)s;
            to = t < s ? from : (size_t)t + 1;
        }
        for (size_t i = from; e && i < to; i++)
            reply_add(r, reply_str(REDIS_REPLY_STRING, e->v[i].p, e->v[i].n));
        return r;
    }
    if (!strcasecmp(c, "HGET") || !strcasecmp(c, "HSET") || !strcasecmp(c, "HDEL")) {
        int set = !strcasecmp(c, "HSET"), del = !strcasecmp(c, "HDEL");
        NARGS(set ? 4 : 3);
        e = lookup(&a[1], T_HASH, set, &bad);
        if (bad)
            return err(WRONGTYPE);
        for (size_t i = 0; e && i < e->n; i += 2) {
            if (!blob_eq(&e->v[i], &a[2]))
                continue;
            if (set) {
                free(e->v[i + 1].p);
                e->v[i + 1] = blob(a[3].p, a[3].n);
                return reply_int(0);
            }
            if (del) {
                entry_remove(e, i, 2);
                drop_if_empty(&a[1], e);
                return reply_int(1);
            }
            return reply_str(REDIS_REPLY_STRING, e->v[i + 1].p, e->v[i + 1].n);
        }
        if (set) {
            entry_push(e, blob(a[2].p, a[2].n));
            entry_push(e, blob(a[3].p, a[3].n));
            return reply_int(1);
        }
        return del ? reply_int(0) : reply_new(REDIS_REPLY_NIL);
    }
    if (!strcasecmp(c, "SADD") || !strcasecmp(c, "SREM")) {
        int add = !strcasecmp(c, "SADD");
        e = lookup(&a[1], T_SET, add, &bad);
        if (bad)
            return err(WRONGTYPE);
        long long n = 0;
        for (int k = 2; k < argc; k++) {
            size_t i = 0;
            while (e && i < e->n && !blob_eq(&e->v[i], &a[k]))
                i++;
            if (add && i == e->n) {
                entry_push(e, blob(a[k].p, a[k].n));
                n++;
            } else if (!add && e && i < e->n) {
                entry_remove(e, i, 1);
                n++;
            }
        }
        drop_if_empty(&a[1], e);
        return reply_int(n);
    }
    if (!strcasecmp(c, "RPUSH")) {
        e = lookup(&a[1], T_LIST, 1, &bad);
        if (bad)
            return err(WRONGTYPE);
        for (int k = 2; k < argc; k++)
            entry_push(e, blob(a[k].p, a[k].n));
        return reply_int((long long)e->n);
    }
    if (!strcasecmp(c, "HLEN")) {
        NARGS(2);
        e = lookup(&a[1], T_HASH, 0, &bad);
        if (bad)
            return err(WRONGTYPE);
        return reply_int(e ? (long long)e->n / 2 : 0);
    }
    if (!strcasecmp(c, "LLEN")) {
        NARGS(2);
        e = lookup(&a[1], T_LIST, 0, &bad);
        if (bad)
            return err(WRONGTYPE);
        return reply_int(e ? (long long)e->n : 0);
    }
    if (!strcasecmp(c, "LTRIM")) {
        NARGS(4);
        e = lookup(&a[1], T_LIST, 0, &bad);
        if (bad)
            return err(WRONGTYPE);
        if (e) {
            long s = norm_index(atoll(a[2].p), e->n), t = norm_index(atoll(a[3].p), e->n);
            if (s < 0)
                s = 0;
            if (t >= (long)e->n)
                t = (long)e->n - 1;
            if (s > t) {
                entry_remove(e, 0, e->n);
            } else {
                entry_remove(e, (size_t)t + 1, e->n - (size_t)t - 1);
                entry_remove(e, 0, (size_t)s);
            }
            drop_if_empty(&a[1], e);
        }
        return reply_str(REDIS_REPLY_STATUS, "OK", 2);
    }
    if (!strcasecmp(c, "EVAL"))
        return eval_script(a, argc);
    unknown++;
    return err("ERR unknown command");
}

static void count(const char *name)
{
    char up[32];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof up; i++)
        up[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
    up[i] = '\0';
    size_t n = (size_t)(uintptr_t)hmap_sget(counts, up);
    hmap_sput(counts, up, (void *)(uintptr_t)(n + 1));
}

static void cmd_free(cmd_t *c)
{
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i].p);
    free(c->argv);
    free(c);
}

/* MULTI, commands inside it (QUEUED), EXEC (the array of their replies). */
static redisReply *answer(cmd_t *c)
{
    const char *name = c->argv[0].p;
    count(name);
    if (!strcasecmp(name, "MULTI")) {
        if (in_multi)
            return err("ERR MULTI calls can not be nested");
        in_multi = 1;
        return reply_str(REDIS_REPLY_STATUS, "OK", 2);
    }
    if (!strcasecmp(name, "EXEC")) {
        if (!in_multi)
            return err("ERR EXEC without MULTI");
        in_multi = 0;
        redisReply *r = reply_new(REDIS_REPLY_ARRAY);
        while (mq) {
            cmd_t *q = mq;
            mq = q->next;
            reply_add(r, execute(q->argv, q->argc));
            cmd_free(q);
        }
        mq_tail = NULL;
        return r;
    }
    if (in_multi) {
        /* Executed at EXEC; the command itself is answered QUEUED. */
        cmd_t *q = xcalloc(1, sizeof *q);
        q->argc = c->argc;
        q->argv = xcalloc((size_t)c->argc, sizeof *q->argv);
        for (int i = 0; i < c->argc; i++)
            q->argv[i] = blob(c->argv[i].p, c->argv[i].n);
        if (mq_tail)
            mq_tail->next = q;
        else
            mq = q;
        mq_tail = q;
        return reply_str(REDIS_REPLY_STATUS, "QUEUED", 6);
    }
    return execute(c->argv, c->argc);
}

/* Splits hiredis's RESP encoding of a command ("*N\r\n" then N x "$len\r\nbytes\r\n"). */
static cmd_t *cmd_from_resp(const char *p, size_t len)
{
    const char *end = p + len;
    if (len < 4 || *p != '*')
        return NULL;
    cmd_t *c = xcalloc(1, sizeof *c);
    c->argc = atoi(p + 1);
    c->argv = xcalloc((size_t)c->argc, sizeof *c->argv);
    p = strstr(p, "\r\n") + 2;
    for (int i = 0; i < c->argc && p < end; i++) {
        size_t n = (size_t)atoll(p + 1);
        p = strstr(p, "\r\n") + 2;
        c->argv[i] = blob(p, n);
        p += n + 2;
    }
    return c;
}

static int enqueue(char *resp, int len, redisCallbackFn *fn, void *privdata)
{
    if (len < 0)
        return REDIS_ERR;
    cmd_t *c = cmd_from_resp(resp, (size_t)len);
    redisFreeCommand(resp);
    if (!c)
        return REDIS_ERR;
    c->fn = fn;
    c->privdata = privdata;
    if (tail)
        tail->next = c;
    else
        head = c;
    tail = c;
    return REDIS_OK;
}

int redisvAsyncCommand(redisAsyncContext *ac, redisCallbackFn *fn, void *privdata,
                       const char *format, va_list ap)
{
    (void)ac;
    char *resp = NULL;
    int len = redisvFormatCommand(&resp, format, ap);
    return enqueue(resp, len, fn, privdata);
}

int redisAsyncCommand(redisAsyncContext *ac, redisCallbackFn *fn, void *privdata,
                      const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int rc = redisvAsyncCommand(ac, fn, privdata, format, ap);
    va_end(ap);
    return rc;
}

int redisAsyncCommandArgv(redisAsyncContext *ac, redisCallbackFn *fn, void *privdata, int argc,
                          const char **argv, const size_t *argvlen)
{
    (void)ac;
    char *resp = NULL;
    int len = redisFormatCommandArgv(&resp, argc, argv, argvlen);
    return enqueue(resp, len, fn, privdata);
}

void fake_redis_init(void)
{
    keys = hmap_new();
    counts = hmap_new();
    head = tail = mq = mq_tail = NULL;
    in_multi = 0;
    unknown = 0;
}

size_t fake_redis_flush(void)
{
    size_t n = 0;
    while (head) {
        cmd_t *c = head;
        head = c->next;
        if (!head)
            tail = NULL;
        redisReply *r = answer(c);
        if (c->fn)
            c->fn(NULL, r, c->privdata);
        fake_redis_reply_free(r);
        cmd_free(c);
        n++;
    }
    return n;
}

void fake_redis_disconnect(void)
{
    while (head) {
        cmd_t *c = head;
        head = c->next;
        if (!head)
            tail = NULL;
        if (c->fn)
            c->fn(NULL, NULL, c->privdata);
        cmd_free(c);
    }
    while (mq) {
        cmd_t *q = mq;
        mq = q->next;
        cmd_free(q);
    }
    mq_tail = NULL;
    in_multi = 0;
}

void fake_redis_free(void)
{
    fake_redis_disconnect();
    size_t pos = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(keys, &pos, &k, &kl, &v))
        entry_free(v);
    hmap_destroy(&keys);
    hmap_destroy(&counts);
}

redisReply *fake_redis_cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *resp = NULL;
    int len = redisvFormatCommand(&resp, fmt, ap);
    va_end(ap);
    cmd_t *c = len < 0 ? NULL : cmd_from_resp(resp, (size_t)len);
    redisFreeCommand(resp);
    if (!c)
        return NULL;
    redisReply *r = execute(c->argv, c->argc);
    cmd_free(c);
    return r;
}

size_t fake_redis_unknown(void)
{
    return unknown;
}

size_t fake_redis_count(const char *name)
{
    return (size_t)(uintptr_t)hmap_sget(counts, name);
}
