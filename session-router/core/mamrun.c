/* XEP-0313 queries run in Redis (mamrun.h). */
#include "mamrun.h"

#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "log.h"
#include "remote.h"
#include "router.h"
#include "stanza.h"
#include "types.h"
#include "util.h"

/* One page of a query. KEYS: the stream, the stream read for ids (the conversation's for a
 * 'with' query, else the stream itself). ARGV: lo, hi (inclusive ids), max, backward
 * ('1': the last page below hi), the 'with' value a filter must match ('' for none), the
 * number of ids that must exist, those ids. Returns {-1} when one of those is unknown,
 * else {more, id, fields, id, fields, ...} in archive order (backward pages reversed) with
 * more = 1 when further entries match beyond the page. */
static const char script_query[] =
    "local key, src = KEYS[1], KEYS[2] "
    "local lo, hi, max, back, fw = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1', ARGV[5] "
    "for i = 1, tonumber(ARGV[6]) do "
    " if #redis.call('XRANGE', key, ARGV[6 + i], ARGV[6 + i]) == 0 then return {-1} end "
    "end "
    "local out, more, n, batch = {}, 0, 0, max + 1 "
    "while true do "
    " local r "
    " if back then r = redis.call('XREVRANGE', src, hi, lo, 'COUNT', batch) "
    " else r = redis.call('XRANGE', src, lo, hi, 'COUNT', batch) end "
    " for _, e in ipairs(r) do "
    "  if fw == '' or e[2][2] == fw then "
    "   if n >= max then more = 1 break end "
    "   if src == key then n = n + 1 out[n] = e "
    "   else local m = redis.call('XRANGE', key, e[1], e[1]) "
    "    if #m == 1 then n = n + 1 out[n] = m[1] end end "
    "  end "
    " end "
    " if more == 1 or #r < batch then break end "
    " if back then hi = '(' .. r[#r][1] else lo = '(' .. r[#r][1] end "
    "end "
    "local res = {more} "
    "for i = 1, n do local e = back and out[n + 1 - i] or out[i] "
    " res[#res + 1] = e[1] res[#res + 1] = e[2] end "
    "return res";

/* XEP-0313 #extended 'ids': KEYS: the stream. ARGV: the oldest id kept, then the ids.
 * Returns {0, id, fields, ...} for those found, in archive order. */
static const char script_ids[] =
    "local found = {} "
    "for i = 2, #ARGV do "
    " local m = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) "
    " if #m == 1 and redis.call('XRANGE', KEYS[1], ARGV[1], m[1][1], 'COUNT', 1)[1] then "
    "  found[#found + 1] = m[1] end "
    "end "
    "table.sort(found, function(a, b) "
    " local am, as = a[1]:match('(%d+)-(%d+)') local bm, bs = b[1]:match('(%d+)-(%d+)') "
    " if #am ~= #bm then return #am < #bm end if am ~= bm then return am < bm end "
    " if #as ~= #bs then return #as < #bs end return as < bs end) "
    "local res = {0} "
    "for _, e in ipairs(found) do res[#res + 1] = e[1] res[#res + 1] = e[2] end "
    "return res";

/* The first and the last message kept. */
static const char script_meta[] =
    "local f = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', 1) "
    "local l = redis.call('XREVRANGE', KEYS[1], '+', ARGV[1], 'COUNT', 1) "
    "if #f == 0 or #l == 0 then return {} end "
    "return {f[1][1], l[1][1]}";

/* A request answered after Redis replies. */
typedef struct {
    char *full;
    xml_node_t *st;
    char *queryid;
    char *archive; /* the archive's JID: results come from it */
    int flip;
} req_t;

static req_t *req_new(const char *full, const xml_node_t *st, const char *archive,
                      const char *queryid, int flip)
{
    req_t *r = xcalloc(1, sizeof *r);
    r->full = xstrdup(full);
    r->st = xml_node_copy(st);
    r->archive = xstrdup(archive ? archive : "");
    r->queryid = queryid ? xstrdup(queryid) : NULL;
    r->flip = flip;
    return r;
}

static void req_free(req_t *r)
{
    free(r->full);
    xml_node_free(&r->st);
    free(r->queryid);
    free(r->archive);
    free(r);
}

/* Whether the answer has somewhere to go: *sp the requester's session, or NULL for a
 * requester at another domain (a room's archive asked through s2s: answered by address).
 * 0, or -1 (the request freed) when the session is gone or Redis failed (then the
 * requester got an error). */
static int req_target(req_t *r, const redisReply *rep, session_t **sp)
{
    int remote = remote_jid(r->full);
    session_t *s = *sp = remote ? NULL : session_find_jid(r->full);
    if (!s && !remote) {
        req_free(r);
        return -1;
    }
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        if (rep)
            log_warn("mam: %s", rep->str);
        session_reply_error(s, r->st, "wait", "internal-server-error");
        req_free(r);
        return -1;
    }
    return 0;
}

/* One result message to the requester (its session, or by address). */
static void result_out(const req_t *r, session_t *s, const buf_t *b)
{
    if (s) {
        session_deliver_server(s, b->data, b->len, "an archived message");
        return;
    }
    xml_node_t *m = stanza_parse(b->data, b->len);
    if (m)
        session_deliver_jid(r->full, m);
    xml_node_free(&m);
}

static const char *field_value(const redisReply *fields, const char *name, size_t *len)
{
    for (size_t i = 0; fields && fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements;
         i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, name) == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING) {
            *len = fields->element[i + 1]->len;
            return fields->element[i + 1]->str;
        }
    return NULL;
}

/* The reply of script_query / script_ids: results, then the iq result with <fin/>. */
static void on_queried(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    req_t *r = privdata;
    redisReply *rep = reply;
    session_t *s;
    if (req_target(r, rep, &s) < 0)
        return;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER || rep->elements % 2 != 1) {
        session_reply_error(s, r->st, "wait", "internal-server-error");
        req_free(r);
        return;
    }
    if (rep->element[0]->integer < 0) {
        /* XEP-0059 ("Error conditions") and XEP-0313: an id that names no archived message. */
        session_reply_error(s, r->st, "cancel", "item-not-found");
        req_free(r);
        return;
    }
    size_t n = (rep->elements - 1) / 2;
    const char *first = NULL, *last = NULL;
    buf_t b = BUF_INIT;
    for (size_t k = 0; k < n; k++) {
        /* XEP-0313 <flip-page/> (#extended): the page in the other order. */
        size_t i = 1 + 2 * (r->flip ? n - 1 - k : k);
        const redisReply *id = rep->element[i];
        size_t xlen = 0;
        const char *xml = field_value(rep->element[i + 1], "xml", &xlen);
        if (id->type != REDIS_REPLY_STRING || !xml)
            continue;
        buf_clear(&b);
        mamq_result_text(&b, r->full, r->archive, r->queryid, id->str, xml, xlen);
        result_out(r, s, &b);
        if (!first)
            first = id->str;
        last = id->str;
    }
    buf_free(&b);
    session_reply_result(s, r->st, mamq_fin(first, last, rep->element[0]->integer == 0));
    req_free(r);
}

#define QUERY_ARGS_MAX (10 + MAMQ_MUST_MAX)

int mamrun_query(const char *full, const xml_node_t *st, const char *archive,
                 const mamq_query_t *q, const char *key, const char *src, const char *filter,
                 mamq_id_t min_kept)
{
    req_t *r = req_new(full, st, archive, q->queryid, q->flip);
    if (q->have_ids) {
        /* #extended: these messages, in archive order (unknown ones are left out). */
        char minid[MAMQ_ID_MAX];
        mamq_id_fmt(min_kept, minid);
        const char **argv = xcalloc((size_t)q->nids + 5, sizeof *argv);
        int argc = 0;
        argv[argc++] = "EVAL";
        argv[argc++] = script_ids;
        argv[argc++] = "1";
        argv[argc++] = key;
        argv[argc++] = minid;
        for (int i = 0; i < q->nids; i++)
            argv[argc++] = q->ids[i];
        int rc = rt_redis_command_argv(on_queried, r, argc, argv, NULL);
        free(argv);
        if (rc != REDIS_OK) {
            req_free(r);
            return -1;
        }
        return 0;
    }
    char slo[MAMQ_ID_MAX], shi[MAMQ_ID_MAX], smax[24], smust[MAMQ_MUST_MAX][MAMQ_ID_MAX], sn[16];
    mamq_id_fmt(q->lo, slo);
    mamq_id_fmt(q->hi, shi);
    snprintf(smax, sizeof smax, "%ld", q->max);
    snprintf(sn, sizeof sn, "%d", q->nmust);
    const char *argv[QUERY_ARGS_MAX];
    int argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = script_query;
    argv[argc++] = "2";
    argv[argc++] = key;
    argv[argc++] = src;
    argv[argc++] = slo;
    argv[argc++] = shi;
    argv[argc++] = smax;
    argv[argc++] = q->backward ? "1" : "0";
    argv[argc++] = filter;
    argv[argc++] = sn;
    for (int i = 0; i < q->nmust && i < MAMQ_MUST_MAX; i++) {
        mamq_id_fmt(q->must[i], smust[i]);
        argv[argc++] = smust[i];
    }
    if (rt_redis_command_argv(on_queried, r, argc, argv, NULL) != REDIS_OK) {
        req_free(r);
        return -1;
    }
    return 0;
}

static void meta_el(xml_node_t *m, const char *name, const char *id)
{
    mamq_id_t sid = {0, 0};
    mamq_id_parse(id, &sid);
    char stamp[80];
    mamq_fmt_datetime(sid.ms, stamp, sizeof stamp);
    xml_node_t *e = xml_node_new_child(m, name, NS_MAM);
    xml_node_set_attr(e, "id", id);
    xml_node_set_attr(e, "timestamp", stamp);
}

static void on_meta(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    req_t *r = privdata;
    redisReply *rep = reply;
    session_t *s;
    if (req_target(r, rep, &s) < 0)
        return;
    xml_node_t *m = xml_node_new("metadata", NS_MAM);
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_STRING &&
        rep->element[1]->type == REDIS_REPLY_STRING) {
        meta_el(m, "start", rep->element[0]->str);
        meta_el(m, "end", rep->element[1]->str);
    }
    session_reply_result(s, r->st, m);
    req_free(r);
}

int mamrun_metadata(const char *full, const xml_node_t *st, const char *key, mamq_id_t min_kept)
{
    req_t *r = req_new(full, st, NULL, NULL, 0);
    char minid[MAMQ_ID_MAX];
    mamq_id_fmt(min_kept, minid);
    if (rt_redis_command(on_meta, r, "EVAL %s 1 %s %s", script_meta, key, minid) != REDIS_OK) {
        req_free(r);
        return -1;
    }
    return 0;
}
