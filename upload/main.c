/* upload-server: the HTTP side of XEP-0363 HTTP File Upload. The router hands out slots
 * (session-router/modules/mod_upload.c); this process serves them: a PUT to a slot's URL
 * with the signed token the router gave (common/upslot.h) stores the file under upload_dir,
 * a GET or HEAD of the same URL serves it with the content type recorded, ranges included.
 * The owner's record in Redis (keys.h KEYS_UPLOAD) decides whether a file may still be
 * served: once the account is deleted the file is 404 at once and deleted; a periodic
 * sweep deletes files past upload_expire_after and files whose record is gone. Any number
 * of these processes may share one upload_dir (a volume): a file is written to a temporary
 * name and linked into place, so a second PUT of a slot finds it there (409).
 *
 * libmicrohttpd runs the HTTP side on its own threads (a small pool); each thread keeps its
 * own synchronous Redis connection (a few short commands a request). The main thread runs
 * the event loop for signals and, with redis_tls, the TLS relay the Redis connections go
 * through; the sweep has a thread of its own. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "evloop.h"
#include "keys.h"
#include "log.h"
#include "privdrop.h"
#include "redis_tls.h"
#include "secret.h"
#include "upslot.h"
#include "util.h"

#include "store.h"

/* The keys shared with the router are declared with the same defaults and help there
 * (mod_upload.c); this process reads the URL only for its path. */
static const config_key_t upload_server_keys[] = {
    CONFIG_STR("upload_listen", "127.0.0.1:5290", "address the upload process serves HTTP on (host:port)"),
    CONFIG_STR("upload_dir", "/var/lib/xmpp-upload", "directory the uploaded files are stored in (shared by every upload process)"),
    CONFIG_STR("upload_url", "", "public base URL of the upload process, e.g. https://upload.example.org:5443/upload (empty: no upload service)"),
    CONFIG_STR("upload_secret", "", "secret shared by the router and the upload process to sign PUT slots"),
    CONFIG_STR("upload_secret_file", "", "a file holding upload_secret instead"),
    CONFIG_INT("upload_max_size", "104857600", 1, 1099511627776L, "largest file one slot may carry (bytes)"),
    CONFIG_INT("upload_expire_after", "604800", 0, 315360000, "seconds an uploaded file is kept (0: until the account is deleted)"),
    CONFIG_INT("upload_sweep_interval", "300", 1, 86400, "seconds between two sweeps of upload_dir for expired and orphaned files"),
    CONFIG_INT("upload_max_connections", "256", 1, 100000, "HTTP connections the upload process serves at once"),
    CONFIG_INT("upload_max_connections_per_ip", "16", 0, 100000, "HTTP connections one client address may hold at once (0: no limit; behind a proxy every client has the proxy's address)"),
    CONFIG_INT("upload_timeout", "60", 1, 3600, "seconds an HTTP connection may stay idle before it is closed"),
    CONFIG_INT("upload_threads", "4", 1, 256, "HTTP threads of the upload process"),
    CONFIG_STR("upload_tls_cert", "", "PEM certificate chain to serve HTTPS with (empty: plain HTTP, for behind a TLS proxy)"),
    CONFIG_STR("upload_tls_key", "", "PEM private key of upload_tls_cert (empty: in upload_tls_cert)"),
    CONFIG_END,
};

static const config_key_t *const config_tables[] = {
    config_base_keys, privdrop_config_keys, redis_config_keys, upload_server_keys,
};

static struct {
    char *secret;
    char prefix[512]; /* the path of upload_url */
    store_t store;
    long long max_size, expire_after;
    unsigned timeout_s;
    /* Redis */
    const char *redis_host, *redis_prefix;
    int redis_port;
    char *redis_password;
    const char *redis_user;
    redis_tls_t *tls;
    /* sweep */
    long sweep_s;
    pthread_t sweeper;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* ---- Redis: one synchronous connection per thread ---- */

/* Each thread's connection, freed when the thread ends (MHD's pool at MHD_stop_daemon). */
static pthread_key_t redis_key;

static void redis_key_free(void *rc)
{
    redisFree(rc);
}

static redisContext *redis_get(void)
{
    redisContext *have = pthread_getspecific(redis_key);
    if (have)
        return have;
    struct timeval tv = {2, 0};
    redisContext *rc = g.tls ? redisConnectUnixWithTimeout(redis_tls_path(g.tls), tv)
                             : redisConnectWithTimeout(g.redis_host, g.redis_port, tv);
    if (!rc || rc->err) {
        log_warn("upload: Redis at %s:%d: %s", g.redis_host, g.redis_port,
                 rc ? rc->errstr : "out of memory");
        if (rc)
            redisFree(rc);
        return NULL;
    }
    redisSetTimeout(rc, tv);
    if (g.redis_password) {
        redisReply *r = *g.redis_user ? redisCommand(rc, "AUTH %s %s", g.redis_user, g.redis_password)
                                      : redisCommand(rc, "AUTH %s", g.redis_password);
        int ok = r && r->type != REDIS_REPLY_ERROR;
        if (!ok)
            log_warn("upload: Redis refused AUTH (check redis_password): %s",
                     r && r->type == REDIS_REPLY_ERROR ? r->str : "no answer");
        if (r)
            freeReplyObject(r);
        if (!ok) {
            redisFree(rc);
            return NULL;
        }
    }
    pthread_setspecific(redis_key, rc);
    return rc;
}

/* One command on this thread's connection; NULL when Redis is away or answers an error
 * (the connection is dropped on I/O errors and made again next time). */
static redisReply *redis_cmd(const char *fmt, ...)
{
    redisContext *rc = redis_get();
    if (!rc)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    if (!r || rc->err) {
        log_warn("upload: Redis: %s", rc->err ? rc->errstr : "no reply");
        if (r)
            freeReplyObject(r);
        redisFree(rc);
        pthread_setspecific(redis_key, NULL);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        log_warn("upload: Redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* The record of slot `id` of `bare`: 'p' (pending), 's' (stored), 0 (none), -1 (Redis
 * away). */
static int record_state(const char *bare, const char *id)
{
    char key[JID_MAX + 256];
    if (keys_user(key, sizeof key, g.redis_prefix, KEYS_UPLOAD, bare) < 0)
        return 0;
    redisReply *r = redis_cmd("HGET %s %s", key, id);
    if (!r)
        return -1;
    int st = r->type == REDIS_REPLY_STRING && r->len > 0 ? r->str[0] : 0;
    freeReplyObject(r);
    return st == 'p' || st == 's' ? st : 0;
}

/* Marks a pending record stored; 1 done, 0 no record, 2 stored already, -1 Redis away. */
static int record_stored(const char *bare, const char *id)
{
    static const char script[] =
        "local v = redis.call('HGET', KEYS[1], ARGV[1]) "
        "if not v then return 0 end "
        "local sz = string.match(v, '^p (%d+)') "
        "if not sz then return 2 end "
        "redis.call('HSET', KEYS[1], ARGV[1], 's ' .. sz .. ' ' .. ARGV[2]) "
        "return 1";
    char key[JID_MAX + 256], now[24];
    if (keys_user(key, sizeof key, g.redis_prefix, KEYS_UPLOAD, bare) < 0)
        return 0;
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    redisReply *r = redis_cmd("EVAL %s 1 %s %s %s", script, key, id, now);
    if (!r)
        return -1;
    int v = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    freeReplyObject(r);
    return v;
}

static void record_forget(const char *bare, const char *id)
{
    char key[JID_MAX + 256];
    if (keys_user(key, sizeof key, g.redis_prefix, KEYS_UPLOAD, bare) < 0)
        return;
    redisReply *r = redis_cmd("HDEL %s %s", key, id);
    if (r)
        freeReplyObject(r);
}

/* ---- HTTP ---- */

typedef struct {
    int put;          /* a PUT being received */
    int fd;           /* its temporary file, or -1 */
    char tmp[PATH_MAX];
    upslot_path_t path;
    upslot_token_t tok;
    char ctype[UPSLOT_CTYPE_MAX + 1];
    long long got;
    unsigned status; /* an error found while the body came, answered at its end */
} req_t;

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, PUT, OPTIONS");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static const char *status_text(unsigned status)
{
    switch (status) {
    case 201: return "Created\n";
    case 400: return "Bad request\n";
    case 403: return "Forbidden\n";
    case 404: return "Not found\n";
    case 409: return "This slot was used already\n";
    case 411: return "Length required\n";
    case 413: return "The body is larger than the slot\n";
    case 416: return "Range not satisfiable\n";
    case 503: return "Storage unavailable, try again later\n";
    default: return "Error\n";
    }
}

static enum MHD_Result answer_status(struct MHD_Connection *conn, unsigned status)
{
    return answer(conn, status, status_text(status));
}

/* Web clients (XEP-0363 section 8) upload from another origin: the CORS preflight. */
static enum MHD_Result answer_options(struct MHD_Connection *conn)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS");
    MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, r);
    MHD_destroy_response(r);
    return rc;
}

/* A decimal Content-Length (1..18 digits); -1 otherwise. */
static long long parse_len(const char *s)
{
    if (!s || !*s || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s))
        return -1;
    return strtoll(s, NULL, 10);
}

/* The checks of a PUT before its body (XEP-0363 section 6): the token, its expiry, the
 * length, the type, the slot's record. Returns 0 to receive the body, or a status. */
static unsigned put_begin(struct MHD_Connection *conn, const char *url, req_t *q)
{
    int pr = upslot_path_parse(url, g.prefix, &q->path);
    if (pr == -2)
        return 404;
    if (pr < 0)
        return 400;
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth || upslot_token_parse(auth, &q->tok) < 0 ||
        !upslot_verify(g.secret, q->path.id, q->path.name, &q->tok))
        return 403;
    if (q->tok.expiry < (long long)time(NULL))
        return 403;
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && !te) {
        long long len = parse_len(cl);
        if (len < 0)
            return 400;
        if (len > q->tok.size || len > g.max_size)
            return 413;
        if (len < q->tok.size)
            return 400;
    } else if (!te) {
        return 411;
    }
    if (q->tok.size > g.max_size)
        return 413;
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (q->tok.ctype[0]) {
        /* The type asked for in the slot request is the one signed and served. */
        if (ct && strcasecmp(ct, q->tok.ctype) != 0)
            return 400;
        snprintf(q->ctype, sizeof q->ctype, "%s", q->tok.ctype);
    } else {
        snprintf(q->ctype, sizeof q->ctype, "%s",
                 ct && upslot_ctype_ok(ct) ? ct : "application/octet-stream");
    }
    if (store_exists(&g.store, q->path.id))
        return 409;
    int st = record_state(q->tok.bare, q->path.id);
    if (st < 0)
        return 503;
    if (st == 's')
        return 409;
    if (st != 'p')
        return 403; /* no such slot any more: its account was deleted, or it was dropped */
    store_meta_t m = {.bare = q->tok.bare, .ctype = q->ctype, .name = q->path.name,
                      .size = q->tok.size, .created = (long long)time(NULL)};
    q->fd = store_begin(&g.store, q->path.id, &m, q->tmp, sizeof q->tmp);
    if (q->fd == -2)
        return 409;
    if (q->fd < 0)
        return 503;
    q->put = 1;
    return 0;
}

/* The PUT's body has come: the file goes into place and the record says stored. */
static unsigned put_end(req_t *q)
{
    if (q->status)
        return q->status;
    if (q->got != q->tok.size)
        return 400;
    int rc = store_commit(&g.store, q->fd, q->tmp, q->path.id);
    q->fd = -1;
    q->tmp[0] = '\0';
    if (rc == 1)
        return 409;
    if (rc < 0)
        return 503;
    int st = record_stored(q->tok.bare, q->path.id);
    if (st == 1) {
        log_info("upload: stored %s (%lld bytes) for %s", q->path.id, q->tok.size, q->tok.bare);
        return 201;
    }
    /* The record went meanwhile (the account was deleted) or Redis is away: the file
     * must not stay. */
    store_remove(&g.store, q->path.id);
    return st == 2 ? 409 : st == 0 ? 403 : 503;
}

static enum MHD_Result serve_get(struct MHD_Connection *conn, const char *url)
{
    upslot_path_t p;
    int pr = upslot_path_parse(url, g.prefix, &p);
    if (pr == -2)
        return answer_status(conn, 404);
    if (pr < 0)
        return answer_status(conn, 400);
    store_file_t f;
    if (store_open(&g.store, p.id, &f) < 0)
        return answer_status(conn, 404);
    if (strcmp(f.name, p.name) != 0) {
        store_file_close(&f);
        return answer_status(conn, 404);
    }
    long long exp = g.expire_after;
    if (exp > 0 && f.created + exp <= (long long)time(NULL)) {
        store_remove(&g.store, p.id);
        record_forget(f.bare, p.id);
        store_file_close(&f);
        return answer_status(conn, 404);
    }
    int st = record_state(f.bare, p.id);
    if (st < 0) {
        store_file_close(&f);
        return answer_status(conn, 503);
    }
    if (st == 0) {
        /* The owner's record is gone (the account was deleted): the file goes now. */
        log_info("upload: %s has no record for %s any more: deleted", p.id, f.bare);
        store_remove(&g.store, p.id);
        store_file_close(&f);
        return answer_status(conn, 404);
    }
    if (st != 's') {
        /* Linked into place by a PUT that has not marked its record yet: not there yet. */
        store_file_close(&f);
        return answer_status(conn, 404);
    }
    long long off = 0, len = f.size;
    unsigned status = MHD_HTTP_OK;
    const char *range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
    int rr = range ? upslot_range_parse(range, f.size, &off, &len) : 0;
    char cr[96];
    if (rr < 0) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        snprintf(cr, sizeof cr, "bytes */%lld", f.size);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_RANGE_NOT_SATISFIABLE, r);
        MHD_destroy_response(r);
        store_file_close(&f);
        return rc;
    }
    if (rr == 1) {
        status = MHD_HTTP_PARTIAL_CONTENT;
        snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", off, off + len - 1, f.size);
    }
    /* MHD owns the descriptor from here (closed with the response). */
    struct MHD_Response *r = MHD_create_response_from_fd_at_offset64(
        (uint64_t)len, f.fd, (uint64_t)(f.data_off + off));
    if (!r) {
        store_file_close(&f);
        return MHD_NO;
    }
    f.fd = -1;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, f.ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    if (rr == 1)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    /* What others uploaded is never run as a page of this origin (XEP-0363 section 11). */
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy", "default-src 'none'; sandbox");
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "private, max-age=3600");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    store_file_close(&f);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)cls;
    (void)version;
    req_t *q = *con_cls;
    if (strcmp(method, "PUT") != 0) {
        if (*upload_data_size) /* a body with GET: not read */
            return answer_status(conn, 400);
        if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
            return serve_get(conn, url);
        if (strcmp(method, "OPTIONS") == 0)
            return answer_options(conn);
        return answer_status(conn, MHD_HTTP_METHOD_NOT_ALLOWED);
    }
    if (!q) {
        q = xcalloc(1, sizeof *q);
        q->fd = -1;
        *con_cls = q;
        unsigned status = put_begin(conn, url, q);
        if (status)
            return answer_status(conn, status);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        q->got += (long long)n;
        if (q->status) {
            /* Refused already: the rest is read and dropped so the answer can be sent
             * (libmicrohttpd answers only once the body is in), up to a bound past which
             * the connection is simply closed. */
            return q->got > q->tok.size + g.max_size ? MHD_NO : MHD_YES;
        }
        if (q->got > q->tok.size) {
            /* A chunked body that outgrows its slot. */
            q->status = 413;
        } else if (store_write(q->fd, upload_data, n) < 0) {
            q->status = 503;
        }
        if (q->status) {
            store_abort(&g.store, q->fd, q->tmp);
            q->fd = -1;
            q->tmp[0] = '\0';
        }
        return MHD_YES;
    }
    return answer_status(conn, put_end(q));
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    req_t *q = *con_cls;
    if (!q)
        return;
    if (q->fd >= 0 || q->tmp[0])
        store_abort(&g.store, q->fd, q->tmp);
    free(q);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_debug("upload: http: %s", line);
}

/* ---- the sweep ---- */

/* Decides about one stored file: past its time, or its record gone: deleted. */
static void sweep_one(const char *id, long long now, long long exp)
{
    store_file_t f;
    if (store_open(&g.store, id, &f) < 0)
        return;
    if (exp > 0 && f.created + exp <= now) {
        store_remove(&g.store, id);
        record_forget(f.bare, id);
        log_info("upload: %s expired: deleted", id);
    } else {
        int st = record_state(f.bare, id);
        if (st == 0) {
            store_remove(&g.store, id);
            log_info("upload: %s has no record for %s any more: deleted", id, f.bare);
        }
    }
    store_file_close(&f);
}

static void *sweeper(void *arg)
{
    (void)arg;
    long long exp = g.expire_after;
    pthread_mutex_lock(&g.lock);
    while (!g.stopping) {
        pthread_mutex_unlock(&g.lock);
        store_each(&g.store, sweep_one, (long long)time(NULL), exp);
        store_sweep_tmp(&g.store, (long long)time(NULL) - 2 * (long long)g.timeout_s - 3600);
        pthread_mutex_lock(&g.lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += g.sweep_s;
        while (!g.stopping && pthread_cond_timedwait(&g.wake, &g.lock, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&g.lock);
    return NULL;
}

/* ---- start ---- */

/* A whole PEM file (at most 1 MiB), fatal naming `key` when it cannot be read. */
static char *read_pem(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f)
        log_fatal("config: key '%s': cannot open '%s': %s", key, path, strerror(errno));
    buf_t b = BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < (1u << 20))
        buf_append(&b, chunk, n);
    int bad = ferror(f) || b.len >= (1u << 20) || !strstr(b.data ? b.data : "", "-----BEGIN");
    fclose(f);
    if (bad)
        log_fatal("config: key '%s': '%s' is not a PEM file", key, path);
    buf_append(&b, "", 1);
    return buf_steal(&b);
}

static int listen_socket(const char *spec)
{
    char host[256], port[16];
    const char *colon = strrchr(spec, ':');
    size_t hl = colon ? (size_t)(colon - spec) : 0;
    const char *h = spec;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (!colon || hl == 0 || hl >= sizeof host || !colon[1] || strlen(colon + 1) >= sizeof port ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        log_fatal("config: key 'upload_listen': '%s' is not host:port", spec);
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, sizeof port, "%s", colon + 1);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0)
        log_fatal("config: key 'upload_listen': '%s': %s", spec, gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0)
        log_fatal("config: key 'upload_listen': cannot listen on '%s': %s", spec,
                  strerror(errno));
    freeaddrinfo(ai);
    return fd;
}

int main(int argc, char **argv)
{
    const char *cfg = NULL;
    int opt;
    for (size_t i = 0; i < sizeof config_tables / sizeof config_tables[0]; i++)
        config_register(config_tables[i]);
    if (argc == 2 && strcmp(argv[1], "--help-config") == 0) {
        config_print_help(stdout, "upload-server");
        return 0;
    }
    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        if (opt == 'c') {
            cfg = optarg;
        } else {
            fprintf(stderr, "usage: upload-server [-c CONFIG_FILE] | --help-config\n");
            return 2;
        }
    }
    log_init("upload-server");
    char err[1200];
    if (config_load(cfg, err, sizeof err) < 0)
        log_fatal("config: %s", err);
    log_level_parse(config_str("log_level"), &log_min_level);
    const char *url = config_str("upload_url");
    if (!*url)
        log_fatal("config: key 'upload_url' is empty: the upload process needs the public URL "
                  "the router hands out");
    if (upslot_url_path(url, g.prefix, sizeof g.prefix) < 0)
        log_fatal("config: key 'upload_url': '%s' is not an http:// or https:// URL without "
                  "query", url);
    g.secret = secret_from_config("upload_secret");
    if (!g.secret)
        log_fatal("config: neither upload_secret nor upload_secret_file is set");
    g.max_size = config_int("upload_max_size");
    g.expire_after = config_int("upload_expire_after");
    g.timeout_s = (unsigned)config_int("upload_timeout");
    g.sweep_s = config_int("upload_sweep_interval");
    g.redis_host = config_str("redis_host");
    g.redis_port = (int)config_int("redis_port");
    g.redis_prefix = config_str("redis_prefix");
    g.redis_user = config_str("redis_user");
    g.redis_password = secret_from_config("redis_password");

    pthread_key_create(&redis_key, redis_key_free);
    evloop_t *loop = evloop_new(); /* blocks SIGINT/SIGTERM/SIGHUP for the threads to come */
    g.tls = redis_tls_new(loop, g.redis_host, g.redis_port);
    int lfd = listen_socket(config_str("upload_listen"));
    /* HTTPS straight from this process (libmicrohttpd on GnuTLS), read before root goes. */
    char *tls_cert = NULL, *tls_key = NULL;
    if (*config_str("upload_tls_cert")) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS))
            log_fatal("config: key 'upload_tls_cert': this libmicrohttpd has no TLS");
        tls_cert = read_pem(config_str("upload_tls_cert"), "upload_tls_cert");
        tls_key = read_pem(*config_str("upload_tls_key") ? config_str("upload_tls_key")
                                                          : config_str("upload_tls_cert"),
                           *config_str("upload_tls_key") ? "upload_tls_key" : "upload_tls_cert");
    }
    if (privdrop_apply(config_str("user"), config_str("group"), err, sizeof err) < 0)
        log_fatal("config: %s", err);
    if (store_init(&g.store, config_str("upload_dir"), err, sizeof err) < 0)
        log_fatal("config: %s", err);

    unsigned threads = (unsigned)config_int("upload_threads");
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (tls_cert)
        flags |= MHD_USE_TLS;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL,
        on_request, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, lfd,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)config_int("upload_max_connections"),
        /* One address cannot hold every connection (slow bodies, half-sent requests). */
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)config_int("upload_max_connections_per_ip"),
        MHD_OPTION_CONNECTION_TIMEOUT, g.timeout_s,
        /* the buffer the body comes through: larger chunks, fewer writes */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        /* ignored without MHD_USE_TLS; NULL ends the list early, so they come last */
        tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, tls_cert,
        MHD_OPTION_HTTPS_MEM_KEY, tls_key,
        MHD_OPTION_END);
    if (!d)
        log_fatal("upload: cannot serve HTTP on %s", config_str("upload_listen"));
    if (pthread_create(&g.sweeper, NULL, sweeper, NULL) != 0)
        log_fatal("upload: cannot start the sweep thread");
    log_info("serving uploads on %s://%s (public %s), files in %s", tls_cert ? "https" : "http",
             config_str("upload_listen"), url, config_str("upload_dir"));

    evloop_run(loop);

    log_info("shutting down");
    MHD_stop_daemon(d);
    pthread_mutex_lock(&g.lock);
    g.stopping = 1;
    pthread_cond_signal(&g.wake);
    pthread_mutex_unlock(&g.lock);
    pthread_join(g.sweeper, NULL);
    redis_tls_destroy(&g.tls);
    evloop_destroy(&loop);
    store_close(&g.store);
    secret_free(&g.secret);
    secret_free(&g.redis_password);
    secret_free(&tls_key);
    free(tls_cert);
    config_free();
    return 0;
}
