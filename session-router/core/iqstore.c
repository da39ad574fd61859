/* iq requests answered from one Redis command (iqstore.h). */
#include "iqstore.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "stanza.h"
#include "util.h"

typedef struct {
    char *full; /* the sender's session, or NULL: a request from another domain (answered by
                   address, deliver.h) */
    xml_node_t *iq;
    iqstore_answer_fn answer; /* iqstore_get */
    void *arg;
    xml_node_t *empty; /* iqstore_read: what to answer when nothing is stored */
    char *wrap_name, *wrap_ns;
} iqstore_req_t;

static void req_free(iqstore_req_t *r)
{
    xml_node_free(&r->iq);
    xml_node_free(&r->empty);
    free(r->wrap_name);
    free(r->wrap_ns);
    free(r->full);
    free(r);
}

static iqstore_req_t *req_new(session_t *from, const xml_node_t *st, xml_node_t *empty)
{
    iqstore_req_t *r = xcalloc(1, sizeof *r);
    r->full = from ? xstrdup(from->full) : NULL;
    r->iq = xml_node_copy(st);
    r->empty = empty;
    return r;
}

/* The sender found again: its session (there = 1), NULL with there = 1 for a remote
 * sender, or there = 0 when its session is gone. */
static session_t *req_sender(const iqstore_req_t *r, int *there)
{
    session_t *s = r->full ? session_find_jid(r->full) : NULL;
    *there = s || !r->full;
    return s;
}

static void on_written(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    iqstore_req_t *r = privdata;
    redisReply *rep = reply;
    int there;
    session_t *s = req_sender(r, &there);
    if (there) {
        if (!rep || rep->type == REDIS_REPLY_ERROR)
            session_reply_error(s, r->iq, "wait", "internal-server-error");
        else
            session_reply_result(s, r->iq, NULL);
    }
    req_free(r);
}

/* iqstore_read's answer: the stored element, wrapped or not, or the empty form. */
static void answer_stored(session_t *s, const xml_node_t *st, const char *data, size_t len,
                          void *arg)
{
    iqstore_req_t *r = arg;
    xml_node_t *stored = data ? stanza_parse(data, len) : NULL;
    xml_node_t *answer;
    if (stored && r->wrap_name) {
        answer = xml_node_new(r->wrap_name, r->wrap_ns);
        xml_node_add_child(answer, stored);
    } else if (stored) {
        answer = stored;
    } else {
        answer = r->empty;
        r->empty = NULL;
    }
    session_reply_result(s, st, answer);
}

static void on_read(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    iqstore_req_t *r = privdata;
    redisReply *rep = reply;
    int there;
    session_t *s = req_sender(r, &there);
    if (there && (!rep || rep->type == REDIS_REPLY_ERROR))
        session_reply_error(s, r->iq, "wait", "internal-server-error");
    else if (there && rep->type == REDIS_REPLY_STRING)
        r->answer(s, r->iq, rep->str, rep->len, r->arg);
    else if (there)
        r->answer(s, r->iq, NULL, 0, r->arg);
    req_free(r);
}

static int send_command(iqstore_req_t *r, redisCallbackFn *cb, const char *fmt, va_list ap)
{
    int there;
    session_t *s = req_sender(r, &there);
    if (!rt.redis_ready || rt_redis_vcommand(cb, r, fmt, ap) != REDIS_OK) {
        if (there)
            session_reply_error(s, r->iq, "wait", "internal-server-error");
        req_free(r);
        return -1;
    }
    return 0;
}

int iqstore_write(session_t *from, const xml_node_t *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = send_command(req_new(from, st, NULL), on_written, fmt, ap);
    va_end(ap);
    return rc;
}

int iqstore_get(session_t *from, const xml_node_t *st, iqstore_answer_fn answer, void *arg,
                const char *fmt, ...)
{
    iqstore_req_t *r = req_new(from, st, NULL);
    r->answer = answer;
    r->arg = arg;
    va_list ap;
    va_start(ap, fmt);
    int rc = send_command(r, on_read, fmt, ap);
    va_end(ap);
    return rc;
}

int iqstore_read(session_t *from, const xml_node_t *st, const char *wrap_name,
                 const char *wrap_ns, xml_node_t *empty, const char *fmt, ...)
{
    iqstore_req_t *r = req_new(from, st, empty);
    r->answer = answer_stored;
    r->arg = r;
    if (wrap_name) {
        r->wrap_name = xstrdup(wrap_name);
        r->wrap_ns = xstrdup(wrap_ns);
    }
    va_list ap;
    va_start(ap, fmt);
    int rc = send_command(r, on_read, fmt, ap);
    va_end(ap);
    return rc;
}
