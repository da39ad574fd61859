/* XEP-0363 HTTP File Upload: the slot service on upload_domain (upload.DOMAIN by default).
 * A local user asks for a slot (<request filename size content-type/>); the router checks
 * the size against upload_max_size and the user's quota in Redis, records the slot as
 * pending in the user's "upload" hash (keys.h KEYS_UPLOAD) and answers with a PUT URL, the
 * Authorization header to send with it (a token signed with upload_secret: common/upslot.h)
 * and the GET URL. The upload process (upload/) checks the token and the record, stores the
 * file and marks the record stored; account deletion removes the hash, after which the
 * upload process serves 404 for the user's files and deletes them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "deliver.h"
#include "keys.h"
#include "log.h"
#include "module.h"
#include "modules.h"
#include "router.h"
#include "secret.h"
#include "service.h"
#include "stanza.h"
#include "storage.h"
#include "upslot.h"
#include "util.h"

#define NS_UPLOAD "urn:xmpp:http:upload:0"
/* A pending slot keeps its share of the quota this long past its expiry, so a PUT that
 * began just before the expiry still finds its record when it completes. */
#define UPLOAD_PUT_GRACE_S 3600

static const config_key_t upload_config_keys[] = {
    CONFIG_STR("upload_domain", "", "address of the HTTP File Upload service (empty: upload.DOMAIN)"),
    CONFIG_STR("upload_url", "", "public base URL of the upload process, e.g. https://upload.example.org:5443/upload (empty: no upload service)"),
    CONFIG_STR("upload_secret", "", "secret shared by the router and the upload process to sign PUT slots"),
    CONFIG_STR("upload_secret_file", "", "a file holding upload_secret instead"),
    CONFIG_INT("upload_max_size", "104857600", 1, 1099511627776L, "largest file one slot may carry (bytes)"),
    CONFIG_INT("upload_quota", "1073741824", 1, 1099511627776L, "bytes of uploads (stored and pending) one account may hold"),
    CONFIG_INT("upload_max_files", "1000", 1, 100000, "uploads (stored and pending) one account may hold"),
    CONFIG_INT("upload_slot_ttl", "300", 10, 86400, "seconds a slot's PUT URL stays valid"),
    CONFIG_INT("upload_expire_after", "604800", 0, 315360000, "seconds an uploaded file is kept (0: until the account is deleted)"),
    CONFIG_END,
};

static struct {
    char domain[JID_PART_MAX + 1];
    char *url;    /* upload_url without a trailing slash */
    char *secret; /* NULL: the service is off */
    long long max_size, quota, max_files, slot_ttl, expire_after;
} up;

/* KEYS[1] the user's upload hash; ARGV: id, size, now, deadline, quota, max files,
 * expire_after, grace. Each field is "p SIZE DEADLINE" (a slot not used yet) or "s SIZE
 * STORED_AT" (a stored file). Drops what is over (a slot unused past its deadline and the
 * grace, a file past expire_after: the upload process deletes its bytes; an entry in no
 * known form), then adds the
 * slot if the quota allows. Returns {1} or {0, retry}: retry is when the oldest entry goes
 * (0: not known). */
static const char script_slot[] =
    "local now, grace, exp = tonumber(ARGV[3]), tonumber(ARGV[8]), tonumber(ARGV[7]) "
    "local used, n, first = 0, 0, 0 "
    "local all = redis.call('HGETALL', KEYS[1]) "
    "for i = 1, #all, 2 do "
    "  local st, sz, t = string.match(all[i + 1], '^(%a) (%d+) (%d+)') "
    "  sz, t = tonumber(sz), tonumber(t) "
    "  local ends = 0 "
    "  if not st then ends = now "
    "  elseif st == 'p' then ends = t + grace elseif exp > 0 then ends = t + exp end "
    "  if ends > 0 and ends <= now then redis.call('HDEL', KEYS[1], all[i]) "
    "  else used = used + sz; n = n + 1 "
    "    if ends > 0 and (first == 0 or ends < first) then first = ends end end "
    "end "
    "if n >= tonumber(ARGV[6]) or used + tonumber(ARGV[2]) > tonumber(ARGV[5]) then "
    "  return {0, first} end "
    "redis.call('HSET', KEYS[1], ARGV[1], 'p ' .. ARGV[2] .. ' ' .. ARGV[4]) "
    "return {1}";

/* A slot request waiting for Redis: the sender is found again by full JID. */
typedef struct {
    char *full;
    xml_node_t *iq;
    char *bare, *name, *ctype;
    char id[UPSLOT_ID_LEN + 1];
    long long size, expiry;
} slot_req_t;

static void slot_req_free(slot_req_t *r)
{
    free(r->full);
    xml_node_free(&r->iq);
    free(r->bare);
    free(r->name);
    free(r->ctype);
    free(r);
}

static void reply_error(session_t *s, const xml_node_t *st, const char *etype, const char *cond,
                        const char *text)
{
    xml_node_t *r = stanza_error_reply(st, up.domain, etype, cond);
    if (text) {
        xml_node_t *t = xml_node_new_child(xml_node_child(r, "error", NULL), "text", NS_STANZAS);
        xml_node_add_text(t, text, strlen(text));
    }
    session_deliver_node(s, r);
    xml_node_free(&r);
}

/* XEP-0363 section 5: a file over the limit is not-acceptable with <file-too-large/>
 * carrying the limit. */
static void reply_too_large(session_t *s, const xml_node_t *st)
{
    xml_node_t *r = stanza_error_reply(st, up.domain, "modify", "not-acceptable");
    xml_node_t *e = xml_node_child(r, "error", NULL);
    char text[96];
    snprintf(text, sizeof text, "File too large. The maximum file size is %lld bytes",
             up.max_size);
    xml_node_add_text(xml_node_new_child(e, "text", NS_STANZAS), text, strlen(text));
    xml_node_t *big = xml_node_new_child(e, "file-too-large", NS_UPLOAD);
    snprintf(text, sizeof text, "%lld", up.max_size);
    xml_node_add_text(xml_node_new_child(big, "max-file-size", NS_UPLOAD), text, strlen(text));
    session_deliver_node(s, r);
    xml_node_free(&r);
}

/* XEP-0363 section 5: over the quota is resource-constraint of type wait, with <retry/>
 * when it is known when room frees up. */
static void reply_quota(session_t *s, const xml_node_t *st, long long retry)
{
    xml_node_t *r = stanza_error_reply(st, up.domain, "wait", "resource-constraint");
    xml_node_t *e = xml_node_child(r, "error", NULL);
    const char *text = "Upload quota reached";
    xml_node_add_text(xml_node_new_child(e, "text", NS_STANZAS), text, strlen(text));
    if (retry > 0) {
        char stamp[32];
        time_t t = (time_t)retry;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
        xml_node_set_attr(xml_node_new_child(e, "retry", NS_UPLOAD), "stamp", stamp);
    }
    session_deliver_node(s, r);
    xml_node_free(&r);
}

static void send_slot(session_t *s, slot_req_t *r)
{
    char sig[UPSLOT_SIG_LEN + 1];
    if (upslot_sign(up.secret, r->id, r->name, r->size, r->ctype, r->expiry, r->bare, sig) < 0) {
        reply_error(s, r->iq, "wait", "internal-server-error", NULL);
        return;
    }
    buf_t url = BUF_INIT, token = BUF_INIT;
    buf_printf(&url, "%s/%s/", up.url, r->id);
    upslot_url_escape(&url, r->name);
    upslot_token_make(&token, r->expiry, r->size, r->ctype, r->bare, sig);
    xml_node_t *slot = xml_node_new("slot", NS_UPLOAD);
    xml_node_t *put = xml_node_new_child(slot, "put", NS_UPLOAD);
    xml_node_set_attr(put, "url", url.data);
    /* Section 4: Authorization is one of the three headers a client passes on. */
    xml_node_t *h = xml_node_new_child(put, "header", NS_UPLOAD);
    xml_node_set_attr(h, "name", "Authorization");
    xml_node_add_text(h, token.data, token.len);
    xml_node_set_attr(xml_node_new_child(slot, "get", NS_UPLOAD), "url", url.data);
    xml_node_t *res = stanza_iq_result(r->iq, up.domain);
    xml_node_add_child(res, slot);
    session_deliver_node(s, res);
    xml_node_free(&res);
    buf_free(&url);
    buf_free(&token);
}

static void on_slot(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    slot_req_t *r = privdata;
    redisReply *rep = reply;
    session_t *s = session_find_jid(r->full);
    if (s) {
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
            rep->element[0]->type != REDIS_REPLY_INTEGER) {
            if (rep && rep->type == REDIS_REPLY_ERROR)
                log_warn("upload: slot script failed: %s", rep->str);
            reply_error(s, r->iq, "wait", "internal-server-error", NULL);
        } else if (rep->element[0]->integer == 1) {
            send_slot(s, r);
        } else {
            long long retry = rep->elements > 1 && rep->element[1]->type == REDIS_REPLY_INTEGER
                                  ? rep->element[1]->integer
                                  : 0;
            reply_quota(s, r->iq, retry);
        }
    }
    slot_req_free(r);
}

/* A decimal size of 1..18 digits; -1 otherwise. */
static long long parse_size(const char *s)
{
    if (!s || !*s || strlen(s) > 18)
        return -1;
    long long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* XEP-0363 section 4: a slot request. */
static void request_slot(session_t *from, const xml_node_t *st, const xml_node_t *req)
{
    const char *name = xml_node_attr(req, "filename");
    const char *size_s = xml_node_attr(req, "size");
    const char *ctype = xml_node_attr(req, "content-type");
    long long size = parse_size(size_s);
    if (!name || size < 0) {
        reply_error(from, st, "modify", "bad-request", "filename and size are required");
        return;
    }
    if (size == 0) {
        reply_error(from, st, "modify", "bad-request", "an empty file needs no upload");
        return;
    }
    if (!upslot_name_ok(name)) {
        reply_error(from, st, "modify", "not-acceptable",
                    "the file name must be 1 to 255 bytes without '/', '\\' or control characters");
        return;
    }
    if (ctype && *ctype && !upslot_ctype_ok(ctype)) {
        reply_error(from, st, "modify", "bad-request", "content-type is not a MIME type");
        return;
    }
    if (size > up.max_size) {
        reply_too_large(from, st);
        return;
    }
    slot_req_t *r = xcalloc(1, sizeof *r);
    r->full = xstrdup(from->full);
    r->iq = xml_node_copy(st);
    r->bare = xstrdup(from->user->bare);
    r->name = xstrdup(name);
    r->ctype = xstrdup(ctype ? ctype : "");
    r->size = size;
    unsigned char rnd[UPSLOT_ID_LEN / 2];
    random_bytes(rnd, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(r->id + 2 * i, 3, "%02x", rnd[i]);
    long long now = (long long)time(NULL);
    r->expiry = now + up.slot_ttl;
    char key[STORAGE_KEY_MAX], a_size[24], a_now[24], a_dl[24], a_q[24], a_n[24], a_exp[24],
        a_grace[24];
    storage_key(key, KEYS_UPLOAD, r->bare);
    snprintf(a_size, sizeof a_size, "%lld", size);
    snprintf(a_now, sizeof a_now, "%lld", now);
    snprintf(a_dl, sizeof a_dl, "%lld", r->expiry);
    snprintf(a_q, sizeof a_q, "%lld", up.quota);
    snprintf(a_n, sizeof a_n, "%lld", up.max_files);
    snprintf(a_exp, sizeof a_exp, "%lld", up.expire_after);
    snprintf(a_grace, sizeof a_grace, "%d", UPLOAD_PUT_GRACE_S);
    const char *argv[] = {"EVAL", script_slot, "1", key, r->id, a_size, a_now, a_dl, a_q, a_n,
                          a_exp, a_grace};
    if (rt_redis_command_argv(on_slot, r, (int)(sizeof argv / sizeof argv[0]), argv, NULL) !=
        REDIS_OK) {
        reply_error(from, st, "wait", "internal-server-error", NULL);
        slot_req_free(r);
    }
}

/* XEP-0363 section 2 and XEP-0128: the service's identity, feature and its size limit. */
static void disco_info(session_t *from, const xml_node_t *st)
{
    xml_node_t *q = xml_node_new("query", NS_DISCO_INFO);
    xml_node_t *id = xml_node_new_child(q, "identity", NS_DISCO_INFO);
    xml_node_set_attr(id, "category", "store");
    xml_node_set_attr(id, "type", "file");
    xml_node_set_attr(id, "name", "HTTP File Upload");
    xml_node_set_attr(xml_node_new_child(q, "feature", NS_DISCO_INFO), "var", NS_DISCO_INFO);
    xml_node_set_attr(xml_node_new_child(q, "feature", NS_DISCO_INFO), "var", NS_UPLOAD);
    xml_node_t *x = xml_node_new_child(q, "x", "jabber:x:data");
    xml_node_set_attr(x, "type", "result");
    xml_node_t *f = xml_node_new_child(x, "field", "jabber:x:data");
    xml_node_set_attr(f, "var", "FORM_TYPE");
    xml_node_set_attr(f, "type", "hidden");
    xml_node_add_text(xml_node_new_child(f, "value", "jabber:x:data"), NS_UPLOAD,
                      strlen(NS_UPLOAD));
    f = xml_node_new_child(x, "field", "jabber:x:data");
    xml_node_set_attr(f, "var", "max-file-size");
    char v[24];
    snprintf(v, sizeof v, "%lld", up.max_size);
    xml_node_add_text(xml_node_new_child(f, "value", "jabber:x:data"), v, strlen(v));
    xml_node_t *res = stanza_iq_result(st, up.domain);
    xml_node_add_child(res, q);
    session_deliver_node(from, res);
    xml_node_free(&res);
}

/* Every stanza a client sends to the service's domain or a JID at it (service.h). */
static void upload_stanza(session_t *from, const ipc_stanza_t *msg, const char *payload,
                          size_t len)
{
    xml_node_t *st = stanza_parse(payload, len);
    if (!st)
        return;
    const char *type = xml_node_attr(st, "type");
    int at_domain = strcmp(msg->to, up.domain) == 0;
    if (strcmp(st->name, "iq") == 0 && type &&
        (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)) {
        const xml_node_t *q = xml_node_first_element(st);
        int get = strcmp(type, "get") == 0;
        if (!at_domain)
            reply_error(from, st, "cancel", "service-unavailable", NULL);
        else if (get && q && q->ns && strcmp(q->ns, NS_DISCO_INFO) == 0 &&
                 strcmp(q->name, "query") == 0 && !xml_node_attr(q, "node"))
            disco_info(from, st);
        else if (get && q && q->ns && strcmp(q->ns, NS_DISCO_ITEMS) == 0 &&
                 strcmp(q->name, "query") == 0)
            session_reply_result(from, st, xml_node_new("query", NS_DISCO_ITEMS));
        else if (get && q && q->ns && strcmp(q->ns, NS_UPLOAD) == 0 &&
                 strcmp(q->name, "request") == 0)
            request_slot(from, st, q);
        else
            reply_error(from, st, "cancel", "service-unavailable", NULL);
    } else if (strcmp(st->name, "message") == 0 && !(type && strcmp(type, "error") == 0)) {
        /* RFC 6121 8.5.1 for a service that takes no messages. */
        reply_error(from, st, "cancel", "service-unavailable", NULL);
    }
    /* Presence, results and errors: nothing to do. */
    xml_node_free(&st);
}

/* The account is deleted (account.h): its slots and the records of its files go; the
 * upload process then refuses the files (404) and deletes them (XEP-0363 leaves this to
 * the server; issue #14 point 5). */
static mod_result_t on_user_deleted(hook_ev_t *ev)
{
    account_data_key(ev, KEYS_UPLOAD);
    return MOD_PASS;
}

static const mod_hook_t hooks[] = {
    {HOOK_USER_DELETED, 0, on_user_deleted},
    {0},
};

static void upload_open(void)
{
    const char *url = config_str("upload_url");
    up.max_size = config_int("upload_max_size");
    up.quota = config_int("upload_quota");
    up.max_files = config_int("upload_max_files");
    up.slot_ttl = config_int("upload_slot_ttl");
    up.expire_after = config_int("upload_expire_after");
    if (!*url)
        return; /* no upload service */
    char path[512];
    if (upslot_url_path(url, path, sizeof path) < 0)
        log_fatal("config: key 'upload_url': '%s' is not an http:// or https:// URL without "
                  "query", url);
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    up.url = xstrndup(url, n);
    up.secret = secret_from_config("upload_secret");
    if (!up.secret)
        log_fatal("config: key 'upload_url' is set but neither upload_secret nor "
                  "upload_secret_file is");
    const char *dom = config_str("upload_domain");
    char want[JID_PART_MAX + 1];
    if (*dom)
        snprintf(want, sizeof want, "%s", dom);
    else if (snprintf(want, sizeof want, "upload.%s", rt.domain) >= (int)sizeof want)
        log_fatal("config: key 'upload_domain': upload.%s is too long", rt.domain);
    if (jid_prep_domain(up.domain, want) < 0)
        log_fatal("config: key 'upload_domain': '%s' is not a valid domain", want);
    service_add(up.domain, "HTTP File Upload", upload_stanza, 0); /* local accounts only */
    log_info("upload: slots on %s for %s (at most %lld bytes a file)", up.domain, up.url,
             up.max_size);
}

static void upload_close(void)
{
    secret_free(&up.secret);
    free(up.url);
    up.url = NULL;
}

module_t mod_upload = {
    .name = "upload",
    .hooks = hooks,
    .config = upload_config_keys,
    .open = upload_open,
    .close = upload_close,
};
